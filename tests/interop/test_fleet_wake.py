"""Fleets woken by the REAL daemon through the simulator's SMSC and SIP endpoint.

``twistd dmgateway`` binds to the simulator's SMSC (``smpp.ini``) or uses it
as its SIP proxy (``sip.ini``); jobs created through the REST API with
``notify: sms|sip`` make it send package #0, and the :class:`FleetRunner`
opens each woken device's session (Alert 1200, the notification's session
id) until every job is ``done``.  Then ``dmgw sim fleet --wake sms`` does the
same as a subprocess.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent
from zope.interface import implementer

from dmgateway.client import fleet, sim
from dmgateway.client.wakesources import SIPWakeSource, SMSCWakeSource
from dmgateway.codec import syncml as sm
from tests.interop.daemon import ROOT, Daemon, free_port

SERVER_ID = "dmgw-e2e"  # what tests/interop/daemon.py configures
NOTIFY_FAST = ("[notify]\nscan_interval = 0.2\nretry_initial = 0.2\nretry_max = 1\n"
               "renotify_after = 600\n")


def smpp_ini(port):
    return ("[smpp]\nenabled = true\nendpoint = tcp:host=127.0.0.1:port=%d\nsystem_id = gw\n"
            "password = secret\nbind = transceiver\nsource_addr = 447700900000\nsource_ton = 1\n"
            "source_npi = 1\nreconnect_initial = 0.2\nreconnect_max = 1\nmax_per_second = 500\n"
            % (port,))


def sip_ini(port):
    return ("[sip]\nenabled = true\ntransport = udp\nproxy = 127.0.0.1:%d\n"
            "from_uri = sip:dms@example.com\nt1 = 0.2\ntimeout = 10\n" % (port,))


@implementer(fleet.IWakeSource)
class Tap:
    """A wake source passing everything on, noting the session id each device was sent."""

    def __init__(self, source, devices):
        self.source = source
        self.kind = source.kind
        self.by_destination = {d.destination(self.kind).lstrip("+").lower(): d for d in devices}
        self.sent = {}  # device_id -> [session ids]

    def listen(self, on_notification):
        def tap(destination, data):
            device = self.by_destination.get(destination.lstrip("+").lower())
            if device is not None:
                wake = sim.parse_wakeup(device, self.kind, data)
                self.sent.setdefault(device.device_id, []).append(wake.session_id)
            on_notification(destination, data)

        self.source.listen(tap)

    def stop(self):
        return self.source.stop()


class FleetWakeTests(TestCase):
    timeout = 240

    def daemon(self, **ini):
        workdir = tempfile.mkdtemp(prefix="dmgw-wake-")
        self.addCleanup(shutil.rmtree, workdir, True)
        gw = Daemon(workdir, extra_ini=ini, gateway_extra=NOTIFY_FAST)
        gw.start()
        self.addCleanup(gw.stop)
        return gw

    @defer.inlineCallbacks
    def run_woken_fleet(self, gw, source, devices, kind):
        tap = Tap(source, devices)
        opened = []

        def observe(device, session):
            direction, first = session.transcript[0]
            alerts = [a.data for a in first.commands(sm.Alert)]
            opened.append((device.device_id, direction, alerts, first.hdr.session_id,
                           session.outcome))

        runner = fleet.FleetRunner(reactor, devices, gw.url, wake_source=tap,
                                   sessions=len(devices), duration=180, concurrency=8,
                                   observer=observe)
        done = runner.run()
        job = sim.api_job(["./DevInfo/Man"], notify=kind)
        provisioned = yield fleet.provision(reactor, gw.api, gw.token, devices,
                                            server_id=SERVER_ID, job=job)
        self.assertEqual(provisioned, len(devices))
        summary = yield done

        self.assertEqual((summary["sessions"], summary["completed"]),
                         (len(devices), len(devices)), summary)
        self.assertEqual(summary["wakeups"], {"accepted": len(devices)})
        self.assertEqual(sorted(tap.sent), sorted(d.device_id for d in devices))
        self.assertEqual(len(opened), len(devices))
        for device_id, direction, alerts, session_id, outcome in opened:
            self.assertEqual((direction, outcome), ("out", "completed"))
            self.assertIn(sm.ALERT_SERVER_INITIATED, alerts)
            self.assertEqual([session_id], tap.sent[device_id])

        agent = Agent(reactor)
        for device in devices:
            path = "%s/devices/%s/jobs" % (gw.api, urllib.parse.quote(device.device_id, safe=""))
            status, body = yield fleet.api_call(agent, "GET", path, gw.token)
            self.assertEqual(status, 200)
            (job,) = body["jobs"]
            self.assertEqual(job["state"], "done", job)
        return summary

    @defer.inlineCallbacks
    def test_twenty_devices_woken_by_sms(self):
        source = SMSCWakeSource(reactor, "tcp:0:interface=127.0.0.1", "gw", "secret")
        yield source.start()
        self.addCleanup(source.stop)
        gw = self.daemon(**{"smpp.ini": smpp_ini(source.address[1])})
        bound = source.when_bound()
        bound.addTimeout(30, reactor)
        yield bound
        devices = list(sim.pattern_devices(20, start=500, server_name=SERVER_ID))
        yield self.run_woken_fleet(gw, source, devices, "sms")
        self.assertEqual(source.counters["notifications"], 20)
        self.assertGreaterEqual(source.counters["submits"], 20)
        self.assertNotIn("bad_pdus", source.counters)

    @defer.inlineCallbacks
    def test_ten_devices_woken_by_sip(self):
        devices = list(sim.pattern_devices(10, start=600, server_name=SERVER_ID))
        for n, device in enumerate(devices):
            device.sip_uri = "sip:dev%d@127.0.0.1" % (n,)
        source = SIPWakeSource(reactor, "127.0.0.1", 0, transports=("udp",),
                               known=[d.sip_uri for d in devices])
        yield source.start()
        self.addCleanup(source.stop)
        gw = self.daemon(**{"sip.ini": sip_ini(source.port)})
        yield self.run_woken_fleet(gw, source, devices, "sip")
        self.assertEqual(source.counters["notifications"], 10)


def test_cli_fleet_woken_by_sms(tmp_path):
    """``dmgw sim fleet --wake sms`` as a subprocess: the daemon binds to its SMSC."""
    port = free_port()
    gw = Daemon(tmp_path / "gw", extra_ini={"smpp.ini": smpp_ini(port)},
                gateway_extra=NOTIFY_FAST)
    gw.start()
    try:
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        token_file = os.path.join(gw.workdir, "var", "api.token")
        done = subprocess.run(
            [sys.executable, "-m", "dmgateway.cli", "sim", "fleet", "--url", gw.url,
             "--api", gw.api, "--token-file", token_file, "--provision", "--count", "5",
             "--first", "700", "--server-name", SERVER_ID, "--wake", "sms",
             "--smsc-listen", "tcp:%d:interface=127.0.0.1" % (port,), "--smsc-system-id", "gw",
             "--smsc-password", "secret", "--sessions", "5", "--duration", "90", "--json"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
        assert done.returncode == 0, done.stdout + done.stderr
        summary = json.loads(done.stdout)
        assert summary["provisioned"] == 5
        assert summary["sessions"] == summary["completed"] == 5
        assert summary["wakeups"] == {"accepted": 5}
        assert summary["wake_source"]["binds"] >= 1
        assert summary["wake_source"]["notifications"] == 5
        for n in range(700, 705):
            device = next(sim.pattern_devices(1, start=n, server_name=SERVER_ID))
            status, body = gw.call("GET", "/devices/%s/jobs"
                                   % (urllib.parse.quote(device.device_id, safe=""),))
            assert status == 200
            assert [j["state"] for j in body["jobs"]] == ["done"]
    finally:
        gw.stop()
