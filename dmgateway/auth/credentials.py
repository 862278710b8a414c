"""OMA DM credential formulas and the ``x-syncml-hmac`` header.

Everything here is a pure function of its arguments.  The formulas
(dm-security §3), with ``H`` = MD5, ``B64`` = standard base64 and the nonce
as raw bytes::

    user_hash = B64(H(name ":" secret))
    basic     = B64(name ":" secret)
    md5       = B64(H(user_hash ":" nonce))
    mac       = B64(H(user_hash ":" nonce ":" B64(H(body))))

``user_hash`` is what a credential store keeps instead of the password: the
md5 and MAC schemes need nothing else.  The MAC is *not* RFC 2104 HMAC,
whatever its name says.

Bad input (malformed base64, headers, basic values) raises :class:`AuthError`
and nothing else.
"""

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

__all__ = [
    "AUTH_BASIC",
    "AUTH_MAC",
    "AUTH_MD5",
    "FORMAT_B64",
    "SCHEME_TO_TYPE",
    "AuthError",
    "HmacHeader",
    "b64decode_tolerant",
    "basic_value",
    "constant_time_equal",
    "format_hmac_header",
    "hmac_mac",
    "mac_digest",
    "md5_digest",
    "md5_value",
    "parse_basic",
    "parse_hmac_header",
    "scheme_for_type",
    "split_basic",
    "user_hash",
]

AUTH_BASIC = "syncml:auth-basic"
AUTH_MD5 = "syncml:auth-md5"
AUTH_MAC = "syncml:auth-MAC"
FORMAT_B64 = "b64"

SCHEME_TO_TYPE = {"basic": AUTH_BASIC, "md5": AUTH_MD5, "hmac": AUTH_MAC}
_TYPE_TO_SCHEME = {meta_type.lower(): scheme for scheme, meta_type in SCHEME_TO_TYPE.items()}

HMAC_HEADER = "x-syncml-hmac"
HMAC_ALGORITHM = "MD5"


class AuthError(ValueError):
    """Malformed credentials, nonce text or ``x-syncml-hmac`` header."""


def scheme_for_type(meta_type: str | None) -> str | None:
    """The scheme name (``basic``/``md5``/``hmac``) of a Meta Type, or None.

    The comparison ignores case: ``syncml:auth-mac`` is seen in the wild.
    """
    if not isinstance(meta_type, str):
        return None
    return _TYPE_TO_SCHEME.get(meta_type.strip().lower())


# -- base64 ------------------------------------------------------------------

_B64_TEXT = re.compile(r"[A-Za-z0-9+/]*=*")
_WHITESPACE = re.compile(r"[ \t\r\n\f\v]+")


def b64decode_tolerant(text: str | bytes) -> bytes:
    """Decode standard base64, ignoring whitespace and missing padding.

    ``text`` may be ``str`` or ASCII ``bytes``.  Anything that is not base64
    raises :class:`AuthError`.
    """
    if text.__class__ is str:
        # the usual text, padded base64 without whitespace: what the steps
        # below decode it to (a strict decode is a quarter of a regex match)
        try:
            return binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError):  # (ValueError: not ASCII)
            pass  # the steps below tell
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("ascii")
        except UnicodeDecodeError:
            raise AuthError("base64 text is not ASCII") from None
    if not isinstance(text, str):
        raise AuthError("base64 text expected, got %s" % (type(text).__name__,))
    compact = _WHITESPACE.sub("", text)
    if not _B64_TEXT.fullmatch(compact):
        raise AuthError("not base64 text")
    compact = compact.rstrip("=")
    if len(compact) % 4 == 1:
        raise AuthError("truncated base64 text")
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise AuthError("not base64 text") from None


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _utf8(text):
    # surrogatepass: a str that came from anywhere still hashes instead of crashing
    return text.encode("utf-8", "surrogatepass")


# -- formulas ----------------------------------------------------------------


def user_hash(name: str, secret: str) -> str:
    """``B64(MD5(name ":" secret))`` over UTF-8: what the store keeps."""
    return _b64(hashlib.md5(_utf8(name) + b":" + _utf8(secret)).digest())


def basic_value(name: str, secret: str) -> str:
    """The ``syncml:auth-basic`` Cred/Data: ``B64(name ":" secret)``."""
    return _b64(_utf8(name) + b":" + _utf8(secret))


def parse_basic(value: str | bytes) -> tuple[str, str]:
    """Split a ``syncml:auth-basic`` Cred/Data into ``(name, secret)``.

    The name ends at the first colon; the secret may contain colons.
    """
    return split_basic(b64decode_tolerant(value))


def split_basic(raw: bytes) -> tuple[str, str]:
    """``(name, secret)`` from the decoded bytes of a basic value."""
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise AuthError("basic credentials are not UTF-8") from None
    name, colon, secret = text.partition(":")
    if not colon:
        raise AuthError("basic credentials without ':'")
    return name, secret


def md5_digest(user_hash: str, nonce: bytes) -> bytes:
    """The raw 16 bytes behind :func:`md5_value`."""
    return hashlib.md5(_utf8(user_hash) + b":" + bytes(nonce)).digest()


def md5_value(user_hash: str, nonce: bytes) -> str:
    """The ``syncml:auth-md5`` Cred/Data for a stored hash and a raw nonce."""
    return _b64(md5_digest(user_hash, nonce))


def mac_digest(user_hash: str, nonce: bytes, body: bytes) -> bytes:
    """The raw 16 bytes behind :func:`hmac_mac`."""
    body_hash = _b64(hashlib.md5(bytes(body)).digest()).encode("ascii")
    return hashlib.md5(_utf8(user_hash) + b":" + bytes(nonce) + b":" + body_hash).digest()


def hmac_mac(user_hash: str, nonce: bytes, body: bytes) -> str:
    """The ``mac`` of an ``x-syncml-hmac`` header over the exact body bytes."""
    return _b64(mac_digest(user_hash, nonce, body))


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    """Compare two secrets (``str`` or ``bytes``) in constant time."""
    if isinstance(a, str):
        a = _utf8(a)
    if isinstance(b, str):
        b = _utf8(b)
    return hmac.compare_digest(bytes(a), bytes(b))


# -- x-syncml-hmac header ----------------------------------------------------


@dataclass
class HmacHeader:
    """A parsed ``x-syncml-hmac`` header value."""

    algorithm: str
    username: str
    mac: str


_KEYS = ("algorithm", "username", "mac")
_SEPARATORS = " \t,"


def _header_pairs(value):
    """Yield ``(key, value)`` from a ``k=v, k="v"`` list; AuthError on garbage."""
    pos, end = 0, len(value)
    while True:
        while pos < end and value[pos] in _SEPARATORS:
            pos += 1
        if pos == end:
            return
        equals = value.find("=", pos)
        comma = value.find(",", pos)
        if equals < 0 or (0 <= comma < equals):
            raise AuthError("header element without '=' at offset %d" % (pos,))
        key = value[pos:equals].strip(" \t").lower()
        if not key or any(c in key for c in ' \t"'):
            raise AuthError("bad header key at offset %d" % (pos,))
        pos = equals + 1
        while pos < end and value[pos] in " \t":
            pos += 1
        if pos < end and value[pos] == '"':
            item, pos = _quoted_string(value, pos)
            while pos < end and value[pos] in " \t":
                pos += 1
            if pos < end and value[pos] != ",":
                raise AuthError("text after quoted string at offset %d" % (pos,))
        else:
            comma = value.find(",", pos)
            if comma < 0:
                comma = end
            item = value[pos:comma].strip(" \t")
            if '"' in item:
                raise AuthError("stray quote at offset %d" % (pos,))
            pos = comma
        yield key, item


def _quoted_string(value, pos):
    """Read the quoted-string starting at ``value[pos] == '"'``."""
    out = []
    pos += 1
    while pos < len(value):
        char = value[pos]
        if char == "\\" and pos + 1 < len(value):
            out.append(value[pos + 1])
            pos += 2
        elif char == '"':
            return "".join(out), pos + 1
        else:
            out.append(char)
            pos += 1
    raise AuthError("unterminated quoted string")


def parse_hmac_header(value: str | bytes) -> HmacHeader:
    """Parse an ``x-syncml-hmac`` header value into an :class:`HmacHeader`.

    Lenient: keys in any order and any case, optional spaces, optional
    quotes around any value, unknown keys ignored, a missing ``algorithm``
    means MD5.  ``username`` and ``mac`` must be present and non-empty, and
    a key may not repeat.  ``value`` may also be bytes (as Twisted hands
    headers out).
    """
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise AuthError("x-syncml-hmac header is not UTF-8") from None
    if not isinstance(value, str):
        raise AuthError("x-syncml-hmac header must be text")
    found = {}
    for key, item in _header_pairs(value):
        if key not in _KEYS:
            continue
        if key in found:
            raise AuthError("duplicate %r in x-syncml-hmac header" % (key,))
        found[key] = item
    if "mac" in found:
        found["mac"] = _WHITESPACE.sub("", found["mac"])
    for key in ("username", "mac"):
        if not found.get(key):
            raise AuthError("x-syncml-hmac header without %s" % (key,))
    return HmacHeader(
        algorithm=found.get("algorithm") or HMAC_ALGORITHM,
        username=found["username"],
        mac=found["mac"],
    )


_B64_STRICT = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def format_hmac_header(username: str, mac: str) -> str:
    """``algorithm=MD5, username="<username>", mac=<mac>`` (strict).

    Raises :class:`AuthError` for a user name with control characters (no
    header injection) or a ``mac`` that is not base64 text.
    """
    if not username or any(ord(c) < 0x20 or ord(c) == 0x7F for c in username):
        raise AuthError("user name not usable in a header")
    if not _B64_STRICT.fullmatch(mac or ""):
        raise AuthError("mac is not base64 text")
    quoted = username.replace("\\", "\\\\").replace('"', '\\"')
    return 'algorithm=%s, username="%s", mac=%s' % (HMAC_ALGORITHM, quoted, mac)
