"""
The gateway service the REST API calls: the interface shared by
L{dmgateway.api.resources} and the dispatcher that implements it.

The API validates input (L{dmgateway.api.validation}) and maps errors to
HTTP; the service owns every representation it returns.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred


class UnknownDevice(Exception):
    """
    The device id names no device account (HTTP 404 C{unknown_device}).
    """


class ServiceUnavailable(Exception):
    """
    The service cannot answer now, e.g. the store is down (HTTP 503
    C{service_unavailable}).  The message is shown to the API client:
    keep secrets out of it.
    """


class BootstrapRefused(Exception):
    """
    A bootstrap that cannot be made or sent for this device (no MSISDN, no
    IMSI for NETWPIN, no SMS bearer ...): HTTP C{status} with C{code}.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class GatewayService(Protocol):
    """
    What the northbound API needs from the gateway.  Every method returns a
    L{Deferred}; a failure other than the two exceptions above becomes
    HTTP 500.
    """

    def put_device(self, device_id: str, account: dict[str, Any]) -> Deferred[bool]:
        """
        Create or replace a device account.

        @param account: as returned by
            L{dmgateway.api.validation.validate_device}: C{server_id},
            C{client_auth} and C{server_auth} (C{type}: md5, basic, hmac or
            none; C{name} and C{secret}, L{None} only for type none; and
            C{nonce} as base64 only when the client sent one; DESIGN §4:
            absent means empty), C{msisdn}, C{sip_uri}, C{imsi} (or
            L{None}).
        @return: fires with C{True} if the device was created, C{False} if
            it existed and was updated.
        """

    def get_device(self, device_id: str) -> Deferred[dict[str, Any] | None]:
        """
        The device representation of DESIGN §4 (secrets never included), or
        L{None} if there is no such device.
        """

    def clear_lockouts(self, device_id: str) -> Deferred[dict[str, Any]]:
        """
        Lift every authentication lockout of the device (per peer address
        and device-wide); fires with C{{"device_id", "cleared": N}}.
        Fails with L{UnknownDevice}.
        """

    def create_job(self, device_id: str, spec: dict[str, Any]) -> Deferred[dict[str, Any]]:
        """
        Queue a job (as returned by L{dmgateway.api.validation.validate_job}).

        @return: fires with C{{"id": ..., "state": "queued"}}; fails with
            L{UnknownDevice} if the device does not exist.
        """

    def get_job(self, job_id: str) -> Deferred[dict[str, Any] | None]:
        """
        The job representation of DESIGN §4, or L{None} if unknown.
        """

    def list_jobs(
        self, device_id: str, limit: int, after: str | None
    ) -> Deferred[list[dict[str, Any]]]:
        """
        Up to C{limit} jobs of a device, oldest first, starting after the job
        with id C{after} (from the first job if L{None}).  Fails with
        L{UnknownDevice} if the device does not exist.
        """

    def bootstrap(self, device_id: str, spec: dict[str, Any]) -> Deferred[tuple[int, dict[str, Any]]]:
        """
        Build a bootstrap for the device (as returned by
        L{dmgateway.api.bootstrap.validate_bootstrap}) and push or return it.

        @return: fires with C{(202, {"id", "state", ...})} for a push queued in
            the notification outbox, or C{(200, {"document", "sec", "mac", ...})};
            fails with L{UnknownDevice} or L{BootstrapRefused}.
        """

    def wait_events(self, after: int, limit: int, wait: float) -> Deferred[list[dict[str, Any]]]:
        """
        Up to C{limit} events with C{seq > after}, in C{seq} order.  Fires at
        once if there are any; otherwise when one is appended, or with C{[]}
        after C{wait} seconds (at once if C{wait} is 0).  Cancelling the
        Deferred (the client went away) must release the wait.
        """
