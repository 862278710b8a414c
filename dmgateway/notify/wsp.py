"""WSP connectionless Push PDU (WAP-230 §8.2.4, dm-notification §3.1, dm-bootstrap-cp §4).

::

    TID | PDU type 0x06 | HeadersLen (uintvar) | Content-Type | Headers | Data

A DM notification push is ``01 06 03 C4 AF 87`` + package #0::

    encode_push(PushPDU(CT_SYNCML_NOTIFICATION, package0, app_id=APP_SYNCML_DM))

A bootstrap push carries SEC and MAC as content-type parameters::

    PushPDU(CT_SYNCML_DM_WBXML, wbxml, app_id=APP_SYNCML_DM,
            parameters=(("SEC", SEC_NETWPIN), ("MAC", "AADE75..")))

Parsing is tolerant: text or binary content types and application ids,
unknown headers and parameters kept, shift sequences skipped.  Every
error is a :class:`~.package0.NotificationError` with a byte offset.
"""

from dataclasses import dataclass

from ..codec.wbxml import encode_mb_uint
from .package0 import NotificationError

__all__ = [
    "APPLICATION_IDS",
    "APP_SYNCML_DM",
    "CONTENT_TYPES",
    "CT_CONNECTIVITY_WBXML",
    "CT_SYNCML_DM_NOTIFICATION",
    "CT_SYNCML_DM_WBXML",
    "CT_SYNCML_NOTIFICATION",
    "PARAMETERS",
    "PDU_CONFIRMED_PUSH",
    "PDU_PUSH",
    "SEC_NETWPIN",
    "SEC_USERNETWPIN",
    "SEC_USERPIN",
    "SEC_USERPINMAC",
    "PushPDU",
    "application_id_name",
    "content_type_name",
    "decode_uintvar",
    "encode_content_type",
    "encode_push",
    "encode_uintvar",
    "is_dm_notification",
    "parse_push",
]

PDU_PUSH = 0x06
PDU_CONFIRMED_PUSH = 0x07

HEADER_CONTENT_TYPE = 0x11
HEADER_APPLICATION_ID = 0x2F

CT_CONNECTIVITY_XML = 0x35
CT_CONNECTIVITY_WBXML = 0x36
CT_SYNCML_DM_WBXML = 0x42
CT_SYNCML_DM_XML = 0x43
CT_SYNCML_NOTIFICATION = 0x44
CT_SYNCML_DS_NOTIFICATION = 0x4E
CT_SYNCML_DM_NOTIFICATION = 0x58  # the DM 1.3 format; no confirmed layout

CONTENT_TYPES = {
    CT_CONNECTIVITY_XML: "text/vnd.wap.connectivity-xml",
    CT_CONNECTIVITY_WBXML: "application/vnd.wap.connectivity-wbxml",
    CT_SYNCML_DM_WBXML: "application/vnd.syncml.dm+wbxml",
    CT_SYNCML_DM_XML: "application/vnd.syncml.dm+xml",
    CT_SYNCML_NOTIFICATION: "application/vnd.syncml.notification",
    CT_SYNCML_DS_NOTIFICATION: "application/vnd.syncml.ds.notification",
    CT_SYNCML_DM_NOTIFICATION: "application/vnd.syncml.dm.notification",
}

APP_SYNCML_DM = 0x07
APPLICATION_IDS = {
    0x00: "x-wap-application:*",
    0x01: "x-wap-application:push.sia",
    0x02: "x-wap-application:wml.ua",
    0x03: "x-wap-application:wta.ua",
    0x04: "x-wap-application:mms.ua",
    0x05: "x-wap-application:push.syncml",
    0x06: "x-wap-application:loc.ua",
    0x07: "x-wap-application:syncml.dm",
    0x08: "x-wap-application:drm.ua",
    0x09: "x-wap-application:emn.ua",
    0x0A: "x-wap-application:wv.ua",
}

# Well-known content-type parameters (WSP 1.4) and how their values are typed.
PARAMETERS = {"SEC": 0x11, "MAC": 0x12}
_PARAMETER_NAMES = {code: name for name, code in PARAMETERS.items()}

SEC_NETWPIN, SEC_USERPIN, SEC_USERNETWPIN, SEC_USERPINMAC = 0, 1, 2, 3

_QUOTE = 0x7F
_LENGTH_QUOTE = 0x1F
_MAX_UINTVAR_BYTES = 5


@dataclass(frozen=True)
class PushPDU:
    """A connectionless push.

    ``content_type`` and ``app_id`` are a well-known code (int) or text;
    ``parameters`` are ``(name, value)`` pairs, name ``"SEC"``/``"MAC"`` (or
    an int code, or other text), value an int or text; ``headers`` are
    further ``(field, encoded value bytes)`` pairs, field an int code or a
    text name.
    """

    content_type: int | str
    body: bytes = b""
    app_id: int | str | None = None
    parameters: tuple = ()
    headers: tuple = ()
    tid: int = 1
    pdu_type: int = PDU_PUSH


# -- primitives --------------------------------------------------------------


def encode_uintvar(value: int) -> bytes:
    """A WSP uintvar (the same encoding as WBXML's mb_u_int32), at most 32 bits."""
    if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise NotificationError("uintvar out of range: %r" % (value,))
    return encode_mb_uint(value)


def decode_uintvar(data: bytes, pos: int) -> tuple[int, int]:
    """``(value, next position)`` of the uintvar at ``data[pos]``."""
    value = 0
    for i in range(_MAX_UINTVAR_BYTES):
        if pos + i >= len(data):
            raise NotificationError("truncated uintvar", offset=pos + i)
        byte = data[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            if value > 0xFFFFFFFF:
                raise NotificationError("uintvar overflows 32 bits", offset=pos)
            return value, pos + i + 1
    raise NotificationError("uintvar longer than 5 bytes", offset=pos)


def _text(value, what):
    """A Text-string: printable-first ASCII without NUL, NUL-terminated."""
    if not isinstance(value, str):
        raise NotificationError("%s must be text, not %r" % (what, value))
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise NotificationError("%s must be ASCII" % (what,)) from None
    if b"\x00" in raw or not raw or raw[0] < 0x20 or raw[0] == _QUOTE:
        raise NotificationError("%s is not a WSP text string: %r" % (what, value))
    return raw + b"\x00"


def _integer(value, what):
    """An Integer-value: Short-integer below 128, else Long-integer."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise NotificationError("%s must be a non-negative integer" % (what,))
    if value < 0x80:
        return bytes([0x80 | value])
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    if len(raw) > 30:
        raise NotificationError("%s too large" % (what,))
    return bytes([len(raw)]) + raw


def _value_length(length):
    if length <= 30:
        return bytes([length])
    return bytes([_LENGTH_QUOTE]) + encode_uintvar(length)


def _read_text(data, pos, end, what):
    nul = data.find(b"\x00", pos, end)
    if nul < 0:
        raise NotificationError("unterminated %s" % (what,), offset=pos)
    raw = data[pos:nul]
    if raw[:1] == bytes([_QUOTE]):
        raw = raw[1:]
    try:
        return raw.decode("utf-8"), nul + 1
    except UnicodeDecodeError:
        raise NotificationError("%s is not UTF-8" % (what,), offset=pos) from None


def _read_long(data, pos, end, what):
    length = data[pos]
    if pos + 1 + length > end:
        raise NotificationError("truncated %s" % (what,), offset=pos)
    return int.from_bytes(data[pos + 1:pos + 1 + length], "big"), pos + 1 + length


def _read_value_length(data, pos, end):
    """``(length, start of value)`` of a Value-length at ``data[pos]`` (a byte 0..31)."""
    if data[pos] == _LENGTH_QUOTE:
        length, start = decode_uintvar(data, pos + 1)
    else:
        length, start = data[pos], pos + 1
    if start + length > end:
        raise NotificationError("value length runs past the end", offset=pos)
    return length, start


def _skip_value(data, pos, end):
    """The end of the generic field value at ``data[pos]`` (WSP §8.4.1.2)."""
    if pos >= end:
        raise NotificationError("missing header value", offset=pos)
    byte = data[pos]
    if byte >= 0x80:
        return pos + 1
    if byte <= _LENGTH_QUOTE:
        length, start = _read_value_length(data, pos, end)
        return start + length
    return _read_text(data, pos, end, "header value")[1]


# -- content type ------------------------------------------------------------


def _parameter(name, value):
    if isinstance(name, str) and name.upper() in PARAMETERS:
        name = PARAMETERS[name.upper()]
    if isinstance(name, int) and not isinstance(name, bool):
        if not 0 <= name < 0x80:
            raise NotificationError("parameter code out of range: %r" % (name,))
        key = bytes([0x80 | name])
    else:
        key = _text(name, "parameter name")
    if isinstance(value, int) and not isinstance(value, bool):
        return key + _integer(value, "parameter value")
    if value == "":
        return key + b"\x00"  # No-value
    return key + _text(value, "parameter value")


def encode_content_type(content_type, parameters=()) -> bytes:
    """The Content-type value: a short integer or text alone, else the general form."""
    if isinstance(content_type, int) and not isinstance(content_type, bool):
        media = _integer(content_type, "content type")
    else:
        media = _text(content_type, "content type")
    if not parameters and media[0] >= 0x20:  # a long integer needs the general form
        return media
    value = media + b"".join(_parameter(name, value) for name, value in parameters)
    return _value_length(len(value)) + value


def _read_media(data, pos, end):
    byte = data[pos]
    if byte >= 0x80:
        return byte & 0x7F, pos + 1
    if byte <= 30:
        return _read_long(data, pos, end, "content type")
    return _read_text(data, pos, end, "content type")


def _read_parameter(data, pos, end):
    byte = data[pos]
    if byte >= 0x80:
        code = byte & 0x7F
        name, pos = _PARAMETER_NAMES.get(code, code), pos + 1
    elif byte <= 30:
        code, pos = _read_long(data, pos, end, "parameter code")
        name = _PARAMETER_NAMES.get(code, code)
    else:
        name, pos = _read_text(data, pos, end, "parameter name")
    if pos >= end:
        raise NotificationError("parameter without a value", offset=pos)
    byte = data[pos]
    if byte >= 0x80:
        return (name, byte & 0x7F), pos + 1
    if 0 < byte <= 30:
        return (name, _read_long(data, pos, end, "parameter value")[0]), pos + 1 + byte
    if byte == 0:  # No-value
        return (name, ""), pos + 1
    value, pos = _read_text(data, pos, end, "parameter value")
    return (name, value), pos


def _read_content_type(data, pos, end):
    """``(content type, parameters, next position)``."""
    if pos >= end:
        raise NotificationError("missing content type", offset=pos)
    byte = data[pos]
    if byte >= 0x80 or byte > _LENGTH_QUOTE:
        media, pos = _read_media(data, pos, end)
        return media, (), pos
    length, start = _read_value_length(data, pos, end)
    stop = start + length
    if length == 0:
        raise NotificationError("empty content type", offset=pos)
    media, pos = _read_media(data, start, stop)
    parameters = []
    while pos < stop:
        parameter, pos = _read_parameter(data, pos, stop)
        parameters.append(parameter)
    return media, tuple(parameters), stop


# -- the PDU -----------------------------------------------------------------


def _encode_header(name, raw):
    if isinstance(name, int) and not isinstance(name, bool):
        if not 0 <= name < 0x80:
            raise NotificationError("header code out of range: %r" % (name,))
        key = bytes([0x80 | name])
    else:
        key = _text(name, "header name")
    raw = bytes(raw)
    if not raw or _skip_value(raw, 0, len(raw)) != len(raw):
        raise NotificationError("header %r: not one encoded WSP value" % (name,))
    return key + raw


def encode_push(pdu: PushPDU) -> bytes:
    """The bytes of ``pdu``; strict."""
    if not isinstance(pdu.tid, int) or not 0 <= pdu.tid <= 0xFF:
        raise NotificationError("transaction id must be 0..255")
    if pdu.pdu_type not in (PDU_PUSH, PDU_CONFIRMED_PUSH):
        raise NotificationError("not a push PDU type: %r" % (pdu.pdu_type,))
    headers = encode_content_type(pdu.content_type, pdu.parameters)
    if pdu.app_id is not None:
        if isinstance(pdu.app_id, int) and not isinstance(pdu.app_id, bool):
            app = _integer(pdu.app_id, "application id")
        else:
            app = _text(pdu.app_id, "application id")
        headers += bytes([0x80 | HEADER_APPLICATION_ID]) + app
    headers += b"".join(_encode_header(name, raw) for name, raw in pdu.headers)
    if not isinstance(pdu.body, (bytes, bytearray)):
        raise NotificationError("push body must be bytes")
    return bytes([pdu.tid, pdu.pdu_type]) + encode_uintvar(len(headers)) + headers + bytes(pdu.body)


def _read_app_id(data, pos, end):
    byte = data[pos] if pos < end else None
    if byte is None:
        raise NotificationError("missing application id", offset=pos)
    if byte >= 0x80:
        return byte & 0x7F, pos + 1
    if byte <= 30:
        return _read_long(data, pos, end, "application id")
    if byte == _LENGTH_QUOTE:
        raise NotificationError("bad application id", offset=pos)
    return _read_text(data, pos, end, "application id")


def parse_push(data: bytes) -> PushPDU:
    """A :class:`PushPDU` from connectionless push bytes; NotificationError if malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise NotificationError("push PDU must be bytes")
    data = bytes(data)
    if len(data) < 3:
        raise NotificationError("push PDU too short", offset=len(data))
    tid, pdu_type = data[0], data[1]
    if pdu_type not in (PDU_PUSH, PDU_CONFIRMED_PUSH):
        raise NotificationError("not a push PDU (type 0x%02X)" % (pdu_type,), offset=1)
    length, pos = decode_uintvar(data, 2)
    end = pos + length
    if end > len(data):
        raise NotificationError("headers run past the end", offset=2)
    content_type, parameters, pos = _read_content_type(data, pos, end)
    app_id, headers = None, []
    while pos < end:
        byte = data[pos]
        if byte == _QUOTE:  # Shift-delimiter + page: skipped
            pos += 2
            continue
        if byte < 0x20:  # Short-cut-shift-delimiter: skipped
            pos += 1
            continue
        if byte >= 0x80:
            name, pos = byte & 0x7F, pos + 1
        else:
            name, pos = _read_text(data, pos, end, "header name")
        if name == HEADER_APPLICATION_ID and app_id is None:
            app_id, pos = _read_app_id(data, pos, end)
            continue
        stop = _skip_value(data, pos, end)
        headers.append((name, data[pos:stop]))
        pos = stop
    if pos > end:
        raise NotificationError("header runs past the headers length", offset=end)
    return PushPDU(content_type=content_type, body=data[end:], app_id=app_id,
                   parameters=parameters, headers=tuple(headers), tid=tid, pdu_type=pdu_type)


# -- routing -----------------------------------------------------------------


def content_type_name(pdu: PushPDU) -> str:
    """The MIME type of ``pdu`` as text, lower case (unknown codes as ``0xNN``)."""
    ct = pdu.content_type
    if isinstance(ct, int):
        return CONTENT_TYPES.get(ct, "0x%02X" % (ct,))
    return ct.strip().lower()


def application_id_name(pdu: PushPDU) -> str | None:
    """The X-WAP-Application-ID as its URN text (None if absent)."""
    app = pdu.app_id
    if isinstance(app, int):
        return APPLICATION_IDS.get(app, "0x%02X" % (app,))
    return None if app is None else app.strip().lower()


def is_dm_notification(pdu: PushPDU) -> bool:
    """True for a DM 1.2 package #0 push: app id syncml.dm and content type 0x44 (binary or text)."""
    return (application_id_name(pdu) == APPLICATION_IDS[APP_SYNCML_DM]
            and content_type_name(pdu) == CONTENT_TYPES[CT_SYNCML_NOTIFICATION])
