"""Real wake-up sources for the device simulator: a tiny SMSC and a SIP UAS.

They play the network side of ``dmgw sim fleet --wake sms|sip``:

* :class:`SMSCWakeSource`, a minimal SMPP 3.4 SMSC the gateway binds to
  (bind_transmitter/bind_transceiver with one system_id/password).  Each
  submit_sm is acked with a message id; WAP push segments are reassembled
  per destination and UDH reference; each whole push goes to
  ``on_notification(msisdn, wsp_push_bytes)``.  Transceivers that ask get a
  delivery receipt (deliver_sm).
* :class:`SIPWakeSource`, a minimal SIP UAS on UDP and TCP: a MESSAGE gets
  200 OK (Via, From, To with our tag, Call-ID, CSeq echoed) and its body
  goes to ``on_notification(uri, package0)``; a retransmission (same
  branch) gets the same response and no second notification; other
  methods get 405 or 501.

Wake-ups that arrive before :meth:`listen` are kept; :meth:`start` listens
early so the gateway can connect first.  Garbage gets an error response,
generic_nack or 400, or is dropped (an impossible SMPP frame length drops
the connection); it never stops a source.
"""

import hmac
import random as _random
import struct
from collections import OrderedDict, namedtuple

from twisted.internet import defer, endpoints, protocol
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from zope.interface import implementer

from ..bearers import sipmsg as M
from ..bearers import smpp_pdu as P
from ..notify import sms
from ..notify.package0 import NotificationError
from .iwake import IWakeSource

__all__ = ["SMSCWakeSource", "SIPWakeSource", "smsc_from_args", "sip_from_args", "start_source",
           "WAKE_SOURCES",
           "parse_bind", "parse_submit", "BindRequest", "SubmitRequest"]

log = Logger(namespace="dmgateway.sim.wake")

#: wake-ups kept while nobody listens (the oldest go first)
MAX_PENDING = 10000

BIND_RECEIVER = 0x00000001
SUBMIT_SM_RESP = 0x80000004
ESME_RALYBND = 0x05
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
TAG_MESSAGE_PAYLOAD = 0x0424
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_MESSAGE_STATE = 0x0427
MESSAGE_STATE_DELIVERED = 2


class _Base:
    """Listener bookkeeping shared by both sources."""

    def __init__(self):
        self._listener = None
        self.pending = []
        self.counters = {}

    def _count(self, name, n=1):
        self.counters[name] = self.counters.get(name, 0) + n

    def listen(self, on_notification):
        """Deliver wake-ups to ``on_notification(destination, data)`` (and start if needed)."""
        self._listener = on_notification
        pending, self.pending = self.pending, []
        for destination, data in pending:
            self._call(destination, data)
        if not self._started:
            self.start().addErrback(
                lambda f: log.failure("wake source {kind} cannot listen", f, kind=self.kind))

    def _deliver(self, destination, data):
        self._count("notifications")
        if self._listener is None:
            if len(self.pending) >= MAX_PENDING:
                del self.pending[0]
            self.pending.append((destination, data))
        else:
            self._call(destination, data)

    def _close(self, ports, connections):
        """Stop listening on ``ports`` and close ``connections``; fires when all is done."""
        self._listener = None
        self._started = False
        waits = [defer.maybeDeferred(p.stopListening) for p in ports]
        for connection in list(connections):
            d = defer.Deferred()
            connection.lost.append(d)
            waits.append(d)
            connection.transport.loseConnection()
        return defer.DeferredList(waits).addCallback(lambda _: None)

    def _call(self, destination, data):
        try:
            self._listener(destination, data)
        except Exception:  # noqa: BLE001 - the runner's trouble must not kill the bearer
            log.failure("wake-up for {destination} not handled", destination=destination)


# -- SMPP: reading what the gateway sends -------------------------------------------


class _Reader:
    """Fields of an SMPP PDU body, raising :class:`PDUError` at the first bad one."""

    def __init__(self, data, header):
        self.data = data
        self.pos = P.MIN_LENGTH
        self.header = header

    def fail(self, what, status=P.ESME_RSYSERR):
        raise P.PDUError("%s: %s at offset %d" % (self.header.command_name, what, self.pos),
                         status, self.header.sequence, self.header.command_id)

    def octet(self, what):
        if self.pos >= len(self.data):
            self.fail("%s missing" % (what,), P.ESME_RINVCMDLEN)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def cstring(self, what, limit=256):
        end = self.data.find(b"\0", self.pos, self.pos + limit)
        if end < 0:
            self.fail("%s is not a NUL-terminated string" % (what,), P.ESME_RINVCMDLEN)
        value = self.data[self.pos:end]
        self.pos = end + 1
        return value.decode("latin-1")

    def octets(self, count, what, status=P.ESME_RINVCMDLEN):
        if self.pos + count > len(self.data):
            self.fail("%s runs past the end" % (what,), status)
        value = self.data[self.pos:self.pos + count]
        self.pos += count
        return value

    def tlvs(self):
        found = {}
        while self.pos < len(self.data):
            if self.pos + 4 > len(self.data):
                self.fail("truncated TLV", P.ESME_RINVCMDLEN)
            tag, length = struct.unpack_from("!HH", self.data, self.pos)
            self.pos += 4
            found.setdefault(tag, self.octets(length, "TLV 0x%04x" % (tag,)))
        return found


#: what a bind_* asks for
BindRequest = namedtuple("BindRequest", "system_id password system_type interface_version")


class SubmitRequest(namedtuple("SubmitRequest", "source_addr destination_addr esm_class "
                               "data_coding registered_delivery message")):
    """The fields of a submit_sm the simulator uses (``message`` is the user data)."""

    __slots__ = ()

    @property
    def udhi(self):
        return bool(self.esm_class & P.ESM_CLASS_UDHI)


def parse_bind(data):
    """A whole bind_* PDU -> :class:`BindRequest`; raises only :class:`PDUError`."""
    r = _Reader(data, P.read_header(data))
    system_id = r.cstring("system_id", 16)
    password = r.cstring("password", 9)
    system_type = r.cstring("system_type", 13)
    version = r.octet("interface_version")
    r.octets(2, "addr_ton, addr_npi")
    r.cstring("address_range", 41)
    return BindRequest(system_id, password, system_type, version)


def parse_submit(data):
    """A whole submit_sm PDU -> :class:`SubmitRequest`; raises only :class:`PDUError`.

    The user data is ``short_message``, or the ``message_payload`` TLV when
    short_message is empty.
    """
    r = _Reader(data, P.read_header(data))
    r.cstring("service_type", 6)
    r.octets(2, "source_addr_ton, source_addr_npi")
    source = r.cstring("source_addr", 21)
    r.octets(2, "dest_addr_ton, dest_addr_npi")
    destination = r.cstring("destination_addr", 21)
    esm_class, _, _ = r.octets(3, "esm_class, protocol_id, priority_flag")
    r.cstring("schedule_delivery_time", 17)
    r.cstring("validity_period", 17)
    registered, _, coding, _, length = r.octets(5, "registered_delivery .. sm_length")
    message = r.octets(length, "short_message", P.ESME_RINVMSGLEN)
    tlvs = r.tlvs()
    if not message and TAG_MESSAGE_PAYLOAD in tlvs:
        message = tlvs[TAG_MESSAGE_PAYLOAD]
    if not destination:
        r.fail("empty destination_addr", 0x0B)  # ESME_RINVDSTADR
    return SubmitRequest(source, destination, esm_class, coding, registered, message)


def _pdu(command_id, status, sequence, body=b""):
    return P.HEADER.pack(P.MIN_LENGTH + len(body), command_id, status, sequence) + body


def _cstring(text):
    return text.encode("latin-1", "replace") + b"\0"


def delivery_receipt(sequence, message_id, submit, now_text="0001010000"):
    """A deliver_sm carrying the receipt of ``submit`` (text and TLVs, stat DELIVRD)."""
    text = ("id:%s sub:001 dlvrd:001 submit date:%s done date:%s stat:DELIVRD err:000 text:"
            % (message_id, now_text, now_text)).encode("ascii")
    body = b"".join([
        _cstring(""),  # service_type
        bytes([1, 1]), _cstring(submit.destination_addr),  # from the handset
        bytes([1, 1]), _cstring(submit.source_addr),  # to the gateway's address
        bytes([P.ESM_CLASS_RECEIPT, 0, 0]),  # esm_class, protocol_id, priority
        _cstring(""), _cstring(""),  # schedule_delivery_time, validity_period
        bytes([0, 0, 0, 0, len(text)]), text,
        struct.pack("!HH", TAG_RECEIPTED_MESSAGE_ID, len(message_id) + 1), _cstring(message_id),
        struct.pack("!HHB", TAG_MESSAGE_STATE, 1, MESSAGE_STATE_DELIVERED),
    ])
    return _pdu(P.DELIVER_SM, P.ESME_ROK, sequence, body)


# -- SMPP: the SMSC ---------------------------------------------------------------------


class _SMSCProtocol(protocol.Protocol):
    """One ESME connection to the simulated SMSC."""

    def __init__(self, source):
        self.source = source
        self.bound = None  # "transmitter" | "transceiver" once bound
        self._buffer = bytearray()
        self._sequence = 0
        self._closed = False
        self.lost = []  # Deferreds fired by connectionLost

    def connectionMade(self):
        self.source._connections.add(self)
        self.source._count("connections")

    def connectionLost(self, reason=protocol.connectionDone):
        self._closed = True
        self.source._connections.discard(self)
        waiting, self.lost = self.lost, []
        for d in waiting:
            d.callback(None)

    def _write(self, data):
        if not self._closed:
            self.transport.write(data)

    def _drop(self):
        self._buffer.clear()
        self._closed = True
        self.transport.loseConnection()

    def dataReceived(self, data):
        self._buffer += data
        while not self._closed:
            try:
                raw = P.take_frame(self._buffer)
            except P.FramingError as e:
                log.warn("SMSC: command_length {length} from the ESME, dropping it", length=e.length)
                self.source._count("bad_pdus")
                self._write(P.generic_nack(e.sequence, P.ESME_RINVCMDLEN))
                self._drop()
                return
            if raw is None:
                return
            try:
                self._frame(raw)
            except P.PDUError as error:
                self.source._count("bad_pdus")
                log.warn("SMSC: bad {command}: {error}", command=P.command_name(
                    error.command_id or 0), error=str(error))
                self._write(P.response_for(error.command_id or 0, error.sequence, error.status))
            except Exception:  # noqa: BLE001 - never crash on input
                self.source._count("bad_pdus")
                log.failure("SMSC: PDU not handled")
                header = P.read_header(raw)
                self._write(P.generic_nack(header.sequence, P.ESME_RSYSERR))

    def _frame(self, raw):
        header = P.read_header(raw)
        command, seq = header.command_id, header.sequence
        if header.is_response:
            return  # deliver_sm_resp, enquire_link_resp, generic_nack: nothing to do
        if not P.is_known_command(command):
            raise P.PDUError("unknown command_id", P.ESME_RINVCMDID, seq, command)
        if command in (P.BIND_TRANSMITTER, P.BIND_TRANSCEIVER, BIND_RECEIVER):
            self._bind(raw, header)
        elif command == P.ENQUIRE_LINK:
            self._write(_pdu(P.ENQUIRE_LINK | P.RESPONSE, P.ESME_ROK, seq))
        elif command == P.UNBIND:
            self._write(_pdu(P.UNBIND | P.RESPONSE, P.ESME_ROK, seq))
            self.bound = None
            self._closed = True
            self.transport.loseConnection()
        elif command == P.SUBMIT_SM:
            if self.bound is None:
                raise P.PDUError("submit_sm before bind", P.ESME_RINVBNDSTS, seq, command)
            self._submit(raw, header)
        else:
            raise P.PDUError("not supported by the simulator", P.ESME_RINVCMDID, seq, command)

    def _bind(self, raw, header):
        source, seq = self.source, header.sequence
        resp = header.command_id | P.RESPONSE
        if header.command_id == BIND_RECEIVER:
            self._write(_pdu(resp, ESME_RBINDFAIL, seq))
            return
        if self.bound is not None:
            self._write(_pdu(resp, ESME_RALYBND, seq))
            return
        bind = parse_bind(raw)
        id_ok = hmac.compare_digest(bind.system_id.encode("latin-1"), source.system_id)
        password_ok = hmac.compare_digest(bind.password.encode("latin-1"), source.password)
        if not (id_ok and password_ok):
            source._count("bind_failures")
            log.warn("SMSC: bind refused for system_id {system_id}", system_id=bind.system_id)
            self._write(_pdu(resp, ESME_RINVSYSID if not id_ok else ESME_RINVPASWD, seq))
            return
        self.bound = "transmitter" if header.command_id == P.BIND_TRANSMITTER else "transceiver"
        source._count("binds")
        log.info("SMSC: {system_id} bound as {mode}", system_id=bind.system_id, mode=self.bound)
        self._write(_pdu(resp, P.ESME_ROK, seq, _cstring(source.smsc_id)))
        waiting, source._bound = source._bound, []
        for d in waiting:
            d.callback(self)

    def _submit(self, raw, header):
        source = self.source
        submit = parse_submit(raw)
        message_id = source._next_message_id()
        source._count("submits")
        self._write(_pdu(SUBMIT_SM_RESP, P.ESME_ROK, header.sequence, _cstring(message_id)))
        if (submit.registered_delivery & 0x03 and self.bound == "transceiver"
                and source.delivery_receipts):
            self._sequence = self._sequence % 0x7FFFFFFF + 1
            self._write(delivery_receipt(self._sequence, message_id, submit))
            source._count("receipts")
        source._user_data(submit)


@implementer(IWakeSource)
class SMSCWakeSource(_Base):
    """A minimal SMPP 3.4 SMSC the gateway binds to; each whole WAP push is a wake-up.

    ``endpoint`` is a Twisted server endpoint string (``tcp:2775:interface=127.0.0.1``);
    ``system_id``/``password`` are what the gateway must bind with.  Parts
    of a concatenated push not completed within ``reassembly_timeout``
    seconds (on ``clock``) are dropped.
    """

    kind = "sms"

    def __init__(self, reactor, endpoint, system_id, password, *, clock=None,
                 delivery_receipts=True, reassembly_timeout=300.0, smsc_id="dmgwsim"):
        super().__init__()
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.endpoint = endpoint
        self.system_id = _secret_bytes(system_id)
        self.password = _secret_bytes(password)
        self.delivery_receipts = delivery_receipts
        self.reassembly_timeout = reassembly_timeout
        self.smsc_id = smsc_id
        self.port = None
        self._started = False
        self._connections = set()
        self._bound = []
        self._message_ids = 0
        self._reassembler = sms.Reassembler(max_pending=1024)

    def start(self):
        """Listen; fires with the listening port."""
        if self._started:
            return defer.succeed(self.port)
        self._started = True
        factory = protocol.Factory.forProtocol(lambda: _SMSCProtocol(self))
        factory.noisy = False
        if isinstance(self.endpoint, str):
            endpoint = endpoints.serverFromString(self.reactor, self.endpoint)
        else:
            endpoint = self.endpoint
        d = endpoint.listen(factory)

        def listening(port):
            self.port = port
            log.info("SMSC simulator listening on {address}", address=port.getHost())
            return port

        def failed(failure):
            self._started = False
            return failure

        return d.addCallbacks(listening, failed)

    @property
    def address(self):
        """``(host, port)`` being listened on (after :meth:`start`)."""
        host = self.port.getHost()
        return host.host, host.port

    def when_bound(self):
        """Fires with the first ESME connection bound from now (or already bound)."""
        for connection in self._connections:
            if connection.bound is not None:
                return defer.succeed(connection)
        d = defer.Deferred(lambda d: self._bound.remove(d) if d in self._bound else None)
        self._bound.append(d)
        return d

    def stop(self):
        """Stop listening and close every connection; fires when all is closed."""
        port, self.port = self.port, None
        for connection in self._connections:
            connection._closed = True
        return self._close([port] if port is not None else [], self._connections)

    def _next_message_id(self):
        self._message_ids += 1
        return "sim%08x" % (self._message_ids,)

    def _user_data(self, submit):
        try:
            user_data = sms.parse_user_data(submit.message, udhi=submit.udhi)
        except NotificationError as error:
            self._count("bad_user_data")
            log.warn("SMSC: unreadable user data for {destination}: {error}",
                     destination=submit.destination_addr, error=str(error))
            return
        now = self.clock.seconds()
        self._reassembler.expire(now - self.reassembly_timeout)
        whole = self._reassembler.add(user_data, sender=submit.destination_addr, now=now)
        if whole is not None:
            self._deliver(submit.destination_addr, whole)


def _secret_bytes(value):
    return value if isinstance(value, bytes) else str(value or "").encode("utf-8")


# -- SIP ----------------------------------------------------------------------------


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
class SIPWakeSource(_Base):
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
