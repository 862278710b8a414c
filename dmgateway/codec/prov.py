"""OMA Client Provisioning (WAP PROV 1.0) documents, as used for CP bootstrap.

A document is a tree of characteristics holding parameters::

    ProvDoc(characteristics=[
        Characteristic("APPLICATION", [Parm("APPID", "w7"), Parm("INIT")],
                       [Characteristic("APPADDR", [Parm("ADDR", "https://dms.example.com/dm")])]),
    ])

It reads from and writes to WBXML (``application/vnd.wap.connectivity-wbxml``,
public id 0x0B) and XML (``-//WAPFORUM//DTD PROV 1.0//EN``).  Within a
characteristic the parameters come before the sub-characteristics on output;
the order inside each list is kept.  Names and values are kept exactly (CP is
case-sensitive).  Readers raise only :class:`~.errors.CodecError` subclasses:
:class:`~.errors.WBXMLCodecError` / :class:`~.errors.XMLCodecError` for bad
markup and :class:`~.errors.ModelError` for markup that is not a
provisioning document.
"""

from dataclasses import dataclass, field
from typing import List, Optional

from . import wbxml
from .element import NS_PROV, Node
from .errors import ModelError
from .wbxml_pages import FPI_PROV10, PROV10

__all__ = [
    "ProvDoc",
    "Characteristic",
    "Parm",
    "decode_wbxml",
    "encode_wbxml",
    "decode_xml",
    "encode_xml",
    "node_to_doc",
    "doc_to_node",
    "find_w7",
]

DOCTYPE = ('<!DOCTYPE wap-provisioningdoc PUBLIC "%s" '
           '"http://www.wapforum.org/DTD/prov.dtd">' % (FPI_PROV10,))


@dataclass
class Parm:
    """``<parm name=... value=.../>``; ``value`` is ``None`` when absent (``INIT``)."""

    name: str
    value: Optional[str] = None


@dataclass
class Characteristic:
    """``<characteristic type=...>`` with its parameters and sub-characteristics."""

    type: str
    parms: List[Parm] = field(default_factory=list)
    characteristics: List["Characteristic"] = field(default_factory=list)

    def get(self, name, default=None):
        """The value of the first parameter called ``name``."""
        for parm in self.parms:
            if parm.name == name:
                return parm.value
        return default

    def has(self, name):
        return any(parm.name == name for parm in self.parms)

    def values(self, name):
        """The values of every parameter called ``name`` (e.g. ``TO-NAPID``)."""
        return [parm.value for parm in self.parms if parm.name == name]

    def children(self, type):
        """The sub-characteristics of type ``type``."""
        return [c for c in self.characteristics if c.type == type]


@dataclass
class ProvDoc:
    """``<wap-provisioningdoc>``; ``version`` is ``None`` when the attribute is absent."""

    version: Optional[str] = "1.0"
    characteristics: List[Characteristic] = field(default_factory=list)

    def children(self, type):
        """The top-level characteristics of type ``type``."""
        return [c for c in self.characteristics if c.type == type]


def find_w7(doc):
    """The ``APPLICATION`` characteristics with ``APPID`` w7 (DM accounts)."""
    return [app for app in doc.children("APPLICATION") if "w7" in app.values("APPID")]


# -- node trees ------------------------------------------------------------


def node_to_doc(node):
    """The :class:`ProvDoc` of a ``wap-provisioningdoc`` element tree."""
    if not isinstance(node, Node) or node.name != "wap-provisioningdoc":
        name = node.name if isinstance(node, Node) else type(node).__name__
        raise ModelError("root element is %r, not wap-provisioningdoc" % (name,), path=name)
    path = node.name
    doc = ProvDoc(version=_attrs(node).get("version"))
    counts = {}
    for child in node.children:
        counts[child.name] = counts.get(child.name, 0) + 1
        child_path = "%s/%s[%d]" % (path, child.name, counts[child.name])
        if child.name != "characteristic":
            raise ModelError("unexpected element %r" % (child.name,), path=child_path)
        doc.characteristics.append(_characteristic(child, child_path))
    return doc


def _characteristic(node, path):
    attrs = _attrs(node)
    ctype = attrs.get("type")
    if not ctype:
        raise ModelError("characteristic without a type", path=path)
    result = Characteristic(ctype)
    counts = {}
    for child in node.children:
        counts[child.name] = counts.get(child.name, 0) + 1
        child_path = "%s/%s[%d]" % (path, child.name, counts[child.name])
        if child.name == "parm":
            if child.children:
                raise ModelError("parm with content", path=child_path)
            parm = _attrs(child)
            if not parm.get("name"):
                raise ModelError("parm without a name", path=child_path)
            result.parms.append(Parm(parm["name"], parm.get("value")))
        elif child.name == "characteristic":
            result.characteristics.append(_characteristic(child, child_path))
        else:
            raise ModelError("unexpected element %r" % (child.name,), path=child_path)
    return result


def _attrs(node):
    return node.attrs or {}


def doc_to_node(doc):
    """The ``wap-provisioningdoc`` element tree of ``doc``."""
    if not isinstance(doc, ProvDoc):
        raise ModelError("expected ProvDoc, not %s" % (type(doc).__name__,))
    root = Node("wap-provisioningdoc", NS_PROV)
    if doc.version is not None:
        root.attrs = {"version": _text(doc.version, "wap-provisioningdoc/@version")}
    for index, char in enumerate(doc.characteristics, 1):
        root.append(_characteristic_node(char, "wap-provisioningdoc/characteristic[%d]" % index))
    return root


def _characteristic_node(char, path):
    if not isinstance(char, Characteristic):
        raise ModelError("expected Characteristic, not %s" % (type(char).__name__,), path=path)
    node = Node("characteristic", NS_PROV, attrs={"type": _name(char.type, path + "/@type")})
    for index, parm in enumerate(char.parms, 1):
        parm_path = "%s/parm[%d]" % (path, index)
        if not isinstance(parm, Parm):
            raise ModelError("expected Parm, not %s" % (type(parm).__name__,), path=parm_path)
        attrs = {"name": _name(parm.name, parm_path + "/@name")}
        if parm.value is not None:
            attrs["value"] = _text(parm.value, parm_path + "/@value")
        node.append(Node("parm", NS_PROV, attrs=attrs))
    for index, sub in enumerate(char.characteristics, 1):
        node.append(_characteristic_node(sub, "%s/characteristic[%d]" % (path, index)))
    return node


def _text(value, path):
    if not isinstance(value, str):
        raise ModelError("expected a string, not %s" % (type(value).__name__,), path=path)
    return value


def _name(value, path):
    if not _text(value, path):
        raise ModelError("empty name", path=path)
    return value


# -- wire formats ------------------------------------------------------------


def decode_wbxml(data, **limits):
    """A WBXML provisioning document -> :class:`ProvDoc` (any public id)."""
    return node_to_doc(wbxml.decode_node(data, PROV10, **limits))


def encode_wbxml(doc):
    """:class:`ProvDoc` -> WBXML 1.3, public id 0x0B, UTF-8, no string table."""
    return wbxml.encode_node(doc_to_node(doc), PROV10)


def decode_xml(data, **limits):
    """An XML provisioning document -> :class:`ProvDoc`.

    The parser loads no DTD and expands no entities; a DOCTYPE naming the
    PROV DTD (as libwbxml writes) is accepted, internal declarations are not.
    """
    from . import xml

    return node_to_doc(xml.parse(data, **limits))


def encode_xml(doc):
    """:class:`ProvDoc` -> UTF-8 XML with the PROV 1.0 DOCTYPE."""
    from . import xml

    body = xml.serialize(doc_to_node(doc))
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + DOCTYPE.encode("ascii") + b"\n" + body
