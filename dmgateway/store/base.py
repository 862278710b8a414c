"""
The store: devices, jobs, sessions, events, the notification outbox and
webhook deliveries, behind one interface with an SQLite and a PostgreSQL
engine (L{dmgateway.store.sqlite}, L{dmgateway.store.postgres}).

    store = yield open_store("sqlite:/var/lib/dmgateway/store.db")
    created = yield store.put_device("IMEI:350000000000001", server_id=...,
                                     client_auth=ClientAuth(...),
                                     server_auth=ServerAuth(...))

Every public method returns a L{Deferred} and runs as one transaction in
the engine's thread pool; the SQL lives in L{dmgateway.store.queries} as
C{_..._txn} functions shared by both engines.  Arguments of the wrong type
or value fail with C{TypeError}/C{ValueError}; the database's own failures
come out as L{StoreError} (L{Conflict} for constraint violations), never as
an engine's exception.  Bookkeeping times (C{created}, C{updated}) come
from the clock given to L{open_store}; times with a meaning for the caller
(session start, event time, "due by") are arguments.
"""

from __future__ import annotations

import abc
from typing import Any, Iterable, Optional, Sequence

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from .migrations import Migration, load_migrations
from .model import PENDING_JOB_STATES, SchemaTooNew, StoreClosed, StoreError
from .campaigns import CampaignQueries
from .functions import FirmwareQueries, FunctionQueries
from .inventory import InventoryQueries
from .queries import Queries

__all__ = ["Store", "Txn", "Batch"]

log = Logger()


def _check_args(args: tuple) -> None:
    # Both engines must accept exactly the same values: PostgreSQL text
    # cannot hold NUL and neither engine can store lone surrogates.
    for arg in args:
        if isinstance(arg, str):
            if "\x00" in arg:
                raise ValueError("text values cannot contain NUL characters")
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("text values must be valid Unicode") from None


class Txn:
    """
    One transaction as the C{_..._txn} functions see it: SQL with C{?}
    placeholders (translated for the engine), rows as dicts.
    """

    __slots__ = ("cursor", "_store")

    def __init__(self, cursor: Any, store: "Store"):
        self.cursor = cursor
        self._store = store

    def execute(self, sql: str, args: Iterable = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        args = tuple(args)
        _check_args(args)
        self.cursor.execute(self._store._sql(sql), args)
        return self.cursor.rowcount

    def fetchall(self, sql: str, args: Iterable = ()) -> list[dict]:
        """Run a query; return every row as a dict keyed by column name."""
        self.execute(sql, args)
        names = [column[0] for column in self.cursor.description]
        return [dict(zip(names, row)) for row in self.cursor.fetchall()]

    def fetchone(self, sql: str, args: Iterable = ()) -> Optional[dict]:
        """Run a query; return its first row as a dict, or L{None}."""
        rows = self.fetchall(sql, args)
        return rows[0] if rows else None

    def insert(self, sql: str, args: Iterable, id_column: str) -> int:
        """Run an C{INSERT} of one row; return its generated C{id_column}."""
        args = tuple(args)
        _check_args(args)
        return self._store._insert_txn(self, sql, args, id_column)


class Store(Queries, InventoryQueries, FunctionQueries, FirmwareQueries, CampaignQueries, abc.ABC):
    """
    The persistent store; build one with L{open_store}.

    @ivar engine: C{"sqlite"} or C{"postgresql"}.
    @ivar description: where the data lives, without any password.
    """

    engine: str = ""
    #: Column types that fill the placeholders of the migrations.
    column_types: dict[str, str] = {}

    def __init__(self, pool: Any, clock: Any, description: str):
        """
        @param pool: an C{adbapi.ConnectionPool} of this engine.
        @param clock: an C{IReactorTime} provider for bookkeeping times.
        """
        self._pool = pool
        self._clock = clock
        self.description = description
        self._closed = False
        self._pending: set[Deferred] = set()
        #: C{on_transaction(seconds, failed)} after every transaction (metrics)
        self.on_transaction = None
        self._close_waiters: Optional[list[Deferred]] = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

    # -- engine hooks --------------------------------------------------------

    @abc.abstractmethod
    def _sql(self, sql: str) -> str:
        """Translate C{?} placeholders into the engine's parameter style."""

    @abc.abstractmethod
    def _begin_txn(self, cursor: Any) -> None:
        """Start the transaction the interaction runs in (if the engine needs it)."""

    @abc.abstractmethod
    def _lock_migrations_txn(self, txn: Txn) -> None:
        """Keep other processes from migrating until this transaction ends."""

    @abc.abstractmethod
    def _insert_txn(self, txn: Txn, sql: str, args: tuple, id_column: str) -> int:
        """Insert one row and return its generated C{id_column}."""

    @abc.abstractmethod
    def _translate_error(self, error: BaseException) -> Optional[StoreError]:
        """The L{StoreError} for an engine exception, or L{None} to let it through."""

    # -- running transactions -------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether L{close} was called."""
        return self._closed

    def _now(self) -> float:
        return self._clock.seconds()

    def run_interaction(self, desc: str, func, *args: Any) -> Deferred:
        """
        Run C{func(txn, *args)} in one transaction (commit on return,
        rollback on exception) and fire with its result.

        C{txn} is a L{Txn}.  This is how every method below works; call it
        directly only for one-off maintenance and tests.

        @param desc: what the work is, for error messages.
        """
        if self._closed:
            return defer.fail(StoreClosed(f"store is closed ({desc})"))
        d = self._pool.runInteraction(self._interact, func, args)
        if self.on_transaction is not None:
            d.addBoth(self._timed, self._clock.seconds())
        d.addErrback(self._failed)
        self._pending.add(d)
        d.addBoth(self._settled, d)
        return d

    def batch(self) -> "Batch":
        """
        Several calls in ONE transaction: call the store's methods on the
        returned L{Batch} (they are recorded, not run), then C{commit()}
        fires with the list of their results, in order.  All of them take
        effect, or none.
        """
        return Batch(self)

    def _batch_txn(self, txn: Txn, work: list) -> list:
        return [func(txn, *args) for _desc, func, args in work]

    def _interact(self, cursor: Any, func, args: tuple) -> Any:
        self._begin_txn(cursor)
        return func(Txn(cursor, self), *args)

    def _failed(self, failure):
        error = failure.value
        if isinstance(error, (StoreError, ValueError, TypeError)):
            return failure
        translated = self._translate_error(error)
        if translated is None:
            return failure
        raise translated

    def _timed(self, result: Any, started: float) -> Any:
        from twisted.python.failure import Failure

        try:
            self.on_transaction(self._clock.seconds() - started, isinstance(result, Failure))
        except Exception:
            log.failure("store transaction observer failed")
        return result

    def _settled(self, result: Any, d: Deferred) -> Any:
        self._pending.discard(d)
        return result

    def close(self) -> Deferred:
        """
        Refuse new work, let running transactions finish, then close the
        connections.  Later calls of any method fail with L{StoreClosed};
        closing again is harmless.

        @return: fires with L{None} once everything is closed.
        """
        waiter: Deferred = Deferred()
        if self._close_waiters is None:
            self._closed = True
            self._close_waiters = [waiter]
            drained = defer.DeferredList(list(self._pending), consumeErrors=False)
            drained.addCallback(self._shut)
        elif self._pool is None:
            waiter.callback(None)
        else:
            self._close_waiters.append(waiter)
        return waiter

    def _shut(self, _: Any) -> None:
        pool, self._pool = self._pool, None
        waiters, self._close_waiters = self._close_waiters or [], []
        try:
            pool.close()
        finally:
            for waiter in waiters:
                waiter.callback(None)

    # -- schema ------------------------------------------------------------

    def migrate(self, migrations: Optional[Sequence[Migration]] = None) -> Deferred:
        """
        Apply the migrations this database lacks, in order, in one
        transaction (others wait; on PostgreSQL by an advisory lock).

        L{open_store} calls this.

        @param migrations: default L{load_migrations}().
        @return: fires with the list of versions applied (empty if none).
        @raise SchemaTooNew: the database has a version this code lacks.
        """
        if migrations is None:
            migrations = load_migrations()
        return self.run_interaction("migrate", self._migrate_txn, list(migrations), self._now())

    def _migrate_txn(self, txn: Txn, migrations: list[Migration], now: float) -> list[int]:
        self._lock_migrations_txn(txn)
        txn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at {float} NOT NULL)".format_map(self.column_types)
        )
        applied = {row["version"] for row in txn.fetchall("SELECT version FROM schema_version")}
        newest = max((m.version for m in migrations), default=0)
        if applied and max(applied) > newest:
            raise SchemaTooNew(
                f"database schema version {max(applied)} is newer than this "
                f"gateway's ({newest}); upgrade the gateway"
            )
        done = []
        for migration in migrations:
            if migration.version in applied:
                continue
            for statement in migration.sql(self.column_types):
                txn.execute(statement)
            if migration.migrate is not None:
                migration.migrate(txn)
            txn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, now),
            )
            done.append(migration.version)
        return done

    def schema_version(self) -> Deferred:
        """Fire with the highest applied migration version (0 if none)."""
        return self.run_interaction("schema_version", self._schema_version_txn)

    def _schema_version_txn(self, txn: Txn) -> int:
        row = txn.fetchone("SELECT MAX(version) AS v FROM schema_version")
        return row["v"] or 0

    # -- devices -----------------------------------------------------------

    def put_device(
        self,
        device_id: str,
        *,
        server_id: str,
        client_auth,
        server_auth,
        msisdn: Optional[str] = None,
        sip_uri: Optional[str] = None,
        imsi: Optional[str] = None,
    ) -> Deferred:
        """
        Create or replace a device account.

        Every given field replaces the stored one (C{None} clears the
        optional ones); DevInfo, last session and the failure counter stay.
        A nonce of C{None} in either auth keeps the stored nonce (empty for
        a new device).  The server secret is stored only for C{basic}.

        @param device_id: the DevId, e.g. C{"IMEI:350000000000001"}.
        @param client_auth: a L{ClientAuth}.
        @param server_auth: a L{ServerAuth}.
        @return: fires with C{True} if the device was created, C{False} if
            it existed.
        """
        return self.run_interaction(
            "put_device", self._put_device_txn, self._now(), device_id, server_id,
            client_auth, server_auth, msisdn, sip_uri, imsi,
        )

    def get_device(self, device_id: str) -> Deferred:
        """Fire with the L{Device}, or L{None} if there is none."""
        return self.run_interaction("get_device", self._get_device_txn, device_id)

    def delete_device(self, device_id: str) -> Deferred:
        """
        Delete a device with its jobs, sessions and notifications (events
        stay).  Fire with whether it existed.
        """
        return self.run_interaction("delete_device", self._delete_device_txn, device_id)

    def list_devices(self, limit: int = 100, after: Optional[str] = None) -> Deferred:
        """
        Fire with up to C{limit} L{Device}s ordered by C{device_id}
        (bytewise), starting after device id C{after}.
        """
        return self.run_interaction("list_devices", self._list_devices_txn, limit, after)

    def set_nonces(
        self,
        device_id: str,
        client_nonce: Optional[bytes] = None,
        server_nonce: Optional[bytes] = None,
    ) -> Deferred:
        """
        Store the next nonces (raw bytes); C{None} leaves one unchanged.
        Fire with whether the device exists.
        """
        return self.run_interaction(
            "set_nonces", self._set_nonces_txn, self._now(), device_id,
            client_nonce, server_nonce,
        )

    def set_devinfo(self, device_id: str, devinfo: Optional[dict]) -> Deferred:
        """Store the device's last DevInfo (a JSON object); fire with whether it exists."""
        return self.run_interaction(
            "set_devinfo", self._set_devinfo_txn, self._now(), device_id, devinfo
        )

    def set_reported(self, device_id: str, reported: Optional[dict]) -> Deferred:
        """Store the other nodes the device reported with its DevInfo (a JSON
        object by URI); fire with whether the device exists."""
        return self.run_interaction(
            "set_reported", self._set_reported_txn, self._now(), device_id, reported
        )

    def set_device_challenge(self, device_id: str, challenge: Optional[dict]) -> Deferred:
        """Store the last challenge of the device that we could not answer
        (C{"scheme", "status", "time"}); fire with whether the device exists."""
        return self.run_interaction(
            "set_device_challenge", self._set_device_challenge_txn, self._now(), device_id,
            challenge,
        )

    def set_last_session(self, device_id: str, session: Optional[dict]) -> Deferred:
        """
        Store the summary of the device's last session (C{"id", "started",
        "ended", "outcome"}; L{end_session} writes it itself).  Fire with
        whether the device exists.
        """
        return self.run_interaction(
            "set_last_session", self._set_last_session_txn, self._now(), device_id, session
        )

    def record_auth_failure(
        self, device_id: str, now: float, *, max_failures: int, lockout: float
    ) -> Deferred:
        """
        Count one failed authentication; from the C{max_failures}th on,
        lock the device out until C{now + lockout}.

        @return: fires with the updated L{Device} (see L{Device.locked}),
            or L{None} if there is no such device.
        """
        return self.run_interaction(
            "record_auth_failure", self._record_auth_failure_txn, now, device_id,
            max_failures, lockout,
        )

    def reset_auth_failures(self, device_id: str) -> Deferred:
        """Clear the failure counter and lockout; fire with whether the device exists."""
        return self.run_interaction(
            "reset_auth_failures", self._reset_auth_failures_txn, self._now(), device_id
        )

    # -- jobs ----------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        device_id: str,
        commands: list,
        *,
        atomic: bool = False,
        notify: str = "auto",
        ui_mode: int = 0,
        now: Optional[float] = None,
    ) -> Deferred:
        """
        Queue a job (state C{queued}, no results) behind the device's
        other jobs.

        @param job_id: chosen by the caller (e.g. C{uuid4().hex}).
        @param commands: the JSON list of command objects.
        @param notify: C{auto}, C{sms}, C{sip} or C{none}.
        @param ui_mode: the package #0 UI mode, 0-3.
        @param now: its creation time (default: the store's clock).
        @return: fires with the new L{Job}.
        @raise NotFound: no such device.
        @raise Conflict: the job id is taken.
        """
        return self.run_interaction(
            "create_job", self._create_job_txn, self._now() if now is None else now,
            job_id, device_id, commands, atomic, notify, ui_mode,
        )

    def get_job(self, job_id: str) -> Deferred:
        """Fire with the L{Job}, or L{None}."""
        return self.run_interaction("get_job", self._get_job_txn, job_id)

    def list_jobs(
        self, device_id: Optional[str] = None, limit: int = 100, after: Optional[str] = None
    ) -> Deferred:
        """
        Fire with up to C{limit} L{Job}s, oldest first, of one device (or
        of all when C{device_id} is C{None}), after the job with id
        C{after} (the last one of the previous page).

        @raise NotFound: C{after} is not a job.
        """
        return self.run_interaction("list_jobs", self._list_jobs_txn, device_id, limit, after)

    def pending_jobs(self, device_id: str) -> Deferred:
        """Fire with the device's C{queued} and C{notified} L{Job}s, oldest first."""
        return self.run_interaction(
            "pending_jobs", self._jobs_in_state_txn, PENDING_JOB_STATES, device_id
        )

    def jobs_in_state(
        self, states: Iterable[str] | str, limit: Optional[int] = None
    ) -> Deferred:
        """Fire with every L{Job} in one of C{states}, oldest first."""
        return self.run_interaction(
            "jobs_in_state", self._jobs_in_state_txn, states, None, limit
        )

    def update_job(
        self,
        job_id: str,
        *,
        state: Optional[str] = None,
        results: Optional[list] = None,
        error: Optional[dict] = None,
        expect_state: Optional[Iterable[str] | str] = None,
    ) -> Deferred:
        """
        Write a job's fields as given; C{None} leaves a field as it is.
        C{results} replaces the whole list.  The gateway changes a job's
        state only through L{dmgateway.jobstates.change_job} (which checks
        the transition and appends the job's event with it); this is the
        raw write, for the store's own tests and repairs.

        @param expect_state: compare-and-set: change only if the job is in
            this state (or one of these states).
        @return: fires with whether the job was changed.
        """
        return self.run_interaction(
            "update_job", self._update_job_txn, self._now(), job_id, state, results,
            error, expect_state,
        )

    def transition_job(
        self,
        job_id: str,
        state: str,
        *,
        expect: Iterable[str],
        device_id: Optional[str],
        now: Optional[float] = None,
        error: Optional[dict] = None,
        results: Optional[list] = None,
        event: Optional[dict] = None,
    ) -> Deferred:
        """
        Compare-and-set a job's state and append its C{job} event in one
        transaction; call it through L{dmgateway.jobstates.change_job},
        which owns the allowed transitions and the event's shape.

        @param expect: the states the job must be in to change.
        @param event: the event's payload (C{None}: no event).
        @return: fires with whether the job was changed (and the event appended).
        """
        return self.run_interaction(
            "transition_job", self._transition_job_txn, self._now() if now is None else now,
            job_id, device_id, tuple(expect), state, error, results, event,
        )

    # -- sessions ------------------------------------------------------------

    def start_session(
        self,
        session_id: str,
        device_id: str,
        node: str,
        started: Optional[float] = None,
        *,
        token: Optional[str] = None,
        job_ids: Iterable[str] = (),
    ) -> Deferred:
        """
        Record a live session held by process C{node}.

        @param started: when it started (default: the store's clock); also
            its first C{last_activity}.
        @return: fires with the L{Session}.
        @raise NotFound: no such device.
        @raise Conflict: the session id is taken.
        """
        return self.run_interaction(
            "start_session", self._start_session_txn, session_id, device_id, node,
            token, job_ids, self._now() if started is None else started,
        )

    def get_session(self, session_id: str) -> Deferred:
        """Fire with the live L{Session}, or L{None}."""
        return self.run_interaction("get_session", self._get_session_txn, session_id)

    def touch_session(
        self, session_id: str, now: float, *, job_ids: Optional[Iterable[str]] = None
    ) -> Deferred:
        """
        Note activity at C{now}, and replace the session's job ids if
        given.  Fire with whether the session is live.
        """
        return self.run_interaction(
            "touch_session", self._touch_session_txn, session_id, now, job_ids
        )

    def end_session(
        self, session_id: str, now: Optional[float] = None, outcome: Optional[str] = None
    ) -> Deferred:
        """
        End a live session: remove it and, when C{outcome} is given, store
        C{"id", "started", "ended": now, "outcome"} as its device's last
        session (without one, write your own with L{set_last_session}).
        Jobs are not touched (settle them with L{dmgateway.jobstates.change_job} first).

        @param now: when it ended (default: the store's clock).
        @return: fires with the ended L{Session}, or L{None} if it was not
            live.
        """
        return self.run_interaction(
            "end_session", self._end_session_txn, session_id,
            self._now() if now is None else now, outcome,
        )

    def live_sessions(
        self, node: Optional[str] = None, device_id: Optional[str] = None
    ) -> Deferred:
        """Fire with the live L{Session}s (of one node / one device), oldest first."""
        return self.run_interaction("live_sessions", self._live_sessions_txn, node, device_id)

    def recover(self, node: str, now: float) -> Deferred:
        """
        Settle what process C{node} left behind when it died; call at
        start before serving.

        Every live session of C{node} is ended with outcome
        C{"interrupted"}; each of its jobs still C{running} becomes
        C{failed} with error L{INTERRUPTED<dmgateway.store.model.INTERRUPTED>}.
        Queued and notified jobs stay pending.

        @return: fires with a L{Recovery}.
        """
        return self.run_interaction("recover", self._recover_txn, node, now)

    # -- events --------------------------------------------------------------

    def append_event(
        self, type: str, device_id: Optional[str], time: float, payload: Optional[dict] = None
    ) -> Deferred:
        """
        Append an event; fire with its sequence number.

        Numbers increase strictly and become visible in order: a reader
        that has seen number N never later finds a new event below N.

        @param payload: more fields; it may not use C{seq}, C{type},
            C{device_id} or C{time}.
        """
        return self.run_interaction(
            "append_event", self._append_event_txn, type, device_id, time,
            {} if payload is None else payload,
        )

    def events_after(self, seq: int, limit: int = 100) -> Deferred:
        """
        Fire with up to C{limit} events numbered above C{seq}, in order,
        each a dict of C{seq}, C{type}, C{device_id}, C{time} and the
        payload's fields.
        """
        return self.run_interaction("events_after", self._events_after_txn, seq, limit)

    def device_events(
        self, device_id: str, types: tuple[str, ...] = (), limit: int = 20, before: int | None = None,
    ) -> Deferred:
        """
        Fire with up to C{limit} events of C{device_id}, newest first, of
        the given C{types} (all if empty), numbered below C{before} if given;
        each as in L{events_after}.
        """
        return self.run_interaction(
            "device_events", self._device_events_txn, device_id, tuple(types), limit, before
        )

    def last_event_seq(self) -> Deferred:
        """Fire with the highest event number handed out (0 if none)."""
        return self.run_interaction("last_event_seq", self._last_event_seq_txn)

    def get_cursor(self, name: str) -> Deferred:
        """
        Fire with the event seq a consumer (e.g. a webhook URL) has
        acknowledged up to; 0 for a consumer never seen.
        """
        return self.run_interaction("get_cursor", self._get_cursor_txn, name)

    def set_cursor(self, name: str, seq: int) -> Deferred:
        """Record that consumer C{name} has handled every event up to C{seq}."""
        return self.run_interaction("set_cursor", self._set_cursor_txn, name, seq)

    def prune_events(self, before_time: float) -> Deferred:
        """
        Delete events older than C{before_time} with their webhook
        deliveries; numbering goes on.  Fire with how many were deleted.
        """
        return self.run_interaction("prune_events", self._prune_events_txn, before_time)

    # -- notifications -------------------------------------------------------

    def add_notification(
        self,
        device_id: str,
        bearer: str,
        payload: bytes,
        *,
        job_id: Optional[str] = None,
        session_id: Optional[int] = None,
        next_attempt_at: Optional[float] = None,
    ) -> Deferred:
        """
        Put a wake-up (or bootstrap) message in the outbox, state C{queued}.

        @param bearer: C{sms}, C{sip}, ...
        @param session_id: the 16-bit DM SessionID in package #0.
        @param next_attempt_at: when it is due (default: now).
        @return: fires with the L{Notification} and its new id.
        @raise NotFound: no such device or job.
        """
        return self.run_interaction(
            "add_notification", self._add_notification_txn, self._now(), device_id,
            bearer, payload, job_id, session_id, next_attempt_at,
        )

    def get_notification(self, notification_id: int) -> Deferred:
        """Fire with the L{Notification}, or L{None}."""
        return self.run_interaction(
            "get_notification", self._get_notification_txn, notification_id
        )

    def update_notification(
        self,
        notification_id: int,
        *,
        state: Optional[str] = None,
        count_attempt: bool = False,
        last_error: Optional[str] = None,
        message_id: Optional[str] = None,
        next_attempt_at: Optional[float] = None,
        expect_state: Optional[Iterable[str] | str] = None,
    ) -> Deferred:
        """
        Change a notification; C{None} leaves a field as it is.

        @param count_attempt: add one to C{attempts}.
        @param expect_state: compare-and-set on the current state.
        @return: fires with whether it was changed.
        """
        return self.run_interaction(
            "update_notification", self._update_notification_txn, self._now(),
            notification_id, state, count_attempt, last_error, message_id,
            next_attempt_at, expect_state,
        )

    def claim_notification(self, notification_id: int, now: float, lease: float) -> Deferred:
        """
        Take a due C{queued} notification for sending: push its due time to
        C{now + lease} so no other gateway process sharing the store picks
        it up meanwhile.  Fire with whether this caller got it.  If the
        claimer dies, the notification is due again when the lease ends.
        """
        return self.run_interaction(
            "claim_notification", self._claim_notification_txn, notification_id, now, lease
        )

    def release_claims(self, bearer: str, now: float, lease: float) -> Deferred:
        """
        Make due now the C{queued} notifications of C{bearer} that a
        process claimed (L{claim_notification} with C{lease}) before C{now}
        and did not settle: what a process taking over a bearer from a dead one does
        instead of waiting for the claims to run out.  Fire with how many.
        """
        return self.run_interaction(
            "release_claims", self._release_claims_txn, bearer, now, lease
        )

    def due_notifications(
        self, now: float, limit: int = 100, bearers: Optional[Iterable[str] | str] = None
    ) -> Deferred:
        """
        Fire with C{queued} L{Notification}s due by C{now} (of the given
        bearers), earliest due first.
        """
        return self.run_interaction(
            "due_notifications", self._due_notifications_txn, now, limit, bearers
        )

    def notifications_for_job(self, job_id: str) -> Deferred:
        """Fire with a job's L{Notification}s, oldest first."""
        return self.run_interaction(
            "notifications_for_job", self._notifications_for_job_txn, job_id
        )

    def set_notification_payload(self, notification_id: int, payload: bytes) -> Deferred:
        """
        Replace what a notification carries (e.g. drop a sent bootstrap's
        document, which holds plain secrets).  Fire with whether it existed.
        """
        return self.run_interaction(
            "set_notification_payload", self._set_notification_payload_txn, self._now(),
            notification_id, payload,
        )

    def standalone_notifications(self, device_id: str, limit: int = 10) -> Deferred:
        """
        Fire with a device's newest L{Notification}s that belong to no job
        (bootstrap pushes), newest first.
        """
        return self.run_interaction(
            "standalone_notifications", self._standalone_notifications_txn, device_id, limit
        )

    def find_notification_by_message_id(
        self, message_id: str, bearer: Optional[str] = None
    ) -> Deferred:
        """
        Fire with the newest L{Notification} a bearer reported as
        C{message_id} (e.g. an SMSC message id), or L{None}.
        """
        return self.run_interaction(
            "find_notification_by_message_id", self._find_notification_by_message_id_txn,
            message_id, bearer,
        )

    # -- webhook deliveries ------------------------------------------------

    def add_delivery(
        self, url: str, event_seq: int, *, next_attempt_at: Optional[float] = None
    ) -> Deferred:
        """
        Schedule event C{event_seq} for webhook C{url} (state C{pending},
        due C{next_attempt_at}, default now).  Fire with the L{Delivery}.

        @raise NotFound: no such event.
        """
        return self.run_interaction(
            "add_delivery", self._add_delivery_txn, self._now(), url, event_seq,
            next_attempt_at,
        )

    def get_delivery(self, delivery_id: int) -> Deferred:
        """Fire with the L{Delivery}, or L{None}."""
        return self.run_interaction("get_delivery", self._get_delivery_txn, delivery_id)

    def due_deliveries(self, now: float, limit: int = 100) -> Deferred:
        """Fire with C{pending} L{Delivery}s due by C{now}, earliest first."""
        return self.run_interaction("due_deliveries", self._due_deliveries_txn, now, limit)

    def mark_delivery(
        self,
        delivery_id: int,
        state: str,
        *,
        last_error: Optional[str] = None,
        next_attempt_at: Optional[float] = None,
        expect_state: Optional[Iterable[str] | str] = None,
    ) -> Deferred:
        """
        Record one delivery attempt: count it and set C{state}
        (C{delivered}, C{failed}, or C{pending} to retry at
        C{next_attempt_at}) and C{last_error} (C{None} clears it).

        @return: fires with whether the delivery was changed.
        """
        return self.run_interaction(
            "mark_delivery", self._mark_delivery_txn, self._now(), delivery_id, state,
            last_error, next_attempt_at, expect_state,
        )


class _Recording:
    """Stands in for the store while a L{Batch} records one method call."""

    def __init__(self, store: Store, work: list):
        self._store = store
        self._work = work

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def run_interaction(self, desc: str, func, *args: Any) -> None:
        self._work.append((desc, func, args))


class Batch:
    """
    Calls recorded for one transaction (see L{Store.batch}).  Each store
    method called on it returns the batch, so calls can be chained.
    """

    def __init__(self, store: Store):
        self._store = store
        self._work: list = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(type(self._store), name, None)
        if name.startswith("_") or not callable(method) or name in ("batch", "close", "migrate"):
            raise AttributeError(f"{name!r} cannot be batched")
        recording = _Recording(self._store, self._work)

        def record(*args: Any, **kwargs: Any) -> "Batch":
            method(recording, *args, **kwargs)
            return self

        return record

    def __len__(self) -> int:
        return len(self._work)

    def commit(self) -> Deferred:
        """Run the recorded calls in one transaction; fire with their results."""
        work, self._work = self._work, []
        if not work:
            return defer.succeed([])
        desc = "batch of " + ", ".join(d for d, _f, _a in work)
        return self._store.run_interaction(desc, self._store._batch_txn, work)
