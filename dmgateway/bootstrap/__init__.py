"""Server-side bootstrap (DM-4, CP-1, DM-3): documents, SEC/MAC and the WAP Push that carries them.

Pure: no Twisted, no clock.  :mod:`.dmprofile` builds the DM-profile
message, :mod:`.cpprofile` the CP document, :mod:`.sec` the MAC.  Here::

    boot = secure(PROFILE_CP, wbxml, "USERPIN", pin="1234")
    pdu = push_pdu(boot)          # 01 06 2F 1F 2D B6 91 81 92 "4332FD96..." 00 <wbxml>
    boot = read_push(pdu)         # back: profile, document, SEC, MAC

CP goes as ``application/vnd.wap.connectivity-wbxml`` (0x36) without an
application id; DM as ``application/vnd.syncml.dm+wbxml`` (0x42) with
``X-WAP-Application-ID: x-wap-application:syncml.dm`` (dm-bootstrap-cp §4).
SEC (a short integer 0..3) and MAC (40 hex digits) are content-type
parameters; with no security (``sec`` None) there are none.
"""

from dataclasses import dataclass
from typing import Optional

from ..notify import wsp
from ..notify.package0 import NotificationError
from . import sec as _sec

__all__ = ["PROFILES", "PROFILE_CP", "PROFILE_DM", "Bootstrap", "BootstrapPushError",
           "push_pdu", "read_push", "secure"]

PROFILE_CP, PROFILE_DM = "cp", "dm"
PROFILES = (PROFILE_CP, PROFILE_DM)
_CONTENT_TYPES = {PROFILE_CP: wsp.CT_CONNECTIVITY_WBXML, PROFILE_DM: wsp.CT_SYNCML_DM_WBXML}
_PROFILE_OF = {wsp.CONTENT_TYPES[code]: profile for profile, code in _CONTENT_TYPES.items()}


class BootstrapPushError(ValueError):
    """Bytes that are not a bootstrap push."""


@dataclass(frozen=True)
class Bootstrap:
    """A bootstrap document with its security.

    ``sec`` is the ProvBoot method name or None; ``mac`` the MAC parameter;
    ``user_code`` what the user must type for USERPINMAC (PIN + MAC digits).
    """

    profile: str
    document: bytes
    sec: Optional[str] = None
    mac: Optional[str] = None
    user_code: Optional[str] = None

    @property
    def content_type(self):
        return wsp.CONTENT_TYPES[_CONTENT_TYPES[self.profile]]


def secure(profile, document, sec=None, *, pin=None, imsi=None):
    """The :class:`Bootstrap` of ``document`` under method ``sec`` (None or ``"none"``: no MAC).

    Raises :class:`~.sec.SecurityError` when the PIN or IMSI the method
    needs is missing or malformed.
    """
    if profile not in PROFILES:
        raise ValueError("unknown bootstrap profile %r" % (profile,))
    if sec is None or (isinstance(sec, str) and sec.strip().lower() == "none"):
        return Bootstrap(profile, bytes(document))
    name = _sec.method_name(sec)
    mac = _sec.compute_mac(name, document, pin=pin, imsi=imsi)
    code = _sec.userpinmac_code(pin, document) if name == "USERPINMAC" else None
    return Bootstrap(profile, bytes(document), name, mac, code)


def push_pdu(bootstrap, *, tid=1):
    """The WSP connectionless push carrying ``bootstrap``."""
    parameters = ()
    if bootstrap.sec is not None:
        parameters = (("SEC", _sec.method_code(bootstrap.sec)), ("MAC", bootstrap.mac))
    app_id = wsp.APP_SYNCML_DM if bootstrap.profile == PROFILE_DM else None
    return wsp.encode_push(wsp.PushPDU(_CONTENT_TYPES[bootstrap.profile], bootstrap.document,
                                       app_id=app_id, parameters=parameters, tid=tid))


def read_push(data):
    """The :class:`Bootstrap` in a WSP push (SEC as a code or a name; MAC as sent)."""
    try:
        pdu = wsp.parse_push(data)
    except NotificationError as e:
        raise BootstrapPushError("not a WSP push: %s" % (e,)) from None
    profile = _PROFILE_OF.get(wsp.content_type_name(pdu))
    if profile is None:
        raise BootstrapPushError("not a bootstrap push (content type %s)"
                                 % (wsp.content_type_name(pdu),))
    params = {}
    for name, value in pdu.parameters:
        if isinstance(name, str):
            params.setdefault(name.upper(), value)
    sec = params.get("SEC")
    if sec is not None:
        try:
            sec = _sec.method_name(sec)
        except _sec.SecurityError as e:
            raise BootstrapPushError(str(e)) from None
    mac = params.get("MAC")
    return Bootstrap(profile, pdu.body, sec, mac if isinstance(mac, str) else None)
