"""
Live sessions and recovery on every engine (L{dmgateway.store.sessions}).
"""

from twisted.trial.unittest import TestCase

from dmgateway.store import INTERRUPTED, Conflict, NotFound, Recovery
from dmgateway.store.devices import DEVICE_COLUMNS, device_from_row
from dmgateway.store.migrations import load_migrations
from tests.store.support import (
    START, OnInlineSQLite, OnOldSQLite, OnPostgres, OnReactorSQLite, OnSQLite, StoreCase, add_device, record_statements,
)

GET = [{"op": "Get", "target": "./DevInfo/Mod"}]


class SessionTestsMixin(StoreCase):
    async def test_lifecycle(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("j1", "IMEI:1", GET)
        session = await store.start_session(
            "s1", "IMEI:1", "node-a", START + 1, job_ids=["j1"]
        )
        self.assertEqual(
            (session.token, session.device_id, session.node, session.job_ids),
            ("s1", "IMEI:1", "node-a", ["j1"]),
        )
        self.assertEqual((session.started, session.last_activity), (START + 1, START + 1))
        self.assertEqual(await store.get_session("s1"), session)

        self.assertTrue(await store.touch_session("s1", START + 4))
        self.assertTrue(await store.touch_session("s1", START + 5, job_ids=["j1", "j2"]))
        touched = await store.get_session("s1")
        self.assertEqual((touched.last_activity, touched.job_ids), (START + 5, ["j1", "j2"]))

        ended = await store.end_session("s1", START + 9, "ok")
        self.assertEqual(ended, touched)
        device = await store.get_device("IMEI:1")
        self.assertEqual(
            device.last_session,
            {"id": "s1", "started": START + 1, "ended": START + 9, "outcome": "ok"},
        )
        self.assertIsNone(await store.get_session("s1"))
        self.assertIsNone(await store.end_session("s1", START + 10, "ok"))
        self.assertFalse(await store.touch_session("s1", START + 10))
        self.assertEqual((await store.get_job("j1")).state, "queued")  # jobs untouched

    async def test_start_with_its_jobs_and_last_activity(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        started = await store.start_session(
            "s1", "IMEI:1", "node-a", START, job_ids=["j1", "j2"], last_activity=START + 2
        )
        self.assertEqual(await store.get_session("s1"), started)
        self.assertEqual((started.job_ids, started.started, started.last_activity), (["j1", "j2"], START, START + 2))
        with self.assertRaises(TypeError):
            await store.start_session("s2", "IMEI:1", "node-a", START, last_activity="later")
        # a taken token on a missing device: the device is what is missing
        with self.assertRaises(NotFound):
            await store.start_session("s1", "IMEI:404", "node-a", START)

    async def test_start_refusals(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.start_session("s1", "IMEI:1", "node-a", START)
        with self.assertRaises(NotFound):
            await store.start_session("s2", "IMEI:404", "node-a", START)
        with self.assertRaises(Conflict):
            await store.start_session("s1", "IMEI:1", "node-b", START)
        with self.assertRaises(ValueError):
            await store.start_session("s3", "IMEI:1", "", START)
        with self.assertRaises(ValueError):
            await store.end_session("s1", START, "")
        with self.assertRaises(TypeError):
            await store.start_session("s4", "IMEI:1", "node-a", "yesterday")

    async def test_start_on_a_missing_device_in_a_batch_leaves_nothing(self):
        # (on SQLite the device is found by the sessions table's foreign key: the
        # failed INSERT is the statement's alone, and the batch still rolls back whole)
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.start_session("s0", "IMEI:1", "node-a", START)
        batch = store.batch()
        batch.set_devinfo("IMEI:1", {"Man": "Y"})
        batch.start_session("s1", "IMEI:404", "node-a", START)
        with self.assertRaises(NotFound):
            await batch.commit(short=True)
        self.assertIsNone((await store.get_device("IMEI:1")).devinfo)
        self.assertEqual([s.token for s in await store.live_sessions()], ["s0"])
        # the store goes on: the same token for a device that exists
        batch = store.batch()
        batch.start_session("s1", "IMEI:1", "node-b", START + 1, job_ids=["j1"])
        batch.set_devinfo("IMEI:1", {"Man": "Z"})
        (started, changed) = await batch.commit(short=True)
        self.assertEqual((started.token, started.device_id, started.node, started.job_ids, changed),
                         ("s1", "IMEI:1", "node-b", ["j1"], True))
        self.assertEqual(await store.get_session("s1"), started)
        self.assertEqual((await store.get_device("IMEI:1")).devinfo, {"Man": "Z"})
        # a taken token on a device that exists is a conflict, on one that does not, not found
        with self.assertRaises(Conflict):
            await store.start_session("s1", "IMEI:1", "node-c", START)
        with self.assertRaises(NotFound):
            await store.start_session("s9", "IMEI:405", "node-c", START)
        self.assertEqual(await store.get_session("s1"), started)

    async def test_start_on_a_deleted_then_recreated_device(self):
        # (the foreign key's cascade takes the old device's session; the new
        # device is found by the key as any other, in a batch with its deletion too)
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.start_session("s1", "IMEI:1", "node-a", START)
        await store.delete_device("IMEI:1")
        with self.assertRaises(NotFound):
            await store.start_session("s2", "IMEI:1", "node-a", START)
        self.assertEqual(await store.live_sessions(), [])
        await add_device(store, "IMEI:1")
        started = await store.start_session("s1", "IMEI:1", "node-b", START + 1)
        self.assertEqual([s.token for s in await store.live_sessions()], ["s1"])
        batch = store.batch()
        batch.delete_device("IMEI:1")
        batch.start_session("s3", "IMEI:1", "node-b", START + 2)
        with self.assertRaises(NotFound):
            await batch.commit(short=True)
        self.assertEqual(await store.get_session("s1"), started)
        self.assertEqual([s.token for s in await store.live_sessions()], ["s1"])

    async def test_clock_defaults_and_ending_without_outcome(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.set_last_session("IMEI:1", {"session_id": "s0", "outcome": "ok", "messages": 4})
        session = await store.start_session("s1", "IMEI:1", "node-a")
        self.assertEqual((session.started, session.last_activity), (START, START))
        self.clock.advance(30)
        ended = await store.end_session("s1")
        self.assertEqual(ended, session)
        self.assertIsNone(await store.get_session("s1"))
        # No outcome: the caller's own summary stays.
        self.assertEqual(
            (await store.get_device("IMEI:1")).last_session,
            {"session_id": "s0", "outcome": "ok", "messages": 4},
        )
        await store.start_session("s2", "IMEI:1", "node-a")
        await store.end_session("s2", outcome="aborted")
        self.assertEqual(
            (await store.get_device("IMEI:1")).last_session,
            {"id": "s2", "started": START + 30, "ended": START + 30, "outcome": "aborted"},
        )

    async def test_drop_session_removes_it_without_reading_it(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.set_last_session("IMEI:1", {"session_id": "s0", "outcome": "ok"})
        await store.create_job("j1", "IMEI:1", GET)
        await store.start_session("s1", "IMEI:1", "node-a", START, job_ids=["j1"])
        kept = await store.start_session("s2", "IMEI:1", "node-b", START + 1)
        statements = record_statements(self)
        self.assertTrue(await store.drop_session("s1"))
        self.assertEqual(statements, ["DELETE FROM sessions WHERE session_id = ?"])
        self.assertFalse(await store.drop_session("s1"))
        self.assertEqual(await store.live_sessions(), [kept])
        # the caller's summary and the jobs stay as they were
        self.assertEqual((await store.get_device("IMEI:1")).last_session, {"session_id": "s0", "outcome": "ok"})
        self.assertEqual((await store.get_job("j1")).state, "queued")
        batch = store.batch()
        batch.drop_session("s2")
        batch.drop_session("s404")
        self.assertEqual(await batch.commit(short=True), [True, False])
        self.assertEqual(await store.live_sessions(), [])

    async def test_live_sessions_filters(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        await store.start_session("s2", "IMEI:1", "node-a", START + 2)
        await store.start_session("s1", "IMEI:2", "node-b", START + 1)
        await store.start_session("s3", "IMEI:2", "node-a", START + 3)
        ids = lambda sessions: [s.token for s in sessions]  # noqa: E731
        self.assertEqual(ids(await store.live_sessions()), ["s1", "s2", "s3"])
        self.assertEqual(ids(await store.live_sessions("node-a")), ["s2", "s3"])
        self.assertEqual(ids(await store.live_sessions(device_id="IMEI:2")), ["s1", "s3"])
        self.assertEqual(ids(await store.live_sessions("node-b", "IMEI:2")), ["s1"])
        self.assertEqual(await store.live_sessions("node-c"), [])

    async def test_recover_settles_what_a_dead_node_left(self):
        store = await self.open()
        for device_id in ("D1", "D2", "D3"):
            await add_device(store, device_id)
        await store.create_job("j1", "D1", GET)
        await store.create_job("j2", "D1", GET)
        await store.create_job("j3", "D1", GET)
        await store.create_job("j4", "D2", GET)
        await store.create_job("j5", "D3", GET)
        await store.update_job("j1", state="running")
        await store.update_job("j3", state="done", results=[{"status": 200}])
        await store.update_job("j4", state="running")
        await store.update_job("j5", state="notified")
        await store.start_session("s1", "D1", "node-a", START + 1, job_ids=["j3", "j1"])
        await store.start_session("s2", "D2", "node-b", START + 2, job_ids=["j4"])
        await store.start_session("s3", "D3", "node-a", START + 3, job_ids=["j5"])

        recovery = await store.recover("node-a", START + 50)
        self.assertEqual(
            recovery,
            Recovery(
                node="node-a",
                sessions=("s1", "s3"),
                failed_jobs=("j1",),
                devices=("D1", "D3"),
                queued_jobs=2,
            ),
        )
        self.assertEqual(
            recovery.counts(), {"sessions_ended": 2, "jobs_failed": 1, "jobs_queued": 2}
        )
        j1 = await store.get_job("j1")
        self.assertEqual((j1.state, j1.error, j1.updated), ("failed", INTERRUPTED, START + 50))
        states = {j.job_id: j.state for j in await store.list_jobs()}
        self.assertEqual(
            states, {"j1": "failed", "j2": "queued", "j3": "done", "j4": "running", "j5": "notified"}
        )
        self.assertIsNone((await store.get_job("j3")).error)
        self.assertEqual([s.token for s in await store.live_sessions()], ["s2"])
        self.assertEqual(
            (await store.get_device("D1")).last_session,
            {"id": "s1", "started": START + 1, "ended": START + 50, "outcome": "interrupted"},
        )
        self.assertIsNone((await store.get_device("D2")).last_session)

        again = await store.recover("node-a", START + 60)
        self.assertEqual(again, Recovery(node="node-a"))
        self.assertEqual(again.counts(), {"sessions_ended": 0, "jobs_failed": 0, "jobs_queued": 0})


    async def test_settle_session_ends_one_session_and_fails_its_running_jobs(self):
        store = await self.open()
        await add_device(store, "D1")
        for job_id in ("j1", "j2", "j3"):
            await store.create_job(job_id, "D1", GET)
        await store.update_job("j1", state="running")
        await store.update_job("j2", state="done", results=[{"status": 200}])
        await store.update_job("j3", state="running")
        await store.start_session("s1", "D1", "node-a", START + 1, job_ids=["j1", "j2"])
        await store.start_session("s2", "D1", "node-a", START + 2, job_ids=["j3"])
        error = {"code": "store_unavailable", "message": "the session's end could not be written"}
        events = await store.last_event_seq()

        self.assertEqual(await store.settle_session("s1", START + 50, "store_unavailable", error), ["j1"])
        j1 = await store.get_job("j1")
        self.assertEqual((j1.state, j1.error, j1.updated), ("failed", error, START + 50))
        self.assertEqual([(await store.get_job(j)).state for j in ("j2", "j3")], ["done", "running"])
        self.assertEqual(await store.last_event_seq(), events + 1)  # j1's job event
        self.assertEqual([s.token for s in await store.live_sessions()], ["s2"])  # the other one stays
        self.assertEqual(
            (await store.get_device("D1")).last_session,
            {"id": "s1", "started": START + 1, "ended": START + 50, "outcome": "store_unavailable"},
        )
        # not live (settled already, or never written): nothing done
        self.assertEqual(await store.settle_session("s1", START + 60, "store_unavailable", error), [])
        self.assertEqual(await store.settle_session("nope", START + 60, "store_unavailable", error), [])
        self.assertEqual(await store.last_event_seq(), events + 1)

    async def test_session_reads_are_the_device_and_its_pending_jobs(self):
        store = await self.open()
        self.assertEqual(await store.session_reads("IMEI:404"), (None, []))
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        await store.update_device("IMEI:1", devinfo={"Man": "m", "Mod": "x"})
        self.assertEqual(await store.session_reads("IMEI:1"), (await store.get_device("IMEI:1"), []))
        for job_id, device_id in (("a", "IMEI:1"), ("b", "IMEI:2"), ("c", "IMEI:1"), ("d", "IMEI:1"),
                                  ("e", "IMEI:1"), ("f", "IMEI:1")):
            await store.create_job(job_id, device_id, GET, atomic=job_id == "f", ui_mode=2)
        await store.update_job("a", state="running")
        await store.update_job("c", state="notified")
        await store.update_job("e", state="done", results=[{"op": "Get", "status": 200}])
        statements = record_statements(self)
        device, jobs = await store.session_reads("IMEI:1")
        read = list(statements)
        self.assertEqual(device, await store.get_device("IMEI:1"))
        self.assertEqual(jobs, await store.pending_jobs("IMEI:1"))
        self.assertEqual([(job.job_id, job.state, job.atomic) for job in jobs],
                         [("c", "notified", False), ("d", "queued", False), ("f", "queued", True)])
        # the device with its first two jobs; the jobs after them by
        # themselves, without the device's columns again
        self.assertEqual(len(read), 2)
        self.assertNotIn("server_id", read[1])
        # one pending job, or none: one statement
        # two: maybe more, asked (none)
        await store.update_job("c", state="running")
        del statements[:]
        self.assertEqual([job.job_id for job in (await store.session_reads("IMEI:1"))[1]], ["d", "f"])
        self.assertEqual(len(statements), 2)
        await store.update_job("d", state="running")
        del statements[:]
        self.assertEqual([job.job_id for job in (await store.session_reads("IMEI:1"))[1]], ["f"])
        self.assertEqual(len(statements), 1)
        await store.update_job("f", state="running")
        del statements[:]
        self.assertEqual((await store.session_reads("IMEI:1"))[1], [])
        self.assertEqual(len(statements), 1)

    async def test_session_reads_fetch_no_inventory_column(self):
        # (a DM session reads its device in every first message: only what a Device holds)
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.update_device("IMEI:1", devinfo={"Man": "m", "Mod": "x", "FwV": "1"},
                                  last_session={"ended": "2026-01-02T03:04:05Z"})
        await store.create_job("a", "IMEI:1", GET)
        statements = record_statements(self)
        device, jobs = await store.session_reads("IMEI:1")
        self.assertEqual(len(statements), 1)
        for column in ("devinfo_man", "devinfo_mod", "devinfo_fwv", "last_session_at", "d.*"):
            self.assertNotIn(column, statements[0])
        self.assertEqual((device, jobs), (await store.get_device("IMEI:1"), await store.pending_jobs("IMEI:1")))


    async def test_session_reads_select_every_column_a_device_is_made_of(self):
        # session_reads names the columns it selects (DEVICE_COLUMNS): a Device
        # field whose column is missing there would not fail, it would come out
        # as its default in every DM session (reported, device_challenge, or a
        # field added later with a default)
        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.update_device("IMEI:1", devinfo={"Man": "m"}, last_session={"outcome": "ok"},
                                  reported={"./Ext/A": "1"}, device_challenge={"type": "md5", "nonce": "bg=="})
        row = await store.run_interaction(
            "test", lambda txn: txn.fetchone("SELECT * FROM devices WHERE device_id = ?", ("IMEI:1",)))
        read = set()

        class Recorded(dict):
            def __getitem__(self, column):
                read.add(column)
                return dict.__getitem__(self, column)

        device = device_from_row(Recorded(row))
        self.assertEqual(sorted(read - set(DEVICE_COLUMNS)), [])
        self.assertEqual((await store.session_reads("IMEI:1"))[0], device)
        self.assertEqual((device.reported, device.device_challenge),
                         ({"./Ext/A": "1"}, {"type": "md5", "nonce": "bg=="}))

    async def test_session_reads_columns_are_in_the_order_known(self):
        # (session_reads reads its rows' columns by their positions in the
        # order it knows its SQL gives: the engine's cursor must describe
        # the same, in the same order)
        from dmgateway.store.sessions import (
            _MORE_JOBS_ORDER, _MORE_JOBS_SQL, _SESSION_READS_ORDER, _SESSION_READS_SQL,
        )
        from dmgateway.store.model import PENDING_JOB_STATES

        store = await self.open()
        await add_device(store, "IMEI:1")
        await store.create_job("a", "IMEI:1", GET)
        await store.create_job("b", "IMEI:1", GET)

        def described(txn, sql, args):
            txn.execute(sql, args)
            names = tuple(column[0] for column in txn.cursor.description)
            rows = txn.cursor.fetchall()
            return names, len(rows)

        pending = PENDING_JOB_STATES
        self.assertEqual(
            await store.run_interaction("test", described, _SESSION_READS_SQL, (*pending, "IMEI:1")),
            (_SESSION_READS_ORDER, 2),
        )
        self.assertEqual(
            await store.run_interaction("test", described, _MORE_JOBS_SQL, ("IMEI:1", *pending, 0)),
            (_MORE_JOBS_ORDER, 2),
        )

    async def test_live_sessions_survive_the_migration_to_a_keyed_table(self):
        store = await self.open(migrations=[m for m in load_migrations() if m.version < 9])
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        one = await store.start_session("s1", "IMEI:1", "node-a", START, job_ids=["j1"])
        two = await store.start_session("s2", "IMEI:2", "node-b", START + 1)
        self.assertEqual(await store.migrate(), [m.version for m in load_migrations() if m.version >= 9])
        self.assertEqual(await store.live_sessions(), [one, two])
        self.assertEqual(await store.live_sessions(node="node-b"), [two])
        with self.assertRaises(Conflict):
            await store.start_session("s1", "IMEI:2", "node-a", START)
        with self.assertRaises(NotFound):
            await store.start_session("s3", "IMEI:404", "node-a", START)
        self.assertTrue(await store.delete_device("IMEI:1"))  # its session goes with it
        self.assertEqual(await store.live_sessions(), [two])
        self.assertEqual(await store.end_session("s2", START + 2), two)

    async def test_sessions_have_no_device_index_and_still_go_with_their_device(self):
        # (migration 012: one b-tree written per session start and end, not two)
        store = await self.open(migrations=[m for m in load_migrations() if m.version < 12])
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        one = await store.start_session("s1", "IMEI:1", "node-a", START, job_ids=["j1"])
        two = await store.start_session("s2", "IMEI:2", "node-b", START + 1)
        self.assertEqual(await self.session_indexes(store), ["sessions_device"])
        self.assertEqual(await store.migrate(), [m.version for m in load_migrations() if m.version >= 12])
        self.assertEqual(await self.session_indexes(store), [])
        self.assertEqual(await store.live_sessions(), [one, two])
        self.assertEqual(await store.live_sessions(device_id="IMEI:2"), [two])
        three = await store.start_session("s3", "IMEI:1", "node-b", START + 2)
        self.assertTrue(await store.delete_device("IMEI:1"))  # its sessions go with it
        self.assertEqual(await store.live_sessions(), [two])
        self.assertIsNone(await store.get_session(three.token))
        self.assertEqual(await store.end_session("s2", START + 3), two)
        self.assertEqual(await store.live_sessions(), [])

    async def session_indexes(self, store):
        """The names of the indexes on C{sessions} other than its primary key's."""
        if self.engine == "sqlite":
            sql = ("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'"
                   " AND sql IS NOT NULL ORDER BY name")
        else:
            sql = ("SELECT indexname AS name FROM pg_indexes WHERE tablename = 'sessions'"
                   " AND indexname <> 'sessions_keyed_pkey' AND indexname NOT LIKE '%pkey' ORDER BY indexname")
        rows = await store.run_interaction("indexes", lambda txn: txn.fetchall(sql))
        return [row["name"] for row in rows]


class SQLiteSessionTests(OnSQLite, SessionTestsMixin, TestCase):
    pass


class SQLiteInlineSessionTests(OnInlineSQLite, SessionTestsMixin, TestCase):
    pass


class PostgresSessionTests(OnPostgres, SessionTestsMixin, TestCase):
    pass


class SQLiteReactorSessionTests(OnReactorSQLite, SessionTestsMixin, TestCase):
    pass


class OldSQLiteSessionTests(OnOldSQLite, SessionTestsMixin, TestCase):
    pass
