"""
Webhook delivery against a real twisted.web receiver on 127.0.0.1; the
sender's backoff and timeouts run on a task.Clock.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from dmgateway.api.webhooks import (
    WebhookSender, sign, verify_signature,
)
from dmgateway.redact import redact_uri

SECRET = b"webhook-secret"


class WatchedClock(Clock):
    """
    A Clock that tells when something is scheduled with a given delay.
    """

    def __init__(self) -> None:
        super().__init__()
        self._watch: list[tuple[float, Deferred[None]]] = []

    def callLater(self, delay: float, f: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        call = super().callLater(delay, f, *a, **kw)
        for item in list(self._watch):
            if item[0] == delay:
                self._watch.remove(item)
                # Resume the test once the caller is waiting on the call.
                reactor.callLater(0, item[1].callback, None)
        return call

    def scheduled(self, delay: float) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        if any(c.getTime() - self.seconds() == delay for c in self.getDelayedCalls()):
            d.callback(None)
        else:
            self._watch.append((delay, d))
        return d


class Receiver(Resource):
    """
    Records POSTs; answers with scripted status codes (then 200), or never
    when the script says None.
    """

    isLeaf = True

    def __init__(self, script: list[int | None] | None = None) -> None:
        super().__init__()
        self.script = list(script or [])
        self.received: list[tuple[dict[bytes, bytes], bytes, int | None]] = []
        self._waiting: list[tuple[int, Deferred[None]]] = []

    def render_POST(self, request: Any) -> Any:
        code = self.script.pop(0) if self.script else 200
        headers = {k.lower(): v[0] for k, v in request.requestHeaders.getAllRawHeaders()}
        self.received.append((headers, request.content.read(), code))
        for item in list(self._waiting):
            if len(self.received) >= item[0]:
                self._waiting.remove(item)
                reactor.callLater(0, item[1].callback, None)
        if code is None:
            return NOT_DONE_YET
        request.setResponseCode(code)
        return b"nope" if code >= 300 else b""

    def count(self, n: int) -> Deferred[None]:
        """
        Fires once C{n} POSTs have arrived.
        """
        d: Deferred[None] = Deferred()
        if len(self.received) >= n:
            d.callback(None)
        else:
            self._waiting.append((n, d))
        return d

    def seqs(self) -> list[int]:
        return [json.loads(body)["events"][0]["seq"] for _, body, _ in self.received]


class Store:
    """
    Events and per-URL cursors, as the gateway store would keep them.
    """

    def __init__(self, events: int = 0, cursor: int = 0) -> None:
        self.events = [self.event(seq) for seq in range(1, events + 1)]
        self.cursors: dict[str, int] = {}
        self.initial = cursor
        self._saved: list[tuple[int, Deferred[None]]] = []

    @staticmethod
    def event(seq: int) -> dict[str, Any]:
        return {"seq": seq, "type": "session", "device_id": "IMEI:1", "time": 1000.0 + seq}

    def append(self) -> None:
        self.events.append(self.event(len(self.events) + 1))

    def load_cursor(self, url: str) -> Deferred[int]:
        return succeed(self.cursors.get(url, self.initial))

    def save_cursor(self, url: str, seq: int) -> Deferred[None]:
        self.cursors[url] = seq
        for item in list(self._saved):
            if seq >= item[0]:
                self._saved.remove(item)
                reactor.callLater(0, item[1].callback, None)
        return succeed(None)

    def fetch_events(self, after: int, limit: int) -> Deferred[list[dict[str, Any]]]:
        return succeed([e for e in self.events if e["seq"] > after][:limit])

    def saved(self, seq: int) -> Deferred[None]:
        """
        Fires once some cursor reaches C{seq}.
        """
        d: Deferred[None] = Deferred()
        if any(v >= seq for v in self.cursors.values()):
            d.callback(None)
        else:
            self._saved.append((seq, d))
        return d


class DeliveryTests(TestCase):
    timeout = 10

    def setUp(self) -> None:
        self.clock = WatchedClock()
        self.pool = HTTPConnectionPool(reactor)
        self.addCleanup(self.pool.closeCachedConnections)
        self.agent = Agent(reactor, pool=self.pool)

    def listen(self, receiver: Receiver) -> str:
        port = reactor.listenTCP(0, Site(receiver), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"http://127.0.0.1:{port.getHost().port}/hook"

    def sender(self, urls: list[str], store: Store, **kw: Any) -> WebhookSender:
        sender = WebhookSender(
            urls, SECRET, self.agent, self.clock,
            store.load_cursor, store.save_cursor, store.fetch_events, **kw,
        )
        sender.startService()
        self.addCleanup(sender.stopService)
        return sender

    @inlineCallbacks
    def test_signed_and_in_order(self):
        receiver = Receiver()
        url = self.listen(receiver)
        store = Store(events=3)
        self.sender([url], store)
        yield store.saved(3)
        self.assertEqual(receiver.seqs(), [1, 2, 3])
        for (headers, body, _), seq in zip(receiver.received, [1, 2, 3]):
            self.assertEqual(json.loads(body), {"events": [Store.event(seq)]})
            self.assertEqual(headers[b"x-dmgw-event-seq"], b"%d" % seq)
            self.assertEqual(headers[b"content-type"], b"application/json; charset=utf-8")
            self.assertTrue(verify_signature(SECRET, body, headers[b"x-dmgw-signature"]))
            self.assertFalse(verify_signature(b"other", body, headers[b"x-dmgw-signature"]))
        self.assertEqual(store.cursors, {url: 3})

    @inlineCallbacks
    def test_no_signature_without_secret(self):
        receiver = Receiver()
        url = self.listen(receiver)
        store = Store(events=1)
        sender = WebhookSender(
            [url], None, self.agent, self.clock,
            store.load_cursor, store.save_cursor, store.fetch_events,
        )
        sender.startService()
        self.addCleanup(sender.stopService)
        yield store.saved(1)
        self.assertNotIn(b"x-dmgw-signature", receiver.received[0][0])

    @inlineCallbacks
    def test_retry_after_500_then_success(self):
        receiver = Receiver([500, 503])
        url = self.listen(receiver)
        store = Store(events=2)
        self.sender([url], store)
        yield self.clock.scheduled(1.0)
        self.assertEqual(receiver.seqs(), [1])
        self.assertEqual(store.cursors, {})
        self.clock.advance(1.0)
        yield self.clock.scheduled(2.0)
        self.clock.advance(2.0)
        yield store.saved(2)
        self.assertEqual(receiver.seqs(), [1, 1, 1, 2])

    @inlineCallbacks
    def test_receiver_outage_is_retried_without_limit(self):
        receiver = Receiver([503] * 4)
        url = self.listen(receiver)
        store = Store(events=1)
        self.sender([url], store, retries=1, max_delay=4.0)
        for delay in (1.0, 2.0, 4.0, 4.0):
            yield self.clock.scheduled(delay)
            self.clock.advance(delay)
        yield store.saved(1)
        self.assertEqual(receiver.seqs(), [1] * 5)

    @inlineCallbacks
    def test_refused_event_is_skipped_after_retries(self):
        receiver = Receiver([400, 422])
        url = self.listen(receiver)
        store = Store(events=2)
        with capturedLogs() as events:
            self.sender([url], store, retries=1)
            yield self.clock.scheduled(1.0)
            self.clock.advance(1.0)
            yield store.saved(2)
        self.assertEqual(receiver.seqs(), [1, 1, 2])
        errors = [e for e in events if e["log_level"].name == "error"]
        self.assertEqual([(e["seq"], e["reason"]) for e in errors], [(1, "HTTP 422")])
        self.assertEqual(errors[0]["answer"], "nope")

    @inlineCallbacks
    def test_connection_refused_backs_off(self):
        port = reactor.listenTCP(0, Site(Resource()), interface="127.0.0.1")
        number = port.getHost().port
        yield port.stopListening()
        store = Store(events=1)
        with capturedLogs() as events:
            self.sender([f"http://127.0.0.1:{number}/hook"], store, retries=0)
            yield self.clock.scheduled(1.0)
            self.clock.advance(1.0)
            yield self.clock.scheduled(2.0)
        warnings = [e for e in events if e["log_level"].name == "warn"]
        self.assertEqual([e["delay"] for e in warnings], [1.0, 2.0])
        self.assertIn("ConnectionRefused", warnings[0]["reason"])
        self.assertEqual(store.cursors, {})

    @inlineCallbacks
    def test_timeout_is_a_failed_attempt(self):
        receiver = Receiver([None])
        url = self.listen(receiver)
        store = Store(events=1)
        self.sender([url], store, timeout=30.0)
        yield receiver.count(1)
        self.clock.advance(30.0)
        yield self.clock.scheduled(1.0)
        self.clock.advance(1.0)
        yield store.saved(1)
        self.assertEqual(receiver.seqs(), [1, 1])

    @inlineCallbacks
    def test_resume_from_cursor(self):
        receiver = Receiver()
        url = self.listen(receiver)
        store = Store(events=4, cursor=2)
        sender = self.sender([url], store)
        yield store.saved(4)
        self.assertEqual(receiver.seqs(), [3, 4])
        # A restart loads the saved cursor and sends only what is new.
        sender.stopService()
        store.append()
        self.sender([url], store)
        yield store.saved(5)
        self.assertEqual(receiver.seqs(), [3, 4, 5])

    @inlineCallbacks
    def test_notify_wakes_an_idle_sender(self):
        receiver = Receiver()
        url = self.listen(receiver)
        store = Store()
        sender = self.sender([url], store)
        self.assertEqual(sender.cursors(), {url: 0})
        store.append()
        store.append()
        sender.notify()
        yield store.saved(2)
        self.assertEqual(receiver.seqs(), [1, 2])
        self.assertEqual(sender.cursors(), {url: 2})

    @inlineCallbacks
    def test_urls_are_independent(self):
        slow, fast = Receiver([500]), Receiver()
        slow_url, fast_url = self.listen(slow), self.listen(fast)
        store = Store(events=2)
        self.sender([slow_url, fast_url], store)
        yield self.clock.scheduled(1.0)
        yield fast.count(2)
        yield store.saved(2)
        self.assertEqual(store.cursors[fast_url], 2)
        self.assertNotIn(slow_url, store.cursors)
        self.clock.advance(1.0)
        yield slow.count(3)
        self.assertEqual(slow.seqs(), [1, 1, 2])

    @inlineCallbacks
    def test_stop_cancels_pending_retry(self):
        receiver = Receiver([500])
        url = self.listen(receiver)
        store = Store(events=1)
        sender = self.sender([url], store)
        yield self.clock.scheduled(1.0)
        sender.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(10)
        self.assertEqual(len(receiver.received), 1)


class ReconfigureTests(DeliveryTests):
    """SIGHUP's reload of the webhook settings while the sender runs."""

    @inlineCallbacks
    def test_added_url_gets_events_and_removed_url_stops(self):
        old, new = Receiver(), Receiver()
        old_url, new_url = self.listen(old), self.listen(new)
        store = Store(events=1)
        sender = self.sender([old_url], store)
        yield store.saved(1)
        changes = sender.reconfigure([new_url], SECRET, retries=5, timeout=30.0)
        self.assertEqual(changes, ["webhook %s removed" % (old_url,), "webhook %s added" % (new_url,)])
        self.assertEqual(list(sender.cursors()), [new_url])
        yield new.count(1)  # the new URL starts from its stored cursor (none: the first event)
        store.append()
        sender.notify()
        yield new.count(2)
        self.assertEqual(new.seqs(), [1, 2])
        self.assertEqual(old.seqs(), [1])
        self.assertEqual(store.cursors[old_url], 1)  # kept: listing it again resumes there

    @inlineCallbacks
    def test_secret_retries_and_timeout_apply_to_the_next_post(self):
        receiver = Receiver()
        url = self.listen(receiver)
        store = Store(events=1)
        sender = self.sender([url], store)
        yield store.saved(1)
        changes = sender.reconfigure([url], b"new-secret", retries=2, timeout=3.0)
        self.assertEqual(changes, ["webhook secret replaced", "webhook retries 2, timeout 3s"])
        self.assertNotIn("new-secret", " ".join(changes))
        store.append()
        sender.notify()
        yield receiver.count(2)
        headers, body, _ = receiver.received[1]
        self.assertTrue(verify_signature(b"new-secret", body, headers[b"x-dmgw-signature"]))
        self.assertEqual((sender.retries, sender.timeout), (2, 3.0))
        self.assertEqual(sender.reconfigure([url], b"new-secret", retries=2, timeout=3.0), [])

    def test_a_stopped_sender_starts_the_new_list(self):
        store = Store()
        sender = WebhookSender(["http://127.0.0.1:9/a"], None, self.agent, self.clock,
                               store.load_cursor, store.save_cursor, store.fetch_events)
        sender.reconfigure(["http://127.0.0.1:9/b"], None, retries=5, timeout=30.0)
        self.assertEqual(sender.cursors(), {})
        self.assertEqual(sender.urls, ["http://127.0.0.1:9/b"])
        self.assertRaises(ValueError, sender.reconfigure, ["ftp://x/"], None, retries=5, timeout=30.0)


class StoreFailureTests(SynchronousTestCase):
    def test_store_errors_are_retried(self):
        clock = Clock()
        attempts = []

        def load_cursor(url):
            attempts.append(clock.seconds())
            if len(attempts) < 3:
                raise OSError("store down")
            return succeed(0)

        sender = WebhookSender(
            ["http://127.0.0.1:9/"], SECRET, None, clock,
            load_cursor, lambda url, seq: succeed(None), lambda after, limit: succeed([]),
        )
        sender.startService()
        clock.advance(1)
        clock.advance(2)
        self.assertEqual(attempts, [0, 1, 3])
        self.assertEqual(sender.cursors(), {"http://127.0.0.1:9/": 0})
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 2)
        sender.stopService()


class HelperTests(SynchronousTestCase):
    def test_sign(self):
        # HMAC-SHA256 test case 2 of RFC 4231.
        self.assertEqual(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        )

    def test_verify(self):
        body = b'{"events": []}'
        self.assertTrue(verify_signature(SECRET, body, sign(SECRET, body)))
        self.assertFalse(verify_signature(SECRET, body + b" ", sign(SECRET, body)))
        self.assertFalse(verify_signature(SECRET, body, None))

    def test_logged_url_has_no_user_info_or_query(self):
        self.assertEqual(
            redact_uri("https://user:pw@hooks.example:8443/in?token=abc#x", path_only=True),
            "https://hooks.example:8443/in",
        )

    def test_url_scheme_checked(self):
        self.assertRaises(
            ValueError, WebhookSender, ["ftp://x/"], None, None, Clock(),
            None, None, None,
        )


class _EndlessBodyTransport:
    """
    The transport a response body protocol gets; records an abort.
    """

    def __init__(self) -> None:
        self.stopped = False

    def stopProducing(self) -> None:
        self.stopped = True


class _EndlessResponse:
    """
    A 200 whose body starts and never ends (a stuck or hostile receiver).
    """

    code = 200

    def __init__(self) -> None:
        self.transport = _EndlessBodyTransport()
        self.protocol: Any = None

    def deliverBody(self, protocol: Any) -> None:
        self.protocol = protocol
        protocol.makeConnection(self.transport)
        protocol.dataReceived(b"ok, but ")


class _EndlessAgent:
    def __init__(self) -> None:
        self.responses: list[_EndlessResponse] = []

    def request(self, method: bytes, uri: bytes, headers: Any, body: Any) -> Deferred[Any]:
        response = _EndlessResponse()
        self.responses.append(response)
        return succeed(response)


class TimeoutAbortTests(SynchronousTestCase):
    def test_timeout_drops_a_body_that_never_ends(self):
        # The timeout must close the connection, not leave it open for as
        # long as the receiver trickles (one more each retry).
        clock, agent = Clock(), _EndlessAgent()
        sender = WebhookSender(
            ["http://hooks.example/in"], None, agent, clock, None, None, None, timeout=5.0
        )
        d = sender.post("http://hooks.example/in", 1, b"{}")
        self.assertNoResult(d)
        clock.advance(5.0)
        self.failureResultOf(d)
        (response,) = agent.responses
        self.assertTrue(response.transport.stopped)
        # The connection then goes; nothing more happens to the answer.
        response.protocol.connectionLost(None)
