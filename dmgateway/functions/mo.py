"""
The facts of the FUMO, SCOMO and LAWMO management objects: MO ids, Generic
Alert types, result codes and state values.

A result code maps to an :class:`Outcome`: whether the operation succeeded
and what the code means.  Vendor ranges are success or failure by their
range; a code in no table is a failure described as unknown.  Operator
profiles that give vendor codes other meanings pass their own table
(``extra``), which wins over the built-in one.
"""

import re
from dataclasses import dataclass

FUMO, SCOMO, LAWMO = "fumo", "scomo", "lawmo"
FUNCTIONS = (FUMO, SCOMO, LAWMO)

MO_IDS = {
    FUMO: "urn:oma:mo:oma-fumo:1.0",
    SCOMO: "urn:oma:mo:oma-scomo:1.0",
    LAWMO: "urn:oma:mo:oma-lawmo:1.0",
}

FUMO_ALERT_PREFIX = "org.openmobilealliance.dm.firmwareupdate."
FUMO_ALERT_DOWNLOAD = FUMO_ALERT_PREFIX + "download"
FUMO_ALERT_UPDATE = FUMO_ALERT_PREFIX + "update"
FUMO_ALERT_DOWNLOAD_AND_UPDATE = FUMO_ALERT_PREFIX + "downloadandupdate"
FUMO_ALERT_DEVICE_REQUEST = FUMO_ALERT_PREFIX + "devicerequest"
FUMO_ALERT_USER_REQUEST = FUMO_ALERT_PREFIX + "userrequest"
SCOMO_ALERT = "urn:oma:at:scomo:1.0:OperationComplete"
LAWMO_ALERT = "urn:oma:at:lawmo:1.0:OperationComplete"

#: Completion alert type -> function.
COMPLETION_TYPES = {
    FUMO_ALERT_DOWNLOAD: FUMO,
    FUMO_ALERT_UPDATE: FUMO,
    FUMO_ALERT_DOWNLOAD_AND_UPDATE: FUMO,
    SCOMO_ALERT: SCOMO,
    LAWMO_ALERT: LAWMO,
}
#: Device-initiated FUMO alert types (no Correlator).
REQUEST_TYPES = (FUMO_ALERT_DEVICE_REQUEST, FUMO_ALERT_USER_REQUEST)

FUMO_CODES = {
    200: "successful",
    400: "management client error",
    401: "user cancelled",
    402: "corrupted firmware update package",
    403: "package / device mismatch",
    404: "failed package validation",
    405: "package not acceptable",
    406: "alternate download authentication failure",
    407: "alternate download request time-out",
    408: "not implemented",
    409: "undefined error",
    410: "firmware update failed",
    411: "malformed or bad URL",
    412: "alternate download server unavailable",
    500: "alternate download server error",
    501: "download failed: device out of memory",
    502: "update failed: device out of memory",
    503: "download failed: network error",
}
#: (low, high, success, meaning) for vendor-specified ranges.
FUMO_RANGES = (
    (250, 299, True, "successful (vendor-specified)"),
    (450, 499, False, "client error (vendor-specified)"),
    (550, 599, False, "alternate download server error (vendor-specified)"),
)

SCOMO_CODES = {
    1200: "successful",
    1400: "client error",
    1401: "user cancelled",
    1402: "download failed",
    1403: "alternate download authentication failure",
    1404: "download failed: out of memory",
    1405: "install failed",
    1406: "install failed: out of memory",
    1407: "failed package validation",
    1408: "remove failed",
    1409: "activate failed",
    1410: "deactivate failed",
    1411: "not implemented",
    1412: "undefined error",
    1413: "rejected: unsupported environment type",
    1500: "alternate download server error",
    1501: "alternate download server unavailable",
}
SCOMO_RANGES = (
    (1250, 1299, True, "successful (vendor-specified)"),
    (1450, 1499, False, "client error (vendor-specified)"),
    (1550, 1599, False, "download server error (vendor-specified)"),
)

LAWMO_CODES = {
    1200: "operation succeeded",
    1201: "wipe of data succeeded",
    1202: "wipe of data and list items succeeded",
    1400: "client error",
    1401: "user cancelled",
    1402: "fully lock failed",
    1403: "partially lock failed",
    1404: "unlock failed",
    1405: "wipe failed",
    1406: "wipe not performed",
}
LAWMO_RANGES = (
    (1250, 1299, True, "successful (vendor-specified)"),
    (1450, 1499, False, "client error (vendor-specified)"),
)

_TABLES = {
    FUMO: (FUMO_CODES, FUMO_RANGES),
    SCOMO: (SCOMO_CODES, SCOMO_RANGES),
    LAWMO: (LAWMO_CODES, LAWMO_RANGES),
}

FUMO_STATES = {
    10: "idle",
    20: "download failed",
    30: "download progressing",
    40: "download complete",
    50: "ready to update",
    60: "update progressing",
    70: "update failed / have data",
    80: "update failed / no data",
    90: "update successful / have data",
    100: "update successful / no data",
}
FUMO_TERMINAL_STATES = (20, 70, 80, 90, 100)
SCOMO_DEPLOYED_STATES = {10: "inactive", 20: "active"}
LAWMO_STATES = {10: "fully locked", 20: "partially locked", 30: "unlocked"}


@dataclass(frozen=True)
class Outcome:
    """What a result code says: ``success`` and a human ``meaning``."""

    code: int
    success: bool
    meaning: str


def outcome_for(function, code, extra=None):
    """
    The :class:`Outcome` of result ``code`` for ``function``.

    ``extra`` is an operator table ``{code: (success, meaning)}`` that
    overrides the built-in one.
    """
    if function not in _TABLES:
        raise ValueError("unknown function %r" % (function,))
    if extra and code in extra:
        success, meaning = extra[code]
        return Outcome(code, bool(success), meaning)
    codes, ranges = _TABLES[function]
    base = 200 if function == FUMO else 1200
    if code in codes:
        success = code == base or (function == LAWMO and code in (1201, 1202))
        return Outcome(code, success, codes[code])
    for low, high, success, meaning in ranges:
        if low <= code <= high:
            return Outcome(code, success, meaning)
    return Outcome(code, False, "unknown result code")


_RULE = re.compile(r"^(fumo|scomo|lawmo):(\d{1,5})(?:-(\d{1,5}))?=(ok|fail)(?::([\x21-\x7e]{1,64}))?$")
MAX_RULE_SPAN = 1000


def parse_code_rule(word):
    """
    One operator result-code rule ``FUNCTION:CODE[-CODE]=ok|fail[:meaning]``
    (``_`` in the meaning reads as a space), e.g. ``fumo:403=fail:deferred``
    or ``lawmo:1250-1299=ok``; returns ``(function, low, high, success,
    meaning)``, ValueError for a bad one.
    """
    match = _RULE.match(word or "")
    if match is None:
        raise ValueError("bad result-code rule %r (FUNCTION:CODE[-CODE]=ok|fail[:meaning])" % (word,))
    function, low, high, verdict, meaning = match.groups()
    low = int(low)
    high = int(high) if high is not None else low
    if high < low or high - low >= MAX_RULE_SPAN:
        raise ValueError("bad code range in %r (at most %d codes)" % (word, MAX_RULE_SPAN))
    meaning = meaning.replace("_", " ") if meaning else ("successful (operator table)" if verdict == "ok"
                                                          else "failed (operator table)")
    return function, low, high, verdict == "ok", meaning


def code_tables(rules):
    """``{function: {code: (success, meaning)}}`` of parsed rules (later rules win)."""
    tables = {}
    for function, low, high, success, meaning in rules:
        table = tables.setdefault(function, {})
        for code in range(low, high + 1):
            table[code] = (success, meaning)
    return tables


def state_meaning(function, value):
    """The name of a State value, or "vendor-specific" for one not in the table."""
    table = {FUMO: FUMO_STATES, LAWMO: LAWMO_STATES, SCOMO: SCOMO_DEPLOYED_STATES}[function]
    return table.get(value, "vendor-specific")
