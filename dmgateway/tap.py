"""``twistd dmgateway``: command-line options and the service tree.

The plugin in ``twisted/plugins/`` only points here.  :func:`makeService`
checks the whole configuration first (nothing binds when it is bad), then
returns a :class:`GatewayService` that opens the store, settles what a
previous process left in flight, and only then starts the listeners.
"""

import os
import signal
import sys

from twisted.application import service
from twisted.internet import defer, endpoints, task
from twisted.logger import Logger
from twisted.python import usage

from dmgateway import __version__
from dmgateway.config import ConfigError, check_config, load_config
from dmgateway.redact import redact_uri

log = Logger(namespace="dmgateway")


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Run the OMA DM server gateway. Every *.ini file in the configuration "
        "directory is loaded; see conf/ for the documented defaults."
    )
    optParameters = [
        ["config-dir", "c", "conf", "Directory with dmgateway.ini and one .ini file per bearer."],
    ]
    optFlags = [
        ["check-config", None, "Validate the configuration, print one line per problem, exit 0 or 2."],
    ]

    def opt_version(self):
        """Print the dmgateway version and exit."""
        print("dmgateway %s" % (__version__,))
        sys.exit(0)

    def postOptions(self):
        if self["check-config"]:
            problems = check_config(self["config-dir"])
            for line in problems:
                print(line, file=sys.stderr)
            if problems:
                sys.exit(2)
            print("%s: configuration OK" % (self["config-dir"],))
            sys.exit(0)


def makeService(options):
    try:
        config = load_config(options["config-dir"])
    except ConfigError as e:
        for problem in e.problems:
            print(str(problem), file=sys.stderr)
        sys.exit(2)
    if config.snmp.enabled:
        # pysnmp 7 runs on asyncio: before anything imports the reactor
        from dmgateway.monitor.snmp import AsyncioReactorNeeded, install_asyncio_reactor

        try:
            install_asyncio_reactor()
        except AsyncioReactorNeeded as e:
            print("snmp.ini: [snmp] enabled: %s" % (e,), file=sys.stderr)
            sys.exit(2)
    return GatewayService(config, config_dir=options["config-dir"], process=True)


# Exit status of a start that failed (2 stays "bad configuration").
EXIT_START_FAILED = 1


class GatewayService(service.MultiService):
    """The whole gateway: store, dispatcher, listeners.

    Listeners are added only once the store is open and recovered, so a
    device never reaches a process that cannot serve it.

    With ``process=True`` (``twistd``) it also owns the process: a failed
    start logs one line and exits with :data:`EXIT_START_FAILED`; SIGHUP
    reloads; systemd hears READY/RELOADING/STOPPING and watchdog pings.
    """

    def __init__(self, config, reactor=None, config_dir=None, process=False):
        super().__init__()
        self.config = config
        self.config_dir = config_dir
        self.process = process
        self._reactor = reactor
        self.store = None
        self.dispatcher = None
        self.events = None  # the EventLog the dispatcher, handlers, outbox and webhooks share
        self.handlers = None  # what the REST API and the services beside it call
        self.ready = defer.Deferred()
        self.state = "starting"
        self._ports = []
        self._expected = []
        self.outbox = None
        self._sip = None
        self.delegation = None
        self._delegation_client = None
        self._store_lock = None
        self._api_site = None
        self._webhooks = None  # the WebhookSender, once [api] webhooks lists a URL
        self._smpp_router = None
        self.cluster = None
        self.metrics = None
        self.snmp = None
        self.store_errors = 0
        self._watchdog = None
        self._exit_code = None

    @property
    def reactor(self):
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        return self._reactor

    def startService(self):
        super().startService()
        d = defer.ensureDeferred(self._start())
        d.addCallbacks(self._started, self._failed)

    def _started(self, _):
        from dmgateway.daemon import sd_notify, tune_gc, watchdog_interval

        self.state = "ready"
        if self.process:
            tune_gc()
            signal.signal(signal.SIGHUP, self._on_sighup)
            sd_notify("READY=1\nSTATUS=serving")
            interval = watchdog_interval()
            if interval:
                self._watchdog = task.LoopingCall(sd_notify, "WATCHDOG=1")
                self._watchdog.clock = self.reactor
                self._watchdog.start(interval)
        self.ready.callback(self)

    def _failed(self, failure):
        from dmgateway.daemon import failure_line

        line, expected = failure_line(failure)
        if not expected:
            log.failure("unexpected error while starting", failure)
        log.critical("dmgateway cannot start: {reason}", reason=line)
        self.state = "failed"
        self.ready.errback(failure)
        self.ready.addErrback(lambda _: None)
        if self.process:
            self._exit_code = EXIT_START_FAILED
            self.reactor.addSystemEventTrigger("after", "shutdown", self._exit)
        if self.reactor.running:
            self.reactor.stop()
        elif self.process:
            # failed while the reactor starts up (before any wait)
            self.reactor.callWhenRunning(self.reactor.stop)

    def _exit(self):
        """After a failed start's shutdown: leave with the failure's status."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(self._exit_code)

    async def _start(self):
        from dmgateway.daemon import StoreLock, sqlite_path
        from dmgateway.dispatch import Dispatcher
        from dmgateway.eventlog import EventLog
        from dmgateway.handlers import Handlers
        from dmgateway.logs import install_json_log
        from dmgateway.store import open_store

        cfg = self.config
        install_json_log(cfg.logging)
        log.info(
            "dmgateway {version} starting: server_id={server_id} node={node} store={store}",
            version=__version__, server_id=cfg.gateway.server_id,
            node=cfg.gateway.node_name, store=redact_uri(cfg.gateway.store),
        )
        path = sqlite_path(cfg.gateway.store)
        if path is not None:
            self._store_lock = StoreLock(path).acquire()
        self.store = await open_store(cfg.gateway.store, reactor=self.reactor)
        self.events = EventLog(self.store, self.reactor)
        self.dispatcher = Dispatcher(self.store, cfg, clock=self.reactor, events=self.events)
        self.handlers = Handlers(self.dispatcher)
        self.store.on_transaction = self._store_transaction  # (counts store_errors)
        if cfg.metrics.enabled and cfg.api.enabled:
            from dmgateway.monitor.metrics import GatewayMetrics

            self.metrics = GatewayMetrics(self, self.reactor)
            self.dispatcher.instruments = self.metrics
            # (which counts store_errors too: no call in between, every transaction)
            self.store.on_transaction = self.metrics.store_transaction
        await self._join_cluster()
        await self.dispatcher.start()
        from dmgateway.store.devicepsk import DevicePskKeys

        self.handlers.device_psk = DevicePskKeys(self.store, self.reactor)
        await self.handlers.device_psk.load()
        self._start_functions()
        if cfg.api.webhooks:
            self._start_webhooks(cfg.api)
        self._start_notifications()
        if cfg.delegation.enabled:
            self._start_delegation()
        # wake the devices of function jobs a crash left queued without a wake-up
        d = defer.ensureDeferred(self._functions.campaigns.recover())
        d.addErrback(lambda f: log.failure("waking devices of queued function jobs failed", f))
        for name, endpoint, factory in self._listeners():
            if self.metrics is not None:
                instrument(factory, name, self.metrics.http_request)
            self._expected.append(name)
            port = await endpoint.listen(factory)
            self._ports.append((name, port))
            address = port.getHost()
            log.info(
                "listening: {listener} on {host}:{port}",
                listener=name,
                host=address.host,
                port=address.port,
            )
        if cfg.snmp.enabled:
            from dmgateway.monitor.snmp import SnmpAgent

            self._expected.append("snmp")
            self.snmp = SnmpAgent(cfg.snmp, self, self.reactor)
            self.snmp.bind()
            self.snmp.setServiceParent(self)
            self._ports.append(("snmp", _Unbind(self.snmp)))
        if self.metrics is not None:
            self.metrics.start()
        return self

    async def _join_cluster(self):
        """Leases and cross-process signals ([gateway] cluster), or their one-process forms."""
        from dmgateway.cluster.node import Cluster

        self.cluster = Cluster(self.config, self.store, self.reactor)
        await self.cluster.join()
        self.cluster.setServiceParent(self)
        self.dispatcher.join_cluster(self.cluster.signals if self.cluster.enabled else None)
        self.cluster.on_node_recovered = self._node_recovered

    async def _node_recovered(self, node, recovery):
        if recovery.failed_jobs:  # their events were appended with the recovery
            self.events.announce()

    def _store_transaction(self, seconds, failed):
        if failed:
            self.store_errors += 1

    def _listeners(self):
        from dmgateway.api.site import api_site
        from dmgateway.bearers.http import dm_site, https_listener, with_backlog

        cfg, reactor = self.config, self.reactor
        if cfg.http.enabled:
            endpoint = with_backlog(cfg.http.endpoint, cfg.http.backlog)
            yield "http", endpoints.serverFromString(reactor, endpoint), dm_site(
                self.dispatcher, cfg.http.path, cfg.http.max_body, listener=cfg.http
            )
        if cfg.https.enabled and cfg.https.psk:
            from dmgateway.bearers.http import https_psk_listener

            yield ("https",) + https_psk_listener(
                reactor, cfg.https,
                dm_site(self.dispatcher, cfg.https.path, cfg.https.max_body, listener=cfg.https),
                self.handlers.device_psk.key_for_identity,
            )
        elif cfg.https.enabled:
            yield ("https",) + https_listener(
                reactor, cfg.https, dm_site(self.dispatcher, cfg.https.path, cfg.https.max_body, listener=cfg.https)
            )
        if self.delegation is not None:
            from dmgateway.bearers.delegation import delegation_listener

            endpoint, factory = delegation_listener(
                reactor, cfg.delegation, self.delegation, self._delegation_peers
            )
            yield "delegation", endpoint, factory
        if cfg.functions.download_enabled:
            from dmgateway.firmware import package_site

            yield "packages", endpoints.serverFromString(reactor, cfg.functions.endpoint), package_site(
                self.store, reactor, cfg.functions.read_timeout, cfg.functions.max_connections_per_peer
            )
        if cfg.api.enabled:
            from dmgateway.monitor.health import HealthCheck

            self._api_site = api_site(self.handlers, cfg, health=HealthCheck(self, reactor), metrics=self.metrics)
            yield "api", endpoints.serverFromString(reactor, cfg.api.endpoint), self._api_site

    def smpp_links(self):
        """The SMPP links of this process (for metrics and SNMP)."""
        return list(self._smpp_router.links) if self._smpp_router is not None else []

    def _start_functions(self):
        """Device functions, firmware packages and the campaign scheduler."""
        from dmgateway.campaigns import CampaignService
        from dmgateway.devfunctions import FunctionService
        from dmgateway.firmware import FirmwareService

        cfg = self.config.functions
        functions = FunctionService(self.handlers, cfg, self.reactor)
        functions.firmware = FirmwareService(self.store, cfg, self.reactor)
        functions.campaigns = CampaignService(self.handlers, cfg, self.reactor, firmware=functions.firmware)
        functions.start()
        functions.campaigns.start()
        self._functions = functions

    def listener_problems(self):
        """Names of the listeners that should be bound and are not (for /healthz)."""
        bound = {name for name, _port in self._ports}
        return [name for name in self._expected if name not in bound]

    def _start_delegation(self):
        """DM-6: the flow (also reachable by the REST API) and the client to peers."""
        from dmgateway.bearers.delegation import DelegationClient, DelegationPeers
        from dmgateway.delegation.flow import DelegationService

        cfg = self.config
        self._delegation_peers = DelegationPeers(cfg.delegation)
        self._delegation_client = DelegationClient(self.reactor, cfg.delegation,
                                                    self._delegation_peers)
        self.delegation = DelegationService(cfg, self.handlers, self.store, self.reactor,
                                            self._delegation_client.send)
        self.handlers.delegation = self.delegation
        self.delegation.start()
        log.info("delegation: {mode} with {count} peers",
                 mode="TLS-PSK" if cfg.delegation.uses_psk else "certificates",
                 count=len(cfg.delegation.peers))

    def _start_notifications(self):
        """The bearers that wake devices, and the outbox feeding them (if any is on)."""
        import os
        import random

        from dmgateway.bearers import wake
        from dmgateway.outbox import NotificationOutbox

        cfg, reactor = self.config, self.reactor
        bearers = {}
        if cfg.enabled_smpp_links:
            from dmgateway.bearers.smpp import SMPPLink, SMPPRouter

            router = SMPPRouter()
            bearers["sms"] = sms = wake.SmsBearer(router)
            for link in cfg.enabled_smpp_links:
                router.add(SMPPLink(link, reactor, on_receipt=sms.smpp_receipt))
            self._smpp_router = router
            if self.cluster.enabled:
                from dmgateway.cluster.node import HeldBearer

                # one bind per link across the cluster: the lease holder's
                takeover = min(link.takeover_after for link in cfg.enabled_smpp_links)
                holder = self.cluster.leased(router, "smpp", takeover / 3.0)
                bearers["sms"] = HeldBearer(bearers["sms"], holder)
            else:
                router.setServiceParent(self)
        elif cfg.modem.enabled:
            from dmgateway.bearers.modem import ModemService

            bearers["sms"] = sms = wake.SmsBearer(None, smpp=False)
            sms.sender = modem = ModemService(cfg.modem, reactor, on_report=sms.modem_report)
            modem.setServiceParent(self)
        if cfg.sip.enabled:
            from dmgateway.bearers.sip import SIPPusher

            self._sip = SIPPusher(cfg.sip, reactor, random.SystemRandom())
            bearers["sip"] = wake.SipBearer(self._sip)
        if not bearers:
            log.info("no notification bearer enabled: jobs wait for devices to connect")
            return
        self.outbox = NotificationOutbox(
            self.store, cfg, reactor, bearers, self.dispatcher.is_live, self.events.announce,
            self.dispatcher.random_bytes,  # (the process's pool of kernel CSPRNG bytes)
        )
        self.dispatcher.outbox = self.outbox
        self.outbox.runs_timers = self.cluster.timers_held
        sms = bearers.get("sms")
        if getattr(sms, "holder", None) is not None:
            sms.holder.on_taken = self._took_smpp
        if self.cluster.enabled:
            from dmgateway.cluster.signals import OUTBOX

            signals = self.cluster.signals
            self.outbox.queued = lambda: signals.send(OUTBOX)
            signals.on(OUTBOX, lambda _payload: self.outbox.tick())
        self.outbox.start()
        log.info("notification bearers: {bearers}", bearers=" ".join(sorted(bearers)))

    def _took_smpp(self):
        """This node now binds the SMPP links: what a dead holder had claimed is due now."""
        from dmgateway.outbox import CLAIM_LEASE

        d = self.store.release_claims("sms", self.reactor.seconds(), CLAIM_LEASE)

        def released(count):
            if count:
                log.warn("took the SMPP links over: {count} notifications the last holder "
                         "had claimed and not settled are sent again", count=count)
            return self.outbox.tick()

        d.addCallback(released)
        d.addErrback(lambda f: log.failure("claims of the last SMPP holder not released", f))

    def _start_webhooks(self, cfg):
        from twisted.web.client import Agent, HTTPConnectionPool

        from dmgateway.api.webhooks import WebhookSender

        store = self.store
        self._webhooks = sender = WebhookSender(
            cfg.webhooks,
            _webhook_secret(cfg),
            Agent(self.reactor, pool=HTTPConnectionPool(self.reactor)),
            self.reactor,
            load_cursor=lambda url: store.get_cursor("webhook:" + url),
            save_cursor=lambda url, seq: store.set_cursor("webhook:" + url, seq),
            fetch_events=lambda after, limit: self.handlers.wait_events(after, limit, 0),
            retries=cfg.webhook_retries,
            timeout=cfg.webhook_timeout,
        )
        if self.cluster.enabled:
            # once per cluster, in order: the lease holder delivers from the stored cursors
            self.cluster.leased(sender, "webhooks", 1.0)
        else:
            sender.setServiceParent(self)
        self.events.listen(sender.notify)

    # -- reload and stop ---------------------------------------------------------

    def _on_sighup(self, signum, frame):
        self.reactor.callFromThread(self.reload)

    def reload(self):
        """SIGHUP: reopen log files, apply what can change while running, log it.

        Applied: the log level and format, the log file (reopened, for
        logrotate), the API token file, the webhook targets with their secret,
        retries and timeout.  Anything else that differs is
        logged as needing a restart.  A configuration that no longer loads
        changes nothing.
        """
        from dmgateway.api.site import ConfigurationError, read_token
        from dmgateway.daemon import sd_notify
        from dmgateway.logs import reopen_logs

        sd_notify("RELOADING=1")
        try:
            try:
                new = load_config(self.config_dir or self.config.config_dir)
            except ConfigError as e:
                log.error(
                    "reload refused: the configuration has {count} problems: {problems}",
                    count=len(e.problems),
                    problems="; ".join(str(p) for p in e.problems),
                )
                return []
            changes = reopen_logs(new.logging)
            if self._api_site is not None:
                try:
                    token = read_token(new.api.token_file)
                except ConfigurationError as e:
                    log.error("reload: API token kept: {reason}", reason=str(e))
                else:
                    if not self._api_site.token.matches(token):
                        self._api_site.token.set(token)
                        changes.append("API token replaced (from %s)" % (new.api.token_file,))
            changes.extend(self._reload_webhooks(new.api))
            changes.extend(_restart_needed(self.config, new))
            log.info(
                "reloaded on SIGHUP: {changes}",
                changes="; ".join(changes) if changes else "nothing changed",
                changed=changes,
            )
            return changes
        finally:
            sd_notify("READY=1")

    def _reload_webhooks(self, cfg):
        """Apply a changed ``[api] webhooks`` (and its secret, retries, timeout)."""
        import dataclasses

        try:
            secret = _webhook_secret(cfg)
        except OSError as e:
            log.error("reload: webhook settings kept: {reason}", reason=str(e))
            return []
        if self._webhooks is not None:
            changes = self._webhooks.reconfigure(
                cfg.webhooks, secret, retries=cfg.webhook_retries, timeout=cfg.webhook_timeout)
        elif cfg.webhooks:
            self._start_webhooks(cfg)
            changes = ["webhooks started: %d URL(s)" % (len(cfg.webhooks),)]
        else:
            changes = []
        applied = {name: getattr(cfg, name) for name in WEBHOOK_KEYS}
        self.config = dataclasses.replace(self.config, api=dataclasses.replace(self.config.api, **applied))
        return changes

    @defer.inlineCallbacks
    def stopService(self):
        from dmgateway.daemon import drain, sd_notify

        if self.process:
            sd_notify("STOPPING=1")
        if self._watchdog is not None and self._watchdog.running:
            self._watchdog.stop()
        if self.metrics is not None:
            self.metrics.stop()
        if self.state == "ready" and self.dispatcher is not None:
            self.state = "draining"
            yield defer.ensureDeferred(drain(self.dispatcher, self.reactor, self.config.gateway.drain_timeout))
        self.state = "stopped"
        ports, self._ports = self._ports, []
        yield defer.gatherResults([defer.maybeDeferred(p.stopListening) for _name, p in ports])
        if self.outbox is not None:
            yield self.outbox.stop()
        if self.delegation is not None:
            self.delegation.stop()
            yield self._delegation_client.close()
        if getattr(self, "_functions", None) is not None:
            self._functions.stop()
            yield self._functions.campaigns.stop()
        yield super().stopService()
        if self._sip is not None:
            yield self._sip.stop()
        if self.dispatcher is not None:
            yield self.dispatcher.stop()
        if self.store is not None:
            yield self.store.close()
        if self._store_lock is not None:
            self._store_lock.release()
        log.info("dmgateway stopped")


def instrument(factory, name, on_request):
    """Time the HTTP requests of listener ``name`` with ``on_request``.

    A TLS listener's factory wraps the HTTP site, whose requests look for
    the hook: it goes on the site.  The label is ``api``, ``delegation`` or
    ``dm`` (HTTP and HTTPS).
    """
    site = getattr(factory, "wrappedFactory", factory)
    site.listener_name = name if name in ("api", "delegation") else "dm"
    site.on_request = on_request


class _Unbind:
    """A listener entry for the SNMP agent (its service closes the socket)."""

    def __init__(self, agent):
        self.agent = agent

    def stopListening(self):
        return None


#: ``[api]`` keys a SIGHUP applies while running
WEBHOOK_KEYS = ("webhooks", "webhook_secret_file", "webhook_retries", "webhook_timeout")


def _webhook_secret(cfg):
    """The webhook signing secret ``[api] webhook_secret_file`` holds (None without one)."""
    if not cfg.webhook_secret_file:
        return None
    with open(cfg.webhook_secret_file, "rb") as f:
        return f.read().strip()


def _restart_needed(old, new):
    """Lines naming the settings that differ and apply only at the next start."""
    import dataclasses

    lines = []
    for section in dataclasses.fields(old):
        if section.name in ("logging", "config_dir", "files"):
            continue
        before, after = getattr(old, section.name), getattr(new, section.name)
        if before == after:
            continue
        if dataclasses.is_dataclass(before) and dataclasses.is_dataclass(after):
            keys = [f.name for f in dataclasses.fields(before)
                    if getattr(before, f.name) != getattr(after, f.name)]
            names = ", ".join(keys)
        else:
            names = "(changed)"
        lines.append("[%s] %s changed: needs a restart" % (section.name, names))
    return lines
