"""
Device-function operations through the real dispatcher, session engine and
(in-memory SQLite) store, the device played by the client library with the
simulator's FUMO/SCOMO/LAWMO: Exec 202 -> awaiting_device, the completion
alert sessions later -> read-back of State/FwV in the same session -> done;
failure codes; the deadline; forged alerts.
"""

import os
from types import SimpleNamespace

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.client.account import GenericAlert
from dmgateway.client.functions import DeviceFunctions, FunctionPolicy
from dmgateway.devfunctions import FunctionService
from dmgateway.functions import FunctionError
from tests.support import start_dispatcher
from tests.test_dispatch import ACCOUNT, DEVICE, account

PACKAGE = b"DMGW-PKG 2.0\n" + b"\x00firmware" * 100
URL = "http://127.0.0.1:9/fw/pkg1?t=tok"
FUNCTIONS = SimpleNamespace(timeout=3600, expiry_interval=30)


class FunctionFlowTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT)
        self.service = FunctionService(self.dispatcher, FUNCTIONS, self.clock)
        self.service.start()
        self.addCleanup(self.service.stop)
        self.account = account()
        self.device = DeviceFunctions(DEVICE, fwv="1.0")

    async def drive(self, alerts=()):
        session = ClientSession(self.account, random_bytes=os.urandom)
        self.device.install(session.tree)
        request = session.start(generic_alerts=alerts)
        while request is not None:
            token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
            reply = await self.dispatcher.handle_dm(request.body, encoding="xml", token=token)
            self.assertEqual(reply.code, 200, reply.body)
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        self.assertEqual(session.outcome, "completed", session.log)
        return session

    async def report(self):
        """The device's next session carries its completion alerts."""
        session = await self.drive(self.device.reports())
        self.device.reported()
        return session

    async def test_fumo_waits_for_the_alert_then_reads_fwv_back(self):
        view = await self.service.start_operation(
            DEVICE, {"function": "fumo", "package_url": URL, "expect_fwv": "2.0"})
        self.assertEqual(view["state"], "pending")
        await self.drive()
        op = await self.service.get_operation(view["id"])
        self.assertEqual(op["state"], "awaiting_device")
        job = await self.dispatcher.get_job(view["id"])
        self.assertEqual(job["state"], "awaiting_device")
        self.assertEqual(job["function"]["state"], "awaiting_device")
        [(pending, url)] = self.device.downloads()
        self.assertEqual(url, URL)
        self.device.downloaded(pending, PACKAGE)
        self.assertEqual(self.device.fwv, "2.0")  # rebooted into the new firmware
        session = await self.report()
        # the read-back ran in the same session as the alert
        self.assertIn(("Get", "./DevDetail/FwV", 200), session.executed)
        op = await self.service.get_operation(view["id"])
        self.assertEqual((op["state"], op["result_code"]), ("done", 200))
        self.assertEqual((op["outcome"]["fwv"], op["outcome"]["device_state"]), ("2.0", 100))
        self.assertEqual((await self.dispatcher.get_job(view["id"]))["state"], "done")
        device = await self.dispatcher.get_device(DEVICE)
        self.assertEqual((device["functions"]["fwv"], device["functions"]["fumo_state"]), ("2.0", 100))

    async def test_failure_code_fails_the_operation(self):
        self.device.policy = FunctionPolicy({"fumo": (1.0, 402)})
        view = await self.service.start_operation(DEVICE, {"function": "fumo", "package_url": URL})
        await self.drive()
        [(pending, _url)] = self.device.downloads()
        self.device.downloaded(pending, PACKAGE)
        await self.report()
        op = await self.service.get_operation(view["id"])
        self.assertEqual((op["state"], op["result_code"], op["error"]["code"]), ("failed", 402, "device_failure"))
        self.assertEqual(op["outcome"]["fwv"], "1.0")  # read back: still the old firmware
        self.assertEqual(self.device.fwv, "1.0")

    async def test_lawmo_lock_and_unlock(self):
        lock = await self.service.start_operation(DEVICE, {"function": "lawmo", "action": "fully_lock"})
        await self.drive()
        await self.report()
        op = await self.service.get_operation(lock["id"])
        self.assertEqual((op["state"], op["result_code"], op["outcome"]["device_state"]), ("done", 1200, 10))
        unlock = await self.service.start_operation(DEVICE, {"function": "lawmo", "action": "unlock"})
        await self.drive()
        await self.report()
        op = await self.service.get_operation(unlock["id"])
        self.assertEqual((op["state"], op["outcome"]["device_state"]), ("done", 30))
        with self.assertRaises(FunctionError):
            await self.service.start_operation(DEVICE, {"function": "lawmo", "action": "factory_reset"})

    async def test_scomo_install_then_remove(self):
        install = await self.service.start_operation(
            DEVICE, {"function": "scomo", "action": "install", "component": "app1", "package_url": URL})
        await self.drive()
        [(pending, _url)] = self.device.downloads()
        self.device.downloaded(pending, b"DMGW-PKG 3.1\nbody")
        await self.report()
        op = await self.service.get_operation(install["id"])
        self.assertEqual((op["state"], op["result_code"]), ("done", 1200))
        self.assertEqual((op["outcome"]["version"], op["outcome"]["device_state"]), ("3.1", 20))
        view = await self.dispatcher.get_device(DEVICE)
        self.assertEqual(view["functions"]["components"], {"app1": {"version": "3.1", "state": 20}})
        self.assertEqual(op["outcome"]["identifier"], "app1")
        deactivate = await self.service.start_operation(
            DEVICE, {"function": "scomo", "action": "deactivate", "component": "app1"})
        await self.drive()
        await self.report()
        op = await self.service.get_operation(deactivate["id"])
        self.assertEqual((op["state"], op["result_code"], op["outcome"]["device_state"]), ("done", 1200, 10))
        remove = await self.service.start_operation(
            DEVICE, {"function": "scomo", "action": "remove", "component": "app1"})
        await self.drive()
        await self.report()
        op = await self.service.get_operation(remove["id"])
        self.assertEqual((op["state"], op["result_code"]), ("done", 1200))
        self.assertEqual(self.device.components, {})
        view = await self.dispatcher.get_device(DEVICE)
        self.assertEqual(view["functions"]["components"], {})

    async def test_deadline_expires_then_reads_the_state(self):
        view = await self.service.start_operation(
            DEVICE, {"function": "fumo", "package_url": URL, "timeout": 120, "notify": "none"})
        await self.drive()
        self.clock.advance(121)
        await self.service.expire()
        op = await self.service.get_operation(view["id"])
        self.assertEqual((op["state"], op["error"]["code"]), ("expired", "expired"))
        await self.drive()  # the device calls: the State read-back runs
        op = await self.service.get_operation(view["id"])
        self.assertEqual((op["state"], op["outcome"]["device_state"]), ("expired", 30))

    async def test_a_failed_sweep_does_not_stop_the_sweeps(self):
        view = await self.service.start_operation(
            DEVICE, {"function": "fumo", "package_url": URL, "timeout": 120, "notify": "none"})
        await self.drive()
        real = self.store.settle_orphans
        self.store.settle_orphans = lambda *a: defer.fail(RuntimeError("store away"))
        self.clock.advance(121)  # the LoopingCall's sweep fails
        self.clock.advance(FUNCTIONS.expiry_interval)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.store.settle_orphans = real
        self.clock.advance(FUNCTIONS.expiry_interval)  # the next sweep runs
        for _ in range(50):
            op = await self.service.get_operation(view["id"])
            if op["state"] == "expired":
                break
            await deferLater(reactor, 0.01)
        self.assertEqual(op["state"], "expired")

    async def test_forged_and_unknown_correlators_change_nothing(self):
        view = await self.service.start_operation(DEVICE, {"function": "fumo", "package_url": URL})
        await self.drive()
        forged = GenericAlert(type="org.openmobilealliance.dm.firmwareupdate.downloadandupdate",
                              format="int", data="200", source="./FUMO/fw1", correlator="jnotours")
        await self.drive([forged])
        op = await self.service.get_operation(view["id"])
        self.assertEqual(op["state"], "awaiting_device")

    async def test_bad_requests(self):
        for request in ({"function": "fumo"}, {"function": "x"}, [], {"function": "fumo", "package_url": URL,
                                                                      "timeout": True}):
            with self.assertRaises(FunctionError):
                await self.service.start_operation(DEVICE, request)

    async def test_user_request_gets_the_matching_update_in_the_same_session(self):
        from dmgateway.firmware import FirmwareService
        from dmgateway.store.functions import Firmware

        config = SimpleNamespace(timeout=3600, expiry_interval=30, download_enabled=False,
                                 download_url="http://127.0.0.1:9/fw", token_lifetime=600)
        self.service.config = config
        self.service.firmware = FirmwareService(self.store, config, self.clock)
        await self.store.add_firmware(Firmware("f" * 32, "fw", "2.0", "Acme", "X1", "1.0", URL, None, None, None,
                                               self.clock.seconds()))
        await self.store.set_devinfo(DEVICE, {"Man": "Acme", "Mod": "X1", "FwV": "1.0"})
        request = GenericAlert(type="org.openmobilealliance.dm.firmwareupdate.userrequest", format="chr", data="",
                               source="./FUMO/fw1")
        session = await self.drive([request])
        self.assertIn(("Exec", "./FUMO/fw1/DownloadAndUpdate", 202), session.executed)
        [(pending, url)] = self.device.downloads()
        self.assertEqual(url, URL)
        self.device.downloaded(pending, PACKAGE)
        await self.report()
        jobs = await self.store.list_jobs(DEVICE)
        op = await self.service.get_operation(jobs[0].job_id)
        self.assertEqual((op["state"], op["outcome"]["fwv"], op["expect_fwv"]), ("done", "2.0", "2.0"))
        # asked again at 2.0: no package for it, nothing queued
        await self.store.set_devinfo(DEVICE, {"Man": "Acme", "Mod": "X1", "FwV": "2.0"})
        session = await self.drive([request])
        self.assertNotIn("./FUMO/fw1/DownloadAndUpdate", [uri for _c, uri, _s in session.executed])
