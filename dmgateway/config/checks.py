"""Checks of single values: endpoint strings, URLs, store URIs, addresses.

Every ``check_*`` function returns a list of messages (empty when the value
is fine) and never raises.  ``environment=True`` adds the checks that look at
this machine: referenced files exist and are readable, and endpoint strings
are built with Twisted's own parsers (against an inert reactor, so nothing
is bound or connected).  Relative paths are taken relative to the current
working directory, the directory the daemon runs in.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from urllib.parse import urlsplit

from dmgateway.endpoints import EndpointSyntaxError, split_endpoint, split_parameters
from dmgateway.redact import redact_text

# Parameters of the endpoint types built into Twisted: the names positional
# arguments fill (in order, skipping names given as key=value) and every
# name the parser accepts.  File and directory parameters are checked on disk.
_SERVER = {
    "tcp": (("port",), {"port", "interface", "backlog"}),
    "tcp6": (("port",), {"port", "interface", "backlog"}),
    "ssl": (
        ("port",),
        {"port", "privateKey", "certKey", "sslmethod", "interface", "backlog",
         "extraCertChain", "dhParameters"},
    ),
    "unix": (("address",), {"address", "mode", "backlog", "lockfile"}),
    "tls": (("path", "port"), {"path", "port", "backlog", "interface"}),
    "systemd": ((), {"domain", "index", "name"}),
}
_CLIENT = {
    "tcp": (("host", "port"), {"host", "port", "timeout", "bindAddress"}),
    "ssl": (
        ("host", "port"),
        {"host", "port", "timeout", "bindAddress", "certKey", "privateKey",
         "caCertsDir", "hostname"},
    ),
    "tls": (
        ("host", "port"),
        {"host", "port", "timeout", "bindAddress", "certificate", "privateKey",
         "trustRoots", "endpoint"},
    ),
    "unix": (("path",), {"path", "lockfile", "timeout"}),
}
_FILE_PARAMS = {"privateKey", "certKey", "extraCertChain", "dhParameters", "certificate"}
_DIR_PARAMS = {"caCertsDir", "trustRoots"}
_INT_PARAMS = {"backlog", "timeout"}

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def _split_once_named(description: str) -> tuple[str, list[str], dict[str, str]]:
    """:func:`split_endpoint`, refusing a name given twice (Twisted would keep
    the last value silently)."""
    names = [param[0] for param in split_parameters(description) if len(param) == 2]
    for name in names:
        if names.count(name) > 1:
            raise EndpointSyntaxError("parameter %r given twice" % (name,))
    return split_endpoint(description)


def endpoint_parameters(description: str, *, server: bool = True) -> dict[str, str]:
    """Named parameters of a built-in endpoint type, positionals resolved.

    ``endpoint_parameters("ssl:8443:privateKey=k.pem")`` is
    ``{"port": "8443", "privateKey": "k.pem"}``; bearers use it to find the
    key and certificate files of an HTTPS listener.  Raises
    :class:`EndpointSyntaxError` for what :func:`check_endpoint` rejects.
    """
    kind, args, kwargs = _split_once_named(description)
    table = _SERVER if server else _CLIENT
    if kind.lower() not in table:
        raise EndpointSyntaxError("not a built-in endpoint type: %r" % (kind,))
    positional, _ = table[kind.lower()]
    named = dict(kwargs)
    free = [name for name in positional if name not in named]
    if len(args) > len(free):
        raise EndpointSyntaxError("too many ':'-separated values")
    named.update(zip(free, args))
    return named


def check_endpoint(description: str, *, server: bool, reactor=None,
                   environment: bool = False) -> list[str]:
    """Problems with a server (listen) or client (connect) endpoint string.

    Messages read ``bad endpoint 'tcp:99999': port out of range (0-65535)``.
    With ``environment`` and a ``reactor`` the endpoint is also built with
    ``serverFromString``/``clientFromString`` (which neither listen nor
    connect) and any exception becomes a message.
    """
    def bad(reason: str) -> list[str]:
        return ["bad endpoint %r: %s" % (description, reason)]

    if not description.strip():
        return ["empty endpoint"]
    if description != description.strip() or "\n" in description:
        return bad("contains whitespace")
    try:
        kind, _, _ = _split_once_named(description)
        table = _SERVER if server else _CLIENT
        if kind.lower() not in table:  # maybe an endpoint plugin's type
            reasons = _check_plugin_type(kind, server)
            if not reasons and environment and reactor is not None:
                reasons = _build(description, server, reactor)
            return [r for reason in reasons for r in bad(reason)]
        named = endpoint_parameters(description, server=server)
    except EndpointSyntaxError as e:
        return bad(str(e))
    kind = kind.lower()
    accepted = table[kind][1]
    reasons = []
    for name in sorted(set(named) - accepted):
        reasons.append("unknown parameter %r%s" % (name, suggest(name, accepted)))
    reasons += _check_values(kind, named, server)
    if not reasons and environment:
        reasons += _check_paths(kind, named, server)
    if reasons:
        return [r for reason in reasons for r in bad(reason)]
    if environment and reactor is not None and kind != "systemd":
        # systemd: endpoints look at inherited sockets when built; the
        # check runs before systemd hands any over, so only syntax is checked.
        return [r for reason in _build(description, server, reactor) for r in bad(reason)]
    return []


def _check_plugin_type(kind: str, server: bool) -> list[str]:
    from twisted.internet import interfaces
    from twisted.plugin import getPlugins

    interface = (interfaces.IStreamServerEndpointStringParser if server
                 else interfaces.IStreamClientEndpointStringParserWithReactor)
    try:
        prefixes = {p.prefix.lower() for p in getPlugins(interface)}
    except Exception as e:  # a broken plugin must not stop the check
        return ["cannot look up endpoint plugins: %s" % (e,)]
    if kind.lower() in prefixes:
        return []
    known = sorted(set(_SERVER if server else _CLIENT) | prefixes)
    return ["unknown endpoint type %r%s" % (kind, suggest(kind.lower(), known))]


def _check_values(kind: str, named: dict[str, str], server: bool) -> list[str]:
    reasons = []
    if kind in ("tcp", "tcp6", "ssl") or (kind == "tls" and not server):
        if "port" not in named:
            reasons.append("no port given")
    if "port" in named:
        reasons += _port_reasons(named["port"], server)
    if not server and kind in ("tcp", "ssl", "tls"):
        host = named.get("host", "")
        if not host:
            reasons.append("no host given")
        elif not is_host(host):
            reasons.append("bad host %r" % (host,))
    if server and kind == "unix" and not named.get("address"):
        reasons.append("no socket path given")
    if not server and kind == "unix" and not named.get("path"):
        reasons.append("no socket path given")
    if server and kind == "tls" and not named.get("path"):
        reasons.append("no certificate directory given")
    interface = named.get("interface")
    if interface and not is_host(interface):
        reasons.append("bad interface %r" % (interface,))
    for name in sorted(_INT_PARAMS & set(named)):
        if not named[name].isdigit():
            reasons.append("%s must be a whole number, got %r" % (name, named[name]))
    if kind == "unix" and "mode" in named and not re.fullmatch(r"[0-7]{1,4}", named["mode"]):
        reasons.append("mode must be octal, got %r" % (named["mode"],))
    return reasons


def _port_reasons(text: str, server: bool) -> list[str]:
    low = 0 if server else 1
    try:
        port = int(text, 10)
    except ValueError:
        return ["port %r is not a number" % (text,)]
    if not low <= port <= 65535:
        return ["port out of range (%d-65535)" % (low,)]
    return []


def _check_paths(kind: str, named: dict[str, str], server: bool) -> list[str]:
    reasons = []
    files = {k: v for k, v in named.items() if k in _FILE_PARAMS}
    if server and kind == "ssl":
        files.setdefault("privateKey", "server.pem")  # Twisted's default
    for name in sorted(files):
        problem = check_readable_file(files[name])
        if problem:
            reasons.append("%s: %s" % (name, problem))
    dirs = {k: v for k, v in named.items() if k in _DIR_PARAMS}
    if server and kind == "tls":
        dirs["path"] = named["path"]
    for name in sorted(dirs):
        problem = check_directory(dirs[name])
        if problem:
            reasons.append("%s: %s" % (name, problem))
    return reasons


def _build(description: str, server: bool, reactor) -> list[str]:
    from twisted.internet.endpoints import clientFromString, serverFromString

    try:
        if server:
            serverFromString(reactor, description)
        else:
            clientFromString(reactor, description)
    except Exception as e:  # any failure to build is a config problem
        text = str(e) or type(e).__name__
        if type(e).__module__.startswith("OpenSSL"):
            text = "OpenSSL cannot load the key or certificate: %s" % (text,)
        return [text]
    return []


def check_readable_file(path: str) -> str | None:
    """Why ``path`` is not a readable regular file, or ``None``."""
    note = where(path)
    try:
        if os.path.isdir(path):
            return "%r is a directory, not a file%s" % (path, note)
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        return "file %r not found%s" % (path, note)
    except PermissionError:
        return "file %r is not readable (permission denied)%s" % (path, note)
    except (OSError, ValueError) as e:
        return "cannot read %r: %s%s" % (path, getattr(e, "strerror", None) or e, note)
    return None


def check_creatable_file(path: str) -> str | None:
    """Why a file cannot be created at ``path`` (its nearest existing
    ancestor must be a directory we may write in), or ``None``."""
    note = where(path)
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    if not os.path.isdir(parent):
        return "file %r not found and %r is not a directory%s" % (path, parent, note)
    if not os.access(parent, os.W_OK | os.X_OK):
        return "file %r not found and cannot be created in %r (permission denied)%s" % (
            path, parent, note)
    return None


def check_directory(path: str) -> str | None:
    """Why ``path`` is not a listable directory, or ``None``."""
    note = where(path)
    try:
        os.listdir(path)
    except FileNotFoundError:
        return "directory %r not found%s" % (path, note)
    except NotADirectoryError:
        return "%r is not a directory%s" % (path, note)
    except PermissionError:
        return "directory %r is not readable (permission denied)%s" % (path, note)
    except (OSError, ValueError) as e:
        return "cannot list %r: %s%s" % (path, getattr(e, "strerror", None) or e, note)
    return None


def check_parent_directory(path: str) -> str | None:
    """Why the directory that would hold ``path`` does not exist, or ``None``."""
    parent = os.path.dirname(path) or "."
    if os.path.isdir(parent):
        return None
    return "directory %r for %r not found%s" % (parent, path, where(parent))


def where(path: str) -> str:
    """`` (relative to CWD)`` for a relative path, else ``''``."""
    if os.path.isabs(path):
        return ""
    try:
        return " (relative to %s)" % (os.getcwd(),)
    except OSError:
        return " (relative to the working directory)"


def is_host(text: str) -> bool:
    """Whether ``text`` is an IP address literal or a DNS host name."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", text):
        return False  # looks like an IPv4 address but is not one
    return bool(_HOSTNAME.match(text))


def parse_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``(host, port)`` of ``host:port``, ``[v6]:port`` or (with a default) ``host``.

    Raises :class:`ValueError` whose message reads
    ``bad address 'h:0': port out of range (1-65535)``.
    """
    def bad(reason: str) -> ValueError:
        return ValueError("bad address %r: %s" % (text, reason))

    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\w*))?|([^:\[\]]+)(?::(\w*))?", text)
    if not match:
        raise bad("expected host:port ([v6-address]:port for IPv6)")
    host = match.group(1) or match.group(3)
    port_text = match.group(2) if match.group(1) else match.group(4)
    if match.group(1):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise bad("bad IPv6 address %r" % (host,)) from None
    elif not is_host(host):
        raise bad("bad host %r" % (host,))
    if not port_text:
        if default_port is None:
            raise bad("no port (expected host:port)")
        return host, default_port
    if not port_text.isdigit():
        raise bad("port %r is not a number" % (port_text,))
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise bad("port out of range (1-65535)")
    return host, port


def check_http_url(url: str, *, https_only: bool = False) -> list[str]:
    """Problems with an absolute ``http(s)://`` URL (messages never repeat its password)."""
    schemes = ("https",) if https_only else ("http", "https")
    shown = redact_text(url)
    if not url or any(c.isspace() for c in url):
        return ["bad URL %r: empty or contains whitespace" % (shown,)]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        return ["bad URL %r: %s" % (shown, e)]
    if parts.scheme.lower() not in schemes:
        return ["bad URL %r: must be an absolute %s URL" % (shown, " or ".join(schemes))]
    if not parts.hostname or not is_host(parts.hostname):
        return ["bad URL %r: no valid host" % (shown,)]
    if port == 0:
        return ["bad URL %r: port out of range (1-65535)" % (shown,)]
    if parts.fragment:
        return ["bad URL %r: must not have a #fragment" % (shown,)]
    return []


def check_store(uri: str, *, environment: bool = False) -> list[str]:
    """Problems with a store URI: ``sqlite:PATH``, ``sqlite::memory:`` or
    ``postgresql://...`` (``postgres://`` accepted too).

    Messages never repeat a password that the URI carries.
    """
    if uri.startswith("sqlite:"):
        from dmgateway.store.sqlite import (
            MEMORY,
            parse_sqlite_uri,
            sqlite_cache_size,
            sqlite_inline,
            sqlite_mmap_size,
            sqlite_synchronous,
        )

        try:
            path = parse_sqlite_uri(uri)
            sqlite_synchronous(uri)
            sqlite_inline(uri)
            sqlite_cache_size(uri)
            sqlite_mmap_size(uri)
        except ValueError as e:
            return ["bad store URI %r: %s" % (uri, e)]
        if path == MEMORY:
            return []
        if environment:
            # the store creates a missing directory (a fresh clone has no var/)
            problem = check_parent_directory(path) and check_creatable_file(path)
            if problem:
                return [problem]
            if os.path.isdir(path):
                return ["%r is a directory, not a database file" % (path,)]
        return []
    if uri.startswith(("postgresql://", "postgres://")):
        shown = redact_text(uri)
        try:
            parts = urlsplit(uri)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as e:
            # a port that is no number may be the start of a password holding a '/'
            # (which ends the host part): urlsplit's error would quote it
            reason = str(e) if "out of range" in str(e) else "the port is not a number (write a '/' in the password as %2F)"
            return ["bad store URI %r: %s" % (shown, reason)]
        if any(c.isspace() for c in uri):
            return ["bad store URI %r: contains whitespace" % (shown,)]
        try:
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:  # psycopg is a dependency; check what we can without it
            return []
        try:
            conninfo_to_dict(uri)
        except Exception as e:
            return ["bad store URI %r: %s" % (shown, redact_text(str(e)).strip())]
        return []
    return ["bad store URI %r: expected sqlite:PATH, sqlite::memory: or postgresql://..."
            % (redact_text(uri),)]


def suggest(word: str, candidates, template: str = "%r") -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ``''``."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return " (did you mean %s?)" % (template % (close[0],),) if close else ""
