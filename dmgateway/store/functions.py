"""
Device-function operations in the store: created with the job that sends
their Exec, moved along by what the device answers (the Exec's Status, the
Generic Alert with the Correlator, the read-back of State/FwV) and by the
deadline.  Every transition, the campaign device it belongs to and its
``function`` event are written in one transaction.

Mixed into L{dmgateway.store.base.Store}; the tables come from migration
007.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Optional

from ..functions import FunctionError, offered_wipe_list, outcome_for, parse_completion, parse_inventory, wipe_commands
from ..functions.alerts import normalise_source
from ..jobstates import (
    FINAL_OPERATION_STATES, OPEN_OPERATION_STATES, OPERATION_STATES, PENDING_JOB_STATES, check_operation, job_event,
)
from .rows import dump_json as _dump, load_json as _load
from .values import check_int as _int, check_text as _text, check_time as _time

__all__ = ["OPERATION_STATES", "OPEN_STATES", "FINAL_STATES", "OperationRow", "FunctionQueries"]

#: States in which a completion alert is still expected.
OPEN_STATES = OPEN_OPERATION_STATES
FINAL_STATES = FINAL_OPERATION_STATES
#: What a read-back node is recorded as in the outcome.
_READBACK_KEYS = {"State": "device_state", "FwV": "fwv", "Version": "version"}


@dataclass(frozen=True)
class OperationRow:
    """One row of C{operations}."""

    op_id: str
    device_id: str
    function: str
    action: str
    correlator: str
    alert_type: str
    exec_target: str
    readback: list
    state: str
    result_code: Optional[int]
    outcome: dict
    error: Optional[dict]
    timeout: float
    deadline: Optional[float]
    expect_fwv: Optional[str]
    campaign_id: Optional[str]
    readback_job_id: Optional[str]
    created: float
    updated: float


def _operation(row: dict) -> OperationRow:
    values = dict(row)
    values["readback"] = _load(row["readback"], "operation read-back")
    values["outcome"] = _load(row["outcome"], "operation outcome") or {}
    values["error"] = _load(row["error"], "operation error") if row["error"] else None
    return OperationRow(**values)


def _exec_status(results: list) -> Optional[int]:
    for result in reversed(results or []):
        if isinstance(result, dict) and result.get("op") == "Exec":
            return result.get("status")
    return None


def _readback_values(results: list) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for result in results or []:
        if not isinstance(result, dict) or result.get("op") != "Get" or result.get("status") != 200:
            continue
        listing = parse_inventory(result.get("target"), result)
        if listing is not None:
            values.setdefault("inventory", {})[listing[0]] = listing[1]
            continue
        node = str(result.get("target") or "").rsplit("/", 1)[-1]
        key = _READBACK_KEYS.get(node)
        data = result.get("data")
        if key is None or not isinstance(data, str):
            continue
        value: Any = data.strip()
        if key == "device_state":
            value = int(value) if value.isdigit() and len(value) < 7 else value
        values[key] = value
    return values


def _initial_outcome(operation: Any) -> dict:
    outcome: dict[str, Any] = {}
    if operation.component:
        outcome["component"] = operation.component
    if getattr(operation, "wipe_list", None):
        outcome["wipe_request"] = list(operation.wipe_list)
    return outcome


def _reads_wipe_list(op: OperationRow) -> bool:
    """Whether a wipe still waits for the device's AvailableWipeList (its first job)."""
    return op.function == "lawmo" and op.action == "wipe" and "wipe_offered" not in op.outcome


def _wipe_list_answer(results: list) -> Optional[str]:
    for result in results or []:
        if isinstance(result, dict) and result.get("op") == "Get" and result.get("status") == 200:
            return result.get("data")
    return None


class FunctionQueries:
    """The operation queries of the store (see the module docstring)."""

    #: Operator result-code tables ``{function: {code: (success, meaning)}}``
    #: (``[functions] result_codes``), set by the function service.
    result_codes: dict = {}

    # -- public, each one transaction -------------------------------------------

    def create_operation(
        self,
        job_id: str,
        device_id: str,
        operation: Any,
        *,
        timeout: float,
        notify: str = "auto",
        expect_fwv: Optional[str] = None,
        campaign_id: Optional[str] = None,
        now: Optional[float] = None,
    ):
        """
        Queue the job that starts C{operation} (a L{dmgateway.functions.Operation})
        and record the operation; fires with C{(Job, OperationRow)}.
        """
        return self.run_interaction(
            "create_operation", self._create_operation_txn, self._now() if now is None else now,
            job_id, device_id, operation, timeout, notify, expect_fwv, campaign_id,
        )

    def get_operation(self, op_id: str):
        """Fire with the L{OperationRow}, or L{None}."""
        return self.run_interaction("get_operation", self._get_operation_txn, op_id)

    def finished_operations(self, device_id: str, limit: int = 500):
        """Fire with the device's ended operations, oldest first (the last C{limit})."""
        return self.run_interaction("finished_operations", self._finished_operations_txn, device_id, limit)

    def _finished_operations_txn(self, txn, device_id, limit):
        rows = txn.fetchall(
            "SELECT o.* FROM operations o JOIN jobs j ON j.job_id = o.op_id WHERE o.device_id = ?"
            " AND o.state IN ('done', 'failed', 'expired') ORDER BY o.updated DESC, j.seq DESC LIMIT ?",
            (device_id, limit))
        return [_operation(row) for row in reversed(rows)]

    def open_operations_of(self, device_id: str, function: str):
        """Fire with the device's operations of C{function} that have not ended."""
        return self.run_interaction("open_operations_of", self._open_operations_of_txn, device_id, function)

    def _open_operations_of_txn(self, txn, device_id, function):
        rows = txn.fetchall(
            "SELECT * FROM operations WHERE device_id = ? AND function = ?"
            " AND state IN ('pending', 'awaiting_device', 'verifying')", (device_id, function))
        return [_operation(row) for row in rows]

    def open_operations(self, device_id: str, correlators: list):
        """Fire with the device's operations still expecting an alert, by Correlator."""
        return self.run_interaction("open_operations", self._open_operations_txn, device_id, list(correlators))

    def function_job_finished(self, job_id: str, state: str, results: list, now: float):
        """A job ended: move the operation it starts or reads back; fires with it or L{None}."""
        return self.run_interaction(
            "function_job_finished", self._function_job_finished_txn, now, job_id, state, results
        )

    def function_alert(self, device_id: str, payload: dict, now: float, readback=None):
        """
        A generic alert arrived: settle the operation it completes (fires
        with it, or L{None}).  C{readback} is what the session already holds
        for it, recorded here: C{("readback", job_id, commands)} the job
        reading the result back, or C{("request", job_id, operation,
        firmware_id, token, expires, timeout, version)} the update a FUMO
        device request gets.
        """
        return self.run_interaction(
            "function_alert", self._function_alert_txn, now, device_id, payload, readback
        )

    def expire_operations(self, now: float, limit: int = 100):
        """
        End at most C{limit} operations whose deadline passed (state
        C{expired}, each with a job reading the device's State back); fires
        with C{(count, jobs)}: how many ended and the read-back L{Job}s.
        """
        return self.run_interaction("expire_operations", self._expire_operations_txn, now, limit)

    # -- transactions ------------------------------------------------------------

    def _create_operation_txn(self, txn, now, job_id, device_id, operation, timeout, notify, expect_fwv,
                              campaign_id):
        _time(timeout, "timeout")
        _text(expect_fwv, "expect_fwv", optional=True)
        _text(campaign_id, "campaign_id", optional=True)
        job = self._create_job_txn(txn, now, job_id, device_id, operation.commands, False, notify, 0)
        row = {
            "op_id": job_id,
            "device_id": device_id,
            "function": operation.function,
            "action": operation.action,
            "correlator": operation.correlator,
            "alert_type": operation.alert_type,
            "exec_target": operation.exec_target,
            "readback": _dump(operation.readback, "read-back"),
            "state": "pending",
            "result_code": None,
            "outcome": _dump(_initial_outcome(operation), "outcome"),
            "error": None,
            "timeout": float(timeout),
            "deadline": now + float(timeout),  # reset when the device accepts the Exec
            "expect_fwv": expect_fwv,
            "campaign_id": campaign_id,
            "readback_job_id": None,
            "created": now,
            "updated": now,
        }
        txn.execute(
            f"INSERT INTO operations ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
        return job, _operation(row)

    def _get_operation_txn(self, txn, op_id):
        row = txn.fetchone("SELECT * FROM operations WHERE op_id = ?", (op_id,))
        return None if row is None else _operation(row)

    def _open_operations_txn(self, txn, device_id, correlators):
        correlators = [c for c in correlators if isinstance(c, str)][:32]
        if not correlators:
            return []
        marks = ", ".join("?" * len(correlators))
        rows = txn.fetchall(
            f"SELECT * FROM operations WHERE device_id = ? AND correlator IN ({marks})"
            " AND state IN ('pending', 'awaiting_device')",
            (device_id, *correlators),
        )
        return [_operation(row) for row in rows]

    def _settle_txn(self, txn, now, op, state, *, result_code=None, outcome=None, error=None,
                    deadline=None, readback_job_id=None):
        """Move C{op} to C{state}; update its campaign device; append its event."""
        if state != op.state:  # staying in its state, an operation only records more outcome
            check_operation(op.state, state)
        merged = dict(op.outcome)
        merged.update(outcome or {})
        txn.execute(
            "UPDATE operations SET state = ?, result_code = ?, outcome = ?, error = ?, deadline = ?,"
            " readback_job_id = ?, updated = ? WHERE op_id = ?",
            (
                state,
                result_code if result_code is not None else op.result_code,
                _dump(merged, "outcome"),
                _dump(error, "error") if error is not None else (_dump(op.error, "error") if op.error else None),
                deadline if deadline is not None else op.deadline,
                readback_job_id or op.readback_job_id,
                now,
                op.op_id,
            ),
        )
        code = result_code if result_code is not None else op.result_code
        if op.campaign_id is not None and state in FINAL_STATES:
            reason = (error or op.error or {}).get("code") if state != "done" else None
            txn.execute(
                "UPDATE campaign_devices SET state = ?, result_code = ?, reason = ?, finished = ?"
                " WHERE campaign_id = ? AND device_id = ? AND state = 'started'",
                (state, code, reason, now, op.campaign_id, op.device_id),
            )
        payload: dict[str, Any] = {
            "op_id": op.op_id,
            "function": op.function,
            "action": op.action,
            "state": state,
        }
        if code is not None:
            payload["result_code"] = code
        if op.campaign_id is not None:
            payload["campaign_id"] = op.campaign_id
        if error is not None:
            payload["error"] = error.get("code")
        self._append_event_txn(txn, "function", op.device_id, now, payload)
        return self._get_operation_txn(txn, op.op_id)

    def _function_job_finished_txn(self, txn, now, job_id, state, results):
        if txn.plain_jobs is not None and job_id in txn.plain_jobs:
            return None  # the batch just ended a plain job: no operation has it (migration 011)
        # One query for the operation whose job this is and the one it reads
        # back for (most jobs are neither): every job of a session asks.
        rows = txn.fetchall("SELECT * FROM operations WHERE op_id = ? OR readback_job_id = ?", (job_id, job_id))
        if not rows:
            return None
        readers = [r for r in rows if r["readback_job_id"] == job_id]
        row = next((r for r in rows if r["op_id"] == job_id), None)
        if row is None:
            # the second job of a wipe (see _wipe_list_read_txn), or its list read again
            row = next((r for r in readers if r["state"] == "pending"), None)
        if row is not None and row["state"] == "pending" and _reads_wipe_list(_operation(row)):
            return self._wipe_list_read_txn(txn, now, _operation(row), state, results)
        if row is not None and row["state"] == "pending" and row["action"] == "inventory":
            op = _operation(row)
            values = _readback_values(results)
            if state == "done" and "inventory" in values:
                return self._settle_txn(txn, now, op, "done", outcome=dict(values, success=True,
                                                                            meaning="inventory read"))
            return self._settle_txn(txn, now, op, "failed", outcome=values, error={
                "code": "inventory_unreadable", "message": "the device did not return its SCOMO inventory"})
        if row is not None and row["state"] == "pending":
            op = _operation(row)
            status = _exec_status(results)
            if state == "done" and status == 202:
                return self._settle_txn(txn, now, op, "awaiting_device", outcome={"exec_status": 202},
                                        deadline=now + op.timeout)
            if state == "done" and status == 200:
                return self._settle_txn(txn, now, op, "done",
                                        outcome={"exec_status": 200, "success": True,
                                                 "meaning": "completed at once (Exec 200)"})
            error = {"code": "exec_refused", "message": "the device refused the operation (Exec status %s)"
                     % (status,)} if status is not None else {"code": "not_started",
                                                              "message": "the operation's commands did not run"}
            return self._settle_txn(txn, now, op, "failed", outcome={"exec_status": status}, error=error)
        if not readers:
            return None
        op = _operation(readers[0])
        values = _readback_values(results)
        if op.state != "verifying":
            # a failed or expired operation: the values only inform
            return self._settle_txn(txn, now, op, op.state, outcome=values)
        values["verified"] = state == "done"
        if op.function == "fumo" and op.expect_fwv is not None and values.get("fwv") != op.expect_fwv:
            error = {"code": "fwv_mismatch", "message": "the device reports FwV %r, expected %r"
                     % (values.get("fwv"), op.expect_fwv)}
            return self._settle_txn(txn, now, op, "failed", outcome=values, error=error)
        return self._settle_txn(txn, now, op, "done", outcome=values)

    def _wipe_list_read_txn(self, txn, now, op, state, results):
        """
        The first job of a wipe read the device's AvailableWipeList: fail the
        operation for an entry the device does not offer, else queue the
        second job (ToBeWiped, Exec).  While the operation is pending its
        C{readback_job_id} names that second job (no read-back exists yet).
        """
        if state != "done":
            error = {"code": "not_started", "message": "the device's AvailableWipeList could not be read"}
            return self._settle_txn(txn, now, op, "failed", error=error)
        root = op.exec_target.rsplit("/Operations/", 1)[0]
        try:
            offered = offered_wipe_list(_wipe_list_answer(results))
        except ValueError as e:
            return self._settle_txn(txn, now, op, "failed", error={"code": "wipe_list_unreadable", "message": str(e)})
        requested = op.outcome.get("wipe_request")
        try:
            commands = wipe_commands(root, op.exec_target, op.correlator, requested, offered)
        except FunctionError as e:
            code = "wipe_list_entry_unavailable" if requested else "wipe_list_empty"
            return self._settle_txn(txn, now, op, "failed", outcome={"wipe_offered": offered},
                                    error={"code": code, "message": str(e)})
        stage_id = uuid.uuid4().hex
        self._create_job_txn(txn, now, stage_id, op.device_id, commands, False, "auto", 0)
        chosen = [c["target"].rsplit("/", 2)[-2] for c in commands if c["op"] == "Replace"]
        return self._settle_txn(txn, now, op, "pending", outcome={"wipe_offered": offered, "wipe_list": chosen},
                                readback_job_id=stage_id)

    def _function_alert_txn(self, txn, now, device_id, payload, readback):
        if readback is not None and readback[0] == "request":
            return self._function_request_txn(txn, now, device_id, *readback[1:])
        if readback is not None:
            _kind, readback_id, commands = readback
            self._create_job_txn(txn, now, readback_id, device_id, commands, False, "none", 0)
        else:
            readback_id = None
        done = parse_completion(payload)
        if done is None or done.request:
            return None
        op = None
        if done.correlator is not None:
            row = txn.fetchone(
                "SELECT * FROM operations WHERE device_id = ? AND correlator = ?", (device_id, done.correlator)
            )
            op = None if row is None else _operation(row)
        else:
            # a client that drops the Correlator: the one open operation with this Source and Type
            # (or with this Type, when the client drops the Source too)
            rows = txn.fetchall(
                "SELECT * FROM operations WHERE device_id = ? AND alert_type = ?"
                " AND state IN ('pending', 'awaiting_device')",
                (device_id, done.alert_type),
            )
            found = [r for r in rows if done.source is None or normalise_source(r["exec_target"]) == done.source]
            op = _operation(found[0]) if len(found) == 1 else None
        if op is None or op.state not in OPEN_STATES:
            return None  # unknown, or a repeated report: the first result stands
        alert = {"alert_type": done.alert_type}
        if done.identifier is not None:
            alert["identifier"] = done.identifier
        if done.code is None:
            error = {"code": "bad_result", "message": "the completion alert carries no result code"}
            return self._settle_txn(txn, now, op, "failed", outcome=alert, error=error,
                                    readback_job_id=readback_id)
        verdict = outcome_for(op.function, done.code, self.result_codes.get(op.function))
        alert.update(success=verdict.success, meaning=verdict.meaning)
        if not verdict.success:
            error = {"code": "device_failure", "message": "%d %s" % (done.code, verdict.meaning)}
            return self._settle_txn(txn, now, op, "failed", result_code=done.code, outcome=alert, error=error,
                                    readback_job_id=readback_id)
        if readback_id is not None:
            return self._settle_txn(txn, now, op, "verifying", result_code=done.code, outcome=alert,
                                    readback_job_id=readback_id)
        return self._settle_txn(txn, now, op, "done", result_code=done.code, outcome=alert)

    def _function_request_txn(self, txn, now, device_id, job_id, operation, firmware_id, token, expires, timeout,
                              expect_fwv):
        """A device asked for an update and the session already holds the job for it: record both."""
        if token is not None:
            self._add_download_token_txn(txn, token, firmware_id, device_id, expires)
        _job, op = self._create_operation_txn(txn, now, job_id, device_id, operation, timeout, "none", expect_fwv,
                                              None)
        self._append_event_txn(txn, "function", device_id, now, {
            "op_id": op.op_id, "function": op.function, "action": op.action, "state": "pending",
            "firmware_id": firmware_id, "reason": "device request"})
        return op

    def _expire_operations_txn(self, txn, now, limit):
        _int(limit, "limit", 1)
        rows = txn.fetchall(
            "SELECT * FROM operations WHERE state IN ('pending', 'awaiting_device') AND deadline < ?"
            " ORDER BY deadline LIMIT ?" + self._skip_locked_clause(),
            (now, limit),
        )
        jobs = []
        count = 0
        for row in rows:
            op = _operation(row)
            changed = txn.execute(
                "UPDATE operations SET state = 'expired', updated = ? WHERE op_id = ? AND state = ?",
                (now, op.op_id, op.state),
            )
            if not changed:
                continue  # another process took it
            count += 1
            readback_id = None
            if op.state == "pending":
                # the device never ran the operation's commands: they will not run late
                error = {"code": "expired", "message": "the device did not run the operation before the deadline"}
                for job_id in dict.fromkeys((op.op_id, op.readback_job_id or op.op_id)):
                    self._transition_job_txn(txn, now, job_id, op.device_id, PENDING_JOB_STATES, "expired", None,
                                             None, job_event(job_id, "expired"))
            else:
                state_reads = [cmd for cmd in op.readback if str(cmd.get("target", "")).endswith("/State")]
                if state_reads:
                    readback_id = uuid.uuid4().hex
                    jobs.append(self._create_job_txn(txn, now, readback_id, op.device_id, state_reads, False,
                                                     "auto", 0))
                error = {"code": "expired", "message": "no completion alert before the deadline"}
            self._settle_txn(txn, now, op, "expired", error=error, readback_job_id=readback_id)
        return count, jobs

    def settle_orphans(self, now: float, limit: int = 1000):
        """
        Settle the pending operations whose job ended without the session
        saying so: cancelled through the API (the operation fails), or
        interrupted by a gateway restart while it ran (the Exec may have
        reached the device: the operation awaits its alert until the
        deadline; it is never sent twice; a wipe's AvailableWipeList read,
        which changes nothing, is queued again).  Fires with how many and
        the jobs queued again (their devices to wake).
        """
        return self.run_interaction("settle_orphans", self._settle_orphans_txn, now, limit)

    def _settle_orphans_txn(self, txn, now, limit):
        rows = txn.fetchall(
            "SELECT o.*, j.state AS job_state, j.error AS job_error, j.commands AS job_commands,"
            " j.notify AS job_notify FROM operations o JOIN jobs j"
            " ON j.job_id = COALESCE(o.readback_job_id, o.op_id) WHERE o.state = 'pending'"
            " AND j.state IN ('failed', 'expired', 'done') LIMIT ?", (limit,))
        jobs = []
        for row in rows:
            job_state, job_error = row.pop("job_state"), row.pop("job_error")
            commands, notify = _load(row.pop("job_commands"), "job commands"), row.pop("job_notify")
            op = _operation(row)
            error = _load(job_error, "job error") if job_error else None
            code = (error or {}).get("code")
            if job_state == "failed" and code == "interrupted" and _reads_wipe_list(op):
                read_id = uuid.uuid4().hex
                jobs.append(self._create_job_txn(txn, now, read_id, op.device_id, commands, False, notify, 0))
                self._settle_txn(txn, now, op, "pending", outcome={"interrupted": True}, readback_job_id=read_id)
            elif job_state == "failed" and code == "interrupted":
                self._settle_txn(txn, now, op, "awaiting_device", deadline=now + op.timeout,
                                 outcome={"interrupted": True})
            elif job_state == "done":
                continue  # its end is being recorded by the session
            else:
                self._settle_txn(txn, now, op, "failed" if job_state == "failed" else "expired",
                                 error={"code": code or job_state, "message": "the operation's job ended: %s"
                                        % ((error or {}).get("message") or job_state,)})
        return len(rows), jobs

    def _skip_locked_clause(self) -> str:
        """Row locks that other processes skip (PostgreSQL); SQLite has one writer."""
        return " FOR UPDATE SKIP LOCKED" if getattr(self, "engine", "") == "postgresql" else ""
