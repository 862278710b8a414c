"""
Jobs on every engine: creation, paging, pending jobs, compare-and-set,
state transitions with their events (L{dmgateway.store.jobs}).
"""

import psycopg
from twisted.internet import defer, threads
from twisted.trial.unittest import TestCase

from dmgateway import jobstates as js
from dmgateway.functions import build_operation
from dmgateway.store import Conflict, NotFound, database
from tests.store.support import (
    START, OnInlineSQLite, OnPostgres, OnReactorSQLite, OnSQLite, StoreCase, add_device, fill_other_jobs,
    record_statements, until_a_lock_waits,
)

GET = [{"op": "Get", "target": "./DevInfo/Mod"}]


class JobTestsMixin(StoreCase):
    async def test_create_and_get(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        commands = [
            {"op": "Replace", "target": "./DevDetail/Ext/Name", "data": "naïve \U0001f600", "format": "chr"},
            {"op": "Alert", "alert": 1101, "data": "OK?", "options": "MINDT=10&MAXDT=60"},
        ]
        job = await store.create_job(
            "0123abcd", "IMEI:1", commands, atomic=True, notify="sms", ui_mode=3
        )
        self.assertEqual(
            (job.job_id, job.device_id, job.state, job.commands, job.atomic, job.notify, job.ui_mode),
            ("0123abcd", "IMEI:1", "queued", commands, True, "sms", 3),
        )
        self.assertEqual((job.results, job.error, job.created, job.updated), ([], None, START, START))
        self.assertEqual(await store.get_job("0123abcd"), job)
        self.assertIsNone(await store.get_job("nope"))

        later = await store.create_job("j2", "IMEI:1", GET, now=START + 42)
        self.assertEqual((later.created, later.updated), (START + 42, START + 42))
        self.assertGreater(later.seq, job.seq)

    async def test_create_refusals(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("j1", "IMEI:1", GET)
        with self.assertRaises(NotFound):
            await store.create_job("j2", "IMEI:404", GET)
        with self.assertRaises(Conflict):
            await store.create_job("j1", "IMEI:1", GET)
        for error, kwargs in [
            (ValueError, dict(notify="pigeon")),
            (ValueError, dict(ui_mode=4)),
            (TypeError, dict(ui_mode="0")),
            (TypeError, dict(atomic=1)),
        ]:
            with self.assertRaises(error):
                await store.create_job("j3", "IMEI:1", GET, **kwargs)
        with self.assertRaises(TypeError):
            await store.create_job("j3", "IMEI:1", {"op": "Get"})
        with self.assertRaises(ValueError):
            await store.create_job("", "IMEI:1", GET)
        self.assertEqual([j.job_id for j in await store.list_jobs()], ["j1"])

    async def test_list_jobs_pages_in_creation_order(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        # Ids that sort differently from creation order.
        mine = ["z", "a", "m", "b", "y"]
        theirs = ["c", "x"]
        for i, job_id in enumerate(mine):
            await store.create_job(job_id, "IMEI:1", GET)
            if i < len(theirs):
                await store.create_job(theirs[i], "IMEI:2", GET)

        pages, after = [], None
        while True:
            page = await store.list_jobs("IMEI:1", limit=2, after=after)
            if not page:
                break
            pages.append([j.job_id for j in page])
            after = page[-1].job_id
        self.assertEqual(pages, [["z", "a"], ["m", "b"], ["y"]])
        everything = [j.job_id for j in await store.list_jobs(limit=100)]
        self.assertEqual(everything, ["z", "c", "a", "x", "m", "b", "y"])
        seqs = [j.seq for j in await store.list_jobs(limit=100)]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual([j.job_id for j in await store.list_jobs("IMEI:2", after="a")], ["x"])
        with self.assertRaises(NotFound):
            await store.list_jobs("IMEI:1", after="nope")

    async def test_pending_jobs_oldest_first(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        for job_id in ("j3", "j1", "j2", "j4"):
            await store.create_job(job_id, "IMEI:1", GET)
        await store.create_job("other", "IMEI:2", GET)
        await store.update_job("j1", state="notified")
        await store.update_job("j2", state="running")
        await store.update_job("j4", state="done")
        pending = await store.pending_jobs("IMEI:1")
        self.assertEqual([(j.job_id, j.state) for j in pending], [("j3", "queued"), ("j1", "notified")])
        self.assertEqual(await store.pending_jobs("IMEI:404"), [])

    async def test_update_job_compare_and_set(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("j1", "IMEI:1", GET)
        self.clock.advance(7)

        self.assertTrue(await store.update_job("j1", state="running", expect_state="queued"))
        self.assertFalse(await store.update_job("j1", state="notified", expect_state="queued"))
        self.assertEqual((await store.get_job("j1")).state, "running")

        results = [{"op": "Get", "target": "./DevInfo/Mod", "status": 200, "data": "X1", "format": "chr"}]
        self.assertTrue(
            await store.update_job("j1", state="done", results=results, expect_state=("notified", "running"))
        )
        job = await store.get_job("j1")
        self.assertEqual((job.state, job.results, job.error, job.updated), ("done", results, None, START + 7))

        error = {"code": "device_error", "message": "Status 500 for Get"}
        self.assertTrue(await store.update_job("j1", state="failed", error=error))
        self.assertEqual((await store.get_job("j1")).error, error)
        self.assertEqual((await store.get_job("j1")).results, results)  # untouched

        self.assertFalse(await store.update_job("nope", state="done"))
        self.assertTrue(await store.update_job("j1"))  # nothing to change: still there
        with self.assertRaises(ValueError):
            await store.update_job("j1", state="exploded")
        with self.assertRaises(ValueError):
            await store.update_job("j1", state="done", expect_state="sideways")
        with self.assertRaises(TypeError):
            await store.update_job("j1", results={"not": "a list"})

    async def test_concurrent_compare_and_set_has_one_winner(self):
        store = await self.open(pool_max=4) if self.engine == "postgresql" else await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("j1", "IMEI:1", GET)
        outcomes = await defer.gatherResults(
            [store.update_job("j1", state="running", expect_state="queued") for _ in range(8)]
        )
        self.assertEqual(sorted(outcomes), [False] * 7 + [True])

    async def test_jobs_in_state(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        await store.create_job("a", "IMEI:1", GET)
        await store.create_job("b", "IMEI:2", GET)
        await store.create_job("c", "IMEI:1", GET)
        await store.update_job("b", state="running")
        self.assertEqual([j.job_id for j in await store.jobs_in_state("queued")], ["a", "c"])
        self.assertEqual(
            [j.job_id for j in await store.jobs_in_state(["queued", "running"])], ["a", "b", "c"]
        )
        self.assertEqual([j.job_id for j in await store.jobs_in_state(("queued",), limit=1)], ["a"])
        self.assertEqual(await store.jobs_in_state("expired"), [])
        with self.assertRaises(ValueError):
            await store.jobs_in_state([])

    async def test_monitor_counts_jobs_by_state(self):
        # running jobs are not in jobs_state_seq (migration 014): they are
        # counted as all jobs less the others, and a state without jobs is left out
        store = await self.open()
        await add_device(store, "IMEI:1")
        for job_id, state in [("a", None), ("b", "running"), ("c", "running"), ("d", "done"), ("e", "failed")]:
            await store.create_job(job_id, "IMEI:1", GET)
            if state is not None:
                await store.update_job(job_id, state=state)
        grouped = await store.run_interaction(
            "grouped", lambda txn: {r["state"]: r["n"] for r in txn.fetchall(
                "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")})
        counted = (await store.monitor_snapshot(START))["jobs"]
        self.assertEqual(counted, {"queued": 1, "running": 2, "done": 1, "failed": 1})
        self.assertEqual(counted, grouped)
        for job_id in "bc":
            await store.update_job(job_id, state="done")
        self.assertEqual((await store.monitor_snapshot(START))["jobs"], {"queued": 1, "done": 3, "failed": 1})


TRANSITION_DEVICE = "IMEI:350000000000009"


class TransitionTestsMixin(StoreCase):
    """transition_job through L{dmgateway.jobstates.change_job}: a compare-and-set with its
    event in the same transaction, one winner."""

    @defer.inlineCallbacks
    def setUp(self):
        StoreCase.setUp(self)
        self.store = yield defer.ensureDeferred(self.open())
        yield defer.ensureDeferred(add_device(self.store, TRANSITION_DEVICE))
        yield self.store.create_job("j1", TRANSITION_DEVICE, commands=[{"op": "Get", "target": "./DevInfo/Mod"}])

    async def job_events(self):
        return [e for e in await self.store.events_after(0, 100) if e["type"] == "job"]

    async def test_two_processes_cannot_both_move_a_job(self):
        now = self.clock.seconds()
        # both at once (two connections on PostgreSQL): either may win, never both
        cancelled = js.change_job(self.store, "j1", "failed", device_id=TRANSITION_DEVICE, now=now,
                                  error={"code": "cancelled"})
        expired = js.change_job(self.store, "j1", "expired", device_id=TRANSITION_DEVICE, now=now, expect="queued")
        won = {"failed": await cancelled, "expired": await expired}
        self.assertEqual(sorted(won.values()), [False, True])
        (winner,) = [state for state, changed in won.items() if changed]
        self.assertEqual((await self.store.get_job("j1")).state, winner)
        (event,) = await self.job_events()
        self.assertEqual((event["device_id"], event["job_id"], event["state"]), (TRANSITION_DEVICE, "j1", winner))

    async def test_a_moved_job_is_not_moved_again(self):
        now = self.clock.seconds()
        self.assertTrue(await js.change_job(self.store, "j1", "failed", device_id=TRANSITION_DEVICE, now=now,
                                            error={"code": "cancelled"}))
        self.assertFalse(await js.change_job(self.store, "j1", "expired", device_id=TRANSITION_DEVICE, now=now,
                                             expect="queued"))
        job = await self.store.get_job("j1")
        self.assertEqual((job.state, job.error), ("failed", {"code": "cancelled"}))
        (event,) = await self.job_events()
        self.assertEqual((event["device_id"], event["job_id"], event["state"], event["error"]),
                         (TRANSITION_DEVICE, "j1", "failed", "cancelled"))

    async def test_the_change_and_its_event_share_the_batch_transaction(self):
        counted = []
        self.store.on_transaction = lambda seconds, failed: counted.append(failed)
        batch = self.store.batch()
        js.change_job(batch, "j1", "running", device_id=TRANSITION_DEVICE, now=self.clock.seconds())
        js.change_job(batch, "j1", "done", device_id=TRANSITION_DEVICE, now=self.clock.seconds(), expect="running",
                      results=[{"status": 200}])
        self.assertEqual(await batch.commit(), [True, True])
        self.assertEqual(counted, [False])
        job = await self.store.get_job("j1")
        self.assertEqual((job.state, job.results), ("done", [{"status": 200}]))
        self.assertEqual([(e["state"], e.get("error")) for e in await self.job_events()], [("done", None)])

    async def test_a_refused_compare_and_set_appends_no_event(self):
        changed = await js.change_job(self.store, "j1", "done", device_id=TRANSITION_DEVICE, now=self.clock.seconds(),
                                      expect="running")
        self.assertFalse(changed)
        self.assertEqual((await self.store.get_job("j1")).state, "queued")
        self.assertEqual(await self.job_events(), [])

    async def test_a_session_batch_ends_plain_and_other_jobs_alike(self):
        # (on SQLite, without RETURNING, the UPDATE of a plain job is tried
        # first and the ordinary one after it: which one changed the row says
        # whether the job is plain, and the job is not read back)
        statements = []
        execute = database.Txn.execute

        def traced(txn, sql, args=()):
            statements.append((sql, tuple(args)))
            return execute(txn, sql, args)

        now = self.clock.seconds()
        device = TRANSITION_DEVICE
        op = build_operation("fumo", None, {"package_url": "http://127.0.0.1:8080/fw/abc?t=tok"}, "jop1")
        await self.store.create_operation("op1", device, op, timeout=3600, expect_fwv="2.0")
        await self.store.create_job("j2", device, commands=[{"op": "Get", "target": "./DevInfo/Mod"}])
        for job_id in ("j1", "op1"):
            self.assertTrue(await js.change_job(self.store, job_id, "running", device_id=device, now=now))
        get = [{"op": "Get", "target": "./DevInfo/Mod", "status": 200, "data": "dmgw-sim"}]
        exec_202 = [{"op": "Replace", "target": "./FUMO/fw1/DownloadAndUpdate/PkgURL", "status": 200},
                    {"op": "Exec", "target": "./FUMO/fw1/DownloadAndUpdate", "status": 202}]
        self.patch(database.Txn, "execute", traced)
        batch = self.store.batch()
        js.change_job(batch, "j1", "done", device_id=device, now=now + 1, expect="running", results=get)
        js.change_job(batch, "op1", "done", device_id=device, now=now + 1, expect="running", results=exec_202)
        # (refused: j2, plain, is still queued; op1 is done by now)
        js.change_job(batch, "j2", "done", device_id=device, now=now + 1, expect="running", results=get)
        js.change_job(batch, "op1", "failed", device_id=device, now=now + 1, expect="running",
                      error={"code": "late"})
        for job_id, results in (("j1", get), ("op1", exec_202), ("j2", get)):
            batch.function_job_finished(job_id, "done", results, now + 1)
        ended = await batch.commit(short=True)
        self.assertEqual(ended[:4], [True, True, False, False])
        self.assertEqual((ended[4], ended[6]), (None, None))
        self.assertEqual((ended[5].op_id, ended[5].state, ended[5].deadline), ("op1", "awaiting_device", now + 3601))
        # the plain job ended is not looked for among the operations (j2, not
        # ended, is: its batch did not learn it is plain); no job is read back
        self.assertEqual([args[0] for sql, args in statements if "OR readback_job_id" in sql], ["op1", "j2"])
        self.assertEqual([sql for sql, _args in statements if "FROM jobs" in sql], [])
        jobs = {job.job_id: job for job in await self.store.list_jobs(device)}
        self.assertEqual({job_id: (job.state, job.results, job.error, job.updated) for job_id, job in jobs.items()},
                         {"j1": ("done", get, None, now + 1), "op1": ("done", exec_202, None, now + 1),
                          "j2": ("queued", [], None, now)})
        self.assertEqual([(e["job_id"], e["state"]) for e in await self.job_events()], [("j1", "done"), ("op1", "done")])
        self.assertEqual((await self.store.get_operation("op1")).state, "awaiting_device")

    async def test_start_jobs_moves_only_the_pending_ones_in_one_statement(self):
        device, now = TRANSITION_DEVICE, self.clock.seconds()
        for job_id in ("j2", "j3", "j4"):
            await self.store.create_job(job_id, device, commands=GET)
        self.assertTrue(await js.change_job(self.store, "j3", "failed", device_id=device, now=now,
                                            error={"code": "cancelled"}))
        self.assertTrue(await js.change_job(self.store, "j4", "notified", device_id=device, now=now))
        statements = record_statements(self)
        batch = self.store.batch()
        js.start_jobs(batch, ["j1", "j3", "j4", "nope"], now=now + 1)
        js.change_job(batch, "j1", "done", device_id=device, now=now + 2, expect="running", results=[])
        # (j3 has failed: a compare-and-set leaves it; j2 was not asked for)
        self.assertEqual(await batch.commit(short=True), [("j1", "j4"), True])
        # one update for all, and, as it missed some, one query for which it started
        self.assertEqual(len([sql for sql in statements if sql.startswith("UPDATE jobs SET state = 'running'")]), 1)
        self.assertEqual(len([sql for sql in statements if sql.startswith("SELECT job_id FROM jobs")]), 1)
        jobs = {job.job_id: (job.state, job.updated) for job in await self.store.list_jobs(device)}
        self.assertEqual(jobs, {"j1": ("done", now + 2), "j2": ("queued", now), "j3": ("failed", now),
                                "j4": ("running", now + 1)})
        # running has no job event: j3's failure and j1's end only
        self.assertEqual([(e["job_id"], e["state"]) for e in await self.job_events()],
                         [("j3", "failed"), ("j1", "done")])

    async def test_start_jobs_refusals_and_large_sets(self):
        device, now = TRANSITION_DEVICE, self.clock.seconds()
        with self.assertRaises(js.RefusedTransition):
            await self.store.start_jobs(["j1"], expect=("done",), now=now)
        with self.assertRaises(ValueError):
            await self.store.start_jobs(["j1"], expect=("paused",), now=now)
        with self.assertRaises(TypeError):
            await self.store.start_jobs([7], expect=("queued",), now=now)
        self.assertEqual(await self.store.start_jobs([], expect=("queued",), now=now), ())
        self.assertEqual((await self.store.get_job("j1")).state, "queued")
        # more ids than one statement takes (jobs.py's _START_CHUNK): every one is moved
        ids = ["k%04d" % n for n in range(1000)]
        for job_id in ids[:3] + ids[-3:]:
            await self.store.create_job(job_id, device, commands=GET)
        self.assertEqual(await self.store.start_jobs(["j1", *ids], expect=("queued",), now=now),
                         ("j1", *ids[:3], *ids[-3:]))
        self.assertEqual({job.state for job in await self.store.list_jobs(device)}, {"running"})

    async def test_start_jobs_takes_one_id_as_one_job(self):
        # (as expect does, and not as its characters: jobs "j" and "1")
        for job_id in ("j", "1"):
            await self.store.create_job(job_id, TRANSITION_DEVICE, commands=GET)
        self.assertEqual(await self.store.start_jobs("j1", expect=("queued",), now=self.clock.seconds()), ("j1",))
        jobs = {job.job_id: job.state for job in await self.store.list_jobs(TRANSITION_DEVICE)}
        self.assertEqual(jobs, {"j1": "running", "j": "queued", "1": "queued"})

    async def test_start_jobs_reads_back_only_when_some_did_not_start(self):
        device, now = TRANSITION_DEVICE, self.clock.seconds()
        for job_id in ("j2", "j3", "j4"):
            await self.store.create_job(job_id, device, commands=GET)
        statements = record_statements(self)
        # every one started (the common case): the update alone
        self.assertEqual(await js.start_jobs(self.store, ["j2", "j1"], now=now), ("j2", "j1"))
        self.assertEqual([sql.split(" ")[0] for sql in statements], ["UPDATE"])
        # one running already counts as started; one cancelled meanwhile does not
        self.assertTrue(await js.change_job(self.store, "j4", "failed", device_id=device, now=now,
                                            error={"code": "cancelled"}))
        del statements[:]
        self.assertEqual(await js.start_jobs(self.store, ["j4", "j3", "j1"], now=now + 1), ("j3", "j1"))
        self.assertEqual([sql.split(" ")[0] for sql in statements], ["UPDATE", "SELECT"])
        self.assertEqual((await self.store.get_job("j4")).state, "failed")


class SQLiteJobTests(OnSQLite, JobTestsMixin, TestCase):
    pass


class SQLiteJobIndexTests(OnSQLite, StoreCase, TestCase):
    async def test_running_jobs_leave_jobs_state_seq(self):
        # a session moves its job to running and out again without writing
        # the index (migration 014), which still serves the other states
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("a", "IMEI:1", GET)
        await store.create_job("b", "IMEI:1", GET)
        await store.update_job("a", state="running")
        indexed = await store.run_interaction("indexed", lambda txn: txn.fetchall(
            "SELECT state FROM jobs INDEXED BY jobs_state_seq WHERE state <> 'running'"))
        self.assertEqual(indexed, [{"state": "queued"}])
        self.assertEqual([j.job_id for j in await store.jobs_in_state("queued")], ["b"])

    async def test_queries_by_state_use_jobs_state_seq(self):
        # the store's own SQL, as it runs: each query for states other than
        # running repeats the index's condition, which the planner needs
        store = await self.open()
        queries = []
        fetchall = database.Txn.fetchall

        def recording(txn, sql, args=()):
            if "FROM jobs" in sql and "state" in sql:
                queries.append((sql, tuple(args)))
            return fetchall(txn, sql, args)

        self.patch(database.Txn, "fetchall", recording)
        await store.jobs_in_state(["notified"], limit=10)
        await store.jobs_in_state(["queued", "notified"])
        await store.unnotified_function_jobs()
        await store.monitor_snapshot(START)
        self.patch(database.Txn, "fetchall", fetchall)
        self.assertEqual(len(queries), 4, queries)

        def plans_txn(txn):
            return [
                " | ".join(row["detail"] for row in txn.fetchall("EXPLAIN QUERY PLAN " + sql, args))
                for sql, args in queries
            ]

        plans = await store.run_interaction("plans", plans_txn)
        self.assertEqual(len(plans), 4)
        for plan in plans:
            self.assertIn("jobs_state_seq", plan)
            self.assertNotIn("SCAN j ", plan + " ")


class SQLiteInlineJobTests(OnInlineSQLite, JobTestsMixin, TestCase):
    pass


class PostgresJobTests(OnPostgres, JobTestsMixin, TestCase):
    async def test_monitor_counts_jobs_in_one_snapshot(self):
        # PostgreSQL reads each statement of a transaction at its own moment
        # (read committed): jobs another process creates (or deletes, with
        # their device) while the monitor counts must not show up as running
        # ones, as "all jobs less the others" in two statements had it
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("a", "IMEI:1", GET)
        await store.update_job("a", state="running")
        await store.create_job("b", "IMEI:1", GET)
        fetchall = database.Txn.fetchall
        other_writes = []

        def racing(txn, sql, args=()):
            rows = fetchall(txn, sql, args)
            if "FROM jobs" in sql and not other_writes:
                with psycopg.connect(self.uri, autocommit=True) as other:
                    for job_id in ("c", "d", "e"):
                        other.execute(
                            "INSERT INTO jobs (job_id, device_id, state, commands, atomic, notify, ui_mode,"
                            " results, created, updated) VALUES (%s, 'IMEI:1', 'queued', '[]', 0, 'none', 0,"
                            " '[]', 0, 0)", (job_id,))
                    other_writes.append(job_id)
            return rows

        self.patch(database.Txn, "fetchall", racing)
        counted = (await store.monitor_snapshot(START))["jobs"]
        self.assertEqual(other_writes, ["e"])
        self.assertIn(counted, ({"queued": 1, "running": 1}, {"queued": 4, "running": 1}))


class SQLiteTransitionTests(OnSQLite, TransitionTestsMixin, TestCase):
    pass


class SQLiteInlineTransitionTests(OnInlineSQLite, TransitionTestsMixin, TestCase):
    pass


class PostgresTransitionTests(OnPostgres, TransitionTestsMixin, TestCase):
    async def test_start_jobs_takes_rows_in_the_order_other_writers_do(self):
        # remove_device (and expire_operations) move a device's pending jobs
        # one by one in seq order; start_jobs must lock them in that order
        # too, or each can hold a row the other waits for: PostgreSQL aborts
        # one (a deadlock), and the DM message fails as if the store were down.
        # Here the ids sort against seq (j1, then j0), and with many pending
        # jobs elsewhere the planner finds the two by job id.
        await self.store.create_job("j0", TRANSITION_DEVICE, commands=GET)
        await add_device(self.store, "IMEI:2")
        fill_other_jobs(self.uri, "IMEI:2", "queued")
        with psycopg.connect(self.uri) as other:
            other.execute("UPDATE jobs SET state = 'failed' WHERE job_id = 'j1'")  # remove_device's first
            starting = js.start_jobs(self.store, ["j1", "j0"], now=self.clock.seconds())
            await until_a_lock_waits(other, "start_jobs")
            # (the other writer's next job: it must not wait for start_jobs)
            await threads.deferToThread(other.execute, "UPDATE jobs SET state = 'failed' WHERE job_id = 'j0'")
            other.commit()
        self.assertEqual(await starting, ())
        self.assertEqual({job.job_id: job.state for job in await self.store.list_jobs(TRANSITION_DEVICE)},
                         {"j0": "failed", "j1": "failed"})

    async def test_start_jobs_starts_a_job_another_writer_notified_meanwhile(self):
        # (the rows are locked first, then updated: the update must see the
        # version it waited for, still one of the states a start expects)
        await self.store.create_job("j0", TRANSITION_DEVICE, commands=GET)
        now = self.clock.seconds() + 5
        with psycopg.connect(self.uri) as other:
            other.execute("UPDATE jobs SET state = 'notified' WHERE job_id = 'j1'")
            starting = js.start_jobs(self.store, ["j1", "j0"], now=now)
            await until_a_lock_waits(other, "start_jobs")
            other.commit()
        self.assertEqual(await starting, ("j1", "j0"))
        jobs = await self.store.list_jobs(TRANSITION_DEVICE)
        self.assertEqual({job.job_id: (job.state, job.updated) for job in jobs},
                         {"j0": ("running", now), "j1": ("running", now)})


class SQLiteReactorJobTests(OnReactorSQLite, JobTestsMixin, TestCase):
    pass


class SQLiteReactorTransitionTests(OnReactorSQLite, TransitionTestsMixin, TestCase):
    pass
