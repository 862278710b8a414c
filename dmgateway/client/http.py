"""Running a :class:`~.session.ClientSession` over HTTP(S) with Twisted.

:func:`run_session` POSTs each message the session produces to the URL it
names (the server URL, later the server's RespURI), with the session's
headers (Content-Type, Accept, ``x-syncml-hmac``), and hands every 200
response back to the session until it says the session is over.  Anything
else -- another HTTP status, a connection failure, no answer within
``timeout`` seconds of ``clock`` -- ends the session (``session.abort``) and
fails the returned Deferred with :class:`TransportError`.

This is the only module of :mod:`dmgateway.client` that imports Twisted.
"""

from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.web.client import Agent, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

__all__ = ["DEFAULT_TIMEOUT", "MAX_BODY", "TransportError", "run_session", "post_message"]

DEFAULT_TIMEOUT = 60.0
MAX_BODY = 8 * 1024 * 1024  # the XML codec's own limit


class TransportError(Exception):
    """The HTTP exchange failed; ``code`` is the HTTP status when there was one."""

    def __init__(self, reason, code=None):
        self.reason = reason
        self.code = code
        super().__init__(reason)


@implementer(IBodyProducer)
class _BytesProducer:
    """The whole body at once (no cooperator, so it works on any reactor)."""

    def __init__(self, body):
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer):
        consumer.write(self._body)
        return defer.succeed(None)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


def _headers_dict(headers):
    return {
        name.decode("latin-1"): [value.decode("latin-1") for value in values]
        for name, values in headers.getAllRawHeaders()
    }


class _BodyReader(Protocol):
    """Collects a response body of at most ``limit`` bytes."""

    def __init__(self, finished, limit):
        self.finished = finished
        self.limit = limit
        self.parts = []
        self.size = 0

    def dataReceived(self, data):
        if self.finished.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.finished.errback(TransportError("answer larger than %d bytes" % (self.limit,)))
            self.transport.stopProducing()
            return
        self.parts.append(data)

    def connectionLost(self, reason):
        if self.finished.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.finished.callback(b"".join(self.parts))
        else:
            self.finished.errback(reason)


def _read_body(response, limit):
    reader = None

    def cancel(d):
        if reader is not None and reader.transport is not None:
            reader.transport.stopProducing()

    finished = defer.Deferred(cancel)
    reader = _BodyReader(finished, limit)
    response.deliverBody(reader)
    return finished


def post_message(agent, request, clock, timeout=DEFAULT_TIMEOUT, max_body=MAX_BODY):
    """POST one :class:`~.session.Request`; fires with ``(body, headers dict)``.

    Fails with :class:`TransportError` for a non-200 answer, a transport
    error, an answer over ``max_body`` bytes or ``timeout`` seconds (on
    ``clock``) without a full answer.
    """
    headers = Headers({name.encode("latin-1"): [value.encode("latin-1")]
                       for name, value in request.headers.items()})
    url = request.url.encode("utf-8")
    d = agent.request(b"POST", url, headers, _BytesProducer(request.body))
    expired = []

    def expire():
        expired.append(True)
        d.cancel()

    timer = clock.callLater(timeout, expire)

    def answered(response):
        reading = _read_body(response, max_body)
        if response.code == 200:
            return reading.addCallback(lambda body: (body, _headers_dict(response.headers)))

        def refuse(_):
            raise TransportError("HTTP %d %s from %s" % (
                response.code, response.phrase.decode("latin-1", "replace"), request.url),
                response.code)

        return reading.addBoth(refuse)

    def stop_timer(result):
        if timer.active():
            timer.cancel()
        return result

    def failed(failure):
        if expired:
            raise TransportError("no answer from %s within %s s" % (request.url, timeout))
        if failure.check(TransportError, defer.CancelledError):
            return failure
        raise TransportError("POST to %s failed: %s" % (
            request.url, failure.getErrorMessage() or failure.type.__name__))

    d.addCallback(answered)
    d.addBoth(stop_timer)
    d.addErrback(failed)
    return d


def run_session(session, reactor, agent=None, *, request=None, timeout=DEFAULT_TIMEOUT,
                clock=None):
    """Run ``session`` to its end; the Deferred fires with the session.

    ``request`` is the session's first message if the caller already
    called ``session.start(...)`` (e.g. with Alert 1200 or Generic Alerts);
    otherwise ``session.start()`` is called here.  ``agent`` defaults to a
    plain :class:`twisted.web.client.Agent` on ``reactor`` (pass one with
    your own TLS policy for https), ``clock`` to ``reactor``.  The Deferred
    fires with the session also when the *session* failed (see
    ``session.outcome`` and ``session.error``); it fails with
    :class:`TransportError` only when the transport did.
    """
    if agent is None:
        agent = Agent(reactor)
    if clock is None:
        clock = reactor
    if request is None:
        request = session.start()
    return _run(session, request, agent, clock, timeout)


@defer.inlineCallbacks
def _run(session, request, agent, clock, timeout):
    while request is not None:
        try:
            body, headers = yield post_message(agent, request, clock, timeout)
        except TransportError as error:
            session.abort("transport: %s" % (error.reason,))
            raise
        except defer.CancelledError:
            session.abort("transport: cancelled")
            raise
        request = session.receive(body, headers)
    return session
