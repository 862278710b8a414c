"""One frozen dataclass per config section, each reading its own keys.

Every class has ``read(reader, ...)`` which asks a
:class:`~dmgateway.config.reader.SectionReader` for each key with its type,
range and default (the defaults are the values of the shipped ``conf/``
files).  Secrets are left out of ``repr()``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from dmgateway.config import checks
from dmgateway.config.reader import SectionReader

_LOG_LEVELS = ("debug", "info", "warn", "error", "critical")
_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
_SMPP_NPI = (0, 1, 3, 4, 6, 8, 9, 10, 14, 18)  # SMPP 3.4 §5.2.6
_DAY = 86400


def _single_word(value: str) -> str | None:
    if any(c.isspace() for c in value):
        return "must not contain whitespace"
    return None


def _node_name(value: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", value):
        return "bad node name %r (letters, digits, '.', '_', '-'; at most 63)" % (value,)
    return None


def _url_path(value: str) -> str | None:
    if not value.startswith("/") or re.search(r"[\s?#]", value):
        return "bad path %r (must start with '/', no spaces, '?' or '#')" % (value,)
    return None


def _msisdn_prefix(value: str) -> str | None:
    if not re.fullmatch(r"\+?[0-9]{1,15}", value):
        return "bad MSISDN prefix %r (international digits, '+' optional)" % (value,)
    return None


def _max_length(limit: int):
    def check(value: str) -> str | None:
        if len(value.encode("utf-8")) > limit:
            return "longer than %d characters" % (limit,)
        return None
    return check


def _host_port(default_port: int | None):
    def check(value: str) -> str | None:
        try:
            checks.parse_host_port(value, default_port)
        except ValueError as e:
            return str(e)
        return None
    return check


def _secret_file(reader: SectionReader, key: str, default: str = "", *,
                 required: bool = False) -> str:
    """A file holding a secret: readable and not empty (when active)."""
    path = reader.readable_file(key, default, required=required)
    if path and reader.active and checks.check_readable_file(path) is None:
        try:
            if os.path.getsize(path) == 0:
                reader.problem(key, "file %r is empty" % (path,))
        except OSError as e:
            reader.problem(key, "cannot read %r: %s" % (path, e.strerror))
    return path


def _token_file(reader: SectionReader, key: str, default: str) -> str:
    """The API token file: a readable, non-empty file, or absent where the
    daemon can create it at its first start (mode 0600, a random token)."""
    path = reader.text(key, default, empty_ok=False)
    if not path or not reader.active:
        return path
    if not os.path.lexists(path):
        problem = checks.check_creatable_file(path)
    else:
        problem = checks.check_readable_file(path)
        if problem is None and os.path.getsize(path) == 0:
            problem = "file %r is empty" % (path,)
    if problem is not None:
        reader.problem(key, problem)
    return path


# -- dmgateway.ini -------------------------------------------------------------


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
                             validate=_single_word),
            public_url=r.text("public_url", cls.public_url, empty_ok=False,
                              validate=checks.check_http_url),
            store=r.text("store", cls.store, empty_ok=False,
                         validate=lambda v: checks.check_store(v, environment=r.active)),
            notification_version=r.integer("notification_version", 11, 10, 13),
            session_timeout=r.integer("session_timeout", 300, 10, _DAY),
            node_name=r.text("node_name", hostname, empty_ok=False, validate=_node_name),
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
            failure_window=r.integer("failure_window", 300, 1, _DAY),
            lockout=r.integer("lockout", 900, 0, 7 * _DAY),
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
            retry_max=r.number("retry_max", 300.0, 1.0, _DAY),
            max_attempts=r.integer("max_attempts", 8, 1, 1000),
            renotify_after=r.integer("renotify_after", 300, 10, 7 * _DAY),
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
            token_file=_token_file(r, "token_file", cls.token_file),
            max_body=r.integer("max_body", 65536, 1024, 1 << 30),
            webhooks=r.words("webhooks", validate=checks.check_http_url),
            webhook_secret_file=_secret_file(r, "webhook_secret_file"),
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
            path=r.text("path", "/dm", empty_ok=False, validate=_url_path),
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
    """``http.ini [https]``: the HTTPS DM-2 listener (``ssl:`` or ``tls:`` endpoint)."""

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
            endpoint=r.endpoint("endpoint", cls.endpoint, kinds=("ssl", "tls")),
            path=r.text("path", "/dm", empty_ok=False, validate=_url_path),
            max_body=r.integer("max_body", 1048576, 1024, 1 << 30),
            min_tls=r.choice("min_tls", "1.2", ("1.2", "1.3"), aliases={
                "tlsv1.2": "1.2", "tls1.2": "1.2", "tlsv1.3": "1.3", "tls1.3": "1.3"}),
            client_ca=r.readable_file("client_ca"),
            psk=r.boolean("psk", False),
            ciphers=r.text("ciphers", cls.ciphers, empty_ok=False, validate=_cipher_string),
            **_listener_limits(r),
        )
        if r.active and config.psk:
            _check_psk_support(r, "psk")
        return config


# -- smpp.ini ------------------------------------------------------------------


@dataclass(frozen=True)
class SmppLinkConfig:
    """``smpp.ini [smpp]`` (named ``default``) or ``[smpp:NAME]``: one SMPP 3.4 ESME link."""

    name: str = "default"
    enabled: bool = False
    endpoint: str = "tcp:host=127.0.0.1:port=2775"
    system_id: str = ""
    password: str = field(default="", repr=False)
    system_type: str = ""
    bind: str = "transmitter"
    source_addr: str = ""
    source_ton: int = 5
    source_npi: int = 0
    window: int = 10
    max_per_second: float = 50.0
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    request_delivery_receipts: bool = True
    reconnect_initial: float = 1.0
    reconnect_max: float = 60.0
    routes: tuple[str, ...] = ()
    takeover_after: float = 10.0

    @classmethod
    def read(cls, r: SectionReader, *, name: str) -> SmppLinkConfig:
        r.active = r.boolean("enabled", False)
        source_ton = r.integer("source_ton", 5, 0, 6)
        source_npi = r.integer("source_npi", 0, 0, 18)
        if source_npi not in _SMPP_NPI:
            r.problem("source_npi", "%d is not an SMPP NPI (one of: %s)"
                      % (source_npi, ", ".join(map(str, _SMPP_NPI))))
        link = cls(
            name=name,
            enabled=r.active,
            endpoint=r.endpoint("endpoint", cls.endpoint, server=False),
            system_id=r.text("system_id", required=True, validate=_max_length(15)),
            password=r.secret("password", validate=_max_length(8)),
            system_type=r.text("system_type", validate=_max_length(12)),
            bind=r.choice("bind", "transmitter", ("transmitter", "transceiver")),
            source_addr=r.text("source_addr", validate=lambda v: _source_addr(v, source_ton)),
            source_ton=source_ton,
            source_npi=source_npi,
            window=r.integer("window", 10, 1, 1000),
            max_per_second=r.number("max_per_second", 50.0, 0.1, 100000),
            enquire_link_interval=r.number("enquire_link_interval", 30.0, 1, 3600),
            response_timeout=r.number("response_timeout", 10.0, 0.1, 600),
            request_delivery_receipts=r.boolean("request_delivery_receipts", True),
            reconnect_initial=r.number("reconnect_initial", 1.0, 0.1, 3600),
            reconnect_max=r.number("reconnect_max", 60.0, 0.1, _DAY),
            routes=tuple(dict.fromkeys(p.lstrip("+") for p in r.words(
                "routes", validate=_msisdn_prefix, separators=","))),
            takeover_after=r.number("takeover_after", 10.0, 1.5, 600),
        )
        if link.reconnect_max < link.reconnect_initial:
            r.problem("reconnect_max", "%g is less than reconnect_initial (%g)"
                      % (link.reconnect_max, link.reconnect_initial))
        return link

    def serves(self, msisdn: str) -> bool:
        """Whether this link's ``routes`` cover ``msisdn`` (``+`` optional)."""
        number = msisdn.lstrip("+")
        return not self.routes or any(number.startswith(p) for p in self.routes)


def _source_addr(value: str, ton: int) -> str | None:
    if ton == 5 and len(value) > 11:  # alphanumeric sender (GSM 03.40 limit)
        return "an alphanumeric source_addr (source_ton 5) has at most 11 characters"
    if ton in (1, 2, 4) and not re.fullmatch(r"\+?[0-9]{1,20}", value):
        return "bad source_addr %r for source_ton %d (digits only)" % (value, ton)
    return _max_length(20)(value)


# -- modem.ini -----------------------------------------------------------------


@dataclass(frozen=True)
class ModemConfig:
    """``modem.ini [modem]``: a serial GSM modem sending SMS (AT commands, PDU mode)."""

    enabled: bool = False
    device: str = "/dev/ttyUSB0"
    baudrate: int = 115200
    pin: str = field(default="", repr=False)
    smsc: str = ""
    command_timeout: float = 10.0

    @classmethod
    def read(cls, r: SectionReader) -> ModemConfig:
        r.active = r.boolean("enabled", False)
        device = r.text("device", cls.device, empty_ok=False)
        if r.active and device and not os.path.exists(device):
            r.problem("device", "device %r not found%s" % (device, checks.where(device)))
        elif r.active and device and not os.access(device, os.R_OK | os.W_OK):
            r.problem("device", "device %r is not readable and writable" % (device,))
        baudrate = r.integer("baudrate", 115200, 300, 4_000_000)
        if baudrate not in _BAUDRATES:
            r.problem("baudrate", "%d is not a standard rate (one of: %s)"
                      % (baudrate, ", ".join(map(str, _BAUDRATES))))
        return cls(
            enabled=r.active,
            device=device,
            baudrate=baudrate,
            pin=r.secret("pin", validate=lambda v: None if re.fullmatch(r"[0-9]{4,8}", v)
                         else "a SIM PIN is 4 to 8 digits"),
            smsc=r.text("smsc", validate=lambda v: None if re.fullmatch(r"\+?[0-9]{3,20}", v)
                        else "bad SMSC number %r" % (v,)),
            command_timeout=r.number("command_timeout", 10.0, 0.1, 600),
        )


# -- sip.ini -------------------------------------------------------------------


@dataclass(frozen=True)
class SipConfig:
    """``sip.ini [sip]``: SIP Push (pager-mode MESSAGE) to the device's ``sip_uri``."""

    enabled: bool = False
    transport: str = "udp"
    proxy: str = ""
    from_uri: str = ""
    push_app_id: str = "syncml.dm"
    content_type: str = "application/vnd.syncml.notification"
    local_endpoint: str = ""
    auth_user: str = ""
    auth_password_file: str = ""
    t1: float = 0.5
    timeout: float = 32.0
    tls_ca: str = ""

    @classmethod
    def read(cls, r: SectionReader) -> SipConfig:
        r.active = r.boolean("enabled", False)
        transport = r.choice("transport", "udp", ("udp", "tcp", "tls"))
        auth_user = r.text("auth_user", validate=_single_word)
        config = cls(
            enabled=r.active,
            transport=transport,
            proxy=r.text("proxy", required=True,
                         validate=_host_port(5061 if transport == "tls" else 5060)),
            from_uri=r.text("from_uri", required=True, validate=_sip_uri),
            push_app_id=r.text("push_app_id", "syncml.dm", empty_ok=False,
                               validate=lambda v: None if re.fullmatch(r"[\x21-\x7e]+", v)
                               and '"' not in v else "bad push application id %r" % (v,)),
            content_type=r.text("content_type", cls.content_type, empty_ok=False,
                                validate=lambda v: None if re.fullmatch(
                                    r"[\w.+-]+/[\w.+-]+", v) else "bad media type %r" % (v,)),
            local_endpoint=r.text("local_endpoint", validate=_host_port(0)),
            auth_user=auth_user,
            auth_password_file=_secret_file(r, "auth_password_file",
                                            required=bool(auth_user)),
            t1=r.number("t1", 0.5, 0.01, 10),
            timeout=r.number("timeout", 32.0, 0.1, 600),
            tls_ca=r.readable_file("tls_ca"),
        )
        if config.timeout < config.t1:
            r.problem("timeout", "%g is less than t1 (%g)" % (config.timeout, config.t1))
        return config

    @property
    def proxy_address(self) -> tuple[str, int]:
        """``(host, port)`` of ``proxy``; the port defaults to 5060 (5061 for TLS)."""
        return checks.parse_host_port(self.proxy, 5061 if self.transport == "tls" else 5060)


def _sip_uri(value: str) -> str | None:
    if not re.fullmatch(r"sips?:([^@\s<>\"]+@)?[^@\s<>\";:]+(:[0-9]{1,5})?(;[^\s<>\"]*)?",
                        value, re.IGNORECASE):
        return "bad SIP URI %r (like sip:dms@example.com)" % (value,)
    return None


# -- delegation.ini ------------------------------------------------------------


@dataclass(frozen=True)
class DelegationPeer:
    """A DM server this gateway delegates devices to or accepts them from.

    ``server_id`` names it (``peers`` and ``[peer:SERVERID]``); ``url`` is
    its delegation resource.  ``psk_identity`` is the identity the peer
    presents to our listener and ``psk_file`` the key shared with it (both
    directions; empty: ``[delegation] psk_file``).  ``certificate`` is the
    peer's pinned certificate (PEM; empty: ``[delegation] peer_ca``).
    """

    server_id: str
    url: str
    psk_identity: str = ""
    psk_file: str = ""
    certificate: str = ""


@dataclass(frozen=True)
class DelegationConfig:
    """``delegation.ini [delegation]``: DM-6 server-to-server delegation over TLS."""

    enabled: bool = False
    endpoint: str = ("ssl:8444:interface=127.0.0.1:privateKey=/etc/dmgateway/key.pem"
                     ":certKey=/etc/dmgateway/cert.pem")
    path: str = "/dm-delegation"
    psk_identity: str = ""
    psk_file: str = ""
    peers: tuple[DelegationPeer, ...] = ()
    peer_ca: str = ""
    timeout: float = 30.0
    check_interval: float = 60.0

    @classmethod
    def read(cls, r: SectionReader, peer_sections=()) -> DelegationConfig:
        r.active = r.boolean("enabled", False)
        psk_identity = r.text("psk_identity", validate=_psk_identity)
        urls = {}
        for word in r.words("peers", validate=_peer):
            server_id, url = word.split("=", 1)
            if server_id in urls:
                r.problem("peers", "peer %r listed twice" % (server_id,))
            else:
                urls[server_id] = url
        peers = {server_id: DelegationPeer(server_id, url) for server_id, url in urls.items()}
        for name, reader in peer_sections:
            reader.active = r.active
            url = reader.text("url", urls.get(name, ""), validate=_https_url)
            if not url and r.active:
                reader.problem("url", "no URL for peer %r (here or in [delegation] peers)"
                               % (name,))
            peer_identity = reader.text("psk_identity", validate=_psk_identity)
            peers[name] = DelegationPeer(
                server_id=name,
                url=url,
                psk_identity=peer_identity,
                psk_file=_psk_file(reader, "psk_file"),
                certificate=reader.readable_file("certificate"),
            )
            reader.finish()
        psk_file = _psk_file(r, "psk_file", required=bool(psk_identity))
        config = cls(
            enabled=r.active,
            endpoint=r.endpoint("endpoint", cls.endpoint, kinds=("ssl", "tls")),
            path=r.text("path", cls.path, empty_ok=False, validate=_url_path),
            psk_identity=psk_identity,
            psk_file=psk_file,
            peers=tuple(peers.values()),
            peer_ca=r.readable_file("peer_ca"),
            timeout=r.number("timeout", 30.0, 0.1, 600),
            check_interval=r.number("check_interval", 60.0, 0.1, 3600),
        )
        if r.active and psk_identity:
            _check_psk_support(r, "psk_identity")
            identities = [p.psk_identity for p in config.peers if p.psk_identity]
            if len(set(identities)) != len(identities):
                r.problem("psk_identity", "two peers use the same psk_identity")
        if r.active and not psk_identity:
            for peer in config.peers:
                if not (peer.certificate or config.peer_ca):
                    r.problem("peer_ca", "peer %r has no pinned certificate and peer_ca is "
                              "empty: with certificates, every peer must be pinned"
                              % (peer.server_id,))
        return config

    @property
    def uses_psk(self) -> bool:
        return bool(self.psk_identity)

    def peer(self, server_id: str) -> DelegationPeer | None:
        for peer in self.peers:
            if peer.server_id == server_id:
                return peer
        return None


def _check_psk_support(reader: SectionReader, key: str) -> None:
    from dmgateway.bearers.tlspsk import psk_available

    if not psk_available():
        reader.problem(key, "TLS-PSK needs OpenSSL PSK support in the installed cryptography "
                       "package's binding, which it lacks")


def _psk_identity(value: str) -> str | None:
    if len(value.encode("utf-8")) > 128 or not value.isprintable():
        return "bad PSK identity %r (printable, at most 128 bytes)" % (value,)
    return None


def _https_url(value: str) -> list[str] | str | None:
    return checks.check_http_url(value, https_only=True)


def _psk_file(reader: SectionReader, key: str, *, required: bool = False) -> str:
    """A file holding a PSK in hex (as ``openssl -psk`` takes it)."""
    path = _secret_file(reader, key, required=required)
    if path and reader.active and checks.check_readable_file(path) is None:
        try:
            with open(path, "rb") as f:
                text = f.read(4096).decode("ascii").strip()
            if text[:2].lower() == "0x":
                text = text[2:]
            key_bytes = bytes.fromhex(text)
            if not 16 <= len(key_bytes) <= 256:
                reader.problem(key, "the key in %r must be 16 to 256 bytes" % (path,))
        except (OSError, UnicodeDecodeError, ValueError):
            reader.problem(key, "%r must hold the key as hex digits" % (path,))
    return path


def _peer(word: str) -> list[str] | str | None:
    server_id, sep, url = word.partition("=")
    if not sep or not server_id:
        return "bad peer %r (expected SERVERID=https://host/path)" % (word,)
    return checks.check_http_url(url, https_only=True)


# -- snmp.ini ------------------------------------------------------------------


def _read_key(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return ""


@dataclass(frozen=True)
class SnmpConfig:
    """``snmp.ini [snmp]``: the SNMP agent (pysnmp 7 on the asyncio reactor, installed when enabled)."""

    enabled: bool = False
    address: str = "127.0.0.1:1161"
    community: str = field(default="public", repr=False)
    trap_targets: tuple[str, ...] = ()
    v3_user: str = ""
    v3_auth_protocol: str = "sha"
    v3_auth_key_file: str = ""
    v3_priv_protocol: str = "aes"
    v3_priv_key_file: str = ""

    @classmethod
    def read(cls, r: SectionReader) -> SnmpConfig:
        r.active = r.boolean("enabled", False)
        config = cls(
            enabled=r.active,
            address=r.text("address", cls.address, empty_ok=False, validate=_host_port(None)),
            community=r.secret("community", "public", validate=_max_length(64)),
            trap_targets=r.words("trap_targets", validate=_host_port(162), separators=","),
            v3_user=r.text("v3_user", "", validate=_max_length(32)),
            v3_auth_protocol=r.choice("v3_auth_protocol", "sha", ("md5", "sha", "sha256")),
            v3_auth_key_file=_secret_file(r, "v3_auth_key_file"),
            v3_priv_protocol=r.choice("v3_priv_protocol", "aes", ("aes", "des", "none")),
            v3_priv_key_file=_secret_file(r, "v3_priv_key_file"),
        )
        if r.active and config.v3_user:
            keys = [("v3_auth_key_file", config.v3_auth_key_file)]
            if config.v3_priv_protocol != "none":
                keys.append(("v3_priv_key_file", config.v3_priv_key_file))
            for key, path in keys:
                if not path:
                    r.problem(key, "needed with v3_user %r" % (config.v3_user,))
                elif checks.check_readable_file(path) is None and len(_read_key(path)) < 8:
                    r.problem(key, "the passphrase in %r is shorter than 8 characters" % (path,))
        if r.active and config.trap_targets and not config.community:
            r.problem("trap_targets", "traps are SNMPv2c: they need a community")
        if r.active and not config.community and not config.v3_user:
            r.problem("community", "empty community and no v3_user: nobody could query the agent")
        return config

    @property
    def v3_keys(self) -> tuple[str, str]:
        """The SNMPv3 authentication and privacy passphrases (read now)."""
        auth = _read_key(self.v3_auth_key_file) if self.v3_auth_key_file else ""
        priv = _read_key(self.v3_priv_key_file) if self.v3_priv_key_file else ""
        return auth, priv

    @property
    def host_port(self) -> tuple[str, int]:
        return checks.parse_host_port(self.address)

    @property
    def trap_hosts(self) -> list[tuple[str, int]]:
        return [checks.parse_host_port(target, 162) for target in self.trap_targets]


# -- functions.ini ---------------------------------------------------------------


@dataclass(frozen=True)
class FunctionsConfig:
    """``functions.ini [functions]``: device functions, the package server, campaigns."""

    timeout: int = _DAY
    expiry_interval: int = 30
    download_enabled: bool = False
    endpoint: str = "tcp:8090:interface=127.0.0.1"
    download_url: str = "http://127.0.0.1:8090/fw"
    package_dir: str = "var/firmware"
    max_package_size: int = 256 * 1024 * 1024
    token_lifetime: int = 7 * _DAY
    campaign_interval: int = 5
    result_codes: tuple = ()  # parsed rules, see dmgateway.functions.mo.parse_code_rule
    max_connections_per_peer: int = 64
    read_timeout: int = 30

    @classmethod
    def read(cls, r: SectionReader) -> FunctionsConfig:
        timeout = r.integer("timeout", cls.timeout, 60, 30 * _DAY)
        expiry_interval = r.integer("expiry_interval", 30, 1, 3600)
        campaign_interval = r.integer("campaign_interval", 5, 1, 600)
        r.active = r.boolean("download_enabled", False)
        return cls(
            timeout=timeout,
            expiry_interval=expiry_interval,
            download_enabled=r.active,
            endpoint=r.endpoint("endpoint", cls.endpoint, kinds=("tcp", "ssl")),
            download_url=r.text("download_url", cls.download_url, empty_ok=False,
                                validate=checks.check_http_url),
            package_dir=r.text("package_dir", cls.package_dir, empty_ok=False),
            max_package_size=r.integer("max_package_size", cls.max_package_size, 1, 16 * 1024 ** 3),
            token_lifetime=r.integer("token_lifetime", cls.token_lifetime, 60, 90 * _DAY),
            campaign_interval=campaign_interval,
            result_codes=_code_rules(r),
            max_connections_per_peer=r.integer("max_connections_per_peer", cls.max_connections_per_peer, 1,
                                               1_000_000),
            read_timeout=r.integer("read_timeout", cls.read_timeout, 1, 3600),
        )


def _code_rules(r: SectionReader) -> tuple:
    from dmgateway.functions.mo import parse_code_rule

    def check(word: str) -> str | None:
        try:
            parse_code_rule(word)
        except ValueError as e:
            return str(e)
        return None

    return tuple(parse_code_rule(word) for word in r.words("result_codes", validate=check))
