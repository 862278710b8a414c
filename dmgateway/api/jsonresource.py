"""
The JSON plumbing every REST API resource is built on: the error a resource
raises (:class:`ApiError`) and how it is written, the reply a resource returns
(:class:`Reply`), the base resource that answers every method with JSON
(:class:`JsonResource`), and reading a bounded JSON body (:func:`json_body`).

Kept apart from the route tree (:mod:`dmgateway.api.resources`) so that the
resources in other modules (delegations, device events, functions,
bootstrap) build on it without importing the tree that mounts them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import quote

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from dmgateway.api import validation
from dmgateway.api.service import ServiceUnavailable, UnknownDevice, UnknownJob
from dmgateway.api.validation import ValidationError
from dmgateway.store.model import StoreClosed, StoreContention, StoreUnavailable

JSON_TYPE = b"application/json; charset=utf-8"
MAX_SEQ = 2**63 - 1

log = Logger()


class ApiError(Exception):
    """
    An error answer: ``{"error": {"code": code, "message": message}}``.
    """

    def __init__(
        self, status: int, code: str, message: str,
        headers: dict[bytes, bytes] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[bytes, bytes] = field(default_factory=dict)


def json_bytes(body: Any) -> bytes:
    """
    Encode a response body: UTF-8 JSON and a final newline.
    """
    return json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def error_bytes(code: str, message: str) -> bytes:
    """
    Encode the API's error shape.
    """
    return json_bytes({"error": {"code": code, "message": message}})


def quote_id(value: str) -> str:
    return quote(value, safe="")


# -- request plumbing -----------------------------------------------------


class _Exchange:
    """
    One request being answered: writes the reply unless the client left.
    """

    def __init__(self, request: server.Request, service: Any = None) -> None:
        self.request = request
        self.service = service
        self.gone = False
        request.notifyFinish().addErrback(self._lost)

    def _lost(self, reason: Failure) -> None:
        self.gone = True

    def encode(self, reply: Reply) -> tuple[int, bytes, dict[bytes, bytes]]:
        return reply.status, json_bytes(reply.body), reply.headers

    def error(self, reason: Failure) -> tuple[int, bytes, dict[bytes, bytes]] | None:
        if self.gone:
            return None
        error = reason.value
        if isinstance(error, ValidationError):
            error = ApiError(400, error.code, error.message)
        elif isinstance(error, UnknownJob):
            error = ApiError(404, "unknown_job", f"no job {str(error)!r}")
        elif isinstance(error, UnknownDevice):
            error = ApiError(404, "unknown_device", str(error) or "no such device")
        elif isinstance(error, StoreUnavailable):
            # an outage is logged once by the gateway, not once per request
            noted = getattr(self.service, "store_failed", None)
            retry_after = noted(error) if noted is not None else 5
            error = ApiError(
                503, "store_unavailable", "the store is unavailable; try again later",
                {b"Retry-After": b"%d" % (retry_after,)},
            )
        elif isinstance(error, StoreContention):
            # the database works (no outage): its transaction kept losing to
            # concurrent ones; the request may well succeed when asked again
            log.info("API request {method} {path} refused (503): {error}", error=str(error),
                     method=self.request.method.decode("latin-1"), path=self.request.path.decode("latin-1"))
            error = ApiError(
                503, "store_unavailable", "the store is busy with concurrent changes; try again",
                {b"Retry-After": b"1"},
            )
        elif isinstance(error, StoreClosed):
            # the gateway is stopping (its store closed under a request in flight)
            error = ApiError(
                503, "service_unavailable", "the gateway is stopping; try again",
                {b"Retry-After": b"5"},
            )
        elif isinstance(error, ServiceUnavailable):
            retry_after = getattr(error, "retry_after", None)
            error = ApiError(
                503, "service_unavailable", str(error) or "service unavailable",
                {} if retry_after is None else {b"Retry-After": b"%d" % (retry_after,)},
            )
        elif not isinstance(error, ApiError):
            log.failure(
                "API request {method} {path} failed",
                reason,
                method=self.request.method.decode("latin-1"),
                path=self.request.path.decode("latin-1"),
            )
            error = ApiError(500, "internal_error", "internal error")
        return error.status, error_bytes(error.code, error.message), error.headers

    def write(self, answer: tuple[int, bytes, dict[bytes, bytes]] | None) -> None:
        if self.gone or answer is None:
            return
        status, body, headers = answer
        request = self.request
        request.setResponseCode(status)
        for name, value in headers.items():
            request.setHeader(name, value)
        request.setHeader(b"Content-Type", JSON_TYPE)
        request.setHeader(b"Content-Length", b"%d" % (len(body),))
        request.setHeader(b"Cache-Control", b"no-store")
        request.write(body)
        request.finish()


class JsonResource(Resource):
    """
    A resource answering JSON.  ``methods`` maps an HTTP method to the name
    of a handler taking the request and returning a :class:`Reply` or a
    :class:`Deferred` firing with one; handlers raise :class:`ApiError`,
    :class:`ValidationError` or service errors to answer with an error.
    """

    methods: dict[bytes, str] = {}

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        return ErrorResource(ApiError(404, "not_found", "no such resource"))

    def render(self, request: server.Request) -> int:
        settings = getattr(self, "_settings", None)
        exchange = _Exchange(request, getattr(settings, "handlers", None))
        d = maybeDeferred(self._dispatch, request)
        d.addCallback(exchange.encode)
        d.addErrback(exchange.error)
        d.addCallback(exchange.write)
        d.addErrback(lambda f: log.failure("writing an API reply failed", f))
        return NOT_DONE_YET

    def _dispatch(self, request: server.Request) -> Reply | Deferred[Reply]:
        method = b"GET" if request.method == b"HEAD" else request.method
        name = self.methods.get(method)
        if name is not None:
            return getattr(self, name)(request)
        if not self.methods:
            raise ApiError(404, "not_found", "no such resource")
        allowed = sorted(self.methods) + ([b"HEAD"] if b"GET" in self.methods else [])
        raise ApiError(
            405,
            "method_not_allowed",
            "method %s is not allowed here; use %s"
            % (request.method.decode("latin-1"), b", ".join(allowed).decode("ascii")),
            {b"Allow": b", ".join(allowed)},
        )


class ErrorResource(JsonResource):
    """
    Answers every method, here and below, with one error.
    """

    def __init__(self, error: ApiError) -> None:
        super().__init__()
        self._error = error

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        return self

    def _dispatch(self, request: server.Request) -> Reply:
        raise self._error


def no_device(reason: Failure, device_id: str) -> NoReturn:
    """
    Name the device in an :class:`UnknownDevice` answer, whatever the service said.
    """
    reason.trap(UnknownDevice)
    raise ApiError(404, "unknown_device", f"no device {device_id!r}")


def json_body(request: server.Request, max_body: int) -> Any:
    """
    Check the content type and size of a request body and parse it.
    """
    ctype = request.getHeader(b"content-type") or b""
    media, *params = [p.strip().lower() for p in ctype.split(b";")]
    charset_ok = all(
        p in (b"charset=utf-8", b'charset="utf-8"')
        for p in params if p.startswith(b"charset=")
    )
    if media != b"application/json" or not charset_ok:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Content-Type must be application/json (UTF-8)",
        )
    request.content.seek(0)
    body = request.content.read(max_body + 1)
    if len(body) > max_body:
        raise ApiError(
            413, "payload_too_large", f"request body is larger than {max_body} bytes"
        )
    return validation.parse_json(body)
