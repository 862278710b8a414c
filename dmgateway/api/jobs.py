"""
The jobs of the REST API: ``/api/v1/devices/{device_id}/jobs`` (queue a
job, list a device's jobs by page) and ``/api/v1/jobs/{job_id}`` (read one,
``POST .../cancel``).  The handlers (:class:`dmgateway.api.service.ApiHandlers`)
build the job views (:func:`dmgateway.api.views.job_view`).
"""

from __future__ import annotations

from typing import Any, NoReturn

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import Resource

from dmgateway.api import validation
from dmgateway.api.jsonresource import ApiError, ErrorResource, JsonResource, Reply, json_body, no_device, quote_id
from dmgateway.store.model import NotFound

DEFAULT_JOB_PAGE = 50
MAX_JOB_PAGE = 500


class DeviceJobs(JsonResource):
    """
    ``/api/v1/devices/{device_id}/jobs``: queue a job, list jobs by page.
    """

    methods = {b"GET": "list", b"POST": "create"}

    def __init__(self, settings: Any, device_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._device_id = device_id

    def create(self, request: server.Request) -> Deferred[Reply]:
        spec = validation.validate_job(
            json_body(request, self._settings.max_body), self._settings.max_commands
        )

        def queued(job: dict[str, Any]) -> Reply:
            headers = {}
            if isinstance(job.get("id"), str):
                location = "/api/v1/jobs/" + quote_id(job["id"])
                headers[b"Location"] = location.encode("ascii")
            return Reply(201, job, headers)

        d = self._settings.handlers.create_job(self._device_id, spec)
        return d.addCallbacks(queued, no_device, errbackArgs=(self._device_id,))

    def list(self, request: server.Request) -> Deferred[Reply]:
        limit = validation.parse_int_param(
            validation.query_value(request.args, "limit"),
            "limit", DEFAULT_JOB_PAGE, 1, MAX_JOB_PAGE,
        )
        after = validation.parse_after_job(validation.query_value(request.args, "after"))

        def page(jobs: list[dict[str, Any]]) -> Reply:
            more = len(jobs) > limit
            jobs = jobs[:limit]
            return Reply(200, {"jobs": jobs, "next": jobs[-1]["id"] if more else None})

        def no_cursor(reason: Failure) -> NoReturn:
            # The store's answer to an "after" that names no job.
            reason.trap(NotFound)
            raise ApiError(400, "invalid_parameter", f"after: no job {after!r}")

        # One job more than asked tells whether there is a next page.
        d = self._settings.handlers.list_jobs(self._device_id, limit + 1, after)
        d.addCallbacks(page, no_device, errbackArgs=(self._device_id,))
        if after is not None:
            d.addErrback(no_cursor)
        return d


class Jobs(JsonResource):
    """
    ``/api/v1/jobs``: only its children exist.
    """

    def __init__(self, settings: Any) -> None:
        super().__init__()
        self._settings = settings

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        job_id = validation.parse_job_id(path)
        if job_id is None:
            return ErrorResource(ApiError(404, "unknown_job", "no such job"))
        return Job(self._settings, job_id)


class Job(JsonResource):
    """
    ``/api/v1/jobs/{job_id}``: a job with its results and notifications.
    """

    methods = {b"GET": "get"}

    def __init__(self, settings: Any, job_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._job_id = job_id

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        if path == b"cancel":
            return JobCancel(self._settings, self._job_id)
        return super().getChild(path, request)

    def get(self, request: server.Request) -> Deferred[Reply]:
        def found(job: dict[str, Any] | None) -> Reply:
            if job is None:
                raise ApiError(404, "unknown_job", f"no job {self._job_id!r}")
            return Reply(200, job)

        return self._settings.handlers.get_job(self._job_id).addCallback(found)


class JobCancel(JsonResource):
    """
    ``/api/v1/jobs/{job_id}/cancel``: cancel a queued or notified job now
    (also one a live session holds but has not sent, or has not read), a
    job a live session has sent when that session ends.
    """

    methods = {b"POST": "post"}

    def __init__(self, settings: Any, job_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._job_id = job_id

    def post(self, request: server.Request) -> Deferred[Reply]:
        def answered(body: dict[str, Any]) -> Reply:
            if body.get("cancel") == "at_session_end":
                return Reply(202, body)
            if not body.get("cancelled"):
                raise ApiError(
                    409, "job_finished",
                    f"job {self._job_id!r} is {body.get('state')}: nothing to cancel",
                )
            return Reply(200, body)

        return self._settings.handlers.cancel_job(self._job_id).addCallback(answered)
