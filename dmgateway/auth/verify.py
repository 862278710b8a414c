"""Checking and producing the credentials of one SyncML DM message.

Both directions use the same formulas, so the same code checks a client's
credentials on the server (:func:`verify_client`) and a server's on the
client (:func:`verify_server_cred`).  Results are :class:`Verdict` values:
the SyncHdr Status code to send back and a short reason that is safe to log.

Session rules that are not about one message (which nonce is current, when
to rotate it, when to stop asking for credentials after a 212) belong to
the session engine.
"""

from dataclasses import dataclass, field
from ..codec.syncml import Chal, Cred, Meta
from .credentials import (
    FORMAT_B64,
    HMAC_ALGORITHM,
    SCHEME_TO_TYPE,
    AuthError,
    b64decode_tolerant,
    basic_value,
    constant_time_equal,
    format_hmac_header,
    hmac_mac,
    mac_digest,
    md5_digest,
    md5_value,
    parse_hmac_header,
    scheme_for_type,
    split_basic,
    user_hash,
)
from .nonce import decode_nonce, encode_nonce

__all__ = [
    "SCHEMES",
    "STATUS_AUTHENTICATED",
    "STATUS_INVALID",
    "STATUS_MISSING",
    "STATUS_OK",
    "AuthAccount",
    "Verdict",
    "challenge",
    "client_cred",
    "client_hmac_header",
    "cred_scheme",
    "parse_challenge",
    "server_cred",
    "server_hmac_header",
    "verify_client",
    "verify_server_cred",
]

STATUS_OK = 200  # accepted for this message (HMAC, always)
STATUS_AUTHENTICATED = 212  # accepted for the rest of the session
STATUS_INVALID = 401
STATUS_MISSING = 407

SCHEMES = ("none", "basic", "md5", "hmac")


@dataclass
class AuthAccount:
    """One side's credentials: a CLCRED or SRVCRED AppAuth entry.

    ``user_hash`` is ``B64(MD5(name ":" secret))``; it is all that md5, HMAC
    and checking basic need.  ``secret`` is only needed to *send* basic
    credentials.  Neither appears in ``repr()``.
    """

    scheme: str  # "basic" | "md5" | "hmac" | "none"
    name: str
    user_hash: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_secret(
        cls, scheme: str, name: str, secret: str, *, keep_secret: bool = False
    ) -> "AuthAccount":
        """An account for a plain secret; the secret is kept only if asked."""
        return cls(
            scheme=scheme,
            name=name,
            user_hash=user_hash(name, secret),
            secret=secret if keep_secret else None,
        )

    def stored_hash(self) -> str:
        """``user_hash``, derived from ``secret`` when empty; ``""`` if neither."""
        if self.user_hash:
            return self.user_hash
        if self.secret is not None:
            return user_hash(self.name, self.secret)
        return ""


@dataclass
class Verdict:
    """Outcome of checking one message's credentials."""

    ok: bool
    status: int  # 212/200 when ok, 401 bad, 407 missing
    reason: str


def _fail(reason):
    return Verdict(False, STATUS_INVALID, reason)


def _missing():
    return Verdict(False, STATUS_MISSING, "missing credentials")


def cred_scheme(cred: Cred) -> str | None:
    """The scheme a ``Cred`` claims: ``basic``/``md5``/``hmac``, or None.

    A Cred without a Meta Type is basic (SyncML's default type).
    """
    meta_type = cred.meta.type if cred.meta is not None else None
    if meta_type is None or not meta_type.strip():
        return "basic"
    return scheme_for_type(meta_type)


def _cred_bytes(cred):
    """Decoded Cred/Data: base64 text for Format b64 (or none), raw for bin."""
    fmt = cred.meta.format if cred.meta is not None else None
    fmt = (fmt or FORMAT_B64).strip().lower()
    if fmt == FORMAT_B64:
        return b64decode_tolerant(cred.data)
    if fmt == "bin" and isinstance(cred.data, (bytes, bytearray)):
        return bytes(cred.data)
    raise AuthError("unsupported credential format")


def _mac_matches(text, digest, accept_hex_mac):
    try:
        raw = b64decode_tolerant(text)
    except AuthError:
        return False
    if accept_hex_mac and len(raw) == 2 * len(digest):
        # OMA example oddity: base64 of the lowercase hex text of the digest
        return constant_time_equal(raw.lower(), digest.hex().encode("ascii"))
    return constant_time_equal(raw, digest)


def _verify(account, nonce, cred, loc_name, hmac_header, body, accept_hex_mac, require_loc_name):
    scheme = (account.scheme or "").strip().lower()
    if scheme == "none":
        return Verdict(True, STATUS_AUTHENTICATED, "no authentication required")
    if scheme not in SCHEME_TO_TYPE:
        return _fail("account has an unknown scheme")
    stored = account.stored_hash()
    if not stored:
        return _fail("account has no credentials")
    nonce = bytes(nonce or b"")

    if scheme == "hmac":
        if not hmac_header:
            return _fail("wrong authentication scheme") if cred is not None else _missing()
        try:
            header = parse_hmac_header(hmac_header)
        except AuthError:
            return _fail("malformed x-syncml-hmac header")
        if header.algorithm.strip().upper() != HMAC_ALGORITHM:
            return _fail("unsupported MAC algorithm")
        if not constant_time_equal(header.username, account.name):
            return _fail("user name mismatch")
        if not _mac_matches(header.mac, mac_digest(stored, nonce, body or b""), accept_hex_mac):
            return _fail("bad MAC")
        return Verdict(True, STATUS_OK, "message authenticated")

    if cred is None:
        return _fail("wrong authentication scheme") if hmac_header else _missing()
    if cred_scheme(cred) != scheme:
        return _fail("wrong authentication scheme")
    try:
        raw = _cred_bytes(cred)
    except AuthError:
        return _fail("malformed credentials")

    if scheme == "md5":
        if loc_name is None:
            if require_loc_name:
                return _fail("missing user name")
        elif not constant_time_equal(loc_name, account.name):
            return _fail("user name mismatch")
        if not constant_time_equal(raw, md5_digest(stored, nonce)):
            return _fail("bad digest")
        return Verdict(True, STATUS_AUTHENTICATED, "authenticated")

    # basic
    try:
        name, secret = split_basic(raw)
    except AuthError:
        return _fail("malformed credentials")
    name_ok = constant_time_equal(name, account.name)
    secret_ok = constant_time_equal(user_hash(name, secret), stored)
    if not name_ok:
        return _fail("user name mismatch")
    if not secret_ok:
        return _fail("bad password")
    return Verdict(True, STATUS_AUTHENTICATED, "authenticated")


def verify_client(
    account: AuthAccount,
    nonce: bytes,
    *,
    cred: Cred | None,
    loc_name: str | None,
    hmac_header: str | bytes | None,
    body: bytes,
    accept_hex_mac: bool = False,
    require_loc_name: bool = False,
) -> Verdict:
    """Check the credentials a client sent in one message.

    ``account`` is the device's CLCRED entry, ``nonce`` the raw client nonce
    the credentials must be built with, ``cred`` the ``SyncHdr/Cred``,
    ``loc_name`` ``SyncHdr/Source/LocName``, ``hmac_header`` the
    ``x-syncml-hmac`` value (or None) and ``body`` the exact HTTP body.

    * md5: the LocName, when present, must equal ``account.name`` (it is
      required with ``require_loc_name``); the digest binds the name anyway.
    * basic: name and secret come from the value.
    * hmac: the header's username must equal ``account.name``; the MAC is
      over ``body``.  ``accept_hex_mac`` also accepts the base64-of-hex
      variant of the OMA example.

    Status: 212 (basic/md5) or 200 (hmac) when ok, 407 when nothing was
    sent, 401 for anything else, including the wrong scheme.  An account
    with scheme ``none`` always gets 212.
    """
    return _verify(
        account, nonce, cred, loc_name, hmac_header, body, accept_hex_mac, require_loc_name
    )


def verify_server_cred(
    account: AuthAccount,
    nonce: bytes,
    *,
    cred: Cred | None,
    loc_name: str | None,
    hmac_header: str | bytes | None,
    body: bytes,
    accept_hex_mac: bool = False,
    require_loc_name: bool = False,
) -> Verdict:
    """Client side: check a server's credentials against the SRVCRED account.

    Same rules and :class:`Verdict` as :func:`verify_client`; ``nonce`` is
    the raw server nonce.
    """
    return _verify(
        account, nonce, cred, loc_name, hmac_header, body, accept_hex_mac, require_loc_name
    )


def server_cred(account: AuthAccount, nonce: bytes | None) -> Cred | None:
    """The ``Cred`` for our SyncHdr, or None for hmac/none.

    md5 also needs ``account.name`` in ``SyncHdr/Source/LocName`` (the
    caller builds the header).  basic needs ``account.secret``; a missing
    secret or an unknown scheme raises :class:`AuthError`.
    """
    scheme = (account.scheme or "").strip().lower()
    if scheme in ("hmac", "none"):
        return None
    if scheme == "md5":
        stored = account.stored_hash()
        if not stored:
            raise AuthError("account has no credentials")
        data = md5_value(stored, bytes(nonce or b""))
    elif scheme == "basic":
        if account.secret is None:
            raise AuthError("basic credentials need the plain secret")
        data = basic_value(account.name, account.secret)
    else:
        raise AuthError("unknown authentication scheme")
    return Cred(Meta(SCHEME_TO_TYPE[scheme], FORMAT_B64), data)  # (positional: Meta(type, format), Cred(meta, data))


def server_hmac_header(account: AuthAccount, nonce: bytes, body: bytes) -> str:
    """The ``x-syncml-hmac`` value for a message ``body`` we send."""
    stored = account.stored_hash()
    if not stored:
        raise AuthError("account has no credentials")
    return format_hmac_header(account.name, hmac_mac(stored, bytes(nonce or b""), body))


# The formulas are symmetric: a client builds its credentials the same way.
client_cred = server_cred
client_hmac_header = server_hmac_header


def challenge(scheme: str, next_nonce: bytes | None) -> Chal:
    """A ``Chal`` asking for ``scheme`` (``basic``/``md5``/``hmac``).

    md5 and hmac carry ``next_nonce`` (raw bytes) as b64 NextNonce when it
    is not None; basic never carries a nonce.
    """
    key = (scheme or "").strip().lower()
    if key not in SCHEME_TO_TYPE:
        raise AuthError("cannot challenge for scheme %r" % (scheme,))
    meta = Meta(SCHEME_TO_TYPE[key], FORMAT_B64)  # (positional, a keyword call costs more: type, format)
    if key != "basic" and next_nonce is not None:
        meta.next_nonce = encode_nonce(next_nonce)
    return Chal(meta)


def parse_challenge(chal: Chal) -> tuple[str | None, bytes | None]:
    """``(scheme, next_nonce)`` from a peer's ``Chal``.

    ``scheme`` is None for a type we do not know; ``next_nonce`` is the raw
    bytes or None when absent.  A NextNonce that is not base64 raises
    :class:`AuthError`.
    """
    meta = chal.meta if chal is not None and chal.meta is not None else Meta()
    meta_type = meta.type
    scheme = scheme_for_type(meta_type) if meta_type and meta_type.strip() else "basic"
    if meta.next_nonce is None:
        return scheme, None
    fmt = (meta.format or FORMAT_B64).strip().lower()
    if fmt != FORMAT_B64:
        raise AuthError("NextNonce format %r not supported" % (meta.format,))
    return scheme, decode_nonce(meta.next_nonce)
