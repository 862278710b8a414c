"""The event log (over the inline in-memory SQLite store, on a ``task.Clock``):
appends wake listeners and long-polls; a long-poll ends by an event, its
timeout, cancellation or the daemon stopping, and leaves no trace."""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.eventlog import EventLog
from tests.support import open_test_store


class EventLogTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        yield open_test_store(self)
        self.log = EventLog(self.store, self.clock)

    async def test_append_stores_the_event_and_wakes_listeners_and_the_other_processes(self):
        heard, told = [], []
        self.log.listen(lambda: heard.append(1))
        self.log.broadcast = lambda: told.append(1)
        await self.log.append("session", "dev-1", {"outcome": "completed"})
        (event,) = await self.store.events_after(0, 10)
        self.assertEqual((event["type"], event["device_id"], event["outcome"]), ("session", "dev-1", "completed"))
        self.assertEqual((heard, told), ([1], [1]))

    async def test_announcing_a_batch_wakes_listeners_here_and_elsewhere(self):
        heard, told = [], []
        self.log.listen(lambda: heard.append(1))
        self.log.broadcast = lambda: told.append(1)
        self.log.announce()
        self.assertEqual((heard, told), ([1], [1]))

    async def test_appended_elsewhere_wakes_listeners_without_broadcasting(self):
        heard, told = [], []
        self.log.listen(lambda: heard.append(1))
        self.log.broadcast = lambda: told.append(1)
        self.log.appended()
        self.log.appended()
        self.assertEqual((heard, told), ([1, 1], []))

    async def test_a_waiting_long_poll_is_woken_by_an_append_and_leaves_the_list(self):
        heard = []
        self.log.listen(lambda: heard.append(1))
        waiting = self.log.wait(0, 10, 30)
        self.assertFalse(waiting.called)
        await self.log.append("job", None, {"job_id": "j1"})
        events = await waiting
        self.assertEqual([e["job_id"] for e in events], ["j1"])
        self.assertEqual(len(self.log._listeners), 1)  # the listener stays, the long-poll left
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(heard, [1])

    async def test_a_long_poll_with_events_answers_at_once(self):
        await self.log.append("job", None, {"job_id": "j1"})
        events = await self.log.wait(0, 10, 30)
        self.assertEqual(len(events), 1)
        self.assertEqual((self.log._listeners, self.clock.getDelayedCalls()), ([], []))

    async def test_a_long_poll_times_out_empty(self):
        waiting = self.log.wait(0, 10, 5)
        self.clock.advance(5)
        self.assertEqual(await waiting, [])
        self.assertEqual(self.log._listeners, [])

    async def test_cancelling_a_long_poll_releases_it(self):
        waiting = self.log.wait(0, 10, 30)
        waiting.cancel()
        with self.assertRaises(defer.CancelledError):
            await waiting
        self.assertEqual((self.log._listeners, self.clock.getDelayedCalls()), ([], []))

    async def test_stop_releases_long_polls_and_keeps_listeners(self):
        heard = []
        self.log.listen(lambda: heard.append(1))
        waiting = self.log.wait(0, 10, 30)
        self.log.stop()
        self.assertEqual(await waiting, [])
        self.assertEqual(len(self.log._listeners), 1)
        self.assertEqual((heard, self.clock.getDelayedCalls()), ([], []))

    async def test_a_failing_listener_does_not_stop_the_others_or_the_append(self):
        heard = []

        def broken():
            raise RuntimeError("listener bug")

        self.log.listen(broken)
        self.log.listen(lambda: heard.append(1))
        waiting = self.log.wait(0, 10, 30)
        await self.log.append("job", None, {"job_id": "j1"})  # the append itself succeeds
        events = await waiting
        self.assertEqual([e["job_id"] for e in events], ["j1"])
        self.assertEqual(heard, [1])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)  # logged once, with its traceback
