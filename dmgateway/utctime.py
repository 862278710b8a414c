"""Epoch seconds as ISO 8601 UTC text, cheaply (pure).

A busy gateway stamps many lines and records in each second: the date and
time are formatted once per second, only the fraction per call.  The text is
what ``datetime.fromtimestamp(seconds, timezone.utc)`` gives, rounded as it
rounds (microseconds, half to even), for every year from 1000.
"""

import math
from datetime import datetime, timezone

_last = [None, None]  # (the last whole second formatted, its text up to the ".")


def utc_parts(seconds):
    """C{(text, micros)}: C{"YYYY-MM-DDTHH:MM:SS."} of C{seconds} and its microseconds."""
    fraction, whole = math.modf(seconds)
    micros = round(fraction * 1e6)  # half to even, as datetime
    if micros >= 1000000:
        whole += 1.0
        micros -= 1000000
    elif micros < 0:
        whole -= 1.0
        micros += 1000000
    cached = _last
    if cached[0] != whole:
        s = datetime.fromtimestamp(whole, tz=timezone.utc)
        cached = (whole, "%04d-%02d-%02dT%02d:%02d:%02d." % (s.year, s.month, s.day, s.hour, s.minute, s.second))
        _last[:] = cached
    return cached[1], micros
