"""Access control lists (dm-tree-objects §3).

``Add=srv1&Delete=srv1&Replace=srv1+srv2&Get=*``: commands mapped to server
identifiers, ``*`` meaning every authenticated server.  :func:`parse_acl`
is tolerant (spaces around separators, repeated commands are merged,
commands without servers are dropped); :func:`format_acl` writes the strict
form.  Malformed input raises :class:`~.uri.TreeError` with status 400.
"""

from .uri import TreeError

__all__ = ["ACL_COMMANDS", "BAD_ACL", "parse_acl", "format_acl", "acl_allows",
           "acl_without_server", "normalize_acl"]

ACL_COMMANDS = ("Add", "Delete", "Exec", "Get", "Replace")
BAD_ACL = 400
_FORBIDDEN = set("=&+") | {" ", "\t", "\r", "\n"}


def parse_acl(text):
    """``{command: (server ids...)}`` of an ACL string, in first-seen order.

    ``""`` (no value) is ``{}``.  A ``*`` among other ids for a command wins
    and is kept alone.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise TreeError(BAD_ACL, None, "ACL is not UTF-8") from None
    if text is None:
        return {}
    if not isinstance(text, str):
        raise TreeError(BAD_ACL, None, "ACL must be text")
    acl = {}
    for entry in text.strip().split("&"):
        entry = entry.strip()
        if not entry:
            continue
        command, eq, ids = entry.partition("=")
        command = command.strip()
        if not eq or command not in ACL_COMMANDS:
            raise TreeError(BAD_ACL, None, "bad ACL entry %r" % (entry,))
        servers = acl.setdefault(command, [])
        for server in ids.split("+"):
            server = server.strip()
            if not server:
                continue
            if any(c in _FORBIDDEN or not c.isprintable() for c in server):
                raise TreeError(BAD_ACL, None, "bad server identifier %r" % (server,))
            if server != "*" and "*" in server:
                raise TreeError(BAD_ACL, None, "bad server identifier %r" % (server,))
            if server not in servers:
                servers.append(server)
    return {command: ("*",) if "*" in servers else tuple(servers)
            for command, servers in acl.items() if servers}


def format_acl(acl):
    """The ACL string of ``{command: ids}`` (commands without ids are left out)."""
    return "&".join("%s=%s" % (command, "+".join(ids)) for command, ids in acl.items() if ids)


def normalize_acl(text):
    return format_acl(parse_acl(text))


def acl_allows(acl, command, server):
    """Whether parsed ``acl`` grants ``command`` to ``server``."""
    ids = acl.get(command, ())
    return "*" in ids or (server is not None and server in ids)


def acl_without_server(acl, server, *, root=False):
    """``acl`` with ``server`` removed (§3.3); a root command left empty becomes ``*``."""
    out = {}
    for command, ids in acl.items():
        rest = tuple(i for i in ids if i != server)
        if rest:
            out[command] = rest
        elif root:
            out[command] = ("*",)
    return out
