"""The target deletes the accounts of a delegation that ends (the peer's
``revoked``/``failed``, or a device's first job failed) as an operator's
``DELETE /api/v1/devices/{id}`` does: the device's live DM session ended
(its next message refused with a SyncML 403), its jobs failed or cancelled
with their events, its TLS-PSK key forgotten, its events kept.  (Before:
only the account row went; the session lived on in the dispatcher, its jobs
went without an event, the PSK key still opened the HTTPS listener.)"""

import os
from types import SimpleNamespace

from twisted.internet import defer

from dmgateway.client import ClientSession
from dmgateway.delegation import messages as m
from dmgateway.store.devicepsk import DevicePskKeys
from dmgateway.store.model import StoreUnavailable
from tests.delegation.test_flow import FlowCase
from tests.fixtures import DEVICE
from tests.test_dispatch_security import HeldStore

GET_MAN = {"commands": [{"op": "Get", "target": "./DevInfo/Man"}], "atomic": False,
           "notify": "auto", "ui_mode": 0}
PSK = bytes.fromhex("00112233445566778899aabbccddeeff")


class TargetCase(FlowCase):
    """A delegation to B under way; the device's messages to B."""

    async def contacting(self):
        """A delegated to B, B contacting the device: A's record view."""
        view = await self.delegate()
        self.assertEqual(view["state"], "device-ready", view)
        return view

    async def target_record(self, view):
        return await self.b.flow.records.find("target", "dms-a", view["transaction_id"])

    async def from_a(self, view, state):
        """A's ``state`` notice reaches B (through the wire format): B's answer."""
        note = m.Notification(view["transaction_id"], "dms-a", state,
                              m.Reason("device_refused", "no") if state == "failed" else None)
        return await self.a.send(None, note)

    async def open_session(self):
        """The device's package 1 to B, answered: (its session, the reply)."""
        session = ClientSession(self.account_b(), random_bytes=os.urandom, tree=self.tree)
        reply = await self.b.dispatcher.handle_dm(session.start().body, encoding="xml", token=None)
        self.assertEqual(reply.code, 200, reply.body)
        self.assertIn(DEVICE, self.b.dispatcher._by_device)
        return session, reply

    async def next_message(self, session, reply):
        """The device's next message after ``reply``: B's answer to it."""
        request = session.receive(reply.body, reply.headers)
        token = request.url.split("?s=", 1)[1]
        return await self.b.dispatcher.handle_dm(request.body, encoding="xml", token=token)

    async def assert_deleted_as_by_an_operator(self, jobs, session, reply):
        """B has nothing of the device left (the account, its session here and
        in the store); ``jobs`` are those failed by the deletion, each with an
        event; the session's end and the deletion are events too; the
        device's next message is refused."""
        dispatcher = self.b.dispatcher
        self.assertIsNone(await self.b.store.get_device(DEVICE))
        self.assertEqual(await self.b.store.live_sessions(device_id=DEVICE), [])
        self.assertEqual((dispatcher._by_device, dispatcher._by_token, dispatcher._ending,
                          dispatcher._repairs, dispatcher._cancel_at_end, dispatcher._locks),
                         ({}, {}, {}, [], {}, {}))
        events = [e for e in await self.b.handlers.wait_events(0, 100, 0)
                  if e["device_id"] == DEVICE]
        deleted = [e["job_id"] for e in events if e["type"] == "job" and e["state"] == "failed"
                   and e["error"] in ("device_deleted", "cancelled")]
        self.assertEqual(sorted(deleted), sorted(jobs), events)
        self.assertEqual([e["outcome"] for e in events if e["type"] == "session"],
                         ["device_deleted"])
        self.assertEqual([e["action"] for e in events if e["type"] == "device"], ["deleted"])
        later = await self.next_message(session, reply)
        self.assertEqual(later.code, 200, later.body)  # a SyncML answer, not a 5xx
        self.assertIn(b"<Cmd>SyncHdr</Cmd>", later.body)
        self.assertIn(b"<Data>403</Data>", later.body)  # the session is no more
        self.assertEqual(dispatcher._by_device, {})


class AccountsDeletedTests(TargetCase):
    # -- the peer's notice -----------------------------------------------------------

    async def test_a_revoke_ends_the_devices_live_session(self):
        view = await self.contacting()
        contact = (await self.target_record(view))["device_steps"][DEVICE]["jobs"]
        operator = (await self.b.handlers.create_job(DEVICE, GET_MAN))["id"]
        session, reply = await self.open_session()  # both jobs sent, running
        later = (await self.b.handlers.create_job(DEVICE, GET_MAN))["id"]  # for the live session
        answer = await self.from_a(view, "revoked")
        self.assertTrue(answer.accepted, answer)
        self.assertEqual((await self.target_record(view))["state"], "revoked")
        await self.assert_deleted_as_by_an_operator(contact + [operator, later], session, reply)

    async def test_a_failed_notice_ends_the_devices_live_session(self):
        view = await self.contacting()
        contact = (await self.target_record(view))["device_steps"][DEVICE]["jobs"]
        session, reply = await self.open_session()
        answer = await self.from_a(view, "failed")
        self.assertTrue(answer.accepted, answer)
        self.assertEqual((await self.target_record(view))["state"], "failed")
        await self.assert_deleted_as_by_an_operator(contact, session, reply)

    async def test_the_devices_psk_key_is_forgotten(self):
        keys = self.b.handlers.device_psk = DevicePskKeys(self.b.store, self.clock)
        await keys.load()
        view = await self.contacting()
        await keys.set(DEVICE, "dev-psk", PSK)  # (an operator's PUT with a psk, say)
        self.assertEqual(keys.key_for_identity("dev-psk"), PSK)
        self.assertTrue((await self.from_a(view, "revoked")).accepted)
        self.assertIsNone(keys.key_for_identity("dev-psk"))  # it opens the listener no more
        self.assertIsNone(keys.identity_of(DEVICE))
        self.assertEqual(await DevicePskKeys(self.b.store, self.clock).load(), 0)  # (a restart)

    async def deleted_by_the_operator_first(self, state):
        view = await self.contacting()
        deleted = await self.b.handlers.delete_device(DEVICE, False)
        self.assertTrue(deleted["deleted"])
        answer = await self.from_a(view, state)
        self.assertTrue(answer.accepted, answer)
        self.assertEqual((await self.target_record(view))["state"], state)
        self.assertEqual(self.b.dispatcher._locks, {})
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_a_device_deleted_by_the_operator_before_the_revoke(self):
        await self.deleted_by_the_operator_first("revoked")

    async def test_a_device_deleted_by_the_operator_before_the_failed_notice(self):
        await self.deleted_by_the_operator_first("failed")

    async def test_a_store_failure_is_not_taken_for_a_device_gone(self):
        view = await self.contacting()

        def down(device_id, purge_history):
            return defer.fail(StoreUnavailable("database down"))

        self.b.handlers.delete_device = down
        with self.assertRaises(StoreUnavailable):  # (the bearer answers it "unavailable")
            await self.b.flow.receive(SimpleNamespace(server_id="dms-a"),
                                      m.Notification(view["transaction_id"], "dms-a", "revoked"))
        self.assertEqual((await self.target_record(view))["state"], "contacting")  # not revoked
        self.assertIsNotNone(await self.b.store.get_device(DEVICE))

    async def test_a_store_failure_keeps_the_account_and_its_key(self):
        """The store fails the removal after its last statement: the notice
        fails (A sends it again), the account and its key both stay; then both
        go (the key's row in the account's transaction)."""
        keys = self.b.handlers.device_psk = DevicePskKeys(self.b.store, self.clock)
        await keys.load()
        view = await self.contacting()
        await keys.set(DEVICE, "dev-psk", PSK)
        remove_txn = self.b.store._remove_device_txn

        def fails_at_the_end(txn, *args):
            remove_txn(txn, *args)
            raise StoreUnavailable("database down")

        self.b.store._remove_device_txn = fails_at_the_end
        note = m.Notification(view["transaction_id"], "dms-a", "revoked")
        with self.assertRaises(StoreUnavailable):
            await self.b.flow.receive(SimpleNamespace(server_id="dms-a"), note)
        self.assertEqual((await self.target_record(view))["state"], "contacting")  # not revoked
        self.assertIsNotNone(await self.b.store.get_device(DEVICE))
        self.assertEqual(keys.key_for_identity("dev-psk"), PSK)
        self.assertEqual(await DevicePskKeys(self.b.store, self.clock).load(), 1)
        self.b.store._remove_device_txn = remove_txn
        self.assertTrue((await self.b.flow.receive(SimpleNamespace(server_id="dms-a"), note)).accepted)
        self.assertEqual((await self.target_record(view))["state"], "revoked")
        self.assertIsNone(keys.key_for_identity("dev-psk"))
        self.assertEqual(await DevicePskKeys(self.b.store, self.clock).load(), 0)

    # -- the device's first job failed -------------------------------------------------

    async def test_a_failed_first_job_ends_the_devices_live_session(self):
        self.tree.set_acl("./DevInfo/DevId", "Get=dms-a")  # the device refuses B the contact Get
        view = await self.contacting()
        contact = (await self.target_record(view))["device_steps"][DEVICE]["jobs"]
        session, reply = await self.open_session()  # the contact job sent
        operator = (await self.b.handlers.create_job(DEVICE, GET_MAN))["id"]  # for the live session
        reply = await self.next_message(session, reply)  # the contact Get refused; GET_MAN sent
        self.assertIn(b"./DevInfo/Man", reply.body)
        self.assertIn(DEVICE, self.b.dispatcher._by_device)
        await self.b.flow._advance_all()
        record = await self.target_record(view)
        self.assertEqual((record["state"], record["error"]["code"]), ("failed", "device_refused"))
        self.assertEqual(self.b.sent[-1].state, "failed")  # A is told
        errors = [e["error"] for e in await self.b.handlers.wait_events(0, 100, 0)
                  if e["type"] == "job" and e.get("job_id") == contact[0]]
        self.assertEqual(errors, ["command_failed"])  # (the device's refusal; only GET_MAN is left)
        await self.assert_deleted_as_by_an_operator([operator], session, reply)


class ArrivingStore(HeldStore):
    """A held store that says when a batch commit reaches the hold."""

    arrived = None

    async def commit_batch(self, batch, **kwargs):
        if self.arrived is not None:
            arrived, self.arrived = self.arrived, None
            arrived.callback(None)
        return await super().commit_batch(batch, **kwargs)


class PackageOneInFlightTests(TargetCase):
    """The notice while the device's package 1 (its session's row, the jobs
    it starts) is being written: the deletion waits for that message, which
    is answered.  (Before: the account went under the write, which failed
    with NotFound: the DM side answered 500.)"""

    def wrap_b(self, store):
        return ArrivingStore(store)  # batch commits wait while .held is unfired

    async def test_a_revoke_waits_for_package_1_then_deletes(self):
        view = await self.contacting()
        contact = (await self.target_record(view))["device_steps"][DEVICE]["jobs"]
        session = ClientSession(self.account_b(), random_bytes=os.urandom, tree=self.tree)
        store = self.b.store
        store.held, store.arrived = defer.Deferred(), defer.Deferred()
        opening = defer.ensureDeferred(
            self.b.dispatcher.handle_dm(session.start().body, encoding="xml", token=None))
        await store.arrived
        self.assertTrue(self.b.dispatcher._by_device[DEVICE].unrecorded)  # its row is in the write held
        dispatcher, ending = self.b.dispatcher, defer.Deferred()
        real = dispatcher.end_session

        async def end_session(*args, **kwargs):
            ended = defer.ensureDeferred(real(*args, **kwargs))  # (runs to the device's lock)
            ending.callback(None)
            return await ended

        dispatcher.end_session = end_session
        revoking = defer.ensureDeferred(self.from_a(view, "revoked"))
        await defer.DeferredList([ending, revoking], fireOnOneCallback=True, fireOnOneErrback=True)
        self.assertNoResult(revoking)  # waits for the device's message
        self.assertTrue(dispatcher._locks[DEVICE].waiting)
        held, store.held = store.held, None
        held.callback(None)
        reply = await opening
        self.assertEqual(reply.code, 200, reply.body)  # package 1 answered, the contact job sent
        self.assertTrue((await revoking).accepted)
        self.assertEqual((await self.target_record(view))["state"], "revoked")
        await self.assert_deleted_as_by_an_operator(contact, session, reply)
