"""
Device-function operations in the store, on both engines: the Exec's
Status, the completion alert (by Correlator, without one, repeated), the
read-back and the FwV check, the deadline, and what an attacker's alert
for another device's Correlator does (nothing).
"""

from twisted.trial.unittest import TestCase

from dmgateway.functions import build_operation
from tests.store.support import START, OnInlineSQLite, OnPostgres, OnSQLite, StoreCase, add_device, record_statements

URL = "http://127.0.0.1:8080/fw/abc?t=tok"


def fumo_alert(correlator, code="200", source="./FUMO/fw1"):
    return {"alert": 1226, "source": source, "target": None,
            "meta_type": "org.openmobilealliance.dm.firmwareupdate.downloadandupdate",
            "format": "int", "mark": None, "data": code, "correlator": correlator}


def exec_results(status):
    return [{"op": "Replace", "target": "./FUMO/fw1/DownloadAndUpdate/PkgURL", "status": 200},
            {"op": "Exec", "target": "./FUMO/fw1/DownloadAndUpdate", "status": status}]


class FunctionTestsMixin(StoreCase):
    async def operation(self, store, job_id="job1", device="IMEI:1", expect_fwv="2.0", timeout=3600):
        op = build_operation("fumo", None, {"package_url": URL}, "j" + job_id)
        job, row = await store.create_operation(job_id, device, op, timeout=timeout, expect_fwv=expect_fwv)
        return job, row

    async def test_fumo_success_is_awaited_then_read_back(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        job, row = await self.operation(store)
        self.assertEqual((job.state, row.state, job.commands[-1]["correlator"]), ("queued", "pending", "jjob1"))
        op = await store.function_job_finished("job1", "done", exec_results(202), START)
        self.assertEqual((op.state, op.deadline), ("awaiting_device", START + 3600))
        # sessions later: the alert, with the read-back job the session holds
        readback = ("readback", "rb1", op.readback)
        op = await store.function_alert("IMEI:1", fumo_alert("jjob1"), START + 50, readback)
        self.assertEqual((op.state, op.result_code, op.readback_job_id), ("verifying", 200, "rb1"))
        self.assertEqual((await store.get_job("rb1")).notify, "none")
        results = [{"op": "Get", "target": "./FUMO/fw1/State", "status": 200, "data": "100"},
                   {"op": "Get", "target": "./DevDetail/FwV", "status": 200, "data": "2.0"}]
        op = await store.function_job_finished("rb1", "done", results, START + 51)
        self.assertEqual(op.state, "done")
        self.assertEqual((op.outcome["fwv"], op.outcome["device_state"], op.outcome["verified"]), ("2.0", 100, True))
        events = [e for e in await store.events_after(0) if e["type"] == "function"]
        self.assertEqual([e["state"] for e in events], ["awaiting_device", "verifying", "done"])

    async def test_a_session_batch_looks_up_operations_only_for_jobs_that_may_have_one(self):
        from dmgateway.jobstates import change_job

        store = await self.open()
        await add_device(store, "IMEI:1")
        statements = record_statements(self)

        async def finish(job_id, results, now):
            del statements[:]
            batch = store.batch()
            change_job(batch, job_id, "running", device_id="IMEI:1", now=now)
            change_job(batch, job_id, "done", device_id="IMEI:1", now=now, expect="running", results=results)
            batch.function_job_finished(job_id, "done", results, now)
            changed, _, op = await batch.commit(short=True)
            self.assertTrue(changed)
            return op, [sql for sql in statements if "operations" in sql]

        # a plain job (create_job): no operation to look for
        await store.create_job("plain1", "IMEI:1", [{"op": "Get", "target": "./DevDetail/SwV"}])
        op, queries = await finish("plain1", [{"op": "Get", "status": 200}], START)
        self.assertIsNone(op)
        self.assertEqual(len(queries), 0)
        # an operation's job and its read-back are looked up and settle as before
        await self.operation(store)
        op, queries = await finish("job1", exec_results(202), START + 1)
        self.assertEqual((op.state, len(queries) > 0), ("awaiting_device", True))
        readback = ("readback", "rb1", op.readback)
        await store.function_alert("IMEI:1", fumo_alert("jjob1"), START + 50, readback)
        results = [{"op": "Get", "target": "./FUMO/fw1/State", "status": 200, "data": "100"},
                   {"op": "Get", "target": "./DevDetail/FwV", "status": 200, "data": "2.0"}]
        op, queries = await finish("rb1", results, START + 51)
        self.assertEqual((op.state, op.outcome["verified"]), ("done", True))
        # an old gateway's job (no plain flag written: the column's default) is looked up too
        await store.run_interaction("old", lambda txn: txn.execute(
            "INSERT INTO jobs (job_id, device_id, state, commands, atomic, notify, ui_mode, results,"
            " created, updated) VALUES ('old1', 'IMEI:1', 'queued', '[]', 0, 'none', 0, '[]', 1, 1)"))
        op, queries = await finish("old1", [], START + 60)
        self.assertEqual((op, len(queries)), (None, 1))

    async def test_wrong_fwv_after_success_fails_the_operation(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await self.operation(store)
        await store.function_job_finished("job1", "done", exec_results(202), START)
        await store.function_alert("IMEI:1", fumo_alert("jjob1"), START + 1, ("readback", "rb1", [{"op": "Get", "target": "./DevDetail/FwV"}]))
        op = await store.function_job_finished(
            "rb1", "done", [{"op": "Get", "target": "./DevDetail/FwV", "status": 200, "data": "1.0"}], START + 2)
        self.assertEqual((op.state, op.error["code"]), ("failed", "fwv_mismatch"))

    async def test_failure_code_repeated_alert_and_foreign_device(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        await self.operation(store)
        await store.function_job_finished("job1", "done", exec_results(202), START)
        # another device naming this Correlator changes nothing
        self.assertIsNone(await store.function_alert("IMEI:2", fumo_alert("jjob1"), START + 1))
        op = await store.function_alert("IMEI:1", fumo_alert("jjob1", "402"), START + 2)
        self.assertEqual((op.state, op.result_code, op.outcome["meaning"]),
                         ("failed", 402, "corrupted firmware update package"))
        # the device retries its report: the first result stands
        self.assertIsNone(await store.function_alert("IMEI:1", fumo_alert("jjob1", "200"), START + 3))
        self.assertEqual((await store.get_operation("job1")).result_code, 402)

    async def test_alert_without_correlator_matches_by_source_and_type(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await self.operation(store, expect_fwv=None)
        await store.function_job_finished("job1", "done", exec_results(202), START)
        op = await store.function_alert("IMEI:1", fumo_alert(None, source="./FUMO/fw1/DownloadAndUpdate"), START + 1)
        self.assertEqual(op.state, "done")

    async def test_alert_without_correlator_in_the_relative_form_or_without_source(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await self.operation(store, expect_fwv=None)
        await store.function_job_finished("job1", "done", exec_results(202), START)
        op = await store.function_alert("IMEI:1", fumo_alert(None, source="FUMO/fw1/DownloadAndUpdate"), START + 1)
        self.assertEqual(op.state, "done")
        await self.operation(store, job_id="job2", expect_fwv=None)
        await store.function_job_finished("job2", "done", exec_results(202), START + 2)
        op = await store.function_alert("IMEI:1", fumo_alert(None, source=None), START + 3)
        self.assertEqual((op.op_id, op.state), ("job2", "done"))
        # two open operations of that type and no Source: neither is guessed
        await self.operation(store, job_id="job3", expect_fwv=None)
        await self.operation(store, job_id="job4", expect_fwv=None)
        self.assertIsNone(await store.function_alert("IMEI:1", fumo_alert(None, source=None), START + 4))

    async def test_alert_in_the_same_session_before_the_exec_status_is_settled(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await self.operation(store, expect_fwv=None)
        op = await store.function_alert("IMEI:1", fumo_alert("jjob1"), START)
        self.assertEqual(op.state, "done")
        op = await store.function_job_finished("job1", "done", exec_results(202), START)
        self.assertIsNone(op)
        self.assertEqual((await store.get_operation("job1")).state, "done")

    async def test_refused_exec_fails_at_once(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await self.operation(store)
        op = await store.function_job_finished("job1", "failed", exec_results(405), START)
        self.assertEqual((op.state, op.error["code"], op.outcome["exec_status"]), ("failed", "exec_refused", 405))

    async def test_deadline_expires_with_a_state_read_back(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await self.operation(store, timeout=60)
        await store.function_job_finished("job1", "done", exec_results(202), START)
        self.assertEqual(await store.expire_operations(START + 59), (0, []))
        count, jobs = await store.expire_operations(START + 61)
        self.assertEqual(count, 1)
        self.assertEqual([c["target"] for c in jobs[0].commands], ["./FUMO/fw1/State"])
        self.assertEqual(jobs[0].notify, "auto")
        op = await store.get_operation("job1")
        self.assertEqual((op.state, op.error["code"]), ("expired", "expired"))
        self.assertEqual(await store.expire_operations(START + 62), (0, []))
        results = [{"op": "Get", "target": "./FUMO/fw1/State", "status": 200, "data": "30"}]
        op = await store.function_job_finished(jobs[0].job_id, "done", results, START + 70)
        self.assertEqual((op.state, op.outcome["device_state"]), ("expired", 30))
        # a late alert does not revive it
        self.assertIsNone(await store.function_alert("IMEI:1", fumo_alert("jjob1"), START + 80))

    async def test_open_operations_by_correlator(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await self.operation(store)
        found = await store.open_operations("IMEI:1", ["jjob1", "other"])
        self.assertEqual([op.op_id for op in found], ["job1"])
        self.assertEqual(await store.open_operations("IMEI:1", []), [])


class SQLiteFunctionTests(OnSQLite, FunctionTestsMixin, TestCase):
    pass


class SQLiteInlineFunctionTests(OnInlineSQLite, FunctionTestsMixin, TestCase):
    pass


class PostgresFunctionTests(OnPostgres, FunctionTestsMixin, TestCase):
    pass


class OrphanTestsMixin(StoreCase):
    async def test_interrupted_job_awaits_and_cancelled_job_fails(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        for job_id in ("a1", "b2"):
            op = build_operation("lawmo", "fully_lock", {}, "j" + job_id)
            await store.create_operation(job_id, "IMEI:1", op, timeout=600)
        await store.update_job("a1", state="failed", error={"code": "interrupted", "message": "restart"})
        await store.update_job("b2", state="failed", error={"code": "cancelled", "message": "API"})
        self.assertEqual(await store.settle_orphans(START), (2, []))
        a1, b2 = await store.get_operation("a1"), await store.get_operation("b2")
        self.assertEqual((a1.state, a1.deadline), ("awaiting_device", START + 600))
        self.assertEqual((b2.state, b2.error["code"]), ("failed", "cancelled"))
        self.assertEqual(await store.settle_orphans(START), (0, []))


class SQLiteOrphanTests(OnSQLite, OrphanTestsMixin, TestCase):
    pass


class SQLiteInlineOrphanTests(OnInlineSQLite, OrphanTestsMixin, TestCase):
    pass


class PostgresOrphanTests(OnPostgres, OrphanTestsMixin, TestCase):
    pass


class CodeTableTestsMixin(StoreCase):
    async def test_operator_table_decides_the_outcome(self):
        store = await self.open()
        store.result_codes = {"fumo": {255: (True, "download successful")}}
        await add_device(store, "IMEI:1")
        op = build_operation("fumo", None, {"package_url": URL}, "jjob1")
        await store.create_operation("job1", "IMEI:1", op, timeout=60)
        op = await store.function_alert("IMEI:1", fumo_alert("jjob1", "255"), START)
        self.assertEqual((op.state, op.outcome["meaning"]), ("done", "download successful"))


class SQLiteCodeTableTests(OnSQLite, CodeTableTestsMixin, TestCase):
    pass
