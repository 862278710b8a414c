"""Reading SyncML DM XML into :class:`~.element.Node` trees with expat.

The standard library's expat parser (:mod:`pyexpat`) builds the node tree
directly from its callbacks.  Unlike libxml2, whose per-thread name dictionary
keeps every element and attribute name ever parsed for the life of the
process (a peer not yet authenticated could grow the daemon's memory without
bound by sending documents with ever new tag names), everything expat learns
about a document lives and dies with the parser object, one per document.

What is refused, as the libxml2 reader this replaced did (the differential
test in ``tests/codec/test_xml_reader.py`` holds the two side by side):

* not well-formed XML, an XML version other than 1.x, a namespace URI that
  is not a URI, a name longer than 50,000 characters, nesting deeper than 256
  elements (whatever ``max_depth``);
* any markup declaration in the DTD's internal subset (entities, elements,
  attribute lists, notations, parameter-entity references): a DOCTYPE is
  accepted only with an external identifier, which is never loaded;
* then, if the document has more than ``max_elements`` elements,
  :class:`~.errors.LimitExceeded` (counting the whole document);
* then a reference to an entity that was not declared, mixed text and element
  content, nesting deeper than ``max_depth``: :class:`~.errors.XMLCodecError`
  with the element path.

The builder stops at the first finding of the last group (or at the element
limit) and a second pass, which only counts, decides which of the three
groups the document falls in; accepted documents are read once.

The optional C accelerator (``_xml_speedups.c``) runs the building pass
with C callbacks (the common documents, a strict subset of XML, without even
expat: its own reader hands the callbacks the same events) and answers None
for anything but a document the builder accepts; the builder then reads the
document (see :func:`read`).

Accepted as devices send it: a BOM, an XML declaration, UTF-8, UTF-16,
UTF-32 and any other encoding declared that Python knows, namespace URIs in
any letter case or none at all (keys from :func:`key_for_uri`), CDATA (read as
text), comments and processing instructions (dropped).
"""

import codecs
import encodings
import encodings.aliases
import os
import pkgutil
import re
import pyexpat
from pyexpat import ExpatError, ParserCreate, XML_PARAM_ENTITY_PARSING_NEVER

from .element import NS_DMDDF, NS_METINF, NS_PROV, NS_SYNCML, Node
from .errors import LimitExceeded, XMLCodecError

__all__ = ["read", "key_for_uri", "ROOT_KEYS"]

NS_URI_METINF = "syncml:metinf"

# root elements that say which vocabulary an un-namespaced document uses
ROOT_KEYS = {"MgmtTree": NS_DMDDF, "wap-provisioningdoc": NS_PROV}

# what libxml2 refused as not well-formed, kept so the answer does not change
HARD_MAX_DEPTH = 256
MAX_NAME_LENGTH = 50_000

_WHITESPACE = " \t\r\n"

# RFC 3986 URI reference: its characters, %XX escapes, one fragment
_URI = re.compile(r"(?:[A-Za-z0-9\-._~:/?@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*"
                  r"(?:#(?:[A-Za-z0-9\-._~:/?@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)?\Z")
# a ':' in the first segment is a scheme's end, and a scheme has its own syntax;
# an authority is [userinfo@]host[:port], the port one or more digits (libxml2's reading)
_FIRST_SEGMENT_COLON = re.compile(r"[^/?#]*:")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_AUTHORITY = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//([^/?#]*)")
_HOST_PORT = re.compile(r"(?:[^@]*@)?[^:@]*(?::[0-9]+)?\Z")

# the encoding an XML declaration names (ASCII-compatible documents only)
_DECLARED = re.compile(
    rb"(?:\xef\xbb\xbf)?<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:\"[^\"]*\"|'[^']*')"
    rb"[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*[\"']([A-Za-z][A-Za-z0-9._-]*)[\"']")
# Python codecs that are not character sets: never a document encoding
_NOT_CHARSETS = {"unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined",
                 "mbcs", "oem", "charmap", "utf_7"}


def key_for_uri(uri, inherited):
    """Namespace key of URI ``uri`` (compared case-insensitively)."""
    if not uri:
        return inherited
    folded = uri.lower()
    if folded.startswith("syncml:syncml"):
        return NS_SYNCML
    if folded == NS_URI_METINF:
        return NS_METINF
    if folded.startswith("syncml:dmddf"):
        return NS_DMDDF
    return uri


class _Finding(Exception):
    """A finding the element count outranks: the counting pass decides."""

    def __init__(self, error):
        super().__init__()
        self.error = error


class _Over(Exception):
    """More elements than allowed: the counting pass finds how many."""


# expat name ("URI}local" or "local") -> (local name, namespace key or None to
# inherit the parent's).  Process-wide, so bounded in entries and characters:
# peers not yet authenticated choose the names.  Past the bounds a name is
# resolved each time it is met.
_NAMES = {}
_MAX_NAMES = 4096
_MAX_NAME_CHARS = 128  # a longer expat name is never held

# Node creation is the builder's main cost: it skips Node.__init__ and sets
# the five slots itself (falling back to the constructor should Node change).
if tuple(Node.__slots__) == ("name", "ns", "children", "text", "attrs"):
    _new_node = object.__new__
else:  # pragma: no cover
    def _new_node(cls):
        return Node("", None)


def _resolve(name):
    """``(local, key or None)`` of an expat name, held in :data:`_NAMES` if small."""
    at = name.rfind("}")
    if at < 0:
        found = (name, None)
    else:
        uri = name[:at]
        if uri not in _URIS:
            _check_uri(uri)
        found = (name[at + 1:], key_for_uri(uri, None))
    if len(found[0]) > MAX_NAME_LENGTH:
        raise XMLCodecError("not well-formed XML: name of %d characters" % (len(found[0]),))
    if len(name) <= _MAX_NAME_CHARS and len(_NAMES) < _MAX_NAMES:
        _NAMES[name] = found
    return found


def _attrs(attrs):
    """Plain (un-namespaced) attributes of expat's ``[name, value, ...]`` list
    (it leaves ``xmlns`` declarations out)."""
    plain = {}
    for at in range(0, len(attrs), 2):
        name = attrs[at]
        if len(name) > MAX_NAME_LENGTH:
            raise XMLCodecError("not well-formed XML: name of %d characters" % (len(name),))
        if "}" not in name:
            plain[name] = attrs[at + 1]
        else:
            _check_uri(name[:name.rfind("}")])
    return plain or None


def _path(stack):
    return "/".join(node.name for node in stack)


def _mixed(stack):
    return _Finding(XMLCodecError("mixed text and element content", path=_path(stack)))


# -- handlers both passes install ----------------------------------------------


def _declaration(*_):
    raise XMLCodecError("DTD declarations are not allowed")


def _xml_declaration(version, _encoding, _standalone):
    if not version.startswith("1."):
        raise XMLCodecError("not well-formed XML: unsupported version %r" % (version[:20],))


def _namespace(_prefix, uri):
    if uri not in _URIS:
        _check_uri(uri)


def _uri_parts_valid(uri):
    """The scheme and the authority's port of URI reference C{uri} (characters already checked)."""
    if _FIRST_SEGMENT_COLON.match(uri) and not _SCHEME.match(uri):
        return False
    authority = _AUTHORITY.match(uri)
    return not authority or _HOST_PORT.match(authority.group(1)) is not None


def _check_uri(uri):
    """Refuse a namespace URI libxml2 refused; hold it (a few hundred at most) if small."""
    if not uri:
        return  # xmlns="": no namespace
    if not _URI.match(uri) or not _uri_parts_valid(uri):
        raise XMLCodecError("not well-formed XML: namespace %r is not a URI" % (uri[:200],))
    if len(uri) <= _MAX_NAME_CHARS and len(_URIS) < 256:
        _URIS.add(uri)


_URIS = set()  # namespace URIs found good

# expat (2.4+) bounds entity amplification itself; tighter where Python lets us set it
# (nothing is ever declared here: declarations are refused)
_AMPLIFICATION = [(name, value) for name, value in (
    ("SetBillionLaughsAttackProtectionMaximumAmplification", 10.0),
    ("SetBillionLaughsAttackProtectionActivationThreshold", 1 << 20),
) if hasattr(ParserCreate(), name)]


def _load_c_build():
    """The C builder, or None: not built, DMGW_PURE_XML=1, or expat not pyexpat's.

    It links the system's libexpat; pyexpat may carry its own copy.  Only the
    same release with the same features parses the same, so only then is it used.
    Nor where Python sets the amplification limits (3.13+): it does not set
    them; nor should Node have other slots than the five it sets.
    """
    if (os.environ.get("DMGW_PURE_XML", "") not in ("", "0") or _AMPLIFICATION
            or _new_node is not object.__new__):
        return None
    try:
        from ._xml_speedups import build, expat_features, expat_version
    except ImportError:  # not built: the pure builder alone
        return None
    if expat_version() != pyexpat.EXPAT_VERSION or expat_features() != pyexpat.features:
        return None
    return build


_c_build = _load_c_build()


def _parser(encoding, namespaces=_namespace):
    parser = ParserCreate(encoding, "}")
    parser.SetParamEntityParsing(XML_PARAM_ENTITY_PARSING_NEVER)
    parser.XmlDeclHandler = _xml_declaration
    parser.StartNamespaceDeclHandler = namespaces
    parser.EntityDeclHandler = _declaration
    parser.UnparsedEntityDeclHandler = _declaration
    parser.ElementDeclHandler = _declaration
    parser.AttlistDeclHandler = _declaration
    parser.NotationDeclHandler = _declaration
    for setting, value in _AMPLIFICATION:  # pragma: no cover (Python 3.13+)
        getattr(parser, setting)(value)
    return parser


def _run(parser, data):
    try:
        parser.Parse(data, True)
    except ExpatError as e:
        raise XMLCodecError("not well-formed XML: %s" % (e,)) from None
    except XMLCodecError:
        raise
    except (LookupError, ValueError) as e:  # an encoding expat cannot take
        raise XMLCodecError("not well-formed XML: %s" % (e,)) from None


# -- the two passes ------------------------------------------------------------------


def _build(data, encoding, max_depth, max_elements):
    """The node tree, or _Finding / _Over for the counting pass to judge.

    Hot path: only the start of an element and character data call Python;
    the end of an element is recorded by ``list.append`` and the elements it
    closes are taken off the stack at the next call.  The character buffer is
    larger than all the text of the document can be (3 bytes of UTF-8 for one
    byte of input at most), so a run of text arrives in one piece.
    """
    declared = {}  # prefix -> URI, checked when the document is read (C: no call into Python)
    parser = _parser(encoding, declared.__setitem__)
    parser.ordered_attributes = True
    parser.buffer_size = 3 * len(data) + 64
    parser.buffer_text = True
    stack = []  # the open elements, the root first
    ends = []  # names of the elements closed since the last call
    push = stack.append
    clear = ends.clear
    names, new, node_cls, whitespace = _NAMES, _new_node, Node, _WHITESPACE
    depth_limit = min(max_depth, HARD_MAX_DEPTH)
    room = max_elements if max_elements is not None else -1  # 0: past the limit (the root uncounted)

    def start_root(name, attrs):
        local, key = names.get(name) or _resolve(name)
        node = Node(local, key or ROOT_KEYS.get(local, NS_SYNCML), None, None,
                    _attrs(attrs) if attrs else None)
        push(node)
        parser.StartElementHandler = start  # drops this closure, and its reference to the parser
        if depth_limit < 1:
            raise _Finding(XMLCodecError("nesting deeper than %d elements" % (max_depth,), path=local))
        if not room:
            raise _Over()

    def start(name, attrs):
        nonlocal room
        if ends:
            del stack[-len(ends):]
            clear()
        parent = stack[-1]
        if parent.text is not None:  # text before this first child
            if parent.text.strip(whitespace):
                raise _mixed(stack)
            parent.text = None
        node = new(node_cls)
        node.name, key = names.get(name) or _resolve(name)
        node.ns = key or parent.ns
        node.children = []
        node.text = None
        node.attrs = _attrs(attrs) if attrs else None
        parent.children.append(node)
        push(node)
        if len(stack) > depth_limit:
            if len(stack) > HARD_MAX_DEPTH:
                raise XMLCodecError("not well-formed XML: nesting deeper than %d" % (HARD_MAX_DEPTH,))
            raise _Finding(XMLCodecError("nesting deeper than %d elements" % (max_depth,),
                                         path=_path(stack)))
        room -= 1
        if not room:
            raise _Over()

    def text(data):
        if ends:
            del stack[-len(ends):]
            clear()
        node = stack[-1]
        if node.children:  # between or after children: whitespace only
            if data.strip(whitespace):
                raise _mixed(stack)
        elif node.text is None:
            node.text = data
        else:  # pragma: no cover (the buffer holds any run of text whole)
            node.text += data

    def skipped(_name, is_parameter_entity):
        if is_parameter_entity:
            raise XMLCodecError("DTD declarations are not allowed")
        if ends:
            del stack[-len(ends):]
            clear()
        raise _Finding(XMLCodecError("entity references are not allowed", path=_path(stack)))

    parser.StartElementHandler = start_root
    parser.EndElementHandler = ends.append
    parser.CharacterDataHandler = text
    parser.SkippedEntityHandler = skipped
    try:
        _run(parser, data)
    finally:
        parser.StartElementHandler = None  # start_root, if no element was met
    _check_declared(declared)
    return stack[0]


def _check_declared(declared):
    """Refuse the first bad namespace URI of ``declared`` (prefix -> URI, all the document's)."""
    for uri in declared.values():
        if uri and uri not in _URIS:
            _check_uri(uri)


def _count(data, encoding):
    """The number of elements of a document all of whose other checks are left to the builder."""
    parser = _parser(encoding)
    parser.ordered_attributes = True
    state = [0, 0]  # elements, depth

    def start(name, attrs):
        if len(name) > MAX_NAME_LENGTH:
            _resolve(name)
        if attrs:
            _attrs(attrs)
        state[0] += 1
        state[1] += 1
        if state[1] > HARD_MAX_DEPTH:
            raise XMLCodecError("not well-formed XML: nesting deeper than %d" % (HARD_MAX_DEPTH,))

    def end(_name):
        state[1] -= 1

    def skipped(_name, is_parameter_entity):
        if is_parameter_entity:
            raise XMLCodecError("DTD declarations are not allowed")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.SkippedEntityHandler = skipped
    _run(parser, data)
    return state[0]


def read(data, max_depth, max_elements):
    """The :class:`Node` tree of XML document ``data`` (bytes, size already checked)."""
    data, encoding = _transcoded(data)
    if _c_build is not None:
        declared = {}
        root = _c_build(data, encoding, min(max_depth, HARD_MAX_DEPTH), max_elements, declared,
                        Node, _NAMES, _resolve, _attrs, ROOT_KEYS, NS_SYNCML)
        if root is not None:  # what _build returns; None for anything else (_build decides)
            _check_declared(declared)
            return root
    try:
        return _build(data, encoding, max_depth, max_elements)
    except _Finding as finding:
        found = finding.error
    except _Over:
        found = None
    count = _count(data, encoding)  # raises what outranks the element limit
    if max_elements is not None and count > max_elements:
        raise LimitExceeded("%d elements, more than the %d allowed" % (count, max_elements))
    raise found


def _transcoded(data):
    """``(bytes, encoding for expat)``: UTF-8 for what expat cannot read itself.

    Expat reads UTF-8, UTF-16, ISO-8859-1 and US-ASCII, and single-byte
    character sets through Python's codecs.  UTF-32 and multi-byte sets
    (Shift_JIS, GB2312, ...) are decoded here and handed over as UTF-8, and
    so is UTF-16, whose declaration libxml2 never held against a document.
    A document that declares no encoding is UTF-8, however it begins.
    """
    if data[:1] == b"<":  # what clients send: the answer _searched gives, without its searches
        if data[1:2].isalpha():  # an element first: no BOM, no declaration
            return data, "utf-8"
        if data.startswith(_UTF8_DECLARATIONS):
            return data, None
    return _searched(data)


def _searched(data):
    """What :func:`_transcoded` answers, from the BOM or the declaration."""
    if data.startswith(_UNICODE_PREFIXES):
        for prefix, encoding in _UNICODE:
            if data.startswith(prefix):
                return _decode(data, encoding)
    declared = _DECLARED.match(data)
    if declared is None:
        return data, "utf-8"
    name = declared.group(1).decode("ascii").lower().replace("-", "_")
    if name in ("utf_8", "utf8", "iso_8859_1", "latin1", "us_ascii", "ascii"):
        return data, None
    if not _known_codec(name):  # never asked of codecs.lookup (expat would ask it too)
        raise XMLCodecError("not well-formed XML: unknown encoding %r" % (name[:40],))
    try:
        info = codecs.lookup(name)
    except LookupError:
        return data, None  # expat names the unknown encoding
    if info.name.replace("-", "_") in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        raise XMLCodecError("not well-formed XML: unsupported encoding %r" % (name,))
    if _single_byte(info):
        return data, None  # expat maps single-byte sets itself
    return _decode(data, info.name)


# the names the standard library's codecs are found under.  Python's encodings
# package caches every name it was asked about, misses included, for the life of
# the process: a declared name reaches codecs.lookup only if it is one of these,
# spelled without stray punctuation (so its spellings are few)
_CODEC_NAMES = frozenset(encodings.aliases.aliases) | frozenset(
    module.name for module in pkgutil.iter_modules(encodings.__path__))


def _known_codec(name):
    """Whether ``name`` (lower case, ``_`` for ``-``) names a standard codec in a canonical spelling."""
    norm = encodings.normalize_encoding(name)
    return norm == name and (norm in _CODEC_NAMES or norm.replace(".", "_") in _CODEC_NAMES)


# documents in UTF-32 and UTF-16, by their byte order mark or their '<?'
_UNICODE = [
    (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
    (b"<\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00<", "utf-32-be"),
    (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"),
    (b"<\x00?\x00", "utf-16-le"), (b"\x00<\x00?", "utf-16-be"),
]
_UNICODE_PREFIXES = tuple(prefix for prefix, _ in _UNICODE)
# declarations _DECLARED reads as UTF-8 that expat reads itself
_UTF8_DECLARATIONS = (b'<?xml version="1.0" encoding="UTF-8"?>',
                      b'<?xml version="1.0" encoding="utf-8"?>')


def _single_byte(info):
    single = _SINGLE_BYTE.get(info.name)
    if single is None:  # one entry per codec Python has: bounded
        try:
            # each byte one character, escapes included (ISO-2022, HZ are stateful: not single-byte)
            single = all(len(probe.decode(info.name, "replace")) == len(probe) for probe in _PROBES)
        except (UnicodeError, LookupError, ValueError):
            single = False
        _SINGLE_BYTE[info.name] = single
    return single


_SINGLE_BYTE = {}
_PROBES = (bytes(range(256)), b"\x1b$B$\"\x1b(B", b"~{VP~}")


def _decode(data, encoding):
    try:
        text = data.decode(encoding)
    except (UnicodeError, LookupError, ValueError) as e:
        raise XMLCodecError("not well-formed XML: %s" % (e,)) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.encode("utf-8", "surrogatepass"), "utf-8"
