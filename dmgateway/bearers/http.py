"""DM-2 over HTTP and HTTPS: the thin twisted.web side of the DM session.

A device POSTs one SyncML message per request; the reply is the next server
message in the body of ``200 OK``.  This module only checks what HTTP must
check (method, media type, size) and hands the bytes to the dispatcher; all
SyncML knowledge lives in the dispatcher and the session engine.

Bodies larger than ``max_body`` are refused with 413 as soon as the headers
announce them (``Content-Length``) or, for chunked uploads, as soon as the
running total passes the limit: an oversized body is never buffered.
"""


from twisted.internet import endpoints
from twisted.logger import Logger

from dmgateway.bearers.dmhttp import DMSite, when_answered
from dmgateway.bearers.http1 import header_name, header_value, response
from dmgateway.bearers.httplimits import MessageLimits
from dmgateway.endpoints import split_endpoint

log = Logger(namespace="dmgateway.http")

#: media types a device may send, and the encoding each means
MEDIA_TYPES = {
    b"application/vnd.syncml.dm+xml": "xml",
    b"application/vnd.syncml.dm+wbxml": "wbxml",
    b"application/vnd.syncml+xml": "xml",
    b"application/vnd.syncml+wbxml": "wbxml",
}

_TEXT = b"text/plain; charset=utf-8"


def media_type(header):
    """The bare lower-case media type of a Content-Type header value."""
    if header is None:
        return None
    return header.split(b";", 1)[0].strip().lower()


class DMResource:
    """Answers POSTs of SyncML messages at exactly one path."""

    def __init__(self, dispatcher, path, limits=None):
        self.dispatcher = dispatcher
        self.path = path.encode("utf-8") if isinstance(path, str) else path
        self._bare_path = self.path.rstrip(b"/")
        self.limits = limits  # MessageLimits before authentication (None: none)
        answer = getattr(dispatcher, "answer_dm", None) or dispatcher.handle_dm
        self._extra = {"limits": limits} if limits is not None else {}
        self._answer = answer

    def handle(self, request, channel):
        """Answer ``request`` (whole, from ``channel``) now or once the dispatcher has."""
        if request.path.rstrip(b"/") != self._bare_path:
            return self._plain(channel, request, 404, "no DM service at this path")
        if request.method != b"POST":
            return self._plain(channel, request, 405, "DM messages are POSTed", b"Allow: POST\r\n")
        headers = request.headers
        ctype = media_type(headers.get(b"content-type"))
        if ctype is not None and ctype not in MEDIA_TYPES:
            return self._plain(channel, request, 415, "unsupported media type %r" % (ctype.decode("latin-1"),))
        token = request.query_value(b"s")
        hmac_header = headers.get(b"x-syncml-hmac")
        result = self._answer(
            request.body,
            encoding=MEDIA_TYPES.get(ctype),
            hmac_header=hmac_header.decode("latin-1") if hmac_header is not None else None,
            token=token.decode("latin-1") if token is not None else None,
            peer=channel.peer_text(),
            **self._extra,
        )
        when_answered(result, channel, request, _reply)

    @staticmethod
    def _plain(channel, request, code, message, extra=b""):
        channel.answer(request, response(code, _TEXT, message.encode("utf-8") + b"\n", channel.site.date(), extra,
                                         request.http10, not request.keep_alive, request.method == b"HEAD"))


#: headers the bearer writes itself (framing, caching); a reply's own are dropped
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection", "date", "cache-control"))
_NO_STORE = b"Cache-Control: no-store\r\n"
#: a reply's content type -> its header value (the dispatcher answers with a few; made once each)
_CONTENT_TYPES = {}


def _reply(channel, request, reply):
    if reply.headers:
        extra = [_NO_STORE]
        for name, value in reply.headers.items():
            if name.lower() in _FRAMING:
                continue
            extra.append(b"%s: %s\r\n" % (header_name(name), header_value(value)))
        extra = b"".join(extra)
    else:
        extra = _NO_STORE
    ctype = _CONTENT_TYPES.get(reply.content_type)
    if ctype is None:
        ctype = header_value(reply.content_type, "ascii")
        if len(_CONTENT_TYPES) < 64:
            _CONTENT_TYPES[reply.content_type] = ctype
    channel.answer(request, response(reply.code, ctype, reply.body, channel.site.date(), extra, request.http10,
                                     not request.keep_alive))


def dm_site(dispatcher, path, max_body, reactor=None, listener=None):
    """The DM-2 listener's factory serving ``path`` with the body limit ``max_body``.

    ``listener`` (an ``[http]``/``[https]`` config section) adds its limits:
    the total request-read deadline, the per-address connection cap and the
    counts a message may reach before authentication.
    """
    limits = None
    if listener is not None:
        limits = MessageLimits(
            max_elements=listener.max_elements,
            max_commands=listener.max_commands,
            max_items=listener.max_items,
        )
    site = DMSite(DMResource(dispatcher, path, limits), reactor=reactor)
    if listener is not None:
        site.read_timeout = listener.read_timeout
        site.max_connections_per_peer = listener.max_connections_per_peer
        site.proxied = listener.endpoint.startswith("haproxy:")
    site.max_body = max_body
    return site


# -- HTTPS -------------------------------------------------------------------


def endpoint_certificate(endpoint):
    """The ``PrivateCertificate`` an ``ssl:`` endpoint string names
    (``privateKey`` and ``certKey``, which defaults to the key's file)."""
    from twisted.internet import ssl

    _kind, _args, kwargs = split_endpoint(endpoint)
    key_path = kwargs.get("privateKey")
    cert_path = kwargs.get("certKey", key_path)
    with open(cert_path, "rb") as f:
        cert_pem = f.read()
    with open(key_path, "rb") as f:
        key_pem = f.read()
    return ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)


def https_context(https):
    """``CertificateOptions`` for the HTTPS listener: certificate files, TLS >= 1.2.

    ``[https] ciphers`` (an OpenSSL cipher string) picks the TLS 1.2 suites;
    TLS 1.3 suites are OpenSSL's own and not affected.
    """
    from twisted.internet import ssl
    from twisted.internet.ssl import AcceptableCiphers, TLSVersion

    _kind, _args, kwargs = split_endpoint(https.endpoint)
    certificate = endpoint_certificate(https.endpoint)
    chain = []
    if kwargs.get("extraCertChain"):
        with open(kwargs["extraCertChain"], "rb") as f:
            chain = [c.original for c in _load_certs(f.read())]
    minimum = TLSVersion.TLSv1_3 if https.min_tls == "1.3" else TLSVersion.TLSv1_2
    options = dict(
        privateKey=certificate.privateKey.original,
        certificate=certificate.original,
        extraCertChain=chain,
        raiseMinimumTo=minimum,
        acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(https.ciphers),
    )
    client_ca = https.client_ca
    if client_ca:
        with open(client_ca, "rb") as f:
            options.update(
                verify=True,
                caCerts=[c.original for c in _load_certs(f.read())],
                requireCertificate=False,
            )
    return ssl.CertificateOptions(**options)


def _load_certs(pem):
    from twisted.internet import ssl

    marker = b"-----END CERTIFICATE-----"
    blocks = [b + marker for b in pem.split(marker) if b.strip()]
    return [ssl.Certificate.loadPEM(block) for block in blocks]


def _tls_description(https):
    """``(inner endpoint description, proxied)`` of the ``[https]`` endpoint
    (``haproxy:ssl:...``: the PROXY header comes in the clear before TLS)."""
    endpoint = https.endpoint
    if endpoint[:8].lower() == "haproxy:":
        return endpoint[8:], True
    return endpoint, False


def _tcp_endpoint(reactor, https, description):
    _kind, args, kwargs = split_endpoint(description)
    return endpoints.TCP4ServerEndpoint(
        reactor,
        int(args[0] if args else kwargs.get("port", 8443)),
        backlog=int(kwargs.get("backlog", getattr(https, "backlog", 1024))),
        interface=kwargs.get("interface", ""),
    )


def https_listener(reactor, https, site):
    """``(endpoint, factory)`` of the ``[https]`` listener serving ``site``.

    Behind ``haproxy:`` the order of the layers matters: HAProxy (TCP mode,
    ``send-proxy``) writes its header in the clear and then relays the
    device's TLS, so the PROXY protocol is read on the TCP connection and
    TLS inside it (Twisted's ``haproxy:ssl:`` string would put TLS first).
    """
    from twisted.protocols.haproxy import proxyEndpoint
    from twisted.protocols.tls import TLSMemoryBIOFactory

    description, proxied = _tls_description(https)
    if not proxied:
        _kind, args, kwargs = split_endpoint(description)
        endpoint = endpoints.SSL4ServerEndpoint(
            reactor,
            int(args[0] if args else kwargs.get("port", 8443)),
            https_context(https),
            backlog=int(kwargs.get("backlog", getattr(https, "backlog", 1024))),
            interface=kwargs.get("interface", ""),
        )
        return endpoint, site
    factory = TLSMemoryBIOFactory(https_context(https), False, site)
    return proxyEndpoint(_tcp_endpoint(reactor, https, description)), factory


def https_psk_listener(reactor, https, site, lookup):
    """``(endpoint, factory)`` of an HTTPS listener that also takes TLS-PSK (``[https] psk``).

    Certificates keep working for devices that do not offer PSK; a device
    that does is looked up by its PSK identity with ``lookup(identity)``
    (the keys set through the device API).  Refused handshakes are logged
    once with the peer's address.  ``haproxy:`` works as in :func:`https_listener`.
    """
    from twisted.protocols.haproxy import proxyEndpoint

    from dmgateway.bearers import tlspsk

    options = https_context(https)
    context = options.getContext()
    context.set_cipher_list((tlspsk.PSK_CIPHERS + ":" + options._cipherString).encode("ascii"))
    tlspsk.add_psk_server(context, lookup)
    description, proxied = _tls_description(https)
    endpoint = _tcp_endpoint(reactor, https, description)
    factory = tlspsk.PeerLoggingTLSFactory(tlspsk.ConnectionCreator(context), site, name="https")
    return (proxyEndpoint(endpoint) if proxied else endpoint), factory


def with_backlog(description, backlog):
    """``description`` with ``backlog=N`` added where its type takes one and it has none."""
    if description.startswith("haproxy:"):  # PROXY protocol around an inner endpoint
        return "haproxy:" + with_backlog(description[len("haproxy:"):], backlog)
    kind, _args, kwargs = split_endpoint(description)
    if kind not in ("tcp", "tcp6", "unix") or "backlog" in kwargs:
        return description
    return "%s:backlog=%d" % (description, backlog)
