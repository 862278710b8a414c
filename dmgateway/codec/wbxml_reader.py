"""The WBXML reader: WBXML 1.x bytes to :class:`~.element.Node` trees.

The engine knows the WBXML grammar (header, string table, global tokens, code
pages, attributes); the languages themselves are data, described by a
:class:`~.wbxml_pages.Vocabulary`.  It accepts WBXML 1.0-1.3, numeric or
string-table public ids (NUL-terminated or the SyncML RTK's un-terminated
literal), UTF-8 / ISO-8859-1 / unknown charsets, STR_T, OPAQUE, ENTITY,
LITERAL tags, attributes and processing instructions.  Any malformed input
raises :class:`~.errors.WBXMLCodecError` with the byte offset; nothing else
escapes.

Split from :mod:`.wbxml` (the SyncML- and TNDS-level functions), which
re-exports :func:`decode_node`, :func:`read_header`, :class:`Header` and
:data:`DEFAULT_MAX_SIZE`.  The vocabulary tables compiled once per
vocabulary are shared with the writer (:mod:`.wbxml_tables`).
"""

import functools
import re
from collections import namedtuple

from ..speedups import optional_accelerator
from .element import Node
from .errors import NOT_XML_TEXT, LimitExceeded, WBXMLCodecError
from .wbxml_pages import (
    END, ENTITY, EXT_0, EXT_1, EXT_2, EXT_I_0, EXT_I_1, EXT_I_2, EXT_T_0, EXT_T_1, EXT_T_2,
    LITERAL, LITERAL_A, LITERAL_AC, LITERAL_C, OPAQUE, PI, STR_I, STR_T, SWITCH_PAGE,
    vocabulary_for,
)
from .wbxml_tables import (
    DEFAULT_MAX_DEPTH, GLOBAL_KINDS, K_END, K_ENTITY, K_EXT_I, K_EXT_T, K_LITERAL, K_OPAQUE,
    K_PI, K_STR_I, K_STR_T, K_SWITCH, K_UNKNOWN, compiled,
)

# The optional C accelerator (built from _wbxml_speedups.c when a compiler is
# at hand) reads the common subset of a body; it answers None for anything
# else, and this module's reader, the reference, reads the document again.
# DMGW_PURE_WBXML=1 keeps it unused.
_c_decode_body = optional_accelerator("dmgateway.codec._wbxml_speedups", "decode_body", "DMGW_PURE_WBXML")

__all__ = ["DEFAULT_MAX_SIZE", "Header", "read_header", "decode_node"]

DEFAULT_MAX_SIZE = 4 * 1024 * 1024

_UTF8 = 106
_CHARSETS = {
    0: "utf-8",  # unknown: the DM and CP specs only use UTF-8
    3: "ascii",
    4: "latin-1",
    106: "utf-8",
    111: "iso-8859-15",
    2252: "cp1252",
}

Header = namedtuple("Header", "version public_id fpi charset string_table body_offset")
Header.__doc__ = """A WBXML header: ``public_id`` is 0 when the id is given as ``fpi``."""


# Element creation is the reader's main cost: it skips Node.__init__ and sets
# the five slots itself (falling back to the constructor should Node change).
if tuple(Node.__slots__) == ("name", "ns", "children", "text", "attrs"):
    _new_node = object.__new__
else:  # pragma: no cover
    def _new_node(cls):
        return Node("", None)


def _error(reason, offset=None):
    return WBXMLCodecError(reason, offset=offset)


# ---------------------------------------------------------------------------
# What a byte means inside an attribute list (and a PI).
_A_START, _A_VALUE, _A_END, _A_SWITCH, _A_STRING, _A_EXTENSION, _A_LITERAL, _A_FORBIDDEN = range(8)
_ATTR_KINDS = [_A_START if b < 0x80 else _A_VALUE for b in range(256)]
for _b, _kind in {
    END: _A_END, SWITCH_PAGE: _A_SWITCH, LITERAL: _A_LITERAL,
    STR_I: _A_STRING, STR_T: _A_STRING, ENTITY: _A_STRING, OPAQUE: _A_STRING,
    EXT_I_0: _A_EXTENSION, EXT_I_1: _A_EXTENSION, EXT_I_2: _A_EXTENSION,
    EXT_T_0: _A_EXTENSION, EXT_T_1: _A_EXTENSION, EXT_T_2: _A_EXTENSION,
    EXT_0: _A_EXTENSION, EXT_1: _A_EXTENSION, EXT_2: _A_EXTENSION,
    PI: _A_FORBIDDEN, LITERAL_C: _A_FORBIDDEN, LITERAL_A: _A_FORBIDDEN, LITERAL_AC: _A_FORBIDDEN,
}.items():
    _ATTR_KINDS[_b] = _kind
del _b, _kind


# ---------------------------------------------------------------------------
# Reader

def _read_mb(data, pos):
    """An mb_u_int32 at ``pos``: ``(value, next position)``."""
    start = pos
    value = 0
    for _ in range(5):
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            if value > 0xFFFFFFFF:
                raise _error("mb_u_int32 overflows 32 bits", start)
            return value, pos
    raise _error("mb_u_int32 longer than 5 bytes", start)


def _charset_name(charset, offset):
    name = _CHARSETS.get(charset)
    if name is None:
        raise _error("unsupported charset MIBenum %d" % (charset,), offset)
    return name


def _decode_text(raw, encoding, offset):
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise _error("invalid %s text" % (encoding,), offset + e.start) from None


def read_header(data):
    """Parse the WBXML header of ``data`` into a :class:`Header`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _error("WBXML input must be bytes, not %s" % (type(data).__name__,))
    data = bytes(data)
    try:
        return _read_header(data)
    except IndexError:
        raise _error("truncated header", len(data)) from None


def _read_header(data):
    header = _short_header(data[:_SHORT_HEADER])
    return _parse_header(data) if header is None else header


_SHORT_HEADER = 6


@functools.lru_cache(maxsize=64)
def _short_header(prefix):
    """The header held whole in ``prefix``, with no string table, or None.

    Messages of one language from one peer share such a header (version,
    numeric public id, charset, empty string table), so each is parsed once.
    """
    try:
        header = _parse_header(prefix)
    except (IndexError, WBXMLCodecError):
        return None  # the whole document decides: parse it again from there
    return None if header.string_table else header


def _parse_header(data):
    version = data[0]
    if version > 0x03:
        raise _error("unsupported WBXML version 0x%02X" % (version,), 0)
    fpi_index = None
    public_id, pos = _read_mb(data, 1)
    if public_id == 0:
        fpi_at = pos
        fpi_index, pos = _read_mb(data, pos)
    if version == 0x00:
        charset = _UTF8  # WBXML 1.0 has no charset field
    else:
        charset_at = pos
        charset, pos = _read_mb(data, pos)
        _charset_name(charset, charset_at)
    length_at = pos
    length, pos = _read_mb(data, pos)
    if pos + length > len(data):
        raise _error("string table longer than the document", length_at)
    table = data[pos:pos + length]
    fpi = None
    if fpi_index is not None:
        if fpi_index >= length:
            raise _error("public id index outside the string table", fpi_at)
        # The SyncML RTK writes the identifier without its NUL: take the rest.
        nul = table.find(0, fpi_index)
        raw = table[fpi_index:] if nul < 0 else table[fpi_index:nul]
        fpi = _decode_text(raw, _charset_name(charset, None), pos + fpi_index)
    return Header(version, public_id, fpi, charset, table, pos + length)


def decode_node(data, vocabulary=None, *, max_depth=DEFAULT_MAX_DEPTH, max_size=DEFAULT_MAX_SIZE,
                max_elements=None):
    """Read a WBXML document into its root :class:`Node`.

    ``vocabulary`` is the language to read with; ``None`` picks it from the
    public id.  Raises :class:`WBXMLCodecError` for anything malformed, also
    for text XML cannot carry (a NUL from ENTITY 0, STR_I or STR_T...), and
    :class:`LimitExceeded` past ``max_elements`` elements.
    """
    if not isinstance(data, bytes):
        if not isinstance(data, (bytearray, memoryview)):
            raise _error("WBXML input must be bytes, not %s" % (type(data).__name__,))
        data = bytes(data)
    if len(data) > max_size:
        raise _error("document larger than %d bytes" % (max_size,), max_size)
    try:
        header = _read_header(data)
        if vocabulary is None:
            vocabulary = vocabulary_for(header.public_id, header.fpi)
            if vocabulary is None:
                raise _error("unknown document type (public id 0x%X%s)" % (
                    header.public_id, ", %r" % (header.fpi,) if header.fpi else ""), 1)
        if _c_decode_body is not None and header.charset in C_CHARSETS:
            root = _c_decode_body(data, header.body_offset, compiled(vocabulary).tag_pages, Node,
                                  max_depth, max_elements, K_END, K_STR_I, K_SWITCH, K_OPAQUE)
            if root is not None:
                return root
        root = _Reader(data, header, vocabulary, max_depth, max_size, max_elements).parse()
    except IndexError:
        raise _error("truncated document", len(data)) from None
    return root


_NOT_XML = re.compile(NOT_XML_TEXT)
C_CHARSETS = frozenset(charset for charset, name in _CHARSETS.items() if name == "utf-8")


def _illegal(char, offset):
    return _error("character U+%04X cannot appear in an XML document" % (ord(char),), offset)


class _Reader:
    """One pass over a document body; rare tokens are methods, hot ones inline."""

    def __init__(self, data, header, vocab, max_depth, max_size, max_elements=None):
        self.data = data
        self.table = header.string_table
        self.table_offset = header.body_offset - len(header.string_table)
        self.pos = header.body_offset
        self.encoding = _charset_name(header.charset, None)
        self.comp = compiled(vocab)
        self.max_depth = max_depth
        # STR_T lets a small document repeat a long string: bound the total.
        self.budget = max_size
        self.strings = {}
        self.apage = 0
        self.max_elements = max_elements

    def table_string(self, index, offset):
        s = self.strings.get(index)
        if s is None:
            table = self.table
            if index >= len(table):
                raise _error("string table reference %d out of range" % (index,), offset)
            nul = table.find(0, index)
            raw = table[index:] if nul < 0 else table[index:nul]
            s = _decode_text(raw, self.encoding, self.table_offset + index)
            bad = _NOT_XML.search(s)
            if bad:
                raise _illegal(bad.group(), self.table_offset + index + bad.start())
            self.strings[index] = s
        self.budget -= len(s)
        if self.budget < 0:
            raise _error("string table references expand beyond the size limit", offset)
        return s

    def parse(self):
        data = self.data
        pos = self.pos
        encoding = self.encoding
        tag_pages = self.comp.tag_pages
        tpage = 0
        tags = tag_pages[0]
        has_attributes = self.comp.has_attributes
        max_depth = self.max_depth
        top = []  # the root element, once read
        cur = None
        kids = top
        stack = []
        # Strings are sliced from a latin-1 view of the document (one char per
        # byte); only non-ASCII pieces of a UTF-8 document need re-decoding.
        # The extra NUL makes every search for a terminator succeed: one at
        # ``end`` means the document was cut short.
        chars = data.decode("latin-1") + "\0"
        end = len(data)
        recode = encoding != "latin-1" and not data.isascii()
        find = chars.find
        illegal = _NOT_XML.search
        new = _new_node
        node_cls = Node
        # token kinds as locals: this loop is the reader's hot path
        k_end, k_str_i, k_switch, k_unknown, k_entity, k_literal = (
            K_END, K_STR_I, K_SWITCH, K_UNKNOWN, K_ENTITY, K_LITERAL)

        depth = 0  # == len(stack)
        # elements left before LimitExceeded (counted as they are met: a 1-byte
        # empty element costs far more to build than to read)
        room = self.max_elements + 1 if self.max_elements is not None else -1
        while True:
            name, ns, code = tags[data[pos]]
            if code == 0x40:  # element with content, no attributes
                if data[pos + 1] == 3 and depth:  # STR_I
                    # the common leaf, tag STR_I "text" END, in one step
                    nul = find("\0", pos + 2)
                    if data[nul + 1] == 1:  # END (IndexError when unterminated)
                        s = chars[pos + 2:nul]
                        if recode and not s.isascii():
                            s = self.recode(s, pos + 2)
                        # printable text holds none of NOT_XML's characters
                        if not s.isprintable() and illegal(s):
                            raise _illegal(illegal(s).group(), pos + 2)
                        room -= 1
                        if not room:
                            raise self.too_many(pos)
                        node = new(node_cls)
                        node.name = name
                        node.ns = ns
                        node.children = []
                        node.text = s or None
                        node.attrs = None
                        kids.append(node)
                        pos = nul + 2
                        continue
                pos += 1
            elif code == k_end:
                if not depth:
                    raise _error("END outside any element", pos)
                pos += 1
                text = cur.text
                if text is not None:
                    if text.__class__ is list:
                        text = _join(text)
                    if cur.children:
                        if text.__class__ is not str or text.strip():
                            raise _error("element %s has both text and elements" % (cur.name,),
                                         pos - 1)
                        text = None
                    elif text == "":
                        text = None
                    cur.text = text
                cur = stack.pop()
                depth -= 1
                if not depth:
                    break
                kids = cur.children
                continue
            elif code == 0:  # empty element
                pos += 1
            elif code == k_str_i:
                nul = find("\0", pos + 1)
                if nul == end:
                    raise _error("unterminated inline string", pos)
                s = chars[pos + 1:nul]
                if recode and not s.isascii():
                    s = self.recode(s, pos + 1)
                if not s.isprintable() and illegal(s):
                    raise _illegal(illegal(s).group(), pos + 1)
                if not depth:
                    raise _error("text outside the root element", pos)
                pos = nul + 1
                if cur.text is None:
                    cur.text = s
                else:
                    _add_text(cur, s)
                continue
            elif code == k_switch:
                tpage = data[pos + 1]
                tags = tag_pages[tpage]
                pos += 2
                continue
            elif code < 0x100:  # element with attributes
                attrs, pos = self.attributes(pos + 1, has_attributes)
            elif code == k_unknown:
                raise _error("unknown tag token 0x%02X on code page %d" % (data[pos], tpage), pos)
            elif code <= k_entity:  # STR_T, OPAQUE, ENTITY
                if not depth:
                    raise _error("character data outside the root element", pos)
                s, pos = self.character_data(code, pos)
                if cur.text is None:
                    cur.text = s
                else:
                    _add_text(cur, s)
                continue
            elif code == k_literal:
                index, after = _read_mb(data, pos + 1)
                name = self.table_string(index, pos)
                ns = self.comp.page_ns[tpage]
                code = data[pos] & 0xC0
                pos = after
                if code & 0x80:
                    attrs, pos = self.attributes(pos, has_attributes)
            else:  # PI and extensions carry nothing for these languages
                pos = self.skip(code, pos)
                continue

            # a new element: attach it, and enter it when it has content
            room -= 1
            if not room:
                raise self.too_many(pos)
            node = new(node_cls)
            node.name = name
            node.ns = ns
            node.children = []
            node.text = None
            node.attrs = attrs if code & 0x80 else None
            if not depth and top:
                raise _error("more than one root element", pos - 1)
            kids.append(node)
            if code & 0x40:
                if depth >= max_depth:
                    raise _error("elements nested deeper than %d" % (max_depth,), pos - 1)
                depth += 1
                stack.append(cur)
                cur = node
                kids = node.children
            elif not depth:
                break

        if pos < end:
            self.pos = pos
            self.trailer()
        return top[0]

    def too_many(self, pos):
        return LimitExceeded("more than %d elements" % (self.max_elements,), offset=pos)

    def recode(self, s, offset):
        """A latin-1 slice of the document, decoded in the document's charset."""
        return _decode_text(s.encode("latin-1"), self.encoding, offset)

    def character_data(self, kind, pos):
        """STR_T, OPAQUE or ENTITY at ``pos``: ``(text, next position)``."""
        data = self.data
        value, after = _read_mb(data, pos + 1)
        if kind == K_STR_T:
            return self.table_string(value, pos), after
        if kind == K_OPAQUE:
            end = after + value
            if end > len(data):
                raise _error("OPAQUE data runs past the end of the document", pos)
            return data[after:end], end
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise _error("ENTITY 0x%X is not a character" % (value,), pos)
        if _NOT_XML.match(chr(value)):
            raise _error("ENTITY 0x%X is not a character XML can carry" % (value,), pos)
        return chr(value), after

    def skip(self, kind, pos):
        """Step over a PI or an extension token."""
        data = self.data
        if kind == K_PI:
            _, pos = self.attributes(pos + 1, False, pi=True)
            return pos
        if kind == K_EXT_I:
            nul = data.find(0, pos + 1)
            if nul < 0:
                raise _error("unterminated extension string", pos)
            return nul + 1
        if kind == K_EXT_T:
            index, after = _read_mb(data, pos + 1)
            self.table_string(index, pos)
            return after
        return pos + 1  # EXT_0..2: single byte

    def attributes(self, pos, keep, pi=False):
        """An attribute list up to its END: ``(dict or None, next position)``.

        ``keep`` is false for languages without attributes (SyncML): the list
        is read and dropped, whatever its tokens.  ``pi`` reads the target
        and value of a processing instruction instead.
        """
        data = self.data
        comp = self.comp
        apage = self.apage
        starts = comp.attr_starts[apage]
        values = comp.attr_values[apage]
        attrs = {} if keep else None
        name = None
        pieces = None
        targets = 0
        while True:
            at = pos
            b = data[pos]
            kind = _ATTR_KINDS[b]
            if kind == _A_END:
                pos += 1
                break
            if kind == _A_SWITCH:
                apage = data[pos + 1]
                starts = comp.attr_starts[apage]
                values = comp.attr_values[apage]
                pos += 2
                continue
            if kind == _A_STRING:
                if b == STR_I:
                    nul = data.find(0, pos + 1)
                    if nul < 0:
                        raise _error("unterminated inline string", pos)
                    piece = _decode_text(data[pos + 1:nul], self.encoding, pos + 1)
                    pos = nul + 1
                else:
                    piece, pos = self.character_data(GLOBAL_KINDS[b], pos)
                    if piece.__class__ is bytes:  # OPAQUE (WBXML 1.3)
                        piece = _decode_text(piece, self.encoding, at)
                if _NOT_XML.search(piece):
                    raise _illegal(_NOT_XML.search(piece).group(), at)
                if keep:
                    if name is None:
                        raise _error("attribute value without an attribute", at)
                    pieces.append(piece)
                continue
            if kind == _A_EXTENSION:
                pos = self.skip(GLOBAL_KINDS[b], pos)
                continue
            if kind == _A_FORBIDDEN:
                raise _error("token 0x%02X not allowed in an attribute list" % (b,), pos)
            if kind == _A_VALUE:
                pos += 1
                if keep:
                    if name is None:
                        raise _error("attribute value without an attribute", at)
                    value = values.get(b)
                    if value is None:
                        raise _error("unknown attribute value token 0x%02X on code page %d"
                                     % (b, apage), at)
                    pieces.append(value)
                continue
            # an attribute start: a token, or LITERAL naming it in the string table
            targets += 1
            if pi and targets > 1:
                raise _error("processing instruction with two targets", pos)
            if keep and name is not None:
                _store(attrs, name, pieces, at)
            if kind == _A_LITERAL:
                index, pos = _read_mb(data, pos + 1)
                name = self.table_string(index, at)
                pieces = []
                continue
            pos += 1
            entry = starts.get(b)
            if entry is None:
                if keep:
                    raise _error("unknown attribute token 0x%02X on code page %d"
                                 % (b, apage), at)
                continue
            name = entry[0]
            pieces = [] if entry[1] is None else [entry[1]]
        if pi and not targets:
            raise _error("processing instruction without a target", pos - 1)
        if keep and name is not None:
            _store(attrs, name, pieces, pos - 1)
        self.apage = apage
        return attrs, pos

    def trailer(self):
        """After the root element only processing instructions may follow."""
        data = self.data
        pos = self.pos
        while pos < len(data):
            if data[pos] != PI:
                raise _error("data after the root element", pos)
            pos = self.skip(K_PI, pos)


def _store(attrs, name, pieces, offset):
    if name in attrs:
        raise _error("duplicate attribute %r" % (name,), offset)
    attrs[name] = "".join(pieces)


def _add_text(node, piece):
    """A further piece of an element's text: kept in a list until its END."""
    if node.text.__class__ is list:
        node.text.append(piece)
    else:
        node.text = [node.text, piece]


def _join(pieces):
    if all(p.__class__ is str for p in pieces):
        return "".join(pieces)
    return b"".join(p if p.__class__ is bytes else p.encode("utf-8") for p in pieces)
