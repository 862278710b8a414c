"""What the REST API calls: the :class:`ApiHandlers` interface, shared by
:mod:`dmgateway.api.resources` and :class:`dmgateway.handlers.Handlers`
that implements it, and the errors it raises.

The API validates input (:mod:`dmgateway.api.validation`) and maps errors to
HTTP; the handlers own every representation they return (built with
:mod:`dmgateway.api.views`).
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

from twisted.internet.defer import Deferred


class UnknownDevice(Exception):
    """
    The device id names no device account (HTTP 404 ``unknown_device``).
    """


class UnknownJob(Exception):
    """
    The job id names no job (HTTP 404 ``unknown_job``).
    """


class ServiceUnavailable(Exception):
    """
    The service cannot answer now, e.g. the store is down (HTTP 503
    ``service_unavailable``).  The message is shown to the API client:
    keep secrets out of it.  ``retry_after`` (seconds), if given, is the
    answer's ``Retry-After``.
    """

    def __init__(self, message: str = "", retry_after: Optional[int] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BootstrapRefused(Exception):
    """
    A bootstrap that cannot be made or sent for this device (no MSISDN, no
    IMSI for NETWPIN, no SMS bearer ...): HTTP ``status`` with ``code``.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ApiHandlers(Protocol):
    """
    What the northbound API needs from the gateway (its service layer).  Every method returns a
    :class:`Deferred`; a failure other than the two exceptions above becomes
    HTTP 500.
    """

    def put_device(self, device_id: str, account: dict[str, Any]) -> Deferred[bool]:
        """
        Create or replace a device account.

        ``account`` is as returned by
            :func:`dmgateway.api.validation.validate_device`: ``server_id``,
            ``client_auth`` and ``server_auth`` (``type``: md5, basic, hmac or
            none; ``name`` and ``secret``, ``None`` only for type none; and
            ``nonce`` as base64 only when the client sent one; DESIGN §4:
            absent means empty), ``msisdn``, ``sip_uri``, ``imsi`` (or
            ``None``).
        Returns: fires with ``True`` if the device was created, ``False`` if
            it existed and was updated.
        """

    def get_device(self, device_id: str) -> Deferred[dict[str, Any] | None]:
        """
        The device representation of DESIGN §4 (secrets never included), or
        ``None`` if there is no such device.
        """

    def list_devices(self, where: Any, limit: int, cursor: str | None) -> Deferred[dict[str, Any]]:
        """
        One page of the inventory: ``{"devices": [...], "next": cursor or None}``,
        the devices matching ``where`` (a
        :class:`~dmgateway.store.inventory.DeviceFilter`) in id order after
        the opaque ``cursor`` of the previous page.
        """

    def delete_device(self, device_id: str, purge_history: bool) -> Deferred[dict[str, Any]]:
        """
        Delete the account (ending its live session) and cancel its pending
        jobs; its events are kept unless ``purge_history``.  Fires with
        ``{"device_id", "deleted", "jobs_cancelled", "history"}``; fails with
        :class:`UnknownDevice`.
        """

    def clear_lockouts(self, device_id: str) -> Deferred[dict[str, Any]]:
        """
        Lift every authentication lockout of the device (per peer address
        and device-wide); fires with ``{"device_id", "cleared": N}``.
        Fails with :class:`UnknownDevice`.
        """

    def create_job(self, device_id: str, spec: dict[str, Any]) -> Deferred[dict[str, Any]]:
        """
        Queue a job (as returned by :func:`dmgateway.api.validation.validate_job`).

        Returns: fires with ``{"id": ..., "state": "queued"}``; fails with
            :class:`UnknownDevice` if the device does not exist.
        """

    def get_job(self, job_id: str) -> Deferred[dict[str, Any] | None]:
        """
        The job representation of DESIGN §4, or ``None`` if unknown.
        """

    def cancel_job(self, job_id: str) -> Deferred[dict[str, Any]]:
        """
        Cancel a queued or notified job now (``{"id", "state", "cancelled"}``),
        also one a live session holds but has not sent (or has not read), or
        a job a live session has sent when that session ends (``"cancel":
        "at_session_end"``, with the job's state once that was asked).
        Fails with :class:`UnknownJob`.
        """

    def list_jobs(
        self, device_id: str, limit: int, after: str | None
    ) -> Deferred[list[dict[str, Any]]]:
        """
        Up to ``limit`` jobs of a device, oldest first, starting after the job
        with id ``after`` (from the first job if ``None``).  Fails with
        :class:`UnknownDevice` if the device does not exist.
        """

    def device_events(
        self, device_id: str, types: tuple[str, ...], limit: int, before: int | None
    ) -> Deferred[list[dict[str, Any]]]:
        """
        Up to ``limit`` events of a device, newest first, of the given
        ``types`` (all if empty), with ``seq < before`` if given.  Fails with
        :class:`UnknownDevice` if the device does not exist.
        """

    def bootstrap(self, device_id: str, spec: dict[str, Any]) -> Deferred[tuple[int, dict[str, Any]]]:
        """
        Build a bootstrap for the device (as returned by
        :func:`dmgateway.api.bootstrap.validate_bootstrap`) and push or return it.

        Returns: fires with ``(202, {"id", "state", ...``)} for a push queued in
            the notification outbox, or ``(200, {"document", "sec", "mac", ...``)};
            fails with :class:`UnknownDevice` or :class:`BootstrapRefused`.
        """

    def wait_events(self, after: int, limit: int, wait: float) -> Deferred[list[dict[str, Any]]]:
        """
        Up to ``limit`` events with ``seq > after``, in ``seq`` order.  Fires at
        once if there are any; otherwise when one is appended, or with ``[]``
        after ``wait`` seconds (at once if ``wait`` is 0).  Cancelling the
        Deferred (the client went away) must release the wait.
        """
