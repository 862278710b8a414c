"""A cancel left to the end of a session belongs to that session, not to
its device: an older session of the device whose end is written late (a
repair after the store failed) does not apply the cancels of the session
live now."""

import os

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.dispatch import Dispatcher
from dmgateway.handlers import Handlers
from dmgateway.store import open_store
from tests.fixtures import ACCOUNT, DEVICE
from tests.support import gateway_config
from tests.test_dispatch import GET_SWV, account
from tests.test_dispatch_contention import _contention
from tests.test_dispatch_security import FailingStore, HeldStore

GET_MAN = {"commands": [{"op": "Get", "target": "./DevInfo/Man"}], "notify": "none"}


class CancelAtSessionEndTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        real = yield open_store("sqlite::memory:?inline=1", reactor=reactor)
        self.addCleanup(real.close)
        self.held = HeldStore(real)  # batch commits wait while .held is unfired
        self.store = FailingStore(self.held)  # everything fails while .down
        self.store.error = _contention  # (no outage: a new session may open while a repair waits)
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.dispatcher = Dispatcher(self.store, gateway_config(session_timeout=60), clock=self.clock)
        self.handlers = Handlers(self.dispatcher)
        yield defer.ensureDeferred(self.dispatcher.start())
        yield self.handlers.put_device(DEVICE, ACCOUNT)
        self.job = (yield self.handlers.create_job(DEVICE, GET_SWV))["id"]

    async def send(self, request, peer="127.0.0.1:4000"):
        token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
        return await self.dispatcher.handle_dm(request.body, encoding="xml", token=token, peer=peer,
                                               hmac_header=request.headers.get("x-syncml-hmac"))

    async def state(self, job_id):
        job = await self.handlers.get_job(job_id)
        return job["state"], (job.get("error") or {}).get("code")

    async def device_session(self):
        """A session of the device (the store's nonces) past package 2: (session, its next request)."""
        acc = account()
        device = await self.store.get_device(DEVICE)
        acc.client.nonce, acc.server.nonce = device.client_auth.nonce, device.server_auth.nonce
        session = ClientSession(acc, random_bytes=os.urandom)
        reply = await self.send(session.start())
        self.assertEqual(reply.code, 200, reply.body)
        return session, session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})

    async def finish(self, session, request):
        while request is not None:
            reply = await self.send(request)
            self.assertEqual(reply.code, 200, reply.body)
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        self.assertEqual(session.outcome, "completed", session.log)

    async def end_written_later(self):
        """The device's session sends self.job; the message with its results
        (the session's last) meets contention: the session is over here, its
        end (with the results) waits for a repair (at the clock's next turn)."""
        _session, request = await self.device_session()
        self.assertEqual(await self.state(self.job), ("running", None))
        self.store.down = True
        refused = await self.send(request)
        self.assertIn(b"<Data>503</Data>", refused.body)
        self.store.down = False
        self.assertNotIn(DEVICE, self.dispatcher._by_device)
        self.assertEqual(len(self.dispatcher._repairs), 1)
        return self.dispatcher._repairs[0][0]

    async def strangers_session(self):
        """A stranger's package 1 for the device (wrong secret, another
        address), with no session of the device live: a session of its own,
        in which the device never authenticates."""
        stranger = ClientSession(account(secret="wrong"), random_bytes=os.urandom)
        reply = await self.send(stranger.start(), peer="127.0.0.2:5000")
        self.assertIn(b"<Data>401</Data>", reply.body)
        live = self.dispatcher._by_device[DEVICE]
        self.assertFalse(live.authenticated)
        return stranger, stranger.receive(reply.body, {"content-type": reply.content_type})

    async def end_strangers_session(self, stranger, request):
        """The stranger tries again with its wrong secret until its session ends (auth_failed)."""
        while request is not None and DEVICE in self.dispatcher._by_device:
            reply = await self.send(request, peer="127.0.0.2:5000")
            request = stranger.receive(reply.body, {"content-type": reply.content_type})
        self.assertNotIn(DEVICE, self.dispatcher._by_device)
        self.assertEqual(self.dispatcher.sessions_ended["auth_failed"], 1)

    # -- 1. a cancel belongs to the session it was registered against ----------------

    async def test_an_old_sessions_end_written_late_does_not_cancel_the_new_sessions_job(self):
        old = await self.end_written_later()
        second = (await self.handlers.create_job(DEVICE, GET_MAN))["id"]
        session, request = await self.device_session()  # a new session sends the second job
        live = self.dispatcher._by_device[DEVICE]
        self.assertEqual(await self.state(second), ("running", None))
        answer = await self.handlers.cancel_job(second)
        self.assertEqual(answer, {"id": second, "state": "running", "cancelled": False,
                                  "cancel": "at_session_end"})
        self.assertEqual(self.dispatcher._cancel_at_end, {second: live})
        self.clock.advance(0)  # the old session's end is written now
        self.assertEqual(self.dispatcher._repairs, [])
        self.assertEqual(await self.state(self.job), ("done", None))  # its results kept
        # (before: the old session's end cancelled the job the new one runs:
        # failed "cancelled", and the device's results thrown away below)
        self.assertEqual(await self.state(second), ("running", None))
        self.assertEqual(self.dispatcher._cancel_at_end, {second: live})
        self.assertIsNot(old, live)
        await self.finish(session, request)
        self.assertEqual(await self.state(second), ("done", None))
        self.assertEqual(self.dispatcher.jobs_finished, {"done": 2})
        self.assertEqual(self.dispatcher._cancel_at_end, {})
