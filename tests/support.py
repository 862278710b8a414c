"""Shared helpers for tests that need a gateway configuration or a store."""

from dmgateway.config import GatewayConfig
from dmgateway.config.gateway import (
    ApiConfig, AuthConfig, HttpConfig, HttpsConfig, LoggingConfig, MetricsConfig, NotifyConfig,
    ServerConfig,
)


def gateway_config(public_url="http://127.0.0.1:8080/dm", **gateway):
    """A :class:`GatewayConfig` with test values: every section at its
    defaults, ``[gateway]`` with ``server_id = dmgw-test``, an in-memory store,
    ``node_name = test-node`` and the keys given.  Change other sections with
    ``dataclasses.replace(gateway_config(), notify=NotifyConfig(...))``."""
    values = dict(server_id="dmgw-test", public_url=public_url, store="sqlite::memory:",
                  node_name="test-node")
    values.update(gateway)
    return GatewayConfig(
        config_dir="", files=(), gateway=ServerConfig(**values), auth=AuthConfig(),
        notify=NotifyConfig(), api=ApiConfig(), metrics=MetricsConfig(), logging=LoggingConfig(),
        http=HttpConfig(), https=HttpsConfig(),
    )


def open_test_store(case, uri="sqlite::memory:?inline=1"):
    """An in-memory SQLite store (``uri``) and a ``task.Clock`` at
    1,700,000,000 s: sets ``case.store`` and ``case.clock`` and closes the
    store with the test.  Fires with the store."""
    from twisted.internet import defer, reactor, task

    from dmgateway.store import open_store

    async def start():
        case.store = await open_store(uri, reactor=reactor)
        case.addCleanup(case.store.close)
        case.clock = task.Clock()
        case.clock.advance(1_700_000_000)
        return case.store

    return defer.ensureDeferred(start())


def start_dispatcher(case, device_id, account, store_uri="sqlite::memory:?inline=1", wrap=None, **gateway):
    """A started :class:`Dispatcher` on an SQLite store (in memory unless
    ``store_uri`` says otherwise), on a
    ``task.Clock`` at 1,700,000,000 s, with ``device_id``'s account put:
    sets ``case.store``, ``case.clock``, ``case.dispatcher`` and ``case.handlers`` and cleans
    the store up with the test.  ``wrap``, if given, makes the store the
    dispatcher gets (and ``case.store``) from the real one: a test's
    failing or held store around it.  Fires when ready."""
    from twisted.internet import defer

    from dmgateway.dispatch import Dispatcher
    from dmgateway.handlers import Handlers

    gateway.setdefault("session_timeout", 60)

    async def start():
        await open_test_store(case, store_uri)
        if wrap is not None:
            case.store = wrap(case.store)
        case.dispatcher = Dispatcher(case.store, gateway_config(**gateway), clock=case.clock)
        case.handlers = Handlers(case.dispatcher)
        await case.dispatcher.start()
        await case.handlers.put_device(device_id, account)

    return defer.ensureDeferred(start())


def start_smsc(case):
    """The simulator's SMSC on a free loopback port for ``case``: system_id
    ``gw``, password ``secret``, recording what comes in, no automatic
    receipts; stopped with the test.  Fires with it once it listens."""
    from twisted.internet import reactor

    from dmgateway.client.smsc import SMSCWakeSource

    smsc = SMSCWakeSource(reactor, "tcp:0:interface=127.0.0.1", "gw", "secret",
                          delivery_receipts=False, record=True)
    case.addCleanup(smsc.stop)
    return smsc.start().addCallback(lambda _: smsc)
