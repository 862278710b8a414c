"""
Campaign rollout rules (pure): the policy a campaign is created with, which
wave each device belongs to, the maintenance window, how many devices may
start now, and when a finished wave pauses the campaign.

Policy fields (DESIGN §5 "Device functions"):

* ``waves``: cumulative percentages of the selection, increasing, ending
  at 100 (default ``[100]``: one wave); ``[1, 10, 100]`` starts 1% of the
  devices, then up to 10%, then all;
* ``rate_per_minute``: devices started per minute at most (default 60);
* ``concurrency``: devices in progress at once at most (default 100);
* ``pause_failure_ratio``: a finished wave whose failed share (failed and
  expired over finished) is above this pauses the campaign (default 1.0:
  never);
* ``window``: ``{"start": "HH:MM", "end": "HH:MM"}`` in UTC, devices start
  only inside it (``start`` after ``end`` wraps past midnight);
* ``timeout``: seconds each device's operation may take (default: the
  gateway's ``[functions] timeout``).
"""

import math
import re
from dataclasses import dataclass
from typing import Optional, Tuple

__all__ = ["PolicyError", "Policy", "check_policy", "wave_of", "in_window", "starts_allowed", "wave_verdict"]

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
MAX_WAVES = 20
MAX_RATE = 1_000_000


class PolicyError(ValueError):
    """The policy is not usable; the message says why."""


@dataclass(frozen=True)
class Policy:
    waves: Tuple[float, ...] = (100.0,)
    rate_per_minute: float = 60.0
    concurrency: int = 100
    pause_failure_ratio: float = 1.0
    window: Optional[Tuple[int, int]] = None  # (start, end) minutes of the UTC day
    timeout: Optional[float] = None

    def as_json(self):
        out = {
            "waves": list(self.waves),
            "rate_per_minute": self.rate_per_minute,
            "concurrency": self.concurrency,
            "pause_failure_ratio": self.pause_failure_ratio,
        }
        if self.window is not None:
            out["window"] = {"start": "%02d:%02d" % divmod(self.window[0], 60),
                             "end": "%02d:%02d" % divmod(self.window[1], 60)}
        if self.timeout is not None:
            out["timeout"] = self.timeout
        return out


def _number(value, name, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise PolicyError("%r must be a number from %s to %s" % (name, low, high))
    return value


def check_policy(raw):
    """The :class:`Policy` of a request's ``policy`` object (None: defaults)."""
    if raw is None:
        return Policy()
    if not isinstance(raw, dict):
        raise PolicyError("'policy' must be an object")
    unknown = set(raw) - {"waves", "rate_per_minute", "concurrency", "pause_failure_ratio", "window", "timeout"}
    if unknown:
        raise PolicyError("unknown policy fields: %s" % (", ".join(sorted(unknown)),))
    waves = raw.get("waves", [100])
    if not isinstance(waves, list) or not 1 <= len(waves) <= MAX_WAVES:
        raise PolicyError("'waves' must list 1 to %d percentages" % (MAX_WAVES,))
    waves = tuple(float(_number(w, "waves", 0.001, 100)) for w in waves)
    if any(b <= a for a, b in zip(waves, waves[1:])) or waves[-1] != 100:
        raise PolicyError("'waves' must increase and end at 100")
    window = raw.get("window")
    if window is not None:
        if not isinstance(window, dict) or set(window) != {"start", "end"}:
            raise PolicyError("'window' must be {\"start\": \"HH:MM\", \"end\": \"HH:MM\"} (UTC)")
        minutes = []
        for key in ("start", "end"):
            match = _HHMM.match(window[key]) if isinstance(window[key], str) else None
            if match is None:
                raise PolicyError("window %r must be HH:MM" % (key,))
            minutes.append(int(match.group(1)) * 60 + int(match.group(2)))
        if minutes[0] == minutes[1]:
            raise PolicyError("the window must not be empty")
        window = tuple(minutes)
    timeout = raw.get("timeout")
    return Policy(
        waves=waves,
        rate_per_minute=float(_number(raw.get("rate_per_minute", 60), "rate_per_minute", 0.01, MAX_RATE)),
        concurrency=int(_number(raw.get("concurrency", 100), "concurrency", 1, 10_000_000)),
        pause_failure_ratio=float(_number(raw.get("pause_failure_ratio", 1.0), "pause_failure_ratio", 0, 1)),
        window=window,
        timeout=None if timeout is None else float(_number(timeout, "timeout", 60, 30 * 86400)),
    )


def policy_from_json(stored):
    """The :class:`Policy` of a stored campaign (written by :meth:`Policy.as_json`)."""
    return check_policy(stored)


def wave_of(position, total, waves):
    """The wave (0-based) of the device at ``position`` (0-based) of ``total``."""
    for index, percent in enumerate(waves):
        if position < math.ceil(total * percent / 100.0):
            return index
    return len(waves) - 1


def in_window(seconds, window):
    """Whether the time ``seconds`` (epoch) is inside ``window`` (None: always)."""
    if window is None:
        return True
    minute = int(seconds // 60) % (24 * 60)
    start, end = window
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def starts_allowed(now, next_start, rate_per_minute, in_progress, concurrency, burst):
    """
    How many devices may start now, and the next ``next_start``: the rate
    limit spaces starts ``60 / rate`` seconds apart (at most ``burst`` at
    once after an idle time), the concurrency cap bounds those in progress.
    """
    spacing = 60.0 / rate_per_minute
    room = max(0, concurrency - in_progress)
    if now < next_start or room == 0:
        return 0, next_start
    due = int((now - next_start) / spacing) + 1
    count = min(due, room, max(1, burst))
    start_from = max(next_start, now - spacing * (max(1, burst) - 1))
    return count, start_from + spacing * count


def wave_verdict(finished, failed, threshold):
    """``"pause"`` when a finished wave failed more than ``threshold`` (a share), else ``"next"``."""
    if finished and failed / finished > threshold:
        return "pause"
    return "next"
