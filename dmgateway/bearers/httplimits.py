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


class KnownAddresses:
    """A connection's addresses, read from the transport once.

    The addresses of a connection do not change once its first bytes are in
    (a PROXY header is read before any request): each request reads them
    from here, not with a system call of its own.
    """

    _host = None
    _peer = None
    _peer_text = None

    def getHost(self):
        host = self._host
        if host is None:
            host = self._host = self.transport.getHost()
        return host

    def getPeer(self):
        peer = self._peer
        if peer is None:
            peer = self._peer = self.transport.getPeer()
        return peer

    def peer_text(self):
        """``host:port`` of the client, for logs (made once per connection)."""
        text = self._peer_text
        if text is None:
            address = self.getPeer()
            host, port = getattr(address, "host", address), getattr(address, "port", None)
            text = self._peer_text = "%s:%s" % (host, port) if port is not None else str(host)
        return text


class ReadDeadline:
    """A total deadline for a connection's next request to arrive whole.

    One timer per connection, not one per request: between requests the
    deadline is only moved (``_due``), and a timer that comes due early
    waits again for the rest, so a request costs no timer of its own.
    The channel provides ``site.reactor``, ``_read_limit()`` (seconds, or
    None/0 for no deadline) and ``_too_slow(limit)``; it calls ``_arm()``
    when a request may start, sets ``_due = None`` once one is whole and
    calls ``_end_deadline()`` when the connection is gone.
    """

    _timer = None  # the connection's DelayedCall (None: none pending)
    _due = None  # when the request being read must be whole (None: none is)
    _gone = False

    def _arm(self):
        limit = self._read_limit()
        if limit and self._due is None:
            clock = self.site.reactor
            self._due = clock.seconds() + limit
            if self._timer is None:
                self._timer = clock.callLater(limit, self._check)

    def _check(self):
        self._timer = None
        due = self._due
        if due is None or self._gone:
            return
        clock = self.site.reactor
        left = due - clock.seconds()
        if left > 0:  # armed again since the timer was set: wait for the rest
            self._timer = clock.callLater(left, self._check)
            return
        self._due = None
        self._too_slow(self._read_limit())

    def _end_deadline(self):
        self._due = None
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()


class GuardedChannel(ReadDeadline, KnownAddresses, http.HTTPChannel):
    """An HTTP/1.1 channel with a total deadline for reading each request
    (:class:`ReadDeadline`, ``site.read_timeout``)."""

    _aborter = None
    _peer_host = None
    _uncounted = False  # a PROXY-protocol connection not yet counted by its device's address

    def connectionMade(self):
        super().connectionMade()
        if getattr(self.site, "proxied", False):
            # behind the PROXY protocol the device's address is known only
            # once the header is read: counted with the first bytes after it
            self._uncounted = True
        else:
            self._count(self.transport.getPeer())
        self._arm()

    def _count(self, peer):
        self._peer_host = getattr(peer, "host", None)
        counts = getattr(self.site, "connections", None)
        if counts is not None and self._peer_host is not None:
            counts[self._peer_host] += 1

    def dataReceived(self, data):
        if self._uncounted:
            self._uncounted = False
            peer = self.transport.getPeer()  # the PROXY header's source by now
            if self.site.over_cap(getattr(peer, "host", None)):
                self._gone = True
                self.transport.write(_BUSY)
                self.transport.loseConnection()
                return
            self._count(peer)
        super().dataReceived(data)

    def _read_limit(self):
        return getattr(self.site, "read_timeout", None)

    def allContentReceived(self):
        self._due = None  # the request is in: the server's turn
        super().allContentReceived()

    def requestDone(self, request):
        super().requestDone(request)
        if self.transport is not None and not self._gone and not self.transport.disconnecting:
            self._arm()  # the next request has the same time to arrive whole

    def _too_slow(self, limit):
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
        self._end_deadline()
        if self._aborter is not None and self._aborter.active():
            self._aborter.cancel()
        counts = getattr(self.site, "connections", None)
        if counts is not None and self._peer_host is not None:
            counts[self._peer_host] -= 1
            if counts[self._peer_host] <= 0:
                del counts[self._peer_host]
            self._peer_host = None
        super().connectionLost(reason)


_BUSY = _canned(503, b"Service Unavailable", "too many connections from your address", b"Retry-After: 1\r\n")


class _Busy(protocol.Protocol):
    """Answers 503 to a connection over its address's cap, then closes."""

    def connectionMade(self):
        self.transport.write(_BUSY)
        self.transport.loseConnection()


class PeerCap:
    """The per-address connection cap of a listening factory.

    The factory keeps ``connections`` (open connections by address, counted
    by its protocol) and sets ``max_connections_per_peer`` (None: no cap).
    """

    max_connections_per_peer = None
    #: the listener speaks the PROXY protocol (``haproxy:`` endpoint): the
    #: address a connection is accepted from is the proxy's, so the cap is
    #: applied to the header's source once it is read (by the protocol)
    proxied = False

    def __init__(self):
        self.connections = Counter()  # open connections by peer address
        self.refused = 0

    def over_cap(self, host):
        """Whether one more connection from ``host`` is over the cap (then counted as refused)."""
        cap = self.max_connections_per_peer
        if not (cap and host is not None and self.connections[host] >= cap):
            return False
        self.refused += 1
        if self.refused == 1 or self.refused % 1000 == 0:
            log.warn(
                "refused a connection from {peer}: {cap} already open ({refused} refused so far)",
                peer=host,
                cap=cap,
                refused=self.refused,
            )
        return True

    def busy(self, addr):
        """A protocol answering 503 when a connection from ``addr`` is over the cap, else None."""
        if self.proxied or not self.over_cap(getattr(addr, "host", None)):
            return None
        busy = _Busy()
        busy.factory = self
        return busy


class PeerCappedSite(PeerCap, server.Site):
    """A ``Site`` of :class:`GuardedChannel` with a per-address connection cap."""

    read_timeout = None

    def __init__(self, resource, **kwargs):
        server.Site.__init__(self, resource, **kwargs)
        PeerCap.__init__(self)

    def protocol(self):
        return http._GenericHTTPChannelProtocol(GuardedChannel())

    def buildProtocol(self, addr):
        return self.busy(addr) or super().buildProtocol(addr)
