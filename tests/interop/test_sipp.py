"""SIP Push against the real SIPp (Debian ``sip-tester``) acting as the UAS on 127.0.0.1.

SIPp runs a scenario from ``tests/interop/sipp/`` and records what it
received with ``-trace_msg -message_file``; the test pushes a real package
#0 (``build_trigger(..., bearer="sip")``) over UDP and TCP and checks the
received head (Content-Type, Content-Length, feature tag), the byte count
SIPp reports and the body.  SIPp writes received messages to its log as C
strings, so a body is visible only up to its first NUL byte: the package #0
(which has NULs) is compared up to there plus the exact received byte
count, and a NUL-free binary body (CR, LF and bytes 0x80-0xFF inside) is
compared in full.
"""

import hashlib
import random
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.trial.unittest import SkipTest, TestCase

from dmgateway.bearers import sipmsg as M
from dmgateway.bearers.sip import SIPPusher
from dmgateway.config.bearers import SipConfig
from dmgateway.notify import package0 as p0
from dmgateway.notify.trigger import build_trigger

SCENARIOS = Path(__file__).parent / "sipp"
SIPP = shutil.which("sipp")
RUN_TIMEOUT = 20
DEVICE = "sip:+447700900123@127.0.0.1"
NUL_FREE_BODY = bytes(range(1, 256)) + b"\r\n\r\nSIP/2.0 200 OK\r\n"


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def package0():
    credential = p0.ServerCredential(name="com.example.dms", nonce=b"nonce-1",
                                     secret="server-secret")
    return build_trigger(credential, "com.example.dms", 0x1234, bearer="sip").package0


def listening(port, transport):
    """Whether 127.0.0.1:port is bound (UDP) or listening (TCP), from /proc."""
    table, state = ("/proc/net/udp", "07") if transport == "udp" else ("/proc/net/tcp", "0A")
    wanted = "0100007F:%04X" % (port,)
    with open(table) as f:
        return any(line.split()[1] == wanted and line.split()[3] == state
                   for line in f.readlines()[1:])


class SIPpTest(TestCase):
    timeout = RUN_TIMEOUT + 10

    def setUp(self):
        if SIPP is None:
            raise SkipTest("sipp missing: apt-get install -y sip-tester")
        self.pushers = []

    def start_sipp(self, scenario, transport, calls=1):
        """Run SIPp as UAS; returns (port, message log path)."""
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        port = free_port(kind)
        workdir = Path(tempfile.mkdtemp(prefix="sipp-"))
        self.addCleanup(shutil.rmtree, workdir, True)
        log = workdir / "received.log"
        command = [SIPP, "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port),
                   "-t", "u1" if transport == "udp" else "t1", "-m", str(calls),
                   "-trace_msg", "-message_file", str(log), "-trace_err",
                   "-error_file", str(workdir / "errors.log"),
                   "-timeout", "%ds" % (RUN_TIMEOUT,), "-timeout_error", "-nostdin"]
        process = subprocess.Popen(command, cwd=workdir, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.stop_sipp, process)
        return process, port, log

    def stop_sipp(self, process):
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        process.stderr.close()

    @defer.inlineCallbacks
    def wait_listening(self, port, transport, process):
        for _ in range(200):  # up to 10 s of reactor time
            if listening(port, transport):
                return
            if process.poll() is not None:
                self.fail("sipp exited early: %s" % process.stderr.read().decode(errors="replace"))
            yield deferLater(0.05)
        self.fail("sipp did not bind port %d" % (port,))

    def pusher(self, transport, port, **overrides):
        values = dict(enabled=True, transport=transport, proxy="127.0.0.1:%d" % port,
                      from_uri="sip:dms@example.com", local_endpoint="127.0.0.1:0",
                      t1=0.5, timeout=15.0)
        values.update(overrides)
        pusher = SIPPusher(SipConfig(**values), reactor, random.SystemRandom(), password="s3cret")
        self.addCleanup(pusher.stop)
        return pusher

    def received(self, process, log):
        """SIPp's log of received messages, once it has exited: [(byte count, bytes)]."""
        process.wait(timeout=RUN_TIMEOUT)
        self.assertEqual(process.returncode, 0,
                         process.stderr.read().decode(errors="replace") + log.read_bytes().decode(
                             "latin-1"))
        data = log.read_bytes()
        entries = re.split(rb"-{10,} [^\n]*\n", data)
        found = []
        for entry in entries:
            match = re.match(rb"(?:UDP|TCP) message received \[(\d+)\] bytes :\n\n", entry)
            if match:
                found.append((int(match.group(1)), entry[match.end():]))
        return found

    def check_received(self, count, text, body, content_type):
        head, _, logged_body = text.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"MESSAGE %s SIP/2.0\r\n" % DEVICE.encode()))
        headers = head.split(b"\r\n")
        self.assertIn(b"Content-Type: " + content_type, headers)
        self.assertIn(b"Content-Length: %d" % len(body), headers)
        self.assertIn(b'Accept-Contact: *;+g.oma.pusheventapp="syncml.dm";require;explicit',
                      headers)
        # what SIPp received: exactly our head, the blank line and len(body) bytes
        self.assertEqual(count, len(head) + 4 + len(body))
        visible = body.split(b"\x00")[0]
        self.assertEqual(logged_body[:len(visible)], visible)
        if b"\x00" not in body:
            self.assertEqual(logged_body[:len(body)], body)
        return headers

    @defer.inlineCallbacks
    def push_and_check(self, transport):
        package = package0()
        self.assertIn(b"\x00", package)
        process, port, log = self.start_sipp("uas_200.xml", transport, calls=2)
        yield self.wait_listening(port, transport, process)
        pusher = self.pusher(transport, port)
        first = yield pusher.push(DEVICE, package)
        second = yield pusher.push(DEVICE, NUL_FREE_BODY, content_type="application/octet-stream")
        self.assertTrue(first.delivered, first)
        self.assertTrue(second.delivered, second)
        received = self.received(process, log)
        self.assertEqual(len(received), 2, received)
        self.check_received(*received[0], package, b"application/vnd.syncml.notification")
        self.check_received(*received[1], NUL_FREE_BODY, b"application/octet-stream")

    def test_udp_push_received_by_sipp(self):
        return self.push_and_check("udp")

    def test_tcp_push_received_by_sipp(self):
        return self.push_and_check("tcp")

    @defer.inlineCallbacks
    def challenge(self, transport, scenario, header):
        package = package0()
        process, port, log = self.start_sipp(scenario, transport)
        yield self.wait_listening(port, transport, process)
        pusher = self.pusher(transport, port, auth_user="gw")
        result = yield pusher.push(DEVICE, package)
        self.assertEqual((result.delivered, result.code, result.error), (True, 200, None))
        received = self.received(process, log)
        self.assertEqual(len(received), 2, received)
        self.check_received(*received[0], package, b"application/vnd.syncml.notification")
        headers = self.check_received(*received[1], package,
                                      b"application/vnd.syncml.notification")
        self.assertIn(b"CSeq: 2 MESSAGE", headers)
        [answer] = [h for h in headers if h.startswith(header + b": ")]
        return M.parse_challenge(answer.split(b": ", 1)[1].decode())

    @defer.inlineCallbacks
    def test_udp_401_challenge_verified_by_sipp(self):
        # uas_401.xml answers 200 only if SIPp's verifyauth accepts the digest
        params = yield self.challenge("udp", "uas_401.xml", b"Authorization")
        self.assertEqual(params["qop"], "auth")

    @defer.inlineCallbacks
    def test_tcp_407_challenge_then_200(self):
        params = yield self.challenge("tcp", "uas_407.xml", b"Proxy-Authorization")
        # SIPp cannot verify Proxy-Authorization: check it here, from RFC 2617 §3.2.2
        md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
        ha1 = md5("gw:ims.example.net:s3cret")
        ha2 = md5("MESSAGE:" + DEVICE)
        expected = md5(":".join([ha1, "47ebe028cda119c35d4877b383027d28da013815", params["nc"],
                                 params["cnonce"], "auth", ha2]))
        self.assertEqual((params["username"], params["uri"], params["qop"], params["response"]),
                         ("gw", DEVICE, "auth", expected))

    @defer.inlineCallbacks
    def test_udp_407_challenge_then_200(self):
        params = yield self.challenge("udp", "uas_407.xml", b"Proxy-Authorization")
        self.assertEqual(params["realm"], "ims.example.net")

    @defer.inlineCallbacks
    def test_wrong_password_gets_403(self):
        process, port, log = self.start_sipp("uas_401.xml", "udp")
        yield self.wait_listening(port, "udp", process)
        pusher = self.pusher("udp", port, auth_user="gw")
        pusher.password = "wrong"
        result = yield pusher.push(DEVICE, package0())
        self.assertEqual(result.error, "SIP 403 Forbidden")
        self.received(process, log)


def deferLater(seconds):
    from twisted.internet import task
    return task.deferLater(reactor, seconds, lambda: None)
