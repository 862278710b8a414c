"""Both sides of the delegation flow, without a network: two dispatchers with
their own in-memory stores, messages passed through the wire format, the
device simulated by the client library, time on a task.Clock."""

import dataclasses
import os
from types import SimpleNamespace

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials
from dmgateway.client.tree import default_tree
from dmgateway.config import DelegationConfig, DelegationPeer
from dmgateway.delegation import messages as m
from dmgateway.delegation.flow import DelegationError, DelegationService
from dmgateway.dispatch import Dispatcher
from dmgateway.handlers import Handlers
from dmgateway.store import open_store
from dmgateway.tree import TreeError
from tests.fixtures import DEVICE
from tests.support import gateway_config

ACCOUNT_A = {
    "server_id": "dms-a",
    "client_auth": {"type": "md5", "name": "dev-a", "secret": "secret-a"},
    "server_auth": {"type": "md5", "name": "dms-a", "secret": "server-a"},
    "msisdn": "+447700900123",
}
URL = {"dms-a": "http://a.test/dm", "dms-b": "http://b.test/dm"}
PARTIAL = {"peer": "dms-b", "devices": [DEVICE], "subtrees": ["./Vendor/X"], "type": "partial",
           "duration": "temporary", "until_epoch": None}


def config(own, peer):
    delegation = DelegationConfig(enabled=True, peers=(DelegationPeer(peer, "https://x/d"),),
                                  check_interval=60.0)
    return dataclasses.replace(gateway_config(public_url=URL[own], server_id=own),
                               delegation=delegation)


class Side:
    def __init__(self, own, peer, store, clock):
        self.store = store
        self.dispatcher = Dispatcher(store, config(own, peer), clock=clock)
        self.handlers = Handlers(self.dispatcher)
        self.flow = DelegationService(config(own, peer), self.handlers, store, clock,
                                      self.send)
        self.other = None
        self.fail_sends = 0  # the next N sends fail as if the peer were unreachable
        self.unavailable = 0  # the next N sends are answered as the peer's bearer does when its store fails
        self.sent = []

    async def send(self, peer, message):
        self.sent.append(message)
        if self.fail_sends:
            self.fail_sends -= 1
            raise ConnectionRefusedError("peer down")
        if self.unavailable:
            self.unavailable -= 1
            return m.Response(message.transaction_id, False,
                              m.Reason("unavailable", "the message could not be handled now; retry later"))
        # through the wire format both ways, as over HTTPS
        received = m.parse(m.serialize(message))
        answer = await self.other.flow.receive(SimpleNamespace(server_id=peer_id(self)), received)
        return m.parse(m.serialize(answer))


def peer_id(side):
    return side.flow.own_id


class FlowCase(TestCase):
    """Two gateways, A delegating to B, and the device's tree (the client library's)."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1_800_000_000)
        stores = []
        for _ in range(2):
            store = yield open_store("sqlite::memory:", reactor=reactor)
            self.addCleanup(store.close)
            stores.append(store)
        self.a = Side("dms-a", "dms-b", stores[0], self.clock)
        self.b = Side("dms-b", "dms-a", self.wrap_b(stores[1]), self.clock)
        self.a.other, self.b.other = self.b, self.a
        for side in (self.a, self.b):
            yield defer.ensureDeferred(side.dispatcher.start())
        yield self.a.handlers.put_device(DEVICE, ACCOUNT_A)
        self.account_a = Account(DEVICE, "dms-a", URL["dms-a"], Credentials("md5", "dev-a", "secret-a"),
                                 Credentials("md5", "dms-a", "server-a"), name="dmsa")
        self.tree = default_tree(self.account_a)
        for sub in ("X", "Y"):
            self.tree.set("./Vendor/%s/Setting" % (sub,), "initial")
        self.tree.set_acl("./Vendor", "Add=dms-a&Delete=dms-a&Get=dms-a&Replace=dms-a")

    def wrap_b(self, store):
        """The store B's gateway uses (a test may wrap the real one)."""
        return store

    async def session(self, side, account):
        session = ClientSession(account, random_bytes=os.urandom, tree=self.tree)
        request = session.start()
        while request is not None:
            token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
            reply = await side.dispatcher.handle_dm(request.body, encoding="xml", token=token)
            request = session.receive(reply.body, reply.headers)
        self.assertEqual(session.outcome, "completed", session.log)
        await side.flow._advance_all()
        return session

    def account_b(self):
        for name in self.tree.read("./DMAcc").value:
            base = "./DMAcc/" + name
            if self.tree.read(base + "/ServerID").value == "dms-b":
                read = lambda leaf: self.tree.read(base + "/AppAuth/" + leaf).value  # noqa: E731
                return Account(DEVICE, "dms-b", self.tree.read(base + "/AppAddr/1/Addr").value,
                               Credentials("md5", read("1/AAuthName"), read("1/AAuthSecret")),
                               Credentials("md5", read("2/AAuthName"), read("2/AAuthSecret")),
                               name=name)
        return None

    async def delegate(self, spec=PARTIAL):
        view = await self.a.flow.create(dict(spec))
        for _ in range(3):
            if view["state"] != "preparing":
                break
            await self.session(self.a, self.account_a)
            view = await self.a.flow.get(view["id"])
        return view


class FlowTests(FlowCase):
    async def test_partial_temporary_round_trip(self):
        view = await self.delegate()
        self.assertEqual(view["state"], "device-ready", view)
        device_b = await self.b.store.get_device(DEVICE)
        self.assertEqual(device_b.msisdn, "+447700900123")  # B can wake the device itself
        b_view = (await self.b.flow.records.find("target", "dms-a", view["transaction_id"]))
        self.assertEqual(b_view["state"], "contacting")

        await self.session(self.b, self.account_b())
        self.assertEqual((await self.a.flow.get(view["id"]))["state"], "active")
        self.tree.replace("./Vendor/X/Setting", "by-b", server="dms-b")
        with self.assertRaises(TreeError) as refused:
            self.tree.replace("./Vendor/Y/Setting", "by-b", server="dms-b")
        self.assertEqual(refused.exception.status, 425)

        revoked = await self.a.flow.revoke(view["id"])
        self.assertEqual(revoked["state"], "revoking")
        await self.session(self.a, self.account_a)
        self.assertEqual((await self.a.flow.get(view["id"]))["state"], "revoked")
        self.assertIsNone(self.account_b())
        self.assertEqual(self.tree.get("./Vendor/X?prop=ACL").value, "")
        self.assertIsNone(await self.b.store.get_device(DEVICE))
        for side, states in ((self.a, ["requested", "preparing", "device-ready", "active",
                                       "revoking", "revoked"]),
                             (self.b, ["accepted", "contacting", "active", "revoked"])):
            events = await side.handlers.wait_events(0, 100, 0)
            self.assertEqual([e["state"] for e in events if e["type"] == "delegation"], states)

    async def test_a_refusing_device_rolls_the_atomic_back(self):
        # A may read ./Vendor/X's ACL but not change it: the Atomic fails as a whole
        self.tree.set_acl("./Vendor", "Add=dms-a&Delete=dms-a&Get=dms-a")
        view = await self.delegate()
        self.assertEqual(view["state"], "failed", view)
        self.assertEqual(view["error"]["code"], "device_refused")
        self.assertIsNone(self.account_b())  # the DMAcc Add was rolled back too
        self.assertIsNone(await self.b.store.get_device(DEVICE))
        self.assertEqual(self.b.sent, [])  # B never got to the device
        self.assertEqual(self.a.sent[-1].state, "failed")
        record = await self.b.flow.records.find("target", "dms-a", view["transaction_id"])
        self.assertEqual(record["state"], "failed")

    async def test_rejection_and_bad_requests(self):
        await self.b.handlers.put_device(DEVICE, dict(ACCOUNT_A, server_id="dms-b"))
        view = await self.a.flow.create(dict(PARTIAL))
        self.assertEqual((view["state"], view["error"]["code"]), ("rejected", "device_known"))
        with self.assertRaises(DelegationError) as raised:
            await self.a.flow.create(dict(PARTIAL, peer="dms-z"))
        self.assertEqual(raised.exception.code, "unknown_peer")
        with self.assertRaises(DelegationError) as raised:
            await self.a.flow.create(dict(PARTIAL, devices=["IMEI:1"]))
        self.assertEqual(raised.exception.code, "unknown_device")

    async def test_one_delegation_per_device_and_permanent_is_not_revoked(self):
        view = await self.a.flow.create(dict(PARTIAL, duration="permanent"))
        with self.assertRaises(DelegationError) as raised:
            await self.a.flow.create(dict(PARTIAL))
        self.assertEqual(raised.exception.code, "device_delegated")
        with self.assertRaises(DelegationError) as raised:
            await self.a.flow.revoke(view["id"])
        self.assertEqual(raised.exception.code, "not_revocable")

    async def test_messages_that_do_not_fit_are_rejected(self):
        peer = SimpleNamespace(server_id="dms-a")
        tid = "ab" * 16
        for message, code in (
            (m.Notification(tid, "dms-a", "device-ready"), "unknown_transaction"),
            (m.Notification(tid, "dms-x", "completed"), "wrong_server"),
            (m.Request(tid, "dms-a", "dms-q", (m.Device(DEVICE),), ("./X",), "partial",
                       "temporary"), "wrong_server"),
            (m.Request(tid, "dms-a", "dms-b", (m.Device(DEVICE),), (".",), "partial",
                       "temporary"), "bad_subtree"),
            (m.Response(tid, True), "unexpected"),
        ):
            answer = await self.b.flow.receive(peer, message)
            self.assertFalse(answer.accepted)
            self.assertEqual(answer.reason.code, code)

    async def test_undelivered_completion_is_retried_once_logged(self):
        view = await self.delegate()
        self.b.fail_sends = 2
        await self.session(self.b, self.account_b())  # completion fails to go out
        await self.b.flow._advance_all()  # and again
        record = await self.b.flow.records.find("target", "dms-a", view["transaction_id"])
        self.assertEqual(record["unsent"][0], "completed")
        self.assertEqual([h["step"] for h in record["history"]].count("notify-failed"), 1)
        self.assertEqual((await self.a.flow.get(view["id"]))["state"], "device-ready")
        await self.b.flow._advance_all()  # delivered now
        record = await self.b.flow.records.find("target", "dms-a", view["transaction_id"])
        self.assertNotIn("unsent", record)
        self.assertEqual((await self.a.flow.get(view["id"]))["state"], "active")

    async def test_notice_answered_unavailable_is_retried(self):
        # "unavailable" means retry later (docs/delegation.md): kept unsent, as undelivered
        view = await self.delegate()
        self.b.unavailable = 2
        await self.session(self.b, self.account_b())  # the completion is answered unavailable
        await self.b.flow._advance_all()  # and again
        record = await self.b.flow.records.find("target", "dms-a", view["transaction_id"])
        self.assertEqual(record["unsent"][0], "completed")
        failed = [h for h in record["history"] if h["step"] == "notify-failed"]
        self.assertEqual(len(failed), 1)
        self.assertIn("unavailable", failed[0]["detail"])
        self.assertEqual((await self.a.flow.get(view["id"]))["state"], "device-ready")
        await self.b.flow._advance_all()  # accepted now
        record = await self.b.flow.records.find("target", "dms-a", view["transaction_id"])
        self.assertNotIn("unsent", record)
        self.assertEqual((await self.a.flow.get(view["id"]))["state"], "active")
        self.assertEqual(len(self.b.sent), 3)

    async def test_notice_refused_otherwise_is_not_retried(self):
        view = await self.delegate()
        await self.session(self.b, self.account_b())
        record = await self.b.flow.records.find("target", "dms-a", view["transaction_id"])
        sent = len(self.b.sent)
        # a refusal that is not "unavailable" is final: nothing kept to send again
        answer = await self.b.flow._notify(record, "completed")
        self.assertFalse(answer.accepted)
        self.assertNotEqual(answer.reason.code, "unavailable")
        record = await self.b.flow.records.find("target", "dms-a", view["transaction_id"])
        self.assertNotIn("unsent", record)
        await self.b.flow._advance_all()
        self.assertEqual(len(self.b.sent), sent + 1)

    async def test_device_deleted_on_the_target_while_contacting(self):
        await self.check_deleted_while_contacting(purge_history=False)

    async def test_device_purged_on_the_target_while_contacting(self):
        await self.check_deleted_while_contacting(purge_history=True)

    async def check_deleted_while_contacting(self, purge_history):
        view = await self.delegate()
        record = await self.b.flow.records.find("target", "dms-a", view["transaction_id"])
        self.assertEqual(record["state"], "contacting")
        await self.b.handlers.delete_device(DEVICE, purge_history)  # B's operator
        await self.b.flow._advance_all()
        record = await self.b.flow.records.find("target", "dms-a", view["transaction_id"])
        self.assertEqual(record["state"], "failed")
        self.assertEqual(record["device_steps"][DEVICE]["step"], "failed")
        self.assertIn("the device was deleted", record["error"]["message"])
        self.assertEqual(self.b.sent[-1].state, "failed")
        # A takes its grant back from the device, then fails the delegation
        self.assertEqual((await self.a.flow.get(view["id"]))["state"], "revoking")
        await self.session(self.a, self.account_a)
        self.assertEqual((await self.a.flow.get(view["id"]))["state"], "failed")

    async def test_end_time_revokes(self):
        view = await self.delegate(dict(PARTIAL, until_epoch=self.clock.seconds() + 100))
        await self.session(self.b, self.account_b())
        await self.a.flow._advance_all()
        self.assertEqual((await self.a.flow.get(view["id"]))["state"], "active")
        self.clock.advance(101)
        await self.a.flow._advance_all()
        self.assertEqual((await self.a.flow.get(view["id"]))["state"], "revoking")
        await self.session(self.a, self.account_a)
        self.assertEqual((await self.a.flow.get(view["id"]))["state"], "revoked")

    async def test_device_gone_before_its_jobs_are_queued(self):
        real = self.a.handlers.create_job

        def gone(device_id, spec):
            from dmgateway.api.service import UnknownDevice

            return defer.fail(UnknownDevice(device_id))

        self.a.handlers.create_job = gone
        view = await self.a.flow.create(dict(PARTIAL))
        self.a.handlers.create_job = real
        self.assertEqual((view["state"], view["error"]["code"]), ("failed", "not_started"))
        self.assertEqual(self.a.sent[-1].state, "failed")
        self.assertIsNone(await self.b.store.get_device(DEVICE))
        self.flushLoggedErrors()
