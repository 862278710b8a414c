"""The live sessions' deadlines, on one timer.

Every live DM session ends if its device stays silent for ``[gateway]
session_timeout`` seconds after the last message (or after it opened).  A
``callLater`` per session, reset at every message and cancelled at its end,
costs the reactor a DelayedCall, heap pushes and its cancellation
bookkeeping per session; :class:`SessionDeadlines` keeps them all in one
queue instead, with one ``callLater`` for the earliest.

All sessions share one timeout, so the deadlines come in the order they
are set: the queue is a deque, appended at its right.  (``session_timeout``
changes only with a restart; should it ever shrink while running, a
deadline earlier than the last one is put in its place: the queue stays
sorted either way.)  A session's entry is current while the
session's ``timer`` is that entry; a session armed again, or ended, leaves
its old entry behind, stale, and a stale entry is dropped when it reaches
the head, or all at once when they would outnumber the current ones (so a
flood of short sessions behind one silent device does not grow the queue
without bound: once a deadline is set it holds at most ``2 * armed + SLACK``
entries).

The timer fires at the head's deadline (or earlier, when the head it was
set for went stale: it then waits again for the new head), expiring every
current entry whose deadline has come, in the order they were set; a
session therefore expires at exactly the moment its own ``callLater`` would
have fired.
"""

import math
from bisect import insort
from collections import deque
from operator import attrgetter

from twisted.logger import Logger

log = Logger(namespace="dmgateway.deadlines")

#: stale entries tolerated beyond the current ones before the queue is compacted
SLACK = 64


class Deadline:
    """One setting of a session's deadline: ``when`` (clock seconds) its
    ``owner`` expires, unless the owner's ``timer`` is no longer this entry."""

    __slots__ = ("when", "owner")

    def __init__(self, when, owner):
        self.when = when
        self.owner = owner

    def active(self):
        """Whether this deadline still stands (not re-armed, cancelled or passed)."""
        return self.owner.timer is self


_when = attrgetter("when")


class SessionDeadlines:
    """Deadlines for owners with a ``timer`` attribute (``None`` when none is
    set): ``expire(owner)`` is called when one passes, from the ``clock``'s
    timer (the reactor, or a ``task.Clock`` in tests)."""

    def __init__(self, clock, expire):
        self.clock = clock
        self.expire = expire
        self._queue = deque()  # Deadline entries, by ``when`` (current and stale ones)
        self._armed = 0  # current entries: owners whose deadline is set
        self._call = None  # the DelayedCall that fires at ``_due`` (None: none pending)
        self._due = None

    def __len__(self):
        """The owners whose deadline is set."""
        return self._armed

    def arm(self, owner, timeout):
        """Set ``owner``'s deadline ``timeout`` seconds from now (replacing any it had)."""
        entry = Deadline(self.clock.seconds() + timeout, owner)
        if owner.timer is None:
            self._armed += 1
        owner.timer = entry
        queue = self._queue
        if queue and entry.when < queue[-1].when:
            insort(queue, entry, key=_when)  # a shorter timeout than before: keep the order
        else:
            queue.append(entry)
        head = queue[0]
        # (nearly always the head is current and the timer set: nothing to do)
        if head.owner.timer is not head or self._call is None or head.when < self._due \
                or len(queue) > 2 * self._armed + SLACK:
            self._tidy()

    def cancel(self, owner):
        """Forget ``owner``'s deadline, if it has one."""
        entry = owner.timer
        if entry is not None:
            owner.timer = None
            self._armed -= 1
            queue = self._queue
            if queue and queue[0] is entry:  # (the others leave when they reach the head)
                self._tidy()

    def stop(self):
        """Forget every deadline and stop the timer (the dispatcher stopping)."""
        for entry in self._queue:
            if entry.owner.timer is entry:
                entry.owner.timer = None
        self._queue.clear()
        self._armed = 0
        if self._call is not None:
            self._call.cancel()
            self._call = self._due = None

    def _tidy(self):
        """Drop the stale entries at the head (all of them, if they outnumber
        the current ones), and see that the timer fires by the head's deadline.

        With no deadline left the timer is left pending (a session opening
        soon has it at hand): it fires once, finds nothing and is not set
        again; :meth:`stop` cancels it."""
        queue = self._queue
        if len(queue) > 2 * self._armed + SLACK:
            self._queue = queue = deque(entry for entry in queue if entry.owner.timer is entry)
        while queue:
            head = queue[0]
            if head.owner.timer is head:
                if self._call is None or head.when < self._due:
                    self._wake_at(head.when)
                return
            queue.popleft()

    def _wake_at(self, when):
        if self._call is not None:
            self._call.cancel()
        now = self.clock.seconds()
        delay = when - now
        if now + delay > when:  # (rounded up: it must not fire after ``when``)
            delay = math.nextafter(delay, -math.inf)
        self._due = when
        self._call = self.clock.callLater(max(delay, 0.0), self._fire)

    def _fire(self):
        # the moment the timer was set for, were it a rounding error early
        now = max(self.clock.seconds(), self._due)
        self._call = self._due = None
        queue = self._queue
        due = []
        while queue and queue[0].when <= now:
            due.append(queue.popleft())
        self._tidy()
        for entry in due:
            owner = entry.owner
            # (still current: an expiry before it may have ended or re-armed it,
            # as it could cancel or reset another session's DelayedCall)
            if owner.timer is entry:
                owner.timer = None
                self._armed -= 1
                try:
                    self.expire(owner)
                except Exception:
                    log.failure("expiring a session failed")
