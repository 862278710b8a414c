"""The node model of the management tree (dm-tree-objects §1-3).

:class:`Node` is one interior node or leaf with its run-time properties
(ACL, Title, TStamp, VerNo ...), its AccessType and refusals; the tree
(:mod:`.tree`) links them.  :class:`NodeData` and :class:`NodeInfo` are
what reading a node returns.
"""

from collections import namedtuple

from .status import BAD_URI
from .uri import TreeError

__all__ = ["COMMANDS", "WRITES", "Node", "NodeData", "NodeInfo", "check_name", "node_size"]

#: the server commands a node's AccessType and refusals name
COMMANDS = ("Add", "Copy", "Delete", "Exec", "Get", "Replace")
WRITES = ("Add", "Delete", "Replace")


NodeData = namedtuple("NodeData", "uri value format type")
NodeData.__doc__ = """One node or property as read.  Interior node: ``value`` is the list of
child names, ``format`` ``"node"``.  Leaf: ``str`` or ``bytes`` (Format ``bin``)."""

NodeInfo = namedtuple("NodeInfo", "segments name format type value acl title tstamp verno size")
NodeInfo.__doc__ = """Everything about one node, as :meth:`ManagementTree.walk` reports it
(``acl`` is the node's own ACL string, ``""`` if it inherits)."""


class Node:
    """One node: a leaf when ``format`` is not ``"node"``, else interior (``children``)."""

    __slots__ = ("name", "format", "type", "value", "children", "acl", "title", "tstamp",
                 "verno", "permanent", "access", "refuse", "ddf")

    def __init__(self, name, format="node", type=None, value=None):
        self.name = name
        self.format = format
        self.type = type
        self.value = None if format == "node" else ("" if value is None else value)
        self.children = {} if format == "node" else None
        self.acl = {}
        self.title = ""
        self.tstamp = ""
        self.verno = 0
        self.permanent = False
        self.access = None  # explicit AccessType; None = from the DDF (or everything)
        self.refuse = {}    # command -> status, for this node and below
        self.ddf = None     # a DDFNode bound to this node

    @property
    def interior(self):
        return self.children is not None

    def clone(self):
        copy = Node(self.name, self.format, self.type, self.value)
        for slot in ("acl", "title", "tstamp", "verno", "permanent", "access", "ddf"):
            setattr(copy, slot, getattr(self, slot))
        copy.refuse = dict(self.refuse)
        if self.children is not None:
            copy.children = {name: child.clone() for name, child in self.children.items()}
        return copy


def node_size(value):
    """The Size property of a leaf value: its length in bytes (text as UTF-8)."""
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return len((value or "").encode("utf-8", "surrogatepass"))


def check_name(name, uri=None):
    """Raise 414 unless ``name`` can be a node name."""
    if (not isinstance(name, str) or name in ("", ".", "..") or "/" in name
            or any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in name)):
        raise TreeError(BAD_URI, uri, "bad node name %r" % (name,))
    return name

