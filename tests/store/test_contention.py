"""
A PostgreSQL transaction that loses to a concurrent one (a deadlock, a
serialization failure) is run again, a bounded number of times, and in the
end fails as L{StoreContention}: never as L{StoreUnavailable}, which puts
the gateway into outage mode as if the database were down.
"""

import sqlite3

import psycopg
from twisted.enterprise import adbapi
from twisted.internet import reactor, threads
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dmgateway.store import StoreContention, StoreError, StoreUnavailable
from dmgateway.store.base import Store
from dmgateway.store.postgres import ATTEMPTS, BACK_OFF, PostgresEngine
from dmgateway.store.sqlite import SQLiteEngine
from tests.store.support import OnPostgres, OnSQLite, StoreCase, add_device, until_a_lock_waits


def _engine():
    return PostgresEngine.from_uri("postgresql://gw@127.0.0.1:1/dm")


def _warnings(case):
    """The store's "running it again" lines logged from now on (a list)."""
    logged = []

    def observer(event):
        if "running it again" in event.get("log_format", ""):
            logged.append(event)

    globalLogPublisher.addObserver(observer)
    case.addCleanup(globalLogPublisher.removeObserver, observer)
    return logged


class TranslateErrorTests(SynchronousTestCase):
    def test_deadlock_and_serialization_failure_are_contention(self):
        engine = _engine()
        for error, sqlstate in ((psycopg.errors.DeadlockDetected("deadlock detected"), "40P01"),
                                (psycopg.errors.SerializationFailure("could not serialize access"), "40001")):
            self.assertIsInstance(error, psycopg.OperationalError)  # (what made them outages)
            translated = engine.translate_error(error)
            self.assertIsInstance(translated, StoreContention)
            self.assertNotIsInstance(translated, StoreUnavailable)
            self.assertEqual(translated.sqlstate, sqlstate)

    def test_a_lost_connection_is_still_unavailable(self):
        engine = _engine()
        for error in (psycopg.OperationalError("consuming input failed: server closed the connection"),
                      psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
                      psycopg.errors.TooManyConnections("sorry, too many clients already"),
                      adbapi.ConnectionLost()):
            translated = engine.translate_error(error)
            self.assertIsInstance(translated, StoreUnavailable, error)
            self.assertNotIsInstance(translated, StoreContention)

    def test_other_errors_keep_their_kind(self):
        engine = _engine()
        self.assertEqual(type(engine.translate_error(psycopg.errors.UndefinedColumn("no column x"))), StoreError)
        self.assertIsNone(engine.translate_error(ValueError("not the database's")))


class _Cursor:
    def __init__(self, connection):
        self.connection = connection

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.connection.calls.append("close")


class _Connection:
    """A pool connection whose commits fail with the errors in ``commit_errors`` first."""

    def __init__(self, commit_errors=()):
        self.calls = []
        self.commit_errors = list(commit_errors)

    def cursor(self):
        return _Cursor(self)

    def commit(self):
        self.calls.append("commit")
        if self.commit_errors:
            raise self.commit_errors.pop(0)

    def rollback(self):
        self.calls.append("rollback")


class TransactTests(SynchronousTestCase):
    """The retry loop of L{PostgresEngine.transact}, in the pool's thread, on a fake connection."""

    def setUp(self):
        self.engine = _engine()
        self.pauses = []
        self.engine._sleep = self.pauses.append
        self.engine._random = lambda: 0.999
        self.logged = _warnings(self)

    def run_failing(self, errors, connection=None):
        """transact() of a function raising ``errors`` in turn, then answering "ok": (runs, result or error)."""
        connection = connection or _Connection()
        runs = []

        def interact(cursor, func, args):
            runs.append(args)
            if len(runs) <= len(errors):
                raise errors[len(runs) - 1]
            return "ok"

        try:
            result = self.engine.transact(connection, interact, "a_family", None, ("x",))
        except Exception as e:
            result = e
        return runs, result, connection

    def test_a_deadlock_runs_the_whole_transaction_again(self):
        runs, result, connection = self.run_failing([psycopg.errors.DeadlockDetected("deadlock detected")])
        self.assertEqual((result, len(runs)), ("ok", 2))
        self.assertEqual(connection.calls, ["close", "rollback", "close", "commit"])
        self.assertEqual(self.engine.retries, 1)
        self.assertEqual(len(self.pauses), 1)
        self.assertTrue(0 <= self.pauses[0] < BACK_OFF)
        [line] = self.logged
        self.assertEqual((line["desc"], line["error"], line["attempt"], line["attempts"], line["log_level"].name),
                         ("a_family", "DeadlockDetected", 2, ATTEMPTS, "warn"))

    def test_attempts_are_bounded_and_the_last_error_is_raised(self):
        errors = [psycopg.errors.SerializationFailure(f"could not serialize access {n}") for n in range(5)]
        runs, result, connection = self.run_failing(errors)
        self.assertEqual(len(runs), ATTEMPTS)
        self.assertIs(result, errors[ATTEMPTS - 1])
        self.assertIsInstance(self.engine.translate_error(result), StoreContention)
        # (the pool rolls the last run back, as any failed transaction)
        self.assertEqual(connection.calls.count("rollback"), ATTEMPTS - 1)
        self.assertEqual(self.engine.retries, ATTEMPTS - 1)
        self.assertEqual([line["attempt"] for line in self.logged], list(range(2, ATTEMPTS + 1)))
        # randomised, each pause below a bound that doubles
        self.assertEqual(len(self.pauses), ATTEMPTS - 1)
        for attempt, pause in enumerate(self.pauses):
            self.assertTrue(0 <= pause < BACK_OFF * 2 ** attempt, (attempt, pause))
        self.assertGreater(self.pauses[1], self.pauses[0])

    def test_a_failure_at_commit_runs_it_again_too(self):
        # (under SERIALIZABLE, the server may find the conflict only at COMMIT)
        connection = _Connection([psycopg.errors.SerializationFailure("could not serialize access")])
        runs, result, connection = self.run_failing([], connection)
        self.assertEqual((result, len(runs)), ("ok", 2))
        self.assertEqual(connection.calls, ["close", "commit", "rollback", "close", "commit"])

    def test_other_errors_are_raised_at_once(self):
        for error in (psycopg.OperationalError("server closed the connection unexpectedly"),
                      psycopg.errors.UniqueViolation("duplicate key"),
                      psycopg.errors.LockNotAvailable("could not obtain lock"),
                      ValueError("a bad argument")):
            runs, result, connection = self.run_failing([error])
            self.assertEqual((len(runs), result), (1, error))
            self.assertNotIn("rollback", connection.calls)
        self.assertEqual((self.engine.retries, self.pauses, self.logged), (0, [], []))


class PostgresContentionTests(OnPostgres, StoreCase, TestCase):
    async def test_the_loser_of_a_deadlock_succeeds_when_run_again_and_writes_once(self):
        # The store's batch counts a failed authentication of D1 then of D2;
        # another writer holds D2's row, then asks for D1's: a deadlock, which
        # the store's transaction loses (it waited first: its deadlock_timeout
        # runs out first).  Run again once the other has committed, the batch
        # succeeds, and each counter went up by one, not two.
        store = await self.open()
        for device_id in ("IMEI:1", "IMEI:2"):
            await add_device(store, device_id)
        logged = _warnings(self)
        now = self.clock.seconds()
        with psycopg.connect(self.uri) as other:
            other.execute("SET deadlock_timeout = '30s'")  # (the store's transaction is the one to detect it)
            other.execute("UPDATE devices SET msisdn = '+447700900002' WHERE device_id = 'IMEI:2'")
            batch = store.batch()
            for device_id in ("IMEI:1", "IMEI:2"):
                batch.record_auth_failure(device_id, now, max_failures=10, lockout=60)
            batch.append_event("counted", "IMEI:2", now)
            counting = batch.commit()
            await until_a_lock_waits(other, "the store's batch")
            # (waits until the store's transaction is chosen and rolled back)
            await threads.deferToThread(
                other.execute, "UPDATE devices SET msisdn = '+447700900001' WHERE device_id = 'IMEI:1'")
            other.commit()
        first, second, seq = await counting
        self.assertEqual((first.auth_failures, second.auth_failures, seq), (1, 1, 1))
        for device_id, msisdn in (("IMEI:1", "+447700900001"), ("IMEI:2", "+447700900002")):
            device = await store.get_device(device_id)
            self.assertEqual((device.auth_failures, device.msisdn), (1, msisdn))
        self.assertEqual([e["type"] for e in await store.events_after(0)], ["counted"])
        self.assertEqual(store.database_engine.retries, 1)
        self.assertEqual([(line["error"], line["attempt"]) for line in logged], [("DeadlockDetected", 2)])
        self.assertIn("record_auth_failure", logged[0]["desc"])

    def count_failures_txn(self, conflicts):
        """
        A transaction adding one to IMEI:1's auth_failures from what it read
        under REPEATABLE READ; another writer adds 10 after that read and
        commits, in its first ``conflicts`` runs (a serialization failure):
        (the function, its runs).
        """
        runs = []

        def count_txn(txn):
            runs.append(len(runs) + 1)
            txn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            read = txn.fetchone("SELECT auth_failures FROM devices WHERE device_id = ?", ("IMEI:1",))
            if len(runs) <= conflicts:
                with psycopg.connect(self.uri, autocommit=True) as other:
                    other.execute("UPDATE devices SET auth_failures = auth_failures + 10 WHERE device_id = 'IMEI:1'")
            txn.execute("UPDATE devices SET auth_failures = ? WHERE device_id = ?", (read["auth_failures"] + 1, "IMEI:1"))
            return read["auth_failures"] + 1

        return count_txn, runs

    async def test_a_serialization_failure_runs_the_transaction_again(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        count_txn, runs = self.count_failures_txn(conflicts=1)
        self.assertEqual(await store.run_interaction("count", count_txn), 11)
        self.assertEqual(runs, [1, 2])
        self.assertEqual((await store.get_device("IMEI:1")).auth_failures, 11)  # neither write lost

    async def test_a_transaction_that_keeps_losing_fails_as_contention_not_unavailable(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        logged = _warnings(self)
        observed = []
        store.on_transaction = lambda seconds, failed: observed.append(failed)
        count_txn, runs = self.count_failures_txn(conflicts=ATTEMPTS)
        with self.assertRaises(StoreContention) as caught:
            await store.run_interaction("count", count_txn)
        self.assertEqual(observed, [True])  # one failed transaction for the metrics, not three
        self.assertNotIsInstance(caught.exception, StoreUnavailable)
        self.assertEqual(caught.exception.sqlstate, "40001")
        self.assertEqual(runs, list(range(1, ATTEMPTS + 1)))
        # nothing of the store's runs written, every other writer's change kept
        self.assertEqual((await store.get_device("IMEI:1")).auth_failures, 10 * ATTEMPTS)
        self.assertEqual([line["attempt"] for line in logged], list(range(2, ATTEMPTS + 1)))
        self.assertEqual(store.database_engine.retries, ATTEMPTS - 1)
        # and the store goes on working
        self.assertEqual((await store.get_device("IMEI:1")).device_id, "IMEI:1")

    async def test_a_lost_connection_is_unavailable_and_not_run_again(self):
        store = await self.open(pool_min=1, pool_max=1)
        await add_device(store, "IMEI:1")
        logged = _warnings(self)
        pid = await store.run_interaction("pid", lambda txn: txn.fetchone("SELECT pg_backend_pid() AS pid")["pid"])
        with psycopg.connect(self.uri, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with self.assertRaises(StoreUnavailable):
            await store.get_device("IMEI:1")
        self.flushLoggedErrors()
        self.assertEqual((logged, store.database_engine.retries), ([], 0))


class SQLiteLockTests(OnSQLite, TestCase):
    async def test_a_lock_held_past_the_busy_timeout_is_unavailable_and_not_run_again(self):
        # SQLite's pool opens every transaction with BEGIN IMMEDIATE: writers
        # queue for the busy timeout, and no transaction is rolled back half
        # way for losing to another.  A lock held longer than that is
        # another process holding the file: an outage, as it was.
        path = str(self.tmp_path / "store.db")
        engine = SQLiteEngine(path, busy_timeout=0.2)
        store = Store(engine, engine.connection_pool(reactor), reactor)
        self.addCleanup(store.close)
        await store.migrate()
        runs = []
        holder = sqlite3.connect(path, isolation_level=None)
        self.addCleanup(holder.close)
        holder.execute("BEGIN IMMEDIATE")
        with self.assertRaises(StoreUnavailable) as caught:
            await store.run_interaction("write", lambda txn: runs.append(txn))
        holder.execute("ROLLBACK")
        self.assertIn("locked", str(caught.exception))
        self.assertEqual((runs, engine.attempts, engine.retries), ([], 1, 0))
