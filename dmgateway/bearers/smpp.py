"""SMS wake-ups through an SMSC: the SMPP link services.

:class:`SMPPLink` is the service around one ``[smpp]`` section: it connects
with ``ClientService`` and backoff and hands ``submit`` calls to the bound
connection (an :class:`~.smpp_esme.ESMEProtocol`, the SMPP 3.4 ESME).
:class:`SMPPRouter` picks a link by MSISDN prefix.
"""

from twisted.application import internet, service
from twisted.internet import defer, endpoints
from twisted.logger import Logger

from dmgateway.bearers.smpp_esme import ESMEFactory, LinkDown, QueueFull, SMPPError

__all__ = ["NoRoute", "SMPPLink", "SMPPRouter"]

log = Logger(namespace="dmgateway.smpp")


class NoRoute(SMPPError):
    """No SMPP link serves the destination MSISDN."""


class SMPPLink(service.Service):
    """One SMPP link kept bound by ``ClientService`` with backoff.

    ``submit`` waits for a bound connection; at most ``queue_limit`` calls
    wait at once and each waits at most ``wait_timeout`` seconds.  Bind
    failures count as failed attempts for the backoff (reconnect_initial,
    doubling up to reconnect_max).
    """

    def __init__(self, config, reactor, *, clock=None, endpoint=None, on_receipt=None,
                 queue_limit=1000, wait_timeout=60.0):
        self.config = config
        self.name = "smpp:%s" % (config.name,)
        self._clock = clock or reactor
        self._waiting = 0
        self._waiters = []
        self._bind_failures = 0
        self.queue_limit = queue_limit
        self.wait_timeout = wait_timeout
        if endpoint is None:
            endpoint = endpoints.clientFromString(reactor, config.endpoint)
        self.factory = ESMEFactory(config, self._clock, on_receipt)
        self.factory.link = self
        self._protocol = None
        backoff = internet.backoffPolicy(initialDelay=config.reconnect_initial,
                                         maxDelay=config.reconnect_max)
        # ClientService cannot reject a connection in prepareConnection and
        # close it (its state machine has no transition for that), so the
        # bind runs on a "connected" protocol and bind failures feed the
        # backoff through this policy.
        self._client = internet.ClientService(
            endpoint, self.factory,
            retryPolicy=lambda attempts: backoff(max(attempts, self._bind_failures)),
            clock=self._clock,
        )

    def connected(self, proto):
        """Called by the factory for each new connection."""
        self._protocol = proto
        proto.when_bound().addCallbacks(self._bound, self._not_bound)

    def _bound(self, proto):
        self._bind_failures = 0
        if self.running:
            self._fire_waiters(proto)
        return proto

    def _not_bound(self, failure):
        self._bind_failures += 1
        log.warn("smpp link {link}: not bound ({failures} in a row): {error}",
                 link=self.config.name, failures=self._bind_failures,
                 error=failure.getErrorMessage(), outcome="bind_failed")
        return None

    @property
    def state(self):
        """``stopped``, ``connecting``, ``binding``, ``bound``, ``unbinding`` ..."""
        if not self.running:
            return "stopped"
        p = self._protocol
        if p is not None and not p.is_closed:
            return p.state
        return "connecting"

    def startService(self):
        super().startService()
        log.info("smpp link {link}: starting ({endpoint}, bind {mode}, system_id {system_id})",
                 link=self.config.name, endpoint=self.config.endpoint, mode=self.config.bind,
                 system_id=self.config.system_id)
        self._client.startService()

    def stopService(self):
        super().stopService()
        self._fire_waiters(LinkDown("SMPP link %s stopped" % (self.config.name,)))
        p, self._protocol = self._protocol, None
        d = p.unbind() if p is not None else defer.succeed(None)
        d.addBoth(lambda _: self._client.stopService())
        return d

    def _wait_bound(self):
        """A bound protocol (the next one to bind), within ``wait_timeout``."""
        d = defer.Deferred(lambda d: self._waiters.remove(d) if d in self._waiters else None)
        self._waiters.append(d)
        d.addTimeout(self.wait_timeout, self._clock)

        def not_bound(failure):
            if failure.check(defer.CancelledError, defer.TimeoutError):
                raise LinkDown("SMPP link %s not bound within %gs"
                               % (self.config.name, self.wait_timeout))
            return failure
        return d.addErrback(not_bound)

    def _fire_waiters(self, result):
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if d.called:
                continue
            if isinstance(result, Exception):
                d.errback(result)
            else:
                d.callback(result)

    def submit(self, destination_msisdn, short_message_segments, **options):
        """Like :meth:`ESMEProtocol.submit`, on the bound connection once there is one."""
        if not self.running:
            return defer.fail(LinkDown("SMPP link %s is stopped" % (self.config.name,)))
        p = self._protocol
        if p is not None and p.state == "bound":
            return p.submit(destination_msisdn, short_message_segments, **options)
        if self._waiting >= self.queue_limit:
            return defer.fail(QueueFull("%d submits already wait for SMPP link %s"
                                        % (self._waiting, self.config.name)))
        self._waiting += 1
        waiter = self._wait_bound()

        def done(result):
            self._waiting -= 1
            return result
        waiter.addBoth(done)
        waiter.addCallback(
            lambda proto: proto.submit(destination_msisdn, short_message_segments, **options))
        return waiter


class SMPPRouter(service.MultiService):
    """Several SMPP links; a destination goes to the link with the longest matching route."""

    def __init__(self, links=()):
        super().__init__()
        self.links = []
        for link in links:
            self.add(link)

    def add(self, link):
        self.links.append(link)
        link.setServiceParent(self)

    def link_for(self, msisdn):
        """The link serving ``msisdn`` (a link without ``routes`` serves every number)."""
        number = msisdn.strip().lstrip("+")
        best, best_length = None, -1
        for link in self.links:
            if not link.config.serves(number):
                continue
            length = max((len(p) for p in link.config.routes if number.startswith(p)), default=0)
            if length > best_length:
                best, best_length = link, length
        return best

    def submit(self, destination_msisdn, short_message_segments, **options):
        link = self.link_for(destination_msisdn)
        if link is None:
            return defer.fail(NoRoute("no SMPP link serves %s" % (destination_msisdn,)))
        return link.submit(destination_msisdn, short_message_segments, **options)
