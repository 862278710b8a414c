"""
A device's Generic Alert (1226) read as the completion of an operation.

The input is the payload the engine raises for each Item of a client alert
(:func:`dmgateway.dm.commands.event_payload`).  Tolerated deviations (seen
in real clients): a ``Reversed-Domain-Name:`` prefix on the Type, any
Format, SCOMO Data as an integer instead of the ResultCode/Identifier
fragment, a Source naming the Exec'd node instead of the FUMO ``<x>``.
"""

import re
from dataclasses import dataclass
from typing import Optional

from . import mo

__all__ = ["Completion", "parse_completion", "normalise_source"]

_PREFIX = "reversed-domain-name:"
_RESULT_CODE = re.compile(r"<ResultCode>\s*(\d{1,6})\s*</ResultCode>")
_IDENTIFIER = re.compile(r"<Identifier>([^<]{0,256})</Identifier>")
_FUMO_SUFFIXES = ("/DownloadAndUpdate", "/Download", "/Update")


@dataclass(frozen=True)
class Completion:
    """
    One completion report.

    ``function`` is None and ``request`` True for a device-initiated FUMO
    request (devicerequest / userrequest); ``code`` is None when the Data
    held no result code.
    """

    function: Optional[str]
    alert_type: str
    correlator: Optional[str]
    source: Optional[str]
    target: Optional[str]
    code: Optional[int]
    identifier: Optional[str] = None
    request: bool = False


def _alert_type(meta_type):
    if not isinstance(meta_type, str):
        return None
    value = meta_type.strip()
    if value.lower().startswith(_PREFIX):
        value = value[len(_PREFIX):].strip()
    return value


def normalise_source(uri):
    """
    The Source with a trailing FUMO operation node removed, in the
    ``./``-rooted form (``FUMO/fw1/`` and ``./FUMO/fw1`` name one node).
    """
    if not isinstance(uri, str):
        return None
    uri = uri.strip().rstrip("/")
    if not uri:
        return None
    if not uri.startswith("./"):
        uri = "./" + uri.lstrip("/")
    for suffix in _FUMO_SUFFIXES:
        if uri.endswith(suffix):
            return uri[: -len(suffix)]
    return uri


def _code(data, function):
    if not isinstance(data, str):
        return None, None
    text = data.strip()
    if re.fullmatch(r"\d{1,6}", text):
        return int(text), None
    if function == mo.SCOMO:
        match = _RESULT_CODE.search(text)
        if match:
            ident = _IDENTIFIER.search(text)
            return int(match.group(1)), ident.group(1).strip() if ident else None
    return None, None


def parse_completion(payload):
    """
    The :class:`Completion` in a generic-alert payload, or None when the
    alert is not a FUMO/SCOMO/LAWMO report.
    """
    if not isinstance(payload, dict) or payload.get("alert") != 1226:
        return None
    alert_type = _alert_type(payload.get("meta_type"))
    if alert_type is None:
        return None
    correlator = payload.get("correlator")
    if not isinstance(correlator, str) or not correlator.strip():
        correlator = None
    else:
        correlator = correlator.strip()
    if alert_type in mo.REQUEST_TYPES:
        return Completion(
            function=None,
            alert_type=alert_type,
            correlator=None,
            source=normalise_source(payload.get("source")),
            target=None,
            code=None,
            request=True,
        )
    function = mo.COMPLETION_TYPES.get(alert_type)
    if function is None:
        return None
    code, identifier = _code(payload.get("data"), function)
    return Completion(
        function=function,
        alert_type=alert_type,
        correlator=correlator,
        source=normalise_source(payload.get("source")),
        target=payload.get("target") if isinstance(payload.get("target"), str) else None,
        code=code,
        identifier=identifier,
    )
