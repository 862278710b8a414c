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
