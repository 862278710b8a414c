"""
Campaigns through the real dispatcher, engine and store (SQLite in memory),
with simulated devices (client library + the simulator's FUMO/SCOMO/LAWMO):
waves, automatic pause on a failed wave, resume, exact per-device outcomes,
rate limit and concurrency cap, window, skip of devices in another campaign,
cancel, report, and a restart of the services in the middle.
"""

import csv
import io
import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.campaigns import CampaignError, CampaignService
from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials
from dmgateway.client.functions import DeviceFunctions, FunctionPolicy, fails
from dmgateway.config.services import FunctionsConfig
from dmgateway.devfunctions import FunctionService
from dmgateway.dispatch import Dispatcher
from dmgateway.handlers import Handlers
from tests.support import gateway_config, open_test_store

URL = "http://127.0.0.1:9/fw/x"
CONFIG = FunctionsConfig(timeout=3600, expiry_interval=30, campaign_interval=5, download_enabled=False,
                         download_url="http://127.0.0.1:9/fw", token_lifetime=600)
PACKAGE = b"DMGW-PKG 2.0\nbody"


def device_id(n):
    return "IMEI:35%013d" % (n,)


class Fleet:
    """Simulated devices that call the gateway when they have something to do."""

    def __init__(self, test, count, policy):
        self.test = test
        self.devices = {}
        for n in range(count):
            dev_id = device_id(n)
            acc = Account(device_id=dev_id, server_id="dmgw-test", server_url="http://127.0.0.1:8080/dm",
                          client=Credentials("md5", "dev", "dev-secret"),
                          server=Credentials("md5", "dmgw-test", "srv-secret"))
            self.devices[dev_id] = (acc, DeviceFunctions(dev_id, fwv="1.0", policy=policy))
        self.sessions = 0

    async def session(self, dev_id):
        acc, functions = self.devices[dev_id]
        for pending, _url in functions.downloads():
            functions.downloaded(pending, PACKAGE)
        session = ClientSession(acc, random_bytes=os.urandom)
        functions.install(session.tree)
        request = session.start(generic_alerts=functions.reports())
        while request is not None:
            token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
            reply = await self.test.dispatcher.handle_dm(request.body, encoding="xml", token=token)
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        self.test.assertEqual(session.outcome, "completed", session.log)
        functions.reported()
        self.sessions += 1

    async def round(self):
        """Every device with a queued job or a report to make calls once."""
        queued = {job.device_id for job in await self.test.store.jobs_in_state(("queued", "notified"))}
        for dev_id, (_acc, functions) in self.devices.items():
            if dev_id in queued or functions.has_work():
                await self.session(dev_id)


class CampaignTests(TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def setUp(self):
        yield open_test_store(self, "sqlite::memory:")
        yield self.services()

    @defer.inlineCallbacks
    def services(self):
        self.dispatcher = Dispatcher(self.store, gateway_config(session_timeout=60), clock=self.clock)
        self.handlers = Handlers(self.dispatcher)
        yield defer.ensureDeferred(self.dispatcher.start())
        self.functions = FunctionService(self.handlers, CONFIG, self.clock)
        self.functions.start()
        self.campaigns = CampaignService(self.handlers, CONFIG, self.clock)
        self.campaigns.start()
        self.addCleanup(self.stop_services)

    def stop_services(self):
        self.functions.stop()
        return self.campaigns.stop()

    async def add_devices(self, count, policy=None, **devinfo):
        self.fleet = Fleet(self, count, policy or FunctionPolicy())
        for dev_id in self.fleet.devices:
            await self.handlers.put_device(dev_id, {
                "server_id": "dmgw-test",
                "client_auth": {"type": "md5", "name": "dev", "secret": "dev-secret"},
                "server_auth": {"type": "md5", "name": "dmgw-test", "secret": "srv-secret"},
            })
            if devinfo:
                await self.store.set_devinfo(dev_id, devinfo)

    async def run_until(self, states, rounds=60):
        for _ in range(rounds):
            self.clock.advance(CONFIG.campaign_interval)
            await self.campaigns.step()
            await self.fleet.round()
            view = await self.campaigns.get(self.campaign_id)
            if view["state"] in states:
                return view
        self.fail("campaign still %s" % (view,))

    async def test_waves_pause_on_failures_resume_and_exact_outcomes(self):
        policy = FunctionPolicy({"fumo": (0.05, 402)}, salt="b")
        await self.add_devices(60, policy, Man="Acme", Mod="X1")
        failing = {d for d in self.fleet.devices if policy.code_for(d, "fumo") == 402}
        # positions 7, 18, 21, 28 are in wave 2 (4 of 24 fail), 36 in wave 3 (1 of 30)
        self.assertEqual(failing, {device_id(n) for n in (7, 18, 21, 28, 36)})
        view = await self.campaigns.create({
            "function": "fumo", "params": {"package_url": URL, "expect_fwv": "2.0"},
            "selection": {"man": "Acme", "mod": "X1"},
            "policy": {"waves": [10, 50, 100], "rate_per_minute": 6000, "concurrency": 100,
                       "pause_failure_ratio": 0.05},
        })
        self.campaign_id = view["id"]
        self.assertEqual((view["total"], view["waves"]), (60, 3))
        view = await self.run_until(("paused", "done"))
        paused_at = []
        while view["state"] == "paused":
            paused_at.append(view["wave"])
            self.assertIn("failure ratio", view["reason"])
            view = await self.campaigns.change(self.campaign_id, "resume")
            view = await self.run_until(("paused", "done"))
        self.assertEqual(view["state"], "done")
        self.assertEqual(paused_at, [2])
        report = await self.campaigns.report(self.campaign_id)
        outcomes = {row["device_id"]: (row["state"], row["result_code"], row["fwv"]) for row in report["devices"]}
        expected = {d: ("failed", 402, "1.0") if d in failing else ("done", 200, "2.0") for d in self.fleet.devices}
        self.assertEqual(outcomes, expected)
        self.assertEqual(view["progress"]["by_result"], {"200": 60 - len(failing), "402": len(failing)})
        for dev_id, (_acc, functions) in self.fleet.devices.items():
            self.assertEqual(functions.accepted, 1, dev_id)  # no device started twice
        text = await self.campaigns.report(self.campaign_id, "csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        self.assertEqual(len(rows), 60)
        # device-supplied text that a spreadsheet would run as a formula is defused
        real = self.store.campaign_devices

        async def hostile(campaign_id):
            found = await real(campaign_id)
            found[0] = dict(found[0], fwv="=HYPERLINK(\"http://x.test\")", reason="@SUM(1)")
            return found

        self.store.campaign_devices = hostile
        rows = list(csv.DictReader(io.StringIO(await self.campaigns.report(self.campaign_id, "csv"))))
        self.store.campaign_devices = real
        self.assertEqual((rows[0]["fwv"], rows[0]["reason"]), ("'=HYPERLINK(\"http://x.test\")", "'@SUM(1)"))
        self.assertEqual(rows[1]["fwv"], outcomes[rows[1]["device_id"]][2])
        events = [e for e in await self.store.events_after(0, 10000) if e["type"] == "campaign"]
        self.assertIn("paused", [e["state"] for e in events])

    async def test_rate_limit_concurrency_and_restart(self):
        await self.add_devices(30)
        view = await self.campaigns.create({
            "function": "lawmo", "action": "fully_lock", "selection": {"server_id": "dmgw-test"},
            "policy": {"rate_per_minute": 12, "concurrency": 3},
        })
        self.campaign_id = view["id"]
        started = (await self.campaigns.get(self.campaign_id))["progress"]["by_state"].get("started", 0)
        self.assertLessEqual(started, 3)
        # 12 per minute = one per 5 s step; cap 3 in progress while devices stay away
        for _ in range(5):
            self.clock.advance(5)
            await self.campaigns.step()
        self.assertEqual((await self.campaigns.get(self.campaign_id))["progress"]["by_state"]["started"], 3)
        # the processes restart: new services on the same store pick up
        await self.stop_services()
        await self.services()
        await self.campaigns.recover()
        view = await self.run_until(("done",), rounds=200)
        self.assertEqual(view["progress"]["by_state"], {"done": 30})
        for _acc, functions in self.fleet.devices.values():
            self.assertEqual((functions.accepted, functions.lawmo_state), (1, 10))

    async def test_a_failed_pass_does_not_stop_the_scheduler(self):
        await self.add_devices(3)
        real = self.store.list_campaigns

        def away(*args, **kwargs):
            return defer.fail(RuntimeError("store away"))

        self.store.list_campaigns = away
        self.clock.advance(CONFIG.campaign_interval)  # the LoopingCall's pass fails
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.store.list_campaigns = real
        view = await self.campaigns.create({
            "function": "lawmo", "action": "fully_lock", "selection": {"server_id": "dmgw-test"},
            "policy": {"rate_per_minute": 60, "concurrency": 1},
        })
        self.campaign_id = view["id"]
        await self.campaigns.step()
        self.assertEqual(view["progress"]["by_state"].get("started", 0), 1)
        self.assertTrue(self.campaigns._loop.running)
        for _ in range(8):  # the scheduler's own passes start the rest, one at a time
            await self.fleet.round()
            self.clock.advance(CONFIG.campaign_interval)
            if self.campaigns._stepping is not None:
                await self.campaigns._stepping
            view = await self.campaigns.get(self.campaign_id)
            if view["state"] == "done":
                break
        self.assertEqual(view["progress"]["by_state"], {"done": 3})

    async def test_scomo_install_and_remove(self):
        await self.add_devices(10)
        view = await self.campaigns.create({
            "function": "scomo", "action": "install", "params": {"package_url": URL, "component": "app1"},
            "selection": {"server_id": "dmgw-test"}, "policy": {"rate_per_minute": 6000}})
        self.campaign_id = view["id"]
        view = await self.run_until(("done",))
        self.assertEqual(view["progress"]["by_result"], {"1200": 10})
        view = await self.campaigns.create({
            "function": "scomo", "action": "remove", "params": {"component": "app1"},
            "selection": {"server_id": "dmgw-test"}, "policy": {"rate_per_minute": 6000}})
        self.campaign_id = view["id"]
        view = await self.run_until(("done",))
        self.assertEqual(view["progress"]["by_result"], {"1200": 10})
        self.assertTrue(all(not f.components for _a, f in self.fleet.devices.values()))

    async def test_skip_cancel_window_and_bad_requests(self):
        await self.add_devices(6)
        first = await self.campaigns.create({
            "function": "lawmo", "action": "unlock", "selection": {"devices": [device_id(0), device_id(1)]},
            "policy": {"rate_per_minute": 0.01}})
        second = await self.campaigns.create({
            "function": "lawmo", "action": "fully_lock", "selection": {"server_id": "dmgw-test"},
            "policy": {"window": {"start": "00:00", "end": "00:01"}, "rate_per_minute": 600}})
        report = await self.campaigns.report(second["id"])
        skipped = {r["device_id"]: r["reason"] for r in report["devices"] if r["state"] == "skipped"}
        self.assertEqual(set(skipped), {device_id(0), device_id(1)})
        self.assertIn(first["id"], skipped[device_id(0)])
        # outside its window nothing starts
        self.assertEqual(second["progress"]["by_state"], {"waiting": 4, "skipped": 2})
        view = await self.campaigns.change(second["id"], "cancel")
        self.assertEqual((view["state"], view["progress"]["by_state"]), ("cancelled", {"cancelled": 4, "skipped": 2}))
        with self.assertRaises(CampaignError):
            await self.campaigns.change(second["id"], "resume")
        for bad in ({"function": "fumo", "selection": {"man": "x"}},  # no package
                    {"function": "lawmo", "action": "wipe", "params": {"wipe_list": ["sd"]}, "selection": {"man": "x"}},
                    {"function": "lawmo", "selection": {"devices": []}},
                    {"function": "lawmo", "selection": {"colour": "red"}},
                    {"function": "lawmo", "selection": {"man": "x"}, "policy": {"waves": [50]}},
                    {"function": "fumo", "params": {"firmware_id": "0" * 32}, "selection": {"man": "x"}}):
            with self.assertRaises(CampaignError):
                await self.campaigns.create(bad)


def test_failure_choice_is_stable():
    chosen = [n for n in range(2000) if fails(device_id(n), 0.05)]
    assert 60 < len(chosen) < 140
    assert chosen == [n for n in range(2000) if fails(device_id(n), 0.05)]
