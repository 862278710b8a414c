"""
Device accounts on every engine: credentials, nonces, DevInfo, paging,
deletion, lockouts (L{dmgateway.store.devices}).
"""

from twisted.trial.unittest import TestCase

from dmgateway.store import ClientAuth, ServerAuth
from tests.store.support import (
    START,
    OnInlineSQLite,
    OnReactorSQLite,
    OnPostgres,
    OnSQLite,
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

    async def test_update_device_writes_each_field_as_its_setter(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        session = {"id": "s1", "started": 1.0, "ended": 2.0, "outcome": "ok"}
        challenge = {"scheme": "syncml:auth-md5", "status": 401, "time": "t"}
        await store.record_auth_failure("IMEI:1", START, max_failures=1, lockout=60)
        await store.record_auth_failure("IMEI:2", START, max_failures=1, lockout=60)
        self.clock.advance(5)
        fields = dict(
            client_nonce=b"\x00c", server_nonce=b"s\xff", devinfo={"Man": "M", "Mod": "X1"},
            reported={"./Ext": "v"}, device_challenge=challenge, last_session=session,
        )
        self.assertTrue(await store.update_device("IMEI:1", reset_auth_failures=True, **fields))
        # the same through the one-field setters
        self.assertTrue(await store.set_nonces("IMEI:2", client_nonce=b"\x00c", server_nonce=b"s\xff"))
        await store.set_devinfo("IMEI:2", fields["devinfo"])
        await store.set_reported("IMEI:2", fields["reported"])
        await store.set_device_challenge("IMEI:2", challenge)
        await store.set_last_session("IMEI:2", session)
        await store.reset_auth_failures("IMEI:2")
        rows = await store.run_interaction(
            "rows", lambda txn: txn.fetchall("SELECT * FROM devices ORDER BY device_id")
        )
        merged, single = ({k: v for k, v in row.items() if k != "device_id"} for row in rows)
        self.assertEqual(merged, single)
        device = await store.get_device("IMEI:1")
        self.assertEqual((device.client_auth.nonce, device.server_auth.nonce), (b"\x00c", b"s\xff"))
        self.assertEqual((device.auth_failures, device.locked(START + 5)), (0, False))
        self.assertEqual(device.updated, START + 5)
        # None leaves a nonce; other fields clear; no such device; bad fields
        self.assertTrue(await store.update_device("IMEI:1", client_nonce=None, devinfo=None))
        device = await store.get_device("IMEI:1")
        self.assertEqual((device.client_auth.nonce, device.devinfo), (b"\x00c", None))
        self.assertFalse(await store.update_device("IMEI:404", devinfo={}))
        with self.assertRaises(TypeError):
            await store.update_device("IMEI:1", secret="x")
        with self.assertRaises(TypeError):
            await store.update_device("IMEI:1", devinfo=["not", "an", "object"])
        with self.assertRaises(TypeError):
            await store.update_device("IMEI:1", client_nonce="text")

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


class SQLiteDeviceTests(OnSQLite, DeviceTestsMixin, TestCase):
    pass


class SQLiteInlineDeviceTests(OnInlineSQLite, DeviceTestsMixin, TestCase):
    pass


class PostgresDeviceTests(OnPostgres, DeviceTestsMixin, TestCase):
    pass


class SQLiteReactorDeviceTests(OnReactorSQLite, DeviceTestsMixin, TestCase):
    pass
