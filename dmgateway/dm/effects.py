"""The values that go in and out of a :class:`~.session.ServerSession`.

Inputs: :class:`DeviceState` (loaded by the dispatcher from the store) and
:class:`JobSpec` (a queued REST job).  Output: an :class:`Outcome` per client
message -- the reply to send and a list of effects, plain dataclasses that the
dispatcher performs (persist, publish, log).  The engine itself does no I/O.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..auth.verify import AuthAccount
from ..codec.syncml import SyncML


class SessionError(Exception):
    """The caller used a session wrongly (a programming error, not bad input)."""


@dataclass
class DeviceState:
    """What the dispatcher loads from the store for one device.

    The session updates the two nonces in place as it rotates them and
    reports every change that must be persisted as :class:`NoncesChanged`.
    """

    device_id: str  # the DevId (SyncHdr Source LocURI)
    server_id: str
    client: AuthAccount  # CLCRED: how the device authenticates to us
    client_nonce: bytes  # nonce the device must use now
    server: AuthAccount  # SRVCRED: how we authenticate to the device
    server_nonce: bytes  # nonce we must use now (the device hands out new ones)


@dataclass
class JobSpec:
    job_id: str
    commands: List[dict]  # REST API v1 command dicts (DESIGN.md §4), already validated
    atomic: bool = False


class Effect:
    """Base class of everything the dispatcher is asked to do."""

    __slots__ = ()  # (a subclass with slots has no instance dict either)


@dataclass
class DevInfoReceived(Effect):
    values: Dict[str, str]  # "DevId", "Man", "Mod", "DmV", "Lang", "Ext/..."
    # other nodes the client reported in the same Replace, by URI (Windows
    # sends ./Vendor/MSFT/DMClient/HWDevID with its DevInfo)
    reported: Dict[str, str] = field(default_factory=dict)


@dataclass
class DeviceChallenged(Effect):
    """The device challenged us (a Chal in its SyncHdr Status) for a scheme
    we hold no server credentials of: nothing can answer it."""

    scheme: str  # "md5", "hmac", "basic" or what the device wrote
    status: int


@dataclass
class NoncesChanged(Effect):
    """Persist the nonce(s) that are not None."""

    client_nonce: Optional[bytes] = None
    server_nonce: Optional[bytes] = None


@dataclass
class AuthFailed(Effect):
    status: int  # 401 or 407
    reason: str  # safe to log: never contains a secret


@dataclass
class Authenticated(Effect):
    scheme: str


@dataclass(slots=True)  # (one or two per job: no instance dict)
class JobStarted(Effect):
    job_id: str


@dataclass(slots=True)  # (one or two per job: no instance dict)
class JobFinished(Effect):
    job_id: str
    state: str  # "done" | "failed"
    results: List[dict]
    error: Optional[dict] = None  # {"code": ..., "message": ...} when failed


@dataclass
class EventRaised(Effect):
    type: str  # "generic_alert" | "client_event" | "no_end_of_data"
    payload: dict


@dataclass
class InputIgnored(Effect):
    """Something the client sent was dropped; log ``reason`` once."""

    reason: str


@dataclass
class SessionEnded(Effect):
    outcome: str  # "completed", "aborted", "auth_failed", "server_auth_rejected",
    #               "protocol_error" or the reason code given to abort()
    reason: str


@dataclass
class Outcome:
    """What to do with one client message."""

    reply: SyncML  # always a reply over HTTP (may be Status-only)
    hmac_header: Optional[str]  # x-syncml-hmac for the reply when HMAC is in use
    effects: List[Effect] = field(default_factory=list)
    finished: bool = False  # the session is over after this reply
    body: Optional[bytes] = None  # the encoded reply, when the session was given `encode`
