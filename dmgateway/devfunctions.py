"""
The device-function service: operations (FUMO, SCOMO, LAWMO) started
through the API or by a campaign, the read-back the session sends when a
completion alert arrives, and the deadline sweep.

The pure rules are in :mod:`dmgateway.functions`; the transitions are
store transactions (:mod:`dmgateway.store.functions`).  The dispatcher
calls :meth:`FunctionService.before_message` before its engine reads a
message, so that a completion alert in package 1 gets its read-back (Get
State, FwV) in package 2 of the same session, and records alerts and job
ends through the store in the same transaction as the session's effects.
"""

import secrets
import uuid

from twisted.internet import defer, task
from twisted.logger import Logger

from dmgateway.codec import syncml as sm
from dmgateway.dm.effects import JobSpec
from dmgateway.functions import FunctionError, build_operation, correlator_for, parse_completion

log = Logger()

#: Completion alerts looked at in one message, at most.
MAX_ALERTS = 32


class UnknownDevice(LookupError):
    pass


def message_requests(msg):
    """Whether ``msg`` carries a device-initiated FUMO request (devicerequest / userrequest)."""
    for cmd in msg.body:
        if isinstance(cmd, sm.Alert) and cmd.data == sm.ALERT_GENERIC:
            for item in cmd.items[:MAX_ALERTS]:
                done = parse_completion({"alert": sm.ALERT_GENERIC, "meta_type": item.meta.type if item.meta else None})
                if done is not None and done.request:
                    return True
    return False


def message_correlators(msg):
    """The Correlators of the Generic Alerts in ``msg`` (bounded)."""
    found = []
    for cmd in msg.body:
        if isinstance(cmd, sm.Alert) and cmd.data == sm.ALERT_GENERIC and isinstance(cmd.correlator, str):
            found.append(cmd.correlator.strip())
            if len(found) >= MAX_ALERTS:
                break
    return found


def operation_view(op):
    """The REST view of an operation."""
    view = {
        "id": op.op_id,
        "device_id": op.device_id,
        "function": op.function,
        "action": op.action,
        "state": op.state,
        "correlator": op.correlator,
        "result_code": op.result_code,
        "outcome": dict(op.outcome),
        "error": op.error,
        "deadline": op.deadline,
    }
    if op.campaign_id is not None:
        view["campaign_id"] = op.campaign_id
    if op.expect_fwv is not None:
        view["expect_fwv"] = op.expect_fwv
    return view


class FunctionService:
    """Operations over the store and sessions, through the REST handlers
    (:class:`dmgateway.handlers.Handlers`); the dispatcher calls the session hooks."""

    def __init__(self, handlers, config, clock):
        self.handlers = handlers
        self.store = handlers.store
        self.config = config
        self.clock = clock
        self._sweep = None
        self.firmware = None  # dmgateway.firmware.FirmwareService, when the daemon runs one
        self.campaigns = None  # dmgateway.campaigns.CampaignService, likewise

    # -- life cycle --------------------------------------------------------------

    def start(self):
        from dmgateway.functions.mo import code_tables

        self.handlers.functions = self
        self.store.result_codes = code_tables(self.config.result_codes)
        self._sweep = task.LoopingCall(self.expire)
        self._sweep.clock = self.clock
        self._sweep.start(self.config.expiry_interval, now=False).addErrback(
            lambda f: log.failure("operation deadline sweep stopped", f)
        )

    def _firmware_request(self, device_id, request):
        """A FUMO request naming a registered package: its PkgURL (with a token) and version."""
        return self.firmware.package_url(request["firmware_id"], device_id)

    def stop(self):
        if self._sweep is not None and self._sweep.running:
            self._sweep.stop()

    # -- operations ---------------------------------------------------------------

    async def start_operation(self, device_id, request, campaign_id=None, notify=None):
        """
        Check ``request`` ({"function", "action", parameters...}), queue its
        job and wake the device; returns the operation's view.

        Raises :class:`FunctionError` for a bad request and
        :class:`UnknownDevice`.
        """
        if not isinstance(request, dict):
            raise FunctionError("the request must be an object")
        device = await self.store.get_device(device_id)
        if device is None:
            raise UnknownDevice(device_id)
        job_id = uuid.uuid4().hex
        expect = request.get("expect_fwv")
        if "firmware_id" in request:
            if request.get("function") != "fumo" or self.firmware is None:
                raise FunctionError("'firmware_id' is for fumo operations")
            if not isinstance(request["firmware_id"], str):
                raise FunctionError("'firmware_id' must be a string")
            fw, url = await self._firmware_request(device_id, request)
            request = dict(request, package_url=url)
            expect = expect or fw.version
        operation = build_operation(request.get("function"), request.get("action"), request,
                                    correlator_for(job_id))
        timeout = request.get("timeout", self.config.timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 1 <= timeout <= 30 * 86400:
            raise FunctionError("'timeout' must be a number of seconds from 1 to 2592000")
        if expect is not None and (not isinstance(expect, str) or not expect or len(expect) > 128):
            raise FunctionError("'expect_fwv' must be a non-empty string")
        notify = notify or request.get("notify", "auto")
        self.handlers.check_notify(notify)
        job, op = await self.store.create_operation(
            job_id, device_id, operation, timeout=float(timeout), notify=notify, expect_fwv=expect,
            campaign_id=campaign_id, now=self.clock.seconds(),
        )
        await self.handlers.job_queued(job, device)
        log.info(
            "operation {op_id}: {function} {action} for {device_id}",
            op_id=op.op_id, function=op.function, action=op.action, device_id=device_id,
        )
        return operation_view(op)

    def get_operation(self, op_id):
        d = self.store.get_operation(op_id)
        return d.addCallback(lambda op: None if op is None else operation_view(op))

    async def annotate_device(self, view):
        """A device view with what its device functions last read back: ``functions``
        = ``{"fwv", "fumo_state", "lawmo_state", "components": {name: {"version", "state", ...}},
        "delivered": {name: {...}}}``.  The last SCOMO inventory read (every SCOMO
        operation reads it, ``scomo``/``inventory`` on request) replaces the
        components; an operation without one updates the component it touched."""
        summary = {"components": {}}
        for op in await self.store.finished_operations(view["device_id"]):
            outcome = op.outcome
            if op.function == "fumo" and op.state == "done":
                summary["fwv"] = outcome.get("fwv", summary.get("fwv"))
                summary["fumo_state"] = outcome.get("device_state")
            elif op.function == "lawmo" and "device_state" in outcome:
                summary["lawmo_state"] = outcome["device_state"]
            elif op.function == "scomo" and isinstance(outcome.get("inventory"), dict):
                inventory = outcome["inventory"]
                if "deployed" in inventory:
                    summary["components"] = {name: dict(entry) for name, entry in inventory["deployed"].items()}
                if "delivered" in inventory:
                    summary["delivered"] = {name: dict(entry) for name, entry in inventory["delivered"].items()}
            elif op.function == "scomo" and op.state == "done" and outcome.get("component"):
                name = outcome["component"]
                if op.action == "remove":
                    summary["components"].pop(name, None)
                else:
                    entry = summary["components"].setdefault(name, {})
                    for key in ("version", "device_state"):
                        if key in outcome:
                            entry["state" if key == "device_state" else key] = outcome[key]
        view = dict(view, functions=summary)
        return view

    async def annotate_job(self, view):
        """A job view with its operation: while the job is done and the operation
        still open, the job's state is the operation's (``awaiting_device`` ...)."""
        op = await self.store.get_operation(view["id"])
        if op is None:
            return view
        view = dict(view, function=operation_view(op))
        if view["state"] == "done" and op.state != "pending":
            view["state"] = op.state
        return view

    # -- session hooks (called by the dispatcher) ---------------------------------

    def before_message(self, live, msg):
        """
        Give the session the read-back of every open operation this message
        completes, and the update job a device's FUMO request asks for (both
        only held by the session: they are recorded when the engine reports
        the alert, that is once the device has authenticated).

        Both come in Generic Alerts: a message without one (nearly every
        message) answers None at once, with no coroutine; else the
        awaitable that does it.
        """
        for cmd in msg.body:
            if isinstance(cmd, sm.Alert) and cmd.data == sm.ALERT_GENERIC:
                return self._before_message(live, msg)
        return None

    async def _before_message(self, live, msg):
        if message_requests(msg) and live.function_request is None:
            await self._prepare_update(live)
        correlators = message_correlators(msg)
        if not correlators:
            return
        pending = live.function_readbacks
        wanted = [c for c in correlators if c not in pending]
        if not wanted:
            return
        for op in await self.store.open_operations(live.device_id, wanted):
            if not op.readback or live.engine.finished:
                continue
            spec = JobSpec(uuid.uuid4().hex, list(op.readback))
            live.engine.add_job(spec)
            pending[op.correlator] = (spec.job_id, spec.commands)

    async def _prepare_update(self, live):
        live.function_request = False  # looked once in this session
        device = await self.store.get_device(live.device_id)
        devinfo = (device.devinfo or {}) if device is not None else {}
        open_ops = await self.store.open_operations_of(live.device_id, "fumo")
        if device is None or open_ops or self.firmware is None:
            return
        fw = await self.store.match_firmware(devinfo.get("Man"), devinfo.get("Mod"), devinfo.get("FwV"))
        if fw is None:
            return
        token = expires = None
        if fw.path is None:
            url = fw.url
        elif self.config.download_enabled:
            token = secrets.token_urlsafe(18)
            expires = self.clock.seconds() + self.config.token_lifetime
            url = "%s/%s?t=%s&sha256=%s" % (self.config.download_url.rstrip("/"), fw.firmware_id, token, fw.sha256)
        else:
            return
        job_id = uuid.uuid4().hex
        operation = build_operation("fumo", None, {"package_url": url}, correlator_for(job_id))
        if live.engine.finished:
            return
        live.engine.add_job(JobSpec(job_id, list(operation.commands)))
        live.function_request = ("request", job_id, operation, fw.firmware_id, token, expires,
                                 float(self.config.timeout), fw.version)
        log.info("device {device_id} asked for an update: firmware {firmware_id} ({version})",
                 device_id=live.device_id, firmware_id=fw.firmware_id, version=fw.version)

    @staticmethod
    def readback_for(live, payload):
        """What the session holds for an alert payload (taken once): a read-back
        ``("readback", job_id, commands)``, an update ``("request", ...)``, or None."""
        done = parse_completion(payload)
        if done is not None and done.request:
            request = live.function_request
            if request:
                live.function_request = False
                return request
            return None
        correlator = payload.get("correlator")
        pending = live.function_readbacks
        if not pending or not isinstance(correlator, str):
            return None
        found = pending.pop(correlator.strip(), None)
        return None if found is None else ("readback",) + found

    # -- the deadline sweep --------------------------------------------------------

    def expire(self):
        # a failed sweep (the store away a moment) is logged; the next one retries
        return defer.ensureDeferred(self._expire()).addErrback(
            lambda f: log.failure("operation deadline sweep failed", f))

    async def _expire(self):
        count, jobs = await self.store.settle_orphans(self.clock.seconds())
        if count:
            self.handlers.events.appended()
        await self._wake(jobs)  # a wipe's list read cut by a restart, read again
        while True:
            count, jobs = await self.store.expire_operations(self.clock.seconds(), 100)
            if not count:
                return
            self.handlers.events.appended()
            await self._wake(jobs)
            log.info("{count} operations expired", count=count)
            if count < 100:
                return

    async def _wake(self, jobs):
        for job in jobs:
            device = await self.store.get_device(job.device_id)
            if device is not None:
                await self.handlers.job_queued(job, device)
