"""
Device-function operations through the real dispatcher, session engine and
(in-memory SQLite) store, the device played by the client library with the
simulator's FUMO/SCOMO/LAWMO: Exec 202 -> awaiting_device, the completion
alert sessions later -> read-back of State/FwV in the same session -> done;
failure codes; the deadline; forged alerts.
"""

import os

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.client.account import GenericAlert
from dmgateway.client.functions import DeviceFunctions, FunctionPolicy
from dmgateway.config.services import FunctionsConfig
from dmgateway.devfunctions import FunctionService
from dmgateway.functions import FunctionError
from tests.fixtures import ACCOUNT, DEVICE
from tests.support import start_dispatcher
from tests.test_dispatch import account

PACKAGE = b"DMGW-PKG 2.0\n" + b"\x00firmware" * 100
URL = "http://127.0.0.1:9/fw/pkg1?t=tok"
FUNCTIONS = FunctionsConfig(timeout=3600, expiry_interval=30)


class FunctionFlowTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT)
        self.service = FunctionService(self.handlers, FUNCTIONS, self.clock)
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
        job = await self.handlers.get_job(view["id"])
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
        self.assertEqual((await self.handlers.get_job(view["id"]))["state"], "done")
        device = await self.handlers.get_device(DEVICE)
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

    async def test_fumo_download_then_update(self):
        download = await self.service.start_operation(
            DEVICE, {"function": "fumo", "action": "download", "package_url": URL})
        await self.drive()
        [(pending, _url)] = self.device.downloads()
        self.device.downloaded(pending, PACKAGE)
        self.assertEqual((self.device.fwv, self.device.fumo_state), ("1.0", 50))  # kept, not installed
        await self.report()
        op = await self.service.get_operation(download["id"])
        self.assertEqual((op["state"], op["result_code"], op["outcome"]["fwv"]), ("done", 200, "1.0"))
        update = await self.service.start_operation(
            DEVICE, {"function": "fumo", "action": "update", "expect_fwv": "2.0"})
        session = await self.drive()
        self.assertIn(("Exec", "./FUMO/fw1/Update", 202), session.executed)
        self.assertEqual(self.device.fwv, "2.0")
        await self.report()
        op = await self.service.get_operation(update["id"])
        self.assertEqual((op["state"], op["result_code"]), ("done", 200))
        self.assertEqual((op["outcome"]["fwv"], op["outcome"]["device_state"]), ("2.0", 100))

    async def test_fumo_update_without_a_downloaded_package_fails(self):
        update = await self.service.start_operation(DEVICE, {"function": "fumo", "action": "update"})
        await self.drive()
        await self.report()
        op = await self.service.get_operation(update["id"])
        self.assertEqual((op["state"], op["result_code"]), ("failed", 410))
        self.assertEqual(self.device.fwv, "1.0")

    async def test_lawmo_partially_lock_and_factory_reset(self):
        lock = await self.service.start_operation(DEVICE, {"function": "lawmo", "action": "partially_lock"})
        await self.drive()
        await self.report()
        op = await self.service.get_operation(lock["id"])
        self.assertEqual((op["state"], op["result_code"], op["outcome"]["device_state"]), ("done", 1200, 20))
        reset = await self.service.start_operation(
            DEVICE, {"function": "lawmo", "action": "factory_reset", "confirm": True})
        session = await self.drive()
        self.assertIn(("Exec", "./LAWMO/Operations/FactoryReset", 202), session.executed)
        await self.report()
        op = await self.service.get_operation(reset["id"])
        self.assertEqual((op["state"], op["result_code"]), ("done", 1200))

    async def test_scomo_install_inactive_then_activate(self):
        install = await self.service.start_operation(
            DEVICE, {"function": "scomo", "action": "install_inactive", "component": "app2", "package_url": URL})
        session = await self.drive()
        self.assertIn(("Exec", "./SCOMO/Download/app2/Operations/DownloadInstallInactive", 202), session.executed)
        [(pending, _url)] = self.device.downloads()
        self.device.downloaded(pending, b"DMGW-PKG 1.5\nbody")
        await self.report()
        op = await self.service.get_operation(install["id"])
        self.assertEqual((op["state"], op["result_code"], op["outcome"]["device_state"]), ("done", 1200, 10))
        activate = await self.service.start_operation(
            DEVICE, {"function": "scomo", "action": "activate", "component": "app2"})
        await self.drive()
        await self.report()
        op = await self.service.get_operation(activate["id"])
        self.assertEqual((op["state"], op["result_code"], op["outcome"]["device_state"]), ("done", 1200, 20))
        view = await self.handlers.get_device(DEVICE)
        self.assertEqual(view["functions"]["components"]["app2"]["state"], 20)

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
        view = await self.handlers.get_device(DEVICE)
        self.assertEqual(view["functions"]["components"],
                         {"app1": {"id": "app1", "name": "app1", "version": "3.1", "state": 20, "status": 10}})
        self.assertEqual(view["functions"]["delivered"],
                         {"app1": {"package_id": "app1", "name": "app1", "state": 20, "status": 10}})
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
        view = await self.handlers.get_device(DEVICE)
        self.assertEqual(view["functions"]["components"], {})
        self.assertEqual(view["functions"]["delivered"], {})

    async def test_scomo_reads_the_whole_inventory_back(self):
        # components the gateway never installed are in the device view too
        self.device.components["preloaded"] = {"version": "9.0", "state": 10}
        self.device.delivered["preloaded"] = {"package_id": "pre-9.0", "state": 20}
        install = await self.service.start_operation(
            DEVICE, {"function": "scomo", "action": "install", "component": "app1", "package_url": URL,
                     "package_id": "app1-3.1"})
        await self.drive()
        [(pending, _url)] = self.device.downloads()
        self.device.downloaded(pending, b"DMGW-PKG 3.1\nbody")
        session = await self.report()
        self.assertIn(("Get", "./SCOMO/Inventory/Deployed?list=StructData", 200), session.executed)
        self.assertIn(("Get", "./SCOMO/Inventory/Delivered?list=StructData", 200), session.executed)
        op = await self.service.get_operation(install["id"])
        self.assertEqual(sorted(op["outcome"]["inventory"]["deployed"]), ["app1", "preloaded"])
        functions = (await self.handlers.get_device(DEVICE))["functions"]
        self.assertEqual({name: (c["version"], c["state"]) for name, c in functions["components"].items()},
                         {"app1": ("3.1", 20), "preloaded": ("9.0", 10)})
        self.assertEqual({name: (p["package_id"], p["state"]) for name, p in functions["delivered"].items()},
                         {"app1": ("app1-3.1", 20), "preloaded": ("pre-9.0", 20)})
        # on request, with no operation: the device changed behind the gateway's back
        del self.device.components["preloaded"]
        self.device.components["other"] = {"version": "1.2", "state": 20}
        accepted = self.device.accepted
        inventory = await self.service.start_operation(DEVICE, {"function": "scomo", "action": "inventory"})
        await self.drive()
        self.assertEqual(self.device.accepted, accepted)  # no Exec
        op = await self.service.get_operation(inventory["id"])
        self.assertEqual(op["state"], "done")
        functions = (await self.handlers.get_device(DEVICE))["functions"]
        self.assertEqual(sorted(functions["components"]), ["app1", "other"])
        self.assertEqual(functions["components"]["other"]["version"], "1.2")

    async def test_scomo_inventory_unreadable_fails_clearly(self):
        inventory = await self.service.start_operation(
            DEVICE, {"function": "scomo", "action": "inventory", "root": "./NoSuchSCOMO"})
        await self.drive()
        op = await self.service.get_operation(inventory["id"])
        self.assertEqual((op["state"], op["error"]["code"]), ("failed", "inventory_unreadable"))

    async def wipe(self, request):
        view = await self.service.start_operation(DEVICE, dict({"function": "lawmo", "action": "wipe",
                                                                "confirm": True}, **request))
        for _ in range(2):  # the AvailableWipeList read, then (maybe in the same session) the wipe
            session = await self.drive()
            if ("Get", "./LAWMO/AvailableWipeList", 200) in session.executed:
                break
        op = await self.service.get_operation(view["id"])
        if op["state"] == "pending":
            await self.drive()
            op = await self.service.get_operation(view["id"])
        return view, op

    async def test_lawmo_wipe_the_requested_entries_the_device_offers(self):
        view, op = await self.wipe({"wipe_list": ["sdcard"]})
        self.assertEqual(op["state"], "awaiting_device")
        self.assertEqual(op["outcome"]["wipe_offered"], ["contacts", "sdcard"])
        self.assertEqual(op["outcome"]["wipe_list"], ["sdcard"])
        self.assertEqual(self.device.wiped, ["sdcard"])
        await self.report()
        op = await self.service.get_operation(view["id"])
        self.assertEqual((op["state"], op["result_code"]), ("done", 1201))

    async def test_lawmo_wipe_without_a_list_wipes_what_the_device_offers(self):
        view, op = await self.wipe({})
        self.assertEqual(op["outcome"]["wipe_list"], ["contacts", "sdcard"])
        self.assertEqual(self.device.wiped, ["contacts", "sdcard"])
        await self.report()
        op = await self.service.get_operation(view["id"])
        self.assertEqual((op["state"], op["result_code"]), ("done", 1201))

    async def test_lawmo_wipe_second_job_survives_a_crash_and_expires_with_the_operation(self):
        view = await self.service.start_operation(
            DEVICE, {"function": "lawmo", "action": "wipe", "confirm": True, "timeout": 120, "notify": "none"})
        await self.drive()  # reads the list; the wipe job is queued for the next session
        op = await self.store.get_operation(view["id"])
        self.assertEqual(op.state, "pending")
        stage = op.readback_job_id
        # no wake-up recorded for it (as after a crash): the recovery finds it
        self.assertIn(stage, [j.job_id for j in await self.store.unnotified_function_jobs()])
        self.clock.advance(121)
        await self.service.expire()
        op = await self.service.get_operation(view["id"])
        self.assertEqual((op["state"], op["error"]["code"]), ("expired", "expired"))
        self.assertEqual((await self.store.get_job(stage)).state, "expired")  # never sent late
        await self.drive()
        self.assertEqual(self.device.wiped, [])

    async def test_lawmo_wipe_list_read_cut_by_a_restart_is_read_again(self):
        class Woken:
            def __init__(self):
                self.jobs = []

            async def job_created(self, job, device):
                self.jobs.append(job.job_id)

            async def session_started(self, device_id, job_ids):
                pass

        self.dispatcher.outbox = woken = Woken()
        view = await self.service.start_operation(
            DEVICE, {"function": "lawmo", "action": "wipe", "confirm": True, "wipe_list": ["sdcard"]})
        # the gateway died while the device's session ran the read: nothing reached its data
        await self.store.update_job(view["id"], state="failed", error={"code": "interrupted", "message": "restart"})
        await self.service.expire()
        op = await self.store.get_operation(view["id"])
        self.assertEqual(op.state, "pending")  # no Exec was sent: no alert to wait for
        self.assertIn(op.readback_job_id, woken.jobs)  # the read again, and the device woken for it
        await self.drive()  # reads the list; the wipe job is queued for the next session
        await self.drive()
        self.assertEqual(self.device.wiped, ["sdcard"])
        await self.report()
        op = await self.service.get_operation(view["id"])
        self.assertEqual((op["state"], op["result_code"], op["outcome"]["wipe_list"]), ("done", 1201, ["sdcard"]))

    async def test_lawmo_wipe_refuses_an_entry_the_device_does_not_offer(self):
        accepted = self.device.accepted
        view, op = await self.wipe({"wipe_list": ["sdcard", "photos"]})
        self.assertEqual((op["state"], op["error"]["code"]), ("failed", "wipe_list_entry_unavailable"))
        self.assertIn("photos", op["error"]["message"])
        self.assertEqual(self.device.accepted, accepted)  # no Exec reached the device
        self.assertEqual(self.device.wiped, [])
        jobs = await self.store.list_jobs(DEVICE)
        self.assertEqual([j.job_id for j in jobs], [view["id"]])  # no wipe job queued
        with self.assertRaises(FunctionError):  # the confirmation stays required
            await self.service.start_operation(DEVICE, {"function": "lawmo", "action": "wipe", "wipe_list": ["sdcard"]})
        for bad in (["../x"], [], "sdcard", ["a"] * 33):
            with self.assertRaises(FunctionError):
                await self.service.start_operation(DEVICE, {"function": "lawmo", "action": "wipe", "confirm": True,
                                                            "wipe_list": bad})

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

    async def test_only_a_message_with_a_generic_alert_is_prepared_for(self):
        # (nearly every message has none: before_message answers None at
        # once, no coroutine; one with a Generic Alert gets what prepares it)
        from types import SimpleNamespace

        from dmgateway.codec import syncml as sm

        live = SimpleNamespace(device_id=DEVICE, function_request=None, function_readbacks={})
        plain = SimpleNamespace(body=[sm.Alert(data=sm.ALERT_CLIENT_INITIATED), sm.Replace(), sm.Status()])
        self.assertIsNone(self.service.before_message(live, plain))
        unknown = sm.Alert(data=sm.ALERT_GENERIC, correlator="notours", items=[sm.Item()])
        preparing = self.service.before_message(live, SimpleNamespace(body=[sm.Replace(), unknown]))
        self.assertIsNotNone(preparing)
        self.assertIsNone(await preparing)  # (no operation of the device has that Correlator)
        self.assertEqual(live.function_readbacks, {})

    async def test_bad_requests(self):
        for request in ({"function": "fumo"}, {"function": "x"}, [], {"function": "fumo", "package_url": URL,
                                                                      "timeout": True}):
            with self.assertRaises(FunctionError):
                await self.service.start_operation(DEVICE, request)

    async def test_user_request_gets_the_matching_update_in_the_same_session(self):
        from dmgateway.firmware import FirmwareService
        from dmgateway.store.firmware import Firmware

        config = FunctionsConfig(timeout=3600, expiry_interval=30, download_enabled=False,
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
