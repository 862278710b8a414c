"""The sections of ``dmgateway.ini`` and ``http.ini``: one frozen dataclass each.

Each class has ``read(reader, ...)`` which asks a
:class:`~dmgateway.config.reader.SectionReader` for each key with its type,
range and default (the defaults are the values of the shipped ``conf/``
files).  Secrets are left out of ``repr()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dmgateway.config import checks
from dmgateway.config.reader import SectionReader
from dmgateway.config.values import (
    DAY, check_psk_support, node_name, secret_file, single_word, token_file, url_path,
)

_LOG_LEVELS = ("debug", "info", "warn", "error", "critical")


@dataclass(frozen=True)
class ServerConfig:
    """``dmgateway.ini [gateway]``: who this server is, its store, its sessions."""

    server_id: str = "dmgateway"
    public_url: str = "http://127.0.0.1:8080/dm"
    store: str = field(default="sqlite:var/dmgateway.sqlite", repr=False)
    notification_version: int = 11
    session_timeout: int = 300
    node_name: str = ""
    max_sessions: int = 10000
    store_retry_after: int = 5
    drain_timeout: int = 20
    cluster: bool = False

    @classmethod
    def read(cls, r: SectionReader, *, hostname: str) -> ServerConfig:
        server = cls(
            server_id=r.text("server_id", cls.server_id, empty_ok=False,
                             validate=single_word),
            public_url=r.text("public_url", cls.public_url, empty_ok=False,
                              validate=checks.check_http_url),
            store=r.text("store", cls.store, empty_ok=False,
                         validate=lambda v: checks.check_store(v, environment=r.active)),
            notification_version=r.integer("notification_version", 11, 10, 13),
            session_timeout=r.integer("session_timeout", 300, 10, DAY),
            node_name=r.text("node_name", hostname, empty_ok=False, validate=node_name),
            max_sessions=r.integer("max_sessions", 10000, 1, 10_000_000),
            store_retry_after=r.integer("store_retry_after", 5, 1, 3600),
            drain_timeout=r.integer("drain_timeout", 20, 0, 3600),
            cluster=r.boolean("cluster", False),
        )
        if server.cluster and server.store.startswith("sqlite:"):
            r.problem("cluster", "several processes need a shared postgresql:// store; "
                                 "a sqlite: store serves one process only (set cluster = false)")
        return server


@dataclass(frozen=True)
class AuthConfig:
    """``dmgateway.ini [auth]``: DM-level authentication policy."""

    max_failures: int = 5
    failure_window: int = 300
    lockout: int = 900
    device_max_failures: int = 100
    max_session_guesses: int = 20
    nonce_size: int = 16
    accept_hex_mac: bool = False

    @classmethod
    def read(cls, r: SectionReader) -> AuthConfig:
        return cls(
            max_failures=r.integer("max_failures", 5, 1, 1000),
            failure_window=r.integer("failure_window", 300, 1, DAY),
            lockout=r.integer("lockout", 900, 0, 7 * DAY),
            device_max_failures=r.integer("device_max_failures", 100, 1, 1_000_000),
            max_session_guesses=r.integer("max_session_guesses", 20, 1, 100_000),
            nonce_size=r.integer("nonce_size", 16, 8, 64),
            accept_hex_mac=r.boolean("accept_hex_mac", False),
        )


@dataclass(frozen=True)
class NotifyConfig:
    """``dmgateway.ini [notify]``: the notification outbox (DM-1 wake-ups)."""

    auto_order: tuple[str, ...] = ("sip", "sms")
    retry_initial: float = 5.0
    retry_max: float = 300.0
    max_attempts: int = 8
    renotify_after: int = 300
    max_notifications: int = 3
    scan_interval: float = 5.0

    @classmethod
    def read(cls, r: SectionReader) -> NotifyConfig:
        def bearer(word):
            return None if word in ("sms", "sip") else "unknown bearer %r (sms or sip)" % (word,)

        order = r.words("auto_order", validate=bearer)
        return cls(
            auto_order=tuple(order) if order else ("sip", "sms"),
            retry_initial=r.number("retry_initial", 5.0, 0.1, 3600.0),
            retry_max=r.number("retry_max", 300.0, 1.0, DAY),
            max_attempts=r.integer("max_attempts", 8, 1, 1000),
            renotify_after=r.integer("renotify_after", 300, 10, 7 * DAY),
            max_notifications=r.integer("max_notifications", 3, 1, 100),
            scan_interval=r.number("scan_interval", 5.0, 0.1, 3600.0),
        )


@dataclass(frozen=True)
class ApiConfig:
    """``dmgateway.ini [api]``: the northbound REST API and its webhooks."""

    enabled: bool = True
    endpoint: str = "tcp:8081:interface=127.0.0.1"
    token_file: str = "var/api.token"
    max_body: int = 65536
    webhooks: tuple[str, ...] = ()
    webhook_secret_file: str = ""
    webhook_retries: int = 8
    webhook_timeout: float = 10.0
    console: bool = True

    @classmethod
    def read(cls, r: SectionReader) -> ApiConfig:
        r.active = r.boolean("enabled", True)
        return cls(
            enabled=r.active,
            endpoint=r.endpoint("endpoint", cls.endpoint),
            token_file=token_file(r, "token_file", cls.token_file),
            max_body=r.integer("max_body", 65536, 1024, 1 << 30),
            webhooks=r.words("webhooks", validate=checks.check_http_url),
            webhook_secret_file=secret_file(r, "webhook_secret_file"),
            webhook_retries=r.integer("webhook_retries", 8, 0, 100),
            webhook_timeout=r.number("webhook_timeout", 10.0, 0.1, 600),
            console=r.boolean("console", True),
        )


@dataclass(frozen=True)
class MetricsConfig:
    """``dmgateway.ini [metrics]``: Prometheus text at ``/metrics`` on the API endpoint."""

    enabled: bool = True
    require_token: bool = False

    @classmethod
    def read(cls, r: SectionReader) -> MetricsConfig:
        return cls(
            enabled=r.boolean("enabled", True),
            require_token=r.boolean("require_token", False),
        )


@dataclass(frozen=True)
class LoggingConfig:
    """``dmgateway.ini [logging]``: log format, level and destination."""

    format: str = "text"
    level: str = "info"
    file: str = ""

    @classmethod
    def read(cls, r: SectionReader) -> LoggingConfig:
        path = r.text("file")
        if path and r.active:
            problem = checks.check_parent_directory(path)
            if problem is None and os.path.isdir(path):
                problem = "%r is a directory, not a file" % (path,)
            if problem:
                r.problem("file", problem)
        return cls(
            format=r.choice("format", "text", ("text", "json")),
            level=r.choice("level", "info", _LOG_LEVELS, aliases={"warning": "warn"}),
            file=path,
        )


# -- http.ini ------------------------------------------------------------------


@dataclass(frozen=True)
class ListenerLimits:
    """What one peer may cost a DM-2 listener (the keys [http] and [https] share)."""

    backlog: int = 1024
    max_connections_per_peer: int = 64
    read_timeout: int = 30
    max_elements: int = 10000
    max_commands: int = 200
    max_items: int = 1000


@dataclass(frozen=True)
class HttpConfig(ListenerLimits):
    """``http.ini [http]``: the plain-HTTP DM-2 listener."""

    enabled: bool = False
    endpoint: str = "tcp:8080:interface=127.0.0.1"
    path: str = "/dm"
    max_body: int = 1048576

    @classmethod
    def read(cls, r: SectionReader, *, enabled_default: bool) -> HttpConfig:
        r.active = r.boolean("enabled", enabled_default)
        return cls(
            enabled=r.active,
            endpoint=r.endpoint("endpoint", cls.endpoint),
            path=r.text("path", "/dm", empty_ok=False, validate=url_path),
            max_body=r.integer("max_body", 1048576, 1024, 1 << 30),
            **_listener_limits(r),
        )


def _listener_limits(r: SectionReader) -> dict:
    """The keys [http] and [https] share that bound what one peer costs."""
    return dict(
        backlog=r.integer("backlog", 1024, 1, 65535),
        max_connections_per_peer=r.integer("max_connections_per_peer", 64, 1, 1_000_000),
        read_timeout=r.integer("read_timeout", 30, 1, 3600),
        max_elements=r.integer("max_elements", 10000, 10, 10_000_000),
        max_commands=r.integer("max_commands", 200, 1, 1_000_000),
        max_items=r.integer("max_items", 1000, 1, 1_000_000),
    )


def _cipher_string(value: str) -> str | None:
    """Why an OpenSSL cipher string is unusable (selects nothing, bad syntax), or None."""
    from OpenSSL import SSL

    context = SSL.Context(SSL.TLS_METHOD)
    try:
        context.set_cipher_list(value.encode("ascii"))
    except (SSL.Error, UnicodeEncodeError):
        return "%r selects no cipher suite OpenSSL knows" % (value,)
    return None


@dataclass(frozen=True)
class HttpsConfig(ListenerLimits):
    """``http.ini [https]``: the HTTPS DM-2 listener (``ssl:`` or ``tls:`` endpoint).

    ``haproxy:ssl:...`` takes the PROXY protocol header in the clear before
    the TLS handshake (HAProxy in TCP mode with ``send-proxy``, passing TLS
    through): the per-address cap then counts the devices, not the proxy.
    """

    enabled: bool = False
    endpoint: str = ("ssl:8443:interface=127.0.0.1:privateKey=/etc/dmgateway/key.pem"
                     ":certKey=/etc/dmgateway/cert.pem")
    path: str = "/dm"
    max_body: int = 1048576
    min_tls: str = "1.2"
    client_ca: str = ""
    psk: bool = False
    ciphers: str = "ECDHE+AESGCM:ECDHE+CHACHA20"

    @classmethod
    def read(cls, r: SectionReader) -> HttpsConfig:
        r.active = r.boolean("enabled", False)
        config = cls(
            enabled=r.active,
            endpoint=r.endpoint("endpoint", cls.endpoint, kinds=("ssl", "tls"), proxied=True),
            path=r.text("path", "/dm", empty_ok=False, validate=url_path),
            max_body=r.integer("max_body", 1048576, 1024, 1 << 30),
            min_tls=r.choice("min_tls", "1.2", ("1.2", "1.3"), aliases={
                "tlsv1.2": "1.2", "tls1.2": "1.2", "tlsv1.3": "1.3", "tls1.3": "1.3"}),
            client_ca=r.readable_file("client_ca"),
            psk=r.boolean("psk", False),
            ciphers=r.text("ciphers", cls.ciphers, empty_ok=False, validate=_cipher_string),
            **_listener_limits(r),
        )
        if r.active and config.psk:
            check_psk_support(r, "psk")
        return config
