"""An operator's ``DELETE /api/v1/devices/{id}`` while that device's DM
session has its first write (package 1: the session's row, the jobs it
starts) in flight: the device ends up deleted, the DELETE answered 200,
the device's message answered, nothing of the session left here or in
the store.  (Before: the session's end was written while its row was not
yet, so it inserted that row a second time: a ``Conflict`` from the store,
the DELETE answered 500 and the device left in place.)  A package 1 of
the device coming while the DELETE writes waits until the device is gone.

The session's timeout and a job's cancel while package 1 is written were
safe already (the timeout takes the device's lock; a cancel writes no
session row): kept so by the last tests.
"""

import os

from twisted.internet import defer

from dmgateway.api.resources import build_site
from dmgateway.client import ClientSession
from dmgateway.store.model import Conflict, StoreUnavailable
from tests.api.inmemory import Connection, raw_request
from tests.fixtures import DEVICE
from tests.openapi_check import check_response
from tests.test_dispatch import account
from tests.test_dispatch_cancel_at_end import GatewayCase
from tests.test_dispatch_end_refused import HeldThenRefusedStore

TOKEN = "t0ken-for-tests"
DEVICE_PATH = "/api/v1/devices/" + DEVICE.replace(":", "%3A")


class DeleteWhilePackage1IsWrittenTests(GatewayCase):
    def wrap(self, real):
        return HeldThenRefusedStore(real)  # batch commits wait while .held is unfired

    def setUp(self):
        d = super().setUp()
        self.site = build_site(self.handlers, TOKEN, reactor=self.clock)
        return d

    def delete(self, query=""):
        """``DELETE /api/v1/devices/{DEVICE}`` on the API site: the connection (its response comes later)."""
        connection = Connection(self.site)
        connection.send(raw_request("DELETE", DEVICE_PATH + query, None,
                                    {"Authorization": "Bearer " + TOKEN}))
        return connection

    def answered(self, connection, path=DEVICE_PATH):
        response = connection.response
        self.assertIsNotNone(response, "no response")
        check_response("DELETE", path, response.status, response.header("content-type"), response.raw,
                       {k: v[0] for k, v in response.headers.items()})
        return response

    async def package_1_held(self, secret="dev-secret"):
        """The device's package 1, its write held: (the session, its reply to come, the live session)."""
        acc = account(secret)
        if secret == "dev-secret":  # (the store's: the device authenticates in package 1, and self.job starts)
            device = await self.store.get_device(DEVICE)
            acc.client.nonce, acc.server.nonce = device.client_auth.nonce, device.server_auth.nonce
        session = ClientSession(acc, random_bytes=os.urandom)
        self.store.held = defer.Deferred()
        opening = defer.ensureDeferred(self.send(session.start()))
        live = self.dispatcher._by_device[DEVICE]
        self.assertTrue(live.unrecorded)  # its row is in the write held
        self.assertNoResult(opening)
        return session, opening, live

    def release(self):
        held, self.store.held = self.store.held, None
        held.callback(None)

    async def assert_device_gone(self):
        self.assertIsNone(await self.store.get_device(DEVICE))
        self.assertIsNone(await self.store.get_job(self.job))
        self.assertEqual(await self.store.live_sessions(device_id=DEVICE), [])
        self.assert_nothing_left()

    def assert_nothing_left(self):
        dispatcher = self.dispatcher
        self.assertEqual((dispatcher._by_device, dispatcher._by_token, dispatcher._ending, dispatcher._repairs,
                          dispatcher._cancel_at_end, dispatcher._locks), ({}, {}, {}, [], {}, {}))
        self.assertEqual(self.flushLoggedErrors(Conflict), [])

    # -- DELETE device -----------------------------------------------------------------

    async def test_delete_waits_for_package_1_then_deletes(self):
        session, opening, _live = await self.package_1_held()
        connection = self.delete()
        self.assertIsNone(connection.response)  # (waits for the device's message)
        self.release()
        reply = await opening
        self.assertEqual(reply.code, 200, reply.body)  # package 1 answered, self.job sent
        response = self.answered(connection)
        self.assertEqual(response.status, 200, response.raw)  # (before: 500, the device kept)
        self.assertEqual(response.json["deleted"], True)
        self.clock.advance(0)
        await self.assert_device_gone()
        self.assertEqual(self.dispatcher.sessions_ended["device_deleted"], 1)
        # the device's next message finds no session
        request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        later = await self.send(request)
        self.assertIn(b"<Data>403</Data>", later.body)
        self.assert_nothing_left()

    async def test_delete_with_history_purged(self):
        _session, opening, _live = await self.package_1_held()
        connection = self.delete("?history=purge")
        self.release()
        await opening
        response = self.answered(connection, DEVICE_PATH + "?history=purge")
        self.assertEqual((response.status, response.json["history"]), (200, "purged"), response.raw)
        await self.assert_device_gone()

    async def test_delete_while_a_strangers_package_1_is_written(self):
        # a package 1 that does not authenticate (a wrong secret) opens a
        # session too, its row written with its first message
        _session, opening, live = await self.package_1_held(secret="wrong")
        self.assertFalse(live.authenticated)
        connection = self.delete()
        self.release()
        self.assertEqual((await opening).code, 200)
        self.assertEqual(self.answered(connection).status, 200)
        await self.assert_device_gone()

    async def test_a_delete_waits_for_a_hung_write_at_most_delete_wait(self):
        # package 1's write hangs (a row lock in the database, say): the
        # DELETE is answered 503 after DELETE_WAIT, nothing deleted, and the
        # device's message is not disturbed; asked again later, it deletes
        from dmgateway.handlers.devices import DELETE_WAIT

        _session, opening, live = await self.package_1_held()
        connection = self.delete()
        self.clock.advance(DELETE_WAIT - 1)
        self.assertIsNone(connection.response)
        self.clock.advance(1)
        response = self.answered(connection)
        self.assertEqual((response.status, response.json["error"]["code"]), (503, "service_unavailable"),
                         response.raw)
        self.assertIn("nothing was deleted: try again", response.json["error"]["message"])
        self.assertEqual(response.header("retry-after"), "%d" % (DELETE_WAIT,))
        lock = self.dispatcher._locks[DEVICE]
        self.assertEqual((lock.locked, lock.waiting), (True, []))  # (the message's, no waiter left)
        self.release()
        self.assertEqual((await opening).code, 200)
        self.assertIsNotNone(await self.store.get_device(DEVICE))
        self.assertIs(self.dispatcher._by_device[DEVICE], live)
        again = self.delete()
        self.assertEqual(self.answered(again).status, 200)
        self.clock.advance(0)
        await self.assert_device_gone()

    async def test_a_new_package_1_during_the_delete_waits_for_it(self):
        # the DELETE's own writes held: a package 1 of the device coming now
        # waits for the device to be gone (no session opens for a device
        # being deleted), and is refused
        _session, opening, _live = await self.package_1_held()
        connection = self.delete()
        self.store.held, held = defer.Deferred(), self.store.held
        held.callback(None)  # package 1 written; the session's end (the DELETE's) held
        await opening
        again = defer.ensureDeferred(self.send(ClientSession(account(), random_bytes=os.urandom).start()))
        self.assertNoResult(again)
        self.release()
        self.assertEqual(self.answered(connection).status, 200)
        self.assertIn(b"<Data>401</Data>", (await again).body)  # (an unknown device)
        await self.assert_device_gone()

    async def test_delete_during_an_outage_is_503_and_later_deletes(self):
        # the store fails package 1's write: the session is aborted, its end
        # kept for a repair; the DELETE that waited for it fails too (503,
        # Retry-After), and deletes once asked again
        _session, opening, _live = await self.package_1_held()
        connection = self.delete()
        self.store.refuse = lambda: StoreUnavailable("database down")

        def down(*args):
            return defer.fail(StoreUnavailable("database down"))
        self.store.remove_device = down
        self.release()
        self.assertEqual((await opening).code, 503)
        response = self.answered(connection)
        self.assertEqual((response.status, response.error_code), (503, "store_unavailable"), response.raw)
        self.assertIsNotNone(response.header("retry-after"))
        self.store.refuse = None
        del self.store.remove_device
        retried = self.delete()
        self.assertEqual(self.answered(retried).status, 200)
        self.assertEqual(retried.response.json["jobs_cancelled"], [self.job])  # (never started)
        self.clock.advance(self.dispatcher.outage.retry_after)  # the repair: its device is gone, nothing to write
        await self.assert_device_gone()

    async def test_a_flood_of_the_devices_messages_neither_starves_nor_wedges_the_delete(self):
        # hundreds of messages naming the device (anyone may send them: the
        # lock is taken before authentication) queued behind package 1's
        # write, before and after the DELETE: the DELETE waits only for
        # those before it (first come, first served), those after are
        # refused (no device).  (Before: their hand-over of the lock nested
        # a frame per message, a RecursionError left the lock held for good:
        # the DELETE never answered, nor the messages, nor would stop().)
        _session, opening, _live = await self.package_1_held(secret="wrong")
        handled = []
        in_session, end_quietly = self.dispatcher._in_session, self.dispatcher._end_quietly
        self.dispatcher._in_session = lambda *a: handled.append("message") or in_session(*a)
        self.dispatcher._end_quietly = lambda *a: handled.append("DELETE") or end_quietly(*a)

        def messages(count):
            return [defer.ensureDeferred(self.send(ClientSession(account("wrong"), random_bytes=os.urandom).start()))
                    for _ in range(count)]

        before = messages(250)
        connection = self.delete()
        after = messages(250)
        self.release()
        self.assertEqual(self.answered(connection).status, 200)
        self.assertEqual(handled, ["message"] * 250 + ["DELETE"] + ["message"] * 250)
        self.assertEqual((await opening).code, 200)
        for reply in before + after:
            self.assertEqual((await reply).code, 200)
        for reply in after:
            self.assertIn(b"<Data>401</Data>", (await reply).body)  # (an unknown device)
        await self.assert_device_gone()

    # -- the session's timeout, a job's cancel -----------------------------------------

    async def test_timeout_while_package_1_is_written(self):
        _session, opening, live = await self.package_1_held()
        self.clock.advance(61)  # the session's timer fires: its end waits for package 1
        self.assertIs(self.dispatcher._by_device[DEVICE], live)
        self.release()
        self.assertEqual((await opening).code, 200)
        self.assertEqual(self.dispatcher.sessions_ended["session_timeout"], 1)
        self.assertEqual(await self.state(self.job), ("failed", "session_timeout"))
        self.assertEqual(await self.store.live_sessions(device_id=DEVICE), [])
        self.assert_nothing_left()

    async def test_cancel_while_package_1_is_written(self):
        _session, opening, live = await self.package_1_held()
        answer = await self.handlers.cancel_job(self.job)  # sent in the reply being written
        self.assertEqual(answer["cancel"], "at_session_end")
        self.assertEqual(self.dispatcher._cancel_at_end, {self.job: live})
        self.release()
        self.assertEqual((await opening).code, 200)
        self.clock.advance(61)  # the session ends (a timeout), and self.job with it
        self.assertEqual(await self.state(self.job), ("failed", "session_timeout"))
        self.assertEqual(await self.store.live_sessions(device_id=DEVICE), [])
        self.assert_nothing_left()
