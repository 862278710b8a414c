"""The server side of SyncML DM sessions, sans I/O.

The dispatcher builds a :class:`ServerSession` per live session, feeds it
every client message and performs the effects it returns.
"""

from .effects import (
    Authenticated,
    AuthFailed,
    DeviceState,
    DevInfoReceived,
    Effect,
    EventRaised,
    InputIgnored,
    JobFinished,
    JobSpec,
    JobStarted,
    NoncesChanged,
    Outcome,
    SessionEnded,
    SessionError,
)
from .session import ServerSession

__all__ = [
    "Authenticated",
    "AuthFailed",
    "DeviceState",
    "DevInfoReceived",
    "Effect",
    "EventRaised",
    "InputIgnored",
    "JobFinished",
    "JobSpec",
    "JobStarted",
    "NoncesChanged",
    "Outcome",
    "SessionEnded",
    "SessionError",
    "ServerSession",
]
