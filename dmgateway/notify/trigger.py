"""From "wake this device up" to the bytes a bearer sends (dm-notification §3, §4.2).

::

    message = build_trigger(cred, "com.example.dms", 0x1234, ui_mode=UI_BACKGROUND,
                            bearer="sms", reference=ref)
    for short_message in message.payloads:
        smpp.submit_sm(destination, short_message,
                       esm_class=message.esm_class, data_coding=message.data_coding)

SMS: each payload is one TP-UD octet string (UDH + a slice of the WSP push
``01 06 03 C4 AF 87`` + package #0), at most 140 octets.  Because every
payload starts with a UDH, the SMPP ``submit_sm`` must set the UDHI bit
of ``esm_class`` (0x40, OR-ed with messaging-mode bits if the SMSC wants
them) and must not add SAR TLVs; a modem TPDU sets TP-UDHI
(:func:`sms_submits`).  ``data_coding`` is 8-bit (0x04 by default; 0xF5
for SMSCs that pass GSM message-class values).

SIP: the single payload is the raw package #0, the body of a SIP MESSAGE
with ``Content-Type: application/vnd.syncml.notification``.
"""

from dataclasses import dataclass

from . import package0 as p0
from . import sms as _sms
from . import wsp

__all__ = [
    "BEARERS",
    "BEARER_SIP",
    "BEARER_SMS",
    "ESM_CLASS_UDHI",
    "MAX_PUSH_HEADERS",
    "TriggerMessage",
    "build_trigger",
    "push_message",
    "sms_submits",
]

BEARER_SMS, BEARER_SIP = "sms", "sip"
BEARERS = (BEARER_SMS, BEARER_SIP)
ESM_CLASS_UDHI = 0x40
MAX_PUSH_HEADERS = 48  # WDP + WSP header bytes the DM transport profile allows


@dataclass(frozen=True)
class TriggerMessage:
    """What to send for one notification.

    ``payloads``: SMS user data segments (UDH included), or ``(package0,)``
    for SIP.  ``esm_class``/``data_coding`` are the SMPP values for SMS
    (None for SIP).
    """

    bearer: str
    package0: bytes
    payloads: tuple
    content_type: str
    syncml_session_id: str
    esm_class: int | None = None
    data_coding: int | None = None


def build_trigger(credential: p0.ServerCredential, server_id: str, push_session_id: int, *,
                  ui_mode: int = p0.UI_NOT_SPECIFIED, version: int = p0.DEFAULT_VERSION,
                  nonce: bytes | None = None, bearer: str = BEARER_SMS,
                  initiator: int = p0.INITIATOR_SERVER, body: bytes = b"",
                  reference: int = 0, wide_reference: bool = False, tid: int = 1,
                  ports=(_sms.WAP_PUSH_PORT, _sms.WSP_PORT),
                  data_coding: int = _sms.DCS_8BIT) -> TriggerMessage:
    """Package #0 for the device's SRVCRED ``credential``, packed for ``bearer``.

    ``nonce`` overrides the credential's nonce (e.g. a resync nonce);
    ``reference`` is the concatenation reference, used only if the push
    needs more than one SMS.
    """
    if bearer not in BEARERS:
        raise p0.NotificationError("unknown bearer %r" % (bearer,))
    notification = p0.Notification(server_id=server_id, push_session_id=push_session_id, ui_mode=ui_mode,
                                   initiator=initiator, version=version, body=body)
    package = p0.build(notification, credential, nonce)
    if bearer == BEARER_SIP:
        return TriggerMessage(bearer, package, (package,), p0.CONTENT_TYPE,
                              notification.syncml_session_id)
    if _sms.dcs_alphabet(data_coding) != "8bit":
        raise p0.NotificationError("data coding 0x%02X is not 8-bit" % (data_coding,))
    push = wsp.encode_push(wsp.PushPDU(wsp.CT_SYNCML_NOTIFICATION, package,
                                       app_id=wsp.APP_SYNCML_DM, tid=tid))
    segments = _sms.segment(push, reference=reference, ports=ports, wide_reference=wide_reference)
    headers = len(push) - len(package) + 1 + segments[0][0]  # WSP + UDH of the first part
    if headers > MAX_PUSH_HEADERS:
        raise p0.NotificationError("WDP + WSP headers of %d bytes exceed %d" % (headers, MAX_PUSH_HEADERS))
    return TriggerMessage(bearer, package, tuple(segments), p0.CONTENT_TYPE,
                          notification.syncml_session_id, ESM_CLASS_UDHI, data_coding)


def push_message(push: bytes, *, reference: int = 0, wide_reference: bool = False,
                 ports=(_sms.WAP_PUSH_PORT, _sms.WSP_PORT),
                 data_coding: int = _sms.DCS_8BIT) -> TriggerMessage:
    """A ready WSP push (e.g. a bootstrap, dm-bootstrap-cp §4) packed for SMS.

    Same layering as a notification: port UDH, concatenated when the push
    needs more than one SMS (a bootstrap usually does), 8-bit data coding.
    """
    if not isinstance(push, (bytes, bytearray)) or len(push) < 3:
        raise p0.NotificationError("a push must be bytes")
    if _sms.dcs_alphabet(data_coding) != "8bit":
        raise p0.NotificationError("data coding 0x%02X is not 8-bit" % (data_coding,))
    content_type = wsp.content_type_name(wsp.parse_push(bytes(push)))
    segments = _sms.segment(bytes(push), reference=reference, ports=ports,
                            wide_reference=wide_reference)
    return TriggerMessage(BEARER_SMS, bytes(push), tuple(segments), content_type, "",
                          ESM_CLASS_UDHI, data_coding)


def sms_submits(message: TriggerMessage, destination: str, *, message_reference: int = 0,
                smsc: str | None = None, **fields) -> list[_sms.SmsSubmit]:
    """SMS-SUBMIT TPDUs (TP-UDHI set) for a PDU-mode modem, one a segment.

    TP-MR counts up from ``message_reference``; ``fields`` go to every
    :class:`~.sms.SmsSubmit` (``vp_format``, ``validity``, ``status_report``...).
    """
    if message.bearer != BEARER_SMS:
        raise p0.NotificationError("not an SMS trigger")
    return [
        _sms.SmsSubmit(destination=destination, user_data=segment, udhi=True,
                       message_reference=(message_reference + i) & 0xFF, dcs=message.data_coding,
                       smsc=smsc, **fields)
        for i, segment in enumerate(message.payloads)
    ]
