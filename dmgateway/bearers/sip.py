"""SIP Push of DM notifications: a pager-mode MESSAGE UAC on Twisted.

::

    pusher = SIPPusher(config.sip, reactor, random.SystemRandom())
    result = yield pusher.push(device.sip_uri, trigger.package0)
    if result.delivered: ...            # a 2xx: the device's UA took the MESSAGE
    else: log(result.error)             # "SIP 486 Busy Here", "timeout", ...

Each push is one ``MESSAGE`` (RFC 3428) to the configured outbound proxy
with the device's URI as Request-URI, the package #0 as binary body and
``Accept-Contact: *;+g.oma.pusheventapp="<push_app_id>";require;explicit``
(dm-notification §4.2).  A 401/407 is answered once with digest
credentials (a new transaction, CSeq + 1, same Call-ID and From tag).

Over UDP one local port serves every push; each request runs a
non-INVITE client transaction (RFC 3261 §17.1.2): Timer E retransmits
from T1 doubling up to T2 (also after a 1xx, at T2, as the RFC says),
Timer F (64*T1) gives up, Timer K (T4) absorbs late copies of the final
response.  Over TCP and TLS each push opens its own connection, framed
with :class:`~dmgateway.bearers.sipmsg.SIPFramer`, and only Timer F runs.
``timeout`` bounds a whole push (connect, challenge, retry).  All timers
use the injected reactor's clock.
"""

import ipaddress
import socket
from dataclasses import dataclass

from twisted.internet import defer, error, protocol
from twisted.logger import Logger

from dmgateway.bearers import sipmsg as M

log = Logger(namespace="dmgateway.sip")

T2 = 4.0
T4 = 5.0
MAX_FORWARDS = 70
FEATURE_TAG = "+g.oma.pusheventapp"

_CHALLENGES = {401: ("WWW-Authenticate", "Authorization"),
               407: ("Proxy-Authenticate", "Proxy-Authorization")}


@dataclass(frozen=True)
class PushResult:
    """How a push ended: ``delivered`` on a 2xx, else ``error`` says why."""

    delivered: bool
    error: str | None = None
    code: int | None = None
    reason: str = ""
    call_id: str = ""

    @property
    def state(self):
        """The notification state to record: ``delivered`` or ``failed``."""
        return "delivered" if self.delivered else "failed"


def _failed(error, call_id="", code=None, reason=""):
    return PushResult(False, error, code, reason, call_id)


def _host_text(host):
    return "[%s]" % (host,) if ":" in host else host


def _is_ip(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _split_host_port(text, default_port):
    """``host[:port]`` / ``[v6]:port`` -> ``(host, port)`` (empty text: ``("", default)``)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


def local_address_towards(ip, port):
    """The local IP the kernel would use to reach ``ip`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((ip, port))
        return probe.getsockname()[0]


class ClientTransaction:
    """One non-INVITE client transaction (RFC 3261 §17.1.2.2).

    ``send(data)`` puts the request on the wire; ``on_final(response)``
    or ``on_timeout()`` is called once; ``on_terminated()`` when the
    transaction can be forgotten (after Timer K, or at once).
    """

    def __init__(self, data, *, clock, reliable, t1, send, on_final, on_timeout,
                 on_terminated, t2=T2, t4=T4):
        self.data = data
        self.state = "trying"
        self._clock = clock
        self._reliable = reliable
        self._t1, self._t2, self._t4 = t1, t2, t4
        self._send = send
        self._on_final = on_final
        self._on_timeout = on_timeout
        self._on_terminated = on_terminated
        self._interval = t1
        self._timer_e = self._timer_f = self._timer_k = None

    def start(self):
        self._send(self.data)
        if not self._reliable:
            self._timer_e = self._clock.callLater(self._interval, self._retransmit)
        self._timer_f = self._clock.callLater(64 * self._t1, self._timeout)

    def receive(self, response):
        """A response whose branch and method match this transaction."""
        if self.state not in ("trying", "proceeding"):
            return  # Completed absorbs retransmitted final responses
        if response.code < 200:
            self.state = "proceeding"
            return
        self.state = "completed"
        self._cancel("_timer_e", "_timer_f")
        if self._reliable:
            self._terminate()
        else:
            self._timer_k = self._clock.callLater(self._t4, self._terminate)
        self._on_final(response)

    def cancel(self):
        """Stop all timers and forget the transaction without reporting."""
        self._cancel("_timer_e", "_timer_f", "_timer_k")
        if self.state != "terminated":
            self.state = "terminated"
            self._on_terminated()

    def _retransmit(self):
        self._timer_e = None
        self._send(self.data)
        if self.state == "trying":
            self._interval = min(2 * self._interval, self._t2)
        else:
            self._interval = self._t2
        self._timer_e = self._clock.callLater(self._interval, self._retransmit)

    def _timeout(self):
        self._timer_f = None
        self._cancel("_timer_e")
        self._terminate()
        self._on_timeout()

    def _terminate(self):
        self._timer_k = None
        if self.state != "terminated":
            self.state = "terminated"
            self._on_terminated()

    def _cancel(self, *names):
        for name in names:
            call = getattr(self, name)
            setattr(self, name, None)
            if call is not None and call.active():
                call.cancel()


class _UDPChannel(protocol.DatagramProtocol):
    """The shared UDP port: sends requests, hands responses to the pusher."""

    def __init__(self, pusher):
        self.pusher = pusher

    def datagramReceived(self, data, addr):
        if data.strip(b"\r\n") == b"":
            return  # keep-alive
        try:
            message = M.parse(data)
        except M.SIPError as e:
            log.warn("dropped a malformed SIP datagram from {peer}: {error}",
                     peer=addr, error=str(e))
            return
        self.pusher._received(message, addr)


class _StreamProtocol(protocol.Protocol):
    """One TCP/TLS connection carrying one push's transactions."""

    def __init__(self, push):
        self.push = push
        self.framer = M.SIPFramer()

    def connectionMade(self):
        self.push._connected(self)

    def dataReceived(self, data):
        try:
            messages = self.framer.feed(data)
        except M.SIPError as e:
            log.warn("dropping SIP connection to {peer}: {error}",
                     peer=self.transport.getPeer(), error=str(e))
            self.transport.loseConnection()
            return
        for message in messages:
            self.push.pusher._received(message, self.transport.getPeer())

    def connectionLost(self, reason):
        self.push._connection_lost(reason)


class _StreamFactory(protocol.ClientFactory):
    protocol = None
    noisy = False

    def __init__(self, push):
        self.push = push

    def buildProtocol(self, addr):
        return _StreamProtocol(self.push)

    def clientConnectionFailed(self, connector, reason):
        self.push._finish(_failed("connection failed: %s" % (reason.getErrorMessage(),),
                                  self.push.call_id))


class _Push:
    """One MESSAGE and its possible authorised retry."""

    def __init__(self, pusher, uri, body, content_type):
        self.pusher = pusher
        self.uri = uri
        self.body = body
        self.content_type = content_type
        rng = pusher.random
        self.call_id = M.new_call_id(rng, pusher.domain)
        self.from_tag = M.new_tag(rng)
        self.cseq = 0
        self.authorised = False
        self.deferred = defer.Deferred(lambda d: self._finish(_failed("cancelled", self.call_id)))
        self.transaction = None
        self.branch = None
        self.stream = None
        self.done = False
        self.deadline = None

    # -- building requests

    def request(self, sent_by, transport, auth=None):
        self.cseq += 1
        self.branch = M.new_branch(self.pusher.random)
        config = self.pusher.config
        headers = [
            ("Via", M.format_via(transport, sent_by, self.branch,
                                 **({"rport": None} if transport == "UDP" else {}))),
            ("Max-Forwards", str(MAX_FORWARDS)),
            ("From", "<%s>;tag=%s" % (config.from_uri, self.from_tag)),
            ("To", "<%s>" % (self.uri,)),
            ("Call-ID", self.call_id),
            ("CSeq", M.format_cseq(self.cseq, "MESSAGE")),
            ("Accept-Contact", '*;%s="%s";require;explicit' % (FEATURE_TAG, config.push_app_id)),
        ]
        if auth is not None:
            headers.append(auth)
        headers.append(("Content-Type", self.content_type))
        return M.encode(M.Request("MESSAGE", self.uri, headers, self.body))

    def start_transaction(self, data, send, reliable):
        self.transaction = ClientTransaction(
            data, clock=self.pusher.reactor, reliable=reliable, t1=self.pusher.config.t1,
            send=send, on_final=self._final, on_timeout=self._timeout,
            on_terminated=lambda b=self.branch: self.pusher._forget(b))
        self.pusher._transactions[self.branch] = (self, self.transaction)
        self.transaction.start()

    # -- stream transports

    def _connected(self, stream):
        if self.done:
            stream.transport.loseConnection()
            return
        self.stream = stream
        host = stream.transport.getHost()
        sent_by = "%s:%d" % (_host_text(host.host), host.port)
        transport = "TLS" if self.pusher.config.transport == "tls" else "TCP"
        self._sent_by = (sent_by, transport)
        self.start_transaction(self.request(sent_by, transport), stream.transport.write, True)

    def _connection_lost(self, reason):
        self.stream = None
        if not self.done:
            self._finish(_failed("connection lost: %s" % (reason.getErrorMessage(),),
                                 self.call_id))

    # -- outcomes

    def _final(self, response):
        code, reason = response.code, response.reason
        if 200 <= code < 300:
            self._finish(PushResult(True, None, code, reason, self.call_id))
            return
        if code in _CHALLENGES and not self.authorised and self.pusher.can_authenticate:
            auth = self._answer(response)
            if auth is not None:
                self.authorised = True
                self.pusher._retry(self, auth)
                return
        self._finish(_failed("SIP %d %s" % (code, reason), self.call_id, code, reason))

    def _answer(self, response):
        challenge_name, answer_name = _CHALLENGES[response.code]
        config = self.pusher.config
        for value in response.headers_named(challenge_name):
            try:
                challenge = M.parse_challenge(value)
                cnonce = "%016x" % (self.pusher.random.getrandbits(64),)
                answer = M.digest_response(challenge, method="MESSAGE", uri=self.uri,
                                           username=config.auth_user,
                                           password=self.pusher.password, cnonce=cnonce,
                                           body=self.body)
            except M.SIPError as e:
                log.info("ignoring a {code} challenge: {error}", code=response.code,
                         error=str(e))
                continue
            return (answer_name, answer)
        return None

    def _timeout(self):
        self._finish(_failed("timeout", self.call_id))

    def _finish(self, result):
        if self.done:
            return
        self.done = True
        if self.deadline is not None and self.deadline.active():
            self.deadline.cancel()
        if self.transaction is not None and self.transaction.state in ("trying", "proceeding"):
            self.transaction.cancel()
        if self.stream is not None:
            self.stream.transport.loseConnection()
        self.pusher._pushes.discard(self)
        if result.delivered:
            log.info("SIP push {call_id} delivered ({code} {reason})", call_id=self.call_id,
                     code=result.code, reason=result.reason)
        else:
            log.info("SIP push {call_id} failed: {error}", call_id=self.call_id,
                     error=result.error)
        if not self.deferred.called:
            self.deferred.callback(result)


class SIPPusher:
    """Sends package #0 bytes as SIP MESSAGEs per ``sip.ini`` (:class:`SipConfig`).

    ``reactor`` provides the clock and the network (``listenUDP``,
    ``connectTCP``, ``connectSSL``, ``resolve``); ``random`` provides
    ``getrandbits`` for branches, tags, Call-IDs and cnonces (use
    ``random.SystemRandom()``).  ``password`` overrides the contents of
    ``auth_password_file``; ``tls_options`` overrides the TLS client
    options built from ``tls_ca`` and the proxy host name.
    """

    def __init__(self, config, reactor, random, *, password=None, tls_options=None,
                 local_address=local_address_towards):
        self.config = config
        self.reactor = reactor
        self.random = random
        if password is None and config.auth_password_file:
            with open(config.auth_password_file, "rb") as f:
                password = f.read().strip().decode("utf-8")
        self.password = password
        self._tls_options = tls_options
        self._local_address = local_address
        self.proxy = config.proxy_address
        self.domain = M.parse_name_addr(config.from_uri)[0].partition("@")[2].split(";")[0] \
            or "dmgateway"
        self._port = None
        self._udp = None
        self._transactions = {}
        self._pushes = set()

    @property
    def can_authenticate(self):
        return bool(self.config.auth_user) and self.password is not None

    def push(self, sip_uri, body, content_type=None):
        """Send ``body`` (package #0) to ``sip_uri``: a Deferred firing with a :class:`PushResult`.

        Never errbacks for network or protocol trouble: those are failed
        results.  Cancelling the Deferred gives up the push.
        """
        uri = (sip_uri or "").strip()
        if uri.startswith("<") and uri.endswith(">"):
            uri = uri[1:-1]
        if not uri.lower().startswith(("sip:", "sips:", "tel:")) or not M._URI.fullmatch(uri) \
                or any(c in uri for c in '<>"'):
            return defer.succeed(_failed("bad SIP URI %r" % (sip_uri,)))
        push = _Push(self, uri, bytes(body), content_type or self.config.content_type)
        self._pushes.add(push)
        push.deadline = self.reactor.callLater(self.config.timeout, push._timeout)
        if self.config.transport == "udp":
            self._push_udp(push)
        else:
            self._push_stream(push)
        return push.deferred

    def stop(self):
        """Give up every push in progress and close the UDP port (a Deferred)."""
        for push in list(self._pushes):
            push._finish(_failed("stopped", push.call_id))
        for _, transaction in list(self._transactions.values()):
            transaction.cancel()
        port, self._port = self._port, None
        if port is not None:
            return defer.maybeDeferred(port.stopListening)
        return defer.succeed(None)

    # -- UDP

    def _push_udp(self, push):
        host, port = self.proxy
        if _is_ip(host):
            resolved = defer.succeed(host)
        else:
            resolved = self.reactor.resolve(host)

        def send(ip):
            if push.done:
                return
            sent_by = self._udp_sent_by(ip, port)
            destination = (ip, port)
            push._udp_send = lambda data: self._write_udp(data, destination)
            push._sent_by = (sent_by, "UDP")
            push.start_transaction(push.request(sent_by, "UDP"), push._udp_send, False)

        def trouble(failure):
            push._finish(_failed("cannot send to proxy %s: %s"
                                 % (host, failure.getErrorMessage()), push.call_id))

        resolved.addCallback(send).addErrback(trouble)

    def _write_udp(self, data, destination):
        if self._port is None:
            return
        try:
            self._port.write(data, destination)
        except (OSError, error.MessageLengthError) as e:  # ENETUNREACH ...: Timer F decides
            log.warn("SIP datagram to {peer} not sent: {error}", peer=destination, error=str(e))

    def _udp_sent_by(self, ip, port):
        local_host, local_port = _split_host_port(self.config.local_endpoint, 0)
        if self._port is None:
            interface = local_host or ("::" if ":" in ip else "")
            self._udp = _UDPChannel(self)
            self._port = self.reactor.listenUDP(local_port, self._udp, interface=interface)
        if not local_host or local_host in ("0.0.0.0", "::"):
            local_host = self._local_address(ip, port)
        return "%s:%d" % (_host_text(local_host), self._port.getHost().port)

    # -- TCP and TLS

    def _push_stream(self, push):
        host, port = self.proxy
        factory = _StreamFactory(push)
        local_host, local_port = _split_host_port(self.config.local_endpoint, 0)
        bind = (local_host, local_port) if local_host else None
        if self.config.transport == "tls":
            self.reactor.connectSSL(host, port, factory, self._tls(host),
                                    timeout=self.config.timeout, bindAddress=bind)
        else:
            self.reactor.connectTCP(host, port, factory, timeout=self.config.timeout,
                                    bindAddress=bind)

    def _tls(self, host):
        if self._tls_options is None:
            from twisted.internet import ssl
            if self.config.tls_ca:
                with open(self.config.tls_ca, "rb") as f:
                    trust = ssl.Certificate.loadPEM(f.read())
            else:
                trust = ssl.platformTrust()
            self._tls_options = ssl.optionsForClientTLS(host, trustRoot=trust)
        return self._tls_options

    # -- responses

    def _received(self, message, peer):
        if isinstance(message, M.Request):
            log.debug("ignoring a SIP {method} from {peer}", method=message.method, peer=peer)
            return
        try:
            _, _, params = M.parse_via(message.header("Via", ""))
            _, method = M.parse_cseq(message.header("CSeq", ""))
        except M.SIPError as e:
            log.warn("dropped a SIP response from {peer}: {error}", peer=peer, error=str(e))
            return
        entry = self._transactions.get(params.get("branch"))
        if entry is None or method != "MESSAGE":
            log.debug("dropped a stray SIP response from {peer}", peer=peer)
            return
        entry[1].receive(message)

    def _forget(self, branch):
        self._transactions.pop(branch, None)

    def _retry(self, push, auth):
        sent_by, transport = push._sent_by
        data = push.request(sent_by, transport, auth)
        if transport == "UDP":
            push.start_transaction(data, push._udp_send, False)
        else:
            push.start_transaction(data, push.stream.transport.write, True)
