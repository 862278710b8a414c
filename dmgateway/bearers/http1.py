"""HTTP/1.x on the wire for the DM-2 listener: reading a request head, writing an answer.

Pure functions and small classes, no I/O: :mod:`.dmhttp` drives them from
its connection protocol.  The limits are at least twisted.web's (see
:mod:`.dmhttp` for what is enforced and why).
"""

import re
from urllib.parse import unquote_to_bytes

from twisted.web.http import RESPONSES, datetimeToString

from ..speedups import optional_accelerator

#: bytes of request line plus headers (twisted.web: 16384)
MAX_HEAD = 16384
#: header lines in one request (twisted.web: 500)
MAX_HEADERS = 100
#: bytes of one chunk-size line with its extensions (twisted.web: 1024)
MAX_CHUNK_LINE = 1024

_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
#: the bytes of a token (RFC 9110 tchar): what is left once they are deleted must be nothing
_TCHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: the bytes of a request target (printable ASCII, no space)
_VCHARS = bytes(range(0x21, 0x7F))
#: the versions taken -> whether the request is HTTP/1.0
_VERSIONS = {b"HTTP/1.1": False, b"HTTP/1.0": True}
#: "%" and "+" as ints: ``int in bytes`` is a plain byte search, where ``bytes
#: in bytes`` first fails to read its operand as an int (an exception made and
#: dropped, a few hundred ns, at each test)
_PERCENT, _PLUS = b"%+"
# the value is stripped of blanks by the caller: a lazy ``(.*?)[ \t]*\Z`` is quadratic in a run of blanks
HEADER_LINE = re.compile(rb"(" + _TCHAR + rb"+):(.*)\Z", re.S)
_TOKEN = re.compile(_TCHAR + rb"+\Z")
CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[\t\x20-\x7e\x80-\xff]*)?\Z")


class BadRequest(Exception):
    """The bytes are not an HTTP/1.x request this server takes (answered 400)."""


class TooLarge(Exception):
    """The body is larger than ``max_body`` (answered 413)."""


class Request:
    """One request as read off the wire: what the DM resource needs of it."""

    __slots__ = ("method", "target", "http10", "headers", "body", "keep_alive")

    def __init__(self, method, target, http10, headers):
        self.method = method
        self.target = target
        self.http10 = http10
        self.headers = headers  # lower-case name -> value (the last one of a name)
        self.body = b""
        connection = headers.get(b"connection")
        self.keep_alive = not http10 and not (
            connection is not None and connection.lower().find(b"close") >= 0 and b"close" in _tokens(connection))

    @property
    def path(self):
        return self.target.split(b"?", 1)[0]

    def query_value(self, name):
        """The first value of query parameter ``name`` (bytes, unquoted), None without one."""
        target = self.target
        mark = target.find(b"?")
        if mark < 0:
            return None
        for part in target[mark + 1:].split(b"&"):
            key, eq, value = part.partition(b"=")
            if _PERCENT in key or _PLUS in key:
                key = unquote_to_bytes(key.replace(b"+", b" "))
            if key == name:
                if _PERCENT in value or _PLUS in value:
                    value = unquote_to_bytes(value.replace(b"+", b" "))
                return value
        return None


def _tokens(value):
    return [t.strip(b" \t").lower() for t in value.split(b",")]


def parse_head_pure(head):
    """``Request`` of the bytes before the empty line (CRLF line ends), or ``BadRequest``.

    The reference reader; :func:`parse_head` is the C accelerator's reader
    when it is built (the same requests, framing and refusals).  The body framing is read from the headers: ``(request, length)`` where
    ``length`` is the ``Content-Length`` (0 without one) or None for chunked.

    The request line is ``token SP target SP HTTP/1.x`` and each header line
    ``token ":" value``, read with ``split``/``partition`` and checked with
    ``translate`` (a token is what is left empty once its characters are
    deleted): the same lines as the patterns ``_TCHAR+ [\\x21-\\x7e]+
    HTTP/1\\.[01]`` and ``_TCHAR+:.*``, in a few C calls instead of a
    regular expression match per line.
    """
    lines = head.split(b"\r\n")
    breaks = len(lines) - 1
    # the CRLFs split on are 2 * breaks bytes of CR and LF: any other CR, LF or NUL is one more
    if len(head) - len(head.translate(None, b"\r\n\x00")) != 2 * breaks:
        raise BadRequest("NUL or bare CR/LF")
    if breaks > MAX_HEADERS:
        raise BadRequest("too many headers")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise BadRequest("request line")
    method, target, version = parts
    http10 = _VERSIONS.get(version)
    if http10 is None or not method or method.translate(None, _TCHARS) or not target or target.translate(
            None, _VCHARS):
        raise BadRequest("request line")
    headers = {}
    length = 0
    framed = False
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        lower = _LOWER.get(name)
        if lower is None or not colon:  # (a line without a colon is all name: known, it is still bad)
            if not colon or not name or name.translate(None, _TCHARS):
                raise BadRequest("header line")  # also a folded (obsolete) line
            lower = name.lower()
            if len(name) <= _LOWER_NAME:
                if len(_LOWER) >= _LOWER_SIZE:
                    _LOWER.clear()  # (a peer's inventions filled it: the names in use come back)
                _LOWER[name] = lower
        name, value = lower, value.strip(b" \t")
        if name == b"content-length":
            if framed or not value.isdigit():
                raise BadRequest("Content-Length")
            digits = value.lstrip(b"0") or b"0"  # int() refuses over 4300 digits: any length past 18 is too large
            framed, length = True, int(digits) if len(digits) <= 18 else 1 << 63
        elif name == b"transfer-encoding":
            coding = value.lower()
            if coding == b"identity":
                continue
            if framed or coding != b"chunked" or http10:
                raise BadRequest("Transfer-Encoding")
            framed, length = True, None
        headers[name] = value
    return Request(method, target, http10, headers), length


# The optional C accelerator (built from _http1_speedups.c when a compiler is at
# hand) reads a head in one pass, as parse_head_pure does in some forty Python
# operations (~30k instructions a request).  DMGW_PURE_HTTP=1 keeps it unused.
_c_parse_head = optional_accelerator("dmgateway.bearers._http1_speedups", "parse_head", "DMGW_PURE_HTTP")


def parse_head_c(head):
    """:func:`parse_head_pure` read by the C accelerator (which must be built)."""
    method, target, http10, headers, length = _c_parse_head(head, MAX_HEADERS, BadRequest)
    return Request(method, target, http10, headers), length


#: ``Request`` and framing of a head, or ``BadRequest`` (see :func:`parse_head_pure`)
parse_head = parse_head_c if _c_parse_head is not None else parse_head_pure


#: header names met (tokens) -> their lower case: devices send the same few
#: names in every request.  Bounded: a peer's inventions cannot grow it past
#: _LOWER_SIZE names (it is emptied then, not frozen with them: the names in
#: use would never be cached again), nor keep a long name (up to MAX_HEAD
#: bytes each) alive
_LOWER = {}
_LOWER_SIZE = 512
_LOWER_NAME = 64


class DateHeader:
    """The ``Date`` header's value, made once a second."""

    def __init__(self, clock):
        self.clock = clock
        self.second = None
        self.text = b""

    def __call__(self):
        second = int(self.clock.seconds())
        if second != self.second:
            self.second, self.text = second, datetimeToString(second)
        return self.text


_NAMES = {}  # header name (str) -> canonical bytes, for the few names replies carry


def header_name(name):
    """``x-syncml-hmac`` -> ``X-Syncml-Hmac`` (as twisted.web writes names); a non-token is a ValueError."""
    canonical = _NAMES.get(name)
    if canonical is None:
        raw = name.encode("ascii")
        if _TOKEN.match(raw) is None:
            raise ValueError("not a header name: %r" % (name,))
        canonical = b"-".join(part.capitalize() for part in raw.split(b"-"))
        if len(_NAMES) < 256:
            _NAMES[name] = canonical
    return canonical


def header_value(value, encoding="utf-8"):
    """The bytes of a header value; CR and LF become spaces (never a header injection)."""
    raw = value.encode(encoding)
    if b"\r" in raw or b"\n" in raw:
        raw = raw.replace(b"\r\n", b" ").replace(b"\r", b" ").replace(b"\n", b" ")
    return raw


def response(code, content_type, body, date, extra=b"", http10=False, close=False, head_only=False):
    """The bytes of one whole answer."""
    reason = RESPONSES.get(code, b"Unknown Status")
    return b"%s %d %s\r\nDate: %s\r\nContent-Type: %s\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
        b"HTTP/1.0" if http10 else b"HTTP/1.1", code, reason, date, content_type, extra,
        b"Connection: close\r\n" if close and not http10 else b"", len(body), b"" if head_only else body)
