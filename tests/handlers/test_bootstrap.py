"""Bootstraps through the real dispatcher, store and outbox (fake SMS bearer, injected clock):
the push is queued and sent as SMS parts, the simulated device verifies and applies it and then
opens a session that authenticates both ways; refusals send nothing and change nothing."""

import base64
import os
from types import SimpleNamespace

from twisted.trial.unittest import TestCase

from dmgateway.api.service import BootstrapRefused, UnknownDevice
from dmgateway.api.bootstrap import validate_bootstrap
from dmgateway.auth.credentials import user_hash
from dmgateway.bootstrap import read_push, sec
from dmgateway.handlers.bootstrap import account_node_name
from dmgateway.client import ClientSession
from dmgateway.client.bootstrap import BootstrapError, accept_bootstrap
from dmgateway.codec import prov
from dmgateway.notify import sms
from dmgateway.tree.standard import standard_tree
from tests import test_dispatch
from tests.outbox.test_service import ACCOUNT, DEVICE, FakeBearer, config, open_outbox

IMSI = "001010123456789"


def spec(**fields):
    return validate_bootstrap(fields)


class BootstrapperTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.sms = FakeBearer("sms", "msisdn")
        await open_outbox(self, config(), {"sms": self.sms}, os.urandom)
        await self.handlers.put_device(DEVICE, dict(ACCOUNT, imsi=IMSI))

    async def bootstrap(self, **fields):
        return await self.handlers.bootstrap(DEVICE, spec(**fields))

    def received(self, index=-1):
        """The push the device reassembles from the SMS parts the bearer was given."""
        address, trigger = self.sms.sent[index]
        self.assertEqual(address, ACCOUNT["msisdn"])
        self.assertEqual(trigger.esm_class, 0x40)
        inbox = sms.Reassembler()
        whole = None
        for part in trigger.payloads:
            self.assertLessEqual(len(part), 140)
            data = sms.parse_user_data(part)
            self.assertEqual(data.ports, (2948, 9200))
            whole = inbox.add(data) or whole
        return list(trigger.payloads), whole

    async def test_cp_push_is_sent_verified_and_applied(self):
        status, body = await self.bootstrap(profile="cp", sec="USERPIN", pin="4321",
                                            napdef={"NAPID": "NAP1", "BEARER": "GSM-GPRS",
                                                    "NAP-ADDRESS": "internet.example"})
        self.assertEqual((status, body["state"], body["profile"], body["sec"]), (202, "queued", "cp", "USERPIN"))
        await self.outbox.tick()
        parts, push = self.received()
        self.assertGreater(len(parts), 1)  # concatenated
        boot = read_push(push)
        self.assertEqual((boot.sec, boot.mac), ("USERPIN", body["mac"]))
        doc = prov.decode_wbxml(boot.document)
        self.assertEqual([c.type for c in doc.characteristics], ["NAPDEF", "APPLICATION"])
        # the device: a wrong PIN applies nothing, the right one gives the account
        tree = standard_tree()
        with self.assertRaises(BootstrapError):
            accept_bootstrap(tree, parts, pin="1234")
        self.assertFalse(tree.exists("./DMAcc/acc1"))
        account = accept_bootstrap(tree, parts, pin="4321")
        self.assertEqual((account.server_id, account.server_url), ("dmgw-test", "http://127.0.0.1:8080/dm"))
        await self.assert_stored_credentials(account)
        view = await self.handlers.get_device(DEVICE)
        (shown,) = view["bootstraps"]
        self.assertEqual((shown["id"], shown["state"], shown["profile"], shown["sec"], shown["attempts"]),
                         (body["id"], "sent", "cp", "USERPIN", 1))
        self.assertNotIn("4321", repr(view))
        # the stored push keeps its headers only: the document held plain secrets
        (stored,) = await self.store.standalone_notifications(DEVICE)
        self.assertEqual(stored.payload, push[:len(push) - len(boot.document)])
        self.assertNotIn(account.client.secret.encode(), stored.payload)
        # the receipt makes it delivered, with events naming the notification
        await self.outbox.delivery_report("sms", "sms-1", True)  # FakeBearer's first message id
        view = await self.handlers.get_device(DEVICE)
        self.assertEqual(view["bootstraps"][0]["state"], "delivered")
        events = await self.handlers.wait_events(0, 100, 0)
        kinds = [(e["type"], e.get("state"), e.get("kind")) for e in events]
        self.assertIn(("bootstrap", None, None), kinds)
        self.assertIn(("notification", "sent", "bootstrap"), kinds)
        self.assertIn(("notification", "delivered", "bootstrap"), kinds)
        self.assertTrue(all(e.get("notification_id") == body["id"] for e in events))

    async def assert_stored_credentials(self, account):
        """What the gateway stored is what the device was given (hash and nonces)."""
        device = await self.store.get_device(DEVICE)
        self.assertEqual(device.client_auth.user_hash, user_hash(account.client.name, account.client.secret))
        self.assertEqual(device.server_auth.user_hash, user_hash(account.server.name, account.server.secret))
        self.assertEqual(device.client_auth.nonce, bytes(account.client.nonce))
        self.assertEqual(device.server_auth.nonce, bytes(account.server.nonce))
        self.assertNotEqual(account.client.secret, ACCOUNT["client_auth"]["secret"])

    async def test_dm_netwpin_push(self):
        status, body = await self.bootstrap(profile="dm", sec="NETWPIN")
        self.assertEqual(status, 202)
        await self.outbox.tick()
        parts, push = self.received()
        self.assertEqual(push[5:9], bytes([0xC2, 0x91, 0x80, 0x92]))  # DM content type, SEC NETWPIN, MAC
        tree = standard_tree()
        with self.assertRaises(BootstrapError):
            accept_bootstrap(tree, parts, imsi="001010123456788")
        account = accept_bootstrap(tree, parts, imsi=IMSI)
        self.assertTrue(tree.exists("./DMAcc/%s" % (account_node_name("dmgw-test"),)))
        await self.assert_stored_credentials(account)

    async def test_return_gives_the_document_and_its_mac(self):
        status, body = await self.bootstrap(profile="dm", sec="USERPINMAC", pin="24680", deliver="return",
                                            tnds=True)
        self.assertEqual(status, 200)
        self.assertEqual(self.sms.sent, [])
        document = base64.b64decode(body["document"])
        self.assertEqual(body["content_type"], "application/vnd.syncml.dm+wbxml")
        self.assertEqual(body["user_pin"], sec.userpinmac_code("24680", document))
        self.assertEqual(read_push(base64.b64decode(body["push"])).document, document)
        account = accept_bootstrap(standard_tree(), base64.b64decode(body["push"]), pin=body["user_pin"])
        await self.assert_stored_credentials(account)
        self.assertEqual((await self.handlers.get_device(DEVICE))["bootstraps"], [])

    async def test_temporary_failures_are_retried(self):
        self.sms.script = [("retry", "throttled")]
        status, body = await self.bootstrap(profile="cp", sec="USERPIN", pin="1111")
        await self.outbox.tick()
        view = await self.handlers.get_device(DEVICE)
        self.assertEqual((view["bootstraps"][0]["state"], view["bootstraps"][0]["last_error"]),
                         ("queued", "throttled"))
        self.clock.advance(10)
        await self.outbox.tick()
        self.assertEqual(len(self.sms.sent), 1)
        self.assertEqual((await self.handlers.get_device(DEVICE))["bootstraps"][0]["state"], "sent")

    async def test_a_permanent_failure_is_shown_and_the_document_dropped(self):
        self.sms.script = [("refused", "unknown subscriber")]
        status, body = await self.bootstrap(profile="dm", sec="USERPIN", pin="1111")
        await self.outbox.tick()
        (shown,) = (await self.handlers.get_device(DEVICE))["bootstraps"]
        self.assertEqual((shown["state"], shown["last_error"], shown["profile"], shown["sec"]),
                         ("failed", "unknown subscriber", "dm", "USERPIN"))
        (stored,) = await self.store.standalone_notifications(DEVICE)
        self.assertEqual(read_push(stored.payload).document, b"")
        events = await self.handlers.wait_events(0, 100, 0)
        self.assertIn(("notification", "failed", "bootstrap"),
                      [(e["type"], e.get("state"), e.get("kind")) for e in events])

    async def refused(self, code, status=400, **fields):
        before = await self.store.get_device(DEVICE)
        with self.assertRaises(BootstrapRefused) as caught:
            await self.bootstrap(**fields)
        self.assertEqual((caught.exception.status, caught.exception.code), (status, code))
        await self.outbox.tick()
        self.assertEqual(self.sms.sent, [])
        after = await self.store.get_device(DEVICE)
        self.assertEqual((after.client_auth, after.server_auth), (before.client_auth, before.server_auth))
        self.assertEqual(await self.store.standalone_notifications(DEVICE), [])

    async def test_refusals_send_and_change_nothing(self):
        await self.handlers.put_device(DEVICE, dict(ACCOUNT, msisdn=None, imsi=None))
        await self.refused("no_imsi", profile="dm", sec="NETWPIN", deliver="return")
        await self.refused("no_imsi", profile="cp", sec="USERNETWPIN", pin="1234")
        await self.refused("no_msisdn", profile="cp", sec="USERPIN", pin="1234")
        await self.handlers.put_device(DEVICE, ACCOUNT)
        await self.refused("invalid_bootstrap", profile="cp", sec="none", proxy={"NAME": "no id"})
        await self.refused("too_large", profile="dm", sec="none", deliver="return", max_size=100)
        for profile in ("dm", "cp"):  # a lone surrogate from JSON cannot be encoded
            await self.refused("invalid_bootstrap", profile=profile, sec="none", name="x\ud800")
        self.dispatcher._by_device[DEVICE] = SimpleNamespace(authenticated=True)  # a live session
        await self.refused("session_live", 409, profile="cp", sec="none", deliver="return")
        del self.dispatcher._by_device[DEVICE]
        self.outbox.bearers["sms"] = FakeBearer("sms", "sip_uri")  # an SMPP router with no link for it
        await self.handlers.put_device(DEVICE, dict(ACCOUNT, sip_uri=None))
        await self.refused("no_route", profile="cp", sec="none")
        self.outbox.bearers.pop("sms")
        await self.refused("no_sms_bearer", 409, profile="cp", sec="none")
        with self.assertRaises(UnknownDevice):
            await self.handlers.bootstrap("IMEI:9", spec(profile="cp", sec="none"))


class BootstrappedSessionTests(TestCase):
    """After a returned bootstrap the device's session authenticates both ways and runs a job."""

    timeout = 60
    setUp = test_dispatch.DispatcherTests.setUp
    exchange = test_dispatch.DispatcherTests.exchange
    drive = test_dispatch.DispatcherTests.drive
    session = test_dispatch.DispatcherTests.session

    async def test_session_with_the_bootstrapped_account(self):
        device_id = test_dispatch.DEVICE  # as test_dispatch.DispatcherTests.setUp stored it, "dev-secret" / "srv-secret"
        _, body = await self.handlers.bootstrap(device_id, spec(profile="dm", sec="USERPIN", pin="1234",
                                                                  deliver="return"))
        tree = standard_tree({"DevId": device_id})
        account = accept_bootstrap(tree, base64.b64decode(body["push"]), pin="1234")
        job = await self.handlers.create_job(
            device_id, {"commands": [{"op": "Get", "target": "./DevInfo/DevId"}], "notify": "none"})
        session = await self.drive(ClientSession(account, tree=tree, random_bytes=os.urandom))
        self.assertEqual(session.outcome, "completed", session.log)
        self.assertTrue(session.server_authenticated)
        done = await self.handlers.get_job(job["id"])
        self.assertEqual((done["state"], done["results"][0]["data"]), ("done", device_id))
        # the credentials it had before no longer open a session
        old = self.session()
        await self.drive(old, stop_after=3)
        self.assertNotEqual(old.outcome, "completed", old.log)
