"""What configuration checking reports: :class:`Problem` and :class:`ConfigError`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, formatted as one line.

    ``str(problem)`` reads ``http.ini [http] endpoint: bad endpoint ...``;
    ``section`` and ``key`` are ``None`` when the problem is with a whole
    file (or directory) or a whole section.
    """

    file: str
    section: str | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.section is not None:
            where += " [%s]" % (self.section,)
        if self.key is not None:
            where += " %s" % (self.key,)
        # One problem, one line: never let a value break the line.
        message = " ".join(self.message.splitlines())
        return "%s: %s" % (where, message)


class ConfigError(Exception):
    """The configuration has problems; ``problems`` lists all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
