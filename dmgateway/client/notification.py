"""Package #0 on the device side: parse, authenticate, decide (dm-notification §1, §2, §5).

::

    trigger = accept_notification(data, accounts, active_session_ids)
    if trigger is not None:
        session = ClientSession(trigger.account, session_id=trigger.session_id, ...)
        request = session.start(alert=1200)

``data`` is a package #0, a whole WSP push carrying one (content type 0x44,
application id syncml.dm), or a list of SMS TP-UD segments (user data
header included) that reassemble to such a push.  For segments arriving
one by one, :class:`SmsInbox` keeps the incomplete ones.  The parsing and
digest checks are :mod:`dmgateway.notify.package0`'s; only the DM 1.2
format is understood (0x58 has no confirmed layout).
"""

from dataclasses import dataclass
from typing import Optional

from ..auth.nonce import RESYNC_NONCES
from ..notify import package0, sms, wsp
from ..notify.package0 import NotificationError, Package0

__all__ = [
    "NotificationError",
    "Package0",
    "Trigger",
    "SmsInbox",
    "parse_notification",
    "verify_notification",
    "accept_notification",
    "unwrap",
    "UI_NOT_SPECIFIED",
    "UI_BACKGROUND",
    "UI_INFORMATIVE",
    "UI_USER_INTERACTION",
]

UI_NOT_SPECIFIED = package0.UI_NOT_SPECIFIED
UI_BACKGROUND = package0.UI_BACKGROUND
UI_INFORMATIVE = package0.UI_INFORMATIVE
UI_USER_INTERACTION = package0.UI_USER_INTERACTION


@dataclass
class Trigger:
    """An authenticated notification and the account it is for."""

    account: object
    package: Package0
    nonce: bytes  # the SRVCRED nonce that verified the digest
    resynchronised: bool

    @property
    def notification(self):
        """The :class:`~dmgateway.notify.package0.Notification` fields."""
        return self.package.notification

    @property
    def session_id(self):
        """The SyncHdr SessionID: upper-case hex without leading zeros."""
        return self.package.notification.syncml_session_id


def parse_notification(data) -> Package0:
    """A :class:`~dmgateway.notify.package0.Package0` from bytes; NotificationError if malformed."""
    return package0.parse(data)


def _credential(account):
    creds = account.server
    return package0.ServerCredential(creds.name, bytes(creds.nonce), secret=creds.secret)


def verify_notification(package, account, *, resync=True):
    """``(nonce, resynchronised)`` verifying the digest with ``account``'s SRVCRED, or None.

    The stored server nonce is tried first, then -- with ``resync`` -- both
    readings of the "0x00000000" resynchronisation nonce; the name hashed is
    the SRVCRED name and, if different, the trigger's server identifier.
    """
    verified = package0.verify(package, _credential(account),
                               resync_nonces=RESYNC_NONCES if resync else ())
    if verified is None:
        return None
    return verified.nonce, verified.resynchronised


def unwrap(data):
    """The candidate package #0 byte strings in ``data``: push body first, then ``data``.

    ``data`` is bytes (package #0 or a WSP push) or a list of SMS TP-UD
    segments; undecodable input yields nothing.
    """
    if isinstance(data, (list, tuple)):
        inbox = SmsInbox()
        whole = None
        for part in data:
            whole = inbox.add(part) or whole
        return unwrap(whole) if whole is not None else []
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return []
    data = bytes(data)
    found = []
    if len(data) > 2 and data[1] in (wsp.PDU_PUSH, wsp.PDU_CONFIRMED_PUSH):
        try:
            pdu = wsp.parse_push(data)
        except NotificationError:
            pdu = None
        if pdu is not None and wsp.is_dm_notification(pdu):
            found.append(pdu.body)
    found.append(data)
    return found


def accept_notification(data, accounts, active_session_ids=(), *, resync=True) -> Optional[Trigger]:
    """Checklist steps 2-4 and 6: a :class:`Trigger`, or None to ignore the message silently.

    ``accounts`` are :class:`~.account.Account` objects; the one whose
    ``server_id`` matches is used.  A notification for a session already
    running (by SessionID) is ignored.  A resynchronised trigger sets that
    account's server nonce to the nonce that verified.  The ui-mode (step 5)
    is the caller's to apply.
    """
    active = {str(s).upper() for s in active_session_ids}
    for candidate in unwrap(data):
        try:
            package = package0.parse(candidate)
        except NotificationError:
            continue
        server_id = package.notification.server_id
        account = next((a for a in accounts if a.server_id == server_id), None)
        if account is None:
            continue
        verified = verify_notification(package, account, resync=resync)
        if verified is None:
            continue
        if package.notification.syncml_session_id in active:
            return None
        nonce, resynchronised = verified
        if resynchronised:
            account.server.nonce = nonce
        return Trigger(account, package, nonce, resynchronised)
    return None


class SmsInbox:
    """SMS TP-UD segments in (UDH included), whole WSP pushes out.

    The caller says what time it is (``now``) so :meth:`expire` can drop
    parts of messages that never completed.
    """

    def __init__(self, max_pending=64):
        self.reassembler = sms.Reassembler(max_pending)

    def add(self, user_data, sender="", now=0.0, udhi=True):
        """The reassembled payload once ``user_data`` completes it, else None."""
        try:
            parsed = sms.parse_user_data(user_data, udhi)
        except NotificationError:
            return None
        return self.reassembler.add(parsed, sender, now)

    def expire(self, before):
        return self.reassembler.expire(before)
