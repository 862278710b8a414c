"""
What only the PostgreSQL engine has: URI handling, the migration lock,
schemas, reconnecting.
"""

import socket

import psycopg
from twisted.internet import defer, reactor, task
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dmgateway.store import StoreError, make_store, open_store
from dmgateway.store.migrations import load_migrations
from dmgateway.store.postgres import (
    MIGRATION_LOCK,
    parse_postgres_uri,
    redact_uri,
)
from tests.store.support import OnPostgres, StoreCase, add_device, until_a_lock_waits


class URITests(SynchronousTestCase):
    def test_defaults(self):
        conninfo, low, high, extra = parse_postgres_uri("postgresql://gw@db.example:5433/dm")
        self.assertEqual(conninfo, "postgresql://gw@db.example:5433/dm")
        self.assertEqual((low, high), (1, 5))
        self.assertEqual(extra, {"connect_timeout": 10, "application_name": "dmgateway"})

    def test_pool_parameters_are_ours(self):
        conninfo, low, high, extra = parse_postgres_uri(
            "postgres://gw@db/dm?sslmode=require&pool_min=2&pool_max=8&connect_timeout=3"
            "&options=-csearch_path%3Dgw"
        )
        self.assertEqual(
            conninfo,
            "postgres://gw@db/dm?sslmode=require&connect_timeout=3&options=-csearch_path%3Dgw",
        )
        self.assertEqual((low, high), (2, 8))
        self.assertEqual(extra, {"application_name": "dmgateway"})

    def test_arguments_override_uri(self):
        _, low, high, _ = parse_postgres_uri("postgresql:///dm?pool_max=2", pool_min=3, pool_max=4)
        self.assertEqual((low, high), (3, 4))
        _, low, high, _ = parse_postgres_uri("postgresql:///dm", pool_min=7)
        self.assertEqual((low, high), (7, 7))

    def test_bad_pool_sizes(self):
        for query in ("pool_max=0", "pool_min=x", "pool_min=4&pool_max=2"):
            with self.assertRaises(ValueError):
                parse_postgres_uri(f"postgresql://db/dm?{query}")
        with self.assertRaises(ValueError):
            parse_postgres_uri("mysql://db/dm")

    def test_redaction(self):
        self.assertEqual(
            redact_uri("postgresql://gw:s3cr%40t@db.example:5432/dm?x=1"),
            "postgresql://gw:***@db.example:5432/dm?x=1",
        )
        self.assertEqual(redact_uri("postgresql://gw@db/dm"), "postgresql://gw@db/dm")

    def test_redaction_of_password_parameters(self):
        # libpq also takes the password from the query string.
        self.assertEqual(
            redact_uri("postgresql://gw@db/dm?sslmode=require&password=s3cret&x=1"),
            "postgresql://gw@db/dm?sslmode=require&password=***&x=1",
        )
        self.assertEqual(
            redact_uri("postgresql:///dm?host=/run/pg&user=gw&password=pw&sslpassword=k3y"),
            "postgresql:///dm?host=/run/pg&user=gw&password=***&sslpassword=***",
        )
        self.assertEqual(
            redact_uri("postgresql://gw:a@db/dm?password=b"),
            "postgresql://gw:***@db/dm?password=***",
        )

    def test_store_description_hides_password_parameter(self):
        memory = MemoryReactorClock()
        store = make_store("postgresql://gw@127.0.0.1:1/dm?password=hunter2", memory)
        self.assertNotIn("hunter2", repr(store))
        self.assertNotIn("hunter2", store.description)
        self.successResultOf(store.close())

    def test_store_description_hides_password(self):
        # Nothing connects before the reactor runs.
        memory = MemoryReactorClock()
        store = make_store("postgresql://gw:hunter2@127.0.0.1:1/dm", memory)
        self.assertNotIn("hunter2", repr(store))
        self.assertNotIn("hunter2", store.description)
        self.successResultOf(store.close())


class UnreachableServerTests(TestCase):
    async def test_open_fails_with_a_store_error(self):
        port = _closed_port()
        with self.assertRaises(StoreError) as caught:
            await open_store(f"postgresql://gw:hunter2@127.0.0.1:{port}/dm?connect_timeout=5")
        self.assertNotIn("hunter2", str(caught.exception))


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresOnlyTests(OnPostgres, StoreCase, TestCase):
    async def test_tables_live_in_the_uri_schema(self):
        store = await self.open()
        schema = self.uri.rsplit("%3D", 1)[1]
        row = await store.run_interaction(
            "where",
            lambda txn: txn.fetchone(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = ?",
                ("devices",),
            ),
        )
        self.assertEqual(row["table_schema"], schema)

    async def _waiting_for_lock(self, conn, count):
        # Poll (bounded) until `count` backends wait for the migration lock.
        for _ in range(500):
            waiting = conn.execute(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()[0]
            if waiting >= count:
                return
            await task.deferLater(reactor, 0.01, lambda: None)
        self.fail(f"{count} stores never waited for the migration lock")

    async def test_concurrent_starts_wait_for_the_migration_lock(self):
        # Hold the lock, start two stores, see both wait, then let go: each
        # migration must be applied exactly once and both stores must work.
        with psycopg.connect(self.uri, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            opening = [open_store(self.uri, clock=self.clock) for _ in range(2)]
            try:
                await self._waiting_for_lock(holder, 2)
            finally:
                holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
            first, second = await defer.gatherResults(opening)
        self.addCleanup(first.close)
        self.addCleanup(second.close)
        rows = await first.run_interaction(
            "versions",
            lambda txn: txn.fetchall(
                "SELECT version, COUNT(*) AS n FROM schema_version GROUP BY version ORDER BY version"
            ),
        )
        self.assertEqual(
            [(r["version"], r["n"]) for r in rows], [(m.version, 1) for m in load_migrations()]
        )
        await add_device(first, "IMEI:1")
        self.assertIsNotNone(await second.get_device("IMEI:1"))

    async def test_a_cancel_losing_the_race_to_another_process_says_so(self):
        # Another process moves the job to running between this cancel's read
        # and its compare-and-set: the job is not cancelled, and the answer
        # must not say it is (nor stop its wake-ups, nor append a cancel event).
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("j1", "IMEI:1", [{"op": "Get", "target": "./DevDetail/SwV"}])
        await store.add_notification("IMEI:1", "sms", b"\x00", job_id="j1")
        with psycopg.connect(self.uri) as other:
            other.execute("UPDATE jobs SET state = 'running' WHERE job_id = 'j1'")  # not committed yet
            cancelling = store.cancel_job("j1")
            await until_a_lock_waits(other, "the cancel")
            other.commit()
        result = await cancelling
        self.assertEqual((result.cancelled, result.state, result.notifications), (False, "running", 0))
        self.assertEqual((await store.get_job("j1")).state, "running")
        self.assertEqual([n.state for n in await store.notifications_for_job("j1")], ["queued"])
        self.assertEqual(await store.events_after(0), [])

    async def test_lost_connection_fails_one_call_then_reconnects(self):
        store = await self.open(pool_min=1, pool_max=1)
        await add_device(store, "IMEI:1")
        pid = await store.run_interaction(
            "pid", lambda txn: txn.fetchone("SELECT pg_backend_pid() AS pid")["pid"]
        )
        with psycopg.connect(self.uri, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with self.assertRaises(StoreError):
            await store.get_device("IMEI:1")
        self.flushLoggedErrors()
        device = await store.get_device("IMEI:1")
        self.assertEqual(device.device_id, "IMEI:1")
