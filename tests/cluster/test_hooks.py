"""Two dispatchers ("nodes" a and b) on one store, joined by one signal bus.

The bus is :class:`LocalSignals` shared by both (every handler hears every
signal, as every process hears a PostgreSQL NOTIFY; tests/cluster/test_lease.py
checks that on a real server).  The store is one in-memory SQLite shared by
both: the hooks only use what the store interface offers.
"""

import os

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.cluster.signals import LocalSignals
from dmgateway.dispatch import Dispatcher
from dmgateway.handlers import Handlers
from dmgateway.store.model import StoreUnavailable
from tests.fixtures import ACCOUNT, DEVICE
from tests.support import gateway_config, open_test_store
from tests.test_dispatch import GET_SWV, account
from tests.test_dispatch_security import FailingStore


class TwoNodesTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield open_test_store(self, "sqlite::memory:")
        self.bus = LocalSignals()
        self.nodes = {}
        self.handlers = {}
        for name in ("a", "b"):
            node = Dispatcher(self.store, gateway_config(session_timeout=60, node_name=name), clock=self.clock)
            yield defer.ensureDeferred(node.start())
            node.join_cluster(self.bus)
            self.nodes[name] = node
            self.handlers[name] = Handlers(node)
        yield self.handlers["a"].put_device(DEVICE, ACCOUNT)

    async def exchange(self, node, request):
        token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
        return await node.handle_dm(request.body, encoding="xml",
                                    hmac_header=request.headers.get("x-syncml-hmac"), token=token)

    async def drive(self, node, session, stop_after=None):
        request = session.start()
        count = 0
        while request is not None:
            reply = await self.exchange(node, request)
            self.assertEqual(reply.code, 200, reply.body)
            count += 1
            if stop_after is not None and count >= stop_after:
                return session
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        return session

    def session(self, acc=None):
        return ClientSession(acc or account(), random_bytes=os.urandom)

    async def test_resp_uri_token_names_the_node(self):
        await self.handlers["a"].create_job(DEVICE, GET_SWV)
        stale = await self.drive(self.nodes["a"], self.session(), stop_after=1)
        (live,) = self.nodes["a"]._by_token.values()
        self.assertTrue(live.token.startswith("a~"))
        self.assertFalse(stale.finished)

    async def test_authenticated_package_one_on_b_supersedes_the_session_on_a(self):
        created = await self.handlers["a"].create_job(DEVICE, GET_SWV)
        stale = await self.drive(self.nodes["a"], self.session(), stop_after=1)
        self.assertIn(DEVICE, self.nodes["a"]._by_device)
        acc = account()
        acc.client.nonce = stale.account.client.nonce
        acc.server.nonce = stale.account.server.nonce
        fresh = await self.drive(self.nodes["b"], self.session(acc))
        self.assertEqual(fresh.outcome, "completed", fresh.log)
        self.assertNotIn(DEVICE, self.nodes["a"]._by_device)
        job = await self.handlers["b"].get_job(created["id"])
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "superseded"))
        sessions = await self.store.live_sessions(device_id=DEVICE)
        self.assertEqual(sessions, [])

    async def test_unauthenticated_package_one_on_b_leaves_the_session_on_a(self):
        await self.handlers["a"].create_job(DEVICE, GET_SWV)
        await self.drive(self.nodes["a"], self.session(), stop_after=1)
        forger = self.session(account(secret="wrong"))
        request = forger.start()
        reply = await self.exchange(self.nodes["b"], request)
        self.assertEqual(reply.code, 200)
        self.assertIn(DEVICE, self.nodes["a"]._by_device)  # untouched

    async def test_job_created_on_b_joins_the_live_session_on_a(self):
        first = await self.handlers["a"].create_job(DEVICE, GET_SWV)
        session = self.session()
        request = session.start()
        reply = await self.exchange(self.nodes["a"], request)
        created = await self.handlers["b"].create_job(DEVICE, GET_SWV)  # b has no session of it
        for _ in range(20):  # the hand-over reads the store: let it run
            if len(self.nodes["a"]._by_device[DEVICE].engine._jobs) == 2:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        request = session.receive(reply.body, {"content-type": reply.content_type})
        while request is not None:
            reply = await self.exchange(self.nodes["a"], request)
            request = session.receive(reply.body, {"content-type": reply.content_type})
        for job_id in (first["id"], created["id"]):
            self.assertEqual((await self.handlers["a"].get_job(job_id))["state"], "done")
        self.assertEqual(len(session.executed), 2)

    async def test_a_job_cancelled_on_b_is_not_sent_by_the_live_session_on_a(self):
        sent = await self.handlers["a"].create_job(DEVICE, GET_SWV)
        session = self.session()
        request = session.start()
        reply = await self.exchange(self.nodes["a"], request)  # the first job goes out
        held = await self.handlers["a"].create_job(DEVICE, {"commands": [{"op": "Get", "target": "./DevInfo/Man"}],
                                                            "notify": "none"})  # in a's engine, not sent
        answer = await self.handlers["b"].cancel_job(held["id"])  # b has no session of it
        self.assertEqual((answer["state"], answer["cancelled"]), ("failed", True))
        request = session.receive(reply.body, {"content-type": reply.content_type})
        while request is not None:
            reply = await self.exchange(self.nodes["a"], request)
            request = session.receive(reply.body, {"content-type": reply.content_type})
        self.assertEqual([uri for _cmd, uri, _status in session.executed], ["./DevDetail/SwV"])
        self.assertEqual((await self.handlers["a"].get_job(sent["id"]))["state"], "done")
        job = await self.handlers["a"].get_job(held["id"])
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "cancelled"))

    async def test_a_job_sent_on_a_and_cancelled_on_b_is_cancelled_at_its_session_end(self):
        created = await self.handlers["a"].create_job(DEVICE, GET_SWV)
        await self.drive(self.nodes["a"], self.session(), stop_after=1)  # the job went out
        answer = await self.handlers["b"].cancel_job(created["id"])  # b has no session of it
        self.assertEqual(answer, {"id": created["id"], "state": "running", "cancelled": False,
                                  "cancel": "at_session_end"})
        self.assertEqual(self.nodes["a"]._cancel_at_end, {created["id"]: self.nodes["a"]._by_device[DEVICE]})
        self.clock.advance(61)  # the device went away: its session on a times out
        self.assertEqual((await self.handlers["a"].get_job(created["id"]))["state"], "failed")
        self.assertEqual(self.nodes["a"]._cancel_at_end, {})  # nothing left to cancel

    async def finish(self, node, session, reply):
        request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        while request is not None:
            reply = await self.exchange(node, request)
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        self.assertEqual(session.outcome, "completed", session.log)
        return [uri for _cmd, uri, _status in session.executed]

    async def until(self, condition):
        for _ in range(200):  # (the store's transactions run in threads)
            if condition():
                return
            await task.deferLater(reactor, 0.01, lambda: None)
        self.fail("condition never met")

    async def test_a_job_queued_on_b_cancelled_on_a_while_a_reads_it_is_not_sent(self):
        a = self.nodes["a"]
        sent = await self.handlers["a"].create_job(DEVICE, GET_SWV)
        session = self.session()
        reply = await self.exchange(a, session.start())  # the first job goes out
        live = a._by_device[DEVICE]
        read, gates = [], []
        real = self.store.pending_jobs

        def pending_jobs(device_id):  # the first read answers once the gate opens
            d = real(device_id)
            if not gates:
                gates.append(defer.Deferred())

                def held(jobs):
                    read.append([job.job_id for job in jobs])
                    return gates[0].addCallback(lambda _: jobs)

                d.addCallback(held)
            return d

        self.patch(self.store, "pending_jobs", pending_jobs)
        queued = await self.handlers["b"].create_job(DEVICE, {"commands": [{"op": "Get", "target": "./DevInfo/Man"}],
                                                              "notify": "none"})
        await self.until(lambda: read)  # b's signal: a's session read the job, its answer held
        self.assertEqual(read, [[queued["id"]]])
        self.assertEqual(live.engine.waiting_jobs(), [])
        # a's session does not hold it: cancelled at once (before: 202 at_session_end)
        answer = await self.handlers["a"].cancel_job(queued["id"])
        self.assertEqual(answer, {"id": queued["id"], "state": "failed", "cancelled": True})
        gates[0].callback(None)
        await self.until(lambda: live.engine.waiting_jobs())
        self.assertEqual(live.engine.waiting_jobs(), [queued["id"]])  # read before the cancel: taken
        # dropped before the next message (no longer pending): never sent
        self.assertEqual(await self.finish(a, session, reply), ["./DevDetail/SwV"])
        self.assertEqual((await self.handlers["a"].get_job(sent["id"]))["state"], "done")
        job = await self.handlers["a"].get_job(queued["id"])
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "cancelled"))
        self.assertEqual((a._cancel_at_end, self.nodes["b"]._cancel_at_end), ({}, {}))

    async def test_a_job_sent_on_a_cancelled_on_b_in_a_session_without_it_waits_for_a_session_end(self):
        created = await self.handlers["a"].create_job(DEVICE, GET_SWV)
        session = self.session()
        reply = await self.exchange(self.nodes["a"], session.start())  # the job went out
        forger = self.session(account(secret="wrong"))
        self.assertEqual((await self.exchange(self.nodes["b"], forger.start())).code, 200)
        self.assertIn(DEVICE, self.nodes["b"]._by_device)  # a session of the device on b, without the job
        answer = await self.handlers["b"].cancel_job(created["id"])
        self.assertEqual(answer, {"id": created["id"], "state": "running", "cancelled": False,
                                  "cancel": "at_session_end"})
        # a, whose session sent it, is told too (before: b only)
        self.assertEqual(self.nodes["a"]._cancel_at_end, {created["id"]: self.nodes["a"]._by_device[DEVICE]})
        # b's is a stranger's session: its end does not cancel the job (see below)
        self.assertEqual(self.nodes["b"]._cancel_at_end, {})
        self.assertEqual(await self.finish(self.nodes["a"], session, reply), ["./DevDetail/SwV"])
        self.assertEqual((await self.handlers["a"].get_job(created["id"]))["state"], "done")
        self.assertEqual(self.nodes["a"]._cancel_at_end, {})  # nothing left to cancel
        self.clock.advance(61)  # the stranger's session on b times out
        await self.until(lambda: not self.nodes["b"]._cancel_at_end)
        self.assertEqual((await self.handlers["a"].get_job(created["id"]))["state"], "done")

    async def test_a_job_started_on_a_between_the_read_and_the_cancel_on_b_is_cancelled_at_its_end(self):
        created = await self.handlers["a"].create_job(DEVICE, GET_SWV)
        session = self.session()
        replies = []
        real = self.store.cancel_job

        async def device_calls_first(job_id):
            # b read the job queued and found no session holding it; the
            # device's session on a starts it before b's cancel is written
            replies.append(await self.exchange(self.nodes["a"], session.start()))
            self.assertEqual((await self.handlers["a"].get_job(job_id))["state"], "running")
            return await real(job_id)

        self.patch(self.store, "cancel_job", lambda job_id: defer.ensureDeferred(device_calls_first(job_id)))
        answer = await self.handlers["b"].cancel_job(created["id"])
        # (before: {"state": "running", "cancelled": False}, a 409 job_finished,
        # and nothing cancelled)
        self.assertEqual(answer, {"id": created["id"], "state": "running", "cancelled": False,
                                  "cancel": "at_session_end"})
        self.assertEqual(self.nodes["a"]._cancel_at_end, {created["id"]: self.nodes["a"]._by_device[DEVICE]})
        self.clock.advance(61)  # the device went away: what is left of the job is cancelled
        job = await self.handlers["a"].get_job(created["id"])
        self.assertEqual(job["state"], "failed")
        self.assertEqual(self.nodes["a"]._cancel_at_end, {})

    async def test_a_strangers_session_ending_does_not_cancel_a_job_sent_elsewhere(self):
        # a job of several messages (a large object), sent by the device's session on a
        created = await self.handlers["a"].create_job(DEVICE, {"notify": "none", "commands": [
            {"op": "Add", "target": "./Vendor/Big", "data": "b" * 5000, "format": "chr"}]})
        session = ClientSession(account(), random_bytes=os.urandom, max_msg_size=1500)
        reply = await self.exchange(self.nodes["a"], session.start())  # t=0: its first chunk
        self.clock.advance(10)
        forger = self.session(account(secret="wrong"))
        self.assertEqual((await self.exchange(self.nodes["b"], forger.start())).code, 200)
        self.assertIn(DEVICE, self.nodes["b"]._by_device)  # a stranger's session, on b
        answer = await self.handlers["b"].cancel_job(created["id"])
        self.assertEqual((answer["state"], answer["cancel"]), ("running", "at_session_end"))
        self.clock.advance(45)
        request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        reply = await self.exchange(self.nodes["a"], request)  # t=55: the next chunk
        self.clock.advance(20)  # t=75: the stranger's session timed out (t=70), not the device's
        self.assertNotIn(DEVICE, self.nodes["b"]._by_device)
        await self.until(lambda: not self.nodes["b"]._cancel_at_end)
        # (before: b cancelled it as the stranger's session ended: the device's
        # results were thrown away, the job failed "cancelled")
        self.assertEqual((await self.handlers["a"].get_job(created["id"]))["state"], "running")
        self.assertEqual(set(await self.finish(self.nodes["a"], session, reply)), {"./Vendor/Big"})
        self.assertEqual((await self.handlers["a"].get_job(created["id"]))["state"], "done")
        self.assertEqual(self.nodes["a"]._cancel_at_end, {})

    async def test_an_event_on_b_wakes_a_long_poll_on_a(self):
        after = await self.store.last_event_seq()
        waiting = self.handlers["a"].wait_events(after, 10, 30)
        await self.nodes["b"].events.append("session", DEVICE, {"outcome": "x"})
        events = await waiting
        self.assertEqual([e["outcome"] for e in events], ["x"])

    async def test_a_session_superseded_during_an_outage_is_ended_when_the_store_is_back(self):
        # node a's store fails as node b's authenticated package 1 supersedes
        # a's session: its end waits for a repair, scheduled by the outage
        # (before: kept in a's _repairs with no repair to come, until some
        # other store failure there, or the stop)
        a = self.nodes["a"]
        a.store = failing = FailingStore(self.store)
        created = await self.handlers["a"].create_job(DEVICE, GET_SWV)
        stale = await self.drive(a, self.session(), stop_after=1)
        acc = account()
        acc.client.nonce = stale.account.client.nonce
        acc.server.nonce = stale.account.server.nonce
        failing.down = True
        fresh = await self.drive(self.nodes["b"], self.session(acc))
        self.assertEqual(fresh.outcome, "completed", fresh.log)
        self.assertNotIn(DEVICE, a._by_device)
        self.assertTrue(a.outage.active)
        self.assertEqual(len(self.flushLoggedErrors(StoreUnavailable)), 1)  # ("not superseded")
        failing.down = False
        self.clock.advance(a.outage.retry_after)
        await a._repairing  # (on the store's threads)
        self.assertEqual((a._repairs, a._ending), ([], {}))
        job = await self.handlers["b"].get_job(created["id"])
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "superseded"))
        self.assertEqual(await self.store.live_sessions(device_id=DEVICE), [])
