"""Find, read and check a config directory: :func:`load_config` and :func:`check_config`.

Which file holds which sections is fixed (:data:`FILES`); every ``*.ini`` in
the directory is read and one of another name is a problem, as are sections
in the wrong file.  Everything is checked in one pass before anything is
returned (check fully, then apply): the daemon binds nothing until the whole
configuration is known to be good.

Bearer rule: a bearer whose file is absent is off.  ``[http]`` is on by
default when ``http.ini`` exists (set ``enabled = false`` in it for an
HTTPS-only gateway); every other bearer section is off unless it says
``enabled = true``.  ``dmgateway.ini`` must exist, but may hold only
``[gateway]`` (or nothing): missing sections and keys take their defaults.
"""

from __future__ import annotations

import os
import re
import socket
import traceback
from dataclasses import dataclass, field

from dmgateway.config import checks, inifile
from dmgateway.config.problems import ConfigError, Problem
from dmgateway.config.reader import SectionReader
from dmgateway.config.bearers import ModemConfig, SipConfig, SmppLinkConfig
from dmgateway.config.delegation import DelegationConfig
from dmgateway.config.gateway import (
    ApiConfig, AuthConfig, HttpConfig, HttpsConfig, LoggingConfig, MetricsConfig, NotifyConfig,
    ServerConfig,
)
from dmgateway.config.services import FunctionsConfig, SnmpConfig

#: The files of a config directory and the sections each may hold, in the
#: order they are checked.  ``smpp.ini`` also holds ``[smpp:NAME]`` sections.
FILES: dict[str, tuple[str, ...]] = {
    "dmgateway.ini": ("gateway", "auth", "notify", "api", "metrics", "logging"),
    "http.ini": ("http", "https"),
    "smpp.ini": ("smpp",),
    "modem.ini": ("modem",),
    "sip.ini": ("sip",),
    "delegation.ini": ("delegation",),
    "snmp.ini": ("snmp",),
    "functions.ini": ("functions",),
}
_HOME = {section: file for file, sections in FILES.items() for section in sections}
_LINK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")


@dataclass(frozen=True)
class GatewayConfig:
    """The whole, checked configuration of one gateway process."""

    config_dir: str
    files: tuple[str, ...]
    gateway: ServerConfig
    auth: AuthConfig
    notify: NotifyConfig
    api: ApiConfig
    metrics: MetricsConfig
    logging: LoggingConfig
    http: HttpConfig
    https: HttpsConfig
    smpp_links: tuple[SmppLinkConfig, ...] = ()
    modem: ModemConfig = field(default_factory=ModemConfig)
    sip: SipConfig = field(default_factory=SipConfig)
    delegation: DelegationConfig = field(default_factory=DelegationConfig)
    snmp: SnmpConfig = field(default_factory=SnmpConfig)
    functions: FunctionsConfig = field(default_factory=FunctionsConfig)

    @property
    def enabled_smpp_links(self) -> tuple[SmppLinkConfig, ...]:
        return tuple(link for link in self.smpp_links if link.enabled)


def load_config(config_dir: str, *, reactor=None, hostname: str | None = None) -> GatewayConfig:
    """The configuration in ``config_dir``; raises :class:`ConfigError`
    listing every problem if there is any.

    ``reactor`` is only used to build (never listen on or connect) endpoints
    for checking; by default an inert ``MemoryReactor``.  ``hostname`` is the
    default ``node_name`` (by default this machine's host name).  Relative
    paths in values are relative to the current working directory.
    """
    config, problems = _load_guarded(config_dir, reactor, hostname)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def check_config(config_dir: str, *, reactor=None, hostname: str | None = None) -> list[str]:
    """Every problem with ``config_dir``, one line each (``[]`` when it is
    good); never raises for anything in the directory."""
    return [str(p) for p in _load_guarded(config_dir, reactor, hostname)[1]]


def _load_guarded(config_dir, reactor, hostname):
    try:
        return _load(config_dir, reactor, hostname)
    except Exception as e:  # a checker bug must still come out as one line
        frame = traceback.extract_tb(e.__traceback__)[-1]
        return None, [Problem(config_dir, None, None, "internal error while checking "
                              "(%s:%s): %s: %s" % (os.path.basename(frame.filename),
                                                   frame.lineno, type(e).__name__, e))]


def _load(config_dir: str, reactor, hostname: str | None):
    if reactor is None:
        from twisted.internet.testing import MemoryReactor

        reactor = MemoryReactor()
    if hostname is None:
        hostname = _default_node_name()
    problems: list[Problem] = []
    files = _read_directory(config_dir, problems)
    if files is None:
        return None, problems
    if "dmgateway.ini" not in files:
        problems.append(Problem("dmgateway.ini", None, None,
                                "file not found in %s (it is required, even if it "
                                "only holds [gateway])" % (config_dir,)))
    sections = {name: _place_sections(name, raw, problems) for name, raw in files.items()}

    def read(file: str, section: str, cls, **kwargs):
        reader = SectionReader(file, section, sections.get(file, {}).get(section),
                               problems, reactor=reactor)
        config = cls.read(reader, **kwargs)
        reader.finish()
        return config

    config = GatewayConfig(
        config_dir=config_dir,
        files=tuple(files),
        gateway=read("dmgateway.ini", "gateway", ServerConfig, hostname=hostname),
        auth=read("dmgateway.ini", "auth", AuthConfig),
        notify=read("dmgateway.ini", "notify", NotifyConfig),
        api=read("dmgateway.ini", "api", ApiConfig),
        metrics=read("dmgateway.ini", "metrics", MetricsConfig),
        logging=read("dmgateway.ini", "logging", LoggingConfig),
        http=read("http.ini", "http", HttpConfig, enabled_default="http.ini" in files),
        https=read("http.ini", "https", HttpsConfig),
        smpp_links=_read_smpp_links(sections.get("smpp.ini", {}), problems, reactor),
        modem=read("modem.ini", "modem", ModemConfig),
        sip=read("sip.ini", "sip", SipConfig),
        delegation=read("delegation.ini", "delegation", DelegationConfig,
                        peer_sections=_peer_readers(sections.get("delegation.ini", {}),
                                                    problems, reactor)),
        snmp=read("snmp.ini", "snmp", SnmpConfig),
        functions=read("functions.ini", "functions", FunctionsConfig),
    )
    _check_listeners(config, problems)
    return config, problems


def _default_node_name() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip(".-_")[:63]
    return name or "dmgateway"


def _read_directory(config_dir: str, problems: list[Problem]):
    """``{file name: [RawSection]}`` of the known ``*.ini`` files present,
    in :data:`FILES` order, or ``None`` if the directory cannot be listed."""
    problem = checks.check_directory(config_dir)
    if problem:
        problems.append(Problem(config_dir, None, None, "config " + problem))
        return None
    names = sorted(n for n in os.listdir(config_dir)
                   if n.endswith(".ini") and not n.startswith("."))
    files = {}
    for name in sorted(names, key=lambda n: (list(FILES).index(n) if n in FILES else 99, n)):
        if name not in FILES:
            problems.append(Problem(name, None, None, "unknown config file (expected: %s)%s"
                                    % (", ".join(FILES), checks.suggest(name, FILES))))
            continue
        path = os.path.join(config_dir, name)
        if not os.path.isfile(path):
            problems.append(Problem(name, None, None, "not a regular file"))
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            problems.append(Problem(name, None, None, "cannot read %s: %s" % (path, e.strerror)))
            files[name] = []  # present, so not "missing"; its sections take defaults
            continue
        text = inifile.decode(data, name, problems)
        files[name] = inifile.parse(text, name, problems) if text is not None else []
    return files


def _place_sections(file: str, raw_sections, problems: list[Problem]):
    """``{section name: RawSection}`` of the sections that belong in ``file``."""
    placed = {}
    for raw in raw_sections:
        name = raw.name
        if name in FILES[file] or (file == "smpp.ini" and name.startswith("smpp:")) or (
                file == "delegation.ini" and name.startswith("peer:")):
            placed[name] = raw
        elif name in _HOME:
            problems.append(Problem(file, name, None, "section belongs in %s" % (_HOME[name],)))
        else:
            hint = checks.suggest(name, list(FILES[file]) + list(_HOME), "[%s]")
            problems.append(Problem(file, name, None, "unknown section%s" % (hint,)))
    return placed


def _read_smpp_links(sections, problems: list[Problem], reactor) -> tuple[SmppLinkConfig, ...]:
    links = []
    for section, raw in sections.items():
        name = "default" if section == "smpp" else section.split(":", 1)[1].strip()
        if not _LINK_NAME.fullmatch(name):
            problems.append(Problem("smpp.ini", section, None, "bad link name %r (letters, "
                                    "digits, '.', '_', '-'; at most 32)" % (name,)))
            continue
        if any(link.name == name for link in links):
            problems.append(Problem("smpp.ini", section, None,
                                    "link name %r is used twice ([smpp] is 'default')" % (name,)))
            continue
        reader = SectionReader("smpp.ini", section, raw, problems, reactor=reactor)
        links.append(SmppLinkConfig.read(reader, name=name))
        reader.finish()
    return tuple(links)


def _peer_readers(sections, problems: list[Problem], reactor):
    """``(server id, SectionReader)`` of each ``[peer:SERVERID]`` of delegation.ini."""
    readers = []
    for section, raw in sections.items():
        if not section.startswith("peer:"):
            continue
        name = section.split(":", 1)[1].strip()
        if not name or any(c.isspace() or c in "=&+" for c in name):
            problems.append(Problem("delegation.ini", section, None,
                                    "bad peer server id %r" % (name,)))
            continue
        readers.append((name, SectionReader("delegation.ini", section, raw, problems,
                                            reactor=reactor)))
    return readers


def _check_listeners(config: GatewayConfig, problems: list[Problem]) -> None:
    """Two enabled listeners on one TCP port (and overlapping interfaces)."""
    listeners = [
        ("dmgateway.ini", "api", config.api),
        ("http.ini", "http", config.http),
        ("http.ini", "https", config.https),
        ("delegation.ini", "delegation", config.delegation),
        ("functions.ini", "functions", _Listener(config.functions.download_enabled, config.functions.endpoint)),
    ]
    seen: list[tuple[str, str, str, int]] = []
    for file, section, part in listeners:
        if not part.enabled:
            continue
        address = _listen_address(part.endpoint)
        if address is None:
            continue
        interface, port = address
        for other_file, other_section, other_interface, other_port in seen:
            if port == other_port and (interface == other_interface or
                                       _wildcard(interface) or _wildcard(other_interface)):
                problems.append(Problem(file, section, "endpoint", "port %d is also used by "
                                        "%s [%s] endpoint" % (port, other_file, other_section)))
                break
        else:
            seen.append((file, section, interface, port))


@dataclass(frozen=True)
class _Listener:
    enabled: bool
    endpoint: str


def _listen_address(description: str) -> tuple[str, int] | None:
    if description[:8].lower() == "haproxy:":  # the PROXY protocol on the port of the inner endpoint
        description = description[8:]
    try:
        kind = checks.split_endpoint(description)[0].lower()
        named = checks.endpoint_parameters(description)
    except checks.EndpointSyntaxError:
        return None
    if kind not in ("tcp", "tcp6", "ssl", "tls") or not named.get("port", "443").isdigit():
        return None
    port = int(named.get("port", "443"))
    default = "::" if kind in ("tcp6", "tls") else ""
    return (named.get("interface", default), port) if 0 < port <= 65535 else None


def _wildcard(interface: str) -> bool:
    return interface in ("", "0.0.0.0", "::", "::0")


__all__ = ["FILES", "ConfigError", "GatewayConfig", "Problem", "check_config", "load_config"]
