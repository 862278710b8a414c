"""The jobs of the REST API: creating, reading, listing and cancelling them.

A job is written to the store here; the dispatcher then hands it to the
device's live session or has the device woken up (``job_created``).  A job
whose session has sent it already is cancelled when that session ends:
commands already sent cannot be called back.  One no session has sent is
cancelled at once: a live session that holds it drops it, and one that
reads it later does not start it (the store refuses a cancelled job).
"""

import uuid
from typing import Any, Dict, List, Optional

from twisted.internet import defer
from twisted.logger import Logger

from dmgateway.api.service import UnknownDevice, UnknownJob
from dmgateway.api.validation import ValidationError
from dmgateway.api.views import job_view
from dmgateway.store.model import NotFound

log = Logger(namespace="dmgateway.handlers")

NO_BEARER = "no notification bearer is enabled: the job waits for the device's next session"


class JobHandlers:
    """``create_job``, ``get_job``, ``list_jobs``, ``cancel_job``, and the ``notify`` checks."""

    # -- bearers ---------------------------------------------------------------------

    def enabled_bearers(self) -> List[str]:
        """The wake-up bearers this process has (``sms``, ``sip``), sorted."""
        outbox = self.dispatcher.outbox
        return sorted(outbox.bearers) if outbox is not None else []

    def check_notify(self, notify: str) -> None:
        """Refuse (400) a job asking for a wake-up bearer this process does not have."""
        if notify in ("sms", "sip") and notify not in self.enabled_bearers():
            enabled = " ".join(self.enabled_bearers()) or "none"
            raise ValidationError(
                "bearer_disabled",
                "notify: %r, but no %s bearer is enabled (enabled: %s); use \"auto\" or \"none\""
                % (notify, notify.upper(), enabled),
            )

    def notify_note(self, view: Dict[str, Any]) -> Dict[str, Any]:
        """Say in a job view why an ``auto`` job will not be woken up."""
        if view.get("notify") == "auto" and view.get("state") == "queued" and not self.enabled_bearers():
            view["notify_note"] = NO_BEARER
        return view

    # -- jobs --------------------------------------------------------------------------

    def create_job(self, device_id: str, spec: Dict[str, Any]) -> "defer.Deferred[Dict[str, Any]]":
        """Queue a job (as :func:`~dmgateway.api.validation.validate_job` returns it)."""
        return defer.ensureDeferred(self._create_job(device_id, spec))

    async def _create_job(self, device_id, spec):
        self.check_notify(spec.get("notify", "auto"))
        device = await self.store.get_device(device_id)
        if device is None:
            raise UnknownDevice(device_id)
        job_id = uuid.uuid4().hex
        job = await self.store.create_job(
            job_id,
            device_id,
            commands=spec["commands"],
            atomic=spec.get("atomic", False),
            notify=spec.get("notify", "auto"),
            ui_mode=spec.get("ui_mode", 0),
            now=self.clock.seconds(),
        )
        await self.dispatcher.job_created(job, device)
        log.info(
            "job {job_id} queued for {device_id}: {count} commands",
            job_id=job_id,
            device_id=device_id,
            count=len(spec["commands"]),
        )
        return {"id": job_id, "state": "queued"}

    def job_queued(self, job: Any, device: Any) -> "defer.Deferred[None]":
        """A job was queued by another service (functions, campaigns): run or wake it."""
        return defer.ensureDeferred(self.dispatcher.job_queued(job, device))

    def get_job(self, job_id: str) -> "defer.Deferred[Optional[Dict[str, Any]]]":
        """The job view (DESIGN §4), or None if there is no such job."""
        return defer.ensureDeferred(self._get_job(job_id))

    async def _get_job(self, job_id):
        job = await self.store.get_job(job_id)
        if job is None:
            return None
        notifications = await self.store.notifications_for_job(job_id)
        view = self.notify_note(job_view(job, notifications))
        if self.functions is not None:
            view = await self.functions.annotate_job(view)
        return view

    def list_jobs(
        self, device_id: str, limit: int, after: Optional[str]
    ) -> "defer.Deferred[List[Dict[str, Any]]]":
        """Up to ``limit`` jobs of the device, oldest first, after the job ``after``."""
        return defer.ensureDeferred(self._list_jobs(device_id, limit, after))

    async def _list_jobs(self, device_id, limit, after):
        device = await self.store.get_device(device_id)
        if device is None:
            raise UnknownDevice(device_id)
        jobs = await self.store.list_jobs(device_id, limit=limit, after=after)
        return [job_view(job, ()) for job in jobs]

    def cancel_job(self, job_id: str) -> "defer.Deferred[Dict[str, Any]]":
        """Cancel the job now, or when the live session that sent it ends
        (see :meth:`~dmgateway.dispatch.Dispatcher.cancel_at_session_end`).

        A store failure after a live session dropped the job leaves it
        queued, never sent by that session: the call again cancels it."""
        return defer.ensureDeferred(self._cancel_job(job_id))

    async def _cancel_job(self, job_id):
        job = await self.store.get_job(job_id)
        if job is None:
            raise UnknownJob(job_id)
        if job.state in ("queued", "notified", "running") and self.dispatcher.cancel_at_session_end(job):
            return await self._cancelled_at_session_end(job_id)
        try:
            result = await self.store.cancel_job(job_id)
        except NotFound:
            raise UnknownJob(job_id)
        if not result.cancelled and result.state == "running":
            # a session started it after the read above (on another node, or
            # one whose copy was read before: a stranger's here, say): it is
            # not finished, but cancelled when that session ends
            job = await self.store.get_job(job_id)
            if job is not None and job.state == "running" and self.dispatcher.cancel_at_session_end(job):
                return await self._cancelled_at_session_end(job_id)
        if result.cancelled:
            self.events.announce()
            log.info("job {job_id} of {device_id} cancelled ({count} wake-ups stopped)",
                     job_id=job_id, device_id=result.device_id, count=result.notifications)
        return {"id": job_id, "state": result.state, "cancelled": result.cancelled}

    async def _cancelled_at_session_end(self, job_id):
        """The answer to a cancel left to the end of the session that sent the
        job: commands already sent cannot be called back; what is left of it
        is cancelled when the session ends.  The state said is the one once
        that is asked (the session may have ended the job since it was read)."""
        job = await self.store.get_job(job_id)
        if job is None:  # (removed with its device meanwhile)
            raise UnknownJob(job_id)
        return {"id": job_id, "state": job.state, "cancelled": False, "cancel": "at_session_end"}
