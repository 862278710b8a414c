"""
The northbound REST API v1 (DESIGN §4) as a twisted.web resource tree.

Resources parse and authorise, then call the :class:`ApiHandlers`; the
handlers own all protocol logic and representations.  Serve the tree with
:func:`build_site`, which also refuses oversized bodies before reading them and
logs one event per request.

Routes (everything under ``/api/v1`` needs ``Authorization: Bearer``):

    GET      /api/v1/devices?filters&cursor=C&limit=L
    PUT|GET|DELETE /api/v1/devices/{device_id}
    DELETE   /api/v1/devices/{device_id}/lockouts
    GET      /api/v1/devices/{device_id}/events?type=T&limit=L&before=S
    POST|GET /api/v1/devices/{device_id}/jobs     (see jobs.py)
    GET      /api/v1/jobs/{job_id}, POST /api/v1/jobs/{job_id}/cancel
    GET      /api/v1/events?after=N&wait=S&limit=L
    POST     /api/v1/delegations, GET|DELETE /api/v1/delegations/{id}  (see delegations.py)
    GET      /metrics                  (optional, token if asked)
    GET      /healthz, /readyz         (no auth)
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import Resource

from dmgateway.api import functions, listing, validation
from dmgateway.api.bootstrap import post_bootstrap
from dmgateway.api.delegations import Delegations
from dmgateway.api.device_events import DeviceEvents
from dmgateway.api.jobs import DeviceJobs, Jobs
from dmgateway.api.jsonresource import (
    JSON_TYPE, MAX_SEQ, ApiError, ErrorResource, JsonResource, Reply, error_bytes, json_body,
    no_device, quote_id,
)
from dmgateway.api.service import ApiHandlers, UnknownDevice
from dmgateway.api.validation import ValidationError
from dmgateway.bearers.httplimits import PeerCappedSite
from dmgateway.bearers.webrequest import BodyLimitedRequest

DEFAULT_MAX_BODY = 1048576
DEFAULT_MAX_WAIT = 60.0
DEFAULT_EVENT_LIMIT = 100
MAX_EVENT_LIMIT = 1000

log = Logger()


# -- the tree -------------------------------------------------------------


@dataclass
class _Settings:
    handlers: ApiHandlers
    max_body: int
    max_wait: float
    max_commands: int


class _Namespace(JsonResource):
    """
    A path prefix (``/``, ``/api``) with fixed children; 404 itself.
    """


class TokenCheck:
    """
    The API's bearer token, replaceable while running (``SIGHUP`` re-reads
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
        ``None`` if the request carries the token, else the 401 to answer.
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
    A resource outside ``/api/v1`` (``/metrics``) behind the API token.
    """

    isLeaf = True

    def __init__(self, inner: Resource, token: TokenCheck) -> None:
        super().__init__()
        self._inner = inner
        self._token = token

    def render(self, request: server.Request) -> Any:
        error = self._token.refusal(request)
        if error is not None:
            return ErrorResource(error).render(request)
        return self._inner.render(request)


class _V1(JsonResource):
    """
    ``/api/v1``: checks the bearer token for itself and everything below.
    """

    def __init__(self, settings: _Settings, token: TokenCheck) -> None:
        super().__init__()
        self._token = token
        self.putChild(b"devices", _Devices(settings))
        self.putChild(b"jobs", Jobs(settings))
        self.putChild(b"events", _Events(settings))
        self.putChild(b"delegations", Delegations(settings))
        functions.install(self, settings)

    def _check(self, request: server.Request) -> ApiError | None:
        return self._token.refusal(request)

    def getChildWithDefault(self, path: bytes, request: server.Request) -> Resource:
        error = self._check(request)
        if error is not None:
            return ErrorResource(error)
        return super().getChildWithDefault(path, request)

    def _dispatch(self, request: server.Request) -> Reply:
        raise self._check(request) or ApiError(404, "not_found", "no such resource")


class _Devices(JsonResource):
    """
    ``/api/v1/devices``: the inventory (filters, cursor) and its children.
    """

    methods = {b"GET": "list"}

    def __init__(self, settings: _Settings) -> None:
        super().__init__()
        self._settings = settings

    def list(self, request: server.Request) -> Deferred[Reply]:
        where, limit, cursor = listing.parse_device_query(request.args)
        d = self._settings.handlers.list_devices(where, limit, cursor)
        return d.addCallback(lambda page: Reply(200, page))

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        if not path:
            return super().getChild(path, request)
        try:
            device_id = validation.parse_device_id(path)
        except ValidationError as e:
            return ErrorResource(ApiError(400, e.code, e.message))
        return _Device(self._settings, device_id)


class _Device(JsonResource):
    """
    ``/api/v1/devices/{device_id}``: the device account.
    """

    methods = {b"GET": "get", b"PUT": "put", b"DELETE": "delete"}

    def __init__(self, settings: _Settings, device_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._device_id = device_id

    def getChild(self, path: bytes, request: server.Request) -> Resource:
        if path == b"jobs":
            return DeviceJobs(self._settings, self._device_id)
        if path == b"lockouts":
            return _DeviceLockouts(self._settings, self._device_id)
        if path == b"events":
            return DeviceEvents(self._settings, self._device_id)
        if path == b"bootstrap":
            return _DeviceBootstrap(self._settings, self._device_id)
        child = functions.device_child(path, self._settings, self._device_id)
        if child is not None:
            return child
        return super().getChild(path, request)

    def get(self, request: server.Request) -> Deferred[Reply]:
        def found(device: dict[str, Any] | None) -> Reply:
            if device is None:
                raise UnknownDevice(self._device_id)
            return Reply(200, device)

        d = self._settings.handlers.get_device(self._device_id)
        return d.addCallback(found).addErrback(no_device, self._device_id)

    def put(self, request: server.Request) -> Deferred[Reply]:
        account = validation.validate_device(
            json_body(request, self._settings.max_body)
        )

        def stored(created: bool) -> Reply:
            body = {"device_id": self._device_id, "created": bool(created)}
            if not created:
                return Reply(200, body)
            location = "/api/v1/devices/" + quote_id(self._device_id)
            return Reply(201, body, {b"Location": location.encode("ascii")})

        d = self._settings.handlers.put_device(self._device_id, account)
        return d.addCallback(stored)

    def delete(self, request: server.Request) -> Deferred[Reply]:
        purge = listing.parse_delete_query(request.args)
        d = self._settings.handlers.delete_device(self._device_id, purge)
        return d.addCallbacks(lambda body: Reply(200, body), no_device,
                              errbackArgs=(self._device_id,))


class _DeviceLockouts(JsonResource):
    """
    ``/api/v1/devices/{device_id}/lockouts``: DELETE lifts them all.
    """

    methods = {b"DELETE": "clear"}

    def __init__(self, settings: _Settings, device_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._device_id = device_id

    def clear(self, request: server.Request) -> Deferred[Reply]:
        d = self._settings.handlers.clear_lockouts(self._device_id)
        return d.addCallbacks(lambda cleared: Reply(200, cleared), no_device,
                              errbackArgs=(self._device_id,))


class _DeviceBootstrap(JsonResource):
    """
    ``/api/v1/devices/{device_id}/bootstrap``: build and push or return a
    bootstrap (:mod:`dmgateway.api.bootstrap`).
    """

    methods = {b"POST": "create"}

    def __init__(self, settings: _Settings, device_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._device_id = device_id

    def create(self, request: server.Request) -> Deferred[Reply]:
        return post_bootstrap(self._settings, self._device_id, request)


class _Events(JsonResource):
    """
    ``/api/v1/events``: long-poll of the event log.
    """

    methods = {b"GET": "get"}

    def __init__(self, settings: _Settings) -> None:
        super().__init__()
        self._settings = settings

    def get(self, request: server.Request) -> Deferred[Reply]:
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
        d = self._settings.handlers.wait_events(after, limit, wait)
        # A client that goes away releases its wait.
        request.notifyFinish().addErrback(lambda _: d.cancel())
        return d.addCallback(lambda events: Reply(200, {"events": events}))


def build_root(
    handlers: ApiHandlers,
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
    The site root: ``/api/v1/...`` and, if given, ``metrics_resource`` at
    ``/metrics`` (without authentication unless ``metrics_token``) and the
    ``unauthenticated`` resources by name (``/healthz``).  Every other path
    is a JSON 404.

    :param token: the bearer token (read by the caller from
        ``[api] token_file``); surrounding whitespace is ignored.  A
        :class:`TokenCheck` lets the caller replace it later.
    :param max_wait: cap on the long-poll ``wait``, in seconds.
    """
    if not isinstance(token, TokenCheck):
        token = TokenCheck(token)
    settings = _Settings(handlers, max_body, max_wait, max_commands)
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
    A request that refuses a body over the site's ``max_body`` (HTTP 413,
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
    The API's HTTP site: :class:`ApiRequest` requests, no traceback pages, and no access
    log of its own (each request logs one structured event).

    Reachable without a token (``/healthz``, ``/readyz``, ``/metrics``, the
    401 itself): a request must arrive whole within ``read_timeout``
    seconds, and one address holds at most ``max_connections_per_peer``
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
        Nothing: :class:`ApiRequest` logs its own event.
        """


def build_site(
    handlers: ApiHandlers,
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
    The API site to listen on (e.g. with ``serverFromString(reactor,
    "tcp:8081:interface=127.0.0.1")``); see :func:`build_root` for the
    arguments.  ``reactor`` also times requests for the log.
    """
    if not isinstance(token, TokenCheck):
        token = TokenCheck(token)
    root = build_root(
        handlers, token, metrics_resource=metrics_resource,
        metrics_token=metrics_token, unauthenticated=unauthenticated,
        max_body=max_body, max_wait=max_wait, max_commands=max_commands,
    )
    site = ApiSite(root, max_body=max_body, reactor=reactor)
    site.token = token  # also consulted for the upload size limit
    return site
