"""The sections of the optional services: ``snmp.ini`` and ``functions.ini``.

Each class has ``read(reader, ...)`` which asks a
:class:`~dmgateway.config.reader.SectionReader` for each key with its type,
range and default (the defaults are the values of the shipped ``conf/``
files).  Secrets are left out of ``repr()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dmgateway.config import checks
from dmgateway.config.reader import SectionReader
from dmgateway.config.values import DAY, host_port, max_length, secret_file


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
            address=r.text("address", cls.address, empty_ok=False, validate=host_port(None)),
            community=r.secret("community", "public", validate=max_length(64)),
            trap_targets=r.words("trap_targets", validate=host_port(162), separators=","),
            v3_user=r.text("v3_user", "", validate=max_length(32)),
            v3_auth_protocol=r.choice("v3_auth_protocol", "sha", ("md5", "sha", "sha256")),
            v3_auth_key_file=secret_file(r, "v3_auth_key_file"),
            v3_priv_protocol=r.choice("v3_priv_protocol", "aes", ("aes", "des", "none")),
            v3_priv_key_file=secret_file(r, "v3_priv_key_file"),
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

    timeout: int = DAY
    expiry_interval: int = 30
    download_enabled: bool = False
    endpoint: str = "tcp:8090:interface=127.0.0.1"
    download_url: str = "http://127.0.0.1:8090/fw"
    package_dir: str = "var/firmware"
    max_package_size: int = 256 * 1024 * 1024
    token_lifetime: int = 7 * DAY
    campaign_interval: int = 5
    result_codes: tuple = ()  # parsed rules, see dmgateway.functions.mo.parse_code_rule
    max_connections_per_peer: int = 64
    read_timeout: int = 30

    @classmethod
    def read(cls, r: SectionReader) -> FunctionsConfig:
        timeout = r.integer("timeout", cls.timeout, 60, 30 * DAY)
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
            token_lifetime=r.integer("token_lifetime", cls.token_lifetime, 60, 90 * DAY),
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
