"""Wake-ups between gateway processes: PostgreSQL ``LISTEN``/``NOTIFY``.

Nothing is *carried* by a signal: the store holds every event, job and
notification; a signal only says "look now" so that another process reacts
within a second instead of at its next scan.  A lost signal (listener
reconnecting) costs latency, never data: every reader also polls.

Channels (payloads are short text):

* ``dmgw_events``  an event was appended (long-polls, webhooks);
* ``dmgw_outbox``  a notification was queued (the process holding a bearer);
* ``dmgw_jobs``    ``DEVICE_ID`` had a job queued (the process where the
  device is in a session adds it to that session);
* ``dmgw_sessions`` ``DEVICE_ID\nTOKEN``: the device authenticated in the
  session ``TOKEN``; any other session of it (on another node) is superseded;
* ``dmgw_cancels`` ``DEVICE_ID\nJOB_ID``: the job, already sent in a session
  of the device, was cancelled; the process holding that session cancels
  what is left of it when the session ends.

:class:`PostgresSignals` listens on its own connection in a thread of its
own (``conn.notifies`` blocks) and sends through the store's pool;
:class:`LocalSignals` (one process) delivers to its own handlers at once.
"""

import threading

from twisted.internet import defer
from twisted.logger import Logger

log = Logger(namespace="dmgateway.cluster")

EVENTS = "dmgw_events"
OUTBOX = "dmgw_outbox"
JOBS = "dmgw_jobs"
SESSIONS = "dmgw_sessions"
CANCELS = "dmgw_cancels"
CHANNELS = (EVENTS, OUTBOX, JOBS, SESSIONS, CANCELS)

#: longest payload PostgreSQL accepts is 8000 bytes; ours are device ids
MAX_PAYLOAD = 1000


class _Handlers:
    def __init__(self):
        self._handlers = {}

    def on(self, channel, handler):
        """Call ``handler(payload)`` in the reactor thread for each signal on ``channel``."""
        self._handlers.setdefault(channel, []).append(handler)

    def _deliver(self, channel, payload):
        for handler in self._handlers.get(channel, ()):
            try:
                handler(payload)
            except Exception:
                log.failure("signal handler for {channel} failed", channel=channel)


class LocalSignals(_Handlers):
    """Signals within one process (SQLite): handlers run at once."""

    def start(self):
        pass

    def stop(self):
        return defer.succeed(None)

    def send(self, channel, payload=""):
        self._deliver(channel, payload)
        return defer.succeed(None)


class PostgresSignals(_Handlers):
    """Signals among every process on one PostgreSQL database.

    ``connect()`` opens a new psycopg connection (in the listener thread);
    ``store`` (a :class:`~dmgateway.store.base.Store`) sends.  A process
    also hears its own signals, so a handler serves local and remote
    senders alike.
    """

    def __init__(self, connect, store, reactor, poll=0.5, retry=1.0):
        super().__init__()
        self._connect = connect
        self._store = store
        self._reactor = reactor
        self._poll = poll
        self._retry = retry
        self._running = threading.Event()
        self._thread = None
        self.listening = threading.Event()  # set while LISTEN is in force (tests wait on it)

    def start(self):
        self._running.set()
        self._thread = threading.Thread(target=self._listen, name="dmgateway-signals", daemon=True)
        self._thread.start()

    def stop(self):
        self._running.clear()
        thread, self._thread = self._thread, None
        if thread is None:
            return defer.succeed(None)
        from twisted.internet import threads

        return threads.deferToThread(thread.join, self._poll + 5)

    def send(self, channel, payload=""):
        payload = payload[:MAX_PAYLOAD]
        d = self._store.run_interaction("signal", _notify_txn, channel, payload)
        return d.addErrback(self._send_failed, channel)

    def _send_failed(self, failure, channel):
        # the store keeps the work; the other processes find it at their next scan
        log.warn("signal {channel} not sent: {error}", channel=channel, error=str(failure.value))

    # -- the listener thread --------------------------------------------------------

    def _listen(self):
        failing = False
        while self._running.is_set():
            conn = None
            try:
                conn = self._connect()
                conn.autocommit = True
                for channel in CHANNELS:
                    conn.execute("LISTEN %s" % (channel,))
                self.listening.set()
                if failing:
                    failing = False
                    self._reactor.callFromThread(log.info, "signals: listening again")
                while self._running.is_set():
                    for note in conn.notifies(timeout=self._poll):
                        self._reactor.callFromThread(self._deliver, note.channel, note.payload)
            except Exception as e:
                self.listening.clear()
                if not failing:
                    failing = True
                    self._reactor.callFromThread(
                        log.warn, "signals: listener connection failed ({error}); retrying",
                        error=str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
                threading.Event().wait(self._retry)  # no busy loop while the server is away
            finally:
                self.listening.clear()
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass


def _notify_txn(txn, channel, payload):
    txn.execute("SELECT pg_notify(?, ?)", (channel, payload))


def signals_for(store_uri, store, reactor):
    """Cross-process signals for the store ``store_uri`` (local ones for SQLite)."""
    if store_uri.startswith(("postgresql:", "postgres:")):
        from dmgateway.cluster.lease import postgres_connector

        return PostgresSignals(postgres_connector(store_uri, "dmgateway-signals"), store, reactor)
    return LocalSignals()
