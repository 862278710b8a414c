"""
Checks of the values the store's methods are given: the same refusals
(C{TypeError}, C{ValueError}) on every engine, before any SQL runs.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "check_text",
    "check_int",
    "check_time",
    "check_instance",
    "check_nonce",
    "check_states",
    "check_state",
    "marks",
]

_INT64_MAX = 2**63 - 1


def check_text(value: Any, what: str, *, optional: bool = False, empty: bool = True) -> None:
    """A C{str} (or L{None} if C{optional}; non-empty unless C{empty})."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not empty and not value:
        raise ValueError(f"{what} must not be empty")


def check_int(value: Any, what: str, low: int, high: int = _INT64_MAX) -> None:
    """An C{int} (not a C{bool}) from C{low} to C{high}."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{what} out of range: {value}")


def check_time(value: Any, what: str, *, optional: bool = False) -> None:
    """A finite number of seconds (or L{None} if C{optional})."""
    if value is None and optional:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{what} must be a number of seconds")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite")


def check_instance(value: Any, kind: Any, what: str, *, optional: bool = False) -> None:
    """An instance of C{kind} (a type or tuple of types)."""
    if value is None and optional:
        return
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        names = " or ".join(k.__name__ for k in kinds)
        raise TypeError(f"{what} must be {names}, not {type(value).__name__}")


def check_nonce(value: Any, what: str) -> None:
    """Raw bytes, or L{None}."""
    if value is not None and not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def check_states(value: Any, allowed: tuple, what: str) -> tuple:
    """One state or several, each in C{allowed}; return them as a tuple."""
    states = (value,) if isinstance(value, str) else tuple(value)
    if not states:
        raise ValueError(f"{what}: no states given")
    for state in states:
        if state not in allowed:
            raise ValueError(f"{what}: unknown state {state!r}")
    return states


def check_state(value: Any, allowed: tuple, what: str) -> str:
    """One state in C{allowed}."""
    check_text(value, what)
    return check_states(value, allowed, what)[0]


def marks(count: int) -> str:
    """C{(?, ?, ...)} with C{count} placeholders."""
    return "(" + ", ".join("?" * count) + ")"
