"""What only the SQLite engine has: paths, pragmas, sharing a file."""

import os
import sqlite3

from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dmgateway.store import open_store
from dmgateway.store.sqlite import parse_sqlite_uri
from tests.store.support import OnSQLite, StoreCase, add_device


class URITests(SynchronousTestCase):
    def test_paths(self):
        self.assertEqual(parse_sqlite_uri("sqlite:/var/lib/dmgw/store.db"), "/var/lib/dmgw/store.db")
        self.assertEqual(parse_sqlite_uri("sqlite:store.db"), "store.db")
        self.assertEqual(parse_sqlite_uri("sqlite:///var/x.db"), "/var/x.db")
        self.assertEqual(parse_sqlite_uri("sqlite::memory:"), ":memory:")

    def test_refusals(self):
        for uri in ("sqlite:", "sqlite://", "postgresql://x/y"):
            with self.assertRaises(ValueError):
                parse_sqlite_uri(uri)


class SQLiteOnlyTests(OnSQLite, StoreCase, TestCase):
    async def test_creates_the_directory(self):
        path = self.tmp_path / "a" / "b" / "c" / "store.db"
        store = await open_store(f"sqlite:{path}", clock=self.clock)
        self.addCleanup(store.close)
        self.assertTrue(path.exists())

    async def test_connection_settings(self):
        store = await self.open()

        def pragmas(txn):
            names = ("journal_mode", "foreign_keys", "busy_timeout")
            return {name: list(txn.fetchone(f"PRAGMA {name}").values())[0] for name in names}

        settings = await store.run_interaction("pragmas", pragmas)
        self.assertEqual(settings["journal_mode"], "wal")
        self.assertEqual(settings["foreign_keys"], 1)
        self.assertGreaterEqual(settings["busy_timeout"], 1000)

    async def test_cache_and_mmap_defaults_on_the_connection(self):
        from dmgateway.store.sqlite import CACHE_SIZE_KIB, MMAP_SIZE

        store = await self.open()
        settings = await store.run_interaction("pragmas", _memory_pragmas)
        self.assertEqual(settings, {"cache_size": -CACHE_SIZE_KIB, "mmap_size": MMAP_SIZE})

    async def test_cache_and_mmap_options_on_every_pooled_connection(self):
        from dmgateway.store.sqlite import SQLiteEngine

        engine = SQLiteEngine.from_uri(f"{self.uri}?cache_size=4096&mmap_size=1048576")
        pool = engine.connection_pool(reactor)
        self.addCleanup(pool.close)
        # the setup is the pool's open function: every connection it opens gets it
        self.assertEqual(await pool.runWithConnection(_connection_pragmas), {"cache_size": -4096, "mmap_size": 1048576})
        store = await open_store(f"{self.uri}?cache_size=4096&mmap_size=0", clock=self.clock)
        self.addCleanup(store.close)
        settings = await store.run_interaction("pragmas", _memory_pragmas)
        self.assertEqual(settings, {"cache_size": -4096, "mmap_size": 0})

    async def test_a_new_file_gets_the_page_size_and_an_old_one_keeps_its_own(self):
        from dmgateway.store.sqlite import PAGE_SIZE

        self.assertNotEqual(PAGE_SIZE, 4096)
        store = await self.open()
        self.assertEqual(await _page_size(store), PAGE_SIZE)
        # a store file made before (SQLite's default page, WAL) migrates, serves
        # sessions on the reactor connection and reopens with its page as it is
        path = self.tmp_path / "old.db"
        old = sqlite3.connect(str(path), isolation_level=None)
        old.execute("PRAGMA page_size = 4096")
        old.execute("PRAGMA journal_mode = WAL")
        old.execute("CREATE TABLE before_us (x)")
        old.close()
        for _ in range(2):
            store = await open_store(f"sqlite:{path}", clock=self.clock)
            self.addCleanup(store.close)
            self.assertEqual(await _page_size(store), 4096)
            if await store.get_device("IMEI:1") is None:
                await add_device(store, "IMEI:1")
            device, jobs = await store.session_reads("IMEI:1")
            self.assertEqual((device.device_id, jobs), ("IMEI:1", []))
            batch = store.batch()
            batch.start_session("s1", "IMEI:1", "node-a", 1.0)
            batch.end_session("s1", 2.0, "completed")
            await batch.commit(short=True)
            self.assertEqual((await store.get_device("IMEI:1")).last_session["outcome"], "completed")
            await store.close()
        checked = sqlite3.connect(str(path))
        self.addCleanup(checked.close)
        self.assertEqual(checked.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        self.assertEqual(checked.execute("PRAGMA page_size").fetchone(), (4096,))

    async def test_opening_waits_for_another_writer_instead_of_failing(self):
        # A second process opening the file while another one writes (two
        # daemons, or dmgw beside the daemon, starting at once): SQLite answers
        # the switch to WAL with "database is locked" at once, without its
        # busy handler, so the open must wait for the lock like any write.
        path = self.tmp_path / "shared.db"
        other = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.addCleanup(other.close)
        other.execute("CREATE TABLE other_process (x)")
        other.execute("BEGIN IMMEDIATE")
        reactor.callLater(0.3, other.execute, "COMMIT")
        store = await open_store(f"sqlite:{path}", clock=self.clock)
        self.addCleanup(store.close)
        journal = await store.run_interaction("mode", lambda txn: txn.fetchone("PRAGMA journal_mode"))
        self.assertEqual(list(journal.values()), ["wal"])

    async def test_memory_stores_are_private(self):
        first = await open_store("sqlite::memory:", clock=self.clock)
        self.addCleanup(first.close)
        second = await open_store("sqlite::memory:", clock=self.clock)
        self.addCleanup(second.close)
        await add_device(first, "IMEI:1")
        self.assertIsNotNone(await first.get_device("IMEI:1"))
        self.assertIsNone(await second.get_device("IMEI:1"))

    async def test_two_stores_share_a_file(self):
        # Two pools on one file behave like two processes: writes queue up
        # on the database lock instead of failing.
        first = await self.open()
        second = await self.open()
        seqs = await defer.gatherResults(
            [
                (first if i % 2 else second).append_event("tick", None, float(i), {"i": i})
                for i in range(20)
            ]
        )
        self.assertEqual(sorted(seqs), list(range(1, 21)))
        self.assertEqual(len(await second.events_after(0, limit=100)), 20)
        self.assertTrue(os.path.exists(self.uri[len("sqlite:"):] + "-wal"))


async def _page_size(store):
    row = await store.run_interaction("page_size", lambda txn: txn.fetchone("PRAGMA page_size"))
    return list(row.values())[0]


def _connection_pragmas(connection):
    return {name: connection.execute(f"PRAGMA {name}").fetchone()[0] for name in ("cache_size", "mmap_size")}


def _memory_pragmas(txn):
    return {name: list(txn.fetchone(f"PRAGMA {name}").values())[0] for name in ("cache_size", "mmap_size")}


def test_inline_memory_connection_has_the_cache_size():
    from dmgateway.store.sqlite import SQLiteEngine

    pool = SQLiteEngine.from_uri("sqlite::memory:?inline=1&cache_size=8192").connection_pool(reactor)
    try:
        # (mmap does not apply to an in-memory database: SQLite reports no mmap_size for it)
        cache = pool.runWithConnection(lambda connection: connection.execute("PRAGMA cache_size").fetchone()[0])
        assert cache.result == -8192
    finally:
        pool.close()


def test_cache_and_mmap_options():
    import pytest

    from dmgateway.store.sqlite import CACHE_SIZE_KIB, MMAP_SIZE, parse_sqlite_uri, sqlite_cache_size, sqlite_mmap_size

    assert sqlite_cache_size("sqlite:var/x.db") == CACHE_SIZE_KIB == 64 * 1024
    assert sqlite_mmap_size("sqlite:var/x.db") == MMAP_SIZE == 2 * 1024 * 1024 * 1024 - 64 * 1024
    uri = "sqlite:var/x.db?synchronous=full&cache_size=2000&mmap_size=0"
    assert (sqlite_cache_size(uri), sqlite_mmap_size(uri), parse_sqlite_uri(uri)) == (2000, 0, "var/x.db")
    for bad in ("cache_size=0", "cache_size=-2000", "cache_size=64MiB", "cache_size=", "mmap_size=-1",
                "mmap_size=1e9", "mmap_size=\u0661"):
        with pytest.raises(ValueError, match="bad SQLite store option"):
            sqlite_cache_size("sqlite:var/x.db?" + bad)


def test_synchronous_option():
    from dmgateway.store.sqlite import parse_sqlite_uri, sqlite_synchronous

    assert sqlite_synchronous("sqlite:var/x.db") == "normal"
    assert sqlite_synchronous("sqlite:var/x.db?synchronous=FULL") == "full"
    assert parse_sqlite_uri("sqlite:var/x.db?synchronous=full") == "var/x.db"
    import pytest

    with pytest.raises(ValueError):
        sqlite_synchronous("sqlite:var/x.db?sync=off")


def test_none_and_bytes_are_bound_as_they_are_without_an_adapter_lookup():
    # (the store registers them as what they are: found in the registry,
    # they skip sqlite3's protocol lookups; bound as before)
    assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None) is None
    nonce = b"\x00\xffn"
    assert sqlite3.adapters[(bytes, sqlite3.PrepareProtocol)](nonce) is nonce
    connection = sqlite3.connect(":memory:")
    try:
        row = connection.execute("SELECT ?, typeof(?), ?, typeof(?)", (None, None, nonce, nonce)).fetchone()
    finally:
        connection.close()
    assert row == (None, "null", nonce, "blob")
