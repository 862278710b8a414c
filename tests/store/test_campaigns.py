"""
Campaign steps on both engines; on PostgreSQL, two stores on one database
(as two gateway processes) stepping the same campaign at the same moment:
no device is started twice and no wave is advanced twice.
"""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.store.inventory import DeviceFilter
from tests.store.support import START, OnInlineSQLite, OnPostgres, OnSQLite, StoreCase, add_device

POLICY = {"waves": [10.0, 100.0], "rate_per_minute": 600000.0, "concurrency": 1000, "pause_failure_ratio": 1.0}


class CampaignStoreMixin(StoreCase):
    async def campaign(self, store, count=40):
        for n in range(count):
            await add_device(store, "IMEI:%03d" % (n,))
        return await store.create_campaign("c1", "lawmo", "fully_lock", {}, {"server_id": None}, DeviceFilter(),
                                           None, POLICY, START)

    async def test_step_starts_the_first_wave_only_until_it_is_over(self):
        store = await self.open()
        campaign = await self.campaign(store)
        self.assertEqual((campaign.state, campaign.total), ("running", 40))
        jobs = await store.campaign_step("c1", START + 1, 3600, 100, None)
        self.assertEqual(len(jobs), 4)  # 10% of 40
        self.assertEqual(await store.campaign_step("c1", START + 2, 3600, 100, None), [])
        for job in jobs:  # the devices report success
            await store.function_job_finished(job.job_id, "done", [{"op": "Exec", "status": 200}], START + 3)
        jobs = await store.campaign_step("c1", START + 4, 3600, 100, None)
        self.assertEqual(len(jobs), 36)
        progress = await store.campaign_progress("c1")
        self.assertEqual(progress["by_state"], {"done": 4, "started": 36})


class SQLiteCampaignTests(OnSQLite, CampaignStoreMixin, TestCase):
    pass


class SQLiteInlineCampaignTests(OnInlineSQLite, CampaignStoreMixin, TestCase):
    pass


class PostgresCampaignTests(OnPostgres, CampaignStoreMixin, TestCase):
    async def test_two_processes_never_start_a_device_twice(self):
        first = await self.open()
        second = await self.open()  # its own connection pool: another process
        await self.campaign(first, count=200)
        started = []
        for step in range(12):
            now = START + 1 + step
            results = await defer.gatherResults([
                defer.ensureDeferred(_step(first, now)), defer.ensureDeferred(_step(second, now)),
                defer.ensureDeferred(_step(first, now)), defer.ensureDeferred(_step(second, now)),
            ])
            for jobs in results:
                for job in jobs:
                    started.append(job.device_id)
                    await first.function_job_finished(job.job_id, "done", [{"op": "Exec", "status": 200}], now)
        self.assertEqual(len(started), len(set(started)))
        self.assertEqual(sorted(started), ["IMEI:%03d" % (n,) for n in range(200)])
        campaign = await first.get_campaign("c1")
        self.assertEqual(campaign.state, "done")
        events = [e for e in await first.events_after(0, 10000) if e["type"] == "campaign"]
        self.assertEqual([e.get("reason") for e in events if e.get("reason")], ["wave 2 started"])
        self.assertEqual([e["state"] for e in events].count("done"), 1)


async def _step(store, now):
    return await store.campaign_step("c1", now, 3600, 50, None)
