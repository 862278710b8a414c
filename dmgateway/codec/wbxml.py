"""WBXML SyncML DM messages and TNDS documents, over the WBXML engine.

The engine is two modules over :class:`~dmgateway.codec.element.Node`:
:mod:`.wbxml_reader` (bytes -> tree; WBXML 1.0-1.3, any public id form,
UTF-8 / ISO-8859-1 / unknown charsets, STR_T, OPAQUE, ENTITY, LITERAL tags,
attributes and processing instructions; malformed input raises
:class:`~dmgateway.codec.errors.WBXMLCodecError` with the byte offset) and
:mod:`.wbxml_writer` (tree -> WBXML 1.3, UTF-8, the numeric public id when
the language has one, code pages switched lazily like libwbxml, ``str`` text
as STR_I and ``bytes`` as OPAQUE).  This module re-exports both engines'
public names.

:func:`decode` and :func:`encode` convert SyncML DM messages (through
:mod:`dmgateway.codec.mapping`; :func:`encode` writes plain messages straight
from the model with :func:`.wbxml_writer.encode_message_body`, byte for byte
what the tree path writes); :func:`decode_tnds` and :func:`encode_tnds`
stand-alone DDF/TNDS documents.
"""

from ..speedups import optional_accelerator
from . import mapping_reader
from .element import NS_DMDDF, NS_SYNCML
from .errors import LimitExceeded, WBXMLCodecError
from .mapping import message_to_node, node_to_message
from .wbxml_pages import DMDDF12, OPAQUE, SYNCML11, SYNCML12
from .wbxml_reader import C_CHARSETS, DEFAULT_MAX_SIZE, Header, decode_node, read_header
from .wbxml_tables import DEFAULT_MAX_DEPTH, K_END, K_OPAQUE, K_STR_I, K_SWITCH, compiled
from .wbxml_writer import encode_mb_uint, encode_message_body, encode_node

__all__ = [
    "encode_mb_uint",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "Header",
    "read_header",
    "decode_node",
    "encode_node",
    "decode",
    "encode",
    "decode_tnds",
    "encode_tnds",
]


# ---------------------------------------------------------------------------
# SyncML DM and TNDS documents

def decode(data, *, max_depth=DEFAULT_MAX_DEPTH, max_size=DEFAULT_MAX_SIZE, max_elements=None):
    """A WBXML SyncML DM message (any SyncML public id) -> :class:`SyncML`.

    An embedded TNDS document in ``<Data>`` (OPAQUE holding a stand-alone
    DDF WBXML document, as libwbxml and most clients send it) is read into
    its ``MgmtTree`` node, like the inline page-2 form, and a Meta Type
    ``...dmtnds+wbxml`` of that Item reads as ``...dmtnds+xml``: the model
    is the same whichever encoding carried it.
    """
    if (_c_decode_model is not None and data.__class__ is bytes and len(data) <= max_size
            and _OPAQUE not in data):
        msg = _read_model(data, max_depth, max_elements)  # the common messages, without Nodes
        if msg is not None:
            return msg
    root = decode_node(data, SYNCML12, max_depth=max_depth, max_size=max_size, max_elements=max_elements)
    if _OPAQUE not in (data if data.__class__ is bytes else bytes(data)):
        pass  # no OPAQUE, so no embedded document: nothing to walk
        # (bytes(): "in" on a memoryview compares single items, never finds bytes)
    elif max_elements is None:
        _embedded_tnds(root, _opaque_to_tree, max_depth)
    else:
        # one byte per element in an embedded document too: it shares the
        # message's element budget
        left = [max_elements - _count_elements(root)]

        def bounded(data, meta_type, depth):
            tree = _opaque_to_tree(data, meta_type, depth, max_elements=left[0])
            if tree is not None:
                left[0] -= _count_elements(tree)

        try:
            _embedded_tnds(root, bounded, max_depth)
        except LimitExceeded:
            raise LimitExceeded("more than %d elements (embedded TNDS documents included)"
                                % (max_elements,)) from None
    return node_to_message(root)


_OPAQUE = bytes((OPAQUE,))


def _read_model(data, max_depth, max_elements):
    """The model of a common message (bytes without OPAQUE) read by the C
    reader straight to the model, or None: :func:`decode_node` and the
    mapping then read it as always (and raise what they raise)."""
    try:
        header = read_header(data)
    except WBXMLCodecError:
        return None
    if header.charset not in C_CHARSETS:
        return None
    return _c_decode_model(data, header.body_offset, compiled(SYNCML12).tag_pages, max_depth,
                           max_elements, K_END, K_STR_I, K_SWITCH, K_OPAQUE)


def _load_c_decode_model():
    """``_wbxml_speedups.decode_model``, or None: not built, DMGW_PURE_WBXML=1,
    or the C mapping it ends with is not in use (DMGW_PURE_MODEL=1)."""
    if mapping_reader._c_map is None:
        return None
    return optional_accelerator("dmgateway.codec._wbxml_speedups", "decode_model", "DMGW_PURE_WBXML")


_c_decode_model = _load_c_decode_model()


def _count_elements(node):
    count, stack = 0, [node]
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(node.children)
    return count


def encode(msg):
    """A :class:`SyncML` message -> WBXML (public id by ``VerDTD``: 1.1 or 1.2).

    ``MgmtTree`` data goes out as OPAQUE holding a stand-alone TNDS document
    (dm-wbxml §3.3: the form every decoder, libwbxml included, understands)
    and the Item's Meta Type ``...dmtnds+xml`` says ``...dmtnds+wbxml``.
    """
    try:  # straight from the model; embedded markup and the unusual go through the tree
        return encode_message_body(msg, SYNCML11 if msg.hdr.ver_dtd == "1.1" else SYNCML12)
    except Exception:  # Unhandled, or a model the reference path must judge (it raises)
        pass
    root = message_to_node(msg)
    _embedded_tnds(root, _tree_to_opaque, DEFAULT_MAX_DEPTH)
    return encode_node(root, SYNCML11 if msg.hdr.ver_dtd == "1.1" else SYNCML12)


_DDF_FPI = b"-//OMA//DTD-DM-DDF 1.2//EN"  # any letter case; upper here
_TNDS_XML = "application/vnd.syncml.dmtnds+xml"
_TNDS_WBXML = "application/vnd.syncml.dmtnds+wbxml"


def _embedded_tnds(root, convert, max_depth):
    """Apply ``convert(data, meta_type)`` to the Data of every Item below ``root``."""
    work = [(root, 0)]
    while work:
        node, depth = work.pop()
        for child in node.children:
            if child.name == "Item" and child.ns == NS_SYNCML:
                data = child.find("Data")
                if data is not None:
                    meta = child.find("Meta")
                    convert(data, meta and meta.find("Type"), max_depth)
            elif child.children and depth < max_depth:
                work.append((child, depth + 1))


def _tree_to_opaque(data, meta_type, _max_depth):
    if len(data.children) == 1 and data.children[0].ns == NS_DMDDF:
        data.text = encode_node(data.children[0], DMDDF12)
        data.children = []
        if meta_type is not None and meta_type.text == _TNDS_XML:
            meta_type.text = _TNDS_WBXML


def _opaque_to_tree(data, meta_type, max_depth, max_elements=None):
    """An embedded TNDS document read into its tree (returned; None if not one)."""
    text = data.text
    if (text.__class__ is bytes and len(text) > 4 and text[0] <= 0x03
            and _DDF_FPI in text[:64].upper()):
        tree = decode_node(text, DMDDF12, max_depth=max_depth, max_elements=max_elements)
        data.children = [tree]
        data.text = None
        if meta_type is not None and meta_type.text == _TNDS_WBXML:
            meta_type.text = _TNDS_XML
        return tree
    return None


def decode_tnds(data, **limits):
    """A stand-alone WBXML DDF/TNDS document -> its ``MgmtTree`` node."""
    return decode_node(data, DMDDF12, **limits)


def encode_tnds(tree):
    """A ``MgmtTree`` node (ns DMDDF) -> a stand-alone WBXML TNDS document."""
    return encode_node(tree, DMDDF12)
