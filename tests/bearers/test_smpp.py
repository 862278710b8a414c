"""The SMPP ESME: in memory (StringTransport + Clock), then against the simulator's SMSC over loopback."""

import io
import struct

from smpp.pdu import operations
from smpp.pdu.pdu_encoding import PDUEncoder
from smpp.pdu.pdu_types import CommandStatus, EsmClass, EsmClassMode, EsmClassType, MessageState
from twisted.internet import defer, endpoints, reactor, task
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dmgateway.bearers import smpp_pdu as P
from dmgateway.bearers.smpp import NoRoute, SMPPLink, SMPPRouter
from dmgateway.bearers.smpp_esme import (
    BindError, ESMEFactory, LinkDown, ResponseTimeout, SubmitError,
)
from dmgateway.config.bearers import SmppLinkConfig
from tests.support import start_smsc

ENC = PDUEncoder()


def _enc(field, value):
    """A required parameter of the smpp.pdu library from its wire value."""
    return PDUEncoder.DefaultRequiredParamEncoders[field].decode(io.BytesIO(bytes([value])))


def _ton(value):
    return _enc("source_addr_ton", value)


def _npi(value):
    return _enc("source_addr_npi", value)

# dm-notification.md §3.4: submit_sm, sequence 1, 447700900001 -> 447700900123
SPEC_SUBMIT_SM = bytes.fromhex(
    "0000006d00000004000000000000000100010134343737303039303030303100010134343737303039303031"
    "323300400000000001000400340605040b8423f0010603c4af8775de829554b9780e661638bafb45118e02f8"
    "00000012340f636f6d2e6578616d706c652e646d73")
SPEC_SHORT_MESSAGE = SPEC_SUBMIT_SM[-52:]


def config(**overrides):
    values = dict(name="test", enabled=True, system_id="gw", password="secret",
                  source_addr="447700900001", source_ton=1, source_npi=1, window=10,
                  max_per_second=1000.0, enquire_link_interval=30.0, response_timeout=10.0,
                  request_delivery_receipts=True)
    values.update(overrides)
    return SmppLinkConfig(**values)


def frames(data):
    out = []
    while data:
        (length,) = struct.unpack("!L", data[:4])
        out.append(ENC.decode(io.BytesIO(data[:length])))
        data = data[length:]
    return out


class Harness:
    """An ESMEProtocol on a StringTransport, driven as the SMSC would."""

    def __init__(self, **overrides):
        self.clock = task.Clock()
        self.receipts = []
        self.factory = ESMEFactory(config(**overrides), self.clock,
                                   lambda *r: self.receipts.append(r))
        self.proto = self.factory.buildProtocol(None)
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def sent(self):
        data = self.transport.value()
        self.transport.clear()
        return frames(data)

    def feed(self, pdu):
        self.proto.dataReceived(ENC.encode(pdu))

    def bind(self, status=CommandStatus.ESME_ROK):
        [bind] = self.sent()
        resp = operations.getPDUClass(getattr(type(bind.id), bind.id.name + "_resp"))
        self.feed(resp(bind.seqNum, status, system_id=b"smsc"))
        return bind


def library_submit_sm(sequence, *, source_addr, source_ton, source_npi, destination_addr,
                      short_message, esm_class=P.ESM_CLASS_UDHI, data_coding=0x04,
                      registered_delivery=0, service_type="", dest_ton=1, dest_npi=1, protocol_id=0):
    """submit_sm as the smpp.pdu library encodes it: the reference for the hand-packed one."""
    E = P._ENC
    return ENC.encode(operations.SubmitSM(
        sequence, service_type=service_type,
        source_addr_ton=P._field(E["source_addr_ton"], source_ton),
        source_addr_npi=P._field(E["source_addr_npi"], source_npi), source_addr=source_addr,
        dest_addr_ton=P._field(E["dest_addr_ton"], dest_ton),
        dest_addr_npi=P._field(E["dest_addr_npi"], dest_npi), destination_addr=destination_addr,
        esm_class=P._field(E["esm_class"], esm_class), protocol_id=protocol_id,
        priority_flag=P._field(E["priority_flag"], 0), schedule_delivery_time=None,
        validity_period=None, registered_delivery=P._field(E["registered_delivery"], registered_delivery),
        replace_if_present_flag=P._field(E["replace_if_present_flag"], 0),
        data_coding=P._field(E["data_coding"], data_coding), sm_default_msg_id=0,
        short_message=bytes(short_message),
    ))


def capture_log(test):
    events = []
    globalLogPublisher.addObserver(events.append)
    test.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


class PDUHelperTests(SynchronousTestCase):
    def test_submit_sm_matches_spec_vector(self):
        out = P.submit_sm(1, source_addr="447700900001", source_ton=1, source_npi=1,
                          destination_addr="447700900123", short_message=SPEC_SHORT_MESSAGE,
                          registered_delivery=1)
        self.assertEqual(out, SPEC_SUBMIT_SM)

    def test_submit_sm_bytes_are_the_librarys(self):
        # submit_sm is packed by hand for speed: over every field value the
        # library accepts, and edge-sized fields, the bytes are the library's
        base = dict(source_addr="447700900001", source_ton=1, source_npi=1,
                    destination_addr="447700900123", short_message=SPEC_SHORT_MESSAGE)
        cases = [dict(base, service_type="WAP"), dict(base, protocol_id=0x7F),
                 dict(base, source_addr="DMGW", source_ton=5, source_npi=0),
                 dict(base, source_addr="1" * 20, destination_addr="9" * 20),
                 dict(base, short_message=b""), dict(base, short_message=bytes(range(254))),
                 dict(base, dest_ton=2, dest_npi=9)]
        for name in ("source_ton", "source_npi", "esm_class", "registered_delivery", "data_coding"):
            library = P._ENC[{"source_ton": "source_addr_ton",
                              "source_npi": "source_addr_npi"}.get(name, name)]
            for value in range(256):
                try:
                    accepted = library.encode(P._field(library, value)) == bytes([value])
                except Exception:
                    accepted = False
                if accepted:
                    cases.append(dict(base, **{name: value}))
                else:
                    with self.assertRaises(ValueError, msg="%s %d" % (name, value)):
                        P.submit_sm(3, **dict(base, **{name: value}))
        self.assertGreater(len(cases), 300)
        for case in cases:
            self.assertEqual(P.submit_sm(0x7FFFFFFF, **case), library_submit_sm(0x7FFFFFFF, **case), case)

    def test_submit_sm_refuses_what_cannot_be_sent(self):
        base = dict(source_addr="447700900001", source_ton=1, source_npi=1,
                    destination_addr="447700900123", short_message=b"x")
        for bad in (dict(destination_addr="1" * 21), dict(source_addr="44\x0077"),
                    dict(service_type="123456"), dict(short_message=b"x" * 255),
                    dict(protocol_id=256), dict(dest_ton=7), dict(dest_npi=2)):
            with self.assertRaises(ValueError, msg=bad):
                P.submit_sm(1, **dict(base, **bad))
        with self.assertRaises(ValueError):
            P.submit_sm(0, **base)

    def test_quick_submit_sm_resp(self):
        def resp(body, status=0, command_id=0x80000004):
            return struct.pack("!LLLL", 16 + len(body), command_id, status, 9) + body

        self.assertEqual(P.quick_submit_sm_resp(resp(b"sim-1\0")).params, {"message_id": b"sim-1"})
        self.assertEqual(P.quick_submit_sm_resp(resp(b"x" * 64 + b"\0")).params["message_id"], b"x" * 64)
        # anything else is left to the library (and its errors)
        for other in (resp(b"x" * 65 + b"\0"), resp(b"sim-1"), resp(b"si\0m\0"), resp(b""),
                      resp(b"sim-1\0", status=0x58), resp(b"sim-1\0", command_id=0x80000103),
                      resp(b"sim-1\0", command_id=0x00000004)):
            self.assertIsNone(P.quick_submit_sm_resp(other), other)

    def test_decode_refuses_unknown_command(self):
        with self.assertRaises(P.PDUError) as e:
            P.decode(struct.pack("!LLLL", 16, 0x1234, 0, 7))
        self.assertEqual((e.exception.status, e.exception.sequence), (P.ESME_RINVCMDID, 7))

    def test_receipt_text(self):
        parsed = P.parse_receipt_text(b"id:abc123 sub:001 dlvrd:001 submit date:2401010000 "
                                      b"done date:2401010001 stat:UNDELIV err:0x1 text:")
        self.assertEqual(parsed, {"id": "abc123", "stat": "UNDELIV", "err": "0x1"})


class ESMEProtocolTests(SynchronousTestCase):
    def test_smsc_requests_with_sequence_zero_or_too_high_are_answered(self):
        h = Harness(bind="transceiver")
        h.bind()
        for seq in (0, 0x80000001, 0xFFFFFFFF):
            # the SMSC's keep-alive with a sequence_number SMPP does not allow: answered, link kept
            h.proto.dataReceived(struct.pack("!LLLL", 16, P.ENQUIRE_LINK, 0, seq))
            self.assertEqual(h.transport.value(), struct.pack("!LLLL", 16, P.ENQUIRE_LINK | P.RESPONSE, 0, seq))
            h.transport.clear()
        self.assertEqual((h.proto.state, h.transport.disconnecting), ("bound", False))
        # the answers are the library's bytes where it can encode them
        self.assertEqual(P.enquire_link_resp(7), ENC.encode(operations.EnquireLinkResp(7)))
        self.assertEqual(P.unbind_resp(7), ENC.encode(operations.UnbindResp(7)))
        self.assertEqual(P.deliver_sm_resp(7), ENC.encode(operations.DeliverSMResp(7, message_id=None)))
        h.proto.dataReceived(struct.pack("!LLLL", 16, P.UNBIND, 0, 0))
        self.assertEqual(h.transport.value(), struct.pack("!LLLL", 16, P.UNBIND | P.RESPONSE, 0, 0))
        self.assertTrue(h.transport.disconnecting)

    def test_bind_transmitter(self):
        h = Harness()
        bound = []
        h.proto.when_bound().addCallback(bound.append)
        bind = h.bind()
        self.assertEqual(bind.id.name, "bind_transmitter")
        self.assertEqual((bind.params["system_id"], bind.params["password"]), (b"gw", b"secret"))
        self.assertEqual(bind.params["interface_version"], 0x34)
        self.assertEqual(bound, [h.proto])
        self.assertEqual(h.proto.state, "bound")

    def test_bind_transceiver(self):
        h = Harness(bind="transceiver")
        self.assertEqual(h.bind().id.name, "bind_transceiver")
        self.assertEqual(h.proto.state, "bound")

    def test_wrong_password(self):
        h = Harness()
        events = capture_log(self)
        h.bind(CommandStatus.ESME_RINVPASWD)
        error = self.failureResultOf(h.proto.when_bound(), BindError).value
        self.assertEqual((error.status, error.name), (0x0E, "ESME_RINVPASWD"))
        self.assertTrue(h.transport.disconnecting)
        self.assertFalse(any("secret" in repr(e) for e in events))

    def test_bind_timeout_drops(self):
        h = Harness()
        h.clock.advance(10)
        self.failureResultOf(h.proto.when_bound(), ResponseTimeout)
        self.assertTrue(h.transport.disconnecting)

    def test_submit_one_pdu_per_segment(self):
        h = Harness()
        h.bind()
        d = h.proto.submit("+447700900123", [SPEC_SHORT_MESSAGE, b"\x01\x02"])
        h.clock.advance(1)  # one token per 1/max_per_second
        first, second = h.sent()
        self.assertEqual(ENC.encode(first)[8:], SPEC_SUBMIT_SM[8:12] + ENC.encode(first)[12:])
        self.assertEqual(ENC.encode(first)[16:], SPEC_SUBMIT_SM[16:])
        self.assertEqual(second.params["short_message"], b"\x01\x02")
        self.assertEqual(second.params["destination_addr"], b"447700900123")
        self.feed_ok(h, second, b"B")
        self.feed_ok(h, first, b"A")
        self.assertEqual(self.successResultOf(d), ["A", "B"])

    def test_submit_sm_resp_read_directly_or_by_the_library(self):
        h = Harness()
        h.bind()
        d = h.proto.submit("+447700900123", [b"a", b"b", b"c"])
        h.clock.pump([1, 1])
        first, second, third = h.sent()
        h.feed(operations.SubmitSMResp(first.seqNum, message_id=b"\xffid"))  # read directly
        # a message_id over 64 bytes is the library's to refuse: the segment fails
        h.proto.dataReceived(struct.pack("!LLLL", 16 + 71, 0x80000004, 0, second.seqNum) + b"y" * 70 + b"\0")
        self.feed_ok(h, third, b"C")
        failure = self.failureResultOf(d, SubmitError)
        self.assertEqual(failure.value.status, 0x0C)  # ESME_RINVMSGID, as the library reads it
        [nack] = h.sent()
        self.assertEqual((nack.id.name, nack.seqNum), ("generic_nack", second.seqNum))
        self.assertEqual(h.proto.state, "bound")

    def test_one_segment_submit_fires_with_a_list(self):
        h = Harness()
        h.bind()
        d = h.proto.submit("+447700900123", [b"a"])
        [pdu] = h.sent()
        self.feed_ok(h, pdu, b"\xffid")
        self.assertEqual(self.successResultOf(d), ["\ufffdid"])

    def feed_ok(self, h, pdu, message_id):
        h.feed(operations.SubmitSMResp(pdu.seqNum, message_id=message_id))

    def test_window_full(self):
        h = Harness(window=2)
        h.bind()
        d = h.proto.submit("447700900123", [b"a", b"b", b"c"])
        h.clock.advance(1)
        first, second = h.sent()
        h.clock.advance(1)
        self.assertEqual(h.sent(), [])
        self.feed_ok(h, first, b"1")
        [third] = h.sent()
        self.assertEqual(third.params["short_message"], b"c")
        self.feed_ok(h, second, b"2")
        self.feed_ok(h, third, b"3")
        self.assertEqual(self.successResultOf(d), ["1", "2", "3"])

    def test_throttle_timing(self):
        h = Harness(max_per_second=2.0)
        h.bind()
        h.proto.submit("447700900123", [b"a", b"b", b"c"])
        self.assertEqual(len(h.sent()), 1)
        h.clock.advance(0.49)
        self.assertEqual(h.sent(), [])
        h.clock.advance(0.01)
        self.assertEqual(len(h.sent()), 1)
        h.clock.advance(0.5)
        self.assertEqual(len(h.sent()), 1)

    def test_throttled_then_success(self):
        h = Harness()
        h.bind()
        d = h.proto.submit("447700900123", [b"a"])
        [first] = h.sent()
        h.feed(operations.SubmitSMResp(first.seqNum, CommandStatus.ESME_RTHROTTLED))
        self.assertNoResult(d)
        self.assertEqual(h.sent(), [])
        h.clock.advance(h.proto.retry_initial)
        [again] = h.sent()
        self.assertEqual(again.params["short_message"], b"a")
        self.assertNotEqual(again.seqNum, first.seqNum)
        self.feed_ok(h, again, b"ok")
        self.assertEqual(self.successResultOf(d), ["ok"])

    def test_queue_full_retried_until_attempts_run_out(self):
        h = Harness()
        h.bind()
        d = h.proto.submit("447700900123", [b"a"])
        delays = []
        for attempt in range(h.proto.retry_attempts):
            [pdu] = [p for p in h.sent() if p.id.name == "submit_sm"]  # enquire_link runs too
            h.feed(operations.SubmitSMResp(pdu.seqNum, CommandStatus.ESME_RMSGQFUL))
            [call] = [c for c in h.clock.getDelayedCalls() if c.func.__name__ == "again"] or [None]
            if call is not None:
                delays.append(call.getTime() - h.clock.seconds())
                h.clock.advance(delays[-1])
        self.assertEqual(delays, [1.0, 2.0, 4.0, 8.0, 16.0])
        error = self.failureResultOf(d, SubmitError).value
        self.assertEqual((error.status, error.retryable), (0x14, True))

    def test_permanent_error(self):
        h = Harness()
        h.bind()
        d = h.proto.submit("447700900123", [b"a"])
        [pdu] = h.sent()
        h.feed(operations.SubmitSMResp(pdu.seqNum, CommandStatus.ESME_RINVDSTADR))
        error = self.failureResultOf(d, SubmitError).value
        self.assertEqual((error.status, error.name, error.retryable), (0x0B, "ESME_RINVDSTADR", False))
        h.clock.advance(30)  # the link stays up: keep-alive continues
        self.assertEqual([p.id.name for p in h.sent()], ["enquire_link"])
        self.assertFalse(h.transport.disconnecting)

    def test_generic_nack_fails_the_request(self):
        h = Harness()
        h.bind()
        d = h.proto.submit("447700900123", [b"a"])
        [pdu] = h.sent()
        h.proto.dataReceived(P.generic_nack(pdu.seqNum, P.ESME_RINVCMDLEN))
        self.assertEqual(self.failureResultOf(d, SubmitError).value.status, P.ESME_RINVCMDLEN)
        self.assertFalse(h.transport.disconnecting)

    def test_submit_response_timeout_drops_link(self):
        h = Harness()
        h.bind()
        d = h.proto.submit("447700900123", [b"a"])
        h.clock.advance(10)
        self.failureResultOf(d, LinkDown)
        self.assertTrue(h.transport.disconnecting)

    def test_link_loss_fails_outstanding_and_queued(self):
        h = Harness(window=1)
        h.bind()
        d = h.proto.submit("447700900123", [b"a", b"b"])
        h.proto.connectionLost(Failure(ConnectionDone("gone")))
        error = self.failureResultOf(d, LinkDown).value
        self.assertTrue(error.retryable)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_link_loss_fails_a_submit_waiting_to_be_retried(self):
        # a throttled segment sits in a retry timer, neither queued nor outstanding:
        # losing the link must fail it too, or the caller's Deferred never fires
        h = Harness()
        h.bind()
        d = h.proto.submit("447700900123", [b"a"])
        [pdu] = h.sent()
        h.feed(operations.SubmitSMResp(pdu.seqNum, CommandStatus.ESME_RTHROTTLED))
        self.assertNoResult(d)
        h.proto.connectionLost(Failure(ConnectionDone("gone")))
        error = self.failureResultOf(d, LinkDown).value
        self.assertTrue(error.retryable)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_submit_before_bind_fails(self):
        h = Harness()
        self.failureResultOf(h.proto.submit("1", [b"a"]), LinkDown)

    def test_enquire_link_keepalive_and_timeout(self):
        h = Harness(enquire_link_interval=30, response_timeout=5)
        h.bind()
        h.clock.advance(30)
        [enq] = h.sent()
        self.assertEqual(enq.id.name, "enquire_link")
        h.feed(operations.EnquireLinkResp(enq.seqNum))
        h.clock.advance(30)
        [enq2] = h.sent()
        self.assertFalse(h.transport.disconnecting)
        h.clock.advance(5)
        self.assertTrue(h.transport.disconnecting)

    def test_answers_smsc_enquire_link_and_unbind(self):
        h = Harness()
        h.bind()
        h.feed(operations.EnquireLink(77))
        [resp] = h.sent()
        self.assertEqual((resp.id.name, resp.seqNum), ("enquire_link_resp", 77))
        h.feed(operations.Unbind(78))
        [resp] = h.sent()
        self.assertEqual((resp.id.name, resp.seqNum), ("unbind_resp", 78))
        self.assertTrue(h.transport.disconnecting)

    def test_bad_length_nacked_and_dropped(self):
        for length in (8, 70000):
            h = Harness()
            h.bind()
            events = capture_log(self)
            h.proto.dataReceived(struct.pack("!LLLL", length, 4, 0, 9))
            self.assertEqual(h.transport.value(), P.generic_nack(9, P.ESME_RINVCMDLEN))
            self.assertTrue(h.transport.disconnecting)
            self.assertTrue(any(e.get("outcome") == "bad_pdu" for e in events))

    def test_unknown_command_id_nacked(self):
        h = Harness()
        h.bind()
        h.proto.dataReceived(struct.pack("!LLLL", 20, 0x00000777, 0, 5) + b"abcd")
        self.assertEqual(h.transport.value(), P.generic_nack(5, P.ESME_RINVCMDID))
        self.assertFalse(h.transport.disconnecting)
        h.transport.clear()
        h.feed(operations.EnquireLink(6))  # the stream stays in step
        self.assertEqual([p.seqNum for p in h.sent()], [6])

    def test_truncated_body_answered_with_error(self):
        h = Harness()
        h.bind()
        # a deliver_sm whose body ends in the middle of service_type
        h.proto.dataReceived(struct.pack("!LLLL", 19, P.DELIVER_SM, 0, 5) + b"abc")
        [resp] = frames(h.transport.value())
        self.assertEqual((resp.id.name, resp.seqNum), ("deliver_sm_resp", 5))
        self.assertNotEqual(resp.status, CommandStatus.ESME_ROK)
        self.assertFalse(h.transport.disconnecting)

    def test_partial_frames_are_buffered(self):
        h = Harness()
        h.bind()
        data = ENC.encode(operations.EnquireLink(12))
        for byte in data:
            h.proto.dataReceived(bytes([byte]))
        self.assertEqual([p.seqNum for p in h.sent()], [12])

    def deliver(self, h, seq, text=b"", **tlvs):
        h.feed(operations.DeliverSM(
            seq, service_type=b"", source_addr_ton=_ton(1), source_addr_npi=_npi(1),
            source_addr=b"447700900123", dest_addr_ton=_ton(1), dest_addr_npi=_npi(1),
            destination_addr=b"447700900001",
            esm_class=EsmClass(EsmClassMode.DEFAULT, EsmClassType.SMSC_DELIVERY_RECEIPT),
            protocol_id=0, priority_flag=_enc("priority_flag", 0), schedule_delivery_time=None,
            validity_period=None, registered_delivery=_enc("registered_delivery", 0),
            replace_if_present_flag=_enc("replace_if_present_flag", 0),
            data_coding=_enc("data_coding", 0), sm_default_msg_id=0, short_message=text, **tlvs))

    def test_delivery_receipt_text(self):
        h = Harness(bind="transceiver")
        h.bind()
        self.deliver(h, 3, b"id:msg7 sub:001 dlvrd:001 submit date:2401010000 "
                           b"done date:2401010001 stat:DELIVRD err:000 text:")
        [resp] = h.sent()
        self.assertEqual((resp.id.name, resp.seqNum, resp.status),
                         ("deliver_sm_resp", 3, CommandStatus.ESME_ROK))
        self.assertEqual(h.receipts, [("msg7", "delivered", None)])

    def test_delivery_receipt_tlvs_win(self):
        h = Harness(bind="transceiver")
        h.bind()
        self.deliver(h, 4, b"id:wrong stat:DELIVRD err:000", receipted_message_id=b"msg9",
                     message_state=MessageState.UNDELIVERABLE, network_error_code=b"\x03\x00\x01")
        self.assertEqual(h.receipts, [("msg9", "undeliverable", "030001")])

    def test_unbind_on_stop(self):
        h = Harness()
        h.bind()
        done = h.proto.unbind()
        [unbind] = h.sent()
        self.assertEqual(unbind.id.name, "unbind")
        self.assertNoResult(done)
        h.feed(operations.UnbindResp(unbind.seqNum))
        self.assertTrue(h.transport.disconnecting)
        h.proto.connectionLost(Failure(ConnectionDone("closed")))
        self.successResultOf(done)

    def test_unbind_without_answer_is_bounded(self):
        h = Harness(response_timeout=2)
        h.bind()
        done = h.proto.unbind()
        h.clock.advance(2)
        self.assertTrue(h.transport.disconnecting)
        h.proto.connectionLost(Failure(ConnectionDone("closed")))
        self.successResultOf(done)


class RouterTests(SynchronousTestCase):
    def link(self, name, routes):
        return SMPPLink(config(name=name, routes=routes), task.Clock(),
                        endpoint=endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", 9))

    def test_longest_prefix_wins(self):
        uk, uk_mobile, rest = self.link("uk", ("44",)), self.link("m", ("447",)), self.link("r", ())
        router = SMPPRouter([uk, uk_mobile, rest])
        self.assertIs(router.link_for("+447700900123"), uk_mobile)
        self.assertIs(router.link_for("441234"), uk)
        self.assertIs(router.link_for("33123"), rest)

    def test_no_route(self):
        router = SMPPRouter([self.link("uk", ("44",))])
        self.failureResultOf(router.submit("33123", [b"a"]), NoRoute)

    def test_stopped_link_refuses(self):
        self.failureResultOf(self.link("uk", ()).submit("44", [b"a"]), LinkDown)


class LoopbackTests(TestCase):
    """The same behaviours over TCP against the simulator's SMSC (ESME timers on a Clock)."""

    timeout = 20  # a hang fails the test instead of the run

    @defer.inlineCallbacks
    def setUp(self):
        self.smsc = yield start_smsc(self)
        self.clock = task.Clock()
        self.receipts = []

    def received(self):
        """The names of the PDUs the SMSC got, in order."""
        return [P.command_name(P.read_header(frame).command_id) for frame in self.smsc.frames]

    def start_link(self, **overrides):
        cfg = config(endpoint="tcp:host=127.0.0.1:port=%d" % self.smsc.address[1], **overrides)
        link = SMPPLink(cfg, reactor, clock=self.clock,
                        on_receipt=lambda *r: self.receipts.append(r))
        link.factory.protocol = type("Fast", (link.factory.protocol,), {"retry_initial": 0.5})
        link.startService()
        self.addCleanup(lambda: link.stopService() if link.running else None)
        return link

    @defer.inlineCallbacks
    def settle(self, predicate, turns=500):
        """Let the reactor and the fake clock run until ``predicate()`` (bounded)."""
        for _ in range(turns):
            if predicate():
                return
            self.clock.advance(0.1)
            yield task.deferLater(reactor, 0, lambda: None)
        self.fail("condition not reached")

    @defer.inlineCallbacks
    def outcome(self, d):
        """``d``'s result once the reactor and the fake clock got it there."""
        box = []
        d.addBoth(box.append)
        yield self.settle(lambda: box)
        if isinstance(box[0], Failure):
            box[0].raiseException()
        return box[0]

    @defer.inlineCallbacks
    def test_bind_submit_receipt_unbind(self):
        link = self.start_link(bind="transceiver")
        ids = yield self.outcome(link.submit("+447700900123", [SPEC_SHORT_MESSAGE, b"\x00\x01"]))
        self.assertEqual(ids, ["sim00000001", "sim00000002"])
        self.assertEqual(link.state, "bound")
        self.assertEqual(self.received()[0], "bind_transceiver")
        self.assertEqual(self.smsc.frames[1][16:], SPEC_SUBMIT_SM[16:])
        self.assertTrue(self.smsc.send_receipt("sim00000001"))
        yield self.settle(lambda: self.receipts)
        self.assertEqual(self.receipts, [("sim00000001", "delivered", None)])
        lost = self.smsc.when_lost()
        yield self.outcome(link.stopService())
        yield lost
        self.assertEqual(self.received()[-1], "unbind")

    @defer.inlineCallbacks
    def test_wrong_password_retries_with_backoff(self):
        self.smsc.password = b"other"
        link = self.start_link()
        d = link.submit("447700900123", [b"a"])
        yield self.settle(lambda: len(self.smsc.frames) >= 2)
        self.assertEqual(self.received(), ["bind_transmitter"] * 2)
        self.assertNotEqual(link.state, "bound")
        self.smsc.password = b"secret"
        self.assertEqual((yield self.outcome(d)), ["sim00000001"])

    @defer.inlineCallbacks
    def test_drop_after_first_submit(self):
        self.smsc.drop_after_submits = 1
        link = self.start_link(window=1)
        bound = self.smsc.when_bound()
        d = link.submit("447700900123", [b"a", b"b"])
        yield bound
        with self.assertRaises(LinkDown):
            yield self.outcome(d)
        # ClientService reconnects; the retry of the caller goes through
        ids = yield self.outcome(link.submit("447700900123", [b"c"]))
        self.assertEqual(ids, ["sim00000002"])

    @defer.inlineCallbacks
    def test_throttled_once_then_success(self):
        self.smsc.throttle_next = 1
        link = self.start_link()
        d = link.submit("447700900123", [b"a"])
        self.assertEqual((yield self.outcome(d)), ["sim00000001"])
        self.assertEqual([submit.message for submit in self.smsc.submitted], [b"a", b"a"])

    @defer.inlineCallbacks
    def test_enquire_link_timeout_disconnects(self):
        self.smsc.answer_enquire_link = False
        link = self.start_link(enquire_link_interval=5, response_timeout=2)
        yield self.smsc.when_bound()
        lost = self.smsc.when_lost()
        yield self.settle(lambda: lost.called)
        self.assertIn("enquire_link", self.received())
        self.assertNotEqual(link.state, "bound")


class FuzzTests(SynchronousTestCase):
    def test_random_bytes_never_raise(self):
        from hypothesis import given, settings, strategies as st

        @settings(max_examples=300, deadline=None)
        @given(st.lists(st.binary(max_size=80), max_size=6), st.booleans())
        def check(chunks, framed):
            h = Harness(bind="transceiver")
            h.bind()
            for chunk in chunks:
                if framed:  # a plausible header so the body parsers get exercised
                    chunk = struct.pack("!L", 16 + len(chunk)) + chunk[:4].ljust(4, b"\0") \
                        + b"\0\0\0\0\0\0\0\1" + chunk
                h.proto.dataReceived(chunk)
            for frame in frames(h.transport.value()):  # what we send is always well formed
                self.assertTrue(frame.id.name.endswith("_resp") or frame.id.name == "generic_nack"
                                or frame.id.name == "enquire_link")
        check()



def test_take_frame():
    from dmgateway.bearers import smpp_pdu as P

    whole = P.enquire_link(7)
    buffer = bytearray(whole[:10])
    assert P.take_frame(buffer) is None
    buffer += whole[10:] + whole[:4]
    assert P.take_frame(buffer) == whole
    assert bytes(buffer) == whole[:4]
    bad = bytearray((8).to_bytes(4, "big") + bytes(12))
    try:
        P.take_frame(bad)
    except P.FramingError as e:
        assert e.length == 8
    else:
        raise AssertionError("a command_length of 8 must be refused")
