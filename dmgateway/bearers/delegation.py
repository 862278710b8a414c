"""DM-6 over HTTPS: the delegation listener and the client to peers.

Both directions authenticate both ends before a byte of XML is read:

* **TLS-PSK** (``[delegation] psk_identity`` set): the listener offers only
  PSK suites (TLS 1.3 PSK, TLS 1.2 ECDHE-PSK first) and knows each peer by
  the identity it presents (``[peer:X] psk_identity``; our own identity is
  accepted too, the peer then being the message's FromServerID); we present
  our identity with the key shared with that peer.
* **certificates**: the listener's key/certificate (the ``endpoint``'s
  ``privateKey``/``certKey``) identify us both as server and as client; a
  peer must present a certificate that is pinned (``[peer:X] certificate``)
  or chains to ``peer_ca``; a pinned certificate names its peer, otherwise
  its subject CN must be the peer's server id (the message's FromServerID).

A peer that fails the handshake is logged once with its address
(:mod:`.tlspsk`).  Messages are POSTed as ``application/vnd.dm.delegation+xml``;
the answer is ``200`` with a DelegationResponse, or ``4xx`` with a text
reason for what is not a delegation message at all (415, 413, 400 for a
document the schema refuses, 403 for a peer we cannot name).
"""

import hashlib
from io import BytesIO

from OpenSSL import SSL, crypto
from twisted.internet import defer, endpoints, ssl
from twisted.internet.ssl import TLSVersion
from twisted.logger import Logger
from twisted.web import resource, server
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers

from dmgateway.bearers import tlspsk
from dmgateway.bearers.http import endpoint_certificate
from dmgateway.bearers.httplimits import PeerCappedSite
from dmgateway.bearers.webrequest import BodyLimitedRequest, peer_of
from dmgateway.delegation import messages as m
from dmgateway.endpoints import split_endpoint

__all__ = ["DelegationPeers", "delegation_listener", "DelegationClient"]

log = Logger(namespace="dmgateway.delegation")


def _load_certs(path):
    if not path:
        return []
    with open(path, "rb") as f:
        pem = f.read()
    marker = b"-----END CERTIFICATE-----"
    return [crypto.load_certificate(crypto.FILETYPE_PEM, block + marker)
            for block in pem.split(marker) if block.strip()]


def _fingerprint(cert):
    return hashlib.sha256(crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)).hexdigest()


class DelegationPeers:
    """Who our peers are, and how each authenticates (from ``[delegation]``)."""

    def __init__(self, config):
        self.config = config
        self.psk = config.uses_psk
        self.default_key = tlspsk.read_psk_file(config.psk_file) if config.psk_file else None
        self.keys = {}
        self.by_identity = {}
        self.by_fingerprint = {}
        self.pinned = {}
        for peer in config.peers:
            key = tlspsk.read_psk_file(peer.psk_file) if peer.psk_file else self.default_key
            self.keys[peer.server_id] = key
            if peer.psk_identity:
                self.by_identity[peer.psk_identity] = peer
            certs = _load_certs(peer.certificate)
            self.pinned[peer.server_id] = certs
            for cert in certs:
                self.by_fingerprint[_fingerprint(cert)] = peer
        self.ca = _load_certs(config.peer_ca)

    def key_for_identity(self, identity):
        peer = self.by_identity.get(identity)
        if peer is not None:
            return self.keys[peer.server_id]
        if identity == self.config.psk_identity:
            return self.default_key
        return None

    def identify(self, transport, claimed):
        """The peer at the other end of ``transport`` (TLS protocol), or ``None``.

        ``claimed`` is the FromServerID of its message, used only when the
        credential itself does not name one peer (the shared identity, or a
        certificate that chains to ``peer_ca`` without being pinned).
        """
        if self.psk:
            identity = getattr(transport, "psk_identity", None)
            if identity is None:
                return None
            peer = self.by_identity.get(identity)
            if peer is not None:
                return peer
            return self.config.peer(claimed) if identity == self.config.psk_identity else None
        cert = transport.getPeerCertificate() if hasattr(transport, "getPeerCertificate") else None
        if cert is None:
            return None
        peer = self.by_fingerprint.get(_fingerprint(cert))
        if peer is not None:
            return peer
        peer = self.config.peer(claimed)
        if peer is not None and not self.pinned.get(peer.server_id) and self.ca \
                and cert.get_subject().CN == peer.server_id:
            return peer  # the handshake checked the chain to peer_ca; the CN names the peer
        return None


def _certificate_options(endpoint, trusted):
    own = endpoint_certificate(endpoint)
    return ssl.CertificateOptions(
        privateKey=own.privateKey.original,
        certificate=own.original,
        verify=True,
        caCerts=trusted,
        requireCertificate=True,
        raiseMinimumTo=TLSVersion.TLSv1_2,
    )


def server_context(config, peers):
    """The listener's pyOpenSSL context: PSK only, or mutual certificates."""
    if peers.psk:
        context = tlspsk.psk_context()
        tlspsk.add_psk_server(context, peers.key_for_identity, hint=config.psk_identity)
        return context
    trusted = list(peers.ca) + [c for certs in peers.pinned.values() for c in certs]
    if not trusted:
        raise ValueError("no peer certificate or peer_ca to trust")
    return _certificate_options(config.endpoint, trusted).getContext()


def client_context(config, peers, peer):
    """Our context towards ``peer``: PSK with its key, or our certificate + its pin."""
    if peers.psk:
        context = tlspsk.psk_context()
        tlspsk.add_psk_client(context, config.psk_identity, peers.keys[peer.server_id])
        return context
    pinned = peers.pinned.get(peer.server_id)
    context = _certificate_options(config.endpoint, list(pinned or peers.ca)).getContext()
    if not pinned:
        # only peer_ca vouches for it: the server's certificate must also name the peer
        def verify(connection, cert, errno, depth, ok):
            return bool(ok) and (depth > 0 or cert.get_subject().CN == peer.server_id)

        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
    return context


class _Request(BodyLimitedRequest):
    def refused(self, limit):
        log.warn("refused oversized delegation message (limit {limit} bytes) from {peer}",
                 limit=limit, peer=_peer(self))


def _peer(request):
    try:
        return peer_of(request)
    except Exception:
        return "?"


class DelegationResource(resource.Resource):
    """POSTs of delegation messages at one path, from authenticated peers."""

    isLeaf = True

    def __init__(self, service, peers, path):
        super().__init__()
        self.service = service
        self.peers = peers
        self.path = path.encode("utf-8")

    def render(self, request):
        if request.path.rstrip(b"/") != self.path.rstrip(b"/"):
            return _plain(request, 404, "no delegation service at this path")
        if request.method != b"POST":
            request.setHeader(b"Allow", b"POST")
            return _plain(request, 405, "delegation messages are POSTed")
        ctype = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if ctype != m.CONTENT_TYPE.encode("ascii"):
            return _plain(request, 415, "Content-Type must be %s" % (m.CONTENT_TYPE,))
        try:
            message = m.parse(request.content.read())
        except m.MessageError as e:
            log.warn("refused delegation message from {peer}: {reason}", peer=_peer(request),
                     reason=str(e))
            return _plain(request, 400, str(e))
        claimed = getattr(message, "from_server", None)
        peer = self.peers.identify(request.channel.transport, claimed)
        if peer is None or (claimed is not None and claimed != peer.server_id):
            log.warn("refused delegation message from {peer}: the TLS credential does not "
                     "name the configured peer {claimed}", peer=_peer(request), claimed=claimed)
            return _plain(request, 403, "the TLS credential does not belong to peer %r"
                          % (claimed,))
        d = defer.ensureDeferred(self.service.receive(peer, message))
        d.addCallback(self._answer, request)
        d.addErrback(self._failed, request, message)
        request.notifyFinish().addErrback(lambda _: None)
        return server.NOT_DONE_YET

    @staticmethod
    def _answer(response, request):
        if request._disconnected:
            return
        body = m.serialize(response)
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", m.CONTENT_TYPE.encode("ascii") + b"; charset=utf-8")
        request.setHeader(b"Content-Length", b"%d" % (len(body),))
        request.write(body)
        request.finish()

    def _failed(self, failure, request, message):
        log.failure("delegation message could not be handled", failure)
        self._answer(m.Response(message.transaction_id, False,
                                m.Reason("unavailable", "the message could not be handled "
                                         "now; retry later")), request)


def _plain(request, code, text):
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    return text.encode("utf-8") + b"\n"


#: connections one address may hold open on the delegation listener (peers
#: are a few configured servers; each message is one short request)
MAX_CONNECTIONS_PER_PEER = 16


def delegation_listener(reactor, config, service, peers):
    """``(endpoint, factory)`` of the delegation listener."""
    _kind, args, kwargs = split_endpoint(config.endpoint)
    port = int(args[0] if args else kwargs.get("port", 8444))
    endpoint = endpoints.TCP4ServerEndpoint(reactor, port, backlog=int(kwargs.get("backlog", 50)),
                                            interface=kwargs.get("interface", ""))
    # anyone can open a connection before the handshake names a peer: the
    # same per-address cap and whole-request deadline as the DM-2 listeners
    site = PeerCappedSite(DelegationResource(service, peers, config.path), reactor=reactor)
    site.read_timeout = config.timeout
    site.max_connections_per_peer = MAX_CONNECTIONS_PER_PEER
    site.requestFactory = _Request
    site.max_body = m.MAX_SIZE
    site.displayTracebacks = False
    site.noisy = False
    site.log = lambda request: None
    creator = tlspsk.ConnectionCreator(server_context(config, peers))
    return endpoint, tlspsk.PeerLoggingTLSFactory(creator, site, name="delegation")


class PeerError(Exception):
    """A peer did not answer with a delegation response."""


class DelegationClient:
    """Sends delegation messages to peers; ``send(peer, message)`` fires with the Response."""

    def __init__(self, reactor, config, peers):
        self.reactor = reactor
        self.config = config
        self.peers = peers
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self._agents = {}

    def _agent(self, peer):
        agent = self._agents.get(peer.server_id)
        if agent is None:
            creator = tlspsk.ConnectionCreator(client_context(self.config, self.peers, peer))
            agent = Agent(self.reactor, contextFactory=tlspsk.FixedPolicy(creator),
                          connectTimeout=self.config.timeout, pool=self.pool)
            self._agents[peer.server_id] = agent
        return agent

    def send(self, peer, message):
        return defer.ensureDeferred(self._send(peer, message))

    async def _send(self, peer, message):
        body = m.serialize(message)
        d = self._agent(peer).request(
            b"POST", peer.url.encode("ascii"),
            Headers({b"Content-Type": [m.CONTENT_TYPE.encode("ascii") + b"; charset=utf-8"]}),
            FileBodyProducer(BytesIO(body)),
        )
        d.addTimeout(self.config.timeout, self.reactor)
        response = await d
        data = await readBody(response)
        if response.code != 200:
            raise PeerError("HTTP %d: %s" % (response.code, data[:200].decode("utf-8", "replace")
                                              .strip()))
        try:
            answer = m.parse(data)
        except m.MessageError as e:
            raise PeerError("bad answer: %s" % (e,)) from None
        if not isinstance(answer, m.Response):
            raise PeerError("the answer is not a DelegationResponse")
        return answer

    def close(self):
        return self.pool.closeCachedConnections()


__all__ += ["PeerError", "server_context", "client_context", "DelegationResource"]
