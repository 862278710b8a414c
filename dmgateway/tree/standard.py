"""The standard MOs (dm-tree-objects §6-7) and bootstrap into the tree.

:func:`standard_tree` builds a tree with DevInfo, DevDetail (whose
``URI/MaxDepth|MaxTotLen|MaxSegLen`` reflect the tree's limits), an empty
``./DMAcc`` and ``./Inbox``; :func:`add_dmacc` writes one DM 1.2 account;
:func:`apply_cp_w7` maps the w7 APPLICATION characteristics of a CP document
to ``./DMAcc/<X>`` (dm-bootstrap-cp §5.3) and :func:`apply_dm_bootstrap`
applies a bootstrap TNDS.  All of it runs as the device (no ACL checks).
"""

import base64
import binascii

from ..codec.prov import find_w7
from .acl import format_acl
from .ddf import DDFNode
from .tnds import import_tnds
from .tree import NOT_ALLOWED, NOT_SUPPORTED, TNDS_TYPES, ManagementTree, TreeError
from .uri import URI, UriLimits, parse_uri

__all__ = [
    "MO_DMACC", "MO_DMACC_LEGACY", "MO_DEVINFO", "MO_DEVDETAIL", "MO_INBOX",
    "DMACC_DDF", "AAUTH_LEVELS", "standard_tree", "install_inbox", "add_dmacc",
    "find_accounts", "apply_cp_w7", "apply_dm_bootstrap",
]

MO_DMACC = "urn:oma:mo:oma-dm-dmacc:1.0"
MO_DMACC_LEGACY = "org.openmobilealliance/1.0/w7"
MO_DEVINFO = "urn:oma:mo:oma-dm-devinfo:1.0"
MO_DEVDETAIL = "urn:oma:mo:oma-dm-devdetail:1.0"
MO_INBOX = "urn:oma:mo:oma-dm-inbox:1.0"
DMACC_IDS = (MO_DMACC, MO_DMACC_LEGACY)

# CP APPAUTH/AAUTHLEVEL -> DMAcc AAuthLevel (dm-bootstrap-cp §5.2)
AAUTH_LEVELS = {"APPSRV": "CLCRED", "CLIENT": "SRVCRED", "OBEX": "OBEX"}
_ADDR_TYPES = {"IPV4": "IPv4", "IPV6": "IPv6"}

_MANAGE = frozenset(("Add", "Delete", "Get", "Replace"))
_SECRET = frozenset(("Add", "Delete", "Replace"))  # never readable


def _leaf(name, access=_MANAGE, format="chr", occurrence="One"):
    return DDFNode(name, access, format, "text/plain", occurrence=(occurrence, None))


def _interior(name, children, occurrence="One", access=_MANAGE, mo_id=None):
    return DDFNode(name, access, "node", None, mo_id, occurrence=(occurrence, None),
                   children=list(children))


def _dmacc_ddf():
    """The DM 1.2 DMAcc ``<X>`` description (StdObj 1.2 plus the DDF's management rights)."""
    return _interior(None, [
        _leaf("AppID"), _leaf("ServerID"), _leaf("Name", occurrence="ZeroOrOne"),
        _leaf("PrefConRef", occurrence="ZeroOrOne"),
        _interior("ToConRef", [_interior(None, [_leaf("ConRef")], "OneOrMore")], "ZeroOrOne"),
        _interior("AppAddr", [_interior(None, [
            _leaf("Addr"), _leaf("AddrType"),
            _interior("Port", [_interior(None, [_leaf("PortNbr")], "OneOrMore")], "ZeroOrOne"),
        ], "OneOrMore")]),
        _leaf("AAuthPref", occurrence="ZeroOrOne"),
        _interior("AppAuth", [_interior(None, [
            _leaf("AAuthLevel"), _leaf("AAuthType"),
            _leaf("AAuthName", occurrence="ZeroOrOne"),
            _leaf("AAuthSecret", _SECRET, occurrence="ZeroOrOne"),
            _leaf("AAuthData", _SECRET, "bin", "ZeroOrOne"),
        ], "OneOrMore")], "ZeroOrOne"),
        _interior("Ext", [_interior(None, [], "ZeroOrMore")], "ZeroOrOne"),
    ], "OneOrMore", mo_id=MO_DMACC)


DMACC_DDF = _dmacc_ddf()

DEFAULT_DEVINFO = {"DevId": "IMEI:000000000000000", "Man": "dmgateway", "Mod": "dmgw-sim",
                   "DmV": "1.2", "Lang": "en-US"}
DEFAULT_DEVDETAIL = {"DevTyp": "phone", "OEM": "dmgateway", "FwV": "1.0", "SwV": "1.0",
                     "HwV": "1.0"}


def standard_tree(devinfo=None, devdetail=None, *, limits=None, clock=None, inbox=True,
                  lrg_obj=True):
    """A new :class:`ManagementTree` with the standard objects.

    ``devinfo`` / ``devdetail`` override leaf values (keys are paths below
    the object, e.g. ``"DevId"`` or ``"Ext/Foo"``).
    """
    tree = ManagementTree(limits or UriLimits(), clock=clock)
    for mo_id in DMACC_IDS:
        tree.register_ddf(mo_id, DMACC_DDF)
    for top, mo_id, values in (("./DevInfo", MO_DEVINFO, dict(DEFAULT_DEVINFO, **(devinfo or {}))),
                               ("./DevDetail", MO_DEVDETAIL,
                                dict(DEFAULT_DEVDETAIL, **(devdetail or {})))):
        tree.set(top, None, "node", mo_id)
        for path, value in values.items():
            tree.set("%s/%s" % (top, path), value)
    tree.set("./DevDetail/LrgObj", "true" if lrg_obj else "false", "bool")
    for name, limit in (("MaxDepth", tree.max_depth), ("MaxTotLen", tree.max_tot_len),
                        ("MaxSegLen", tree.max_seg_len)):
        tree.set("./DevDetail/URI/" + name, str(limit))
    for top in ("./DevInfo", "./DevDetail"):
        tree.set_acl(top, "Get=*")
        for info in tree.walk(top, checked=False):
            tree.set_permanent(URI(info.segments))
            tree.set_access(URI(info.segments), ("Get",))
    tree.set("./DMAcc", None, "node")
    tree.set_permanent("./DMAcc")
    if inbox:
        install_inbox(tree)
    return tree


def install_inbox(tree, locations=None, uri="./Inbox"):
    """Create ``./Inbox``: an Add there is routed by MO identifier (§6).

    ``locations`` maps further MO identifiers to the interior node under
    which such an MO is placed (DMAcc goes to ``./DMAcc``).  Get on the
    Inbox or below is 405.
    """
    where = {mo_id: "./DMAcc" for mo_id in DMACC_IDS}
    where.update(locations or {})
    homes = {mo_id: parse_uri(path).segments for mo_id, path in where.items()}
    tree.set(uri, None, "node", MO_INBOX)
    tree.set_permanent(uri)
    tree.set_access(uri, ("Add",))
    tree.restrict(uri, ("Get",), NOT_ALLOWED)
    inbox = parse_uri(uri)
    tree.inbox = (inbox, _InboxRouter(inbox, homes))


class _InboxRouter:
    """Places MOs added to the Inbox by their MO identifier."""

    def __init__(self, inbox, homes):
        self.inbox = inbox
        self.homes = homes

    def place(self, tree, rel, mo_id, ignore_unknown=False):
        """Absolute segments for an MO at Inbox-relative ``rel`` (None: skip it)."""
        home = self.homes.get(mo_id)
        if home is None:
            if ignore_unknown:
                return None
            raise TreeError(NOT_SUPPORTED, URI(self.inbox.segments + rel).path,
                            "no location for MO %r" % (mo_id,))
        name = rel[-1] if rel else _free_name(tree, home, "acc")
        return home + (name,)

    def route(self, tree, u, value, format, type, server, ignore_unknown=False):
        """Add at ``u`` below the Inbox; returns the URI of the (first) MO placed."""
        rel = u.segments[len(self.inbox.segments):]
        if type in TNDS_TYPES:
            tops = self.import_tnds(tree, u, value, server, type, ignore_unknown)
            return tops[0] if tops else None
        if format != "node" or len(rel) != 1:
            raise TreeError(NOT_ALLOWED, u.path, "only MOs can be added to the Inbox")
        return tree.add(URI(self.place(tree, rel, type)), None, "node", type, server)

    __call__ = route

    def import_tnds(self, tree, u, data, server, content_type=None, ignore_unknown=False):
        """Import a TNDS added at ``u``; returns the URIs of the MOs placed."""
        rel = u.segments[len(self.inbox.segments):]
        return import_tnds(tree, u, data, server, content_type=content_type,
                           place=lambda r, mo: self.place(tree, rel + r, mo, ignore_unknown),
                           rewrite_prefix=self.inbox.path)


def _free_name(tree, home, prefix):
    index = 1
    while tree.exists(URI(home + ("%s%d" % (prefix, index),))):
        index += 1
    return "%s%d" % (prefix, index)


def add_dmacc(tree, name, server_id, addr, *, app_name=None, addr_type="URI", port=None,
              auth=(), aauth_pref=None, pref_con_ref=None, to_con_refs=(), mo_id=MO_DMACC):
    """Write ``./DMAcc/<name>`` (DM 1.2 layout) and return its URI.

    ``auth`` is a sequence of dicts with keys ``AAuthLevel`` (``CLCRED``,
    ``SRVCRED``), ``AAuthType``, ``AAuthName``, ``AAuthSecret``, ``AAuthData``
    (bytes); they become ``AppAuth/1``, ``AppAuth/2``...  The account's ACL
    gives ``server_id`` Get, Replace and Delete.
    """
    base = "./DMAcc/" + name
    if tree.exists(base):
        raise TreeError(418, base)
    tree.set(base, None, "node", mo_id)
    tree.set_acl(base, format_acl({"Get": (server_id,), "Replace": (server_id,),
                                   "Delete": (server_id,)}))
    tree.set(base + "/AppID", "w7")
    tree.set(base + "/ServerID", server_id)
    if app_name is not None:
        tree.set(base + "/Name", app_name)
    if pref_con_ref is not None:
        tree.set(base + "/PrefConRef", pref_con_ref)
    for index, ref in enumerate(to_con_refs, 1):
        tree.set("%s/ToConRef/%d/ConRef" % (base, index), ref)
    tree.set(base + "/AppAddr/1/Addr", addr)
    tree.set(base + "/AppAddr/1/AddrType", addr_type)
    if port is not None:
        tree.set(base + "/AppAddr/1/Port/1/PortNbr", str(port))
    if aauth_pref is not None:
        tree.set(base + "/AAuthPref", aauth_pref)
    for index, entry in enumerate(auth, 1):
        prefix = "%s/AppAuth/%d/" % (base, index)
        for key in ("AAuthLevel", "AAuthType", "AAuthName", "AAuthSecret"):
            if entry.get(key) is not None:
                tree.set(prefix + key, entry[key])
        if entry.get("AAuthData") is not None:
            tree.set(prefix + "AAuthData", entry["AAuthData"], "bin")
    return base


def find_accounts(tree, server_id=None):
    """URIs of the DMAcc instances (by MO Type) whose ServerID is ``server_id`` (or all)."""
    found = []
    for info in tree.walk(".", checked=False):
        if info.format == "node" and info.type in DMACC_IDS:
            base = URI(info.segments)
            sid = base.child("ServerID")
            if server_id is None or (tree.exists(sid) and tree.read(sid).value == server_id):
                found.append(base.path)
    return found


def apply_cp_w7(tree, prov_doc, *, names=None, con_ref=None):
    """Map every w7 APPLICATION of ``prov_doc`` to ``./DMAcc/<X>``; returns their URIs.

    ``names`` optionally gives the ``<X>`` names in order (default ``acc1``,
    ``acc2``… not yet used).  ``con_ref(id)`` turns a TO-NAPID/TO-PROXY id
    into the PrefConRef/ConRef value (default: the id itself, an
    implementation id).  All accounts are written or none (400 for a w7
    without PROVIDER-ID).
    """
    snapshot = tree.snapshot()
    created = []
    try:
        for index, app in enumerate(find_w7(prov_doc)):
            created.append(_apply_w7(tree, app, names[index] if names else None,
                                     con_ref or (lambda ref: ref)))
    except TreeError:
        tree.restore(snapshot)
        raise
    return created


def _apply_w7(tree, app, name, con_ref):
    server_id = app.get("PROVIDER-ID")
    if not server_id:
        raise TreeError(400, "./DMAcc", "w7 without PROVIDER-ID")
    if not tree.exists("./DMAcc"):
        tree.set("./DMAcc", None, "node")
    name = name or _free_name(tree, ("DMAcc",), "acc")
    refs = [ref for parm in app.parms if parm.name in ("TO-PROXY", "TO-NAPID")
            for ref in [parm.value] if ref]
    addrs = app.children("APPADDR")
    if not addrs and app.get("ADDR"):
        addrs = None
    base = add_dmacc(tree, name, server_id,
                     addrs[0].get("ADDR", "") if addrs else app.get("ADDR", ""),
                     app_name=app.get("NAME"),
                     pref_con_ref=con_ref(refs[0]) if refs else None,
                     to_con_refs=[con_ref(ref) for ref in refs[1:]],
                     addr_type=_ADDR_TYPES.get(_addr_type(addrs), _addr_type(addrs)))
    for index, appaddr in enumerate(addrs or (), 1):
        prefix = "%s/AppAddr/%d/" % (base, index)
        tree.set(prefix + "Addr", appaddr.get("ADDR", ""))
        addr_type = appaddr.get("ADDRTYPE") or "URI"
        tree.set(prefix + "AddrType", _ADDR_TYPES.get(addr_type, addr_type))
        ports = [port.get("PORTNBR") for port in appaddr.children("PORT")]
        for number, port in enumerate((p for p in ports if p), 1):
            tree.set("%sPort/%d/PortNbr" % (prefix, number), port)
    for index, auth in enumerate(app.children("APPAUTH"), 1):
        prefix = "%s/AppAuth/%d/" % (base, index)
        level = auth.get("AAUTHLEVEL", "")
        tree.set(prefix + "AAuthLevel", AAUTH_LEVELS.get(level, level))
        for parm, leaf in (("AAUTHTYPE", "AAuthType"), ("AAUTHNAME", "AAuthName"),
                           ("AAUTHSECRET", "AAuthSecret")):
            if auth.get(parm) is not None:
                tree.set(prefix + leaf, auth.get(parm))
        if auth.get("AAUTHDATA") is not None:
            tree.set(prefix + "AAuthData", _nonce(auth.get("AAUTHDATA")), "bin")
    return base


def _addr_type(addrs):
    return (addrs[0].get("ADDRTYPE") if addrs else None) or "URI"


def _nonce(text):
    """AAUTHDATA is base64 of the nonce bytes; anything else is kept as its UTF-8."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode("utf-8")


def apply_dm_bootstrap(tree, tnds, target="./Inbox", content_type=None):
    """Apply a DM-profile bootstrap TNDS (Node, XML or WBXML) as the device.

    At ``./Inbox`` (the default) each top-level MO goes where its MO
    identifier says and MOs the device does not know are skipped; any other
    ``target`` imports the TNDS there.  Returns the URIs of the nodes placed.
    """
    u = tree.parse(target)
    if tree.inbox is not None and u.is_under(tree.inbox[0]) and isinstance(tree.inbox[1],
                                                                          _InboxRouter):
        return tree.inbox[1].import_tnds(tree, u, tnds, None, content_type, ignore_unknown=True)
    return import_tnds(tree, u, tnds, None, content_type=content_type)
