"""The inventory and operator side of the REST API's service: the device list
with filters and cursor, deleting a device, cancelling a job, and checking a
job's ``notify`` against the bearers this process has.

A mixin of :class:`dmgateway.dispatch.Dispatcher` (it needs ``store``,
``clock``, ``notifier`` and the live-session map), kept apart so the
dispatcher stays about sessions.
"""

import base64
import binascii

from twisted.internet import defer
from twisted.logger import Logger

from dmgateway.api.service import UnknownDevice, UnknownJob
from dmgateway.api.validation import ValidationError
from dmgateway.jobstates import change_job
from dmgateway.live import device_view
from dmgateway.store.model import NotFound

log = Logger()

NO_BEARER = "no notification bearer is enabled: the job waits for the device's next session"


def encode_cursor(device_id):
    """The opaque ``next`` cursor that continues after ``device_id``."""
    return base64.urlsafe_b64encode(device_id.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(text):
    """The device id a cursor continues after; ``ValidationError`` if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError("invalid_parameter", "cursor: not a cursor this API returned")
    if not value or len(value) > 1024:
        raise ValidationError("invalid_parameter", "cursor: not a cursor this API returned")
    return value


class InventoryService:
    """``list_devices``, ``delete_device``, ``cancel_job``, notify checks."""

    # -- bearers -------------------------------------------------------------------

    def enabled_bearers(self):
        notifier = getattr(self, "notifier", None)
        return sorted(notifier.bearers) if notifier is not None else []

    def check_notify(self, notify):
        """Refuse (400) a job asking for a wake-up bearer this process does not have."""
        if notify in ("sms", "sip") and notify not in self.enabled_bearers():
            enabled = " ".join(self.enabled_bearers()) or "none"
            raise ValidationError(
                "bearer_disabled",
                "notify: %r, but no %s bearer is enabled (enabled: %s); use \"auto\" or \"none\""
                % (notify, notify.upper(), enabled),
            )

    def notify_note(self, view):
        """Say in a job view why an ``auto`` job will not be woken up."""
        if view.get("notify") == "auto" and view.get("state") == "queued" and not self.enabled_bearers():
            view["notify_note"] = NO_BEARER
        return view

    # -- devices ----------------------------------------------------------------------

    def list_devices(self, where, limit, cursor):
        """``{"devices": [...], "next": cursor or None}``."""
        after = decode_cursor(cursor) if cursor is not None else None

        def page(devices):
            more = len(devices) > limit
            devices = devices[:limit]
            return {
                "devices": [self.inventory_view(device, device_view(device)) for device in devices],
                "next": encode_cursor(devices[-1].device_id) if more else None,
            }

        # one more than asked says whether there is a next page
        return self.store.find_devices(where, limit + 1, after).addCallback(page)

    def inventory_view(self, device, view):
        """The device view and whether it is locked out now."""
        view["locked_out"] = device.locked(self.clock.seconds())
        return view

    def delete_device(self, device_id, purge_history):
        return defer.ensureDeferred(self._delete_device(device_id, purge_history))

    async def _delete_device(self, device_id, purge_history):
        live = self._by_device.get(device_id)
        if live is not None:
            await self._abort(live, "device_deleted", "the device account was deleted", wake=False)
        try:
            cancelled = await self.store.remove_device(device_id, purge_history)
        except NotFound:
            raise UnknownDevice(device_id)
        keys = getattr(self, "device_psk", None)
        if keys is not None:
            # its TLS-PSK key must not open the HTTPS listener any more
            await keys.remove(device_id)
        if not purge_history:
            self._events_appended()
        log.info(
            "device {device_id} deleted: {count} pending jobs cancelled, history {history}",
            device_id=device_id,
            count=len(cancelled),
            history="purged" if purge_history else "kept",
        )
        return {"device_id": device_id, "deleted": True, "jobs_cancelled": cancelled,
                "history": "purged" if purge_history else "kept"}

    # -- jobs -------------------------------------------------------------------------

    def cancel_job(self, job_id):
        return defer.ensureDeferred(self._cancel_job(job_id))

    async def _cancel_job(self, job_id):
        job = await self.store.get_job(job_id)
        if job is None:
            raise UnknownJob(job_id)
        live = self._by_device.get(job.device_id)
        if live is not None and job.state in ("queued", "notified", "running"):
            # its session has it: commands already sent cannot be called
            # back; what is left of it is cancelled when the session ends
            self._cancel_at_end.add(job_id)
            return {"id": job_id, "state": job.state, "cancelled": False, "cancel": "at_session_end"}
        try:
            result = await self.store.cancel_job(job_id)
        except NotFound:
            raise UnknownJob(job_id)
        if result.cancelled:
            self._events_appended()
            log.info("job {job_id} of {device_id} cancelled ({count} wake-ups stopped)",
                     job_id=job_id, device_id=result.device_id, count=result.notifications)
        return {"id": job_id, "state": result.state, "cancelled": result.cancelled}

    async def cancel_left_at_session_end(self, device_id):
        """Cancel the jobs asked to be cancelled that a session ended without finishing."""
        if not self._cancel_at_end:
            return
        jobs = await self.store.run_interaction(
            "jobs_to_cancel", self.store._jobs_in_state_txn, ("queued", "notified", "running"), device_id
        )
        for job in jobs:
            if job.job_id in self._cancel_at_end:
                self._cancel_at_end.discard(job.job_id)
                if job.state == "running":  # back to waiting, so the cancel below takes it
                    await change_job(self.store, job.job_id, "queued", device_id=device_id,
                                     now=self.clock.seconds(), expect="running")
                result = await self.store.cancel_job(job.job_id)
                if result.cancelled:
                    self._events_appended()

    def finished(self, job_id):
        """A job finished in its session: nothing left to cancel."""
        self._cancel_at_end.discard(job_id)
