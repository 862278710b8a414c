"""What a DM session's effects cost the store (L{dmgateway.dispatch_effects}):
the statements of a whole session with one job, on the dispatcher with the
real session engine and a real (in-memory SQLite) store."""

import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from tests.fixtures import ACCOUNT, DEVICE
from tests.store.support import record_statements
from tests.support import start_dispatcher
from tests.test_dispatch import GET_SWV, account


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

    async def test_jobs_started_in_later_messages_are_recorded_on_the_session(self):
        # a small MaxMsgSize: the jobs go out over several messages, each
        # message's starts in one statement and the session's row touched once
        ids = []
        for n in range(3):
            add = {"commands": [{"op": "Add", "target": "./Vendor/Blob%d" % n, "data": "x" * 700,
                                 "format": "chr"}], "notify": "none"}
            ids.append((await self.handlers.create_job(DEVICE, add))["id"])
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
