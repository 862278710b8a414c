"""Adapters from the notification outbox to the bearers that carry wake-ups.

The outbox (:mod:`dmgateway.notifier`) knows bearers only as
``address(device)`` and ``send(address, trigger) -> Deferred[message ids]``
failing with :class:`~dmgateway.notifier.TemporaryFailure` or
:class:`~dmgateway.notifier.PermanentFailure`.  These adapters give the
SMPP router, the GSM modem and the SIP pusher that shape, and turn their
delivery reports into outbox calls.
"""

from twisted.internet import defer
from twisted.logger import Logger

from dmgateway.notifier import PermanentFailure, TemporaryFailure

log = Logger(namespace="dmgateway.notify")

#: SMPP receipt states that end a message's life
FINAL_RECEIPT_STATES = {"delivered": True, "expired": False, "deleted": False, "undeliverable": False, "rejected": False}


class SmsBearer:
    """WAP Push over SMS through an SMPP router or a GSM modem (same ``submit`` shape)."""

    name = "sms"
    delivered_on_accept = False

    def __init__(self, sender, *, smpp=True):
        self.sender = sender
        self.smpp = smpp

    def address(self, device):
        msisdn = getattr(device, "msisdn", None)
        if not msisdn:
            return None
        link_for = getattr(self.sender, "link_for", None)
        if link_for is not None and link_for(msisdn) is None:
            return None
        return msisdn

    def send(self, address, trigger):
        options = {"data_coding": trigger.data_coding}
        if self.smpp:
            options["esm_class"] = trigger.esm_class
        d = defer.maybeDeferred(self.sender.submit, address, list(trigger.payloads), **options)
        return d.addErrback(_classify)


def _classify(failure):
    """Bearer errors carry ``retryable``; anything else is taken as temporary."""
    error = failure.value
    if isinstance(error, (TemporaryFailure, PermanentFailure)):
        return failure
    text = str(error) or type(error).__name__
    if getattr(error, "retryable", True):
        raise TemporaryFailure(text)
    raise PermanentFailure(text)


class SipBearer:
    """SIP Push (a MESSAGE with the raw package #0); a 2xx means delivered."""

    name = "sip"
    delivered_on_accept = True

    def __init__(self, pusher):
        self.pusher = pusher

    def address(self, device):
        return getattr(device, "sip_uri", None) or None

    def send(self, address, trigger):
        d = self.pusher.push(address, trigger.package0)
        return d.addCallback(self._result)

    @staticmethod
    def _result(result):
        if result.delivered:
            return [result.call_id] if result.call_id else []
        error = result.error or "failed"
        # the device may come back: unreachable, busy, timeouts, server trouble
        if result.code is None or result.code in (408, 480, 486, 500, 503, 504, 600, 603):
            raise TemporaryFailure(error)
        raise PermanentFailure(error)


def smpp_receipt_handler(outbox):
    """``on_receipt`` for SMPP links: final states update the notification."""

    def on_receipt(message_id, state, error):
        if state not in FINAL_RECEIPT_STATES:
            return
        d = defer.ensureDeferred(outbox.delivery_report("sms", message_id, FINAL_RECEIPT_STATES[state], error))
        d.addErrback(lambda f: log.failure("delivery receipt handling failed", f))

    return on_receipt


def modem_report_handler(outbox):
    """``on_report`` for the GSM modem: +CDS status reports by message reference."""

    def on_report(report):
        if report.state == "pending":
            return
        delivered = report.state == "delivered"
        d = defer.ensureDeferred(
            outbox.delivery_report("sms", str(report.reference), delivered, None if delivered else "status %d" % (report.status,))
        )
        d.addErrback(lambda f: log.failure("status report handling failed", f))

    return on_report
