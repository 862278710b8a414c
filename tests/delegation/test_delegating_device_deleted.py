"""A's devices deleted on A by an operator while a delegation holds them.
Taking the grant back (B's ``failed``, the operator's revocation, the end
time) queued a restore job per device and raised at the first deleted one:
nothing saved, so every new try -- B's ``failed`` notice, which B sends
again for as long as A answers ``unavailable``, or the end time's check
every check_interval -- queued one more restore job for each device before
it, for ever.  A device whose job went with it (deleted while its job ran)
left the delegation preparing or revoking for ever.  Now either fails that
device, as B does for a device deleted there, and the others go on."""

from types import SimpleNamespace

from dmgateway.delegation import messages as m
from tests.delegation.test_flow import ACCOUNT_A, FlowCase
from tests.fixtures import DEVICE

OTHER = "IMEI:490154203237599"
B = SimpleNamespace(server_id="dms-b")


class DeviceDeletedOnATests(FlowCase):
    async def granted(self, state="active"):
        """A's record of a delegation of DEVICE and OTHER, both granted."""
        await self.a.handlers.put_device(OTHER, ACCOUNT_A)
        steps = {}
        for dev_id in (DEVICE, OTHER):
            job = await self.a.handlers.create_job(dev_id, {
                "commands": [{"op": "Get", "target": "./DevInfo/Mod"}], "atomic": False,
                "notify": "auto", "ui_mode": 0})
            await self.a.store.update_job(job["id"], state="done", results=[])
            steps[dev_id] = {"step": "granted", "jobs": [job["id"]],
                             "account": {"server_id": "dms-b", "name": "dmsb"},
                             "saved_acls": {"./Vendor/X": ""}}
        doc = {"id": "d-1", "role": "delegating", "peer": "dms-b", "transaction_id": "t-1",
               "state": state, "devices": [DEVICE, OTHER], "subtrees": ["./Vendor/X"],
               "type": "partial", "duration": "temporary", "until": None, "until_epoch": None,
               "created": "x", "updated": "x", "history": [], "device_steps": steps,
               "error": None}
        await self.a.flow._save(doc)
        return doc

    async def restore_jobs(self, dev_id):
        return [j for j in await self.a.store.pending_jobs(dev_id) if j.atomic]

    async def test_b_failing_a_delegation_of_a_device_deleted_on_a(self):
        await self.granted()
        await self.a.handlers.delete_device(OTHER, False)  # A's operator
        note = m.Notification("t-1", "dms-b", "failed", m.Reason("device_refused", "no"))
        for _ in range(2):  # sent again, as B does while it is not acknowledged
            answer = await self.a.flow.receive(B, note)
            self.assertTrue(answer.accepted, answer)
        self.assertEqual(len(await self.restore_jobs(DEVICE)), 1)
        doc = await self.a.flow.records.get("d-1")
        self.assertEqual(doc["state"], "revoking")
        self.assertEqual(doc["device_steps"][OTHER]["step"], "failed")
        self.assertEqual(doc["device_steps"][DEVICE]["step"], "restore")

    async def test_a_device_deleted_on_a_while_its_job_runs(self):
        doc = await self.granted()
        await self.a.flow.revoke("d-1")
        self.assertEqual(len(await self.restore_jobs(DEVICE)), 1)
        await self.a.handlers.delete_device(OTHER, False)  # its restore job goes with it
        restore = (await self.restore_jobs(DEVICE))[0]
        await self.a.store.update_job(restore.job_id, state="done", results=[])
        await self.a.flow._advance_all()
        doc = await self.a.flow.records.get("d-1")
        self.assertEqual(doc["state"], "failed")  # (not revoking for ever)
        self.assertEqual(doc["device_steps"][OTHER]["step"], "failed")
        self.assertIn("the device was deleted", doc["device_steps"][OTHER]["error"])
        self.assertEqual(self.a.sent[-1].state, "failed")

    async def test_a_revocation_cut_short_by_the_store_is_resumed(self):
        # the store fails queuing OTHER's restore job: DEVICE's stays queued
        # and recorded, and the next check queues OTHER's only (before:
        # nothing saved, and each new try queued DEVICE's again)
        from twisted.internet import defer

        from dmgateway.store.model import StoreUnavailable

        await self.granted()
        real = self.a.handlers.create_job

        def down_for_other(device_id, spec):
            if device_id == OTHER:
                return defer.fail(StoreUnavailable("database down"))
            return real(device_id, spec)

        self.a.handlers.create_job = down_for_other
        with self.assertRaises(StoreUnavailable):
            await self.a.flow.revoke("d-1")
        doc = await self.a.flow.records.get("d-1")
        self.assertEqual((doc["state"], doc["device_steps"][DEVICE]["step"], doc["device_steps"][OTHER]["step"]),
                         ("revoking", "restore", "granted"))
        await self.a.flow._advance_all()  # still down: nothing more queued for DEVICE
        self.flushLoggedErrors(StoreUnavailable)
        self.a.handlers.create_job = real
        await self.a.flow._advance_all()
        self.assertEqual((len(await self.restore_jobs(DEVICE)), len(await self.restore_jobs(OTHER))), (1, 1))
        doc = await self.a.flow.records.get("d-1")
        self.assertEqual(doc["device_steps"][OTHER]["step"], "restore")
        for dev_id in (DEVICE, OTHER):
            await self.a.store.update_job((await self.restore_jobs(dev_id))[0].job_id, state="done", results=[])
        await self.a.flow._advance_all()
        self.assertEqual((await self.a.flow.records.get("d-1"))["state"], "revoked")
        self.assertEqual(self.a.sent[-1].state, "revoked")

