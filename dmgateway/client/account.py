"""The DM account a client session runs with (one ``./DMAcc/<x>`` entry).

Plain data: the device identity, the server it talks to and the two
credential sets of dm-security §1 -- ``client`` (CLCRED: what we send) and
``server`` (SRVCRED: what we expect from the server).  Nonces are raw bytes;
the session updates them as the spec says, so the same :class:`Account`
can be handed to the next session.
"""

from dataclasses import dataclass, field
from typing import Optional

__all__ = ["Credentials", "Account", "GenericAlert", "session_id_for_notification", "AAUTH_TYPES"]

# scheme -> DMAcc AAuthType (dm-security §1)
AAUTH_TYPES = {"none": "TRANSPORT", "basic": "BASIC", "md5": "DIGEST", "hmac": "HMAC"}


@dataclass
class Credentials:
    """One AppAuth entry: ``scheme`` is ``none``, ``basic``, ``md5`` or ``hmac``."""

    scheme: str
    name: str
    secret: str = field(repr=False)
    nonce: bytes = field(default=b"", repr=False)

    def __post_init__(self):
        self.scheme = (self.scheme or "none").strip().lower()
        if self.scheme not in AAUTH_TYPES:
            raise ValueError("unknown authentication scheme %r" % (self.scheme,))
        self.nonce = bytes(self.nonce or b"")


@dataclass
class Account:
    """What a device knows about one DM server.

    ``name`` is the ``<x>`` of ``./DMAcc/<x>``.
    """

    device_id: str
    server_id: str
    server_url: str
    client: Credentials
    server: Credentials
    name: str = "example"


@dataclass
class GenericAlert:
    """One Generic Alert (1226) item (dm-protocol §5.2).

    ``type`` is the full Meta Type, e.g.
    ``"Reversed-Domain-Name: org.openmobilealliance.dm.firmwareupdate.download"``.
    """

    type: str
    format: str
    data: str
    source: Optional[str] = None
    mark: Optional[str] = None
    correlator: Optional[str] = None


def session_id_for_notification(push_session_id):
    """The SessionID text of a server-initiated session: upper-case hex, no leading zeros."""
    if not isinstance(push_session_id, int) or not 0 <= push_session_id <= 0xFFFF:
        raise ValueError("a notification session id is a 16-bit number")
    return "%X" % (push_session_id,)
