"""This process as one node of a cluster sharing one PostgreSQL store.

With ``[gateway] cluster = true`` the gateway service makes one
:class:`Cluster`: it owns the cross-process signals and builds the leases of
the work that runs once per cluster:

* ``smpp``      the SMPP links (every link of ``smpp.ini``: one bind each);
* ``timers``    renotification and expiry of jobs whose devices never came;
* ``webhooks``  webhook delivery (one sender, from the store's cursors, in order).

Without it (one process, SQLite or PostgreSQL) every lease is a
:class:`~dmgateway.cluster.lease.LocalLease` and signals stay in-process,
which is exactly the one-process behaviour.
"""

from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger

from dmgateway.cluster.lease import LeasedService, LocalLease, lease_for, lease_key
from dmgateway.cluster.signals import LocalSignals, signals_for

log = Logger(namespace="dmgateway.cluster")

#: seconds between lease checks of the leases with no configured takeover time
DEFAULT_INTERVAL = 3.0
#: seconds a starting process waits for its node lease
NODE_START_TIMEOUT = 10.0


class Cluster(service.MultiService):
    def __init__(self, config, store, reactor):
        super().__init__()
        self.config = config
        self.enabled = config.gateway.cluster
        self.node = config.gateway.node_name
        self._reactor = reactor
        if self.enabled:
            self.signals = signals_for(config.gateway.store, store, reactor)
        else:
            self.signals = LocalSignals()
        self.store = store
        self.timers = self.lease("timers", DEFAULT_INTERVAL)
        # held for this process's whole life: "this node is alive" to the others
        self.alive = self.lease(node_lease(self.node), DEFAULT_INTERVAL)
        self._reaper = None
        self.on_node_recovered = None  # called with (node, Recovery) after settling a dead node

    @defer.inlineCallbacks
    def join(self, timeout=NODE_START_TIMEOUT):
        """Take this node's own lease before serving; fail if another process runs as this node."""
        self.alive.start()
        deadline = self._reactor.seconds() + timeout
        while not self.alive.held:
            if self._reactor.seconds() >= deadline:
                yield self.alive.stop()
                raise NodeTaken("another process holds node name %r on this store (or the store is "
                                "unreachable): give each process its own [gateway] node_name" % (self.node,))
            yield task.deferLater(self._reactor, 0.1, lambda: None)

    def startService(self):
        super().startService()
        self.signals.start()
        self.timers.start()
        if self.enabled:
            self._reaper = task.LoopingCall(self.reap)
            self._reaper.clock = self._reactor
            self._reaper.start(DEFAULT_INTERVAL, now=False)
            log.info("cluster node {node}: leases and signals through the shared store", node=self.node)

    def stopService(self):
        if self._reaper is not None and self._reaper.running:
            self._reaper.stop()
        d = defer.maybeDeferred(super().stopService)  # the leased services first
        d.addBoth(lambda _: self.timers.stop())
        d.addBoth(lambda _: self.signals.stop())
        d.addBoth(lambda _: self.alive.stop())
        return d

    @defer.inlineCallbacks
    def reap(self):
        """The timers holder settles what dead nodes left (their live sessions and running jobs)."""
        if not self.timers.held:
            return
        try:
            sessions = yield self.store.live_sessions()
            for node in sorted({s.node for s in sessions} - {self.node}):
                now = self._reactor.seconds()
                recovery = yield self.store.run_interaction("reap", _reap_txn, self.store, node, now)
                if recovery is None:
                    continue  # alive
                log.warn("node {dead} is gone: {sessions_ended} sessions ended, {jobs_failed} running "
                         "jobs failed (interrupted)", dead=node, **recovery.counts())
                if self.on_node_recovered is not None:
                    yield self.on_node_recovered(node, recovery)
        except Exception:
            log.failure("settling dead nodes failed")

    def lease(self, name, interval, on_acquired=None, on_lost=None):
        """The lease ``name`` (checked every ``interval`` seconds): the reusable leader helper."""
        if not self.enabled:
            return LocalLease(name, on_acquired=on_acquired, on_lost=on_lost)
        return lease_for(self.config.gateway.store, name, self._reactor, interval,
                         on_acquired=on_acquired, on_lost=on_lost)

    def leased(self, inner, name, interval):
        """A service running ``inner`` only while this node holds lease ``name``; parented here."""
        holder = LeasedService(inner, lambda up, down: self.lease(name, interval, up, down))
        holder.setServiceParent(self)
        return holder

    def timers_held(self):
        return self.timers.held


class NodeTaken(Exception):
    """Another live process uses this node name on the same store."""


def node_lease(node):
    return "node:" + node


def _reap_txn(txn, store, node, now):
    """Settle ``node``'s sessions if it is dead: its node lease is free (held by us till commit).

    A node restarting under the same name waits for its lease, so it cannot
    open sessions while this runs.
    """
    free = txn.fetchone("SELECT pg_try_advisory_xact_lock(?) AS free", (lease_key(node_lease(node)),))
    if not free["free"]:
        return None
    return store._recover_txn(txn, node, now)


class HeldBearer:
    """A notification bearer this process may use only while it holds its lease."""

    def __init__(self, bearer, holder):
        self.bearer = bearer
        self.holder = holder
        self.name = bearer.name
        self.delivered_on_accept = getattr(bearer, "delivered_on_accept", False)

    @property
    def held(self):
        return self.holder.held

    def address(self, device):
        return self.bearer.address(device)

    def send(self, address, trigger, report):
        return self.bearer.send(address, trigger, report)

    def watch_deliveries(self, delivered):
        watch = getattr(self.bearer, "watch_deliveries", None)
        if watch is not None:
            watch(delivered)
