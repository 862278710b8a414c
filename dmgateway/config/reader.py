"""Typed access to one INI section that records every problem it meets.

A section class asks a :class:`SectionReader` for each of its keys with the
key's type and default; whatever is wrong becomes a
:class:`~dmgateway.config.problems.Problem` and the default is used in its
place, so one pass finds every problem.  Keys nobody asked for are reported
by :meth:`SectionReader.finish` with the closest known key.
"""

from __future__ import annotations

from typing import Callable, Iterable

from dmgateway.config import checks
from dmgateway.config.inifile import RawSection
from dmgateway.config.problems import Problem

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}

Validator = Callable[[str], "list[str] | str | None"]


class SectionReader:
    """Reads the keys of one section of one file.

    ``active`` is false for a disabled bearer: its keys are still checked
    for names and syntax, but required keys may be missing and nothing on
    this machine (files, devices, key material) is looked at.
    """

    def __init__(self, file: str, section: str, raw: RawSection | None,
                 problems: list[Problem], *, reactor=None) -> None:
        self.file = file
        self.section = section
        self.present = raw is not None
        self.active = True
        self.reactor = reactor
        self._values = dict(raw.values) if raw is not None else {}
        self._problems = problems
        self._known: list[str] = []

    # -- reporting ---------------------------------------------------------

    def problem(self, key: str | None, message: str) -> None:
        self._problems.append(Problem(self.file, self.section, key, message))

    def _report(self, key: str, result) -> bool:
        """Record what a validator returned; true if it found nothing."""
        if not result:
            return True
        for message in [result] if isinstance(result, str) else result:
            self.problem(key, message)
        return False

    def finish(self) -> None:
        """Report every key of the section that no reader method asked for."""
        for key in self._values:
            if key not in self._known:
                self.problem(key, "unknown key%s" % (checks.suggest(key, self._known),))

    # -- raw access --------------------------------------------------------

    def _take(self, key: str) -> str | None:
        self._known.append(key)
        raw = self._values.get(key)
        return None if raw is None else raw.value

    # -- typed getters -----------------------------------------------------

    def text(self, key: str, default: str = "", *, required: bool = False,
             empty_ok: bool = True, validate: Validator | None = None) -> str:
        """A string; ``required`` keys must be set (when active), ``empty_ok``
        false forbids ``key =`` with nothing after it."""
        value = self._take(key)
        if value is None:
            if required and self.active:
                self.problem(key, "missing required key")
            return default
        if value == "":
            if required and self.active:
                self.problem(key, "missing required value")
            elif not empty_ok:
                self.problem(key, "must not be empty")
                return default
            return value
        if "\n" in value:
            self.problem(key, "must be on one line (an indented line continues the value)")
            return default
        if validate is not None and not self._report(key, validate(value)):
            return default
        return value

    def secret(self, key: str, default: str = "", *, required: bool = False,
               validate: Validator | None = None) -> str:
        """Like :meth:`text`, for a secret: ``validate`` must not repeat the value."""
        return self.text(key, default, required=required, validate=validate)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._take(key)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        self.problem(key, "bad boolean %r (use true/false, yes/no, on/off or 1/0)" % (value,))
        return default

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._take(key)
        if value is None:
            return default
        try:
            number = int(value.replace("_", ""), 10)
        except ValueError:
            self.problem(key, "bad integer %r" % (value,))
            return default
        if not low <= number <= high:
            self.problem(key, "%d out of range (%d-%d)" % (number, low, high))
            return default
        return number

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self._take(key)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            self.problem(key, "bad number %r" % (value,))
            return default
        if not low <= number <= high:  # also rejects nan
            self.problem(key, "%s out of range (%g-%g)" % (value, low, high))
            return default
        return number

    def choice(self, key: str, default: str, choices: Iterable[str],
               aliases: dict[str, str] | None = None) -> str:
        """One of ``choices`` (case-insensitive); ``aliases`` map other
        accepted spellings onto a choice."""
        value = self._take(key)
        if value is None:
            return default
        choices = list(choices)
        lowered = value.lower()
        if aliases and lowered in aliases:
            return aliases[lowered]
        if lowered in choices:
            return lowered
        self.problem(key, "bad value %r (one of: %s)%s"
                     % (value, ", ".join(choices), checks.suggest(lowered, choices)))
        return default

    def words(self, key: str, *, validate: Validator | None = None,
              separators: str = "") -> tuple[str, ...]:
        """Whitespace-separated words (also across continuation lines),
        each checked by ``validate``; ``separators`` adds separator chars."""
        value = self._take(key)
        if not value:
            return ()
        for sep in separators:
            value = value.replace(sep, " ")
        result = []
        for word in value.split():
            if validate is None or self._report(key, validate(word)):
                if word not in result:
                    result.append(word)
        return tuple(result)

    def readable_file(self, key: str, default: str = "", *, required: bool = False) -> str:
        """A path to a file that must be readable (checked when active)."""
        value = self.text(key, default, required=required)
        if value and self.active:
            self._report(key, checks.check_readable_file(value))
        return value

    def endpoint(self, key: str, default: str, *, server: bool = True,
                 kinds: tuple[str, ...] = (), proxied: bool = False) -> str:
        """A Twisted endpoint string; ``kinds`` limits the endpoint types.

        With ``proxied`` the endpoint may be wrapped in ``haproxy:`` (the
        PROXY protocol in front of it); the inner endpoint is what ``kinds``
        and the checks look at.
        """
        value = self._take(key)
        if value is None:
            value = default
        if not value and not self.active:
            return value
        inner = value
        if proxied and value[:8].lower() == "haproxy:":
            inner = value[8:]
        if kinds and inner and inner.split(":", 1)[0].lower() not in kinds:
            self.problem(key, "bad endpoint %r: must be one of %s%s"
                         % (value, ", ".join(k + ":" for k in kinds),
                            " (optionally after haproxy:)" if proxied else ""))
            return value
        self._report(key, checks.check_endpoint(
            inner, server=server, reactor=self.reactor, environment=self.active))
        return value
