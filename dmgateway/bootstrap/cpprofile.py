"""The CP-profile bootstrap: an OMA Client Provisioning document with a w7 APPLICATION
(dm-bootstrap-cp §5).

::

    doc = build_document(account, napdef={"NAPID": "NAP1", "BEARER": "GSM-GPRS",
                                          "NAP-ADDRESS": "internet.example",
                                          "NAP-ADDRTYPE": "APN"})
    wbxml = prov.encode_wbxml(doc)

The w7 characteristic carries APPID, PROVIDER-ID (the server id), NAME,
TO-NAPID / TO-PROXY (when a NAPDEF / PXLOGICAL is given), INIT, APPADDR
(ADDR = the server URL, ADDRTYPE URI, PORT/PORTNBR when given) and one
APPAUTH per direction: APPSRV for the client's credentials (CLCRED in the
tree), CLIENT for the server's (SRVCRED), each with AAUTHTYPE, AAUTHNAME,
AAUTHSECRET and AAUTHDATA (the nonce in base64).

NAPDEF and PXLOGICAL come from plain objects: a text value is a parm, a
``None`` value a parm without value, an object a sub-characteristic of
that type and a list of objects several.  :func:`account_from_document`
reads a w7 APPLICATION back into a :class:`~.dmprofile.DMAccount` (the
reverse mapping, for ``dmgw decode``).
"""

import base64
import binascii
import re

from ..codec import prov
from .dmprofile import AAUTH_TYPES, AuthEntry, DMAccount

__all__ = ["CPError", "account_from_document", "build_document", "characteristic"]

_NAME = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")
#: AAUTHLEVEL -> the direction it describes
_LEVELS = {"APPSRV": "client", "CLIENT": "server"}
_SCHEMES = {v: k for k, v in AAUTH_TYPES.items()}
_SCHEMES.update({"HTTP-DIGEST": "md5", "HTTP-BASIC": "basic", "MD5": "md5"})
MAX_PARMS = 64
MAX_REPEATS = 16  # sub-characteristics of one type (PXPHYSICAL ...)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


class CPError(ValueError):
    """A NAPDEF / PXLOGICAL object that is not a characteristic, or a document without w7."""


def characteristic(ctype, values, *, path=None, depth=0):
    """A :class:`~dmgateway.codec.prov.Characteristic` of type ``ctype`` from a plain object."""
    path = path or ctype.lower()
    if not isinstance(values, dict):
        raise CPError("%s must be an object" % (path,))
    if depth > 3:
        raise CPError("%s is nested too deeply" % (path,))
    if len(values) > MAX_PARMS:
        raise CPError("%s has more than %d entries" % (path, MAX_PARMS))
    result = prov.Characteristic(ctype)
    for name, value in values.items():
        where = "%s.%s" % (path, name)
        if not isinstance(name, str) or not _NAME.match(name):
            raise CPError("%s: names are upper-case letters, digits and dashes" % (where,))
        if value is None or isinstance(value, str):
            if isinstance(value, str) and (not value or len(value) > 1024 or _CONTROL.search(value)):
                raise CPError("%s: a value is 1 to 1024 characters, no control characters" % (where,))
            result.parms.append(prov.Parm(name, value))
        elif isinstance(value, dict):
            result.characteristics.append(characteristic(name, value, path=where, depth=depth + 1))
        elif isinstance(value, list) and 0 < len(value) <= MAX_REPEATS \
                and all(isinstance(v, dict) for v in value):
            result.characteristics += [characteristic(name, v, path="%s[%d]" % (where, i),
                                                      depth=depth + 1)
                                       for i, v in enumerate(value)]
        else:
            raise CPError("%s: a value is text, null, an object or a list of 1 to %d objects"
                          % (where, MAX_REPEATS))
    return result


def _appauth(level, entry):
    auth = prov.Characteristic("APPAUTH", [prov.Parm("AAUTHLEVEL", level),
                                           prov.Parm("AAUTHTYPE", AAUTH_TYPES[entry.scheme]),
                                           prov.Parm("AAUTHNAME", entry.name),
                                           prov.Parm("AAUTHSECRET", entry.secret)])
    if entry.nonce:
        auth.parms.append(prov.Parm("AAUTHDATA", base64.b64encode(entry.nonce).decode("ascii")))
    return auth


def build_document(account, *, napdef=None, proxy=None):
    """The :class:`~dmgateway.codec.prov.ProvDoc` bootstrapping ``account``.

    ``napdef`` / ``proxy`` are plain objects (see the module text); the w7
    refers to their NAPID / PROXY-ID.
    """
    doc = prov.ProvDoc()
    refs = []
    if proxy is not None:
        pxlogical = characteristic("PXLOGICAL", proxy, path="proxy")
        if not pxlogical.get("PROXY-ID"):
            raise CPError("proxy needs a PROXY-ID")
        doc.characteristics.append(pxlogical)
        refs.append(("TO-PROXY", pxlogical.get("PROXY-ID")))
    if napdef is not None:
        nap = characteristic("NAPDEF", napdef, path="napdef")
        if not nap.get("NAPID"):
            raise CPError("napdef needs a NAPID")
        doc.characteristics.append(nap)
        if proxy is None:
            refs.append(("TO-NAPID", nap.get("NAPID")))
    app = prov.Characteristic("APPLICATION", [prov.Parm("APPID", "w7"),
                                              prov.Parm("PROVIDER-ID", account.server_id)])
    if account.display_name:
        app.parms.append(prov.Parm("NAME", account.display_name))
    app.parms += [prov.Parm(name, value) for name, value in refs]
    app.parms.append(prov.Parm("INIT"))
    addr = prov.Characteristic("APPADDR", [prov.Parm("ADDR", account.address),
                                           prov.Parm("ADDRTYPE", "URI")])
    if account.port is not None:
        addr.characteristics.append(prov.Characteristic("PORT", [prov.Parm("PORTNBR",
                                                                           str(account.port))]))
    app.characteristics.append(addr)
    for level, entry in (("APPSRV", account.client), ("CLIENT", account.server)):
        if entry.scheme in AAUTH_TYPES:
            app.characteristics.append(_appauth(level, entry))
    doc.characteristics.append(app)
    return doc


def _nonce(text):
    if not text:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode("utf-8")


def account_from_document(doc, device_id=""):
    """The :class:`~.dmprofile.DMAccount` of the first w7 APPLICATION of ``doc`` (§5.3 mapping)."""
    apps = prov.find_w7(doc)
    if not apps:
        raise CPError("the document has no w7 APPLICATION")
    app = apps[0]
    addrs = app.children("APPADDR")
    address = addrs[0].get("ADDR") if addrs else app.get("ADDR")
    ports = [p.get("PORTNBR") for p in addrs[0].children("PORT")] if addrs else []
    creds = {"client": AuthEntry("none", "", ""), "server": AuthEntry("none", "", "")}
    for auth in app.children("APPAUTH"):
        side = _LEVELS.get(auth.get("AAUTHLEVEL", ""))
        if side is None:
            continue
        creds[side] = AuthEntry(_SCHEMES.get((auth.get("AAUTHTYPE") or "").upper(), "none"),
                                auth.get("AAUTHNAME") or "", auth.get("AAUTHSECRET") or "",
                                _nonce(auth.get("AAUTHDATA")))
    refs = [p.value for p in app.parms if p.name in ("TO-PROXY", "TO-NAPID") and p.value]
    return DMAccount(server_id=app.get("PROVIDER-ID") or "", address=address or "",
                     device_id=device_id, client=creds["client"], server=creds["server"],
                     display_name=app.get("NAME"),
                     port=int(ports[0]) if ports and ports[0] and ports[0].isdigit() else None,
                     pref_con_ref=refs[0] if refs else None)
