"""What the dispatcher does on the other processes' signals (``[gateway] cluster``).

A mixin of :class:`dmgateway.dispatch.Dispatcher`, kept apart so that the
dispatcher stays about one process:

* events appended by another process wake this process's long-polls and
  webhook sender;
* a job queued through another process for a device in session *here* joins
  that session (:meth:`ServerSession.add_job` ignores one it already has,
  and one it dropped);
* a job a live session here holds but has not started, ended by another
  process meanwhile (cancelled, its device deleted), is dropped from the
  session before its next message (:meth:`ClusterHooks._drop_jobs_ended_elsewhere`);
  one it already sent, cancelled through another process, is cancelled at
  the session's end, as a cancel through this process is.  A cancel
  through a process where the device has no session (or one that does not
  hold the job) cancels a job not sent (``queued``, ``notified``) at once,
  whichever node's session holds it: that session does not start it (the
  store refuses, see :meth:`SessionEffects.cancel_at_session_end`).  A job
  sent (``running``) is cancelled when a session of its device live when
  the cancel is signalled, one in which the device authenticated, ends, on
  whichever node: the one that sent it (or a newer one that superseded it,
  if that ends first), never a stranger's (a package 1 with wrong
  credentials).  A session here that sent it and is over, its end not
  written yet, keeps it: its end, not a newer session's, applies the cancel;
* a device that authenticated a new session on another process supersedes
  its session here, as a second package 1 does within one process (only an
  authenticated one: issue 10's rule).
"""

from twisted.internet import defer
from twisted.logger import Logger

from dmgateway.cluster.signals import CANCELS, EVENTS, JOBS, SESSIONS
from dmgateway.dm.session import DROPPED
from dmgateway.live import job_spec
from dmgateway.store.model import StoreContention, StoreUnavailable

log = Logger(namespace="dmgateway.dispatch")


class ClusterHooks:
    signals = None  # cross-process signals, when [gateway] cluster is on

    def join_cluster(self, signals) -> None:
        """Hear the other processes: events they append, jobs and sessions of our devices."""
        self.signals = signals
        if signals is not None:
            self.events.broadcast = lambda: signals.send(EVENTS)  # wake the others' readers
            signals.on(EVENTS, lambda _payload: self.events.appended())
            signals.on(JOBS, self._jobs_signalled)
            signals.on(SESSIONS, self._session_signalled)
            signals.on(CANCELS, self._cancel_signalled)

    def _jobs_signalled(self, device_id):
        """Another process queued a job for ``device_id``: hand it to our live session, if any."""
        live = self._by_device.get(device_id)
        if live is None:
            return
        d = defer.ensureDeferred(self._hand_over_jobs(live))
        d.addErrback(lambda f: log.failure("jobs of {device_id} not handed to its session", f,
                                           device_id=device_id))

    async def _hand_over_jobs(self, live):
        jobs = await self.store.pending_jobs(live.device_id)
        for job in jobs:
            if self._by_device.get(live.device_id) is not live or live.engine.finished:
                return  # the session ended meanwhile: its end looks for pending jobs
            if live.engine.add_job(job_spec(job)):  # (not one it has, or dropped: cancelled)
                log.info("job {job_id} handed to the live session of {device_id}",
                         job_id=job.job_id, device_id=live.device_id)

    async def _drop_jobs_ended_elsewhere(self, live):
        """Before ``live``'s engine composes its next message: drop the jobs it
        has not started that are no longer pending in the store (another
        process cancelled them, or deleted the device)."""
        waiting = live.engine.waiting_jobs()
        if not waiting:
            return
        pending = {job.job_id for job in await self.store.pending_jobs(live.device_id)}
        for job_id in waiting:
            if job_id not in pending and live.engine.drop_job(job_id) == DROPPED:
                self._cancel_at_end.pop(job_id, None)  # nothing left to cancel
                log.info("job {job_id} of {device_id} ended on another node: not sent",
                         job_id=job_id, device_id=live.device_id)

    def _cancel_elsewhere(self, job):
        """A job sent in a session of another process (``running``, none of its
        device's sessions here): ask that process to cancel it at the session's
        end.  False when there are no other processes or the job was not sent."""
        if self.signals is None or job.state != "running":
            return False
        self.signals.send(CANCELS, "%s\n%s" % (job.device_id, job.job_id))
        return True

    def _cancel_signalled(self, payload):
        """``DEVICE\\nJOB`` was cancelled through another process: cancel JOB
        when the session here that sent it ends (over, its end not written
        yet), else when DEVICE's session here ends, one in which it
        authenticated (not a stranger's package 1)."""
        device_id, _, job_id = payload.partition("\n")
        live = self._ending_session_that_sent(device_id, job_id)
        if live is None:
            live = self._by_device.get(device_id)
        if live is not None and live.authenticated:
            self._cancel_at_end[job_id] = live

    def _session_signalled(self, payload):
        """``DEVICE\\nTOKEN`` authenticated: a session of DEVICE here under another token ends."""
        device_id, _, token = payload.partition("\n")
        live = self._by_device.get(device_id)
        if live is None or live.token == token:
            return
        d = defer.ensureDeferred(self._device_quiet(device_id, lambda: self._superseded_elsewhere(live, token)))
        d.addErrback(lambda f: log.failure("session of {device_id} not superseded", f, device_id=device_id))

    async def _superseded_elsewhere(self, live, token):
        if self._by_token.get(live.token) is not live:
            return
        log.info("session {session_id} of {device_id} superseded by its session on node {node}",
                 session_id=live.syncml_session_id, device_id=live.device_id, node=token.partition("~")[0])
        try:
            await self._abort(live, "superseded", "a new session from the device on another node replaced this one",
                              wake=False)
        except (StoreUnavailable, StoreContention) as e:
            self._write_later(e)  # (its end waits in _repairs: a repair writes it once the store takes it)
            raise
