"""The simulator's SMSC: a minimal SMPP 3.4 server the gateway binds to.

:class:`SMSCWakeSource` takes bind_transmitter/bind_transceiver with one
system_id/password.  Each submit_sm is acked with a message id; WAP push
segments are reassembled per destination and UDH reference; each whole push
goes to ``on_notification(msisdn, wsp_push_bytes)``.  Transceivers that ask
get a delivery receipt (deliver_sm).  Garbage gets an error response or
generic_nack; an impossible frame length drops the connection.  The SMPP
bearer's own tests run against it too, with its fault knobs.
"""

import hmac
import struct
from collections import namedtuple

from twisted.internet import defer, endpoints, protocol
from twisted.logger import Logger
from zope.interface import implementer

from ..bearers import smpp_pdu as P
from ..notify import sms
from ..notify.package0 import NotificationError
from .iwake import IWakeSource
from .wakebase import WakeSourceBase, secret_bytes

__all__ = ["SMSCWakeSource", "parse_bind", "parse_submit", "BindRequest", "SubmitRequest",
           "delivery_receipt"]

log = Logger(namespace="dmgateway.sim.wake")

BIND_RECEIVER = 0x00000001
SUBMIT_SM_RESP = 0x80000004
ESME_RALYBND = 0x05
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
TAG_MESSAGE_PAYLOAD = 0x0424
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_MESSAGE_STATE = 0x0427
#: the message_state TLV of a receipt's ``stat:`` (SMPP 3.4 §5.2.28)
MESSAGE_STATES = {"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6,
                  "UNKNOWN": 7, "REJECTD": 8}


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


def delivery_receipt(sequence, message_id, submit, now_text="0001010000", stat="DELIVRD",
                     err="000"):
    """A deliver_sm carrying the receipt of ``submit`` (text and TLVs, by default stat DELIVRD)."""
    text = ("id:%s sub:001 dlvrd:001 submit date:%s done date:%s stat:%s err:%s text:"
            % (message_id, now_text, now_text, stat, err)).encode("ascii")
    body = b"".join([
        _cstring(""),  # service_type
        bytes([1, 1]), _cstring(submit.destination_addr),  # from the handset
        bytes([1, 1]), _cstring(submit.source_addr),  # to the gateway's address
        bytes([P.ESM_CLASS_RECEIPT, 0, 0]),  # esm_class, protocol_id, priority
        _cstring(""), _cstring(""),  # schedule_delivery_time, validity_period
        bytes([0, 0, 0, 0, len(text)]), text,
        struct.pack("!HH", TAG_RECEIPTED_MESSAGE_ID, len(message_id) + 1), _cstring(message_id),
        struct.pack("!HHB", TAG_MESSAGE_STATE, 1, MESSAGE_STATES.get(stat, MESSAGE_STATES["UNKNOWN"])),
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
        waiting += self.source._fire("lost")
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
        if self.source.record:
            self.source.frames.append(bytes(raw))
        header = P.read_header(raw)
        command, seq = header.command_id, header.sequence
        if header.is_response:
            return  # deliver_sm_resp, enquire_link_resp, generic_nack: nothing to do
        if not P.is_known_command(command):
            raise P.PDUError("unknown command_id", P.ESME_RINVCMDID, seq, command)
        if command in (P.BIND_TRANSMITTER, P.BIND_TRANSCEIVER, BIND_RECEIVER):
            self._bind(raw, header)
        elif command == P.ENQUIRE_LINK:
            if self.source.answer_enquire_link:
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
        if source.record:
            source.submitted.append(submit)
        if source.throttle_next > 0:
            source.throttle_next -= 1
            source._count("throttled")
            self._write(_pdu(SUBMIT_SM_RESP, P.ESME_RTHROTTLED, header.sequence))
        else:
            self._accept(submit, header.sequence)
        for d in source._fire("submit"):
            d.callback(submit)
        source._submits += 1
        if source.drop_after_submits is not None and source._submits >= source.drop_after_submits:
            source.drop_after_submits = None
            self._drop()

    def _accept(self, submit, sequence):
        source = self.source
        message_id = source._next_message_id()
        source._count("submits")
        self._write(_pdu(SUBMIT_SM_RESP, P.ESME_ROK, sequence, _cstring(message_id)))
        if source.record:
            source.accepted[message_id] = submit
        if (submit.registered_delivery & 0x03 and self.bound == "transceiver"
                and source.delivery_receipts):
            self.send_receipt(message_id, submit)
        source._user_data(submit)

    def send_receipt(self, message_id, submit, stat="DELIVRD", err="000"):
        """Send a deliver_sm with the receipt of ``submit`` (acked as ``message_id``)."""
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        self._write(delivery_receipt(self._sequence, message_id, submit, stat=stat, err=err))
        self.source._count("receipts")


@implementer(IWakeSource)
class SMSCWakeSource(WakeSourceBase):
    """A minimal SMPP 3.4 SMSC the gateway binds to; each whole WAP push is a wake-up.

    ``endpoint`` is a Twisted server endpoint string (``tcp:2775:interface=127.0.0.1``);
    ``system_id``/``password`` are what the gateway must bind with.  Parts
    of a concatenated push not completed within ``reassembly_timeout``
    seconds (on ``clock``) are dropped.

    With ``record`` it keeps what came in: every PDU (``frames``), every
    submit_sm (``submitted``, throttled ones too) and the accepted ones by
    message id (``accepted``).  Faults to play, for the SMPP bearer's tests:
    ``throttle_next`` answers that many submit_sm with ESME_RTHROTTLED,
    ``drop_after_submits`` drops the connection once that many submit_sm
    have come in (once), ``answer_enquire_link = False`` goes silent.
    """

    kind = "sms"

    def __init__(self, reactor, endpoint, system_id, password, *, clock=None,
                 delivery_receipts=True, reassembly_timeout=300.0, smsc_id="dmgwsim",
                 record=False):
        super().__init__()
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.endpoint = endpoint
        self.system_id = secret_bytes(system_id)
        self.password = secret_bytes(password)
        self.delivery_receipts = delivery_receipts
        self.reassembly_timeout = reassembly_timeout
        self.smsc_id = smsc_id
        self.record = record
        self.frames = []
        self.submitted = []
        self.accepted = {}
        self.throttle_next = 0
        self.drop_after_submits = None
        self.answer_enquire_link = True
        self.port = None
        self._submits = 0
        self._waiters = {"submit": [], "lost": []}
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

    def when_submitted(self):
        """Fires with the next submit_sm (a :class:`SubmitRequest`) that comes in."""
        d = defer.Deferred()
        self._waiters["submit"].append(d)
        return d

    def when_lost(self):
        """Fires when an ESME connection is closed next."""
        d = defer.Deferred()
        self._waiters["lost"].append(d)
        return d

    def send_receipt(self, message_id, stat="DELIVRD", err="000"):
        """Send a bound transceiver the receipt of the submit_sm acked as ``message_id``
        (needs ``record``); False when there is none of either."""
        submit = self.accepted.get(message_id)
        for connection in self._connections:
            if submit is not None and connection.bound == "transceiver":
                connection.send_receipt(message_id, submit, stat, err)
                return True
        return False

    def _fire(self, event):
        """The Deferreds waiting for ``event``, no longer waiting."""
        waiting, self._waiters[event] = self._waiters[event], []
        return waiting

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
