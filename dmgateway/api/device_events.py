"""
``GET /api/v1/devices/{device_id}/events?type=T[,T...]&limit=L&before=SEQ``:
one device's events, newest first (its last sessions, the fate of each
wake-up, its Generic Alerts, lockouts...), for the web console's device
page.  Read-only; the same event objects as ``GET /api/v1/events``.
"""

from __future__ import annotations

import re

from twisted.internet.defer import Deferred
from twisted.web import server

from dmgateway.api import validation
from dmgateway.api.jsonresource import MAX_SEQ, JsonResource, Reply, no_device

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_TYPES = 8
PARAMS = frozenset([b"type", b"limit", b"before"])
_TYPE = re.compile(r"[a-z][a-z0-9_]{0,31}")


def parse_types(value: str | None) -> tuple[str, ...]:
    """The ``type`` parameter: event types separated by commas (none: all)."""
    if value is None:
        return ()
    types = tuple(dict.fromkeys(value.split(",")))
    if len(types) > MAX_TYPES or not all(_TYPE.fullmatch(t) for t in types):
        raise validation.ValidationError(
            "invalid_parameter",
            f"type: 1 to {MAX_TYPES} event types (lower-case names) separated by commas",
        )
    return types


class DeviceEvents(JsonResource):
    methods = {b"GET": "list"}

    def __init__(self, settings, device_id: str) -> None:
        super().__init__()
        self._settings = settings
        self._device_id = device_id

    def list(self, request: server.Request) -> Deferred[Reply]:
        args = request.args
        unknown = sorted(set(args) - PARAMS)
        if unknown:
            name = unknown[0].decode("utf-8", "replace")[:64]
            raise validation.ValidationError(
                "invalid_parameter", f"unknown parameter {name!r} (known: before, limit, type)"
            )
        types = parse_types(validation.query_value(args, "type"))
        limit = validation.parse_int_param(
            validation.query_value(args, "limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT
        )
        before = validation.query_value(args, "before")
        if before is not None:
            before = validation.parse_int_param(before, "before", 1, 1, MAX_SEQ)
        d = self._settings.handlers.device_events(self._device_id, types, limit, before)
        return d.addCallbacks(
            lambda events: Reply(200, {"events": events}), no_device, errbackArgs=(self._device_id,)
        )
