"""One device's events (migration 008's index) on both engines: newest
first, by type, before a seq, other devices' events never mixed in."""

from twisted.trial.unittest import TestCase

from tests.store.support import START, PostgresEngine, SQLiteEngine, StoreCase, add_device


class DeviceEventsMixin(StoreCase):
    async def test_newest_first_by_type_and_before(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        seqs = []
        for n, (kind, device) in enumerate([("session", "IMEI:1"), ("notification", "IMEI:1"),
                                            ("session", "IMEI:2"), ("session", "IMEI:1"),
                                            ("lockout", "IMEI:1")]):
            seqs.append(await store.append_event(kind, device, START + n, {"n": n}))
        everything = await store.device_events("IMEI:1")
        self.assertEqual([e["n"] for e in everything], [4, 3, 1, 0])
        self.assertEqual({e["device_id"] for e in everything}, {"IMEI:1"})
        sessions = await store.device_events("IMEI:1", ("session",))
        self.assertEqual([e["n"] for e in sessions], [3, 0])
        two = await store.device_events("IMEI:1", ("session", "notification"), limit=2)
        self.assertEqual([e["n"] for e in two], [3, 1])
        older = await store.device_events("IMEI:1", ("session", "notification"), limit=2, before=seqs[1])
        self.assertEqual([e["n"] for e in older], [0])
        self.assertEqual(await store.device_events("IMEI:2", ("lockout",)), [])
        self.assertEqual(await store.device_events("IMEI:9"), [])
        with self.assertRaises(ValueError):
            await store.device_events("IMEI:1", limit=0)


class SQLiteDeviceEventsTests(SQLiteEngine, DeviceEventsMixin, TestCase):
    pass


class PostgresDeviceEventsTests(PostgresEngine, DeviceEventsMixin, TestCase):
    pass
