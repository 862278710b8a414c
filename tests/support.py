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
