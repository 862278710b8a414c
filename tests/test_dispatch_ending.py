"""The sessions over here whose end the store has not taken yet (the
dispatcher's ``_ending``), by device: a cancel of a running job looks at
its device's only (many may wait for repairs in a store outage), and no
device is left in the map once its sessions' ends are written."""

from dmgateway.live import LiveSession
from tests.fixtures import DEVICE
from tests import test_dispatch_cancel_at_end as cancel_at_end
from tests.test_dispatch_cancel_at_end import GatewayCase


class DeviceId(str):
    """A device id noting in ``compared`` each comparison made with it."""

    def __new__(cls, text, compared):
        self = super().__new__(cls, text)
        self.compared = compared
        return self

    def __eq__(self, other):
        self.compared.append(str(self))
        return str.__eq__(self, other)

    __hash__ = str.__hash__


class EndingByDeviceTests(GatewayCase):
    # (CancelAtSessionEndTests' store and helpers; the class is not imported
    # here, or its tests would run twice)
    _helpers = cancel_at_end.CancelAtSessionEndTests
    wrap = _helpers.wrap
    end_written_later = _helpers.end_written_later
    new_session_while_an_end_waits = _helpers.new_session_while_an_end_waits
    both_ends_written = _helpers.both_ends_written

    def others_ending(self, count, compared):
        """``count`` sessions of other devices, over, their ends waiting."""
        others = []
        for n in range(count):
            live = LiveSession(token="test-node~%032x" % n, device_id=DeviceId("IMEI:%015d" % n, compared),
                               syncml_session_id="1", engine=None, encoding="xml", media_type="", started=0.0)
            self.dispatcher._forget(live)
            others.append(live)
        return others

    async def test_a_cancel_looks_only_at_its_devices_ending_sessions(self):
        compared = []
        others = self.others_ending(50, compared)
        old = await self.end_written_later()
        del compared[:]
        self.assertEqual((await self.handlers.cancel_job(self.job))["cancel"], "at_session_end")
        self.assertEqual(self.dispatcher._cancel_at_end, {self.job: old})
        self.assertEqual(compared, [])  # (before: each of the 50 sessions, at every cancel)
        self.clock.advance(0)  # the repair writes old's end
        self.assertEqual(len(self.dispatcher._ending), 50)
        self.assertNotIn(DEVICE, self.dispatcher._ending)
        for live in others:
            self.dispatcher._end_taken(live)
        self.assertEqual((self.dispatcher._cancel_at_end, self.dispatcher._ending), ({}, {}))

    async def test_two_ending_sessions_of_a_device_then_none(self):
        old, second, _session, request = await self.new_session_while_an_end_waits()
        self.assertEqual(self.dispatcher._ending, {DEVICE: {old.token: old}})
        self.store.down = True
        self.assertIn(b"<Data>503</Data>", (await self.send(request)).body)  # its end waits too
        self.store.down = False
        new = self.dispatcher._repairs[1][0]
        self.assertEqual(self.dispatcher._ending, {DEVICE: {old.token: old, new.token: new}})
        # each cancel left to the end of the session that sent its job
        for job_id in (self.job, second):
            self.assertEqual((await self.handlers.cancel_job(job_id))["cancel"], "at_session_end")
        self.assertEqual(self.dispatcher._cancel_at_end, {self.job: old, second: new})
        await self.both_ends_written(second)  # (and no device left in _ending)
