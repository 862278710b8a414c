"""Read :class:`~.element.Node` trees into the SyncML message model.

Split from :mod:`.mapping` (model -> tree), which re-exports this module's
public functions; both wire codecs (XML and WBXML) read through here.

The reader is tolerant: children in any order, any namespace (sloppy clients
send ``<Type>`` without ``xmlns="syncml:metinf"``), surrounding XML whitespace
stripped from values (``<Data>`` kept exactly, except around alert and status
codes), ``<Type>`` directly under ``<Item>`` read as its Meta Type, the
SyncHdr's Status without ``<CmdRef>`` read as CmdRef 0, Item data typed by
its Format (text unless ``bin``, whether XML text or WBXML OPAQUE), unknown
elements inside known containers listed in ``SyncML.unknown`` (for the
session to log once) and unknown commands kept as
:class:`~.syncml.UnknownCommand`.  Anything structurally
wrong raises :class:`~.errors.ModelError` naming the element path, e.g.
``SyncML/SyncBody/Replace[2]/Item[1]``.
"""

import base64
import binascii
import re

from .element import NS_DMDDF, NS_METINF, NS_SYNCML, Node
from .errors import NOT_XML_TEXT, ModelError
from .syncml import (
    Alert,
    Chal,
    Container,
    Cred,
    Exec,
    Item,
    LocRef,
    Meta,
    META_FIELDS,
    Results,
    Status,
    SyncHdr,
    SyncML,
    UnknownCommand,
    COMMAND_CLASSES,
)

__all__ = [
    "node_to_message",
    "node_to_command",
    "node_to_meta",
    "node_to_item",
    "unknown_elements",
]

XML_WHITESPACE = " \t\r\n"
_DIGITS = re.compile(r"[0-9]{1,20}\Z")
_META_NAMES = {name for name, _, _ in META_FIELDS} | {"EMI"}


class _Children:
    """The children of one element, by name, remembering the element's path.

    Element paths are only needed in errors: they are formatted when raised.
    """

    __slots__ = ("node", "path", "by_name")

    def __init__(self, node, path):
        self.node = node
        self.path = path
        self.by_name = by_name = {}
        for child in node.children:
            name = child.name
            if name in by_name:
                by_name[name].append(child)
            else:
                by_name[name] = [child]

    def first(self, name):
        found = self.by_name.get(name)
        return found[0] if found else None

    def all(self, name):
        return self.by_name.get(name, [])

    def has(self, name):
        return name in self.by_name

    def require(self, name):
        child = self.first(name)
        if child is None:
            raise ModelError("missing %s" % (name,), path=self.path)
        return child

    def value(self, name, required=False):
        found = self.by_name.get(name)
        if not found:
            if required:
                raise ModelError("missing %s" % (name,), path=self.path)
            return None
        child = found[0]
        text = child.text
        if text.__class__ is str and not child.children:  # the common case of _text
            return text.strip(XML_WHITESPACE)
        return _text(child, "%s/%s" % (self.path, name))

    def values(self, name):
        texts = []
        for index, child in enumerate(self.by_name.get(name, ()), 1):
            text = child.text
            if text.__class__ is str and not child.children:
                texts.append(text.strip(XML_WHITESPACE))
            else:
                texts.append(_text(child, "%s/%s[%d]" % (self.path, name, index)))
        return texts

    def number(self, name, required=False):
        text = self.value(name, required)
        if text is None:
            return None
        if not _DIGITS.match(text):
            raise ModelError("not a number: %r" % (text[:40],), path="%s/%s" % (self.path, name))
        return int(text)


def _text(node, path):
    """A value: text with surrounding XML whitespace stripped, OPAQUE decoded."""
    if node.children:
        raise ModelError("element content where a value is expected", path=path)
    text = node.text
    if text is None:
        return ""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError("opaque value is not UTF-8", path=path) from None
        bad = _NOT_XML.search(text)
        if bad:
            raise ModelError("opaque value holds U+%04X, which XML cannot carry" % (ord(bad.group()),),
                             path=path)
    return text.strip(XML_WHITESPACE)


_NOT_XML = re.compile(NOT_XML_TEXT)


def node_to_message(node):
    """The :class:`SyncML` model of a ``<SyncML>`` element tree."""
    if not isinstance(node, Node):
        raise ModelError("not an element tree")
    if node.name != "SyncML":
        raise ModelError("root element is %r, not SyncML" % (node.name,), path=node.name)
    root = _Children(node, "SyncML")
    hdr = _node_to_hdr(root.require("SyncHdr"), "SyncML/SyncHdr")
    body_node = root.require("SyncBody")
    body = _Children(body_node, "SyncML/SyncBody")
    commands = _nodes_to_commands(body_node, "SyncML/SyncBody", skip=("Final",))
    msg = SyncML(hdr=hdr, body=commands, final=body.has("Final"))
    msg.unknown = unknown_elements(node)
    return msg


# the children each element may have, by element name (commands: below)
_COMMAND_CHILDREN = frozenset(("CmdID", "NoResp", "Cred", "Meta", "Item"))
_KNOWN_CHILDREN = {
    "SyncML": frozenset(("SyncHdr", "SyncBody")),
    "SyncHdr": frozenset(("VerDTD", "VerProto", "SessionID", "MsgID", "Target", "Source",
                          "RespURI", "NoResp", "Cred", "Meta")),
    "Target": frozenset(("LocURI", "LocName", "Filter")),
    "Source": frozenset(("LocURI", "LocName")),
    "Cred": frozenset(("Meta", "Data")),
    "Chal": frozenset(("Meta",)),
    "Item": frozenset(("Target", "Source", "SourceParent", "TargetParent", "Meta", "Data",
                       "MoreData", "Type")),
    "Status": frozenset(("CmdID", "MsgRef", "CmdRef", "Cmd", "TargetRef", "SourceRef", "Cred",
                         "Chal", "Data", "Item")),
    "Results": frozenset(("CmdID", "MsgRef", "CmdRef", "Meta", "TargetRef", "SourceRef", "Item")),
    "Alert": frozenset(("CmdID", "NoResp", "Cred", "Data", "Correlator", "Item")),
    "Exec": _COMMAND_CHILDREN | {"Correlator"},
}
_LEAVES = frozenset(("Meta", "Data", "Filter", "SourceParent", "TargetParent"))  # not walked into


def unknown_elements(root, limit=20, longest=200):
    """Paths of elements below ``<SyncML>`` that the model has no place for
    (at most ``limit``, each cut to ``longest`` characters: they end up in a
    log line).  Metinf extras, Data content and unknown commands are kept by
    the model, so they are not listed."""
    found = []
    work = [(root, "SyncML")]
    while work and len(found) < limit:
        node, path = work.pop()
        if node.name == "SyncBody" or node.name in ("Atomic", "Sequence"):
            allowed = None  # commands (unknown ones are kept as UnknownCommand)
        elif node.name in COMMAND_CLASSES:
            allowed = _KNOWN_CHILDREN.get(node.name, _COMMAND_CHILDREN)
        else:
            allowed = _KNOWN_CHILDREN.get(node.name)
        for child in node.children:
            name = child.name
            if allowed is None:
                if name in COMMAND_CLASSES:
                    work.append((child, "%s/%s" % (path, name)))
                elif node.name != "SyncBody" and name not in ("CmdID", "NoResp", "Meta"):
                    found.append("%s/%s" % (path, name))
            elif name not in allowed:
                found.append("%s/%s" % (path, name))
            elif child.children and name not in _LEAVES and (
                    name in _KNOWN_CHILDREN or name == "SyncBody"):
                work.append((child, "%s/%s" % (path, name)))
    return [path[:longest] for path in found[:limit]]


def _node_to_hdr(node, path):
    c = _Children(node, path)
    return SyncHdr(
        ver_dtd=c.value("VerDTD", required=True),
        ver_proto=c.value("VerProto", required=True),
        session_id=c.value("SessionID", required=True),
        msg_id=c.value("MsgID", required=True),
        target=_node_to_locref(c.require("Target"), path + "/Target"),
        source=_node_to_locref(c.require("Source"), path + "/Source"),
        resp_uri=c.value("RespURI"),
        no_resp=c.has("NoResp"),
        cred=_optional(c, "Cred", _node_to_cred),
        meta=_optional(c, "Meta", node_to_meta),
    )


def _nodes_to_commands(node, path, skip=()):
    commands = []
    counts = {}
    for child in node.children:
        if child.name in skip:
            continue
        index = counts[child.name] = counts.get(child.name, 0) + 1
        commands.append(node_to_command(child, "%s/%s[%d]" % (path, child.name, index)))
    return commands


def node_to_command(node, path=None):
    """The command model of one SyncBody (or Atomic/Sequence) child element."""
    path = path or node.name
    cls = COMMAND_CLASSES.get(node.name)
    if cls is None:
        return _unknown_command(node)
    c = _Children(node, path)
    cmd_id = c.value("CmdID", required=True)
    if cls is Status:
        cmd = c.value("Cmd") or ""
        # OMA's own examples leave CmdRef out of the SyncHdr's Status
        cmd_ref = c.value("CmdRef", required=cmd != "SyncHdr")
        return Status(
            cmd_id=cmd_id,
            msg_ref=c.value("MsgRef"),
            cmd_ref="0" if cmd_ref is None else cmd_ref,
            cmd=cmd,
            target_refs=c.values("TargetRef"),
            source_refs=c.values("SourceRef"),
            cred=_optional(c, "Cred", _node_to_cred),
            chal=_optional(c, "Chal", _node_to_chal),
            data=c.number("Data", required=True),
            items=_items(c),
        )
    if cls is Results:
        meta = _optional(c, "Meta", node_to_meta)
        return Results(
            cmd_id=cmd_id,
            msg_ref=c.value("MsgRef"),
            cmd_ref=c.value("CmdRef", required=True),
            meta=meta,
            target_refs=c.values("TargetRef"),
            source_refs=c.values("SourceRef"),
            items=_items(c, meta),
        )
    if cls is Alert:
        return Alert(
            cmd_id=cmd_id,
            no_resp=c.has("NoResp"),
            cred=_optional(c, "Cred", _node_to_cred),
            data=c.number("Data"),
            correlator=c.value("Correlator"),
            items=_items(c),
        )
    if issubclass(cls, Container):
        return cls(
            cmd_id=cmd_id,
            no_resp=c.has("NoResp"),
            meta=_optional(c, "Meta", node_to_meta),
            commands=_nodes_to_commands(node, path, skip=("CmdID", "NoResp", "Meta")),
        )
    meta = _optional(c, "Meta", node_to_meta)
    cmd = cls(
        cmd_id=cmd_id,
        no_resp=c.has("NoResp"),
        cred=_optional(c, "Cred", _node_to_cred),
        meta=meta,
        items=_items(c, meta),
    )
    if cls is Exec:
        cmd.correlator = c.value("Correlator")
    return cmd


def _unknown_command(node):
    cmd_id = ""
    for child in node.children:
        if child.name == "CmdID" and not child.children:
            try:
                cmd_id = _text(child, "")
            except ModelError:
                pass
            break
    return UnknownCommand(cmd_id=cmd_id, name=node.name, node=node)


def _items(c, command_meta=None):
    inherited = command_meta.format if command_meta is not None else None
    return [
        node_to_item(child, "%s/Item[%d]" % (c.path, index), inherited)
        for index, child in enumerate(c.all("Item"), 1)
    ]


def _settle_data(data, fmt):
    """Item data by its Format, whatever the wire form (dm-protocol: Format
    ``chr`` is the default).  OPAQUE (``bytes``) is text unless the Format is
    ``bin`` or it is not UTF-8; ``bin`` sent as base64 text (the only way XML
    can carry it) is bytes, as WBXML OPAQUE would be.  ``b64`` stays the
    base64 text it is."""
    fmt = (fmt or "chr").strip(XML_WHITESPACE).lower()
    if data.__class__ is bytes:
        if fmt == "bin":
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data
    if data.__class__ is str and fmt == "bin" and data:
        try:
            return base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            return data
    return data


def node_to_item(node, path="Item", inherited_format=None):
    """An :class:`Item`; ``inherited_format`` is the Format of the command's Meta."""
    c = _Children(node, path)
    data_node = c.first("Data")
    meta = _optional(c, "Meta", node_to_meta)
    bare_type = c.value("Type")  # MS-MDM examples put Type directly under Item
    if bare_type and (meta is None or meta.type is None):
        meta = meta or Meta()
        meta.type = bare_type
    data = None if data_node is None else _item_data(data_node, path + "/Data")
    if data is not None and not isinstance(data, Node):
        fmt = meta.format if meta is not None and meta.format else inherited_format
        data = _settle_data(data, fmt)
    return Item(
        target=_optional(c, "Target", _node_to_locref),
        source=_optional(c, "Source", _node_to_locref),
        meta=meta,
        data=data,
        more_data=c.has("MoreData"),
    )


def _item_data(node, path):
    """``<Data>`` content as is: str, bytes (OPAQUE) or one embedded element."""
    if node.children:
        if len(node.children) != 1:
            raise ModelError("Data holds %d elements, expected one" % (len(node.children),),
                             path=path)
        child = node.children[0]
        if child.name == "MgmtTree" and child.ns == NS_SYNCML:
            child = _rekey(child, NS_SYNCML, NS_DMDDF)  # inline TNDS without its xmlns
        return child
    return "" if node.text is None else node.text


def node_to_meta(node, path="Meta"):
    """A :class:`Meta` from ``<Meta>``; metinf children in any namespace."""
    c = _Children(node, path)
    meta = Meta()
    present = c.by_name
    for name, attr, is_int in META_FIELDS:
        if name in present:
            setattr(meta, attr, c.number(name) if is_int else c.value(name))
    meta.emi = c.values("EMI")
    meta.extra = [
        _rekey(child, NS_SYNCML, NS_METINF)
        for child in node.children
        if child.name not in _META_NAMES
    ]
    return meta


def _node_to_locref(node, path):
    c = _Children(node, path)
    return LocRef(loc_uri=c.value("LocURI", required=True), loc_name=c.value("LocName"))


def _node_to_cred(node, path):
    c = _Children(node, path)
    return Cred(meta=_optional(c, "Meta", node_to_meta), data=c.value("Data") or "")


def _node_to_chal(node, path):
    c = _Children(node, path)
    return Chal(meta=_optional(c, "Meta", node_to_meta) or Meta())


def _optional(c, name, read):
    child = c.first(name)
    if child is None:
        return None
    return read(child, "%s/%s" % (c.path, name))


def _rekey(node, old, new):
    """A copy of ``node`` with namespace key ``old`` replaced by ``new``."""
    if node.ns != old:
        return node
    copy = Node(node.name, new, None, node.text, node.attrs)
    copy.children = [_rekey(child, old, new) for child in node.children]
    return copy
