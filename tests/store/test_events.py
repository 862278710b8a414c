"""
The event log, cursors and pruning on every engine; one device's events
(migration 008's index): newest first, by type, before a seq, other
devices' events never mixed in (L{dmgateway.store.events}).
"""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.store.support import START, OnInlineSQLite, OnOldSQLite, OnReactorSQLite, OnPostgres, OnSQLite, StoreCase, add_device


class EventTestsMixin(StoreCase):
    async def test_append_and_read_in_order(self):
        store = await self.open()
        self.assertEqual(await store.last_event_seq(), 0)
        self.assertEqual(await store.events_after(0), [])
        alert = {
            "source": "./FUMO",
            "target": None,
            "meta_type": "org.openmobilealliance.dm.firmwareupdate.devicerequest",
            "format": "chr", "mark": "critical", "data": "ünïcode \U0001f600", "correlator": "c-1",
        }
        seqs = [
            await store.append_event("generic_alert", "IMEI:1", 10.5, alert),
            await store.append_event("session", "IMEI:1", 11.0, {"outcome": "ok"}),
            await store.append_event("notification", None, 12.0),
            await store.append_event("session", "IMEI:2", 13.0, {"outcome": "failed"}),
        ]
        self.assertEqual(seqs, sorted(set(seqs)))
        self.assertEqual(await store.last_event_seq(), seqs[-1])

        first = await store.events_after(0, limit=2)
        self.assertEqual(
            first,
            [
                dict({"seq": seqs[0], "type": "generic_alert", "device_id": "IMEI:1", "time": 10.5}, **alert),
                {"seq": seqs[1], "type": "session", "device_id": "IMEI:1", "time": 11.0, "outcome": "ok"},
            ],
        )
        rest = await store.events_after(first[-1]["seq"], limit=10)
        self.assertEqual([e["seq"] for e in rest], seqs[2:])
        self.assertEqual(rest[0], {"seq": seqs[2], "type": "notification", "device_id": None, "time": 12.0})
        self.assertEqual(await store.events_after(seqs[-1]), [])

    async def test_payload_cannot_shadow_event_fields(self):
        store = await self.open()
        for key in ("seq", "type", "device_id", "time"):
            with self.assertRaises(ValueError):
                await store.append_event("session", "IMEI:1", 1.0, {key: 1})
        with self.assertRaises(TypeError):
            await store.append_event("session", "IMEI:1", 1.0, ["x"])
        with self.assertRaises(ValueError):
            await store.append_event("", "IMEI:1", 1.0, {})
        for type_, device_id, time, payload, error in [
            (b"session", "IMEI:1", 1.0, {}, TypeError), (None, "IMEI:1", 1.0, {}, TypeError),
            ("session", b"IMEI:1", 1.0, {}, TypeError), ("session", "IMEI:1", "1.0", {}, TypeError),
            ("session", "IMEI:1", True, {}, TypeError), ("session", "IMEI:1", float("inf"), {}, ValueError),
            ("session", "IMEI:1", float("nan"), {}, ValueError), ("session", "IMEI:1", 1.0, "{}", TypeError),
        ]:
            with self.assertRaises(error):
                await store.append_event(type_, device_id, time, payload)
        self.assertEqual(await store.last_event_seq(), 0)
        # (what the checks let through: subclasses of str and dict, a whole number of seconds)
        text, mapping = type("Text", (str,), {}), type("Mapping", (dict,), {})
        self.assertEqual(await store.append_event(text("session"), text("IMEI:1"), 2, mapping(a=1)), 1)
        (event,) = await store.events_after(0)
        self.assertEqual(event, {"seq": 1, "type": "session", "device_id": "IMEI:1", "time": 2, "a": 1})

    async def test_consumer_cursors(self):
        store = await self.open()
        url = "https://hooks.example/dm?x=1"
        self.assertEqual(await store.get_cursor(url), 0)
        await store.set_cursor(url, 7)
        await store.set_cursor("other", 3)
        await store.set_cursor(url, 9)
        self.assertEqual(await store.get_cursor(url), 9)
        self.assertEqual(await store.get_cursor("other"), 3)
        seq = await store.append_event("session", "IMEI:1", 1.0, {})
        self.assertEqual(seq, 1, "cursors must not disturb event numbering")
        with self.assertRaises(ValueError):
            await store.set_cursor("", 1)

    async def test_concurrent_appends_stay_ordered(self):
        store = await self.open(pool_max=4) if self.engine == "postgresql" else await self.open()
        seqs = await defer.gatherResults(
            [store.append_event("tick", None, float(i), {"i": i}) for i in range(20)]
        )
        self.assertEqual(len(set(seqs)), 20)
        events = await store.events_after(0, limit=100)
        self.assertEqual([e["seq"] for e in events], sorted(seqs))
        by_seq = {e["seq"]: e["i"] for e in events}
        self.assertEqual([by_seq[s] for s in seqs], list(range(20)))

    async def test_prune_keeps_numbering(self):
        store = await self.open()
        for t in (10.0, 20.0, 30.0):
            await store.append_event("tick", None, t)
        self.assertEqual(await store.prune_events(25.0), 2)
        self.assertEqual([e["time"] for e in await store.events_after(0)], [30.0])
        self.assertEqual(await store.last_event_seq(), 3)
        self.assertEqual(await store.append_event("tick", None, 40.0), 4)

    async def test_pruning_the_newest_events_keeps_numbering(self):
        store = await self.open()
        for t in (10.0, 20.0, 30.0):
            await store.append_event("tick", None, t)
        self.assertEqual(await store.prune_events(100.0), 3)
        self.assertEqual(await store.events_after(0), [])
        self.assertEqual(await store.last_event_seq(), 3)
        self.assertEqual(await store.append_event("tick", None, 40.0), 4)
        # (and in a short batch, as a DM session writes its events)
        await store.prune_events(100.0)
        batch = store.batch()
        batch.append_event("tick", None, 50.0)
        batch.append_event("tick", None, 51.0)
        self.assertEqual(await batch.commit(short=True), [5, 6])
        self.assertEqual(await store.last_event_seq(), 6)
        await store.prune_events(100.0)
        self.assertEqual(await store.prune_events(100.0), 0)
        self.assertEqual(await store.last_event_seq(), 6)
        self.assertEqual(await store.append_event("tick", None, 60.0), 7)

    async def test_a_session_batch_encodes_a_value_it_writes_twice_once(self):
        # (a DM session's summary is its session event's payload and its
        # device's last session: the same text as written alone, encoded once)
        from dmgateway.store import database

        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        summary = {"session_id": "1", "ended": "2026-12-06T05:01:42.847Z", "outcome": "completed", "jobs": ["j"]}
        alone = [await store.append_event("session", "IMEI:1", 10.0, summary),
                 await store.update_device("IMEI:1", last_session=summary)]
        encoded = []
        dump_json = database.dump_json
        self.patch(database, "dump_json", lambda value, what: encoded.append(what) or dump_json(value, what))
        batch = store.batch()
        batch.append_event("session", "IMEI:2", 10.0, summary)
        batch.update_device("IMEI:2", last_session=summary, devinfo={"Man": "m"})
        batched = await batch.commit(short=True)
        self.assertEqual((alone[1], batched[1]), (True, True))
        self.assertEqual(encoded, ["event payload", "devinfo"])
        events = await store.events_after(0)
        self.assertEqual([dict(e, device_id=None, seq=None) for e in events[-2:]],
                         [dict(e, device_id=None, seq=None) for e in events[-2:][:1]] * 2)
        devices = [await store.get_device(device_id) for device_id in ("IMEI:1", "IMEI:2")]
        self.assertEqual([d.last_session for d in devices], [summary, summary])
        # ...and what it cannot encode is refused as before, naming the first use
        batch = store.batch()
        batch.append_event("session", "IMEI:2", 11.0, {"bad": {1.5j}})
        with self.assertRaisesRegex(ValueError, "event payload is not JSON-serialisable"):
            await batch.commit(short=True)
        # (a long batch encodes every value)
        del encoded[:]
        batch = store.batch()
        batch.append_event("session", "IMEI:2", 12.0, summary)
        batch.update_device("IMEI:2", last_session=summary)
        await batch.commit()
        self.assertEqual(encoded, ["event payload", "last session"])
        rows = await store.run_interaction("test", lambda txn: txn.fetchall(
            "SELECT payload FROM events WHERE device_id = ? ORDER BY seq", ("IMEI:2",)))
        self.assertEqual({row["payload"] for row in rows}, {dump_json(summary, "")})

    async def test_a_jobs_end_in_a_session_batch_is_the_checked_event(self):
        # (the job event a session's batch appends for a job it ends skips the
        # checks and the encoder for its usual payload: the same rows, the
        # same text; any other payload, device id or time takes the checked way)
        from dmgateway.store.rows import dump_json

        store = await self.open()
        appends = [
            ("IMEI:1", 10.25, {"job_id": "0123456789abcdef0123456789abcdef", "state": "done"}),
            ("IMEI:1", 10.5, {"job_id": "j\u00e9\"\\\n\U0001f600", "state": "failed"}),
            ("IMEI:1", 10.5, {"job_id": "j3", "state": "failed", "error": "E"}),
            ("IMEI:1", 10.5, {"state": "done", "job_id": "j4"}),
            ("IMEI:1", 10.5, {"job_id": 5, "state": "done"}),
            (None, 11, {"job_id": "j6", "state": "expired"}),
        ]
        work = [("end", store._append_job_event_txn, append) for append in appends]
        seqs = await store.run_interaction("test", store._batch_txn, work, True, short=True)
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(appends))))
        rows = await store.run_interaction("test", lambda txn: txn.fetchall(
            "SELECT type, device_id, time, payload FROM events ORDER BY seq"))
        self.assertEqual(rows, [{"type": "job", "device_id": device_id, "time": time,
                                 "payload": dump_json(payload, "")} for device_id, time, payload in appends])
        for device_id, time, payload, error in [
            (5, 1.0, {"job_id": "j", "state": "done"}, TypeError),
            ("IMEI:1", float("nan"), {"job_id": "j", "state": "done"}, ValueError),
            ("IMEI:1", 1.0, {"job_id": "j", "state": "done", "seq": 1}, ValueError),
            ("IMEI:1", 1.0, ["job_id", "state"], TypeError),
        ]:
            work = [("end", store._append_job_event_txn, (device_id, time, payload))]
            with self.assertRaises(error):
                await store.run_interaction("test", store._batch_txn, work, True, short=True)
        self.assertEqual(len(await store.events_after(0)), len(appends))

    async def test_purged_history_keeps_numbering(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        await store.append_event("session", "IMEI:2", 10.0)
        last = await store.append_event("session", "IMEI:1", 11.0)
        await store.remove_device("IMEI:1", True)
        self.assertEqual([e["device_id"] for e in await store.events_after(0)], ["IMEI:2"])
        self.assertEqual(await store.last_event_seq(), last)
        self.assertEqual(await store.append_event("session", "IMEI:2", 12.0), last + 1)


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


class SQLiteEventTests(OnSQLite, EventTestsMixin, TestCase):
    pass


class SQLiteInlineEventTests(OnInlineSQLite, EventTestsMixin, TestCase):
    pass


class PostgresEventTests(OnPostgres, EventTestsMixin, TestCase):
    pass


class SQLiteDeviceEventsTests(OnSQLite, DeviceEventsMixin, TestCase):
    pass


class SQLiteInlineDeviceEventsTests(OnInlineSQLite, DeviceEventsMixin, TestCase):
    pass


class PostgresDeviceEventsTests(OnPostgres, DeviceEventsMixin, TestCase):
    pass


class SQLiteReactorEventTests(OnReactorSQLite, EventTestsMixin, TestCase):
    pass


class SQLiteReactorDeviceEventsTests(OnReactorSQLite, DeviceEventsMixin, TestCase):
    pass


class OldSQLiteEventTests(OnOldSQLite, EventTestsMixin, TestCase):
    pass


class OldSQLiteDeviceEvents(OnOldSQLite, DeviceEventsMixin, TestCase):
    pass
