"""The GSM modem bearer: the AT protocol in memory (StringTransport + Clock), the
service against tests/modemsim.py in memory, then over a real pty with SerialPort."""

import pytest
from twisted.internet import defer, reactor, task
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dmgateway.bearers.modem import ModemService
from dmgateway.bearers.modem_at import (
    CommandError, CommandTimeout, InvalidPDU, ModemDown, PinRejected, SimError, StatusReport,
    error_name, parse_status_report,
)
from dmgateway.bearers.modem_protocol import ModemFactory
from dmgateway.config.bearers import ModemConfig
from dmgateway.notify import package0 as p0
from dmgateway.notify import sms, trigger
from tests.modemsim import ModemSimulator, PtyModem, status_report_pdu

# dm-notification.md §2.1 inputs and §3.3: the SMS-SUBMIT (DCS 0xF5, no SMSC field) to +447700900123
CREDENTIAL = p0.ServerCredential("com.example.dms", bytes.fromhex("a1b2c3d4e5f60718"),
                                 secret="srvPass123")
DESTINATION = "+447700900123"
SPEC_TPDU = bytes.fromhex(
    "41000c9144770009103200f5340605040b8423f0010603c4af8775de829554b9780e661638bafb45118e"
    "02f800000012340f636f6d2e6578616d706c652e646d73")
SPEC_LENGTH = len(SPEC_TPDU)  # 65
SPEC_HEX = "00" + SPEC_TPDU.hex().upper()  # with an empty SMSC field

INIT = [b"ATZ\r", b"ATE0\r", b"AT+CMEE=1\r", b"AT+CPIN?\r", b"AT+CMGF=0\r"]


def config(**overrides):
    values = dict(enabled=True, device="/dev/ttyMODEM", baudrate=115200, pin="", smsc="",
                  command_timeout=5.0)
    values.update(overrides)
    return ModemConfig(**values)


def spec_trigger():
    return trigger.build_trigger(CREDENTIAL, "com.example.dms", 0x1234,
                                 ui_mode=p0.UI_USER_INTERACTION, data_coding=sms.DCS_8BIT_CLASS1)


class Harness:
    """A ModemProtocol on a StringTransport; the test plays the modem byte by byte."""

    def __init__(self, **overrides):
        self.clock = task.Clock()
        self.reports, self.unsolicited = [], []
        on_report = overrides.pop("on_report", None)
        self.proto = ModemFactory(config(**overrides), self.clock, on_report,
                                  self.unsolicited.append).buildProtocol(None)
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def written(self):
        value = self.transport.value()
        self.transport.clear()
        return value

    def answer(self, *lines, raw=b""):
        self.proto.dataReceived(b"".join(b"\r\n" + line + b"\r\n" for line in lines) + raw)

    def initialise(self):
        assert self.written() == b"\x1bATZ\r"
        self.answer(b"OK")
        for command in INIT[1:]:
            assert self.written() == command
            if command == b"AT+CPIN?\r":
                self.answer(b"+CPIN: READY")
            self.answer(b"OK")
        return self


class ProtocolTests(SynchronousTestCase):

    def test_init_sequence_with_echo(self):
        h = Harness()
        self.assertEqual(h.written(), b"\x1bATZ\r")
        h.proto.dataReceived(b"ATZ\r\r\nOK\r\n")  # echo is on until ATE0
        self.assertEqual(h.written(), b"ATE0\r")
        h.proto.dataReceived(b"ATE0\r\r\nOK\r\n")
        for command in INIT[2:]:
            self.assertEqual(h.written(), command)
            if command == b"AT+CPIN?\r":
                h.answer(b"+CREG: 1", b"+CPIN: READY")  # an unsolicited code in between
            h.answer(b"OK")
        self.assertIs(self.successResultOf(h.proto.ready), h.proto)
        self.assertEqual(h.proto.state, "ready")
        self.assertEqual(h.unsolicited, ["+CREG: 1"])

    def test_smsc_and_report_routing(self):
        h = Harness(smsc="+447700000001", on_report=lambda r: None)
        h.initialise()
        self.assertEqual(h.written(), b'AT+CSCA="+447700000001",145\r')
        h.answer(b"OK")
        self.assertEqual(h.written(), b"AT+CNMI=2,1,0,1,0\r")
        h.answer(b"+CMS ERROR: 303")  # not supported: tolerated
        self.assertEqual(h.proto.state, "ready")
        self.successResultOf(h.proto.ready)

    def test_pin_entered_when_asked_and_never_logged(self):
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        h = Harness(pin="4711")
        h.written()
        for command in INIT[1:3]:
            h.answer(b"OK")
            self.assertEqual(h.written(), command)
        h.answer(b"ERROR")  # an old modem without AT+CMEE: tolerated
        self.assertEqual(h.written(), b"AT+CPIN?\r")
        h.answer(b"+CPIN: SIM PIN", b"OK")
        self.assertEqual(h.written(), b'AT+CPIN="4711"\r')
        h.answer(b"OK")
        self.assertEqual(h.written(), b"AT+CPIN?\r")
        h.answer(b"+CME ERROR: 14")  # SIM busy for a moment
        self.assertEqual(h.written(), b"")
        h.clock.advance(1.0)
        self.assertEqual(h.written(), b"AT+CPIN?\r")
        h.answer(b"+CPIN: READY", b"OK")
        self.assertEqual(h.written(), b"AT+CMGF=0\r")
        h.answer(b"OK")
        self.successResultOf(h.proto.ready)
        logged = " ".join(formatEvent(e) for e in events)
        self.assertIn('AT+CPIN="****"', logged)
        self.assertNotIn("4711", logged)

    def _to_pin_question(self, **overrides):
        h = Harness(**overrides)
        h.written()
        for _ in range(3):
            h.answer(b"OK")
            h.written()
        h.answer(b"+CPIN: SIM PIN", b"OK")
        return h

    def test_pin_needed_but_not_configured(self):
        h = self._to_pin_question()
        self.assertIn("pin is not configured", str(self.failureResultOf(h.proto.ready, SimError).value))
        self.assertTrue(h.transport.disconnecting)

    def test_wrong_pin(self):
        h = self._to_pin_question(pin="0000")
        self.assertEqual(h.written(), b'AT+CPIN="0000"\r')
        h.answer(b"+CME ERROR: 16")
        self.failureResultOf(h.proto.ready, PinRejected)
        self.assertTrue(h.transport.disconnecting)

    def test_puk_is_not_attempted(self):
        h = Harness(pin="1234")
        h.written()
        for _ in range(3):
            h.answer(b"OK")
            h.written()
        h.answer(b"+CPIN: SIM PUK", b"OK")
        self.assertEqual(h.written(), b"")
        self.assertIn("SIM PUK", str(self.failureResultOf(h.proto.ready, SimError).value))

    def test_init_command_timeout(self):
        h = Harness()
        h.written()
        h.clock.advance(5.0)
        self.failureResultOf(h.proto.ready, CommandTimeout)
        self.assertTrue(h.transport.disconnecting)

    def test_send_one_message(self):
        h = Harness().initialise()
        d = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX)])
        self.assertEqual(h.written(), b"AT+CMGS=65\r")
        self.assertNoResult(d)
        h.answer(raw=b"\r\n> ")
        self.assertEqual(h.written(), SPEC_HEX.encode() + b"\x1a")
        h.answer(b"+CMGS: 17", b"OK")
        self.assertEqual(self.successResultOf(d), [17])

    def test_prompt_and_answer_in_pieces_with_echo(self):
        h = Harness().initialise()
        d = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX.lower())])
        h.written()
        for piece in (b"AT+CMGS=65\r", b"\r", b"\n", b">"):
            h.proto.dataReceived(piece)
        self.assertEqual(h.written(), SPEC_HEX.encode() + b"\x1a")
        for piece in (b" ", SPEC_HEX.encode()[:50], SPEC_HEX.encode()[50:] + b"\x1a\r\n+CM",
                      b"GS: 2", b"55\r\n\r\nO", b"K\r\n"):
            h.proto.dataReceived(piece)
        self.assertEqual(self.successResultOf(d), [255])

    def test_one_message_at_a_time(self):
        h = Harness().initialise()
        first = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX), (SPEC_LENGTH, SPEC_HEX)])
        second = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX)])
        for mr in (1, 2, 3):
            self.assertEqual(h.written(), b"AT+CMGS=65\r")
            h.answer(raw=b"\r\n> ")
            h.written()
            h.answer(b"+CMGS: %d" % mr)
            self.assertEqual(h.written(), b"")  # nothing before OK
            h.answer(b"OK")
        self.assertEqual(self.successResultOf(first), [1, 2])
        self.assertEqual(self.successResultOf(second), [3])

    def test_error_stops_the_batch_not_the_queue(self):
        h = Harness().initialise()
        first = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX), (SPEC_LENGTH, SPEC_HEX)])
        second = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX)])
        h.written()
        h.answer(raw=b"\r\n> ")
        h.written()
        h.answer(b"+CMS ERROR: 38")
        error = self.failureResultOf(first, CommandError).value
        self.assertEqual((error.kind, error.code, error.name), ("CMS", 38, "network out of order"))
        self.assertTrue(error.retryable)
        self.assertIn("+CMS ERROR: 38 (network out of order)", str(error))
        self.assertEqual(h.written(), b"AT+CMGS=65\r")  # the second batch, not part 2
        h.answer(raw=b"\r\n> ")
        h.written()
        h.answer(b"+CMGS: 9", b"OK")
        self.assertEqual(self.successResultOf(second), [9])

    def _error_for(self, line):
        h = Harness().initialise()
        d = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX)])
        h.written()
        h.answer(line)  # refused before the prompt
        self.assertEqual(h.written(), b"")
        return self.failureResultOf(d, CommandError).value

    def test_error_mapping(self):
        cases = [(b"+CMS ERROR: 330", "CMS", 330, "SMSC address unknown", False),
                 (b"+CMS ERROR: 500", "CMS", 500, "unknown error", True),
                 (b"+CMS ERROR: 999", "CMS", 999, "CMS error 999", False),
                 (b"+CME ERROR: 3", "CME", 3, "operation not allowed", False),
                 (b"+CME ERROR: SIM failure", "CME", None, "SIM failure", False),
                 (b"ERROR", None, None, "error", False)]
        for line, kind, code, name, retryable in cases:
            e = self._error_for(line)
            self.assertEqual((e.kind, e.code, e.name, e.retryable), (kind, code, name, retryable))
            self.assertEqual(e.command, "AT+CMGS=65")
        self.assertEqual(error_name("CME", 11), "SIM PIN required")

    def test_timeout_before_prompt_escapes_and_closes(self):
        h = Harness().initialise()
        d = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX)])
        h.written()
        h.clock.advance(4.9)
        self.assertNoResult(d)
        h.clock.advance(0.1)
        self.failureResultOf(d, CommandTimeout)
        self.assertEqual(h.written(), b"\x1b")
        self.assertTrue(h.transport.disconnecting)

    def test_network_wait_uses_send_timeout(self):
        h = Harness().initialise()
        d = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX)])
        h.clock.advance(4.0)
        h.answer(raw=b"\r\n> ")
        h.clock.advance(59.0)
        self.assertNoResult(d)
        h.clock.advance(1.0)
        self.assertIn("60s", str(self.failureResultOf(d, CommandTimeout).value))

    def test_unsolicited_codes_inside_a_send(self):
        reports = []
        h = Harness(on_report=reports.append).initialise()
        h.answer(b"OK")  # AT+CNMI
        d = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX)])
        h.written()
        h.answer(b"RING")  # before the prompt
        h.answer(raw=b"\r\n> ")
        self.assertEqual(h.written(), SPEC_HEX.encode() + b"\x1a")
        pdu, length = status_report_pdu(7, 0x00)
        h.answer(b'+CMTI: "SM",3', b"+CDS: %d" % length, pdu.hex().encode(), b"+CMGS: 8",
                 b"^RSSI:15", b"OK")
        self.assertEqual(self.successResultOf(d), [8])
        self.assertEqual(reports, [StatusReport(7, 0, "+447700900123")])
        self.assertEqual(reports[0].state, "delivered")
        self.assertEqual(h.unsolicited, ["RING", '+CMTI: "SM",3', "^RSSI:15"])

    def test_status_report_garbage(self):
        reports = []
        h = Harness(on_report=reports.append).initialise()
        h.answer(b"OK")  # AT+CNMI
        h.answer(b"+CDS: 25", b"ZZ")  # an unreadable PDU is logged, not raised
        h.answer(b"+CDS: 9", b"0200")
        pdu, length = status_report_pdu(12, 0x46)
        h.answer(b"+CDS: %d" % length, pdu[-length:].hex().encode())  # no SMSC field
        self.assertEqual(reports, [StatusReport(12, 0x46, "+447700900123")])
        self.assertEqual(reports[0].state, "failed")
        self.assertEqual(h.proto.state, "ready")

    def test_parse_status_report(self):
        with_smsc, length = status_report_pdu(200, 0x20, "4477009001234")
        self.assertEqual(parse_status_report(with_smsc, length),
                         StatusReport(200, 0x20, "+4477009001234"))
        self.assertEqual(parse_status_report(with_smsc[-length:]).state, "pending")
        for bad in (b"", bytes.fromhex("0100"), with_smsc[-length:-3]):
            with pytest.raises(ValueError):
                parse_status_report(bad)

    def test_connection_lost_fails_in_flight_and_queued(self):
        h = Harness().initialise()
        first = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX)])
        second = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX)])
        h.proto.connectionLost(Failure(ConnectionDone()))
        self.failureResultOf(first, ModemDown)
        self.failureResultOf(second, ModemDown)
        self.successResultOf(h.proto.closed)
        self.failureResultOf(h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX)]), ModemDown)

    def test_lost_while_initialising(self):
        h = Harness(pin="1234")
        h.proto.connectionLost(Failure(ConnectionDone()))
        self.failureResultOf(h.proto.ready, ModemDown)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_refuses_bad_pdus_and_sends_before_ready(self):
        h = Harness()
        self.failureResultOf(h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX)]), ModemDown)
        h.initialise()
        for bad in ([(SPEC_LENGTH, "0G")], [(SPEC_LENGTH, SPEC_HEX[:40])], [(2, "00")], [("1", "00")],
                    [None]):
            self.failureResultOf(h.proto.send_pdus(bad), InvalidPDU)
        self.assertEqual(h.written(), b"")

    def test_noise_is_ignored(self):
        h = Harness().initialise()
        h.proto.dataReceived(b"\r\nOK\r\n\r\nhello\r\n" + b"x" * 5000)
        self.assertEqual(h.proto.state, "ready")
        d = h.proto.send_pdus([(SPEC_LENGTH, SPEC_HEX)])
        self.assertEqual(h.written(), b"AT+CMGS=65\r")
        h.answer(raw=b"\r\n> ")
        h.answer(b"+CMGS: 1", b"OK")
        self.assertEqual(self.successResultOf(d), [1])


class SimLink:
    """Connects a protocol to a ModemSimulator in memory; ``pump()`` moves the bytes."""

    def __init__(self, proto, **options):
        self.proto = proto
        self.to_modem, self.to_gateway = bytearray(), bytearray()
        self.sim = ModemSimulator(self.to_gateway.extend, **options)
        self.transport = StringTransport()
        self.transport.loseConnection = self.lose
        proto.makeConnection(self.transport)

    def lose(self):
        if not self.transport.disconnecting:
            self.transport.disconnecting = True
            self.proto.connectionLost(Failure(ConnectionDone()))

    def pump(self):
        for _ in range(1000):
            out = self.transport.value()
            self.transport.clear()
            if out:
                self.sim.feed(out)
            elif self.to_gateway and not self.transport.disconnecting:
                data = bytes(self.to_gateway)
                self.to_gateway.clear()
                self.proto.dataReceived(data)
            else:
                return


class ServiceTests(SynchronousTestCase):

    def make(self, fail_opens=0, sim=None, **overrides):
        self.clock = task.Clock()
        self.links, self.opens = [], 0
        self.sim_options = sim or {}

        def opener(proto):
            self.opens += 1
            if self.opens <= fail_opens:
                raise OSError("could not open port %s" % (overrides.get("device"),))
            self.links.append(SimLink(proto, **self.sim_options))
        self.service = ModemService(config(**overrides), None, clock=self.clock, opener=opener,
                                    wait_timeout=30.0)
        self.service.startService()
        self.addCleanup(lambda: self.service.stopService() if self.service.running else None)
        return self.service

    def pump(self):
        for link in self.links:
            link.pump()

    def test_sends_the_spec_trigger(self):
        service = self.make()
        d = service.send_trigger(spec_trigger(), DESTINATION)
        self.pump()
        self.assertEqual(self.successResultOf(d), [1])
        sim = self.links[0].sim
        self.assertEqual(sim.commands[:5], ["ATZ", "ATE0", "AT+CMEE=1", "AT+CPIN?", "AT+CMGF=0"])
        self.assertEqual(sim.received[0].tpdu, SPEC_TPDU)
        self.assertEqual(sim.received[0].smsc, b"\x00")
        self.assertEqual(service.state, "ready")

    def test_submit_call_shape(self):
        service = self.make(sim={"first_reference": 41})
        message = spec_trigger()
        d = service.submit(DESTINATION, message.payloads, data_coding=message.data_coding)
        self.pump()
        self.assertEqual(self.successResultOf(d), ["41"])
        self.assertEqual(self.links[0].sim.received[0].tpdu, SPEC_TPDU)
        self.failureResultOf(service.submit(DESTINATION, [b"\x00" * 200]), InvalidPDU)

    def test_a_bootstrap_push_goes_as_concatenated_tpdus(self):
        """DM-4 through the modem: every part a TPDU the device reassembles; the MAC verifies."""
        from dmgateway.bootstrap import push_pdu, secure
        from dmgateway.client.bootstrap import open_push
        from dmgateway.notify.trigger import push_message
        from tests.bootstrap import vectors

        push = push_pdu(secure("dm", vectors.DM_DOC, "NETWPIN", imsi=vectors.IMSI))
        message = push_message(push, reference=0x5A)
        service = self.make(sim={"first_reference": 7})
        d = service.submit(DESTINATION, message.payloads, data_coding=message.data_coding)
        for _ in range(len(message.payloads)):
            self.pump()
        self.assertEqual(self.successResultOf(d), [str(7 + i) for i in range(len(message.payloads))])
        parts = [sms.parse_submit(r.tpdu).user_data for r in self.links[0].sim.received]
        self.assertEqual(len(parts), len(message.payloads))
        self.assertGreater(len(parts), 4)
        boot = open_push(parts, imsi=vectors.IMSI)
        self.assertEqual((boot.document, boot.mac), (vectors.DM_DOC, vectors.DM_NETWPIN_MAC))

    def test_reopens_with_backoff(self):
        service = self.make(fail_opens=2)
        d = service.send_trigger(spec_trigger(), DESTINATION)
        self.assertEqual((self.opens, service.state), (1, "waiting"))
        self.clock.advance(1.0)
        self.assertEqual(self.opens, 2)
        self.clock.advance(1.9)
        self.assertEqual(self.opens, 2)
        self.clock.advance(0.1)
        self.assertEqual(self.opens, 3)
        self.pump()
        self.assertEqual(self.successResultOf(d), [1])
        self.links[0].lose()  # the port goes away: reopened after the first delay again
        self.assertEqual(service.state, "waiting")
        self.clock.advance(1.0)
        self.assertEqual(self.opens, 4)
        self.pump()
        self.assertEqual(service.state, "ready")

    def test_init_failure_reopens(self):
        service = self.make(sim={"pin": "1234"})  # no PIN configured
        self.pump()
        self.assertEqual(service.state, "waiting")
        self.sim_options = {}
        self.clock.advance(1.0)
        self.pump()
        self.assertEqual(service.state, "ready")

    def test_pin_entered_over_the_simulator(self):
        service = self.make(pin="1234", sim={"pin": "1234"})
        d = service.send_trigger(spec_trigger(), DESTINATION)
        self.pump()
        self.assertEqual(self.successResultOf(d), [1])
        self.assertIn('AT+CPIN="1234"', self.links[0].sim.commands)

    def test_wrong_pin_stops_retrying(self):
        service = self.make(pin="9999", sim={"pin": "1234"})
        d = service.send_trigger(spec_trigger(), DESTINATION)
        self.pump()
        self.failureResultOf(d, PinRejected)
        self.clock.advance(600)
        self.assertEqual((self.opens, service.state), (1, "failed"))
        self.assertEqual(self.links[0].sim.commands.count('AT+CPIN="9999"'), 1)
        self.failureResultOf(service.send_pdus([(SPEC_LENGTH, SPEC_HEX)]), PinRejected)

    def test_waiting_send_times_out(self):
        service = self.make(fail_opens=100)
        d = service.send_trigger(spec_trigger(), DESTINATION)
        self.clock.advance(30)
        self.assertIn("not ready", str(self.failureResultOf(d, ModemDown).value))

    def test_stop_closes_the_port(self):
        service = self.make()
        self.pump()
        self.successResultOf(service.stopService())
        self.assertTrue(self.links[0].transport.disconnecting)
        self.assertEqual(service.state, "stopped")
        self.failureResultOf(service.send_pdus([(SPEC_LENGTH, SPEC_HEX)]), ModemDown)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class PtyTests(TestCase):
    """SerialPort + pyserial on the slave side of a pty, the simulator on the master side."""

    timeout = 20

    def setUp(self):
        self.modem = PtyModem(reactor)
        self.addCleanup(self.modem.close)
        self.clock = task.Clock()
        self.reports = []

    def start(self, **overrides):
        service = ModemService(config(device=self.modem.slave_path, command_timeout=30.0,
                                      **overrides),
                               reactor, clock=self.clock, on_report=self.reports.append)
        service.startService()
        self.addCleanup(lambda: service.stopService() if service.running else None)
        return service

    @defer.inlineCallbacks
    def settle(self, predicate, advance=0.0, turns=2000):
        for _ in range(turns):
            if predicate():
                return
            self.clock.advance(advance)
            yield task.deferLater(reactor, 0, lambda: None)
        self.fail("condition not reached")

    @defer.inlineCallbacks
    def test_trigger_over_a_pty(self):
        service = self.start(smsc="+447700000001")
        refs = yield service.send_trigger(spec_trigger(), DESTINATION, status_report=False)
        self.assertEqual(refs, [1])
        sim = self.modem.sim
        self.assertEqual(sim.commands, ["ATZ", "ATE0", "AT+CMEE=1", "AT+CPIN?", "AT+CMGF=0",
                                        'AT+CSCA="+447700000001",145', "AT+CNMI=2,1,0,1,0",
                                        "AT+CMGS=65"])
        self.assertEqual([(r.smsc, r.tpdu) for r in sim.received], [(b"\x00", SPEC_TPDU)])
        sim.emit("RING")
        sim.emit_status_report(1, 0x00)
        yield self.settle(lambda: self.reports)
        self.assertEqual(self.reports, [StatusReport(1, 0, "+447700900123")])
        yield service.stopService()

    @defer.inlineCallbacks
    def test_failure_on_second_part_with_pin(self):
        self.modem.sim.pin = "2468"
        self.modem.sim.unlocked = False
        self.modem.sim.fail = {2: 38}
        service = self.start(pin="2468")
        message = trigger.build_trigger(CREDENTIAL, "com.example.dms", 7, body=bytes(200),
                                        reference=0x55)
        with self.assertRaises(CommandError) as caught:
            yield service.send_trigger(message, DESTINATION)
        self.assertEqual(caught.exception.code, 38)
        [received] = self.modem.sim.received
        submit = sms.parse_submit(received.tpdu)
        self.assertEqual(submit.user_data, message.payloads[0])
        self.assertTrue(submit.status_report)  # the service has an on_report
        refs = yield service.send_trigger(message, DESTINATION)  # the modem is still usable
        self.assertEqual(refs, [2, 3])
        yield service.stopService()

    @defer.inlineCallbacks
    def test_port_closed_and_reopened(self):
        service = self.start()
        yield service.send_pdus([(SPEC_LENGTH, SPEC_HEX)])
        first = service._protocol
        first.transport.loseConnection()
        yield first.closed
        self.assertEqual(service.state, "waiting")
        self.clock.advance(service.reopen_initial)
        refs = yield service.send_pdus([(SPEC_LENGTH, SPEC_HEX)])
        self.assertEqual(refs, [2])
        self.assertEqual(self.modem.sim.commands.count("ATZ"), 2)
        yield service.stopService()
