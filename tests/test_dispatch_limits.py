"""[gateway] max_sessions in the dispatcher (real engine, in-memory SQLite,
injected clock, the client library without network)."""

import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.codec import xml
from dmgateway.dispatch import Dispatcher
from dmgateway.handlers import Handlers
from tests.fixtures import ACCOUNT
from tests.support import gateway_config, open_test_store
from tests.test_dispatch import GET_SWV, account

OTHER = "IMEI:490154203237526"


class MaxSessionsTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield open_test_store(self)
        config = gateway_config(session_timeout=60, max_sessions=1)
        self.dispatcher = Dispatcher(self.store, config, clock=self.clock)
        self.handlers = Handlers(self.dispatcher)
        yield defer.ensureDeferred(self.dispatcher.start())
        for device_id in (account().device_id, OTHER):
            yield self.handlers.put_device(device_id, ACCOUNT)

    def session(self, device_id):
        acc = account()
        acc.device_id = device_id
        return ClientSession(acc, random_bytes=os.urandom)

    async def send(self, request):
        token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
        return await self.dispatcher.handle_dm(request.body, encoding="xml", token=token)

    async def test_one_more_session_than_allowed_gets_503_and_nothing_runs(self):
        await self.handlers.create_job(account().device_id, GET_SWV)
        first = self.session(account().device_id)
        reply = await self.send(first.start())  # package 2 sent: the session is live
        self.assertEqual(reply.code, 200)
        job = await self.handlers.create_job(OTHER, GET_SWV)
        second = self.session(OTHER)
        refused = await self.send(second.start())
        self.assertEqual(refused.code, 200)
        answer = xml.decode(refused.body)
        self.assertEqual({s.data for s in answer.body}, {503})
        self.assertTrue(answer.final)
        self.assertEqual((await self.handlers.get_job(job["id"]))["state"], "queued")
        # the first session ends: the second device gets its turn
        request = first.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        while request is not None:
            reply = await self.send(request)
            request = first.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        self.assertEqual(first.outcome, "completed")
        second = self.session(OTHER)
        request = second.start()
        while request is not None:
            reply = await self.send(request)
            request = second.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        self.assertEqual(second.outcome, "completed")
        self.assertEqual((await self.handlers.get_job(job["id"]))["state"], "done")

    async def test_strangers_package1_takes_no_place_and_stops_no_wake_up(self):
        # wrong credentials for a known device id open a session that waits
        # for the device to retry: it must not hold one of max_sessions, nor
        # expire the device's queued wake-ups
        started = []

        class Outbox:
            bearers = {"sms": object()}

            async def job_created(self, job, device):
                pass

            async def session_started(self, device_id, job_ids):
                started.append((device_id, list(job_ids)))

        self.dispatcher.outbox = Outbox()
        job = await self.handlers.create_job(OTHER, dict(GET_SWV, notify="none"))
        attacker = self.session(OTHER)
        attacker.account.client.secret = "wrong"
        reply = await self.dispatcher.handle_dm(attacker.start().body, encoding="xml", peer="127.0.0.2:5000")
        self.assertIn(b"<Data>401</Data>", reply.body)
        self.assertEqual(started, [])
        # the real device of the other account still gets the one place
        await self.handlers.create_job(account().device_id, dict(GET_SWV, notify="none"))
        device = self.session(account().device_id)
        request = device.start()
        while request is not None:
            reply = await self.send(request)
            request = device.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        self.assertEqual(device.outcome, "completed")
        self.assertEqual([device_id for device_id, _jobs in started], [account().device_id])
        self.assertEqual((await self.handlers.get_job(job["id"]))["state"], "queued")

    async def test_sessions_waiting_for_their_device_do_not_hold_the_message(self):
        # a stranger's package 1, padded to ~1 MB, for each of many known
        # device ids: every one leaves a session waiting for the device; none
        # may keep the message (memory would grow by max_body per device id)
        import gc
        import tracemalloc

        ids = ["IMEI:49015420300%04d" % (n,) for n in range(12)]
        for device_id in ids:
            await self.handlers.put_device(device_id, ACCOUNT)
        padding = b" " * 1_000_000
        tracemalloc.start()
        try:
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for device_id in ids:
                attacker = self.session(device_id)
                attacker.account.client.secret = "wrong"
                body = attacker.start().body.replace(b"</SyncBody>", padding + b"</SyncBody>")
                reply = await self.dispatcher.handle_dm(body, encoding="xml", peer="127.0.0.2:5000")
                self.assertIn(b"<Data>401</Data>", reply.body)
                del body, reply
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        self.assertEqual(len([d for d in ids if d in self.dispatcher._by_device]), len(ids))
        self.assertLess(kept, 3_000_000, "%d bytes kept for %d waiting sessions" % (kept, len(ids)))
