"""Management-tree URIs (dm-tree-objects §1.1): parsing, limits, normalisation.

A URI is relative to the device root: ``.`` is the root, ``./DMAcc/x`` and
``DMAcc/x`` name the same node.  Segments are node names, %-escaped where
they hold characters outside the unreserved set; :func:`parse_uri` decodes
them, so :attr:`URI.segments` are the real node names.  An optional query is
``?prop=<Property>`` or ``?list=<attr>``.

Everything that goes wrong raises :class:`TreeError` with the DM status:
414 for malformed URIs and URIs over the ``./DevDetail/URI`` limits, 406 for
an unsupported query.
"""

import re
from dataclasses import dataclass
from urllib.parse import quote

__all__ = [
    "TreeError",
    "URI",
    "UriLimits",
    "UNLIMITED",
    "parse_uri",
    "normalize",
    "join",
    "quote_segment",
    "unquote_segment",
    "BAD_URI",
    "NOT_SUPPORTED",
]

BAD_URI = 414
NOT_SUPPORTED = 406

_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_ESCAPE = re.compile("%([0-9A-Fa-f]{2})")
# what may stay unescaped in a normalised segment (RFC 3986 unreserved + sub-delims, ':' '@')
_SAFE = "!$&'()*+,;=:@~-._"


class TreeError(Exception):
    """A tree operation failed with DM status ``status`` (404, 405, 425 ...)."""

    def __init__(self, status, uri=None, reason=""):
        self.status = status
        self.uri = uri
        self.reason = reason
        super().__init__("%d %s%s" % (status, uri, (": " + reason) if reason else ""))


@dataclass(frozen=True)
class UriLimits:
    """``./DevDetail/URI`` MaxDepth, MaxTotLen, MaxSegLen; ``0`` is unlimited.

    Each is a 16-bit unsigned number.  ``max_tot_len`` counts the characters
    of the URI as received, property suffix included; ``max_seg_len`` counts
    the characters of a node name after %-decoding.
    """

    max_depth: int = 0
    max_tot_len: int = 0
    max_seg_len: int = 0

    def __post_init__(self):
        for name in ("max_depth", "max_tot_len", "max_seg_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
                raise ValueError("%s must be an integer 0..65535, not %r" % (name, value))


UNLIMITED = UriLimits()


@dataclass(frozen=True)
class URI:
    """A parsed URI: node names from the root, and at most one of prop/list."""

    segments: tuple
    prop: str = None
    list: str = None

    @property
    def path(self):
        """The normalised node URI without query: ``.`` or ``./A/B``."""
        return join(self.segments)

    @property
    def name(self):
        return self.segments[-1] if self.segments else "."

    @property
    def parent(self):
        if not self.segments:
            raise TreeError(BAD_URI, ".", "the root has no parent")
        return URI(self.segments[:-1])

    def child(self, name):
        return URI(self.segments + (name,))

    def is_under(self, other):
        """True if this node is ``other`` or below it."""
        return self.segments[:len(other.segments)] == other.segments

    def __str__(self):
        if self.prop is not None:
            return "%s?prop=%s" % (self.path, self.prop)
        if self.list is not None:
            return "%s?list=%s" % (self.path, self.list)
        return self.path


def quote_segment(name):
    """The %-escaped form of node name ``name`` (UTF-8 bytes for non-ASCII)."""
    return quote(name, safe=_SAFE, errors="strict")


def unquote_segment(segment, uri=None):
    """Decode the %XX escapes of one segment; a lone ``%`` is kept as is."""
    if "%" not in segment:
        return segment
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(segment):
        out += segment[pos:match.start()].encode("utf-8")
        out.append(int(match.group(1), 16))
        pos = match.end()
    out += segment[pos:].encode("utf-8")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise TreeError(BAD_URI, uri, "escapes are not UTF-8") from None


def join(segments):
    """The normalised URI of a node: ``.`` or ``./`` + escaped names."""
    if not segments:
        return "."
    return "./" + "/".join(quote_segment(name) for name in segments)


def parse_uri(uri, limits=UNLIMITED):
    """A :class:`URI` for ``uri`` (``str``; UTF-8 ``bytes`` are accepted).

    Rejected with 414: empty, ``./`` (root is ``.``), trailing, leading or
    double slashes, ``.``/``..`` segments, ``./`` anywhere but at the start,
    control characters, escapes that decode to ``/`` or bad UTF-8, and
    anything over ``limits``.  A query other than ``prop=``/``list=`` is 406.
    """
    if isinstance(uri, (bytes, bytearray)):
        try:
            uri = bytes(uri).decode("utf-8")
        except UnicodeDecodeError:
            raise TreeError(BAD_URI, repr(uri), "URI is not UTF-8") from None
    if not isinstance(uri, str):
        raise TreeError(BAD_URI, repr(uri), "URI must be a string")
    if not uri:
        raise TreeError(BAD_URI, uri, "empty URI")
    if limits.max_tot_len and len(uri) > limits.max_tot_len:
        raise TreeError(BAD_URI, uri, "URI longer than %d" % (limits.max_tot_len,))
    if _CONTROL.search(uri):
        raise TreeError(BAD_URI, uri, "control character in URI")
    path, mark, query = uri.partition("?")
    prop = listing = None
    if mark:
        key, eq, value = query.partition("=")
        if not eq or not value:
            raise TreeError(NOT_SUPPORTED, uri, "unsupported query %r" % (query,))
        if key == "prop":
            prop = value
        elif key == "list":
            listing = value
        else:
            raise TreeError(NOT_SUPPORTED, uri, "unsupported query %r" % (query,))
    if path == ".":
        return URI((), prop, listing)
    if path.startswith("./"):
        path = path[2:]
    if not path:
        raise TreeError(BAD_URI, uri, "the root is '.'")
    raw = path.split("/")
    names = []
    for segment in raw:
        if segment in ("", ".", ".."):
            raise TreeError(BAD_URI, uri, "empty or dot segment")
        name = unquote_segment(segment, uri)
        if "/" in name or _CONTROL.search(name):
            raise TreeError(BAD_URI, uri, "invalid character in node name")
        if limits.max_seg_len and len(name) > limits.max_seg_len:
            raise TreeError(BAD_URI, uri, "segment longer than %d" % (limits.max_seg_len,))
        names.append(name)
    if limits.max_depth and len(names) > limits.max_depth:
        raise TreeError(BAD_URI, uri, "deeper than %d" % (limits.max_depth,))
    return URI(tuple(names), prop, listing)


def normalize(uri, limits=UNLIMITED):
    """The canonical spelling of ``uri`` (``./``-form, minimal escaping, query kept)."""
    return str(parse_uri(uri, limits))
