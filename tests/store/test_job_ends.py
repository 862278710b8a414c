"""
The jobs a DM message ends, on every engine, in one statement
(L{dmgateway.store.jobs.JobStore.end_jobs}, through
L{dmgateway.jobstates.end_jobs}): each job its own compare-and-set, end,
results, error and event; what the batch learns of plain jobs.
"""

import psycopg
from twisted.internet import defer, threads
from twisted.trial.unittest import TestCase

from dmgateway import jobstates as js
from dmgateway.functions import build_operation
from dmgateway.store import database
from dmgateway.store import jobs as jobs_module
from tests import test_dispatch_effects as dispatch_effects
from tests.fixtures import ACCOUNT
from tests.store.support import (
    OnInlineSQLite, OnOldSQLite, OnPostgres, OnReactorSQLite, OnSQLite, StoreCase, add_device, fill_other_jobs,
    until_a_lock_waits,
)
from tests.support import start_dispatcher

DEVICE = "IMEI:350000000000017"
GET = [{"op": "Get", "target": "./DevInfo/Mod"}]
GOT = [{"op": "Get", "target": "./DevInfo/Mod", "status": 200, "data": "dmgw-sim"}]
EXEC_202 = [{"op": "Replace", "target": "./FUMO/fw1/DownloadAndUpdate/PkgURL", "status": 200},
            {"op": "Exec", "target": "./FUMO/fw1/DownloadAndUpdate", "status": 202}]


def is_end_update(sql):
    """Whether C{sql} is an C{UPDATE} ending jobs (several at once, or one)."""
    return "UPDATE jobs SET" in sql and "SET state = 'running'" not in sql


class JobEndsTestsMixin(StoreCase):
    @defer.inlineCallbacks
    def setUp(self):
        StoreCase.setUp(self)
        self.store = yield defer.ensureDeferred(self.open())
        yield defer.ensureDeferred(add_device(self.store, DEVICE))
        self.now = self.clock.seconds()

    def trace(self):
        """The (sql, args) of every statement from now on."""
        statements = []
        execute = database.Txn.execute

        def traced(txn, sql, args=()):
            statements.append((sql, tuple(args)))
            return execute(txn, sql, args)

        self.patch(database.Txn, "execute", traced)
        return statements

    async def job_events(self):
        return [(e["job_id"], e["state"], e.get("error")) for e in await self.store.events_after(0, 1000)
                if e["type"] == "job"]

    async def jobs(self):
        return {job.job_id: (job.state, job.results, job.error, job.updated)
                for job in await self.store.list_jobs(DEVICE, limit=1000)}

    async def running(self, *job_ids):
        for job_id in job_ids:
            await self.store.create_job(job_id, DEVICE, commands=GET)
        self.assertEqual(await js.start_jobs(self.store, job_ids, now=self.now), job_ids)

    async def mixed_ends(self):
        """
        Six jobs ended in one batch with a function job's settling after
        them: a plain job done, an operation's job done, a queued job
        abandoned (failed from where it waits), a running job cancelled
        meanwhile (its end refused), one failed with its results left as
        they are, a queued one the session expected running (refused).
        Return the batch's results and its statements.
        """
        op = build_operation("fumo", None, {"package_url": "http://127.0.0.1:8080/fw/abc?t=tok"}, "jop1")
        await self.store.create_operation("op1", DEVICE, op, timeout=3600, expect_fwv="2.0")
        await self.running("j1", "j3", "j4")
        self.assertEqual(await js.start_jobs(self.store, ["op1"], now=self.now), ("op1",))
        for job_id in ("j2", "j5"):
            await self.store.create_job(job_id, DEVICE, commands=GET)
        await self.store.update_job("j4", results=[{"kept": True}])
        self.assertTrue((await self.store.cancel_job("j3", running=True)).cancelled)
        statements = self.trace()
        later = self.now + 1
        batch = self.store.batch()
        js.end_jobs(batch, [
            ("j1", "done", "running", GOT, None),
            ("op1", "done", "running", EXEC_202, None),
            ("j2", "failed", js.PENDING_JOB_STATES, None, {"code": "max_msg_size_too_small", "message": "m"}),
            ("j3", "done", "running", GOT, None),
            ("j4", "failed", "running", None, {"code": "interrupted", "message": "i"}),
            ("j5", "done", "running", GOT, None),
        ], device_id=DEVICE, now=later)
        for job_id in ("j1", "op1", "j2", "j3", "j4", "j5"):
            batch.function_job_finished(job_id, "done", EXEC_202 if job_id == "op1" else GOT, later)
        results = await batch.commit(short=True)
        return results, statements

    async def check_mixed_ends(self, results, statements):
        later = self.now + 1
        self.assertEqual(results[0], (True, True, True, False, True, False))
        self.assertEqual(len(results), 7)
        # (the operation's job has it awaiting the device; nothing else is an operation's)
        self.assertEqual((results[2].op_id, results[2].state), ("op1", "awaiting_device"))
        self.assertEqual([r for n, r in enumerate(results[1:]) if n != 1], [None] * 5)
        # the plain jobs the batch ended are not looked for among the
        # operations; those it did not end (j3, j5) are, as the operation's job
        self.assertEqual([args[0] for sql, args in statements if "OR readback_job_id" in sql], ["op1", "j3", "j5"])
        self.assertEqual(await self.jobs(), {
            "j1": ("done", GOT, None, later),
            "op1": ("done", EXEC_202, None, later),
            "j2": ("failed", [], {"code": "max_msg_size_too_small", "message": "m"}, later),
            "j3": ("failed", [], {"code": "cancelled", "message": "cancelled through the API"}, self.now),
            "j4": ("failed", [{"kept": True}], {"code": "interrupted", "message": "i"}, later),
            "j5": ("queued", [], None, self.now),
        })
        # the events of those changed only, in the order given (after the cancel's)
        self.assertEqual(await self.job_events(), [
            ("j3", "failed", "cancelled"), ("j1", "done", None), ("op1", "done", None),
            ("j2", "failed", "max_msg_size_too_small"), ("j4", "failed", "interrupted"),
        ])
        functions = [e for e in await self.store.events_after(0, 1000) if e["type"] == "function"]
        self.assertEqual([(e["op_id"], e["state"]) for e in functions], [("op1", "awaiting_device")])

    async def test_a_message_ends_its_jobs_in_one_statement(self):
        results, statements = await self.mixed_ends()
        # (SQLite, without RETURNING: each job's own UPDATE by its key, the
        # plain one first, then for a job not plain or refused the ordinary one)
        updates = [sql for sql, _args in statements if is_end_update(sql)]
        self.assertEqual(len(updates), 1 if self.store.database_engine.returning else 9, updates)
        self.assertFalse([sql for sql, _args in statements if "FROM jobs" in sql and not is_end_update(sql)])
        await self.check_mixed_ends(results, statements)

    async def test_an_engine_without_returning_ends_them_one_by_one(self):
        self.patch(self.store.database_engine, "returning", False)
        results, statements = await self.mixed_ends()
        self.assertEqual(len([sql for sql, _args in statements if is_end_update(sql)]), 9)
        await self.check_mixed_ends(results, statements)

    async def test_one_job_keeps_its_own_statement(self):
        await self.running("j1")
        statements = self.trace()
        batch = self.store.batch()
        js.end_jobs(batch, [("j1", "done", "running", GOT, None)], device_id=DEVICE, now=self.now + 1)
        batch.function_job_finished("j1", "done", GOT, self.now + 1)
        self.assertEqual(await batch.commit(short=True), [(True,), None])
        self.assertEqual([sql.split(" ")[0] for sql, _args in statements if "jobs" in sql], ["UPDATE"])
        self.assertFalse(any("WITH ends" in sql or "operations" in sql for sql, _args in statements))
        self.assertEqual(await self.job_events(), [("j1", "done", None)])

    async def test_ends_of_many_jobs_take_several_statements(self):
        self.patch(jobs_module, "_END_CHUNK", 2)
        ids = tuple("k%d" % n for n in range(7))
        await self.running(*ids)
        await self.store.cancel_job("k2", running=True)
        await self.store.cancel_job("k3", running=True)
        statements = self.trace()
        ended = await js.end_jobs(self.store, [(job_id, "done", "running", GOT, None) for job_id in ids],
                                  device_id=DEVICE, now=self.now + 1)
        self.assertEqual(ended, (True, True, False, False, True, True, True))
        updates = len([sql for sql, _args in statements if is_end_update(sql)])
        self.assertEqual(updates, 4 if self.store.database_engine.returning else 7)
        self.assertEqual([job_id for job_id, _s, _e in await self.job_events()][2:], ["k0", "k1", "k4", "k5", "k6"])
        self.assertEqual({job_id: state for job_id, (state, *_rest) in (await self.jobs()).items()},
                         {"k0": "done", "k1": "done", "k2": "failed", "k3": "failed", "k4": "done", "k5": "done",
                          "k6": "done"})

    async def test_a_job_given_twice_ends_once(self):
        await self.running("j1", "j2")
        ended = await js.end_jobs(self.store, [("j1", "done", "running", GOT, None),
                                               ("j2", "done", "running", GOT, None),
                                               ("j1", "failed", "running", None, {"code": "late"})],
                                  device_id=DEVICE, now=self.now + 1)
        self.assertEqual(ended, (True, True, False))
        self.assertEqual(await self.job_events(), [("j1", "done", None), ("j2", "done", None)])
        self.assertEqual((await self.jobs())["j1"], ("done", GOT, None, self.now + 1))

    async def test_a_job_that_is_no_job_is_not_ended(self):
        await self.running("j1")
        ended = await js.end_jobs(self.store, [("nope", "done", "running", GOT, None),
                                               ("j1", "done", "running", GOT, None)],
                                  device_id=DEVICE, now=self.now + 1)
        self.assertEqual(ended, (False, True))
        self.assertEqual(await self.job_events(), [("j1", "done", None)])

    async def test_refusals(self):
        await self.running("j1", "j2")
        with self.assertRaises(ValueError):  # not an end
            js.end_jobs(self.store, [("j1", "queued", "running", None, None)], device_id=DEVICE, now=self.now)
        with self.assertRaises(js.RefusedTransition):
            js.end_jobs(self.store, [("j1", "done", "queued", None, None)], device_id=DEVICE, now=self.now)
        both = [("j1", "done", ("running",), GOT, None, None)]
        for bad, error in [
            (("j2", "done", ("queued",), GOT, None, None), js.RefusedTransition),
            (("j2", "done", ("paused",), GOT, None, None), ValueError),
            ((7, "done", ("running",), GOT, None, None), TypeError),
            (("j2", "done", ("running",), {"not": "a list"}, None, None), TypeError),
            (("j2", "failed", ("running",), None, "not a dict", None), TypeError),
        ]:
            with self.assertRaises(error):
                await self.store.end_jobs(both + [bad], device_id=DEVICE, now=self.now)
        # nothing was written
        self.assertEqual({state for state, *_rest in (await self.jobs()).values()}, {"running"})
        self.assertEqual(await self.job_events(), [])


class SQLiteJobEndsTests(OnSQLite, JobEndsTestsMixin, TestCase):
    pass


class SQLiteInlineJobEndsTests(OnInlineSQLite, JobEndsTestsMixin, TestCase):
    pass


class SQLiteReactorJobEndsTests(OnReactorSQLite, JobEndsTestsMixin, TestCase):
    pass


class OldSQLiteJobEndsTests(OnOldSQLite, JobEndsTestsMixin, TestCase):
    pass


class PostgresJobEndsTests(OnPostgres, JobEndsTestsMixin, TestCase):
    async def test_ends_take_rows_in_the_order_other_writers_do(self):
        # as start_jobs (tests/store/test_jobs.py): remove_device moves a
        # device's jobs one by one in seq order; the ends must lock theirs
        # in that order too, or each waits for a row the other holds.  Here
        # the ends are given against seq (j0 after j1), as a message may.
        await self.running("j1", "j0")
        await add_device(self.store, "IMEI:2")
        fill_other_jobs(self.uri, "IMEI:2", "running")
        retries = self.store.database_engine.retries
        with psycopg.connect(self.uri) as other:
            other.execute("UPDATE jobs SET state = 'failed' WHERE job_id = 'j1'")  # remove_device's first
            ending = js.end_jobs(self.store, [("j0", "done", "running", GOT, None),
                                              ("j1", "done", "running", GOT, None)],
                                 device_id=DEVICE, now=self.now + 1)
            await until_a_lock_waits(other, "end_jobs")
            await threads.deferToThread(other.execute, "UPDATE jobs SET state = 'failed' WHERE job_id = 'j0'")
            other.commit()
        self.assertEqual(await ending, (False, False))
        # (no deadlock: one would have failed either side, this one then run again)
        self.assertEqual(self.store.database_engine.retries, retries)
        self.assertEqual(await self.job_events(), [])

    async def test_ends_a_job_another_writer_touched_meanwhile(self):
        # (the rows are locked first, then updated: the update sees the
        # version it waited for, still running)
        await self.running("j1", "j0")
        with psycopg.connect(self.uri) as other:
            other.execute("UPDATE jobs SET updated = 5 WHERE job_id = 'j1'")
            ending = js.end_jobs(self.store, [("j0", "done", "running", GOT, None),
                                              ("j1", "failed", "running", None, {"code": "x"})],
                                 device_id=DEVICE, now=self.now + 1)
            await until_a_lock_waits(other, "end_jobs")
            other.commit()
        self.assertEqual(await ending, (True, True))
        self.assertEqual(await self.jobs(), {"j0": ("done", GOT, None, self.now + 1),
                                             "j1": ("failed", [], {"code": "x"}, self.now + 1)})


class PostgresSessionEndsTests(OnPostgres, TestCase):
    """A DM session's jobs end in one statement on PostgreSQL (the
    dispatcher's tests, tests/test_dispatch_effects.py, run on SQLite)."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, dispatch_effects.DEVICE, ACCOUNT, store_uri=self.uri)

    _dispatched = dispatch_effects.SessionStatementTests
    drive = _dispatched.drive
    six_jobs_ended = _dispatched.six_jobs_ended
    test_a_message_ends_all_its_jobs_in_one_write = _dispatched.test_a_message_ends_all_its_jobs_in_one_write
    test_a_job_ended_meanwhile_is_not_counted_nor_ended_again = \
        _dispatched.test_a_job_ended_meanwhile_is_not_counted_nor_ended_again
    test_ends_are_written_in_their_order_among_other_effects = \
        _dispatched.test_ends_are_written_in_their_order_among_other_effects
