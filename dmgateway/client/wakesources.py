"""Real wake-up sources for the device simulator, by kind, for ``dmgw sim fleet --wake``.

They play the network side of ``dmgw sim fleet --wake sms|sip``:

* :class:`~.smsc.SMSCWakeSource` (:mod:`.smsc`), a minimal SMPP 3.4 SMSC the gateway binds to
  (bind_transmitter/bind_transceiver with one system_id/password).  Each
  submit_sm is acked with a message id; WAP push segments are reassembled
  per destination and UDH reference; each whole push goes to
  ``on_notification(msisdn, wsp_push_bytes)``.  Transceivers that ask get a
  delivery receipt (deliver_sm).
* :class:`~.sipuas.SIPWakeSource` (:mod:`.sipuas`), a minimal SIP UAS on UDP and TCP: a MESSAGE gets
  200 OK (Via, From, To with our tag, Call-ID, CSeq echoed) and its body
  goes to ``on_notification(uri, package0)``; a retransmission (same
  branch) gets the same response and no second notification; other
  methods get 405 or 501.

Wake-ups that arrive before :meth:`listen` are kept; :meth:`start` listens
early so the gateway can connect first.  Garbage gets an error response,
generic_nack or 400, or is dropped (an impossible SMPP frame length drops
the connection); it never stops a source.  What both share is in
:mod:`.wakebase`.
"""

from twisted.internet import defer

from .sipuas import SIPWakeSource
from .smsc import BindRequest, SMSCWakeSource, SubmitRequest, parse_bind, parse_submit

__all__ = ["SMSCWakeSource", "SIPWakeSource", "smsc_from_args", "sip_from_args", "start_source",
           "WAKE_SOURCES", "parse_host_port",
           "parse_bind", "parse_submit", "BindRequest", "SubmitRequest"]


# -- from the command line ---------------------------------------------------------------


def smsc_from_args(reactor, devices, args):
    """The :class:`SMSCWakeSource` of ``--smsc-listen/--smsc-system-id/--smsc-password``."""
    if not getattr(args, "smsc_listen", None):
        raise ValueError("--wake sms needs --smsc-listen ENDPOINT")
    return SMSCWakeSource(reactor, args.smsc_listen, args.smsc_system_id or "",
                          args.smsc_password or "",
                          delivery_receipts=not getattr(args, "smsc_no_receipts", False))


def sip_from_args(reactor, devices, args):
    """The :class:`SIPWakeSource` of ``--sip-listen HOST:PORT``, knowing the devices' URIs."""
    text = getattr(args, "sip_listen", None)
    if not text:
        raise ValueError("--wake sip needs --sip-listen HOST:PORT")
    host, port = parse_host_port(text)
    return SIPWakeSource(reactor, host, port, known=[d.sip_uri for d in devices if d.sip_uri])


# kind -> factory(reactor, devices, options) of a wake source, for ``dmgw sim fleet --wake``
WAKE_SOURCES = {"sms": smsc_from_args, "sip": sip_from_args}


def start_source(reactor, source, bind_wait=0.0):
    """Start ``source``; an SMSC also waits up to ``bind_wait`` s for a bind.

    Fires with None, or a warning when nobody bound in time.
    """
    d = defer.maybeDeferred(source.start)
    if source.kind != "sms" or bind_wait <= 0:
        return d.addCallback(lambda _: None)

    def wait(_):
        bound = source.when_bound()
        bound.addTimeout(bind_wait, reactor)
        host, port = source.address
        return bound.addCallbacks(
            lambda _: None, lambda f: f.trap(defer.TimeoutError) and
            "no gateway bound to the SMSC on %s:%d within %gs" % (host, port, bind_wait))

    return d.addCallback(wait)


def parse_host_port(text):
    """``host:port`` / ``[v6]:port`` -> ``(host, port)``; ValueError when unusable."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("%r is not HOST:PORT" % (text,))
    return host, int(port)
