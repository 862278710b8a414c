"""A cancel left to the end of a session belongs to that session, not to
its device: an older session of the device whose end is written late (a
repair after the store failed) does not apply the cancels of the session
live now; and a job whose session's end is being written (or waits for
the store) is cancelled at that end (202), not refused as finished (409).
A stranger's package 1 for the device gains no say in either."""

import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.store.model import Conflict, StoreContention, StoreUnavailable
from tests.fixtures import ACCOUNT, DEVICE
from tests.support import start_dispatcher
from tests.test_dispatch import GET_SWV, account
from tests.test_dispatch_contention import _contention
from tests.test_dispatch_security import CommitWrapped, FailingStore, HeldStore
from tests.test_dispatch_withdraw import held_once

GET_MAN = {"commands": [{"op": "Get", "target": "./DevInfo/Man"}], "notify": "none"}


class GatewayCase(TestCase):
    """A dispatcher on an in-memory store as :meth:`wrap` wraps it, the
    device provisioned with one job (``self.job``), a clock of its own."""

    timeout = 60

    def wrap(self, real):
        """The store the dispatcher gets, around the real one."""
        raise NotImplementedError

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, DEVICE, ACCOUNT, wrap=self.wrap)
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


class CancelAtSessionEndTests(GatewayCase):
    def wrap(self, real):
        self.held = HeldStore(real)  # batch commits wait while .held is unfired
        store = FailingStore(self.held)  # everything fails while .down
        store.error = _contention  # (no outage: a new session may open while a repair waits)
        return store

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

    async def new_session_while_an_end_waits(self):
        """The device's session that sent self.job is over, its end waiting
        for the probe (a repair that lost twice); a new session of the device
        sends a second job: (the old session, the second job, the new
        session, its next request)."""
        old = await self.end_written_later()
        self.store.down = True
        self.clock.advance(0)  # its repair loses again: next try at the probe
        self.store.down = False
        second = (await self.handlers.create_job(DEVICE, GET_MAN))["id"]
        session, request = await self.device_session()
        return old, second, session, request

    async def both_ends_written(self, second):
        """The probe writes what waits: self.job and ``second`` end done, nothing left here."""
        self.clock.advance(self.dispatcher.outage.retry_after)
        self.assertEqual(self.dispatcher._repairs, [])
        self.assertEqual([await self.state(job_id) for job_id in (self.job, second)],
                         [("done", None), ("done", None)])
        self.assertEqual((self.dispatcher._cancel_at_end, self.dispatcher._ending), ({}, {}))

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

    # -- 2. a cancel while the end of the session that sent the job is written ------

    async def test_a_cancel_while_the_sessions_end_is_written_is_left_to_that_end(self):
        _session, request = await self.device_session()
        self.held.held = defer.Deferred()  # the store takes the end's write, but has not committed it
        ending = defer.ensureDeferred(self.send(request))  # the results: the session's last message
        self.assertNotIn(DEVICE, self.dispatcher._by_device)
        self.assertEqual(await self.state(self.job), ("running", None))
        answer = await self.handlers.cancel_job(self.job)
        # (before: {"state": "running", "cancelled": False}, a 409 job_finished
        # for a job that had not finished)
        self.assertEqual(answer, {"id": self.job, "state": "running", "cancelled": False,
                                  "cancel": "at_session_end"})
        held, self.held.held = self.held.held, None
        held.callback(None)
        self.assertEqual((await ending).code, 200)
        # the end finished the job (the device's results): nothing was left to cancel
        self.assertEqual(await self.state(self.job), ("done", None))
        self.assertEqual(self.dispatcher._cancel_at_end, {})
        self.assertEqual(self.dispatcher._ending, {})
        # asked again, once the end is written: finished (409)
        self.assertEqual(await self.handlers.cancel_job(self.job),
                         {"id": self.job, "state": "done", "cancelled": False})

    async def test_a_cancel_read_before_the_end_but_asked_after_it_finds_the_job_finished(self):
        # the end, which finishes the job, is written between the cancel's
        # read of the job (running) and its question: the job is finished (409)
        _session, request = await self.device_session()
        self.held.held = defer.Deferred()
        ending = defer.ensureDeferred(self.send(request))
        gates = held_once(self, "get_job", lambda job_id: job_id == self.job)
        cancelling = self.handlers.cancel_job(self.job)  # reads "running", answered later
        self.assertEqual(len(gates), 1)
        held, self.held.held = self.held.held, None
        held.callback(None)
        self.assertEqual((await ending).code, 200)
        self.assertEqual(self.dispatcher._ending, {})
        gates[0].callback(None)
        self.assertEqual(await cancelling, {"id": self.job, "state": "done", "cancelled": False})
        self.assertEqual(await self.state(self.job), ("done", None))
        self.assertEqual(self.dispatcher._cancel_at_end, {})

    async def test_a_cancel_while_the_sessions_end_waits_for_a_repair_is_left_to_that_end(self):
        old = await self.end_written_later()
        answer = await self.handlers.cancel_job(self.job)
        # (before: a 409 job_finished, the job running)
        self.assertEqual(answer, {"id": self.job, "state": "running", "cancelled": False,
                                  "cancel": "at_session_end"})
        self.assertEqual(self.dispatcher._cancel_at_end, {self.job: old})
        self.clock.advance(0)  # the repair writes the end: the job's results
        self.assertEqual(await self.state(self.job), ("done", None))
        self.assertEqual((self.dispatcher._cancel_at_end, self.dispatcher._ending), ({}, {}))

    async def test_a_job_of_an_ending_session_the_new_session_holds_is_the_new_sessions(self):
        # the old session's end waits; the new session holds (and sent) a
        # job of its own: its cancel is the new session's, not the old one's
        await self.end_written_later()
        second = (await self.handlers.create_job(DEVICE, GET_MAN))["id"]
        session, request = await self.device_session()
        live = self.dispatcher._by_device[DEVICE]
        self.assertEqual((await self.handlers.cancel_job(second))["cancel"], "at_session_end")
        self.assertEqual((await self.handlers.cancel_job(self.job))["cancel"], "at_session_end")
        old = self.dispatcher._repairs[0][0]
        self.assertEqual(self.dispatcher._cancel_at_end, {second: live, self.job: old})
        self.clock.advance(0)
        self.assertEqual(self.dispatcher._cancel_at_end, {second: live})
        await self.finish(session, request)
        self.assertEqual([await self.state(job_id) for job_id in (self.job, second)],
                         [("done", None), ("done", None)])
        self.assertEqual(self.dispatcher._cancel_at_end, {})

    async def test_a_delete_whose_sessions_end_meets_contention_leaves_that_end_to_a_repair(self):
        _session, _request = await self.device_session()
        self.store.down = True
        with self.assertRaises(StoreContention):  # (the API answers 503: try again)
            await self.handlers.delete_device(DEVICE, False)
        self.store.down = False
        answer = await self.handlers.cancel_job(self.job)
        self.assertEqual(answer["cancel"], "at_session_end")
        self.clock.advance(0)
        # (before: no repair was scheduled: the end waited for the next
        # store failure elsewhere, the job running, its cancel not made)
        self.assertEqual(self.dispatcher._repairs, [])
        self.assertEqual(await self.state(self.job), ("failed", "device_deleted"))
        self.assertEqual((self.dispatcher._cancel_at_end, self.dispatcher._ending), ({}, {}))

    # -- a stranger's package 1 has no say ------------------------------------------------

    async def test_a_strangers_session_while_an_end_waits_neither_takes_nor_applies_its_cancel(self):
        old = await self.end_written_later()
        stranger, request = await self.strangers_session()
        answer = await self.handlers.cancel_job(self.job)
        # the job's own session's (before: a 409 job_finished: the stranger's
        # session was live, the device's not)
        self.assertEqual(answer["cancel"], "at_session_end")
        self.assertEqual(self.dispatcher._cancel_at_end, {self.job: old})
        await self.end_strangers_session(stranger, request)
        self.assertEqual(await self.state(self.job), ("running", None))  # not cancelled by its end
        self.assertEqual(self.dispatcher._cancel_at_end, {self.job: old})
        self.clock.advance(0)
        self.assertEqual(await self.state(self.job), ("done", None))
        self.assertEqual((self.dispatcher._cancel_at_end, self.dispatcher._ending), ({}, {}))

    async def test_a_strangers_session_ending_does_not_apply_the_devices_cancels(self):
        # two sessions of the device whose ends wait for the store: the
        # older sent self.job, the newer the second job; self.job's cancel
        # is asked while the newer runs.  A stranger's session ending
        # meanwhile is neither's: it cancels nothing (before: it cancelled
        # self.job, whose results the older session's end then lost)
        old, second, _session, request = await self.new_session_while_an_end_waits()
        self.assertEqual((await self.handlers.cancel_job(self.job))["cancel"], "at_session_end")
        self.assertEqual(self.dispatcher._cancel_at_end, {self.job: old})
        self.store.down = True
        self.assertIn(b"<Data>503</Data>", (await self.send(request)).body)  # its results wait too
        self.store.down = False
        self.assertEqual(len(self.dispatcher._repairs), 2)
        stranger, request = await self.strangers_session()
        await self.end_strangers_session(stranger, request)
        self.assertEqual(await self.state(self.job), ("running", None))
        self.assertEqual(self.dispatcher._cancel_at_end, {self.job: old})
        await self.both_ends_written(second)

    async def test_a_job_sent_by_an_ending_session_waits_for_that_end_not_the_next_sessions(self):
        # (before: the session live when the cancel came cancelled it at its
        # end, before the end of the session that sent it wrote its results)
        old, second, session, request = await self.new_session_while_an_end_waits()
        self.assertEqual((await self.handlers.cancel_job(self.job))["cancel"], "at_session_end")
        self.assertEqual(self.dispatcher._cancel_at_end, {self.job: old})
        await self.finish(session, request)
        self.assertEqual(await self.state(self.job), ("running", None))
        await self.both_ends_written(second)

    # -- a cancel signalled by another node (CANCELS) ----------------------------------

    def signalled(self, job_id):
        """Another node cancelled ``job_id`` (running, none of its sessions sent it)."""
        self.dispatcher._cancel_signalled("%s\n%s" % (DEVICE, job_id))

    async def test_a_cancel_signalled_for_a_job_an_ending_session_sent_waits_for_that_end(self):
        # (before: the device's live session took it, and its end cancelled
        # the job before the end of the session that sent it wrote its results)
        old, second, session, request = await self.new_session_while_an_end_waits()
        self.signalled(self.job)
        self.assertEqual(self.dispatcher._cancel_at_end, {self.job: old})
        await self.finish(session, request)
        self.assertEqual(await self.state(self.job), ("running", None))
        await self.both_ends_written(second)

    async def test_a_cancel_signalled_while_a_strangers_session_is_live_is_the_ending_sessions(self):
        old = await self.end_written_later()
        stranger, request = await self.strangers_session()
        self.signalled(self.job)
        self.assertEqual(self.dispatcher._cancel_at_end, {self.job: old})
        await self.end_strangers_session(stranger, request)
        self.assertEqual(await self.state(self.job), ("running", None))
        self.clock.advance(0)
        self.assertEqual(await self.state(self.job), ("done", None))
        self.assertEqual(self.dispatcher._cancel_at_end, {})

    async def test_a_cancel_signalled_with_only_a_strangers_session_here_is_not_taken(self):
        # a job running that no session here sent (sent on another node)
        await self.store.start_jobs([self.job], expect=("queued",), now=self.clock.seconds())
        stranger, request = await self.strangers_session()
        self.signalled(self.job)
        self.assertEqual(self.dispatcher._cancel_at_end, {})
        await self.end_strangers_session(stranger, request)
        self.assertEqual(await self.state(self.job), ("running", None))


class HeldThenFailing(GatewayCase):
    """A dispatcher whose store's batch commits wait while ``self.held.held``
    is unfired, THEN meet the failure ``self.failing`` is set to (the store of
    CancelAtSessionEndTests decides the failure before the commit waits)."""

    error = staticmethod(_contention)

    def wrap(self, real):
        self.failing = FailingStore(real)
        self.failing.error = self.error
        self.held = HeldStore(self.failing)
        return self.held


class CancelWhileTheStartIsWrittenTests(HeldThenFailing):
    """A cancel asked while the message that starts the job is written (202,
    state ``queued``), when that write then fails: the store never started
    the job, and the session's end, written by the repair, must still cancel
    it (else the next session of the device runs a job answered cancelled)."""

    async def test_a_cancel_while_the_start_is_written_survives_the_writes_failure(self):
        acc = account()
        session = ClientSession(acc, random_bytes=os.urandom)
        self.held.held = defer.Deferred()  # package 1's write (the job's start) waits
        opening = defer.ensureDeferred(self.send(session.start()))
        answer = await self.handlers.cancel_job(self.job)
        self.assertEqual(answer, {"id": self.job, "state": "queued", "cancelled": False,
                                  "cancel": "at_session_end"})
        self.failing.down = True  # the write loses to concurrent ones: nothing started
        held, self.held.held = self.held.held, None
        held.callback(None)
        self.assertIn(b"<Data>503</Data>", (await opening).body)
        self.failing.down = False
        self.clock.advance(0)  # the repair writes the session's end
        self.assertEqual(self.dispatcher._repairs, [])
        # (before: ("queued", None): the repair's end forgot the cancel of a
        # job it skipped as never started, and the next session ran it)
        self.assertEqual(await self.state(self.job), ("failed", "cancelled"))
        self.assertEqual((self.dispatcher._cancel_at_end, self.dispatcher._ending), ({}, {}))
        _session, request = await self.device_session()
        self.assertIsNone(request)  # nothing to send: the session ends at package 2
        self.assertEqual(await self.state(self.job), ("failed", "cancelled"))


    async def test_a_cancel_left_to_a_repaired_end_survives_a_failure_after_that_end(self):
        # as above, and the store fails again once the repair has written the
        # end, as it looks for the jobs to cancel: the next try cancels them
        session = ClientSession(account(), random_bytes=os.urandom)
        self.held.held = defer.Deferred()
        opening = defer.ensureDeferred(self.send(session.start()))
        self.assertEqual((await self.handlers.cancel_job(self.job))["cancel"], "at_session_end")
        self.failing.down = True
        held, self.held.held = self.held.held, None
        held.callback(None)
        self.assertIn(b"<Data>503</Data>", (await opening).body)
        self.failing.down = False
        self.fail_once("jobs_to_cancel")
        self.clock.advance(0)  # the repair writes the end, then fails
        self.assertTrue(self.dispatcher.outage.active)
        self.clock.advance(self.dispatcher.outage.retry_after)  # the probe: the store is back
        self.assertFalse(self.dispatcher.outage.active)
        # (before: ("queued", None), the cancel forgotten before the store answered)
        self.assertEqual(await self.state(self.job), ("failed", "cancelled"))
        self.assertEqual((self.dispatcher._repairs, self.dispatcher._cancel_at_end, self.dispatcher._ending),
                         ([], {}, {}))


    def fail_once(self, desc):
        """The store's next call ``desc`` fails (an outage), the others not."""
        real = self.store.run_interaction

        def once_down(what, *args, **kwargs):
            if what == desc:
                self.store.run_interaction = real
                return defer.fail(StoreUnavailable("OperationalError: gone again"))
            return real(what, *args, **kwargs)

        self.store.run_interaction = once_down

    async def test_a_cancel_left_to_a_timed_out_sessions_end_survives_a_failure_after_that_end(self):
        # a job running that no session here sent (its session's end was
        # lost, say): cancelled at the end of the device's session here
        _session, _request = await self.device_session()
        other = (await self.handlers.create_job(DEVICE, GET_MAN))["id"]
        await self.store.start_jobs([other], expect=("queued", "notified"), now=self.clock.seconds())
        self.assertEqual((await self.handlers.cancel_job(other))["cancel"], "at_session_end")
        self.fail_once("jobs_to_cancel")
        self.clock.advance(61)  # the session times out; its end is written, then the store fails
        self.assertTrue(self.dispatcher.outage.active)
        self.clock.advance(self.dispatcher.outage.retry_after)
        # (before: ("running", None) for good: the cancel was forgotten)
        self.assertEqual(await self.state(other), ("failed", "cancelled"))
        self.assertEqual((self.dispatcher._repairs, self.dispatcher._cancel_at_end, self.dispatcher._ending),
                         ([], {}, {}))

class DeviceDeletedWhileAnEndWaitsTests(HeldThenFailing):
    """A device deleted while the end of its session waits for the store (a
    repair): the store holds nothing of it any more, and the repair has
    nothing to write; it must not stop the repairs (nor keep the outage on)."""

    error = staticmethod(lambda: StoreUnavailable("OperationalError: the database is gone"))

    async def test_a_device_deleted_while_its_first_messages_write_waits_for_a_repair(self):
        session = ClientSession(account(), random_bytes=os.urandom)
        self.held.held = defer.Deferred()  # package 1's write (the session's row, the job's start)
        opening = defer.ensureDeferred(self.send(session.start()))
        self.failing.down = True  # an outage: it fails, the session's end waits for the probe
        held, self.held.held = self.held.held, None
        held.callback(None)
        self.assertEqual((await opening).code, 503)
        self.failing.down = False  # back, before the probe
        self.assertTrue(self.dispatcher.outage.active)
        await self.handlers.delete_device(DEVICE, False)
        self.clock.advance(self.dispatcher.outage.retry_after)  # the probe: the repair
        # (before: the repair raised NotFound for the session's row, at every
        # try: the outage never ended, every new session got 503)
        self.assertEqual(self.dispatcher._repairs, [])
        self.assertFalse(self.dispatcher.outage.active)
        self.assertEqual((self.dispatcher._cancel_at_end, self.dispatcher._ending), ({}, {}))
        await self.handlers.put_device(DEVICE, ACCOUNT)  # the device, back (a new account)
        _session, request = await self.device_session()  # (before: 503, the store "unavailable")
        self.assertIsNone(request)  # no job: over at package 2
        self.assertEqual(self.dispatcher.sessions_ended["completed"], 1)


class CommittedButReportedFailedStore(CommitWrapped):
    """The real store, whose next batch commit (once ``lie`` is set) is
    committed, then reported failed: a connection lost during COMMIT."""

    def __init__(self, store):
        super().__init__(store)
        self.lie = False
        self.meanwhile = lambda: None  # called once it committed, before the failure

    async def commit_batch(self, batch, **kwargs):
        result = await batch.commit(**kwargs)
        if self.lie:
            self.lie = False
            self.meanwhile()
            raise StoreUnavailable("OperationalError: connection lost during COMMIT")
        return result


class RepairRefusedForGoodTests(GatewayCase):
    """A repair the store refuses for good (not unavailable) is dropped: it
    must not stop the repairs behind it, nor keep the outage on for good."""

    def wrap(self, real):
        return CommittedButReportedFailedStore(real)

    async def test_a_first_message_committed_but_reported_failed(self):
        self.store.lie = True
        reply = await self.send(ClientSession(account(), random_bytes=os.urandom).start())
        self.assertEqual(reply.code, 503)  # the device is told to come back
        self.assertEqual(await self.state(self.job), ("running", None))  # (committed)
        self.clock.advance(self.dispatcher.outage.retry_after)  # the probe: the repair
        # the session's row exists: its insert, again, is refused (Conflict);
        # (before: at every try, for good: the outage never ended, every new
        # session got 503 until the gateway restarted)
        self.assertEqual(len(self.flushLoggedErrors(Conflict)), 1)
        self.assertFalse(self.dispatcher.outage.active)
        self.assertEqual((self.dispatcher._repairs, self.dispatcher._ending), ([], {}))
        # what the write left live is settled: the job failed as the session's
        # abort would have failed it, the session's row gone (before: the job
        # running and the row live until the gateway's next start)
        self.assertEqual(await self.state(self.job), ("failed", "store_unavailable"))
        self.assertEqual(await self.store.live_sessions(device_id=DEVICE), [])
        self.assertEqual((await self.store.get_device(DEVICE)).last_session["outcome"], "store_unavailable")
        _session, request = await self.device_session()  # the device again: a session (not 503)
        self.assertIsNone(request)  # (nothing pending: over at package 2)
        self.assertEqual(self.dispatcher.sessions_ended["completed"], 1)

    async def test_a_cancel_asked_while_such_a_write_is_made_is_still_made(self):
        answers = []
        self.store.meanwhile = lambda: answers.append(self.handlers.cancel_job(self.job))
        self.store.lie = True
        self.assertEqual((await self.send(ClientSession(account(), random_bytes=os.urandom).start())).code, 503)
        self.assertEqual((await answers[0])["cancel"], "at_session_end")
        self.clock.advance(self.dispatcher.outage.retry_after)
        self.assertEqual(len(self.flushLoggedErrors(Conflict)), 1)
        self.assertEqual(await self.state(self.job), ("failed", "cancelled"))
        self.assertEqual((self.dispatcher._repairs, self.dispatcher._cancel_at_end, self.dispatcher._ending),
                         ([], {}, {}))
