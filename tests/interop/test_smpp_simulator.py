"""The SMPP ESME against an SMSC simulator we did not write: the npm package ``smpp`` (server mode).

tests/interop/smsc_sim.js wraps ``smpp.createServer``; it prints what it
received (short_message as hex), so the bytes on the wire are checked by a
third-party decoder.  The package is installed under var/node/ (git-ignored)
when missing; the test is skipped only when node or npm is not installed.
"""

import os
import shutil
import subprocess

from twisted.internet import defer, protocol, reactor
from twisted.trial.unittest import SkipTest, TestCase

from dmgateway.bearers.smpp import SMPPLink
from dmgateway.bearers.smpp_esme import BindError
from dmgateway.config.bearers import SmppLinkConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_DIR = os.path.join(ROOT, "var", "node")
NPM_PACKAGE = "smpp@0.5.1"
SCRIPT = os.path.join(ROOT, "tests", "interop", "smsc_sim.js")

# dm-notification.md §3.4: UDH (port 2948) + WSP push header + package #0
SPEC_SHORT_MESSAGE = bytes.fromhex(
    "0605040b8423f0010603c4af8775de829554b9780e661638bafb45118e02f800000012340f636f6d2e6578"
    "616d706c652e646d73")
SECOND = bytes.fromhex("0b0504 0b8423f0 0003 7f 02 02 cafe".replace(" ", ""))


def ensure_package():
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise SkipTest("node and npm are needed for the SMSC simulator (apt-get install nodejs npm)")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "smpp")):
        os.makedirs(NODE_DIR, exist_ok=True)
        subprocess.run([npm, "install", "--prefix", NODE_DIR, "--no-audit", "--no-fund",
                        NPM_PACKAGE], check=True, timeout=300, capture_output=True)
    return node


class Simulator(protocol.ProcessProtocol):
    """The node process: its stdout lines, and deferreds waiting for one."""

    def __init__(self):
        self.lines = []
        self._partial = b""
        self._waiting = []
        self.ended = defer.Deferred()

    def outReceived(self, data):
        self._partial += data
        *lines, self._partial = self._partial.split(b"\n")
        for line in lines:
            self.lines.append(line.decode())
        self._check()

    def _check(self):
        for item in list(self._waiting):
            prefix, d = item
            found = [line for line in self.lines if line.startswith(prefix)]
            if found:
                self._waiting.remove(item)
                d.callback(found[0])

    def wait_for(self, prefix, timeout=15):
        d = defer.Deferred()
        self._waiting.append((prefix, d))
        self._check()
        return d.addTimeout(timeout, reactor)

    def processEnded(self, reason):
        self.ended.callback(None)


class SMSCSimulatorTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        node = ensure_package()
        self.sim = Simulator()
        env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
        self.process = reactor.spawnProcess(self.sim, node, [node, SCRIPT, "0", "gw", "secret"],
                                            env=env, path=ROOT)
        self.addCleanup(self._stop_process)
        line = yield self.sim.wait_for("LISTENING")
        self.port = int(line.split()[1])

    @defer.inlineCallbacks
    def _stop_process(self):
        if not self.sim.ended.called:
            self.process.closeStdin()  # the script exits at end of input
            yield self.sim.ended.addTimeout(10, reactor).addErrback(
                lambda _: self.process.signalProcess("KILL"))

    def link(self, wait_timeout=10.0, **overrides):
        values = dict(name="sim", enabled=True, system_id="gw", password="secret",
                      endpoint="tcp:host=127.0.0.1:port=%d" % self.port, source_addr="447700900001",
                      source_ton=1, source_npi=1, max_per_second=1000.0, reconnect_initial=0.1,
                      reconnect_max=0.5)
        values.update(overrides)
        receipts = []
        link = SMPPLink(SmppLinkConfig(**values), reactor,
                        on_receipt=lambda *r: receipts.append(r), wait_timeout=wait_timeout)
        link.receipts = receipts
        link.startService()
        self.addCleanup(lambda: link.stopService() if link.running else None)
        return link

    @defer.inlineCallbacks
    def test_submit_segments_bytes_seen_by_simulator(self):
        link = self.link(bind="transceiver")
        ids = yield link.submit("+447700900123", [SPEC_SHORT_MESSAGE, SECOND])
        self.assertEqual(ids, ["sim-1", "sim-2"])
        sm = [line.split() for line in self.sim.lines if line.startswith("SM ")]
        self.assertEqual([s[1:6] for s in sm], [["sim-1", "447700900123", "64", "4", "1"],
                                                ["sim-2", "447700900123", "64", "4", "1"]])
        self.assertEqual([bytes.fromhex(s[6]) for s in sm], [SPEC_SHORT_MESSAGE, SECOND])
        self.assertIn("BIND bind_transceiver gw ok", self.sim.lines)

        self.process.write(b"receipt sim-1\n")
        yield self.sim.wait_for("RECEIPT sim-1")
        for _ in range(200):  # bounded: the receipt is one reactor turn behind
            if link.receipts:
                break
            yield defer.Deferred().addTimeout(0.01, reactor).addErrback(lambda _: None)
        self.assertEqual(link.receipts, [("sim-1", "delivered", None)])

        yield link.stopService()
        yield self.sim.wait_for("UNBIND")

    @defer.inlineCallbacks
    def test_transmitter_and_wrong_password(self):
        link = self.link(password="wrong", wait_timeout=1.0)
        with self.assertRaises(Exception) as e:
            yield link.submit("447700900123", [b"\x00"])
        self.assertNotIsInstance(e.exception, BindError)  # the link keeps retrying; callers time out
        self.assertIn("BIND bind_transmitter gw refused", self.sim.lines)
        yield link.stopService()

        good = self.link()
        ids = yield good.submit("447700900123", [b"\x01\x02"])
        self.assertEqual(ids, ["sim-1"])
        self.assertIn("BIND bind_transmitter gw ok", self.sim.lines)
