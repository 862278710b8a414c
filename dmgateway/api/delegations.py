"""``/api/v1/delegations``: the operator's side of DM-6 (DESIGN §5).

    POST   /api/v1/delegations        {"peer", "devices", "subtrees", "type",
                                       "duration", "until"} -> 201 the delegation
    GET    /api/v1/delegations/{id}   state, per-device steps, step history
    DELETE /api/v1/delegations/{id}   revoke (delegating side)

The flow lives in :mod:`dmgateway.delegation.flow` (``handlers.delegation``);
without ``[delegation] enabled`` every route answers 404 ``not_enabled``.
"""

from datetime import datetime

from twisted.internet import defer

from dmgateway.api.jsonresource import ApiError, JsonResource, Reply, json_body
from dmgateway.api.validation import ValidationError
from dmgateway.delegation import messages as m
from dmgateway.delegation.flow import MAX_DEVICES, MAX_SUBTREES, DelegationError

_FIELDS = ("peer", "devices", "subtrees", "type", "duration", "until")


def validate_delegation(obj):
    """The checked body of ``POST /api/v1/delegations`` (``until`` as epoch seconds)."""
    code = "invalid_request"
    if not isinstance(obj, dict):
        raise ValidationError(code, "the body must be a JSON object")
    unknown = sorted(set(obj) - set(_FIELDS))
    if unknown:
        raise ValidationError(code, "unknown field %r" % (unknown[0],))
    peer = obj.get("peer")
    if not isinstance(peer, str) or not peer:
        raise ValidationError(code, "peer must be a peer's server id")
    devices = obj.get("devices")
    if (not isinstance(devices, list) or not 1 <= len(devices) <= MAX_DEVICES
            or not all(isinstance(d, str) and 0 < len(d) <= 256 for d in devices)):
        raise ValidationError(code, "devices must be a list of 1 to %d device ids" % (MAX_DEVICES,))
    if len(set(devices)) != len(devices):
        raise ValidationError(code, "a device is listed twice")
    subtrees = obj.get("subtrees", ["."] if obj.get("type") == "full" else None)
    if not isinstance(subtrees, list) or not 1 <= len(subtrees) <= MAX_SUBTREES:
        raise ValidationError(code, "subtrees must be a list of 1 to %d URIs" % (MAX_SUBTREES,))
    try:
        subtrees = [m.check_scope(uri) for uri in subtrees]
    except m.MessageError as e:
        raise ValidationError(code, "subtrees: %s" % (e,)) from None
    if len(set(subtrees)) != len(subtrees):
        raise ValidationError(code, "a subtree is listed twice")
    kind = obj.get("type")
    if kind not in ("full", "partial"):
        raise ValidationError(code, 'type must be "full" or "partial"')
    if kind == "partial" and "." in subtrees:
        raise ValidationError(code, "a partial delegation cannot name the root")
    duration = obj.get("duration")
    if duration not in ("temporary", "permanent"):
        raise ValidationError(code, 'duration must be "temporary" or "permanent"')
    until = obj.get("until")
    if until is not None:
        if duration != "temporary":
            raise ValidationError(code, "until is only for a temporary delegation")
        if not isinstance(until, str):
            raise ValidationError(code, "until must be an ISO 8601 time")
        try:
            stamp = datetime.fromisoformat(until.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(code, "until must be an ISO 8601 time") from None
        if stamp.tzinfo is None:
            raise ValidationError(code, "until must name its time zone (e.g. Z)")
        until = stamp.timestamp()
    return {"peer": peer, "devices": devices, "subtrees": subtrees, "type": kind,
            "duration": duration, "until_epoch": until}


def _flow(settings):
    flow = getattr(settings.handlers, "delegation", None)
    if flow is None:
        raise ApiError(404, "not_enabled", "delegation is not enabled on this gateway")
    return flow


def _refused(failure):
    failure.trap(DelegationError)
    error = failure.value
    raise ApiError(error.status, error.code, error.message)


class Delegations(JsonResource):
    """``/api/v1/delegations``."""

    methods = {b"POST": "create"}

    def __init__(self, settings):
        super().__init__()
        self._settings = settings

    def getChild(self, path, request):
        try:
            delegation_id = path.decode("ascii")
        except UnicodeDecodeError:
            delegation_id = ""
        return Delegation(self._settings, delegation_id)

    def create(self, request):
        flow = _flow(self._settings)
        spec = validate_delegation(json_body(request, self._settings.max_body))
        d = defer.ensureDeferred(flow.create(spec))
        d.addErrback(_refused)
        return d.addCallback(lambda view: Reply(201, view, {
            b"Location": b"/api/v1/delegations/" + view["id"].encode("ascii")}))


class Delegation(JsonResource):
    """``/api/v1/delegations/{id}``."""

    methods = {b"GET": "get", b"DELETE": "revoke"}

    def __init__(self, settings, delegation_id):
        super().__init__()
        self._settings = settings
        self._id = delegation_id

    def _found(self, view):
        if view is None:
            raise ApiError(404, "unknown_delegation", "no delegation %r" % (self._id,))
        return Reply(200, view)

    def get(self, request):
        d = defer.ensureDeferred(_flow(self._settings).get(self._id))
        return d.addCallback(self._found)

    def revoke(self, request):
        d = defer.ensureDeferred(_flow(self._settings).revoke(self._id))
        d.addErrback(_refused)
        return d.addCallback(self._found)
