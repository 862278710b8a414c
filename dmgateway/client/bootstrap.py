"""Bootstrapping a simulated device: a CP or DM bootstrap in, an :class:`Account` out.

::

    tree = default_tree(...) or standard_tree(...)
    account = apply_bootstrap(tree, data, content_type)
    session = ClientSession(account, tree=tree, random_bytes=os.urandom)

Accepted documents (dm-bootstrap-cp §4-5):

* a CP document, WBXML (``application/vnd.wap.connectivity-wbxml``) or XML
  (``text/vnd.wap.connectivity-xml``): each w7 APPLICATION becomes
  ``./DMAcc/<x>`` (:func:`dmgateway.tree.standard.apply_cp_w7`);
* a DM bootstrap: a SyncML DM message (``application/vnd.syncml.dm+wbxml``
  or ``+xml``) whose Add/Replace commands (also inside Atomic/Sequence)
  carry TNDS or plain node data, applied as the device (no ACL checks);
* a TNDS document (``application/vnd.syncml.dmtnds+xml|+wbxml``) applied
  at ``./Inbox``, where a DMAcc MO goes to ``./DMAcc``;
* any of these inside a WSP push PDU.

A pushed bootstrap is checked first (:func:`accept_bootstrap`): the SEC
method and MAC of the push (dm-bootstrap-cp §3) must verify with the PIN
the user typed and/or the IMSI of the card, else nothing is applied.

The account returned is the first DMAcc the document created (or, if it
created none, the first one it touched), read back by
:func:`account_from_tree`.  Every failure is a :class:`BootstrapError`;
the tree is unchanged when one is raised.
"""

from .. import bootstrap as _boot
from ..bootstrap import sec as _sec
from ..codec import decode_message, prov
from ..codec import syncml as sm
from ..codec.errors import CodecError
from ..notify import sms, wsp
from ..notify.package0 import NotificationError
from ..tree import TNDS_WBXML, TNDS_XML, TreeError
from ..tree.standard import apply_cp_w7, apply_dm_bootstrap, find_accounts
from ..tree.tnds import import_tnds
from .account import AAUTH_TYPES, Account, Credentials
from .commands import _Refused, item_value

__all__ = ["BootstrapError", "accept_bootstrap", "apply_bootstrap", "account_from_tree",
           "open_push", "CP_WBXML", "CP_XML", "DM_WBXML", "DM_XML"]

CP_WBXML = "application/vnd.wap.connectivity-wbxml"
CP_XML = "text/vnd.wap.connectivity-xml"
DM_WBXML = "application/vnd.syncml.dm+wbxml"
DM_XML = "application/vnd.syncml.dm+xml"
TNDS_TYPES = (TNDS_XML, TNDS_WBXML)

_SCHEMES = {kind: scheme for scheme, kind in AAUTH_TYPES.items()}
_SCHEMES.update({"NONE": "none", "MD5": "md5", "DIGEST": "md5"})


class BootstrapError(ValueError):
    """The document could not be applied (or produced no DM account)."""


def _kind(data, content_type):
    """``"cp"``, ``"dm"`` or ``"tnds"`` from the content type, else by sniffing."""
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct in (CP_WBXML, CP_XML):
        return "cp"
    if ct in (DM_WBXML, DM_XML):
        return "dm"
    if ct in TNDS_TYPES:
        return "tnds"
    head = bytes(data[:200])
    if b"wap-provisioningdoc" in head or (head[:1] in (b"\x01", b"\x02", b"\x03")
                                          and head[1:2] == b"\x0b"):
        return "cp"
    if b"MgmtTree" in head or b"DM-DDF" in head:
        return "tnds"
    return "dm"


def apply_bootstrap(tree, data, content_type=None, *, names=None):
    """Apply bootstrap ``data`` to ``tree`` and return the resulting :class:`Account`.

    ``names`` optionally names the ``./DMAcc/<x>`` created from a CP
    document (in order).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)) or not data:
        raise BootstrapError("a bootstrap document must be non-empty bytes")
    data = bytes(data)
    if len(data) > 2 and data[1] in (wsp.PDU_PUSH, wsp.PDU_CONFIRMED_PUSH) and not content_type:
        try:
            pdu = wsp.parse_push(data)
            data, content_type = pdu.body, wsp.content_type_name(pdu)
        except NotificationError:
            pass
    before = set(find_accounts(tree))
    snapshot = tree.snapshot()
    try:
        kind = _kind(data, content_type)
        if kind == "cp":
            touched = _apply_cp(tree, data, names)
        elif kind == "tnds":
            touched = apply_dm_bootstrap(tree, data, "./Inbox", content_type)
        else:
            touched = _apply_dm(tree, data, content_type)
        account = _resulting_account(tree, before, touched)
    except (TreeError, CodecError, BootstrapError) as error:
        tree.restore(snapshot)
        if isinstance(error, BootstrapError):
            raise
        raise BootstrapError("bootstrap not applied: %s" % (error,)) from None
    return account


def open_push(data, *, pin=None, imsi=None, allow_unsecured=False):
    """The :class:`dmgateway.bootstrap.Bootstrap` in a push whose MAC verifies.

    ``data`` is a WSP push or the SMS TP-UD segments (UDH included) that
    carry one.  ``pin`` is what the user typed (for USERPINMAC: the PIN and
    its MAC digits), ``imsi`` the card's.  A push without SEC/MAC is refused
    unless ``allow_unsecured``.
    """
    if isinstance(data, (list, tuple)):
        reassembler = sms.Reassembler()
        whole = None
        try:
            for part in data:
                whole = reassembler.add(sms.parse_user_data(part)) or whole
        except NotificationError as e:
            raise BootstrapError("bad SMS part: %s" % (e,)) from None
        if whole is None:
            raise BootstrapError("the SMS parts do not make a whole message")
        data = whole
    try:
        boot = _boot.read_push(data)
    except _boot.BootstrapPushError as e:
        raise BootstrapError(str(e)) from None
    if boot.sec is None:
        if allow_unsecured:
            return boot
        raise BootstrapError("the bootstrap has no SEC/MAC")
    if not _sec.verify_mac(boot.sec, boot.document, boot.mac, pin=pin, imsi=imsi):
        raise BootstrapError("the %s MAC does not verify" % (boot.sec,))
    return boot


def accept_bootstrap(tree, data, *, pin=None, imsi=None, allow_unsecured=False, names=None):
    """Verify a pushed bootstrap (:func:`open_push`) and apply it; the resulting :class:`Account`.

    A MAC that does not verify raises :class:`BootstrapError` and leaves
    ``tree`` untouched.
    """
    boot = open_push(data, pin=pin, imsi=imsi, allow_unsecured=allow_unsecured)
    return apply_bootstrap(tree, boot.document, boot.content_type, names=names)


def _apply_cp(tree, data, names):
    doc = prov.decode_xml(data) if data.lstrip()[:1] == b"<" else prov.decode_wbxml(data)
    if not prov.find_w7(doc):
        raise BootstrapError("the CP document has no w7 APPLICATION")
    return apply_cp_w7(tree, doc, names=names)


def _apply_dm(tree, data, content_type):
    msg, _ = decode_message(data, content_type)
    touched = []
    work = list(msg.body)
    while work:
        cmd = work.pop(0)
        if isinstance(cmd, sm.Container):
            work[:0] = cmd.commands
        elif isinstance(cmd, (sm.Add, sm.Replace)):
            for item in cmd.items:
                touched.extend(_apply_item(tree, cmd, item))
    return touched


def _apply_item(tree, cmd, item):
    target = item.target.loc_uri if item.target is not None else None
    if not target:
        raise BootstrapError("%s item without a Target" % (cmd.NAME,))
    meta = item.meta or cmd.meta or sm.Meta()
    if item.meta is not None and cmd.meta is not None and not item.meta.type:
        meta = cmd.meta
    mtype = meta.type.strip() if meta.type else None
    if mtype in TNDS_TYPES:
        if isinstance(cmd, sm.Replace) and not target.rstrip("/").endswith("Inbox"):
            return import_tnds(tree, target, item.data, None, replace=True, content_type=mtype)
        return apply_dm_bootstrap(tree, item.data, target, mtype)
    try:
        value, fmt, mtype = item_value(item.data, meta)
    except _Refused as error:  # bad base64 and such
        raise BootstrapError("%s %s: %s" % (cmd.NAME, target, error.reason)) from None
    if tree.exists(target):
        if fmt == "node":
            tree.replace(target, None, "node", mtype)
        else:
            tree.replace(target, value, fmt, mtype)
        return [target]
    placed = tree.add(target, value, fmt, mtype)
    return [placed or target]


def _dmacc_base(uri):
    parts = str(uri).split("/")
    if len(parts) >= 3 and parts[0] == "." and parts[1] == "DMAcc":
        return "/".join(parts[:3])
    return None


def _resulting_account(tree, before, touched):
    accounts = find_accounts(tree)
    new = [uri for uri in accounts if uri not in before]
    bases = [b for b in (_dmacc_base(uri) for uri in touched or ()) if b and tree.exists(b)]
    for base in new + bases:
        if tree.exists(base + "/ServerID"):
            return account_from_tree(tree, base)
    raise BootstrapError("the bootstrap created no DM account")


def _leaf(tree, uri, default=None):
    if not tree.exists(uri):
        return default
    value = tree.read(uri).value
    return value if value is not None else default


def account_from_tree(tree, base, device_id=None):
    """The :class:`Account` described by ``./DMAcc/<x>`` at ``base``.

    CLCRED becomes ``client``, SRVCRED ``server`` (``none`` when missing);
    ``device_id`` defaults to ``./DevInfo/DevId``.
    """
    server_id = _leaf(tree, base + "/ServerID")
    if not server_id:
        raise BootstrapError("%s has no ServerID" % (base,))
    addrs = sorted(tree.read(base + "/AppAddr").value) if tree.exists(base + "/AppAddr") else []
    url = _leaf(tree, "%s/AppAddr/%s/Addr" % (base, addrs[0])) if addrs else None
    if not url:
        raise BootstrapError("%s has no AppAddr" % (base,))
    creds = {}
    if tree.exists(base + "/AppAuth"):
        for index in tree.read(base + "/AppAuth").value:
            prefix = "%s/AppAuth/%s/" % (base, index)
            level = _leaf(tree, prefix + "AAuthLevel", "")
            if level not in ("CLCRED", "SRVCRED") or level in creds:
                continue
            kind = (_leaf(tree, prefix + "AAuthType", "") or "").upper()
            nonce = _leaf(tree, prefix + "AAuthData", b"")
            if isinstance(nonce, str):
                nonce = nonce.encode("utf-8")
            creds[level] = Credentials(_SCHEMES.get(kind, "none"),
                                       _leaf(tree, prefix + "AAuthName", "") or "",
                                       _leaf(tree, prefix + "AAuthSecret", "") or "", nonce)
    device = device_id or _leaf(tree, "./DevInfo/DevId", "")
    return Account(
        device_id=device, server_id=server_id, server_url=url,
        client=creds.get("CLCRED") or Credentials("none", device, ""),
        server=creds.get("SRVCRED") or Credentials("none", server_id, ""),
        name=base.rsplit("/", 1)[-1],
    )
