"""TLS with pre-shared keys (RFC 4279/5487, TLS 1.3 PSK) on Twisted's TLS transport.

pyOpenSSL has no PSK API, but the OpenSSL binding that ``cryptography``
ships (``cryptography.hazmat.bindings.openssl.binding``, 42 and later)
exposes ``SSL_CTX_set_psk_server_callback``,
``SSL_CTX_set_psk_client_callback`` and ``SSL_CTX_use_psk_identity_hint``.
This module installs cffi callbacks through them on a pyOpenSSL
:class:`OpenSSL.SSL.Context`, so connections made by
:class:`twisted.protocols.tls.TLSMemoryBIOProtocol` carry PSK.

OpenSSL 3 also answers TLS 1.3 PSK handshakes through these TLS 1.2 style
callbacks when no find/use-session callback is set: the key then makes a
session with the TLS_AES_128_GCM_SHA256 suite, which must stay enabled
(it is in OpenSSL's default TLS 1.3 list).  ``openssl s_client -psk``
and ``s_server -psk`` do the same, which is what the tests check against.

The callbacks learn which Twisted protocol they serve through the
connection's app data (pyOpenSSL maps the ``SSL *`` back to its
:class:`~OpenSSL.SSL.Connection`): the identity a peer used is left on the
TLS protocol as ``psk_identity`` (``None`` when refused) and the reason of
a refusal as ``tls_refusal``, for :class:`PeerLoggingTLSFactory` to log
once with the peer's address.

Keys are looked up synchronously (OpenSSL waits for the answer), so a
lookup must be an in-memory mapping; it returns ``None`` for an unknown
identity, which makes OpenSSL abort the handshake.
"""

import binascii

from cryptography.hazmat.bindings.openssl.binding import Binding
from OpenSSL import SSL
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

__all__ = [
    "PSK_CIPHERS",
    "PskError",
    "ConnectionCreator",
    "FixedPolicy",
    "PeerLoggingTLSFactory",
    "parse_psk",
    "read_psk_file",
    "psk_available",
    "psk_context",
    "add_psk_server",
    "add_psk_client",
]

log = Logger(namespace="dmgateway.tls")

_lib = Binding.lib
_ffi = Binding.ffi

#: TLS 1.2 PSK suites, forward-secret ones first (ECDHE-PSK has no GCM
#: suite in OpenSSL); plain PSK with AES-GCM last for peers without ECDHE.
PSK_CIPHERS = (
    "ECDHE-PSK-CHACHA20-POLY1305:ECDHE-PSK-AES256-CBC-SHA384:ECDHE-PSK-AES128-CBC-SHA256:"
    "DHE-PSK-AES256-GCM-SHA384:DHE-PSK-AES128-GCM-SHA256:DHE-PSK-CHACHA20-POLY1305:"
    "PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256:PSK-CHACHA20-POLY1305"
)
#: PSK identities are at most this long (RFC 4279 allows 2^16-1; OpenSSL 128)
MAX_IDENTITY = 128
#: longest key OpenSSL accepts from a callback (PSK_MAX_PSK_LEN)
MAX_KEY = 256
MIN_KEY = 16


class PskError(ValueError):
    """A PSK key or identity that cannot be used."""


def psk_available():
    """Whether the installed OpenSSL binding offers the PSK callbacks."""
    return bool(getattr(_lib, "Cryptography_HAS_PSK", 0)) and hasattr(
        _lib, "SSL_CTX_set_psk_server_callback"
    )


def parse_psk(text):
    """The raw key of ``text``: hex digits as ``openssl -psk`` takes them.

    Surrounding white space is ignored; an empty, odd-length, non-hex,
    shorter than 16 bytes or longer than 256 bytes key raises
    :class:`PskError`.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    text = text.strip()
    if text[:2].lower() == "0x":
        text = text[2:]
    try:
        key = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        raise PskError("the key is not an even number of hex digits") from None
    if not MIN_KEY <= len(key) <= MAX_KEY:
        raise PskError("the key must be %d to %d bytes (has %d)" % (MIN_KEY, MAX_KEY, len(key)))
    return key


def read_psk_file(path):
    """The key in hex in the file ``path`` (see :func:`parse_psk`)."""
    with open(path, "rb") as f:
        return parse_psk(f.read(4096))


def check_identity(identity):
    """``identity`` if it is usable as a PSK identity, else :class:`PskError`."""
    if not identity or len(identity.encode("utf-8")) > MAX_IDENTITY:
        raise PskError("a PSK identity is 1 to %d bytes" % (MAX_IDENTITY,))
    if any(not c.isprintable() for c in identity):
        raise PskError("a PSK identity is printable text")
    return identity


def _tls_protocol(ssl):
    try:
        connection = SSL.Connection._reverse_mapping[ssl]
    except KeyError:
        return None
    return connection.get_app_data()


def add_psk_server(context, lookup, hint=""):
    """Make ``context`` answer PSK handshakes with keys from ``lookup(identity)``.

    ``lookup`` returns the raw key (bytes) of an identity or ``None``.  The
    cffi callback is kept on the context so it lives as long as it does.
    """
    if not psk_available():
        raise PskError("the installed cryptography's OpenSSL binding has no PSK support")

    @_ffi.callback("unsigned int(SSL *, const char *, unsigned char *, unsigned int)")
    def server_callback(ssl, identity_ptr, psk_out, max_len):
        tls = _tls_protocol(ssl)
        try:
            identity = _ffi.string(identity_ptr).decode("utf-8") if identity_ptr else ""
            key = lookup(identity) if identity else None
            if key is None or len(key) > max_len:
                _note(tls, None, "unknown PSK identity %r" % (identity[:MAX_IDENTITY],))
                return 0
            _ffi.memmove(psk_out, key, len(key))
            _note(tls, identity, None)
            return len(key)
        except Exception:  # an exception must not cross into OpenSSL
            log.failure("PSK lookup failed")
            _note(tls, None, "PSK lookup failed")
            return 0

    raw = context._context
    _lib.SSL_CTX_set_psk_server_callback(raw, server_callback)
    if hint:
        if _lib.SSL_CTX_use_psk_identity_hint(raw, hint.encode("utf-8")) != 1:
            raise PskError("bad PSK identity hint %r" % (hint,))
    context._dmgw_psk_server = server_callback  # keep the callback alive
    return context


def add_psk_client(context, identity, key):
    """Make ``context`` offer ``identity`` with ``key`` (raw bytes) to servers."""
    if not psk_available():
        raise PskError("the installed cryptography's OpenSSL binding has no PSK support")
    identity_bytes = check_identity(identity).encode("utf-8")

    @_ffi.callback(
        "unsigned int(SSL *, const char *, char *, unsigned int, unsigned char *, unsigned int)"
    )
    def client_callback(ssl, hint, identity_out, max_identity, psk_out, max_len):
        if len(identity_bytes) + 1 > max_identity or len(key) > max_len:
            return 0
        _ffi.memmove(identity_out, identity_bytes + b"\0", len(identity_bytes) + 1)
        _ffi.memmove(psk_out, key, len(key))
        tls = _tls_protocol(ssl)
        _note(tls, identity, None)
        return len(key)

    _lib.SSL_CTX_set_psk_client_callback(context._context, client_callback)
    context._dmgw_psk_client = client_callback
    return context


def _note(tls, identity, refusal):
    if tls is not None:
        tls.psk_identity = identity
        tls.tls_refusal = refusal


def psk_context(ciphers=PSK_CIPHERS, minimum="1.2"):
    """A new TLS 1.2/1.3 pyOpenSSL context limited to PSK suites (no certificate)."""
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_3_VERSION if minimum == "1.3" else SSL.TLS1_2_VERSION)
    context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION | SSL.OP_NO_TICKET)
    context.set_cipher_list(ciphers.encode("ascii"))
    return context


@implementer(IOpenSSLServerConnectionCreator, IOpenSSLClientConnectionCreator)
class ConnectionCreator:
    """Connections from one pyOpenSSL context, with the TLS protocol as app data.

    Serves both :class:`TLSMemoryBIOFactory` (server) and
    :class:`twisted.web.client.Agent` policies (client).
    """

    def __init__(self, context):
        self.context = context

    def serverConnectionForTLS(self, tlsProtocol):
        connection = SSL.Connection(self.context, None)
        connection.set_app_data(tlsProtocol)
        return connection

    def clientConnectionForTLS(self, tlsProtocol):
        connection = SSL.Connection(self.context, None)
        connection.set_app_data(tlsProtocol)
        connection.set_connect_state()
        return connection


@implementer(IPolicyForHTTPS)
class FixedPolicy:
    """An :class:`~twisted.web.client.Agent` TLS policy using one creator for every host.

    The peer is authenticated by the creator's context (PSK, or a pinned
    certificate / CA with a client certificate), not by host name.
    """

    def __init__(self, creator):
        self.creator = creator

    def creatorForNetloc(self, hostname, port):
        return self.creator


class _LoggingTLSProtocol(TLSMemoryBIOProtocol):
    """Logs, once and with the peer's address, a handshake that did not complete."""

    psk_identity = None
    tls_refusal = None

    def connectionLost(self, reason):
        if not self._handshakeDone and self.factory.log_refusals:
            peer = self.transport.getPeer() if self.transport is not None else None
            log.warn(
                "{listener}: TLS handshake with {peer} refused: {reason}",
                listener=self.factory.name,
                peer="%s:%s" % (getattr(peer, "host", "?"), getattr(peer, "port", "?")),
                reason=self._refusal(reason),
            )
        super().connectionLost(reason)


    def _refusal(self, reason):
        if self.tls_refusal:
            return self.tls_refusal
        if self.psk_identity is not None:
            return "PSK identity %r did not complete the handshake (wrong key?): %s" % (
                self.psk_identity, _reason_text(reason))
        return _reason_text(reason)


def _reason_text(reason):
    value = reason.value
    if isinstance(value, SSL.Error) and value.args and isinstance(value.args[0], list):
        texts = [entry[-1] for entry in value.args[0] if entry]
        if texts:
            return "; ".join(str(t) for t in texts)
    text = str(value) or value.__class__.__name__
    return text[:200]


class PeerLoggingTLSFactory(TLSMemoryBIOFactory):
    """A server-side TLS wrapper whose refused handshakes are logged once."""

    protocol = _LoggingTLSProtocol
    noisy = False

    def __init__(self, creator, wrapped, name="tls", log_refusals=True):
        super().__init__(creator, False, wrapped)
        self.name = name
        self.log_refusals = log_refusals

    def logPrefix(self):
        return self.name
