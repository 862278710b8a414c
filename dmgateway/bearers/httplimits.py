"""What one peer may cost a DM-2 listener before anything is authenticated.

* :class:`GuardedChannel`: a request must arrive *whole* (headers and body)
  within ``read_timeout`` seconds of the connection opening or of the
  previous response; the clock is not reset by each byte, so a peer sending
  one byte every 20 s cannot hold a connection (answered 408 and closed).
* :class:`PeerCappedSite`: at most ``max_connections_per_peer`` connections
  from one address at a time; more are answered 503 and closed at once.
* :class:`MessageLimits`: element, command and item counts for a message
  that is not on a live session's RespURI, checked by the dispatcher
  (elements while decoding, before any model is built).
"""

from collections import Counter
from dataclasses import dataclass

from twisted.internet import protocol
from twisted.logger import Logger
from twisted.web import http, server

log = Logger(namespace="dmgateway.http")


@dataclass(frozen=True)
class MessageLimits:
    """Counts a DM message may reach before its sender is authenticated."""

    max_elements: int = 10000
    max_commands: int = 200
    max_items: int = 1000


def _canned(code, reason, text, extra=b""):
    body = text.encode("utf-8") + b"\n"
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
        b"%sConnection: close\r\n\r\n" % (code, reason, len(body), extra)
    ) + body


class GuardedChannel(http.HTTPChannel):
    """An HTTP/1.1 channel with a total deadline for reading each request."""

    _deadline = None
    _aborter = None
    _peer_host = None
    _gone = False

    def connectionMade(self):
        super().connectionMade()
        peer = self.transport.getPeer()
        self._peer_host = getattr(peer, "host", None)
        counts = getattr(self.site, "connections", None)
        if counts is not None and self._peer_host is not None:
            counts[self._peer_host] += 1
        self._arm()

    def _arm(self):
        limit = getattr(self.site, "read_timeout", None)
        if limit and self._deadline is None:
            self._deadline = self.callLater(limit, self._too_slow, limit)

    def _disarm(self):
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def allContentReceived(self):
        self._disarm()  # the request is in: the server's turn
        super().allContentReceived()

    def requestDone(self, request):
        super().requestDone(request)
        if self.transport is not None and not self._gone and not self.transport.disconnecting:
            self._arm()  # the next request has the same time to arrive whole

    def _too_slow(self, limit):
        self._deadline = None
        if self._gone:
            return
        log.info(
            "closed a connection from {peer}: no whole request within {limit} s",
            peer=self._peer_host,
            limit=limit,
        )
        if not (self.requests and self.requests[0].startedWriting):  # nothing answered yet
            self.transport.write(_canned(408, b"Request Timeout", "request not received in time"))
        self.transport.loseConnection()
        # a peer that does not read its 408 cannot keep the socket either
        self._aborter = self.callLater(5, self._abort)

    def _abort(self):
        if not self._gone:
            self.transport.abortConnection()

    def connectionLost(self, reason):
        self._gone = True
        self._disarm()
        if self._aborter is not None and self._aborter.active():
            self._aborter.cancel()
        counts = getattr(self.site, "connections", None)
        if counts is not None and self._peer_host is not None:
            counts[self._peer_host] -= 1
            if counts[self._peer_host] <= 0:
                del counts[self._peer_host]
            self._peer_host = None
        super().connectionLost(reason)


class _Busy(protocol.Protocol):
    """Answers 503 to a connection over its address's cap, then closes."""

    def connectionMade(self):
        self.transport.write(_canned(503, b"Service Unavailable", "too many connections from your address",
                                     b"Retry-After: 1\r\n"))
        self.transport.loseConnection()


class PeerCappedSite(server.Site):
    """A ``Site`` of :class:`GuardedChannel` with a per-address connection cap."""

    read_timeout = None
    max_connections_per_peer = None

    def __init__(self, resource, **kwargs):
        super().__init__(resource, **kwargs)
        self.connections = Counter()  # open connections by peer address
        self.refused = 0

    def protocol(self):
        return http._GenericHTTPChannelProtocol(GuardedChannel())

    def buildProtocol(self, addr):
        host = getattr(addr, "host", None)
        cap = self.max_connections_per_peer
        if cap and host is not None and self.connections[host] >= cap:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warn(
                    "refused a connection from {peer}: {cap} already open ({refused} refused so far)",
                    peer=host,
                    cap=cap,
                    refused=self.refused,
                )
            busy = _Busy()
            busy.factory = self
            return busy
        return super().buildProtocol(addr)
