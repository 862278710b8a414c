"""WAP push over SMS: WDP user data headers, segmentation, SMS-SUBMIT TPDUs
(dm-notification §3.2-3.3; 3GPP TS 23.040 §9.2.2.2, §9.2.3.24).

A push is cut into TP-UD octet strings of at most 140 bytes, each starting
with a user data header (UDHL + information elements)::

    segment(push, reference=0x2A)       # one part: 06 05 04 0B 84 23 F0 <push>
                                        # more:     0B 05 04 0B 84 23 F0 00 03 2A NN SS ...

A part goes to an SMSC with the UDHI flag set (SMPP ``esm_class`` 0x40,
TP-UDHI in a TPDU) and 8-bit data coding (0x04, or 0xF5).  For PDU-mode
modems :func:`encode_submit` wraps it into an SMS-SUBMIT TPDU.  The
:class:`Reassembler` puts concatenated parts back together (simulator side).
"""

from dataclasses import dataclass, field

from .package0 import NotificationError

__all__ = [
    "DCS_8BIT",
    "DCS_8BIT_CLASS1",
    "IE_CONCAT_16",
    "IE_CONCAT_8",
    "IE_PORTS_16",
    "IE_PORTS_8",
    "MAX_USER_DATA",
    "VPF_ABSOLUTE",
    "VPF_ENHANCED",
    "VPF_NONE",
    "VPF_RELATIVE",
    "WAP_PUSH_PORT",
    "WAP_SECURE_PUSH_PORT",
    "WSP_PORT",
    "Concatenation",
    "Reassembler",
    "SmsSubmit",
    "UserData",
    "at_cmgs",
    "dcs_alphabet",
    "encode_submit",
    "encode_user_data",
    "parse_submit",
    "parse_user_data",
    "relative_validity",
    "relative_validity_seconds",
    "segment",
]

MAX_USER_DATA = 140  # octets of TP-UD, UDH included

IE_CONCAT_8 = 0x00
IE_PORTS_8 = 0x04
IE_PORTS_16 = 0x05
IE_CONCAT_16 = 0x08

WAP_PUSH_PORT = 2948  # 0x0B84, connectionless push
WAP_SECURE_PUSH_PORT = 2949
WSP_PORT = 9200  # 0x23F0, customary source port

DCS_8BIT = 0x04  # general coding group, 8-bit data, no class
DCS_8BIT_CLASS1 = 0xF5  # data coding/message class group: 8-bit, class 1

VPF_NONE, VPF_ENHANCED, VPF_RELATIVE, VPF_ABSOLUTE = 0, 1, 2, 3
_VP_SIZES = {VPF_NONE: 0, VPF_ENHANCED: 7, VPF_RELATIVE: 1, VPF_ABSOLUTE: 7}

_MTI_SUBMIT = 0x01
_RD, _SRR, _UDHI, _RP = 0x04, 0x20, 0x40, 0x80
_TYPE_INTERNATIONAL = 0x91
_TYPE_UNKNOWN = 0x81
_TON_ALPHANUMERIC = 5
_SEMI_OCTETS = "0123456789*#abc"


def _bytes(value, what):
    if not isinstance(value, (bytes, bytearray)):
        raise NotificationError("%s must be bytes" % (what,))
    return bytes(value)


def _check_range(what, value, low, high):
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise NotificationError("%s must be an integer in %d..%d, not %r" % (what, low, high, value))


# -- user data header --------------------------------------------------------


@dataclass(frozen=True)
class Concatenation:
    """A concatenated-SM IE: reference, part count, this part (1-based)."""

    reference: int
    total: int
    sequence: int
    wide: bool = False  # 16-bit reference (IE 0x08) instead of 8-bit (IE 0x00)


@dataclass(frozen=True)
class UserData:
    """TP-UD octets split into the IEs this module knows and the payload.

    ``ports`` is ``(destination, source)`` from a 16-bit port IE;
    ``other`` keeps every other IE as ``(iei, data)``.  ``has_header`` is
    False only for user data without a UDH (TP-UDHI clear).
    """

    payload: bytes
    ports: tuple | None = None
    concatenation: Concatenation | None = None
    other: tuple = ()
    has_header: bool = True


def _ie(iei, data):
    if len(data) > 255:
        raise NotificationError("information element 0x%02X too long" % (iei,))
    return bytes([iei, len(data)]) + data


def encode_user_data(user_data: UserData) -> bytes:
    """UDH (port IE, concatenation IE, other IEs in that order) + payload."""
    ud = user_data
    payload = _bytes(ud.payload, "payload")
    if not ud.has_header:
        if ud.ports or ud.concatenation or ud.other:
            raise NotificationError("information elements need a user data header")
        return payload
    ies = b""
    if ud.ports is not None:
        dest, source = ud.ports
        _check_range("destination port", dest, 0, 0xFFFF)
        _check_range("source port", source, 0, 0xFFFF)
        ies += _ie(IE_PORTS_16, dest.to_bytes(2, "big") + source.to_bytes(2, "big"))
    c = ud.concatenation
    if c is not None:
        _check_range("part count", c.total, 1, 255)
        _check_range("part number", c.sequence, 1, c.total)
        if c.wide:
            _check_range("concatenation reference", c.reference, 0, 0xFFFF)
            ies += _ie(IE_CONCAT_16, c.reference.to_bytes(2, "big") + bytes([c.total, c.sequence]))
        else:
            _check_range("concatenation reference", c.reference, 0, 0xFF)
            ies += _ie(IE_CONCAT_8, bytes([c.reference, c.total, c.sequence]))
    for iei, data in ud.other:
        _check_range("IEI", iei, 0, 0xFF)
        if iei in (IE_PORTS_16, IE_CONCAT_8, IE_CONCAT_16):
            raise NotificationError("IE 0x%02X belongs in ports/concatenation" % (iei,))
        ies += _ie(iei, _bytes(data, "IE data"))
    if len(ies) > 255:
        raise NotificationError("user data header too long")
    return bytes([len(ies)]) + ies + payload


def _known_ie(iei, data):
    """``("ports"|"concatenation", value)`` for a usable known IE, else None.

    Malformed ones (wrong length, part 0 or beyond the count) are left as
    unknown IEs, which TS 23.040 says a receiver ignores.
    """
    if iei == IE_PORTS_16 and len(data) == 4:
        return "ports", (int.from_bytes(data[:2], "big"), int.from_bytes(data[2:], "big"))
    if iei == IE_CONCAT_8 and len(data) == 3:
        concat = Concatenation(data[0], data[1], data[2])
    elif iei == IE_CONCAT_16 and len(data) == 4:
        concat = Concatenation(int.from_bytes(data[:2], "big"), data[2], data[3], wide=True)
    else:
        return None
    if not 1 <= concat.sequence <= concat.total:
        return None
    return "concatenation", concat


def parse_user_data(data: bytes, udhi: bool = True) -> UserData:
    """Split TP-UD octets; with ``udhi`` they start with a UDH.

    A repeated IE: the last occurrence counts (TS 23.040).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise NotificationError("user data must be bytes")
    data = bytes(data)
    if not udhi:
        return UserData(payload=data, has_header=False)
    if not data:
        raise NotificationError("user data header missing", offset=0)
    end = 1 + data[0]
    if end > len(data):
        raise NotificationError("user data header runs past the end", offset=0)
    known, other, pos = {}, [], 1
    while pos < end:
        if pos + 2 > end:
            raise NotificationError("truncated information element", offset=pos)
        iei, length = data[pos], data[pos + 1]
        if pos + 2 + length > end:
            raise NotificationError("information element runs past the header", offset=pos)
        item = data[pos + 2:pos + 2 + length]
        usable = _known_ie(iei, item)
        if usable is None:
            other.append((iei, item))
        else:
            known[usable[0]] = usable[1]
        pos += 2 + length
    return UserData(payload=data[end:], ports=known.get("ports"),
                    concatenation=known.get("concatenation"), other=tuple(other))


def segment(payload: bytes, *, reference: int, ports=(WAP_PUSH_PORT, WSP_PORT),
            wide_reference: bool = False, max_octets: int = MAX_USER_DATA) -> list[bytes]:
    """TP-UD octet strings carrying ``payload`` (e.g. a WSP push), UDH included.

    One part without a concatenation IE if it fits; otherwise every part
    repeats the port IE and adds a concatenation IE with ``reference``
    (8-bit, or 16-bit with ``wide_reference``).  ``ports=None`` leaves the
    port IE out.
    """
    payload = _bytes(payload, "payload")
    _check_range("concatenation reference", reference, 0, 0xFFFF if wide_reference else 0xFF)
    single = encode_user_data(UserData(payload=b"", ports=ports))
    if len(single) + len(payload) <= max_octets:
        return [single + payload]
    header = len(encode_user_data(UserData(b"", ports, Concatenation(0, 1, 1, wide_reference))))
    room = max_octets - header
    if room <= 0:
        raise NotificationError("no room for data in a %d-octet part" % (max_octets,))
    total = -(-len(payload) // room)
    if total > 255:
        raise NotificationError("payload needs %d parts, more than 255" % (total,))
    return [
        encode_user_data(UserData(payload[i * room:(i + 1) * room], ports,
                                  Concatenation(reference, total, i + 1, wide_reference)))
        for i in range(total)
    ]


class Reassembler:
    """Concatenated parts in, whole payloads out (pure: the caller says what time it is).

    ::

        r = Reassembler()
        payload = r.add(parse_user_data(ud), sender="+447700900123", now=clock.seconds())
        r.expire(clock.seconds() - 300)
    """

    def __init__(self, max_pending: int = 64):
        self.max_pending = max_pending
        self._pending = {}  # key -> [first seen, {sequence: payload}]

    def __len__(self):
        return len(self._pending)

    def add(self, user_data: UserData, sender: str = "", now: float = 0.0) -> bytes | None:
        """The whole payload once ``user_data`` completes a message, else None.

        Unconcatenated user data comes straight back.  A repeated part is
        ignored; beyond ``max_pending`` incomplete messages the oldest goes.
        """
        c = user_data.concatenation
        if c is None:
            return user_data.payload
        key = (sender, user_data.ports, c.reference, c.wide, c.total)
        if key not in self._pending:
            while self._pending and len(self._pending) >= self.max_pending:
                oldest = min(self._pending, key=lambda k: self._pending[k][0])
                del self._pending[oldest]
            self._pending[key] = [now, {}]
        parts = self._pending[key][1]
        parts.setdefault(c.sequence, user_data.payload)
        if len(parts) < c.total:
            return None
        del self._pending[key]
        return b"".join(parts[i] for i in range(1, c.total + 1))

    def expire(self, before: float) -> int:
        """Drop incomplete messages first seen before ``before``; how many went."""
        old = [k for k, (seen, _) in self._pending.items() if seen < before]
        for key in old:
            del self._pending[key]
        return len(old)


# -- SMS-SUBMIT TPDU ---------------------------------------------------------


def dcs_alphabet(dcs: int) -> str:
    """``"gsm7"``, ``"8bit"`` or ``"ucs2"`` for a TP-DCS value (TS 23.038 §4)."""
    group = dcs >> 4
    if group <= 0x7:  # general data coding (incl. automatic deletion group)
        return ("gsm7", "8bit", "ucs2", "gsm7")[(dcs >> 2) & 0x3]
    if group == 0xF:
        return "8bit" if dcs & 0x04 else "gsm7"
    if group == 0xE:
        return "ucs2"
    return "gsm7"  # message waiting groups and reserved values


def relative_validity(seconds: int) -> int:
    """The smallest relative TP-VP octet lasting at least ``seconds`` (max 63 weeks)."""
    minutes = -(-max(int(seconds), 0) // 60)
    if minutes <= 12 * 60:
        return max(-(-minutes // 5) - 1, 0)
    if minutes <= 24 * 60:
        return 143 + -(-(minutes - 12 * 60) // 30)
    days = -(-minutes // (24 * 60))
    if days <= 30:
        return 166 + days
    return min(192 + max(-(-days // 7), 5), 255)


def relative_validity_seconds(vp: int) -> int:
    """How long a relative TP-VP octet lasts, in seconds."""
    _check_range("relative validity", vp, 0, 255)
    if vp <= 143:
        return (vp + 1) * 300
    if vp <= 167:
        return 12 * 3600 + (vp - 143) * 1800
    if vp <= 196:
        return (vp - 166) * 86400
    return (vp - 192) * 7 * 86400


@dataclass(frozen=True)
class SmsSubmit:
    """An SMS-SUBMIT TPDU (TS 23.040 §9.2.2.2).

    ``destination`` is ``"+"`` + digits for an international number, else
    digits (semi-octet characters ``0-9*#abc``); ``address_type`` overrides
    the TON/NPI octet (default 0x91 with ``"+"``, 0x81 without).
    ``user_data`` is the TP-UD octets, UDH included when ``udhi``.
    ``septets`` is TP-UDL for 7-bit alphabets only (None otherwise).
    ``smsc``: None = no SMSC field (AT+CMGS without it / the spec's vector),
    ``""`` = a zero-length field (use the modem's SMSC), else the number.
    """

    destination: str
    user_data: bytes
    udhi: bool = True
    message_reference: int = 0
    pid: int = 0
    dcs: int = DCS_8BIT
    vp_format: int = VPF_NONE
    validity: bytes = b""
    reject_duplicates: bool = False
    status_report: bool = False
    reply_path: bool = False
    address_type: int | None = None
    septets: int | None = None
    smsc: str | None = field(default=None)


def _default_type(number):
    return _TYPE_INTERNATIONAL if number.startswith("+") else _TYPE_UNKNOWN


def _semi_octets(digits):
    if not digits or len(digits) > 20 or any(c not in _SEMI_OCTETS for c in digits):
        raise NotificationError("not an address of 1..20 digits: %r" % (digits,))
    nibbles = [_SEMI_OCTETS.index(c) for c in digits] + ([0xF] if len(digits) % 2 else [])
    return bytes(nibbles[i] | nibbles[i + 1] << 4 for i in range(0, len(nibbles), 2))


def _address(number, address_type, what):
    if not isinstance(number, str):
        raise NotificationError("%s must be text" % (what,))
    if address_type is None:
        address_type = _default_type(number)
    _check_range("%s type" % (what,), address_type, 0x80, 0xFF)
    digits = number[1:] if number.startswith("+") else number
    return digits, address_type, _semi_octets(digits)


def _smsc_field(number):
    if number == "":
        return b"\x00"
    _, address_type, raw = _address(number, None, "SMSC")
    return bytes([len(raw) + 1, address_type]) + raw


def encode_submit(sms: SmsSubmit) -> bytes:
    """The PDU-mode bytes of ``sms`` (SMSC field first if ``sms.smsc`` is not None); strict."""
    _check_range("TP-MR", sms.message_reference, 0, 255)
    _check_range("TP-PID", sms.pid, 0, 255)
    _check_range("TP-DCS", sms.dcs, 0, 255)
    _check_range("TP-VPF", sms.vp_format, 0, 3)
    validity = _bytes(sms.validity, "TP-VP")
    if len(validity) != _VP_SIZES[sms.vp_format]:
        raise NotificationError("TP-VP must be %d octets for TP-VPF %d"
                                % (_VP_SIZES[sms.vp_format], sms.vp_format))
    user_data = _bytes(sms.user_data, "TP-UD")
    if dcs_alphabet(sms.dcs) == "gsm7":
        _check_range("TP-UDL (septets)", sms.septets, 0, 160)
        if len(user_data) != -(-sms.septets * 7 // 8):
            raise NotificationError("%d septets do not fill %d octets" % (sms.septets, len(user_data)))
        udl = sms.septets
    else:
        if sms.septets is not None:
            raise NotificationError("septets only apply to the GSM 7-bit alphabet")
        udl = len(user_data)
    if len(user_data) > MAX_USER_DATA:
        raise NotificationError("TP-UD of %d octets exceeds %d" % (len(user_data), MAX_USER_DATA))
    if sms.udhi:
        parse_user_data(user_data)  # the UDH must at least be well formed
    first = _MTI_SUBMIT | sms.vp_format << 3
    first |= (_RD if sms.reject_duplicates else 0) | (_SRR if sms.status_report else 0)
    first |= (_UDHI if sms.udhi else 0) | (_RP if sms.reply_path else 0)
    digits, address_type, address = _address(sms.destination, sms.address_type, "TP-DA")
    smsc = b"" if sms.smsc is None else _smsc_field(sms.smsc)
    return (smsc + bytes([first, sms.message_reference, len(digits), address_type]) + address
            + bytes([sms.pid, sms.dcs]) + validity + bytes([udl]) + user_data)


def at_cmgs(sms: SmsSubmit) -> tuple[int, str]:
    """``(length, hex)`` for ``AT+CMGS=<length>`` then ``<hex>`` Ctrl-Z in PDU mode.

    The length counts the TPDU only, not the SMSC field.
    """
    data = encode_submit(sms)
    smsc = 0 if sms.smsc is None else len(_smsc_field(sms.smsc))
    return len(data) - smsc, data.hex().upper()


def _need(data, pos, count, what):
    if pos + count > len(data):
        raise NotificationError("truncated %s" % (what,), offset=pos)


def _read_digits(raw, count):
    text = []
    for byte in raw:
        for nibble in (byte & 0x0F, byte >> 4):
            if nibble == 0xF:
                break
            text.append(_SEMI_OCTETS[nibble])
    return "".join(text[:count])


def _read_smsc(data):
    _need(data, 0, 1, "SMSC field")
    length = data[0]
    if length == 0:
        return "", 1
    _need(data, 1, length, "SMSC field")
    address_type = data[1]
    digits = _read_digits(data[2:1 + length], 2 * (length - 1))
    return ("+" if address_type == _TYPE_INTERNATIONAL else "") + digits, 1 + length


def parse_submit(data: bytes, *, with_smsc: bool = False) -> SmsSubmit:
    """An :class:`SmsSubmit` from PDU-mode bytes; ``with_smsc`` if they start with an SMSC field."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise NotificationError("TPDU must be bytes")
    data = bytes(data)
    smsc, pos = _read_smsc(data) if with_smsc else (None, 0)
    _need(data, pos, 4, "TPDU header")
    first, reference, count, address_type = data[pos:pos + 4]
    if first & 0x03 != _MTI_SUBMIT:
        raise NotificationError("not an SMS-SUBMIT (TP-MTI %d)" % (first & 0x03,), offset=pos)
    if count > 20:
        raise NotificationError("TP-DA of %d digits" % (count,), offset=pos + 2)
    if (address_type >> 4) & 0x7 == _TON_ALPHANUMERIC:
        raise NotificationError("alphanumeric TP-DA not supported", offset=pos + 3)
    pos += 4
    size = (count + 1) // 2
    _need(data, pos, size, "TP-DA")
    digits = _read_digits(data[pos:pos + size], count)
    if len(digits) != count:
        raise NotificationError("TP-DA shorter than its length", offset=pos)
    destination = ("+" if address_type == _TYPE_INTERNATIONAL else "") + digits
    if address_type == _default_type(destination):
        address_type = None
    pos += size
    vp_format = (first >> 3) & 0x3
    _need(data, pos, 3 + _VP_SIZES[vp_format], "TPDU")
    pid, dcs = data[pos], data[pos + 1]
    validity = data[pos + 2:pos + 2 + _VP_SIZES[vp_format]]
    pos += 2 + len(validity)
    udl = data[pos]
    pos += 1
    septets = udl if dcs_alphabet(dcs) == "gsm7" else None
    octets = udl if septets is None else -(-udl * 7 // 8)
    if octets > MAX_USER_DATA:
        raise NotificationError("TP-UDL %d too large" % (udl,), offset=pos - 1)
    _need(data, pos, octets, "TP-UD")
    user_data = data[pos:pos + octets]
    udhi = bool(first & _UDHI)
    if udhi:
        try:
            parse_user_data(user_data)
        except NotificationError as e:
            raise NotificationError(e.reason, offset=pos + e.offset) from None
    return SmsSubmit(
        destination=destination, user_data=user_data, udhi=udhi, message_reference=reference,
        pid=pid, dcs=dcs, vp_format=vp_format, validity=validity,
        reject_duplicates=bool(first & _RD), status_report=bool(first & _SRR),
        reply_path=bool(first & _RP), address_type=address_type, septets=septets, smsc=smsc)
