"""
Inventory queries: the device list with filters and a keyset cursor,
deleting a device with or without its history, cancelling a job.

Mixed into L{dmgateway.store.base.Store} next to the other areas; the columns
come from migration 006.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from dmgateway.jobstates import job_event

from .database import Database
from .devices import device_from_row
from .jobs import NOT_RUNNING, job_from_row
from .model import PENDING_JOB_STATES, NotFound
from .values import check_int, check_text

#: The error a job cancelled through the API carries (state "failed").
CANCELLED = {"code": "cancelled", "message": "cancelled through the API"}

#: Job states a cancel applies to at once.
CANCELLABLE = PENDING_JOB_STATES


@dataclass(frozen=True)
class DeviceFilter:
    """What C{GET /api/v1/devices} selects on; L{None} means "any"."""

    server_id: Optional[str] = None
    session_after: Optional[float] = None  # last session ended at or after
    session_before: Optional[float] = None  # ended before (or never, see never_seen)
    man: Optional[str] = None
    mod: Optional[str] = None
    fwv: Optional[str] = None
    has_msisdn: Optional[bool] = None
    locked: Optional[bool] = None
    never_seen: Optional[bool] = None  # no session at all

    def where(self, now: float) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("server_id", self.server_id),
            ("devinfo_man", self.man),
            ("devinfo_mod", self.mod),
            ("devinfo_fwv", self.fwv),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.session_after is not None:
            clauses.append("last_session_at >= ?")
            args.append(self.session_after)
        if self.session_before is not None:
            clauses.append("last_session_at < ?")
            args.append(self.session_before)
        if self.never_seen is not None:
            clauses.append("last_session_at IS NULL" if self.never_seen else "last_session_at IS NOT NULL")
        if self.has_msisdn is not None:
            clauses.append(
                "(msisdn IS NOT NULL AND msisdn <> '')" if self.has_msisdn
                else "(msisdn IS NULL OR msisdn = '')"
            )
        if self.locked is not None:
            clauses.append(
                "(locked_until IS NOT NULL AND locked_until > ?)" if self.locked
                else "(locked_until IS NULL OR locked_until <= ?)"
            )
            args.append(now)
        return clauses, args


@dataclass(frozen=True)
class Cancelled:
    """
    What L{InventoryQueries.cancel_job} did: C{state} is the job's state
    after it (C{"failed"} when cancelled now), C{cancelled} whether this
    call cancelled it, C{notifications} how many queued wake-ups it stopped.
    """

    job_id: str
    device_id: str
    state: str
    cancelled: bool
    notifications: int


# jobs by state but running (from jobs_state_seq), and all jobs (state NULL)
_COUNT_JOBS_SQL = (
    f"SELECT state, COUNT(*) AS n FROM jobs WHERE {NOT_RUNNING} GROUP BY state"
    " UNION ALL SELECT NULL AS state, COUNT(*) AS n FROM jobs"
)


class InventoryQueries(Database):
    """The C{_..._txn} functions of the inventory and their public calls."""

    # -- public ----------------------------------------------------------------

    def find_devices(self, where: DeviceFilter, limit: int, after: Optional[str] = None):
        """
        Fire with up to C{limit} L{Device}s matching C{where}, ordered by
        C{device_id}, starting after device id C{after}.
        """
        return self.run_interaction(
            "find_devices", self._find_devices_txn, self._now(), where, limit, after
        )

    def remove_device(self, device_id: str, purge_history: bool):
        """
        Delete a device: its pending jobs are cancelled first (one C{job}
        event each, unless the history is purged), then the account with its
        jobs, sessions, notifications and TLS-PSK key (table C{device_psk},
        kept in memory by L{DevicePskKeys<dmgateway.store.devicepsk.DevicePskKeys>},
        which forgets it once this is committed).  With C{purge_history} its
        events go too.  Fire with the cancelled job ids, or raise L{NotFound}.
        """
        return self.run_interaction(
            "remove_device", self._remove_device_txn, self._now(), device_id, purge_history
        )

    def cancel_job(self, job_id: str, running: bool = False):
        """
        Cancel a queued or notified job now: state C{failed} with error
        C{cancelled}; its queued notifications fail.  Fire with a
        L{Cancelled} (C{cancelled} false when the job was in another state),
        or raise L{NotFound}.  With C{running}, a running job too: the
        session that sent it has ended, and what it did not do is cancelled
        in the same write (no session can take it in between).
        """
        states = CANCELLABLE + ("running",) if running else CANCELLABLE
        return self.run_interaction("cancel_job", self._cancel_job_txn, self._now(), job_id, states)

    def monitor_snapshot(self, now: float, webhook_cursors=()):
        """
        Counts for monitoring: C{outbox} {(bearer, state): n} of queued and
        sent notifications, C{jobs} {state: n}, C{locked} devices locked out
        at C{now}, C{webhook_backlog} events the slowest of the named
        webhook cursors has not delivered plus pending retries.
        """
        return self.run_interaction(
            "monitor_snapshot", self._monitor_snapshot_txn, now, list(webhook_cursors)
        )

    # -- transactions ----------------------------------------------------------

    def _monitor_snapshot_txn(self, txn, now, webhook_cursors) -> dict:
        outbox = {
            (row["bearer"], row["state"]): row["n"]
            for row in txn.fetchall(
                "SELECT bearer, state, COUNT(*) AS n FROM notifications"
                " WHERE state IN ('queued', 'sent') GROUP BY bearer, state"
            )
        }
        jobs = self._count_jobs_txn(txn)
        locked = txn.fetchone("SELECT COUNT(*) AS n FROM devices WHERE locked_until > ?", (now,))["n"]
        last = self._last_event_seq_txn(txn)
        behind = 0
        for name in webhook_cursors:
            behind = max(behind, last - self._get_cursor_txn(txn, name))
        pending = txn.fetchone("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'pending'")["n"]
        return {"outbox": outbox, "jobs": jobs, "locked": locked, "webhook_backlog": behind + pending}

    def _count_jobs_txn(self, txn) -> dict:
        """
        Jobs by state (the states that have some): those not running from
        C{jobs_state_seq}, which leaves the running ones out (migration
        014), and the running ones as all jobs less those.  One statement,
        so both counts are of the same moment (PostgreSQL reads each
        statement of a transaction at its own: a job created in between
        would be counted running).
        """
        jobs = {row["state"]: row["n"] for row in txn.fetchall(_COUNT_JOBS_SQL)}
        running = jobs.pop(None) - sum(jobs.values())
        if running:
            jobs["running"] = running
        return jobs

    def _find_devices_txn(self, txn, now, where: DeviceFilter, limit, after):
        check_int(limit, "limit", 1)
        check_text(after, "after", optional=True)
        clauses, args = where.where(now)
        if after is not None:
            clauses.append("device_id > ?")
            args.append(after)
        clause = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        rows = txn.fetchall(f"SELECT * FROM devices {clause}ORDER BY device_id LIMIT ?", (*args, limit))
        return [device_from_row(row) for row in rows]

    def _cancel_jobs_txn(self, txn, now, jobs, states=CANCELLABLE) -> tuple[list, int]:
        """Cancel C{jobs} (each with its C{job} event) and fail their queued notifications;
        return the jobs cancelled and how many notifications were stopped.  A job
        another process moved on meanwhile (out of C{states}) is left as it is."""
        cancelled, stopped = [], 0
        for job in jobs:
            if not self._transition_job_txn(txn, now, job.job_id, job.device_id, states, "failed",
                                            CANCELLED, None, job_event(job.job_id, "failed", CANCELLED)):
                continue
            cancelled.append(job)
            stopped += txn.execute(
                "UPDATE notifications SET state = 'failed', last_error = 'cancelled',"
                " next_attempt_at = NULL, updated = ? WHERE job_id = ? AND state = 'queued'",
                (now, job.job_id),
            )
        return cancelled, stopped

    def _cancel_job_txn(self, txn, now, job_id, states=CANCELLABLE) -> Cancelled:
        row = txn.fetchone("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        job = job_from_row(row)
        if job.state not in states:
            return Cancelled(job_id, job.device_id, job.state, False, 0)
        cancelled, stopped = self._cancel_jobs_txn(txn, now, [job], states)
        if not cancelled:  # another process took it between our read and our write
            state = txn.fetchone("SELECT state FROM jobs WHERE job_id = ?", (job_id,))["state"]
            return Cancelled(job_id, job.device_id, state, False, 0)
        return Cancelled(job_id, job.device_id, "failed", True, stopped)

    def _remove_device_txn(self, txn, now, device_id, purge_history) -> list[str]:
        self._device_exists_txn(txn, device_id)
        rows = txn.fetchall(
            f"SELECT * FROM jobs WHERE device_id = ? AND state IN ({', '.join('?' * len(CANCELLABLE))})"
            " ORDER BY seq",
            (device_id, *CANCELLABLE),
        )
        jobs = [job_from_row(row) for row in rows]
        self._cancel_jobs_txn(txn, now, jobs)
        if purge_history:
            self._delete_events_txn(txn, "device_id = ?", (device_id,))
        else:
            self._append_event_txn(txn, "device", device_id, now,
                                   {"action": "deleted", "jobs_cancelled": len(jobs)})
        # (no foreign key: the key goes in the same transaction as the account,
        # after it: a key's write holding the device's row is waited for, and seen)
        txn.execute("DELETE FROM devices WHERE device_id = ?", (device_id,))
        txn.execute("DELETE FROM device_psk WHERE device_id = ?", (device_id,))
        return [job.job_id for job in jobs]
