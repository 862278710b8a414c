"""[gateway] max_sessions in the dispatcher (real engine, in-memory SQLite,
injected clock, the client library without network)."""

import os

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.codec import xml
from dmgateway.dispatch import Dispatcher
from dmgateway.store import open_store
from tests.support import gateway_config
from tests.test_dispatch import ACCOUNT, GET_SWV, account

OTHER = "IMEI:490154203237526"


class MaxSessionsTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        self.store = yield open_store("sqlite::memory:", reactor=reactor)
        self.addCleanup(self.store.close)
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        config = gateway_config(session_timeout=60, max_sessions=1)
        self.dispatcher = Dispatcher(self.store, config, clock=self.clock)
        yield defer.ensureDeferred(self.dispatcher.start())
        for device_id in (account().device_id, OTHER):
            yield self.dispatcher.put_device(device_id, ACCOUNT)

    def session(self, device_id):
        acc = account()
        acc.device_id = device_id
        return ClientSession(acc, random_bytes=os.urandom)

    async def send(self, request):
        token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
        return await self.dispatcher.handle_dm(request.body, encoding="xml", token=token)

    async def test_one_more_session_than_allowed_gets_503_and_nothing_runs(self):
        await self.dispatcher.create_job(account().device_id, GET_SWV)
        first = self.session(account().device_id)
        reply = await self.send(first.start())  # package 2 sent: the session is live
        self.assertEqual(reply.code, 200)
        job = await self.dispatcher.create_job(OTHER, GET_SWV)
        second = self.session(OTHER)
        refused = await self.send(second.start())
        self.assertEqual(refused.code, 200)
        answer = xml.decode(refused.body)
        self.assertEqual({s.data for s in answer.body}, {503})
        self.assertTrue(answer.final)
        self.assertEqual((await self.dispatcher.get_job(job["id"]))["state"], "queued")
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
        self.assertEqual((await self.dispatcher.get_job(job["id"]))["state"], "done")
