"""A store transaction that kept losing to concurrent ones (StoreContention:
a PostgreSQL deadlock or serialization failure the store ran again and lost
every time) is no outage: the DM message gets a SyncML 503 in HTTP 200, the
session ends, and what it did is written at once, not at the outage probe."""

import os

from twisted.internet import defer
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.codec import xml
from dmgateway.store import StoreContention, StoreUnavailable
from tests.fixtures import ACCOUNT, DEVICE
from tests.support import start_dispatcher
from tests.test_dispatch import GET_SWV, account
from tests.test_dispatch_security import FailingStore, HeldStore


def _contention():
    return StoreContention("DeadlockDetected: deadlock detected", "40P01")


class ContentionTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT, wrap=self.wrap)
        self.job = yield self.handlers.create_job(DEVICE, GET_SWV)
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def wrap(self, real):
        self.held = HeldStore(real)
        store = FailingStore(self.held)
        store.error = _contention
        return store

    async def send(self, request, token=None):
        if token is None and "?s=" in request.url:
            token = request.url.split("?s=", 1)[1]
        return await self.dispatcher.handle_dm(request.body, encoding="xml", token=token)

    async def session_past_package_2(self):
        """A device session whose job runs: (the session, its next request)."""
        session = ClientSession(account(), random_bytes=os.urandom)
        reply = await self.send(session.start())
        self.assertEqual(reply.code, 200)
        request = session.receive(reply.body, {"content-type": reply.content_type})
        self.assertEqual(await self.job_state(), "running")
        return session, request

    async def job_state(self):
        return (await self.handlers.get_job(self.job["id"]))["state"]

    def assert_syncml_503(self, reply):
        self.assertEqual(reply.code, 200)
        answer = xml.decode(reply.body)
        self.assertEqual({status.data for status in answer.body}, {503})
        self.assertTrue(answer.final)

    def assert_no_outage(self):
        self.assertFalse(self.dispatcher.outage.active)
        self.assertEqual([e for e in self.logged if "store unavailable" in e.get("log_format", "")], [])

    async def test_a_lost_write_is_a_syncml_503_and_is_written_at_once(self):
        _session, request = await self.session_past_package_2()
        self.store.down = True  # the batch with the device's results loses
        refused = await self.send(request)
        self.assert_syncml_503(refused)
        self.assert_no_outage()
        self.assertNotIn(DEVICE, self.dispatcher._by_device)  # ended, not left hanging
        self.assertEqual(len(self.dispatcher._repairs), 1)
        [line] = [e for e in self.logged if "refused (SyncML 503)" in e.get("log_format", "")]
        self.assertIn("deadlock", line["error"])
        self.store.down = False
        self.clock.advance(0)  # right after the answer: no probe period to wait for
        self.assertEqual(self.dispatcher._repairs, [])
        # the results in the message the store failed were taken: written now
        self.assertEqual(await self.job_state(), "done")
        self.assert_no_outage()
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_a_package_1_meeting_contention_is_refused_and_served_when_asked_again(self):
        self.store.down = True
        first = ClientSession(account(), random_bytes=os.urandom)
        self.assert_syncml_503(await self.send(first.start()))
        self.assert_no_outage()
        self.assertEqual((self.dispatcher._by_device, self.dispatcher._repairs), ({}, []))
        self.store.down = False
        self.clock.advance(0)
        self.assertEqual(await self.job_state(), "queued")  # nothing started
        # no outage mode: the device asking again at once is served
        session = ClientSession(account(), random_bytes=os.urandom)
        request = session.start()
        while request is not None:
            reply = await self.send(request)
            self.assertEqual(reply.code, 200)
            request = session.receive(reply.body, {"content-type": reply.content_type})
        self.assertEqual((session.outcome, await self.job_state()), ("completed", "done"))

    async def test_a_repair_that_loses_again_waits_for_the_probe_not_an_outage(self):
        _session, request = await self.session_past_package_2()
        self.store.down = True
        self.assert_syncml_503(await self.send(request))
        self.clock.advance(0)  # the repair loses too: kept, tried again later
        self.assertEqual(len(self.dispatcher._repairs), 1)
        self.assert_no_outage()
        self.assertTrue(self.dispatcher._probe.active())
        self.store.down = False
        self.clock.advance(self.dispatcher.outage.retry_after)
        self.assertEqual(self.dispatcher._repairs, [])
        self.assertEqual(await self.job_state(), "done")
        self.assert_no_outage()

    async def test_a_session_timing_out_meanwhile_fails_its_job_once_written(self):
        session = ClientSession(account(), random_bytes=os.urandom)
        self.assertEqual((await self.send(session.start())).code, 200)
        self.store.down = True
        self.clock.advance(61)  # the timeout's writes lose, and so does their first repair
        self.assertNotIn(DEVICE, self.dispatcher._by_device)
        self.assertEqual(len(self.dispatcher._repairs), 1)
        self.assert_no_outage()
        self.store.down = False
        self.clock.advance(self.dispatcher.outage.retry_after)
        job = await self.handlers.get_job(self.job["id"])
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "session_timeout"))
        self.assertEqual(self.dispatcher._repairs, [])
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_one_repair_at_a_time_writes_each_session_once(self):
        # A repair waits for the store; meanwhile another message meets
        # contention and asks for a repair too: the second must not write
        # the first one's effects again (nor drop another's).
        _session, request = await self.session_past_package_2()
        self.store.down = True
        self.assert_syncml_503(await self.send(request))
        self.store.down = False
        self.held.held = defer.Deferred()
        self.clock.advance(0)  # the repair starts and waits in the store
        self.assertEqual(len(self.dispatcher._repairs), 1)
        self.store.down = True
        again = ClientSession(account(), random_bytes=os.urandom)
        self.assert_syncml_503(await self.send(again.start()))
        self.store.down = False
        self.clock.advance(0)  # a second repair, asked while the first runs
        held, self.held.held = self.held.held, None
        held.callback(None)
        self.assertEqual(self.dispatcher._repairs, [])
        self.assertEqual(await self.job_state(), "done")
        sessions = [e for e in await self.store.events_after(0, 100) if e["type"] == "session"]
        self.assertEqual(len(sessions), 1)
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assert_no_outage()

    async def test_a_stop_during_a_repair_writes_each_session_once(self):
        # A repair waits for the store when the gateway stops: the stop's
        # own last repair must wait for it, not write its effects again.
        _session, request = await self.session_past_package_2()
        self.store.down = True
        self.assert_syncml_503(await self.send(request))
        self.store.down = False
        self.held.held = defer.Deferred()
        self.clock.advance(0)  # the repair starts and waits in the store
        self.assertEqual(len(self.dispatcher._repairs), 1)
        stopping = defer.ensureDeferred(self.dispatcher.stop())
        held, self.held.held = self.held.held, None
        held.callback(None)
        await stopping
        self.assertEqual(self.dispatcher._repairs, [])
        self.assertEqual(await self.job_state(), "done")
        sessions = [e for e in await self.store.events_after(0, 100) if e["type"] == "session"]
        self.assertEqual(len(sessions), 1)
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_a_repair_failing_during_a_stop_arms_no_probe(self):
        # (a probe armed after the stop ran once the store was closed)
        _session, request = await self.session_past_package_2()
        self.store.down = True
        self.assert_syncml_503(await self.send(request))
        self.store.down = False
        self.held.held = defer.Deferred()
        self.clock.advance(0)  # the repair starts and waits in the store
        stopping = defer.ensureDeferred(self.dispatcher.stop())
        held, self.held.held = self.held.held, None
        self.store.down = True
        self.store.error = lambda: StoreUnavailable("OperationalError: the connection is closed")
        held.errback(self.store.error())
        await stopping
        self.assertEqual(len(self.dispatcher._repairs), 1)  # for the next start to settle
        self.assertEqual(self.clock.getDelayedCalls(), [])
        [line] = [e for e in self.logged if "left for the next start" in e.get("log_format", "")]
        self.assertEqual(line["count"], 1)
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_a_stop_whose_session_end_loses_still_stops(self):
        # (the sessions after it were left open, and the store was never closed)
        await self.session_past_package_2()
        self.store.down = True
        await self.dispatcher.stop()
        self.assertEqual((self.dispatcher._by_device, len(self.dispatcher._repairs)), ({}, 1))
        [line] = [e for e in self.logged if "left for the next start" in e.get("log_format", "")]
        self.assertEqual(line["count"], 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.flushLoggedErrors(), [])
