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
from twisted.internet import defer
from twisted.logger import Logger

from dmgateway.cluster.lease import LeasedService, LocalLease, lease_for
from dmgateway.cluster.signals import LocalSignals, signals_for

log = Logger(namespace="dmgateway.cluster")

#: seconds between lease checks of the leases with no configured takeover time
DEFAULT_INTERVAL = 3.0


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
        self.timers = self.lease("timers", DEFAULT_INTERVAL)

    def startService(self):
        super().startService()
        self.signals.start()
        self.timers.start()
        if self.enabled:
            log.info("cluster node {node}: leases and signals through the shared store", node=self.node)

    def stopService(self):
        d = defer.maybeDeferred(super().stopService)  # the leased services first
        d.addBoth(lambda _: self.timers.stop())
        d.addBoth(lambda _: self.signals.stop())
        return d

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

    def send(self, address, trigger):
        return self.bearer.send(address, trigger)
