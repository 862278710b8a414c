"""DM-1 end to end: the real daemon wakes devices by WAP Push over SMS.

* against the third-party SMSC simulator (npm ``smpp`` in server mode): a job
  created through the REST API makes the daemon submit a WAP push; the bytes
  the simulator received are a valid push whose package #0 digest verifies
  with the device's server credentials; the simulated device reads it and
  opens the session (Alert 1200, the notification's session id) that
  completes the job; a delivery receipt marks the notification delivered;
* against our own SMSC fake with faults: the link drops after the first
  submit and the SMSC throttles once, and the notifications for 50 devices
  still arrive exactly once each.
"""

import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials, session_id_for_notification
from dmgateway.notify import package0, sms, wsp
from tests.interop.daemon import Daemon, run_client
from tests.interop.test_smpp_simulator import NODE_DIR, ROOT, SCRIPT, ensure_package
from tests.support import start_smsc

NOTIFY_FAST = "[notify]\nscan_interval = 0.2\nretry_initial = 0.2\nretry_max = 1\nrenotify_after = 600\n"


def smpp_ini(port, **extra):
    values = dict(
        enabled="true",
        endpoint="tcp:host=127.0.0.1:port=%d" % (port,),
        system_id="gw",
        password="secret",
        bind="transceiver",
        source_addr="447700900000",
        source_ton="1",
        source_npi="1",
        reconnect_initial="0.2",
        reconnect_max="1",
        max_per_second="500",
    )
    values.update(extra)
    return "[smpp]\n" + "".join("%s = %s\n" % item for item in values.items())


def account(device_id, msisdn, n=1):
    return {
        "server_id": "dmgw-e2e",
        "client_auth": {"type": "md5", "name": "dev%d" % n, "secret": "client-%d" % n},
        "server_auth": {"type": "md5", "name": "dmgw-e2e", "secret": "server-%d" % n, "nonce": "c2VydmVyLW5vbmNl"},
        "msisdn": msisdn,
    }


def read_push(short_message):
    """UDH + WSP push + package #0 of one single-part WAP push SMS."""
    user_data = sms.parse_user_data(short_message)
    assert user_data.ports == (2948, 9200)
    push = wsp.parse_push(user_data.payload)
    assert wsp.is_dm_notification(push)
    return package0.parse(push.body)


class Simulator:
    """tests/interop/smsc_sim.js as a subprocess; its stdout lines in a queue."""

    def __init__(self):
        node = ensure_package()
        env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
        self.process = subprocess.Popen(
            [node, SCRIPT, "0", "gw", "secret"], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = int(self.wait("LISTENING").split()[1])

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def wait(self, prefix, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line.startswith(prefix):
                return line
        raise AssertionError("the SMSC simulator never printed %r" % (prefix,))

    def send(self, text):
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def wait_until(check, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in %ss" % (timeout,))


def test_job_wakes_a_device_through_the_smsc_simulator(tmp_path):
    sim = Simulator()
    gw = Daemon(tmp_path, extra_ini={"smpp.ini": smpp_ini(sim.port)}, gateway_extra=NOTIFY_FAST)
    try:
        gw.start()
        sim.wait("BIND bind_transceiver gw ok")
        device_id = "IMEI:350000000000101"
        gw.put_device(device_id, account(device_id, "+447700900123"))
        job_id = gw.create_job(device_id, {"commands": [{"op": "Get", "target": "./DevInfo/Man"}], "notify": "sms"})

        fields = sim.wait("SM ").split()
        assert fields[2:6] == ["447700900123", "64", "4", "1"]  # TON/NPI 1 number, UDHI, 8-bit, DLR
        pkg = read_push(bytes.fromhex(fields[6]))
        credential = package0.ServerCredential("dmgw-e2e", b"server-nonce", secret="server-1")
        assert package0.verify(pkg, credential) is not None, "package #0 digest must verify"
        assert pkg.notification.server_id == "dmgw-e2e"
        job = wait_until(lambda: (lambda j: j if j["state"] == "notified" else None)(gw.job(job_id)))
        assert job["notifications"][0]["bearer"] == "sms"
        assert job["notifications"][0]["message_id"] == fields[1]

        # the device reads the push and opens the server-initiated session
        dev = Account(
            device_id, "dmgw-e2e", gw.url, Credentials("md5", "dev1", "client-1"),
            Credentials("md5", "dmgw-e2e", "server-1", b"server-nonce"),
        )
        session = ClientSession(
            dev, random_bytes=os.urandom, session_id=session_id_for_notification(pkg.notification.push_session_id)
        )
        run_client(session, alert=1200)
        assert session.outcome == "completed", session.log
        done = gw.job(job_id)
        assert done["state"] == "done", done
        assert done["results"][0]["status"] == 200

        sim.send("receipt " + fields[1])
        wait_until(lambda: gw.job(job_id)["notifications"][0]["state"] == "delivered")
        assert "delivered" in [e.get("state") for e in gw.events() if e["type"] == "notification"]
    finally:
        gw.stop()
        sim.stop()


class FaultTests(TestCase):
    """The simulator's SMSC, in this process, playing faults (a dropped link, throttling)."""

    timeout = 120

    @defer.inlineCallbacks
    def setUp(self):
        self.smsc = yield start_smsc(self)

    @defer.inlineCallbacks
    def test_link_drop_and_throttling_lose_and_repeat_nothing(self):
        self.smsc.drop_after_submits = 1
        self.smsc.throttle_next = 0
        workdir = tempfile.mkdtemp(prefix="dmgw-fault-")
        self.addCleanup(shutil.rmtree, workdir, True)
        gw = Daemon(
            workdir,
            extra_ini={"smpp.ini": smpp_ini(self.smsc.address[1], bind="transmitter")},
            gateway_extra=NOTIFY_FAST,
        )
        gw.start()
        self.addCleanup(gw.stop)
        devices = {}
        for n in range(50):
            device_id = "IMEI:3500000000%05d" % (n,)
            msisdn = "+4477009%05d" % (n,)
            devices[msisdn.lstrip("+")] = device_id
            gw.put_device(device_id, account(device_id, msisdn, n))
        # the first submit is acked, then the link drops; once it is back the
        # SMSC throttles one submit; everything must still arrive once
        first = self.smsc.when_submitted()
        jobs = [
            gw.create_job(d, {"commands": [{"op": "Get", "target": "./DevInfo/Mod"}], "notify": "sms"})
            for d in devices.values()
        ]
        yield first
        self.smsc.throttle_next = 1
        for _ in range(600):
            if len(self.smsc.submitted) >= 51:
                break
            yield deferLater(reactor, 0.05, lambda: None)
        for _ in range(100):  # let the outbox record the last answers
            states = [gw.job(j)["state"] for j in jobs]
            if all(s == "notified" for s in states):
                break
            yield deferLater(reactor, 0.05, lambda: None)
        received = {}
        for submit in self.smsc.submitted:
            received.setdefault(submit.destination_addr, []).append(submit)
        throttled = 1  # one submit answered ESME_RTHROTTLED was sent again
        self.assertEqual(len(self.smsc.submitted), 50 + throttled)
        self.assertEqual(sorted(received), sorted(devices))
        accepted = {m: len(p) for m, p in received.items()}
        self.assertEqual(sum(accepted.values()), 51)
        self.assertEqual(sorted(accepted.values()).count(2), 1)  # only the throttled one twice
        self.assertEqual(states, ["notified"] * 50)
        for job_id in jobs:
            (note,) = gw.job(job_id)["notifications"]
            self.assertEqual(note["state"], "sent")
        self.assertIn("throttled", gw.log().lower())


def test_job_wakes_a_device_by_sip_push_through_sipp(tmp_path):
    """sipp (a SIP endpoint we did not write) receives the daemon's MESSAGE."""
    from tests.interop.test_sipp import SCENARIOS, SIPP, free_port, listening

    if SIPP is None:
        import pytest

        pytest.skip("sipp missing: apt-get install -y sip-tester")
    port = free_port(socket.SOCK_DGRAM)
    log = tmp_path / "received.log"
    sipp = subprocess.Popen(
        [SIPP, "-sf", str(SCENARIOS / "uas_200.xml"), "-i", "127.0.0.1", "-p", str(port), "-t", "u1",
         "-m", "1", "-trace_msg", "-message_file", str(log), "-timeout", "30s", "-timeout_error", "-nostdin"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    sip_ini = (
        "[sip]\nenabled = true\ntransport = udp\nproxy = 127.0.0.1:%d\nfrom_uri = sip:dms@example.com\n"
        % (port,)
    )
    gw = Daemon(tmp_path / "gw", extra_ini={"sip.ini": sip_ini}, gateway_extra=NOTIFY_FAST)
    try:
        wait_until(lambda: listening(port, "udp"))
        gw.start()
        device_id = "IMEI:350000000000102"
        body = dict(account(device_id, None), sip_uri="sip:+447700900124@127.0.0.1")
        gw.put_device(device_id, body)
        job_id = gw.create_job(device_id, {"commands": [{"op": "Get", "target": "./DevInfo/Man"}], "notify": "auto"})
        job = wait_until(lambda: (lambda j: j if j["state"] == "notified" else None)(gw.job(job_id)))
        (note,) = job["notifications"]
        assert (note["bearer"], note["state"]) == ("sip", "delivered")  # SIP 2xx
        sipp.wait(30)
        assert sipp.returncode == 0, sipp.stderr.read()
        text = log.read_bytes()
        assert b"MESSAGE sip:+447700900124@127.0.0.1 SIP/2.0\r\n" in text
        assert b"Content-Type: application/vnd.syncml.notification\r\n" in text
        assert b'Accept-Contact: *;+g.oma.pusheventapp="syncml.dm";require;explicit' in text
        length = int(text.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        assert length == 16 + 8 + len("dmgw-e2e")  # digest, trigger header (incl. session id), server id
    finally:
        gw.stop()
        if sipp.poll() is None:
            sipp.kill()
            sipp.wait(10)
        sipp.stderr.close()
