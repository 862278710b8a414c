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

The common shapes of a message (what devices and the gateway send in nearly
every exchange) are mapped by an optional C accelerator (``_model_mapping.h``)
into the very same model; it answers None for anything else and this module
maps the tree as always (see :func:`_load_c_map`).
"""

import base64
import binascii
import dataclasses
import os
import re

from .element import NS_DMDDF, NS_METINF, NS_SYNCML, Node
from .errors import NOT_XML_TEXT, ModelError
from .syncml import (
    Add,
    Alert,
    Atomic,
    Chal,
    Container,
    Copy,
    Cred,
    Delete,
    Exec,
    Get,
    Item,
    LocRef,
    Meta,
    META_FIELDS,
    Replace,
    Results,
    Sequence,
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


def _index(children):
    """The first child of each name: one dict per element, nothing per child."""
    first = {}
    for child in reversed(children):
        first[child.name] = child
    return first


# Element paths are only needed in errors: the reader passes them as chains
# ``(parent path, segment)``, a segment being a name or ``(name, index)``,
# and :func:`_p` joins them when an error is raised.

def _p(path):
    """The ``SyncML/SyncBody/Replace[2]/Item[1]`` form of a path chain."""
    parts = []
    while path.__class__ is tuple:
        path, segment = path
        parts.append(segment if segment.__class__ is str else "%s[%d]" % segment)
    parts.append(path)
    return "/".join(reversed(parts))


def _value(first, name, path, required=False):
    """The stripped text of the first ``name`` child (None when absent)."""
    child = first.get(name)
    if child is None:
        if required:
            raise ModelError("missing %s" % (name,), path=_p(path))
        return None
    text = child.text
    if text.__class__ is str and not child.children:  # the common case of _text
        return text.strip(XML_WHITESPACE)
    return _text(child, (path, name))


def _values(children, name, path):
    texts = []
    index = 0
    for child in children:
        if child.name != name:
            continue
        index += 1
        text = child.text
        if text.__class__ is str and not child.children:
            texts.append(text.strip(XML_WHITESPACE))
        else:
            texts.append(_text(child, (path, (name, index))))
    return texts


def _number(first, name, path, required=False):
    text = _value(first, name, path, required)
    if text is None:
        return None
    if not _DIGITS.match(text):
        raise ModelError("not a number: %r" % (text[:40],), path=_p((path, name)))
    return int(text)


def _require(first, name, path):
    child = first.get(name)
    if child is None:
        raise ModelError("missing %s" % (name,), path=_p(path))
    return child


def _text(node, path):
    """A value: text with surrounding XML whitespace stripped, OPAQUE decoded."""
    if node.children:
        raise ModelError("element content where a value is expected", path=_p(path))
    text = node.text
    if text is None:
        return ""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError("opaque value is not UTF-8", path=_p(path)) from None
        bad = _NOT_XML.search(text)
        if bad:
            raise ModelError("opaque value holds U+%04X, which XML cannot carry" % (ord(bad.group()),),
                             path=_p(path))
    return text.strip(XML_WHITESPACE)


_NOT_XML = re.compile(NOT_XML_TEXT)


def node_to_message(node):
    """The :class:`SyncML` model of a ``<SyncML>`` element tree."""
    if _c_map is not None:  # the common shapes, mapped in C (None: any other)
        msg = _c_map(node)
        if msg is not None:
            return msg
    if not isinstance(node, Node):
        raise ModelError("not an element tree")
    if node.name != "SyncML":
        raise ModelError("root element is %r, not SyncML" % (node.name,), path=node.name)
    root = _index(node.children)
    strays = []  # non-empty once an element unknown_elements would list may exist
    _check(root, node.children, _KNOWN_CHILDREN["SyncML"], strays)
    hdr = _node_to_hdr(_require(root, "SyncHdr", "SyncML"), ("SyncML", "SyncHdr"), strays)
    body_node = _require(root, "SyncBody", "SyncML")
    commands = _nodes_to_commands(body_node, ("SyncML", "SyncBody"), ("Final",), strays)
    msg = SyncML(hdr=hdr, body=commands, final=any(
        child.name == "Final" for child in body_node.children))
    msg.unknown = unknown_elements(node) if strays else []
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
# containers unknown_elements walks into that the reader reads only the first of
_READ_ONCE = frozenset(("SyncHdr", "SyncBody", "Target", "Source", "Cred", "Chal"))
_CONTAINER_CHILDREN = frozenset(COMMAND_CLASSES) | {"CmdID", "NoResp", "Meta"}


def _check(first, children, allowed, strays):
    """Note in ``strays`` when :func:`unknown_elements` may find something here.

    The reader reads every element that walk visits, so checking each one's
    children against the same table as it goes lets a message without
    unknown elements (nearly all) skip the walk.  A name outside ``allowed``,
    or a second copy of an element read only once (whose children the reader
    never sees), sends the message through the walk, which decides.
    """
    if not first.keys() <= allowed or (
            len(first) != len(children)
            and sum(child.name in _READ_ONCE for child in children) > len(
                first.keys() & _READ_ONCE)):
        strays.append(children)


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


def _node_to_hdr(node, path, strays):
    children = node.children
    c = _index(children)
    _check(c, children, _KNOWN_CHILDREN["SyncHdr"], strays)
    return SyncHdr(
        ver_dtd=_value(c, "VerDTD", path, True),
        ver_proto=_value(c, "VerProto", path, True),
        session_id=_value(c, "SessionID", path, True),
        msg_id=_value(c, "MsgID", path, True),
        target=_node_to_locref(_require(c, "Target", path), (path, "Target"), strays),
        source=_node_to_locref(_require(c, "Source", path), (path, "Source"), strays),
        resp_uri=_value(c, "RespURI", path),
        no_resp="NoResp" in c,
        cred=_optional(c, "Cred", _node_to_cred, path, strays),
        meta=_optional(c, "Meta", _node_to_meta, path, strays),
    )


def _nodes_to_commands(node, path, skip, strays):
    commands = []
    counts = {}
    for child in node.children:
        name = child.name
        if name in skip:
            continue
        index = counts[name] = counts.get(name, 0) + 1
        commands.append(_node_to_command(child, (path, (name, index)), strays))
    return commands


def node_to_command(node, path=None):
    """The command model of one SyncBody (or Atomic/Sequence) child element."""
    return _node_to_command(node, path or node.name, [])


def _node_to_command(node, path, strays):
    name = node.name
    cls = COMMAND_CLASSES.get(name)
    if cls is None:
        return _unknown_command(node)
    children = node.children
    c = _index(children)
    if cls is Atomic or cls is Sequence:
        if not c.keys() <= _CONTAINER_CHILDREN:
            strays.append(children)
    else:
        _check(c, children, _KNOWN_CHILDREN.get(name, _COMMAND_CHILDREN), strays)
    cmd_id = _value(c, "CmdID", path, True)
    if cls is Status:
        cmd = _value(c, "Cmd", path) or ""
        # OMA's own examples leave CmdRef out of the SyncHdr's Status
        cmd_ref = _value(c, "CmdRef", path, cmd != "SyncHdr")
        return Status(
            cmd_id=cmd_id,
            msg_ref=_value(c, "MsgRef", path),
            cmd_ref="0" if cmd_ref is None else cmd_ref,
            cmd=cmd,
            target_refs=_values(children, "TargetRef", path) if "TargetRef" in c else [],
            source_refs=_values(children, "SourceRef", path) if "SourceRef" in c else [],
            cred=_optional(c, "Cred", _node_to_cred, path, strays),
            chal=_optional(c, "Chal", _node_to_chal, path, strays),
            data=_number(c, "Data", path, True),
            items=_items(c, children, path, None, strays),
        )
    if cls is Results:
        meta = _optional(c, "Meta", _node_to_meta, path, strays)
        return Results(
            cmd_id=cmd_id,
            msg_ref=_value(c, "MsgRef", path),
            cmd_ref=_value(c, "CmdRef", path, True),
            meta=meta,
            target_refs=_values(children, "TargetRef", path) if "TargetRef" in c else [],
            source_refs=_values(children, "SourceRef", path) if "SourceRef" in c else [],
            items=_items(c, children, path, meta, strays),
        )
    if cls is Alert:
        return Alert(
            cmd_id=cmd_id,
            no_resp="NoResp" in c,
            cred=_optional(c, "Cred", _node_to_cred, path, strays),
            data=_number(c, "Data", path),
            correlator=_value(c, "Correlator", path),
            items=_items(c, children, path, None, strays),
        )
    if issubclass(cls, Container):
        return cls(
            cmd_id=cmd_id,
            no_resp="NoResp" in c,
            meta=_optional(c, "Meta", _node_to_meta, path, strays),
            commands=_nodes_to_commands(node, path, ("CmdID", "NoResp", "Meta"), strays),
        )
    meta = _optional(c, "Meta", _node_to_meta, path, strays)
    cmd = cls(
        cmd_id=cmd_id,
        no_resp="NoResp" in c,
        cred=_optional(c, "Cred", _node_to_cred, path, strays),
        meta=meta,
        items=_items(c, children, path, meta, strays),
    )
    if cls is Exec:
        cmd.correlator = _value(c, "Correlator", path)
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


def _items(first, children, path, command_meta, strays):
    if "Item" not in first:
        return []
    inherited = command_meta.format if command_meta is not None else None
    items = []
    for child in children:
        if child.name == "Item":
            items.append(_node_to_item(child, (path, ("Item", len(items) + 1)), inherited,
                                       strays))
    return items


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
    return _node_to_item(node, path, inherited_format, [])


def _node_to_item(node, path, inherited_format, strays):
    target = source = meta = data_node = None
    more_data = False
    for child in node.children:  # the usual Item: Target, Source, Meta, Data, MoreData once each
        name = child.name
        if name == "Data" and data_node is None:
            data_node = child
        elif name == "Meta" and meta is None:
            meta = child
        elif name == "Source" and source is None:
            source = child
        elif name == "Target" and target is None:
            target = child
        elif name == "MoreData" and not more_data:
            more_data = True
        else:
            return _node_to_item_any(node, path, inherited_format, strays)
    # (what _node_to_item_any does for it, in the same order: the same first error)
    if meta is not None:
        meta = _node_to_meta(meta, (path, "Meta"), strays)
    data = None if data_node is None else _item_data(data_node, (path, "Data"))
    if data is not None and not isinstance(data, Node):
        fmt = meta.format if meta is not None and meta.format else inherited_format
        data = _settle_data(data, fmt)
    return Item(
        target=None if target is None else _node_to_locref(target, (path, "Target"), strays),
        source=None if source is None else _node_to_locref(source, (path, "Source"), strays),
        meta=meta,
        data=data,
        more_data=more_data,
    )


def _node_to_item_any(node, path, inherited_format, strays):
    children = node.children
    c = _index(children)
    _check(c, children, _KNOWN_CHILDREN["Item"], strays)
    data_node = c.get("Data")
    meta = _optional(c, "Meta", _node_to_meta, path, strays)
    bare_type = _value(c, "Type", path)  # MS-MDM examples put Type directly under Item
    if bare_type and (meta is None or meta.type is None):
        meta = meta or Meta()
        meta.type = bare_type
    data = None if data_node is None else _item_data(data_node, (path, "Data"))
    if data is not None and not isinstance(data, Node):
        fmt = meta.format if meta is not None and meta.format else inherited_format
        data = _settle_data(data, fmt)
    return Item(
        target=_optional(c, "Target", _node_to_locref, path, strays),
        source=_optional(c, "Source", _node_to_locref, path, strays),
        meta=meta,
        data=data,
        more_data="MoreData" in c,
    )


def _item_data(node, path):
    """``<Data>`` content as is: str, bytes (OPAQUE) or one embedded element."""
    if node.children:
        if len(node.children) != 1:
            raise ModelError("Data holds %d elements, expected one" % (len(node.children),),
                             path=_p(path))
        child = node.children[0]
        if child.name == "MgmtTree" and child.ns == NS_SYNCML:
            child = _rekey(child, NS_SYNCML, NS_DMDDF)  # inline TNDS without its xmlns
        return child
    return "" if node.text is None else node.text


def node_to_meta(node, path="Meta"):
    """A :class:`Meta` from ``<Meta>``; metinf children in any namespace."""
    return _node_to_meta(node, path, None)


def _node_to_meta(node, path, _strays):
    # Meta is a leaf for unknown_elements: its extras are kept, not listed
    fields = {}
    for child in node.children:  # the usual Meta: each field once, as plain text
        spec = _META_BY_NAME.get(child.name)
        text = child.text
        if spec is None or text.__class__ is not str or child.children:
            break
        attr, is_int = spec
        if attr in fields:
            break  # a second copy: the first counts
        text = text.strip(XML_WHITESPACE)
        if is_int:
            if not _DIGITS.match(text):
                break
            text = int(text)
        fields[attr] = text
    else:
        return Meta(**fields)
    return _node_to_meta_any(node, path)


#: element name -> (Meta field, whether an int) for the Meta fields but EMI
_META_BY_NAME = {name: (attr, is_int) for name, attr, is_int in META_FIELDS}


def _node_to_meta_any(node, path):
    children = node.children
    c = _index(children)
    meta = Meta()
    for name, attr, is_int in META_FIELDS:
        if name in c:
            setattr(meta, attr, _number(c, name, path) if is_int else _value(c, name, path))
    if "EMI" in c:
        meta.emi = _values(children, "EMI", path)
    if not c.keys() <= _META_NAMES:
        meta.extra = [
            _rekey(child, NS_SYNCML, NS_METINF)
            for child in children
            if child.name not in _META_NAMES
        ]
    return meta


def _node_to_locref(node, path, strays):
    children = node.children
    if len(children) == 1:  # the usual <Target><LocURI>...</LocURI></Target>
        child = children[0]
        text = child.text
        if child.name == "LocURI" and text.__class__ is str and not child.children:
            return LocRef(loc_uri=text.strip(XML_WHITESPACE))
    c = _index(children)
    if not c.keys() <= _KNOWN_CHILDREN[node.name if node.name == "Source" else "Target"]:
        strays.append(children)
    return LocRef(loc_uri=_value(c, "LocURI", path, True), loc_name=_value(c, "LocName", path))


def _node_to_cred(node, path, strays):
    c = _index(node.children)
    if not c.keys() <= _KNOWN_CHILDREN["Cred"]:
        strays.append(node)
    return Cred(meta=_optional(c, "Meta", _node_to_meta, path, strays),
                data=_value(c, "Data", path) or "")


def _node_to_chal(node, path, strays):
    c = _index(node.children)
    if not c.keys() <= _KNOWN_CHILDREN["Chal"]:
        strays.append(node)
    return Chal(meta=_optional(c, "Meta", _node_to_meta, path, strays) or Meta())


def _optional(first, name, read, path, strays):
    child = first.get(name)
    if child is None:
        return None
    return read(child, (path, name), strays)


def _rekey(node, old, new):
    """A copy of ``node`` with namespace key ``old`` replaced by ``new``."""
    if node.ns != old:
        return node
    copy = Node(node.name, new, None, node.text, node.attrs)
    copy.children = [_rekey(child, old, new) for child in node.children]
    return copy


# The optional C accelerator (``_model_mapping.h``, built into
# ``_wbxml_speedups``) maps the common shapes of a message to the same model
# and answers None for anything else, which this module then maps (or refuses)
# as always.  DMGW_PURE_MODEL=1 keeps it unused.
_MAPPED_CLASSES = (SyncML, SyncHdr, LocRef, Cred, Chal, Meta, Item, Status, Results, Alert,
                   Add, Replace, Delete, Copy, Get, Exec, Atomic, Sequence)


def _load_c_map():
    if os.environ.get("DMGW_PURE_MODEL", "") not in ("", "0"):
        return None
    try:
        from ._wbxml_speedups import map_message, mapping_fields, setup_mapping
    except ImportError:  # not built: the pure reader alone
        return None
    # only for the model it was written for: plain dataclasses with these fields
    for cls, names in zip(_MAPPED_CLASSES, mapping_fields()):
        if (not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__")
                or tuple(f.name for f in dataclasses.fields(cls)) != names
                or not all(f.init for f in dataclasses.fields(cls))):
            return None
    if not setup_mapping(Node, _MAPPED_CLASSES, _settle_data):
        return None
    return map_message


_c_map = _load_c_map()
