"""The event log: appending events and waking whoever reads them.

Events are rows of the store (``append_event``, ``events_after``); this
module adds what happens around them in one process:

* :meth:`EventLog.append` writes one event and wakes its readers, here and
  in the other processes (:meth:`EventLog.announce` does the waking for
  events this process wrote in a store batch of its own);
* :meth:`EventLog.appended` wakes the readers of this process only (for
  events another process announced, or a batch the others need not hear of);
* the readers are *listeners*: long-lived ones (the webhook sender, the
  delegation flow) registered with :meth:`EventLog.listen`, and one-shot
  ones, the long-polls of ``GET /api/v1/events`` (:meth:`EventLog.wait`),
  which leave the list when woken, timed out or cancelled.

The outbox, the webhooks, the REST handlers and the dispatcher all share
one :class:`EventLog`; none of them reaches into another to wake readers.
"""

from typing import Callable, List, Optional

from twisted.internet import defer
from twisted.logger import Logger

log = Logger(namespace="dmgateway.events")


class _Listener:
    """One entry of the log's listener list: a callable, and for a
    long-poll the timer that ends its wait (``None`` for a long-lived one)."""

    __slots__ = ("call", "timer")

    def __init__(self, call: Callable[[], None], timer=None) -> None:
        self.call = call
        self.timer = timer

    @property
    def once(self) -> bool:
        return self.timer is not None


class EventLog:
    """Append events to ``store`` and wake their readers (one per process)."""

    def __init__(self, store, clock) -> None:
        self.store = store
        self.clock = clock
        #: called after each :meth:`append` of ours to tell the other
        #: processes (set by the cluster hooks when ``[gateway] cluster`` is on)
        self.broadcast: Optional[Callable[[], None]] = None
        self._listeners: List[_Listener] = []

    async def append(self, type_: str, device_id: Optional[str], payload: dict) -> None:
        """Append one event now and wake its readers, here and in the other processes."""
        await self.store.append_event(type_, device_id, self.clock.seconds(), payload)
        self.announce()

    def announce(self) -> None:
        """This process appended events (in a store batch of its own): wake the
        readers here and in the other processes."""
        self.appended()
        if self.broadcast is not None:
            self.broadcast()

    def appended(self) -> None:
        """Events were appended (by a store batch, another service or process): wake the readers here."""
        if not self._listeners:
            return  # (nobody reads: most sessions' events, with no webhook and no long-poll)
        listeners = list(self._listeners)
        self._listeners = [entry for entry in listeners if not entry.once]
        for entry in listeners:
            if entry.once and entry.timer.active():
                entry.timer.cancel()
            try:
                entry.call()
            except Exception:  # one listener's bug must not keep the others (or the appender) waiting
                log.failure("event listener failed")

    def listen(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every event appended from now on."""
        self._listeners.append(_Listener(listener))

    def wait(self, after: int, limit: int, wait: float) -> "defer.Deferred[list]":
        """Up to ``limit`` events with ``seq > after`` (store rows, in ``seq``
        order): at once if there are any, else when one is appended, or
        ``[]`` after ``wait`` seconds (at once if ``wait`` is 0).  Cancelling
        the Deferred releases the wait."""
        return defer.ensureDeferred(self._wait(after, limit, wait))

    async def _wait(self, after, limit, wait):
        woken = None
        if wait > 0:
            # registered before the query: an event appended while it runs still wakes us
            woken = defer.Deferred(lambda d: self._drop(entry))

            def wake():
                if not woken.called:
                    woken.callback(None)

            entry = _Listener(wake)
            entry.timer = self.clock.callLater(wait, self._timed_out, entry)
            self._listeners.append(entry)
        try:
            events = await self.store.events_after(after, limit)
        except BaseException:
            if woken is not None:
                self._drop(entry)
            raise
        if events or woken is None:
            if woken is not None:
                self._drop(entry)
            return events
        await woken
        return await self.store.events_after(after, limit)

    def _timed_out(self, entry):
        self._drop(entry)
        entry.call()

    def _drop(self, entry):
        if entry in self._listeners:
            self._listeners.remove(entry)
        if entry.timer.active():
            entry.timer.cancel()

    def stop(self) -> None:
        """Release every long-poll now (the daemon stops); long-lived listeners stay."""
        waiting = [entry for entry in self._listeners if entry.once]
        self._listeners = [entry for entry in self._listeners if not entry.once]
        for entry in waiting:
            if entry.timer.active():
                entry.timer.cancel()
            entry.call()
