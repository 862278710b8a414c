"""The DM-profile bootstrap: a SyncML DM message that creates the DM account (dm-bootstrap-cp §2).

::

    account = DMAccount(server_id="com.example.dms", address="https://dms.example.com/dm",
                        device_id="IMEI:490154203237518",
                        client=AuthEntry("md5", "dev1", "secret", b"nonce"),
                        server=AuthEntry("md5", "com.example.dms", "srvsecret", b"nonce2"))
    wbxml = encode(build_message(account))                  # DM 1.2 ./DMAcc/<name>
    wbxml = encode(build_message(account, tnds=True))       # one TNDS object at ./Inbox
    wbxml = encode(build_message(account, layout=LAYOUT_DM11))  # ./SyncML/DMAcc/<name>

The message is always WBXML (SyncML 1.2 public id; 1.1 for the DM 1.1
layout), SessionID and MsgID ``0``, Target the device id, Source the server
id, no Cred, one Add with the account and ``Final``; the device answers
nothing.  Interior nodes below the account are left to the device to
create, as in the spec's example, except the account node itself (Format
node, Type the DMAcc MO identifier so the device knows what it is).
Nonces travel as ``AAuthData`` in Format ``b64``.
"""

import base64
from dataclasses import dataclass, field
from typing import Optional

from ..codec import encode_message
from ..codec import syncml as sm
from ..tree import TNDS_WBXML
from ..tree.standard import MO_DMACC, MO_DMACC_LEGACY, add_dmacc
from ..tree.tnds import export_tnds, to_wbxml
from ..tree.tree import ManagementTree

__all__ = [
    "AAUTH_TYPES",
    "AuthEntry",
    "ConItem",
    "DMAccount",
    "LAYOUTS",
    "LAYOUT_DM11",
    "LAYOUT_DM12",
    "account_leaves",
    "build_message",
    "encode",
]

LAYOUT_DM12, LAYOUT_DM11 = "dm12", "dm11"
LAYOUTS = (LAYOUT_DM12, LAYOUT_DM11)

#: the gateway's authentication scheme -> DMAcc AAuthType
AAUTH_TYPES = {"basic": "BASIC", "md5": "DIGEST", "hmac": "HMAC"}
#: ... and the DM 1.1 AuthPref values
_AUTH_PREF_11 = {"basic": "syncml:auth-basic", "md5": "syncml:auth-md5", "hmac": "syncml:auth-MAC"}


@dataclass(frozen=True)
class AuthEntry:
    """One direction's credentials: ``scheme`` is ``basic``, ``md5``, ``hmac`` or ``none``."""

    scheme: str
    name: str
    secret: str
    nonce: bytes = b""


@dataclass(frozen=True)
class ConItem:
    """A connectivity leaf or node to add with the account (e.g. under ``./ConnMO``)."""

    uri: str
    data: Optional[str] = None
    format: str = "chr"


@dataclass(frozen=True)
class DMAccount:
    """What a bootstrap gives the device: the account of this server for this device."""

    server_id: str
    address: str
    device_id: str
    client: AuthEntry
    server: AuthEntry
    name: str = "dmgateway"  # the DMAcc interior node name
    display_name: Optional[str] = None
    port: Optional[int] = None
    pref_con_ref: Optional[str] = None
    connectivity: tuple = field(default_factory=tuple)


def account_leaves(account):
    """``(relative path, value, format)`` of the DM 1.2 account, leaves in order."""
    leaves = [("AppID", "w7", "chr"), ("ServerID", account.server_id, "chr")]
    if account.display_name:
        leaves.append(("Name", account.display_name, "chr"))
    if account.pref_con_ref:
        leaves.append(("PrefConRef", account.pref_con_ref, "chr"))
    leaves += [("AppAddr/1/Addr", account.address, "chr"), ("AppAddr/1/AddrType", "URI", "chr")]
    if account.port is not None:
        leaves.append(("AppAddr/1/Port/1/PortNbr", str(account.port), "chr"))
    if account.client.scheme in AAUTH_TYPES:
        leaves.append(("AAuthPref", AAUTH_TYPES[account.client.scheme], "chr"))
    index = 0
    for level, entry in (("CLCRED", account.client), ("SRVCRED", account.server)):
        if entry.scheme not in AAUTH_TYPES:
            continue
        index += 1
        prefix = "AppAuth/%d/" % (index,)
        leaves += [(prefix + "AAuthLevel", level, "chr"),
                   (prefix + "AAuthType", AAUTH_TYPES[entry.scheme], "chr"),
                   (prefix + "AAuthName", entry.name, "chr"),
                   (prefix + "AAuthSecret", entry.secret, "chr")]
        if entry.nonce:
            leaves.append((prefix + "AAuthData", base64.b64encode(entry.nonce).decode("ascii"),
                           "b64"))
    return leaves


def _legacy_leaves(account):
    """The DM 1.1 ``./SyncML/DMAcc/<x>`` leaves (ServerId, ServerPW, ClientPW ...)."""
    leaves = [("Addr", account.address, "chr"), ("AddrType", "URI", "chr")]
    if account.port is not None:
        leaves.append(("PortNbr", str(account.port), "chr"))
    if account.pref_con_ref:
        leaves.append(("ConRef", account.pref_con_ref, "chr"))
    leaves.append(("ServerId", account.server_id, "chr"))
    server, client = account.server, account.client
    if server.scheme in AAUTH_TYPES:
        leaves.append(("ServerPW", server.secret, "chr"))
        if server.nonce:
            leaves.append(("ServerNonce", base64.b64encode(server.nonce).decode("ascii"), "b64"))
    if client.scheme in AAUTH_TYPES:
        leaves += [("UserName", client.name, "chr"), ("ClientPW", client.secret, "chr")]
        if client.nonce:
            leaves.append(("ClientNonce", base64.b64encode(client.nonce).decode("ascii"), "b64"))
        leaves.append(("AuthPref", _AUTH_PREF_11[client.scheme], "chr"))
    if account.display_name:
        leaves.append(("Name", account.display_name, "chr"))
    return leaves


def _item(uri, data=None, fmt="chr", mtype=None):
    meta = None
    if fmt != "chr" or mtype:
        meta = sm.Meta(format=fmt, type=mtype)
    return sm.Item(target=sm.LocRef(uri), meta=meta, data=data)


def _scratch_tree(account):
    """The account in an empty tree, to export as TNDS (ACL included)."""
    tree = ManagementTree()
    auth = []
    for level, entry in (("CLCRED", account.client), ("SRVCRED", account.server)):
        if entry.scheme in AAUTH_TYPES:
            auth.append({"AAuthLevel": level, "AAuthType": AAUTH_TYPES[entry.scheme],
                         "AAuthName": entry.name, "AAuthSecret": entry.secret,
                         "AAuthData": entry.nonce or None})
    tree.set("./DMAcc", None, "node")
    return tree, add_dmacc(tree, account.name, account.server_id, account.address,
                           app_name=account.display_name, port=account.port, auth=auth,
                           aauth_pref=AAUTH_TYPES.get(account.client.scheme),
                           pref_con_ref=account.pref_con_ref)


def _text_values(node):
    """Binary leaves as base64 text, the form TNDS readers take in XML and WBXML alike."""
    for child in node.children:
        if child.name == "Node":
            value = child.find("Value")
            if value is not None and isinstance(value.text, (bytes, bytearray)):
                value.text = base64.b64encode(value.text).decode("ascii")
            _text_values(child)
    return node


def build_message(account, *, layout=LAYOUT_DM12, tnds=False):
    """The bootstrap :class:`~dmgateway.codec.syncml.SyncML` message for ``account``.

    ``tnds`` puts the account in one WBXML TNDS object added at ``./Inbox``
    (DM 1.2 only); the connectivity items then follow as plain items.
    """
    if layout not in LAYOUTS:
        raise ValueError("unknown DMAcc layout %r" % (layout,))
    if tnds and layout != LAYOUT_DM12:
        raise ValueError("a TNDS bootstrap needs the DM 1.2 layout")
    items = []
    if tnds:
        tree, base = _scratch_tree(account)
        document = to_wbxml(_text_values(export_tnds(tree, base, props=frozenset(("ACL", "Value")))))
        items.append(_item("./Inbox", document, "xml", TNDS_WBXML))
    elif layout == LAYOUT_DM12:
        base = "./DMAcc/" + account.name
        items.append(_item(base, None, "node", MO_DMACC))
        items += [_item("%s/%s" % (base, path), value, fmt)
                  for path, value, fmt in account_leaves(account)]
    else:
        base = "./SyncML/DMAcc/" + account.name
        items.append(_item(base, None, "node", MO_DMACC_LEGACY))
        items += [_item("%s/%s" % (base, path), value, fmt)
                  for path, value, fmt in _legacy_leaves(account)]
    items += [_item(con.uri, con.data if con.format != "node" else None, con.format)
              for con in account.connectivity]
    legacy = layout == LAYOUT_DM11
    hdr = sm.SyncHdr(session_id="0", msg_id="0", target=sm.LocRef(account.device_id),
                     source=sm.LocRef(account.server_id),
                     ver_dtd="1.1" if legacy else sm.VERDTD_1_2,
                     ver_proto="DM/1.1" if legacy else sm.VERPROTO_DM_1_2)
    return sm.SyncML(hdr=hdr, body=[sm.Add(cmd_id="1", items=items)], final=True)


def encode(message):
    """The WBXML bytes of a bootstrap message (a DM bootstrap is never XML)."""
    return encode_message(message, "wbxml")
