"""
The database under the store on every engine (L{dmgateway.store.database}):
opening, migrations, transactions, error translation, batches, closing.
"""

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dmgateway.store import (
    Conflict,
    NotFound,
    SchemaTooNew,
    StoreClosed,
    StoreError,
    open_store,
)
from dmgateway.store.migrations import Migration, load_migrations
from tests.store.support import OnInlineSQLite, OnOldSQLite, OnReactorSQLite, OnPostgres, OnSQLite, StoreCase, add_device

SHIPPED = [m.version for m in load_migrations()]


async def _versions(store):
    rows = await store.run_interaction(
        "versions",
        lambda txn: txn.fetchall("SELECT version, name FROM schema_version ORDER BY version"),
    )
    return [row["version"] for row in rows]


class LifecycleTestsMixin(StoreCase):
    async def test_open_applies_every_migration(self):
        store = await self.open()
        self.assertEqual(await store.schema_version(), SHIPPED[-1])
        self.assertEqual(await _versions(store), SHIPPED)
        self.assertEqual(store.engine, self.engine)

    async def test_failed_migration_leaves_nothing_behind(self):
        broken = load_migrations() + [
            Migration(version=99, name="broken", statements=("CREATE TABLE broken (",))
        ]
        with self.assertRaises(StoreError):
            await open_store(self.uri, clock=self.clock, migrations=broken)

        store = await self.open(migrations=[])
        self.assertEqual(await store.schema_version(), 0)
        self.assertEqual(await store.migrate(), SHIPPED)

    async def test_interaction_commits_or_rolls_back(self):
        store = await self.open()
        await add_device(store, "IMEI:1")

        def delete_then_fail(txn):
            txn.execute("DELETE FROM devices WHERE device_id = ?", ("IMEI:1",))
            raise KeyError("boom")

        with self.assertRaises(KeyError):
            await store.run_interaction("fail", delete_then_fail)
        self.assertIsNotNone(await store.get_device("IMEI:1"))

        deleted = await store.run_interaction(
            "delete",
            lambda txn: txn.execute("DELETE FROM devices WHERE device_id = ?", ("IMEI:1",)),
        )
        self.assertEqual(deleted, 1)
        self.assertIsNone(await store.get_device("IMEI:1"))

    async def test_engine_errors_become_store_errors(self):
        store = await self.open()
        with self.assertRaises(StoreError) as caught:
            await store.run_interaction(
                "bad", lambda txn: txn.execute("SELECT nothing FROM nowhere")
            )
        self.assertIs(type(caught.exception), StoreError)

        await add_device(store, "IMEI:1")
        duplicate = (
            "INSERT INTO counters (name, value) VALUES (?, ?)",
            ("events", 5),
        )
        with self.assertRaises(Conflict):
            await store.run_interaction("dup", lambda txn: txn.execute(*duplicate))
        # The store still works after a failed transaction.
        self.assertEqual(await store.last_event_seq(), 0)

    async def test_constraint_message_does_not_quote_the_row(self):
        store = await self.open()
        columns = (
            "device_id, server_id, client_auth_type, client_auth_name, client_user_hash,"
            " client_nonce, server_auth_type, server_auth_name, server_user_hash,"
            " server_secret, server_nonce, created, updated"
        )
        row = ("IMEI:9", "s", "md5", "n", "h", b"", "md5", "n", "h", "TOPSECRET", b"", 0.0, 0.0)
        with self.assertRaises(Conflict) as caught:
            await store.run_interaction(
                "raw",
                lambda txn: txn.execute(
                    f"INSERT INTO devices ({columns}) VALUES ({', '.join('?' * len(row))})",
                    row,
                ),
            )
        self.assertNotIn("TOPSECRET", str(caught.exception))

    async def test_closed_store_fails_cleanly(self):
        store = await open_store(self.uri, clock=self.clock)
        self.assertFalse(store.closed)
        await store.close()
        self.assertTrue(store.closed)
        for call in (
            lambda: store.get_device("IMEI:1"),
            lambda: store.append_event("x", None, 1.0, {}),
            lambda: store.due_notifications(0.0),
            lambda: store.migrate(),
        ):
            with self.assertRaises(StoreClosed):
                await call()
        await store.close()  # again: harmless

    async def test_close_lets_running_work_finish(self):
        store = await open_store(self.uri, clock=self.clock)
        created = defer.ensureDeferred(add_device(store, "IMEI:1"))
        fetched = store.list_devices()
        closing = store.close()
        closing_again = store.close()
        self.assertTrue(await created)
        self.assertIsInstance(await fetched, list)
        await closing
        await closing_again
        with self.assertRaises(StoreClosed):
            await store.get_device("IMEI:1")


class PersistenceTestsMixin(StoreCase):
    """What needs a database that outlives one store (not the private memory of inline)."""

    async def test_reopen_applies_nothing_and_keeps_data(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.close()

        store = await self.open()
        self.assertEqual(await store.migrate(), [])
        self.assertEqual(await _versions(store), SHIPPED)
        device = await store.get_device("IMEI:1")
        self.assertEqual(device.device_id, "IMEI:1")

    async def test_concurrent_opens_apply_once(self):
        first, second = await defer.gatherResults(
            [
                open_store(self.uri, clock=self.clock),
                open_store(self.uri, clock=self.clock),
            ]
        )
        self.addCleanup(first.close)
        self.addCleanup(second.close)
        self.assertEqual(await _versions(first), SHIPPED)
        await add_device(first, "IMEI:1")
        self.assertIsNotNone(await second.get_device("IMEI:1"))

    async def test_newer_schema_is_refused(self):
        store = await self.open()
        await store.run_interaction(
            "future",
            lambda txn: txn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (999, "future", 0.0),
            ),
        )
        await store.close()
        with self.assertRaises(SchemaTooNew) as caught:
            await open_store(self.uri, clock=self.clock)
        self.assertIn("999", str(caught.exception))


class BatchTestsMixin(StoreCase):
    async def test_batch_runs_in_one_transaction(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        results = await (
            store.batch()
            .set_devinfo("IMEI:1", {"Man": "X"})
            .append_event("session", "IMEI:1", 1.0, {"outcome": "ok"})
            .get_device("IMEI:1")
            .commit()
        )
        self.assertEqual(results[0], True)
        self.assertEqual(results[1], 1)
        self.assertEqual(results[2].devinfo, {"Man": "X"})

    async def test_short_batch_numbers_its_events_together(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        first = await store.append_event("before", None, 1.0)
        results = await (
            store.batch()
            .append_event("a", "IMEI:1", 2.0, {"n": 1})
            .get_device("IMEI:1")
            .append_event("b", None, 3.0)
            .transition_job("nope", "failed", expect=("queued",), device_id="IMEI:1", event={"x": 1})
            .append_event("c", "IMEI:1", 4.0, {"n": 3})
            .commit(short=True)
        )
        self.assertEqual([results[0], results[2], results[4]], [first + 1, first + 2, first + 3])
        self.assertEqual(results[1].device_id, "IMEI:1")
        self.assertFalse(results[3])  # no such job: no event
        self.assertEqual(await store.last_event_seq(), first + 3)
        events = await store.events_after(first)
        self.assertEqual(
            [(e["seq"], e["type"], e["device_id"], e["time"], e.get("n")) for e in events],
            [(first + 1, "a", "IMEI:1", 2.0, 1), (first + 2, "b", None, 3.0, None), (first + 3, "c", "IMEI:1", 4.0, 3)],
        )
        self.assertEqual(await store.append_event("after", None, 5.0), first + 4)
        # a bad event fails the whole short batch
        with self.assertRaises(ValueError):
            await store.batch().append_event("d", None, 6.0).append_event("e", None, 6.0, {"seq": 1}).commit(short=True)
        self.assertEqual(await store.last_event_seq(), first + 4)

    async def test_short_batch_with_more_events_than_one_statement_takes(self):
        # Events of a short batch are written together; a message of many
        # generic alerts (max_elements is configurable up to 10M) must not
        # meet the engine's limit on parameters in one statement
        # (PostgreSQL 65,535; SQLite's default 32,766, 999 before 3.32).
        store = await self.open()
        first = await store.last_event_seq()
        batch = store.batch()
        count = 13_200  # 66,000 parameters at 5 per event
        for n in range(count):
            batch.append_event("generic_alert", None, 1.0, {"n": n})
        results = await batch.commit(short=True)
        self.assertEqual(results, list(range(first + 1, first + count + 1)))
        events = await store.events_after(first + count - 2)
        self.assertEqual([(e["seq"], e["n"]) for e in events], [(first + count - 1, count - 2), (first + count, count - 1)])

    async def test_failed_batch_changes_nothing(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        batch = store.batch().set_devinfo("IMEI:1", {"Man": "Y"}).start_session("s1", "IMEI:missing", "n")
        with self.assertRaises(NotFound):
            await batch.commit()
        self.assertIsNone((await store.get_device("IMEI:1")).devinfo)
        self.assertEqual(await store.batch().commit(), [])
        with self.assertRaises(AttributeError):
            store.batch().close()

    async def test_a_batch_can_be_committed_again_and_keeps_its_refusals(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        batch = store.batch().get_device("IMEI:1")
        other = store.batch().append_event("other", None, 1.0)  # (its own work)
        self.assertEqual(len(batch), 1)
        (device,) = await batch.commit()
        self.assertEqual(device.device_id, "IMEI:1")
        self.assertEqual(len(batch), 0)
        results = await batch.set_devinfo("IMEI:1", {"Man": "Z"}).get_device("IMEI:1").commit(short=True)
        self.assertEqual((results[0], results[1].devinfo), (True, {"Man": "Z"}))
        self.assertEqual(len(other), 1)
        # recorders of methods called before do not let other names through
        for name in ("close", "migrate", "batch", "_get_device_txn", "no_such_method", "description"):
            with self.assertRaises(AttributeError, msg=name):
                getattr(store.batch(), name)

    async def test_batches_record_interleaved_and_see_the_stores_methods_as_they_are(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        first, second = store.batch(), store.batch()
        first.set_devinfo("IMEI:1", {"Man": "A"})
        second.get_device("IMEI:1")
        first.get_device("IMEI:1")
        self.assertEqual((len(first), len(second)), (2, 1))
        self.assertEqual((await first.commit())[1].devinfo, {"Man": "A"})
        # a transaction function replaced on the store after a batch is
        # what the next batch records
        seen = []
        real = store._set_devinfo_txn

        def spy(txn, now, device_id, devinfo):
            seen.append(devinfo)
            return real(txn, now, device_id, devinfo)

        store._set_devinfo_txn = spy
        await store.batch().set_devinfo("IMEI:1", {"Man": "B"}).commit()
        self.assertEqual(seen, [{"Man": "B"}])
        self.assertEqual((await second.commit())[0].devinfo, {"Man": "B"})


class SQLiteLifecycleTests(OnSQLite, LifecycleTestsMixin, TestCase):
    pass


class SQLiteInlineLifecycleTests(OnInlineSQLite, LifecycleTestsMixin, TestCase):
    pass


class PostgresLifecycleTests(OnPostgres, LifecycleTestsMixin, TestCase):
    pass


class SQLitePersistenceTests(OnSQLite, PersistenceTestsMixin, TestCase):
    pass


class PostgresPersistenceTests(OnPostgres, PersistenceTestsMixin, TestCase):
    pass


class SQLiteBatchTests(OnSQLite, BatchTestsMixin, TestCase):
    pass


class SQLiteInlineBatchTests(OnInlineSQLite, BatchTestsMixin, TestCase):
    pass


class PostgresBatchTests(OnPostgres, BatchTestsMixin, TestCase):
    pass


class OpenStoreTests(SynchronousTestCase):
    def test_unknown_scheme(self):
        failure = self.failureResultOf(open_store("mysql://db/x"), ValueError)
        self.assertIn("sqlite:PATH or postgresql://", str(failure.value))

    def test_no_password_in_unknown_scheme_error(self):
        failure = self.failureResultOf(open_store("mysql://u:pw@db/x"), ValueError)
        self.assertNotIn("pw", str(failure.value))

    def test_sqlite_without_path(self):
        self.failureResultOf(open_store("sqlite:"), ValueError)

    def test_inline_store_answers_at_once(self):
        store = self.successResultOf(open_store("sqlite::memory:?inline=1"))
        self.assertEqual(self.successResultOf(store.schema_version()), SHIPPED[-1])
        self.assertIsNone(self.successResultOf(store.close()))

    def test_inline_option_values(self):
        from dmgateway.store.sqlite import sqlite_inline

        # a file's short transactions run in the calling thread unless inline=0;
        # a private memory database runs on the pool unless inline=1
        self.assertTrue(sqlite_inline("sqlite:var/x.db"))
        self.assertTrue(sqlite_inline("sqlite:var/x.db?inline=1"))
        self.assertFalse(sqlite_inline("sqlite:var/x.db?inline=0"))
        # commits that wait for the disk stay off the calling thread: asking
        # for both is refused with the reason
        self.assertFalse(sqlite_inline("sqlite:var/x.db?synchronous=full"))
        with self.assertRaises(ValueError) as refused:
            sqlite_inline("sqlite:var/x.db?synchronous=full&inline=1")
        self.assertIn("wait for the disk in the reactor thread", str(refused.exception))
        self.assertTrue(sqlite_inline("sqlite::memory:?synchronous=full&inline=1"))
        self.assertFalse(sqlite_inline("sqlite::memory:"))
        self.assertTrue(sqlite_inline("sqlite::memory:?inline=1"))
        failure = self.failureResultOf(open_store("sqlite::memory:?inline=yes"), ValueError)
        self.assertIn("inline=0|1", str(failure.value))
        self.failureResultOf(open_store("sqlite:var/x.db?inline=2"), ValueError)

    def test_bad_pool_size(self):
        failure = self.failureResultOf(
            open_store("postgresql://u@127.0.0.1/x?pool_max=lots"), ValueError
        )
        self.assertIn("pool_max", str(failure.value))


class SQLiteReactorLifecycleTests(OnReactorSQLite, LifecycleTestsMixin, TestCase):
    pass


class SQLiteReactorBatchTests(OnReactorSQLite, BatchTestsMixin, TestCase):
    pass


class OldSQLiteBatchTests(OnOldSQLite, BatchTestsMixin, TestCase):
    pass
