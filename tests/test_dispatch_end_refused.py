"""A session's end the store refuses with something other than a failure
of the store (its device deleted meanwhile, say), outside a repair: the
cancels left to that end are not kept here for good, and not lost either.
The end goes to a repair at once, which writes it if it can, else settles
it as a repair refused for good does (the cancels made, or dropped with
the device's jobs)."""

import dataclasses
import os

from twisted.internet import defer

from dmgateway.client import ClientSession
from dmgateway.store.model import Conflict, NotFound, StoreContention
from tests.fixtures import DEVICE
from tests.test_dispatch import account
from tests.test_dispatch_cancel_at_end import GET_MAN, GatewayCase
from tests.test_dispatch_security import HeldStore


class HeldThenRefusedStore(HeldStore):
    """The real store, whose batch commits wait while ``held`` is unfired,
    then (while ``refuse`` is set) fail with what it makes: nothing written."""

    refuse = None

    async def commit_batch(self, batch, **kwargs):
        if self.held is not None:
            await self.held
        if self.refuse is not None:
            raise self.refuse()
        return await batch.commit(**kwargs)


def _conflict():
    return Conflict("UNIQUE constraint failed")


class EndRefusedTests(GatewayCase):
    def wrap(self, real):
        return HeldThenRefusedStore(real)

    async def running_elsewhere(self):
        """A second job of the device, running, sent by no session here (one
        on another node, say): its cancel is left to the device's session here."""
        other = (await self.handlers.create_job(DEVICE, GET_MAN))["id"]
        await self.store.start_jobs([other], expect=("queued", "notified"), now=self.clock.seconds())
        return other

    async def cancel_both(self, other):
        """self.job and ``other`` cancelled at the end of the device's live session."""
        live = self.dispatcher._by_device[DEVICE]
        for job_id in (self.job, other):
            self.assertEqual((await self.handlers.cancel_job(job_id))["cancel"], "at_session_end")
        self.assertEqual(self.dispatcher._cancel_at_end, {self.job: live, other: live})

    async def session_with_cancels(self):
        """A session of the device that sent self.job, past package 2, both
        cancels left to its end: (the running job sent elsewhere, the
        session's next request, its last: self.job's results)."""
        other = await self.running_elsewhere()
        _session, request = await self.device_session()
        await self.cancel_both(other)
        return other, request

    def assert_nothing_left(self):
        self.assertEqual((self.dispatcher._repairs, self.dispatcher._cancel_at_end, self.dispatcher._ending),
                         ([], {}, {}))

    async def assert_settled_cancelled(self, other):
        """Nothing left here, both jobs cancelled and no session of the device live in the store."""
        self.assert_nothing_left()
        self.assertEqual([await self.state(job_id) for job_id in (self.job, other)],
                         [("failed", "cancelled"), ("failed", "cancelled")])
        self.assertEqual(await self.store.live_sessions(device_id=DEVICE), [])

    async def test_the_device_removed_elsewhere_while_package_1_is_written(self):
        # another process deletes the device while the session's first write
        # (its row, self.job's start) waits: that write fails (NotFound), the
        # session stays live, unrecorded; its end (a timeout) writes its row
        # again, and fails the same way.  (A session whose row was written
        # meets no NotFound: its end writes nothing of a deleted device.)
        other = await self.running_elsewhere()
        self.store.held = defer.Deferred()
        opening = defer.ensureDeferred(self.send(ClientSession(account(), random_bytes=os.urandom).start()))
        await self.cancel_both(other)
        await self.store.remove_device(DEVICE, False)  # (the store's, as another process's API does)
        held, self.store.held = self.store.held, None
        held.callback(None)
        with self.assertRaises(NotFound):  # (the bearer answers 500)
            await opening
        self.clock.advance(61)  # the session times out: its end is refused (NotFound) too
        self.assertEqual(len(self.flushLoggedErrors(NotFound)), 1)  # (the timeout's handling)
        self.clock.advance(0)  # a repair: nothing to write, the cancels find no job left
        # (before: {other: the session} here for good)
        self.assert_nothing_left()
        for job_id in (self.job, other):
            self.assertIsNone(await self.store.get_job(job_id))  # gone with their device

    async def test_a_last_message_refused_for_good_still_makes_its_cancels(self):
        other, request = await self.session_with_cancels()
        self.store.refuse = _conflict
        with self.assertRaises(Conflict):  # (the bearer answers 500)
            await self.send(request)
        self.clock.advance(0)  # a repair: refused again, the session settled
        self.assertEqual(len(self.flushLoggedErrors(Conflict)), 1)  # (the repair's)
        # self.job's results were never written: what is left of both is
        # cancelled (before: both running until the gateway's next start,
        # other's cancel here for good)
        await self.assert_settled_cancelled(other)

    async def test_a_timeout_refused_for_good_still_makes_its_cancels(self):
        other, _request = await self.session_with_cancels()
        self.store.refuse = _conflict
        self.clock.advance(61)  # the session times out, its end refused
        self.clock.advance(0)
        self.assertEqual(len(self.flushLoggedErrors(Conflict)), 2)  # (the timeout's handling, the repair)
        await self.assert_settled_cancelled(other)

    async def test_an_end_refused_once_is_written_by_a_repair(self):
        other, request = await self.session_with_cancels()
        self.store.refuse = _conflict
        with self.assertRaises(Conflict):
            await self.send(request)
        self.store.refuse = None
        # until the repair, a cancel of self.job is still left to that end
        # (before: answered as if the job had finished, 409)
        self.assertEqual((await self.handlers.cancel_job(self.job))["cancel"], "at_session_end")
        self.clock.advance(0)  # the repair writes the end: self.job's results, other's cancel
        self.assert_nothing_left()
        self.assertEqual([await self.state(job_id) for job_id in (self.job, other)],
                         [("done", None), ("failed", "cancelled")])

    async def test_a_stop_goes_on_past_an_end_refused(self):
        # a session whose end the store refuses (not a failure of the
        # store) at the stop: the stop goes on, and that end is settled
        # by the last repair (before: stop() failed with Conflict, before
        # the last repair and the event log's stop, and the gateway never
        # closed its store)
        other, _request = await self.session_with_cancels()
        self.store.refuse = _conflict
        await self.dispatcher.stop()
        self.assertEqual(len(self.flushLoggedErrors(Conflict)), 2)  # (the stop's abort, the last repair)
        await self.assert_settled_cancelled(other)

    async def test_an_end_whose_settling_fails_is_not_kept(self):
        # the end refused twice, and its settling fails too (a job to
        # cancel deleted meanwhile, with its device, by another process):
        # the session is given up, and no cancel waits for its end
        other, request = await self.session_with_cancels()
        self.store.refuse = _conflict
        with self.assertRaises(Conflict):
            await self.send(request)

        def gone(job_id, running=False):
            raise NotFound("no job %r" % (job_id,))

        self.store.cancel_job = gone
        self.clock.advance(0)  # a repair: refused again; settling it fails
        self.assertEqual(len(self.flushLoggedErrors(Conflict, NotFound)), 2)
        del self.store.cancel_job
        # (before: the session kept in _ending for good, and a later cancel
        # of a job it sent left to that end, which never comes: answered
        # at_session_end, and kept here for good)
        self.assert_nothing_left()
        answer = await self.handlers.cancel_job(self.job)
        self.assertEqual(answer, {"id": self.job, "state": "running", "cancelled": False})
        self.assertEqual(self.dispatcher._cancel_at_end, {})

    async def test_an_end_written_is_not_written_again(self):
        # a stranger's session (wrong secret) ends with the failure that
        # locks the device out: the batch with its end commits, then the
        # lockout's event loses to concurrent transactions.  The end is
        # written: the repair does only what follows it (before: the whole
        # end again, a second failure counted, a second session event)
        config = self.dispatcher.config
        self.dispatcher.config = dataclasses.replace(config, auth=dataclasses.replace(config.auth,
                                                                                       device_max_failures=3))
        real = self.store.append_event

        async def contended(type, *args, **kwargs):
            if type == "lockout":
                raise StoreContention("could not serialize access")
            return await real(type, *args, **kwargs)

        self.store.append_event = contended
        seq = await self.store.last_event_seq()
        stranger = ClientSession(account(secret="wrong"), random_bytes=os.urandom)
        request = stranger.start()
        while request is not None:
            reply = await self.send(request, peer="127.0.0.2:5000")
            request = stranger.receive(reply.body, {"content-type": reply.content_type})
        self.assertIn(b"<Data>503</Data>", reply.body)  # (the last message's answer)
        self.clock.advance(0)  # the repair
        self.assert_nothing_left()
        self.assertEqual((await self.store.get_device(DEVICE)).auth_failures, 3)
        events = [event["type"] for event in await self.store.events_after(seq, 100)]
        self.assertEqual(events.count("session"), 1)
