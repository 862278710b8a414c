"""Shared helpers for tests that need a gateway configuration or a store."""

from types import SimpleNamespace


def gateway_config(public_url="http://127.0.0.1:8080/dm", **gateway):
    """The parts of a GatewayConfig the dispatcher reads, with test values."""
    values = dict(
        server_id="dmgw-test",
        public_url=public_url,
        store="sqlite::memory:",
        node_name="test-node",
        session_timeout=300,
        notification_version=11,
        max_sessions=10000,
        store_retry_after=5,
    )
    values.update(gateway)
    return SimpleNamespace(
        gateway=SimpleNamespace(**values),
        auth=SimpleNamespace(
            max_failures=5, failure_window=300.0, lockout=900.0, nonce_size=16, accept_hex_mac=False,
            device_max_failures=100, max_session_guesses=20,
        ),
    )


def start_dispatcher(case, device_id, account, **gateway):
    """A started :class:`Dispatcher` on an in-memory SQLite store, on a
    ``task.Clock`` at 1,700,000,000 s, with ``device_id``'s account put:
    sets ``case.store``, ``case.clock`` and ``case.dispatcher`` and cleans
    the store up with the test.  Fires when ready."""
    from twisted.internet import defer, reactor, task

    from dmgateway.dispatch import Dispatcher
    from dmgateway.store import open_store

    gateway.setdefault("session_timeout", 60)

    async def start():
        case.store = await open_store("sqlite::memory:?inline=1", reactor=reactor)
        case.addCleanup(case.store.close)
        case.clock = task.Clock()
        case.clock.advance(1_700_000_000)
        case.dispatcher = Dispatcher(case.store, gateway_config(**gateway), clock=case.clock)
        await case.dispatcher.start()
        await case.dispatcher.put_device(device_id, account)

    return defer.ensureDeferred(start())
