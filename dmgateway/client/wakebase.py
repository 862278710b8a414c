"""What the simulator's wake sources share: listener bookkeeping.

A source (:mod:`.smsc`, :mod:`.sipuas`) keeps the wake-ups that arrive
before anyone listens (the oldest go first beyond :data:`MAX_PENDING`),
counts what happens to it, and closes its ports and connections on stop.
"""

from twisted.internet import defer
from twisted.logger import Logger

__all__ = ["MAX_PENDING", "WakeSourceBase", "secret_bytes"]

log = Logger(namespace="dmgateway.sim.wake")

#: wake-ups kept while nobody listens (the oldest go first)
MAX_PENDING = 10000


class WakeSourceBase:
    """Listener bookkeeping shared by the wake sources (pending wake-ups, counters)."""

    def __init__(self):
        self._listener = None
        self.pending = []
        self.counters = {}

    def _count(self, name, n=1):
        self.counters[name] = self.counters.get(name, 0) + n

    def listen(self, on_notification):
        """Deliver wake-ups to ``on_notification(destination, data)`` (and start if needed)."""
        self._listener = on_notification
        pending, self.pending = self.pending, []
        for destination, data in pending:
            self._call(destination, data)
        if not self._started:
            self.start().addErrback(
                lambda f: log.failure("wake source {kind} cannot listen", f, kind=self.kind))

    def _deliver(self, destination, data):
        self._count("notifications")
        if self._listener is None:
            if len(self.pending) >= MAX_PENDING:
                del self.pending[0]
            self.pending.append((destination, data))
        else:
            self._call(destination, data)

    def _close(self, ports, connections):
        """Stop listening on ``ports`` and close ``connections``; fires when all is done."""
        self._listener = None
        self._started = False
        waits = [defer.maybeDeferred(p.stopListening) for p in ports]
        for connection in list(connections):
            d = defer.Deferred()
            connection.lost.append(d)
            waits.append(d)
            connection.transport.loseConnection()
        return defer.DeferredList(waits).addCallback(lambda _: None)

    def _call(self, destination, data):
        try:
            self._listener(destination, data)
        except Exception:  # noqa: BLE001 - the runner's trouble must not kill the bearer
            log.failure("wake-up for {destination} not handled", destination=destination)



def secret_bytes(value):
    """A system_id or password as bytes (None: empty)."""
    return value if isinstance(value, bytes) else str(value or "").encode("utf-8")

