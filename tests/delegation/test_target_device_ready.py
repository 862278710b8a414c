"""B takes A's ``device-ready``: one first job per device, once, even when
the notice is sent again (A does so for as long as B answers it
``unavailable``, and B answers so whatever made it fail).  A device an
operator deleted on B before the notice fails the delegation, as one
deleted while B contacts it does; it was an exception: B answered
``unavailable`` for ever, A sent the notice again every check, and each
time B queued one more first job for every device before the deleted one."""

from types import SimpleNamespace

from dmgateway.delegation import messages as m
from dmgateway.store.model import StoreUnavailable
from tests.delegation.test_flow import FlowCase

DEVICES = ["IMEI:490154203237511", "IMEI:490154203237512", "IMEI:490154203237513"]
A = SimpleNamespace(server_id="dms-a")


class FailingJobStore:
    """B's store whose next ``create_job`` for ``device`` fails once (an outage)."""

    def __init__(self, store):
        self._store = store
        self.fail_for = None

    def __getattr__(self, name):
        return getattr(self._store, name)

    def put_device(self, device_id, **kwargs):
        if device_id == self.fail_for:
            self.fail_for = None
            raise StoreUnavailable("store down")
        return self._store.put_device(device_id, **kwargs)

    def create_job(self, job_id, device_id, **kwargs):
        if device_id == self.fail_for:
            self.fail_for = None
            raise StoreUnavailable("store down")
        return self._store.create_job(job_id, device_id, **kwargs)


class DeviceReadyTests(FlowCase):
    def wrap_b(self, store):
        return FailingJobStore(store)

    async def accepted(self, tid="t-1"):
        devices = tuple(m.Device(d, "", "", "", "") for d in DEVICES)
        request = m.Request(tid, "dms-a", "dms-b", devices, ("./Vendor/X",), "partial",
                            "temporary", None)
        answer = await self.b.flow.receive(A, request)
        self.assertTrue(answer.accepted, answer)

    async def device_ready(self, tid="t-1"):
        return await self.b.flow.receive(A, m.Notification(tid, "dms-a", "device-ready"))

    async def contact_jobs(self, device_id):
        return [j for j in await self.b.store.pending_jobs(device_id)
                if j.commands == [{"op": "Get", "target": "./DevInfo/DevId"}]]

    async def test_a_device_deleted_before_device_ready_fails_the_delegation(self):
        await self.accepted()
        await self.b.handlers.delete_device(DEVICES[1], False)  # B's operator
        for _ in range(2):  # and again, as A does while it is not acknowledged
            answer = await self.device_ready()
            self.assertIn(answer.accepted or answer.reason.code, (True, "out_of_order"))
        for dev_id in (DEVICES[0], DEVICES[2]):
            self.assertEqual(len(await self.contact_jobs(dev_id)), 1)
        record = await self.b.flow.records.find("target", "dms-a", "t-1")
        self.assertEqual(record["state"], "contacting")
        self.assertEqual([s["step"] for s in record["device_steps"].values()],
                         ["contact", "failed", "contact"])
        self.assertEqual(record["device_steps"][DEVICES[1]]["jobs"], [])
        for dev_id in (DEVICES[0], DEVICES[2]):  # the others' first jobs end (deleted too, here)
            await self.b.handlers.delete_device(dev_id, False)
        await self.b.flow._advance_all()
        record = await self.b.flow.records.find("target", "dms-a", "t-1")
        self.assertEqual(record["state"], "failed")
        self.assertIn("the device was deleted", record["error"]["message"])
        self.assertEqual(self.b.sent[-1].state, "failed")
        self.assertEqual(self.b.dispatcher._locks, {})

    async def test_device_ready_sent_again_after_a_store_failure_queues_each_job_once(self):
        await self.accepted()
        self.b.store.fail_for = DEVICES[1]
        with self.assertRaises(StoreUnavailable):  # B's bearer answers "unavailable"
            await self.device_ready()
        answer = await self.device_ready()  # A sends it again
        self.assertTrue(answer.accepted, answer)
        for dev_id in DEVICES:
            self.assertEqual(len(await self.contact_jobs(dev_id)), 1, dev_id)
        record = await self.b.flow.records.find("target", "dms-a", "t-1")
        self.assertEqual(record["state"], "contacting")
        self.assertEqual([s["step"] for s in record["device_steps"].values()], ["contact"] * 3)
        self.assertEqual(self.b.dispatcher._locks, {})

    async def test_a_request_failing_half_way_leaves_no_account(self):
        # answered "unavailable", A's delegation is rejected: the accounts
        # created before the failure went (before: they stayed, with no
        # delegation, and B refused the devices as "already managed here")
        self.b.store.fail_for = DEVICES[1]
        with self.assertRaises(StoreUnavailable):
            await self.accepted()
        for dev_id in DEVICES:
            self.assertIsNone(await self.b.store.get_device(dev_id))
        self.assertEqual(self.b.dispatcher._locks, {})
        await self.accepted("t-2")  # the operator creates the delegation again
