"""SIP messages as bytes and back (RFC 3261 §7, §18.3, §20), no I/O.

::

    request = Request("MESSAGE", "sip:+447700900123@ims.example.net", [
        ("Via", format_via("UDP", "dms.example.com:5060", new_branch(rng))),
        ...], body=package0)
    data = encode(request)            # CRLF lines, Content-Length in bytes
    message = parse(datagram)         # Request | Response, or SIPError

Bodies are bytes and may hold anything (CRLF, NUL): only ``Content-Length``
delimits them.  On input, compact header names (``v``, ``l``, ``i`` ...)
become their full names, folded header lines are joined, bare LF line ends
are accepted.  :class:`SIPFramer` cuts a TCP/TLS byte stream into messages.

Digest (RFC 2617, RFC 7616): :func:`parse_challenge` reads a
``WWW-Authenticate``/``Proxy-Authenticate`` value and :func:`digest_response`
computes the matching ``Authorization``/``Proxy-Authorization`` value.
"""

import hashlib
import re
from dataclasses import dataclass, field

from dmgateway.codec.errors import CodecError

__all__ = [
    "COMPACT_NAMES",
    "MAGIC_COOKIE",
    "Request",
    "Response",
    "SIPError",
    "SIPFramer",
    "digest_response",
    "encode",
    "format_cseq",
    "format_params",
    "format_via",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse",
    "parse_challenge",
    "parse_cseq",
    "parse_name_addr",
    "parse_via",
]

SIP_VERSION = "SIP/2.0"
MAGIC_COOKIE = "z9hG4bK"
MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024

#: RFC 3261 §7.3.3 and later RFCs: compact form -> full name
COMPACT_NAMES = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact",
    "k": "Supported", "l": "Content-Length", "m": "Contact", "n": "Identity-Info",
    "o": "Event", "r": "Refer-To", "s": "Subject", "t": "To", "u": "Allow-Events",
    "v": "Via", "x": "Session-Expires", "y": "Identity",
}
_CANONICAL = {name.lower(): name for name in COMPACT_NAMES.values()}
_CANONICAL.update({n.lower(): n for n in (
    "CSeq", "Max-Forwards", "WWW-Authenticate", "Proxy-Authenticate", "Authorization",
    "Proxy-Authorization", "Route", "Record-Route", "User-Agent", "Server", "Expires",
    "Allow", "Accept", "Retry-After", "Warning", "Authentication-Info", "Date")})

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_METHOD = _TOKEN
_URI = re.compile(r"[^\s\x00-\x1f\x7f]+")
_STATUS_LINE = re.compile(r"SIP/(\d+)\.(\d+) ([1-6]\d\d) ?([^\x00-\x08\x0a-\x1f\x7f]*)")
_BAD_VALUE = re.compile(r"[\x00\r\n]")


class SIPError(CodecError):
    """Bytes that are not a SIP message we can read, or a model we cannot send."""


def _canonical(name):
    lower = name.lower()
    if lower in COMPACT_NAMES:
        return COMPACT_NAMES[lower]
    return _CANONICAL.get(lower, name)


class _Message:
    """Header access shared by requests and responses (names case-insensitive)."""

    def header(self, name, default=None):
        """The first value of header ``name`` (full or compact name), else ``default``."""
        values = self.headers_named(name)
        return values[0] if values else default

    def headers_named(self, name):
        """All values of ``name``, in order (repeated lines kept apart)."""
        wanted = _canonical(name).lower()
        return [v for n, v in self.headers if _canonical(n).lower() == wanted]


@dataclass
class Request(_Message):
    """A request line, headers as ``(name, value)`` pairs in order, a binary body."""

    method: str
    uri: str
    headers: list = field(default_factory=list)
    body: bytes = b""


@dataclass
class Response(_Message):
    """A status line, headers as ``(name, value)`` pairs in order, a binary body."""

    code: int
    reason: str
    headers: list = field(default_factory=list)
    body: bytes = b""


# -- encoding -------------------------------------------------------------------


def encode(message):
    """``message`` as bytes: CRLF lines, ``Content-Length`` (bytes of the body) last.

    A ``Content-Length`` among the headers is replaced, never trusted.
    Raises :class:`SIPError` for names or values that would break framing.
    """
    if isinstance(message, Request):
        if not _METHOD.fullmatch(message.method or ""):
            raise SIPError("bad method %r" % (message.method,))
        if not _URI.fullmatch(message.uri or ""):
            raise SIPError("bad Request-URI %r" % (message.uri,))
        start = "%s %s %s" % (message.method, message.uri, SIP_VERSION)
    elif isinstance(message, Response):
        if not (isinstance(message.code, int) and 100 <= message.code <= 699):
            raise SIPError("bad status code %r" % (message.code,))
        if _BAD_VALUE.search(message.reason):
            raise SIPError("bad reason phrase %r" % (message.reason,))
        start = "%s %03d %s" % (SIP_VERSION, message.code, message.reason)
    else:
        raise SIPError("not a SIP message: %r" % (type(message).__name__,))
    body = bytes(message.body)
    lines = [start]
    for name, value in message.headers:
        if not _TOKEN.fullmatch(name):
            raise SIPError("bad header name %r" % (name,))
        value = str(value)
        if _BAD_VALUE.search(value):
            raise SIPError("bad value for header %s" % (name,), path=name)
        if _canonical(name) != "Content-Length":
            lines.append("%s: %s" % (name, value))
    lines.append("Content-Length: %d" % (len(body),))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


# -- parsing --------------------------------------------------------------------


def _split_head(data):
    """``(head, body_offset)`` or ``None`` if the empty line is not there yet."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf < 0 and lf < 0:
        return None
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return data[:crlf], crlf + 4
    return data[:lf], lf + 2


def _content_length(value, offset):
    # SIP linear white space is SP and HTAB only; Python's \s would also let
    # through separators that int() refuses.
    match = re.fullmatch(r"[ \t]*([0-9]{1,9})[ \t]*", value)
    if match is None:
        raise SIPError("bad Content-Length %r" % (value,), offset=offset, path="Content-Length")
    return int(match.group(1))


def _parse_head(head):
    """Start line and headers of ``head`` (bytes before the empty line)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SIPError("header bytes are not UTF-8", offset=e.start) from None
    if "\x00" in text:
        raise SIPError("NUL in the message head", offset=text.index("\x00"))
    lines = text.replace("\r\n", "\n").split("\n")
    start, raw = lines[0], lines[1:]
    if not start:
        raise SIPError("empty start line", offset=0)
    unfolded = []
    for line in raw:
        if line[:1] in (" ", "\t"):
            if not unfolded:
                raise SIPError("continuation line before any header", path=line.strip()[:40])
            unfolded[-1] += " " + line.strip()
        elif line:
            unfolded.append(line)
    headers = []
    for line in unfolded:
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _TOKEN.fullmatch(name):
            raise SIPError("bad header line %r" % (line[:60],))
        headers.append((_canonical(name), value.strip(" \t")))
    return start, headers


def _make(start, headers, body):
    if start.startswith("SIP/"):
        match = _STATUS_LINE.fullmatch(start)
        if not match or (match.group(1), match.group(2)) != ("2", "0"):
            raise SIPError("bad status line %r" % (start[:80],), offset=0)
        return Response(int(match.group(3)), match.group(4).strip(), headers, body)
    parts = start.split(" ")
    if len(parts) != 3 or not _METHOD.fullmatch(parts[0]) or not _URI.fullmatch(parts[1]):
        raise SIPError("bad request line %r" % (start[:80],), offset=0)
    if parts[2].upper() != SIP_VERSION:
        raise SIPError("unsupported version %r" % (parts[2][:20],), offset=0)
    return Request(parts[0], parts[1], headers, body)


def parse(data, *, max_size=MAX_HEAD + MAX_BODY):
    """One SIP message (a datagram, or a frame from :class:`SIPFramer`).

    Without ``Content-Length`` the body is the rest of ``data`` (allowed
    for UDP); bytes after ``Content-Length`` bytes are ignored (RFC 3261
    §18.3).  Raises :class:`SIPError`, nothing else, on malformed input.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SIPError("expected bytes, not %s" % (type(data).__name__,))
    data = bytes(data)
    if len(data) > max_size:
        raise SIPError("message of %d bytes exceeds %d" % (len(data), max_size))
    stripped = data.lstrip(b"\r\n")
    skipped = len(data) - len(stripped)
    split = _split_head(stripped)
    if split is None:
        head, body_offset = stripped.rstrip(b"\r\n"), len(stripped)
        if not head:
            raise SIPError("no SIP message", offset=skipped)
    else:
        head, body_offset = split
    start, headers = _parse_head(head)
    rest = stripped[body_offset:]
    lengths = [v for n, v in headers if n == "Content-Length"]
    if lengths:
        length = _content_length(lengths[0], skipped)
        if any(_content_length(v, skipped) != length for v in lengths[1:]):
            raise SIPError("conflicting Content-Length headers", path="Content-Length")
        if length > len(rest):
            raise SIPError("body truncated: Content-Length %d, %d bytes present"
                           % (length, len(rest)), offset=skipped + body_offset + len(rest))
        rest = rest[:length]
    return _make(start, headers, rest)


class SIPFramer:
    """Cuts a stream (TCP, TLS) into messages by ``Content-Length``.

    ``feed`` returns the complete messages so far.  A stream message
    without ``Content-Length``, a head over ``max_head`` or a body over
    ``max_body`` bytes raises :class:`SIPError`; the stream cannot be
    resynchronised afterwards, so the caller drops the connection.
    CRLF keep-alives between messages (RFC 5626) are skipped.
    """

    def __init__(self, *, max_head=MAX_HEAD, max_body=MAX_BODY):
        self.max_head = max_head
        self.max_body = max_body
        self._buffer = b""
        self._consumed = 0  # stream offset of _buffer[0], for error offsets

    def feed(self, data):
        self._buffer += bytes(data)
        messages = []
        while True:
            stripped = self._buffer.lstrip(b"\r\n")
            self._consumed += len(self._buffer) - len(stripped)
            self._buffer = stripped
            if not stripped:
                return messages
            split = _split_head(stripped)
            if split is None:
                if len(stripped) > self.max_head:
                    raise SIPError("message head longer than %d bytes" % (self.max_head,),
                                   offset=self._consumed)
                return messages
            head, body_offset = split
            if len(head) > self.max_head:
                raise SIPError("message head longer than %d bytes" % (self.max_head,),
                               offset=self._consumed)
            start, headers = _parse_head(head)
            lengths = [v for n, v in headers if n == "Content-Length"]
            if not lengths:
                raise SIPError("stream message without Content-Length", offset=self._consumed)
            length = _content_length(lengths[0], self._consumed)
            if length > self.max_body:
                raise SIPError("body of %d bytes exceeds %d" % (length, self.max_body),
                               offset=self._consumed)
            end = body_offset + length
            if len(stripped) < end:
                return messages
            messages.append(parse(stripped[:end], max_size=self.max_head + self.max_body + 4))
            self._buffer = stripped[end:]
            self._consumed += end


# -- header helpers -------------------------------------------------------------


def _random_hex(rng, bits):
    return "%0*x" % (bits // 4, rng.getrandbits(bits))


def new_branch(rng):
    """A Via branch: the RFC 3261 magic cookie and 64 random bits."""
    return MAGIC_COOKIE + _random_hex(rng, 64)


def new_tag(rng):
    """A From/To tag (32 random bits, RFC 3261 §19.3 asks for at least 32)."""
    return _random_hex(rng, 32)


def new_call_id(rng, host=""):
    """A Call-ID: 96 random bits, ``@host`` when given."""
    value = _random_hex(rng, 96)
    return "%s@%s" % (value, host) if host else value


def format_params(params):
    """``;name=value`` pairs (``None`` value: a flag parameter) from a dict."""
    return "".join(";%s" % (k,) if v is None else ";%s=%s" % (k, v) for k, v in params.items())


def format_via(transport, sent_by, branch, **params):
    """A Via value: ``SIP/2.0/UDP host:port;branch=...`` plus ``params``.

    ``rport=None`` adds the flag of RFC 3581.
    """
    return "%s/%s %s;branch=%s%s" % (SIP_VERSION, transport.upper(), sent_by, branch,
                                     format_params(params))


def _split_params(text, what):
    """``;a=b;c`` -> dict (names lower-cased, quotes kept off)."""
    params = {}
    for item in _split_outside_quotes(text, ";"):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not _TOKEN.fullmatch(name):
            raise SIPError("bad parameter %r in %s" % (item[:40], what), path=what)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = _unquote(value)
        params[name] = value if eq else None
    return params


def parse_via(value):
    """``(transport, sent_by, params)`` of the first Via in ``value``."""
    first = _split_outside_quotes(value, ",")[0].strip()
    match = re.fullmatch(r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9-]+)\s+([^\s;]+)\s*(;.*)?", first,
                         re.IGNORECASE | re.DOTALL)
    if not match:
        raise SIPError("bad Via %r" % (value[:80],), path="Via")
    return match.group(1).upper(), match.group(2), _split_params(match.group(3) or "", "Via")


def format_cseq(number, method):
    return "%d %s" % (number, method)


def parse_cseq(value):
    """``(number, method)`` of a CSeq value."""
    match = re.fullmatch(r"\s*([0-9]{1,10})\s+(%s)\s*" % (_METHOD.pattern,), value or "")
    if not match or int(match.group(1)) >= 2 ** 31:
        raise SIPError("bad CSeq %r" % (value,), path="CSeq")
    return int(match.group(1)), match.group(2)


def parse_name_addr(value):
    """``(uri, params)`` of a From/To/Contact value (``<uri>;p=v`` or ``uri;p=v``)."""
    value = value.strip()
    if "<" in value:
        left, _, rest = value.partition("<")
        uri, close, params = rest.partition(">")
        if not close:
            raise SIPError("unclosed '<' in %r" % (value[:80],))
    else:
        uri, _, params = value.partition(";")
        params = ";" + params if params else ""
    return uri.strip(), _split_params(params, "name-addr")


# -- digest authentication ------------------------------------------------------


def _split_outside_quotes(text, separator):
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value):
    return re.sub(r"\\(.)", r"\1", value[1:-1])


def _quote(value):
    return '"%s"' % (value.replace("\\", "\\\\").replace('"', '\\"'),)


def parse_challenge(value):
    """The parameters of a ``Digest`` challenge, names lower-cased.

    ``qop`` stays the raw list text (``"auth,auth-int"``).  Raises
    :class:`SIPError` for another scheme or a malformed list.
    """
    scheme, _, rest = (value or "").strip().partition(" ")
    if scheme.lower() != "digest":
        raise SIPError("not a Digest challenge: %r" % (scheme[:20],), path="WWW-Authenticate")
    params = {}
    for item in _split_outside_quotes(rest, ","):
        item = item.strip()
        if not item:
            continue
        name, eq, val = item.partition("=")
        name, val = name.strip().lower(), val.strip()
        if not eq or not _TOKEN.fullmatch(name):
            raise SIPError("bad challenge parameter %r" % (item[:40],), path="WWW-Authenticate")
        if val.startswith('"'):
            if len(val) < 2 or not val.endswith('"'):
                raise SIPError("unterminated quoted value for %s" % (name,),
                               path="WWW-Authenticate")
            val = _unquote(val)
        params[name] = val
    if "nonce" not in params:
        raise SIPError("Digest challenge without nonce", path="WWW-Authenticate")
    params.setdefault("realm", "")
    return params


_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def _hasher(algorithm):
    base = algorithm.upper()
    sess = base.endswith("-SESS")
    if sess:
        base = base[:-5]
    function = _HASHES.get(base)
    if function is None:
        raise SIPError("unsupported digest algorithm %r" % (algorithm,), path="algorithm")
    return (lambda text: function(text.encode("utf-8")).hexdigest()), sess


def digest_response(challenge, *, method, uri, username, password, cnonce="",
                    nc=1, body=b""):
    """The ``Authorization`` (or ``Proxy-Authorization``) value answering ``challenge``.

    ``challenge`` is :func:`parse_challenge`'s dict.  With ``qop`` offered,
    ``auth`` is used (``auth-int`` if that is all the server offers) with
    ``nc`` and ``cnonce``; without it, the RFC 2069 form.  MD5, SHA-256 and
    their ``-sess`` variants are supported.
    """
    algorithm = challenge.get("algorithm") or "MD5"
    hash_, sess = _hasher(algorithm)
    realm, nonce = challenge.get("realm", ""), challenge["nonce"]
    offered = [q.strip().lower() for q in (challenge.get("qop") or "").split(",") if q.strip()]
    if not offered:
        qop = None
    elif "auth" in offered:
        qop = "auth"
    elif "auth-int" in offered:
        qop = "auth-int"
    else:
        raise SIPError("no supported qop in %r" % (challenge.get("qop"),), path="qop")
    if (qop or sess) and not cnonce:
        raise SIPError("a cnonce is needed for qop or -sess", path="cnonce")
    ha1 = hash_("%s:%s:%s" % (username, realm, password))
    if sess:
        ha1 = hash_("%s:%s:%s" % (ha1, nonce, cnonce))
    a2 = "%s:%s" % (method, uri)
    if qop == "auth-int":
        a2 += ":" + _HASHES[algorithm.upper().removesuffix("-SESS")](bytes(body)).hexdigest()
    ha2 = hash_(a2)
    nc_text = "%08x" % (nc,)
    if qop:
        response = hash_("%s:%s:%s:%s:%s:%s" % (ha1, nonce, nc_text, cnonce, qop, ha2))
    else:
        response = hash_("%s:%s:%s" % (ha1, nonce, ha2))
    parts = ["username=%s" % _quote(username), "realm=%s" % _quote(realm),
             "nonce=%s" % _quote(nonce), "uri=%s" % _quote(uri),
             "response=%s" % _quote(response), "algorithm=%s" % (algorithm,)]
    if "opaque" in challenge:
        parts.append("opaque=%s" % _quote(challenge["opaque"]))
    if qop:
        parts += ["qop=%s" % (qop,), "nc=%s" % (nc_text,), "cnonce=%s" % _quote(cnonce)]
    return "Digest " + ", ".join(parts)

