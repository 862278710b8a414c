"""
Input validation for the northbound REST API v1 (DESIGN §4).

Pure functions: JSON values in, normalised values out, or a
:class:`ValidationError` whose message names the offending field
(``commands[2].target: ...``).  No Twisted, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from dmgateway.codec.errors import NOT_XML_TEXT

MAX_ID_LENGTH = 128
MAX_URI_LENGTH = 1024
MAX_COMMANDS = 100
MAX_CHOICES = 100
MAX_SHORT_TEXT = 255
MAX_NONCE_BYTES = 255

OPS = ("Get", "Add", "Replace", "Delete", "Exec", "Copy", "Alert", "Sequence")
AUTH_TYPES = ("md5", "basic", "hmac", "none")
FORMATS = (
    "b64", "bin", "bool", "chr", "int", "node", "null", "xml", "date", "time", "float",
)
NOTIFY = ("auto", "sms", "sip", "none")
ALERT_CODES = range(1100, 1105)
CHOICE_ALERTS = (1103, 1104)
LIST_ATTRIBUTES = ("Struct", "StructData", "TNDS")
TNDS_PROPERTIES = (
    "ACL", "Format", "Name", "Size", "Title", "TStamp", "Type", "VerNo", "Value",
)

# Fields each op accepts besides "op"; the first entry of a tuple is required.
_COMMAND_FIELDS = {
    "Get": ("target",),
    "Delete": ("target",),
    "Add": ("target", "data", "format", "type"),
    "Replace": ("target", "data", "format", "type"),
    "Exec": ("target", "data", "format", "type"),
    "Copy": ("target", "source"),
    "Alert": ("alert", "data", "options", "choices"),
    "Sequence": ("commands",),
}
_NOT_IN_ATOMIC = ("Get", "Exec", "Sequence")

_DEVICE_ID = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_ID_LENGTH)
_JOB_ID = re.compile(r"[A-Za-z0-9._:~-]{1,%d}" % MAX_ID_LENGTH)
_MSISDN = re.compile(r"\+?[0-9]{1,15}")
_IMSI = re.compile(r"[0-9]{6,15}")
_SIP_URI = re.compile(r"sips?:[^\s\x00-\x1f\x7f]+", re.IGNORECASE)
_PROPERTY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_TNDS = re.compile(
    r"TNDS(?:(?:\+(?:%s))+|(?:-(?:%s))+)?" % (("|".join(TNDS_PROPERTIES),) * 2)
)
_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Node values and alert texts may span lines (XML and WBXML carry these).
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_INTEGER = re.compile(r"[0-9]{1,19}")  # up to 2**63 - 1


class ValidationError(ValueError):
    """
    Client input that the API refuses (HTTP 400).

    :ivar code: the API error code (``invalid_job``, ``unknown_op``, ...).
    :ivar message: a sentence naming the field and what is wrong with it.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- path and query parameters -------------------------------------------


def parse_device_id(segment: bytes) -> str:
    """
    Validate a device id taken from an (already percent-decoded) path
    segment: 1 to 128 printable ASCII characters without spaces, as a
    DevId URN such as ``IMEI:350000000000001``.
    """
    try:
        text = segment.decode("ascii")
    except UnicodeDecodeError:
        raise ValidationError(
            "invalid_device_id", "device id must be printable ASCII"
        ) from None
    if not _DEVICE_ID.fullmatch(text):
        raise ValidationError(
            "invalid_device_id",
            "device id must be 1 to %d printable ASCII characters without spaces"
            % (MAX_ID_LENGTH,),
        )
    return text


def parse_job_id(segment: bytes) -> str | None:
    """
    Return the job id in ``segment``, or ``None`` if it cannot name a job
    (1 to 128 of ``A-Z a-z 0-9 . _ : ~ -``).
    """
    try:
        text = segment.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if _JOB_ID.fullmatch(text) else None


def query_value(args: dict[bytes, list[bytes]], name: str) -> str | None:
    """
    The single value of query parameter ``name``, or ``None`` if absent.
    """
    values = args.get(name.encode("ascii"))
    if not values:
        return None
    if len(values) > 1:
        raise ValidationError("invalid_parameter", f"{name} given more than once")
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("invalid_parameter", f"{name} is not UTF-8") from None


def parse_int_param(
    value: str | None, name: str, default: int, minimum: int, maximum: int
) -> int:
    """
    Parse a decimal integer query parameter within [minimum, maximum].
    """
    if value is None:
        return default
    if not _INTEGER.fullmatch(value) or not minimum <= int(value) <= maximum:
        raise ValidationError(
            "invalid_parameter",
            f"{name} must be an integer from {minimum} to {maximum}",
        )
    return int(value)


def parse_wait_param(value: str | None, cap: float) -> float:
    """
    Parse the long-poll ``wait`` (seconds, decimals allowed), capped at
    ``cap``.  Absent means 0: answer at once.
    """
    if value is None:
        return 0.0
    if not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,6})?", value):
        raise ValidationError(
            "invalid_parameter", "wait must be a non-negative number of seconds"
        )
    return min(float(value), cap)


def parse_after_job(value: str | None) -> str | None:
    """
    Validate the paging cursor of a job list (a job id) if present.
    """
    if value is None:
        return None
    if parse_job_id(value.encode("utf-8")) is None:
        raise ValidationError("invalid_parameter", "after must be a job id")
    return value


# -- bodies ---------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """
    Parse a UTF-8 JSON request body; errors are ``bad_json``.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValidationError(
            "bad_json", f"body is not UTF-8 (byte {e.start})"
        ) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ValidationError(
            "bad_json", f"{e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except ValueError as e:
        raise ValidationError("bad_json", str(e)) from None
    except RecursionError:
        raise ValidationError("bad_json", "body is nested too deeply") from None
    _refuse_xml_illegal(value, "")
    return value


# What XML 1.0 cannot carry, so no SyncML message can either: NUL and the
# other C0 controls but tab, LF and CR, lone surrogates (a JSON "\ud800"
# escape without its pair), U+FFFE and U+FFFF.
_XML_ILLEGAL = re.compile(NOT_XML_TEXT)


def _refuse_xml_illegal(value: Any, where: str) -> None:
    """``bad_json`` naming where the first string (or key) XML cannot carry is."""
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                _refuse_text(key, path + " (a key)")
                stack.append((sub, "%s/%s" % (path, key)))
        elif isinstance(item, list):
            stack.extend((sub, "%s/%d" % (path, i)) for i, sub in enumerate(item))
        elif isinstance(item, str):
            _refuse_text(item, path)


def _refuse_text(text: str, path: str) -> None:
    found = _XML_ILLEGAL.search(text)
    if found:
        raise ValidationError(
            "bad_json",
            "%s: character U+%04X (at index %d) is not allowed: XML cannot carry it"
            % (path or "body", ord(found.group()), found.start()),
        )


def _check_fields(
    obj: dict[str, Any], where: str, allowed: tuple[str, ...], code: str
) -> None:
    for key in obj:
        if key not in allowed:
            raise ValidationError(code, f"{where}unknown field {key!r}")


def _text(
    value: Any, where: str, code: str, *, max_length: int = MAX_SHORT_TEXT,
    empty: bool = False, lines: bool = False,
) -> str:
    if not isinstance(value, str):
        raise ValidationError(code, f"{where} must be a string")
    if not value and not empty:
        raise ValidationError(code, f"{where} must not be empty")
    if len(value) > max_length:
        raise ValidationError(code, f"{where} is longer than {max_length} characters")
    if (_CONTROL_BUT_LINES if lines else _CONTROL).search(value):
        raise ValidationError(code, f"{where} must not contain control characters")
    return value


def _object(value: Any, where: str, code: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(code, f"{where} must be a JSON object")
    return value


def _present(obj: dict[str, Any], key: str) -> bool:
    return obj.get(key) is not None


def _auth(value: Any, where: str) -> dict[str, Any]:
    code = "invalid_device"
    obj = _object(value, where, code)
    _check_fields(obj, f"{where}: ", ("type", "name", "secret", "nonce"), code)
    kind = obj.get("type")
    if not isinstance(kind, str) or kind.lower() not in AUTH_TYPES:
        raise ValidationError(
            code, f"{where}.type must be one of {', '.join(AUTH_TYPES)}"
        )
    result: dict[str, Any] = {"type": kind.lower(), "name": None, "secret": None}
    for key in ("name", "secret"):
        if _present(obj, key):
            result[key] = _text(obj[key], f"{where}.{key}", code)
        elif result["type"] != "none":
            raise ValidationError(
                code, f"{where}.{key} is required for type {result['type']}"
            )
    if _present(obj, "nonce"):
        nonce = obj["nonce"]
        if not isinstance(nonce, str):
            raise ValidationError(code, f"{where}.nonce must be a base64 string")
        try:
            raw = base64.b64decode(nonce, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(
                code, f"{where}.nonce is not valid base64"
            ) from None
        if len(raw) > MAX_NONCE_BYTES:
            raise ValidationError(
                code, f"{where}.nonce is longer than {MAX_NONCE_BYTES} bytes"
            )
        result["nonce"] = base64.b64encode(raw).decode("ascii")
    return result


def validate_device(value: Any) -> dict[str, Any]:
    """
    Validate the body of ``PUT /api/v1/devices/{id}``.

    :return: ``server_id``, ``client_auth``, ``server_auth`` (each with
        ``type`` in lower case, ``name`` and ``secret`` (``None`` only for type
        ``none``), and ``nonce`` as canonical base64 only if given) and
        ``msisdn``, ``sip_uri``, ``imsi`` (``None`` when absent).
    """
    code = "invalid_device"
    obj = _object(value, "body", code)
    _check_fields(
        obj,
        "",
        ("server_id", "client_auth", "server_auth", "msisdn", "sip_uri", "imsi", "psk"),
        code,
    )
    for key in ("server_id", "client_auth", "server_auth"):
        if not _present(obj, key):
            raise ValidationError(code, f"{key} is required")
    account: dict[str, Any] = {
        "server_id": _text(obj["server_id"], "server_id", code),
        "client_auth": _auth(obj["client_auth"], "client_auth"),
        "server_auth": _auth(obj["server_auth"], "server_auth"),
        "msisdn": None,
        "sip_uri": None,
        "imsi": None,
    }
    checks = (
        ("msisdn", _MSISDN, "digits with an optional leading '+' (at most 15 digits)"),
        ("sip_uri", _SIP_URI, "a sip: or sips: URI without spaces"),
        ("imsi", _IMSI, "6 to 15 digits"),
    )
    for key, pattern, expected in checks:
        if _present(obj, key):
            text = obj[key]
            if (
                not isinstance(text, str)
                or len(text) > MAX_SHORT_TEXT
                or not pattern.fullmatch(text)
            ):
                raise ValidationError(code, f"{key} must be {expected}")
            account[key] = text
    if _present(obj, "psk"):
        account["psk"] = _device_psk(obj["psk"], code)
    return account


def _device_psk(value: Any, code: str) -> dict[str, Any]:
    """``{"identity", "key"}``: the device's TLS-PSK identity and key (hex, 16-256 bytes)."""
    from dmgateway.bearers.tlspsk import PskError, check_identity, parse_psk

    obj = _object(value, "psk", code)
    _check_fields(obj, "psk.", ("identity", "key"), code)
    identity, key = obj.get("identity"), obj.get("key")
    if not isinstance(identity, str) or not isinstance(key, str):
        raise ValidationError(code, "psk needs identity and key (hex) as strings")
    try:
        return {"identity": check_identity(identity), "key": parse_psk(key)}
    except PskError as e:
        raise ValidationError(code, f"psk: {e}") from None


def validate_dm_uri(value: Any, where: str, *, op: str = "Get") -> str:
    """
    Check a DM tree URI as the target or source of ``op``: relative
    (``./A/B``, ``A/B`` or ``.``), no empty, ``.`` or ``..`` segments, at most
    1024 characters, and an optional ``?list=`` suffix (Get only) or
    ``?prop=NAME`` suffix (Get and Replace).
    """
    code = "invalid_job"
    text = _text(value, where, code, max_length=MAX_URI_LENGTH)
    if _CONTROL_OR_SPACE.search(text):
        raise ValidationError(code, f"{where} must not contain spaces")
    path, sep, query = text.partition("?")
    if sep:
        _check_query(query, where, op)
    if path == ".":
        return text
    if path.startswith("/"):
        raise ValidationError(code, f"{where} must be relative (not start with '/')")
    relative = path[2:] if path.startswith("./") else path
    if not relative:
        raise ValidationError(code, f"{where} has no node name; the root is '.'")
    for segment in relative.split("/"):
        if segment in ("", ".", ".."):
            raise ValidationError(
                code,
                f"{where} must not contain empty, '.' or '..' segments"
                " or end with '/'",
            )
    return text


def _check_query(query: str, where: str, op: str) -> None:
    name, _, attribute = query.partition("=")
    if name == "list" and (attribute in LIST_ATTRIBUTES or _TNDS.fullmatch(attribute)):
        allowed = ("Get",)
    elif name == "prop" and _PROPERTY.fullmatch(attribute):
        allowed = ("Get", "Replace")
    else:
        raise ValidationError(
            "invalid_job",
            f"{where} has an unsupported query; expected ?list=Struct,"
            " ?list=StructData, ?list=TNDS or ?prop=NAME",
        )
    if op not in allowed:
        raise ValidationError(
            "invalid_job", f"{where}: ?{name}= is not valid with {op}"
        )


def _op(value: Any, where: str) -> str:
    if value is None:
        raise ValidationError("invalid_job", f"{where}.op is required")
    if isinstance(value, str):
        for op in OPS:
            if op.lower() == value.lower():
                return op
    raise ValidationError(
        "unknown_op",
        f"{where}.op: unknown op {value!r}; expected one of {', '.join(OPS)}",
    )


def validate_command(value: Any, where: str) -> dict[str, Any]:
    """
    Validate one entry of a job's ``commands``; returns it with ``op`` in
    canonical case and absent/null fields left out.
    """
    code = "invalid_job"
    obj = _object(value, where, code)
    op = _op(obj.get("op"), where)
    fields = _COMMAND_FIELDS[op]
    given = {k: v for k, v in obj.items() if k != "op" and v is not None}
    for key in given:
        if key not in fields:
            raise ValidationError(code, f"{where}: field {key!r} is not valid with {op}")
    if fields[0] not in given:
        raise ValidationError(code, f"{where}.{fields[0]} is required for {op}")
    command: dict[str, Any] = {"op": op}
    if op == "Alert":
        _alert(given, where, command)
        return command
    if op == "Sequence":
        inner = given["commands"]
        if not isinstance(inner, list) or not inner:
            raise ValidationError(code, f"{where}.commands must be a non-empty list")
        command["commands"] = []
        for i, each in enumerate(inner):
            checked = validate_command(each, f"{where}.commands[{i}]")
            if checked["op"] == "Sequence":
                raise ValidationError(code, f"{where}.commands[{i}]: a Sequence cannot hold a Sequence")
            command["commands"].append(checked)
        return command
    command["target"] = validate_dm_uri(given["target"], f"{where}.target", op=op)
    if op == "Copy":
        if "source" not in given:
            raise ValidationError(code, f"{where}.source is required for Copy")
        command["source"] = validate_dm_uri(given["source"], f"{where}.source", op=op)
    if "format" in given:
        if given["format"] not in FORMATS:
            raise ValidationError(
                code, f"{where}.format must be one of {', '.join(FORMATS)}"
            )
        command["format"] = given["format"]
    if "type" in given:
        command["type"] = _text(given["type"], f"{where}.type", code)
    if "data" in given:
        command["data"] = _text(
            given["data"], f"{where}.data", code, max_length=1 << 30, empty=True,
            lines=True,
        )
    _check_data(command, where)
    return command


def _check_data(command: dict[str, Any], where: str) -> None:
    fmt = command.get("format")
    data = command.get("data")
    if fmt == "node" and (command["op"] != "Add" or data):
        raise ValidationError(
            "invalid_job", f"{where}: format node is for Add of an interior node, without data"
        )
    if fmt == "b64" and data:
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(
                "invalid_job", f"{where}.data is not valid base64 (format b64)"
            ) from None


def _alert(given: dict[str, Any], where: str, command: dict[str, Any]) -> None:
    code = "invalid_job"
    alert = given["alert"]
    if isinstance(alert, bool) or not isinstance(alert, int) or alert not in ALERT_CODES:
        raise ValidationError(code, f"{where}.alert must be 1100, 1101, 1102, 1103 or 1104")
    command["alert"] = alert
    if "data" in given:
        command["data"] = _text(
            given["data"], f"{where}.data", code, max_length=4096, empty=True,
            lines=True,
        )
    if "options" in given:
        options = _text(given["options"], f"{where}.options", code, max_length=1024)
        if any("=" not in pair for pair in options.split("&")):
            raise ValidationError(
                code, f"{where}.options must be name=value pairs joined with '&'"
            )
        command["options"] = options
    if alert in CHOICE_ALERTS:
        choices = given.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValidationError(
                code, f"{where}.choices must be a non-empty list for alert {alert}"
            )
        if len(choices) > MAX_CHOICES:
            raise ValidationError(
                code, f"{where}.choices has more than {MAX_CHOICES} entries"
            )
        command["choices"] = [
            _text(c, f"{where}.choices[{i}]", code, max_length=1024)
            for i, c in enumerate(choices)
        ]
    elif "choices" in given:
        raise ValidationError(
            code, f"{where}.choices is only valid with alert 1103 or 1104"
        )


def validate_job(value: Any, max_commands: int = MAX_COMMANDS) -> dict[str, Any]:
    """
    Validate the body of ``POST /api/v1/devices/{id}/jobs``.

    :return: ``commands`` (see :func:`validate_command`), ``atomic`` (default
        ``False``), ``notify`` (default ``"auto"``) and ``ui_mode`` (default 0).
    """
    code = "invalid_job"
    obj = _object(value, "body", code)
    _check_fields(obj, "", ("commands", "atomic", "notify", "ui_mode"), code)
    commands = obj.get("commands")
    if not isinstance(commands, list) or not commands:
        raise ValidationError(code, "commands must be a non-empty list")
    if len(commands) > max_commands:
        raise ValidationError(code, f"commands has more than {max_commands} entries")
    checked = [validate_command(c, f"commands[{i}]") for i, c in enumerate(commands)]
    total = sum(len(c["commands"]) if c["op"] == "Sequence" else 1 for c in checked)
    if total > max_commands:
        raise ValidationError(
            code, f"commands has more than {max_commands} entries (Sequence contents count)")
    job: dict[str, Any] = {
        "commands": checked,
        "atomic": False,
        "notify": "auto",
        "ui_mode": 0,
    }
    if _present(obj, "atomic"):
        if not isinstance(obj["atomic"], bool):
            raise ValidationError(code, "atomic must be true or false")
        job["atomic"] = obj["atomic"]
    if _present(obj, "notify"):
        if obj["notify"] not in NOTIFY:
            raise ValidationError(code, f"notify must be one of {', '.join(NOTIFY)}")
        job["notify"] = obj["notify"]
    if _present(obj, "ui_mode"):
        mode = obj["ui_mode"]
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 3:
            raise ValidationError(code, "ui_mode must be an integer from 0 to 3")
        job["ui_mode"] = mode
    if job["atomic"]:
        for i, command in enumerate(job["commands"]):
            if command["op"] in _NOT_IN_ATOMIC:
                raise ValidationError(
                    code,
                    f"commands[{i}]: {command['op']} is not allowed inside an atomic job",
                )
    return job
