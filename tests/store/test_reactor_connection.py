"""
Short transactions on a file store's reactor connection
(L{dmgateway.store.sqlite.ReactorConnection}): run at once in the calling
thread, never waiting for a lock (the pool takes over), in the order they
were asked for, with the same errors as on the pool.
"""

import os
import sqlite3
import subprocess
import sys
import threading

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from dmgateway.store import Conflict, StoreClosed, StoreError, StoreUnavailable, open_store
from dmgateway.store.database import BUSY
from dmgateway.store.sqlite import ReactorConnection
from tests.store.support import OnSQLite, StoreCase, add_device


def _insert_counter(txn, name, value=1):
    txn.execute("INSERT INTO counters (name, value) VALUES (?, ?)", (name, value))
    return name


def _counter(txn, name):
    row = txn.fetchone("SELECT value FROM counters WHERE name = ?", (name,))
    return None if row is None else row["value"]


def _step(txn, ran, name):
    """Insert C{name}; note it in C{ran}, with whether it ran in this thread."""
    ran.append((name, threading.current_thread() is threading.main_thread()))
    return _insert_counter(txn, name)


def _page_size(txn):
    return txn.fetchone("PRAGMA page_size")


def _busy_timeout(txn):
    return list(txn.fetchone("PRAGMA busy_timeout").values())[0]


class ReactorConnectionTests(OnSQLite, StoreCase, TestCase):
    @property
    def path(self):
        return self.uri[len("sqlite:"):]

    def hold_pool(self, store):
        """A long transaction on the pool, inserting the counter "held" once released."""
        return super().hold_pool(store, lambda txn: _insert_counter(txn, "held"))

    async def test_short_transaction_answers_at_once(self):
        store = await self.open()
        d = store.run_interaction("insert", _insert_counter, "a", short=True)
        self.assertEqual(self.successResultOf(d), "a")
        self.assertEqual(self.successResultOf(store.run_interaction("read", _counter, "a", short=True)), 1)
        # committed: the pool's connection sees it
        self.assertEqual(await store.run_interaction("read", _counter, "a"), 1)

    async def test_a_transaction_ends_in_its_own_commit_statement(self):
        # (the cursor's cached COMMIT, not Connection.commit's statement
        # prepared anew; and, as that did, none once the transaction ended)
        store = await self.open()
        self.successResultOf(store.run_interaction("warm", _counter, "x", short=True))
        statements = []
        store._direct._connection.set_trace_callback(statements.append)
        self.assertEqual(self.successResultOf(store.run_interaction("insert", _insert_counter, "a", short=True)), "a")
        self.assertEqual(statements, ["BEGIN", "INSERT INTO counters (name, value) VALUES ('a', 1)", "COMMIT"])

        def ended(txn):
            _insert_counter(txn, "b")
            txn.execute("COMMIT")
            return "b"

        del statements[:]
        self.assertEqual(self.successResultOf(store.run_interaction("ended", ended, short=True)), "b")
        self.assertEqual(statements[-1], "COMMIT")
        self.assertEqual(statements.count("COMMIT"), 1)
        self.assertEqual([await store.run_interaction("read", _counter, name) for name in "ab"], [1, 1])

    async def test_session_reads_run_alone_without_a_transaction(self):
        # (short=SINGLE: one statement needs no BEGIN and COMMIT of its own)
        store = await self.open()
        await add_device(store, "IMEI:1")
        job = await store.create_job("j1", "IMEI:1", [{"op": "Get", "target": "./DevInfo/Mod"}])
        self.successResultOf(store.run_interaction("warm", _counter, "x", short=True))
        statements = []
        store._direct._connection.set_trace_callback(statements.append)
        device, jobs = self.successResultOf(store.session_reads("IMEI:1"))
        self.assertEqual((device.device_id, jobs), ("IMEI:1", [job]))
        self.assertEqual(len(statements), 1)
        self.assertTrue(statements[0].startswith("SELECT d.device_id, "), statements[0])
        self.assertEqual(self.successResultOf(store.session_reads("IMEI:404")), (None, []))
        # another connection's write lock does not stop a read (WAL)
        other = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.addCleanup(other.close)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE jobs SET state = 'notified'")
        self.assertEqual(self.successResultOf(store.session_reads("IMEI:1"))[1], [job])
        other.execute("COMMIT")
        self.assertEqual(self.successResultOf(store.session_reads("IMEI:1"))[1][0].state, "notified")
        self.assertEqual(store._direct.fallbacks, 0)
        # no transaction is left open on the connection
        self.assertFalse(store._direct._connection.in_transaction)
        # behind the pool's work it waits for its turn
        release, running = self.hold_pool(store)
        queued = store.session_reads("IMEI:1")
        self.assertNoResult(queued)
        release.set()
        await running
        self.assertEqual((await queued)[0], device)

    async def test_reactor_connection_never_waits(self):
        store = await self.open()
        timeout = self.successResultOf(store.run_interaction("pragma", _busy_timeout, short=True))
        self.assertEqual(timeout, 0)
        self.assertGreaterEqual(await store.run_interaction("pragma", _busy_timeout), 1000)

    async def test_lock_of_another_connection_sends_the_work_to_the_pool(self):
        store = await self.open()
        await store.run_interaction("warm", _counter, "x", short=True)
        other = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.addCleanup(other.close)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO counters (name, value) VALUES ('other', 7)")
        # had the reactor connection waited for the lock, this call would
        # never return: the lock is released by this very thread below
        d = store.run_interaction("insert", _insert_counter, "mine", short=True)
        self.assertNoResult(d)
        self.assertEqual(store._direct.fallbacks, 1)
        # queued behind the pool's transaction (order kept)
        later = store.run_interaction("read", _counter, "mine", short=True)
        self.assertNoResult(later)
        other.execute("COMMIT")
        self.assertEqual(await d, "mine")
        self.assertEqual(await later, 1)
        self.assertEqual(await store.run_interaction("read", _counter, "other", short=True), 7)
        # the pool has drained: the next short transaction runs at once again
        self.assertEqual(self.successResultOf(store.run_interaction("read", _counter, "mine", short=True)), 1)

    async def test_the_observer_is_told_of_each_transaction_once(self):
        store = await self.open()
        told = []
        store.on_transaction = lambda seconds, failed: told.append((seconds >= 0, failed))
        self.assertEqual(self.successResultOf(store.run_interaction("insert", _insert_counter, "a", short=True)), "a")
        self.failureResultOf(store.run_interaction("again", _insert_counter, "a", short=True), Conflict)
        self.assertEqual(told, [(True, False), (True, True)])
        # a transaction sent to the pool by a lock is told once, by the pool
        other = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.addCleanup(other.close)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO counters (name, value) VALUES ('other', 7)")
        d = store.run_interaction("insert", _insert_counter, "b", short=True)
        self.assertEqual(store._direct.fallbacks, 1)
        other.execute("COMMIT")
        self.assertEqual(await d, "b")
        self.assertEqual(told[2:], [(True, False)])

    async def test_a_failing_observer_is_logged_and_the_work_answers(self):
        store = await self.open()

        def observer(seconds, failed):
            raise RuntimeError("observer broke")

        store.on_transaction = observer
        self.assertEqual(self.successResultOf(store.run_interaction("insert", _insert_counter, "a", short=True)), "a")
        self.failureResultOf(store.run_interaction("again", _insert_counter, "a", short=True), Conflict)
        self.assertEqual(await store.run_interaction("read", _counter, "a"), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 3)

    async def test_an_event_number_read_before_another_write_is_not_used(self):
        # (SQLite numbers events from the log's highest: a short transaction
        # that read it, then meets a newer commit of another connection at
        # its first write, is rolled back and numbered again on the pool)
        store = await self.open()
        await store.append_event("tick", None, 1.0)
        other = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.addCleanup(other.close)
        runs = []

        def append_after_a_read(txn):
            runs.append(store._last_event_seq_txn(txn))
            if len(runs) == 1:
                other.execute("INSERT INTO events (seq, type, time, payload) VALUES (2, 'other', 2.0, '{}')")
            return store._append_event_txn(txn, "tick", None, 3.0, {})

        seq = await store.run_interaction("append", append_after_a_read, short=True)
        self.assertEqual((runs, seq), ([1, 2], 3))
        self.assertEqual(store._direct.fallbacks, 1)
        self.assertEqual([e["type"] for e in await store.events_after(0)], ["tick", "other", "tick"])

    async def test_lock_of_another_process_sends_the_work_to_the_pool(self):
        store = await self.open()
        await store.run_interaction("warm", _counter, "x", short=True)
        script = (
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "c.execute(\"INSERT INTO counters (name, value) VALUES ('process', 3)\")\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('COMMIT')\n"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", script, self.path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.addCleanup(child.wait)
        self.addCleanup(child.stdin.close)
        self.assertEqual(child.stdout.readline().strip(), "locked")
        # a read is not held up by a writer (WAL): it sees the last commit
        self.assertIsNone(self.successResultOf(store.run_interaction("read", _counter, "process", short=True)))
        d = store.run_interaction("insert", _insert_counter, "mine", short=True)
        self.assertNoResult(d)
        self.assertEqual(store._direct.fallbacks, 1)
        child.stdin.write("go\n")
        child.stdin.flush()
        # the pool waited for the other process's commit (its busy timeout)
        self.assertEqual(await d, "mine")
        self.assertEqual(await store.run_interaction("read", _counter, "process", short=True), 3)

    async def test_short_transactions_wait_behind_the_pool_in_order(self):
        store = await self.open()
        order = []

        def step(txn, n):
            order.append(n)
            return _insert_counter(txn, f"step{n}")

        release, running = self.hold_pool(store)
        first = store.run_interaction("step", step, 1, short=True)
        second = store.run_interaction("step", step, 2, short=True)
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.assertEqual(store._direct.fallbacks, 0)  # waiting for order, not locked out
        release.set()
        await running
        self.assertEqual(await defer.gatherResults([first, second]), ["step1", "step2"])
        self.assertEqual(order, [1, 2])
        self.successResultOf(store.run_interaction("step", step, 3, short=True))
        self.assertEqual(order, [1, 2, 3])

    async def test_errors_are_the_same_inline_and_on_the_pool(self):
        store = await self.open()
        await store.run_interaction("insert", _insert_counter, "taken")

        def bad_sql(txn):
            txn.execute("SELECT nothing FROM nowhere")

        def not_text(txn):
            txn.execute("SELECT ?", ("nul\x00",))

        def full(txn):
            pages = list(txn.fetchone("PRAGMA page_count").values())[0]
            txn.execute(f"PRAGMA max_page_count = {pages}")
            try:
                for n in range(50):
                    txn.execute("INSERT INTO counters (name, value) VALUES (?, zeroblob(65536))", (f"filler{n}",))
            finally:
                txn.fetchone("PRAGMA max_page_count = 1073741823")  # (a row: read it all)

        def readonly(txn):
            txn.execute("PRAGMA query_only = 1")
            try:
                _insert_counter(txn, "never")
            finally:
                txn.execute("PRAGMA query_only = 0")

        cases = [
            (lambda txn: _insert_counter(txn, "taken"), Conflict),
            (bad_sql, StoreError),
            (not_text, ValueError),
            (full, StoreUnavailable),
            (readonly, StoreUnavailable),
        ]
        for func, kind in cases:
            answers = []
            for short in (True, False):
                d = store.run_interaction("case", func, short=short)
                if short:
                    # failed at once, in this thread: nothing went to the pool
                    error = self.failureResultOf(d, kind).value
                else:
                    with self.assertRaises(kind) as caught:
                        await d
                    error = caught.exception
                # (kept, the exception's traceback would keep the failed cursor open)
                answers.append((type(error), str(error), type(error.__context__)))
                del error, d
            self.assertEqual(answers[0], answers[1], func)
        self.assertEqual(store._direct.fallbacks, 0)
        # nothing of the failed transactions stayed; both connections still work
        for short in (True, False):
            self.assertIsNone(await store.run_interaction("read", _counter, "never", short=short))
            self.assertIsNone(await store.run_interaction("read", _counter, "filler0", short=short))
            self.assertEqual(await store.run_interaction("insert", _insert_counter, f"after{short}", short=short),
                             f"after{short}")

    async def test_close_waits_for_work_in_flight(self):
        store = await open_store(self.uri, clock=self.clock)
        await add_device(store, "IMEI:1")
        release, running = self.hold_pool(store)
        queued = store.run_interaction("insert", _insert_counter, "queued", short=True)
        closing = store.close()
        self.assertNoResult(closing)
        with self.assertRaises(StoreClosed):
            await store.run_interaction("late", _counter, "queued", short=True)
        release.set()
        self.assertEqual(await running, "held")
        self.assertEqual(await queued, "queued")
        await closing
        self.assertIsNone(store._direct)
        reopened = await self.open()
        self.assertEqual(await reopened.run_interaction("read", _counter, "queued", short=True), 1)

    async def test_the_pool_checkpoints_what_the_reactor_connection_wrote(self):
        store = await self.open()
        store._direct.checkpoint_every = 3
        checkpoints = []
        real = store._direct.checkpoint

        def checkpoint(connection, number):
            checkpoints.append(threading.current_thread() is not threading.main_thread())
            real(connection, number)

        store._direct.checkpoint = checkpoint
        for n in range(7):
            await store.run_interaction("insert", _insert_counter, f"c{n}", short=True)
            # (reads add nothing to the WAL: they do not count)
            self.assertEqual(await store.run_interaction("read", _counter, f"c{n}", short=True), 1)
        await store.run_interaction("drain", _counter, "c0")
        self.assertEqual(checkpoints, [True, True])

    async def test_short_transactions_wait_for_the_checkpoint(self):
        # While the pool checkpoints, the reactor connection writes nothing:
        # a frame added meanwhile would stay after the checkpointed ones, and
        # the WAL would never start again from its beginning (it grew by
        # every session's frames, without bound, under a steady load).
        store = await self.open()
        store._direct.checkpoint_every = 2
        real = store._direct.checkpoint
        release = threading.Event()
        started = threading.Event()

        def held_checkpoint(connection, number):
            started.set()
            release.wait(30)
            real(connection, number)

        store._direct.checkpoint = held_checkpoint
        self.addCleanup(release.set)
        for n in range(2):
            self.successResultOf(store.run_interaction("insert", _insert_counter, f"c{n}", short=True))
        started.wait(30)
        ran = []
        queued = store.run_interaction("insert", _step, ran, "after", short=True)
        read = store.run_interaction("read", _counter, "c1", short=True)
        self.assertNoResult(queued)
        self.assertNoResult(read)
        self.assertEqual(ran, [])
        release.set()
        self.assertEqual((await queued, await read), ("after", 1))
        # (then in this thread, on the reactor connection)
        self.assertEqual(ran, [("after", True)])
        self.assertEqual(store._direct.fallbacks, 0)
        # the checkpoint done, the reactor connection runs them at once again
        self.assertEqual(self.successResultOf(store.run_interaction("read", _counter, "after", short=True)), 1)

    async def test_short_transactions_behind_the_pool_come_back_to_the_reactor_connection(self):
        # Two sessions, each asking its next transaction when the last one
        # answers, start while the pool is busy.  Queued on the pool, each
        # one found the other's there and went to the pool too, and so on
        # for as long as the load lasted; they wait for the pool to drain
        # instead, then all run on the reactor connection, in order.
        store = await self.open()
        ran = []

        def session(name, steps):
            def step(n):
                d = store.run_interaction("step", _step, ran, f"{name}{n}", short=True)
                if n + 1 < steps:
                    d.addCallback(lambda _: step(n + 1))
                return d

            return step(0)

        release, running = self.hold_pool(store)
        sessions = [session("a", 5), session("b", 5)]
        self.assertEqual(ran, [])
        release.set()
        await running
        self.assertEqual(await defer.gatherResults(sessions), ["a4", "b4"])
        self.assertEqual(
            ran, [(f"{name}{n}", True) for n in range(5) for name in "ab"],
        )
        self.assertEqual(store._direct.fallbacks, 0)

    async def test_a_long_transaction_keeps_its_turn_behind_waiting_ones(self):
        store = await self.open()
        ran = []
        release, running = self.hold_pool(store)
        first = store.run_interaction("step", _step, ran, "first", short=True)
        long = store.run_interaction("long", _step, ran, "long")
        longer = store.run_interaction("long", _step, ran, "longer")
        last = store.run_interaction("step", _step, ran, "last", short=True)
        release.set()
        await defer.gatherResults([running, first, long, longer, last])
        self.assertEqual(
            ran, [("first", True), ("long", False), ("longer", False), ("last", True)],
        )

    async def test_a_waiting_transaction_that_meets_a_lock_goes_to_the_pool(self):
        store = await self.open()
        other = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.addCleanup(other.close)
        ran = []

        def locked_out(txn, name):
            if not ran:
                # (another process takes the write lock first)
                other.execute("BEGIN IMMEDIATE")
                other.execute("INSERT INTO counters (name, value) VALUES ('other', 7)")
            return _step(txn, ran, name)

        release, running = self.hold_pool(store)
        first = store.run_interaction("step", locked_out, "first", short=True)
        second = store.run_interaction("step", _step, ran, "second", short=True)
        release.set()
        self.assertEqual(await running, "held")
        # (the pool's caller is answered first, then those behind it run)
        self.assertEqual(ran, [])
        await task.deferLater(reactor, 0, lambda: None)
        # the lock stopped the first one: it waits on the pool, the second
        # one behind it
        self.assertEqual(ran, [("first", True)])
        self.assertEqual(store._direct.fallbacks, 1)
        self.assertNoResult(first)
        self.assertNoResult(second)
        other.execute("COMMIT")
        self.assertEqual(await defer.gatherResults([first, second]), ["first", "second"])
        self.assertEqual(ran, [("first", True), ("first", False), ("second", True)])
        self.assertEqual(await store.run_interaction("read", _counter, "other", short=True), 7)

    async def test_the_wal_starts_again_after_each_checkpoint(self):
        store = await self.open()
        store._direct.checkpoint_every = 4
        wal = self.path + "-wal"
        sizes = []
        for n in range(60):
            # (a row of some 1500 bytes: a frame or more per transaction)
            await store.run_interaction("insert", _insert_counter, f"{n:04d}" + "x" * 1500, short=True)
            sizes.append(os.path.getsize(wal))
        await store.run_interaction("drain", _counter, "c0")
        # 60 transactions of a frame or more each: the file grew by 60
        # frames or more if the WAL never restarted; by none here (it holds
        # the schema's frames already, more than 4 transactions' worth)
        frame = 24 + list((await store.run_interaction("page", _page_size)).values())[0]
        self.assertLess(max(sizes) - sizes[0], 20 * frame, sizes)

    async def test_a_checkpoint_the_pool_never_ran_does_not_keep_the_work_off(self):
        # The pool failed before it ran the checkpoint (it could not
        # connect): its errback ends the reactor connection's wait, or
        # every short transaction would have gone to the pool from then on.
        store = await self.open()
        store._direct.checkpoint_every = 2
        self.successResultOf(store.run_interaction("warm", _counter, "x", short=True))

        def unreachable(func, *args):
            return defer.fail(sqlite3.OperationalError("unable to open database file"))

        store._pool.runWithConnection = unreachable
        for n in range(2):
            self.successResultOf(store.run_interaction("insert", _insert_counter, f"c{n}", short=True))
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError)), 1)
        for n in range(2, 4):
            # at once, in this thread: nothing waits on the pool
            self.successResultOf(store.run_interaction("insert", _insert_counter, f"c{n}", short=True))
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError)), 1)
        self.assertEqual(self.successResultOf(store.run_interaction("read", _counter, "c3", short=True)), 1)
        self.assertEqual(store._direct.fallbacks, 0)

    async def test_a_failed_checkpoint_does_not_keep_the_work_off(self):
        # (the checkpoint ran and failed: its end in the pool's thread lets
        # the reactor connection write again)
        store = await self.open()
        store._direct.checkpoint_every = 2
        real = store._direct.checkpoint

        class Broken:
            def execute(self, sql):
                raise sqlite3.OperationalError("disk I/O error")

        store._direct.checkpoint = lambda connection, number: real(Broken(), number)
        for n in range(2):
            self.successResultOf(store.run_interaction("insert", _insert_counter, f"c{n}", short=True))
        await store.run_interaction("drain", _counter, "c0")
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError)), 1)
        self.successResultOf(store.run_interaction("insert", _insert_counter, "after", short=True))
        self.assertEqual(store._direct.fallbacks, 0)

    def test_a_late_errback_ends_no_later_checkpoint(self):
        # (a checkpoint that ran and failed is ended by the pool's thread,
        # then by its errback: the errback must not end a later one's wait)
        direct = ReactorConnection(str(self.tmp_path / "late.db"), lambda connection: None)
        self.addCleanup(direct.close)
        direct.checkpoint_every = 1
        direct._since_checkpoint = 1
        first = direct.checkpoint_due()
        direct._ended(first)  # (in the pool's thread: it ran, and failed)
        direct._since_checkpoint = 1
        second = direct.checkpoint_due()
        direct.checkpoint_failed(first)  # (the first one's errback, late)
        self.assertIs(direct.run(lambda cursor: None), BUSY)
        direct.checkpoint_failed(second)
        self.assertIsNone(direct.run(lambda cursor: None))

    async def test_inline_0_keeps_every_transaction_on_the_pool(self):
        self.uri += "?inline=0"
        store = await self.open()
        self.assertIsNone(store._direct)
        d = store.run_interaction("insert", _insert_counter, "a", short=True)
        self.assertNoResult(d)
        self.assertEqual(await d, "a")

    async def test_memory_store_has_no_reactor_connection(self):
        self.uri = "sqlite::memory:"
        store = await self.open()
        self.assertIsNone(store._direct)
        self.assertEqual(await store.run_interaction("insert", _insert_counter, "a", short=True), "a")
