"""
``POST /api/v1/devices/{device_id}/bootstrap`` (DESIGN §4): validation and resource.

The body::

    {"profile": "cp" | "dm", "sec": "NETWPIN" | "USERPIN" | "USERNETWPIN" | "USERPINMAC" | "none",
     "pin": "1234", "deliver": "push" | "return",
     "name": "display name",
     "napdef": {...}, "proxy": {...},                       (cp: NAPDEF / PXLOGICAL parms)
     "layout": "dm12" | "dm11", "tnds": false,             (dm)
     "account_name": "x", "pref_con_ref": "./ConnMO/x",    (dm)
     "max_size": 4096,                                     (refuse a larger document: 400 too_large)
     "connectivity": [{"uri": "./ConnMO/x/...", "data": "...", "format": "chr"}]}   (dm)

``push`` answers ``202 {"id", "state", "profile", "sec", "mac", "size"}`` (the
notification carrying it); ``return`` answers ``200`` with ``document`` and
``push`` (base64 of the WBXML document and of the whole WSP push),
``content_type``, ``sec``, ``mac``.  USERPINMAC adds ``user_pin``, what the
user types (PIN and MAC digits).
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web import server

from dmgateway.api import validation
from dmgateway.api.jsonresource import ApiError, Reply, json_body, no_device
from dmgateway.api.service import BootstrapRefused
from dmgateway.api.validation import ValidationError

PROFILES = ("cp", "dm")
SEC_METHODS = ("NETWPIN", "USERPIN", "USERNETWPIN", "USERPINMAC", "none")
_NEEDS_PIN = ("USERPIN", "USERNETWPIN", "USERPINMAC")
DELIVER = ("push", "return")
LAYOUTS = ("dm12", "dm11")
CON_FORMATS = ("chr", "int", "bool", "b64", "node")
MAX_CONNECTIVITY = 32
MAX_SIZE = 1 << 20
_FIELDS = {
    "profile", "sec", "pin", "deliver", "name", "napdef", "proxy", "layout", "tnds",
    "account_name", "pref_con_ref", "connectivity", "max_size",
}
_DM_ONLY = ("layout", "tnds", "account_name", "pref_con_ref", "connectivity")
_CP_ONLY = ("napdef", "proxy")
_PIN = re.compile(r"[0-9]{1,32}")
_NODE_NAME = re.compile(r"[A-Za-z0-9._-]{1,32}")
_CODE = "invalid_bootstrap"


def _fail(message: str) -> NoReturn:
    raise ValidationError(_CODE, message)


def _choice(body: dict[str, Any], key: str, choices: tuple, default: Any = None) -> Any:
    value = body.get(key, default)
    if value is None:
        _fail(f"{key}: required, one of {', '.join(choices)}")
    if value not in choices:
        _fail(f"{key}: must be one of {', '.join(choices)}")
    return value


def _short_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > validation.MAX_SHORT_TEXT \
            or validation._CONTROL.search(value):
        _fail(f"{key}: must be 1 to {validation.MAX_SHORT_TEXT} characters, no control characters")
    return value


def _connectivity(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CONNECTIVITY:
        _fail(f"connectivity: must be a list of 1 to {MAX_CONNECTIVITY} items")
    items = []
    for index, item in enumerate(value):
        where = f"connectivity[{index}]"
        if not isinstance(item, dict) or set(item) - {"uri", "data", "format"}:
            _fail(f"{where}: must be an object with uri, data and format")
        try:
            uri = validation.validate_dm_uri(item.get("uri"), where + ".uri", op="Add")
        except ValidationError as e:
            _fail(e.message)
        fmt = item.get("format", "chr")
        if fmt not in CON_FORMATS:
            _fail(f"{where}.format: must be one of {', '.join(CON_FORMATS)}")
        data = item.get("data")
        if fmt == "node":
            if data is not None:
                _fail(f"{where}.data: a node has no data")
        elif not isinstance(data, str) or len(data) > 4096 or validation._CONTROL.search(data):
            _fail(f"{where}.data: must be text of at most 4096 characters")
        items.append({"uri": uri, "data": data, "format": fmt})
    return items


def validate_bootstrap(value: Any) -> dict[str, Any]:
    """The normalised request, or :class:`ValidationError` (HTTP 400) naming the field."""
    if not isinstance(value, dict):
        _fail("the body must be a JSON object")
    unknown = sorted(set(value) - _FIELDS)
    if unknown:
        _fail(f"{unknown[0]}: unknown field")
    spec: dict[str, Any] = {
        "profile": _choice(value, "profile", PROFILES),
        "deliver": _choice(value, "deliver", DELIVER, "push"),
    }
    sec = value.get("sec")
    if isinstance(sec, str) and sec.upper() in SEC_METHODS[:-1]:
        sec = sec.upper()
    spec["sec"] = _choice({"sec": sec}, "sec", SEC_METHODS)
    pin = value.get("pin")
    if spec["sec"] in _NEEDS_PIN:
        if not isinstance(pin, str) or not _PIN.fullmatch(pin):
            _fail(f"pin: {spec['sec']} needs a PIN of 1 to 32 decimal digits")
        if spec["sec"] == "USERPINMAC" and len(pin) < 5:
            _fail("pin: USERPINMAC needs a PIN of at least 5 digits")
        spec["pin"] = pin
    elif pin is not None:
        _fail(f"pin: not used with sec {spec['sec']}")
    other = _CP_ONLY if spec["profile"] == "dm" else _DM_ONLY
    for key in other:
        if key in value:
            _fail(f"{key}: applies to the {'cp' if key in _CP_ONLY else 'dm'} profile only")
    spec["name"] = _short_text(value, "name")
    for key in _CP_ONLY:
        if key in value:
            if not isinstance(value[key], dict):
                _fail(f"{key}: must be an object of CP parameters")
            spec[key] = value[key]
    spec["layout"] = _choice(value, "layout", LAYOUTS, "dm12")
    tnds = value.get("tnds", False)
    if not isinstance(tnds, bool):
        _fail("tnds: must be true or false")
    if tnds and spec["layout"] != "dm12":
        _fail("tnds: needs layout dm12")
    spec["tnds"] = tnds
    name = value.get("account_name")
    if name is not None and (not isinstance(name, str) or not _NODE_NAME.fullmatch(name)
                             or name in (".", "..")):
        _fail("account_name: 1 to 32 letters, digits, dots, dashes or underscores")
    spec["account_name"] = name
    ref = _short_text(value, "pref_con_ref")
    spec["pref_con_ref"] = ref
    if "connectivity" in value:
        spec["connectivity"] = _connectivity(value["connectivity"])
    max_size = value.get("max_size")
    if max_size is not None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or not 1 <= max_size <= MAX_SIZE:
            _fail(f"max_size: must be an integer from 1 to {MAX_SIZE}")
        spec["max_size"] = max_size
    return spec


def _refused(reason: Failure) -> NoReturn:
    reason.trap(BootstrapRefused)
    error = reason.value
    raise ApiError(error.status, error.code, error.message)


def post_bootstrap(settings: Any, device_id: str, request: server.Request) -> Deferred:
    """The handler of ``POST .../bootstrap``; the resource classes are in :mod:`dmgateway.api.resources`."""
    spec = validate_bootstrap(json_body(request, settings.max_body))

    def done(result: tuple[int, dict[str, Any]]) -> Reply:
        status, body = result
        return Reply(status, body)

    d = settings.handlers.bootstrap(device_id, spec)
    d.addCallbacks(done, no_device, errbackArgs=(device_id,))
    return d.addErrback(_refused)
