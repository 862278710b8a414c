"""Adapters that carry the outbox's wake-ups over the bearers.

The outbox (:mod:`dmgateway.outbox`) knows a bearer only as
``address(device) -> str | None`` and ``send(address, trigger, report)``:
it hands over what to send, and the bearer answers through ``report``
(``report.sent(message_ids)``, ``report.retry(reason)`` or
``report.refused(reason)``).  Delivery receipts go back the same way: the
outbox gives the bearer a callback through ``watch_deliveries``.  These
adapters give the SMPP router, the GSM modem and the SIP pusher that shape;
nothing here imports the outbox.
"""

from twisted.internet import defer

#: SMPP receipt states that end a message's life
FINAL_RECEIPT_STATES = {"delivered": True, "expired": False, "deleted": False, "undeliverable": False, "rejected": False}


class SmsBearer:
    """WAP Push over SMS through an SMPP router or a GSM modem (same ``submit`` shape)."""

    name = "sms"
    delivered_on_accept = False

    def __init__(self, sender, *, smpp=True):
        self.sender = sender  # set later when the sender needs our receipt callbacks to be built
        self.smpp = smpp
        self.delivered = None  # the outbox's receipt callback (watch_deliveries)

    def address(self, device):
        msisdn = getattr(device, "msisdn", None)
        if not msisdn:
            return None
        link_for = getattr(self.sender, "link_for", None)
        if link_for is not None and link_for(msisdn) is None:
            return None
        return msisdn

    def send(self, address, trigger, report):
        options = {"data_coding": trigger.data_coding}
        if self.smpp:
            options["esm_class"] = trigger.esm_class
        d = defer.maybeDeferred(self.sender.submit, address, list(trigger.payloads), **options)
        return d.addCallbacks(report.sent, _report_failure, errbackArgs=(report,))

    def watch_deliveries(self, delivered):
        """Send our delivery receipts to ``delivered(message_id, delivered, error)``."""
        self.delivered = delivered

    def smpp_receipt(self, message_id, state, error):
        """``on_receipt`` of the SMPP links: final states are reported."""
        if state in FINAL_RECEIPT_STATES and self.delivered is not None:
            self.delivered(message_id, FINAL_RECEIPT_STATES[state], error)

    def modem_report(self, report):
        """``on_report`` of the GSM modem: +CDS status reports by message reference."""
        if report.state == "pending" or self.delivered is None:
            return
        delivered = report.state == "delivered"
        self.delivered(str(report.reference), delivered, None if delivered else "status %d" % (report.status,))


def _report_failure(failure, report):
    """Bearer errors carry ``retryable``; anything else is taken as temporary."""
    error = failure.value
    text = str(error) or type(error).__name__
    if getattr(error, "retryable", True):
        report.retry(text)
    else:
        report.refused(text)


class SipBearer:
    """SIP Push (a MESSAGE with the raw package #0); a 2xx means delivered."""

    name = "sip"
    delivered_on_accept = True

    def __init__(self, pusher):
        self.pusher = pusher

    def address(self, device):
        return getattr(device, "sip_uri", None) or None

    def send(self, address, trigger, report):
        d = self.pusher.push(address, trigger.package0)
        return d.addCallback(self._result, report)

    @staticmethod
    def _result(result, report):
        if result.delivered:
            report.sent([result.call_id] if result.call_id else [])
            return
        error = result.error or "failed"
        # the device may come back: unreachable, busy, timeouts, server trouble
        if result.code is None or result.code in (408, 480, 486, 500, 503, 504, 600, 603):
            report.retry(error)
        else:
            report.refused(error)
