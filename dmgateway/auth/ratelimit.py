"""Lock out keys (devices, user names, addresses) after repeated failures.

Pure: the caller passes the current time (seconds, any monotonic origin) to
every call.  Memory is bounded: keys whose failures and lockout are over
are forgotten as time passes, and at most ``max_keys`` keys are tracked,
the least recently touched being dropped first.
"""

from collections import OrderedDict, deque
from collections.abc import Hashable

__all__ = ["FailureLimiter"]


class _Entry:
    __slots__ = ("failures", "locked_until")

    def __init__(self):
        self.failures = deque()
        self.locked_until = None

    def expired(self, now, window):
        if self.locked_until is not None and now < self.locked_until:
            return False
        return not self.failures or self.failures[-1] <= now - window


class FailureLimiter:
    """Count failures per key in a sliding window; lock a key out when full.

    ``max_failures`` failures within ``window`` seconds lock the key for
    ``lockout`` seconds.  Failures while locked do not extend the lockout.
    """

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 300.0,
        lockout: float = 900.0,
        max_keys: int = 10000,
    ):
        if max_failures < 1 or max_keys < 1:
            raise ValueError("max_failures and max_keys must be positive")
        if window <= 0 or lockout < 0:
            raise ValueError("window must be positive and lockout not negative")
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.max_keys = max_keys
        self._entries = OrderedDict()  # least recently touched first

    def __len__(self):
        """How many keys are tracked right now."""
        return len(self._entries)

    def __contains__(self, key):
        return key in self._entries

    def _expire(self, now):
        # Entries are ordered by last touch; stop at the first live one.  A
        # later expired entry waits for its turn (or for the cap).
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if not entry.expired(now, self.window):
                break
            del self._entries[key]

    def failure(self, key: Hashable, now: float) -> bool:
        """Record a failure for ``key``; True if the key is now locked out."""
        self._expire(now)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        if entry.locked_until is not None:
            if now < entry.locked_until:
                return True
            entry.locked_until = None
            entry.failures.clear()
        self._entries.move_to_end(key)
        failures = entry.failures
        failures.append(now)
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        locked = False
        if len(failures) >= self.max_failures:
            entry.locked_until = now + self.lockout
            failures.clear()
            locked = self.lockout > 0
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
        return locked

    def blocked(self, key: Hashable, now: float) -> bool:
        """True while ``key`` is locked out."""
        self._expire(now)
        entry = self._entries.get(key)
        if entry is None or entry.locked_until is None:
            return False
        if now < entry.locked_until:
            return True
        del self._entries[key]
        return False

    def success(self, key: Hashable) -> None:
        """Forget ``key``'s failures (a successful authentication)."""
        self._entries.pop(key, None)

    def failures(self, key: Hashable, now: float) -> int:
        """How many failures of ``key`` fall within the window at ``now``."""
        entry = self._entries.get(key)
        if entry is None:
            return 0
        return sum(1 for t in entry.failures if t > now - self.window)

    def keys(self):
        """The keys tracked now (a copy)."""
        return list(self._entries)

    def locks(self, now: float):
        """``(key, locked_until)`` for every key locked out at ``now``."""
        return [
            (key, entry.locked_until)
            for key, entry in self._entries.items()
            if entry.locked_until is not None and now < entry.locked_until
        ]
