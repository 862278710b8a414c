"""
Transactions asked while a file store's pool is busy
(L{dmgateway.store.database.Database._wait}): each one answers once, in
the order asked, with the errors and the metrics it would have had on
the pool, whatever its caller does when it answers (raises, asks another
transaction, closes the store) and whatever another connection's lock
does to it.
"""

import os
import sqlite3
import threading

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from dmgateway.store import Conflict, StoreClosed
from dmgateway.store.database import SINGLE
from dmgateway.store.sqlite import PAGE_SIZE
from tests.store.support import OnSQLite, StoreCase, add_device


def _log(txn, ran, name):
    """Append C{name} to the table C{log} (its row number says when) and to C{ran}."""
    ran.append((name, threading.current_thread() is threading.main_thread()))
    txn.execute("INSERT INTO log (name) VALUES (?)", (name,))
    return name


def _logged(txn):
    return [row["name"] for row in txn.fetchall("SELECT name FROM log ORDER BY n")]


def _insert_counter(txn, name):
    txn.execute("INSERT INTO counters (name, value) VALUES (?, 1)", (name,))
    return name


class WaitingTransactionTests(OnSQLite, StoreCase, TestCase):
    @property
    def path(self):
        return self.uri[len("sqlite:"):]

    async def open_with_log(self):
        store = await self.open()
        await store.run_interaction(
            "log", lambda txn: txn.execute("CREATE TABLE log (n INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT)")
        )
        return store

    def other_connection(self):
        other = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.addCleanup(other.close)
        return other

    async def test_answers_come_in_the_order_asked(self):
        # (as they did when everything behind the pool's work queued on the
        # pool: a caller of the pool is answered before those behind it)
        store = await self.open_with_log()
        ran = []
        answered = []
        release, running = self.hold_pool(store)
        running.addCallback(answered.append)
        store.run_interaction("a", _log, ran, "a", short=True).addCallback(answered.append)
        store.run_interaction("b", _log, ran, "b").addCallback(answered.append)
        last = store.run_interaction("c", _log, ran, "c", short=True)
        last.addCallback(answered.append)
        release.set()
        await last
        self.assertEqual(answered, ["held", "a", "b", "c"])
        self.assertEqual(ran, [("a", True), ("b", False), ("c", True)])

    async def test_a_caller_that_gives_up_on_the_pool_lets_no_one_jump_ahead(self):
        # (a long-poll whose client went away cancels its Deferred: the
        # transaction still runs on the pool, what is asked after it still
        # sees its effects, and close() still waits for it)
        store = await self.open_with_log()
        ran = []
        release, running = self.hold_pool(store, lambda txn: _log(txn, ran, "held"))
        running.cancel()
        self.failureResultOf(running, defer.CancelledError)
        read = store.run_interaction("read", _logged, short=SINGLE)
        self.assertNoResult(read)
        closing = store.close()
        self.assertNoResult(closing)
        release.set()
        self.assertEqual(await read, ["held"])
        await closing
        self.assertIsNone(store._direct)

    async def test_a_caller_that_raises_keeps_no_one_else_waiting(self):
        # (the callers' callbacks run inside the drain, one after another)
        store = await self.open_with_log()
        ran = []
        release, running = self.hold_pool(store)
        first = store.run_interaction("a", _log, ran, "a", short=True)
        first.addCallback(lambda _: 1 / 0)
        second = store.run_interaction("b", _log, ran, "b", short=True)
        second.addCallback(lambda _: 1 / 0)
        third = store.run_interaction("c", _log, ran, "c", short=True)
        release.set()
        # the pool's caller has its own answer, not a waiting caller's error
        self.assertEqual(await running, "held")
        self.assertEqual(await third, "c")
        self.failureResultOf(first, ZeroDivisionError)
        self.failureResultOf(second, ZeroDivisionError)
        self.assertEqual(ran, [("a", True), ("b", True), ("c", True)])
        self.assertEqual(self.successResultOf(store.run_interaction("log", _logged, short=True)), ["a", "b", "c"])

    async def test_a_caller_that_asks_again_is_served_after_those_waiting(self):
        store = await self.open_with_log()
        ran = []
        release, running = self.hold_pool(store)
        asked = []

        def again(_, name, short):
            asked.append(store.run_interaction(name, _log, ran, name, short=short))

        first = store.run_interaction("a", _log, ran, "a", short=True)
        first.addCallback(again, "a2", True)
        second = store.run_interaction("b", _log, ran, "b", short=True)
        second.addCallback(again, "b2", False)
        third = store.run_interaction("c", _log, ran, "c", short=SINGLE)
        third.addCallback(again, "c2", True)
        release.set()
        await running
        await defer.gatherResults([first, second, third])
        self.assertEqual(len(asked), 3)
        await defer.gatherResults(asked)
        self.assertEqual(
            ran, [("a", True), ("b", True), ("c", True), ("a2", True), ("b2", False), ("c2", True)],
        )
        self.assertEqual(await store.run_interaction("log", _logged), ["a", "b", "c", "a2", "b2", "c2"])

    async def test_a_caller_that_closes_the_store_lets_the_others_run_first(self):
        store = await self.open_with_log()
        ran = []
        release, running = self.hold_pool(store)
        closing = []
        first = store.run_interaction("a", _log, ran, "a", short=True)
        first.addCallback(lambda result: closing.append(store.close()) or result)
        second = store.run_interaction("b", _log, ran, "b")
        third = store.run_interaction("c", _log, ran, "c", short=True)
        release.set()
        self.assertEqual(await running, "held")
        self.assertEqual(await defer.gatherResults([first, second, third]), ["a", "b", "c"])
        await closing[0]
        self.assertEqual(ran, [("a", True), ("b", False), ("c", True)])
        self.failureResultOf(store.run_interaction("late", _logged, short=True), StoreClosed)
        reopened = await self.open()
        self.assertEqual(await reopened.run_interaction("log", _logged), ["a", "b", "c"])

    async def test_close_waits_for_those_drained_onto_the_pool_after_it(self):
        # (a long one behind a short one goes to the pool only once the
        # drain reaches it, after close() took its list of work in flight)
        store = await self.open_with_log()
        ran = []
        release, running = self.hold_pool(store)
        asked = [
            store.run_interaction("a", _log, ran, "a", short=True),
            store.run_interaction("b", _log, ran, "b"),
            store.run_interaction("c", _log, ran, "c", short=True),
            store.run_interaction("d", _log, ran, "d"),
        ]
        closing = store.close()
        self.failureResultOf(store.run_interaction("late", _logged, short=True), StoreClosed)
        release.set()
        self.assertEqual(await defer.gatherResults(asked), ["a", "b", "c", "d"])
        await closing
        self.assertEqual(ran, [("a", True), ("b", False), ("c", True), ("d", False)])
        self.assertIsNone(store._direct)
        reopened = await self.open()
        self.assertEqual(await reopened.run_interaction("log", _logged), ["a", "b", "c", "d"])

    async def test_order_holds_when_a_lock_sends_waiting_ones_to_the_pool(self):
        # Short and long ones mixed wait behind the pool; another
        # connection takes the write lock as the first short one runs, and
        # again as a later one runs: those go to the pool (which waits for
        # the lock), and every one behind them waits its turn.
        store = await self.open_with_log()
        other = self.other_connection()
        ran = []
        locks = []

        def locked_out(txn, name):
            if name not in locks:
                locks.append(name)
                other.execute("BEGIN IMMEDIATE")
                other.execute("INSERT INTO log (name) VALUES ('other-' || ?)", (name,))
                # (released from the reactor while the pool's thread waits for it)
                reactor.callLater(0.05, other.execute, "COMMIT")
            return _log(txn, ran, name)

        release, running = self.hold_pool(store)
        asked = [
            store.run_interaction("s1", locked_out, "s1", short=True),
            store.run_interaction("s2", _log, ran, "s2", short=True),
            store.run_interaction("l3", _log, ran, "l3"),
            store.run_interaction("s4", locked_out, "s4", short=True),
            store.run_interaction("r5", _logged, short=SINGLE),
            store.run_interaction("s6", _log, ran, "s6", short=True),
            store.run_interaction("l7", _log, ran, "l7"),
            store.run_interaction("s8", _log, ran, "s8", short=True),
        ]
        release.set()
        await running
        results = await defer.gatherResults(asked)
        expected = ["other-s1", "s1", "s2", "l3", "other-s4", "s4"]
        self.assertEqual(results[4], expected)
        self.assertEqual(await store.run_interaction("log", _logged), expected + ["s6", "l7", "s8"])
        self.assertEqual(
            ran,
            [("s1", True), ("s1", False), ("s2", True), ("l3", False), ("s4", True), ("s4", False),
             ("s6", True), ("l7", False), ("s8", True)],
        )
        self.assertEqual(store._direct.fallbacks, 2)

    async def test_metrics_and_errors_on_the_waiting_path(self):
        # Each transaction that waited is told once, failed or not, and
        # fails with the error it would have had on the pool.
        store = await self.open()
        await store.run_interaction("taken", _insert_counter, "taken")
        other = self.other_connection()
        told = []
        store.on_transaction = lambda seconds, failed: told.append(failed)
        locked = []

        def conflict_after_a_lock(txn):
            if not locked:
                locked.append(True)
                other.execute("BEGIN IMMEDIATE")
                other.execute("INSERT INTO counters (name, value) VALUES ('other', 1)")
                reactor.callLater(0.05, other.execute, "COMMIT")
            return _insert_counter(txn, "taken")

        release, running = self.hold_pool(store)
        asked = [
            store.run_interaction("ok", _insert_counter, "a", short=True),
            store.run_interaction("conflict", _insert_counter, "taken", short=True),
            store.run_interaction("locked, then conflict", conflict_after_a_lock, short=True),
            store.run_interaction("ok", _insert_counter, "b", short=True),
            store.run_interaction("long conflict", _insert_counter, "a"),
            store.run_interaction("bad", lambda txn: txn.execute("SELECT ?", ("nul\x00",)), short=True),
        ]
        release.set()
        await running
        results = await defer.DeferredList(asked, consumeErrors=True)
        outcomes = [value if ok else value.type for ok, value in results]
        self.assertEqual(outcomes, ["a", Conflict, Conflict, "b", Conflict, ValueError])
        # (the held transaction first, told by the pool)
        self.assertEqual(told, [False, False, True, True, False, True, True])
        self.assertEqual(store._direct.fallbacks, 1)

    async def test_a_waiting_batch_takes_effect_whole_or_not_at_all(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        commands = [{"op": "Get", "target": "./DevInfo/Mod"}]
        release, running = self.hold_pool(store)
        good = store.batch().create_job("j1", "IMEI:1", commands).append_event("tick", "IMEI:1", 1.0, {})
        bad = store.batch().create_job("j2", "IMEI:1", commands).create_job("j1", "IMEI:1", commands)
        committed = good.commit(short=True)
        failed = bad.commit(short=True)
        release.set()
        await running
        job, seq = await committed
        self.assertEqual((job.job_id, seq), ("j1", 1))
        with self.assertRaises(Conflict):
            await failed
        self.assertEqual([j.job_id for j in await store.list_jobs("IMEI:1")], ["j1"])

    async def test_nothing_is_written_while_a_checkpoint_runs_under_load(self):
        # Many sessions' transactions in flight at once: whenever the pool
        # checkpoints, the reactor connection has written nothing since the
        # checkpoint was handed over, and nothing until it ends.
        store = await self.open_with_log()
        direct = store._direct
        direct.checkpoint_every = 5
        real_checkpoint, real_run = direct.checkpoint, direct.run
        during = []
        checkpoints = []

        def checkpoint(connection, number):
            real_checkpoint(connection, number)
            checkpoints.append(number)

        def run(*args, **kwargs):
            if direct._checkpointing:
                during.append(direct._checkpointing)
            return real_run(*args, **kwargs)

        direct.checkpoint, direct.run = checkpoint, run
        ran = []

        def session(name, steps):
            def step(n):
                d = store.run_interaction("step", _log, ran, f"{name}{n}", short=True)
                if n % 3 == 2:
                    d.addCallback(lambda _: store.run_interaction("long", _log, ran, f"{name}{n}L"))
                if n + 1 < steps:
                    d.addCallback(lambda _: step(n + 1))
                return d

            return step(0)

        wal = self.path + "-wal"
        start = os.path.getsize(wal)
        sizes = []
        store.on_transaction = lambda seconds, failed: sizes.append(os.path.getsize(wal))
        release, running = self.hold_pool(store)
        sessions = [session(name, 12) for name in "abcdefgh"]
        release.set()
        await running
        await defer.gatherResults(sessions)
        await store.run_interaction("drain", _logged)
        # (the WAL starts again from its beginning after each checkpoint:
        # 128 transactions of a frame or more each, more than 10 checkpoints)
        frame = 24 + PAGE_SIZE
        self.assertLess(max(sizes) - start, 20 * frame, sizes)
        self.assertEqual(during, [])
        self.assertGreaterEqual(len(checkpoints), 10)
        self.assertEqual(len(ran), 8 * 16)
        self.assertEqual(direct.fallbacks, 0)
