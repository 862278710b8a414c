"""
The SQL of the store, written once for every engine.

Each C{_..._txn(self, txn, ...)} method runs inside one transaction (see
L{dmgateway.store.base.Txn}: C{?} placeholders, rows as dicts) and is
called by the public method of the same name on
L{dmgateway.store.base.Store}.  Times arrive as arguments; nothing here reads
the clock.
"""

from __future__ import annotations

import json
import math
from typing import Any, Optional

from dmgateway.jobstates import check_job, job_event

from .model import (
    AUTH_TYPES,
    DELIVERY_STATES,
    EVENT_FIELDS,
    INTERRUPTED,
    JOB_STATES,
    NOTIFICATION_STATES,
    NOTIFY_MODES,
    PENDING_JOB_STATES,
    ClientAuth,
    Conflict,
    Delivery,
    Device,
    Job,
    Notification,
    NotFound,
    Recovery,
    ServerAuth,
    Session,
    StoreError,
)

__all__ = ["Queries"]


# -- checks and conversions -------------------------------------------------


def _dump(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} is not JSON-serialisable: {e}") from None


def _load(text: Optional[str], what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise StoreError(f"stored {what} is not valid JSON") from None


def _text(value: Any, what: str, *, optional: bool = False, empty: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not empty and not value:
        raise ValueError(f"{what} must not be empty")


_INT64_MAX = 2**63 - 1


def _int(value: Any, what: str, low: int, high: int = _INT64_MAX) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{what} out of range: {value}")


def _time(value: Any, what: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{what} must be a number of seconds")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite")


def _instance(value: Any, kind: Any, what: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        names = " or ".join(k.__name__ for k in kinds)
        raise TypeError(f"{what} must be {names}, not {type(value).__name__}")


def _states(value: Any, allowed: tuple, what: str) -> tuple:
    states = (value,) if isinstance(value, str) else tuple(value)
    if not states:
        raise ValueError(f"{what}: no states given")
    for state in states:
        if state not in allowed:
            raise ValueError(f"{what}: unknown state {state!r}")
    return states


def _state(value: Any, allowed: tuple, what: str) -> str:
    _text(value, what)
    return _states(value, allowed, what)[0]


def _marks(count: int) -> str:
    return "(" + ", ".join("?" * count) + ")"


def _nonce(value: Any, what: str) -> None:
    if value is not None and not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def _check_auth(auth: Any, kind: type, side: str) -> None:
    _instance(auth, kind, f"{side}_auth")
    if auth.type not in AUTH_TYPES:
        raise ValueError(f"{side}_auth: unknown type {auth.type!r}")
    _text(auth.name, f"{side}_auth.name")
    _text(auth.user_hash, f"{side}_auth.user_hash")
    _nonce(auth.nonce, f"{side}_auth.nonce")
    if kind is ServerAuth:
        _text(auth.secret, "server_auth.secret", optional=True)
    if auth.type == "none":
        return
    if not auth.name:
        raise ValueError(f"{side}_auth: type {auth.type} needs a name")
    if kind is ServerAuth and auth.type == "basic":
        if not auth.secret:
            raise ValueError("server_auth: type basic needs the secret")
        _text(auth.secret, "server_auth.secret")
    elif not auth.user_hash:
        raise ValueError(f"{side}_auth: type {auth.type} needs user_hash")


def _device(row: dict) -> Device:
    return Device(
        device_id=row["device_id"],
        server_id=row["server_id"],
        client_auth=ClientAuth(
            type=row["client_auth_type"],
            name=row["client_auth_name"],
            user_hash=row["client_user_hash"],
            nonce=bytes(row["client_nonce"]),
        ),
        server_auth=ServerAuth(
            type=row["server_auth_type"],
            name=row["server_auth_name"],
            user_hash=row["server_user_hash"],
            secret=row["server_secret"],
            nonce=bytes(row["server_nonce"]),
        ),
        msisdn=row["msisdn"],
        sip_uri=row["sip_uri"],
        imsi=row["imsi"],
        devinfo=_load(row["devinfo"], "devinfo"),
        last_session=_load(row["last_session"], "last_session"),
        auth_failures=row["auth_failures"],
        locked_until=row["locked_until"],
        created=row["created"],
        updated=row["updated"],
        reported=_load(row.get("reported"), "reported"),
        device_challenge=_load(row.get("device_challenge"), "device_challenge"),
    )


def _job(row: dict) -> Job:
    return Job(
        job_id=row["job_id"],
        device_id=row["device_id"],
        state=row["state"],
        commands=_load(row["commands"], "job commands"),
        atomic=bool(row["atomic"]),
        notify=row["notify"],
        ui_mode=row["ui_mode"],
        results=_load(row["results"], "job results"),
        error=_load(row["error"], "job error"),
        seq=row["seq"],
        created=row["created"],
        updated=row["updated"],
    )


def _session(row: dict) -> Session:
    return Session(
        session_id=row["session_id"],
        device_id=row["device_id"],
        node=row["node"],
        token=row["token"],
        job_ids=_load(row["job_ids"], "session job ids"),
        started=row["started"],
        last_activity=row["last_activity"],
    )


def _notification(row: dict) -> Notification:
    return Notification(
        notification_id=row["notification_id"],
        device_id=row["device_id"],
        job_id=row["job_id"],
        bearer=row["bearer"],
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        message_id=row["message_id"],
        session_id=row["session_id"],
        payload=bytes(row["payload"]),
        next_attempt_at=row["next_attempt_at"],
        created=row["created"],
        updated=row["updated"],
    )


def _delivery(row: dict) -> Delivery:
    return Delivery(**row)


def _event(row: dict) -> dict:
    event = {key: row[key] for key in EVENT_FIELDS}
    payload = _load(row["payload"], "event payload") or {}
    for key, value in payload.items():
        event.setdefault(key, value)
    return event


# -- the transactions -------------------------------------------------------


class Queries:
    """The C{_..._txn} functions; mixed into L{dmgateway.store.base.Store}."""

    # devices

    def _device_exists_txn(self, txn, device_id: str) -> None:
        if txn.fetchone("SELECT 1 AS one FROM devices WHERE device_id = ?", (device_id,)) is None:
            raise NotFound(f"no device {device_id!r}")

    def _put_device_txn(
        self, txn, now, device_id, server_id, client_auth, server_auth, msisdn, sip_uri, imsi
    ) -> bool:
        _text(device_id, "device_id", empty=False)
        _text(server_id, "server_id", empty=False)
        for value, what in ((msisdn, "msisdn"), (sip_uri, "sip_uri"), (imsi, "imsi")):
            _text(value, what, optional=True)
        _check_auth(client_auth, ClientAuth, "client")
        _check_auth(server_auth, ServerAuth, "server")
        secret = server_auth.secret if server_auth.type == "basic" else None
        common = {
            "server_id": server_id,
            "msisdn": msisdn,
            "sip_uri": sip_uri,
            "imsi": imsi,
            "client_auth_type": client_auth.type,
            "client_auth_name": client_auth.name,
            "client_user_hash": client_auth.user_hash,
            "server_auth_type": server_auth.type,
            "server_auth_name": server_auth.name,
            "server_user_hash": server_auth.user_hash,
            "server_secret": secret,
            "updated": now,
        }
        row = dict(
            common,
            device_id=device_id,
            client_nonce=bytes(client_auth.nonce or b""),
            server_nonce=bytes(server_auth.nonce or b""),
            created=now,
        )
        inserted = txn.execute(
            f"INSERT INTO devices ({', '.join(row)}) VALUES {_marks(len(row))}"
            " ON CONFLICT (device_id) DO NOTHING",
            tuple(row.values()),
        )
        if inserted:
            return True
        if client_auth.nonce is not None:
            common["client_nonce"] = bytes(client_auth.nonce)
        if server_auth.nonce is not None:
            common["server_nonce"] = bytes(server_auth.nonce)
        sets = ", ".join(f"{column} = ?" for column in common)
        txn.execute(
            f"UPDATE devices SET {sets} WHERE device_id = ?",
            (*common.values(), device_id),
        )
        return False

    def _get_device_txn(self, txn, device_id) -> Optional[Device]:
        row = txn.fetchone("SELECT * FROM devices WHERE device_id = ?", (device_id,))
        return None if row is None else _device(row)

    def _delete_device_txn(self, txn, device_id) -> bool:
        return txn.execute("DELETE FROM devices WHERE device_id = ?", (device_id,)) == 1

    def _list_devices_txn(self, txn, limit, after) -> list[Device]:
        _int(limit, "limit", 1)
        _text(after, "after", optional=True)
        if after is None:
            rows = txn.fetchall("SELECT * FROM devices ORDER BY device_id LIMIT ?", (limit,))
        else:
            rows = txn.fetchall(
                "SELECT * FROM devices WHERE device_id > ? ORDER BY device_id LIMIT ?",
                (after, limit),
            )
        return [_device(row) for row in rows]

    def _update_device_txn(self, txn, now, device_id, values: dict) -> bool:
        values = dict(values, updated=now)
        sets = ", ".join(f"{column} = ?" for column in values)
        return (
            txn.execute(
                f"UPDATE devices SET {sets} WHERE device_id = ?",
                (*values.values(), device_id),
            )
            == 1
        )

    def _set_nonces_txn(self, txn, now, device_id, client_nonce, server_nonce) -> bool:
        _nonce(client_nonce, "client_nonce")
        _nonce(server_nonce, "server_nonce")
        values = {}
        if client_nonce is not None:
            values["client_nonce"] = bytes(client_nonce)
        if server_nonce is not None:
            values["server_nonce"] = bytes(server_nonce)
        return self._update_device_txn(txn, now, device_id, values)

    def _set_devinfo_txn(self, txn, now, device_id, devinfo) -> bool:
        _instance(devinfo, dict, "devinfo", optional=True)
        from .migrations.v006_inventory import inventory_columns

        value = None if devinfo is None else _dump(devinfo, "devinfo")
        values = {"devinfo": value, **inventory_columns(devinfo, None)}
        return self._update_device_txn(txn, now, device_id, values)

    def _set_reported_txn(self, txn, now, device_id, reported) -> bool:
        _instance(reported, dict, "reported", optional=True)
        value = None if reported is None else _dump(reported, "reported")
        return self._update_device_txn(txn, now, device_id, {"reported": value})

    def _set_device_challenge_txn(self, txn, now, device_id, challenge) -> bool:
        _instance(challenge, dict, "device challenge", optional=True)
        value = None if challenge is None else _dump(challenge, "device challenge")
        return self._update_device_txn(txn, now, device_id, {"device_challenge": value})

    def _set_last_session_txn(self, txn, now, device_id, session) -> bool:
        _instance(session, dict, "last session", optional=True)
        from .migrations.v006_inventory import inventory_columns

        value = None if session is None else _dump(session, "last session")
        at = inventory_columns(None, session).get("last_session_at") if session is not None else None
        return self._update_device_txn(txn, now, device_id, {"last_session": value, "last_session_at": at})

    def _record_auth_failure_txn(
        self, txn, now, device_id, max_failures, lockout
    ) -> Optional[Device]:
        _int(max_failures, "max_failures", 1)
        _time(lockout, "lockout")
        changed = txn.execute(
            "UPDATE devices SET auth_failures = auth_failures + 1, updated = ?"
            " WHERE device_id = ?",
            (now, device_id),
        )
        if not changed:
            return None
        txn.execute(
            "UPDATE devices SET locked_until = ? WHERE device_id = ? AND auth_failures >= ?",
            (now + lockout, device_id, max_failures),
        )
        return self._get_device_txn(txn, device_id)

    def _reset_auth_failures_txn(self, txn, now, device_id) -> bool:
        return self._update_device_txn(
            txn, now, device_id, {"auth_failures": 0, "locked_until": None}
        )

    # jobs

    def _create_job_txn(
        self, txn, now, job_id, device_id, commands, atomic, notify, ui_mode
    ) -> Job:
        _text(job_id, "job_id", empty=False)
        _text(device_id, "device_id", empty=False)
        _instance(commands, list, "commands")
        _instance(atomic, bool, "atomic")
        if notify not in NOTIFY_MODES:
            raise ValueError(f"unknown notify mode {notify!r}")
        _int(ui_mode, "ui_mode", 0, 3)
        self._device_exists_txn(txn, device_id)
        if txn.fetchone("SELECT 1 AS one FROM jobs WHERE job_id = ?", (job_id,)):
            raise Conflict(f"job {job_id!r} already exists")
        row = {
            "job_id": job_id,
            "device_id": device_id,
            "state": "queued",
            "commands": _dump(commands, "commands"),
            "atomic": int(atomic),
            "notify": notify,
            "ui_mode": ui_mode,
            "results": "[]",
            "created": now,
            "updated": now,
        }
        seq = txn.insert(
            f"INSERT INTO jobs ({', '.join(row)}) VALUES {_marks(len(row))}",
            tuple(row.values()),
            "seq",
        )
        return _job(dict(row, seq=seq, error=None))

    def _get_job_txn(self, txn, job_id) -> Optional[Job]:
        row = txn.fetchone("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        return None if row is None else _job(row)

    def _list_jobs_txn(self, txn, device_id, limit, after) -> list[Job]:
        _int(limit, "limit", 1)
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
        return [_job(row) for row in rows]

    def _jobs_in_state_txn(self, txn, states, device_id=None, limit=None) -> list[Job]:
        states = _states(states, JOB_STATES, "jobs_in_state")
        sql = f"SELECT * FROM jobs WHERE state IN {_marks(len(states))}"
        args: list = list(states)
        if device_id is not None:
            sql += " AND device_id = ?"
            args.append(device_id)
        sql += " ORDER BY seq"
        if limit is not None:
            _int(limit, "limit", 1)
            sql += " LIMIT ?"
            args.append(limit)
        return [_job(row) for row in txn.fetchall(sql, args)]

    def _update_job_txn(
        self, txn, now, job_id, state, results, error, expect_state
    ) -> bool:
        values: dict[str, Any] = {}
        if state is not None:
            values["state"] = _state(state, JOB_STATES, "state")
        if results is not None:
            _instance(results, list, "results")
            values["results"] = _dump(results, "results")
        if error is not None:
            _instance(error, dict, "error")
            values["error"] = _dump(error, "error")
        values["updated"] = now
        sql = f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in values)} WHERE job_id = ?"
        args = [*values.values(), job_id]
        if expect_state is not None:
            expected = _states(expect_state, JOB_STATES, "expect_state")
            sql += f" AND state IN {_marks(len(expected))}"
            args.extend(expected)
        return txn.execute(sql, args) == 1

    def _transition_job_txn(
        self, txn, now, job_id, device_id, expect, state, error, results, event
    ) -> bool:
        for old in expect:
            check_job(old, state)
        changed = self._update_job_txn(txn, now, job_id, state, results, error, expect)
        if changed and event is not None:
            self._append_event_txn(txn, "job", device_id, now, event)
        return changed

    # sessions

    def _start_session_txn(
        self, txn, session_id, device_id, node, token, job_ids, now
    ) -> Session:
        _text(session_id, "session_id", empty=False)
        _text(node, "node", empty=False)
        _time(now, "started")
        _text(token, "token", optional=True)
        job_ids = list(job_ids)
        for job_id in job_ids:
            _text(job_id, "job id")
        self._device_exists_txn(txn, device_id)
        if txn.fetchone("SELECT 1 AS one FROM sessions WHERE session_id = ?", (session_id,)):
            raise Conflict(f"session {session_id!r} already exists")
        row = {
            "session_id": session_id,
            "device_id": device_id,
            "node": node,
            "token": token,
            "job_ids": _dump(job_ids, "job ids"),
            "started": now,
            "last_activity": now,
        }
        txn.execute(
            f"INSERT INTO sessions ({', '.join(row)}) VALUES {_marks(len(row))}",
            tuple(row.values()),
        )
        return _session(row)

    def _get_session_txn(self, txn, session_id) -> Optional[Session]:
        row = txn.fetchone("SELECT * FROM sessions WHERE session_id = ?", (session_id,))
        return None if row is None else _session(row)

    def _touch_session_txn(self, txn, session_id, now, job_ids) -> bool:
        _time(now, "now")
        if job_ids is None:
            return (
                txn.execute(
                    "UPDATE sessions SET last_activity = ? WHERE session_id = ?",
                    (now, session_id),
                )
                == 1
            )
        job_ids = list(job_ids)
        for job_id in job_ids:
            _text(job_id, "job id")
        return (
            txn.execute(
                "UPDATE sessions SET last_activity = ?, job_ids = ? WHERE session_id = ?",
                (now, _dump(job_ids, "job ids"), session_id),
            )
            == 1
        )

    def _close_session_txn(self, txn, session: Session, now, outcome) -> None:
        txn.execute("DELETE FROM sessions WHERE session_id = ?", (session.session_id,))
        if outcome is None:
            return
        last = {
            "id": session.session_id,
            "started": session.started,
            "ended": now,
            "outcome": outcome,
        }
        self._set_last_session_txn(txn, now, session.device_id, last)

    def _end_session_txn(self, txn, session_id, now, outcome) -> Optional[Session]:
        _text(outcome, "outcome", optional=True, empty=False)
        _time(now, "now")
        session = self._get_session_txn(txn, session_id)
        if session is not None:
            self._close_session_txn(txn, session, now, outcome)
        return session

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
        return [_session(row) for row in rows]

    def _recover_txn(self, txn, node, now) -> Recovery:
        _text(node, "node", empty=False)
        _time(now, "now")
        sessions = self._live_sessions_txn(txn, node, None)
        failed: list[str] = []
        devices: list[str] = []
        for session in sessions:
            for job_id in session.job_ids:
                if self._transition_job_txn(
                    txn, now, job_id, session.device_id, ("running",), "failed", INTERRUPTED, None,
                    job_event(job_id, "failed", INTERRUPTED),
                ):
                    failed.append(job_id)
            self._close_session_txn(txn, session, now, "interrupted")
            if session.device_id not in devices:
                devices.append(session.device_id)
        queued = 0
        if devices:
            row = txn.fetchone(
                f"SELECT COUNT(*) AS n FROM jobs WHERE device_id IN {_marks(len(devices))}"
                f" AND state IN {_marks(len(PENDING_JOB_STATES))}",
                (*devices, *PENDING_JOB_STATES),
            )
            queued = row["n"]
        return Recovery(
            node=node,
            sessions=tuple(s.session_id for s in sessions),
            failed_jobs=tuple(failed),
            devices=tuple(devices),
            queued_jobs=queued,
        )

    # events

    def _append_event_txn(self, txn, type, device_id, time, payload) -> int:
        _text(type, "event type", empty=False)
        _text(device_id, "device_id", optional=True)
        _time(time, "time")
        _instance(payload, dict, "payload")
        clash = set(payload) & set(EVENT_FIELDS)
        if clash:
            raise ValueError(f"event payload may not set {sorted(clash)}")
        body = _dump(payload, "event payload")
        txn.execute("UPDATE counters SET value = value + 1 WHERE name = ?", ("events",))
        seq = txn.fetchone("SELECT value FROM counters WHERE name = ?", ("events",))["value"]
        txn.execute(
            "INSERT INTO events (seq, type, device_id, time, payload) VALUES (?, ?, ?, ?, ?)",
            (seq, type, device_id, time, body),
        )
        return seq

    def _events_after_txn(self, txn, seq, limit) -> list[dict]:
        _int(seq, "seq", 0)
        _int(limit, "limit", 1)
        rows = txn.fetchall(
            "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )
        return [_event(row) for row in rows]

    def _device_events_txn(self, txn, device_id, types, limit, before) -> list[dict]:
        _int(limit, "limit", 1)
        sql = "SELECT * FROM events WHERE device_id = ?"
        params: list = [device_id]
        if types:
            sql += " AND type IN (%s)" % ", ".join("?" * len(types))
            params.extend(types)
        if before is not None:
            _int(before, "before", 0)
            sql += " AND seq < ?"
            params.append(before)
        rows = txn.fetchall(sql + " ORDER BY seq DESC LIMIT ?", (*params, limit))
        return [_event(row) for row in rows]

    def _last_event_seq_txn(self, txn) -> int:
        return txn.fetchone("SELECT value FROM counters WHERE name = ?", ("events",))["value"]

    def _get_cursor_txn(self, txn, name) -> int:
        row = txn.fetchone("SELECT value FROM counters WHERE name = ?", (_cursor_name(name),))
        return 0 if row is None else row["value"]

    def _set_cursor_txn(self, txn, name, value) -> None:
        txn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (_cursor_name(name), int(value)),
        )

    def _prune_events_txn(self, txn, before_time) -> int:
        _time(before_time, "before_time")
        return txn.execute("DELETE FROM events WHERE time < ?", (before_time,))

    # notifications

    def _add_notification_txn(
        self, txn, now, device_id, bearer, payload, job_id, session_id, next_attempt_at
    ) -> Notification:
        _text(bearer, "bearer", empty=False)
        _instance(payload, (bytes, bytearray), "payload")
        _text(job_id, "job_id", optional=True)
        if session_id is not None:
            _int(session_id, "session_id", 0, 0xFFFF)
        _time(next_attempt_at, "next_attempt_at", optional=True)
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
            "session_id": session_id,
            "payload": bytes(payload),
            "next_attempt_at": now if next_attempt_at is None else next_attempt_at,
            "created": now,
            "updated": now,
        }
        ident = txn.insert(
            f"INSERT INTO notifications ({', '.join(row)}) VALUES {_marks(len(row))}",
            tuple(row.values()),
            "notification_id",
        )
        return _notification(dict(row, notification_id=ident))

    def _get_notification_txn(self, txn, notification_id) -> Optional[Notification]:
        _int(notification_id, "notification_id", 0)
        row = txn.fetchone(
            "SELECT * FROM notifications WHERE notification_id = ?", (notification_id,)
        )
        return None if row is None else _notification(row)

    def _update_notification_txn(
        self, txn, now, notification_id, state, count_attempt, last_error,
        message_id, next_attempt_at, expect_state,
    ) -> bool:
        _int(notification_id, "notification_id", 0)
        sets, args = ["updated = ?"], [now]
        if state is not None:
            sets.append("state = ?")
            args.append(_state(state, NOTIFICATION_STATES, "state"))
        if count_attempt:
            sets.append("attempts = attempts + 1")
        for column, value in (("last_error", last_error), ("message_id", message_id)):
            if value is not None:
                _text(value, column)
                sets.append(f"{column} = ?")
                args.append(value)
        if next_attempt_at is not None:
            _time(next_attempt_at, "next_attempt_at")
            sets.append("next_attempt_at = ?")
            args.append(next_attempt_at)
        sql = f"UPDATE notifications SET {', '.join(sets)} WHERE notification_id = ?"
        args.append(notification_id)
        if expect_state is not None:
            expected = _states(expect_state, NOTIFICATION_STATES, "expect_state")
            sql += f" AND state IN {_marks(len(expected))}"
            args.extend(expected)
        return txn.execute(sql, args) == 1

    def _claim_notification_txn(self, txn, notification_id, now, lease) -> bool:
        _int(notification_id, "notification_id", 0)
        _time(now, "now")
        _time(lease, "lease")
        return txn.execute(
            "UPDATE notifications SET next_attempt_at = ?, updated = ?"
            " WHERE notification_id = ? AND state = 'queued'"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
            (now + lease, now, notification_id, now),
        ) == 1

    def _release_claims_txn(self, txn, bearer, now, lease) -> int:
        _time(now, "now")
        _time(lease, "lease")
        # a claim is the one write that sets next_attempt_at to exactly updated + lease;
        # claims made from ``now`` on are the caller's own
        return txn.execute(
            "UPDATE notifications SET next_attempt_at = ?, updated = ?"
            " WHERE bearer = ? AND state = 'queued' AND next_attempt_at > ?"
            " AND updated < ? AND next_attempt_at = updated + ?",
            (now, now, bearer, now, now, lease),
        )

    def _due_notifications_txn(self, txn, now, limit, bearers) -> list[Notification]:
        _time(now, "now")
        _int(limit, "limit", 1)
        sql = (
            "SELECT * FROM notifications WHERE state = 'queued'"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
        )
        args: list = [now]
        if bearers is not None:
            bearers = [bearers] if isinstance(bearers, str) else list(bearers)
            if not bearers:
                return []
            sql += f" AND bearer IN {_marks(len(bearers))}"
            args.extend(bearers)
        sql += " ORDER BY COALESCE(next_attempt_at, 0), notification_id LIMIT ?"
        args.append(limit)
        return [_notification(row) for row in txn.fetchall(sql, args)]

    def _notifications_for_job_txn(self, txn, job_id) -> list[Notification]:
        rows = txn.fetchall(
            "SELECT * FROM notifications WHERE job_id = ? ORDER BY notification_id",
            (job_id,),
        )
        return [_notification(row) for row in rows]

    def _set_notification_payload_txn(self, txn, now, notification_id, payload) -> bool:
        _int(notification_id, "notification_id", 0)
        _instance(payload, (bytes, bytearray), "payload")
        return txn.execute(
            "UPDATE notifications SET payload = ?, updated = ? WHERE notification_id = ?",
            (bytes(payload), now, notification_id),
        ) == 1

    def _standalone_notifications_txn(self, txn, device_id, limit) -> list[Notification]:
        _text(device_id, "device_id", empty=False)
        rows = txn.fetchall(
            "SELECT * FROM notifications WHERE device_id = ? AND job_id IS NULL"
            " ORDER BY notification_id DESC LIMIT ?",
            (device_id, limit),
        )
        return [_notification(row) for row in rows]

    def _find_notification_by_message_id_txn(
        self, txn, message_id, bearer
    ) -> Optional[Notification]:
        _text(message_id, "message_id", empty=False)
        sql, args = "SELECT * FROM notifications WHERE message_id = ?", [message_id]
        if bearer is not None:
            sql += " AND bearer = ?"
            args.append(bearer)
        row = txn.fetchone(sql + " ORDER BY notification_id DESC LIMIT 1", args)
        return None if row is None else _notification(row)

    # webhook deliveries

    def _add_delivery_txn(self, txn, now, url, event_seq, next_attempt_at) -> Delivery:
        _text(url, "url", empty=False)
        _int(event_seq, "event_seq", 1)
        _time(next_attempt_at, "next_attempt_at", optional=True)
        if txn.fetchone("SELECT seq FROM events WHERE seq = ?", (event_seq,)) is None:
            raise NotFound(f"no event {event_seq}")
        row = {
            "url": url,
            "event_seq": event_seq,
            "state": "pending",
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": now if next_attempt_at is None else next_attempt_at,
            "created": now,
            "updated": now,
        }
        ident = txn.insert(
            f"INSERT INTO deliveries ({', '.join(row)}) VALUES {_marks(len(row))}",
            tuple(row.values()),
            "delivery_id",
        )
        return _delivery(dict(row, delivery_id=ident))

    def _get_delivery_txn(self, txn, delivery_id) -> Optional[Delivery]:
        _int(delivery_id, "delivery_id", 0)
        row = txn.fetchone("SELECT * FROM deliveries WHERE delivery_id = ?", (delivery_id,))
        return None if row is None else _delivery(row)

    def _due_deliveries_txn(self, txn, now, limit) -> list[Delivery]:
        _time(now, "now")
        _int(limit, "limit", 1)
        rows = txn.fetchall(
            "SELECT * FROM deliveries WHERE state = 'pending'"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
            " ORDER BY COALESCE(next_attempt_at, 0), delivery_id LIMIT ?",
            (now, limit),
        )
        return [_delivery(row) for row in rows]

    def _mark_delivery_txn(
        self, txn, now, delivery_id, state, last_error, next_attempt_at, expect_state
    ) -> bool:
        _int(delivery_id, "delivery_id", 0)
        state = _state(state, DELIVERY_STATES, "state")
        _text(last_error, "last_error", optional=True)
        _time(next_attempt_at, "next_attempt_at", optional=True)
        sql = (
            "UPDATE deliveries SET state = ?, attempts = attempts + 1,"
            " last_error = ?, next_attempt_at = ?, updated = ? WHERE delivery_id = ?"
        )
        args: list = [state, last_error, next_attempt_at, now, delivery_id]
        if expect_state is not None:
            expected = _states(expect_state, DELIVERY_STATES, "expect_state")
            sql += f" AND state IN {_marks(len(expected))}"
            args.extend(expected)
        return txn.execute(sql, args) == 1



def _cursor_name(name):
    """Consumer cursors live beside the event counter, under their own prefix."""
    if not isinstance(name, str) or not name:
        raise ValueError("a cursor name must be a non-empty string")
    return "cursor:" + name
