"""
The notification outbox: every wake-up (or bootstrap push) is a row before
anything is sent; claims with a lease keep processes sharing the store
from sending one twice.

One area of L{dmgateway.store.base.Store} (on L{Database}); each public
method runs its C{_..._txn} (just below it) in one transaction.
"""

from __future__ import annotations

from typing import Iterable, Optional

from twisted.internet.defer import Deferred

from .database import Database
from .model import NOTIFICATION_STATES, Notification, NotFound
from .rows import columns, row_converter
from .values import check_instance, check_int, check_state, check_states, check_text, check_time, marks

__all__ = ["OutboxStore", "notification_from_row"]

notification_from_row = row_converter(
    Notification, payload=bytes, push_session_id=columns(lambda row: row["session_id"])
)


class OutboxStore(Database):
    """The notification outbox (see the module docstring)."""

    def add_notification(
        self,
        device_id: str,
        bearer: str,
        payload: bytes,
        *,
        job_id: Optional[str] = None,
        push_session_id: Optional[int] = None,
        next_attempt_at: Optional[float] = None,
    ) -> Deferred:
        """
        Put a wake-up (or bootstrap) message in the outbox, state C{queued}.

        @param bearer: C{sms}, C{sip}, ...
        @param push_session_id: the 16-bit session id in package #0.
        @param next_attempt_at: when it is due (default: now).
        @return: fires with the L{Notification} and its new id.
        @raise NotFound: no such device or job.
        """
        return self.run_interaction(
            "add_notification", self._add_notification_txn, self._now(), device_id,
            bearer, payload, job_id, push_session_id, next_attempt_at,
        )

    def _add_notification_txn(
        self, txn, now, device_id, bearer, payload, job_id, push_session_id, next_attempt_at
    ) -> Notification:
        check_text(bearer, "bearer", empty=False)
        check_instance(payload, (bytes, bytearray), "payload")
        check_text(job_id, "job_id", optional=True)
        if push_session_id is not None:
            check_int(push_session_id, "push_session_id", 0, 0xFFFF)
        check_time(next_attempt_at, "next_attempt_at", optional=True)
        self._device_exists_txn(txn, device_id)
        if job_id is not None and self._get_job_txn(txn, job_id) is None:
            raise NotFound(f"no job {job_id!r}")
        row = {
            "device_id": device_id,
            "job_id": job_id,
            "bearer": bearer,
            "state": "queued",
            "attempts": 0,
            "last_error": None,
            "message_id": None,
            "session_id": push_session_id,
            "payload": bytes(payload),
            "next_attempt_at": now if next_attempt_at is None else next_attempt_at,
            "created": now,
            "updated": now,
        }
        ident = txn.insert_row("notifications", row, "notification_id")
        return notification_from_row(dict(row, notification_id=ident))

    def get_notification(self, notification_id: int) -> Deferred:
        """Fire with the L{Notification}, or L{None}."""
        return self.run_interaction(
            "get_notification", self._get_notification_txn, notification_id
        )

    def _get_notification_txn(self, txn, notification_id) -> Optional[Notification]:
        check_int(notification_id, "notification_id", 0)
        row = txn.fetchone(
            "SELECT * FROM notifications WHERE notification_id = ?", (notification_id,)
        )
        return None if row is None else notification_from_row(row)

    def update_notification(
        self,
        notification_id: int,
        *,
        state: Optional[str] = None,
        count_attempt: bool = False,
        last_error: Optional[str] = None,
        message_id: Optional[str] = None,
        next_attempt_at: Optional[float] = None,
        expect_state: Optional[Iterable[str] | str] = None,
    ) -> Deferred:
        """
        Change a notification; C{None} leaves a field as it is.

        @param count_attempt: add one to C{attempts}.
        @param expect_state: compare-and-set on the current state.
        @return: fires with whether it was changed.
        """
        return self.run_interaction(
            "update_notification", self._update_notification_txn, self._now(),
            notification_id, state, count_attempt, last_error, message_id,
            next_attempt_at, expect_state,
        )

    def _update_notification_txn(
        self, txn, now, notification_id, state, count_attempt, last_error,
        message_id, next_attempt_at, expect_state,
    ) -> bool:
        check_int(notification_id, "notification_id", 0)
        sets, args = ["updated = ?"], [now]
        if state is not None:
            sets.append("state = ?")
            args.append(check_state(state, NOTIFICATION_STATES, "state"))
        if count_attempt:
            sets.append("attempts = attempts + 1")
        for column, value in (("last_error", last_error), ("message_id", message_id)):
            if value is not None:
                check_text(value, column)
                sets.append(f"{column} = ?")
                args.append(value)
        if next_attempt_at is not None:
            check_time(next_attempt_at, "next_attempt_at")
            sets.append("next_attempt_at = ?")
            args.append(next_attempt_at)
        sql = f"UPDATE notifications SET {', '.join(sets)} WHERE notification_id = ?"
        args.append(notification_id)
        if expect_state is not None:
            expected = check_states(expect_state, NOTIFICATION_STATES, "expect_state")
            sql += f" AND state IN {marks(len(expected))}"
            args.extend(expected)
        return txn.execute(sql, args) == 1

    def claim_notification(self, notification_id: int, now: float, lease: float) -> Deferred:
        """
        Take a due C{queued} notification for sending: push its due time to
        C{now + lease} so no other gateway process sharing the store picks
        it up meanwhile.  Fire with whether this caller got it.  If the
        claimer dies, the notification is due again when the lease ends.
        """
        return self.run_interaction(
            "claim_notification", self._claim_notification_txn, notification_id, now, lease
        )

    def _claim_notification_txn(self, txn, notification_id, now, lease) -> bool:
        check_int(notification_id, "notification_id", 0)
        check_time(now, "now")
        check_time(lease, "lease")
        return txn.execute(
            "UPDATE notifications SET next_attempt_at = ?, updated = ?"
            " WHERE notification_id = ? AND state = 'queued'"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
            (now + lease, now, notification_id, now),
        ) == 1

    def release_claims(self, bearer: str, now: float, lease: float) -> Deferred:
        """
        Make due now the C{queued} notifications of C{bearer} that a
        process claimed (L{claim_notification} with C{lease}) before C{now}
        and did not settle: what a process taking over a bearer from a dead one does
        instead of waiting for the claims to run out.  Fire with how many.
        """
        return self.run_interaction(
            "release_claims", self._release_claims_txn, bearer, now, lease
        )

    def _release_claims_txn(self, txn, bearer, now, lease) -> int:
        check_time(now, "now")
        check_time(lease, "lease")
        # a claim is the one write that sets next_attempt_at to exactly updated + lease;
        # claims made from ``now`` on are the caller's own
        return txn.execute(
            "UPDATE notifications SET next_attempt_at = ?, updated = ?"
            " WHERE bearer = ? AND state = 'queued' AND next_attempt_at > ?"
            " AND updated < ? AND next_attempt_at = updated + ?",
            (now, now, bearer, now, now, lease),
        )

    def due_notifications(
        self, now: float, limit: int = 100, bearers: Optional[Iterable[str] | str] = None
    ) -> Deferred:
        """
        Fire with C{queued} L{Notification}s due by C{now} (of the given
        bearers), earliest due first.
        """
        return self.run_interaction(
            "due_notifications", self._due_notifications_txn, now, limit, bearers
        )

    def _due_notifications_txn(self, txn, now, limit, bearers) -> list[Notification]:
        check_time(now, "now")
        check_int(limit, "limit", 1)
        sql = (
            "SELECT * FROM notifications WHERE state = 'queued'"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
        )
        args: list = [now]
        if bearers is not None:
            bearers = [bearers] if isinstance(bearers, str) else list(bearers)
            if not bearers:
                return []
            sql += f" AND bearer IN {marks(len(bearers))}"
            args.extend(bearers)
        sql += " ORDER BY COALESCE(next_attempt_at, 0), notification_id LIMIT ?"
        args.append(limit)
        return [notification_from_row(row) for row in txn.fetchall(sql, args)]

    def notifications_for_job(self, job_id: str) -> Deferred:
        """Fire with a job's L{Notification}s, oldest first."""
        return self.run_interaction(
            "notifications_for_job", self._notifications_for_job_txn, job_id
        )

    def _notifications_for_job_txn(self, txn, job_id) -> list[Notification]:
        rows = txn.fetchall(
            "SELECT * FROM notifications WHERE job_id = ? ORDER BY notification_id",
            (job_id,),
        )
        return [notification_from_row(row) for row in rows]

    def set_notification_payload(self, notification_id: int, payload: bytes) -> Deferred:
        """
        Replace what a notification carries (e.g. drop a sent bootstrap's
        document, which holds plain secrets).  Fire with whether it existed.
        """
        return self.run_interaction(
            "set_notification_payload", self._set_notification_payload_txn, self._now(),
            notification_id, payload,
        )

    def _set_notification_payload_txn(self, txn, now, notification_id, payload) -> bool:
        check_int(notification_id, "notification_id", 0)
        check_instance(payload, (bytes, bytearray), "payload")
        return txn.execute(
            "UPDATE notifications SET payload = ?, updated = ? WHERE notification_id = ?",
            (bytes(payload), now, notification_id),
        ) == 1

    def standalone_notifications(self, device_id: str, limit: int = 10) -> Deferred:
        """
        Fire with a device's newest L{Notification}s that belong to no job
        (bootstrap pushes), newest first.
        """
        return self.run_interaction(
            "standalone_notifications", self._standalone_notifications_txn, device_id, limit
        )

    def _standalone_notifications_txn(self, txn, device_id, limit) -> list[Notification]:
        check_text(device_id, "device_id", empty=False)
        rows = txn.fetchall(
            "SELECT * FROM notifications WHERE device_id = ? AND job_id IS NULL"
            " ORDER BY notification_id DESC LIMIT ?",
            (device_id, limit),
        )
        return [notification_from_row(row) for row in rows]

    def find_notification_by_message_id(
        self, message_id: str, bearer: Optional[str] = None
    ) -> Deferred:
        """
        Fire with the newest L{Notification} a bearer reported as
        C{message_id} (e.g. an SMSC message id), or L{None}.
        """
        return self.run_interaction(
            "find_notification_by_message_id", self._find_notification_by_message_id_txn,
            message_id, bearer,
        )

    def _find_notification_by_message_id_txn(
        self, txn, message_id, bearer
    ) -> Optional[Notification]:
        check_text(message_id, "message_id", empty=False)
        sql, args = "SELECT * FROM notifications WHERE message_id = ?", [message_id]
        if bearer is not None:
            sql += " AND bearer = ?"
            args.append(bearer)
        row = txn.fetchone(sql + " ORDER BY notification_id DESC LIMIT 1", args)
        return None if row is None else notification_from_row(row)
