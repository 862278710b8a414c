"""The delegation messages (``application/vnd.dm.delegation+xml``, version 1).

The OMA DM Server Delegation Protocol's schema could not be obtained, so
this is the project's own definition (docs/delegation.md and
``delegation-1.xsd``, packaged next to this module).  Three documents in the
namespace ``urn:dmgateway:delegation:1``:

* :class:`Request` -- the delegating server asks the target to take devices;
* :class:`Response` -- accepted (with one :class:`Account` per device: what
  the delegating server installs on the device as the target's DMAcc) or
  rejected with a :class:`Reason`;
* :class:`Notification` -- ``device-ready`` (proceed), ``completed``,
  ``failed``, ``revoked``, answered with a :class:`Response`.

:func:`parse` accepts only schema-valid documents of at most
:data:`MAX_SIZE` bytes (no DTD, no entities, no network) and raises
:class:`MessageError` otherwise; the serializers write what :func:`parse`
reads back.  Account secrets travel only over the mutually authenticated
TLS link between the two servers and are never logged.
"""

import os
import re
from xml.parsers import expat
from dataclasses import dataclass, field
from datetime import datetime, timezone

from lxml import etree

__all__ = [
    "CONTENT_TYPE",
    "NAMESPACE",
    "VERSION",
    "MAX_SIZE",
    "MessageError",
    "Device",
    "Auth",
    "Account",
    "Reason",
    "Request",
    "Response",
    "Notification",
    "parse",
    "serialize",
    "schema",
]

CONTENT_TYPE = "application/vnd.dm.delegation+xml"
NAMESPACE = "urn:dmgateway:delegation:1"
VERSION = "1.0"
MAX_SIZE = 262144
NOTIFICATION_STATES = ("device-ready", "completed", "failed", "revoked")
_SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "delegation-1.xsd")
_SCHEMA = None
_N = "{%s}" % (NAMESPACE,)


class MessageError(ValueError):
    """A delegation document that is not well-formed or not schema-valid."""

    code = "invalid_message"


@dataclass(frozen=True)
class Reason:
    code: str
    text: str = ""


@dataclass(frozen=True)
class Device:
    """A delegated device; ``msisdn``/``sip_uri`` let the target wake it (DM-1)."""

    dev_id: str
    man: str = ""
    mod: str = ""
    msisdn: str = ""
    sip_uri: str = ""


@dataclass(frozen=True)
class Auth:
    type: str
    name: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Account:
    dev_id: str
    server_id: str
    app_addr: str
    client: Auth
    server: Auth


@dataclass(frozen=True)
class Request:
    transaction_id: str
    from_server: str
    to_server: str
    devices: tuple
    scope: tuple
    extent: str  # full | partial
    duration: str  # temporary | permanent
    until: float | None = None  # epoch seconds


@dataclass(frozen=True)
class Response:
    transaction_id: str
    accepted: bool
    reason: Reason | None = None
    accounts: tuple = ()


@dataclass(frozen=True)
class Notification:
    transaction_id: str
    from_server: str
    state: str
    reason: Reason | None = None


def schema():
    """The compiled schema (loaded once)."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = etree.XMLSchema(etree.parse(_SCHEMA_PATH))
    return _SCHEMA


_VOCABULARY = None  # every name the schema declares (elements, attributes, types)


def _vocabulary():
    global _VOCABULARY
    if _VOCABULARY is None:
        with open(_SCHEMA_PATH, encoding="utf-8") as f:
            _VOCABULARY = frozenset(re.findall(r'name="([^"]+)"', f.read()))
    return _VOCABULARY


def _check_names(body):
    """Refuse a message naming an element or attribute the schema does not know.

    libxml2 keeps every name it has parsed for the life of the process: a
    peer inventing names would grow our memory with each message.  This
    first pass runs on expat, whose names die with its parser, so only the
    schema's own (finite) names ever reach lxml.
    """
    known = _vocabulary()
    parser = expat.ParserCreate(namespace_separator=" ")

    def start(name, attrs):
        for qualified in (name, *attrs):
            uri, _, local = qualified.rpartition(" ")
            if local not in known or uri not in ("", NAMESPACE):
                raise MessageError("does not match delegation schema 1: unknown name %r" % (local[:64],))

    parser.StartElementHandler = start
    try:
        parser.Parse(bytes(body), True)
    except expat.ExpatError as e:
        raise MessageError("not well-formed XML: %s" % (e,)) from None


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          dtd_validation=False, huge_tree=False, remove_comments=True)


def parse(body):
    """The :class:`Request`, :class:`Response` or :class:`Notification` in ``body``."""
    if not isinstance(body, (bytes, bytearray)):
        raise MessageError("a delegation message is bytes")
    if len(body) > MAX_SIZE:
        raise MessageError("message larger than %d bytes" % (MAX_SIZE,))
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise MessageError("DTDs and entities are not allowed")
    _check_names(body)
    try:
        root = etree.fromstring(bytes(body), _PARSER)
    except etree.XMLSyntaxError as e:
        raise MessageError("not well-formed XML: %s" % (e,)) from None
    checker = schema()
    if not checker.validate(root):
        error = checker.error_log.last_error
        raise MessageError("does not match delegation schema 1: line %s: %s"
                           % (error.line, error.message) if error else "invalid")
    tag = root.tag[len(_N):]
    if tag == "DelegationRequest":
        return _request(root)
    if tag == "DelegationResponse":
        return _response(root)
    return _notification(root)


def _text(element, name, default=""):
    child = element.find(_N + name)
    return default if child is None or child.text is None else child.text


def _reason(element):
    child = element.find(_N + "Reason")
    if child is None:
        return None
    return Reason(child.get("code"), child.text or "")


def _request(root):
    until = root.find(_N + "Until")
    return Request(
        transaction_id=_text(root, "TransactionId"),
        from_server=_text(root, "FromServerID"),
        to_server=_text(root, "ToServerID"),
        devices=tuple(Device(_text(d, "DevId"), _text(d, "Man"), _text(d, "Mod"),
                             _text(d, "Msisdn"), _text(d, "SipURI"))
                      for d in root.iter(_N + "Device")),
        scope=tuple(u.text for u in root.find(_N + "Scope").iter(_N + "URI")),
        extent=root.find(_N + "Type").get("extent"),
        duration=root.find(_N + "Type").get("duration"),
        until=None if until is None else _epoch(until.text),
    )


def _auth(element):
    return Auth(_text(element, "Type"), _text(element, "Name"), _text(element, "Secret"))


def _response(root):
    return Response(
        transaction_id=_text(root, "TransactionId"),
        accepted=_text(root, "Result") == "accepted",
        reason=_reason(root),
        accounts=tuple(Account(_text(a, "DevId"), _text(a, "ServerID"), _text(a, "AppAddr"),
                               _auth(a.find(_N + "ClientAuth")), _auth(a.find(_N + "ServerAuth")))
                       for a in root.iter(_N + "Account")),
    )


def _notification(root):
    return Notification(_text(root, "TransactionId"), _text(root, "FromServerID"),
                        _text(root, "State"), _reason(root))


def _epoch(text):
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise MessageError("Until must name its time zone")
    return stamp.timestamp()


def iso(seconds):
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _el(parent, name, text=None, **attrs):
    child = etree.SubElement(parent, _N + name, **attrs)
    if text is not None:
        child.text = text
    return child


def _root(name):
    return etree.Element(_N + name, nsmap={None: NAMESPACE}, version=VERSION)


def _add_reason(root, reason):
    if reason is not None:
        _el(root, "Reason", reason.text[:256], code=reason.code)


def serialize(message):
    """The bytes of ``message``; raises :class:`MessageError` if it would not validate."""
    if isinstance(message, Request):
        root = _root("DelegationRequest")
        _el(root, "TransactionId", message.transaction_id)
        _el(root, "FromServerID", message.from_server)
        _el(root, "ToServerID", message.to_server)
        for device in message.devices:
            d = _el(root, "Device")
            _el(d, "DevId", device.dev_id)
            if device.man:
                _el(d, "Man", device.man)
            if device.mod:
                _el(d, "Mod", device.mod)
            if device.msisdn:
                _el(d, "Msisdn", device.msisdn)
            if device.sip_uri:
                _el(d, "SipURI", device.sip_uri)
        scope = _el(root, "Scope")
        for uri in message.scope:
            _el(scope, "URI", uri)
        _el(root, "Type", extent=message.extent, duration=message.duration)
        if message.until is not None:
            _el(root, "Until", iso(message.until))
    elif isinstance(message, Response):
        root = _root("DelegationResponse")
        _el(root, "TransactionId", message.transaction_id)
        _el(root, "Result", "accepted" if message.accepted else "rejected")
        _add_reason(root, message.reason)
        for account in message.accounts:
            a = _el(root, "Account")
            _el(a, "DevId", account.dev_id)
            _el(a, "ServerID", account.server_id)
            _el(a, "AppAddr", account.app_addr)
            for name, auth in (("ClientAuth", account.client), ("ServerAuth", account.server)):
                e = _el(a, name)
                _el(e, "Type", auth.type)
                _el(e, "Name", auth.name)
                _el(e, "Secret", auth.secret)
    elif isinstance(message, Notification):
        root = _root("DelegationNotification")
        _el(root, "TransactionId", message.transaction_id)
        _el(root, "FromServerID", message.from_server)
        _el(root, "State", message.state)
        _add_reason(root, message.reason)
    else:
        raise TypeError("not a delegation message: %r" % (message,))
    checker = schema()
    if not checker.validate(root):
        raise MessageError("message does not match delegation schema 1: %s"
                           % (checker.error_log.last_error.message,))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


_URI_SEGMENT = re.compile(r"[^/?\s]+")


def check_scope(uri):
    """``uri`` normalised (no trailing slash) if it names a tree node, else :class:`MessageError`."""
    if not isinstance(uri, str):
        raise MessageError("a subtree is a string")
    uri = uri.rstrip("/") or "."
    if uri == ".":
        return uri
    if not uri.startswith("./") or len(uri) > 255 or not all(
            _URI_SEGMENT.fullmatch(s) for s in uri[2:].split("/")):
        raise MessageError("bad subtree %r (like ./Vendor/X)" % (uri,))
    if any(s in (".", "..") for s in uri[2:].split("/")):
        raise MessageError("bad subtree %r" % (uri,))
    return uri
