"""TNDS: whole subtrees as ``MgmtTree`` documents (dm-tree-objects §4-5).

:func:`export_tnds` turns a subtree into a ``MgmtTree``
:class:`~dmgateway.codec.element.Node` (what ``?list=TNDS…`` returns);
:func:`import_tnds` applies one to the tree with Add or Replace semantics,
all or nothing.  :func:`to_xml`, :func:`to_wbxml` and :func:`read_tnds` go
between nodes and the two wire formats through the codecs.

Exported Paths and NodeNames are relative to the parent of the start node
(the start node is the first ``Node``); imported ones are relative to the
command's Target, and a top-level ``Node`` with an empty ``NodeName`` is the
Target itself.
"""

import base64
import binascii

from ..codec.element import NS_DMDDF, Node, text_of
from ..codec.errors import CodecError
from .ddf import FORMATS
from .status import BAD_REQUEST, NOT_SUPPORTED, PROPERTIES, TNDS_WBXML, TNDS_XML
from .uri import URI, TreeError, quote_segment, unquote_segment

__all__ = [
    "TNDS_XML",
    "TNDS_WBXML",
    "TNDS_PROPERTIES",
    "parse_list_spec",
    "export_tnds",
    "import_tnds",
    "read_tnds",
    "to_xml",
    "to_wbxml",
]

TNDS_PROPERTIES = frozenset(PROPERTIES) | {"Value"}


def parse_list_spec(listing, uri=None):
    """The properties a ``TNDS[+P…|-P…]`` list attribute asks for (406 if invalid)."""
    if not listing.startswith("TNDS"):
        raise TreeError(NOT_SUPPORTED, uri, "not a TNDS list")
    rest = listing[4:]
    if not rest:
        return TNDS_PROPERTIES
    sign = rest[0]
    if sign not in "+-" or (("+" in rest) and ("-" in rest)):
        raise TreeError(NOT_SUPPORTED, uri, "bad TNDS list %r" % (listing,))
    names = rest[1:].split(sign)
    if any(name not in TNDS_PROPERTIES for name in names):
        raise TreeError(NOT_SUPPORTED, uri, "bad TNDS list %r" % (listing,))
    return frozenset(names) if sign == "+" else TNDS_PROPERTIES - set(names)


# -- export ------------------------------------------------------------------


def export_tnds(tree, uri, server=None, props=TNDS_PROPERTIES, *, man=None, mod=None,
                flat=False):
    """The ``MgmtTree`` node for the subtree at ``uri`` that ``server`` may read.

    Format and Type are always written (they are the structure); ``props``
    selects the other run-time properties and ``Value``.  ``flat`` writes
    every node directly under ``MgmtTree`` with a ``Path``.
    """
    u = tree.parse(uri)
    infos = tree.walk(URI(u.segments), server)
    root = Node("MgmtTree", NS_DMDDF)
    root.add("VerDTD", "1.2")
    if man is not None:
        root.add("Man", man)
    if mod is not None:
        root.add("Mod", mod)
    base = len(u.segments) - 1 if u.segments else 0
    if not u.segments:
        infos = infos[1:]  # the root itself is not a Node
    elements = {}
    for info in infos:
        rel = info.segments[base:]
        element = _element(info, props)
        parent = elements.get(rel[:-1])
        if flat or parent is None:
            if rel[:-1]:
                element.children.insert(1, Node("Path", NS_DMDDF,
                                                text="/".join(map(quote_segment, rel[:-1]))))
            root.append(element)
        else:
            parent.append(element)
        elements[rel] = element
    return root


def _element(info, props):
    element = Node("Node", NS_DMDDF)
    element.add("NodeName", info.name)
    rt = element.add("RTProperties")
    if "ACL" in props and info.acl:
        rt.add("ACL", info.acl)
    rt.add("Format").add(info.format)
    if "Name" in props:
        rt.add("Name", info.name)
    if "Size" in props and info.size is not None:
        rt.add("Size", str(info.size))
    if "Title" in props and info.title:
        rt.add("Title", info.title)
    if "TStamp" in props and info.tstamp:
        rt.add("TStamp", info.tstamp)
    kind = rt.add("Type")
    if info.format == "node":
        kind.add("DDFName", info.type or None)
    else:
        kind.add("MIME", info.type or "text/plain")
    if "VerNo" in props:
        rt.add("VerNo", str(info.verno))
    if "Value" in props and info.format != "node":
        element.add("Value", info.value)
    return element


def to_xml(mgmt_tree):
    """UTF-8 XML of a ``MgmtTree`` node (``application/vnd.syncml.dmtnds+xml``)."""
    from ..codec.xml import serialize

    return serialize(mgmt_tree)


def to_wbxml(mgmt_tree):
    """A stand-alone WBXML document (``application/vnd.syncml.dmtnds+wbxml``)."""
    from ..codec.wbxml import encode_tnds

    return encode_tnds(mgmt_tree)


def read_tnds(data, content_type=None):
    """The ``MgmtTree`` node of a TNDS in XML or WBXML (bytes, str or a Node).

    Raises :class:`TreeError` 400 for anything that is not a TNDS document.
    """
    if isinstance(data, Node):
        root = data
    else:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise TreeError(BAD_REQUEST, None, "no TNDS document")
        data = bytes(data)
        try:
            if (content_type or "").lower().endswith("wbxml") or data[0] <= 3:
                from ..codec.wbxml import decode_tnds

                root = decode_tnds(data)
            else:
                from ..codec.xml import parse

                root = parse(data)
        except CodecError as error:
            raise TreeError(BAD_REQUEST, None, "bad TNDS document: %s" % (error,)) from None
    if root.name != "MgmtTree":
        raise TreeError(BAD_REQUEST, None, "TNDS root is %r, not MgmtTree" % (root.name,))
    return root


# -- import ------------------------------------------------------------------


class _Entry:
    """One ``Node`` of a TNDS document, flattened."""

    __slots__ = ("rel", "element", "top", "format", "type", "acl", "title", "value")

    def __init__(self, rel, element, top):
        self.rel = rel
        self.element = element
        self.top = top
        rt = element.find("RTProperties")
        self.format = self.type = self.acl = self.title = None
        if rt is not None:
            fmt = rt.find("Format")
            if fmt is not None and fmt.children:
                self.format = fmt.children[0].name
                if self.format not in FORMATS:
                    raise TreeError(BAD_REQUEST, None, "unknown Format %r" % (self.format,))
            kind = rt.find("Type")
            if kind is not None:
                for child in kind.children:
                    self.type = text_of(child) or None
            self.acl = text_of(rt.find("ACL"))
            self.title = text_of(rt.find("Title"))
        value = element.find("Value")
        self.value = None if value is None else (value.text if value.text is not None else "")
        if self.format is None:
            self.format = "chr" if self.value is not None else "node"
        if self.format == "node" and self.value not in (None, ""):
            raise TreeError(BAD_REQUEST, None, "interior Node with a Value")
        if self.format == "bin" and isinstance(self.value, str):
            try:  # binary leaves travel as base64 text in XML
                self.value = base64.b64decode(self.value, validate=False)
            except (binascii.Error, ValueError):
                raise TreeError(BAD_REQUEST, None, "bad base64 Value") from None




def _entries(root):
    """Every Node of the document, parents first, with its Target-relative path."""
    out = []
    work = [(child, None) for child in reversed(root.findall("Node"))]
    while work:
        element, parent = work.pop()
        name_el = element.find("NodeName")
        name = text_of(name_el) if name_el is not None else ""
        if parent is None:
            path = text_of(element.find("Path")) or ""
            if path.startswith("./"):
                path = path[2:]
            base = tuple(unquote_segment(s) for s in path.split("/")) if path else ()
            if any(s in ("", ".", "..") or "/" in s for s in base):
                raise TreeError(BAD_REQUEST, None, "bad Path %r" % (path,))
        else:
            base = parent.rel
            if not name:
                raise TreeError(BAD_REQUEST, None, "nested Node without a NodeName")
        if name and (name in (".", "..") or "/" in name):
            raise TreeError(BAD_REQUEST, None, "bad NodeName %r" % (name,))
        entry = _Entry(base + ((name,) if name else ()), element, parent is None)
        out.append(entry)
        for child in reversed(element.findall("Node")):
            work.append((child, entry))
    return out


def import_tnds(tree, target, data, server=None, *, replace=False, content_type=None,
                place=None, rewrite_prefix=None):
    """Apply the TNDS ``data`` at ``target``; the tree is unchanged on failure.

    Add semantics create every node (existing interior nodes are merged, an
    existing leaf is 418); Replace semantics first empty each existing
    top-level node of non-permanent children, then replace/add.  ``place``
    (used by ``./Inbox``) maps a top-level entry ``(rel, mo_id)`` to the
    absolute segments where it goes, or None to skip it; leaf values
    starting with ``rewrite_prefix`` + ``/`` are rewritten to where the
    referenced node was placed.  Returns the absolute URIs of the top nodes.
    """
    u = tree.parse(target)
    entries = _entries(read_tnds(data, content_type))
    placed = {}
    snapshot = tree.snapshot()
    tops = []
    acls = []
    try:
        todo = []
        for entry in entries:
            where = _locate(u, entry, placed, place)
            if where is None:
                continue
            placed[entry.rel] = where
            todo.append((entry, where))
            if entry.top:
                tops.append(URI(where).path)
        for entry, where in todo:
            if rewrite_prefix and isinstance(entry.value, str):
                entry.value = _rewrite(entry.value, rewrite_prefix, placed)
            acls.append((URI(where), entry.acl, _apply(tree, entry, URI(where), server, replace)))
        # ACLs describe the final state: set them once the subtree exists
        for where, acl, created in acls:
            if acl is None:
                continue
            if created:
                tree.set_acl(where, acl)
            else:
                tree.replace(where.path + "?prop=ACL", acl, server=server)
    except TreeError:
        tree.restore(snapshot)
        raise
    return tops


def _locate(target, entry, placed, place):
    if not entry.top:
        parent = placed.get(entry.rel[:-1])
        return None if parent is None else parent + entry.rel[-1:]
    for cut in range(len(entry.rel) - 1, 0, -1):  # Path into an already placed node
        if entry.rel[:cut] in placed:
            return placed[entry.rel[:cut]] + entry.rel[cut:]
    if place is not None:
        return place(entry.rel, entry.type if entry.format == "node" else None)
    return target.segments + entry.rel


def _rewrite(value, prefix, placed):
    if not value.startswith(prefix + "/"):
        return value
    rel = tuple(unquote_segment(s) for s in value[len(prefix) + 1:].split("/"))
    for cut in range(len(rel), 0, -1):
        if rel[:cut] in placed:
            return URI(placed[rel[:cut]] + rel[cut:]).path
    return value


def _apply(tree, entry, where, server, replace):
    """Create or replace one node; True if it was created."""
    uri = where.path
    created = False
    interior = entry.format == "node"
    if tree.exists(where):
        info = tree.info(where)
        if replace:
            if interior:
                tree.replace(uri, None, "node", entry.type, server)
                if entry.top:
                    _empty(tree, where)
            else:
                tree.replace(uri, entry.value, entry.format, entry.type, server)
        elif not (interior and info.format == "node" and entry.rel):
            raise TreeError(418, uri, "node exists")
    else:
        tree.add(uri, entry.value if not interior else None, entry.format, entry.type, server)
        created = True
    if entry.title is not None:
        tree.set_title(where, entry.title)
    return created


def _empty(tree, where):
    """Remove the non-permanent children of ``where`` (Replace of a subtree)."""
    node = tree._node(where)
    for name, child in list(node.children.items()):
        if not child.permanent:
            del node.children[name]
