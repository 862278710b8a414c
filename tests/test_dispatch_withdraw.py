"""Jobs the store would not start (cancelled under their session) taken out
of the reply that started them (L{dmgateway.dm.session.ServerSession.withdraw}),
on the wire to the client library: Atomic and Sequence, large objects,
WBXML and XML, HMAC-signed replies, retransmissions."""

import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from tests.fixtures import ACCOUNT, DEVICE
from tests.support import start_dispatcher
from tests.test_dispatch import account

GET = {"commands": [{"op": "Get", "target": "./DevInfo/Man"}], "notify": "none"}
ATOMIC = {"atomic": True, "notify": "none", "commands": [
    {"op": "Add", "target": "./Vendor/A1", "data": "1", "format": "chr"},
    {"op": "Add", "target": "./Vendor/A2", "data": "2", "format": "chr"}]}
SEQUENCE = {"notify": "none", "commands": [{"op": "Sequence", "commands": [
    {"op": "Add", "target": "./Vendor/S1", "data": "1", "format": "chr"},
    {"op": "Add", "target": "./Vendor/S2", "data": "2", "format": "chr"}]}]}
LAST = {"commands": [{"op": "Add", "target": "./Vendor/Last", "data": "z", "format": "chr"}],
        "notify": "none"}


def big(size):
    return {"commands": [{"op": "Add", "target": "./Vendor/Big", "data": "b" * size, "format": "chr"}],
            "notify": "none"}


class WithdrawOnTheWireTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT)

    async def run_session(self, jobs, cancelled, *, encoding="xml", scheme="md5", **client_options):
        """A session of the client library for ``jobs`` (API bodies); the job
        at index ``cancelled`` ends in the store as the message that starts
        it is written.  Returns (session, job ids, exchanges)."""
        if scheme != "md5":
            await self.handlers.put_device(DEVICE, dict(
                ACCOUNT, client_auth={"type": scheme, "name": "dev", "secret": "dev-secret"},
                server_auth={"type": scheme, "name": "dmgw-test", "secret": "srv-secret"}))
        ids = [(await self.handlers.create_job(DEVICE, job))["id"] for job in jobs]
        start = self.store._start_jobs_txn

        def cancelled_first(txn, now, job_ids, expect):
            if ids[cancelled] in job_ids:
                self.store._cancel_job_txn(txn, now, ids[cancelled])
            return start(txn, now, job_ids, expect)

        self.patch(self.store, "_start_jobs_txn", cancelled_first)
        acc = account()
        acc.client.scheme = acc.server.scheme = scheme
        device = await self.store.get_device(DEVICE)  # (the nonces of its last session)
        acc.client.nonce, acc.server.nonce = device.client_auth.nonce, device.server_auth.nonce
        session = ClientSession(acc, random_bytes=os.urandom, encoding=encoding, **client_options)
        request = session.start()
        exchanges = []
        while request is not None:
            reply = await self.post(request, encoding)
            exchanges.append((request, reply))
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        self.assertEqual(session.outcome, "completed", session.log)
        self.assertEqual(session.counters.get("oversized_messages", 0), 0)
        states = [(await self.handlers.get_job(job_id))["state"] for job_id in ids]
        expected = ["done"] * len(ids)
        expected[cancelled] = "failed"
        self.assertEqual(states, expected)
        self.assertEqual(self.dispatcher.jobs_finished, {"done": len(ids) - 1} if len(ids) > 1 else {})
        summary = (await self.store.get_device(DEVICE)).last_session
        self.assertEqual(summary["jobs"], [job_id for n, job_id in enumerate(ids) if n != cancelled])
        return session, ids, exchanges

    async def post(self, request, encoding):
        token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
        reply = await self.dispatcher.handle_dm(request.body, encoding=encoding, token=token,
                                                hmac_header=request.headers.get("x-syncml-hmac"))
        self.assertEqual(reply.code, 200, reply.body)
        return reply

    def executed(self, session):
        return list(dict.fromkeys(uri for _cmd, uri, _status in session.executed))

    async def check_atomic_and_sequence(self, encoding, scheme, cancelled):
        session, _ids, _ex = await self.run_session([GET, ATOMIC, SEQUENCE, LAST], cancelled,
                                                    encoding=encoding, scheme=scheme)
        kept = {1: ["./Vendor/S1", "./Vendor/S2"], 2: ["./Vendor/A1", "./Vendor/A2"]}[cancelled]
        self.assertEqual(self.executed(session), ["./DevInfo/Man"] + kept + ["./Vendor/Last"])

    async def check_the_only_job_leaves_a_message_without_commands(self, encoding, scheme):
        session, _ids, _ex = await self.run_session([GET], 0, encoding=encoding, scheme=scheme)
        self.assertEqual(self.executed(session), [])

    async def check_a_large_object_withdrawn_at_its_first_chunk(self, encoding, scheme):
        session, _ids, _ex = await self.run_session([big(5000), LAST], 0, encoding=encoding,
                                                    scheme=scheme, max_msg_size=1500)
        self.assertEqual(self.executed(session), ["./Vendor/Last"])

    async def check_a_large_object_after_a_withdrawn_job(self, encoding, scheme):
        session, _ids, _ex = await self.run_session([GET, big(5000), LAST], 0, encoding=encoding,
                                                    scheme=scheme, max_msg_size=1500)
        self.assertEqual(self.executed(session), ["./Vendor/Big", "./Vendor/Last"])

    async def check_a_retransmission_gets_the_amended_reply(self, encoding, scheme):
        originals = {}
        post = self.post

        async def twice(request, encoding):
            # package 1 (whose reply is amended) sent again: the same reply comes back
            reply = await post(request, encoding)
            if originals:
                return reply
            again = await post(request, encoding)
            self.assertEqual((again.body, again.headers), (reply.body, reply.headers))
            originals[request.body] = reply
            return again

        self.post = twice
        session, _ids, _ex = await self.run_session([GET, ATOMIC, LAST], 1, encoding=encoding, scheme=scheme)
        self.assertEqual(self.executed(session), ["./DevInfo/Man", "./Vendor/Last"])


def _variants(name, *extra):
    for encoding in ("xml", "wbxml"):
        for scheme in ("md5", "hmac"):
            for args in (extra or [()]):
                def test(self, _args=(encoding, scheme) + tuple(args)):
                    return getattr(self, "check_" + name)(*_args)
                suffix = "_".join([encoding, scheme] + [str(a) for a in args])
                setattr(WithdrawOnTheWireTests, "test_%s_%s" % (name, suffix), test)


_variants("atomic_and_sequence", (1,), (2,))
_variants("the_only_job_leaves_a_message_without_commands")
_variants("a_large_object_withdrawn_at_its_first_chunk")
_variants("a_large_object_after_a_withdrawn_job")
_variants("a_retransmission_gets_the_amended_reply")


class CancelWhileWrittenTests(TestCase):
    """A cancel through the API while the message that starts the next job
    is being written (the engine has started it, the store not yet)."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT)

    async def test_cancels_between_read_and_commit(self):
        blob = {"commands": [{"op": "Add", "target": "./Vendor/B%d", "data": "x" * 700, "format": "chr"}],
                "notify": "none"}
        ids = []
        for n in range(3):
            job = {"commands": [dict(blob["commands"][0], target="./Vendor/B%d" % n)], "notify": "none"}
            ids.append((await self.handlers.create_job(DEVICE, job))["id"])
        held = []

        class Gated:  # the store's batch, its commit held when asked
            def __init__(self, batch):
                self._batch = batch

            def __getattr__(self, name):
                return getattr(self._batch, name)

            def __len__(self):
                return len(self._batch)

            def commit(self, **kwargs):
                if held and held[0] is None:
                    gate = held[0] = defer.Deferred()
                    gate.addCallback(lambda _: self._batch.commit(**kwargs))
                    return gate
                return self._batch.commit(**kwargs)

        real_batch = self.store.batch
        self.patch(self.store, "batch", lambda: Gated(real_batch()))
        session = ClientSession(account(), random_bytes=os.urandom, max_msg_size=1400)  # one job a message
        request = session.start()
        live = None
        while True:  # up to the message whose reply starts ids[1], its commit held
            held[:] = [None]
            pending = defer.ensureDeferred(WithdrawOnTheWireTests.post(self, request, "xml"))
            self.assertIsNotNone(held[0])
            live = live or self.dispatcher._by_device[DEVICE]
            if ids[1] not in live.engine.waiting_jobs():
                break
            held.pop().callback(None)
            reply = await pending
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        self.assertEqual(live.engine.waiting_jobs(), [ids[2]])  # ids[1] started by the engine, not the store
        self.assertEqual((await self.handlers.get_job(ids[1]))["state"], "queued")
        answers = [await self.handlers.cancel_job(job_id) for job_id in ids]
        self.assertEqual([a.get("cancel") for a in answers], ["at_session_end", "at_session_end", None])
        self.assertEqual(answers[2]["state"], "failed")
        gate = held.pop()
        gate.callback(None)
        reply = await pending
        while request is not None:
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
            if request is not None:
                reply = await WithdrawOnTheWireTests.post(self, request, "xml")
        self.assertEqual(session.outcome, "completed", session.log)
        executed = list(dict.fromkeys(uri for _cmd, uri, _status in session.executed))
        self.assertEqual(executed, ["./Vendor/B0", "./Vendor/B1"])
        states = [(await self.handlers.get_job(job_id))["state"] for job_id in ids]
        self.assertEqual(states, ["done", "done", "failed"])
        self.assertEqual(self.dispatcher.jobs_finished, {"done": 2})
        self.assertEqual(self.dispatcher._cancel_at_end, {})  # (ids[0] ended before its cancel was asked)
