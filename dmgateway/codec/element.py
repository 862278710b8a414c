"""A small, format-neutral element tree shared by the XML and WBXML codecs.

Both wire formats are read into :class:`Node` trees and written from them;
the SyncML and provisioning models map to and from nodes only.  That is what
makes XML and WBXML round-trip to the same model.

``ns`` is a namespace *key*, not a URI: ``"SyncML"`` (code page 0),
``"MetInf"`` (page 1), ``"DMDDF"`` (page 2) or ``"PROV"``.  The XML codec maps
keys to URIs and back (case-insensitively); the WBXML codec maps keys to code
pages.  ``text`` is ``str`` for character data, ``bytes`` for WBXML OPAQUE
data, or ``None``; an element has either text or children, never both
(SyncML and PROV have no mixed content).
"""

NS_SYNCML = "SyncML"
NS_METINF = "MetInf"
NS_DMDDF = "DMDDF"
NS_PROV = "PROV"


class Node:
    __slots__ = ("name", "ns", "children", "text", "attrs")

    def __init__(self, name, ns=NS_SYNCML, children=None, text=None, attrs=None):
        self.name = name
        self.ns = ns
        self.children = children if children is not None else []
        self.text = text
        self.attrs = attrs

    def append(self, child):
        self.children.append(child)
        return child

    def add(self, name, text=None, ns=None):
        """Append a child element named ``name`` (same namespace by default)."""
        child = Node(name, self.ns if ns is None else ns, None, text)
        self.children.append(child)
        return child

    def find(self, name):
        for child in self.children:
            if child.name == name:
                return child
        return None

    def findall(self, name):
        return [child for child in self.children if child.name == name]

    def __eq__(self, other):
        if not isinstance(other, Node):
            return NotImplemented
        return (
            self.name == other.name
            and self.ns == other.ns
            and self.text == other.text
            and (self.attrs or {}) == (other.attrs or {})
            and self.children == other.children
        )

    __hash__ = None

    def __repr__(self):
        parts = ["%s:%s" % (self.ns, self.name)]
        if self.attrs:
            parts.append(repr(self.attrs))
        if self.text is not None:
            parts.append(repr(self.text))
        if self.children:
            parts.append("%d children" % (len(self.children),))
        return "<Node %s>" % (" ".join(parts),)


def text_of(node):
    """The stripped text of ``node`` (OPAQUE bytes read as UTF-8), or None."""
    if node is None or node.text is None:
        return None
    if isinstance(node.text, bytes):
        return node.text.decode("utf-8", "replace")
    return node.text.strip()
