"""Store.transition_job through jobstates.change_job, on both engines: a
compare-and-set with its event in the same transaction, one winner."""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway import jobstates as js
from tests.store.support import PostgresEngine, SQLiteEngine, StoreCase, add_device

DEVICE = "IMEI:350000000000009"


class StoreTransitionTestsMixin(StoreCase):
    """change_job against a real store: one transaction, one winner."""

    @defer.inlineCallbacks
    def setUp(self):
        StoreCase.setUp(self)
        self.store = yield defer.ensureDeferred(self.open())
        yield defer.ensureDeferred(add_device(self.store, DEVICE))
        yield self.store.create_job("j1", DEVICE, commands=[{"op": "Get", "target": "./DevInfo/Mod"}])

    async def job_events(self):
        return [e for e in await self.store.events_after(0, 100) if e["type"] == "job"]

    async def test_two_processes_cannot_both_move_a_job(self):
        now = self.clock.seconds()
        first = js.change_job(self.store, "j1", "failed", device_id=DEVICE, now=now, error={"code": "cancelled"})
        second = js.change_job(self.store, "j1", "expired", device_id=DEVICE, now=now, expect="queued")
        self.assertEqual(await first, True)
        self.assertEqual(await second, False)
        job = await self.store.get_job("j1")
        self.assertEqual((job.state, job.error), ("failed", {"code": "cancelled"}))
        (event,) = await self.job_events()
        self.assertEqual((event["device_id"], event["job_id"], event["state"], event["error"]),
                         (DEVICE, "j1", "failed", "cancelled"))

    async def test_the_change_and_its_event_share_the_batch_transaction(self):
        counted = []
        self.store.on_transaction = lambda seconds, failed: counted.append(failed)
        batch = self.store.batch()
        js.change_job(batch, "j1", "running", device_id=DEVICE, now=self.clock.seconds())
        js.change_job(batch, "j1", "done", device_id=DEVICE, now=self.clock.seconds(), expect="running",
                      results=[{"status": 200}])
        self.assertEqual(await batch.commit(), [True, True])
        self.assertEqual(counted, [False])
        job = await self.store.get_job("j1")
        self.assertEqual((job.state, job.results), ("done", [{"status": 200}]))
        self.assertEqual([(e["state"], e.get("error")) for e in await self.job_events()], [("done", None)])

    async def test_a_refused_compare_and_set_appends_no_event(self):
        changed = await js.change_job(self.store, "j1", "done", device_id=DEVICE, now=self.clock.seconds(),
                                      expect="running")
        self.assertFalse(changed)
        self.assertEqual((await self.store.get_job("j1")).state, "queued")
        self.assertEqual(await self.job_events(), [])


class SQLiteStoreTransitionTests(SQLiteEngine, StoreTransitionTestsMixin, TestCase):
    pass


class PostgresStoreTransitionTests(PostgresEngine, StoreTransitionTestsMixin, TestCase):
    pass
