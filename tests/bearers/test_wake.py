"""The wake-up adapters answer through the report the outbox hands them, and
send receipts to the callback it gives them; they never import the outbox."""

from types import SimpleNamespace

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from dmgateway.bearers.modem_at import StatusReport
from dmgateway.bearers.sip import PushResult
from dmgateway.bearers.wake import SipBearer, SmsBearer

TRIGGER = SimpleNamespace(payloads=[b"part1", b"part2"], data_coding=4, esm_class=0x40, package0=b"pkg0")


class Report:
    def __init__(self):
        self.answers = []

    def sent(self, message_ids=()):
        self.answers.append(("sent", list(message_ids)))

    def retry(self, reason):
        self.answers.append(("retry", reason))

    def refused(self, reason):
        self.answers.append(("refused", reason))


class SmscError(Exception):
    def __init__(self, text, retryable):
        super().__init__(text)
        self.retryable = retryable


class Sender:
    def __init__(self, result):
        self.result = result
        self.calls = []

    def submit(self, address, payloads, **options):
        self.calls.append((address, payloads, options))
        return self.result


class SmsBearerTests(SynchronousTestCase):
    def send(self, result, smpp=True):
        sender = Sender(result)
        report = Report()
        SmsBearer(sender, smpp=smpp).send("+447700900001", TRIGGER, report)
        return sender, report.answers

    def test_accepted_parts_are_sent_with_their_ids(self):
        sender, answers = self.send(defer.succeed(["m1", "m2"]))
        self.assertEqual(answers, [("sent", ["m1", "m2"])])
        self.assertEqual(sender.calls, [("+447700900001", [b"part1", b"part2"],
                                         {"data_coding": 4, "esm_class": 0x40})])

    def test_a_modem_gets_no_esm_class(self):
        sender, _answers = self.send(defer.succeed(["7"]), smpp=False)
        self.assertEqual(sender.calls[0][2], {"data_coding": 4})

    def test_errors_say_whether_to_retry(self):
        self.assertEqual(self.send(defer.fail(SmscError("ESME_RTHROTTLED", True)))[1], [("retry", "ESME_RTHROTTLED")])
        self.assertEqual(self.send(defer.fail(SmscError("ESME_RINVDSTADR", False)))[1],
                         [("refused", "ESME_RINVDSTADR")])
        self.assertEqual(self.send(defer.fail(RuntimeError()))[1], [("retry", "RuntimeError")])

    def test_address_needs_an_msisdn_a_link_routes(self):
        router = SimpleNamespace(link_for=lambda msisdn: None if msisdn.startswith("+1") else "link")
        bearer = SmsBearer(router)
        self.assertEqual(bearer.address(SimpleNamespace(msisdn="+447700900001")), "+447700900001")
        self.assertIsNone(bearer.address(SimpleNamespace(msisdn="+15550100")))
        self.assertIsNone(bearer.address(SimpleNamespace(msisdn=None)))

    def test_final_receipts_go_to_the_watcher(self):
        bearer = SmsBearer(Sender(None))
        bearer.smpp_receipt("m0", "delivered", None)  # nobody watches yet: dropped
        seen = []
        bearer.watch_deliveries(lambda *args: seen.append(args))
        bearer.smpp_receipt("m1", "delivered", None)
        bearer.smpp_receipt("m2", "enroute", None)
        bearer.smpp_receipt("m3", "undeliverable", "err:001")
        bearer.modem_report(StatusReport(reference=5, status=0x00))
        bearer.modem_report(StatusReport(reference=6, status=0x21))
        bearer.modem_report(StatusReport(reference=7, status=0x46))
        self.assertEqual(seen, [("m1", True, None), ("m3", False, "err:001"), ("5", True, None),
                                ("7", False, "status 70")])


class SipBearerTests(SynchronousTestCase):
    def send(self, result):
        report = Report()
        pusher = SimpleNamespace(push=lambda address, package0: defer.succeed(result))
        SipBearer(pusher).send("sip:dev@example.net", TRIGGER, report)
        return report.answers

    def test_a_2xx_is_a_delivery(self):
        self.assertEqual(self.send(PushResult(True, code=200, call_id="c1")), [("sent", ["c1"])])
        self.assertEqual(self.send(PushResult(True, code=202)), [("sent", [])])

    def test_a_device_that_may_come_back_is_retried_others_refused(self):
        self.assertEqual(self.send(PushResult(False, "480 Temporarily Unavailable", 480)),
                         [("retry", "480 Temporarily Unavailable")])
        self.assertEqual(self.send(PushResult(False, "timeout")), [("retry", "timeout")])
        self.assertEqual(self.send(PushResult(False, "404 Not Found", 404)), [("refused", "404 Not Found")])
