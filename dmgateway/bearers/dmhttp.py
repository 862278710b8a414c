"""A lean HTTP/1.1 server for the DM-2 path only (the REST API stays on twisted.web).

A DM device POSTs one SyncML message per request and waits for the answer;
twisted.web builds a dozen objects per request (Request, Headers, a body
file, a transfer decoder, a producer dance per request) for that.  This
module reads a request with a few ``find`` calls and two regular
expressions, hands the body to the dispatcher and writes the answer with one
``send`` on the socket when it can (:func:`send_now`: no round of the
reactor per answer), through the transport otherwise.  What it enforces is at least what twisted.web's ``HTTPChannel``
enforces, and stricter where that is cheap:

* request line ``METHOD SP target SP HTTP/1.0|1.1`` (method a token, target
  printable ASCII), CRLF line ends; one empty line before a request is eaten;
* at most :data:`MAX_HEAD` bytes of request line and headers and
  :data:`MAX_HEADERS` header lines; names are tokens (no space before the
  colon), values hold no NUL, CR or LF; folded (obsolete) lines are refused;
* framing: one ``Content-Length`` (digits only) or ``Transfer-Encoding:
  chunked`` (HTTP/1.1 only), never both nor twice; chunk-size lines are hex
  with optional extensions, at most 1024 bytes; trailers count against the
  header limits;
* a body over ``max_body`` is answered 413 as soon as it is announced (or,
  chunked, as soon as the running total passes it), never buffered;
* ``Expect: 100-continue`` is answered ``100 Continue`` once the headers
  are accepted (never before a 413);
* keep-alive for HTTP/1.1 unless ``Connection: close``; HTTP/1.0 closes
  after the answer (as twisted.web does);
* pipelined requests are read one at a time: the next is parsed only once
  the previous one is answered, so answers go out in order; while a request
  is with the dispatcher the socket stops being read once a little is
  buffered, and it stops too while the peer does not read our answers;
* anything malformed is ``400 Bad Request`` and the connection is closed.

The read deadline (408), the per-address cap (503, also behind the PROXY
protocol) and the request-metrics hook work as they did with
:class:`~dmgateway.bearers.httplimits.GuardedChannel`.
"""

from twisted.internet import defer, interfaces, protocol, tcp
from twisted.logger import Logger
from twisted.protocols.haproxy._wrapper import HAProxyProtocolWrapper
from twisted.python.failure import Failure

from dmgateway.bearers.http1 import (
    CHUNK_LINE,
    HEADER_LINE,
    MAX_CHUNK_LINE,
    MAX_HEAD,
    BadRequest,
    DateHeader,
    TooLarge,
    parse_head,
    response,
)
from dmgateway.bearers.httplimits import _BUSY, KnownAddresses, PeerCap, ReadDeadline, _canned

log = Logger(namespace="dmgateway.http")

#: seconds a closing peer has to read its last answer before it is cut off
ABORT_AFTER = 15
#: bytes read ahead while a request is being answered before reading stops
READ_AHEAD = 65536

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_BAD_REQUEST = _canned(400, b"Bad Request", "malformed request")
_TIMEOUT = _canned(408, b"Request Timeout", "request not received in time")

# reading states
_HEAD, _LENGTH, _CHUNKED, _CLOSED = range(4)
#: the most bytes a channel holds for the end of a turn (a transport's bufferSize):
#: more are sent at once, so a peer that does not read pauses the channel as before
_HOLD = 65536


def _socket_of(transport):
    """The ``tcp.Server`` under ``transport`` when bytes may go to its socket directly, else None."""
    if type(transport) is HAProxyProtocolWrapper:
        transport = transport.transport
    return transport if type(transport) is tcp.Server else None


def send_now(transport, data):
    """Write ``data`` to ``transport``, straight to its socket when that is safe.

    ``transport.write`` only buffers: the reactor then watches the socket
    for writing (one ``epoll_ctl``), sends on its next turn and stops
    watching (another).  When the transport is a plain TCP connection
    (not TLS; through a PROXY-protocol wrapper is fine, it only relays),
    still open and with nothing buffered, the bytes are sent here with one
    ``send`` and only what the kernel did not take is written through the
    transport, so order, flow control and closing work as before.  A
    socket error is left to the transport too: it meets it again on its
    own send and loses the connection as it always did.
    """
    target = _socket_of(transport)
    if (target is None or target.TLS or not target.connected or target.disconnecting
            or target._aborting or target._writeDisconnected or target._writeDisconnecting
            or target.dataBuffer or target._tempDataBuffer or target.producerPaused):
        transport.write(data)
        return
    try:
        sent = target.socket.send(data)
    except OSError:  # EAGAIN, EINTR, or a real error the transport will meet and report
        sent = 0
    if sent < len(data):
        transport.write(data[sent:] if sent else data)


class DMChannel(ReadDeadline, KnownAddresses, protocol.Protocol):
    """One connection of the DM-2 listener: reads requests, answers them in order.

    The read deadline (:class:`~dmgateway.bearers.httplimits.ReadDeadline`)
    is one timer per connection, not one per request.
    """

    _state = _HEAD
    _request = None  # the request whose body is being read
    _left = 0  # body bytes still to read (Content-Length) or of the current chunk
    _parts = None  # the body read so far (chunked): one bytearray, not one object per (1-byte) chunk
    _total = 0  # chunked body bytes so far
    _chunk_state = 0  # 0: size line, 1: data, 2: CRLF after data, 3: trailers
    _trailer = 0  # trailer bytes so far
    _busy = False  # a request is with the dispatcher
    _started = None  # when the request in hand was whole (only with on_request)
    _parsing = False
    _read_paused = False
    _write_paused = False
    _aborter = None
    _peer_host = None
    _uncounted = False
    _out = None  # bytes written this turn of the reactor, sent at its end (plain TCP only)
    _held = 0  # how many bytes _out holds

    def __init__(self, site):
        self.site = site
        self._buf = bytearray()

    # -- connection ------------------------------------------------------------

    def connectionMade(self):
        transport = self.transport
        if interfaces.ITCPTransport.providedBy(transport):
            transport.setTcpNoDelay(True)
        transport.registerProducer(self, True)  # told when the peer stops reading our answers
        if self.site.proxied:
            # behind the PROXY protocol the device's address is known only
            # once the header is read: counted with the first bytes after it
            self._uncounted = True
        else:
            self._count(transport.getPeer())
        self._arm()

    def _count(self, peer):
        self._peer_host = getattr(peer, "host", None)
        if self._peer_host is not None:
            self.site.connections[self._peer_host] += 1

    def connectionLost(self, reason=None):
        self._gone = True
        self._state = _CLOSED
        self._out = None
        self._end_deadline()
        if self._aborter is not None and self._aborter.active():
            self._aborter.cancel()
        self._aborter = None
        counts = self.site.connections
        if self._peer_host is not None:
            counts[self._peer_host] -= 1
            if counts[self._peer_host] <= 0:
                del counts[self._peer_host]
            self._peer_host = None
        if self._busy and self.site.on_request is not None:
            self._observe(200)  # the answer will find nobody: timed as twisted.web did (its default status)
        self._buf = bytearray()

    # -- flow control: IPushProducer towards the transport ----------------------

    def pauseProducing(self):
        """The peer does not read our answers: stop reading its requests."""
        self._write_paused = True
        self._pause_reading()

    def resumeProducing(self):
        self._write_paused = False
        if not self._busy and self._state != _CLOSED:
            self._resume_reading()
            self._parse()

    def stopProducing(self):
        pass

    def _pause_reading(self):
        if not self._read_paused and not self._gone:
            self._read_paused = True
            self.transport.pauseProducing()

    def _resume_reading(self):
        if self._read_paused and not self._gone:
            self._read_paused = False
            self.transport.resumeProducing()

    # -- reading -----------------------------------------------------------------

    def dataReceived(self, data):
        if self._state == _CLOSED:
            return
        if self._uncounted:
            self._uncounted = False
            peer = self.getPeer()  # the PROXY header's source by now
            if self.site.over_cap(getattr(peer, "host", None)):
                self._close_with(_BUSY)
                return
            self._count(peer)
        self._buf += data
        if self._busy or self._write_paused:
            if len(self._buf) > READ_AHEAD:
                self._pause_reading()
            return
        self._parse()

    def _parse(self):
        """Read whole requests off the buffer while none is being answered."""
        if self._parsing:
            return  # an answer written from inside the loop: the loop goes on
        self._parsing = True
        try:
            while self._buf and not self._busy and not self._write_paused and self._state != _CLOSED:
                if self._state == _HEAD:
                    if not self._read_head():
                        return
                elif self._state == _LENGTH:
                    if not self._read_length():
                        return
                elif not self._read_chunked():
                    return
        except BadRequest:
            self._close_with(_BAD_REQUEST)
        except TooLarge:
            self._refuse_body()
        finally:
            self._parsing = False

    def _read_head(self):
        buf = self._buf
        if buf[:2] == b"\r\n":  # one empty line before a request is tolerated
            del buf[:2]
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD + 3:  # (the head and three bytes of its end)
                raise BadRequest("head too long")
            return False
        if end > MAX_HEAD:
            raise BadRequest("head too long")
        request, length = parse_head(bytes(buf[:end]))
        del buf[:end + 4]
        limit = self.site.max_body
        if length is not None and length > limit:
            self._request = request
            raise TooLarge()
        expect = request.headers.get(b"expect")
        if expect is not None and not request.http10 and expect.lower() == b"100-continue" and length != 0:
            self._write(_CONTINUE)
        self._request = request
        if length is None:
            self._state, self._parts, self._total, self._chunk_state, self._trailer = _CHUNKED, bytearray(), 0, 0, 0
        elif length:
            self._state, self._left = _LENGTH, length
        else:
            self._whole()
        return True

    def _read_length(self):
        buf, left = self._buf, self._left
        if len(buf) < left:
            return False
        self._request.body = bytes(buf[:left])
        del buf[:left]
        self._whole()
        return True

    def _read_chunked(self):
        buf = self._buf
        while buf:
            state = self._chunk_state
            if state == 0:  # chunk-size [; extensions] CRLF
                eol = buf.find(b"\r\n", 0, MAX_CHUNK_LINE + 2)
                if eol < 0:
                    if len(buf) > MAX_CHUNK_LINE:
                        raise BadRequest("chunk size line too long")
                    return False
                match = CHUNK_LINE.match(bytes(buf[:eol]))
                if match is None:
                    raise BadRequest("chunk size")
                del buf[:eol + 2]
                size = int(match.group(1), 16)
                self._total += size
                if self._total > self.site.max_body:
                    raise TooLarge()
                self._left = size
                self._chunk_state = 1 if size else 3
            elif state == 1:  # chunk data, taken as it comes
                take = min(self._left, len(buf))
                self._parts += buf[:take]
                del buf[:take]
                self._left -= take
                if self._left:
                    return False
                self._chunk_state = 2
            elif state == 2:  # the CRLF after the data
                if len(buf) < 2:
                    return False
                if buf[:2] != b"\r\n":
                    raise BadRequest("chunk data not followed by CRLF")
                del buf[:2]
                self._chunk_state = 0
            else:  # trailer lines up to an empty one: read and dropped
                eol = buf.find(b"\r\n")
                if eol < 0:
                    if self._trailer + len(buf) > MAX_HEAD:
                        raise BadRequest("trailers too long")
                    return False
                self._trailer += eol + 2
                if self._trailer > MAX_HEAD:
                    raise BadRequest("trailers too long")
                line = bytes(buf[:eol])
                del buf[:eol + 2]
                if not line:
                    self._request.body = bytes(self._parts)
                    self._parts = None
                    self._whole()
                    return True
                if HEADER_LINE.match(line) is None or b"\x00" in line or b"\r" in line or b"\n" in line:
                    raise BadRequest("trailer line")
        return False

    def _whole(self):
        """The request in hand is whole: the server's turn."""
        request, self._request = self._request, None
        self._state = _HEAD
        self._due = None  # the deadline stops with the request in
        self._busy = True
        if self.site.on_request is not None:
            self._started = self.site.reactor.seconds()
        try:
            self.site.resource.handle(request, self)
        except Exception:  # a plain 500, as twisted.web answers a resource that raised
            fail_answer(self, request, Failure())

    # -- writing -------------------------------------------------------------------

    def answer(self, request, data):
        """Write the answer to the request in hand (ignored once the peer is gone)."""
        if self._gone or not self._busy:
            return
        self._busy = False
        self._write(data)
        if not request.keep_alive:
            self._state = _CLOSED
            self._lose()
        else:
            self._arm()  # the next request has the same time to arrive whole
        if self.site.on_request is not None:
            self._observe(int(data[9:12]))
        if self._state != _CLOSED and not self._write_paused:
            self._resume_reading()
            if self._buf:
                self._parse()

    def _observe(self, code):
        site = self.site
        site.on_request(site.listener_name, code, site.reactor.seconds() - self._started)

    def _close_with(self, data):
        self._state = _CLOSED
        self._busy = False
        self._due = None
        self._write(data)
        self._lose()

    def _refuse_body(self):
        limit = self.site.max_body
        self._request = None
        self._parts = None
        body = b"request body exceeds the limit of %d bytes\n" % (limit,)
        # logged before the answer: a closing answer leaves at once (_lose sends it)
        log.warn("refused oversized request body (limit {limit} bytes) from {peer}", limit=limit,
                 peer=self._safe_peer())
        self._close_with(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))

    def _safe_peer(self):
        try:
            return self.peer_text()
        except Exception:
            return "?"

    def _write(self, data):
        """Write ``data`` in order after what this channel wrote before.

        On plain TCP the bytes written in one turn of the reactor are sent
        at its end (:meth:`DMSite.flush`), all answers of the turn one after
        the other with :func:`send_now`: no reactor round per answer, and
        the peers are woken once per turn, as when the reactor wrote them.
        """
        out = self._out
        if out is not None:
            out.append(data)
            self._held += len(data)
        elif _socket_of(self.transport) is not None:
            self._out = [data]
            self._held = len(data)
            self.site.outbox(self)
        else:
            self.transport.write(data)
            return
        if self._held > _HOLD:  # a transport's buffer full: out now, so it can pause this channel
            self._send()

    def _send(self):
        """What this channel wrote in the turn goes out now."""
        out, self._out = self._out, None
        if out:
            send_now(self.transport, out[0] if len(out) == 1 else b"".join(out))

    def _lose(self, after=ABORT_AFTER):
        """Close once the answer is out; a peer that does not read it cannot keep the socket."""
        self._send()
        self._buf = bytearray()
        self.transport.unregisterProducer()
        self.transport.loseConnection()
        if self._aborter is None and not self._gone:
            self._aborter = self.site.reactor.callLater(after, self._abort)

    def _abort(self):
        self._aborter = None
        if not self._gone:
            self.transport.abortConnection()

    # -- read deadline (ReadDeadline) -------------------------------------------------

    def _read_limit(self):
        return self.site.read_timeout or self.site.timeOut

    def _too_slow(self, limit):
        log.info("closed a connection from {peer}: no whole request within {limit} s",
                 peer=self._peer_host, limit=limit)
        self._state = _CLOSED
        self._write(_TIMEOUT)
        self._lose(5)


class DMSite(PeerCap, protocol.Factory):
    """The DM-2 listener's factory: connections of :class:`DMChannel`, capped per address."""

    noisy = False
    timeOut = 60 * 60 * 12  # the deadline of a listener without ``read_timeout`` (twisted.web's idle time)
    read_timeout = None
    max_body = 65536
    listener_name = "dm"
    on_request = None  # (listener, status, seconds) per answered request (tap.instrument)

    def __init__(self, resource, reactor=None):
        if reactor is None:
            from twisted.internet import reactor
        self.resource = resource
        self.reactor = reactor
        PeerCap.__init__(self)
        self.date = DateHeader(reactor)
        self._outbox = []
        self._flush_call = None

    def outbox(self, channel):
        """Send what ``channel`` writes in this turn of the reactor at its end."""
        self._outbox.append(channel)
        if self._flush_call is None:
            self._flush_call = self.reactor.callLater(0, self.flush)

    def flush(self):
        self._flush_call = None
        channels, self._outbox = self._outbox, []
        for channel in channels:
            channel._send()

    def buildProtocol(self, addr):
        busy = self.busy(addr)
        if busy is not None:
            return busy
        channel = DMChannel(self)
        channel.factory = self
        return channel


def fail_answer(channel, request, failure):
    """A plain 500 for an answer that failed or could not be written (logged)."""
    log.failure("DM request failed", failure)
    channel.answer(request, response(500, b"text/plain; charset=utf-8", b"internal error\n", channel.site.date(),
                                     http10=request.http10, close=not request.keep_alive,
                                     head_only=request.method == b"HEAD"))


def when_answered(result, channel, request, write):
    """Write ``result`` (a reply, or a Deferred of one) with ``write(channel, request, reply)``."""
    if isinstance(result, defer.Deferred):
        result.addCallback(lambda reply: write(channel, request, reply))
        result.addErrback(lambda failure: fail_answer(channel, request, failure))
        return
    try:
        write(channel, request, result)
    except Exception:
        fail_answer(channel, request, Failure())
