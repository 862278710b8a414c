"""run_session over real HTTP on 127.0.0.1 against a tiny resource with canned replies.

Timeouts run on a task.Clock, so nothing here waits on real time.
"""

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from dmgateway.client.http import TransportError, run_session
from dmgateway.client.session import HMAC_HEADER
from dmgateway.codec import WBXML, decode_message

from . import spec_session as spec
from .support import (
    CLIENT_NAME,
    CLIENT_NONCE,
    CLIENT_SECRET,
    NEXT_SERVER_NONCE,
    hdr_status_xml,
    mac,
    make_account,
    make_session,
    server_message,
)


class Canned(Resource):
    """Answers each POST with the next canned reply; None means never answer."""

    isLeaf = True

    def __init__(self, replies):
        super().__init__()
        self.replies = list(replies)
        self.received = []  # (uri, headers, body)
        self.arrived = defer.Deferred()
        self.hanging = []

    def render_POST(self, request):
        headers = {name.decode().lower(): values[0].decode()
                   for name, values in request.requestHeaders.getAllRawHeaders()}
        self.received.append((request.uri.decode(), headers, request.content.read()))
        reply = self.replies.pop(0)
        if reply is None:
            self.hanging.append(request.notifyFinish())
        if self.replies == [] and not self.arrived.called:
            self.arrived.callback(None)
        if reply is None:
            return NOT_DONE_YET
        code, content_type, body = reply
        request.setResponseCode(code)
        request.setHeader(b"content-type", content_type)
        return body


XML_TYPE = b"application/vnd.syncml.dm+xml"


class RunSessionTests(TestCase):
    timeout = 10

    def setUp(self):
        self.pool = HTTPConnectionPool(reactor)
        self.addCleanup(self.pool.closeCachedConnections)
        self.agent = Agent(reactor, pool=self.pool)
        self.clock = task.Clock()

    def serve(self, replies):
        resource = Canned(replies)
        port = reactor.listenTCP(0, Site(resource), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return resource, "http://127.0.0.1:%d/dm" % (port.getHost().port,)

    def session(self, url, **options):
        account = make_account(**{k: options.pop(k) for k in ("client_scheme", "server_scheme")
                                  if k in options})
        account.server_url = url
        return make_session(account, **options)

    @defer.inlineCallbacks
    def test_the_example_session_over_http(self):
        resource, url = self.serve([])
        resp_uri = url + "?s=1A2&dev=490154203237518"
        pkg2 = spec.PKG2_SERVER_INIT.replace(
            b"https://dms.example.com/dm?s=1A2&amp;dev=490154203237518",
            resp_uri.replace("&", "&amp;").encode())
        resource.replies = [(200, XML_TYPE, pkg2), (200, XML_TYPE, spec.PKG4_SERVER_CLOSE)]
        nonces = [NEXT_SERVER_NONCE]
        session = self.session(url, random_bytes=lambda n: nonces.pop(0), nonce_size=8,
                               max_msg_size=10000, max_obj_size=524288)
        done = yield run_session(session, reactor, self.agent, clock=self.clock)
        self.assertIs(done, session)
        self.assertEqual(session.outcome, "completed")
        (uri1, headers1, body1), (uri2, headers2, body2) = resource.received
        self.assertEqual(uri1, "/dm")
        self.assertEqual(uri2, "/dm?s=1A2&dev=490154203237518")
        for headers in (headers1, headers2):
            self.assertEqual(headers["content-type"], "application/vnd.syncml.dm+xml")
            self.assertNotIn(HMAC_HEADER, headers)
        first, _ = decode_message(body1)
        self.assertEqual(first.hdr.cred.data, "Q3r6Z+uEU9+S9G0eEFL04w==")
        second, _ = decode_message(body2)
        self.assertEqual(second.hdr.target.loc_uri, resp_uri)
        self.assertEqual(second.body[-1].items[0].data, "4.2.1")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    @defer.inlineCallbacks
    def test_hmac_header_and_wbxml(self):
        resource, url = self.serve([])
        close = server_message(hdr_status_xml(1, 200), 1)
        resource.replies = [(200, XML_TYPE, close)]
        session = self.session(url, client_scheme="hmac", server_scheme="none", encoding=WBXML)
        yield run_session(session, reactor, self.agent, clock=self.clock,
                          request=session.start(alert=1200))
        self.assertEqual(session.outcome, "completed")
        ((_, headers, body),) = resource.received
        self.assertEqual(headers["content-type"], "application/vnd.syncml.dm+wbxml")
        self.assertEqual(headers[HMAC_HEADER], 'algorithm=MD5, username="%s", mac=%s' % (
            CLIENT_NAME, mac(CLIENT_NAME, CLIENT_SECRET, CLIENT_NONCE, body)))
        msg, encoding = decode_message(body)
        self.assertEqual((encoding, msg.body[0].data), (WBXML, 1200))

    @defer.inlineCallbacks
    def test_non_200_fails_cleanly(self):
        resource, url = self.serve([(503, b"text/plain", b"busy")])
        session = self.session(url)
        error = yield self.assertFailure(run_session(session, reactor, self.agent,
                                                     clock=self.clock), TransportError)
        self.assertEqual(error.code, 503)
        self.assertIn("503", error.reason)
        self.assertEqual(session.outcome, "failed")
        self.assertIn("503", session.error)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    @defer.inlineCallbacks
    def test_timeout_is_clock_driven(self):
        resource, url = self.serve([None])
        session = self.session(url)
        running = run_session(session, reactor, self.agent, timeout=30, clock=self.clock)
        yield resource.arrived
        self.clock.advance(29)
        self.assertNoResult(running)
        self.clock.advance(1)
        error = yield self.assertFailure(running, TransportError)
        self.assertIn("within 30", error.reason)
        self.assertEqual(session.outcome, "failed")
        # the server side sees the connection go away
        yield self.assertFailure(resource.hanging[0], Exception)

    @defer.inlineCallbacks
    def test_connection_refused(self):
        port = reactor.listenTCP(0, Site(Resource()), interface="127.0.0.1")
        number = port.getHost().port
        yield port.stopListening()
        session = self.session("http://127.0.0.1:%d/dm" % (number,))
        error = yield self.assertFailure(run_session(session, reactor, self.agent,
                                                     clock=self.clock), TransportError)
        self.assertIsNone(error.code)
        self.assertTrue(session.error.startswith("transport: POST to"))

    @defer.inlineCallbacks
    def test_undecodable_answer_ends_the_session_not_the_transport(self):
        resource, url = self.serve([(200, XML_TYPE, b"<html>proxy error</html>")])
        session = self.session(url)
        done = yield run_session(session, reactor, self.agent, clock=self.clock)
        self.assertEqual(done.outcome, "failed")
        self.assertIn("undecodable", done.error)
        self.assertEqual(len(resource.received), 1)
