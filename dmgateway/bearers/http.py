"""DM-2 over HTTP and HTTPS: the thin twisted.web side of the DM session.

A device POSTs one SyncML message per request; the reply is the next server
message in the body of ``200 OK``.  This module only checks what HTTP must
check (method, media type, size) and hands the bytes to the dispatcher; all
SyncML knowledge lives in the dispatcher and the session engine.

Bodies larger than ``max_body`` are refused with 413 as soon as the headers
announce them (``Content-Length``) or, for chunked uploads, as soon as the
running total passes the limit: an oversized body is never buffered.
"""


from twisted.internet import defer, endpoints
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server

from dmgateway.bearers.httplimits import MessageLimits, PeerCappedSite
from dmgateway.bearers.webrequest import BodyLimitedRequest, peer_of
from dmgateway.endpoints import split_endpoint

log = Logger(namespace="dmgateway.http")

#: media types a device may send, and the encoding each means
MEDIA_TYPES = {
    b"application/vnd.syncml.dm+xml": "xml",
    b"application/vnd.syncml.dm+wbxml": "wbxml",
    b"application/vnd.syncml+xml": "xml",
    b"application/vnd.syncml+wbxml": "wbxml",
}

class LimitedRequest(BodyLimitedRequest):
    """A DM-2 request: bodies over the site's ``max_body`` are refused unread."""

    def refused(self, limit):
        log.warn(
            "refused oversized request body (limit {limit} bytes) from {peer}",
            limit=limit,
            peer=_peer(self),
        )


def _peer(request):
    """``host:port`` of the client; a channel that knows its peer for good
    (:class:`~dmgateway.bearers.httplimits.GuardedChannel`) says it once per
    connection instead of once per request."""
    peer_text = getattr(request.channel, "peer_text", None)
    try:
        return peer_text() if peer_text is not None else peer_of(request)
    except Exception:
        return "?"


def media_type(header):
    """The bare lower-case media type of a Content-Type header value."""
    if header is None:
        return None
    return header.split(b";", 1)[0].strip().lower()


class DMResource(resource.Resource):
    """Answers POSTs of SyncML messages at exactly one path."""

    isLeaf = True

    def __init__(self, dispatcher, path, limits=None):
        super().__init__()
        self.dispatcher = dispatcher
        self.path = path.encode("utf-8") if isinstance(path, str) else path
        self._bare_path = self.path.rstrip(b"/")
        self.limits = limits  # MessageLimits before authentication (None: none)

    def render(self, request):
        if request.path.rstrip(b"/") != self._bare_path:
            return self._plain(request, 404, "no DM service at this path")
        if request.method != b"POST":
            request.setHeader(b"Allow", b"POST")
            return self._plain(request, 405, "DM messages are POSTed")
        ctype = media_type(request.getHeader(b"content-type"))
        if ctype is not None and ctype not in MEDIA_TYPES:
            return self._plain(request, 415, "unsupported media type %r" % (ctype.decode("latin-1"),))
        body = request.content.read()
        token = request.args.get(b"s")
        limits = self.limits
        answer = getattr(self.dispatcher, "answer_dm", None) or self.dispatcher.handle_dm
        d = answer(
            body,
            encoding=MEDIA_TYPES.get(ctype),
            hmac_header=_text(request.getHeader(b"x-syncml-hmac")),
            token=_text(token[0]) if token else None,
            peer=_peer(request),
            **({"limits": limits} if limits is not None else {}),
        )
        if isinstance(d, defer.Deferred):
            d.addCallback(self._reply, request)
            d.addErrback(self._failed, request)  # _reply's own failure too
        else:  # answered without waiting: written now, no Deferred in between
            try:
                self._reply(d, request)
            except Exception:
                self._failed(Failure(), request)
        return server.NOT_DONE_YET

    def _reply(self, reply, request):
        if request._disconnected:
            return
        request.setResponseCode(reply.code)
        request.setHeader(b"Content-Type", reply.content_type.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        for name, value in reply.headers.items():
            request.setHeader(name.encode("ascii"), value.encode("utf-8"))
        request.setHeader(b"Content-Length", b"%d" % (len(reply.body),))
        request.write(reply.body)
        request.finish()

    def _failed(self, failure, request):
        log.failure("DM request failed", failure)
        if not request._disconnected:
            request.setResponseCode(500)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            request.write(b"internal error\n")
            request.finish()

    @staticmethod
    def _plain(request, code, message):
        request.setResponseCode(code)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return message.encode("utf-8") + b"\n"


def _text(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


def dm_site(dispatcher, path, max_body, reactor=None, listener=None):
    """A ``Site`` serving DM-2 at ``path`` with the body limit ``max_body``.

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
    # DM never posts HTML forms: without this, twisted.web parses every
    # POST's Content-Type through the ``email`` package for nothing.
    site = PeerCappedSite(DMResource(dispatcher, path, limits), reactor=reactor, parsePOSTFormSubmission=False)
    if listener is not None:
        site.read_timeout = listener.read_timeout
        site.max_connections_per_peer = listener.max_connections_per_peer
        site.proxied = listener.endpoint.startswith("haproxy:")
    site.requestFactory = LimitedRequest
    site.max_body = max_body
    site.displayTracebacks = False
    site.noisy = False
    site.log = lambda request: None  # one structured event per request instead
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


def https_endpoint(reactor, https):
    """The HTTPS server endpoint for the ``[https]`` section."""
    _kind, args, kwargs = split_endpoint(https.endpoint)
    port = int(args[0] if args else kwargs.get("port", 8443))
    return endpoints.SSL4ServerEndpoint(
        reactor,
        port,
        https_context(https),
        backlog=int(kwargs.get("backlog", getattr(https, "backlog", 1024))),
        interface=kwargs.get("interface", ""),
    )


def https_psk_listener(reactor, https, site, lookup):
    """``(endpoint, factory)`` of an HTTPS listener that also takes TLS-PSK (``[https] psk``).

    Certificates keep working for devices that do not offer PSK; a device
    that does is looked up by its PSK identity with ``lookup(identity)``
    (the keys set through the device API).  Refused handshakes are logged
    once with the peer's address.
    """
    from dmgateway.bearers import tlspsk

    options = https_context(https)
    context = options.getContext()
    context.set_cipher_list((tlspsk.PSK_CIPHERS + ":" + options._cipherString).encode("ascii"))
    tlspsk.add_psk_server(context, lookup)
    _kind, args, kwargs = split_endpoint(https.endpoint)
    endpoint = endpoints.TCP4ServerEndpoint(
        reactor,
        int(args[0] if args else kwargs.get("port", 8443)),
        backlog=int(kwargs.get("backlog", https.backlog)),
        interface=kwargs.get("interface", ""),
    )
    factory = tlspsk.PeerLoggingTLSFactory(tlspsk.ConnectionCreator(context), site, name="https")
    return endpoint, factory


def with_backlog(description, backlog):
    """``description`` with ``backlog=N`` added where its type takes one and it has none."""
    if description.startswith("haproxy:"):  # PROXY protocol around an inner endpoint
        return "haproxy:" + with_backlog(description[len("haproxy:"):], backlog)
    kind, _args, kwargs = split_endpoint(description)
    if kind not in ("tcp", "tcp6", "unix") or "backlog" in kwargs:
        return description
    return "%s:backlog=%d" % (description, backlog)
