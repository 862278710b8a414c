"""The SNMP agent of the real daemon, seen by Net-SNMP's snmpget/snmpwalk/snmptrapd
with conf/DMGATEWAY-MIB.txt loaded (-m +DMGATEWAY-MIB -M +conf).

With [snmp] enabled the daemon runs on Twisted's asyncio reactor (pysnmp 7):
the same run drives the rest of the daemon on it — the adbapi store, a DM
session over HTTP, the REST API, an SMPP bind and submit to the third-party
SMSC simulator."""

import os
import queue
import re
import shutil
import subprocess
import threading
import time

import pytest

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials, session_id_for_notification
from tests.interop.daemon import ROOT, Daemon, free_port, run_client
from tests.interop.test_notify_e2e import NOTIFY_FAST, Simulator, account, read_push, smpp_ini, wait_until

pytestmark = pytest.mark.skipif(
    not (shutil.which("snmpwalk") and shutil.which("snmptrapd")),
    reason="Net-SNMP tools missing (Debian packages snmp, snmptrapd)",
)

COMMUNITY = "dmgw-test-community"
MIB = ["-m", "+DMGATEWAY-MIB", "-M", "+" + os.path.join(ROOT, "conf")]


def free_udp_port():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snmp(tool, port, *oids, community=COMMUNITY):
    result = subprocess.run(
        [tool, "-v2c", "-c", community, "-t", "2", "-r", "1", "-Oq", *MIB,
         "127.0.0.1:%d" % port, *oids],
        capture_output=True, text=True, timeout=60,
    )
    # the standard IETF MIBs may be absent (Debian's non-free snmp-mibs-downloader):
    # only our own module must load without complaint
    assert "DMGATEWAY-MIB" not in result.stderr, result.stderr
    return result.returncode, {
        name: value for name, _, value in (line.partition(" ") for line in result.stdout.splitlines()) if name
    }


class TrapReceiver:
    """snmptrapd in the foreground, logging to stdout, our MIB loaded."""

    def __init__(self, workdir):
        self.port = free_udp_port()
        conf = os.path.join(workdir, "snmptrapd.conf")
        with open(conf, "w") as f:
            f.write("authCommunity log %s\ndisableAuthorization no\n" % (COMMUNITY,))
        env = dict(os.environ, SNMP_PERSISTENT_DIR=os.path.join(workdir, "snmp-persist"))
        self.process = subprocess.Popen(
            ["snmptrapd", "-f", "-Lo", "-n", "-C", "-c", conf, *MIB, "udp:127.0.0.1:%d" % self.port],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait("NET-SNMP version", timeout=20)

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(line)
            if text in line:
                return line
        raise AssertionError("snmptrapd never logged %r; it logged:\n%s" % (text, "\n".join(seen)))

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def snmp_ini(port, traps=None):
    text = "[snmp]\nenabled = true\naddress = 127.0.0.1:%d\ncommunity = %s\n" % (port, COMMUNITY)
    if traps:
        text += "trap_targets = 127.0.0.1:%d\n" % (traps,)
    return text


def test_snmpwalk_sees_the_counters_move_after_a_session(tmp_path):
    port = free_udp_port()
    gw = Daemon(tmp_path, extra_ini={"snmp.ini": snmp_ini(port)})
    gw.start()
    try:
        assert "AsyncioSelectorReactor" in gw.log()
        status, before = snmp("snmpwalk", port, "DMGATEWAY-MIB::dmgateway")
        assert status == 0
        assert before["DMGATEWAY-MIB::dmgwSessionsStarted.0"] == "0"
        assert before["DMGATEWAY-MIB::dmgwStoreState.0"] == "up"
        assert before["DMGATEWAY-MIB::dmgwBearerName.1"] == '"sms"'
        device = "IMEI:350000000000201"
        gw.put_device(device, account(device, "+447700900201"))
        job = gw.create_job(device, {"commands": [{"op": "Get", "target": "./DevInfo/Man"}], "notify": "none"})
        dev = Account(device, "dmgw-e2e", gw.url, Credentials("md5", "dev1", "client-1"),
                      Credentials("md5", "dmgw-e2e", "server-1", b"server-nonce"))
        session = run_client(ClientSession(dev, random_bytes=os.urandom))
        assert session.outcome == "completed", session.log
        assert gw.job(job)["state"] == "done"
        status, after = snmp("snmpget", port, "DMGATEWAY-MIB::dmgwSessionsStarted.0",
                             "DMGATEWAY-MIB::dmgwSessionsCompleted.0", "DMGATEWAY-MIB::dmgwSessionsLive.0")
        assert status == 0
        assert after == {"DMGATEWAY-MIB::dmgwSessionsStarted.0": "1",
                         "DMGATEWAY-MIB::dmgwSessionsCompleted.0": "1",
                         "DMGATEWAY-MIB::dmgwSessionsLive.0": "0"}
        # the wrong community gets no answer at all
        status, _ = snmp("snmpget", port, "DMGATEWAY-MIB::dmgwSessionsStarted.0", community="public")
        assert status != 0
    finally:
        gw.stop()


def test_link_down_trap_when_the_smsc_simulator_stops(tmp_path):
    traps = TrapReceiver(str(tmp_path))
    sim = Simulator()
    port = free_udp_port()
    gw = Daemon(tmp_path / "gw", extra_ini={"smpp.ini": smpp_ini(sim.port), "snmp.ini": snmp_ini(port, traps.port)},
                gateway_extra=NOTIFY_FAST)
    try:
        gw.start()
        sim.wait("BIND bind_transceiver gw ok")
        line = traps.wait("DMGATEWAY-MIB::dmgwSmppLinkUp")
        assert "dmgwSmppLinkState.1 = INTEGER: up" in line
        # the rest of the daemon works on the asyncio reactor: an SMS wake-up goes out
        device = "IMEI:350000000000202"
        gw.put_device(device, account(device, "+447700900202"))
        job = gw.create_job(device, {"commands": [{"op": "Get", "target": "./DevInfo/Man"}], "notify": "sms"})
        pkg = read_push(bytes.fromhex(sim.wait("SM ").split()[6]))
        dev = Account(device, "dmgw-e2e", gw.url, Credentials("md5", "dev1", "client-1"),
                      Credentials("md5", "dmgw-e2e", "server-1", b"server-nonce"))
        session = ClientSession(dev, random_bytes=os.urandom,
                                session_id=session_id_for_notification(pkg.notification.push_session_id))
        run_client(session, alert=1200)
        assert gw.job(job)["state"] == "done"
        status, table = snmp("snmpwalk", port, "DMGATEWAY-MIB::dmgwSmppLinkTable")
        assert table["DMGATEWAY-MIB::dmgwSmppLinkState.1"] == "up"
        assert table["DMGATEWAY-MIB::dmgwSmppLinkName.1"] == '"default"'
        status, sent = snmp("snmpget", port, "DMGATEWAY-MIB::dmgwBearerSent.1")
        assert sent["DMGATEWAY-MIB::dmgwBearerSent.1"] == "1"

        sim.stop()
        line = traps.wait("DMGATEWAY-MIB::dmgwSmppLinkDown")
        assert re.search(r"dmgwSmppLinkName\.1 = STRING: \"?default", line), line
        assert "dmgwSmppLinkState.1 = INTEGER: down" in line
        _, table = snmp("snmpwalk", port, "DMGATEWAY-MIB::dmgwSmppLinkTable")
        assert table["DMGATEWAY-MIB::dmgwSmppLinkState.1"] == "down"
    finally:
        gw.stop()
        sim.stop()
        traps.stop()


def test_busy_snmp_port_fails_the_start(tmp_path):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        gw = Daemon(tmp_path, extra_ini={"snmp.ini": snmp_ini(busy.getsockname()[1])})
        env = dict(os.environ, PYTHONPATH=ROOT)
        result = subprocess.run(gw.command(), cwd=gw.workdir, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout
    (line,) = [line for line in result.stdout.splitlines() if "cannot start" in line]
    assert "udp (snmp)" in line and "Traceback" not in result.stdout


def test_another_reactor_is_refused(tmp_path):
    gw = Daemon(tmp_path, extra_ini={"snmp.ini": snmp_ini(free_udp_port())})
    gw.twistd_options = ["--reactor=poll"]
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run(gw.command(), cwd=gw.workdir, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "asyncio reactor" in result.stderr


def test_snmpv3_usm_auth_priv(tmp_path):
    port = free_udp_port()
    keys = {}
    for name, value in (("auth", "auth-pass-phrase-1"), ("priv", "priv-pass-phrase-2")):
        path = tmp_path / ("%s.key" % name)
        path.write_text(value + "\n")
        keys[name] = str(path)
    ini = ("[snmp]\nenabled = true\naddress = 127.0.0.1:%d\ncommunity =\nv3_user = monitor\n"
           "v3_auth_protocol = sha\nv3_auth_key_file = %s\nv3_priv_protocol = aes\nv3_priv_key_file = %s\n"
           % (port, keys["auth"], keys["priv"]))
    gw = Daemon(tmp_path / "gw", extra_ini={"snmp.ini": ini})
    gw.start()
    try:
        def v3(*options):
            return subprocess.run(
                ["snmpget", "-v3", "-t", "2", "-r", "0", "-Oq", *options, *MIB, "127.0.0.1:%d" % port,
                 "DMGATEWAY-MIB::dmgwSessionsStarted.0"],
                capture_output=True, text=True, timeout=60,
            )

        good = v3("-l", "authPriv", "-u", "monitor", "-a", "SHA", "-A", "auth-pass-phrase-1",
                  "-x", "AES", "-X", "priv-pass-phrase-2", "-n", "dmgw")
        assert good.returncode == 0, good.stderr
        assert good.stdout.strip() == "DMGATEWAY-MIB::dmgwSessionsStarted.0 0"
        wrong = v3("-l", "authPriv", "-u", "monitor", "-a", "SHA", "-A", "not-the-pass-phrase",
                   "-x", "AES", "-X", "priv-pass-phrase-2", "-n", "dmgw")
        assert wrong.returncode != 0
        # with the community empty, v2c gets nothing
        status, _ = snmp("snmpget", port, "DMGATEWAY-MIB::dmgwSessionsStarted.0", community="public")
        assert status != 0
    finally:
        gw.stop()


def test_snmpv3_config_problems_are_named(tmp_path):
    short = tmp_path / "short.key"
    short.write_text("abc\n")
    gw = Daemon(tmp_path / "gw", extra_ini={"snmp.ini": (
        "[snmp]\nenabled = true\ncommunity =\nv3_user = monitor\nv3_auth_key_file = %s\n" % (short,))})
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run(gw.command(), cwd=gw.workdir, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "v3_auth_key_file" in result.stderr and "shorter than 8" in result.stderr
    assert "v3_priv_key_file" in result.stderr and "needed with v3_user" in result.stderr


def test_snmpset_is_refused_as_not_writable(tmp_path):
    # the MIB is read-only: a SET gets an SNMP error answer at once (not a
    # timeout, not a crash), and the agent keeps answering GETs
    port = free_udp_port()
    gw = Daemon(tmp_path, extra_ini={"snmp.ini": snmp_ini(port)})
    gw.start()
    try:
        result = subprocess.run(
            ["snmpset", "-v2c", "-c", COMMUNITY, "-t", "2", "-r", "0", *MIB, "127.0.0.1:%d" % port,
             "DMGATEWAY-MIB::dmgwBearerName.1", "s", "x"],
            capture_output=True, text=True, timeout=60,
        )
        assert result.returncode != 0
        assert "notWritable" in result.stderr, result.stderr
        status, after = snmp("snmpget", port, "DMGATEWAY-MIB::dmgwSessionsStarted.0")
        assert status == 0 and after == {"DMGATEWAY-MIB::dmgwSessionsStarted.0": "0"}
    finally:
        gw.stop()
