"""What the outbox decides, apart from doing it (STYLE.md convention 3).

Each function takes what the outbox read from the store (a
:class:`~dmgateway.store.model.Notification`, its job, the bearers that can
reach the device, the time) and returns what to do; the service
(:mod:`dmgateway.outbox.service`) performs it in one store batch.  Nothing
here does I/O or reads the clock.
"""

from dataclasses import dataclass, replace
from typing import Optional

from dmgateway.notify.package0 import NotificationError
from dmgateway.notify.wsp import encode_push, parse_push

__all__ = [
    "Postpone",
    "Drop",
    "Retry",
    "GiveUp",
    "Fallback",
    "FailJob",
    "Renotify",
    "ExpireJob",
    "choose_bearer",
    "new_push_session_id",
    "before_send",
    "after_temporary_failure",
    "after_failure",
    "still_on_its_way",
    "renotify",
    "notification_event",
    "forgotten_payload",
]


@dataclass(frozen=True)
class Postpone:
    """Leave the notification queued until ``at`` (its device is in a session)."""

    at: float


@dataclass(frozen=True)
class Drop:
    """The notification is moot: it expires with ``reason``."""

    reason: str


@dataclass(frozen=True)
class Retry:
    """Try the same bearer again at ``at`` (``delay`` seconds from now)."""

    at: float
    delay: float
    reason: str


@dataclass(frozen=True)
class GiveUp:
    """The notification fails with ``reason``."""

    reason: str


@dataclass(frozen=True)
class Fallback:
    """Queue a copy of the failed wake-up on the next bearer of ``auto_order``."""

    bearer: str


@dataclass(frozen=True)
class FailJob:
    """No bearer could wake the device: the job fails with ``error``."""

    error: dict


@dataclass(frozen=True)
class Renotify:
    """The device did not come: wake it again by ``bearer`` with the same ``push_session_id``."""

    bearer: str
    push_session_id: Optional[int]


@dataclass(frozen=True)
class ExpireJob:
    """Enough wake-ups went unanswered: the job expires with ``error``."""

    error: dict


def choose_bearer(notify, auto_order, reachable, after=None):
    """The bearer to wake a device by, or None.

    ``notify`` is the job's mode (``auto`` walks ``auto_order``); ``reachable``
    the names of the bearers that can reach the device; ``after`` a bearer
    that failed: only those after it in ``auto_order`` are left.
    """
    order = list(auto_order) if notify == "auto" else [notify]
    if after is not None:
        if notify != "auto" or after not in order:
            return None
        order = order[order.index(after) + 1:]
    for name in order:
        if name in reachable:
            return name
    return None


def new_push_session_id(two_bytes):
    """The 16-bit push session id of a new wake-up, 1..65535, from two random bytes."""
    return 1 + int.from_bytes(two_bytes, "big") % 0xFFFF


def before_send(job, live, now, scan_interval):
    """Once claimed: None to send, else :class:`Drop` or :class:`Postpone`.

    ``job`` is the notification's job (None for a bootstrap push); ``live``
    whether its device is in a session now.
    """
    if job is not None and job.state not in ("queued", "notified"):
        return Drop("job is %s" % (job.state,))
    if live:
        return Postpone(now + scan_interval)
    return None


def after_temporary_failure(attempts, reason, config, now):
    """A bearer could not send now (after ``attempts`` earlier tries): :class:`Retry` or :class:`GiveUp`."""
    if attempts + 1 >= config.max_attempts:
        return GiveUp("%s (after %d attempts)" % (reason, attempts + 1))
    delay = min(config.retry_initial * (2 ** attempts), config.retry_max)
    return Retry(now + delay, delay, reason)


def after_failure(job, failed_bearer, auto_order, reachable, reason):
    """A wake-up of ``job`` by ``failed_bearer`` failed: :class:`Fallback`, :class:`FailJob`, or None.

    None when there is nothing to move on (a bootstrap push, a device gone).
    """
    if job is None or reachable is None:
        return None
    fallback = choose_bearer(job.notify, auto_order, reachable, after=failed_bearer)
    if fallback is not None:
        return Fallback(fallback)
    return FailJob({"code": "notification_failed", "message": "no bearer could wake the device: %s" % (reason,)})


def still_on_its_way(notification, job, notifications):
    """After ``notification`` was not delivered: whether the job waits (another copy may still
    wake the device, or the job moved on) rather than moving to the next bearer."""
    if job is None or job.state != "notified":
        return True
    return any(o.state in ("queued", "sent", "delivered") for o in notifications
               if o.notification_id != notification.notification_id)


def renotify(notifications, now, config):
    """For a ``notified`` job whose device is not in a session: None, :class:`Renotify` or :class:`ExpireJob`."""
    if any(n.state == "queued" for n in notifications):
        return None
    sent = [n for n in notifications if n.state in ("sent", "delivered")]
    if not sent or now - max(n.updated for n in sent) < config.renotify_after:
        return None
    if len(sent) >= config.max_notifications:
        return ExpireJob({"code": "device_unreachable", "message": "no session after %d notifications" % (len(sent),)})
    last = max(sent, key=lambda n: n.notification_id)
    return Renotify(last.bearer, last.push_session_id)


def notification_event(n, state, **fields):
    """The payload of the ``notification`` event of ``n`` moving to ``state``.

    A notification of no job (a bootstrap push) names itself.
    """
    payload = {"job_id": n.job_id, "bearer": n.bearer, "state": state, **fields}
    if not n.job_id:
        payload.update(notification_id=n.notification_id, kind="bootstrap")
    return payload


def forgotten_payload(n):
    """What a sent or given-up notification keeps of its payload, or None to keep it all.

    A ready push (a bootstrap: plain secrets) is not kept: only its WSP
    headers stay, enough to show what it was.
    """
    if n.job_id or not n.payload:
        return None
    try:
        return encode_push(replace(parse_push(n.payload), body=b""))
    except NotificationError:
        return b""
