"""
What the store test modules share: the engines (and the inline SQLite mode) as mixins, and a way to
open a store that the test closes again.

A suite is written once as a mixin and made concrete per engine:

    class SQLiteDeviceTests(OnSQLite, DeviceTestsMixin, TestCase): ...
    class SQLiteInlineDeviceTests(OnInlineSQLite, DeviceTestsMixin, TestCase): ...
    class SQLiteReactorDeviceTests(OnReactorSQLite, DeviceTestsMixin, TestCase): ...
    class PostgresDeviceTests(OnPostgres, DeviceTestsMixin, TestCase): ...
"""

import base64
import hashlib
import sqlite3
import threading

import pytest
from twisted.internet import task

from dmgateway.store import ClientAuth, ServerAuth, open_store

#: Where the injected clock starts (bookkeeping times in rows).
START = 1_700_000_000.0


class OnSQLite:
    """Run the suite on an SQLite file in a fresh temporary directory."""

    engine = "sqlite"

    @pytest.fixture(autouse=True)
    def _engine(self, tmp_path):
        self.tmp_path = tmp_path
        self.uri = f"sqlite:{tmp_path / 'var' / 'store.db'}"


class OnInlineSQLite:
    """
    Run the suite on a private in-memory SQLite whose transactions run at
    once in the test's thread (C{?inline=1}): the mode dispatcher tests use
    on a C{task.Clock}, held to the same suite as the real engines.
    """

    engine = "sqlite"

    @pytest.fixture(autouse=True)
    def _engine(self, tmp_path):
        self.tmp_path = tmp_path
        self.uri = "sqlite::memory:?inline=1"


class OnOldSQLite(OnSQLite):
    """
    Run the suite on an SQLite file as an SQLite library before 3.35 (RHEL 9
    ships 3.34 with its Python 3.11) would: a statement with C{RETURNING}
    fails as that library's parser fails it, so the store must not send one.
    """

    old_sqlite = True


class OnReactorSQLite(OnSQLite):
    """
    Run the suite on an SQLite file with every transaction of the store
    L{StoreCase.open} gives marked short: the dispatcher's way, at once on
    the reactor connection (L{dmgateway.store.sqlite.ReactorConnection}).
    """

    short = True


class OnPostgres:
    """Run the suite on a fresh database of the test run's PostgreSQL."""

    engine = "postgresql"

    @pytest.fixture(autouse=True)
    def _engine(self, tmp_path, postgresql_uri):
        self.tmp_path = tmp_path
        self.uri = postgresql_uri


class StoreCase:
    """Base mixin: an injected clock and L{open}."""

    timeout = 60

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)

    async def open(self, **kwargs):
        """Open the engine's store (closed again after the test)."""
        store = await open_store(self.uri, clock=self.clock, **kwargs)
        self.addCleanup(store.close)
        if getattr(self, "old_sqlite", False):
            engine = store.database_engine
            engine.returning = False
            translate = engine.sql

            def sql(text):
                if "RETURNING" in text.upper():
                    raise sqlite3.OperationalError('near "RETURNING": syntax error')
                return translate(text)

            engine.sql = sql
            engine.native_placeholders = False  # (so that every statement goes through sql)
        if getattr(self, "short", False):
            run = store.run_interaction
            store.run_interaction = lambda desc, func, *args, short=True: run(desc, func, *args, short=True)
        return store

    def hold_pool(self, store, work=lambda txn: "held"):
        """
        A transaction on the store's pool that starts, waits until the
        returned event is set, then returns C{work(txn)}: C{(release, its
        Deferred)}, once it has started.
        """
        release = threading.Event()
        started = threading.Event()

        def held(txn):
            started.set()
            release.wait(30)
            return work(txn)

        running = store.run_interaction("held", held)
        self.addCleanup(release.set)
        started.wait(30)
        return release, running


def user_hash(name: str, secret: str) -> str:
    """B64(MD5(name:secret)), as the auth module computes it."""
    digest = hashlib.md5(f"{name}:{secret}".encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def md5_client(nonce=None, name="dev-user", secret="dev-secret"):
    return ClientAuth("md5", name, user_hash(name, secret), nonce)


def md5_server(nonce=None, name="dmgw", secret="srv-secret"):
    return ServerAuth("md5", name, user_hash(name, secret), secret, nonce)


async def add_device(store, device_id="IMEI:350000000000001", **kwargs):
    """Create a device with md5 credentials both ways."""
    fields = dict(
        server_id="dmgw.example",
        client_auth=md5_client(),
        server_auth=md5_server(),
        msisdn="+447700900001",
    )
    fields.update(kwargs)
    return await store.put_device(device_id, **fields)


def record_statements(case):
    """
    The SQL of every statement the stores run from now on, in order: a list
    that ``Txn.execute`` (patched on ``case`` until it ends) appends to.
    """
    from dmgateway.store import database

    statements = []
    execute = database.Txn.execute

    def traced(txn, sql, args=()):
        statements.append(sql)
        return execute(txn, sql, args)

    case.patch(database.Txn, "execute", traced)
    return statements


async def until_a_lock_waits(connection, what):
    """
    Poll PostgreSQL (through C{connection}, a psycopg connection) until some
    transaction waits for a lock (C{pg_locks}, not granted); fail the test
    after five seconds (an C{AssertionError}, as C{TestCase.fail}) saying
    C{what} never waited.
    """
    from twisted.internet import reactor

    for _ in range(500):
        if connection.execute("SELECT COUNT(*) FROM pg_locks WHERE NOT granted").fetchone()[0]:
            return
        await task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"{what} never waited for the other writer's row lock")


def fill_other_jobs(uri: str, device_id: str, state: str, count: int = 20000) -> None:
    """Insert ``count`` jobs of ``device_id`` in ``state`` into the PostgreSQL
    store at ``uri`` and analyse the table: with that many jobs elsewhere the
    planner finds a message's few jobs by their ids (the order a deadlock
    between row locks taken in different orders needs)."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as admin:
        admin.execute("INSERT INTO jobs (job_id, device_id, state, commands, atomic, notify, ui_mode, results,"
                      " created, updated) SELECT 'x' || n, %s, %s, '[]', 0, 'none', 0, '[]', 0, 0"
                      " FROM generate_series(1, %s) AS n", (device_id, state, count))
        admin.execute("ANALYZE jobs")
