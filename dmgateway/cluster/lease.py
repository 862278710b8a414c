"""Once-per-cluster work: a named lease held by one process at a time.

Several gateway processes share one PostgreSQL store.  Some work must run
in exactly one of them: the SMPP link (one bind per SMSC account), the
renotification/expiry timers, webhook delivery (once, in order), campaign
waves.  A :class:`PostgresLease` holds a PostgreSQL *session-level advisory
lock* on a connection of its own:

* the lock is the lease: PostgreSQL grants it to one session at a time and
  releases it when that session ends, so a holder killed with ``kill -9``
  (its socket closed by the kernel) frees it at once;
* the holder checks its connection every ``interval`` seconds (a heartbeat
  query with a statement timeout); if the check fails it calls
  ``on_lost`` and drops the connection, which ends its claim;
* the others try to take the lock every ``interval`` seconds, so a dead
  holder is replaced within ``interval`` seconds of PostgreSQL noticing
  (at once for a closed socket; TCP keepalives bound a silent peer).

Callers choose ``interval`` as a third of the takeover time they promise.
:class:`LocalLease` is the one-process form (SQLite): always held.

Usage (issue 18's campaign waves use the same helper)::

    lease = lease_for(store_uri, "campaign-waves", reactor, interval=5,
                      on_acquired=start_waves, on_lost=stop_waves)
    lease.start()   # also: lease.held, yield lease.stop()
"""

import hashlib

from twisted.application import service
from twisted.internet import defer, task, threads
from twisted.logger import Logger

log = Logger(namespace="dmgateway.cluster")

#: seconds any one lease query may take before the check counts as failed
STATEMENT_TIMEOUT_MS = 3000


def lease_key(name):
    """The 64-bit advisory lock key of lease ``name`` (stable across processes)."""
    digest = hashlib.sha256(b"dmgateway-lease:" + name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class LocalLease:
    """The lease of a one-process gateway: held from ``start`` to ``stop``."""

    def __init__(self, name, on_acquired=None, on_lost=None):
        self.name = name
        self.held = False
        self._on_acquired = on_acquired
        self._on_lost = on_lost

    def start(self):
        self.held = True
        if self._on_acquired is not None:
            self._on_acquired()

    def stop(self):
        if self.held:
            self.held = False
            if self._on_lost is not None:
                self._on_lost()
        return defer.succeed(None)


class PostgresLease:
    """Lease ``name`` among the processes connected to one PostgreSQL database.

    ``connect()`` returns a new psycopg connection (called in a thread);
    ``on_acquired()`` / ``on_lost()`` run in the reactor thread when this
    process takes or loses the lease.
    """

    def __init__(self, name, connect, reactor, interval, on_acquired=None, on_lost=None):
        self.name = name
        self.key = lease_key(name)
        self.held = False
        self.interval = interval
        self._connect = connect
        self._reactor = reactor
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._conn = None
        self._loop = None
        self._pass = None
        self._failing = False  # the last attempt met an unreachable store (logged once)

    # -- life cycle -------------------------------------------------------------

    def start(self):
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = self._reactor
        self._loop.start(self.interval, now=True).addErrback(
            lambda f: log.failure("lease {lease} loop stopped", f, lease=self.name))

    @defer.inlineCallbacks
    def stop(self):
        """Release the lease (if held) and close the connection."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._pass is not None:
            yield self._pass
        was_held = self.held
        self._lose(notify=was_held)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            yield self._in_thread(_close, conn)

    def check(self):
        """One pass: take the lease if free, or confirm we still hold it."""
        if self._pass is not None:
            return self._pass
        d = self._holding() if self.held else self._acquiring()
        d.addErrback(lambda f: log.failure("lease {lease} pass failed", f, lease=self.name))

        def done(_):
            self._pass = None

        self._pass = d
        d.addBoth(done)
        return d

    # -- the two states -----------------------------------------------------------

    @defer.inlineCallbacks
    def _acquiring(self):
        try:
            if self._conn is None:
                self._conn = yield self._in_thread(self._open)
            got = yield self._in_thread(_try_lock, self._conn, self.key)
        except Exception as e:
            self._drop_connection()
            if not self._failing:
                self._failing = True
                log.warn("lease {lease}: store unreachable, cannot take it ({error})",
                         lease=self.name, error=_reason(e))
            return
        self._failing = False
        if got and self._loop is not None and self._loop.running:
            self.held = True
            log.info("lease {lease}: taken by this process", lease=self.name)
            if self._on_acquired is not None:
                self._on_acquired()
        elif got:  # stopped while the query ran
            yield self._in_thread(_unlock, self._conn, self.key)

    @defer.inlineCallbacks
    def _holding(self):
        try:
            yield self._in_thread(_still_held, self._conn, self.key)
        except Exception as e:
            log.warn("lease {lease}: lost ({error}); another process may take it",
                     lease=self.name, error=_reason(e))
            self._lose(notify=True)
            self._drop_connection()

    # -- helpers --------------------------------------------------------------------

    def _lose(self, notify):
        if self.held:
            self.held = False
            if notify and self._on_lost is not None:
                self._on_lost()

    def _drop_connection(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            self._in_thread(_close, conn).addErrback(lambda f: None)

    def _open(self):
        conn = self._connect()
        conn.autocommit = True
        conn.execute("SET statement_timeout = %d" % (STATEMENT_TIMEOUT_MS,))
        return conn

    def _in_thread(self, f, *args):
        return threads.deferToThreadPool(self._reactor, self._reactor.getThreadPool(), f, *args)


class LostLease(Exception):
    """This session no longer holds the advisory lock."""


def _try_lock(conn, key):
    return bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0])


def _still_held(conn, key):
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND pid = pg_backend_pid() AND objsubid = 1 "
        "AND ((classid::bigint << 32) | objid::bigint) = %s",
        (key,),
    ).fetchone()
    if not row[0]:
        raise LostLease("advisory lock no longer held")


def _unlock(conn, key):
    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _close(conn):
    try:
        conn.close()
    except Exception:
        pass


def _reason(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def postgres_connector(store_uri, application_name="dmgateway-lease"):
    """A function opening a new connection to the store ``store_uri`` (with keepalives)."""
    import psycopg

    from dmgateway.store.postgres import parse_postgres_uri

    conninfo, _low, _high, extra = parse_postgres_uri(store_uri)
    extra.setdefault("keepalives", 1)
    extra.setdefault("keepalives_idle", 5)
    extra.setdefault("keepalives_interval", 2)
    extra.setdefault("keepalives_count", 3)
    extra["application_name"] = application_name

    def connect():
        return psycopg.connect(conninfo, **extra)

    return connect


class LeasedService(service.Service):
    """Runs ``inner`` (a Twisted service) only while this process holds ``lease``.

    ``make_lease(on_acquired, on_lost)`` builds the lease; the inner service
    starts when it is taken and stops when it is lost or at shutdown.
    """

    def __init__(self, inner, make_lease):
        self.inner = inner
        self.lease = make_lease(self._acquired, self._lost)
        self._stopping_inner = None
        self.on_taken = None  # called after the inner service started on taking the lease

    @property
    def held(self):
        return self.lease.held

    def startService(self):
        super().startService()
        self.lease.start()

    @defer.inlineCallbacks
    def stopService(self):
        super().stopService()
        yield self.lease.stop()
        if self._stopping_inner is not None:
            yield self._stopping_inner

    def _acquired(self):
        if not self.inner.running:
            self.inner.startService()
        if self.on_taken is not None:
            self.on_taken()

    def _lost(self):
        if self.inner.running:
            self._stopping_inner = defer.maybeDeferred(self.inner.stopService)


def lease_for(store_uri, name, reactor, interval, on_acquired=None, on_lost=None):
    """The lease ``name`` for the store ``store_uri``: PostgreSQL-wide, or this process's on SQLite."""
    if store_uri.startswith(("postgresql:", "postgres:")):
        return PostgresLease(name, postgres_connector(store_uri), reactor, interval,
                             on_acquired=on_acquired, on_lost=on_lost)
    return LocalLease(name, on_acquired=on_acquired, on_lost=on_lost)
