"""
Campaigns in the store: creation (the selection resolved through the
inventory query, waves assigned, devices already in another campaign for
the same function skipped), the scheduler step, pause/resume/cancel and
progress.

A step holds the campaign row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
the single writer on SQLite) while it advances waves and starts devices,
and starts each device by creating its operation and job in the same
transaction: with several processes no wave and no device starts twice,
and a crash loses nothing (what committed is started, the rest waits).

Mixed into L{dmgateway.store.base.Store}; tables from migration 007.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Optional

from ..functions import FunctionError, build_operation, correlator_for
from ..functions.rollout import in_window, policy_from_json, starts_allowed, wave_of, wave_verdict
from .database import Database
from .inventory import DeviceFilter
from .jobs import NOT_RUNNING, job_from_row
from .model import NotFound
from .rows import dump_json, json_column, load_json, row_converter

__all__ = ["CAMPAIGN_STATES", "DEVICE_STATES", "Campaign", "CampaignQueries"]

CAMPAIGN_STATES = ("running", "paused", "cancelled", "done")
DEVICE_STATES = ("waiting", "started", "done", "failed", "expired", "skipped", "cancelled")
ACTIVE = ("running", "paused")
_PAGE = 1000
MAX_DEVICES = 1_000_000


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    function: str
    action: str
    params: dict
    selection: dict
    policy: dict
    state: str
    reason: Optional[str]
    wave: int
    total: int
    next_start: float
    created: float
    updated: float


_campaign = row_converter(
    Campaign,
    params=json_column("campaign params"),
    selection=json_column("campaign selection"),
    policy=json_column("campaign policy"),
)


class CampaignQueries(Database):
    """The campaign queries of the store (see the module docstring)."""

    def create_campaign(self, campaign_id, function, action, params, selection, where, devices, policy, now):
        """
        Record a campaign over the devices matching C{where} (a
        L{DeviceFilter}) or listed in C{devices}; fires with the L{Campaign}.
        """
        return self.run_interaction(
            "create_campaign", self._create_campaign_txn, now, campaign_id, function, action, params, selection,
            where, devices, policy,
        )

    def get_campaign(self, campaign_id):
        return self.run_interaction("get_campaign", self._get_campaign_txn, campaign_id)

    def list_campaigns(self, states=None, limit=1000):
        return self.run_interaction("list_campaigns", self._list_campaigns_txn, states, limit)

    def campaign_progress(self, campaign_id):
        """Fire with counts: C{{"by_state", "by_result", "by_wave"}}."""
        return self.run_interaction("campaign_progress", self._campaign_progress_txn, campaign_id)

    def campaign_devices(self, campaign_id, limit=MAX_DEVICES):
        return self.run_interaction("campaign_devices", self._campaign_devices_txn, campaign_id, limit)

    def set_campaign_state(self, campaign_id, action, now):
        """C{pause}, C{resume} or C{cancel}; fires with the L{Campaign} (L{NotFound}, or ValueError)."""
        return self.run_interaction("set_campaign_state", self._set_campaign_state_txn, now, campaign_id, action)

    def campaign_step(self, campaign_id, now, default_timeout, burst, download):
        """
        One scheduler step; fires with the L{Job}s it queued.  C{download}
        is C{(base_url, token_lifetime)} of the package server, or None.
        """
        return self.run_interaction(
            "campaign_step", self._campaign_step_txn, now, campaign_id, default_timeout, burst, download
        )

    # -- transactions ------------------------------------------------------------

    def _create_campaign_txn(self, txn, now, campaign_id, function, action, params, selection, where, devices,
                             policy):
        if devices is not None:
            found = []
            for device_id in devices:
                if txn.fetchone("SELECT 1 AS one FROM devices WHERE device_id = ?", (device_id,)):
                    found.append(device_id)
            missing = len(devices) - len(found)
        else:
            found, after, missing = [], None, 0
            while True:
                page = self._find_devices_txn(txn, now, where or DeviceFilter(), _PAGE, after)
                found.extend(d.device_id for d in page)
                if len(page) < _PAGE or len(found) > MAX_DEVICES:
                    break
                after = page[-1].device_id
        if len(found) > MAX_DEVICES:
            raise ValueError("the selection has more than %d devices" % (MAX_DEVICES,))
        busy = {
            row["device_id"]: row["campaign_id"]
            for row in txn.fetchall(
                "SELECT d.device_id, d.campaign_id FROM campaign_devices d JOIN campaigns c"
                " ON c.campaign_id = d.campaign_id WHERE c.function = ? AND c.state IN ('running', 'paused')"
                " AND d.state IN ('waiting', 'started')",
                (function,),
            )
        }
        waves = tuple(policy["waves"])
        eligible = [d for d in found if d not in busy]
        row = {
            "campaign_id": campaign_id,
            "function": function,
            "action": action,
            "params": dump_json(params, "params"),
            "selection": dump_json(dict(selection, missing=missing), "selection"),
            "policy": dump_json(policy, "policy"),
            "state": "running" if eligible else "done",
            "reason": None if eligible else "no device to run on",
            "wave": 0,
            "total": len(found),
            "next_start": now,
            "created": now,
            "updated": now,
        }
        txn.insert_row("campaigns", row)
        position = 0
        for device_id in found:
            if device_id in busy:
                txn.execute(
                    "INSERT INTO campaign_devices (campaign_id, device_id, position, wave, state, reason, finished)"
                    " VALUES (?, ?, ?, ?, 'skipped', ?, ?)",
                    (campaign_id, device_id, -1, -1, "in campaign %s" % (busy[device_id],), now),
                )
                continue
            txn.execute(
                "INSERT INTO campaign_devices (campaign_id, device_id, position, wave, state)"
                " VALUES (?, ?, ?, ?, 'waiting')",
                (campaign_id, device_id, position, wave_of(position, len(eligible), waves)),
            )
            position += 1
        self._append_event_txn(txn, "campaign", None, now, {
            "campaign_id": campaign_id, "state": row["state"], "wave": 0, "devices": len(eligible),
            "skipped": len(found) - len(eligible),
        })
        return _campaign(row)

    def _get_campaign_txn(self, txn, campaign_id, lock=False):
        suffix = ""
        if lock and getattr(self, "engine", "") == "postgresql":
            suffix = " FOR UPDATE SKIP LOCKED"
        row = txn.fetchone("SELECT * FROM campaigns WHERE campaign_id = ?" + suffix, (campaign_id,))
        return None if row is None else _campaign(row)

    def _list_campaigns_txn(self, txn, states, limit):
        if states:
            marks = ", ".join("?" * len(states))
            rows = txn.fetchall(
                f"SELECT * FROM campaigns WHERE state IN ({marks}) ORDER BY created, campaign_id LIMIT ?",
                (*states, limit),
            )
        else:
            rows = txn.fetchall("SELECT * FROM campaigns ORDER BY created, campaign_id LIMIT ?", (limit,))
        return [_campaign(row) for row in rows]

    def _campaign_progress_txn(self, txn, campaign_id):
        by_state: dict[str, int] = {}
        by_result: dict[str, int] = {}
        by_wave: dict[str, dict[str, int]] = {}
        rows = txn.fetchall(
            "SELECT wave, state, result_code, COUNT(*) AS n FROM campaign_devices WHERE campaign_id = ?"
            " GROUP BY wave, state, result_code",
            (campaign_id,),
        )
        for row in rows:
            n = int(row["n"])
            by_state[row["state"]] = by_state.get(row["state"], 0) + n
            if row["result_code"] is not None:
                key = str(row["result_code"])
                by_result[key] = by_result.get(key, 0) + n
            if row["wave"] >= 0:
                wave = by_wave.setdefault(str(row["wave"]), {})
                wave[row["state"]] = wave.get(row["state"], 0) + n
        return {"by_state": by_state, "by_result": by_result, "by_wave": by_wave}

    def _campaign_devices_txn(self, txn, campaign_id, limit):
        rows = txn.fetchall(
            "SELECT d.device_id, d.wave, d.state, d.op_id, d.result_code, d.reason, d.started, d.finished,"
            " o.outcome FROM campaign_devices d LEFT JOIN operations o ON o.op_id = d.op_id"
            " WHERE d.campaign_id = ? ORDER BY d.wave, d.position, d.device_id LIMIT ?",
            (campaign_id, limit),
        )
        for row in rows:
            outcome = load_json(row.pop("outcome"), "operation outcome") if row.get("outcome") else {}
            row["fwv"] = outcome.get("fwv")
            row["device_state"] = outcome.get("device_state")
        return rows

    def unnotified_function_jobs(self):
        """Queued device-function jobs with no wake-up on its way (a crash between the two)."""
        return self.run_interaction("unnotified_function_jobs", self._unnotified_function_jobs_txn)

    def _unnotified_function_jobs_txn(self, txn):
        # (the index's condition repeated: the queued jobs are in jobs_state_seq)
        rows = txn.fetchall(
            "SELECT j.* FROM jobs j JOIN operations o ON o.op_id = j.job_id"
            " OR (o.state = 'pending' AND o.readback_job_id = j.job_id) WHERE j.state = 'queued'"
            f" AND j.{NOT_RUNNING} AND j.notify <> 'none' AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.job_id = j.job_id)"
            " ORDER BY j.seq"
        )
        return [job_from_row(row) for row in rows]

    def _event_txn(self, txn, now, campaign, state, **extra):
        self._append_event_txn(txn, "campaign", None, now,
                               dict({"campaign_id": campaign.campaign_id, "state": state, "wave": campaign.wave},
                                    **extra))

    def _set_campaign_state_txn(self, txn, now, campaign_id, action):
        campaign = self._get_campaign_txn(txn, campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id!r}")
        allowed = {"pause": ("running",), "resume": ("paused",), "cancel": ACTIVE}[action]
        if campaign.state not in allowed:
            raise ValueError("a %s campaign cannot %s" % (campaign.state, action))
        state = {"pause": "paused", "resume": "running", "cancel": "cancelled"}[action]
        reason = {"pause": "paused by the operator", "resume": None, "cancel": "cancelled by the operator"}[action]
        wave = campaign.wave
        if action == "resume" and campaign.reason and campaign.reason.startswith("wave "):
            # paused after a failed wave: resuming goes on with the next one
            open_ = txn.fetchone(
                "SELECT COUNT(*) AS n FROM campaign_devices WHERE campaign_id = ? AND wave = ?"
                " AND state IN ('waiting', 'started')", (campaign_id, wave))["n"]
            if not open_:
                wave += 1
        txn.execute(
            "UPDATE campaigns SET state = ?, reason = ?, wave = ?, next_start = ?, updated = ? WHERE campaign_id = ?",
            (state, reason, wave, max(now, campaign.next_start), now, campaign_id),
        )
        if action == "cancel":
            txn.execute(
                "UPDATE campaign_devices SET state = 'cancelled', reason = 'campaign cancelled', finished = ?"
                " WHERE campaign_id = ? AND state = 'waiting'",
                (now, campaign_id),
            )
        campaign = self._get_campaign_txn(txn, campaign_id)
        self._event_txn(txn, now, campaign, state, reason=reason)
        return campaign

    def _campaign_step_txn(self, txn, now, campaign_id, default_timeout, burst, download):
        campaign = self._get_campaign_txn(txn, campaign_id, lock=True)
        if campaign is None or campaign.state != "running":
            return []  # gone, not running, or another process holds it
        policy = policy_from_json(campaign.policy)
        waves = len(policy.waves)
        wave = campaign.wave
        while True:
            counts = {row["state"]: int(row["n"]) for row in txn.fetchall(
                "SELECT state, COUNT(*) AS n FROM campaign_devices WHERE campaign_id = ? AND wave = ?"
                " GROUP BY state", (campaign_id, wave))}
            if counts.get("waiting") or counts.get("started"):
                break
            finished = sum(counts.get(s, 0) for s in ("done", "failed", "expired"))
            failed = counts.get("failed", 0) + counts.get("expired", 0)
            if wave_verdict(finished, failed, policy.pause_failure_ratio) == "pause":
                reason = "wave %d failure ratio %.3f above %.3f" % (wave + 1, failed / finished,
                                                                     policy.pause_failure_ratio)
                txn.execute("UPDATE campaigns SET state = 'paused', reason = ?, wave = ?, updated = ?"
                            " WHERE campaign_id = ?", (reason, wave, now, campaign_id))
                self._event_txn(txn, now, campaign, "paused", wave=wave, reason=reason, failed=failed,
                                finished=finished)
                return []
            if wave + 1 >= waves:
                txn.execute("UPDATE campaigns SET state = 'done', reason = NULL, wave = ?, updated = ?"
                            " WHERE campaign_id = ?", (wave, now, campaign_id))
                self._event_txn(txn, now, campaign, "done", wave=wave)
                return []
            wave += 1
            self._event_txn(txn, now, campaign, "running", wave=wave, reason="wave %d started" % (wave + 1,))
        if wave != campaign.wave:
            txn.execute("UPDATE campaigns SET wave = ?, updated = ? WHERE campaign_id = ?", (wave, now, campaign_id))
        if not in_window(now, policy.window):
            return []
        in_progress = int(txn.fetchone(
            "SELECT COUNT(*) AS n FROM campaign_devices WHERE campaign_id = ? AND state = 'started'",
            (campaign_id,))["n"])
        count, next_start = starts_allowed(now, campaign.next_start, policy.rate_per_minute, in_progress,
                                           policy.concurrency, burst)
        if count == 0:
            return []
        rows = txn.fetchall(
            "SELECT device_id FROM campaign_devices WHERE campaign_id = ? AND wave = ? AND state = 'waiting'"
            " ORDER BY position LIMIT ?", (campaign_id, wave, count))
        jobs = []
        timeout = policy.timeout or default_timeout
        for row in rows:
            jobs.append(self._start_device_txn(txn, now, campaign, row["device_id"], timeout, download))
        txn.execute("UPDATE campaigns SET next_start = ?, updated = ? WHERE campaign_id = ?",
                    (next_start if rows else campaign.next_start, now, campaign_id))
        return [job for job in jobs if job is not None]

    def _start_device_txn(self, txn, now, campaign, device_id, timeout, download):
        params = dict(campaign.params)
        expect = params.pop("expect_fwv", None)
        firmware_id = params.pop("firmware_id", None)
        job_id = uuid.uuid4().hex
        try:
            if firmware_id is not None:
                fw = self._get_firmware_txn(txn, firmware_id)
                if fw is None:
                    raise FunctionError("firmware %s is gone" % (firmware_id,))
                expect = expect or fw.version
                if fw.path is None:
                    params["package_url"] = fw.url
                elif download is None:
                    raise FunctionError("the package server is off")
                else:
                    base, lifetime = download
                    token = secrets.token_urlsafe(18)
                    self._add_download_token_txn(txn, token, firmware_id, device_id, now + lifetime)
                    params["package_url"] = "%s/%s?t=%s&sha256=%s" % (base.rstrip("/"), firmware_id, token,
                                                                       fw.sha256)
            operation = build_operation(campaign.function, campaign.action, params, correlator_for(job_id))
        except FunctionError as e:
            txn.execute(
                "UPDATE campaign_devices SET state = 'failed', reason = ?, started = ?, finished = ?"
                " WHERE campaign_id = ? AND device_id = ?",
                (str(e)[:200], now, now, campaign.campaign_id, device_id))
            return None
        job, _op = self._create_operation_txn(txn, now, job_id, device_id, operation, timeout, "auto", expect,
                                              campaign.campaign_id)
        txn.execute(
            "UPDATE campaign_devices SET state = 'started', op_id = ?, started = ? WHERE campaign_id = ?"
            " AND device_id = ?",
            (job_id, now, campaign.campaign_id, device_id))
        return job
