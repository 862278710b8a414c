"""
Events: the numbered log the API's event stream and the webhooks read,
the consumers' cursors into it, and pruning.

One area of L{dmgateway.store.base.Store} (on L{Database}); each public
method runs its C{_..._txn} (just below it) in one transaction.
"""

from __future__ import annotations

import json
from math import isfinite
from typing import Optional

from twisted.internet.defer import Deferred

from .database import Database, Txn
from .model import EVENT_FIELDS
from .rows import load_json
from .values import check_instance, check_int, check_text, check_time

__all__ = ["EventStore", "PendingSeq", "event_from_row", "cursor_name"]


def event_from_row(row: dict) -> dict:
    """An event as a dict: the fixed fields, then the payload's."""
    event = {key: row[key] for key in EVENT_FIELDS}
    payload = load_json(row["payload"], "event payload") or {}
    for key, value in payload.items():
        event.setdefault(key, value)
    return event


def cursor_name(name: str) -> str:
    """Consumer cursors live beside the event counter, under their own prefix."""
    if not isinstance(name, str) or not name:
        raise ValueError("a cursor name must be a non-empty string")
    return "cursor:" + name


# Rows per INSERT of a short batch's events: 5 parameters each, under every
# engine's limit on one statement's parameters (PostgreSQL 65,535; SQLite
# 32,766, or 999 before 3.32), however many events one message raises.
_EVENTS_PER_INSERT = 100


# SQLite: the last event number handed out, and the counter raised to it
# before events are deleted (see EventStore._count_events_txn)
_SQLITE_LAST_SEQ = (
    "SELECT max(value, coalesce((SELECT max(seq) FROM events), 0)) FROM counters WHERE name = 'events'"
)
_SQLITE_RAISE_FLOOR = (
    "UPDATE counters SET value = max(value, coalesce((SELECT max(seq) FROM events), 0))"
    " WHERE name = 'events'"
)


# (the fields an event's payload may not set, as a set made once)
_FIXED_FIELDS = frozenset(EVENT_FIELDS)

# the payload of a job's usual end, {"job_id": ..., "state": ...} (what
# jobstates.end_jobs builds), and its text as dump_json writes it
_JOB_EVENT_KEYS = ("job_id", "state")
_JOB_EVENT_JSON = '{"job_id":%s,"state":%s}'
_ascii = json.encoder.encode_basestring_ascii


class PendingSeq:
    """The number of an event a short batch writes at its end (filled in then)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Optional[int] = None


class EventStore(Database):
    """The event log and its cursors (see the module docstring)."""

    def _batch_txn(self, txn: Txn, work: list, short: bool = False) -> list:
        """
        A session's (short) batch numbers and writes its events together at
        its end (one counter update, one insert): none of its calls reads
        the event log, and the numbers they return are filled in then.
        """
        if not short:
            return [func(txn, *args) for _desc, func, args in work]
        txn.pending_events = pending = []
        txn.plain_jobs = set()
        txn.json_texts = {}
        results = [func(txn, *args) for _desc, func, args in work]
        if pending:
            self._write_events_txn(txn)
            results = [r.value if type(r) is PendingSeq else r for r in results]
        txn.pending_events = None
        txn.plain_jobs = None
        txn.json_texts = None
        return results

    def append_event(
        self, type: str, device_id: Optional[str], time: float, payload: Optional[dict] = None
    ) -> Deferred:
        """
        Append an event; fire with its sequence number.

        Numbers increase strictly and become visible in order: a reader
        that has seen number N never later finds a new event below N.

        @param payload: more fields; it may not use C{seq}, C{type},
            C{device_id} or C{time}.
        """
        return self.run_interaction(
            "append_event", self._append_event_txn, type, device_id, time,
            {} if payload is None else payload,
        )

    def _append_event_txn(self, txn, type, device_id, time, payload) -> int:
        # (the usual classes pass the checks: each is called only for another)
        if type.__class__ is not str or not type:
            check_text(type, "event type", empty=False)
        if device_id is not None and device_id.__class__ is not str:
            check_text(device_id, "device_id", optional=True)
        if time.__class__ is not float or not isfinite(time):
            check_time(time, "time")
        if payload.__class__ is not dict:
            check_instance(payload, dict, "payload")
        if not _FIXED_FIELDS.isdisjoint(payload):
            raise ValueError(f"event payload may not set {sorted(_FIXED_FIELDS.intersection(payload))}")
        body = txn.dump_json(payload, "event payload")
        if txn.pending_events is not None:
            pending = PendingSeq()
            txn.pending_events.append((pending, type, device_id, time, body))
            return pending
        seq = self._count_events_txn(txn, 1)
        txn.execute(
            "INSERT INTO events (seq, type, device_id, time, payload) VALUES (?, ?, ?, ?, ?)",
            (seq, type, device_id, time, body),
        )
        return seq

    def _append_job_event_txn(self, txn, device_id, time, payload):
        """
        L{_append_event_txn} of the C{job} event of a job's end
        (L{JobStore._transition_job_txn
        <dmgateway.store.jobs.JobStore._transition_job_txn>},
        L{JobStore._end_jobs_txn <dmgateway.store.jobs.JobStore._end_jobs_txn>}):
        the same event, the same text.  In a session's batch (a job's end in
        every session) its usual payload, C{{"job_id": ..., "state": ...}} as
        L{dmgateway.jobstates} builds it, of two texts, for a text device id
        and a finite float time, is written in without the checks and the JSON
        encoder; anything else takes the checked way.
        """
        pending = txn.pending_events
        if (
            pending is not None and payload.__class__ is dict and device_id.__class__ is str
            and time.__class__ is float and isfinite(time) and tuple(payload) == _JOB_EVENT_KEYS
        ):
            job_id, state = payload.values()
            if job_id.__class__ is str and state.__class__ is str:
                number = PendingSeq()
                pending.append((number, "job", device_id, time, _JOB_EVENT_JSON % (_ascii(job_id), _ascii(state))))
                return number
        return self._append_event_txn(txn, "job", device_id, time, payload)

    def _count_events_txn(self, txn, count: int) -> int:
        """
        Take C{count} event numbers; return the last.

        On SQLite the numbers follow the log's highest one (the counter is
        a floor that only the deletion of events writes, see
        L{_delete_events_txn}): a transaction that writes the log holds
        the database's one write lock from its first change (or, having
        read first, gets SQLITE_BUSY_SNAPSHOT at that change if another
        connection wrote in between), so no other connection or process
        takes a number until it ends.  This costs a read of two hot pages
        instead of writing the counter's page at every session.
        On PostgreSQL, where several processes write at once, taking the
        next number locks the counter's row until commit.
        """
        if self.database_engine.name == "sqlite":
            return txn.cursor.execute(_SQLITE_LAST_SEQ).fetchone()[0] + count
        if self.database_engine.returning:
            return txn.fetchone(
                "UPDATE counters SET value = value + ? WHERE name = ? RETURNING value",
                (count, "events"),
            )["value"]
        txn.execute("UPDATE counters SET value = value + ? WHERE name = ?", (count, "events"))
        return txn.fetchone("SELECT value FROM counters WHERE name = ?", ("events",))["value"]

    def _write_events_txn(self, txn) -> None:
        pending, txn.pending_events = txn.pending_events, None
        last = self._count_events_txn(txn, len(pending))
        first = last - len(pending) + 1
        for start in range(0, len(pending), _EVENTS_PER_INSERT):
            chunk = pending[start:start + _EVENTS_PER_INSERT]
            rows = []
            for seq, (number, *fields) in enumerate(chunk, first + start):
                number.value = seq
                rows.extend((seq, *fields))
            txn.execute(
                "INSERT INTO events (seq, type, device_id, time, payload) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
                rows,
            )

    def events_after(self, seq: int, limit: int = 100) -> Deferred:
        """
        Fire with up to C{limit} events numbered above C{seq}, in order,
        each a dict of C{seq}, C{type}, C{device_id}, C{time} and the
        payload's fields.
        """
        return self.run_interaction("events_after", self._events_after_txn, seq, limit)

    def _events_after_txn(self, txn, seq, limit) -> list[dict]:
        check_int(seq, "seq", 0)
        check_int(limit, "limit", 1)
        rows = txn.fetchall(
            "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )
        return [event_from_row(row) for row in rows]

    def device_events(
        self, device_id: str, types: tuple[str, ...] = (), limit: int = 20, before: int | None = None,
    ) -> Deferred:
        """
        Fire with up to C{limit} events of C{device_id}, newest first, of
        the given C{types} (all if empty), numbered below C{before} if given;
        each as in L{events_after}.
        """
        return self.run_interaction(
            "device_events", self._device_events_txn, device_id, tuple(types), limit, before
        )

    def _device_events_txn(self, txn, device_id, types, limit, before) -> list[dict]:
        check_int(limit, "limit", 1)
        sql = "SELECT * FROM events WHERE device_id = ?"
        params: list = [device_id]
        if types:
            sql += " AND type IN (%s)" % ", ".join("?" * len(types))
            params.extend(types)
        if before is not None:
            check_int(before, "before", 0)
            sql += " AND seq < ?"
            params.append(before)
        rows = txn.fetchall(sql + " ORDER BY seq DESC LIMIT ?", (*params, limit))
        return [event_from_row(row) for row in rows]

    def last_event_seq(self) -> Deferred:
        """Fire with the highest event number handed out (0 if none)."""
        return self.run_interaction("last_event_seq", self._last_event_seq_txn)

    def _last_event_seq_txn(self, txn) -> int:
        if self.database_engine.name == "sqlite":
            return txn.cursor.execute(_SQLITE_LAST_SEQ).fetchone()[0]
        return txn.fetchone("SELECT value FROM counters WHERE name = ?", ("events",))["value"]

    def get_cursor(self, name: str) -> Deferred:
        """
        Fire with the event seq a consumer (e.g. a webhook URL) has
        acknowledged up to; 0 for a consumer never seen.
        """
        return self.run_interaction("get_cursor", self._get_cursor_txn, name)

    def _get_cursor_txn(self, txn, name) -> int:
        row = txn.fetchone("SELECT value FROM counters WHERE name = ?", (cursor_name(name),))
        return 0 if row is None else row["value"]

    def set_cursor(self, name: str, seq: int) -> Deferred:
        """Record that consumer C{name} has handled every event up to C{seq}."""
        return self.run_interaction("set_cursor", self._set_cursor_txn, name, seq)

    def _set_cursor_txn(self, txn, name, value) -> None:
        txn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (cursor_name(name), int(value)),
        )

    def prune_events(self, before_time: float) -> Deferred:
        """
        Delete events older than C{before_time} with their webhook
        deliveries; numbering goes on.  Fire with how many were deleted.
        """
        return self.run_interaction("prune_events", self._prune_events_txn, before_time)

    def _prune_events_txn(self, txn, before_time) -> int:
        check_time(before_time, "before_time")
        return self._delete_events_txn(txn, "time < ?", (before_time,))

    def _delete_events_txn(self, txn, where: str, args: tuple) -> int:
        """
        Delete the events C{where} says; return how many.  On SQLite the
        counter is first raised to the highest number handed out, so that
        numbering goes on after the newest events are gone (see
        L{_count_events_txn}).
        """
        if self.database_engine.name == "sqlite":
            txn.execute(_SQLITE_RAISE_FLOOR)
        return txn.execute("DELETE FROM events WHERE " + where, args)
