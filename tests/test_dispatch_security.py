"""Attacks on the dispatcher (issue 10): session hijack without the RespURI,
an unauthenticated package 1 against a live session, token guessing, a
retransmitted package 1, a store outage in the middle of sessions."""

import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.store import StoreUnavailable
from tests.fixtures import ACCOUNT, DEVICE
from tests.support import start_dispatcher
from tests.test_dispatch import GET_SWV, account


class DispatcherHarness(TestCase):
    """A dispatcher on a SQLite store in memory, a device with one job."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT)
        self.job = yield self.handlers.create_job(DEVICE, GET_SWV)

    def post(self, body, token=None, peer="127.0.0.1:4000", hmac_header=None):
        return self.dispatcher.handle_dm(body, encoding="xml", token=token, peer=peer, hmac_header=hmac_header)

    async def exchange(self, request, peer="127.0.0.1:4000"):
        token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
        return await self.post(request.body, token=token, peer=peer,
                               hmac_header=request.headers.get("x-syncml-hmac"))

    async def first_package(self):
        """A device session past package 2: (session, its next request)."""
        session = ClientSession(account(), random_bytes=os.urandom)
        reply = await self.exchange(session.start())
        self.assertEqual(reply.code, 200)
        request = session.receive(reply.body, {"content-type": reply.content_type})
        return session, request

    async def finish(self, session, request):
        while request is not None:
            reply = await self.exchange(request)
            self.assertEqual(reply.code, 200, reply.body)
            request = session.receive(reply.body, {"content-type": reply.content_type})
        return session

    async def job_state(self):
        return (await self.handlers.get_job(self.job["id"]))["state"]



class SecurityTests(DispatcherHarness):
    async def test_continuing_message_without_the_token_is_refused(self):
        session, request = await self.first_package()
        live = self.dispatcher._by_device[DEVICE]
        # the attacker posts the device's package 3 (forged Results) to the
        # plain DM URL: same SessionID and Source, no Cred, no token
        forged = request.body.replace(("?s=" + live.token).encode(), b"")
        stolen = await self.post(forged, token=None, peer="127.0.0.2:5000")
        self.assertEqual(stolen.code, 200)
        self.assertIn(b"<Data>403</Data>", stolen.body)
        self.assertNotIn(live.token.encode(), stolen.body)
        self.assertEqual(await self.job_state(), "running")
        self.assertEqual(live.messages, 1)
        # the device goes on on its RespURI and completes
        await self.finish(session, request)
        self.assertEqual(session.outcome, "completed")
        self.assertEqual(await self.job_state(), "done")

    async def test_continuing_message_with_valid_credentials_is_taken(self):
        # a device that ignores RespURI but signs each message (HMAC) still works
        await self.handlers.put_device(DEVICE, dict(ACCOUNT, client_auth={"type": "hmac", "name": "dev",
                                                                            "secret": "dev-secret"}))
        acc = account()
        acc.client.scheme = "hmac"
        session = ClientSession(acc, random_bytes=os.urandom)
        request = session.start()
        while request is not None:
            reply = await self.post(request.body, token=None, hmac_header=request.headers.get("x-syncml-hmac"))
            self.assertEqual(reply.code, 200)
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        self.assertEqual(session.outcome, "completed", session.log)
        self.assertEqual(await self.job_state(), "done")

    async def test_token_guessing_is_limited_per_address(self):
        session, request = await self.first_package()
        live = self.dispatcher._by_device[DEVICE]
        self.assertGreaterEqual(len(live.token), 32)  # 128 bits in hex
        for n in range(20):
            guess = await self.post(request.body, token="%032x" % (n,), peer="127.0.0.2:5000")
            self.assertIn(b"<Data>403</Data>", guess.body)
        blocked = await self.post(request.body, token="%032x" % (99,), peer="127.0.0.2:5001")
        self.assertEqual((blocked.code, blocked.content_type.split(";")[0]), (403, "text/plain"))
        self.assertEqual(await self.job_state(), "running")
        # the device (another address, the right token) is not concerned
        await self.finish(session, request)
        self.assertEqual(await self.job_state(), "done")

    async def test_unauthenticated_package1_does_not_disturb_the_live_session(self):
        session, request = await self.first_package()
        live = self.dispatcher._by_device[DEVICE]
        attacker = ClientSession(account(secret="wrong"), random_bytes=os.urandom)
        reply = await self.exchange(attacker.start(), peer="127.0.0.2:5000")
        self.assertEqual(reply.code, 200)
        self.assertIn(b"<Data>401</Data>", reply.body)
        self.assertNotIn(b"?s=", reply.body)  # no RespURI token for it
        self.assertIs(self.dispatcher._by_device[DEVICE], live)
        self.assertEqual(await self.job_state(), "running")
        await self.finish(session, request)
        self.assertEqual(session.outcome, "completed")
        self.assertEqual(await self.job_state(), "done")
        device = await self.handlers.get_device(DEVICE)
        self.assertEqual(device["last_session"]["outcome"], "completed")

    async def test_retransmitted_package1_is_not_an_authentication_failure(self):
        session = ClientSession(account(), random_bytes=os.urandom)
        first = session.start()
        await self.exchange(first)
        again = await self.exchange(first)  # the device lost our reply
        self.assertEqual(again.code, 200)
        self.assertEqual(self.dispatcher.stats["auth_failures"], 0)
        request = session.receive(again.body, {"content-type": again.content_type})
        await self.exchange(request)
        # later on, the same bytes once more: still no failure counted
        await self.exchange(first)
        self.assertEqual(self.dispatcher.stats["auth_failures"], 0)
        self.assertEqual((await self.handlers.get_device(DEVICE))["lockouts"], [])

    async def test_every_registered_session_has_its_timer(self):
        await self.first_package()
        live = self.dispatcher._by_device[DEVICE]
        self.assertTrue(live.timer.active())


class FailingStore:
    """The real store, failing as an unreachable database while ``down``
    (with ``error()``: another failure)."""

    def __init__(self, store):
        self._store = store
        self.down = False
        self.error = lambda: StoreUnavailable("OperationalError: database or disk is full")

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        if name == "batch":
            return lambda: FailingBatch(attr(), lambda: self.error() if self.down else None)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            if self.down:
                return defer.fail(self.error())
            return attr(*args, **kwargs)

        return call


class FailingBatch:
    """A store batch whose commit fails with what ``failure()`` returns (None: it commits)."""

    def __init__(self, batch, failure):
        self._batch = batch
        self._failure = failure

    def __getattr__(self, name):
        method = getattr(self._batch, name)
        if name == "commit":
            def commit(**kwargs):
                error = self._failure()
                if error is not None:
                    return defer.fail(error)
                return method(**kwargs)
            return commit

        def record(*args, **kwargs):
            method(*args, **kwargs)
            return self

        return record

    def __len__(self):
        return len(self._batch)


class OutageTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT, wrap=FailingStore)
        self.job = yield self.handlers.create_job(DEVICE, GET_SWV)

    async def test_outage_answers_503_aborts_the_session_and_recovers(self):
        from twisted.logger import globalLogPublisher

        logged = []
        observer = lambda event: logged.append(event)  # noqa: E731
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        session = ClientSession(account(), random_bytes=os.urandom)
        reply = await self.dispatcher.handle_dm(session.start().body, encoding="xml")
        request = session.receive(reply.body, {"content-type": reply.content_type})
        token = request.url.split("?s=", 1)[1]
        self.assertEqual((await self.handlers.get_job(self.job["id"]))["state"], "running")
        self.store.down = True
        for _ in range(50):
            down = await self.dispatcher.handle_dm(request.body, encoding="xml", token=token)
            self.assertEqual(down.code, 503)
            self.assertEqual(down.headers["retry-after"], "5")
        self.assertNotIn(DEVICE, self.dispatcher._by_device)  # aborted, not left hanging
        self.clock.advance(5)  # a probe while still down
        self.store.down = False
        self.clock.advance(5)  # the next probe finds it back and settles the session
        self.assertFalse(self.dispatcher._repairs)
        # the results in the message the store failed were taken: written now
        job = await self.handlers.get_job(self.job["id"])
        self.assertEqual(job["state"], "done")
        starts = [e for e in logged if "store unavailable" in e.get("log_format", "")]
        ends = [e for e in logged if "store available again" in e.get("log_format", "")]
        self.assertEqual((len(starts), len(ends)), (1, 1))
        # and the device is served again without a restart
        created = await self.handlers.create_job(DEVICE, GET_SWV)
        acc = account()
        acc.client.nonce = session.account.client.nonce
        acc.server.nonce = session.account.server.nonce
        fresh = ClientSession(acc, random_bytes=os.urandom)
        request = fresh.start()
        while request is not None:
            token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
            reply = await self.dispatcher.handle_dm(request.body, encoding="xml", token=token)
            self.assertEqual(reply.code, 200)
            request = fresh.receive(reply.body, {"content-type": reply.content_type})
        self.assertEqual((await self.handlers.get_job(created["id"]))["state"], "done")

    def settled(self):
        """Whether the dispatcher has nothing left to repair after an outage."""
        return not self.dispatcher._repairs and not self.dispatcher.outage.active

    async def test_session_timing_out_during_an_outage_fails_its_job_afterwards(self):
        session = ClientSession(account(), random_bytes=os.urandom)
        await self.dispatcher.handle_dm(session.start().body, encoding="xml")
        self.store.down = True
        self.clock.advance(61)  # the session times out while the store is down
        self.assertNotIn(DEVICE, self.dispatcher._by_device)
        self.assertTrue(self.dispatcher.outage.active)
        # a new package 1 meanwhile: 503, nothing opened
        other = ClientSession(account(), random_bytes=os.urandom)
        down = await self.dispatcher.handle_dm(other.start().body, encoding="xml")
        self.assertEqual(down.code, 503)
        self.assertEqual(self.dispatcher._by_device, {})
        self.store.down = False
        self.clock.advance(5)
        self.assertTrue(self.settled())
        job = await self.handlers.get_job(self.job["id"])
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "session_timeout"))
        self.assertFalse(self.dispatcher.outage.active)

    async def test_store_error_of_another_kind_is_not_an_outage(self):
        self.assertFalse(self.dispatcher.outage.active)
        from dmgateway.store.sqlite import _UNAVAILABLE

        self.assertTrue(_UNAVAILABLE.search("database or disk is full"))
        self.assertTrue(_UNAVAILABLE.search("attempt to write a readonly database"))
        self.assertFalse(_UNAVAILABLE.search("no such column: x"))


class PreAuthLimitTests(TestCase):
    """The 148k empty Items attack: refused before any model is built."""

    timeout = 60
    setUp = SecurityTests.setUp

    async def test_counts_before_authentication_are_bounded(self):
        import time

        from dmgateway.bearers.httplimits import MessageLimits

        limits = MessageLimits(max_elements=10000, max_commands=200, max_items=1000)
        session = ClientSession(account(), random_bytes=os.urandom)
        first = session.start().body
        flood = first.replace(b"<Final/>", b"<Replace><CmdID>99</CmdID>" + b"<Item/>" * 148000 + b"</Replace><Final/>")
        self.assertGreater(len(flood), 1_000_000)
        # (CPU, not wall-clock, time: the bound is on the work done before
        # the refusal, which a loaded machine's waits would only blur)
        started = time.process_time()
        reply = await self.dispatcher.handle_dm(flood, encoding="xml", peer="127.0.0.2:1", limits=limits)
        self.assertLess(time.process_time() - started, 0.5)
        self.assertEqual(reply.code, 413)
        self.assertIn(b"elements", reply.body)
        items = first.replace(b"<Final/>", b"<Replace><CmdID>99</CmdID>" + b"<Item/>" * 1001 + b"</Replace><Final/>")
        reply = await self.dispatcher.handle_dm(items, encoding="xml", limits=limits)
        self.assertEqual((reply.code, b"items" in reply.body), (413, True))
        commands = first.replace(b"<Final/>", b"<Get><CmdID>9</CmdID><Item><Target><LocURI>./A</LocURI></Target>"
                                 b"</Item></Get>" * 201 + b"<Final/>")
        reply = await self.dispatcher.handle_dm(commands, encoding="xml", limits=limits)
        self.assertEqual((reply.code, b"commands" in reply.body), (413, True))
        self.assertEqual(self.dispatcher._by_device, {})
        # the device itself, within the limits, is served
        reply = await self.dispatcher.handle_dm(first, encoding="xml", limits=limits)
        self.assertEqual(reply.code, 200)
        # and on its session's RespURI the counts do not apply
        live = self.dispatcher._by_device[DEVICE]
        big = b"<Item/>" * 2000
        request = session.receive(reply.body, {"content-type": reply.content_type})
        body = request.body.replace(b"<Final/>", b"<Replace><CmdID>99</CmdID>" + big + b"</Replace><Final/>")
        reply = await self.dispatcher.handle_dm(body, encoding="xml", token=live.token, limits=limits)
        self.assertEqual(reply.code, 200)


class CommitWrapped:
    """The real store, whose batches' commits go through
    ``self.commit_batch(batch, **kwargs)`` (a subclass says what it does)."""

    def __init__(self, store):
        self._store = store

    async def commit_batch(self, batch, **kwargs):
        return await batch.commit(**kwargs)

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        if name != "batch":
            return attr
        owner = self

        def batch():
            real = attr()

            class Batch:
                def __getattr__(self, method):
                    if method == "commit":
                        return lambda **kwargs: defer.ensureDeferred(owner.commit_batch(real, **kwargs))
                    recorded = getattr(real, method)

                    def record(*args, **kwargs):
                        recorded(*args, **kwargs)
                        return self
                    return record

                def __len__(self):
                    return len(real)

            return Batch()

        return batch


class HeldStore(CommitWrapped):
    """The real store, whose batch commits wait while ``held`` is unfired."""

    def __init__(self, store):
        super().__init__(store)
        self.held = None

    async def commit_batch(self, batch, **kwargs):
        if self.held is not None:
            await self.held
        return await batch.commit(**kwargs)


class CleanStopTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT, wrap=self.held)
        self.job = yield self.handlers.create_job(DEVICE, GET_SWV)

    def held(self, real):
        self.real = real  # (read after the stop: what the next start finds)
        return HeldStore(real)

    async def test_stop_waits_for_a_session_opening_and_ends_it(self):
        self.store.held = defer.Deferred()
        first = ClientSession(account(), random_bytes=os.urandom).start().body
        opening = self.dispatcher.handle_dm(first, encoding="xml")  # waits in the store
        stopping = defer.ensureDeferred(self.dispatcher.stop())
        self.assertFalse(stopping.called)
        late = await self.dispatcher.handle_dm(first, encoding="xml")
        self.assertEqual(late.code, 503)
        self.store.held.callback(None)
        self.store.held = None
        reply = await opening
        self.assertEqual(reply.code, 200)
        await stopping
        self.assertEqual(self.dispatcher._by_device, {})
        # the next start finds nothing left open: a clean stop
        recovery = await self.real.recover("test-node", self.clock.seconds())
        self.assertEqual((len(recovery.sessions), len(recovery.failed_jobs)), (0, 0))
        job = await self.handlers.get_job(self.job["id"])
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "shutdown"))


class ReadOnlySqliteTests(TestCase):
    """A real SQLite refusing writes ("attempt to write a readonly database"),
    as a file on a read-only location does: 503, then recovery on the probe."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT)
        self.job = yield self.handlers.create_job(DEVICE, GET_SWV)

    def read_only(self, on):
        # on the pool's one connection, outside a transaction (BEGIN IMMEDIATE is a write)
        value = "ON" if on else "OFF"
        return self.store._pool.runWithConnection(
            lambda connection: connection.cursor().execute("PRAGMA query_only = " + value))

    async def test_read_only_database_is_an_outage_not_a_500(self):
        session = ClientSession(account(), random_bytes=os.urandom)
        reply = await self.dispatcher.handle_dm(session.start().body, encoding="xml")
        request = session.receive(reply.body, {"content-type": reply.content_type})
        await self.read_only(True)
        with self.assertRaises(StoreUnavailable):
            await self.store.update_job(self.job["id"], state="queued")
        token = request.url.split("?s=", 1)[1]
        down = await self.dispatcher.handle_dm(request.body, encoding="xml", token=token)
        self.assertEqual((down.code, down.headers["retry-after"]), (503, "5"))
        self.assertTrue(self.dispatcher.outage.active)
        self.assertEqual(self.dispatcher._by_device, {})
        await self.read_only(False)
        self.clock.advance(5)
        self.assertFalse(self.dispatcher.outage.active)
        job = await self.handlers.get_job(self.job["id"])
        self.assertNotEqual(job["state"], "running")


class NoClientAuthTests(DispatcherHarness):
    """A device whose account has client authentication ``none`` presents
    nothing that proves who sends a message: its session continues only on
    its RespURI, and a stranger's package 1 does not replace it."""

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        yield self.handlers.put_device(DEVICE, dict(ACCOUNT, client_auth={"type": "none", "name": "",
                                                                            "secret": ""}))

    async def first_package(self):
        acc = account()
        acc.client.scheme = "none"
        session = ClientSession(acc, random_bytes=os.urandom)
        reply = await self.exchange(session.start())
        self.assertEqual(reply.code, 200)
        request = session.receive(reply.body, {"content-type": reply.content_type})
        return session, request

    async def test_a_message_without_the_token_is_refused(self):
        session, request = await self.first_package()
        live = self.dispatcher._by_device[DEVICE]
        forged = request.body.replace(("?s=" + live.token).encode(), b"")
        stolen = await self.post(forged, token=None, peer="127.0.0.2:5000")
        self.assertIn(b"<Data>403</Data>", stolen.body)
        self.assertNotIn(live.token.encode(), stolen.body)
        self.assertEqual(live.messages, 1)
        self.assertEqual(await self.job_state(), "running")
        await self.finish(session, request)
        self.assertEqual(session.outcome, "completed")
        self.assertEqual(await self.job_state(), "done")

    async def test_a_strangers_package1_does_not_replace_the_session(self):
        session, request = await self.first_package()
        live = self.dispatcher._by_device[DEVICE]
        acc = account()
        acc.client.scheme = "none"
        stranger = ClientSession(acc, random_bytes=os.urandom)
        reply = await self.exchange(stranger.start(), peer="127.0.0.2:5000")
        self.assertEqual(reply.code, 200)
        self.assertNotIn(b"?s=", reply.body)  # no RespURI token for it
        self.assertIs(self.dispatcher._by_device[DEVICE], live)
        self.assertEqual(await self.job_state(), "running")
        await self.finish(session, request)
        self.assertEqual(session.outcome, "completed")
        self.assertEqual(await self.job_state(), "done")


class UnknownDeviceScanTests(DispatcherHarness):
    async def test_a_scan_of_device_ids_is_not_one_warning_per_connection(self):
        from twisted.logger import LogLevel, capturedLogs

        with capturedLogs() as events:
            for n in range(30):
                acc = account()
                acc.device_id = "IMEI:3500000000%05d" % (n,)
                session = ClientSession(acc, random_bytes=os.urandom)
                # a new connection (source port) for every message
                reply = await self.exchange(session.start(), peer="127.0.0.2:%d" % (20000 + n,))
                self.assertIn(b"<Data>401</Data>", reply.body)
        warnings = [e for e in events if e.get("log_level") == LogLevel.warn
                    and "unknown device" in e.get("log_format", "")]
        self.assertLessEqual(len(warnings), 5)


class LimitsOnTheRespUriTests(DispatcherHarness):
    """The pre-authentication limits are lifted only on the RespURI of a
    session whose device authenticated, not on the one a 401 carries."""

    def limits(self):
        from dmgateway.bearers.httplimits import MessageLimits

        return MessageLimits(max_elements=2000, max_commands=50, max_items=100)

    def padded(self, request, items):
        filler = b"<Replace><CmdID>90</CmdID>" + b"<Item><Data>x</Data></Item>" * items + b"</Replace>"
        return request.body.replace(b"<Final/>", filler + b"<Final/>")

    async def test_the_respuri_of_a_failed_authentication_keeps_the_limits(self):
        attacker = ClientSession(account(secret="wrong"), random_bytes=os.urandom)
        reply = await self.exchange(attacker.start(), peer="127.0.0.2:5000")
        self.assertIn(b"<Data>401</Data>", reply.body)
        token = reply.body.split(b"?s=", 1)[1].split(b"<", 1)[0].decode()
        retry = attacker.receive(reply.body, {"content-type": reply.content_type})
        flood = self.padded(retry, 500)
        answer = await self.dispatcher.handle_dm(flood, encoding="xml", token=token, peer="127.0.0.2:5000",
                                                 limits=self.limits())
        self.assertEqual(answer.code, 413, answer.body)

    async def test_the_respuri_of_an_authenticated_device_is_not_limited(self):
        session, request = await self.first_package()
        token = request.url.split("?s=", 1)[1]
        big = self.padded(request, 500)
        answer = await self.dispatcher.handle_dm(big, encoding="xml", token=token, peer="127.0.0.1:4000",
                                                 limits=self.limits())
        self.assertEqual(answer.code, 200, answer.body)


class StrangerSessionRecordTests(DispatcherHarness):
    async def test_a_strangers_session_is_an_event_but_not_the_devices_last_session(self):
        attacker = ClientSession(account(secret="wrong"), random_bytes=os.urandom)
        reply = await self.exchange(attacker.start(), peer="127.0.0.2:5000")
        self.assertIn(b"<Data>401</Data>", reply.body)
        self.clock.advance(61)  # session_timeout: the session waiting for a retry ends
        self.assertNotIn(DEVICE, self.dispatcher._by_device)
        device = await self.handlers.get_device(DEVICE)
        self.assertIsNone(device["last_session"])
        events = await self.handlers.wait_events(0, 100, 0)
        self.assertIn("session", [e["type"] for e in events["events"]] if isinstance(events, dict)
                      else [e["type"] for e in events])
