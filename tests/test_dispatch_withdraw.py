"""Jobs the store would not start (cancelled under their session) taken out
of the reply that started them (L{dmgateway.dm.session.ServerSession.withdraw}),
on the wire to the client library: Atomic and Sequence, large objects,
WBXML and XML, HMAC-signed replies, retransmissions."""

import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.store import StoreUnavailable
from tests.fixtures import ACCOUNT, DEVICE
from tests.support import start_dispatcher
from tests.test_dispatch import account


def blob(n, target="./Vendor/B%d"):
    """A job of one Add of 700 bytes to ``target % n``: with the device's
    MaxMsgSize of 1400, one job a message."""
    return {"commands": [{"op": "Add", "target": target % n, "data": "x" * 700, "format": "chr"}],
            "notify": "none"}


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
        ids = []
        for n in range(3):
            ids.append((await self.handlers.create_job(DEVICE, blob(n)))["id"])
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


def held_once(case, name, when=lambda *args: True):
    """Patch the store's ``name`` so that its first call ``when(*args)``
    allows is made at once but answers only when the Deferred appended to
    the list returned is fired (a read in flight while other work commits)."""
    real = getattr(case.store, name)
    gates = []

    def held(*args, **kwargs):
        d = real(*args, **kwargs)
        if not gates and when(*args):
            gate = defer.Deferred()
            gates.append(gate)
            d.addCallback(lambda value: gate.addCallback(lambda _: value))
        return d

    case.patch(case.store, name, held)
    return gates


class CancelNotSentTests(TestCase):
    """A cancel through the API of a job of a device in session here that no
    session has sent: cancelled at once (200), whether the session held it
    (it drops it), never read it, or reads it after the cancel; never sent.
    A job sent is cancelled at the end of its session (202)."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT)

    async def open_session(self, *jobs):
        """A session whose package 2 sent the first of ``jobs`` (API bodies),
        one job a message: (session, its ids, package 2, the live session)."""
        ids = [(await self.handlers.create_job(DEVICE, job))["id"] for job in jobs]
        session = ClientSession(account(), random_bytes=os.urandom, max_msg_size=1400)
        reply = await WithdrawOnTheWireTests.post(self, session.start(), "xml")
        self.assertEqual((await self.handlers.get_job(ids[0]))["state"], "running")
        return session, ids, reply, self.dispatcher._by_device[DEVICE]

    async def next_message(self, session, reply):
        request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        return request and await WithdrawOnTheWireTests.post(self, request, "xml")

    async def advance(self, session, reply, until):
        """Messages of the session until ``until()`` holds: the last reply."""
        while not until():
            reply = await self.next_message(session, reply)
            self.assertIsNotNone(reply, "the session ended first")
        return reply

    async def finish(self, session, reply):
        """Run the session to its end: the targets the device was sent."""
        while reply is not None:
            reply = await self.next_message(session, reply)
        self.assertEqual(session.outcome, "completed", session.log)
        self.assertNotIn(DEVICE, self.dispatcher._by_device)
        return list(dict.fromkeys(uri for _cmd, uri, _status in session.executed))

    async def queued_elsewhere(self, target="./DevInfo/Mod"):
        """A job queued in the store as another process does: not handed to the session here."""
        job_id = "elsewhere-" + target.rsplit("/", 1)[-1]
        await self.store.create_job(job_id, DEVICE, [{"op": "Get", "target": target}], notify="none",
                                    now=self.clock.seconds())
        return job_id

    async def assertCancelled(self, job_id):
        job = await self.handlers.get_job(job_id)
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "cancelled"))

    def cancelled_now(self, job_id):
        return {"id": job_id, "state": "failed", "cancelled": True}

    async def test_a_job_the_session_never_read_is_cancelled_at_once(self):
        session, ids, reply, live = await self.open_session(GET)
        other = await self.queued_elsewhere()
        # (before: 202 at_session_end, though the session had nothing of it)
        self.assertEqual(await self.handlers.cancel_job(other), self.cancelled_now(other))
        self.assertEqual(self.dispatcher._cancel_at_end, {})
        await self.dispatcher._hand_over_jobs(live)  # the session reads its jobs after the cancel
        self.assertEqual(live.engine.waiting_jobs(), [])
        self.assertEqual(await self.finish(session, reply), ["./DevInfo/Man"])
        await self.assertCancelled(other)
        self.assertEqual(self.dispatcher.jobs_finished, {"done": 1})
        self.assertEqual((await self.store.get_device(DEVICE)).last_session["jobs"], ids)

    async def test_a_job_read_while_its_cancel_commits_is_not_sent(self):
        # the session's read of its jobs (a hand-over: another process
        # queued one) answers after the cancel committed: the session takes
        # the job, the store does not start it, and its reply goes without it
        session, ids, reply, live = await self.open_session(GET)
        other = await self.queued_elsewhere()
        gates = held_once(self, "pending_jobs")
        reading = defer.ensureDeferred(self.dispatcher._hand_over_jobs(live))
        self.assertEqual(len(gates), 1)
        self.assertEqual(await self.handlers.cancel_job(other), self.cancelled_now(other))
        gates[0].callback(None)
        await reading
        self.assertEqual(live.engine.waiting_jobs(), [other])  # read before the cancel
        self.assertEqual(await self.finish(session, reply), ["./DevInfo/Man"])
        await self.assertCancelled(other)
        self.assertEqual(self.dispatcher.jobs_finished, {"done": 1})
        self.assertEqual((await self.store.get_device(DEVICE)).last_session["jobs"], ids)
        self.assertEqual(self.dispatcher._cancel_at_end, {})

    async def test_a_job_read_by_a_session_opening_while_its_cancel_commits_is_not_sent(self):
        # package 1's read of the device and its jobs answers after the
        # cancel committed (no session was live to drop the job): the job is
        # in the session's engine, not started by the store, never sent
        created = (await self.handlers.create_job(DEVICE, GET))["id"]
        gates = held_once(self, "session_reads")
        session = ClientSession(account(), random_bytes=os.urandom)
        opening = defer.ensureDeferred(WithdrawOnTheWireTests.post(self, session.start(), "xml"))
        self.assertEqual((len(gates), self.dispatcher._by_device), (1, {}))
        self.assertEqual(await self.handlers.cancel_job(created), self.cancelled_now(created))
        gates[0].callback(None)
        reply = await opening
        self.assertEqual(await self.finish(session, reply), [])
        await self.assertCancelled(created)
        self.assertEqual(self.dispatcher.jobs_finished, {})
        self.assertEqual((await self.store.get_device(DEVICE)).last_session["jobs"], [])

    async def test_a_cancel_the_store_failed_after_the_drop_cancels_when_asked_again(self):
        session, ids, reply, live = await self.open_session(blob(0), blob(1), blob(2))
        self.assertEqual(live.engine.waiting_jobs(), ids[1:])
        real = self.store.cancel_job
        self.patch(self.store, "cancel_job",
                   lambda job_id: defer.fail(StoreUnavailable("OperationalError: database is locked")))
        await self.assertFailure(self.handlers.cancel_job(ids[1]), StoreUnavailable)  # (503)
        self.patch(self.store, "cancel_job", real)
        # dropped from the session, still queued in the store
        self.assertEqual(live.engine.waiting_jobs(), [ids[2]])
        self.assertEqual((await self.handlers.get_job(ids[1]))["state"], "queued")
        # a read of the device's jobs (another process queued one) does not bring it back
        await self.dispatcher._hand_over_jobs(live)
        self.assertEqual(live.engine.waiting_jobs(), [ids[2]])
        reply = await self.advance(session, reply, lambda: not live.engine.waiting_jobs())  # ids[2] sent
        # asked again: cancelled at once (before: 202, cancelled at the session's end)
        self.assertEqual(await self.handlers.cancel_job(ids[1]), self.cancelled_now(ids[1]))
        self.assertEqual(await self.finish(session, reply), ["./Vendor/B0", "./Vendor/B2"])
        await self.assertCancelled(ids[1])
        self.assertEqual(self.dispatcher.jobs_finished, {"done": 2})
        self.assertEqual(self.dispatcher._cancel_at_end, {})

    async def test_a_running_job_the_session_does_not_hold_is_cancelled_at_its_end(self):
        # running, but not in this session: started by a session whose end
        # is not written yet (the store failing when it ended), say
        session, ids, reply, live = await self.open_session(GET)
        other = await self.queued_elsewhere()
        self.assertEqual(await self.store.start_jobs([other], expect=("queued",), now=self.clock.seconds()),
                         (other,))
        answer = await self.handlers.cancel_job(other)
        self.assertEqual(answer, {"id": other, "state": "running", "cancelled": False, "cancel": "at_session_end"})
        self.assertEqual(self.dispatcher._cancel_at_end, {other: live})
        self.assertEqual(await self.finish(session, reply), ["./DevInfo/Man"])
        await self.assertCancelled(other)
        self.assertEqual(self.dispatcher._cancel_at_end, {})

    async def test_a_running_job_is_cancelled_at_the_sessions_end_in_one_write(self):
        # the cancel at the session's end leaves no moment when the store
        # holds the job as waiting: a new session of the device (its
        # package 1 right after) cannot start it in between (before:
        # running, then queued, then cancelled, in two writes)
        session, ids, reply, live = await self.open_session(GET)
        other = await self.queued_elsewhere()
        await self.store.start_jobs([other], expect=("queued",), now=self.clock.seconds())
        self.assertEqual((await self.handlers.cancel_job(other))["cancel"], "at_session_end")
        cancel_job = self.store.cancel_job
        seen = []  # the job's state as the cancel's write begins: what a new session would meet

        async def cancel_job_seen(job_id, **kwargs):
            seen.append((await self.store.get_job(job_id)).state)
            return await cancel_job(job_id, **kwargs)

        self.patch(self.store, "cancel_job", cancel_job_seen)
        self.assertEqual(await self.finish(session, reply), ["./DevInfo/Man"])
        self.assertEqual(seen, ["running"])  # (not "queued": a new session's start takes none)
        await self.assertCancelled(other)
        states = [event["state"] for event in await self.store.events_after(0, 1000)
                  if event["type"] == "job" and event["job_id"] == other]
        self.assertEqual(states, ["failed"])

    async def test_the_answer_202_says_the_state_once_the_cancel_is_asked(self):
        # the session ends the job between the cancel's read of it and its answer
        session, ids, reply, live = await self.open_session(blob(0), blob(1))
        gates = held_once(self, "get_job", lambda job_id: job_id == ids[0])
        cancelling = self.handlers.cancel_job(ids[0])  # read: running
        self.assertEqual(len(gates), 1)
        reply = await self.advance(session, reply, lambda: not live.engine.waiting_jobs())  # ids[1] sent
        self.assertEqual([(await self.store.get_job(job_id)).state for job_id in ids], ["done", "running"])
        gates[0].callback(None)
        # (before: "running", the state read when the request came)
        self.assertEqual(await cancelling, {"id": ids[0], "state": "done", "cancelled": False,
                                            "cancel": "at_session_end"})
        self.assertEqual(await self.finish(session, reply), ["./Vendor/B0", "./Vendor/B1"])
        self.assertEqual([(await self.store.get_job(job_id)).state for job_id in ids], ["done", "done"])
        self.assertEqual(self.dispatcher._cancel_at_end, {})
