"""
What the store hands out and accepts: rows as frozen dataclasses, the
state vocabularies of DESIGN.md section 4, and the store's errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

# the life cycles (and their vocabularies) are dmgateway.jobstates'
from dmgateway.jobstates import JOB_STATES, NOTIFICATION_STATES, PENDING_JOB_STATES

__all__ = [
    "AUTH_TYPES",
    "JOB_STATES",
    "PENDING_JOB_STATES",
    "NOTIFY_MODES",
    "NOTIFICATION_STATES",
    "DELIVERY_STATES",
    "EVENT_FIELDS",
    "INTERRUPTED",
    "StoreError",
    "StoreClosed",
    "StoreUnavailable",
    "StoreContention",
    "NotFound",
    "Conflict",
    "SchemaTooNew",
    "ClientAuth",
    "ServerAuth",
    "Device",
    "Job",
    "Session",
    "Notification",
    "Delivery",
    "Recovery",
]

AUTH_TYPES = ("none", "basic", "md5", "hmac")
NOTIFY_MODES = ("auto", "sms", "sip", "none")
DELIVERY_STATES = ("pending", "delivered", "failed")

#: Keys every event has; a payload may not use them.
EVENT_FIELDS = ("seq", "type", "device_id", "time")

#: The error a running job gets when the process that ran it died.
INTERRUPTED = {
    "code": "interrupted",
    "message": "gateway restarted while the job was running",
}


class StoreError(Exception):
    """
    The database failed or refused an operation.

    @ivar sqlstate: the SQLSTATE code when the engine gave one, else L{None}.
    """

    def __init__(self, message: str, sqlstate: Optional[str] = None):
        super().__init__(message)
        self.sqlstate = sqlstate


class StoreClosed(StoreError):
    """The store was closed; nothing more can be done with it."""


class StoreUnavailable(StoreError):
    """
    The database cannot be reached or cannot write just now (connection
    lost, server restarting, disk full, file read-only): worth retrying
    later, not a fault of the request.
    """


class StoreContention(StoreError):
    """
    The transaction lost to concurrent ones (a deadlock, a serialization
    failure) every time it ran, and was rolled back each time: nothing of it
    was written.  Not an outage: the database works, and the same request
    may well succeed when asked again.
    """


class NotFound(StoreError):
    """A row the operation refers to (device, job, event, cursor) is absent."""


class Conflict(StoreError):
    """A unique or referential constraint refused the change."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer gateway than this one."""


@dataclass(frozen=True)
class ClientAuth:
    """
    How the device authenticates to the gateway.

    Only C{user_hash} = B64(MD5(name ":" secret)) is kept: it is enough to
    check basic, md5 and HMAC credentials, and the plain secret never is.

    @ivar nonce: the nonce the gateway expects the device to use next (raw
        bytes).  When writing, L{None} means "keep the stored nonce" (empty
        for a new device); rows read back always carry bytes.
    """

    type: str = "none"
    name: str = ""
    user_hash: str = field(default="", repr=False)
    nonce: Optional[bytes] = None


@dataclass(frozen=True)
class ServerAuth:
    """
    How the gateway authenticates to the device.

    @ivar secret: the plain secret; stored only for C{basic} (which sends
        it).  For other types it is dropped and reads back as L{None}.
    @ivar nonce: the nonce the device expects from the gateway (also used
        for package #0 digests); L{None} on write keeps the stored one.
    """

    type: str = "none"
    name: str = ""
    user_hash: str = field(default="", repr=False)
    secret: Optional[str] = field(default=None, repr=False)
    nonce: Optional[bytes] = None


@dataclass(frozen=True)
class Device:
    """A device account (one row of C{devices})."""

    device_id: str
    server_id: str
    client_auth: ClientAuth
    server_auth: ServerAuth
    msisdn: Optional[str]
    sip_uri: Optional[str]
    imsi: Optional[str]
    devinfo: Optional[dict]
    last_session: Optional[dict]
    auth_failures: int
    locked_until: Optional[float]
    created: float
    updated: float
    # other nodes the device reported with its DevInfo, by URI
    reported: Optional[dict] = None
    # the last challenge of the device we hold no credentials for
    device_challenge: Optional[dict] = None

    def locked(self, now: float) -> bool:
        """Whether authentication is locked out at time C{now}."""
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True)
class Job:
    """
    A job: management commands for one device, run in order.

    @ivar seq: the position of the job among all jobs (hence also among the
        jobs of its device); paging and "oldest first" follow it.
    """

    job_id: str
    device_id: str
    state: str
    commands: list
    atomic: bool
    notify: str
    ui_mode: int
    results: list
    error: Optional[dict]
    seq: int
    created: float
    updated: float


@dataclass(frozen=True)
class Session:
    """
    A live DM session held by gateway process C{node}.

    @ivar token: the session's key in the store, which is what the RespURI
        carries to find the session again (column C{session_id}; the
        C{token} column holds the same value).  Not the SyncML SessionID.
    @ivar job_ids: the jobs the session is working on.
    """

    token: str
    device_id: str
    node: str
    job_ids: list
    started: float
    last_activity: float


@dataclass(frozen=True)
class Notification:
    """
    A wake-up in the outbox.

    @ivar push_session_id: the 16-bit session id carried in package #0; the
        device opens its session with it, in hex, as the SyncML SessionID
        (column C{session_id}).
    @ivar payload: the bytes to hand to the bearer.
    """

    notification_id: int
    device_id: str
    job_id: Optional[str]
    bearer: str
    state: str
    attempts: int
    last_error: Optional[str]
    message_id: Optional[str]
    push_session_id: Optional[int]
    payload: bytes
    next_attempt_at: Optional[float]
    created: float
    updated: float


@dataclass(frozen=True)
class Delivery:
    """One event to be POSTed to one webhook URL."""

    delivery_id: int
    url: str
    event_seq: int
    state: str
    attempts: int
    last_error: Optional[str]
    next_attempt_at: Optional[float]
    created: float
    updated: float


@dataclass(frozen=True)
class Recovery:
    """
    What L{Store.recover} settled for one node.

    @ivar sessions: the tokens (store keys) of the sessions it ended.
    @ivar failed_jobs: ids of the running jobs it marked failed.
    @ivar devices: the devices those sessions belonged to.
    @ivar queued_jobs: how many jobs of those devices are still pending
        (queued or notified) and will run in a later session.
    """

    node: str
    sessions: tuple = ()
    failed_jobs: tuple = ()
    devices: tuple = ()
    queued_jobs: int = 0

    def counts(self) -> dict[str, Any]:
        """The numbers, as log fields."""
        return {
            "sessions_ended": len(self.sessions),
            "jobs_failed": len(self.failed_jobs),
            "jobs_queued": self.queued_jobs,
        }
