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
from dmgateway.dm.session import DROPPED, NOT_HELD
from dmgateway.jobstates import PENDING_JOB_STATES, change_job, end_jobs, start_jobs
from dmgateway.live import iso_time
from dmgateway.logs import Logger
from dmgateway.store.model import StoreContention, StoreUnavailable

log = Logger(namespace="dmgateway.dispatch")


class SessionEffects:
    """Dispatcher methods performing a session's effects (see the module docstring)."""

    def _apply(self, live, effects):
        """Perform ``effects`` in ONE store transaction, then wake event
        readers; (an awaitable of) the ids of the jobs they started that the
        store did not.

        What they change in ``live`` and in the dispatcher's counters follows
        what the store committed, so effects applied again after a store
        outage (the repairs of :mod:`dmgateway.dispatch_guard`) count once.
        A job the store did not start (cancelled, expired or its device
        removed after the session read it) is not the session's: the caller
        takes its commands out of the reply (:meth:`_withdraw`), its end is
        neither written nor counted, and the session does not list it.
        """
        if len(effects) > 1 and effects[-1].__class__ is fx.SessionEnded and any(
                effect.__class__ is fx.JobStarted for effect in effects):
            return self._apply_starts_first(live, effects)
        return self._apply_batch(live, effects)  # (its coroutine: awaited by the caller, no frame between)

    async def _apply_starts_first(self, live, effects):
        # (rare) jobs started in the message that ends the session, each
        # of their commands dropped unsent: their starts are committed
        # first, so that the session's summary lists only those started;
        # once written, they leave ``effects``: what is applied again
        # after the end's transaction failed (a repair) is only the end
        unstarted = await self._apply_batch(live, effects[:-1])
        del effects[:-1]
        return unstarted + await self._apply_batch(live, effects)

    async def _apply_batch(self, live, effects):
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
        touched = None
        outcome = None  # the session's, when it ends
        reset_failures = False

        def write_device():
            if device:
                batch.update_device(device_id, **device)
                device.clear()

        def record_start():
            nonlocal starting
            if starting:
                batch.start_session(live.token, device_id, self.node, started=live.started,
                                    job_ids=list(listed), last_activity=touched)
                starting = False

        # The jobs started by the effects just read, moved to running in ONE
        # update (and the session's row touched once), before any other effect.
        started = []
        starts = []  # (index in the batch, ids) of each of those updates
        listed = live.job_ids  # the jobs of the session's row: those started, and this batch's

        def write_started():
            nonlocal touched, listed
            ids = tuple(started)
            started.clear()
            starts.append((len(batch), ids))
            start_jobs(batch, ids, now=now)
            listed = listed + [job_id for job_id in ids if job_id not in listed]
            if starting:
                touched = now
            else:
                batch.touch_session(live.token, now, job_ids=listed)

        # The ends of the jobs whose results the effects just read, written
        # by ONE store call (one statement on PostgreSQL; then each job's
        # operation moved), before any other effect: (job id, state,
        # expected states, results, error) each.
        ending = []
        # (index in the batch, place in its result or None when one job's, job id, state) of each job's end
        ends = []

        def write_ends():
            index = len(batch)
            if len(ending) == 1:  # (one job: the call for one, cheaper by a few frames)
                job_id, state, expect, results, error = ending[0]
                change_job(batch, job_id, state, device_id=device_id, now=now, expect=expect, results=results,
                           error=error)
                ends.append((index, None, job_id, state))
            else:
                end_jobs(batch, ending, device_id=device_id, now=now)
                ends.extend([(index, place, end[0], end[1]) for place, end in enumerate(ending)])
            if self.functions is not None:
                for job_id, state, _expect, results, _error in ending:
                    batch.function_job_finished(job_id, state, results, now)
            ending.clear()

        for effect in effects:
            kind = effect.__class__  # (the effects are final classes: no subclass to test for)
            if kind is fx.JobStarted:
                if ending:
                    write_ends()
                started.append(effect.job_id)
                continue
            if started:
                write_started()
            if kind is fx.JobFinished:
                job_id = effect.job_id
                if job_id not in listed and live.unstarted and job_id in live.unstarted:
                    # the store never started it: it is not this session's to
                    # end (a cancel asked meanwhile is left to the session's end)
                    continue
                # (a job this session never started fails from where it waits:
                # abandoned while queued, when the device can take no command)
                from_running = job_id in listed or effect.state != "failed"
                ending.append((job_id, effect.state, "running" if from_running else PENDING_JOB_STATES,
                               effect.results, effect.error))
                events += 1
                continue
            if ending:
                write_ends()
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
                    device["reset_auth_failures"] = reset_failures = True
            elif kind is fx.AuthFailed:
                if not live.count_failures:
                    continue
                write_device()
                failures.append((len(batch), effect))
                batch.get_device(device_id)  # before: to tell a new device-wide lockout
                batch.record_auth_failure(
                    device_id,
                    now,
                    max_failures=self.config.auth.device_max_failures,
                    lockout=self.config.auth.lockout,
                )
            elif kind is fx.EventRaised:
                batch.append_event(effect.type, device_id, now, dict(effect.payload))
                events += 1
                if self.functions is not None and effect.type == "generic_alert":
                    readback = self.functions.readback_for(live, effect.payload)
                    batch.function_alert(device_id, dict(effect.payload), now, readback)
            elif kind is fx.InputIgnored:
                log.info("ignored input from {device_id}: {reason}", device_id=device_id, reason=effect.reason)
            elif kind is fx.SessionEnded:
                outcome = effect.outcome
                summary = {
                    "session_id": live.syncml_session_id,
                    "started": iso_time(live.started),
                    "ended": iso_time(now),
                    "outcome": effect.outcome,
                    "reason": effect.reason,
                    "messages": live.messages,
                    "jobs": list(listed),
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
                    jobs=len(listed),
                )
        if ending:
            write_ends()
        if started:
            write_started()
        record_start()
        write_device()
        try:
            results = await batch.commit(short=True)
        except (StoreUnavailable, StoreContention):
            # none of it happened: the jobs it started are not the session's
            # (an abort's effects must not end them) unless applied again
            if starts:
                live.unstarted = set(live.unstarted or ()).union(*(ids for _index, ids in starts))
            raise
        live.unrecorded = False
        unstarted = []
        for index, ids in starts:
            taken = results[index]
            for job_id in taken:
                if job_id not in live.job_ids:
                    live.job_ids.append(job_id)
            if len(taken) != len(ids):
                unstarted.extend(job_id for job_id in ids if job_id not in taken)
        if live.unstarted and starts:
            live.unstarted.difference_update(live.job_ids)
        if unstarted:  # (the session's row lists them until its next write: no harm, see store.recover)
            live.unstarted = set(live.unstarted or ()).union(unstarted)
        for index, place, job_id, state in ends:
            # nothing left to cancel (only once written: a cancel of a job
            # whose end the store refused is made at the session's end)
            self._cancel_at_end.pop(job_id, None)
            if results[index] if place is None else results[index][place]:  # (not one ended meanwhile)
                self.jobs_finished[state] += 1
        if outcome is not None:
            # its end is written: a cancel of a job it sent finds that job ended
            self._end_taken(live)
            self.sessions_ended[outcome] += 1
            if self.instruments is not None:
                self.instruments.session_ended(outcome, now - live.started)
        if reset_failures:
            live.auth_failures = 0
        for name, value in stored.items():
            setattr(live, name, value)
        if self.signals is not None and not live.announced and any(isinstance(e, fx.Authenticated) for e in effects):
            # a session of this device on another node is superseded (only by one that authenticated)
            live.announced = True
            self.signals.send(SESSIONS, "%s\n%s" % (device_id, live.token))
        for index, effect in failures:
            self.stats["auth_failures"] += 1
            live.auth_failures += 1
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
        return unstarted

    def _withdraw(self, live, outcome, job_ids):
        """``outcome`` without the commands of ``job_ids``, jobs it started
        that the store did not start: they ended outside the session after
        it read them (a cancel through another process, their operation's
        expiry), and are never sent."""
        for job_id in job_ids:
            log.info("job {job_id} of {device_id} ended before its session sent it: not sent",
                     job_id=job_id, device_id=live.device_id)
        amended = live.engine.withdraw(job_ids)
        return outcome if amended is None else amended

    async def _fail_job(self, job_id, device_id, code, message):
        error = {"code": code, "message": message}
        if await change_job(self.store, job_id, "failed", device_id=device_id, now=self.clock.seconds(), error=error):
            self.events.announce()

    # -- cancels of jobs a live session holds ----------------------------------------

    def cancel_at_session_end(self, job) -> bool:
        """Cancel ``job`` when the session that sent it ends, here or on
        another node; False when no session sent it, and the caller cancels
        it now.

        A session here that holds it but has not sent it drops it: it never
        will.  One that does not hold it (the job was queued after it read
        its jobs, through another process, say) does not send it either: if
        it reads it later, the store does not start a cancelled job and the
        reply goes without it (:meth:`_withdraw`).  A job ``running`` sent by
        a session here that is over but whose end the store has not taken
        yet (being written, or waiting for a repair) is cancelled at that
        end (which ends the job itself, as a session's end does every job it
        sent: nothing may be left to cancel).  Another job ``running`` that
        the live session here does not hold was sent by a session elsewhere
        (on another node, say): it is cancelled at the end of that session
        (signalled to the other nodes) or of this one, whichever ends first:
        this one only if its device authenticated (a stranger's package 1
        for the device, wrong credentials, must not cut short a job the
        device's own session runs).  A cancel belongs to one session: only
        that session's end applies it, not another's of the same device.
        """
        live = self._by_device.get(job.device_id)
        held = live.engine.drop_job(job.job_id) if live is not None else NOT_HELD
        if held == DROPPED:
            log.info("job {job_id} of {device_id} cancelled in its session before it was sent",
                     job_id=job.job_id, device_id=job.device_id)
            return False
        if held == NOT_HELD:
            if job.state != "running":
                return False  # no session sent it, and none will
            ending = self._ending_session_that_sent(job.device_id, job.job_id)
            if ending is not None:
                live = ending
            else:
                if live is not None and not live.authenticated:
                    live = None
                if not self._cancel_elsewhere(job) and live is None:
                    return False
        if live is not None:
            self._cancel_at_end[job.job_id] = live
        return True

    def _ending_session_that_sent(self, device_id, job_id):
        """The session of ``device_id`` here that the store started ``job_id``
        for, over, its end not written yet (None if there is none).  (Only a
        session whose device authenticated starts jobs.)"""
        for live in self._ending.get(device_id, {}).values():
            if job_id in live.job_ids:
                return live
        return None

    def _end_taken(self, live):
        """``live``'s end is written (or given up): no cancel waits for it any more."""
        ending = self._ending.get(live.device_id)
        if ending is not None:
            ending.pop(live.token, None)
            if not ending:
                del self._ending[live.device_id]

    def _cancels_left_to(self, live):
        """The ids of the jobs whose cancel waits for the end of ``live``."""
        return [job_id for job_id, session in self._cancel_at_end.items() if session is live]

    async def _cancel_left_at_session_end(self, live):
        """Cancel the jobs asked to be cancelled at the end of ``live`` that it
        ended without finishing.  They are forgotten here, cancelled or
        not: one that ended meanwhile (its end written while its cancel was
        asked) must not stay, making every later session's end query the
        store.  Those asked at the end of another session of the device (a
        newer one, live) wait for that one's end.  A store failure leaves
        them to a repair."""
        asked = set(self._cancels_left_to(live))
        if not asked:
            return
        try:
            jobs = await self.store.run_interaction(
                "jobs_to_cancel", self.store._jobs_in_state_txn, ("queued", "notified", "running"), live.device_id
            )
            for job in jobs:
                if job.job_id in asked:
                    # (a running job in the same write: a new session of the
                    # device cannot start it between two)
                    result = await self.store.cancel_job(job.job_id, running=job.state == "running")
                    if result.cancelled:
                        self.events.announce()
        except (StoreUnavailable, StoreContention):
            # its end is written: a repair (with nothing more to write) cancels them
            if not any(session is live for session, _effects in self._repairs):
                self._repairs.append((live, []))
            raise
        for job_id in asked:
            if self._cancel_at_end.get(job_id) is live:
                del self._cancel_at_end[job_id]
