"""The DM-2 HTTP bearer, driven in memory through a real HTTPChannel."""

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import http as twisted_http

from dmgateway.bearers.http import dm_site, media_type
from dmgateway.dispatch import DMReply


class FakeDispatcher:
    """Records what the bearer hands over and answers with a canned reply."""

    def __init__(self, reply=None):
        self.calls = []
        self.reply = reply or DMReply(200, "application/vnd.syncml.dm+xml", b"<SyncML/>", {})
        self.pending = None

    def handle_dm(self, body, encoding=None, hmac_header=None, token=None, peer=None):
        self.calls.append(dict(body=body, encoding=encoding, hmac_header=hmac_header, token=token, peer=peer))
        if self.pending is not None:
            return self.pending
        return defer.succeed(self.reply)


def exchange(site, raw):
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
    channel.makeConnection(transport)
    transport.channel = channel
    channel.dataReceived(raw)
    return transport


def post(path=b"/dm", body=b"<SyncML/>", ctype=b"application/vnd.syncml.dm+xml", extra=b""):
    head = b"POST %s HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n" % (path, len(body))
    if ctype is not None:
        head += b"Content-Type: " + ctype + b"\r\n"
    return head + extra + b"\r\n" + body


class DMResourceTests(SynchronousTestCase):
    def setUp(self):
        self.dispatcher = FakeDispatcher()
        self.clock = Clock()
        self.site = dm_site(self.dispatcher, "/dm", 1024, reactor=self.clock)

    def test_post_reaches_dispatcher_and_reply_is_sent(self):
        transport = exchange(
            self.site,
            post(path=b"/dm?s=tok123", extra=b"x-syncml-hmac: algorithm=MD5, username=\"u\", mac=abc\r\n"),
        )
        out = transport.value()
        self.assertTrue(out.startswith(b"HTTP/1.1 200 "), out)
        self.assertIn(b"Content-Type: application/vnd.syncml.dm+xml", out)
        self.assertTrue(out.endswith(b"<SyncML/>"))
        (call,) = self.dispatcher.calls
        self.assertEqual(call["body"], b"<SyncML/>")
        self.assertEqual(call["encoding"], "xml")
        self.assertEqual(call["token"], "tok123")
        self.assertEqual(call["hmac_header"], 'algorithm=MD5, username="u", mac=abc')
        self.assertEqual(call["peer"], "127.0.0.1:40000")

    def test_reply_headers_are_passed_on(self):
        self.dispatcher.reply = DMReply(
            200, "application/vnd.syncml.dm+wbxml", b"\x03\x01", {"x-syncml-hmac": "mac=1"}
        )
        out = exchange(self.site, post(ctype=b"application/vnd.syncml.dm+wbxml")).value()
        self.assertIn(b"x-syncml-hmac: mac=1", out.lower())
        self.assertEqual(self.dispatcher.calls[0]["encoding"], "wbxml")

    def test_old_syncml_media_type_and_parameters_accepted(self):
        exchange(self.site, post(ctype=b"application/vnd.syncml+xml; charset=UTF-8"))
        self.assertEqual(self.dispatcher.calls[0]["encoding"], "xml")

    def test_missing_content_type_is_left_to_sniffing(self):
        exchange(self.site, post(ctype=None))
        self.assertIsNone(self.dispatcher.calls[0]["encoding"])

    def test_wrong_media_type_is_415(self):
        out = exchange(self.site, post(ctype=b"text/html")).value()
        self.assertTrue(out.startswith(b"HTTP/1.1 415 "), out)
        self.assertEqual(self.dispatcher.calls, [])

    def test_form_bodies_are_not_parsed(self):
        # DM never posts forms: twisted.web must not run each POST's
        # Content-Type through its form parser (the ``email`` package).
        parsed = []
        self.patch(twisted_http, "_parseContentType", lambda line: parsed.append(line) or b"")
        exchange(self.site, post())
        out = exchange(self.site, post(body=b"s=forged", ctype=b"application/x-www-form-urlencoded")).value()
        self.assertTrue(out.startswith(b"HTTP/1.1 415 "), out)
        self.assertEqual(parsed, [])
        self.assertEqual(len(self.dispatcher.calls), 1)

    def test_get_is_405_with_allow(self):
        out = exchange(self.site, b"GET /dm HTTP/1.1\r\nHost: gw\r\n\r\n").value()
        self.assertTrue(out.startswith(b"HTTP/1.1 405 "), out)
        self.assertIn(b"Allow: POST", out)

    def test_other_path_is_404(self):
        out = exchange(self.site, post(path=b"/other")).value()
        self.assertTrue(out.startswith(b"HTTP/1.1 404 "), out)

    def test_oversized_content_length_refused_before_reading(self):
        raw = b"POST /dm HTTP/1.1\r\nHost: gw\r\nContent-Length: 5000\r\n\r\n"
        transport = exchange(self.site, raw)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 413 "), transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.dispatcher.calls, [])

    def test_oversized_chunked_body_refused_while_reading(self):
        raw = b"POST /dm HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
        transport = exchange(self.site, raw)
        self.assertEqual(transport.value(), b"")
        chunk = b"x" * 600
        channel = transport.channel
        channel.dataReceived(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.assertEqual(transport.value(), b"")
        channel.dataReceived(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 413 "))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.dispatcher.calls, [])

    def test_body_at_the_limit_accepted(self):
        body = b"<" + b"x" * 1022 + b">"
        out = exchange(self.site, post(body=body)).value()
        self.assertTrue(out.startswith(b"HTTP/1.1 200 "))
        self.assertEqual(self.dispatcher.calls[0]["body"], body)

    def test_dispatcher_failure_is_a_plain_500(self):
        self.dispatcher.pending = defer.fail(RuntimeError("boom"))
        out = exchange(self.site, post()).value()
        self.assertTrue(out.startswith(b"HTTP/1.1 500 "), out)
        self.assertNotIn(b"boom", out)
        self.assertNotIn(b"Traceback", out)
        self.flushLoggedErrors(RuntimeError)

    def test_idle_connection_times_out_on_the_sites_clock(self):
        transport = exchange(self.site, b"")
        self.clock.advance(self.site.timeOut + 1)
        self.assertTrue(transport.disconnecting)

    def test_client_gone_before_reply(self):
        self.dispatcher.pending = defer.Deferred()
        transport = exchange(self.site, post())
        transport.channel.connectionLost(Failure(ConnectionDone()))
        self.dispatcher.pending.callback(self.dispatcher.reply)
        self.assertEqual(transport.value(), b"")


class HelperTests(SynchronousTestCase):
    def test_media_type(self):
        self.assertEqual(media_type(b"Application/Vnd.SyncML.DM+XML ; charset=utf-8"), b"application/vnd.syncml.dm+xml")
        self.assertIsNone(media_type(None))


class SyncDispatcher(FakeDispatcher):
    """A dispatcher whose ``answer_dm`` gives the reply itself (answered without waiting)."""

    def answer_dm(self, body, encoding=None, hmac_header=None, token=None, peer=None):
        self.calls.append(dict(body=body, encoding=encoding, hmac_header=hmac_header, token=token, peer=peer))
        if self.pending is not None:
            return self.pending
        return self.reply


class SynchronousAnswerTests(SynchronousTestCase):
    """A reply that is ready when ``answer_dm`` returns is written at once,
    byte for byte what the Deferred path writes."""

    def setUp(self):
        self.clock = Clock()

    def _both(self, reply, raw):
        outs = []
        for dispatcher in (FakeDispatcher(reply), SyncDispatcher(reply)):
            site = dm_site(dispatcher, "/dm", 1024, reactor=self.clock)
            outs.append(exchange(site, raw).value())
        return outs

    def test_same_bytes_as_through_a_deferred(self):
        reply = DMReply(200, "application/vnd.syncml.dm+xml; charset=utf-8", b"<SyncML/>",
                        {"x-syncml-hmac": "mac=1"})
        via_deferred, at_once = self._both(reply, post(path=b"/dm?s=t"))
        self.assertTrue(at_once.startswith(b"HTTP/1.1 200 "), at_once)
        self.assertEqual(_without_date(at_once), _without_date(via_deferred))

    def test_refusal_with_retry_after(self):
        reply = DMReply(503, "text/plain; charset=utf-8", b"gateway shutting down\n", {"retry-after": "5"})
        via_deferred, at_once = self._both(reply, post())
        self.assertTrue(at_once.startswith(b"HTTP/1.1 503 "), at_once)
        self.assertIn(b"retry-after: 5", at_once.lower())
        self.assertEqual(_without_date(at_once), _without_date(via_deferred))

    def test_reply_that_cannot_be_written_is_a_500(self):
        """A reply the bearer cannot send (a header that is not ASCII) is an
        internal error, logged, and the connection serves the next request."""
        dispatcher = SyncDispatcher(DMReply(200, "application/vnd.syncml.dm+xml\u00e9", b"<SyncML/>", {}))
        site = dm_site(dispatcher, "/dm", 1024, reactor=self.clock)
        out = exchange(site, post() + post()).value()
        self.assertEqual(out.count(b"HTTP/1.1 500 "), 2, out)
        self.assertEqual(len(self.flushLoggedErrors(UnicodeEncodeError)), 2)

    def test_waiting_answer_still_served(self):
        dispatcher = SyncDispatcher()
        dispatcher.pending = defer.Deferred()
        site = dm_site(dispatcher, "/dm", 1024, reactor=self.clock)
        transport = exchange(site, post())
        self.assertEqual(transport.value(), b"")
        dispatcher.pending.callback(DMReply(200, "application/vnd.syncml.dm+xml", b"<SyncML/>", {}))
        self.assertTrue(transport.value().endswith(b"<SyncML/>"))


def _without_date(raw):
    return b"\r\n".join(line for line in raw.split(b"\r\n") if not line.lower().startswith(b"date:"))
