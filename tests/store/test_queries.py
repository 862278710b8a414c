"""
Every store method, on both engines: devices, jobs, sessions, recovery,
events, the notification outbox and webhook deliveries.
"""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.store import (
    INTERRUPTED,
    ClientAuth,
    Conflict,
    NotFound,
    Recovery,
    ServerAuth,
)
from tests.store.support import (
    START,
    PostgresEngine,
    SQLiteEngine,
    StoreCase,
    add_device,
    md5_client,
    md5_server,
    user_hash,
)

ALL_BYTES = bytes(range(256))
GET = [{"op": "Get", "target": "./DevInfo/Mod"}]


class DeviceTestsMixin(StoreCase):
    async def test_put_creates_then_updates(self):
        store = await self.open()
        created = await store.put_device(
            "IMEI:350000000000001",
            server_id="dmgw.example",
            client_auth=md5_client(),
            server_auth=md5_server(),
            msisdn="+447700900001",
            sip_uri="sip:dev@example.org",
            imsi="234150999999999",
        )
        self.assertTrue(created)
        device = await store.get_device("IMEI:350000000000001")
        self.assertEqual(device.server_id, "dmgw.example")
        self.assertEqual(
            device.client_auth,
            ClientAuth("md5", "dev-user", user_hash("dev-user", "dev-secret"), b""),
        )
        self.assertEqual(device.server_auth.type, "md5")
        self.assertEqual(device.server_auth.user_hash, user_hash("dmgw", "srv-secret"))
        self.assertEqual(
            (device.msisdn, device.sip_uri, device.imsi),
            ("+447700900001", "sip:dev@example.org", "234150999999999"),
        )
        self.assertEqual((device.devinfo, device.last_session), (None, None))
        self.assertEqual((device.auth_failures, device.locked_until), (0, None))
        self.assertEqual((device.created, device.updated), (START, START))

        self.clock.advance(5)
        created = await store.put_device(
            "IMEI:350000000000001",
            server_id="dmgw2.example",
            client_auth=md5_client(name="other", secret="s2"),
            server_auth=md5_server(),
        )
        self.assertFalse(created)
        device = await store.get_device("IMEI:350000000000001")
        self.assertEqual(device.server_id, "dmgw2.example")
        self.assertEqual(device.client_auth.name, "other")
        self.assertEqual(device.client_auth.user_hash, user_hash("other", "s2"))
        self.assertIsNone(device.msisdn)  # not given: cleared
        self.assertEqual((device.created, device.updated), (START, START + 5))

    async def test_put_keeps_nonces_unless_given(self):
        store = await self.open()
        await add_device(store, "IMEI:1", client_auth=md5_client(b"c1"), server_auth=md5_server(b"s1"))
        device = await store.get_device("IMEI:1")
        self.assertEqual((device.client_auth.nonce, device.server_auth.nonce), (b"c1", b"s1"))

        self.assertTrue(await store.set_nonces("IMEI:1", server_nonce=b"s2"))
        await add_device(store, "IMEI:1")  # nonces None: kept
        device = await store.get_device("IMEI:1")
        self.assertEqual((device.client_auth.nonce, device.server_auth.nonce), (b"c1", b"s2"))

        await add_device(store, "IMEI:1", client_auth=md5_client(b""))  # given: replaced
        device = await store.get_device("IMEI:1")
        self.assertEqual((device.client_auth.nonce, device.server_auth.nonce), (b"", b"s2"))

    async def test_server_secret_kept_only_for_basic(self):
        store = await self.open()
        await add_device(store, "IMEI:1", server_auth=md5_server())
        device = await store.get_device("IMEI:1")
        self.assertIsNone(device.server_auth.secret)

        basic = ServerAuth("basic", "dmgw", user_hash("dmgw", "pw"), "pw")
        await add_device(store, "IMEI:1", server_auth=basic)
        device = await store.get_device("IMEI:1")
        self.assertEqual(device.server_auth.secret, "pw")
        self.assertNotIn("pw", repr(device))
        self.assertNotIn(user_hash("dmgw", "pw"), repr(device))

        await add_device(store, "IMEI:1", server_auth=ServerAuth("hmac", "dmgw", "h", "pw"))
        device = await store.get_device("IMEI:1")
        self.assertEqual((device.server_auth.type, device.server_auth.secret), ("hmac", None))

    async def test_auth_type_none(self):
        store = await self.open()
        await add_device(store, "IMEI:1", client_auth=ClientAuth(), server_auth=ServerAuth())
        device = await store.get_device("IMEI:1")
        self.assertEqual(device.client_auth, ClientAuth("none", "", "", b""))
        self.assertEqual(device.server_auth, ServerAuth("none", "", "", None, b""))

    async def test_put_rejects_bad_credentials(self):
        store = await self.open()
        cases = [
            (ValueError, dict(client_auth=ClientAuth("sha1", "n", "h"))),
            (ValueError, dict(client_auth=ClientAuth("md5", "n", ""))),
            (ValueError, dict(client_auth=ClientAuth("md5", "", "h"))),
            (ValueError, dict(server_auth=ServerAuth("basic", "n", "h", None))),
            (ValueError, dict(server_auth=ServerAuth("hmac", "n", ""))),
            (TypeError, dict(client_auth=md5_server())),
            (TypeError, dict(client_auth=ClientAuth("md5", "n", "h", "not-bytes"))),
            (ValueError, dict(server_id="")),
            (TypeError, dict(msisdn=447700900001)),
        ]
        for error, fields in cases:
            with self.assertRaises(error):
                await add_device(store, "IMEI:1", **fields)
        self.assertIsNone(await store.get_device("IMEI:1"))

    async def test_binary_nonces_round_trip(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        for client, server in [
            (ALL_BYTES, ALL_BYTES[::-1]),
            (b"\x00", b"\x00\x00\xff"),
            (bytearray(b"\x80\x81"), b""),
        ]:
            self.assertTrue(await store.set_nonces("IMEI:1", client, server))
            device = await store.get_device("IMEI:1")
            self.assertEqual(device.client_auth.nonce, bytes(client))
            self.assertEqual(device.server_auth.nonce, server)
            self.assertIsInstance(device.client_auth.nonce, bytes)
        self.assertFalse(await store.set_nonces("IMEI:2", b"x"))
        with self.assertRaises(TypeError):
            await store.set_nonces("IMEI:1", "text")

    async def test_unicode_round_trip(self):
        store = await self.open()
        device_id = "IMEI:ünïcødé-\u6f22\u5b57-\U0001f600"
        awkward = "50% ?' \" \\ ; -- \u2028 é\u0301"
        client = ClientAuth("md5", "Ωmega \U0001f511", user_hash("Ωmega", "pässwörd"), b"\xff")
        self.assertTrue(
            await add_device(store, device_id, client_auth=client, msisdn=awkward, imsi="?")
        )
        devinfo = {"DevId": device_id, "Man": "Søny \U0001f4f1", "Lang": awkward, "n": [1, 2.5, None, True]}
        self.assertTrue(await store.set_devinfo(device_id, devinfo))
        device = await store.get_device(device_id)
        self.assertEqual(device.device_id, device_id)
        self.assertEqual(device.client_auth, client)
        self.assertEqual((device.msisdn, device.imsi), (awkward, "?"))
        self.assertEqual(device.devinfo, devinfo)

    async def test_text_that_no_engine_can_store_is_refused(self):
        store = await self.open()
        for device_id in ("IMEI:\x001", "IMEI:\ud800"):
            with self.assertRaises(ValueError):
                await add_device(store, device_id)
        with self.assertRaises(ValueError):
            await store.set_devinfo("IMEI:1", {"x": float("nan")})
        with self.assertRaises(ValueError):
            await store.set_devinfo("IMEI:1", {"x": object()})

    async def test_devinfo_and_last_session(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        self.clock.advance(3)
        self.assertTrue(await store.set_devinfo("IMEI:1", {"Mod": "X1"}))
        session = {"id": "s1", "started": 1.0, "ended": 2.0, "outcome": "ok"}
        self.assertTrue(await store.set_last_session("IMEI:1", session))
        device = await store.get_device("IMEI:1")
        self.assertEqual((device.devinfo, device.last_session), ({"Mod": "X1"}, session))
        self.assertEqual(device.updated, START + 3)
        self.assertTrue(await store.set_devinfo("IMEI:1", None))
        self.assertIsNone((await store.get_device("IMEI:1")).devinfo)
        self.assertFalse(await store.set_devinfo("IMEI:2", {}))
        self.assertFalse(await store.set_last_session("IMEI:2", session))
        with self.assertRaises(TypeError):
            await store.set_devinfo("IMEI:1", ["not", "an", "object"])

    async def test_list_devices_pages_bytewise(self):
        store = await self.open()
        ids = ["IMEI:3", "imei:1", "IMEI:10", "MAC:a", "IMEI:2", "Émile", "IMEI:1"]
        for device_id in ids:
            await add_device(store, device_id)
        expected = sorted(ids, key=lambda s: s.encode("utf-8"))
        pages, after = [], None
        while True:
            page = await store.list_devices(limit=3, after=after)
            if not page:
                break
            pages.append([d.device_id for d in page])
            after = page[-1].device_id
        self.assertEqual([len(p) for p in pages], [3, 3, 1])
        self.assertEqual(sum(pages, []), expected)
        with self.assertRaises(ValueError):
            await store.list_devices(limit=0)

    async def test_delete_device_cascades_but_keeps_events(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        await store.create_job("j1", "IMEI:1", GET)
        await store.create_job("j2", "IMEI:2", GET)
        await store.start_session("s1", "IMEI:1", "node-a", START)
        await store.add_notification("IMEI:1", "sms", b"x", job_id="j1")
        seq = await store.append_event("session", "IMEI:1", START, {})

        self.assertTrue(await store.delete_device("IMEI:1"))
        self.assertFalse(await store.delete_device("IMEI:1"))
        self.assertIsNone(await store.get_device("IMEI:1"))
        self.assertIsNone(await store.get_job("j1"))
        self.assertIsNone(await store.get_session("s1"))
        self.assertEqual(await store.notifications_for_job("j1"), [])
        self.assertEqual([e["seq"] for e in await store.events_after(0)], [seq])
        self.assertEqual((await store.get_job("j2")).device_id, "IMEI:2")

    async def test_auth_failures_lock_out(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        now = START + 10
        for count in (1, 2):
            device = await store.record_auth_failure("IMEI:1", now, max_failures=3, lockout=300)
            self.assertEqual((device.auth_failures, device.locked_until), (count, None))
            self.assertFalse(device.locked(now))
        device = await store.record_auth_failure("IMEI:1", now, max_failures=3, lockout=300)
        self.assertEqual((device.auth_failures, device.locked_until), (3, now + 300))
        self.assertTrue(device.locked(now + 299))
        self.assertFalse(device.locked(now + 300))

        self.assertTrue(await store.reset_auth_failures("IMEI:1"))
        device = await store.get_device("IMEI:1")
        self.assertEqual((device.auth_failures, device.locked_until), (0, None))
        self.assertIsNone(
            await store.record_auth_failure("IMEI:2", now, max_failures=3, lockout=300)
        )
        self.assertFalse(await store.reset_auth_failures("IMEI:2"))


class JobTestsMixin(StoreCase):
    async def test_create_and_get(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        commands = [
            {"op": "Replace", "target": "./DevDetail/Ext/Name", "data": "naïve \U0001f600", "format": "chr"},
            {"op": "Alert", "alert": 1101, "data": "OK?", "options": "MINDT=10&MAXDT=60"},
        ]
        job = await store.create_job(
            "0123abcd", "IMEI:1", commands, atomic=True, notify="sms", ui_mode=3
        )
        self.assertEqual(
            (job.job_id, job.device_id, job.state, job.commands, job.atomic, job.notify, job.ui_mode),
            ("0123abcd", "IMEI:1", "queued", commands, True, "sms", 3),
        )
        self.assertEqual((job.results, job.error, job.created, job.updated), ([], None, START, START))
        self.assertEqual(await store.get_job("0123abcd"), job)
        self.assertIsNone(await store.get_job("nope"))

        later = await store.create_job("j2", "IMEI:1", GET, now=START + 42)
        self.assertEqual((later.created, later.updated), (START + 42, START + 42))
        self.assertGreater(later.seq, job.seq)

    async def test_create_refusals(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("j1", "IMEI:1", GET)
        with self.assertRaises(NotFound):
            await store.create_job("j2", "IMEI:404", GET)
        with self.assertRaises(Conflict):
            await store.create_job("j1", "IMEI:1", GET)
        for error, kwargs in [
            (ValueError, dict(notify="pigeon")),
            (ValueError, dict(ui_mode=4)),
            (TypeError, dict(ui_mode="0")),
            (TypeError, dict(atomic=1)),
        ]:
            with self.assertRaises(error):
                await store.create_job("j3", "IMEI:1", GET, **kwargs)
        with self.assertRaises(TypeError):
            await store.create_job("j3", "IMEI:1", {"op": "Get"})
        with self.assertRaises(ValueError):
            await store.create_job("", "IMEI:1", GET)
        self.assertEqual([j.job_id for j in await store.list_jobs()], ["j1"])

    async def test_list_jobs_pages_in_creation_order(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        # Ids that sort differently from creation order.
        mine = ["z", "a", "m", "b", "y"]
        theirs = ["c", "x"]
        for i, job_id in enumerate(mine):
            await store.create_job(job_id, "IMEI:1", GET)
            if i < len(theirs):
                await store.create_job(theirs[i], "IMEI:2", GET)

        pages, after = [], None
        while True:
            page = await store.list_jobs("IMEI:1", limit=2, after=after)
            if not page:
                break
            pages.append([j.job_id for j in page])
            after = page[-1].job_id
        self.assertEqual(pages, [["z", "a"], ["m", "b"], ["y"]])
        everything = [j.job_id for j in await store.list_jobs(limit=100)]
        self.assertEqual(everything, ["z", "c", "a", "x", "m", "b", "y"])
        seqs = [j.seq for j in await store.list_jobs(limit=100)]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual([j.job_id for j in await store.list_jobs("IMEI:2", after="a")], ["x"])
        with self.assertRaises(NotFound):
            await store.list_jobs("IMEI:1", after="nope")

    async def test_pending_jobs_oldest_first(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        for job_id in ("j3", "j1", "j2", "j4"):
            await store.create_job(job_id, "IMEI:1", GET)
        await store.create_job("other", "IMEI:2", GET)
        await store.update_job("j1", state="notified")
        await store.update_job("j2", state="running")
        await store.update_job("j4", state="done")
        pending = await store.pending_jobs("IMEI:1")
        self.assertEqual([(j.job_id, j.state) for j in pending], [("j3", "queued"), ("j1", "notified")])
        self.assertEqual(await store.pending_jobs("IMEI:404"), [])

    async def test_update_job_compare_and_set(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("j1", "IMEI:1", GET)
        self.clock.advance(7)

        self.assertTrue(await store.update_job("j1", state="running", expect_state="queued"))
        self.assertFalse(await store.update_job("j1", state="notified", expect_state="queued"))
        self.assertEqual((await store.get_job("j1")).state, "running")

        results = [{"op": "Get", "target": "./DevInfo/Mod", "status": 200, "data": "X1", "format": "chr"}]
        self.assertTrue(
            await store.update_job("j1", state="done", results=results, expect_state=("notified", "running"))
        )
        job = await store.get_job("j1")
        self.assertEqual((job.state, job.results, job.error, job.updated), ("done", results, None, START + 7))

        error = {"code": "device_error", "message": "Status 500 for Get"}
        self.assertTrue(await store.update_job("j1", state="failed", error=error))
        self.assertEqual((await store.get_job("j1")).error, error)
        self.assertEqual((await store.get_job("j1")).results, results)  # untouched

        self.assertFalse(await store.update_job("nope", state="done"))
        self.assertTrue(await store.update_job("j1"))  # nothing to change: still there
        with self.assertRaises(ValueError):
            await store.update_job("j1", state="exploded")
        with self.assertRaises(ValueError):
            await store.update_job("j1", state="done", expect_state="sideways")
        with self.assertRaises(TypeError):
            await store.update_job("j1", results={"not": "a list"})

    async def test_concurrent_compare_and_set_has_one_winner(self):
        store = await self.open(pool_max=4) if self.engine == "postgresql" else await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("j1", "IMEI:1", GET)
        outcomes = await defer.gatherResults(
            [store.update_job("j1", state="running", expect_state="queued") for _ in range(8)]
        )
        self.assertEqual(sorted(outcomes), [False] * 7 + [True])

    async def test_jobs_in_state(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        await store.create_job("a", "IMEI:1", GET)
        await store.create_job("b", "IMEI:2", GET)
        await store.create_job("c", "IMEI:1", GET)
        await store.update_job("b", state="running")
        self.assertEqual([j.job_id for j in await store.jobs_in_state("queued")], ["a", "c"])
        self.assertEqual(
            [j.job_id for j in await store.jobs_in_state(["queued", "running"])], ["a", "b", "c"]
        )
        self.assertEqual([j.job_id for j in await store.jobs_in_state(("queued",), limit=1)], ["a"])
        self.assertEqual(await store.jobs_in_state("expired"), [])
        with self.assertRaises(ValueError):
            await store.jobs_in_state([])


class SessionTestsMixin(StoreCase):
    async def test_lifecycle(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("j1", "IMEI:1", GET)
        session = await store.start_session(
            "s1", "IMEI:1", "node-a", START + 1, token="tok-1", job_ids=["j1"]
        )
        self.assertEqual(
            (session.session_id, session.device_id, session.node, session.token, session.job_ids),
            ("s1", "IMEI:1", "node-a", "tok-1", ["j1"]),
        )
        self.assertEqual((session.started, session.last_activity), (START + 1, START + 1))
        self.assertEqual(await store.get_session("s1"), session)

        self.assertTrue(await store.touch_session("s1", START + 4))
        self.assertTrue(await store.touch_session("s1", START + 5, job_ids=["j1", "j2"]))
        touched = await store.get_session("s1")
        self.assertEqual((touched.last_activity, touched.job_ids), (START + 5, ["j1", "j2"]))

        ended = await store.end_session("s1", START + 9, "ok")
        self.assertEqual(ended, touched)
        device = await store.get_device("IMEI:1")
        self.assertEqual(
            device.last_session,
            {"id": "s1", "started": START + 1, "ended": START + 9, "outcome": "ok"},
        )
        self.assertIsNone(await store.get_session("s1"))
        self.assertIsNone(await store.end_session("s1", START + 10, "ok"))
        self.assertFalse(await store.touch_session("s1", START + 10))
        self.assertEqual((await store.get_job("j1")).state, "queued")  # jobs untouched

    async def test_start_refusals(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.start_session("s1", "IMEI:1", "node-a", START)
        with self.assertRaises(NotFound):
            await store.start_session("s2", "IMEI:404", "node-a", START)
        with self.assertRaises(Conflict):
            await store.start_session("s1", "IMEI:1", "node-b", START)
        with self.assertRaises(ValueError):
            await store.start_session("s3", "IMEI:1", "", START)
        with self.assertRaises(ValueError):
            await store.end_session("s1", START, "")
        with self.assertRaises(TypeError):
            await store.start_session("s4", "IMEI:1", "node-a", "yesterday")

    async def test_clock_defaults_and_ending_without_outcome(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.set_last_session("IMEI:1", {"session_id": "s0", "outcome": "ok", "messages": 4})
        session = await store.start_session("s1", "IMEI:1", "node-a", token="t")
        self.assertEqual((session.started, session.last_activity), (START, START))
        self.clock.advance(30)
        ended = await store.end_session("s1")
        self.assertEqual(ended, session)
        self.assertIsNone(await store.get_session("s1"))
        # No outcome: the caller's own summary stays.
        self.assertEqual(
            (await store.get_device("IMEI:1")).last_session,
            {"session_id": "s0", "outcome": "ok", "messages": 4},
        )
        await store.start_session("s2", "IMEI:1", "node-a")
        await store.end_session("s2", outcome="aborted")
        self.assertEqual(
            (await store.get_device("IMEI:1")).last_session,
            {"id": "s2", "started": START + 30, "ended": START + 30, "outcome": "aborted"},
        )

    async def test_live_sessions_filters(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        await store.start_session("s2", "IMEI:1", "node-a", START + 2)
        await store.start_session("s1", "IMEI:2", "node-b", START + 1)
        await store.start_session("s3", "IMEI:2", "node-a", START + 3)
        ids = lambda sessions: [s.session_id for s in sessions]  # noqa: E731
        self.assertEqual(ids(await store.live_sessions()), ["s1", "s2", "s3"])
        self.assertEqual(ids(await store.live_sessions("node-a")), ["s2", "s3"])
        self.assertEqual(ids(await store.live_sessions(device_id="IMEI:2")), ["s1", "s3"])
        self.assertEqual(ids(await store.live_sessions("node-b", "IMEI:2")), ["s1"])
        self.assertEqual(await store.live_sessions("node-c"), [])

    async def test_recover_settles_what_a_dead_node_left(self):
        store = await self.open()
        for device_id in ("D1", "D2", "D3"):
            await add_device(store, device_id)
        await store.create_job("j1", "D1", GET)
        await store.create_job("j2", "D1", GET)
        await store.create_job("j3", "D1", GET)
        await store.create_job("j4", "D2", GET)
        await store.create_job("j5", "D3", GET)
        await store.update_job("j1", state="running")
        await store.update_job("j3", state="done", results=[{"status": 200}])
        await store.update_job("j4", state="running")
        await store.update_job("j5", state="notified")
        await store.start_session("s1", "D1", "node-a", START + 1, job_ids=["j3", "j1"])
        await store.start_session("s2", "D2", "node-b", START + 2, job_ids=["j4"])
        await store.start_session("s3", "D3", "node-a", START + 3, job_ids=["j5"])

        recovery = await store.recover("node-a", START + 50)
        self.assertEqual(
            recovery,
            Recovery(
                node="node-a",
                sessions=("s1", "s3"),
                failed_jobs=("j1",),
                devices=("D1", "D3"),
                queued_jobs=2,
            ),
        )
        self.assertEqual(
            recovery.counts(), {"sessions_ended": 2, "jobs_failed": 1, "jobs_queued": 2}
        )
        j1 = await store.get_job("j1")
        self.assertEqual((j1.state, j1.error, j1.updated), ("failed", INTERRUPTED, START + 50))
        states = {j.job_id: j.state for j in await store.list_jobs()}
        self.assertEqual(
            states, {"j1": "failed", "j2": "queued", "j3": "done", "j4": "running", "j5": "notified"}
        )
        self.assertIsNone((await store.get_job("j3")).error)
        self.assertEqual([s.session_id for s in await store.live_sessions()], ["s2"])
        self.assertEqual(
            (await store.get_device("D1")).last_session,
            {"id": "s1", "started": START + 1, "ended": START + 50, "outcome": "interrupted"},
        )
        self.assertIsNone((await store.get_device("D2")).last_session)

        again = await store.recover("node-a", START + 60)
        self.assertEqual(again, Recovery(node="node-a"))
        self.assertEqual(again.counts(), {"sessions_ended": 0, "jobs_failed": 0, "jobs_queued": 0})


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
        self.assertEqual(await store.last_event_seq(), 0)

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


class NotificationTestsMixin(StoreCase):
    async def _store_with_job(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("j1", "IMEI:1", GET)
        return store

    async def test_add_and_get(self):
        store = await self._store_with_job()
        note = await store.add_notification("IMEI:1", "sms", ALL_BYTES, job_id="j1", session_id=0xFFFF)
        self.assertEqual(
            (note.device_id, note.job_id, note.bearer, note.state, note.attempts, note.session_id),
            ("IMEI:1", "j1", "sms", "queued", 0, 0xFFFF),
        )
        self.assertEqual((note.payload, note.last_error, note.message_id), (ALL_BYTES, None, None))
        self.assertEqual((note.next_attempt_at, note.created, note.updated), (START, START, START))
        self.assertEqual(await store.get_notification(note.notification_id), note)
        self.assertIsNone(await store.get_notification(note.notification_id + 1000))

        boot = await store.add_notification("IMEI:1", "sms", b"", next_attempt_at=START + 60)
        self.assertNotEqual(boot.notification_id, note.notification_id)
        self.assertEqual((boot.job_id, boot.session_id, boot.next_attempt_at), (None, None, START + 60))

    async def test_add_refusals(self):
        store = await self._store_with_job()
        with self.assertRaises(NotFound):
            await store.add_notification("IMEI:404", "sms", b"x")
        with self.assertRaises(NotFound):
            await store.add_notification("IMEI:1", "sms", b"x", job_id="nope")
        with self.assertRaises(ValueError):
            await store.add_notification("IMEI:1", "sms", b"x", session_id=0x10000)
        with self.assertRaises(ValueError):
            await store.add_notification("IMEI:1", "sms", b"x", session_id=-1)
        with self.assertRaises(TypeError):
            await store.add_notification("IMEI:1", "sms", "text")
        with self.assertRaises(ValueError):
            await store.add_notification("IMEI:1", "", b"x")

    async def test_update_compare_and_set(self):
        store = await self._store_with_job()
        note = await store.add_notification("IMEI:1", "sms", b"x", job_id="j1")
        ident = note.notification_id
        self.clock.advance(2)
        self.assertTrue(
            await store.update_notification(
                ident, count_attempt=True, last_error="throttled",
                next_attempt_at=START + 30, expect_state="queued",
            )
        )
        self.assertTrue(
            await store.update_notification(
                ident, state="sent", count_attempt=True, message_id="smsc-42", expect_state="queued"
            )
        )
        self.assertFalse(await store.update_notification(ident, state="sent", expect_state="queued"))
        note = await store.get_notification(ident)
        self.assertEqual(
            (note.state, note.attempts, note.last_error, note.message_id, note.next_attempt_at, note.updated),
            ("sent", 2, "throttled", "smsc-42", START + 30, START + 2),
        )
        self.assertTrue(
            await store.update_notification(ident, state="delivered", expect_state=["sent", "queued"])
        )
        self.assertFalse(await store.update_notification(ident + 1000, state="failed"))
        with self.assertRaises(ValueError):
            await store.update_notification(ident, state="lost")
        with self.assertRaises(ValueError):
            await store.update_notification(ident, next_attempt_at=float("nan"))
        with self.assertRaises(ValueError):
            await store.get_notification(2**70)
        with self.assertRaises(TypeError):
            await store.get_notification("1")

    async def test_due_notifications(self):
        store = await self._store_with_job()
        add = store.add_notification
        late = await add("IMEI:1", "sms", b"1", next_attempt_at=START + 100)
        now = await add("IMEI:1", "sip", b"2", next_attempt_at=START)
        early = await add("IMEI:1", "sms", b"3", next_attempt_at=START - 50)
        sent = await add("IMEI:1", "sms", b"4", next_attempt_at=START - 60)
        await store.update_notification(sent.notification_id, state="sent")

        ids = lambda notes: [n.notification_id for n in notes]  # noqa: E731
        self.assertEqual(
            ids(await store.due_notifications(START)), [early.notification_id, now.notification_id]
        )
        self.assertEqual(
            ids(await store.due_notifications(START + 100)),
            [early.notification_id, now.notification_id, late.notification_id],
        )
        self.assertEqual(ids(await store.due_notifications(START, limit=1)), [early.notification_id])
        self.assertEqual(ids(await store.due_notifications(START, bearers="sip")), [now.notification_id])
        self.assertEqual(ids(await store.due_notifications(START, bearers=["sms"])), [early.notification_id])
        self.assertEqual(await store.due_notifications(START, bearers=[]), [])
        self.assertEqual(await store.due_notifications(START - 100), [])

    async def test_standalone_notifications(self):
        store = await self._store_with_job()
        await store.add_notification("IMEI:1", "sms", b"job", job_id="j1")
        first = await store.add_notification("IMEI:1", "sms", b"\x01\x06boot")
        second = await store.add_notification("IMEI:1", "sms", b"\x01\x06boot2")
        self.assertEqual(await store.standalone_notifications("IMEI:1"), [second, first])
        self.assertEqual(await store.standalone_notifications("IMEI:1", 1), [second])
        self.assertEqual(await store.standalone_notifications("IMEI:2"), [])
        self.assertEqual(first.payload, b"\x01\x06boot")
        self.assertTrue(await store.set_notification_payload(first.notification_id, b"\x01\x06"))
        self.assertEqual((await store.get_notification(first.notification_id)).payload, b"\x01\x06")
        self.assertFalse(await store.set_notification_payload(999999, b""))

    async def test_for_job_and_by_message_id(self):
        store = await self._store_with_job()
        await store.create_job("j2", "IMEI:1", GET)
        a = await store.add_notification("IMEI:1", "sms", b"a", job_id="j1")
        b = await store.add_notification("IMEI:1", "sip", b"b", job_id="j1")
        c = await store.add_notification("IMEI:1", "sms", b"c", job_id="j2")
        self.assertEqual(await store.notifications_for_job("j1"), [a, b])
        self.assertEqual(await store.notifications_for_job("nope"), [])

        await store.update_notification(a.notification_id, state="sent", message_id="m-1")
        await store.update_notification(b.notification_id, state="sent", message_id="m-1")
        await store.update_notification(c.notification_id, state="sent", message_id="m-2")
        found = await store.find_notification_by_message_id("m-1")
        self.assertEqual(found.notification_id, b.notification_id)
        found = await store.find_notification_by_message_id("m-1", bearer="sms")
        self.assertEqual(found.notification_id, a.notification_id)
        self.assertIsNone(await store.find_notification_by_message_id("m-3"))


class DeliveryTestsMixin(StoreCase):
    async def test_delivery_attempts(self):
        store = await self.open()
        seq = await store.append_event("session", "IMEI:1", START, {"outcome": "ok"})
        url = "https://hooks.example/dm?x=ü"
        delivery = await store.add_delivery(url, seq)
        self.assertEqual(
            (delivery.url, delivery.event_seq, delivery.state, delivery.attempts, delivery.next_attempt_at),
            (url, seq, "pending", 0, START),
        )
        self.assertEqual(await store.get_delivery(delivery.delivery_id), delivery)
        self.assertEqual(await store.due_deliveries(START), [delivery])

        self.clock.advance(1)
        self.assertTrue(
            await store.mark_delivery(
                delivery.delivery_id, "pending", last_error="HTTP 503", next_attempt_at=START + 30
            )
        )
        self.assertEqual(await store.due_deliveries(START + 29), [])
        retry = await store.get_delivery(delivery.delivery_id)
        self.assertEqual((retry.attempts, retry.last_error, retry.updated), (1, "HTTP 503", START + 1))
        self.assertEqual(await store.due_deliveries(START + 30), [retry])

        self.assertTrue(await store.mark_delivery(delivery.delivery_id, "delivered", expect_state="pending"))
        self.assertFalse(await store.mark_delivery(delivery.delivery_id, "failed", expect_state="pending"))
        done = await store.get_delivery(delivery.delivery_id)
        self.assertEqual((done.state, done.attempts, done.last_error), ("delivered", 2, None))
        self.assertEqual(await store.due_deliveries(START + 1000), [])
        self.assertFalse(await store.mark_delivery(delivery.delivery_id + 1000, "failed"))
        with self.assertRaises(ValueError):
            await store.mark_delivery(delivery.delivery_id, "bounced")

    async def test_due_order_and_limit(self):
        store = await self.open()
        seq = await store.append_event("tick", None, START)
        later = await store.add_delivery("http://a.example/", seq, next_attempt_at=START + 5)
        first = await store.add_delivery("http://b.example/", seq, next_attempt_at=START - 5)
        second = await store.add_delivery("http://c.example/", seq)
        self.assertEqual(await store.due_deliveries(START + 5), [first, second, later])
        self.assertEqual(await store.due_deliveries(START + 5, limit=2), [first, second])

    async def test_refusals_and_pruning(self):
        store = await self.open()
        with self.assertRaises(NotFound):
            await store.add_delivery("http://a.example/", 1)
        seq = await store.append_event("tick", None, 10.0)
        delivery = await store.add_delivery("http://a.example/", seq)
        with self.assertRaises(ValueError):
            await store.add_delivery("", seq)
        await store.prune_events(11.0)
        self.assertIsNone(await store.get_delivery(delivery.delivery_id))


class SQLiteDeviceTests(SQLiteEngine, DeviceTestsMixin, TestCase):
    pass


class PostgresDeviceTests(PostgresEngine, DeviceTestsMixin, TestCase):
    pass


class SQLiteJobTests(SQLiteEngine, JobTestsMixin, TestCase):
    pass


class PostgresJobTests(PostgresEngine, JobTestsMixin, TestCase):
    pass


class SQLiteSessionTests(SQLiteEngine, SessionTestsMixin, TestCase):
    pass


class PostgresSessionTests(PostgresEngine, SessionTestsMixin, TestCase):
    pass


class SQLiteEventTests(SQLiteEngine, EventTestsMixin, TestCase):
    pass


class PostgresEventTests(PostgresEngine, EventTestsMixin, TestCase):
    pass


class SQLiteNotificationTests(SQLiteEngine, NotificationTestsMixin, TestCase):
    pass


class PostgresNotificationTests(PostgresEngine, NotificationTestsMixin, TestCase):
    pass


class SQLiteDeliveryTests(SQLiteEngine, DeliveryTestsMixin, TestCase):
    pass


class PostgresDeliveryTests(PostgresEngine, DeliveryTestsMixin, TestCase):
    pass


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


class SQLiteBatchTests(SQLiteEngine, BatchTestsMixin, TestCase):
    pass


class PostgresBatchTests(PostgresEngine, BatchTestsMixin, TestCase):
    pass


class ClaimTestsMixin(StoreCase):
    async def test_only_one_claim_wins_until_the_lease_ends(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        n = await store.add_notification("IMEI:1", "sms", b"", next_attempt_at=START)
        self.assertTrue(await store.claim_notification(n.notification_id, START, 60.0))
        self.assertFalse(await store.claim_notification(n.notification_id, START + 1, 60.0))
        self.assertEqual(await store.due_notifications(START + 59), [])
        # the claimer died: after the lease it is due again and can be claimed
        (due,) = await store.due_notifications(START + 61)
        self.assertTrue(await store.claim_notification(due.notification_id, START + 61, 60.0))
        await store.update_notification(due.notification_id, state="sent")
        self.assertFalse(await store.claim_notification(due.notification_id, START + 500, 60.0))

    async def test_release_claims_of_a_dead_holder(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        claimed = await store.add_notification("IMEI:1", "sms", b"", next_attempt_at=START)
        later = await store.add_notification("IMEI:1", "sms", b"", next_attempt_at=START + 30)
        sip = await store.add_notification("IMEI:1", "sip", b"", next_attempt_at=START)
        mine = await store.add_notification("IMEI:1", "sms", b"", next_attempt_at=START)
        self.assertTrue(await store.claim_notification(claimed.notification_id, START, 60.0))
        self.assertTrue(await store.claim_notification(sip.notification_id, START, 60.0))
        # the new holder took over at START + 5 and claimed one itself since
        self.assertTrue(await store.claim_notification(mine.notification_id, START + 5, 60.0))
        self.assertEqual(await store.release_claims("sms", START + 5, 60.0), 1)
        due = await store.due_notifications(START + 5)
        self.assertEqual([n.notification_id for n in due], [claimed.notification_id])
        self.assertNotIn(later.notification_id, [n.notification_id for n in due])  # a backoff stays


class SQLiteClaimTests(SQLiteEngine, ClaimTestsMixin, TestCase):
    pass


class PostgresClaimTests(PostgresEngine, ClaimTestsMixin, TestCase):
    pass
