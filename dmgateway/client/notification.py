"""Package #0 on the device side: parse, authenticate, decide (dm-notification §1, §2, §5).

::

    trigger = accept_notification(data, accounts, active_session_ids)
    if trigger is not None:
        session = ClientSession(trigger.account, session_id=trigger.session_id, ...)
        request = session.start(alert=1200)

Only the DM 1.2 format (``application/vnd.syncml.notification``, WSP 0x44)
is understood; the 0x58 format has no confirmed layout and is refused by
whoever dispatches on the content type.
"""

from dataclasses import dataclass
from typing import Optional

from ..auth.credentials import constant_time_equal, mac_digest, user_hash
from ..auth.nonce import RESYNC_NONCES

__all__ = [
    "NotificationError",
    "Notification",
    "Trigger",
    "parse_notification",
    "verify_notification",
    "accept_notification",
    "UI_NOT_SPECIFIED",
    "UI_BACKGROUND",
    "UI_INFORMATIVE",
    "UI_USER_INTERACTION",
]

UI_NOT_SPECIFIED, UI_BACKGROUND, UI_INFORMATIVE, UI_USER_INTERACTION = 0, 1, 2, 3
ACCEPTED_VERSIONS = range(10, 14)  # 11 is DM 1.2's; 10-13 tolerated (dm-notification §1)
_MIN_SIZE = 25


class NotificationError(ValueError):
    """Bytes that are not a DM 1.2 package #0."""


@dataclass
class Notification:
    digest: bytes
    version: int
    ui_mode: int
    initiator: int  # 1 = server initiated
    session_id: int
    server_id: str
    body: bytes  # the vendor-specific trigger body
    trigger: bytes  # everything the digest covers

    @property
    def session_id_text(self):
        """The SyncHdr SessionID: upper-case hex without leading zeros."""
        return "%X" % (self.session_id,)


@dataclass
class Trigger:
    """An authenticated notification and the account it is for."""

    account: object
    notification: Notification
    nonce: bytes  # the SRVCRED nonce that verified the digest
    resynchronised: bool

    @property
    def session_id(self):
        return self.notification.session_id_text


def parse_notification(data):
    """A :class:`Notification` from package #0 bytes; NotificationError if malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise NotificationError("package #0 must be bytes")
    data = bytes(data)
    if len(data) < _MIN_SIZE:
        raise NotificationError("package #0 of %d bytes is shorter than %d" % (
            len(data), _MIN_SIZE))
    header = int.from_bytes(data[16:24], "big")
    length = header & 0xFF
    if length == 0:
        raise NotificationError("empty server identifier")
    if 24 + length > len(data):
        raise NotificationError("server identifier runs past the end")
    try:
        server_id = data[24:24 + length].decode("utf-8")
    except UnicodeDecodeError:
        raise NotificationError("server identifier is not UTF-8") from None
    return Notification(
        digest=data[:16],
        version=header >> 54,
        ui_mode=(header >> 52) & 0x3,
        initiator=(header >> 51) & 0x1,
        session_id=(header >> 8) & 0xFFFF,
        server_id=server_id,
        body=data[24 + length:],
        trigger=data[16:],
    )


def verify_notification(notification, account, *, resync=True):
    """``(nonce, resynchronised)`` verifying the digest with ``account``'s SRVCRED, or None.

    The stored server nonce is tried first, then -- with ``resync`` -- both
    readings of the "0x00000000" resynchronisation nonce.  The name hashed
    is the trigger's server identifier (AOSP) and, if different, the
    SRVCRED name (libdmclient).
    """
    creds = account.server
    names = [notification.server_id]
    if creds.name != notification.server_id:
        names.append(creds.name)
    nonces = [(creds.nonce, False)]
    if resync:
        nonces.extend((nonce, True) for nonce in RESYNC_NONCES)
    for nonce, resynchronised in nonces:
        for name in names:
            digest = mac_digest(user_hash(name, creds.secret), nonce, notification.trigger)
            if constant_time_equal(digest, notification.digest):
                return nonce, resynchronised
    return None


def accept_notification(data, accounts, active_session_ids=(), *, resync=True) -> Optional[Trigger]:
    """Checklist steps 2-4 and 6: a :class:`Trigger`, or None to ignore the message silently.

    ``accounts`` are :class:`~.account.Account` objects; the one whose
    ``server_id`` matches is used.  A resynchronised trigger sets that
    account's server nonce to the nonce that verified.  The ui-mode (step 5)
    is the caller's to apply.
    """
    try:
        notification = parse_notification(data)
    except NotificationError:
        return None
    if notification.version not in ACCEPTED_VERSIONS:
        return None
    account = next((a for a in accounts if a.server_id == notification.server_id), None)
    if account is None:
        return None
    verified = verify_notification(notification, account, resync=resync)
    if verified is None:
        return None
    if notification.session_id_text in set(active_session_ids):
        return None
    nonce, resynchronised = verified
    if resynchronised:
        account.server.nonce = nonce
    return Trigger(account, notification, nonce, resynchronised)
