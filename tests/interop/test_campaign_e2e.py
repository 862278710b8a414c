"""
Device-function campaigns against the REAL daemon, its devices woken by SMS
through the npm ``smpp`` SMSC simulator (tests/interop/smsc_sim.js) and
played by the fleet runner with the simulator's FUMO/SCOMO/LAWMO:

* a firmware campaign over DMGW_E2E_DEVICES (default 500) devices, XML and
  WBXML mixed, the package uploaded through the API and downloaded from the
  gateway's package server with per-device tokens, three waves, 5% of the
  devices failing with 402: the campaign pauses after each wave whose
  failure ratio is above the threshold, is resumed through the API, and
  ends with exact per-device outcomes and every successful device reporting
  the new FwV; the daemon is killed with SIGKILL in the middle (while no DM
  session is in flight) and restarted: nothing is lost, no device is
  started twice;
* LAWMO lock then unlock, a wipe of the one AvailableWipeList entry asked
  for and a wipe refused for an entry the devices do not offer, and SCOMO
  install then remove, over 50 devices, the devices' whole SCOMO inventory
  (with a component the gateway never installed) in the device views.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from twisted.internet import defer, reactor, task, threads
from twisted.trial.unittest import TestCase

from dmgateway.client import fleet, sim
from dmgateway.client.functions import DeviceFunctions, FunctionPolicy
from dmgateway.functions.rollout import wave_of
from tests.interop.daemon import ROOT, Daemon, free_port
from tests.interop.nodesmsc import NodeSMSC
from tests.interop.test_fleet_wake import NOTIFY_FAST, SERVER_ID, smpp_ini

DEVICES = int(os.environ.get("DMGW_E2E_DEVICES", "500"))
PACKAGE = b"DMGW-PKG 2.0\n" + hashlib.sha256(b"fw").digest() * 2048  # 64 KiB
WAVES = [2, 20, 100]
THRESHOLD = 0.05


def functions_ini(port):
    return ("[functions]\ncampaign_interval = 1\nexpiry_interval = 2\ndownload_enabled = true\n"
            "endpoint = tcp:%d:interface=127.0.0.1\ndownload_url = http://127.0.0.1:%d/fw\n"
            "package_dir = var/firmware\n" % (port, port))


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


def choose_policy(device_ids):
    """A 5% failure mix whose failures make at least one wave, not the last, pause."""
    for salt in "abcdefghijklmnopqrstuvwxyz":
        policy = FunctionPolicy({"fumo": (0.05, 402)}, salt=salt)
        failing = {d for d in device_ids if policy.code_for(d, "fumo") == 402}
        pauses = []
        for wave in range(len(WAVES)):
            members = [d for n, d in enumerate(device_ids) if wave_of(n, len(device_ids), WAVES) == wave]
            if members and len(failing & set(members)) / len(members) > THRESHOLD:
                pauses.append(wave + 1)
        if pauses and pauses[-1] != len(WAVES):
            return policy, failing, pauses
    raise AssertionError("no failure mix pauses a wave")


class CampaignE2ETests(TestCase):
    timeout = 900

    async def setup_gateway(self):
        self.smsc = NodeSMSC()
        await self.smsc.start()
        self.addCleanup(self.smsc.terminate)
        workdir = tempfile.mkdtemp(prefix="dmgw-campaign-")
        self.addCleanup(shutil.rmtree, workdir, True)
        self.package_port = free_port()
        self.gw = Daemon(workdir, extra_ini={"smpp.ini": smpp_ini(self.smsc.port),
                                             "functions.ini": functions_ini(self.package_port)},
                         gateway_extra=NOTIFY_FAST)
        self.gw.start()
        self.addCleanup(self.gw.stop)
        await self.smsc.when_bound()

    async def fleet(self, count, start, policy=None, **options):
        devices = list(sim.pattern_devices(count, start=start, server_name=SERVER_ID))
        functions = {d.device_id: DeviceFunctions(d.device_id, fwv="1.0", policy=policy) for d in devices}
        runner = fleet.FleetRunner(
            reactor, devices, self.gw.url, wake_source=self.smsc, sessions=None, duration=800, concurrency=16,
            functions=functions, report_delay=0.2,
            encoding_for=lambda d: "wbxml" if int(d.device_id[-1]) % 2 else "xml", **options)
        self.done = runner.run()
        self.addCleanup(self._stop_runner, runner)
        provisioned = await fleet.provision(reactor, self.gw.api, self.gw.token, devices, server_id=SERVER_ID)
        self.assertEqual(provisioned, count)
        return devices, functions, runner

    def _stop_runner(self, runner):
        runner.release()
        runner.stop()
        return self.done

    async def call(self, method, path, body=None):
        return await threads.deferToThread(self.gw.call, method, path, body)

    async def campaign(self, body):
        status, view = await self.call("POST", "/campaigns", body)
        self.assertEqual(status, 201, view)
        return view["id"]

    async def wait_done(self, campaign_id, limit=600, on_progress=None):
        paused = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            status, view = await self.call("GET", "/campaigns/" + campaign_id)
            self.assertEqual(status, 200, view)
            if view["state"] == "done":
                return view, paused
            if view["state"] == "paused":
                paused.append(view["wave"])
                self.assertIn("failure ratio", view["reason"])
                status, view = await self.call("POST", "/campaigns/%s/resume" % (campaign_id,), {})
                self.assertEqual(status, 200, view)
            if on_progress is not None:
                await on_progress(view)
            await sleep(0.5)
        self.fail("campaign %s not done in %ss: %s" % (campaign_id, limit, view))

    async def upload(self):
        url = "%s/firmware?name=fw&version=2.0&man=Acme&from_fwv=1.0&sha256=%s" % (
            self.gw.api, hashlib.sha256(PACKAGE).hexdigest())
        request = urllib.request.Request(url, data=PACKAGE, method="POST", headers={
            "Authorization": "Bearer " + self.gw.token, "Content-Type": "application/octet-stream"})

        def post():
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())

        status, body = await threads.deferToThread(post)
        self.assertEqual(status, 201, body)
        return body["id"]

    async def kill_and_restart(self, runner):
        runner.hold()
        while runner.active:
            await sleep(0.05)
        binds = self.smsc.counters["binds"]
        self.gw.kill()
        await sleep(1.0)
        await threads.deferToThread(self.gw.start)
        while self.smsc.counters["binds"] == binds:
            await sleep(0.1)
        runner.release()

    @defer.inlineCallbacks
    def test_firmware_campaign_over_a_fleet_with_a_kill(self):
        yield defer.ensureDeferred(self._firmware_campaign())

    async def _firmware_campaign(self):
        await self.setup_gateway()
        ids = [d.device_id for d in sim.pattern_devices(DEVICES, start=1000, server_name=SERVER_ID)]
        policy, failing, expected_pauses = choose_policy(sorted(ids))
        devices, functions, runner = await self.fleet(DEVICES, 1000, policy)
        firmware_id = await self.upload()
        started = time.monotonic()
        campaign_id = await self.campaign({
            "function": "fumo", "params": {"firmware_id": firmware_id},
            "selection": {"server_id": SERVER_ID},
            "policy": {"waves": WAVES, "rate_per_minute": 30000, "concurrency": 200,
                       "pause_failure_ratio": THRESHOLD}})
        killed = []

        async def maybe_kill(view):
            states = view.get("progress", {}).get("by_state", {})
            if not killed and view["wave"] == len(WAVES) and states.get("done", 0) > DEVICES * 0.4:
                killed.append(dict(states))
                await self.kill_and_restart(runner)

        view, paused = await self.wait_done(campaign_id, on_progress=maybe_kill)
        elapsed = time.monotonic() - started
        self.assertTrue(killed, "the daemon was not killed in the middle")
        self.assertEqual(paused, expected_pauses)
        status, report = await self.call("GET", "/campaigns/%s/report?format=json" % (campaign_id,))
        self.assertEqual(status, 200)
        outcomes = {r["device_id"]: (r["state"], r["result_code"], r["fwv"]) for r in report["devices"]}
        expected = {d: ("failed", 402, "1.0") if d in failing else ("done", 200, "2.0") for d in ids}
        self.assertEqual(outcomes, expected)
        for device_id, device in functions.items():
            self.assertEqual(device.accepted, 1, device_id)  # started exactly once
            self.assertEqual(device.fwv, "1.0" if device_id in failing else "2.0")
        self.assertGreaterEqual(runner.downloads["ok"], DEVICES)
        # the CSV report and dmgw campaign watch agree
        request = urllib.request.Request("%s/campaigns/%s/report?format=csv" % (self.gw.api, campaign_id),
                                         headers={"Authorization": "Bearer " + self.gw.token})
        csv_text = await threads.deferToThread(lambda: urllib.request.urlopen(request, timeout=30).read())
        self.assertEqual(len(csv_text.decode().strip().splitlines()), DEVICES + 1)
        token_file = os.path.join(self.gw.workdir, "var", "api.token")
        watch = await threads.deferToThread(
            subprocess.run, [sys.executable, "-m", "dmgateway.cli", "campaign", "--url",
                             self.gw.api.rsplit("/api/v1", 1)[0], "--token-file", token_file, "watch", campaign_id,
                             "--once"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        self.assertEqual(watch.returncode, 0, watch.stderr)
        self.assertIn("%d/%d done" % (DEVICES, DEVICES), watch.stdout)
        print("\nfirmware campaign: %d devices in %.1fs, pauses after waves %s, killed at %s, %d sessions"
              % (DEVICES, elapsed, paused, killed[0], runner.stats.summary()["sessions"]))

    @defer.inlineCallbacks
    def test_lawmo_and_scomo_over_fifty_devices(self):
        yield defer.ensureDeferred(self._lawmo_scomo())

    async def _lawmo_scomo(self):
        await self.setup_gateway()
        devices, functions, runner = await self.fleet(50, 3000)
        policy = {"rate_per_minute": 30000, "concurrency": 100}
        selection = {"server_id": SERVER_ID}
        for action, state in (("fully_lock", 10), ("unlock", 30)):
            campaign_id = await self.campaign({"function": "lawmo", "action": action, "selection": selection,
                                               "policy": policy})
            view, _paused = await self.wait_done(campaign_id, limit=300)
            self.assertEqual(view["progress"]["by_state"], {"done": 50})
            self.assertEqual(view["progress"]["by_result"], {"1200": 50})
            self.assertTrue(all(f.lawmo_state == state for f in functions.values()))
        # a wipe: the gateway reads AvailableWipeList first, then marks only what was asked for
        campaign_id = await self.campaign({"function": "lawmo", "action": "wipe", "selection": selection,
                                           "params": {"wipe_list": ["sdcard"], "confirm": True}, "policy": policy})
        view, _paused = await self.wait_done(campaign_id, limit=300)
        self.assertEqual(view["progress"]["by_result"], {"1201": 50})
        self.assertTrue(all(f.wiped == ["sdcard"] for f in functions.values()))
        # the wipe's wake-ups come as the read's sessions end: each one verifies
        self.assertNotIn("rejected", runner.stats.summary()["wakeups"], runner.stats.summary())
        # an entry no device offers: every operation fails before anything reaches the devices
        campaign_id = await self.campaign({"function": "lawmo", "action": "wipe", "selection": selection,
                                           "params": {"wipe_list": ["photos"], "confirm": True}, "policy": policy})
        view, _paused = await self.wait_done(campaign_id, limit=300)
        self.assertEqual(view["progress"]["by_state"], {"failed": 50})
        status, report = await self.call("GET", "/campaigns/%s/report?format=json" % (campaign_id,))
        self.assertEqual({r["reason"] for r in report["devices"]}, {"wipe_list_entry_unavailable"})
        for f in functions.values():  # a component the gateway never installed
            f.components["preloaded"] = {"version": "0.9", "state": 10}
        package_url = "http://127.0.0.1:%d/app" % (self.package_port,)
        # an external package: served here by a plain static file server of the test
        from twisted.web import server, static

        site_dir = tempfile.mkdtemp(prefix="dmgw-app-")
        self.addCleanup(shutil.rmtree, site_dir, True)
        with open(os.path.join(site_dir, "app"), "wb") as f:
            f.write(b"DMGW-PKG 5.1\napp")
        port = reactor.listenTCP(0, server.Site(static.File(site_dir)), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        package_url = "http://127.0.0.1:%d/app" % (port.getHost().port,)
        campaign_id = await self.campaign({
            "function": "scomo", "action": "install", "params": {"package_url": package_url, "component": "app1"},
            "selection": selection, "policy": policy})
        view, _paused = await self.wait_done(campaign_id, limit=300)
        self.assertEqual(view["progress"]["by_result"], {"1200": 50})
        self.assertTrue(all(f.components["app1"] == {"version": "5.1", "state": 20} for f in functions.values()))
        status, report = await self.call("GET", "/campaigns/%s/report?format=json" % (campaign_id,))
        self.assertEqual({r["state"] for r in report["devices"]}, {"done"})
        for device_id in functions:  # the whole inventory read back, in the device view
            status, device = await self.call("GET", "/devices/" + device_id)
            self.assertEqual(status, 200, device)
            components = device["functions"]["components"]
            self.assertEqual({name: (c["version"], c["state"]) for name, c in components.items()},
                             {"app1": ("5.1", 20), "preloaded": ("0.9", 10)}, device_id)
            self.assertEqual(device["functions"]["delivered"]["app1"]["state"], 20)
        campaign_id = await self.campaign({
            "function": "scomo", "action": "remove", "params": {"component": "app1"}, "selection": selection,
            "policy": policy})
        view, _paused = await self.wait_done(campaign_id, limit=300)
        self.assertEqual(view["progress"]["by_result"], {"1200": 50})
        self.assertTrue(all(set(f.components) == {"preloaded"} for f in functions.values()))
        for device_id, f in functions.items():
            self.assertEqual(f.accepted, 5)  # lock, unlock, wipe, install, remove: each once
            status, device = await self.call("GET", "/devices/" + device_id)
            self.assertEqual(sorted(device["functions"]["components"]), ["preloaded"])
            self.assertEqual(device["functions"]["delivered"], {})


def test_cli_fleet_plays_a_lawmo_campaign(tmp_path):
    """``dmgw sim fleet --functions`` as a subprocess runs a lock campaign of the real daemon."""
    gw = Daemon(tmp_path / "gw", extra_ini={"functions.ini": "[functions]\ncampaign_interval = 1\n"})
    gw.start()
    try:
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        token_file = os.path.join(gw.workdir, "var", "api.token")
        base = [sys.executable, "-m", "dmgateway.cli", "sim", "fleet", "--url", gw.url, "--count", "5",
                "--first", "800", "--server-name", SERVER_ID, "--json"]
        done = subprocess.run(base + ["--api", gw.api, "--token-file", token_file, "--provision", "--sessions", "5"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        status, view = gw.call("POST", "/campaigns", {"function": "lawmo", "action": "fully_lock",
                                                      "selection": {"server_id": SERVER_ID}})
        assert status == 201, view
        time.sleep(1.5)  # a scheduler pass queues the jobs
        done = subprocess.run(base + ["--functions", "--mixed-encodings", "--duration", "6", "--concurrency", "2"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        summary = json.loads(done.stdout)
        assert summary["functions"]["accepted"] == 5, summary
        status, view = gw.call("GET", "/campaigns/" + view["id"])
        assert (view["state"], view["progress"]["by_result"]) == ("done", {"1200": 5}), view
    finally:
        gw.stop()
