"""``/metrics``: the gateway's state in the Prometheus text format, with
prometheus-client (its registry, histograms and Twisted resource).

One :class:`GatewayMetrics` per process, on its own registry:

* histograms observed as things happen: DM session duration (by outcome),
  HTTP request latency (by listener), store transaction latency;
* counters: API requests by status, store errors, store transactions run
  again (read from the store at scrape time);
* read at scrape time from the dispatcher, the outbox and the SMPP links:
  sessions, auth failures, jobs finished, notifications by bearer and
  outcome, SMPP link up/down and window use;
* refreshed from the store every ``interval`` seconds (a scrape never waits
  for the database): outbox depth by bearer and state, jobs by state,
  devices locked out, webhook backlog;
* ``process_*`` from prometheus-client's process collector.

Labels stay bounded: outcome, state, bearer, listener, HTTP status, and
SMPP link names from the configuration; never device ids.
"""

from __future__ import annotations

from bisect import bisect_left

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
try:
    from prometheus_client.values import MutexValue
except ImportError:  # (another layout: see _observer)
    MutexValue = None
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.internet import defer, task
from twisted.logger import Logger

log = Logger()

SESSION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
REFRESH_INTERVAL = 15.0


def _observer(histogram):
    """``histogram.observe`` (an unlabelled histogram or a labelled child) for
    the reactor thread: the same sum and bucket counts, sooner.

    prometheus-client's ``observe`` walks the bounds in Python and takes a
    lock twice (the sum, the bucket): some 10k instructions, for every HTTP
    request and store transaction.  Here the bucket is found by bisection
    and both values are added to without the lock: every observation is made
    in the reactor thread (the only writer), and a scrape in another thread
    reads each value whole either way (under the GIL), one at a time as
    before.  In prometheus-client's multiprocess mode (values in shared
    files), or in a version whose histogram is not laid out as this one
    reads it (``setup.cfg`` takes any from 0.20), its own ``observe`` is
    used: checked here, once per histogram, not met at an observation (an
    error in every session's end).
    """
    try:
        total, buckets, bounds = histogram._sum, histogram._buckets, tuple(histogram._upper_bounds)
    except AttributeError:
        return histogram.observe
    if (len(buckets) != len(bounds) or not bounds or bounds[-1] != float("inf")
            or any(type(value) is not MutexValue or type(getattr(value, "_value", None)) is not float
                   for value in (total, *buckets))):
        return histogram.observe

    def observe(amount):
        total._value += amount
        index = bisect_left(bounds, amount)  # the first bound >= amount (the last is +Inf)
        if amount <= bounds[index]:  # (not so only for NaN, counted in no bucket, as prometheus-client does)
            buckets[index]._value += 1

    return observe


def _status_label(code):
    return str(code) if isinstance(code, int) and 100 <= code <= 599 else "other"


class GatewayMetrics:
    """The registry and instruments of one gateway process."""

    def __init__(self, gateway, clock, interval=REFRESH_INTERVAL, process=True):
        self.gateway = gateway
        self.clock = clock
        self.interval = interval
        self.registry = CollectorRegistry()
        if process:
            ProcessCollector(registry=self.registry)
        self.session_duration = Histogram(
            "dmgw_session_duration_seconds", "DM session duration, by outcome",
            ["outcome"], buckets=SESSION_BUCKETS, registry=self.registry,
        )
        self.http_latency = Histogram(
            "dmgw_http_request_duration_seconds", "HTTP request latency, by listener (dm, api or delegation)",
            ["listener"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.api_requests = Counter(
            "dmgw_api_requests", "REST API requests, by HTTP status", ["status"], registry=self.registry,
        )
        self.store_latency = Histogram(
            "dmgw_store_transaction_duration_seconds", "store transaction latency",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.store_errors = Counter(
            "dmgw_store_errors", "store transactions that failed", registry=self.registry,
        )
        self._sessions = {}  # outcome -> session_duration child's observe
        self._latency = {}  # listener -> http_latency child's observe
        self._store_observe = _observer(self.store_latency)
        self._api = {}  # status label -> api_requests child
        self.snapshot = None
        self.registry.register(_StateCollector(self))
        self._loop = None

    # -- observations --------------------------------------------------------------

    # The labelled children are kept once made (their observe, see
    # _observer): ``labels()`` takes a lock and builds its key on every call,
    # and these run for every request and session.  Their label values are
    # bounded (outcomes, listeners, statuses).

    def session_ended(self, outcome, seconds):
        observe = self._sessions.get(outcome)
        if observe is None:
            observe = self._sessions[outcome] = _observer(self.session_duration.labels(outcome=outcome))
        observe(max(seconds, 0.0))

    def http_request(self, listener, status, seconds):
        observe = self._latency.get(listener)
        if observe is None:
            observe = self._latency[listener] = _observer(self.http_latency.labels(listener=listener))
        observe(max(seconds, 0.0))
        if listener == "api":
            label = _status_label(status)
            counter = self._api.get(label)
            if counter is None:
                counter = self._api[label] = self.api_requests.labels(status=label)
            counter.inc()

    def store_transaction(self, seconds, failed):
        """The store's observer (``on_transaction``): also counts the
        gateway's ``store_errors`` (SNMP's), with no call in between."""
        self._store_observe(max(seconds, 0.0))
        if failed:
            self.store_errors.inc()
            self.gateway.store_errors += 1

    # -- the store snapshot ------------------------------------------------------------

    def start(self):
        self._loop = task.LoopingCall(self.refresh)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    @defer.inlineCallbacks
    def refresh(self):
        store = self.gateway.store
        if store is None or store.closed:
            return
        try:
            self.snapshot = yield store.monitor_snapshot(self.clock.seconds(), self._webhook_cursors())
        except Exception as e:  # the store's own trouble shows in store errors and /healthz
            log.info("metrics snapshot skipped: {error}", error=str(e) or type(e).__name__)

    def _webhook_cursors(self):
        return ["webhook:" + url for url in self.gateway.config.api.webhooks]


class _StateCollector:
    """What is read from the running gateway at each scrape."""

    def __init__(self, metrics):
        self.metrics = metrics

    def describe(self):
        return []

    def collect(self):
        """Scrapes run in a thread (prometheus-client's Twisted resource is
        WSGI): the gateway's state is read in the reactor thread."""
        from twisted.python.threadable import isInIOThread

        if isInIOThread():
            return self._gather()
        from twisted.internet import reactor
        from twisted.internet.threads import blockingCallFromThread

        return blockingCallFromThread(reactor, self._gather)

    def _gather(self):
        return list(self._families())

    def _families(self):
        gateway = self.metrics.gateway
        dispatcher = getattr(gateway, "dispatcher", None)
        state = GaugeMetricFamily("dmgw_up", "1 while the gateway serves (0 starting or draining)")
        state.add_metric([], 1 if getattr(gateway, "state", "") == "ready" else 0)
        yield state
        store = getattr(gateway, "store", None)
        if store is not None:
            retried = CounterMetricFamily(
                "dmgw_store_retries",
                "store transactions run again after losing to concurrent ones (deadlock, serialization failure)",
            )
            retried.add_metric([], store.database_engine.retries)
            yield retried
        if dispatcher is not None:
            yield from _dispatcher_metrics(dispatcher)
            outbox = getattr(dispatcher, "outbox", None)
            if outbox is not None:
                family = CounterMetricFamily(
                    "dmgw_notifications", "wake-up notifications, by bearer and outcome", labels=["bearer", "outcome"]
                )
                for (bearer, outcome), value in sorted(outbox.by_bearer.items()):
                    family.add_metric([bearer, outcome], value)
                yield family
        yield from _smpp_metrics(getattr(gateway, "smpp_links", lambda: [])())
        snapshot = self.metrics.snapshot
        if snapshot is not None:
            yield from _snapshot_metrics(snapshot)


def _dispatcher_metrics(dispatcher):
    live = GaugeMetricFamily("dmgw_sessions_live", "DM sessions open in this process")
    live.add_metric([], dispatcher.live_count())
    yield live
    for name, help_text, key in (
        ("dmgw_sessions_started", "DM sessions opened", "sessions_started"),
        ("dmgw_dm_messages", "DM messages received", "messages"),
        ("dmgw_dm_bad_requests", "DM requests that were not SyncML", "bad_requests"),
        ("dmgw_auth_failures", "failed device authentications", "auth_failures"),
    ):
        family = CounterMetricFamily(name, help_text)
        family.add_metric([], dispatcher.stats.get(key, 0))
        yield family
    ended = CounterMetricFamily("dmgw_sessions_ended", "DM sessions ended, by outcome", labels=["outcome"])
    for outcome, value in sorted(dispatcher.sessions_ended.items()):
        ended.add_metric([outcome], value)
    yield ended
    finished = CounterMetricFamily("dmgw_jobs_finished", "jobs finished, by state", labels=["state"])
    for state, value in sorted(dispatcher.jobs_finished.items()):
        finished.add_metric([state], value)
    yield finished


def _smpp_metrics(links):
    up = GaugeMetricFamily("dmgw_smpp_link_up", "1 while the SMPP link is bound", labels=["link"])
    used = GaugeMetricFamily("dmgw_smpp_window_used", "SMPP requests awaiting their response", labels=["link"])
    size = GaugeMetricFamily("dmgw_smpp_window_size", "SMPP window (configured)", labels=["link"])
    for link in links:
        name = link.config.name
        up.add_metric([name], 1 if link.state == "bound" else 0)
        protocol = getattr(link, "_protocol", None)
        outstanding = getattr(protocol, "_outstanding", None) if protocol is not None else None
        used.add_metric([name], len(outstanding) if outstanding is not None else 0)
        size.add_metric([name], link.config.window)
    yield up
    yield used
    yield size


def _snapshot_metrics(snapshot):
    depth = GaugeMetricFamily(
        "dmgw_outbox_depth", "notifications waiting (queued) or sent without a receipt, by bearer and state",
        labels=["bearer", "state"],
    )
    for (bearer, state), value in sorted(snapshot["outbox"].items()):
        depth.add_metric([bearer, state], value)
    yield depth
    jobs = GaugeMetricFamily("dmgw_jobs", "jobs in the store, by state", labels=["state"])
    for state, value in sorted(snapshot["jobs"].items()):
        jobs.add_metric([state], value)
    yield jobs
    locked = GaugeMetricFamily("dmgw_devices_locked_out", "devices locked out now after authentication failures")
    locked.add_metric([], snapshot["locked"])
    yield locked
    backlog = GaugeMetricFamily(
        "dmgw_webhook_backlog", "events not yet delivered to the slowest webhook (and retries pending)"
    )
    backlog.add_metric([], snapshot["webhook_backlog"])
    yield backlog
