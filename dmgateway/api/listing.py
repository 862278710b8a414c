"""
Query parameters of the inventory routes: the filters of
``GET /api/v1/devices`` and the ``history`` of ``DELETE /api/v1/devices/{id}``.
Unknown parameters are refused, so a misspelt filter never lists everything.
"""

from __future__ import annotations

import datetime

from dmgateway.api.validation import ValidationError, parse_int_param, query_value
from dmgateway.store.inventory import DeviceFilter

DEFAULT_DEVICE_PAGE = 100
MAX_DEVICE_PAGE = 1000
MAX_FILTER_TEXT = 256

_TEXT_FILTERS = {"server_id": "server_id", "man": "man", "mod": "mod", "fwv": "fwv"}
_BOOL_FILTERS = {"has_msisdn": "has_msisdn", "locked_out": "locked", "never_seen": "never_seen"}
_TIME_FILTERS = {"last_session_after": "session_after", "last_session_before": "session_before"}
DEVICE_PARAMS = frozenset(
    [*_TEXT_FILTERS, *_BOOL_FILTERS, *_TIME_FILTERS, "cursor", "limit"]
)


def _only(args: dict[bytes, list[bytes]], allowed: frozenset) -> None:
    for raw in args:
        name = raw.decode("utf-8", "replace")
        if name not in allowed:
            raise ValidationError(
                "invalid_parameter",
                f"unknown parameter {name[:64]!r} (known: {', '.join(sorted(allowed))})",
            )


def parse_bool(value: str, name: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValidationError("invalid_parameter", f"{name}: true or false, not {value[:32]!r}")


def parse_time(value: str, name: str) -> float:
    """An ISO 8601 time (UTC if no offset) as epoch seconds."""
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            "invalid_parameter", f"{name}: an ISO 8601 time such as 2026-01-31T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def parse_device_query(args: dict[bytes, list[bytes]]) -> tuple[DeviceFilter, int, str | None]:
    """The filter, page size and cursor of ``GET /api/v1/devices``."""
    _only(args, DEVICE_PARAMS)
    fields: dict[str, object] = {}
    for name, field in _TEXT_FILTERS.items():
        value = query_value(args, name)
        if value is not None:
            if not value or len(value) > MAX_FILTER_TEXT:
                raise ValidationError(
                    "invalid_parameter", f"{name}: 1 to {MAX_FILTER_TEXT} characters"
                )
            fields[field] = value
    for name, field in _BOOL_FILTERS.items():
        value = query_value(args, name)
        if value is not None:
            fields[field] = parse_bool(value, name)
    for name, field in _TIME_FILTERS.items():
        value = query_value(args, name)
        if value is not None:
            fields[field] = parse_time(value, name)
    limit = parse_int_param(
        query_value(args, "limit"), "limit", DEFAULT_DEVICE_PAGE, 1, MAX_DEVICE_PAGE
    )
    cursor = query_value(args, "cursor")
    if cursor is not None and not cursor:
        raise ValidationError("invalid_parameter", "cursor: empty")
    return DeviceFilter(**fields), limit, cursor


def parse_delete_query(args: dict[bytes, list[bytes]]) -> bool:
    """Whether ``DELETE /api/v1/devices/{id}?history=keep|purge`` purges the history."""
    _only(args, frozenset(["history"]))
    value = query_value(args, "history") or "keep"
    if value not in ("keep", "purge"):
        raise ValidationError("invalid_parameter", f"history: keep or purge, not {value[:32]!r}")
    return value == "purge"
