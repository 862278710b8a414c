"""
The database under the store: one transaction as the C{_..._txn}
functions see it (L{Txn}), the interaction runner with its error
translation and metrics hook (L{Batch}es of calls in one transaction are
recorded by L{dmgateway.store.batch}), and the migrations.

What differs between SQLite and PostgreSQL is an engine object
(L{dmgateway.store.sqlite.SQLiteEngine},
L{dmgateway.store.postgres.PostgresEngine}) that the L{Database} holds;
the areas of the store (L{dmgateway.store.base}) build on this class.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterable, Optional, Protocol, Sequence

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from .batch import Batch
from .migrations import Migration, load_migrations
from .model import SchemaTooNew, StoreClosed, StoreError
from .rows import dump_json
from .values import marks

__all__ = ["Database", "Engine", "Txn", "BUSY", "SINGLE"]

log = Logger()

#: What a reactor connection's C{run} answers when the database was locked:
#: the transaction was rolled back and goes to the pool instead.
BUSY = object()

#: C{run_interaction(..., short=SINGLE)}: a short transaction of reads
#: that each stand alone (ONE statement, or a second one that needs no
#: snapshot in common with the first), which a reactor connection runs
#: without C{BEGIN} and C{COMMIT} (see L{ReactorConnection.run
#: <dmgateway.store.sqlite.ReactorConnection.run>}).
SINGLE = "single"


class Engine(Protocol):
    """
    What the L{Database} asks of an engine (L{SQLiteEngine
    <dmgateway.store.sqlite.SQLiteEngine>}, L{PostgresEngine
    <dmgateway.store.postgres.PostgresEngine>}).

    @ivar name: C{"sqlite"} or C{"postgresql"}.
    @ivar column_types: the types (and the C{keyed} table option) that fill
        the migrations' placeholders.
    @ivar description: where the data lives, without any password.
    @ivar returning: whether the store ends statements in C{RETURNING} (to
        save a round trip; else it reads the rows back).
    @ivar attempts: how many times a transaction runs at most when the
        database rolls it back for losing to a concurrent one; above 1, the
        engine's C{transact} runs the pool's transactions.
    @ivar retries: how many transactions ran again so far (for metrics).
    """

    name: str
    returning: bool
    attempts: int
    retries: int
    column_types: dict[str, str]
    description: str

    def connection_pool(self, reactor: Any) -> Any:
        """The pool (C{runInteraction}, C{runWithConnection}, C{close})."""

    def reactor_connection(self) -> Any:
        """
        A connection for short transactions in the calling thread (see
        L{dmgateway.store.sqlite.ReactorConnection}), or L{None}.
        """

    def sql(self, sql: str) -> str:
        """Translate C{?} placeholders into the engine's parameter style."""

    def transact(self, connection: Any, interact: Any, desc: str, func: Any, args: tuple) -> Any:
        """
        In the pool's thread, with C{attempts} above 1: C{interact(cursor,
        func, args)} in one transaction, committed; run again while it loses
        to concurrent ones (see L{PostgresEngine.transact
        <dmgateway.store.postgres.PostgresEngine.transact>}).
        """

    def begin_txn(self, cursor: Any) -> None:
        """Start the transaction an interaction runs in (if the engine needs it)."""

    def lock_migrations_txn(self, txn: "Txn") -> None:
        """Keep other processes from migrating until this transaction ends."""

    def insert_txn(self, txn: "Txn", sql: str, args: tuple, id_column: str) -> int:
        """Insert one row and return its generated C{id_column}."""

    def translate_error(self, error: BaseException) -> Optional[StoreError]:
        """The L{StoreError} for an engine exception, or L{None} to let it through."""


def _check_args(args: tuple) -> None:
    # Both engines must accept exactly the same values: PostgreSQL text
    # cannot hold NUL and neither engine can store lone surrogates.
    for arg in args:
        if type(arg) is str:
            if arg.isascii():  # (ASCII text is valid Unicode)
                if "\x00" in arg:
                    raise ValueError("text values cannot contain NUL characters")
                continue
        elif not isinstance(arg, str):
            continue  # (numbers, bytes, None: the common case after text)
        if "\x00" in arg:
            raise ValueError("text values cannot contain NUL characters")
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text values must be valid Unicode") from None


def placeholders(engine: Any) -> Any:
    """What a L{Txn} of C{engine} translates its SQL with: L{None} if nothing."""
    return None if getattr(engine, "native_placeholders", False) else engine.sql


class Txn:
    """
    One transaction as the C{_..._txn} functions see it: SQL with C{?}
    placeholders (translated for the engine), rows as dicts.
    """

    __slots__ = ("cursor", "_engine", "_sql", "pending_events", "plain_jobs", "json_texts")

    def __init__(self, cursor: Any, engine: Engine, sql: Any = None):
        """
        @param sql: the engine's translation of C{?} placeholders
            (L{Engine.sql}), or L{None} when it takes them as they are
            (see L{placeholders}).
        """
        self.cursor = cursor
        self._engine = engine
        self._sql = sql
        #: events appended but not yet written (a short batch's, see
        #: L{EventStore._batch_txn<dmgateway.store.events.EventStore._batch_txn>}),
        #: or L{None} when every event is written at once
        self.pending_events: Optional[list] = None
        #: in a short batch, the jobs this transaction changed that are
        #: plain (see L{JobStore._transition_job_txn
        #: <dmgateway.store.jobs.JobStore._transition_job_txn>}), or L{None}
        self.plain_jobs: Optional[set] = None
        #: in a short batch, the JSON text of the values L{dump_json} wrote,
        #: by id (with the value, which keeps its id), or L{None}
        self.json_texts: Optional[dict] = None

    @property
    def engine(self) -> str:
        """C{"sqlite"} or C{"postgresql"}: for a migration's C{migrate(txn)}, which has no store."""
        return self._engine.name

    def execute(self, sql: str, args: Iterable = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        if type(args) is not tuple:
            args = tuple(args)
        for arg in args:  # (L{_check_args}' common case in place: ASCII text, numbers, bytes, None)
            if type(arg) is str:
                if not arg.isascii() or "\x00" in arg:
                    _check_args((arg,))
            elif isinstance(arg, str):
                _check_args((arg,))
        cursor = self.cursor
        cursor.execute(sql if self._sql is None else self._sql(sql), args)
        return cursor.rowcount

    def dump_json(self, value: Any, what: str) -> str:
        """
        L{dump_json<dmgateway.store.rows.dump_json>}: in a short batch, a
        value this transaction already wrote (the same object, unchanged
        since: its calls do not change their arguments) is encoded once,
        e.g. a DM session's summary, its event's payload and its device's
        last session.
        """
        texts = self.json_texts
        if texts is None:
            return dump_json(value, what)
        kept = texts.get(id(value))
        if kept is not None:
            return kept[1]
        text = dump_json(value, what)
        texts[id(value)] = (value, text)
        return text

    def fetchall(self, sql: str, args: Iterable = ()) -> list[dict]:
        """Run a query; return every row as a dict keyed by column name."""
        self.execute(sql, args)
        cursor = self.cursor
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def fetchrows(self, sql: str, args: Iterable = ()) -> list[tuple]:
        """
        Run a query; return its rows as the cursor gives them: tuples of
        its columns in order (for a converter of rows by position, see
        L{row_converter<dmgateway.store.rows.row_converter>}).
        """
        self.execute(sql, args)
        return self.cursor.fetchall()

    def fetchone(self, sql: str, args: Iterable = ()) -> Optional[dict]:
        """Run a query; return its first row as a dict, or L{None}."""
        rows = self.fetchall(sql, args)
        return rows[0] if rows else None

    def insert_row(self, table: str, row: dict, id_column: Optional[str] = None) -> Optional[int]:
        """
        Insert C{row} (a dict by column name) into C{table}; return its
        generated C{id_column} if one is named.
        """
        sql = f"INSERT INTO {table} ({', '.join(row)}) VALUES {marks(len(row))}"
        if id_column is None:
            self.execute(sql, row.values())
            return None
        return self.insert(sql, row.values(), id_column)

    def insert(self, sql: str, args: Iterable, id_column: str) -> int:
        """Run an C{INSERT} of one row; return its generated C{id_column}."""
        args = tuple(args)
        _check_args(args)
        return self._engine.insert_txn(self, sql, args, id_column)


class Database:
    """
    Transactions on one database, through its engine.

    @ivar database_engine: the L{Engine}.
    @ivar description: where the data lives, without any password.
    """

    #: while a L{Batch} records a call of the store's, the list its
    #: C{run_interaction} appends the transaction to instead of running it
    _batch_work: Optional[list] = None

    def __init__(self, database_engine: Engine, pool: Any, clock: Any):
        """
        @param pool: the engine's connection pool (an C{adbapi.ConnectionPool}).
        @param clock: an C{IReactorTime} provider for bookkeeping times.
        """
        self.database_engine = database_engine
        self._pool = pool
        self._clock = clock
        self.description = database_engine.description
        self._closed = False
        self._pending: set[Deferred] = set()
        self._direct = database_engine.reactor_connection()
        self._sql = placeholders(database_engine)
        # transactions (and a WAL checkpoint) queued on or running in the pool
        self._on_pool = 0
        # with a reactor connection: transactions asked while the pool was
        # busy, not yet run (see L{_wait})
        self._waiting: deque = deque()
        self._in_direct = False
        #: C{on_transaction(seconds, failed)} after every transaction (metrics)
        self.on_transaction = None
        self._close_waiters: Optional[list[Deferred]] = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

    @property
    def engine(self) -> str:
        """C{"sqlite"} or C{"postgresql"}."""
        return self.database_engine.name

    # -- running transactions -------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether L{close} was called."""
        return self._closed

    def _now(self) -> float:
        return self._clock.seconds()

    def run_interaction(self, desc: str, func, *args: Any, short: bool = False) -> Deferred:
        """
        Run C{func(txn, *args)} in one transaction (commit on return,
        rollback on exception) and fire with its result.

        C{txn} is a L{Txn}.  This is how every method below works; call it
        directly only for one-off maintenance and tests.  C{func} may run
        more than once (the database rolled it back: see L{Engine.attempts}):
        it changes nothing but its C{txn}, and leaves its caller's state
        to the callbacks.

        @param desc: what the work is, for error messages (and the log line
            of a transaction run again).
        @param short: a transaction of a few indexed statements (a DM
            session's reads and writes): on an engine with a reactor
            connection it runs in the calling thread, at once when the
            pool has nothing queued or running, else as soon as the pool
            has drained (so transactions still run in the order they were
            asked for), and on the pool when the database is locked.  The
            caller sees no difference but speed.  L{SINGLE}: such a
            transaction of reads that each stand alone.
        """
        work = self._batch_work
        if work is not None:  # (a L{Batch} records the call: see L{batch})
            work.append((desc, func, args))
            return None
        if self._closed:
            return defer.fail(StoreClosed(f"store is closed ({desc})"))
        started = None if self.on_transaction is None else self._clock.seconds()
        if self._direct is not None:
            if self._waiting or (short and self._on_pool and not self._in_direct):
                return self._wait(desc, func, args, started, short)
            if short and not self._on_pool and not self._in_direct:
                d = self._run_direct(func, args, started, short is not SINGLE)
                if d is not None:
                    return d
        return self._run_on_pool(desc, func, args, started)

    def _run_on_pool(self, desc: str, func, args: tuple, started: Optional[float]) -> Deferred:
        engine = self.database_engine
        if engine.attempts > 1:
            d = self._pool.runWithConnection(engine.transact, self._interact, desc, func, args)
        else:
            d = self._pool.runInteraction(self._interact, func, args)
        self._on_pool += 1
        self._pending.add(d)
        d.addBoth(self._settled, d)
        if started is not None:
            d.addBoth(self._timed, started)
        d.addErrback(self._failed)
        if self._direct is None:
            return d
        # Its caller is answered before the transactions that waited behind
        # it run (L{_drain}): answers come in the order asked, as when they
        # all queued on the pool.
        answer: Deferred = Deferred()
        d.chainDeferred(answer)
        d.addBoth(self._drain)
        return answer

    def _wait(self, desc: str, func, args: tuple, started: Optional[float], short: Any) -> Deferred:
        """
        A transaction asked while the pool is busy (or others wait before
        it), kept here until the pool has drained: then L{_drain} runs it
        on the reactor connection if it is short.  Queued on the pool
        instead, a short transaction kept the next ones off the reactor
        connection too, and under a steady load every DM session's
        transactions went on hopping to the pool's thread and back (more
        CPU than their SQL) until a lull.  A long one waits here only
        behind short ones, to keep the order.
        """
        d: Deferred = Deferred()
        self._waiting.append((d, desc, func, args, started, short))
        self._pending.add(d)
        d.addBoth(self._settled_background, d)
        return d

    def _drain(self, result: Any) -> Any:
        """
        After a transaction on the pool, its caller answered: while the
        pool is idle, run the transactions that wait (L{_wait}), in order,
        the short ones on the reactor connection (on the pool if the
        database is locked); a long one goes to the pool, and so do those
        right behind it that are long too.
        """
        waiting = self._waiting
        while waiting and not self._in_direct and (not self._on_pool or not waiting[0][5]):
            d, desc, func, args, started, short = waiting.popleft()
            done = None
            if short and not self._on_pool:
                done = self._run_direct(func, args, started, short is not SINGLE)
            if done is None:
                done = self._run_on_pool(desc, func, args, started)
            done.chainDeferred(d)
        return result

    def _run_direct(self, func, args: tuple, started: Optional[float], begin: bool) -> Optional[Deferred]:
        """
        The transaction on the reactor connection, fired; L{None} if it
        must go to the pool.  What the pool's callbacks do (L{_timed},
        L{_failed}) is done here at once, in the same order: the
        transaction is timed, then its error translated.
        """
        direct = self._direct
        self._in_direct = True
        try:
            result = direct.run(func, args, begin)
        except BaseException:
            self._in_direct = False
            failure = Failure()
            if started is not None:
                self._observe(started, True)
            error = failure.value
            if isinstance(error, (StoreError, ValueError, TypeError)):
                return defer.fail(failure)
            translated = self.database_engine.translate_error(error)
            if translated is None:
                return defer.fail(failure)
        else:
            self._in_direct = False
            if direct.due:
                self._checkpoint(direct.checkpoint_due())
            if result is BUSY:
                return None
            if started is not None:
                self._observe(started, False)
            return defer.succeed(result)
        return self._raised(translated)

    @staticmethod
    def _raised(error: BaseException) -> Deferred:
        # (raised outside the engine error's handler, as the pool's errback
        # raises it: no implicit __context__ chained to it)
        try:
            raise error
        except BaseException:
            return defer.fail()

    def _observe(self, started: float, failed: bool) -> None:
        try:
            self.on_transaction(self._clock.seconds() - started, failed)
        except Exception:
            log.failure("store transaction observer failed")

    def _checkpoint(self, number: int) -> None:
        # (the transactions asked meanwhile wait for its end as for a
        # transaction on the pool: the reactor connection writes nothing
        # while it runs, see L{ReactorConnection
        # <dmgateway.store.sqlite.ReactorConnection>})
        direct = self._direct
        d = self._pool.runWithConnection(direct.checkpoint, number)
        self._on_pool += 1
        self._pending.add(d)
        d.addErrback(self._checkpoint_failed, direct, number)
        d.addBoth(self._settled, d)
        d.addBoth(self._drain)

    @staticmethod
    def _checkpoint_failed(failure: Failure, direct: Any, number: int) -> None:
        # (the pool may fail before it runs the checkpoint, which then
        # cannot end the reactor connection's wait for it itself)
        direct.checkpoint_failed(number)
        log.failure("WAL checkpoint failed", failure)

    def batch(self) -> Batch:
        """
        Several calls in ONE transaction: call the store's methods on the
        returned L{Batch} (they are recorded, not run), then C{commit()}
        fires with the list of their results, in order.  All of them take
        effect, or none.
        """
        return Batch.for_store(type(self))(self)

    def _batch_txn(self, txn: Txn, work: list, short: bool = False) -> list:
        """
        A L{Batch}'s calls in C{txn}, in order; their results.  C{short}
        marks a DM session's batch (L{dmgateway.store.events.EventStore}
        writes its events together at its end).
        """
        return [func(txn, *args) for _desc, func, args in work]

    def _interact(self, cursor: Any, func, args: tuple) -> Any:
        self.database_engine.begin_txn(cursor)
        return func(Txn(cursor, self.database_engine, self._sql), *args)

    def _failed(self, failure):
        error = failure.value
        if isinstance(error, (StoreError, ValueError, TypeError)):
            return failure
        translated = self.database_engine.translate_error(error)
        if translated is None:
            return failure
        raise translated

    def _timed(self, result: Any, started: float) -> Any:
        try:
            self.on_transaction(self._clock.seconds() - started, isinstance(result, Failure))
        except Exception:
            log.failure("store transaction observer failed")
        return result

    def _settled(self, result: Any, d: Deferred) -> Any:
        self._pending.discard(d)
        self._on_pool -= 1
        return result

    def _settled_background(self, result: Any, d: Deferred) -> Any:
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
        direct, self._direct = self._direct, None
        waiters, self._close_waiters = self._close_waiters or [], []
        try:
            if direct is not None:
                direct.close()
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
        self.database_engine.lock_migrations_txn(txn)
        txn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at {float} NOT NULL)".format_map(self.database_engine.column_types)
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
            for statement in migration.sql(self.database_engine.column_types):
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
