"""The simulator's SIP UAS: MESSAGE requests on UDP and TCP as wake-ups.

:class:`SIPWakeSource` answers a MESSAGE with 200 OK (Via, From, To with our
tag, Call-ID, CSeq echoed) and hands its body to
``on_notification(uri, package0)``; a retransmission (same branch) gets the
same response and no second notification; other methods get 405 or 501.
A malformed message gets 400 or is dropped; it never stops the source.
"""

import random as _random
from collections import OrderedDict

from twisted.internet import defer, protocol
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from zope.interface import implementer

from ..bearers import sipmsg as M
from .iwake import IWakeSource
from .wakebase import WakeSourceBase

__all__ = ["SIPWakeSource", "KNOWN_METHODS"]

log = Logger(namespace="dmgateway.sim.wake")


#: methods a UA knows but we do not take (405); anything else gets 501
KNOWN_METHODS = frozenset({"INVITE", "BYE", "CANCEL", "OPTIONS", "REGISTER", "SUBSCRIBE",
                           "NOTIFY", "INFO", "UPDATE", "PRACK", "REFER", "PUBLISH"})
#: how long a final response is kept for retransmissions (Timer J, 64*T1)
TRANSACTION_LIFETIME = 32.0
MAX_TRANSACTIONS = 10000

_REASONS = {200: "OK", 400: "Bad Request", 405: "Method Not Allowed", 501: "Not Implemented"}


def _first_via_split(value):
    """``(first via, rest)`` of a Via header value holding one or more vias."""
    quoted = False
    for i, char in enumerate(value):
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            return value[:i].strip(), value[i:]
    return value.strip(), ""


def _response_via(value, peer_host, peer_port, params):
    """The top Via of the response: ``received`` and ``rport`` filled in (RFC 3261 §18.2.1, RFC 3581)."""
    first, rest = _first_via_split(value)
    head, _, _ = first.partition(";")
    kept = []
    for name, param in params.items():
        if name in ("received", "rport"):
            continue
        kept.append(name if param is None else "%s=%s" % (name, param))
    sent_host = head.split()[-1].rsplit(":", 1)[0].strip("[]") if head.split() else ""
    if sent_host != peer_host:
        kept.append("received=%s" % (peer_host,))
    if "rport" in params:
        kept.append("rport=%d" % (peer_port,))
    return ";".join([head] + kept) + rest


def _uri_of(value):
    try:
        uri, _ = M.parse_name_addr(value or "")
    except M.SIPError:
        return ""
    return uri


@implementer(IWakeSource)
class SIPWakeSource(WakeSourceBase):
    """A minimal SIP UAS on UDP and TCP that takes MESSAGE requests as wake-ups.

    ``host``/``port``: where to listen (port 0: a free one, the same number
    for TCP).  ``known``: destinations (SIP URIs) of the fleet; a
    notification is addressed to the Request-URI, or to the To URI when
    only that is known.  ``random`` provides ``getrandbits`` for To tags.
    """

    kind = "sip"

    def __init__(self, reactor, host="127.0.0.1", port=5060, *, transports=("udp", "tcp"),
                 known=(), clock=None, random=None):
        super().__init__()
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.host = host
        self.requested_port = port
        self.transports = tuple(transports)
        self.known = {u.strip().lower() for u in known if u}
        self.random = random if random is not None else _random.SystemRandom()
        self.ports = []
        self.port = None  # the port number listened on
        self._started = False
        self._transactions = OrderedDict()  # key -> (time, response bytes)
        self._streams = set()

    def start(self):
        """Listen; fires with the port number.

        With port 0, UDP picks a free port and TCP takes the same number
        (tried again on a few ports should that one be taken for TCP).
        """
        if self._started:
            return defer.succeed(self.port)
        for attempt in range(1 if self.requested_port else 20):
            try:
                self.port = self._listen(self.requested_port)
            except CannotListenError:
                ports, self.ports = self.ports, []
                for p in ports:
                    p.stopListening()
                if self.requested_port or attempt == 19:
                    return defer.fail()
                continue
            break
        self._started = True
        log.info("SIP wake-up endpoint listening on {host}:{port} ({transports})",
                 host=self.host, port=self.port, transports="/".join(self.transports))
        return defer.succeed(self.port)

    def _listen(self, port):
        if "udp" in self.transports:
            udp = self.reactor.listenUDP(port, _SIPDatagram(self), interface=self.host)
            self.ports.append(udp)
            port = udp.getHost().port
        if "tcp" in self.transports:
            factory = protocol.Factory.forProtocol(lambda: _SIPStream(self))
            factory.noisy = False
            tcp = self.reactor.listenTCP(port, factory, interface=self.host)
            self.ports.append(tcp)
            port = tcp.getHost().port
        return port

    @property
    def address(self):
        return self.host, self.port

    def stop(self):
        """Stop listening and close TCP connections; fires when all is closed."""
        ports, self.ports = self.ports, []
        return self._close(ports, self._streams)

    # -- requests

    def _key(self, request, via_params, sent_by):
        branch = via_params.get("branch") or ""
        method = "INVITE" if request.method == "ACK" else request.method
        if branch.startswith(M.MAGIC_COOKIE):
            return (branch, sent_by.lower(), method)
        # RFC 2543 peers: the request's identifying headers
        return (request.uri, request.header("From", ""), request.header("Call-ID", ""),
                request.header("CSeq", ""), request.header("Via", ""))

    def _prune(self, now):
        while self._transactions:
            key, (seen, _) = next(iter(self._transactions.items()))
            if seen >= now - TRANSACTION_LIFETIME and len(self._transactions) <= MAX_TRANSACTIONS:
                break
            del self._transactions[key]

    def _received(self, message, peer, send):
        """One parsed message from ``peer`` (host, port); ``send(bytes, (host, port))`` replies."""
        if isinstance(message, M.Response):
            return  # we send no requests
        self._count("requests")
        vias = message.headers_named("Via")
        if not vias:
            self._count("dropped")
            return  # nowhere to answer
        try:
            _, sent_by, params = M.parse_via(vias[0])
        except M.SIPError:
            self._count("dropped")
            return
        now = self.clock.seconds()
        self._prune(now)
        key = self._key(message, params, sent_by)
        cached = self._transactions.get(key)
        if cached is not None:
            self._count("retransmissions")
            if message.method != "ACK":
                send(cached[1], self._reply_address(peer, sent_by, params))
            return
        if message.method == "ACK":
            return
        code, deliver = self._decide(message)
        response = self._response(message, code, peer, params)
        self._transactions[key] = (now, response)
        send(response, self._reply_address(peer, sent_by, params))
        if deliver:
            self._deliver(self._destination(message), message.body)

    def _decide(self, request):
        """``(status code, deliver?)`` for a new request."""
        try:
            for name in ("From", "To", "Call-ID", "CSeq"):
                if not request.header(name):
                    raise M.SIPError("no %s" % (name,))
            _, method = M.parse_cseq(request.header("CSeq"))
            if method != request.method:
                raise M.SIPError("CSeq method %s on a %s" % (method, request.method))
        except M.SIPError as error:
            self._count("bad_requests")
            log.info("SIP: 400 for a {method}: {error}", method=request.method, error=str(error))
            return 400, False
        if request.method == "MESSAGE":
            return 200, True
        self._count("refused")
        return (405 if request.method in KNOWN_METHODS else 501), False

    def _response(self, request, code, peer, via_params):
        headers = []
        for i, value in enumerate(request.headers_named("Via")):
            headers.append(("Via", _response_via(value, peer[0], peer[1], via_params)
                            if i == 0 else value))
        to = request.header("To", "")
        if to:
            try:
                _, to_params = M.parse_name_addr(to)
            except M.SIPError:
                to_params = {}
            if "tag" not in to_params:
                to = "%s;tag=%s" % (to, M.new_tag(self.random))
        for name, value in (("From", request.header("From")), ("To", to),
                            ("Call-ID", request.header("Call-ID")),
                            ("CSeq", request.header("CSeq"))):
            if value:
                headers.append((name, value))
        if code in (405, 501):
            headers.append(("Allow", "MESSAGE"))
        headers.append(("Server", "dmgw-sim"))
        try:
            return M.encode(M.Response(code, _REASONS[code], headers))
        except M.SIPError:  # a header we echo cannot be sent back: answer bare
            return M.encode(M.Response(400, _REASONS[400], headers[:1]))

    @staticmethod
    def _reply_address(peer, sent_by, params):
        """Where a UDP response goes: the source with rport, else the sent-by port (RFC 3581)."""
        if "rport" in params:
            return peer
        host_port = sent_by.rsplit(":", 1)
        if len(host_port) == 2 and host_port[1].isdigit() and not sent_by.endswith("]"):
            return peer[0], int(host_port[1])
        return peer[0], 5060

    def _destination(self, request):
        candidates = [request.uri, _uri_of(request.header("To"))]
        if self.known:
            for uri in candidates:
                for form in (uri, uri.split(";")[0]):
                    if form.strip().lower() in self.known:
                        return form
        return request.uri


class _SIPDatagram(protocol.DatagramProtocol):
    noisy = False

    def __init__(self, source):
        self.source = source

    def datagramReceived(self, data, addr):
        if not data.strip(b"\r\n"):
            return  # keep-alive
        try:
            message = M.parse(data)
        except M.SIPError as error:
            self.source._count("dropped")
            log.info("SIP: dropped a malformed datagram from {peer}: {error}", peer=addr,
                     error=str(error))
            return
        self.source._received(message, addr[:2], self._send)

    def _send(self, data, addr):
        try:
            self.transport.write(data, addr)
        except OSError as error:
            log.warn("SIP: response to {peer} not sent: {error}", peer=addr, error=str(error))


class _SIPStream(protocol.Protocol):
    def __init__(self, source):
        self.source = source
        self.framer = M.SIPFramer()
        self.lost = []

    def connectionMade(self):
        self.source._streams.add(self)

    def connectionLost(self, reason=protocol.connectionDone):
        self.source._streams.discard(self)
        waiting, self.lost = self.lost, []
        for d in waiting:
            d.callback(None)

    def dataReceived(self, data):
        try:
            messages = self.framer.feed(data)
        except M.SIPError as error:
            self.source._count("dropped")
            log.info("SIP: dropping a TCP connection: {error}", error=str(error))
            self.transport.loseConnection()
            return
        peer = self.transport.getPeer()
        for message in messages:
            self.source._received(message, (peer.host, peer.port),
                                  lambda data, _addr: self.transport.write(data))
