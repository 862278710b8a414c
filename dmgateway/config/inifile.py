"""A small INI reader that reports every syntax problem with its line.

The accepted syntax is the common subset of :mod:`configparser`'s:

- ``[section]`` headers; ``key = value`` or ``key: value`` lines (split at
  the first ``=`` or ``:``, so endpoint strings need no quoting);
- keys are case-insensitive (stored lower-case); values are stripped;
- an indented line continues the previous value (joined with a newline);
- whole-line comments start with ``#`` or ``;``; an inline comment starts
  with ``#`` or ``;`` *preceded by whitespace* (so a value cannot contain
  `` #`` or `` ;``);
- a UTF-8 byte-order mark is ignored.

Unlike :mod:`configparser` it never stops at the first error: duplicate
sections and keys, lines outside sections and undecodable bytes each become a
:class:`~dmgateway.config.problems.Problem` and reading goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dmgateway.config.problems import Problem

_INLINE_COMMENT = re.compile(r"\s[#;].*$")
_KEY_VALUE = re.compile(r"^([^=:\[\s][^=:]*?)\s*[=:]\s*(.*)$")
_KEY = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass
class RawValue:
    value: str
    line: int


@dataclass
class RawSection:
    """A section as written: its name, first line and ``key -> RawValue``."""

    name: str
    line: int
    values: dict[str, RawValue] = field(default_factory=dict)


def decode(data: bytes, file: str, problems: list[Problem]) -> str | None:
    """UTF-8 text of ``data``, or ``None`` (and a problem) if it is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        problems.append(
            Problem(
                file,
                None,
                None,
                "not UTF-8: byte 0x%02x at offset %d (line %d)"
                % (data[e.start], e.start, line),
            )
        )
        return None


def parse(text: str, file: str, problems: list[Problem]) -> list[RawSection]:
    """Sections of ``text`` in file order; duplicates are merged into the first.

    Every syntax problem is appended to ``problems``.
    """
    sections: list[RawSection] = []
    by_name: dict[str, RawSection] = {}
    current: RawSection | None = None
    last: RawValue | None = None  # value an indented line would continue
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            last = None
            continue
        if stripped[0] in "#;":
            continue
        if line[0].isspace() and last is not None:
            last.value += "\n" + _INLINE_COMMENT.sub("", stripped).strip()
            continue
        last = None
        if stripped.startswith("["):
            header = _INLINE_COMMENT.sub("", stripped).strip()
            if not header.endswith("]") or len(header) < 3:
                problems.append(
                    Problem(file, None, None, "line %d: bad section header %r" % (number, stripped))
                )
                current = None
                continue
            name = header[1:-1].strip()
            if not name or not name.isprintable() or "]" in name or "[" in name:
                problems.append(
                    Problem(file, None, None, "line %d: bad section header %r" % (number, stripped))
                )
                current = None
                continue
            if name in by_name:
                first = by_name[name]
                problems.append(
                    Problem(
                        file,
                        name,
                        None,
                        "line %d: duplicate section (first at line %d)" % (number, first.line),
                    )
                )
                current = first
            else:
                current = by_name[name] = RawSection(name, number)
                sections.append(current)
            continue
        match = _KEY_VALUE.match(stripped)
        if match is None:
            problems.append(
                Problem(
                    file,
                    current.name if current else None,
                    None,
                    "line %d: expected 'key = value', got %r" % (number, _clip(stripped)),
                )
            )
            continue
        key = match.group(1).strip().lower()
        if not _KEY.fullmatch(key):
            problems.append(
                Problem(file, current.name if current else None, None,
                        "line %d: bad key name %r" % (number, _clip(key)))
            )
            continue
        value = _INLINE_COMMENT.sub("", " " + match.group(2)).strip()
        if current is None:
            problems.append(
                Problem(file, None, None,
                        "line %d: key %r outside any [section]" % (number, key))
            )
            continue
        if key in current.values:
            problems.append(
                Problem(
                    file,
                    current.name,
                    key,
                    "line %d: duplicate key (first at line %d)"
                    % (number, current.values[key].line),
                )
            )
            continue
        last = current.values[key] = RawValue(value, number)
    return sections


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
