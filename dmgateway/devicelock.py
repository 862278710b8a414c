"""The lock of one device's DM messages (and of what ends its session from
outside: its timeout, a DELETE, another node's superseding session).

Twisted's :class:`~twisted.internet.defer.DeferredLock` (first come, first
served), whose hand-over does not nest.  ``DeferredLock.release()`` resumes
the next waiter in its own frame: a waiter whose work then runs at once (the
store's transactions inline) releases in turn, and resumes the next one some
dozens of frames deeper.  A few hundred messages of one device queued behind
a slow write (anyone may send them: the lock is taken before
authentication) overflowed the stack, and the RecursionError left the lock
held for good: the device's messages, an operator's DELETE and the
gateway's stop waited for ever.  Here a release made while the lock is
being handed over leaves the next hand-over to that outer release's loop.
"""

from twisted.internet import defer


class DeviceLock(defer.DeferredLock):
    """A :class:`~twisted.internet.defer.DeferredLock` handing over in a loop (see the module docstring)."""

    _handing = False  # release() is resuming a waiter
    _again = False  # that waiter released it already: the loop hands over once more

    def release(self) -> None:
        assert self.locked, "Tried to release an unlocked lock"
        if self._handing:
            self._again = True  # (still locked until the loop, a few frames up, goes on)
            return
        if not self.waiting:  # (nearly always: as cheap as DeferredLock's)
            self.locked = False
            return
        self._handing = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self.locked = False
                if self.waiting:
                    self.locked = True
                    self.waiting.pop(0).callback(self)
        finally:
            self._handing = False


class DeviceBusy(Exception):
    """The device's lock was not had within the time given: one of its
    messages is still being handled (its write waits on the database)."""
