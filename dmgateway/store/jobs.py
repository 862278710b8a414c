"""
Jobs: management commands for one device, queued behind its other jobs
and moved along by compare-and-set updates (the allowed moves are
L{dmgateway.jobstates}', through L{JobStore.transition_job}).

One area of L{dmgateway.store.base.Store} (on L{Database}); each public
method runs its C{_..._txn} (just below it) in one transaction.
"""

from __future__ import annotations

import functools
from typing import Any, Iterable, Optional

from twisted.internet.defer import Deferred

from dmgateway.jobstates import FINAL_JOB_STATES, check_job

from .database import Database
from .model import JOB_STATES, NOTIFY_MODES, PENDING_JOB_STATES, Conflict, Job, NotFound
from .rows import dump_json, json_column, row_converter
from .values import check_instance, check_int, check_state, check_states, check_text, check_time, marks

__all__ = ["JobStore", "job_from_row", "JOB_DECODERS"]

# job ids per UPDATE of L{JobStore.start_jobs} (each a bound parameter: well
# below the 999 an SQLite built before 3.32 allows in one statement)
_START_CHUNK = 400

# jobs per UPDATE of L{JobStore.end_jobs} (PostgreSQL's, see there): 4
# bound parameters each and one per state it may end from (at most 3:
# queued, notified, running), a statement of bounded size however many
# jobs one message ends
_END_CHUNK = 100

#: how L{job_from_row} makes a L{Job}'s fields of its columns (for another
#: converter of its rows, e.g. by position)
JOB_DECODERS = {
    "commands": json_column("job commands"),
    "atomic": bool,
    "results": json_column("job results"),
    "error": json_column("job error"),
}
job_from_row = row_converter(Job, **JOB_DECODERS)

#: the condition of the index C{jobs_state_seq} (migration 014), word for
#: word: a query that repeats it shows both engines that the index holds
#: every row it asks for
NOT_RUNNING = "state <> 'running'"


class JobStore(Database):
    """The jobs (see the module docstring)."""

    def create_job(
        self,
        job_id: str,
        device_id: str,
        commands: list,
        *,
        atomic: bool = False,
        notify: str = "auto",
        ui_mode: int = 0,
        now: Optional[float] = None,
    ) -> Deferred:
        """
        Queue a job (state C{queued}, no results) behind the device's
        other jobs.

        @param job_id: chosen by the caller (e.g. C{uuid4().hex}).
        @param commands: the JSON list of command objects.
        @param notify: C{auto}, C{sms}, C{sip} or C{none}.
        @param ui_mode: the package #0 UI mode, 0-3.
        @param now: its creation time (default: the store's clock).
        @return: fires with the new L{Job}.
        @raise NotFound: no such device.
        @raise Conflict: the job id is taken.
        """
        return self.run_interaction(
            "create_job", self._create_job_txn, self._now() if now is None else now,
            job_id, device_id, commands, atomic, notify, ui_mode, True,
        )

    def _create_job_txn(
        self, txn, now, job_id, device_id, commands, atomic, notify, ui_mode, plain=False
    ) -> Job:
        """
        @param plain: no device-function operation starts or reads back
            through this job (see migration 011): L{create_job}'s jobs.
        """
        check_text(job_id, "job_id", empty=False)
        check_text(device_id, "device_id", empty=False)
        check_instance(commands, list, "commands")
        check_instance(atomic, bool, "atomic")
        if notify not in NOTIFY_MODES:
            raise ValueError(f"unknown notify mode {notify!r}")
        check_int(ui_mode, "ui_mode", 0, 3)
        self._device_exists_txn(txn, device_id)
        if txn.fetchone("SELECT 1 AS one FROM jobs WHERE job_id = ?", (job_id,)):
            raise Conflict(f"job {job_id!r} already exists")
        row = {
            "job_id": job_id,
            "device_id": device_id,
            "state": "queued",
            "commands": dump_json(commands, "commands"),
            "atomic": int(atomic),
            "notify": notify,
            "ui_mode": ui_mode,
            "results": "[]",
            "created": now,
            "updated": now,
            "plain": 1 if plain else 0,
        }
        seq = txn.insert_row("jobs", row, "seq")
        return job_from_row(dict(row, seq=seq, error=None))

    def get_job(self, job_id: str) -> Deferred:
        """Fire with the L{Job}, or L{None}."""
        return self.run_interaction("get_job", self._get_job_txn, job_id)

    def _get_job_txn(self, txn, job_id) -> Optional[Job]:
        row = txn.fetchone("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        return None if row is None else job_from_row(row)

    def list_jobs(
        self, device_id: Optional[str] = None, limit: int = 100, after: Optional[str] = None
    ) -> Deferred:
        """
        Fire with up to C{limit} L{Job}s, oldest first, of one device (or
        of all when C{device_id} is C{None}), after the job with id
        C{after} (the last one of the previous page).

        @raise NotFound: C{after} is not a job.
        """
        return self.run_interaction("list_jobs", self._list_jobs_txn, device_id, limit, after)

    def _list_jobs_txn(self, txn, device_id, limit, after) -> list[Job]:
        check_int(limit, "limit", 1)
        where, args = [], []
        if device_id is not None:
            where.append("device_id = ?")
            args.append(device_id)
        if after is not None:
            row = txn.fetchone("SELECT seq FROM jobs WHERE job_id = ?", (after,))
            if row is None:
                raise NotFound(f"no job {after!r} to page after")
            where.append("seq > ?")
            args.append(row["seq"])
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = txn.fetchall(f"SELECT * FROM jobs {clause}ORDER BY seq LIMIT ?", (*args, limit))
        return [job_from_row(row) for row in rows]

    def pending_jobs(self, device_id: str) -> Deferred:
        """Fire with the device's C{queued} and C{notified} L{Job}s, oldest first."""
        return self.run_interaction(
            "pending_jobs", self._jobs_in_state_txn, PENDING_JOB_STATES, device_id
        )

    def jobs_in_state(
        self, states: Iterable[str] | str, limit: Optional[int] = None
    ) -> Deferred:
        """Fire with every L{Job} in one of C{states}, oldest first."""
        return self.run_interaction(
            "jobs_in_state", self._jobs_in_state_txn, states, None, limit
        )

    def _jobs_in_state_txn(self, txn, states, device_id=None, limit=None) -> list[Job]:
        states = check_states(states, JOB_STATES, "jobs_in_state")
        sql = f"SELECT * FROM jobs WHERE state IN {marks(len(states))}"
        if "running" not in states:
            sql += " AND " + NOT_RUNNING
        args: list = list(states)
        if device_id is not None:
            sql += " AND device_id = ?"
            args.append(device_id)
        sql += " ORDER BY seq"
        if limit is not None:
            check_int(limit, "limit", 1)
            sql += " LIMIT ?"
            args.append(limit)
        return [job_from_row(row) for row in txn.fetchall(sql, args)]

    def update_job(
        self,
        job_id: str,
        *,
        state: Optional[str] = None,
        results: Optional[list] = None,
        error: Optional[dict] = None,
        expect_state: Optional[Iterable[str] | str] = None,
    ) -> Deferred:
        """
        Write a job's fields as given; C{None} leaves a field as it is.
        C{results} replaces the whole list.  The gateway changes a job's
        state only through L{dmgateway.jobstates.change_job} (which checks
        the transition and appends the job's event with it,
        L{transition_job}); this is the raw write, for the store's own
        tests and repairs.

        @param expect_state: compare-and-set: change only if the job is in
            this state (or one of these states).
        @return: fires with whether the job was changed.
        """
        return self.run_interaction(
            "update_job", self._update_job_txn, self._now(), job_id, state, results,
            error, expect_state,
        )

    def _update_job_txn(
        self, txn, now, job_id, state, results, error, expect_state, returning=""
    ) -> bool:
        values = _job_values(now, state, results, error)
        if expect_state is None:
            return txn.execute(_update_sql(tuple(values), 0), (*values.values(), job_id)) == 1
        expected = check_states(expect_state, JOB_STATES, "expect_state")
        sql = _update_sql(tuple(values), len(expected))
        if not returning:
            return txn.execute(sql, (*values.values(), job_id, *expected)) == 1
        txn.execute(sql + returning, (*values.values(), job_id, *expected))
        rows = txn.cursor.fetchall()
        if not rows:
            return False
        if rows[0][0]:
            txn.plain_jobs.add(job_id)
        return True

    def transition_job(
        self,
        job_id: str,
        state: str,
        *,
        expect: Iterable[str],
        device_id: Optional[str],
        now: Optional[float] = None,
        error: Optional[dict] = None,
        results: Optional[list] = None,
        event: Optional[dict] = None,
    ) -> Deferred:
        """
        Compare-and-set a job's state and append its C{job} event in one
        transaction; call it through L{dmgateway.jobstates.change_job},
        which owns the allowed transitions and the event's shape.

        @param expect: the states the job must be in to change.
        @param event: the event's payload (C{None}: no event).
        @return: fires with whether the job was changed (and the event appended).
        """
        return self.run_interaction(
            "transition_job", self._transition_job_txn, self._now() if now is None else now,
            job_id, device_id, tuple(expect), state, error, results, event,
        )

    def _transition_job_txn(
        self, txn, now, job_id, device_id, expect, state, error, results, event
    ) -> bool:
        for old in expect:
            check_job(old, state)
        # (a session's batch ending a job learns whether it is plain, for function_job_finished)
        ending = txn.plain_jobs is not None and state in FINAL_JOB_STATES
        if not ending:
            changed = self._update_job_txn(txn, now, job_id, state, results, error, expect)
        elif self.database_engine.returning:
            changed = self._update_job_txn(txn, now, job_id, state, results, error, expect, " RETURNING plain")
        else:
            changed = self._end_job_txn(txn, now, job_id, state, results, error, expect)
        if changed and event is not None:
            self._append_job_event_txn(txn, device_id, now, event)
        return changed

    def start_jobs(self, job_ids: Iterable[str], *, expect: Iterable[str], now: Optional[float] = None) -> Deferred:
        """
        Compare-and-set several jobs to C{running} in one transaction, with
        one C{UPDATE} for them all (a DM message starts every job it
        carries: one statement, not one per job); call it through
        L{dmgateway.jobstates.start_jobs}, which owns the allowed
        transitions.  C{running} has no C{job} event.

        @param job_ids: the jobs' ids (one id: that job).
        @param expect: the states a job must be in to change.
        @return: fires with the ids of the jobs started, in the order given
            (a tuple): those the store holds as C{running} after it.  When
            the update changed as many rows as there are ids (every job
            started: the common case) nothing is read back.
        """
        return self.run_interaction(
            "start_jobs", self._start_jobs_txn, self._now() if now is None else now,
            (job_ids,) if isinstance(job_ids, str) else tuple(job_ids), tuple(expect),
        )

    def _start_jobs_txn(self, txn, now, job_ids, expect) -> tuple:
        expected = check_states(expect, JOB_STATES, "expect_state")
        for old in expected:
            check_job(old, "running")
        check_time(now, "now")
        changed = 0
        for first in range(0, len(job_ids), _START_CHUNK):
            chunk = job_ids[first:first + _START_CHUNK]
            for job_id in chunk:
                if job_id.__class__ is not str:  # (check_text, called only to raise)
                    check_text(job_id, "job_id")
            changed += txn.execute(
                _start_sql(len(chunk), len(expected), self.engine == "postgresql"), (now, *chunk, *expected)
            )
        if changed == len(job_ids):
            return job_ids
        # some were not in a state a start expects (cancelled, expired, their
        # device removed; or running already, which counts as started): which
        running = set()
        for first in range(0, len(job_ids), _START_CHUNK):
            chunk = job_ids[first:first + _START_CHUNK]
            rows = txn.fetchall(f"SELECT job_id FROM jobs WHERE job_id IN {marks(len(chunk))} AND state = 'running'",
                                chunk)
            running.update(row["job_id"] for row in rows)
        return tuple(job_id for job_id in job_ids if job_id in running)

    def end_jobs(self, ends: Iterable[tuple], *, device_id: Optional[str], now: Optional[float] = None) -> Deferred:
        """
        Compare-and-set several jobs to their ends, each appending its
        C{job} event if it changed, in one transaction; call it through
        L{dmgateway.jobstates.end_jobs}, which owns the allowed transitions
        and the events' shape.  On an engine that ends statements in
        C{RETURNING} (PostgreSQL: a round trip each) one C{UPDATE} ends
        them all; on SQLite each job's own C{UPDATE} by its key costs less
        than any one statement for several (see L{_end_jobs_txn}).

        @param ends: per job C{(job_id, state, expect, results, error,
            event)}, as L{transition_job} takes them: its own states to
            change from, its own end, results and error (L{None}: the
            column is left as it is) and event (L{None}: none).
        @return: fires with whether each job was changed (and its event
            appended), in the order given (a tuple of bools).
        """
        return self.run_interaction(
            "end_jobs", self._end_jobs_txn, self._now() if now is None else now, device_id, tuple(ends),
        )

    def _end_jobs_txn(self, txn, now, device_id, ends) -> tuple:
        if len(ends) == 1 or not self.database_engine.returning or len({end[0] for end in ends}) < len(ends):
            # One job; SQLite (without RETURNING, the batch could learn which
            # jobs changed only by reading them first; and there, ending six
            # jobs by key costs 181k instructions, one UPDATE ... FROM
            # (VALUES ...) 214k, with RETURNING 279k, a CASE per column
            # 216k); or a job asked twice (the first end wins): one by one.
            changed = []
            # (a session's batch on an engine without RETURNING, SQLite: each
            # job's checks once, then _end_job_txn, without _transition_job_txn)
            direct = txn.plain_jobs is not None and not self.database_engine.returning
            for job_id, state, expect, results, error, event in ends:
                if job_id.__class__ is not str or not job_id:  # (check_text, called only to raise)
                    check_text(job_id, "job_id", empty=False)
                if not direct or state not in FINAL_JOB_STATES:
                    changed.append(
                        self._transition_job_txn(txn, now, job_id, device_id, expect, state, error, results, event)
                    )
                    continue
                expected = check_states(expect, JOB_STATES, "expect_state")
                for old in expected:
                    check_job(old, state)
                ended = self._end_job_txn(txn, now, job_id, state, results, error, expected)
                if ended and event is not None:
                    self._append_job_event_txn(txn, device_id, now, event)
                changed.append(ended)
            return tuple(changed)
        check_time(now, "now")
        width = 1
        checked = []
        for job_id, state, expect, results, error, event in ends:
            check_text(job_id, "job_id", empty=False)
            expected = check_states(expect, JOB_STATES, "expect_state")
            for old in expected:
                check_job(old, state)
            values = _job_values(now, state, results, error)
            checked.append((job_id, state, values.get("results"), values.get("error"), expected, event))
            width = max(width, len(expected))
        changed: set = set()
        plain: set = set()
        for first in range(0, len(checked), _END_CHUNK):
            chunk = checked[first:first + _END_CHUNK]
            args = []
            for job_id, state, results, error, expected, _event in chunk:
                args += (job_id, state, results, error, *expected, *(None,) * (width - len(expected)))
            args.append(now)
            txn.execute(_end_sql(len(chunk), width, self.engine == "postgresql"), args)
            for job_id, is_plain in txn.cursor.fetchall():
                changed.add(job_id)
                if is_plain:
                    plain.add(job_id)
        if txn.plain_jobs is not None:
            txn.plain_jobs.update(plain)
        for job_id, _state, _results, _error, _expected, event in checked:
            if event is not None and job_id in changed:
                self._append_event_txn(txn, "job", device_id, now, event)
        return tuple([end[0] in changed for end in checked])

    def _end_job_txn(self, txn, now, job_id, state, results, error, expect) -> bool:
        """
        L{_transition_job_txn}'s compare-and-set ending a job in a
        session's batch, without C{RETURNING}: whether it changed the job,
        which is in C{txn.plain_jobs} after it if plain.

        The UPDATE of a plain job (the API's, most of them) is tried first,
        then, if it changed no row, the ordinary one: which of them changed
        the row says whether the job is plain, without reading it back.  A
        job that is not plain, or that the compare-and-set refuses, costs
        one UPDATE more, that changes nothing.
        """
        values = _job_values(now, state, results, error)
        # (a tuple of states both callers passed through check_job first: not checked again)
        expected = expect if expect.__class__ is tuple and expect else check_states(expect, JOB_STATES, "expect_state")
        args = (*values.values(), job_id, *expected)
        if txn.execute(_update_sql(tuple(values), len(expected), True), args) == 1:
            txn.plain_jobs.add(job_id)
            return True
        return txn.execute(_update_sql(tuple(values), len(expected)), args) == 1


def _job_values(now: float, state, results, error) -> dict[str, Any]:
    """The columns an update of a job writes (C{None}: left as it is), checked."""
    values: dict[str, Any] = {}
    if state is not None:
        # (a str of JOB_STATES, the usual case, passes check_state: not called)
        values["state"] = state if state.__class__ is str and state in JOB_STATES else \
            check_state(state, JOB_STATES, "state")
    if results is not None:
        if results.__class__ is not list:
            check_instance(results, list, "results")
        values["results"] = dump_json(results, "results")
    if error is not None:
        check_instance(error, dict, "error")
        values["error"] = dump_json(error, "error")
    values["updated"] = now
    return values


@functools.lru_cache(maxsize=64)
def _start_sql(jobs: int, expected: int, lock_in_seq_order: bool) -> str:
    """
    L{JobStore._start_jobs_txn}'s C{UPDATE} of C{jobs} jobs, each in one of
    C{expected} states.  C{lock_in_seq_order} (PostgreSQL): their rows are
    locked in C{seq} order first, the order in which C{remove_device} and
    C{expire_operations} move a device's pending jobs one by one.  In the
    order a plan meets them (by job id, or by state then C{seq}) the
    statement and one of those could each hold a row the other waits for:
    a deadlock, which PostgreSQL ends by failing one of them (a DM message
    so failed is answered as if the store were down).
    """
    where = f"job_id IN {marks(jobs)} AND state IN {marks(expected)}"
    if lock_in_seq_order:
        where = f"job_id IN (SELECT job_id FROM jobs WHERE {where} ORDER BY seq FOR UPDATE)"
    return f"UPDATE jobs SET state = 'running', updated = ? WHERE {where}"


@functools.lru_cache(maxsize=64)
def _end_sql(jobs: int, expected: int, lock_in_seq_order: bool) -> str:
    """
    L{JobStore._end_jobs_txn}'s C{UPDATE} of C{jobs} jobs, returning the
    id and C{plain} of each it changed.  Each row of its C{VALUES} is a
    job's id, end, results and error (L{None}: left as they are) and the
    C{expected} states it may end from (padded with L{None}); then comes
    the time.  Each placeholder is cast to text: PostgreSQL cannot tell
    the type of a C{VALUES} column of parameters alone (a C{NULL} one in
    particular).  C{lock_in_seq_order} as for L{_start_sql} (every job
    given is locked, also one that will not change: it has ended, and
    ended jobs are written again only by the deletion of their device).
    """
    states = [f"expect{n}" for n in range(expected)]
    row = "(" + ", ".join(["CAST(? AS TEXT)"] * (4 + expected)) + ")"
    where = f"jobs.job_id = ends.job_id AND jobs.state IN ({', '.join('ends.' + s for s in states)})"
    if lock_in_seq_order:
        where += " AND jobs.job_id IN (SELECT job_id FROM jobs WHERE job_id IN (SELECT job_id FROM ends)" \
                 " ORDER BY seq FOR UPDATE)"
    return (
        f"WITH ends (job_id, state, results, error, {', '.join(states)}) AS (VALUES {', '.join([row] * jobs)})"
        " UPDATE jobs SET state = ends.state, results = coalesce(ends.results, jobs.results),"
        f" error = coalesce(ends.error, jobs.error), updated = ? FROM ends WHERE {where}"
        " RETURNING jobs.job_id, jobs.plain"
    )


@functools.lru_cache(maxsize=64)
def _update_sql(columns: tuple, expected: int, plain: bool = False) -> str:
    """
    C{UPDATE jobs} of C{columns} (L{JobStore._update_job_txn}'s own),
    checking C{expected} states, and of a plain job only if C{plain}.
    """
    sql = f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in columns)} WHERE job_id = ?"
    if expected:
        sql += f" AND state IN {marks(expected)}"
    return sql + " AND plain = 1" if plain else sql
