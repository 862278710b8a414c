"""DM 1.2 notification "package #0" (dm-notification §1, §2).

::

    digest (16) | version:10 ui-mode:2 initiator:1 future:27 sessionid:16 len:8 | server id | body

The digest covers the *trigger*: every byte after the digest field::

    digest = H(B64(H(name ":" secret)) ":" nonce ":" B64(H(trigger)))

which is :func:`dmgateway.auth.credentials.mac_digest` over the trigger,
keyed with the SRVCRED the device holds for this server (``AAuthName``,
``AAuthSecret``, ``AAuthData`` as raw nonce bytes).

Typical server use::

    cred = ServerCredential("com.example.dms", nonce, secret="srvPass123")
    data = build(Notification("com.example.dms", 0x1234, ui_mode=UI_BACKGROUND), cred)

and on the device side ``verify(parse(data), cred)``.
"""

from dataclasses import dataclass, field

from ..auth.credentials import constant_time_equal, mac_digest, user_hash
from ..auth.nonce import RESYNC_NONCES
from ..codec.errors import CodecError

__all__ = [
    "ACCEPTED_VERSIONS",
    "CONTENT_TYPE",
    "DEFAULT_VERSION",
    "DIGEST_SIZE",
    "INITIATOR_CLIENT",
    "INITIATOR_SERVER",
    "MIN_SIZE",
    "UI_BACKGROUND",
    "UI_INFORMATIVE",
    "UI_NOT_SPECIFIED",
    "UI_USER_INTERACTION",
    "Notification",
    "NotificationError",
    "Package0",
    "ServerCredential",
    "Verification",
    "build",
    "compute_digest",
    "encode_trigger",
    "parse",
    "verify",
]

CONTENT_TYPE = "application/vnd.syncml.notification"

UI_NOT_SPECIFIED, UI_BACKGROUND, UI_INFORMATIVE, UI_USER_INTERACTION = 0, 1, 2, 3
INITIATOR_CLIENT, INITIATOR_SERVER = 0, 1

DEFAULT_VERSION = 11  # "1.1": what DM 1.2 mandates
ACCEPTED_VERSIONS = range(10, 14)  # tolerated on receipt (dm-notification §1, unconfirmed)
DIGEST_SIZE = 16
HEADER_SIZE = 8
MIN_SIZE = DIGEST_SIZE + HEADER_SIZE + 1


class NotificationError(CodecError):
    """Bytes (or values) that are not a valid notification, push or SMS."""


@dataclass(frozen=True)
class Notification:
    """The fields of a trigger: everything but the digest."""

    server_id: str
    push_session_id: int
    ui_mode: int = UI_NOT_SPECIFIED
    initiator: int = INITIATOR_SERVER
    version: int = DEFAULT_VERSION
    body: bytes = b""

    @property
    def syncml_session_id(self) -> str:
        """The ``SyncHdr/SessionID`` the device will use: upper-case hex, no leading zeros."""
        return "%X" % (self.push_session_id,)


@dataclass(frozen=True)
class Package0:
    """A parsed package #0: its digest, its fields and the exact trigger bytes."""

    digest: bytes
    notification: Notification
    trigger: bytes


@dataclass(frozen=True)
class ServerCredential:
    """The SRVCRED a device holds for the server: name, secret (or its hash), nonce.

    A store that keeps only ``B64(H(name ":" secret))`` passes it as
    ``hashed`` instead of ``secret``.  Neither appears in ``repr``.
    """

    name: str
    nonce: bytes
    secret: str | None = field(default=None, repr=False)
    hashed: str | None = field(default=None, repr=False)

    def __post_init__(self):
        if (self.secret is None) == (self.hashed is None):
            raise ValueError("give exactly one of secret and hashed")

    def hash_for(self, name: str | None = None) -> str:
        """``B64(H(name ":" secret))``; ``name`` defaults to the credential's own."""
        if self.hashed is not None:
            if name not in (None, self.name):
                raise ValueError("only the stored hash of %r is known" % (self.name,))
            return self.hashed
        return user_hash(self.name if name is None else name, self.secret)


@dataclass(frozen=True)
class Verification:
    """A digest that verified: with which nonce, and whether that was a resync nonce."""

    nonce: bytes
    resynchronised: bool
    name: str


# -- writing -----------------------------------------------------------------


def _check_range(what, value, low, high):
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise NotificationError("%s must be an integer in %d..%d, not %r" % (what, low, high, value))


def encode_trigger(notification: Notification) -> bytes:
    """The trigger bytes (header, server id, body) of ``notification``; strict."""
    n = notification
    _check_range("version", n.version, 0, 0x3FF)
    _check_range("ui-mode", n.ui_mode, 0, 3)
    _check_range("initiator", n.initiator, 0, 1)
    _check_range("session id", n.push_session_id, 1, 0xFFFF)
    if not isinstance(n.server_id, str):
        raise NotificationError("server id must be text")
    server_id = n.server_id.encode("utf-8", "surrogatepass")
    if not 1 <= len(server_id) <= 255:
        raise NotificationError("server id must be 1..255 bytes, not %d" % (len(server_id),))
    if not isinstance(n.body, (bytes, bytearray)):
        raise NotificationError("trigger body must be bytes")
    header = (n.version << 54) | (n.ui_mode << 52) | (n.initiator << 51)
    header |= (n.push_session_id << 8) | len(server_id)
    return header.to_bytes(HEADER_SIZE, "big") + server_id + bytes(n.body)


def compute_digest(server_hash: str, nonce: bytes, trigger: bytes) -> bytes:
    """The raw 16-byte digest of ``trigger`` for a SRVCRED hash and nonce."""
    return mac_digest(server_hash, bytes(nonce), bytes(trigger))


def build(notification: Notification, credential: ServerCredential, nonce: bytes | None = None) -> bytes:
    """Package #0 bytes for ``notification``, signed with ``credential``.

    ``nonce`` overrides the credential's nonce (e.g. a resync nonce).
    """
    trigger = encode_trigger(notification)
    used = credential.nonce if nonce is None else nonce
    if not isinstance(used, (bytes, bytearray)):
        raise NotificationError("the nonce must be bytes (decode base64 first)")
    return compute_digest(credential.hash_for(), used, trigger) + trigger


# -- reading -----------------------------------------------------------------


def parse(data: bytes, *, versions=ACCEPTED_VERSIONS) -> Package0:
    """A :class:`Package0` from bytes, or :class:`NotificationError`.

    Tolerant: non-zero future-use bits and a session id of 0 are accepted;
    ``versions`` (default 10..13) lists the acceptable version values.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise NotificationError("package #0 must be bytes")
    data = bytes(data)
    if len(data) < MIN_SIZE:
        raise NotificationError("package #0 of %d bytes is shorter than %d" % (len(data), MIN_SIZE),
                                offset=len(data))
    header = int.from_bytes(data[DIGEST_SIZE:DIGEST_SIZE + HEADER_SIZE], "big")
    version = header >> 54
    if version not in versions:
        raise NotificationError("unsupported notification version %d" % (version,), offset=DIGEST_SIZE)
    length = header & 0xFF
    start = DIGEST_SIZE + HEADER_SIZE
    if length == 0:
        raise NotificationError("empty server identifier", offset=start - 1)
    if start + length > len(data):
        raise NotificationError("server identifier runs past the end", offset=start - 1)
    try:
        server_id = data[start:start + length].decode("utf-8")
    except UnicodeDecodeError as e:
        raise NotificationError("server identifier is not UTF-8", offset=start + e.start) from None
    notification = Notification(
        server_id=server_id,
        push_session_id=(header >> 8) & 0xFFFF,
        ui_mode=(header >> 52) & 0x3,
        initiator=(header >> 51) & 0x1,
        version=version,
        body=data[start + length:],
    )
    return Package0(digest=data[:DIGEST_SIZE], notification=notification, trigger=data[DIGEST_SIZE:])


def verify(package: Package0, credential: ServerCredential, *, resync_nonces=RESYNC_NONCES,
           trigger_name: bool = True) -> Verification | None:
    """Check ``package``'s digest the way a device does; None if it fails.

    The credential's nonce is tried first, then each of ``resync_nonces``
    (default: ASCII ``"0x00000000"`` and four zero bytes; pass ``()`` to
    disable resynchronisation).  With ``trigger_name`` and a plain secret,
    the trigger's server id is also tried as the hashed name (the AOSP
    reading) when it differs from the SRVCRED name (libdmclient's).
    """
    names = [credential.name]
    if trigger_name and credential.secret is not None and package.notification.server_id != credential.name:
        names.append(package.notification.server_id)
    candidates = [(bytes(credential.nonce), False)] + [(bytes(n), True) for n in resync_nonces]
    for nonce, resynchronised in candidates:
        for name in names:
            digest = compute_digest(credential.hash_for(name), nonce, package.trigger)
            if constant_time_equal(digest, package.digest):
                return Verification(nonce=nonce, resynchronised=resynchronised, name=name)
    return None
