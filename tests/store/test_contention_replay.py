"""
A PostgreSQL transaction run again after losing to a concurrent one must
take effect once: the store's real batches (a DM session's short batch,
whose events are numbered and written at its end, and a long one) and a
whole DM session through the dispatcher, on a database that rolls back the
first run of every transaction writing events (a serialization failure at
its last statement, or at its COMMIT).
"""

import os

import psycopg
from twisted.internet import defer, task
from twisted.trial.unittest import TestCase

from dmgateway.client import ClientSession
from dmgateway.dispatch import Dispatcher
from dmgateway.handlers import Handlers
from dmgateway.jobstates import change_job, start_jobs
from tests.fixtures import ACCOUNT, DEVICE
from dmgateway.store import StoreUnavailable
from tests.store.support import OnPostgres, StoreCase, add_device
from tests.support import gateway_config
from tests.test_dispatch import GET_SWV, account

# Every transaction that inserts events loses its first run, and only its
# first: the sequence survives the rollback, the transaction-local setting
# does not (so each run asks the sequence once, whatever rows it inserts).
_LOSE_FIRST_RUN = """
CREATE SEQUENCE review_runs;
CREATE FUNCTION review_lose_first_run() RETURNS trigger AS $$
BEGIN
    IF current_setting('review.asked', true) IS DISTINCT FROM 'y' THEN
        PERFORM set_config('review.asked', 'y', true);
        IF nextval('review_runs') % 2 = 1 THEN
            RAISE EXCEPTION 'could not serialize access (forced)' USING ERRCODE = '40001';
        END IF;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"""

_AT_LAST_STATEMENT = (
    "CREATE TRIGGER review_lose AFTER INSERT ON events"
    " FOR EACH STATEMENT EXECUTE FUNCTION review_lose_first_run()"
)

_AT_COMMIT = (
    "CREATE CONSTRAINT TRIGGER review_lose AFTER INSERT ON events"
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION review_lose_first_run()"
)


class _Replays(OnPostgres, StoreCase):
    #: where the first run loses: _AT_LAST_STATEMENT or _AT_COMMIT
    trigger = None

    async def open_losing(self):
        store = await self.open()
        with psycopg.connect(self.uri, autocommit=True) as admin:
            admin.execute(_LOSE_FIRST_RUN)
            admin.execute(self.trigger)
        return store

    def counted(self, table, where="TRUE"):
        with psycopg.connect(self.uri) as conn:
            return conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}").fetchone()[0]

    def events_counter(self):
        with psycopg.connect(self.uri) as conn:
            return conn.execute("SELECT value FROM counters WHERE name = 'events'").fetchone()[0]

    async def test_a_session_batch_run_again_writes_once(self):
        store = await self.open_losing()
        await add_device(store, DEVICE)
        job = await store.create_job("job-1", DEVICE, GET_SWV["commands"], now=self.clock.seconds())
        now = self.clock.seconds()
        batch = store.batch()
        start_jobs(batch, [job.job_id], now=now)
        batch.start_session("tok-1", DEVICE, "node-1", started=now, job_ids=[job.job_id], last_activity=now)
        batch.append_event("first", DEVICE, now, {"n": 1})
        batch.record_auth_failure(DEVICE, now, max_failures=10, lockout=60)
        change_job(batch, job.job_id, "done", device_id=DEVICE, now=now, expect="running",
                   results=[{"ok": True}], error=None)
        batch.append_event("second", DEVICE, now, {"n": 2})
        batch.drop_session("tok-1")
        results = await batch.commit(short=True)
        self.assertEqual(store.database_engine.retries, 1)
        seqs = [r for r in results if type(r) is int and r > 0]
        events = await store.events_after(0, 100)
        self.assertEqual([e["type"] for e in events], ["first", "job", "second"])
        # the numbers answered are those of the run that was committed
        self.assertEqual(results[2], events[0]["seq"])
        self.assertEqual(results[-2], events[2]["seq"])
        self.assertTrue(seqs)
        self.assertEqual(self.events_counter(), events[-1]["seq"])
        self.assertEqual((await store.get_device(DEVICE)).auth_failures, 1)
        self.assertEqual((await store.get_job(job.job_id)).state, "done")
        self.assertEqual(self.counted("sessions"), 0)

    async def test_a_long_batch_run_again_writes_once(self):
        store = await self.open_losing()
        await add_device(store, DEVICE)
        now = self.clock.seconds()
        batch = store.batch()
        batch.append_event("first", DEVICE, now)
        batch.record_auth_failure(DEVICE, now, max_failures=10, lockout=60)
        batch.append_event("second", DEVICE, now)
        first, _device, second = await batch.commit()
        self.assertEqual(store.database_engine.retries, 1)
        events = await store.events_after(0, 100)
        self.assertEqual([(e["type"], e["seq"]) for e in events], [("first", first), ("second", second)])
        self.assertEqual(self.events_counter(), second)
        self.assertEqual((await store.get_device(DEVICE)).auth_failures, 1)

    async def test_a_whole_dm_session_whose_writes_all_lose_once(self):
        store = await self.open_losing()
        clock = task.Clock()
        clock.advance(self.clock.seconds())
        dispatcher = Dispatcher(store, gateway_config(session_timeout=60), clock=clock)
        handlers = Handlers(dispatcher)
        await dispatcher.start()
        await handlers.put_device(DEVICE, ACCOUNT)
        job = await handlers.create_job(DEVICE, GET_SWV)
        retried = store.database_engine.retries
        session = ClientSession(account(), random_bytes=os.urandom)
        request = session.start()
        while request is not None:
            token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
            reply = await dispatcher.handle_dm(request.body, encoding="xml", token=token)
            self.assertEqual(reply.code, 200, reply.body)
            request = session.receive(reply.body, {"content-type": reply.content_type})
        self.assertEqual(session.outcome, "completed")
        self.assertGreater(store.database_engine.retries, retried)
        self.assertEqual((await handlers.get_job(job["id"]))["state"], "done")
        events = await store.events_after(0, 100)
        types = [e["type"] for e in events]
        self.assertEqual((types.count("session"), types.count("job")), (1, 1), types)
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)))
        self.assertEqual(self.events_counter(), len(events))
        self.assertEqual(self.counted("sessions"), 0)
        self.assertEqual(dispatcher._repairs, [])
        self.assertFalse(dispatcher.outage.active)
        await dispatcher.stop()


class LosingAtTheLastStatementTests(_Replays, TestCase):
    trigger = _AT_LAST_STATEMENT


class LosingAtCommitTests(_Replays, TestCase):
    trigger = _AT_COMMIT


class LostDuringThePauseTests(OnPostgres, StoreCase, TestCase):
    async def test_a_connection_lost_before_the_run_again_is_unavailable_and_the_pool_recovers(self):
        store = await self.open(pool_min=1, pool_max=1)
        await add_device(store, DEVICE)
        with psycopg.connect(self.uri, autocommit=True) as admin:
            admin.execute(_LOSE_FIRST_RUN)
            admin.execute(_AT_LAST_STATEMENT)
        engine = store.database_engine
        pids = []

        def killed_meanwhile(seconds):
            # (in the pool's thread, between the runs: the server ends the backend)
            with psycopg.connect(self.uri, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
                while admin.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = %s",
                                    (pids[0],)).fetchone()[0]:
                    pass

        engine._sleep = killed_meanwhile
        pids.append(await store.run_interaction(
            "pid", lambda txn: txn.fetchone("SELECT pg_backend_pid() AS pid")["pid"]))
        with self.assertRaises(StoreUnavailable):
            await store.append_event("lost", DEVICE, self.clock.seconds())
        self.flushLoggedErrors()
        # the pool connects again: the next transaction works, and runs again if it loses
        engine._sleep = lambda seconds: None
        seq = await store.append_event("kept", DEVICE, self.clock.seconds())
        self.assertEqual([(e["type"], e["seq"]) for e in await store.events_after(0)], [("kept", seq)])
