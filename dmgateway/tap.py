"""``twistd dmgateway``: command-line options and the service tree.

The plugin in ``twisted/plugins/`` only points here.  :func:`makeService`
checks the whole configuration first (nothing binds when it is bad), then
returns a :class:`GatewayService` that opens the store, settles what a
previous process left in flight, and only then starts the listeners.
"""

import sys

from twisted.application import service
from twisted.internet import defer, endpoints
from twisted.logger import Logger
from twisted.python import usage

from dmgateway import __version__
from dmgateway.config import ConfigError, check_config, load_config

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
    return GatewayService(config)


class GatewayService(service.MultiService):
    """The whole gateway: store, dispatcher, listeners.

    Listeners are added only once the store is open and recovered, so a
    device never reaches a process that cannot serve it.
    """

    def __init__(self, config, reactor=None):
        super().__init__()
        self.config = config
        self._reactor = reactor
        self.store = None
        self.dispatcher = None
        self.ready = defer.Deferred()
        self._ports = []
        self.outbox = None
        self._sip = None
        self.delegation = None
        self._delegation_client = None

    @property
    def reactor(self):
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        return self._reactor

    def startService(self):
        super().startService()
        d = defer.ensureDeferred(self._start())
        d.addCallbacks(self.ready.callback, self._failed)

    def _failed(self, failure):
        log.failure("gateway failed to start", failure)
        self.ready.errback(failure)
        if self.reactor.running:
            self.reactor.stop()

    async def _start(self):
        from dmgateway.dispatch import Dispatcher
        from dmgateway.logs import install_json_log
        from dmgateway.store import open_store

        cfg = self.config
        install_json_log(cfg.logging)
        log.info(
            "dmgateway {version} starting: server_id={server_id} node={node} store={store}",
            version=__version__,
            server_id=cfg.gateway.server_id,
            node=cfg.gateway.node_name,
            store=_redact_store(cfg.gateway.store),
        )
        self.store = await open_store(cfg.gateway.store, reactor=self.reactor)
        self.dispatcher = Dispatcher(self.store, cfg, clock=self.reactor)
        await self.dispatcher.start()
        from dmgateway.store.devicepsk import DevicePskKeys

        self.dispatcher.device_psk = DevicePskKeys(self.store, self.reactor)
        await self.dispatcher.device_psk.load()
        if cfg.api.webhooks:
            self._start_webhooks()
        self._start_notifications()
        if cfg.delegation.enabled:
            self._start_delegation()
        for name, endpoint, factory in self._listeners():
            port = await endpoint.listen(factory)
            self._ports.append(port)
            address = port.getHost()
            log.info(
                "listening: {listener} on {host}:{port}",
                listener=name,
                host=address.host,
                port=address.port,
            )
        return self

    def _listeners(self):
        from dmgateway.api.site import api_site
        from dmgateway.bearers.http import dm_site, https_endpoint, with_backlog

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
                self.dispatcher.device_psk.key_for_identity,
            )
        elif cfg.https.enabled:
            yield "https", https_endpoint(reactor, cfg.https), dm_site(
                self.dispatcher, cfg.https.path, cfg.https.max_body, listener=cfg.https
            )
        if self.delegation is not None:
            from dmgateway.bearers.delegation import delegation_listener

            endpoint, factory = delegation_listener(
                reactor, cfg.delegation, self.delegation, self._delegation_peers
            )
            yield "delegation", endpoint, factory
        if cfg.api.enabled:
            yield "api", endpoints.serverFromString(reactor, cfg.api.endpoint), api_site(
                self.dispatcher, cfg
            )

    def _start_delegation(self):
        """DM-6: the flow (also reachable by the REST API) and the client to peers."""
        from dmgateway.bearers.delegation import DelegationClient, DelegationPeers
        from dmgateway.delegation.flow import DelegationService

        cfg = self.config
        self._delegation_peers = DelegationPeers(cfg.delegation)
        self._delegation_client = DelegationClient(self.reactor, cfg.delegation,
                                                    self._delegation_peers)
        self.delegation = DelegationService(cfg, self.dispatcher, self.store, self.reactor,
                                            self._delegation_client.send)
        self.dispatcher.delegation = self.delegation
        self.delegation.start()
        log.info("delegation: {mode} with {count} peers",
                 mode="TLS-PSK" if cfg.delegation.uses_psk else "certificates",
                 count=len(cfg.delegation.peers))

    def _start_notifications(self):
        """The bearers that wake devices, and the outbox feeding them (if any is on)."""
        import os
        import random

        from dmgateway.bearers import wake
        from dmgateway.notifier import Outbox

        cfg, reactor = self.config, self.reactor
        bearers = {}
        if cfg.enabled_smpp_links:
            from dmgateway.bearers.smpp import SMPPLink, SMPPRouter

            router = SMPPRouter()
            for link in cfg.enabled_smpp_links:
                router.add(SMPPLink(link, reactor, on_receipt=self._on_smpp_receipt))
            router.setServiceParent(self)
            bearers["sms"] = wake.SmsBearer(router)
        elif cfg.modem.enabled:
            from dmgateway.bearers.modem import ModemService

            modem = ModemService(cfg.modem, reactor, on_report=self._on_modem_report)
            modem.setServiceParent(self)
            bearers["sms"] = wake.SmsBearer(modem, smpp=False)
        if cfg.sip.enabled:
            from dmgateway.bearers.sip import SIPPusher

            self._sip = SIPPusher(cfg.sip, reactor, random.SystemRandom())
            bearers["sip"] = wake.SipBearer(self._sip)
        if not bearers:
            log.info("no notification bearer enabled: jobs wait for devices to connect")
            return
        self.outbox = Outbox(
            self.store, cfg, reactor, bearers, self.dispatcher.is_live, self.dispatcher.event, os.urandom
        )
        self.dispatcher.notifier = self.outbox
        self.outbox.start()
        log.info("notification bearers: {bearers}", bearers=" ".join(sorted(bearers)))

    def _on_smpp_receipt(self, message_id, state, error):
        from dmgateway.bearers.wake import smpp_receipt_handler

        if self.outbox is not None:
            smpp_receipt_handler(self.outbox)(message_id, state, error)

    def _on_modem_report(self, report):
        from dmgateway.bearers.wake import modem_report_handler

        if self.outbox is not None:
            modem_report_handler(self.outbox)(report)

    def _start_webhooks(self):
        from twisted.web.client import Agent, HTTPConnectionPool

        from dmgateway.api.webhooks import WebhookSender

        cfg, store = self.config.api, self.store
        secret = None
        if cfg.webhook_secret_file:
            with open(cfg.webhook_secret_file, "rb") as f:
                secret = f.read().strip()
        sender = WebhookSender(
            cfg.webhooks,
            secret,
            Agent(self.reactor, pool=HTTPConnectionPool(self.reactor)),
            self.reactor,
            load_cursor=lambda url: store.get_cursor("webhook:" + url),
            save_cursor=lambda url, seq: store.set_cursor("webhook:" + url, seq),
            fetch_events=lambda after, limit: self.dispatcher.wait_events(after, limit, 0),
            retries=cfg.webhook_retries,
            timeout=cfg.webhook_timeout,
        )
        sender.setServiceParent(self)
        self.dispatcher.add_event_listener(sender.notify)

    @defer.inlineCallbacks
    def stopService(self):
        ports, self._ports = self._ports, []
        yield defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports])
        if self.outbox is not None:
            yield self.outbox.stop()
        if self.delegation is not None:
            self.delegation.stop()
            yield self._delegation_client.close()
        yield super().stopService()
        if self._sip is not None:
            yield self._sip.stop()
        if self.dispatcher is not None:
            yield self.dispatcher.stop()
        if self.store is not None:
            yield self.store.close()
        log.info("dmgateway stopped")


def _redact_store(uri):
    """A store URI fit for a log line: no password (user info or parameters)."""
    if uri.startswith("postgres"):
        from dmgateway.store.postgres import redact_uri

        return redact_uri(uri)
    return uri
