"""The simulator's SMSC and SIP endpoint on loopback, with the gateway's own bearers as peers.

The SMSC is bound to by the gateway's :class:`SMPPLink` and the SIP
endpoint receives from the gateway's :class:`SIPPusher`: real bytes both
ways over 127.0.0.1, each test bounded by ``timeout``.  Raw clients then
feed both sources garbage.
"""

import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer, protocol, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dmgateway.bearers import sipmsg as M
from dmgateway.bearers import smpp_pdu as P
from dmgateway.bearers.sip import SIPPusher
from dmgateway.bearers.smpp import SMPPLink
from dmgateway.client import fleet, sim, sipuas, smsc, wakesources
from dmgateway.client.sipuas import SIPWakeSource
from dmgateway.client.smsc import SMSCWakeSource
from dmgateway.config.bearers import SipConfig, SmppLinkConfig
from dmgateway.notify import package0, sms, wsp
from dmgateway.notify.trigger import build_trigger

# dm-notification.md §3.4: submit_sm, sequence 1, 447700900001 -> 447700900123
SPEC_SUBMIT_SM = bytes.fromhex(
    "0000006d00000004000000000000000100010134343737303039303030303100010134343737303039303031"
    "323300400000000001000400340605040b8423f0010603c4af8775de829554b9780e661638bafb45118e02f8"
    "00000012340f636f6d2e6578616d706c652e646d73")
SPEC_PACKAGE0 = bytes.fromhex(
    "75de829554b9780e661638bafb45118e02f800000012340f636f6d2e6578616d706c652e646d73")

SERVER_ID = "dmgw-test"


def device(n=1, **extra):
    return next(sim.pattern_devices(1, start=n, server_name=SERVER_ID, **extra))


def trigger(dev, session_id, bearer="sms", body=b""):
    credential = package0.ServerCredential(dev.server_name, bytes(dev.server_nonce or b""),
                                           secret=dev.server_secret)
    return build_trigger(credential, SERVER_ID, session_id, bearer=bearer, body=body,
                         reference=session_id & 0xFF)


def pdu(command_id, sequence, body=b"", status=0):
    return struct.pack("!LLLL", 16 + len(body), command_id, status, sequence) + body


def bind_body(system_id, password):
    return system_id + b"\0" + password + b"\0" + b"\0" + bytes([0x34, 0, 0]) + b"\0"


class Collector:
    """The ``on_notification`` of a test, with a Deferred for the n-th wake-up."""

    def __init__(self):
        self.received = []
        self._waiting = []

    def __call__(self, destination, data):
        self.received.append((destination, data))
        for count, d in list(self._waiting):
            if len(self.received) >= count:
                self._waiting.remove((count, d))
                d.callback(self.received)

    def wait(self, count):
        if len(self.received) >= count:
            return defer.succeed(self.received)
        d = defer.Deferred()
        self._waiting.append((count, d))
        return d


class ParsingTests(SynchronousTestCase):
    def test_spec_submit_sm(self):
        submit = smsc.parse_submit(SPEC_SUBMIT_SM)
        self.assertEqual(submit.source_addr, "447700900001")
        self.assertEqual(submit.destination_addr, "447700900123")
        self.assertEqual((submit.esm_class, submit.data_coding, submit.registered_delivery),
                         (0x40, 0x04, 1))
        self.assertTrue(submit.udhi)
        push = wsp.parse_push(sms.parse_user_data(submit.message).payload)
        self.assertEqual(push.body, SPEC_PACKAGE0)

    def test_truncated_pdus_raise_pdu_error(self):
        for cut in range(16, len(SPEC_SUBMIT_SM) - 1, 7):
            raw = struct.pack("!L", cut) + SPEC_SUBMIT_SM[4:cut]
            with self.assertRaises(P.PDUError) as caught:
                smsc.parse_submit(raw)
            self.assertEqual(caught.exception.sequence, 1)
            self.assertNotEqual(caught.exception.status, 0)

    def test_bind(self):
        bind = smsc.parse_bind(pdu(P.BIND_TRANSCEIVER, 3, bind_body(b"gw", b"secret")))
        self.assertEqual((bind.system_id, bind.password, bind.interface_version),
                         ("gw", "secret", 0x34))
        with self.assertRaises(P.PDUError):
            smsc.parse_bind(pdu(P.BIND_TRANSCEIVER, 3, b"gw\0secret"))

    def test_host_port(self):
        self.assertEqual(wakesources.parse_host_port("127.0.0.1:5070"), ("127.0.0.1", 5070))
        self.assertEqual(wakesources.parse_host_port("[::1]:5060"), ("::1", 5060))
        for bad in ("127.0.0.1", ":5060", "host:x", "h:70000"):
            self.assertRaises(ValueError, wakesources.parse_host_port, bad)

    def test_registered_in_the_fleet(self):
        class Args:
            smsc_listen = "tcp:0:interface=127.0.0.1"
            smsc_system_id, smsc_password = "gw", "pw"
            sip_listen = "127.0.0.1:0"

        dev = device(sip_domain="example.com")
        self.assertIsInstance(wakesources.WAKE_SOURCES["sms"](reactor, [dev], Args), SMSCWakeSource)
        source = wakesources.WAKE_SOURCES["sip"](reactor, [dev], Args)
        self.assertIsInstance(source, SIPWakeSource)
        self.assertEqual(source.known, {dev.sip_uri.lower()})
        Args.smsc_listen = None
        self.assertRaises(ValueError, wakesources.WAKE_SOURCES["sms"], reactor, [dev], Args)


# -- SMPP -----------------------------------------------------------------------------


class SMSCTests(TestCase):
    timeout = 15

    @defer.inlineCallbacks
    def setUp(self):
        self.source = SMSCWakeSource(reactor, "tcp:0:interface=127.0.0.1", "gw", "secret")
        self.collector = Collector()
        yield self.source.start()
        self.addCleanup(self.source.stop)
        self.source.listen(self.collector)

    def link(self, **overrides):
        values = dict(name="sim", enabled=True, system_id="gw", password="secret",
                      endpoint="tcp:host=127.0.0.1:port=%d" % (self.source.address[1],),
                      bind="transceiver", source_addr="447700900000", source_ton=1,
                      source_npi=1, max_per_second=1000.0, reconnect_initial=0.1,
                      reconnect_max=0.2)
        values.update(overrides)
        receipts = []
        link = SMPPLink(SmppLinkConfig(**values), reactor,
                        on_receipt=lambda *r: receipts.append(r), wait_timeout=10)
        link.startService()
        self.addCleanup(link.stopService)
        return link, receipts

    @defer.inlineCallbacks
    def test_gateway_link_wakes_devices_with_concatenated_pushes(self):
        link, receipts = self.link()
        yield self.source.when_bound()
        devices = [device(n) for n in (1, 2)]
        # big enough for several parts each; the same reference for both devices
        messages = [trigger(d, 0x0101, body=b"v" * 260) for d in devices]
        self.assertGreater(len(messages[0].payloads), 1)
        ids = yield defer.gatherResults([
            link.submit(d.msisdn, m.payloads) for d, m in zip(devices, messages)])
        received = yield self.collector.wait(2)
        self.assertEqual(sorted(r[0] for r in received), sorted(d.msisdn.lstrip("+")
                                                               for d in devices))
        for destination, push in received:
            (dev,) = [d for d in devices if d.msisdn.lstrip("+") == destination]
            wake = sim.parse_wakeup(dev, "sms", push)
            self.assertEqual(wake.server_id, SERVER_ID)
            self.assertEqual(wake.session_id, messages[0].syncml_session_id)
        every_id = [i for part in ids for i in part]
        self.assertEqual(len(set(every_id)), len(every_id))
        for _ in range(100):  # receipts follow the acks on the same connection
            if len(receipts) == len(every_id):
                break
            yield deferLater(0.01)
        self.assertEqual(sorted(r[0] for r in receipts), sorted(every_id))
        self.assertEqual({r[1] for r in receipts}, {"delivered"})
        self.assertEqual(self.source.counters["submits"], len(every_id))
        self.assertEqual(self.source.counters["notifications"], 2)

    @defer.inlineCallbacks
    def test_transmitter_gets_no_receipts(self):
        link, receipts = self.link(bind="transmitter")
        dev = device(3)
        yield link.submit(dev.msisdn, trigger(dev, 7).payloads)
        yield self.collector.wait(1)
        self.assertEqual(receipts, [])
        self.assertNotIn("receipts", self.source.counters)

    @defer.inlineCallbacks
    def test_wrong_password_is_refused(self):
        link, _ = self.link(password="wrong")
        for _ in range(200):
            if self.source.counters.get("bind_failures"):
                break
            yield deferLater(0.01)
        self.assertGreaterEqual(self.source.counters["bind_failures"], 1)
        self.assertNotIn("binds", self.source.counters)

    @defer.inlineCallbacks
    def test_wake_ups_before_listen_are_kept(self):
        source = SMSCWakeSource(reactor, "tcp:0:interface=127.0.0.1", "gw", "secret")
        yield source.start()
        self.addCleanup(source.stop)
        self.source = source
        link, _ = self.link()
        dev = device(4)
        yield link.submit(dev.msisdn, trigger(dev, 9).payloads)
        self.assertEqual(len(source.pending), 1)
        collector = Collector()
        source.listen(collector)
        self.assertEqual(collector.received[0][0], dev.msisdn.lstrip("+"))

    @defer.inlineCallbacks
    def raw(self, *pdus):
        client = yield RawClient.connect(self.source.address[1])
        for data in pdus:
            client.transport.write(data)
        return client

    @defer.inlineCallbacks
    def test_garbage_gets_errors_and_the_link_survives(self):
        bind = pdu(P.BIND_TRANSMITTER, 1, bind_body(b"gw", b"secret"))
        client = yield self.raw(
            pdu(P.SUBMIT_SM, 7, SPEC_SUBMIT_SM[16:]),  # before bind
            pdu(0x00000777, 8),  # unknown command
            bind,
            pdu(P.SUBMIT_SM, 9, SPEC_SUBMIT_SM[16:40]),  # truncated
            pdu(P.ENQUIRE_LINK, 10),
            pdu(P.BIND_TRANSMITTER, 11, bind_body(b"gw", b"secret")),  # bound already
            pdu(P.SUBMIT_SM, 12, SPEC_SUBMIT_SM[16:]),
            pdu(P.UNBIND, 13))
        yield client.closed
        answers = [struct.unpack("!LLLL", frame[:16])[1:] for frame in client.frames]
        self.assertEqual(answers, [
            (0x80000004, P.ESME_RINVBNDSTS, 7),
            (P.GENERIC_NACK, P.ESME_RINVCMDID, 8),
            (0x80000002, 0, 1),
            (0x80000004, P.ESME_RINVCMDLEN, 9),
            (0x80000015, 0, 10),
            (0x80000002, smsc.ESME_RALYBND, 11),
            (0x80000004, 0, 12),
            (0x80000006, 0, 13),
        ])
        self.assertEqual(client.frames[6][16:], b"sim00000001\0")
        (destination, push), = self.collector.received
        self.assertEqual(destination, "447700900123")
        self.assertEqual(wsp.parse_push(push).body, SPEC_PACKAGE0)

    @defer.inlineCallbacks
    def test_bad_command_length_drops_the_connection(self):
        client = yield self.raw(struct.pack("!LLLL", 8, P.ENQUIRE_LINK, 0, 5))
        yield client.closed
        self.assertEqual(struct.unpack("!LLLL", client.frames[0]),
                         (16, P.GENERIC_NACK, P.ESME_RINVCMDLEN, 5))
        # the SMSC still takes new connections
        link, _ = self.link()
        yield self.source.when_bound()

    @defer.inlineCallbacks
    def test_wrong_credentials_on_the_wire(self):
        client = yield self.raw(pdu(P.BIND_TRANSCEIVER, 1, bind_body(b"gw", b"nope")),
                                pdu(P.BIND_TRANSCEIVER, 2, bind_body(b"other", b"secret")),
                                pdu(1, 3, bind_body(b"gw", b"secret")),  # bind_receiver
                                pdu(P.UNBIND, 4))
        yield client.closed
        answers = [struct.unpack("!LLLL", frame[:16])[1:] for frame in client.frames]
        self.assertEqual(answers[:3], [(0x80000009, smsc.ESME_RINVPASWD, 1),
                                       (0x80000009, smsc.ESME_RINVSYSID, 2),
                                       (0x80000001, smsc.ESME_RBINDFAIL, 3)])


class RawClient(protocol.Protocol):
    """Collects SMPP frames; ``closed`` fires when the SMSC closes the connection."""

    def __init__(self):
        self.buffer = b""
        self.frames = []
        self.closed = defer.Deferred()

    @classmethod
    def connect(cls, port):
        return protocol.ClientCreator(reactor, cls).connectTCP("127.0.0.1", port)

    def dataReceived(self, data):
        self.buffer += data
        while len(self.buffer) >= 4:
            (length,) = struct.unpack("!L", self.buffer[:4])
            if len(self.buffer) < length:
                break
            self.frames.append(self.buffer[:length])
            self.buffer = self.buffer[length:]

    def connectionLost(self, reason):
        self.closed.callback(None)


def deferLater(seconds):
    from twisted.internet.task import deferLater as later

    return later(reactor, seconds, lambda: None)


# -- SIP ------------------------------------------------------------------------------


class SIPTests(TestCase):
    timeout = 15

    @defer.inlineCallbacks
    def setUp(self):
        self.devices = [device(n, sip_domain="127.0.0.1") for n in (1, 2)]
        self.source = SIPWakeSource(reactor, "127.0.0.1", 0, random=random.Random(7),
                                    known=[d.sip_uri for d in self.devices])
        self.collector = Collector()
        yield self.source.start()
        self.addCleanup(self.source.stop)
        self.source.listen(self.collector)

    def pusher(self, transport):
        config = SipConfig(enabled=True, transport=transport,
                           proxy="127.0.0.1:%d" % (self.source.port,),
                           from_uri="sip:dms@example.com", local_endpoint="127.0.0.1:0",
                           t1=0.5, timeout=5.0)
        pusher = SIPPusher(config, reactor, random.Random(3))
        self.addCleanup(pusher.stop)
        return pusher

    @defer.inlineCallbacks
    def check_push(self, transport):
        pusher = self.pusher(transport)
        results = yield defer.gatherResults([
            pusher.push(d.sip_uri, trigger(d, 0x42 + i, bearer="sip").package0)
            for i, d in enumerate(self.devices)])
        self.assertEqual([(r.delivered, r.code) for r in results], [(True, 200)] * 2)
        received = yield self.collector.wait(2)
        self.assertEqual(sorted(r[0] for r in received), sorted(d.sip_uri for d in self.devices))
        for uri, body in received:
            (dev,) = [d for d in self.devices if d.sip_uri == uri]
            wake = sim.parse_wakeup(dev, "sip", body)
            self.assertEqual(wake.server_id, SERVER_ID)

    def test_udp_push_from_the_gateway(self):
        return self.check_push("udp")

    def test_tcp_push_from_the_gateway(self):
        return self.check_push("tcp")

    def udp_client(self):
        client = UDPClient()
        port = reactor.listenUDP(0, client, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client.port = port.getHost().port
        client.target = ("127.0.0.1", self.source.port)
        return client

    def request(self, client, method="MESSAGE", branch="z9hG4bKtest1", uri=None, drop=(),
                body=b"\x01\x02"):
        uri = uri or self.devices[0].sip_uri
        headers = [("Via", "SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (client.port, branch)),
                   ("Via", "SIP/2.0/UDP proxy.example.net;branch=z9hG4bKup"),
                   ("From", "<sip:dms@example.com>;tag=abc"), ("To", "<%s>" % (uri,)),
                   ("Call-ID", "call-%s@example.com" % (branch,)),
                   ("CSeq", "1 %s" % (method,)), ("Content-Type", "application/vnd.syncml.notification")]
        headers = [h for h in headers if h[0] not in drop]
        client.transport.write(M.encode(M.Request(method, uri, headers, body)), client.target)

    @defer.inlineCallbacks
    def test_retransmission_gets_the_same_answer_and_one_notification(self):
        client = self.udp_client()
        self.request(client)
        first = yield client.wait(1)
        self.request(client)
        yield client.wait(2)
        self.assertEqual(client.datagrams[0], client.datagrams[1])
        response = M.parse(first[0])
        self.assertEqual((response.code, response.reason), (200, "OK"))
        self.assertEqual(response.headers_named("Via"), [
            "SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKtest1;rport=%d" % (client.port, client.port),
            "SIP/2.0/UDP proxy.example.net;branch=z9hG4bKup"])
        self.assertEqual(response.header("From"), "<sip:dms@example.com>;tag=abc")
        uri, params = M.parse_name_addr(response.header("To"))
        self.assertEqual(uri, self.devices[0].sip_uri)
        self.assertEqual(len(params["tag"]), 8)
        self.assertEqual(response.header("Call-ID"), "call-z9hG4bKtest1@example.com")
        self.assertEqual(response.header("CSeq"), "1 MESSAGE")
        self.assertEqual(self.collector.received, [(self.devices[0].sip_uri, b"\x01\x02")])
        self.assertEqual(self.source.counters["retransmissions"], 1)
        # a new branch is a new request
        self.request(client, branch="z9hG4bKtest2")
        yield client.wait(3)
        self.assertEqual(len(self.collector.received), 2)

    @defer.inlineCallbacks
    def test_other_methods_and_bad_requests(self):
        client = self.udp_client()
        client.transport.write(b"\x00garbage\r\n\r\n", client.target)
        self.request(client, "OPTIONS", "z9hG4bKo")
        self.request(client, "FROB", "z9hG4bKf")
        self.request(client, "MESSAGE", "z9hG4bKm", drop=("Call-ID",))
        self.request(client, "ACK", "z9hG4bKa")  # never answered
        self.request(client, "MESSAGE", "z9hG4bKlast")
        yield client.wait(4)
        codes = [M.parse(d).code for d in client.datagrams]
        self.assertEqual(codes, [405, 501, 400, 200])
        self.assertEqual(M.parse(client.datagrams[0]).header("Allow"), "MESSAGE")
        self.assertEqual(len(self.collector.received), 1)

    @defer.inlineCallbacks
    def test_to_uri_names_the_device_when_the_request_uri_is_a_contact(self):
        client = self.udp_client()
        headers_uri = "sip:contact-1234@127.0.0.1:5099;transport=udp"
        self.request(client, uri=headers_uri)
        yield client.wait(1)
        self.assertEqual(self.collector.received[0][0], headers_uri)  # To is the same here
        client.transport.write(M.encode(M.Request("MESSAGE", headers_uri, [
            ("Via", "SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKx;rport" % (client.port,)),
            ("From", "<sip:dms@example.com>;tag=1"), ("To", "<%s>" % (self.devices[1].sip_uri,)),
            ("Call-ID", "c2"), ("CSeq", "2 MESSAGE")], b"x")), client.target)
        yield client.wait(2)
        self.assertEqual(self.collector.received[1][0], self.devices[1].sip_uri)


class UDPClient(protocol.DatagramProtocol):
    def __init__(self):
        self.datagrams = []
        self._waiting = []

    def datagramReceived(self, data, addr):
        self.datagrams.append(data)
        for count, d in list(self._waiting):
            if len(self.datagrams) >= count:
                self._waiting.remove((count, d))
                d.callback(self.datagrams)

    def wait(self, count):
        if len(self.datagrams) >= count:
            return defer.succeed(self.datagrams)
        d = defer.Deferred()
        self._waiting.append((count, d))
        return d


# -- garbage ------------------------------------------------------------------------------


class GarbageTests(SynchronousTestCase):
    """Random bytes in memory (StringTransport, task.Clock): answers are SMPP frames, no crash."""

    @given(st.lists(st.binary(max_size=80), max_size=8), st.booleans())
    @settings(max_examples=200, deadline=None)
    def test_smsc_never_crashes(self, chunks, bind_first):
        from twisted.internet.task import Clock
        from twisted.internet.testing import StringTransport

        source = SMSCWakeSource(Clock(), "tcp:0", "gw", "secret")
        proto = smsc._SMSCProtocol(source)
        transport = StringTransport()
        proto.makeConnection(transport)
        if bind_first:
            proto.dataReceived(pdu(P.BIND_TRANSCEIVER, 1, bind_body(b"gw", b"secret")))
        for chunk in chunks:
            # a plausible header now and then, so bodies get parsed too
            proto.dataReceived(struct.pack("!L", 16 + len(chunk)) + chunk if len(chunk) > 12
                               else chunk)
        written = transport.value()
        while len(written) >= 16:
            length, command = struct.unpack("!LL", written[:8])
            self.assertGreaterEqual(length, 16)
            self.assertTrue(command & P.RESPONSE or command == P.DELIVER_SM, hex(command))
            written = written[length:]
        self.assertEqual(written, b"")

    @given(st.binary(max_size=300))
    @settings(max_examples=300, deadline=None)
    def test_sip_never_crashes(self, data):
        from twisted.internet.task import Clock

        source = SIPWakeSource(Clock(), random=random.Random(1))
        sent = []
        datagram = sipuas._SIPDatagram(source)
        datagram._send = lambda data, addr: sent.append((data, addr))
        head = b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:1;branch=z9hG4bK1\r\n"
        datagram.datagramReceived(data, ("127.0.0.1", 5))
        datagram.datagramReceived(head + data, ("127.0.0.1", 5))
        for response, _ in sent:
            self.assertIsInstance(M.parse(response), M.Response)
