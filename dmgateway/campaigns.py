"""
Campaigns: one device function over a selection of devices with a rollout
policy (waves, rate limit, concurrency cap, maintenance window, automatic
pause on failures), driven by a periodic step in every gateway process.

All campaign state is in the store (:mod:`dmgateway.store.campaigns`): a
restart picks up where the last committed step left off, and with several
processes on PostgreSQL each step holds the campaign row, so no wave and
no device starts twice.  Progress and state changes are ``campaign`` and
``function`` events (hence webhooks).
"""

import csv
import io
import uuid

from twisted.internet import defer, task
from twisted.logger import Logger

from dmgateway.functions import FunctionError, build_operation
from dmgateway.functions.rollout import PolicyError, check_policy
from dmgateway.store.inventory import DeviceFilter

log = Logger()

MAX_LISTED = 100_000
_FILTERS = {"server_id": "server_id", "man": "man", "mod": "mod", "fwv": "fwv"}
_BOOLS = {"has_msisdn": "has_msisdn", "locked_out": "locked", "never_seen": "never_seen"}
REPORT_FIELDS = ("device_id", "wave", "state", "result_code", "reason", "fwv", "device_state", "op_id", "started",
                 "finished")


class CampaignError(ValueError):
    """A request about campaigns the gateway refuses (``status``, ``code``)."""

    def __init__(self, message, code="invalid_campaign", status=400):
        super().__init__(message)
        self.code = code
        self.status = status


def check_selection(raw):
    """``(selection as stored, DeviceFilter or None, device list or None)``."""
    if not isinstance(raw, dict) or not raw:
        raise CampaignError("'selection' must be an object with filters or \"devices\"")
    unknown = set(raw) - set(_FILTERS) - set(_BOOLS) - {"devices"}
    if unknown:
        raise CampaignError("unknown selection fields: %s" % (", ".join(sorted(unknown)),))
    if "devices" in raw:
        devices = raw["devices"]
        if set(raw) != {"devices"}:
            raise CampaignError("\"devices\" cannot be combined with filters")
        if (not isinstance(devices, list) or not devices or len(devices) > MAX_LISTED
                or not all(isinstance(d, str) and 0 < len(d) <= 256 for d in devices)):
            raise CampaignError("\"devices\" must list 1 to %d device ids" % (MAX_LISTED,))
        unique = list(dict.fromkeys(devices))
        return {"devices": len(unique)}, None, unique
    values = {}
    for key, name in _FILTERS.items():
        if key in raw:
            if not isinstance(raw[key], str) or not 0 < len(raw[key]) <= 256:
                raise CampaignError("selection %r must be a non-empty string" % (key,))
            values[name] = raw[key]
    for key, name in _BOOLS.items():
        if key in raw:
            if not isinstance(raw[key], bool):
                raise CampaignError("selection %r must be true or false" % (key,))
            values[name] = raw[key]
    return dict(raw), DeviceFilter(**values), None


def _cell(value):
    """
    One CSV cell.  Text a spreadsheet would run as a formula (a device's
    FwV, a reason quoting it) gets a leading apostrophe: the report is
    opened by operators, its text comes partly from devices.
    """
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def campaign_view(campaign, progress=None):
    view = {
        "id": campaign.campaign_id,
        "function": campaign.function,
        "action": campaign.action,
        "state": campaign.state,
        "reason": campaign.reason,
        "wave": campaign.wave + 1,
        "waves": len(campaign.policy.get("waves", [100])),
        "total": campaign.total,
        "params": campaign.params,
        "selection": campaign.selection,
        "policy": campaign.policy,
        "created": campaign.created,
        "updated": campaign.updated,
    }
    if progress is not None:
        view["progress"] = progress
    return view


class CampaignService:
    """Creates campaigns and runs their steps."""

    def __init__(self, handlers, config, clock, firmware=None):
        self.handlers = handlers
        self.store = handlers.store
        self.config = config
        self.clock = clock
        self.firmware = firmware
        self._loop = None
        self._stepping = None
        self.started_devices = 0

    def start(self):
        self._loop = task.LoopingCall(self.step)
        self._loop.clock = self.clock
        self._loop.start(self.config.campaign_interval, now=True).addErrback(
            lambda f: log.failure("campaign scheduler stopped", f))

    def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return self._stepping or defer.succeed(None)

    # -- requests --------------------------------------------------------------------

    async def create(self, request):
        if not isinstance(request, dict):
            raise CampaignError("the campaign must be an object")
        unknown = set(request) - {"function", "action", "params", "selection", "policy"}
        if unknown:
            raise CampaignError("unknown fields: %s" % (", ".join(sorted(unknown)),))
        function = request.get("function")
        params = request.get("params", {})
        if not isinstance(params, dict):
            raise CampaignError("'params' must be an object")
        try:
            policy = check_policy(request.get("policy"))
        except PolicyError as e:
            raise CampaignError(str(e)) from None
        selection, where, devices = check_selection(request.get("selection"))
        trial = dict(params)
        firmware_id = trial.pop("firmware_id", None)
        trial.pop("expect_fwv", None)
        if firmware_id is not None:
            if function != "fumo":
                raise CampaignError("'firmware_id' is for fumo campaigns")
            fw = await self.store.get_firmware(firmware_id) if isinstance(firmware_id, str) else None
            if fw is None:
                raise CampaignError("no firmware %r" % (firmware_id,), "unknown_firmware", 404)
            if fw.path is not None and not self.config.download_enabled:
                raise CampaignError("the package server is off ([functions] download_enabled)", "no_package_server",
                                    409)
            trial["package_url"] = fw.url or "http://package.invalid/"
        try:
            operation = build_operation(function, request.get("action"), trial, "jcheck")
        except FunctionError as e:
            raise CampaignError(str(e)) from None
        campaign_id = uuid.uuid4().hex
        campaign = await self.store.create_campaign(
            campaign_id, operation.function, operation.action, params, selection, where, devices,
            policy.as_json(), self.clock.seconds())
        self.handlers.events.appended()
        log.info("campaign {campaign_id}: {function} {action} over {total} devices", campaign_id=campaign_id,
                 function=campaign.function, action=campaign.action, total=campaign.total)
        self.step()
        return await self.get(campaign_id)

    async def get(self, campaign_id):
        campaign = await self.store.get_campaign(campaign_id)
        if campaign is None:
            return None
        return campaign_view(campaign, await self.store.campaign_progress(campaign_id))

    async def list(self):
        return [campaign_view(c) for c in await self.store.list_campaigns()]

    async def change(self, campaign_id, action):
        try:
            campaign = await self.store.set_campaign_state(campaign_id, action, self.clock.seconds())
        except ValueError as e:
            raise CampaignError(str(e), "invalid_state", 409) from None
        self.handlers.events.appended()
        log.info("campaign {campaign_id}: {action}", campaign_id=campaign_id, action=action)
        if campaign.state == "running":
            self.step()
        return await self.get(campaign_id)

    async def report(self, campaign_id, fmt="json"):
        view = await self.get(campaign_id)
        if view is None:
            return None
        devices = await self.store.campaign_devices(campaign_id)
        if fmt == "json":
            return {"campaign": view, "devices": devices}
        out = io.StringIO()
        writer = csv.DictWriter(out, REPORT_FIELDS, extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        for row in devices:
            writer.writerow({k: _cell(row.get(k)) for k in REPORT_FIELDS})
        return out.getvalue()

    # -- the scheduler -------------------------------------------------------------------

    def step(self):
        """One pass over the running campaigns (one at a time per process)."""
        if self._stepping is not None:
            return self._stepping
        self._stepping = defer.ensureDeferred(self._step())
        # a failed pass (the store away a moment) is logged and the next
        # one retries: an error must not end the scheduler's LoopingCall
        self._stepping.addErrback(lambda f: log.failure("campaign pass failed", f))

        def done(result):
            self._stepping = None
            return result

        return self._stepping.addBoth(done)

    async def _step(self):
        download = None
        if self.config.download_enabled:
            download = (self.config.download_url, self.config.token_lifetime)
        burst = max(1, int(self.config.campaign_interval * 2))
        for campaign in await self.store.list_campaigns(("running",)):
            policy_burst = max(burst, int(campaign.policy.get("rate_per_minute", 60) * self.config.campaign_interval
                                          / 60.0) + 1)
            jobs = await self.store.campaign_step(campaign.campaign_id, self.clock.seconds(), self.config.timeout,
                                                  policy_burst, download)
            self.handlers.events.appended()
            for job in jobs:
                self.started_devices += 1
                device = await self.store.get_device(job.device_id)
                if device is not None:
                    await self.handlers.job_queued(job, device)

    async def recover(self):
        """Wake the devices of jobs a crash left queued without a notification."""
        for job in await self.store.unnotified_function_jobs():
            device = await self.store.get_device(job.device_id)
            if device is not None:
                await self.handlers.job_queued(job, device)
