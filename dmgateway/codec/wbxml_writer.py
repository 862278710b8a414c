"""The WBXML writer: element trees (:class:`~.element.Node`) to WBXML bytes.

Split from :mod:`.wbxml` (the SyncML- and TNDS-level functions), which
re-exports :func:`encode_node` and :func:`encode_mb_uint`.  Vocabulary
tables compiled once per vocabulary are shared with the reader
(:mod:`.wbxml_reader`) through :mod:`.wbxml_tables`.
"""

import functools

from ..speedups import optional_accelerator
from .element import NS_METINF, NS_SYNCML, Node
from .errors import WBXMLCodecError
from .model_writer import METINF_NAMES, SYNCML_NAMES, Dialect, Unhandled, Tags
from .model_writer import write as write_model
from .wbxml_pages import END, LITERAL, OPAQUE
from .wbxml_tables import DEFAULT_MAX_DEPTH, STR_I_PIECE, compiled, piece

# The optional C accelerator writes the common subset of a tree (tokens for
# every tag, no attributes); it answers None for anything else and this
# module's writer, the reference, writes (or refuses) the tree as always.
# DMGW_PURE_WBXML=1 keeps it unused.
_c_encode_body = optional_accelerator("dmgateway.codec._wbxml_speedups", "encode_body", "DMGW_PURE_WBXML")

#
# The body is built as a list of ``str`` pieces and encoded to UTF-8 once: a
# text is appended as is, a token byte b as chr(b), or, from 0x80 up, as the
# lone surrogate U+DC00+b that the ``surrogateescape`` handler turns back into
# byte b.  OPAQUE data travels the same way.  Texts are checked for NUL and
# (when not ASCII) for surrogates of their own, so nothing else can produce a
# raw byte.

_ESCAPED = "surrogateescape"


_SWITCH = ["\x00" + piece(page) for page in range(256)]
_TEXT_END = "\x00" + piece(END)


def encode_mb_uint(value):
    """``value`` as a multi-byte unsigned integer (WBXML mb_u_int32, WSP
    uintvar): 7 bits a byte, most significant first, high bit = more."""
    if value < 0x80:
        return bytes((value,))
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _mbpiece(value):
    return encode_mb_uint(value).decode("ascii", _ESCAPED)


@functools.lru_cache(maxsize=64)
def _simple_header(public_id):
    """WBXML 1.3, numeric ``public_id``, UTF-8, empty string table."""
    return b"\x03" + encode_mb_uint(public_id) + b"\x6a\x00"


def encode_node(root, vocabulary, *, public_id=None, max_depth=DEFAULT_MAX_DEPTH):
    """Write ``root`` as a WBXML 1.3, UTF-8 document of ``vocabulary``.

    ``public_id`` overrides the vocabulary's numeric id; without either, the
    formal public identifier goes in the string table.  Element names the
    vocabulary has no token for are written as LITERALs.  Raises
    :class:`WBXMLCodecError` (with the element path) for a tree WBXML cannot
    carry.
    """
    if not isinstance(root, Node):
        raise WBXMLCodecError("not an element tree: %s" % (type(root).__name__,))
    if _c_encode_body is not None:
        if public_id is None:
            public_id = vocabulary.public_id
        if public_id is not None:
            comp = vocabulary.compiled or compiled(vocabulary)
            body = _c_encode_body(root, comp.page_tags, comp.enc_tags, Node, max_depth)
            if body is not None:
                return _simple_header(public_id) + body
    return _Writer(vocabulary, max_depth).document(root, public_id)


class _Unencodable(Exception):
    """Internal: ``node`` cannot be written; the path is worked out afterwards."""

    def __init__(self, reason, node):
        super().__init__(reason)
        self.reason = reason
        self.node = node


class _Writer:
    # Most documents need neither a string table nor an attribute page: these
    # class-level defaults stand in until a LITERAL or an attribute sets them.
    table = b""
    table_index = None
    tpage = 0
    apage = 0

    def __init__(self, vocab, max_depth):
        self.vocab = vocab
        self.comp = vocab.compiled or compiled(vocab)
        self.max_depth = max_depth
        self.parts = []

    def document(self, root, public_id):
        if public_id is None:
            public_id = self.vocab.public_id
        try:
            if public_id is None:
                fpi_index = self.string_index(self.vocab.fpi, root)
            _write_children(self, (root,), 0, 0)
        except _Unencodable as e:
            raise WBXMLCodecError(e.reason, path=_path_to(root, e.node)) from None
        except (AttributeError, TypeError) as e:
            raise WBXMLCodecError("malformed element tree: %s" % (e,)) from None
        except RecursionError:
            raise WBXMLCodecError("element tree too deep to encode") from None
        body = "".join(self.parts).encode("utf-8", _ESCAPED)
        if public_id is not None and not self.table:
            return _simple_header(public_id) + body
        head = b"\x03"
        if public_id is None:
            head += b"\x00" + encode_mb_uint(fpi_index)
        else:
            head += encode_mb_uint(public_id)
        return head + b"\x6a" + encode_mb_uint(len(self.table)) + bytes(self.table) + body

    def string_index(self, s, node):
        index_of = self.table_index
        if index_of is None:
            index_of = self.table_index = {}
            self.table = bytearray()
        index = index_of.get(s)
        if index is None:
            index = index_of[s] = len(self.table)
            self.table += _check_text(s, node).encode("utf-8") + b"\x00"
        return index

    def element(self, node, choice, depth):
        """The general case: page alternatives, LITERAL names, attributes, OPAQUE."""
        add = self.parts.append
        text = node.text
        children = node.children
        if children and text is not None:
            raise _Unencodable("element has both text and children", node)
        if text is not None and text.__class__ is not str and text.__class__ is not bytes:
            raise _Unencodable("text is neither str nor bytes", node)
        flags = 0
        if children or (text is not None and (text.__class__ is bytes or text != "")):
            flags = 0x40
        if node.attrs:
            flags |= 0x80
        if choice is not None:
            forms = self.tag_forms(choice)
            add(piece(forms[0] | flags))
        else:
            page = self.comp.ns_page.get(node.ns)
            if page is None:
                raise _Unencodable("namespace %r has no code page in %s"
                                   % (node.ns, self.vocab.name), node)
            if page != self.tpage:
                add(_SWITCH[page])
                self.tpage = page
            add(piece(LITERAL | flags) + _mbpiece(self.string_index(node.name, node)))
        if flags & 0x80:
            self.attributes(node)
        if flags & 0x40:
            if children:
                self.tpage = _write_children(self, children, depth + 1, self.tpage)
                add(piece(END))
            elif text.__class__ is str:
                add(STR_I_PIECE + _check_text(text, node) + _TEXT_END)
            else:
                add(piece(OPAQUE) + _mbpiece(len(text)) + text.decode("ascii", _ESCAPED)
                    + piece(END))

    def tag_forms(self, choice):
        """Byte forms of a tag, switching the tag page first if need be."""
        page, forms, pages = choice
        if page != self.tpage:
            alt = pages.get(self.tpage)
            if alt is not None:
                return alt
            self.parts.append(_SWITCH[page])
            self.tpage = page
        return forms

    def attributes(self, node):
        if not self.comp.has_attributes:
            raise _Unencodable("%s has no attributes" % (self.vocab.name,), node)
        add = self.parts.append
        starts = self.comp.enc_starts
        values = self.comp.enc_values
        for name, value in node.attrs.items():
            if value is None:
                value = ""
            if value.__class__ is not str or name.__class__ is not str:
                raise _Unencodable("attribute %r is not text" % (name,), node)
            choice = starts.get((name, value))
            if choice is not None:
                self.attribute_token(choice)
                continue
            choice = starts.get(name)
            if choice is not None:
                self.attribute_token(choice)
            else:
                add(piece(LITERAL) + _mbpiece(self.string_index(name, node)))
            if value:
                choice = values.get(value)
                if choice is not None:
                    self.attribute_token(choice)
                else:
                    add(STR_I_PIECE + _check_text(value, node) + "\x00")
        add(piece(END))

    def attribute_token(self, choice):
        page, token, pages = choice
        if page != self.apage:
            alt = pages.get(self.apage)
            if alt is not None:
                token = alt
            else:
                self.parts.append(_SWITCH[page])
                self.apage = page
        self.parts.append(piece(token))


def _write_children(w, children, depth, tpage):
    """Write ``children`` from tag page ``tpage``; returns the tag page after them.

    The common cases (a tag without attributes, empty, holding elements or a
    text) are written here, nested elements through a stack of the
    enclosing lists' iterators rather than recursion; page changes to reach
    a tag are inline too.  LITERALs, attributes and OPAQUE go through
    ``w.element``.
    """
    max_depth = w.max_depth
    if depth >= max_depth:
        raise _Unencodable("elements nested deeper than %d" % (max_depth,), children[0])
    room = max_depth - depth - 1  # how many enclosing lists the stack may hold
    parts = w.parts  # parts.append, not a bound method: 3.11 specialises it
    enc_tags = w.comp.enc_tags
    page_tags = w.comp.page_tags
    here = page_tags[tpage]  # {ns: {name: byte forms}} of the tags on this page
    last_ns, by_name = _NO_NS, None  # by_name: here[last_ns]
    stack = []  # iterators over the lists that enclose the current one
    items = iter(children)
    while True:
        for node in items:
            ns = node.ns
            if ns is not last_ns:
                by_name = here.get(ns, _NO_TAGS)
                last_ns = ns
            forms = by_name.get(node.name)
            if node.attrs:
                forms = None
            elif forms is None:
                choice = enc_tags.get(ns, _NO_TAGS).get(node.name)
                if choice is not None:  # a tag of another page: switch (lazily, like libwbxml)
                    tpage = choice[0]
                    parts.append(_SWITCH[tpage])
                    here = page_tags[tpage]
                    last_ns = _NO_NS
                    forms = choice[1]
            if forms is not None:
                text = node.text
                if text is None:
                    kids = node.children
                    if not kids:
                        parts.append(forms[1])
                        continue
                    if len(stack) >= room:
                        raise _Unencodable("elements nested deeper than %d" % (max_depth,),
                                           kids[0])
                    parts.append(forms[2])
                    stack.append(items)
                    items = iter(kids)
                    break
                if text.__class__ is str and text and not node.children:
                    if not text.isprintable():  # printable: no NUL, no lone surrogate
                        _check_text(text, node)
                    parts.append(forms[3])
                    parts.append(text)
                    parts.append(_TEXT_END)
                    continue
            # LITERAL names, attributes, OPAQUE, an empty text, a malformed element
            w.tpage = tpage
            w.element(node, enc_tags.get(ns, _NO_TAGS).get(node.name), depth + len(stack))
            if w.tpage != tpage:
                tpage = w.tpage
                here = page_tags[tpage]
                last_ns = _NO_NS
        else:  # this list is written
            if not stack:
                return tpage
            parts.append("\x01")  # END of the element that held it
            items = stack.pop()


_NO_NS = object()  # a namespace key no element has
_NO_TAGS = {}


def _check_text(text, node):
    """``text``, if WBXML can carry it as an inline string."""
    if "\x00" in text:
        raise _Unencodable("text contains NUL, which WBXML strings cannot carry", node)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _Unencodable("text is not encodable as UTF-8", node) from None
    return text


def _path_to(root, target):
    """``SyncML/SyncBody/Add[2]/Item`` style path of ``target`` under ``root``."""
    work = [(root, root.name if isinstance(root, Node) else "?")]
    while work:
        node, path = work.pop()
        if node is target:
            return path
        if isinstance(node, Node) and isinstance(node.children, list):
            counts = {}
            for child in node.children:
                name = getattr(child, "name", "?")
                counts[name] = counts.get(name, 0) + 1
                work.append((child, "%s/%s[%d]" % (path, name, counts[name])))
    return None


# -- SyncML messages straight from the model (see .model_writer) -------------------


def syncml_dialect(vocab):
    """The WBXML fragments of the SyncML vocabulary ``vocab`` for
    :func:`.model_writer.write`, or None if the fast path cannot write it
    byte for byte like :func:`encode_node` (a SyncML tag that is not on page 0
    alone, a metinf tag not on page 1 alone).  Names the vocabulary has no
    token for (``Correlator`` in SyncML 1.1) are left out: a message using
    them goes through the element tree, which writes a LITERAL."""
    comp = compiled(vocab)
    syncml = comp.enc_tags.get(NS_SYNCML, {})
    metinf = comp.enc_tags.get(NS_METINF, {})
    if (any(set(choice[2]) != {0} for choice in syncml.values())
            or any(set(choice[2]) != {1} for choice in metinf.values())
            or "Meta" not in syncml or "Data" not in syncml or "SyncML" not in syncml
            or vocab.public_id is None):
        return None
    names = [name for name in SYNCML_NAMES if name in syncml]
    meta_names = [name for name in METINF_NAMES if name in metinf]
    data_open = piece(syncml["Data"][1][0] | 0x40) + piece(OPAQUE)
    end = piece(END)

    def data_bytes(out, data):
        out.append(data_open + _mbpiece(len(data)) + data.decode("ascii", _ESCAPED) + end)

    return Dialect(
        syncml["SyncML"][1][2],
        (
            Tags({n: syncml[n][1][2] for n in names}),
            Tags({n: end for n in names}),
            Tags({n: syncml[n][1][1] for n in names}),
            Tags({n: (syncml[n][1][3], _TEXT_END) for n in names}),
        ),
        (
            syncml["Meta"][1][2] + _SWITCH[1],
            Tags({n: metinf[n][1][1] for n in meta_names}),
            Tags({n: (metinf[n][1][3], _TEXT_END) for n in meta_names}),
        ),
        _model_text, data_bytes, _SWITCH[0], end,
    )


def _model_text(text):
    """A non-empty text value, if WBXML carries it inline as the reference writer does."""
    if text.isprintable():  # no NUL, no lone surrogate
        return text
    if "\x00" in text:
        raise Unhandled("text")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise Unhandled("text") from None
    return text


def encode_message_body(msg, vocab):
    """The WBXML document of ``msg`` written straight from the model, or
    :class:`~.model_writer.Unhandled` (then :func:`encode_node` of its tree
    writes it)."""
    dialect = _dialects.get(vocab)
    if dialect is None:
        if vocab in _dialects or len(_dialects) >= 16:
            raise Unhandled("vocabulary")
        dialect = _dialects[vocab] = syncml_dialect(vocab)
        if dialect is None:
            raise Unhandled("vocabulary")
    body = "".join(write_model(msg, dialect)).encode("utf-8", _ESCAPED)
    return _simple_header(vocab.public_id) + body


_dialects = {}
