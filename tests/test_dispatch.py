"""The dispatcher with the real session engine and a real (in-memory SQLite)
store, driven by the client library without any network: sessions,
supersession, timeouts on an injected clock, lockout, shutdown."""

import dataclasses
import os

import pytest

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials
from dmgateway.config import AuthConfig
from dmgateway.dispatch import Dispatcher
from dmgateway.handlers import Handlers
from dmgateway.dm import effects as fx
from dmgateway.store import open_store
from tests.fixtures import ACCOUNT, DEVICE
from tests.support import gateway_config, start_dispatcher

GET_SWV = {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}], "notify": "none"}
AUTO_JOB = {"commands": [{"op": "Get", "target": "./DevInfo/Man"}], "notify": "auto"}


def account(secret="dev-secret"):
    return Account(
        device_id=DEVICE,
        server_id="dmgw-test",
        server_url="http://127.0.0.1:8080/dm",
        client=Credentials("md5", "dev", secret),
        server=Credentials("md5", "dmgw-test", "srv-secret"),
    )


class DispatcherTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT)

    async def exchange(self, request):
        token = None
        if "?s=" in request.url:
            token = request.url.split("?s=", 1)[1]
        ctype = request.headers.get("Content-Type")
        encoding = "wbxml" if ctype and "wbxml" in ctype else "xml"
        return await self.dispatcher.handle_dm(
            request.body, encoding=encoding, hmac_header=request.headers.get("x-syncml-hmac"), token=token,
            peer=getattr(self, "peer", None),
        )

    async def drive(self, session, stop_after=None):
        request = session.start()
        count = 0
        while request is not None:
            reply = await self.exchange(request)
            self.assertEqual(reply.code, 200, reply.body)
            count += 1
            if stop_after is not None and count >= stop_after:
                return session
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        return session

    def session(self, acc=None, **kwargs):
        return ClientSession(acc or account(), random_bytes=os.urandom, **kwargs)

    async def test_session_runs_queued_jobs_in_order(self):
        first = await self.handlers.create_job(DEVICE, GET_SWV)
        second = await self.handlers.create_job(
            DEVICE, {"commands": [{"op": "Get", "target": "./DevInfo/Man"}], "notify": "none"}
        )
        session = await self.drive(self.session())
        self.assertEqual(session.outcome, "completed")
        for job_id in (first["id"], second["id"]):
            job = await self.handlers.get_job(job_id)
            self.assertEqual(job["state"], "done")
        executed = [uri for _cmd, uri, _status in session.executed]
        self.assertEqual(executed, ["./DevDetail/SwV", "./DevInfo/Man"])
        self.assertEqual(self.dispatcher._by_device, {})

    async def test_sessions_with_nothing_to_do_keep_nonces_in_step(self):
        # the device offers the server a NextNonce only in a message it sends:
        # a session that ends at package 2 must not leave the nonces apart
        acc = account()
        for _ in range(3):
            session = await self.drive(self.session(acc))
            self.assertEqual(session.outcome, "completed", session.log)
        created = await self.handlers.create_job(DEVICE, GET_SWV)
        session = await self.drive(self.session(acc))
        self.assertEqual(session.outcome, "completed", session.log)
        self.assertEqual((await self.handlers.get_job(created["id"]))["state"], "done")

    async def test_devinfo_is_written_only_when_it_changed(self):
        written = []
        update = self.store._update_device_fields_txn

        def spy(txn, now, device_id, changes):
            written.append(sorted(changes))
            return update(txn, now, device_id, changes)

        self.store._update_device_fields_txn = spy
        acc = account()
        session = await self.drive(self.session(acc))
        self.assertEqual(session.outcome, "completed", session.log)
        self.assertIn("devinfo", written[0])
        reported = (await self.store.get_device(DEVICE)).devinfo
        self.assertEqual(reported["DevId"], DEVICE)
        # the next session reports the same DevInfo: its nonce is written, the DevInfo is not
        del written[:]
        session = await self.drive(self.session(acc))
        self.assertEqual(session.outcome, "completed", session.log)
        self.assertEqual([c for c in written if "devinfo" in c], [])
        self.assertIn("client_nonce", written[0])
        self.assertEqual((await self.store.get_device(DEVICE)).devinfo, reported)
        # a DevInfo the store holds differently is written again
        await self.store.set_devinfo(DEVICE, dict(reported, Mod="older"))
        del written[:]
        session = await self.drive(self.session(acc))
        self.assertEqual(session.outcome, "completed", session.log)
        self.assertIn("devinfo", written[0])
        self.assertEqual((await self.store.get_device(DEVICE)).devinfo, reported)

    async def test_the_session_start_line_is_made_only_at_debug_level(self):
        from twisted.logger import capturedLogs

        from dmgateway import logs

        def lines(events, text):
            return [e for e in events if text in (e.get("log_format") or "")]

        self.addCleanup(logs.set_level, logs.set_level("info"))
        with capturedLogs() as events:
            session = await self.drive(self.session())
        self.assertEqual(session.outcome, "completed", session.log)
        # at info: the one line of the session, at its end; no start event is even built
        self.assertEqual(lines(events, "started: device"), [])
        self.assertEqual(len(lines(events, "ended: {outcome}")), 1)
        logs.set_level("debug")
        with capturedLogs() as events:
            await self.drive(self.session())
        (started,) = lines(events, "started: device")
        self.assertEqual((started["device_id"], started["encoding"], started["jobs"]), (DEVICE, "xml", 0))

    async def test_long_poll_wakes_for_an_event_appended_during_its_query(self):
        after = (await self.store.last_event_seq())
        waiting = self.handlers.wait_events(after, 10, 30)  # queries the store first
        await self.dispatcher.events.append("session", DEVICE, {"outcome": "x"})  # lands during that query
        events = await waiting  # no clock advance: the append itself must wake the poll
        self.assertEqual([e["outcome"] for e in events], ["x"])

    async def test_stored_job_the_engine_refuses_fails_and_the_others_run(self):
        # written straight to the store, past the API's checks: Get inside Atomic
        await self.store.create_job("bad", DEVICE, [{"op": "Get", "target": "./DevInfo/Man"}], atomic=True)
        good = await self.handlers.create_job(DEVICE, GET_SWV)
        session = await self.drive(self.session())
        self.assertEqual(session.outcome, "completed")
        bad = await self.handlers.get_job("bad")
        self.assertEqual((bad["state"], bad["error"]["code"]), ("failed", "invalid_job"))
        self.assertEqual((await self.handlers.get_job(good["id"]))["state"], "done")

    async def test_job_created_during_a_session_joins_it(self):
        first = await self.handlers.create_job(DEVICE, GET_SWV)
        session = self.session()
        request = session.start()
        reply = await self.exchange(request)
        created = await self.handlers.create_job(DEVICE, GET_SWV)
        request = session.receive(reply.body, {"content-type": reply.content_type})
        while request is not None:
            reply = await self.exchange(request)
            request = session.receive(reply.body, {"content-type": reply.content_type})
        for job_id in (first["id"], created["id"]):
            job = await self.handlers.get_job(job_id)
            self.assertEqual(job["state"], "done")
        self.assertEqual(len(session.executed), 2)

    async def test_a_job_cancelled_in_its_live_session_waits_for_the_session_end(self):
        created = await self.handlers.create_job(DEVICE, GET_SWV)
        await self.drive(self.session(), stop_after=1)
        answer = await self.handlers.cancel_job(created["id"])
        self.assertEqual(answer, {"id": created["id"], "state": "running", "cancelled": False,
                                  "cancel": "at_session_end"})
        self.clock.advance(61)  # the device went away: its session times out
        self.assertEqual((await self.handlers.get_job(created["id"]))["state"], "failed")
        self.assertEqual(self.dispatcher._cancel_at_end, {})  # nothing left to cancel

    async def test_a_job_cancelled_in_a_superseded_session_is_run_by_neither(self):
        await self.handlers.create_job(DEVICE, GET_SWV)
        stale = await self.drive(self.session(), stop_after=1)
        joined = await self.handlers.create_job(DEVICE, GET_SWV)  # in the engine, not sent yet
        answer = await self.handlers.cancel_job(joined["id"])
        # (never sent: the session drops it, and it is cancelled at once)
        self.assertEqual(answer, {"id": joined["id"], "state": "failed", "cancelled": True})
        acc = account()
        acc.client.nonce = stale.account.client.nonce
        acc.server.nonce = stale.account.server.nonce
        fresh = await self.drive(self.session(acc))
        self.assertEqual((fresh.outcome, fresh.executed), ("completed", []))
        job = await self.handlers.get_job(joined["id"])
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "cancelled"))
        self.assertEqual(self.dispatcher._cancel_at_end, {})

    async def test_cancels_and_deletes_are_announced_to_the_other_processes(self):
        told = []
        self.dispatcher.events.broadcast = lambda: told.append("events")
        queued = await self.handlers.create_job(DEVICE, GET_SWV)
        await self.handlers.cancel_job(queued["id"])
        self.assertEqual(told, ["events"])
        await self.handlers.create_job(DEVICE, GET_SWV)
        await self.drive(self.session(), stop_after=1)
        in_session = await self.handlers.create_job(DEVICE, GET_SWV)  # joins it, not sent yet
        del told[:]
        await self.handlers.cancel_job(in_session["id"])  # dropped from the session, cancelled at once
        self.assertEqual((await self.handlers.get_job(in_session["id"]))["error"]["code"], "cancelled")
        self.assertEqual(told, ["events"])
        del told[:]
        await self.handlers.delete_device(DEVICE, False)
        self.assertEqual(told, ["events"])

    async def test_deleting_a_device_ends_its_live_session(self):
        await self.handlers.create_job(DEVICE, GET_SWV)
        await self.drive(self.session(), stop_after=1)
        answer = await self.handlers.delete_device(DEVICE, False)
        self.assertEqual(answer["deleted"], True)
        self.assertEqual(self.dispatcher._by_device, {})
        self.assertEqual(self.dispatcher.sessions_ended["device_deleted"], 1)

    async def test_timeout_on_the_injected_clock_fails_the_running_job(self):
        created = await self.handlers.create_job(DEVICE, GET_SWV)
        await self.drive(self.session(), stop_after=1)
        self.assertEqual((await self.handlers.get_job(created["id"]))["state"], "running")
        self.clock.advance(59)
        self.assertIn(DEVICE, self.dispatcher._by_device)
        self.clock.advance(2)
        self.assertNotIn(DEVICE, self.dispatcher._by_device)
        job = await self.handlers.get_job(created["id"])
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["code"], "session_timeout")
        device = await self.handlers.get_device(DEVICE)
        self.assertEqual(device["last_session"]["outcome"], "session_timeout")

    async def test_new_session_supersedes_a_stale_one(self):
        created = await self.handlers.create_job(DEVICE, GET_SWV)
        stale = await self.drive(self.session(), stop_after=1)
        self.assertFalse(stale.finished)
        # the device restarted: a fresh package 1 with another SessionID
        acc = account()
        acc.client.nonce = stale.account.client.nonce
        acc.server.nonce = stale.account.server.nonce
        fresh = await self.drive(self.session(acc))
        self.assertEqual(fresh.outcome, "completed")
        job = await self.handlers.get_job(created["id"])
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["code"], "superseded")
        events = await self.handlers.wait_events(0, 100, 0)
        outcomes = [e.get("outcome") for e in events if e["type"] == "session"]
        self.assertEqual(outcomes, ["superseded", "completed"])

    async def test_unknown_device_gets_status_only_401(self):
        acc = account()
        acc.device_id = "IMEI:999"
        session = self.session(acc)
        reply = await self.exchange(session.start())
        self.assertEqual(reply.code, 200)
        self.assertIn(b"<Data>401</Data>", reply.body)
        self.assertEqual(self.dispatcher._by_device, {})

    async def test_repeated_failures_lock_out_the_failing_address_only(self):
        created = await self.handlers.create_job(DEVICE, GET_SWV)
        self.peer = "127.0.0.2:40000"
        for _ in range(2):
            session = await self.drive(self.session(account(secret="wrong")))
            self.assertEqual(session.executed, [])
        self.assertGreaterEqual(self.dispatcher.stats["auth_failures"], 5)
        # that address is locked out, even with the right secret
        good = await self.drive(self.session())
        self.assertEqual(good.executed, [])
        view = await self.handlers.get_device(DEVICE)
        self.assertEqual([(l["scope"], l["peer"]) for l in view["lockouts"]], [("peer", "127.0.0.2")])
        events = await self.handlers.wait_events(0, 100, 0)
        self.assertEqual([e["peer"] for e in events if e["type"] == "lockout"], ["127.0.0.2"])
        # the real device at another address is not
        self.peer = "127.0.0.1:40001"
        good = await self.drive(self.session())
        self.assertEqual(good.outcome, "completed")
        self.assertEqual((await self.handlers.get_job(created["id"]))["state"], "done")
        # an operator lifts the lockout
        cleared = await self.handlers.clear_lockouts(DEVICE)
        self.assertEqual(cleared["cleared"], 1)
        self.peer = "127.0.0.2:40002"
        good = await self.drive(self.session())
        self.assertEqual(good.outcome, "completed")
        self.assertEqual((await self.handlers.get_device(DEVICE))["lockouts"], [])

    async def test_the_lockout_ends_by_itself(self):
        self.peer = "127.0.0.2:40000"
        for _ in range(2):
            await self.drive(self.session(account(secret="wrong")))
        self.assertEqual((await self.drive(self.session())).executed, [])
        self.clock.advance(901)
        await self.handlers.create_job(DEVICE, GET_SWV)
        good = await self.drive(self.session())
        self.assertEqual(good.outcome, "completed")
        self.assertEqual(len(good.executed), 1)

    async def test_failures_spread_over_addresses_hit_the_device_ceiling(self):
        config = gateway_config(session_timeout=60)
        config = dataclasses.replace(config, auth=AuthConfig(device_max_failures=6))
        self.dispatcher = Dispatcher(self.store, config, clock=self.clock)
        self.handlers = Handlers(self.dispatcher)
        for port in range(4):
            self.peer = "127.0.0.%d:4000" % (port + 2,)
            await self.drive(self.session(account(secret="wrong")), stop_after=2)
        # 8 failures from 4 addresses: none locked alone, the device is (in the store)
        view = await self.handlers.get_device(DEVICE)
        self.assertEqual([l["scope"] for l in view["lockouts"]], ["device"])
        events = await self.handlers.wait_events(0, 100, 0)
        self.assertEqual([e["scope"] for e in events if e["type"] == "lockout"], ["device"])  # once
        self.peer = "127.0.0.1:4000"
        self.assertEqual((await self.drive(self.session())).executed, [])
        await self.handlers.clear_lockouts(DEVICE)
        self.assertEqual((await self.drive(self.session())).outcome, "completed")

    async def test_malformed_body_is_400_and_counted(self):
        reply = await self.dispatcher.handle_dm(b"<SyncML><oops", encoding="xml")
        self.assertEqual(reply.code, 400)
        self.assertIn(b"malformed SyncML message", reply.body)
        self.assertEqual(self.dispatcher.stats["bad_requests"], 1)

    async def test_message_without_a_session_is_refused(self):
        # a package-3 style message (no Alert 1200/1201) while no session is live
        body = (
            b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>'
            b"<SessionID>77</SessionID><MsgID>2</MsgID><Target><LocURI>http://gw/dm</LocURI></Target>"
            b"<Source><LocURI>" + DEVICE.encode() + b"</LocURI></Source></SyncHdr><SyncBody>"
            b"<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>4</CmdRef><Cmd>Get</Cmd><Data>200</Data>"
            b"</Status><Final/></SyncBody></SyncML>"
        )
        reply = await self.dispatcher.handle_dm(body, encoding="xml")
        self.assertEqual(reply.code, 200)
        self.assertIn(b"<Data>403</Data>", reply.body)

    async def test_stop_aborts_live_sessions_explicitly(self):
        created = await self.handlers.create_job(DEVICE, GET_SWV)
        await self.drive(self.session(), stop_after=1)
        await self.dispatcher.stop()
        job = await self.handlers.get_job(created["id"])
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["code"], "shutdown")


    async def test_stray_message_does_not_disturb_the_live_session(self):
        created = await self.handlers.create_job(DEVICE, GET_SWV)
        session = self.session()
        reply = await self.exchange(session.start())
        stray = (
            b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>'
            b"<SessionID>FFFF</SessionID><MsgID>2</MsgID><Target><LocURI>http://gw/dm</LocURI></Target>"
            b"<Source><LocURI>" + DEVICE.encode() + b"</LocURI></Source></SyncHdr><SyncBody><Final/>"
            b"</SyncBody></SyncML>"
        )
        refused = await self.dispatcher.handle_dm(stray, encoding="xml", token="not-the-token")
        self.assertIn(b"<Data>403</Data>", refused.body)
        self.assertIn(DEVICE, self.dispatcher._by_device)
        request = session.receive(reply.body, {"content-type": reply.content_type})
        while request is not None:
            reply = await self.exchange(request)
            request = session.receive(reply.body, {"content-type": reply.content_type})
        self.assertEqual(session.outcome, "completed")
        self.assertEqual((await self.handlers.get_job(created["id"]))["state"], "done")


class FileStoreDispatcherTests(TestCase):
    """
    Sessions on an SQLite file, whose short transactions run on the
    reactor connection: a session's reads and batches never wait for the
    store's thread.  (The other tests here count on an in-memory store
    whose every transaction, even a timeout's, is done at once.)
    """

    timeout = 60
    exchange = DispatcherTests.exchange
    drive = DispatcherTests.drive
    session = DispatcherTests.session
    test_session_runs_queued_jobs_in_order = DispatcherTests.test_session_runs_queued_jobs_in_order
    test_sessions_with_nothing_to_do_keep_nonces_in_step = (
        DispatcherTests.test_sessions_with_nothing_to_do_keep_nonces_in_step
    )
    test_job_created_during_a_session_joins_it = DispatcherTests.test_job_created_during_a_session_joins_it

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path):
        self.tmp_path = tmp_path

    @defer.inlineCallbacks
    def setUp(self):
        path = self.tmp_path / "store.db"
        yield start_dispatcher(self, DEVICE, ACCOUNT, store_uri=f"sqlite:{path}")

    async def test_a_session_runs_without_the_pool(self):
        await self.handlers.create_job(DEVICE, GET_SWV)
        pool = self.store._pool
        real = pool.runInteraction
        on_pool = []

        def counted(interaction, func, args):
            on_pool.append(func)
            return real(interaction, func, args)

        pool.runInteraction = counted
        self.addCleanup(setattr, pool, "runInteraction", real)
        session = await self.drive(self.session())
        self.assertEqual(session.outcome, "completed")
        self.assertEqual(on_pool, [])
        self.assertEqual(self.store._direct.fallbacks, 0)
        await self.store.list_devices()  # (an API listing: on the pool)
        self.assertEqual(on_pool, [self.store._list_devices_txn])


class BadRequestTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.store = yield open_store("sqlite::memory:?inline=1", reactor=reactor)
        self.addCleanup(self.store.close)
        self.dispatcher = Dispatcher(self.store, gateway_config(), clock=task.Clock())
        self.handlers = Handlers(self.dispatcher)

    async def test_invalid_body_with_a_readable_header_gets_a_syncml_400(self):
        body = (
            b"<SyncML xmlns='SYNCML:SYNCML1.2'><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>"
            b"<SessionID>0</SessionID><MsgID>3</MsgID><Target><LocURI>http://gw/dm</LocURI></Target>"
            b"<Source><LocURI>IMEI:1</LocURI></Source></SyncHdr><SyncBody><Alert><Data>12x01</Data>"
            b"</Alert></SyncBody></SyncML>"
        )
        from dmgateway.codec import xml

        reply = await self.dispatcher.handle_dm(body, encoding="xml")
        self.assertEqual(reply.code, 200)  # SyncML, if invalid: a SyncML answer (DESIGN §4)
        answer = xml.decode(reply.body)
        self.assertEqual(answer.hdr.session_id, "0")
        self.assertEqual(answer.hdr.target.loc_uri, "IMEI:1")
        (status,) = answer.body
        self.assertEqual((status.cmd, status.msg_ref, status.data), ("SyncHdr", "3", 400))

    async def test_invalid_wbxml_with_a_readable_header_gets_a_wbxml_400(self):
        from dmgateway.codec import wbxml, xml

        good = xml.parse(
            b"<SyncML xmlns='SYNCML:SYNCML1.2'><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>"
            b"<SessionID>5</SessionID><MsgID>1</MsgID><Target><LocURI>http://gw/dm</LocURI></Target>"
            b"<Source><LocURI>IMEI:2</LocURI></Source></SyncHdr><SyncBody><Status><CmdID>1</CmdID>"
            b"<Data>200</Data></Status></SyncBody></SyncML>"
        )
        from dmgateway.codec.wbxml_pages import SYNCML12

        body = wbxml.encode_node(good, SYNCML12)
        reply = await self.dispatcher.handle_dm(body, encoding="wbxml")
        self.assertEqual(reply.code, 200)
        self.assertEqual(wbxml.decode(reply.body).body[0].data, 400)

    async def test_only_session_id_and_source_are_needed_for_a_syncml_answer(self):
        from dmgateway.codec import xml

        body = (
            b"<SyncML><SyncHdr><SessionID>9</SessionID><Source><LocURI>IMEI:3</LocURI></Source>"
            b"</SyncHdr><SyncBody/></SyncML>"
        )
        reply = await self.dispatcher.handle_dm(body, encoding="xml")
        self.assertEqual(reply.code, 200)
        answer = xml.decode(reply.body)
        self.assertEqual((answer.hdr.session_id, answer.hdr.target.loc_uri), ("9", "IMEI:3"))
        self.assertEqual(answer.hdr.source.loc_uri, self.dispatcher.config.gateway.public_url)
        (status,) = answer.body
        self.assertEqual((status.msg_ref, status.data), (None, 400))
        no_source = body.replace(b"<Source><LocURI>IMEI:3</LocURI></Source>", b"")
        self.assertEqual((await self.dispatcher.handle_dm(no_source, encoding="xml")).code, 400)

    async def test_garbage_gets_plain_400(self):
        reply = await self.dispatcher.handle_dm(b"\x03\x00garbage", encoding="wbxml")
        self.assertEqual(reply.code, 400)
        self.assertTrue(reply.content_type.startswith("text/plain"))



class LeftJobTests(TestCase):
    """Jobs a session does not run must still wake the device: a real outbox
    with fake bearers, a real SQLite store, an injected clock."""

    timeout = 60

    async def setUp(self):
        from tests.outbox.test_service import FakeBearer, config, open_outbox

        cfg = config()
        cfg = dataclasses.replace(cfg, gateway=dataclasses.replace(cfg.gateway, session_timeout=60))
        self.sip = FakeBearer("sip", "sip_uri")
        await open_outbox(self, cfg, {"sip": self.sip}, lambda n: bytes(range(n)), uri="sqlite::memory:?inline=1")
        await self.handlers.put_device(DEVICE, dict(ACCOUNT, sip_uri="sip:dev@example.net"))

    exchange = DispatcherTests.exchange
    drive = DispatcherTests.drive
    session = DispatcherTests.session

    async def test_job_created_while_the_last_reply_is_recorded_is_notified(self):
        # the session ended with this message; its effects are being written
        # when the job comes: it must not go to the engine that is over
        original, late = self.dispatcher._apply, []

        async def apply(live, effects):
            if not late and any(isinstance(e, fx.SessionEnded) for e in effects):
                late.append(await self.handlers.create_job(DEVICE, AUTO_JOB))
            await original(live, effects)

        self.dispatcher._apply = apply
        session = await self.drive(self.session())
        self.assertEqual(session.outcome, "completed")
        self.assertEqual(len(late), 1)
        await self.outbox.tick()
        self.assertEqual([address for address, _ in self.sip.sent], ["sip:dev@example.net"])
        self.assertEqual((await self.handlers.get_job(late[0]["id"]))["state"], "notified")

    async def test_job_that_joined_a_session_which_timed_out_is_notified(self):
        first = await self.handlers.create_job(DEVICE, GET_SWV)
        await self.drive(self.session(), stop_after=1)
        joined = await self.handlers.create_job(DEVICE, AUTO_JOB)  # goes to the live session
        await self.outbox.tick()
        self.assertEqual(self.sip.sent, [])
        lock = self.dispatcher._locks[DEVICE]
        self.clock.advance(61)
        await lock.run(lambda: defer.succeed(None))  # the timeout's handling is done
        self.assertEqual((await self.handlers.get_job(first["id"]))["error"]["code"], "session_timeout")
        await self.outbox.tick()
        self.assertEqual(len(self.sip.sent), 1)
        self.assertEqual((await self.handlers.get_job(joined["id"]))["state"], "notified")
        self.assertNotIn(DEVICE, self.dispatcher._locks)

    async def test_superseded_session_leaves_its_jobs_to_the_new_one(self):
        await self.handlers.create_job(DEVICE, GET_SWV)
        stale = await self.drive(self.session(), stop_after=1)
        joined = await self.handlers.create_job(DEVICE, AUTO_JOB)
        acc = account()
        acc.client.nonce = stale.account.client.nonce
        acc.server.nonce = stale.account.server.nonce
        fresh = await self.drive(self.session(acc))
        self.assertEqual(fresh.outcome, "completed")
        await self.outbox.tick()
        self.assertEqual(self.sip.sent, [])
        self.assertEqual((await self.handlers.get_job(joined["id"]))["state"], "done")
