"""
REST routes of the device functions (DESIGN §5 "Device functions"):

    POST|GET /api/v1/firmware            register (JSON with "url", or the package
                                         as application/octet-stream with the
                                         fields as query parameters) / list
    GET      /api/v1/firmware/{id}
    POST     /api/v1/devices/{id}/operations   one FUMO/SCOMO/LAWMO operation
    GET      /api/v1/operations/{id}
    POST|GET /api/v1/campaigns
    GET      /api/v1/campaigns/{id}                    with progress
    POST     /api/v1/campaigns/{id}/pause|resume|cancel
    GET      /api/v1/campaigns/{id}/report?format=json|csv

The services hang off the REST handlers (``handlers.functions``); without them
(a gateway built without device functions) every route answers 503.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.web import server
from twisted.web.resource import Resource

from dmgateway.api.jsonresource import (
    ApiError, ErrorResource, JsonResource, Reply, json_body, json_bytes, quote_id,
)
from dmgateway.api.validation import ValidationError, parse_device_id
from dmgateway.campaigns import CampaignError
from dmgateway.devfunctions import UnknownDevice
from dmgateway.firmware import FirmwareError
from dmgateway.functions import FunctionError
from dmgateway.store.model import NotFound

_ID_CHARS = frozenset(b"0123456789abcdef")
_UPLOAD_FIELDS = ("name", "version", "man", "model", "from_fwv", "size", "sha256")


def _functions(settings):
    functions = getattr(settings.handlers, "functions", None)
    if functions is None:
        raise ApiError(503, "service_unavailable", "device functions are not running")
    return functions


def _translate(failure):
    error = failure.value
    if isinstance(error, (FirmwareError, CampaignError)):
        raise ApiError(error.status, error.code, str(error))
    if isinstance(error, FunctionError):
        raise ApiError(400, "invalid_operation", str(error))
    if isinstance(error, UnknownDevice):
        raise ApiError(404, "unknown_device", "no device %r" % (str(error),))
    if isinstance(error, NotFound):
        raise ApiError(404, "not_found", str(error))
    if isinstance(error, ValidationError):
        raise ApiError(400, error.code, error.message)
    return failure


def _call(coroutine, status=200, location=None):
    def reply(body):
        headers = {}
        if location is not None and isinstance(body, dict) and isinstance(body.get("id"), str):
            headers[b"Location"] = (location + quote_id(body["id"])).encode("ascii")
        return Reply(status, body, headers)

    return defer.ensureDeferred(coroutine).addCallbacks(reply, _translate)


def _found(what):
    def check(body):
        if body is None:
            raise ApiError(404, "not_found", "no such %s" % (what,))
        return body
    return check


def _hex_id(path):
    if len(path) != 32 or not set(path) <= _ID_CHARS:
        return None
    return path.decode("ascii")


class FirmwareList(JsonResource):
    methods = {b"GET": "list", b"POST": "create"}

    def __init__(self, settings):
        super().__init__()
        self._settings = settings

    def getChild(self, path, request):
        firmware_id = _hex_id(path)
        if firmware_id is None:
            return ErrorResource(ApiError(404, "not_found", "no such firmware"))
        return _FirmwareItem(self._settings, firmware_id)

    def list(self, request):
        firmware = _functions(self._settings).firmware
        return _call(self._list(firmware))

    async def _list(self, firmware):
        return {"firmware": await firmware.list()}

    def create(self, request):
        firmware = _functions(self._settings).firmware
        media = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if media == b"application/octet-stream":
            meta = {}
            for raw, values in request.args.items():
                name = raw.decode("utf-8", "replace")
                if name not in _UPLOAD_FIELDS or len(values) != 1:
                    raise ApiError(400, "invalid_parameter", "unknown or repeated parameter %r" % (name[:64],))
                meta[name] = values[0].decode("utf-8", "replace")
            return _call(firmware.register(meta, request.content), 201, "/api/v1/firmware/")
        meta = json_body(request, self._settings.max_body)
        return _call(firmware.register(meta), 201, "/api/v1/firmware/")


class _FirmwareItem(JsonResource):
    methods = {b"GET": "get"}

    def __init__(self, settings, firmware_id):
        super().__init__()
        self._settings = settings
        self._id = firmware_id

    def get(self, request):
        return _call(_functions(self._settings).firmware.get(self._id)).addCallback(
            lambda reply: Reply(200, _found("firmware")(reply.body)))


class DeviceOperations(JsonResource):
    """``/api/v1/devices/{id}/operations``."""

    methods = {b"POST": "create"}

    def __init__(self, settings, device_id):
        super().__init__()
        self._settings = settings
        self._device_id = device_id

    def create(self, request):
        body = json_body(request, self._settings.max_body)
        functions = _functions(self._settings)
        return _call(functions.start_operation(self._device_id, body), 201, "/api/v1/operations/")


class Operations(JsonResource):
    def __init__(self, settings):
        super().__init__()
        self._settings = settings

    def getChild(self, path, request):
        op_id = _hex_id(path)
        if op_id is None:
            return ErrorResource(ApiError(404, "not_found", "no such operation"))
        return _Operation(self._settings, op_id)


class _Operation(JsonResource):
    methods = {b"GET": "get"}

    def __init__(self, settings, op_id):
        super().__init__()
        self._settings = settings
        self._id = op_id

    def get(self, request):
        d = _functions(self._settings).get_operation(self._id)
        return d.addCallback(lambda view: Reply(200, _found("operation")(view)))


class Campaigns(JsonResource):
    methods = {b"GET": "list", b"POST": "create"}

    def __init__(self, settings):
        super().__init__()
        self._settings = settings

    def getChild(self, path, request):
        campaign_id = _hex_id(path)
        if campaign_id is None:
            return ErrorResource(ApiError(404, "not_found", "no such campaign"))
        return _Campaign(self._settings, campaign_id)

    def _service(self):
        return _functions(self._settings).campaigns

    def list(self, request):
        return _call(self._list())

    async def _list(self):
        return {"campaigns": await self._service().list()}

    def create(self, request):
        body = json_body(request, self._settings.max_body)
        return _call(self._service().create(body), 201, "/api/v1/campaigns/")


class _Campaign(JsonResource):
    methods = {b"GET": "get"}

    def __init__(self, settings, campaign_id):
        super().__init__()
        self._settings = settings
        self._id = campaign_id

    def getChild(self, path, request):
        if path in (b"pause", b"resume", b"cancel"):
            return _CampaignAction(self._settings, self._id, path.decode("ascii"))
        if path == b"report":
            return _CampaignReport(self._settings, self._id)
        return super().getChild(path, request)

    def get(self, request):
        service = _functions(self._settings).campaigns
        return _call(service.get(self._id)).addCallback(lambda r: Reply(200, _found("campaign")(r.body)))


class _CampaignAction(JsonResource):
    methods = {b"POST": "act"}

    def __init__(self, settings, campaign_id, action):
        super().__init__()
        self._settings = settings
        self._id = campaign_id
        self._action = action

    def act(self, request):
        return _call(_functions(self._settings).campaigns.change(self._id, self._action))


class _CampaignReport(Resource):
    """The report: JSON (the API's shape) or CSV (text/csv)."""

    isLeaf = True

    def __init__(self, settings, campaign_id):
        super().__init__()
        self._settings = settings
        self._id = campaign_id

    def render(self, request):
        if request.method not in (b"GET", b"HEAD"):
            return ErrorResource(ApiError(405, "method_not_allowed", "use GET", {b"Allow": b"GET, HEAD"})).render(request)
        fmt = (request.args.get(b"format") or [b"json"])[0]
        if set(request.args) - {b"format"} or fmt not in (b"json", b"csv"):
            return ErrorResource(ApiError(400, "invalid_parameter", "format must be json or csv")).render(request)
        try:
            service = _functions(self._settings).campaigns
        except ApiError as error:
            return ErrorResource(error).render(request)
        d = defer.ensureDeferred(service.report(self._id, fmt.decode("ascii")))
        d.addCallback(self._write, request, fmt)
        d.addErrback(lambda f: ErrorResource(ApiError(500, "internal_error", "internal error")).render(request)
                     if not request.finished else None)
        return server.NOT_DONE_YET

    def _write(self, report, request, fmt):
        if report is None:
            ErrorResource(ApiError(404, "not_found", "no such campaign")).render(request)
            return
        if fmt == b"json":
            body, ctype = json_bytes(report), b"application/json; charset=utf-8"
        else:
            body, ctype = report.encode("utf-8"), b"text/csv; charset=utf-8"
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", ctype)
        request.setHeader(b"Content-Length", b"%d" % (len(body),))
        request.setHeader(b"Cache-Control", b"no-store")  # as every API answer
        if request.method != b"HEAD":
            request.write(body)
        request.finish()


def install(v1: Resource, settings: Any) -> None:
    """Add the device-function routes under ``/api/v1``."""
    v1.putChild(b"firmware", FirmwareList(settings))
    v1.putChild(b"operations", Operations(settings))
    v1.putChild(b"campaigns", Campaigns(settings))


def device_child(path: bytes, settings: Any, device_id: str) -> Resource | None:
    """The child of ``/api/v1/devices/{id}`` this module serves, if any."""
    if path == b"operations":
        return DeviceOperations(settings, device_id)
    return None


__all__ = ["install", "device_child", "parse_device_id"]
