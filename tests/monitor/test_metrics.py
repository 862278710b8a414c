"""GatewayMetrics' own observe: the same histograms as prometheus-client's ``observe``."""

import math

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from twisted.internet.task import Clock
from twisted.python import threadable
from twisted.trial.unittest import SynchronousTestCase

from dmgateway.monitor import metrics
from dmgateway.monitor.metrics import LATENCY_BUCKETS, SESSION_BUCKETS, GatewayMetrics

# on each bound, between bounds, past the last one, zero and below
AMOUNTS = [0.0, -1.0, 1e-9, 0.001, 0.0010001, 0.0025, 0.004, 0.1, 0.25, 1, 2.5, 9.99, 10, 10.01, 299, 300, 600,
           601, 1e9, math.inf]


def samples(registry, name):
    return sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                  for family in registry.collect() if family.name == name for s in family.samples
                  if not s.name.endswith("_created"))


class ObserveTests(SynchronousTestCase):
    def setUp(self):
        # this thread as the reactor's, as once a reactor has run: a scrape in
        # any other waits for the reactor (blockingCallFromThread), and with no
        # test run before that ran one, the exposition test never ended
        self.patch(threadable, "ioThread", threadable.getThreadID())
        self.metrics = GatewayMetrics(None, Clock(), process=False)
        self.reference = CollectorRegistry()
        self.sessions = Histogram("dmgw_session_duration_seconds", "x", ["outcome"], buckets=SESSION_BUCKETS,
                                  registry=self.reference)
        self.latency = Histogram("dmgw_http_request_duration_seconds", "x", ["listener"], buckets=LATENCY_BUCKETS,
                                 registry=self.reference)
        self.store = Histogram("dmgw_store_transaction_duration_seconds", "x", buckets=LATENCY_BUCKETS,
                               registry=self.reference)

    def test_the_same_counts_and_sums_as_prometheus_observe(self):
        for amount in AMOUNTS:
            for outcome in ("completed", "auth_failed"):
                self.metrics.session_ended(outcome, amount)
                self.sessions.labels(outcome=outcome).observe(max(amount, 0.0))
            for listener in ("dm", "api"):
                self.metrics.http_request(listener, 200, amount)
                self.latency.labels(listener=listener).observe(max(amount, 0.0))
            self.metrics.store_transaction(amount, False)
            self.store.observe(max(amount, 0.0))
        for name in ("dmgw_session_duration_seconds", "dmgw_http_request_duration_seconds",
                     "dmgw_store_transaction_duration_seconds"):
            ours = samples(self.metrics.registry, name)
            self.assertEqual(ours, samples(self.reference, name), name)
            self.assertTrue(any(value for _name, _labels, value in ours))

    def test_nan_counts_in_no_bucket_as_with_prometheus(self):
        for observe in (metrics._observer(self.store), self.store.observe):
            observe(math.nan)
            observe(0.004)
        buckets = [value for name, labels, value in samples(self.reference, "dmgw_store_transaction_duration_seconds")
                   if name.endswith("_bucket")]
        buckets.sort()
        self.assertEqual(buckets, [0.0] * 2 + [2.0] * 12)  # (0.001, 0.0025: 0; 0.005 up to +Inf: 2)

    def test_multiprocess_values_keep_prometheus_observe(self):
        class SharedValue:  # what prometheus-client's multiprocess mode puts in a histogram
            pass

        self.store._sum = SharedValue()
        self.assertEqual(metrics._observer(self.store), self.store.observe)

    def test_another_histogram_layout_keeps_prometheus_observe(self):
        # setup.cfg takes any prometheus-client from 0.20: a version whose
        # histogram is laid out otherwise must get its own observe, not an
        # AttributeError or IndexError at each observation (every session's end)
        def without(name, inner=None):
            histogram = Histogram("h", "x", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
            if inner is None:
                delattr(histogram, name)
            else:
                delattr(getattr(histogram, name)[0] if name == "_buckets" else getattr(histogram, name), inner)
            return histogram

        for histogram in (without("_sum", "_value"), without("_buckets", "_value"), without("_upper_bounds")):
            self.assertEqual(metrics._observer(histogram), histogram.observe)
        histogram = Histogram("h", "x", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
        histogram._buckets = histogram._buckets[:-1]
        self.assertEqual(metrics._observer(histogram), histogram.observe)

    def test_the_exposition_is_unchanged(self):
        self.metrics.store_transaction(0.004, False)
        self.metrics.http_request("dm", 200, 0.02)
        self.store.observe(0.004)
        self.latency.labels(listener="dm").observe(0.02)
        ours = [line for line in generate_latest(self.metrics.registry).decode().splitlines()
                if line.startswith(("dmgw_store_transaction_duration_seconds_", "dmgw_http_request"))
                and "_created" not in line]
        theirs = [line for line in generate_latest(self.reference).decode().splitlines()
                  if line.startswith(("dmgw_store_transaction_duration_seconds_", "dmgw_http_request"))
                  and "_created" not in line]
        self.assertTrue(ours)
        self.assertEqual(ours, theirs)


class StoreRetriesTests(SynchronousTestCase):
    def setUp(self):
        self.patch(threadable, "ioThread", threadable.getThreadID())  # (see ObserveTests)

    def test_transactions_run_again_are_counted(self):
        from types import SimpleNamespace

        engine = SimpleNamespace(retries=0)
        gateway = SimpleNamespace(store=SimpleNamespace(database_engine=engine), state="ready")
        registry = GatewayMetrics(gateway, Clock(), process=False).registry
        self.assertEqual(samples(registry, "dmgw_store_retries"), [("dmgw_store_retries_total", (), 0.0)])
        engine.retries = 3
        self.assertEqual(samples(registry, "dmgw_store_retries"), [("dmgw_store_retries_total", (), 3.0)])

    def test_no_store_yet_no_count(self):
        registry = GatewayMetrics(None, Clock(), process=False).registry
        self.assertEqual(samples(registry, "dmgw_store_retries"), [])


class StoreObserverTests(SynchronousTestCase):
    """GatewayMetrics.store_transaction is the store's observer itself: it
    counts the gateway's store_errors (what SNMP reports) with its own."""

    def setUp(self):
        self.patch(threadable, "ioThread", threadable.getThreadID())  # (see ObserveTests)

    def test_failed_transactions_are_counted_on_the_gateway_too(self):
        from types import SimpleNamespace

        gateway = SimpleNamespace(store=None, store_errors=0)
        observer = GatewayMetrics(gateway, Clock(), process=False)
        observer.store_transaction(0.002, False)
        observer.store_transaction(0.003, True)
        self.assertEqual(gateway.store_errors, 1)
        self.assertEqual(samples(observer.registry, "dmgw_store_errors"), [("dmgw_store_errors_total", (), 1.0)])
        self.assertEqual([value for name, _labels, value in
                          samples(observer.registry, "dmgw_store_transaction_duration_seconds")
                          if name.endswith("_count")], [2.0])
