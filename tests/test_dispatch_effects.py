"""What a DM session's effects cost the store (L{dmgateway.dispatch_effects}):
the statements of a whole session with one job, on the dispatcher with the
real session engine and a real (in-memory SQLite) store; and what the
session holds when the store fails or ends a job under it."""

import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.dm import effects as fx
from dmgateway.store import StoreUnavailable
from tests.fixtures import ACCOUNT, DEVICE
from tests.store.support import record_statements
from tests.support import start_dispatcher
from tests.test_dispatch import GET_SWV, account
from tests.test_dispatch_security import FailingBatch
from tests.test_dispatch_withdraw import blob


class SessionStatementTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT)

    async def drive(self, session):
        request = session.start()
        while request is not None:
            token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
            ctype = request.headers.get("Content-Type")
            reply = await self.dispatcher.handle_dm(
                request.body, encoding="wbxml" if ctype and "wbxml" in ctype else "xml",
                hmac_header=request.headers.get("x-syncml-hmac"), token=token,
            )
            self.assertEqual(reply.code, 200, reply.body)
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        return session

    async def test_a_session_never_reads_its_own_row_back(self):
        created = await self.handlers.create_job(DEVICE, GET_SWV)
        statements = record_statements(self)
        session = await self.drive(ClientSession(account(), random_bytes=os.urandom))
        self.assertEqual(session.outcome, "completed", session.log)
        on_sessions = [sql.split(" WHERE")[0] for sql in statements if " sessions" in sql]
        # inserted with the session's first message, deleted with its last: nothing read
        self.assertEqual(len(on_sessions), 2, on_sessions)
        self.assertTrue(on_sessions[0].startswith("INSERT INTO sessions"), on_sessions)
        self.assertEqual(on_sessions[1], "DELETE FROM sessions")
        self.assertEqual(await self.store.live_sessions(), [])
        self.assertEqual((await self.handlers.get_job(created["id"]))["state"], "done")
        summary = (await self.store.get_device(DEVICE)).last_session
        self.assertEqual((summary["outcome"], summary["jobs"]), ("completed", [created["id"]]))
        events = await self.store.events_after(0)
        self.assertEqual([event["type"] for event in events][-2:], ["job", "session"])
        self.assertEqual(events[-1]["jobs"], [created["id"]])

    async def test_a_message_starts_all_its_jobs_in_one_statement(self):
        ids = [(await self.handlers.create_job(DEVICE, GET_SWV))["id"] for _ in range(3)]
        statements = record_statements(self)
        session = await self.drive(ClientSession(account(), random_bytes=os.urandom))
        self.assertEqual(session.outcome, "completed", session.log)
        starts = [sql for sql in statements if "SET state = 'running'" in sql]
        self.assertEqual(len(starts), 1, starts)
        self.assertEqual([(await self.handlers.get_job(job_id))["state"] for job_id in ids], ["done"] * 3)
        self.assertEqual((await self.store.get_device(DEVICE)).last_session["jobs"], ids)

    async def six_jobs_ended(self, outside=lambda txn, now, ids: None):
        """A session of six jobs, ``outside`` ending some in the store first
        (as another process would) in the transaction that writes their ends;
        return their ids and the updates of jobs in that write (one write for
        all six)."""
        ids = [(await self.handlers.create_job(DEVICE, GET_SWV))["id"] for _ in range(6)]
        statements = record_statements(self)
        ends = []
        end = self.store._end_jobs_txn

        def ended_first(txn, now, device_id, ending):
            self.assertEqual([end[0] for end in ending], ids)
            self.assertEqual(ends, [])
            outside(txn, now, ids)
            first = len(statements)
            try:
                return end(txn, now, device_id, ending)
            finally:
                ends.extend(sql for sql in statements[first:] if "UPDATE jobs" in sql)

        self.patch(self.store, "_end_jobs_txn", ended_first)
        session = await self.drive(ClientSession(account(), random_bytes=os.urandom))
        self.assertEqual(session.outcome, "completed", session.log)
        self.assertEqual((await self.store.get_device(DEVICE)).last_session["jobs"], ids)
        return ids, ends

    async def test_a_message_ends_all_its_jobs_in_one_write(self):
        # (one statement on PostgreSQL: tests/store/test_job_ends.py; on
        # SQLite, without RETURNING, each job's own UPDATE by its key)
        ids, ends = await self.six_jobs_ended()
        self.assertEqual(len(ends), 1 if self.store.database_engine.returning else 6, ends)
        self.assertEqual([(await self.handlers.get_job(job_id))["state"] for job_id in ids], ["done"] * 6)
        self.assertEqual(self.dispatcher.jobs_finished, {"done": 6})
        events = await self.store.events_after(0)
        self.assertEqual([(e["type"], e.get("job_id"), e.get("state")) for e in events][-7:],
                         [("job", job_id, "done") for job_id in ids] + [("session", None, None)])

    async def test_a_job_ended_meanwhile_is_not_counted_nor_ended_again(self):
        def cancelled(txn, now, ids):
            self.store._cancel_job_txn(txn, now, ids[2], ("running",))

        ids, ends = await self.six_jobs_ended(cancelled)
        # (SQLite: the refused job's UPDATE of a plain job, then the ordinary one)
        self.assertEqual(len(ends), 1 if self.store.database_engine.returning else 7, ends)
        self.assertEqual([(await self.handlers.get_job(job_id))["state"] for job_id in ids],
                         ["done", "done", "failed", "done", "done", "done"])
        self.assertEqual(self.dispatcher.jobs_finished, {"done": 5})
        events = [(e["type"], e.get("job_id"), e.get("state")) for e in await self.store.events_after(0)]
        self.assertEqual(events[-7:], [("job", ids[2], "failed")] + [("job", job_id, "done") for job_id in ids
                                                                     if job_id != ids[2]] + [("session", None, None)])

    async def test_ends_are_written_in_their_order_among_other_effects(self):
        # the ends read together go in one call; any other effect (an alert's
        # event, a start) is written after the ends before it and before those
        # after it, so that the batch keeps the effects' order
        ids = [(await self.handlers.create_job(DEVICE, GET_SWV))["id"] for _ in range(4)]
        session = ClientSession(account(), random_bytes=os.urandom)
        reply = await self.dispatcher.handle_dm(session.start().body, encoding="xml")
        self.assertEqual(reply.code, 200, reply.body)
        live = self.dispatcher._by_device[DEVICE]
        self.assertEqual(live.job_ids, ids)
        calls = []
        inside = []
        end_jobs, transition_job = self.store._end_jobs_txn, self.store._transition_job_txn

        def ended(txn, now, device_id, ends):
            calls.append([end[0] for end in ends])
            inside.append(True)
            try:
                return end_jobs(txn, now, device_id, ends)
            finally:
                inside.pop()

        def moved(txn, now, job_id, *args):
            if not inside:
                calls.append(job_id)
            return transition_job(txn, now, job_id, *args)

        self.patch(self.store, "_end_jobs_txn", ended)
        self.patch(self.store, "_transition_job_txn", moved)
        got = [{"op": "Get", "target": "./DevDetail/SwV", "status": 200, "data": "1.0"}]
        await self.dispatcher._apply(live, [
            fx.JobFinished(ids[0], "done", got), fx.JobFinished(ids[1], "done", got),
            fx.EventRaised("client_event", {"data": "x"}),
            fx.JobFinished(ids[2], "done", got),  # (alone: the call for one job)
            fx.JobStarted(ids[3]),
        ])
        self.assertEqual(calls, [[ids[0], ids[1]], ids[2]])
        self.assertEqual(self.dispatcher.jobs_finished, {"done": 3})
        events = [(e["type"], e.get("job_id")) for e in await self.store.events_after(0)]
        self.assertEqual(events[-4:], [("job", ids[0]), ("job", ids[1]), ("client_event", None), ("job", ids[2])])

    async def test_jobs_started_in_later_messages_are_recorded_on_the_session(self):
        # a small MaxMsgSize: the jobs go out over several messages, each
        # message's starts in one statement and the session's row touched once
        ids = []
        for n in range(3):
            ids.append((await self.handlers.create_job(DEVICE, blob(n, "./Vendor/Blob%d")))["id"])
        statements = record_statements(self)
        touched = []
        touch = self.store._touch_session_txn

        def recorded(txn, token, now, job_ids):
            touched.append(list(job_ids))
            return touch(txn, token, now, job_ids)

        self.patch(self.store, "_touch_session_txn", recorded)
        session = await self.drive(ClientSession(account(), random_bytes=os.urandom, max_msg_size=1400))
        self.assertEqual(session.outcome, "completed", session.log)
        starts = [sql for sql in statements if "SET state = 'running'" in sql]
        self.assertEqual(len(starts), 3, starts)
        self.assertEqual(touched, [ids[:2], ids], touched)
        self.assertEqual([(await self.handlers.get_job(job_id))["state"] for job_id in ids], ["done"] * 3)
        self.assertEqual((await self.store.get_device(DEVICE)).last_session["jobs"], ids)


class AbandonedJobTests(TestCase):
    """A session that cannot carry any command (the device's MaxMsgSize too
    small for the header and the Statuses owed) fails the jobs it never
    started, as the engine says, instead of leaving them queued for the next
    session to fail the same way."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        # a 100-character public URL: at 1 KiB the header and the RespURI leave no room
        yield start_dispatcher(self, DEVICE, ACCOUNT, public_url="https://dm.example.com/" + "x" * 77)

    async def test_jobs_never_started_fail_with_the_session(self):
        mixed = [{"op": "Replace", "target": "./Vendor/S%02d" % n, "data": "v" * 150} for n in range(15)]
        ids = [(await self.handlers.create_job(DEVICE, {"commands": mixed, "notify": "none"}))["id"],
               (await self.handlers.create_job(DEVICE, GET_SWV))["id"]]
        session = await SessionStatementTests.drive(self, ClientSession(account(), random_bytes=os.urandom,
                                                                         max_msg_size=1024))
        self.assertEqual(session.outcome, "completed", session.log)
        summary = (await self.store.get_device(DEVICE)).last_session
        self.assertEqual((summary["outcome"], summary["jobs"]), ("max_msg_size_too_small", []))
        for job_id in ids:
            job = await self.handlers.get_job(job_id)
            self.assertEqual((job["state"], job["error"]["code"]), ("failed", "max_msg_size_too_small"), job)
        events = [(e["job_id"], e["state"]) for e in await self.store.events_after(0) if e["type"] == "job"]
        self.assertEqual(events, [(ids[0], "failed"), (ids[1], "failed")])


class _FlakyCommits:
    """The real store, each of whose batches fails as an unreachable database
    when the next entry of ``plan`` (one a commit, True: fail) says so."""

    def __init__(self, store):
        self._store = store
        self.plan = []

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        if name == "batch":
            return lambda: FailingBatch(attr(), self._next_failure)
        return attr

    def _next_failure(self):
        if self.plan and self.plan.pop(0):
            return StoreUnavailable("OperationalError: database or disk is full")
        return None


def _record_session_rows(case):
    """The job ids each write of a session's row gave it, in order."""
    written = []
    for name in ("_start_session_txn", "_touch_session_txn"):
        real = getattr(case.store, name)

        def recorded(txn, *args, _real=real, _name=name):
            job_ids = args[3] if _name == "_start_session_txn" else args[2]
            written.append(list(job_ids) if job_ids is not None else None)
            return _real(txn, *args)

        case.patch(case.store, name, recorded)
    return written


class OutageTwiceTests(TestCase):
    """Effects written again after a store outage (the dispatcher's repairs)
    leave the session's jobs and counters as written once."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT)
        self.flaky = self.dispatcher.store = _FlakyCommits(self.store)

    async def outage(self, jobs, plan, **client_options):
        """Package 1 with ``plan`` for the commits; the live session, once the store is back."""
        ids = [(await self.handlers.create_job(DEVICE, {"commands": job, "notify": "none"}))["id"] for job in jobs]
        self.flaky.plan = list(plan)
        session = ClientSession(await self.account(), random_bytes=os.urandom, **client_options)
        reply = await self.dispatcher.handle_dm(session.start().body, encoding="xml")
        self.assertEqual(reply.code, 503)
        [(live, _effects)] = self.dispatcher._repairs
        for _ in range(len(plan) + 1):
            self.clock.advance(60)  # the probe writes what the session left, when the store is back
        self.assertEqual(self.dispatcher._repairs, [])
        return ids, live

    async def account(self):
        """The device's account with the nonces the store holds (those of its last session)."""
        acc = account()
        device = await self.store.get_device(DEVICE)
        acc.client.nonce, acc.server.nonce = device.client_auth.nonce, device.server_auth.nonce
        return acc

    async def summaries(self):
        events = await self.store.events_after(0)
        return ([e["jobs"] for e in events if e["type"] == "session"],
                [(e["job_id"], e["state"]) for e in events if e["type"] == "job"])

    async def test_jobs_started_in_the_last_message_are_listed_once(self):
        # two jobs whose data exceed the device's MaxObjSize: started, failed
        # unsent, and the session ends in the same message (its summary
        # written after their starts, in a transaction of its own)
        big = [{"op": "Add", "target": "./Vendor/Big", "data": "x" * 500, "format": "chr"}]
        for plan in ([True], [True, True, True], [False, True], [False, True, False, True]):
            self.dispatcher.jobs_finished.clear()
            self.dispatcher.sessions_ended.clear()
            rows = _record_session_rows(self)
            before = len(await self.store.events_after(0))
            ids, live = await self.outage([big, big], plan, max_obj_size=100)
            self.assertEqual(live.job_ids, ids, plan)
            self.assertTrue(rows, plan)
            for listed in rows:
                self.assertEqual(listed, ids, plan)
            events = (await self.store.events_after(0))[before:]
            self.assertEqual([e["jobs"] for e in events if e["type"] == "session"], [ids], plan)
            self.assertEqual([(e["job_id"], e["state"]) for e in events if e["type"] == "job"],
                             [(ids[0], "failed"), (ids[1], "failed")], plan)
            self.assertEqual((await self.store.get_device(DEVICE)).last_session["jobs"], ids, plan)
            self.assertEqual(self.dispatcher.jobs_finished, {"failed": 2}, plan)
            self.assertEqual(self.dispatcher.sessions_ended, {"completed": 1}, plan)
            for job_id in ids:
                job = await self.handlers.get_job(job_id)
                self.assertEqual((job["state"], job["error"]["code"]), ("failed", "too_large"), plan)

    async def test_jobs_of_a_message_the_store_failed_are_not_the_sessions(self):
        # package 1's effects start two jobs, then the store fails: the reply
        # (with their commands) is never sent, the session is aborted, and
        # they wait for the next session, neither listed nor counted
        rows = _record_session_rows(self)
        ids, live = await self.outage([GET_SWV["commands"], GET_SWV["commands"]], [True])
        self.assertEqual(live.job_ids, [])
        sessions, jobs = await self.summaries()
        self.assertEqual((sessions, jobs), ([[]], []))
        self.assertEqual(rows, [[]])  # (the row written with the abort, then dropped)
        self.assertEqual([(await self.handlers.get_job(job_id))["state"] for job_id in ids], ["queued"] * 2)
        self.assertEqual(self.dispatcher.jobs_finished, {})
        self.assertEqual(self.dispatcher.sessions_ended, {"store_unavailable": 1})
        # and the next session runs them
        session = await SessionStatementTests.drive(self, ClientSession(await self.account(), random_bytes=os.urandom))
        self.assertEqual(session.outcome, "completed", session.log)
        self.assertEqual([(await self.handlers.get_job(job_id))["state"] for job_id in ids], ["done"] * 2)
        self.assertEqual(self.dispatcher.jobs_finished, {"done": 2})


class EndedUnderItsSessionTests(TestCase):
    """A job that ends in the store (cancelled, expired, its device removed)
    after its session read it, before the message that would start it, is
    not sent, not counted and not listed; the session's other jobs run."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT)

    async def run_with_one_cancelled(self, cancel):
        ids = []
        for n in range(3):
            ids.append((await self.handlers.create_job(DEVICE, blob(n, "./Vendor/Blob%d")))["id"])
        rows = _record_session_rows(self)
        # a small MaxMsgSize: one job a message
        session = ClientSession(account(), random_bytes=os.urandom, max_msg_size=1400)
        request = session.start()
        reply = await self.dispatcher.handle_dm(request.body, encoding="xml")
        self.assertEqual([(await self.handlers.get_job(job_id))["state"] for job_id in ids],
                         ["running", "queued", "queued"])
        await cancel(ids[1])  # held by the session, not sent yet
        while request is not None:
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
            if request is not None:
                token = request.url.split("?s=", 1)[1]
                reply = await self.dispatcher.handle_dm(request.body, encoding="xml", token=token)
                self.assertEqual(reply.code, 200, reply.body)
        self.assertEqual(session.outcome, "completed", session.log)
        executed = [uri for _cmd, uri, _status in session.executed]  # (each chunk of a large object)
        self.assertEqual(list(dict.fromkeys(executed)), ["./Vendor/Blob0", "./Vendor/Blob2"])
        states = [await self.handlers.get_job(job_id) for job_id in ids]
        self.assertEqual([job["state"] for job in states], ["done", "failed", "done"])
        self.assertEqual(states[1]["error"]["code"], "cancelled")
        events = await self.store.events_after(0)
        self.assertEqual([(e["job_id"], e["state"]) for e in events if e["type"] == "job"],
                         [(ids[1], "failed"), (ids[0], "done"), (ids[2], "done")])
        self.assertEqual([e["jobs"] for e in events if e["type"] == "session"], [[ids[0], ids[2]]])
        self.assertEqual(self.dispatcher.jobs_finished, {"done": 2})
        return ids, rows

    async def test_a_job_cancelled_in_the_store_is_not_sent(self):
        # (through the store, as another process, an expiry or a device's removal does)
        async def cancel(job_id):
            self.assertTrue((await self.store.cancel_job(job_id)).cancelled)

        ids, rows = await self.run_with_one_cancelled(cancel)
        # its start was written with the message that would have sent it: the
        # session's row listed it until its next write
        self.assertEqual(rows, [[ids[0]], [ids[0], ids[1]], [ids[0], ids[2]]])

    async def test_a_job_cancelled_through_the_api_leaves_its_session_at_once(self):
        async def cancel(job_id):
            answer = await self.handlers.cancel_job(job_id)
            self.assertEqual(answer, {"id": job_id, "state": "failed", "cancelled": True})

        ids, rows = await self.run_with_one_cancelled(cancel)
        self.assertEqual(rows, [[ids[0]], [ids[0], ids[2]]])

    async def test_a_job_cancelled_as_its_message_is_written_is_taken_out_of_it(self):
        # the cancel lands just before the start of three jobs sent in one
        # message: the reply goes without the middle one, renumbered
        ids = [(await self.handlers.create_job(DEVICE, {"commands": [{"op": "Get", "target": target}],
                                                         "notify": "none"}))["id"]
               for target in ("./DevDetail/SwV", "./DevInfo/Man", "./DevInfo/Mod")]
        start = self.store._start_jobs_txn

        def cancelled_first(txn, now, job_ids, expect):
            if ids[1] in job_ids:
                self.store._cancel_job_txn(txn, now, ids[1])
            return start(txn, now, job_ids, expect)

        self.patch(self.store, "_start_jobs_txn", cancelled_first)
        session = await SessionStatementTests.drive(self, ClientSession(account(), random_bytes=os.urandom))
        self.assertEqual(session.outcome, "completed", session.log)
        self.assertEqual([uri for _cmd, uri, _status in session.executed], ["./DevDetail/SwV", "./DevInfo/Mod"])
        self.assertEqual([(await self.handlers.get_job(job_id))["state"] for job_id in ids],
                         ["done", "failed", "done"])
        self.assertEqual((await self.store.get_device(DEVICE)).last_session["jobs"], [ids[0], ids[2]])
        self.assertEqual(self.dispatcher.jobs_finished, {"done": 2})


class SplitOutageTests(TestCase):
    """The message that starts jobs and ends its session is written in two
    transactions: when only the second fails, the repair writes only it."""

    timeout = 60
    setUp = OutageTwiceTests.setUp
    account = OutageTwiceTests.account

    async def test_what_the_first_transaction_wrote_is_not_written_again(self):
        from dmgateway.client.account import GenericAlert

        big = [{"op": "Add", "target": "./Vendor/Big", "data": "x" * 500, "format": "chr"}]
        alert = GenericAlert(type="org.example.report", format="chr", data="hello", source="./Vendor/R")
        ids = [(await self.handlers.create_job(DEVICE, {"commands": big, "notify": "none"}))["id"]]
        self.flaky.plan = [False, True]  # its starts and the rest committed, its end not
        session = ClientSession(await self.account(), random_bytes=os.urandom, max_obj_size=100)
        reply = await self.dispatcher.handle_dm(session.start(generic_alerts=[alert]).body, encoding="xml")
        self.assertEqual(reply.code, 503)
        self.clock.advance(60)
        self.assertEqual(self.dispatcher._repairs, [])
        events = await self.store.events_after(0)
        self.assertEqual([e["type"] for e in events], ["generic_alert", "job", "session"])
        self.assertEqual([e["jobs"] for e in events if e["type"] == "session"], [ids])
        self.assertEqual(self.dispatcher.jobs_finished, {"failed": 1})
        self.assertEqual(self.dispatcher.sessions_ended, {"completed": 1})


class FailedMessageTests(TestCase):
    """A message the store fails (its session aborted, not ended by it): the
    jobs the device finished in it end with what it said, not left running."""

    timeout = 60
    setUp = OutageTwiceTests.setUp

    async def test_a_job_answered_in_the_failed_message_is_not_left_running(self):
        ids = []
        for n in range(2):
            ids.append((await self.handlers.create_job(DEVICE, blob(n, "./Vendor/Blob%d")))["id"])
        session = ClientSession(account(), random_bytes=os.urandom, max_msg_size=1400)  # one job a message
        request, armed = session.start(), False
        while True:
            token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
            live = self.dispatcher._by_device.get(DEVICE)
            if session.executed and live.engine.waiting_jobs() == [ids[1]] and b"<Final/>" in request.body:
                self.flaky.plan, armed = [True], True  # the message answering ids[0] (and starting ids[1])
            reply = await self.dispatcher.handle_dm(request.body, encoding="xml", token=token)
            if armed:
                break
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        self.assertEqual(reply.code, 503)
        self.clock.advance(60)
        self.assertEqual(self.dispatcher._repairs, [])
        done, waiting = [await self.handlers.get_job(job_id) for job_id in ids]
        self.assertEqual((done["state"], [r["status"] for r in done["results"]]), ("done", [200]))
        self.assertEqual(waiting["state"], "queued")  # never sent: the next session's
        self.assertEqual(self.dispatcher.jobs_finished, {"done": 1})
        self.assertEqual((await self.store.get_device(DEVICE)).last_session["jobs"], [ids[0]])
