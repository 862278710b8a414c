"""SyncML DM in XML: ``application/vnd.syncml.dm+xml``.

:func:`parse` reads bytes into a :class:`~.element.Node` tree with expat
(:mod:`.xml_reader`, one parser per document, so nothing a peer sends outlives
its document): no DTD loading, no entities (a document declaring any is
refused), no network, bounded size, depth and element count.  It accepts what
devices send: an optional XML declaration or BOM, any quoting, namespace URIs
in any letter case or none at all, CDATA, arbitrary indentation.

:func:`serialize` writes a node tree as compact UTF-8, declaring
``xmlns`` wherever the namespace changes (so every metinf element carries
``xmlns="syncml:metinf"``, as devices expect); ``bytes`` text is written as
base64.

:func:`decode` and :func:`encode` go all the way between bytes and the
:class:`~.syncml.SyncML` model (:func:`decode` reads the common messages
straight to the model in C where that is built, without a node tree); :func:`encode` writes a message straight from
the model (:mod:`.model_writer`, the same bytes as :func:`serialize` of its
tree) and leaves embedded markup and refusals to the tree.  Every failure is an
:class:`~.errors.XMLCodecError` or :class:`~.errors.ModelError`.
"""

import base64
import os
import re

from .element import NS_DMDDF, NS_METINF, NS_PROV, NS_SYNCML, Node
from . import mapping_reader
from .errors import XMLCodecError
from .mapping import message_to_node, node_to_message
from .model_writer import Unhandled, xml_dialect
from .model_writer import write as write_model
from .xml_reader import read

__all__ = [
    "MAX_SIZE",
    "MAX_DEPTH",
    "NS_URI_SYNCML_1_1",
    "NS_URI_SYNCML_1_2",
    "NS_URI_METINF",
    "NS_URI_DMDDF",
    "syncml_namespace",
    "parse",
    "serialize",
    "decode",
    "encode",
]

MAX_SIZE = 8 * 1024 * 1024
MAX_DEPTH = 64

NS_URI_SYNCML_1_1 = "SYNCML:SYNCML1.1"
NS_URI_SYNCML_1_2 = "SYNCML:SYNCML1.2"
NS_URI_METINF = "syncml:metinf"
NS_URI_DMDDF = "syncml:dmddf1.2"

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'

# XML 1.0 (5th ed.) Name without ':' (we never write prefixes)
_NAME_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff"
    "\u200c\u200d\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd"
    "\U00010000-\U000effff"
)
_NAME = re.compile(
    "[%s][%s\\-.0-9\u00b7\u0300-\u036f\u203f\u2040]*\\Z" % (_NAME_START, _NAME_START))
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
    "\r": "&#13;", "\n": "&#10;", "\t": "&#9;",
})


def syncml_namespace(ver_dtd):
    """The root namespace URI to write for a message of SyncML DTD ``ver_dtd``."""
    return NS_URI_SYNCML_1_1 if ver_dtd == "1.1" else NS_URI_SYNCML_1_2


# -- reading --------------------------------------------------------------


def parse(data, *, max_size=MAX_SIZE, max_depth=MAX_DEPTH, max_elements=None):
    """Read an XML document into a :class:`Node` tree (:mod:`.xml_reader`)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise XMLCodecError("XML input must be bytes, not %s" % (type(data).__name__,))
    data = bytes(data)
    if len(data) > max_size:
        raise XMLCodecError("document of %d bytes exceeds the limit of %d" % (len(data), max_size))
    if not data.strip():
        raise XMLCodecError("empty document", offset=0)
    return read(data, max_depth, max_elements)


def decode(data, *, max_size=MAX_SIZE, max_depth=MAX_DEPTH, max_elements=None):
    """The :class:`~.syncml.SyncML` model of an XML DM message."""
    if _c_decode is not None and data.__class__ is bytes and len(data) <= max_size:
        msg = _c_decode(data, max_depth, max_elements)  # the common messages, without Nodes
        if msg is not None:
            return msg
    return node_to_message(parse(data, max_size=max_size, max_depth=max_depth, max_elements=max_elements))


def _load_c_decode():
    """The C reader of the common messages straight to the model (``_xml_tree.h``,
    built into ``_wbxml_speedups``), or None: not built, or the C mapping is
    not in use (DMGW_PURE_MODEL=1), or DMGW_PURE_XML=1.  It answers None for
    anything else, which :func:`parse` and the mapping then read as always."""
    if os.environ.get("DMGW_PURE_XML", "") not in ("", "0") or mapping_reader._c_map is None:
        return None
    try:
        from ._wbxml_speedups import decode_xml
    except ImportError:  # pragma: no cover (built with the mapping it needs)
        return None
    return decode_xml


_c_decode = _load_c_decode()


# -- writing --------------------------------------------------------------


def _path(chain):
    names = []
    while chain is not None:
        chain, name = chain
        names.append(str(name))
    return "/".join(reversed(names))



def serialize(node, *, syncml_uri=None, xml_declaration=False):
    """Compact UTF-8 XML for a :class:`Node` tree.

    ``syncml_uri`` is the URI written for namespace key ``SyncML``; by
    default it follows the tree's ``SyncHdr/VerDTD``.
    """
    if not isinstance(node, Node):
        raise XMLCodecError("not an element tree: %s" % (type(node).__name__,))
    if syncml_uri is None:
        syncml_uri = syncml_namespace(_ver_dtd(node))
    uris = {NS_SYNCML: syncml_uri, NS_METINF: NS_URI_METINF, NS_DMDDF: NS_URI_DMDDF, NS_PROV: ""}
    declarations = {}  # URI -> its xmlns attribute, escaped
    out = [XML_DECLARATION.decode("ascii")] if xml_declaration else []
    add = out.append
    # work items: (node, parent's URI, parent's path chain) to open, or a str
    # to emit as is; a path chain is (parent chain, name), joined for errors only
    work = [(node, "", None)]
    pop, push = work.pop, work.append
    while work:
        item = pop()
        if item.__class__ is str:
            add(item)
            continue
        current, parent_uri, chain = item
        name = current.name
        chain = (chain, name)
        if name.__class__ is not str or name not in _WRITTEN_NAMES:
            if not isinstance(name, str) or not _NAME.match(name):
                raise XMLCodecError("cannot write element name %r" % (name,), path=_path(chain))
            if len(_WRITTEN_NAMES) < _MAX_WRITTEN_NAMES:
                _WRITTEN_NAMES.add(name)
        uri = uris.get(current.ns, current.ns)
        if uri.__class__ is not str and not isinstance(uri, str):
            raise XMLCodecError("bad namespace %r" % (uri,), path=_path(chain))
        start = "<" + name
        if uri != parent_uri:
            declaration = declarations.get(uri)
            if declaration is None:
                declaration = declarations[uri] = ' xmlns="%s"' % (
                    _escape(uri, _ATTR_ESCAPES, _path(chain)),)
            start += declaration
        if current.attrs:
            start += _attributes(current.attrs, _path(chain))
        text = current.text
        if text is None:
            text = ""
        elif text.__class__ is str and text.isprintable():  # printable: nothing to refuse
            text = text.translate(_TEXT_ESCAPES)
        else:
            text = _text(text, _path(chain))
        children = current.children
        if children:
            if text:
                raise XMLCodecError("element has both text and children", path=_path(chain))
            add(start + ">")
            push("</%s>" % (name,))
            for child in reversed(children):
                if child.__class__ is not Node and not isinstance(child, Node):
                    raise XMLCodecError("child is not a Node", path=_path(chain))
                push((child, uri, chain))
        elif text:
            add("%s>%s</%s>" % (start, text, name))
        else:
            add(start + "/>")
    return "".join(out).encode("utf-8")


# element names already checked against _NAME (a few hundred in practice)
_WRITTEN_NAMES = set()
_MAX_WRITTEN_NAMES = 4096


def _attributes(attrs, path):
    out = []
    for key, value in attrs.items():
        if not isinstance(key, str) or not _NAME.match(key) or key.startswith("xmlns"):
            raise XMLCodecError("cannot write attribute %r" % (key,), path=path)
        out.append(' %s="%s"' % (key, _escape(value, _ATTR_ESCAPES, path)))
    return "".join(out)


def _text(text, path):
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray)):
        return base64.b64encode(bytes(text)).decode("ascii")
    return _escape(text, _TEXT_ESCAPES, path)


def _escape(value, table, path):
    if not isinstance(value, str):
        raise XMLCodecError("cannot write %s as text" % (type(value).__name__,), path=path)
    bad = _NOT_XML_CHAR.search(value)
    if bad:
        raise XMLCodecError("character U+%04X cannot be written in XML" % (ord(bad.group()),),
                            path=path)
    return value.translate(table)


def _ver_dtd(root):
    if root.name != "SyncML":
        return None
    hdr = root.find("SyncHdr")
    ver = hdr.find("VerDTD") if hdr is not None else None
    if ver is None or not isinstance(ver.text, str):
        return None
    return ver.text.strip(" \t\r\n")


def encode(msg, *, xml_declaration=False):
    """XML bytes of a :class:`~.syncml.SyncML` model (namespace from ``VerDTD``).

    Written straight from the model (:mod:`.model_writer`); a message that
    path does not handle goes through the element tree, which writes the
    same bytes or raises the error.
    """
    try:
        dialect = _DIALECTS[msg.hdr.ver_dtd == "1.1"]
        pieces = write_model(msg, dialect)
    except Exception:  # Unhandled, or a model the reference path must judge (it raises)
        return serialize(message_to_node(msg), syncml_uri=syncml_namespace(msg.hdr.ver_dtd),
                         xml_declaration=xml_declaration)
    if xml_declaration:
        pieces.insert(0, _XML_DECLARATION_STR)
    return "".join(pieces).encode("utf-8")


_XML_DECLARATION_STR = XML_DECLARATION.decode("ascii")


def _model_text(text):
    """A non-empty text value as the reference writer escapes it (fast when nothing needs it)."""
    if text.isprintable():  # nothing to refuse; "\r" is not printable
        if "&" in text or "<" in text or ">" in text:
            return text.translate(_TEXT_ESCAPES)
        return text
    if _NOT_XML_CHAR.search(text):
        raise Unhandled("text")  # the reference path raises the error
    return text.translate(_TEXT_ESCAPES)


_DIALECTS = {
    False: xml_dialect(NS_URI_SYNCML_1_2, _model_text),
    True: xml_dialect(NS_URI_SYNCML_1_1, _model_text),
}
