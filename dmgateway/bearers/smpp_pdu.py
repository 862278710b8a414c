"""SMPP 3.4 PDUs for the ESME: a thin layer over ``smpp.pdu`` (PyPI ``smpp.pdu3``).

``smpp.pdu`` does the field encoding; this module gives the rest of the
bearer plain integers and bytes: header framing, one error type
(:class:`PDUError`, carrying the SMPP status to answer with), builders for
the PDUs the ESME sends, and delivery-receipt parsing.  No Twisted, no I/O.
"""

import io
import re
import struct
from dataclasses import dataclass

from smpp.pdu import constants, operations, pdu_encoding
from smpp.pdu.error import PDUParseError

HEADER = struct.Struct("!LLLL")
MIN_LENGTH = HEADER.size
#: the largest command_length accepted from the SMSC
MAX_LENGTH = 64 * 1024

GENERIC_NACK = 0x80000000
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
BIND_TRANSCEIVER = 0x00000009
OUTBIND = 0x0000000B
ENQUIRE_LINK = 0x00000015
ALERT_NOTIFICATION = 0x00000102
DATA_SM = 0x00000103
RESPONSE = 0x80000000

ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RSYSERR = 0x08
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RUNKNOWNERR = 0xFF

INTERFACE_VERSION = 0x34
ESM_CLASS_UDHI = 0x40
ESM_CLASS_TYPE_MASK = 0x3C
ESM_CLASS_RECEIPT = 0x04

_encoder = pdu_encoding.PDUEncoder()


class PDUError(Exception):
    """A PDU that cannot be read; ``status`` is the SMPP error to answer with."""

    def __init__(self, message, status=ESME_RSYSERR, sequence=0, command_id=None):
        super().__init__(message)
        self.status = status
        self.sequence = sequence
        self.command_id = command_id


@dataclass(frozen=True)
class Header:
    length: int
    command_id: int
    status: int
    sequence: int

    @property
    def is_response(self):
        return bool(self.command_id & RESPONSE)

    @property
    def command_name(self):
        return command_name(self.command_id)


def command_name(command_id):
    """``submit_sm`` for 4, ``0x00000abc`` for an id SMPP 3.4 does not define."""
    return constants.command_id_value_map.get(command_id, "0x%08x" % (command_id,))


def status_name(status):
    """``ESME_RTHROTTLED`` for 0x58; a readable placeholder for reserved codes."""
    entry = constants.command_status_value_map.get(status)
    if entry is not None and status >= 0:
        return entry["name"]
    return "ESME_0x%08x" % (status,)


def status_code(status):
    """The integer of a ``smpp.pdu`` CommandStatus (unknown names map to RUNKNOWNERR)."""
    return constants.command_status_name_map.get(status.name, ESME_RUNKNOWNERR)


def read_header(data):
    """The header of ``data`` (at least 16 bytes)."""
    return Header(*HEADER.unpack_from(data))


class FramingError(Exception):
    """A command_length no PDU can have: the stream cannot be followed."""

    def __init__(self, length, sequence):
        super().__init__("bad command_length %d" % (length,))
        self.length = length
        self.sequence = sequence


def take_frame(buffer):
    """Remove and return the next whole PDU of ``buffer`` (a bytearray).

    ``None`` while more bytes are needed; :class:`FramingError` for a
    command_length outside MIN_LENGTH..MAX_LENGTH (answer generic_nack with
    its sequence, then drop the link).
    """
    if len(buffer) < 4:
        return None
    length = int.from_bytes(buffer[:4], "big")
    if length < MIN_LENGTH or length > MAX_LENGTH:
        sequence = read_header(buffer).sequence if len(buffer) >= 16 else 0
        raise FramingError(length, sequence)
    if len(buffer) < length:
        return None
    raw = bytes(buffer[:length])
    del buffer[:length]
    return raw


def is_known_command(command_id):
    return command_id in constants.command_id_value_map


def decode(data):
    """One whole PDU (``bytes``, command_length already checked) -> ``smpp.pdu`` PDU.

    Raises only :class:`PDUError` (with the status to answer and the sequence).
    """
    header = read_header(data)
    if not is_known_command(header.command_id):
        raise PDUError("unknown command_id 0x%08x" % header.command_id, ESME_RINVCMDID,
                       header.sequence, header.command_id)
    stream = io.BytesIO(data)
    try:
        pdu = _encoder.decode(stream)
    except PDUParseError as e:
        raise PDUError("%s: %s" % (header.command_name, e), status_code(e.status),
                       header.sequence, header.command_id) from None
    except Exception as e:  # the library is not strict about its own errors
        raise PDUError("%s: %s: %s" % (header.command_name, type(e).__name__, e), ESME_RSYSERR,
                       header.sequence, header.command_id) from None
    if stream.tell() != len(data):
        raise PDUError("%s: %d bytes after the PDU" % (header.command_name, len(data) - stream.tell()),
                       ESME_RINVCMDLEN, header.sequence, header.command_id)
    return pdu


def encode(pdu):
    return _encoder.encode(pdu)


def _field(encoder, value):
    """A library field object from its wire integer (decoded by the library itself)."""
    return encoder.decode(io.BytesIO(bytes([value])))


_ENC = pdu_encoding.PDUEncoder.DefaultRequiredParamEncoders


def bind(sequence, mode, system_id, password, system_type="", *, addr_ton=0, addr_npi=0,
         address_range=""):
    """bind_transmitter (``mode="transmitter"``) or bind_transceiver."""
    kind = {"transmitter": operations.BindTransmitter,
            "transceiver": operations.BindTransceiver}[mode]
    return encode(kind(
        sequence,
        system_id=system_id,
        password=password,
        system_type=system_type,
        interface_version=INTERFACE_VERSION,
        addr_ton=_field(_ENC["addr_ton"], addr_ton),
        addr_npi=_field(_ENC["addr_npi"], addr_npi),
        address_range=address_range,
    ))


def _accepted(name):
    """The wire values of a one-byte field that the library reads and writes back unchanged."""
    encoder, accepted = _ENC[name], set()
    for value in range(256):
        try:
            if encoder.encode(_field(encoder, value)) == bytes([value]):
                accepted.add(value)
        except Exception:  # the library refuses the value in its own ways
            continue
    return frozenset(accepted)


#: the values submit_sm may carry, as the library defines them (e.g. TON 0..6)
_ACCEPTED = {
    name: _accepted(name)
    for name in ("source_addr_ton", "source_addr_npi", "esm_class", "registered_delivery", "data_coding")
}
_SUBMIT_SM_FIXED = struct.Struct("!BBBss")


def _octet(name, value):
    if value not in _ACCEPTED[name]:
        raise ValueError("%s 0x%x is not an SMPP 3.4 value" % (name, value))
    return value


def _cstring(name, value, size):
    """A C-Octet String field (UTF-8 text, terminated by a NUL) of at most ``size`` bytes."""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if len(raw) >= size or b"\0" in raw:
        raise ValueError("%s %r does not fit a C-Octet String of %d bytes" % (name, value, size))
    return raw + b"\0"


def submit_sm(sequence, *, source_addr, source_ton, source_npi, destination_addr, short_message,
              esm_class=ESM_CLASS_UDHI, data_coding=0x04, registered_delivery=0, service_type="",
              dest_ton=1, dest_npi=1, protocol_id=0):
    """A submit_sm with ``short_message`` carried as is (UDH included by the caller).

    Packed here rather than by the library: it is the one PDU sent per
    wake-up segment, and the library's field objects cost several times
    the rest of the send path.  The bytes are the library's (the tests
    compare both over every accepted field value).
    """
    if len(short_message) > 254:
        raise ValueError("short_message of %d bytes (at most 254)" % len(short_message))
    if not 1 <= sequence <= 0x7FFFFFFF:
        raise ValueError("sequence_number %d out of range" % (sequence,))
    if not 0 <= protocol_id <= 255:
        raise ValueError("protocol_id %d out of range" % (protocol_id,))
    body = b"".join((
        _cstring("service_type", service_type, 6),
        bytes((_octet("source_addr_ton", source_ton), _octet("source_addr_npi", source_npi))),
        _cstring("source_addr", source_addr, 21),
        bytes((_octet("source_addr_ton", dest_ton), _octet("source_addr_npi", dest_npi))),
        _cstring("destination_addr", destination_addr, 21),
        # esm_class, protocol_id, priority_flag, no schedule_delivery_time nor validity_period
        bytes((_octet("esm_class", esm_class), protocol_id, 0, 0, 0)),
        # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
        bytes((_octet("registered_delivery", registered_delivery), 0,
               _octet("data_coding", data_coding), 0, len(short_message))),
        bytes(short_message),
    ))
    return HEADER.pack(HEADER.size + len(body), SUBMIT_SM, ESME_ROK, sequence) + body


SUBMIT_SM_RESP = SUBMIT_SM | RESPONSE
#: the longest message_id of a submit_sm_resp, its NUL included
MESSAGE_ID_SIZE = 65


class SubmitSMResp:
    """A successful submit_sm_resp read without the library: its ``params`` hold the message_id."""

    __slots__ = ("params",)

    def __init__(self, message_id):
        self.params = {"message_id": message_id}


def quick_submit_sm_resp(raw):
    """The common submit_sm_resp (status 0, body = one message_id) read directly.

    ``raw`` is a whole PDU; returns a :class:`SubmitSMResp`, or None when the
    PDU is anything else (then :func:`decode` reads it, errors and all).
    """
    if len(raw) <= MIN_LENGTH or raw[4:12] != b"\x80\x00\x00\x04\x00\x00\x00\x00":
        return None
    end = raw.find(b"\0", MIN_LENGTH)
    if end != len(raw) - 1 or end - MIN_LENGTH >= MESSAGE_ID_SIZE:
        return None
    return SubmitSMResp(raw[MIN_LENGTH:end])


def enquire_link(sequence):
    return encode(operations.EnquireLink(sequence))


# The answers to the SMSC's own requests are packed here: they echo its
# sequence_number, which the library refuses to encode outside 1..0x7FFFFFFF
# (an SMSC sending 0 would otherwise make the answer raise and drop the link).


def enquire_link_resp(sequence):
    return HEADER.pack(HEADER.size, ENQUIRE_LINK | RESPONSE, ESME_ROK, sequence)


def unbind(sequence):
    return encode(operations.Unbind(sequence))


def unbind_resp(sequence):
    return HEADER.pack(HEADER.size, UNBIND | RESPONSE, ESME_ROK, sequence)


def deliver_sm_resp(sequence, status=ESME_ROK):
    """deliver_sm_resp: the header and an empty message_id (a NUL)."""
    return HEADER.pack(HEADER.size + 1, DELIVER_SM | RESPONSE, status, sequence) + b"\0"


def generic_nack(sequence, status):
    # sequence 0 is what SMPP uses when the request's own number is unreadable;
    # the library insists on >= 1 for encoding, so the header is packed here.
    return HEADER.pack(HEADER.size, GENERIC_NACK, status, sequence)


def response_for(command_id, sequence, status):
    """The error response to a request we refuse (generic_nack if it has none)."""
    resp = command_id | RESPONSE
    if command_id & RESPONSE or resp not in constants.command_id_value_map or sequence == 0:
        return generic_nack(sequence, status)
    # error responses of SMPP 3.4 have no body
    if resp == 0x80000005 or resp == 0x80000103:  # deliver_sm_resp / data_sm_resp carry message_id
        return HEADER.pack(HEADER.size + 1, resp, status, sequence) + b"\0"
    return HEADER.pack(HEADER.size, resp, status, sequence)


def command_id_of(pdu):
    return constants.command_id_name_map[pdu.id.name]


# -- delivery receipts -------------------------------------------------------

#: receipt ``stat:`` words (SMPP 3.4 appendix B) and message_state TLV names -> our states
RECEIPT_STATES = {
    "DELIVRD": "delivered", "DELIVERED": "delivered",
    "EXPIRED": "expired",
    "DELETED": "deleted",
    "UNDELIV": "undeliverable", "UNDELIVERABLE": "undeliverable",
    "ACCEPTD": "accepted", "ACCEPTED": "accepted",
    "UNKNOWN": "unknown",
    "REJECTD": "rejected", "REJECTED": "rejected",
    "ENROUTE": "enroute",
}

_RECEIPT_FIELD = re.compile(rb"(?i)\b(id|stat|err):\s*([^\s]+)")


@dataclass(frozen=True)
class Receipt:
    message_id: str
    state: str
    error: str | None = None


def parse_receipt_text(text):
    """``{"id": ..., "stat": ..., "err": ...}`` from a receipt's short_message (missing keys absent)."""
    found = {}
    for key, value in _RECEIPT_FIELD.findall(bytes(text or b"")):
        found.setdefault(key.lower().decode("ascii"), value.decode("ascii", "replace"))
    return found


def is_receipt(pdu):
    esm = pdu.params.get("esm_class")
    return esm is not None and esm.type.name in ("SMSC_DELIVERY_RECEIPT",
                                                  "INTERMEDIATE_DELIVERY_NOTIFICATION")


def receipt_of(pdu):
    """The :class:`Receipt` a deliver_sm carries, or None when it is not a readable receipt.

    TLVs (``receipted_message_id``, ``message_state``, ``network_error_code``)
    win over the text, which many SMSCs send alone.
    """
    params = pdu.params
    text = parse_receipt_text(params.get("short_message"))
    message_id = params.get("receipted_message_id")
    if isinstance(message_id, bytes):
        message_id = message_id.decode("ascii", "replace")
    message_id = message_id or text.get("id")
    state = params.get("message_state")
    state = state.name if state is not None else text.get("stat", "")
    if not message_id:
        return None
    error = None
    network_error = params.get("network_error_code")
    if network_error:
        error = bytes(network_error).hex()
    elif text.get("err") and text["err"].strip("0"):
        error = text["err"]
    return Receipt(message_id, RECEIPT_STATES.get(state.upper(), "unknown"), error)


__all__ = ["PDUError", "Header", "Receipt", "decode", "encode", "bind", "submit_sm",
           "receipt_of", "status_name"]
