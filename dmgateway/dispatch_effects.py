"""The effects of a DM session, written to the store: the dispatcher's second half.

Mixed into :class:`dmgateway.dispatch.Dispatcher`.  The session engine
(:mod:`dmgateway.dm`) returns effects (:mod:`dmgateway.dm.effects`); this
module performs them, all the effects of one message in ONE store batch,
before the reply leaves: device information and nonces, authentication
failures and lockouts, job states and results, events, the end of a
session and its summary.  Then it wakes the readers of the event log.
"""

from dmgateway.cluster.signals import SESSIONS
from dmgateway.dm import effects as fx
from dmgateway.jobstates import PENDING_JOB_STATES, change_job, start_jobs
from dmgateway.live import iso_time
from dmgateway.logs import Logger

log = Logger(namespace="dmgateway.dispatch")


class SessionEffects:
    """Dispatcher methods performing a session's effects (see the module docstring)."""

    async def _apply(self, live, effects):
        """Perform ``effects`` in ONE store transaction, then wake event readers."""
        now = self.clock.seconds()
        device_id = live.device_id
        batch = self.store.batch()
        events = 0
        failures = []
        # The device row's changes of this message, written in ONE update
        # (before anything that reads the row, and at the end).
        device = {}
        stored = {}  # what the store holds once the batch is committed (see DevInfoReceived)
        # A new session's row is inserted once, with the jobs it started in
        # this message (no separate update of its job ids).
        starting = live.unrecorded
        live.unrecorded = False
        touched = None

        def write_device():
            if device:
                batch.update_device(device_id, **device)
                device.clear()

        def record_start():
            nonlocal starting
            if starting:
                batch.start_session(live.token, device_id, self.node, started=live.started,
                                    job_ids=list(live.job_ids), last_activity=touched)
                starting = False

        # The jobs started by the effects just read, moved to running in ONE
        # update (and the session's row touched once), before any other effect.
        started = []

        def write_started():
            nonlocal touched
            start_jobs(batch, started, now=now)
            started.clear()
            if starting:
                touched = now
            else:
                batch.touch_session(live.token, now, job_ids=live.job_ids)

        for effect in effects:
            kind = effect.__class__  # (the effects are final classes: no subclass to test for)
            if kind is fx.JobStarted:
                live.job_ids.append(effect.job_id)
                started.append(effect.job_id)
                continue
            if started:
                write_started()
            if kind is fx.DevInfoReceived:
                # what the store already holds is not written again (a device's
                # DevInfo rarely changes: its inventory index stays as it is)
                if effect.values and effect.values != live.devinfo:
                    device["devinfo"] = stored["devinfo"] = effect.values
                if effect.reported and effect.reported != live.reported:
                    device["reported"] = stored["reported"] = effect.reported
            elif kind is fx.DeviceChallenged:
                challenge = {"scheme": effect.scheme, "status": effect.status, "time": iso_time(now)}
                device["device_challenge"] = challenge
                batch.append_event("device_challenge", device_id, now,
                                   {"scheme": effect.scheme, "status": effect.status})
                events += 1
            elif kind is fx.NoncesChanged:
                if effect.client_nonce is not None:
                    device["client_nonce"] = effect.client_nonce
                if effect.server_nonce is not None:
                    device["server_nonce"] = effect.server_nonce
            elif kind is fx.Authenticated:
                self.guard.auth_succeeded(device_id, live.host)
                if live.auth_failures:
                    device["reset_auth_failures"] = True
                    live.auth_failures = 0
            elif kind is fx.AuthFailed:
                if not live.count_failures:
                    continue
                self.stats["auth_failures"] += 1
                live.auth_failures += 1
                write_device()
                failures.append((len(batch), effect))
                batch.get_device(device_id)  # before: to tell a new device-wide lockout
                batch.record_auth_failure(
                    device_id,
                    now,
                    max_failures=self.config.auth.device_max_failures,
                    lockout=self.config.auth.lockout,
                )
            elif kind is fx.JobFinished:
                self.jobs_finished[effect.state] += 1
                self._cancel_at_end.discard(effect.job_id)  # nothing left to cancel
                # (a job this session never started fails from where it waits:
                # abandoned while queued, when the device can take no command)
                from_running = effect.job_id in live.job_ids or effect.state != "failed"
                change_job(batch, effect.job_id, effect.state, device_id=device_id, now=now,
                           expect="running" if from_running else PENDING_JOB_STATES,
                           results=effect.results, error=effect.error)
                events += 1
                if self.functions is not None:
                    batch.function_job_finished(effect.job_id, effect.state, effect.results, now)
            elif kind is fx.EventRaised:
                batch.append_event(effect.type, device_id, now, dict(effect.payload))
                events += 1
                if self.functions is not None and effect.type == "generic_alert":
                    readback = self.functions.readback_for(live, effect.payload)
                    batch.function_alert(device_id, dict(effect.payload), now, readback)
            elif kind is fx.InputIgnored:
                log.info("ignored input from {device_id}: {reason}", device_id=device_id, reason=effect.reason)
            elif kind is fx.SessionEnded:
                self.sessions_ended[effect.outcome] += 1
                if self.instruments is not None:
                    self.instruments.session_ended(effect.outcome, now - live.started)
                summary = {
                    "session_id": live.syncml_session_id,
                    "started": iso_time(live.started),
                    "ended": iso_time(now),
                    "outcome": effect.outcome,
                    "reason": effect.reason,
                    "messages": live.messages,
                    "jobs": list(live.job_ids),
                }
                record_start()
                batch.drop_session(live.token)  # (the summary is written below, with the device)
                if live.authenticated:
                    # the device's own sessions only: a stranger's wrong
                    # credentials must not make it look seen (inventory filters)
                    device["last_session"] = summary
                batch.append_event("session", device_id, now, summary)
                events += 1
                log.info(
                    "session {session_id} of {device_id} ended: {outcome} ({reason}; {encoding} from {host},"
                    " {messages} messages, {jobs} jobs)",
                    session_id=live.syncml_session_id,
                    device_id=device_id,
                    outcome=effect.outcome,
                    reason=effect.reason,
                    encoding=live.encoding,
                    host=live.host,
                    messages=live.messages,
                    jobs=len(live.job_ids),
                )
        if started:
            write_started()
        record_start()
        write_device()
        results = await batch.commit(short=True)
        for name, value in stored.items():
            setattr(live, name, value)
        if self.signals is not None and not live.announced and any(isinstance(e, fx.Authenticated) for e in effects):
            # a session of this device on another node is superseded (only by one that authenticated)
            live.announced = True
            self.signals.send(SESSIONS, "%s\n%s" % (device_id, live.token))
        for index, effect in failures:
            before, device = results[index], results[index + 1]
            log.warn(
                "authentication failed for {device_id} from {host}: {status} {reason}",
                device_id=device_id,
                host=live.host,
                status=effect.status,
                reason=effect.reason,
            )
            lockouts = []
            if self.guard.auth_failed(device_id, live.host, now):
                lockouts.append({"scope": "peer", "peer": live.host})
            if device is not None and device.locked(now) and not (before is not None and before.locked(now)):
                lockouts.append({"scope": "device", "peer": None})
            for lockout in lockouts:
                until = now + self.config.auth.lockout
                log.warn(
                    "{device_id} locked out ({scope}, peer {peer}) until {until} after repeated "
                    "authentication failures",
                    device_id=device_id,
                    until=iso_time(until),
                    **lockout,
                )
                await self.store.append_event("lockout", device_id, now, dict(lockout, until=iso_time(until)))
                events += 1
        if events:
            self.events.appended()

    async def _fail_job(self, job_id, device_id, code, message):
        error = {"code": code, "message": message}
        if await change_job(self.store, job_id, "failed", device_id=device_id, now=self.clock.seconds(), error=error):
            self.events.announce()
