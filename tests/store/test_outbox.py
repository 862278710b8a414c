"""
The notification outbox on every engine: adding, compare-and-set, due
order, claims and their leases (L{dmgateway.store.outbox}).
"""

from twisted.trial.unittest import TestCase

from dmgateway.store import NotFound
from tests.store.support import START, OnInlineSQLite, OnPostgres, OnSQLite, StoreCase, add_device

ALL_BYTES = bytes(range(256))
GET = [{"op": "Get", "target": "./DevInfo/Mod"}]


class NotificationTestsMixin(StoreCase):
    async def _store_with_job(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("j1", "IMEI:1", GET)
        return store

    async def test_add_and_get(self):
        store = await self._store_with_job()
        note = await store.add_notification("IMEI:1", "sms", ALL_BYTES, job_id="j1", push_session_id=0xFFFF)
        self.assertEqual(
            (note.device_id, note.job_id, note.bearer, note.state, note.attempts, note.push_session_id),
            ("IMEI:1", "j1", "sms", "queued", 0, 0xFFFF),
        )
        self.assertEqual((note.payload, note.last_error, note.message_id), (ALL_BYTES, None, None))
        self.assertEqual((note.next_attempt_at, note.created, note.updated), (START, START, START))
        self.assertEqual(await store.get_notification(note.notification_id), note)
        self.assertIsNone(await store.get_notification(note.notification_id + 1000))

        boot = await store.add_notification("IMEI:1", "sms", b"", next_attempt_at=START + 60)
        self.assertNotEqual(boot.notification_id, note.notification_id)
        self.assertEqual((boot.job_id, boot.push_session_id, boot.next_attempt_at), (None, None, START + 60))

    async def test_add_refusals(self):
        store = await self._store_with_job()
        with self.assertRaises(NotFound):
            await store.add_notification("IMEI:404", "sms", b"x")
        with self.assertRaises(NotFound):
            await store.add_notification("IMEI:1", "sms", b"x", job_id="nope")
        with self.assertRaises(ValueError):
            await store.add_notification("IMEI:1", "sms", b"x", push_session_id=0x10000)
        with self.assertRaises(ValueError):
            await store.add_notification("IMEI:1", "sms", b"x", push_session_id=-1)
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


class SQLiteNotificationTests(OnSQLite, NotificationTestsMixin, TestCase):
    pass


class SQLiteInlineNotificationTests(OnInlineSQLite, NotificationTestsMixin, TestCase):
    pass


class PostgresNotificationTests(OnPostgres, NotificationTestsMixin, TestCase):
    pass


class SQLiteClaimTests(OnSQLite, ClaimTestsMixin, TestCase):
    pass


class SQLiteInlineClaimTests(OnInlineSQLite, ClaimTestsMixin, TestCase):
    pass


class PostgresClaimTests(OnPostgres, ClaimTestsMixin, TestCase):
    pass
