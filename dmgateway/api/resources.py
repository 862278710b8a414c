"""
The northbound REST API v1 (DESIGN §4) as a twisted.web resource tree.

Resources parse and authorise, then call the L{GatewayService}; the
service owns all protocol logic and representations.  Serve the tree with
L{build_site}, which also refuses oversized bodies before reading them and
logs one event per request.

Routes (everything under C{/api/v1} needs C{Authorization: Bearer}):

    GET      /api/v1/devices?filters&cursor=C&limit=L
    PUT|GET|DELETE /api/v1/devices/{device_id}
    DELETE   /api/v1/devices/{device_id}/lockouts
    GET      /api/v1/devices/{device_id}/events?type=T&limit=L&before=S
    POST|GET /api/v1/devices/{device_id}/jobs
    GET      /api/v1/jobs/{job_id}
    POST     /api/v1/jobs/{job_id}/cancel
    GET      /api/v1/events?after=N&wait=S&limit=L
    POST     /api/v1/delegations, GET|DELETE /api/v1/delegations/{id}  (see delegations.py)
    GET      /metrics                  (optional, token if asked)
    GET      /healthz, /readyz         (no auth)
"""

from __future__ import annotations

import hmac
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

from dmgateway.api import listing, validation
from dmgateway.api.service import GatewayService, ServiceUnavailable, UnknownDevice, UnknownJob
from dmgateway.api.validation import ValidationError
from dmgateway.bearers.httplimits import PeerCappedSite
from dmgateway.bearers.webrequest import BodyLimitedRequest
from dmgateway.store.model import NotFound, StoreUnavailable

JSON_TYPE = b"application/json; charset=utf-8"
DEFAULT_MAX_BODY = 1048576
DEFAULT_MAX_WAIT = 60.0
DEFAULT_JOB_PAGE = 50
MAX_JOB_PAGE = 500
DEFAULT_EVENT_LIMIT = 100
MAX_EVENT_LIMIT = 1000
MAX_SEQ = 2**63 - 1

log = Logger()


class ApiError(Exception):
    """
    An error answer: C{{"error": {"code": code, "message": message}}}.
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
class _Reply:
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


def _quote_id(value: str) -> str:
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

    def encode(self, reply: _Reply) -> tuple[int, bytes, dict[bytes, bytes]]:
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
        elif isinstance(error, ServiceUnavailable):
            error = ApiError(
                503, "service_unavailable", str(error) or "service unavailable"
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


class _JsonResource(Resource):
    """
    A resource answering JSON.  C{methods} maps an HTTP method to the name
    of a handler taking the request and returning a L{_Reply} or a
    L{Deferred} firing with one; handlers raise L{ApiError},
    L{ValidationError} or service errors to answer with an error.
    """

    methods: dict[bytes, str] = {}

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        return _Error(ApiError(404, "not_found", "no such resource"))

    def render(self, request: server.Request) -> int:
        settings = getattr(self, "_settings", None)
        exchange = _Exchange(request, getattr(settings, "service", None))
        d = maybeDeferred(self._dispatch, request)
        d.addCallback(exchange.encode)
        d.addErrback(exchange.error)
        d.addCallback(exchange.write)
        d.addErrback(lambda f: log.failure("writing an API reply failed", f))
        return NOT_DONE_YET

    def _dispatch(self, request: server.Request) -> _Reply | Deferred[_Reply]:
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


class _Error(_JsonResource):
    """
    Answers every method, here and below, with one error.
    """

    def __init__(self, error: ApiError) -> None:
        super().__init__()
        self._error = error

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        return self

    def _dispatch(self, request: server.Request) -> _Reply:
        raise self._error


def _no_device(reason: Failure, device_id: str) -> NoReturn:
    """
    Name the device in an L{UnknownDevice} answer, whatever the service said.
    """
    reason.trap(UnknownDevice)
    raise ApiError(404, "unknown_device", f"no device {device_id!r}")


def _json_body(request: server.Request, max_body: int) -> Any:
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


# -- the tree -------------------------------------------------------------


@dataclass
class _Settings:
    service: GatewayService
    max_body: int
    max_wait: float
    max_commands: int


class _Namespace(_JsonResource):
    """
    A path prefix (C{/}, C{/api}) with fixed children; 404 itself.
    """


class TokenCheck:
    """
    The API's bearer token, replaceable while running (C{SIGHUP} re-reads
    the token file), and the check of one request against it.
    """

    def __init__(self, token: bytes | str) -> None:
        self.set(token)

    def set(self, token: bytes | str) -> None:
        if isinstance(token, str):
            token = token.encode("utf-8")
        token = token.strip()
        if not token:
            raise ValueError("the API token must not be empty")
        self._token = token

    def matches(self, token: bytes | str) -> bool:
        if isinstance(token, str):
            token = token.encode("utf-8")
        return hmac.compare_digest(token.strip(), self._token)

    def refusal(self, request: server.Request) -> ApiError | None:
        """
        L{None} if the request carries the token, else the 401 to answer.
        """
        values = request.requestHeaders.getRawHeaders(b"authorization") or []
        challenge = b'Bearer realm="dmgateway"'
        if not values:
            return ApiError(
                401, "unauthorized", "missing bearer token",
                {b"WWW-Authenticate": challenge},
            )
        scheme, _, credentials = values[0].strip().partition(b" ")
        if (
            len(values) == 1
            and scheme.lower() == b"bearer"
            and hmac.compare_digest(credentials.strip(), self._token)
        ):
            return None
        return ApiError(
            401, "unauthorized", "invalid bearer token",
            {b"WWW-Authenticate": challenge + b', error="invalid_token"'},
        )


class _Guarded(Resource):
    """
    A resource outside C{/api/v1} (C{/metrics}) behind the API token.
    """

    isLeaf = True

    def __init__(self, inner: Resource, token: TokenCheck) -> None:
        super().__init__()
        self._inner = inner
        self._token = token

    def render(self, request: server.Request) -> Any:
        error = self._token.refusal(request)
        if error is not None:
            return _Error(error).render(request)
        return self._inner.render(request)


class _V1(_JsonResource):
    """
    C{/api/v1}: checks the bearer token for itself and everything below.
    """

    def __init__(self, settings: _Settings, token: TokenCheck) -> None:
        super().__init__()
        self._token = token
        self.putChild(b"devices", _Devices(settings))
        self.putChild(b"jobs", _Jobs(settings))
        self.putChild(b"events", _Events(settings))
        from dmgateway.api.delegations import Delegations

        self.putChild(b"delegations", Delegations(settings))
        from dmgateway.api import functions

        functions.install(self, settings)

    def _check(self, request: server.Request) -> ApiError | None:
        return self._token.refusal(request)

    def getChildWithDefault(self, path: bytes, request: server.Request) -> Resource:
        error = self._check(request)
        if error is not None:
            return _Error(error)
        return super().getChildWithDefault(path, request)

    def _dispatch(self, request: server.Request) -> _Reply:
        raise self._check(request) or ApiError(404, "not_found", "no such resource")


class _Devices(_JsonResource):
    """
    C{/api/v1/devices}: the inventory (filters, cursor) and its children.
    """

    methods = {b"GET": "list"}

    def __init__(self, settings: _Settings) -> None:
        super().__init__()
        self._settings = settings

    def list(self, request: server.Request) -> Deferred[_Reply]:
        where, limit, cursor = listing.parse_device_query(request.args)
        d = self._settings.service.list_devices(where, limit, cursor)
        return d.addCallback(lambda page: _Reply(200, page))

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        if not path:
            return super().getChild(path, request)
        try:
            device_id = validation.parse_device_id(path)
        except ValidationError as e:
            return _Error(ApiError(400, e.code, e.message))
        return _Device(self._settings, device_id)


class _Device(_JsonResource):
    """
    C{/api/v1/devices/{device_id}}: the device account.
    """

    methods = {b"GET": "get", b"PUT": "put", b"DELETE": "delete"}

    def __init__(self, settings: _Settings, device_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._device_id = device_id

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        if path == b"jobs":
            return _DeviceJobs(self._settings, self._device_id)
        if path == b"lockouts":
            return _DeviceLockouts(self._settings, self._device_id)
        if path == b"events":
            from dmgateway.api.device_events import DeviceEvents

            return DeviceEvents(self._settings, self._device_id)
        if path == b"bootstrap":
            return _DeviceBootstrap(self._settings, self._device_id)
        from dmgateway.api import functions

        child = functions.device_child(path, self._settings, self._device_id)
        if child is not None:
            return child
        return super().getChild(path, request)

    def get(self, request: server.Request) -> Deferred[_Reply]:
        def found(device: dict[str, Any] | None) -> _Reply:
            if device is None:
                raise UnknownDevice(self._device_id)
            return _Reply(200, device)

        d = self._settings.service.get_device(self._device_id)
        return d.addCallback(found).addErrback(_no_device, self._device_id)

    def put(self, request: server.Request) -> Deferred[_Reply]:
        account = validation.validate_device(
            _json_body(request, self._settings.max_body)
        )

        def stored(created: bool) -> _Reply:
            body = {"device_id": self._device_id, "created": bool(created)}
            if not created:
                return _Reply(200, body)
            location = "/api/v1/devices/" + _quote_id(self._device_id)
            return _Reply(201, body, {b"Location": location.encode("ascii")})

        d = self._settings.service.put_device(self._device_id, account)
        return d.addCallback(stored)

    def delete(self, request: server.Request) -> Deferred[_Reply]:
        purge = listing.parse_delete_query(request.args)
        d = self._settings.service.delete_device(self._device_id, purge)
        return d.addCallbacks(lambda body: _Reply(200, body), _no_device,
                              errbackArgs=(self._device_id,))


class _DeviceLockouts(_JsonResource):
    """
    C{/api/v1/devices/{device_id}/lockouts}: DELETE lifts them all.
    """

    methods = {b"DELETE": "clear"}

    def __init__(self, settings: _Settings, device_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._device_id = device_id

    def clear(self, request: server.Request) -> Deferred[_Reply]:
        d = self._settings.service.clear_lockouts(self._device_id)
        return d.addCallbacks(lambda cleared: _Reply(200, cleared), _no_device,
                              errbackArgs=(self._device_id,))


class _DeviceJobs(_JsonResource):
    """
    C{/api/v1/devices/{device_id}/jobs}: queue a job, list jobs by page.
    """

    methods = {b"GET": "list", b"POST": "create"}

    def __init__(self, settings: _Settings, device_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._device_id = device_id

    def create(self, request: server.Request) -> Deferred[_Reply]:
        spec = validation.validate_job(
            _json_body(request, self._settings.max_body), self._settings.max_commands
        )

        def queued(job: dict[str, Any]) -> _Reply:
            headers = {}
            if isinstance(job.get("id"), str):
                location = "/api/v1/jobs/" + _quote_id(job["id"])
                headers[b"Location"] = location.encode("ascii")
            return _Reply(201, job, headers)

        d = self._settings.service.create_job(self._device_id, spec)
        return d.addCallbacks(queued, _no_device, errbackArgs=(self._device_id,))

    def list(self, request: server.Request) -> Deferred[_Reply]:
        limit = validation.parse_int_param(
            validation.query_value(request.args, "limit"),
            "limit", DEFAULT_JOB_PAGE, 1, MAX_JOB_PAGE,
        )
        after = validation.parse_after_job(validation.query_value(request.args, "after"))

        def page(jobs: list[dict[str, Any]]) -> _Reply:
            more = len(jobs) > limit
            jobs = jobs[:limit]
            return _Reply(200, {"jobs": jobs, "next": jobs[-1]["id"] if more else None})

        def no_cursor(reason: Failure) -> NoReturn:
            # The store's answer to an "after" that names no job.
            reason.trap(NotFound)
            raise ApiError(400, "invalid_parameter", f"after: no job {after!r}")

        # One job more than asked tells whether there is a next page.
        d = self._settings.service.list_jobs(self._device_id, limit + 1, after)
        d.addCallbacks(page, _no_device, errbackArgs=(self._device_id,))
        if after is not None:
            d.addErrback(no_cursor)
        return d


class _DeviceBootstrap(_JsonResource):
    """
    C{/api/v1/devices/{device_id}/bootstrap}: build and push or return a
    bootstrap (L{dmgateway.api.bootstrap}).
    """

    methods = {b"POST": "create"}

    def __init__(self, settings: _Settings, device_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._device_id = device_id

    def create(self, request: server.Request) -> Deferred[_Reply]:
        from dmgateway.api.bootstrap import post_bootstrap

        return post_bootstrap(self._settings, self._device_id, request, _json_body,
                              lambda status, body: _Reply(status, body), _no_device)


class _Jobs(_JsonResource):
    """
    C{/api/v1/jobs}: only its children exist.
    """

    def __init__(self, settings: _Settings) -> None:
        super().__init__()
        self._settings = settings

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        job_id = validation.parse_job_id(path)
        if job_id is None:
            return _Error(ApiError(404, "unknown_job", "no such job"))
        return _Job(self._settings, job_id)


class _Job(_JsonResource):
    """
    C{/api/v1/jobs/{job_id}}: a job with its results and notifications.
    """

    methods = {b"GET": "get"}

    def __init__(self, settings: _Settings, job_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._job_id = job_id

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        if path == b"cancel":
            return _JobCancel(self._settings, self._job_id)
        return super().getChild(path, request)

    def get(self, request: server.Request) -> Deferred[_Reply]:
        def found(job: dict[str, Any] | None) -> _Reply:
            if job is None:
                raise ApiError(404, "unknown_job", f"no job {self._job_id!r}")
            return _Reply(200, job)

        return self._settings.service.get_job(self._job_id).addCallback(found)


class _JobCancel(_JsonResource):
    """
    C{/api/v1/jobs/{job_id}/cancel}: cancel a queued or notified job now,
    a job in a live session when that session ends.
    """

    methods = {b"POST": "post"}

    def __init__(self, settings: _Settings, job_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._job_id = job_id

    def post(self, request: server.Request) -> Deferred[_Reply]:
        def answered(body: dict[str, Any]) -> _Reply:
            if body.get("cancel") == "at_session_end":
                return _Reply(202, body)
            if not body.get("cancelled"):
                raise ApiError(
                    409, "job_finished",
                    f"job {self._job_id!r} is {body.get('state')}: nothing to cancel",
                )
            return _Reply(200, body)

        return self._settings.service.cancel_job(self._job_id).addCallback(answered)


class _Events(_JsonResource):
    """
    C{/api/v1/events}: long-poll of the event log.
    """

    methods = {b"GET": "get"}

    def __init__(self, settings: _Settings) -> None:
        super().__init__()
        self._settings = settings

    def get(self, request: server.Request) -> Deferred[_Reply]:
        args = request.args
        after = validation.parse_int_param(
            validation.query_value(args, "after"), "after", 0, 0, MAX_SEQ
        )
        limit = validation.parse_int_param(
            validation.query_value(args, "limit"),
            "limit", DEFAULT_EVENT_LIMIT, 1, MAX_EVENT_LIMIT,
        )
        wait = validation.parse_wait_param(
            validation.query_value(args, "wait"), self._settings.max_wait
        )
        d = self._settings.service.wait_events(after, limit, wait)
        # A client that goes away releases its wait.
        request.notifyFinish().addErrback(lambda _: d.cancel())
        return d.addCallback(lambda events: _Reply(200, {"events": events}))


def build_root(
    service: GatewayService,
    token: bytes | str | TokenCheck,
    *,
    metrics_resource: Resource | None = None,
    metrics_token: bool = False,
    unauthenticated: dict[bytes, Resource] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    max_wait: float = DEFAULT_MAX_WAIT,
    max_commands: int = validation.MAX_COMMANDS,
) -> Resource:
    """
    The site root: C{/api/v1/...} and, if given, C{metrics_resource} at
    C{/metrics} (without authentication unless C{metrics_token}) and the
    C{unauthenticated} resources by name (C{/healthz}).  Every other path
    is a JSON 404.

    @param token: the bearer token (read by the caller from
        C{[api] token_file}); surrounding whitespace is ignored.  A
        L{TokenCheck} lets the caller replace it later.
    @param max_wait: cap on the long-poll C{wait}, in seconds.
    """
    if not isinstance(token, TokenCheck):
        token = TokenCheck(token)
    settings = _Settings(service, max_body, max_wait, max_commands)
    api = _Namespace()
    api.putChild(b"v1", _V1(settings, token))
    root = _Namespace()
    root.putChild(b"api", api)
    if metrics_resource is not None:
        if metrics_token:
            metrics_resource = _Guarded(metrics_resource, token)
        root.putChild(b"metrics", metrics_resource)
    for name, child in (unauthenticated or {}).items():
        root.putChild(name, child)
    return root


# -- the site -------------------------------------------------------------


#: seconds a request to the API has to arrive whole (headers and body)
API_READ_TIMEOUT = 30
#: connections one address may hold open to the API listener
API_MAX_CONNECTIONS_PER_PEER = 64


class ApiRequest(BodyLimitedRequest):
    """
    A request that refuses a body over the site's C{max_body} (HTTP 413,
    then closes the connection): by its Content-Length before reading any
    of it, or while reading a body of unknown length.  Logs one event per
    request, also when the client goes away first.
    """

    def body_limit(self) -> int:
        # a firmware upload may be as large as [functions] max_package_size, but
        # only with the API token: a stranger's body is buffered before the 401
        # is answered, so it gets max_body like any other request
        site = self.channel.site
        path = getattr(self.channel, "_path", b"") or b""
        upload = getattr(site, "upload_limit", None)
        token = getattr(site, "token", None)
        if (upload and path.split(b"?", 1)[0].rstrip(b"/") == b"/api/v1/firmware" and token is not None
                and token.refusal(self) is None):
            return max(upload, site.max_body)
        return site.max_body

    def too_large(self, limit: int) -> tuple[bytes, bytes]:
        return JSON_TYPE, error_bytes("payload_too_large", f"request body is larger than {limit} bytes")

    def refused(self, limit: int) -> None:
        channel = self.channel
        # The request line is parsed but not yet handed to the request.
        log.info(
            "API {method} {path} -> {status}: body over {max_body} bytes refused",
            method=getattr(channel, "_command", b"?").decode("latin-1"),
            path=getattr(channel, "_path", b"?").split(b"?")[0].decode("latin-1"),
            status=413,
            max_body=limit,
            client=_client(self),
        )

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            return
        clock = self.channel.site.reactor
        started = clock.seconds()
        self.notifyFinish().addBoth(self._log, clock, started)
        super().requestReceived(command, path, version)

    def _log(self, result: None | Failure, clock: Any, started: float) -> None:
        log.info(
            "API {method} {path} -> {status} in {duration:.3f}s{outcome}",
            method=self.method.decode("latin-1"),
            path=self.path.decode("latin-1"),
            status=self.code,
            duration=clock.seconds() - started,
            outcome="" if result is None else " (client went away)",
            client=_client(self),
        )


def _client(request: server.Request) -> str:
    address = request.getClientAddress()
    return str(getattr(address, "host", address))


class ApiSite(PeerCappedSite):
    """
    The API's HTTP site: L{ApiRequest}s, no traceback pages, and no access
    log of its own (each request logs one structured event).

    Reachable without a token (C{/healthz}, C{/readyz}, C{/metrics}, the
    401 itself): a request must arrive whole within C{read_timeout}
    seconds, and one address holds at most C{max_connections_per_peer}
    connections, so slow or piled-up connections cannot use up the
    process's descriptors (a long poll waits after its request is in).
    """

    requestFactory = ApiRequest
    displayTracebacks = False
    noisy = False
    read_timeout = API_READ_TIMEOUT
    max_connections_per_peer = API_MAX_CONNECTIONS_PER_PEER

    def __init__(
        self, resource: Resource, max_body: int = DEFAULT_MAX_BODY,
        reactor: Any = None,
    ) -> None:
        # JSON only: no form parsing of POST bodies (request.args keeps
        # the query string).
        super().__init__(resource, reactor=reactor, parsePOSTFormSubmission=False)
        self.max_body = max_body

    def log(self, request: server.Request) -> None:
        """
        Nothing: L{ApiRequest} logs its own event.
        """


def build_site(
    service: GatewayService,
    token: bytes | str | TokenCheck,
    *,
    metrics_resource: Resource | None = None,
    metrics_token: bool = False,
    unauthenticated: dict[bytes, Resource] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    max_wait: float = DEFAULT_MAX_WAIT,
    max_commands: int = validation.MAX_COMMANDS,
    reactor: Any = None,
) -> ApiSite:
    """
    The API site to listen on (e.g. with C{serverFromString(reactor,
    "tcp:8081:interface=127.0.0.1")}); see L{build_root} for the
    arguments.  C{reactor} also times requests for the log.
    """
    if not isinstance(token, TokenCheck):
        token = TokenCheck(token)
    root = build_root(
        service, token, metrics_resource=metrics_resource,
        metrics_token=metrics_token, unauthenticated=unauthenticated,
        max_body=max_body, max_wait=max_wait, max_commands=max_commands,
    )
    site = ApiSite(root, max_body=max_body, reactor=reactor)
    site.token = token  # also consulted for the upload size limit
    return site
