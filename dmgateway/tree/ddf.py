"""Device Description Framework documents (dm-tree-objects §5.1).

A DDF describes an MO: per node its AccessType, DefaultValue, Description,
DFFormat, Occurrence, Scope, DFTitle, DFType and CaseSense.  :func:`parse_ddf`
reads the ``MgmtTree`` (XML or WBXML bytes, or an already decoded
:class:`~dmgateway.codec.element.Node`) into :class:`DDFNode` trees; the
management tree uses them for AccessType, Format and Scope checks.  A node
with an empty ``NodeName`` is a run-time named placeholder (``<X>``), kept
with ``name=None``.

Reading is tolerant (unknown elements are skipped, AccessType may be empty)
and raises only :class:`~dmgateway.codec.errors.ModelError` (or the codecs'
own errors for bad markup).
"""

from dataclasses import dataclass, field
from typing import List, Optional

from ..codec.element import Node, text_of
from ..codec.errors import ModelError

__all__ = ["DDFNode", "DDF", "FORMATS", "ALL_ACCESS", "parse_ddf", "ddf_from_node"]

FORMATS = ("b64", "bin", "bool", "chr", "int", "node", "null", "xml", "date", "time", "float")
ALL_ACCESS = frozenset(("Add", "Copy", "Delete", "Exec", "Get", "Replace"))
_OCCURRENCES = ("One", "ZeroOrOne", "ZeroOrMore", "OneOrMore", "ZeroOrN", "OneOrN")


@dataclass
class DDFNode:
    """The description of one node (or, with ``name=None``, of ``<X>``)."""

    name: Optional[str]
    access: frozenset = ALL_ACCESS
    format: str = "chr"
    mime: Optional[str] = None        # DFType/MIME for leaves
    mo_id: Optional[str] = None       # DFType/DDFName for interior nodes
    occurrence: tuple = ("One", None)  # (kind, n) -- n only for ZeroOrN/OneOrN
    scope: str = "Dynamic"
    default: Optional[str] = None
    description: Optional[str] = None
    title: Optional[str] = None
    case_sensitive: bool = True
    children: List["DDFNode"] = field(default_factory=list)

    @property
    def permanent(self):
        return self.scope == "Permanent"

    @property
    def interior(self):
        return self.format == "node"

    def child(self, name):
        """The description of child ``name``: an exact match, else the placeholder."""
        placeholder = None
        for child in self.children:
            if child.name is None:
                placeholder = placeholder or child
            elif child.name == name or (not child.case_sensitive
                                        and child.name.lower() == name.lower()):
                return child
        return placeholder

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class DDF:
    """A DDF document: its top-level nodes, and optional Man/Mod."""

    roots: List[DDFNode] = field(default_factory=list)
    man: Optional[str] = None
    mod: Optional[str] = None

    def find_by_type(self, mo_id):
        """The first node whose DFType DDFName is ``mo_id`` (the MO's root), or None."""
        for root in self.roots:
            for node in root.walk():
                if node.mo_id == mo_id:
                    return node
        return None

    def lookup(self, segments):
        """The description of the node at ``segments`` below the document roots."""
        nodes = self.roots
        found = None
        for name in segments:
            found = None
            for node in nodes:
                if node.name == name:
                    found = node
                    break
            else:
                found = next((n for n in nodes if n.name is None), None)
            if found is None:
                return None
            nodes = found.children
        return found


def parse_ddf(data, content_type=None):
    """A :class:`DDF` from XML or WBXML bytes (sniffed) or a ``MgmtTree`` node."""
    if isinstance(data, Node):
        return ddf_from_node(data)
    if not isinstance(data, (bytes, bytearray)):
        raise ModelError("DDF must be bytes or a Node, not %s" % (type(data).__name__,))
    data = bytes(data)
    wbxml = (content_type or "").lower().endswith("wbxml") or data[:1] in (b"\x01", b"\x02", b"\x03")
    if wbxml:
        from ..codec.wbxml import decode_tnds

        return ddf_from_node(decode_tnds(data))
    from ..codec.xml import parse

    return ddf_from_node(parse(data))


def ddf_from_node(root):
    if root.name != "MgmtTree":
        raise ModelError("root element is %r, not MgmtTree" % (root.name,), path=root.name)
    ddf = DDF(man=text_of(root.find("Man")), mod=text_of(root.find("Mod")))
    for index, child in enumerate(root.findall("Node"), 1):
        ddf.roots.append(_node(child, "MgmtTree/Node[%d]" % (index,), 0))
    return ddf




def _first_child_name(node, path, allowed):
    if node is None:
        return None
    for child in node.children:
        if child.name in allowed:
            return child.name
    raise ModelError("expected one of %s" % (", ".join(allowed),), path=path)


def _node(element, path, depth):
    if depth > 64:
        raise ModelError("DDF nested too deeply", path=path)
    name_el = element.find("NodeName")
    if name_el is None:
        raise ModelError("Node without NodeName", path=path)
    desc = DDFNode(text_of(name_el) or None)
    props = element.find("DFProperties")
    if props is None:
        raise ModelError("Node without DFProperties", path=path)
    access = props.find("AccessType")
    if access is not None:
        desc.access = frozenset(c.name for c in access.children if c.name in ALL_ACCESS)
    fmt = _first_child_name(props.find("DFFormat"), path + "/DFProperties/DFFormat", FORMATS)
    if fmt:
        desc.format = fmt
    occurrence = props.find("Occurrence")
    if occurrence is not None and occurrence.children:
        kind = occurrence.children[0]
        if kind.name not in _OCCURRENCES:
            raise ModelError("unknown Occurrence %r" % (kind.name,), path=path)
        limit = None
        if kind.name in ("ZeroOrN", "OneOrN"):
            try:
                limit = int(text_of(kind) or "")
            except ValueError:
                raise ModelError("Occurrence without a number", path=path) from None
        desc.occurrence = (kind.name, limit)
    scope = _first_child_name(props.find("Scope"), path + "/DFProperties/Scope",
                              ("Permanent", "Dynamic"))
    if scope:
        desc.scope = scope
    case = _first_child_name(props.find("CaseSense"), path + "/DFProperties/CaseSense",
                             ("CS", "CIS"))
    desc.case_sensitive = case != "CIS"
    desc.default = text_of(props.find("DefaultValue"))
    desc.description = text_of(props.find("Description"))
    desc.title = text_of(props.find("DFTitle"))
    dftype = props.find("DFType")
    if dftype is not None:
        desc.mime = text_of(dftype.find("MIME"))
        ddf_name = dftype.find("DDFName")
        if ddf_name is not None:
            desc.mo_id = text_of(ddf_name) or None
    for index, child in enumerate(element.findall("Node"), 1):
        desc.children.append(_node(child, "%s/Node[%d]" % (path, index), depth + 1))
    return desc
