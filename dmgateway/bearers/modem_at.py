"""The AT command side of a GSM modem in PDU mode (3GPP TS 27.005/27.007), without I/O.

What the modem protocol (:mod:`.modem_protocol`) reads and writes: the final
results and error codes (``+CMS ERROR``/``+CME ERROR`` with their names and
which are worth a retry), the unsolicited result codes, the ``AT+CMGS``
PDU check and its ``+CMGS: <mr>`` answer, ``+CDS`` status reports
(:func:`parse_status_report`), and the errors a send fails with.
"""

import re
from dataclasses import dataclass

__all__ = [
    "CME_ERRORS", "CMS_ERRORS", "CTRL_Z", "ERROR_RE", "ESC", "FINAL_OK", "MAX_LINE", "PDU_FOLLOWS",
    "RETRYABLE_CME", "RETRYABLE_CMS", "URC_PREFIXES", "CommandError", "CommandTimeout",
    "InvalidPDU", "ModemDown", "ModemError", "PinRejected", "QueueFull", "SimError",
    "StatusReport", "check_pdu", "error_name", "message_reference", "parse_status_report",
]

CTRL_Z = b"\x1a"
ESC = b"\x1b"
MAX_LINE = 4096  # longest line kept; a PDU line is at most ~350 characters

#: +CMS ERROR codes (TS 27.005 §3.2.5; 0..127 are TS 24.011 RP causes, 128..255 TS 23.040 TP-FCS)
CMS_ERRORS = {
    1: "unassigned number", 8: "operator determined barring", 10: "call barred",
    21: "short message transfer rejected", 27: "destination out of service",
    28: "unidentified subscriber", 29: "facility rejected", 30: "unknown subscriber",
    38: "network out of order", 41: "temporary failure", 42: "congestion",
    47: "resources unavailable", 50: "requested facility not subscribed",
    69: "requested facility not implemented", 81: "invalid short message reference",
    95: "invalid message", 96: "invalid mandatory information", 97: "message type not implemented",
    98: "message not compatible with protocol state", 99: "information element not implemented",
    111: "protocol error", 127: "interworking unspecified",
    128: "telematic interworking not supported", 129: "short message type 0 not supported",
    130: "cannot replace short message", 143: "unspecified TP-PID error",
    144: "data coding scheme not supported", 145: "message class not supported",
    159: "unspecified TP-DCS error", 160: "command cannot be actioned", 161: "command unsupported",
    176: "TPDU not supported", 192: "SC busy", 193: "no SC subscription", 194: "SC system failure",
    195: "invalid SME address", 196: "destination SME barred", 197: "duplicate SM rejected",
    198: "TP-VPF not supported", 199: "TP-VP not supported", 208: "SIM SMS storage full",
    210: "error in MS", 211: "memory capacity exceeded", 255: "unspecified error cause",
    300: "ME failure", 301: "SMS service of ME reserved", 302: "operation not allowed",
    303: "operation not supported", 304: "invalid PDU mode parameter",
    305: "invalid text mode parameter", 310: "SIM not inserted", 311: "SIM PIN required",
    312: "PH-SIM PIN required", 313: "SIM failure", 314: "SIM busy", 315: "SIM wrong",
    316: "SIM PUK required", 317: "SIM PIN2 required", 318: "SIM PUK2 required",
    320: "memory failure", 321: "invalid memory index", 322: "memory full",
    330: "SMSC address unknown", 331: "no network service", 332: "network timeout",
    340: "no +CNMA acknowledgement expected", 500: "unknown error",
}

#: +CME ERROR codes (TS 27.007 §9.2)
CME_ERRORS = {
    0: "phone failure", 1: "no connection to phone", 2: "phone adaptor link reserved",
    3: "operation not allowed", 4: "operation not supported", 5: "PH-SIM PIN required",
    10: "SIM not inserted", 11: "SIM PIN required", 12: "SIM PUK required", 13: "SIM failure",
    14: "SIM busy", 15: "SIM wrong", 16: "incorrect password", 17: "SIM PIN2 required",
    18: "SIM PUK2 required", 20: "memory full", 21: "invalid index", 22: "not found",
    23: "memory failure", 24: "text string too long", 25: "invalid characters in text string",
    30: "no network service", 31: "network timeout",
    32: "network not allowed - emergency calls only", 100: "unknown",
}

#: codes after which a later try may work
RETRYABLE_CMS = frozenset({38, 41, 42, 47, 192, 194, 314, 331, 332, 500})
RETRYABLE_CME = frozenset({14, 30, 31, 100})

FINAL_OK = "OK"
ERROR_RE = re.compile(r"^\+(CMS|CME) ERROR:\s*(.*)$", re.IGNORECASE)
#: unsolicited result codes; (+CMT, +CDS, +CBM) in PDU mode are followed by a PDU line
URC_PREFIXES = ("RING", "+CRING:", "+CLIP:", "+CMTI:", "+CMT:", "+CDS:", "+CDSI:", "+CBM:",
                 "+CBMI:", "+CREG:", "+CGREG:", "+CEREG:", "+CIEV:", "+CUSD:", "+CGEV:",
                 "NO CARRIER", "^")
PDU_FOLLOWS = ("+CMT:", "+CDS:", "+CBM:")


def error_name(kind, code):
    """A readable name for ``+CMS``/``+CME ERROR: <code>`` (``kind`` "CMS" or "CME")."""
    table = CMS_ERRORS if kind == "CMS" else CME_ERRORS
    if code is None:
        return "error"
    return table.get(code, "%s error %d" % (kind, code))


class ModemError(Exception):
    """Base of the errors a send fails with; ``retryable`` says if a later try may work."""

    retryable = False


class CommandError(ModemError):
    """The modem answered ``command`` with an error final result.

    ``kind`` is ``"CMS"``, ``"CME"`` or None (plain ``ERROR``); ``code`` the
    number (None for plain or verbose errors); ``name`` a readable text.
    """

    def __init__(self, command, kind=None, code=None, name=None):
        self.command = command
        self.kind = kind
        self.code = code
        self.name = name or error_name(kind, code)
        if kind is None:
            text = "ERROR"
        elif code is None:
            text = "+%s ERROR: %s" % (kind, self.name)
        else:
            text = "+%s ERROR: %d (%s)" % (kind, code, self.name)
        super().__init__("%s answered %s" % (command, text))
        retryable = RETRYABLE_CMS if kind == "CMS" else RETRYABLE_CME if kind == "CME" else ()
        self.retryable = code in retryable


class CommandTimeout(ModemError):
    """No final result in time (the port is closed and reopened)."""
    retryable = True


class ModemDown(ModemError):
    """The port is closed or the modem not initialised: try again later."""
    retryable = True


class QueueFull(ModemError):
    """Too many sends wait already."""
    retryable = True


class SimError(ModemError):
    """The SIM needs a PIN that is not configured, or is missing/blocked."""


class PinRejected(SimError):
    """The SIM refused the configured PIN: the service stops so the SIM does not lock."""


class InvalidPDU(ModemError):
    """What was given to send is not a ``(length, hex)`` PDU."""


@dataclass(frozen=True)
class StatusReport:
    """A ``+CDS`` delivery report: TP-MR of the sent message and TP-ST.

    ``state`` is ``"delivered"`` (TP-ST 0x00-0x1F), ``"pending"`` (SC still
    trying, 0x20-0x3F) or ``"failed"``.
    """

    reference: int
    status: int
    recipient: str = ""

    @property
    def state(self):
        if self.status < 0x20:
            return "delivered"
        return "pending" if self.status < 0x40 else "failed"


def _digits(raw, count):
    nibbles = [n for byte in raw for n in (byte & 0x0F, byte >> 4) if n != 0xF]
    return "".join("0123456789*#abc"[n] for n in nibbles[:count])


def parse_status_report(data, tpdu_length=None):
    """A :class:`StatusReport` from SMS-STATUS-REPORT bytes (TS 23.040 §9.2.2.3).

    With ``tpdu_length`` (the ``+CDS: <length>``), extra leading bytes are an
    SMSC address field and are skipped.  Raises ValueError on anything else.
    """
    data = bytes(data)
    if tpdu_length is not None and len(data) > tpdu_length:
        data = data[len(data) - tpdu_length:]
    if len(data) < 4 or data[0] & 0x03 != 0x02:
        raise ValueError("not an SMS-STATUS-REPORT")
    reference, count, address_type = data[1], data[2], data[3]
    pos = 4 + (count + 1) // 2
    if pos + 15 > len(data):
        raise ValueError("truncated SMS-STATUS-REPORT")
    if (address_type >> 4) & 0x7 == 5:  # alphanumeric: keep it as hex
        recipient = data[4:pos].hex()
    else:
        recipient = ("+" if address_type & 0x70 == 0x10 else "") + _digits(data[4:pos], count)
    return StatusReport(reference, data[pos + 14], recipient)


def check_pdu(length, text):
    """``(length, HEX)`` for ``AT+CMGS=<length>``; ValueError unless it is a TPDU length and hex PDU."""
    if not isinstance(length, int) or isinstance(length, bool) or not 7 <= length <= 176:
        raise ValueError("TPDU length %r out of range" % (length,))
    if not isinstance(text, str) or not re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", text):
        raise ValueError("PDU is not hex text")
    if len(text) // 2 < length:
        raise ValueError("PDU of %d bytes shorter than its length %d" % (len(text) // 2, length))
    return length, text.upper()


def message_reference(lines):
    """The TP-MR in the ``+CMGS: <mr>`` line of an answer (None without one)."""
    for line in lines:
        if line.upper().startswith("+CMGS:"):
            try:
                return int(line.split(":", 1)[1].split(",")[0])
            except ValueError:
                return None
    return None
