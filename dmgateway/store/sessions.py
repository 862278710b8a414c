"""
Live sessions: which gateway process holds a device's DM session, with the
jobs it works on, and L{SessionStore.recover} for what a dead process left.

One area of L{dmgateway.store.base.Store} (on L{Database}); each public
method runs its C{_..._txn} (just below it) in one transaction.
"""

from __future__ import annotations

import dataclasses
import functools
import sqlite3
from typing import Iterable, Optional

from twisted.internet.defer import Deferred

from dmgateway.jobstates import job_event

from .database import SINGLE, Database
from .devices import DEVICE_COLUMNS, DEVICE_DECODERS
from .jobs import JOB_DECODERS
from .model import INTERRUPTED, PENDING_JOB_STATES, Conflict, Device, Job, Recovery, Session
from .rows import builder, columns, dump_json, json_column, row_converter
from .values import check_text, check_time, marks

__all__ = ["SessionStore", "session_from_row"]

session_from_row = row_converter(
    Session, token=columns(lambda row: row["session_id"]), job_ids=json_column("session job ids")
)


# (a Session made as its row converter makes it, without its frozen __init__'s
# object.__setattr__ per field: DM sessions start one each)
_session = builder(Session)

# a job's columns beside its device's in one row (see SessionStore.session_reads)
_JOB_COLUMNS = tuple((f"job_{field.name}", field.name) for field in dataclasses.fields(Job))
_PENDING = marks(len(PENDING_JOB_STATES))
# The device with its first two pending jobs (one row each): the rest, if
# there may be more, are read by _MORE_JOBS_SQL, by their own columns
# alone.  Every column a row carries costs its fetch (which releases and
# takes the GIL) and its key in the row's dict: the device's again in
# every job's row was a third of an extra job's store reads.
_SESSION_READS_SQL = (
    "SELECT " + ", ".join(f"d.{column}" for column in DEVICE_COLUMNS) + ", "
    + ", ".join(f"j.{column} AS {alias}" for alias, column in _JOB_COLUMNS)
    + " FROM devices d LEFT JOIN jobs j ON j.device_id = d.device_id AND j.state IN " + _PENDING
    + " WHERE d.device_id = ? ORDER BY j.seq LIMIT 2"
)
_MORE_JOBS_SQL = (
    "SELECT " + ", ".join(column for _, column in _JOB_COLUMNS)
    + " FROM jobs WHERE device_id = ? AND state IN " + _PENDING + " AND seq > ? ORDER BY seq"
)
# Their rows are read as the cursor gives them (tuples), each column by its
# position: a dict per row by column name, then a lookup of every column
# in it, was an eighth of these reads (191.6k instructions for a device
# with one job, 166.1k without).
_SESSION_READS_ORDER = (*DEVICE_COLUMNS, *(alias for alias, _ in _JOB_COLUMNS))
_device_of_row = row_converter(Device, order=_SESSION_READS_ORDER, **DEVICE_DECODERS)
_joined_job_of_row = row_converter(Job, prefix="job_", order=_SESSION_READS_ORDER, **JOB_DECODERS)
_JOINED_JOB_ID = _SESSION_READS_ORDER.index("job_job_id")
_MORE_JOBS_ORDER = tuple(column for _, column in _JOB_COLUMNS)
_job_of_row = row_converter(Job, order=_MORE_JOBS_ORDER, **JOB_DECODERS)


_INSERT_SESSION_SQLITE = (
    "INSERT INTO sessions (session_id, device_id, node, token, job_ids, started, last_activity)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING"
)


class SessionStore(Database):
    """The live sessions (see the module docstring)."""

    def session_reads(self, device_id: str) -> Deferred:
        """
        What a DM session of C{device_id} starts from: fire with its
        L{Device} (or L{None}) and its pending jobs (L{pending_jobs},
        oldest first).  One query when the device has one pending job or
        none (the usual session), run alone (no transaction of its own);
        a second one for the jobs after the first two when it has two or
        more.  A job that stops being pending between the two is not
        read, and one created between them is: each is pending when read,
        which is all a session needs (it starts them with a
        compare-and-set).
        """
        return self.run_interaction("session_reads", self._session_reads_txn, device_id, short=SINGLE)

    def _session_reads_txn(self, txn, device_id) -> tuple[Optional[Device], list[Job]]:
        rows = txn.fetchrows(_SESSION_READS_SQL, (*PENDING_JOB_STATES, device_id))
        if not rows:
            return None, []
        device = _device_of_row(rows[0])
        if rows[0][_JOINED_JOB_ID] is None:
            return device, []
        jobs = [_joined_job_of_row(row) for row in rows]
        if len(rows) == 2:
            more = txn.fetchrows(_MORE_JOBS_SQL, (device_id, *PENDING_JOB_STATES, jobs[1].seq))
            jobs.extend(_job_of_row(job) for job in more)
        return device, jobs

    def start_session(
        self,
        token: str,
        device_id: str,
        node: str,
        started: Optional[float] = None,
        *,
        job_ids: Iterable[str] = (),
        last_activity: Optional[float] = None,
    ) -> Deferred:
        """
        Record a live session held by process C{node}.

        @param started: when it started (default: the store's clock).
        @param last_activity: its last activity (default: C{started}).
        @return: fires with the L{Session}.
        @raise NotFound: no such device.
        @raise Conflict: the token is taken.
        """
        started = self._now() if started is None else started
        return self.run_interaction(
            "start_session", self._start_session_txn, token, device_id, node,
            job_ids, started, started if last_activity is None else last_activity,
        )

    def _start_session_txn(
        self, txn, token, device_id, node, job_ids, now, last_activity
    ) -> Session:
        check_text(token, "token", empty=False)
        check_text(node, "node", empty=False)
        check_time(now, "started")
        check_time(last_activity, "last_activity")
        job_ids = list(job_ids)
        for job_id in job_ids:
            check_text(job_id, "job id")
        stored = dump_json(job_ids, "job ids")
        if self.database_engine.name == "sqlite":
            # The foreign key finds the device (an INSERT ... SELECT FROM
            # devices would find it twice): a missing one fails only this
            # statement, and SQLite's transaction goes on.
            try:
                inserted = txn.execute(_INSERT_SESSION_SQLITE, (
                    token, device_id, node, token, stored, now, last_activity,
                ))
            except sqlite3.IntegrityError:
                self._device_exists_txn(txn, device_id)
                raise
        else:
            # one statement: inserted only for an existing device and a free token
            inserted = txn.execute(self._insert_session_sql, (
                token, node, token, stored, now, last_activity, device_id,
            ))
        if not inserted:
            self._device_exists_txn(txn, device_id)
            raise Conflict(f"session {token!r} already exists")
        return _session({"token": token, "device_id": device_id, "node": node, "job_ids": job_ids,
                         "started": now, "last_activity": last_activity})

    @functools.cached_property
    def _insert_session_sql(self) -> str:
        # (typed: PostgreSQL cannot infer a parameter's type in a select list)
        return (
            "INSERT INTO sessions"
            " (session_id, device_id, node, token, job_ids, started, last_activity)"
            " SELECT CAST(? AS TEXT), device_id, CAST(? AS TEXT), CAST(? AS TEXT),"
            " CAST(? AS TEXT), CAST(? AS {float}), CAST(? AS {float})"
            " FROM devices WHERE device_id = ?"
            " ON CONFLICT (session_id) DO NOTHING"
        ).format_map(self.database_engine.column_types)

    def get_session(self, token: str) -> Deferred:
        """Fire with the live L{Session}, or L{None}."""
        return self.run_interaction("get_session", self._get_session_txn, token)

    def _get_session_txn(self, txn, token) -> Optional[Session]:
        row = txn.fetchone("SELECT * FROM sessions WHERE session_id = ?", (token,))
        return None if row is None else session_from_row(row)

    def touch_session(
        self, token: str, now: float, *, job_ids: Optional[Iterable[str]] = None
    ) -> Deferred:
        """
        Note activity at C{now}, and replace the session's job ids if
        given.  Fire with whether the session is live.
        """
        return self.run_interaction(
            "touch_session", self._touch_session_txn, token, now, job_ids
        )

    def _touch_session_txn(self, txn, token, now, job_ids) -> bool:
        check_time(now, "now")
        if job_ids is None:
            return (
                txn.execute(
                    "UPDATE sessions SET last_activity = ? WHERE session_id = ?",
                    (now, token),
                )
                == 1
            )
        job_ids = list(job_ids)
        for job_id in job_ids:
            check_text(job_id, "job id")
        return (
            txn.execute(
                "UPDATE sessions SET last_activity = ?, job_ids = ? WHERE session_id = ?",
                (now, dump_json(job_ids, "job ids"), token),
            )
            == 1
        )

    def end_session(
        self, token: str, now: Optional[float] = None, outcome: Optional[str] = None
    ) -> Deferred:
        """
        End a live session: remove it and, when C{outcome} is given, store
        C{"id", "started", "ended": now, "outcome"} as its device's last
        session (without one, write your own with L{set_last_session}).
        Jobs are not touched (settle them with L{dmgateway.jobstates.change_job} first).

        @param now: when it ended (default: the store's clock).
        @return: fires with the ended L{Session}, or L{None} if it was not
            live.
        """
        return self.run_interaction(
            "end_session", self._end_session_txn, token,
            self._now() if now is None else now, outcome,
        )

    def _end_session_txn(self, txn, token, now, outcome) -> Optional[Session]:
        check_text(outcome, "outcome", optional=True, empty=False)
        check_time(now, "now")
        if self.database_engine.returning:
            row = txn.fetchone("DELETE FROM sessions WHERE session_id = ? RETURNING *", (token,))
            if row is None:
                return None
        else:
            row = txn.fetchone("SELECT * FROM sessions WHERE session_id = ?", (token,))
            if row is None:
                return None
            txn.execute("DELETE FROM sessions WHERE session_id = ?", (token,))
        session = session_from_row(row)
        self._write_last_session_txn(txn, session, now, outcome)
        return session

    def drop_session(self, token: str) -> Deferred:
        """
        Remove a live session, as L{end_session} without an outcome does,
        without reading it first: fire with whether it was live.  What a
        DM session's last batch does (its summary is the caller's, written
        with L{update_device}): one statement instead of two on an engine
        without C{RETURNING}, and no row to convert.  Jobs are not touched.
        """
        return self.run_interaction("drop_session", self._drop_session_txn, token)

    def _drop_session_txn(self, txn, token) -> bool:
        return txn.execute("DELETE FROM sessions WHERE session_id = ?", (token,)) == 1

    def live_sessions(
        self, node: Optional[str] = None, device_id: Optional[str] = None
    ) -> Deferred:
        """Fire with the live L{Session}s (of one node / one device), oldest first."""
        return self.run_interaction("live_sessions", self._live_sessions_txn, node, device_id)

    def _live_sessions_txn(self, txn, node, device_id) -> list[Session]:
        where, args = [], []
        if node is not None:
            where.append("node = ?")
            args.append(node)
        if device_id is not None:
            where.append("device_id = ?")
            args.append(device_id)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = txn.fetchall(
            f"SELECT * FROM sessions {clause}ORDER BY started, session_id", args
        )
        return [session_from_row(row) for row in rows]

    def recover(self, node: str, now: float) -> Deferred:
        """
        Settle what process C{node} left behind when it died; call at
        start before serving.

        Every live session of C{node} is ended with outcome
        C{"interrupted"}; each of its jobs still C{running} becomes
        C{failed} with error L{INTERRUPTED<dmgateway.store.model.INTERRUPTED>}
        and its C{job} event, in the same transaction.
        Queued and notified jobs stay pending.

        @return: fires with a L{Recovery}.
        """
        return self.run_interaction("recover", self._recover_txn, node, now)

    def _recover_txn(self, txn, node, now) -> Recovery:
        check_text(node, "node", empty=False)
        check_time(now, "now")
        sessions = self._live_sessions_txn(txn, node, None)
        failed: list[str] = []
        devices: list[str] = []
        for session in sessions:
            failed += self._fail_session_txn(txn, session, now, "interrupted", INTERRUPTED)
            if session.device_id not in devices:
                devices.append(session.device_id)
        queued = 0
        if devices:
            row = txn.fetchone(
                f"SELECT COUNT(*) AS n FROM jobs WHERE device_id IN {marks(len(devices))}"
                f" AND state IN {marks(len(PENDING_JOB_STATES))}",
                (*devices, *PENDING_JOB_STATES),
            )
            queued = row["n"]
        return Recovery(
            node=node,
            sessions=tuple(s.token for s in sessions),
            failed_jobs=tuple(failed),
            devices=tuple(devices),
            queued_jobs=queued,
        )

    def settle_session(self, token: str, now: float, outcome: str, error: dict) -> Deferred:
        """
        End live session C{token} with C{outcome} where its process could
        not write its end (see L{Dispatcher._repair
        <dmgateway.dispatch_guard.SessionGuard._repair>}): each of its jobs
        still C{running} becomes C{failed} with C{error} and its C{job}
        event, in the same transaction, as L{recover} does for a dead node's.

        @return: fires with the ids of the jobs failed (none, and nothing
            done, when the session is not live).
        """
        return self.run_interaction("settle_session", self._settle_session_txn, token, now, outcome, error)

    def _settle_session_txn(self, txn, token, now, outcome, error) -> list[str]:
        check_text(outcome, "outcome", empty=False)
        check_time(now, "now")
        session = self._get_session_txn(txn, token)
        return [] if session is None else self._fail_session_txn(txn, session, now, outcome, error)

    def _fail_session_txn(self, txn, session: Session, now, outcome, error) -> list[str]:
        """End ``session``, its jobs still running failed with ``error``: their ids."""
        failed = []
        for job_id in session.job_ids:
            if self._transition_job_txn(
                txn, now, job_id, session.device_id, ("running",), "failed", error, None,
                job_event(job_id, "failed", error),
            ):
                failed.append(job_id)
        self._close_session_txn(txn, session, now, outcome)
        return failed

    def _close_session_txn(self, txn, session: Session, now, outcome) -> None:
        txn.execute("DELETE FROM sessions WHERE session_id = ?", (session.token,))
        self._write_last_session_txn(txn, session, now, outcome)

    def _write_last_session_txn(self, txn, session: Session, now, outcome) -> None:
        if outcome is None:
            return
        last = {
            "id": session.token,
            "started": session.started,
            "ended": now,
            "outcome": outcome,
        }
        self._set_last_session_txn(txn, now, session.device_id, last)
