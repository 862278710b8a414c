"""
The inventory queries on both engines: filters and keyset paging of the
device list, migration 006's columns kept up to date, deleting a device
with or without its history, cancelling a job.
"""

from twisted.internet import task
from twisted.trial.unittest import TestCase

from dmgateway.store import NotFound
from dmgateway.store.devicepsk import DevicePskKeys
from dmgateway.store.inventory import DeviceFilter
from dmgateway.store.migrations.v006_inventory import inventory_columns
from tests.store.support import START, OnInlineSQLite, OnPostgres, OnSQLite, StoreCase, add_device

GET = [{"op": "Get", "target": "./DevInfo/Mod"}]


class InventoryTestsMixin(StoreCase):
    async def fleet(self):
        store = await self.open()
        for n in range(1, 8):
            await add_device(store, "IMEI:%d" % n, server_id="a" if n % 2 else "b",
                             msisdn=None if n == 3 else "+4477009000%02d" % n)
        await store.set_devinfo("IMEI:1", {"Man": "Acme", "Mod": "X1", "FwV": "1.0"})
        await store.set_devinfo("IMEI:2", {"Man": "Acme", "Mod": "X2", "FwV": "2.0"})
        await store.set_devinfo("IMEI:4", {"Man": "Other", "Mod": "X1"})
        await store.set_last_session("IMEI:1", {"ended": "2023-11-14T22:13:20.000Z"})  # START
        await store.set_last_session("IMEI:2", {"ended": "2023-11-14T22:30:00.000Z"})  # START + 1000
        for _ in range(5):
            await store.record_auth_failure("IMEI:5", START, max_failures=5, lockout=900)
        return store

    async def ids(self, store, limit=100, after=None, **where):
        devices = await store.find_devices(DeviceFilter(**where), limit, after)
        return [d.device_id for d in devices]

    async def test_filters(self):
        store = await self.fleet()
        self.assertEqual(await self.ids(store), ["IMEI:%d" % n for n in range(1, 8)])
        self.assertEqual(await self.ids(store, server_id="b"), ["IMEI:2", "IMEI:4", "IMEI:6"])
        self.assertEqual(await self.ids(store, man="Acme"), ["IMEI:1", "IMEI:2"])
        self.assertEqual(await self.ids(store, mod="X1"), ["IMEI:1", "IMEI:4"])
        self.assertEqual(await self.ids(store, man="Acme", mod="X1"), ["IMEI:1"])
        self.assertEqual(await self.ids(store, fwv="2.0"), ["IMEI:2"])
        self.assertEqual(await self.ids(store, has_msisdn=False), ["IMEI:3"])
        self.assertEqual(len(await self.ids(store, has_msisdn=True)), 6)
        self.assertEqual(await self.ids(store, session_after=START + 1), ["IMEI:2"])
        self.assertEqual(await self.ids(store, session_after=START), ["IMEI:1", "IMEI:2"])
        self.assertEqual(await self.ids(store, session_before=START + 1), ["IMEI:1"])
        self.assertEqual(await self.ids(store, never_seen=False), ["IMEI:1", "IMEI:2"])
        self.assertEqual(len(await self.ids(store, never_seen=True)), 5)
        self.assertEqual(await self.ids(store, locked=True), ["IMEI:5"])
        self.assertNotIn("IMEI:5", await self.ids(store, locked=False))
        self.clock.advance(901)  # the lockout is over
        self.assertEqual(await self.ids(store, locked=True), [])

    async def test_keyset_paging(self):
        store = await self.fleet()
        seen, after = [], None
        while True:
            page = await self.ids(store, limit=3, after=after, server_id="a")
            if not page:
                break
            seen += page
            after = page[-1]
        self.assertEqual(seen, ["IMEI:1", "IMEI:3", "IMEI:5", "IMEI:7"])

    async def test_inventory_columns_follow_devinfo_and_session(self):
        store = await self.fleet()
        await store.set_devinfo("IMEI:1", {"Man": "Acme", "Mod": "X9"})
        self.assertEqual(await self.ids(store, mod="X9"), ["IMEI:1"])
        self.assertEqual(await self.ids(store, fwv="1.0"), [])
        await store.set_last_session("IMEI:1", None)
        self.assertEqual(await self.ids(store, never_seen=False), ["IMEI:2"])

    async def test_inventory_indexes_hold_only_devices_with_a_value(self):
        # (migration 010: a never-seen device's first session adds an entry
        # instead of also moving one out of a long run of NULLs)
        store = await self.fleet()
        if self.engine == "sqlite":
            sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'devices_%'"
            column = "sql"
        else:
            sql = "SELECT indexname AS name, indexdef FROM pg_indexes WHERE indexname LIKE 'devices_%'"
            column = "indexdef"
        rows = await store.run_interaction("indexes", lambda txn: txn.fetchall(sql))
        definitions = {row["name"]: " ".join(row[column].split()) for row in rows}
        self.assertIn("WHERE devinfo_man IS NOT NULL", definitions["devices_man_mod"].replace("(", "").replace(")", ""))
        self.assertIn("WHERE last_session_at IS NOT NULL",
                      definitions["devices_last_session"].replace("(", "").replace(")", ""))
        # the filters on them answer as before (test_filters), and with no value at all
        await store.set_devinfo("IMEI:4", None)
        self.assertEqual(await self.ids(store, man="Other"), [])
        await store.set_last_session("IMEI:2", None)
        self.assertEqual(await self.ids(store, never_seen=False), ["IMEI:1"])
        self.assertEqual(await self.ids(store, session_after=START), ["IMEI:1"])
        self.assertEqual(len(await self.ids(store, never_seen=True)), 6)

    async def test_cancel_job(self):
        store = await self.fleet()
        await store.create_job("j1", "IMEI:1", GET)
        await store.add_notification("IMEI:1", "sms", b"\x00", job_id="j1")
        result = await store.cancel_job("j1")
        self.assertEqual((result.cancelled, result.state, result.notifications), (True, "failed", 1))
        job = await store.get_job("j1")
        self.assertEqual((job.state, job.error["code"]), ("failed", "cancelled"))
        (n,) = await store.notifications_for_job("j1")
        self.assertEqual((n.state, n.last_error), ("failed", "cancelled"))
        again = await store.cancel_job("j1")
        self.assertFalse(again.cancelled)
        events = await store.events_after(0)
        self.assertEqual([(e["type"], e["job_id"], e["error"]) for e in events], [("job", "j1", "cancelled")])
        with self.assertRaises(NotFound):
            await store.cancel_job("nope")

    async def test_cancel_job_running_only_when_asked(self):
        # a running job is cancelled only by its session's end (running=True),
        # straight from running: no write in between shows it waiting
        store = await self.fleet()
        await store.create_job("j1", "IMEI:1", GET)
        self.assertEqual(await store.start_jobs(["j1"], expect=("queued",)), ("j1",))
        refused = await store.cancel_job("j1")
        self.assertEqual((refused.cancelled, refused.state), (False, "running"))
        result = await store.cancel_job("j1", running=True)
        self.assertEqual((result.cancelled, result.state), (True, "failed"))
        job = await store.get_job("j1")
        self.assertEqual((job.state, job.error["code"]), ("failed", "cancelled"))
        events = await store.events_after(0)
        self.assertEqual([(e["job_id"], e["state"], e["error"]) for e in events], [("j1", "failed", "cancelled")])

    async def test_remove_device_keeps_or_purges_history(self):
        store = await self.fleet()
        await store.create_job("j1", "IMEI:1", GET)
        await store.create_job("j2", "IMEI:1", GET)
        await store.update_job("j2", state="done", results=[])
        await store.append_event("session", "IMEI:1", START, {"outcome": "completed"})
        await store.append_event("session", "IMEI:2", START, {"outcome": "completed"})
        self.assertEqual(await store.remove_device("IMEI:1", False), ["j1"])
        self.assertIsNone(await store.get_device("IMEI:1"))
        self.assertIsNone(await store.get_job("j1"))
        kinds = [(e["type"], e["device_id"]) for e in await store.events_after(0)]
        self.assertEqual(kinds, [("session", "IMEI:1"), ("session", "IMEI:2"), ("job", "IMEI:1"),
                                 ("device", "IMEI:1")])
        await store.append_event("session", "IMEI:4", START, {"outcome": "completed"})
        self.assertEqual(await store.remove_device("IMEI:4", True), [])
        self.assertNotIn("IMEI:4", [e["device_id"] for e in await store.events_after(0)])
        with self.assertRaises(NotFound):
            await store.remove_device("IMEI:4", True)

    async def test_remove_device_removes_its_psk_key_with_it(self):
        from dmgateway.store.devicepsk import DevicePskKeys

        from twisted.internet import task

        store = await self.fleet()
        keys = DevicePskKeys(store, task.Clock())
        await keys.set("IMEI:1", "psk-1", b"\x01" * 16)
        await keys.set("IMEI:2", "psk-2", b"\x02" * 16)
        await store.remove_device("IMEI:1", False)
        # the row went in the account's transaction: a restart loads the other key only
        reloaded = DevicePskKeys(store, None)
        self.assertEqual(await reloaded.load(), 1)
        self.assertIsNone(reloaded.key_for_identity("psk-1"))
        self.assertEqual(reloaded.key_for_identity("psk-2"), b"\x02" * 16)

    async def test_a_psk_key_left_behind_its_deleted_device_is_not_loaded(self):
        # (a row an older version's failed DELETE left: its key opens nothing)
        store = await self.fleet()
        await DevicePskKeys(store, task.Clock()).set("IMEI:1", "psk-1", b"\x01" * 16)

        def orphan(txn):
            txn.execute("INSERT INTO device_psk (device_id, identity, psk_key, updated) VALUES (?, ?, ?, ?)",
                        ("IMEI:gone", "psk-gone", "02" * 16, START))

        await store.run_interaction("orphan", orphan)
        reloaded = DevicePskKeys(store, task.Clock())
        self.assertEqual(await reloaded.load(), 1)
        self.assertIsNone(reloaded.key_for_identity("psk-gone"))
        self.assertEqual(reloaded.key_for_identity("psk-1"), b"\x01" * 16)

    async def orphan_psk_row(self, store, device_id, identity):
        """A row an older version's failed DELETE left behind its deleted device."""

        def orphan(txn):
            txn.execute("INSERT INTO device_psk (device_id, identity, psk_key, updated) VALUES (?, ?, ?, ?)",
                        (device_id, identity, "02" * 16, START))

        await store.run_interaction("orphan", orphan)

    async def test_a_device_created_again_does_not_inherit_a_key_left_behind(self):
        # (the JOIN of the load matched the old row again once the id was reused)
        store = await self.fleet()
        await self.orphan_psk_row(store, "IMEI:gone", "psk-gone")
        await add_device(store, "IMEI:gone")  # a new account, no TLS-PSK key
        reloaded = DevicePskKeys(store, task.Clock())
        self.assertEqual(await reloaded.load(), 0)
        self.assertIsNone(reloaded.key_for_identity("psk-gone"))
        self.assertIsNone(reloaded.identity_of("IMEI:gone"))

    async def test_an_identity_left_behind_its_deleted_device_is_free(self):
        store = await self.fleet()
        await self.orphan_psk_row(store, "IMEI:gone", "psk-gone")
        keys = DevicePskKeys(store, task.Clock())
        await keys.set("IMEI:1", "psk-gone", b"\x01" * 16)  # was PskIdentityTaken for good
        reloaded = DevicePskKeys(store, task.Clock())
        self.assertEqual(await reloaded.load(), 1)
        self.assertEqual(reloaded.identity_of("IMEI:1"), "psk-gone")

    async def test_no_key_is_written_for_a_device_there_is_not(self):
        # (a PUT whose device a DELETE removed between its account's transaction and its key's)
        store = await self.fleet()
        keys = DevicePskKeys(store, task.Clock())
        await keys.set("IMEI:1", "psk-1", b"\x01" * 16)
        await store.remove_device("IMEI:1", False)
        keys.forget("IMEI:1")  # (as the DELETE does once that is committed)
        with self.assertRaises(NotFound):
            await keys.set("IMEI:1", "psk-1", b"\x01" * 16)
        with self.assertRaises(NotFound):
            await keys.set("IMEI:none", "psk-9", b"\x09" * 16)
        self.assertIsNone(keys.key_for_identity("psk-1"))
        self.assertIsNone(keys.key_for_identity("psk-9"))

        def count(txn):
            return txn.fetchone("SELECT COUNT(*) AS n FROM device_psk")["n"]

        self.assertEqual(await store.run_interaction("count", count), 0)


class SQLiteInventoryTests(OnSQLite, InventoryTestsMixin, TestCase):
    pass


class SQLiteInlineInventoryTests(OnInlineSQLite, InventoryTestsMixin, TestCase):
    pass


class PostgresInventoryTests(OnPostgres, InventoryTestsMixin, TestCase):
    async def test_a_key_written_while_its_device_is_removed_goes_with_it(self):
        # two transactions at once: the key's, holding the device's row, and
        # the removal, which waits for it and then sees its row (with the key
        # deleted before the account, the removal missed the uncommitted row:
        # the deleted device's key stayed)
        import threading

        from twisted.internet import defer, reactor

        store = await self.open(pool_min=2, pool_max=2)
        await add_device(store, "IMEI:1")
        wrote, commit = threading.Event(), threading.Event()

        def set_key(txn):
            DevicePskKeys._set_txn(txn, "IMEI:1", "psk-race", "01" * 16, START)
            wrote.set()
            commit.wait(10)

        def remove(txn, *args):
            wrote.wait(10)
            return store._remove_device_txn(txn, *args)

        keyed = store.run_interaction("set_device_psk", set_key)
        removed = store.run_interaction("remove_device", remove, START, "IMEI:1", False)
        await task.deferLater(reactor, 0.5, lambda: None)  # the removal waits on the row now
        commit.set()
        await defer.gatherResults([keyed, removed], consumeErrors=True)
        rows = await store.run_interaction(
            "rows", lambda txn: txn.fetchall("SELECT device_id FROM device_psk"))
        self.assertEqual(rows, [])


def test_inventory_columns_of_odd_input():
    assert inventory_columns(None, None) == {"devinfo_man": None, "devinfo_mod": None, "devinfo_fwv": None}
    assert inventory_columns({"Man": 3}, {"ended": "not a time"})["last_session_at"] is None
    assert inventory_columns({}, {"ended": "2023-11-14T22:13:20Z"})["last_session_at"] == START
