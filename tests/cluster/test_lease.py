"""Leases and signals among processes on a real PostgreSQL (tests/pgharness.py)."""

import time

import psycopg
import pytest
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import SynchronousTestCase, TestCase

from twisted.application import service

from dmgateway.cluster.lease import (LeasedService, LocalLease, PostgresLease, lease_for, lease_key,
                                     postgres_connector)
from dmgateway.cluster.signals import EVENTS, JOBS, LocalSignals, PostgresSignals, signals_for
from dmgateway.store import open_store
from dmgateway.store.postgres import parse_postgres_uri

INTERVAL = 0.2


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


async def until(condition, timeout=5.0):
    """Wait (bounded) until ``condition()``; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met within %ss" % (timeout,))
        await sleep(0.02)
    return time.monotonic() - started


class LeaseKeyTests(SynchronousTestCase):
    def test_stable_and_distinct(self):
        self.assertEqual(lease_key("smpp"), lease_key("smpp"))
        self.assertNotEqual(lease_key("smpp"), lease_key("timers"))
        self.assertTrue(-(2 ** 63) <= lease_key("smpp") < 2 ** 63)

    def test_local_lease_is_held_from_start_to_stop(self):
        calls = []
        lease = LocalLease("smpp", on_acquired=lambda: calls.append("in"), on_lost=lambda: calls.append("out"))
        self.assertFalse(lease.held)
        lease.start()
        self.assertTrue(lease.held)
        self.successResultOf(lease.stop())
        self.assertEqual(calls, ["in", "out"])

    def test_sqlite_store_gets_a_local_lease(self):
        self.assertIsInstance(lease_for("sqlite:var/x.sqlite", "smpp", reactor, 5), LocalLease)
        self.assertIsInstance(signals_for("sqlite::memory:", None, reactor), LocalSignals)


class PostgresLeaseTests(TestCase):
    timeout = 60

    @pytest.fixture(autouse=True)
    def _uri(self, postgresql_uri):
        self.uri = postgresql_uri

    def lease(self, name="smpp", log=None, tag=None):
        log = log if log is not None else []
        lease = PostgresLease(name, postgres_connector(self.uri), reactor, INTERVAL,
                              on_acquired=lambda: log.append((tag, "in")),
                              on_lost=lambda: log.append((tag, "out")))
        self.addCleanup(lease.stop)
        return lease

    async def test_one_holder_and_takeover_on_release(self):
        log = []
        a, b = self.lease(log=log, tag="a"), self.lease(log=log, tag="b")
        a.start()
        await until(lambda: a.held)
        b.start()
        await sleep(4 * INTERVAL)
        self.assertFalse(b.held, "two holders at once")
        await a.stop()
        took = await until(lambda: b.held)
        self.assertLess(took, 3 * INTERVAL + 1)
        self.assertEqual(log, [("a", "in"), ("a", "out"), ("b", "in")])

    async def test_holder_whose_connection_dies_loses_it_and_another_takes_it(self):
        log = []
        a, b = self.lease(log=log, tag="a"), self.lease(log=log, tag="b")
        a.start()
        await until(lambda: a.held)
        b.start()
        await sleep(2 * INTERVAL)
        # what a kill -9 of the holder does to its session: the server ends it
        conninfo, _, _, extra = parse_postgres_uri(self.uri)
        with psycopg.connect(conninfo, autocommit=True, **extra) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'dmgateway-lease' AND pid IN ("
                          "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)")
        await until(lambda: b.held)
        await until(lambda: not a.held)
        self.assertIn(("a", "out"), log)
        await sleep(4 * INTERVAL)
        self.assertFalse(a.held and b.held, "two holders at once")

    async def test_leased_service_runs_in_one_process_at_a_time(self):
        inners = [service.Service(), service.Service()]
        holders = [LeasedService(inner, lambda up, down: PostgresLease(
            "webhooks", postgres_connector(self.uri), reactor, INTERVAL, on_acquired=up, on_lost=down))
            for inner in inners]
        taken = []
        for n, holder in enumerate(holders):
            holder.on_taken = lambda n=n: taken.append(n)
            holder.startService()
            self.addCleanup(lambda h=holder: h.stopService() if h.running else None)
        await until(lambda: any(i.running for i in inners))
        await sleep(4 * INTERVAL)
        self.assertEqual(sum(i.running for i in inners), 1)
        first = 0 if inners[0].running else 1
        await holders[first].stopService()  # SIGTERM of the holder: the other takes over
        self.assertFalse(inners[first].running)
        await until(lambda: inners[1 - first].running)
        self.assertEqual(taken, [first, 1 - first])

    async def test_names_are_independent(self):
        smpp, timers = self.lease("smpp"), self.lease("timers")
        smpp.start()
        timers.start()
        await until(lambda: smpp.held and timers.held)

    async def test_unreachable_store_holds_nothing(self):
        lease = PostgresLease("smpp", postgres_connector("postgresql://x@127.0.0.1:1/none?connect_timeout=1"),
                              reactor, INTERVAL)
        self.addCleanup(lease.stop)
        lease.start()
        await sleep(3 * INTERVAL)
        self.assertFalse(lease.held)


class PostgresSignalsTests(TestCase):
    timeout = 60

    @pytest.fixture(autouse=True)
    def _uri(self, postgresql_uri):
        self.uri = postgresql_uri

    async def signals(self, store):
        signals = PostgresSignals(postgres_connector(self.uri, "dmgateway-signals"), store, reactor, poll=0.1)
        signals.start()
        self.addCleanup(signals.stop)
        await until(signals.listening.is_set)
        return signals

    async def test_a_signal_reaches_every_process_within_a_second(self):
        store = await open_store(self.uri)
        self.addCleanup(store.close)
        one, two = await self.signals(store), await self.signals(store)
        heard = []
        one.on(JOBS, lambda p: heard.append(("one", p)))
        two.on(JOBS, lambda p: heard.append(("two", p)))
        two.on(EVENTS, lambda p: heard.append(("two-events", p)))
        await one.send(JOBS, "IMEI:1")
        took = await until(lambda: len(heard) == 2)
        self.assertLess(took, 1.0)
        self.assertEqual(sorted(heard), [("one", "IMEI:1"), ("two", "IMEI:1")])

    async def test_a_failing_handler_does_not_stop_the_others(self):
        store = await open_store(self.uri)
        self.addCleanup(store.close)
        signals = await self.signals(store)
        heard = []
        signals.on(EVENTS, lambda p: 1 / 0)
        signals.on(EVENTS, heard.append)
        await signals.send(EVENTS, "x")
        await until(lambda: heard == ["x"])
        self.flushLoggedErrors(ZeroDivisionError)

    def test_local_signals_deliver_at_once(self):
        signals = LocalSignals()
        heard = []
        signals.on(JOBS, heard.append)
        signals.send(JOBS, "d")
        self.assertEqual(heard, ["d"])
