"""The notification outbox (its service) with fake bearers, a real SQLite store and an
injected clock: sent/notified, retries with backoff, fallback, delivery
receipts, re-notification with the same session id, expiry, restart."""

import dataclasses
from types import SimpleNamespace

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from dmgateway.config.gateway import NotifyConfig
from dmgateway.dispatch import Dispatcher
from dmgateway.handlers import Handlers
from dmgateway.outbox import SEND_CONCURRENCY, NotificationOutbox
from dmgateway.notify import package0
from dmgateway.store import open_store
from tests import fixtures
from tests.fixtures import API_DEVICE as DEVICE
from tests.support import gateway_config

ACCOUNT = dict(fixtures.ACCOUNT, msisdn="+447700900001", sip_uri="sip:dev1@example.net",
               server_auth=dict(fixtures.ACCOUNT["server_auth"], nonce="AAECAwQFBgc="))
JOB = {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}], "notify": "auto"}


class FakeBearer:
    """Records what it is asked to send; fails as scripted."""

    def __init__(self, name, field):
        self.name = name
        self.field = field
        self.sent = []
        self.script = []  # answers, in order, before succeeding: ("retry" | "refused", reason)

    def address(self, device):
        return getattr(device, self.field)

    def send(self, address, trigger, report):
        if self.script:
            answer, reason = self.script.pop(0)
            getattr(report, answer)(reason)
            return
        self.sent.append((address, trigger))
        report.sent(["%s-%d" % (self.name, len(self.sent))])


def answered_later(pending):
    """A bearer's ``send`` that answers when the test fires the Deferred it appends to ``pending``."""

    def send(address, trigger, report):
        d = defer.Deferred()
        d.addCallback(report.sent)
        pending.append(d)

    return send


def config(**notify):
    cfg = gateway_config()
    values = dict(
        auto_order=("sip", "sms"),
        retry_initial=5.0,
        retry_max=60.0,
        max_attempts=3,
        renotify_after=300,
        max_notifications=2,
        scan_interval=5.0,
    )
    values.update(notify)
    return dataclasses.replace(cfg, notify=NotifyConfig(**values))


async def open_outbox(case, cfg, bearers, random_bytes=lambda n: bytes(range(7, 7 + n)), uri="sqlite::memory:"):
    """An in-memory SQLite store (``uri``) on a ``task.Clock`` at 1,700,000,000 s
    (closed with the test), then :func:`wire_outbox`: sets ``case.clock``,
    ``case.store``, ``case.dispatcher``, ``case.handlers`` and ``case.outbox``."""
    case.clock = task.Clock()
    case.clock.advance(1_700_000_000)
    # the store stamps rows with the same clock the outbox reads
    case.store = await open_store(uri, reactor=reactor, clock=case.clock)
    case.addCleanup(case.store.close)
    wire_outbox(case, cfg, bearers, random_bytes)


def wire_outbox(case, cfg, bearers, random_bytes):
    """A Dispatcher, its Handlers and its NotificationOutbox over ``case.store`` (a process starting)."""
    case.dispatcher = Dispatcher(case.store, cfg, clock=case.clock)
    case.handlers = Handlers(case.dispatcher)
    case.outbox = NotificationOutbox(case.store, cfg, case.clock, bearers, case.dispatcher.is_live,
                                     case.dispatcher.events.announce, random_bytes)
    case.dispatcher.outbox = case.outbox


class OutboxTests(TestCase):
    timeout = 60

    async def setUp(self):
        self.sms = FakeBearer("sms", "msisdn")
        self.sip = FakeBearer("sip", "sip_uri")
        await open_outbox(self, config(), {"sms": self.sms, "sip": self.sip})
        await self.handlers.put_device(DEVICE, ACCOUNT)

    def make(self, cfg):
        return self.make_with({"sms": self.sms, "sip": self.sip}, cfg)

    def make_with(self, bearers, cfg=None):
        """A process starting over the same store with ``bearers``."""
        wire_outbox(self, cfg or config(), bearers, lambda n: bytes(range(7, 7 + n)))
        return defer.succeed(None)

    async def settle(self):
        await self.outbox.tick()

    async def job(self, job_id):
        return await self.handlers.get_job(job_id)

    async def test_auto_prefers_sip_and_the_job_becomes_notified(self):
        created = await self.handlers.create_job(DEVICE, JOB)
        await self.settle()
        self.assertEqual(len(self.sip.sent), 1)
        self.assertEqual(self.sms.sent, [])
        address, trigger = self.sip.sent[0]
        self.assertEqual(address, "sip:dev1@example.net")
        job = await self.job(created["id"])
        self.assertEqual(job["state"], "notified")
        (note,) = job["notifications"]
        self.assertEqual((note["bearer"], note["state"], note["attempts"]), ("sip", "sent", 1))
        # the digest verifies with the device's SRVCRED and nonce
        parsed = package0.parse(trigger.package0)
        credential = package0.ServerCredential("dmgw-test", bytes(range(8)), secret="srv-secret")
        self.assertIsNotNone(package0.verify(parsed, credential))
        self.assertEqual(parsed.notification.server_id, "dmgw-test")

    async def send_counting_transactions(self):
        """Send the one due notification; return the store transactions it took."""
        (n,) = await self.store.due_notifications(self.clock.seconds(), 10)
        counted = []
        self.store.on_transaction = lambda seconds, failed: counted.append(failed)
        try:
            await self.outbox._send(n)
        finally:
            self.store.on_transaction = None
        return counted

    async def test_a_wake_up_is_one_claim_and_one_batch(self):
        self.outbox.tick = lambda: None  # the test sends
        created = await self.handlers.create_job(DEVICE, JOB)
        self.assertEqual(await self.send_counting_transactions(), [False, False])
        job = await self.job(created["id"])
        self.assertEqual((job["state"], job["notifications"][0]["state"]), ("notified", "sent"))
        events = [e for e in await self.store.events_after(0, 100) if e["type"] == "notification"]
        self.assertEqual([(e["bearer"], e["state"]) for e in events], [("sip", "sent")])

    async def test_a_refused_wake_up_and_its_fallback_are_one_claim_and_one_batch(self):
        self.outbox.tick = lambda: None
        self.sip.script = [("refused", "SIP 404 Not Found")]
        created = await self.handlers.create_job(DEVICE, JOB)
        self.assertEqual(await self.send_counting_transactions(), [False, False])
        job = await self.job(created["id"])
        self.assertEqual([(n["bearer"], n["state"]) for n in job["notifications"]],
                         [("sip", "failed"), ("sms", "queued")])

    async def test_explicit_sms_sends_wap_push_segments(self):
        created = await self.handlers.create_job(DEVICE, dict(JOB, notify="sms"))
        await self.settle()
        (address, trigger), = self.sms.sent
        self.assertEqual(address, "+447700900001")
        self.assertEqual(trigger.esm_class, 0x40)
        self.assertTrue(all(len(p) <= 140 for p in trigger.payloads))
        self.assertEqual((await self.job(created["id"]))["notifications"][0]["message_id"], "sms-1")

    async def test_a_pass_keeps_several_sends_in_flight_at_most_the_bound(self):
        # a bearer that answers later (an SMPP link with a window): the pass
        # does not wait for one answer before sending the next
        pending = []
        self.sms.send = answered_later(pending)
        count = SEND_CONCURRENCY + 2
        self.outbox.tick = lambda: None  # queue them all first
        for n in range(count):
            device = "IMEI:3500000000001%02d" % (n,)
            await self.handlers.put_device(device, dict(ACCOUNT, msisdn="+4477009001%02d" % (n,)))
            await self.handlers.create_job(device, dict(JOB, notify="sms"))
        del self.outbox.tick
        passing = self.outbox.tick()
        for _ in range(500):
            if len(pending) >= SEND_CONCURRENCY:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        await task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(len(pending), SEND_CONCURRENCY)
        while len(pending) < count or not all(d.called for d in pending):
            for d in pending:
                if not d.called:
                    d.callback(["sms-x"])
            await task.deferLater(reactor, 0.01, lambda: None)
        await passing
        self.assertEqual(len(pending), count)
        notified = [n for n in await self.store.due_notifications(self.clock.seconds() + 1, 100)]
        self.assertEqual(notified, [])

    async def test_store_outage_is_one_line_per_outage_not_a_traceback_per_pass(self):
        from twisted.logger import globalLogPublisher

        from dmgateway.store.model import StoreUnavailable

        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        real = self.store.due_notifications

        def down(*args, **kwargs):
            return defer.fail(StoreUnavailable("OperationalError: database or disk is full"))

        self.store.due_notifications = down
        for _ in range(5):
            await self.outbox.tick()
        self.store.due_notifications = real
        await self.outbox.tick()
        formats = [e.get("log_format", "") for e in logged]
        self.assertEqual(sum("store is unavailable" in f for f in formats), 1)
        self.assertEqual(sum("available again" in f for f in formats), 1)
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_store_contention_is_one_line_not_a_traceback_nor_an_outage(self):
        # (a PostgreSQL transaction that lost to concurrent ones every time
        # the store ran it: the next pass tries again)
        from twisted.logger import globalLogPublisher

        from dmgateway.store.model import StoreContention

        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        real = self.store.due_notifications

        def losing(*args, **kwargs):
            return defer.fail(StoreContention("DeadlockDetected: deadlock detected", "40P01"))

        self.store.due_notifications = losing
        await self.outbox.tick()
        self.store.due_notifications = real
        await self.outbox.tick()
        self.assertEqual(self.flushLoggedErrors(), [])
        lines = [e for e in logged if "next pass tries again" in e.get("log_format", "")]
        self.assertEqual([(e["log_level"].name, e["error"]) for e in lines],
                         [("warn", "DeadlockDetected: deadlock detected")])
        formats = [e.get("log_format", "") for e in logged]
        self.assertFalse(any("unavailable" in f or "available again" in f for f in formats))

    async def test_temporary_failures_back_off_then_succeed(self):
        self.sip.script = [("retry", "throttled"), ("retry", "throttled")]
        created = await self.handlers.create_job(DEVICE, JOB)
        await self.settle()
        self.assertEqual(self.sip.sent, [])
        self.clock.advance(4)
        await self.settle()
        self.assertEqual(self.sip.sent, [])  # first retry after 5 s
        self.clock.advance(1)
        await self.settle()
        self.clock.advance(10)  # second retry after 10 s
        await self.settle()
        self.assertEqual(len(self.sip.sent), 1)
        note = (await self.job(created["id"]))["notifications"][0]
        self.assertEqual((note["state"], note["attempts"]), ("sent", 3))

    async def test_permanent_failure_falls_back_to_sms_with_the_same_session_id(self):
        self.sip.script = [("refused", "SIP 404 Not Found")]
        created = await self.handlers.create_job(DEVICE, JOB)
        await self.settle()
        await self.settle()
        self.assertEqual(len(self.sms.sent), 1)
        job = await self.job(created["id"])
        states = [(n["bearer"], n["state"]) for n in job["notifications"]]
        self.assertEqual(states, [("sip", "failed"), ("sms", "sent")])
        self.assertEqual(job["notifications"][0]["last_error"], "SIP 404 Not Found")
        rows = await self.store.notifications_for_job(created["id"])
        self.assertEqual(rows[0].push_session_id, rows[1].push_session_id)

    async def test_every_bearer_failing_fails_the_job_with_the_reason(self):
        self.sip.script = [("refused", "SIP 403")]
        self.sms.script = [("refused", "ESME_RINVDSTADR")]
        created = await self.handlers.create_job(DEVICE, JOB)
        await self.settle()
        await self.settle()
        job = await self.job(created["id"])
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["code"], "notification_failed")
        self.assertIn("ESME_RINVDSTADR", job["error"]["message"])

    async def test_delivery_receipt_marks_delivered(self):
        created = await self.handlers.create_job(DEVICE, dict(JOB, notify="sms"))
        await self.settle()
        await self.outbox.delivery_report("sms", "sms-1", True)
        note = (await self.job(created["id"]))["notifications"][0]
        self.assertEqual(note["state"], "delivered")
        events = await self.handlers.wait_events(0, 100, 0)
        self.assertIn("delivered", [e.get("state") for e in events if e["type"] == "notification"])

    async def test_a_bearer_reports_receipts_through_the_callback_it_was_given(self):
        from dmgateway.bearers.wake import SmsBearer

        submitted = []
        sender = SimpleNamespace(submit=lambda address, payloads, **options: submitted.append(address) or ["m-7"])
        sms = SmsBearer(sender)
        self.make_with({"sms": sms})
        created = await self.handlers.create_job(DEVICE, dict(JOB, notify="sms"))
        await self.settle()
        self.assertEqual(submitted, [ACCOUNT["msisdn"]])
        sms.smpp_receipt("m-7", "delivered", None)  # what the SMPP link calls
        for _ in range(100):
            note = (await self.job(created["id"]))["notifications"][0]
            if note["state"] == "delivered":
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        self.assertEqual((note["state"], note["message_id"]), ("delivered", "m-7"))

    async def test_device_that_never_comes_is_notified_again_then_expires(self):
        created = await self.handlers.create_job(DEVICE, dict(JOB, notify="sms"))
        await self.settle()
        self.clock.advance(299)
        await self.settle()
        self.assertEqual(len(self.sms.sent), 1)  # renotify_after (300 s) not reached
        # the check runs at most every min(renotify_after / 4, 60) s: within a minute
        self.clock.advance(60)
        await self.settle()  # queues the second notification
        await self.settle()  # sends it
        self.assertEqual(len(self.sms.sent), 2)
        first, second = [package0.parse(t.package0).notification.push_session_id for _a, t in self.sms.sent]
        self.assertEqual(first, second)
        self.clock.advance(361)
        await self.settle()
        job = await self.job(created["id"])
        self.assertEqual(job["state"], "expired")
        self.assertEqual(job["error"]["code"], "device_unreachable")

    async def test_notify_none_and_unreachable_devices(self):
        await self.handlers.create_job(DEVICE, dict(JOB, notify="none"))
        await self.settle()
        self.assertEqual(self.sip.sent + self.sms.sent, [])
        await self.handlers.put_device("IMEI:2", dict(ACCOUNT, msisdn=None, sip_uri=None))
        created = await self.handlers.create_job("IMEI:2", JOB)
        await self.settle()
        self.assertEqual((await self.job(created["id"]))["state"], "queued")
        events = await self.handlers.wait_events(0, 100, 0)
        self.assertIn("no_bearer", [e.get("error") for e in events if e["type"] == "notification"])

    async def test_queued_notifications_survive_a_restart(self):
        self.sip.script = [("retry", "link down")]
        created = await self.handlers.create_job(DEVICE, JOB)
        await self.settle()
        # a new process over the same store picks the queued notification up
        await self.make(config())
        self.clock.advance(5)
        await self.settle()
        self.assertEqual(len(self.sip.sent), 1)
        self.assertEqual((await self.job(created["id"]))["state"], "notified")

    async def test_loop_runs_on_the_clock(self):
        self.outbox.start()
        self.addCleanup(self.outbox.stop)
        await self.handlers.create_job(DEVICE, JOB)
        await self.outbox._running
        self.assertEqual(len(self.sip.sent), 1)

    async def test_session_id_is_never_zero(self):
        self.outbox.random_bytes = lambda n: bytes(n)
        created = await self.handlers.create_job(DEVICE, JOB)
        await self.settle()
        (row,) = await self.store.notifications_for_job(created["id"])
        self.assertEqual(row.push_session_id, 1)
        self.assertEqual(len(self.sip.sent), 1)

    async def test_device_in_a_session_is_not_notified(self):
        added = []  # as if a session were live (its device authenticated): the job joins it
        self.dispatcher._by_device[DEVICE] = SimpleNamespace(engine=SimpleNamespace(add_job=added.append),
                                                             authenticated=True, pending_jobs=[])
        created = await self.handlers.create_job(DEVICE, JOB)
        await self.settle()
        self.assertEqual([job.job_id for job in added], [created["id"]])
        self.assertEqual(self.sip.sent + self.sms.sent, [])
        self.assertEqual((await self.job(created["id"]))["notifications"], [])
        del self.dispatcher._by_device[DEVICE]

    async def test_two_processes_sharing_the_store_send_once(self):
        other_sip = FakeBearer("sip", "sip_uri")
        other = NotificationOutbox(
            self.store, config(), self.clock, {"sip": other_sip, "sms": FakeBearer("sms", "msisdn")},
            self.dispatcher.is_live, self.dispatcher.events.announce, lambda n: bytes(range(n)),
        )
        self.dispatcher.outbox = None  # the job and its notification, queued by neither
        created = await self.handlers.create_job(DEVICE, JOB)
        await self.store.add_notification(
            DEVICE, "sip", b"", job_id=created["id"], push_session_id=7, next_attempt_at=self.clock.seconds()
        )
        await defer.gatherResults([defer.ensureDeferred(self.outbox._tick()), defer.ensureDeferred(other._tick())])
        self.assertEqual(len(self.sip.sent) + len(other_sip.sent), 1)

    async def test_a_bearer_held_by_another_process_is_left_to_it(self):
        # [gateway] cluster: this process does not hold the SMPP lease
        self.sms.held = False
        created = await self.handlers.create_job(DEVICE, dict(JOB, notify="sms"))
        await self.settle()
        self.assertEqual(self.sms.sent, [])
        (note,) = (await self.job(created["id"]))["notifications"]
        self.assertEqual(note["state"], "queued")  # in the store, for the holder
        self.sms.held = True  # the lease came here
        await self.settle()
        self.assertEqual(len(self.sms.sent), 1)

    async def test_renotification_runs_only_where_the_timers_lease_is(self):
        self.outbox.runs_timers = lambda: False
        await self.handlers.create_job(DEVICE, dict(JOB, notify="sms"))
        await self.settle()
        self.clock.advance(400)
        await self.settle()
        await self.settle()
        self.assertEqual(len(self.sms.sent), 1)  # another process renotifies
        self.outbox.runs_timers = lambda: True
        self.clock.advance(60)
        await self.settle()
        await self.settle()
        self.assertEqual(len(self.sms.sent), 2)

    async def test_a_trigger_that_cannot_be_built_fails_without_blocking_the_outbox(self):
        # 200 two-byte characters: a valid account, but over package #0's 255-byte server id
        await self.handlers.put_device("IMEI:2", dict(ACCOUNT, server_id="\u00e9" * 200))
        bad = await self.handlers.create_job("IMEI:2", dict(JOB, notify="sms"))
        good = await self.handlers.create_job(DEVICE, dict(JOB, notify="sms"))
        await self.settle()  # the pass the first job started
        await self.settle()
        self.assertEqual([a for a, _t in self.sms.sent], ["+447700900001"])
        self.assertEqual((await self.job(good["id"]))["state"], "notified")
        job = await self.job(bad["id"])
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["code"], "notification_failed")
        (note,) = job["notifications"]
        self.assertEqual(note["state"], "failed")
        self.assertIn("server id", note["last_error"])

    async def test_a_failed_delivery_receipt_does_not_leave_the_job_notified_forever(self):
        created = await self.handlers.create_job(DEVICE, dict(JOB, notify="sms"))
        await self.settle()
        await self.outbox.delivery_report("sms", "sms-1", False, "status 70")
        for _ in range(10):
            self.clock.advance(300)
            await self.settle()
        job = await self.job(created["id"])
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["code"], "notification_failed")
        self.assertIn("status 70", job["error"]["message"])

    async def test_a_failed_delivery_receipt_falls_back_to_the_next_bearer(self):
        await self.make(config(auto_order=("sms", "sip")))
        self.sip.script = [("refused", "SIP 404 Not Found")]
        created = await self.handlers.create_job(DEVICE, JOB)
        await self.settle()
        self.assertEqual(len(self.sms.sent), 1)
        await self.outbox.delivery_report("sms", "sms-1", False, "undeliverable")
        await self.settle()
        job = await self.job(created["id"])
        states = [(n["bearer"], n["state"]) for n in job["notifications"]]
        self.assertEqual(states, [("sms", "failed"), ("sip", "failed")])
        self.assertEqual(job["state"], "failed")

    async def test_a_failed_receipt_of_an_earlier_copy_leaves_the_job_alone(self):
        created = await self.handlers.create_job(DEVICE, dict(JOB, notify="sms"))
        await self.settle()
        self.clock.advance(360)
        await self.settle()  # queues the second copy
        await self.settle()  # sends it
        self.assertEqual(len(self.sms.sent), 2)
        await self.outbox.delivery_report("sms", "sms-1", False, "expired")
        await self.settle()
        job = await self.job(created["id"])
        self.assertEqual(job["state"], "notified")
        self.assertEqual([n["state"] for n in job["notifications"]], ["failed", "sent"])

    async def test_a_receipt_that_overtakes_the_submit_result_is_not_lost(self):
        # segment 1 is accepted and delivered before the SMSC answers segment 2:
        # the receipt names a message id the outbox has not stored yet
        pending = defer.Deferred()
        self.sms.send = lambda address, trigger, report: pending.addCallback(report.sent)
        created = await self.handlers.create_job(DEVICE, dict(JOB, notify="sms"))
        running = self.outbox.tick()
        await self.outbox.delivery_report("sms", "m-1", True)
        pending.callback(["m-1", "m-2"])
        await running
        (note,) = (await self.job(created["id"]))["notifications"]
        self.assertEqual((note["state"], note["message_id"]), ("delivered", "m-1"))

    async def test_a_failed_receipt_while_the_device_is_in_session_leaves_the_job_to_the_session(self):
        # the device came (another job's wake-up, or by itself) before the network gave up on
        # this job's SMS: failing the job now would keep the session from recording the job it
        # runs (a failed job cannot become running), so it waits for the session
        created = await self.handlers.create_job(DEVICE, dict(JOB, notify="sms"))
        await self.settle()
        live = SimpleNamespace(device_id=DEVICE, authenticated=True)
        self.dispatcher._by_device[DEVICE] = live
        await self.outbox.delivery_report("sms", "sms-1", False, "undeliverable")
        await self.settle()
        job = await self.job(created["id"])
        self.assertEqual(job["state"], "notified")
        self.assertEqual([n["state"] for n in job["notifications"]], ["failed"])
        # the session ends without having started it: the device is woken again
        del self.dispatcher._by_device[DEVICE]
        await self.dispatcher._wake_for_jobs_left(live)
        await self.settle()
        job = await self.job(created["id"])
        self.assertEqual(job["state"], "notified")
        self.assertEqual([n["state"] for n in job["notifications"]], ["failed", "sent"])
        self.assertEqual(len(self.sms.sent), 2)


class StrangerSessionTests(TestCase):
    """A stranger's package 1 with wrong credentials leaves a session waiting
    for the device: it must not hold back the device's wake-ups."""

    timeout = 60
    setUp = OutboxTests.setUp
    make = OutboxTests.make
    settle = OutboxTests.settle
    job = OutboxTests.job

    async def stranger_waits(self):
        import os

        from dmgateway.client import ClientSession
        from dmgateway.client.account import Account, Credentials

        acc = Account(device_id=DEVICE, server_id=ACCOUNT["server_id"], server_url="http://127.0.0.1:8080/dm",
                      client=Credentials(ACCOUNT["client_auth"]["type"], ACCOUNT["client_auth"]["name"], "wrong"),
                      server=Credentials(ACCOUNT["server_auth"]["type"], ACCOUNT["server_auth"]["name"],
                                         ACCOUNT["server_auth"]["secret"]))
        stranger = ClientSession(acc, random_bytes=os.urandom)
        reply = await self.dispatcher.handle_dm(stranger.start().body, encoding="xml", peer="127.0.0.2:5000")
        self.assertIn(b"<Data>401</Data>", reply.body)
        self.assertIn(DEVICE, self.dispatcher._by_device)
        self.assertFalse(self.dispatcher.is_live(DEVICE))

    async def test_a_new_job_is_notified_while_a_stranger_waits_in_a_session(self):
        await self.stranger_waits()
        created = await self.handlers.create_job(DEVICE, JOB)
        await self.settle()
        self.assertEqual(len(self.sip.sent), 1)
        self.assertEqual((await self.job(created["id"]))["state"], "notified")

    async def test_a_function_job_is_notified_while_a_stranger_waits_in_a_session(self):
        """The job of an operation (queued outside the API) wakes the device too."""
        from dmgateway.config.services import FunctionsConfig
        from dmgateway.devfunctions import FunctionService

        await self.stranger_waits()
        service = FunctionService(self.handlers, FunctionsConfig(timeout=3600), self.clock)
        view = await service.start_operation(DEVICE, {"function": "lawmo", "action": "fully_lock"})
        await self.settle()
        self.assertEqual(len(self.sip.sent), 1)
        self.assertEqual((await self.job(view["id"]))["state"], "notified")
