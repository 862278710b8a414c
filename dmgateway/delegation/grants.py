"""What a delegating gateway writes to a device: the peer's account and ACLs.

:func:`grant_commands` is the Atomic job that installs the peer's
``./DMAcc/<x>`` and replaces the delegated subtrees' ACLs with
:func:`delegated_acl` (partial: the peer alone; full: the peer added).
"""

from dmgateway.tree.acl import ACL_COMMANDS, format_acl, parse_acl
from dmgateway.tree.uri import TreeError

__all__ = ["AAUTH_TYPES", "account_dict", "account_name", "delegated_acl", "grant_commands"]


def account_name(doc):
    """The ``./DMAcc`` node name of the peer's account on the device."""
    return "dlg" + doc["transaction_id"][:12]


def account_dict(account):
    """A :class:`~.messages.Account` as kept in the record until the grant job is queued."""
    return {"server_id": account.server_id, "app_addr": account.app_addr,
            "client": [account.client.type, account.client.name, account.client.secret],
            "server": [account.server.type, account.server.name, account.server.secret]}


AAUTH_TYPES = {"md5": "DIGEST", "basic": "BASIC", "hmac": "HMAC"}


def grant_commands(doc, own_id, name, account, saved):
    """The Atomic that installs the peer's account and hands it the subtrees."""
    base = "./DMAcc/" + name
    peer_id = account["server_id"]
    commands = [{"op": "Add", "target": base, "format": "node"}]
    leaves = [("AppID", "w7"), ("ServerID", peer_id), ("Name", peer_id),
              ("AppAddr/1/Addr", account["app_addr"]), ("AppAddr/1/AddrType", "URI"),
              ("AAuthPref", AAUTH_TYPES[account["client"][0]])]
    for index, (level, (kind, user, secret)) in enumerate(
            (("CLCRED", account["client"]), ("SRVCRED", account["server"])), 1):
        entry = "AppAuth/%d/" % (index,)
        leaves += [(entry + "AAuthLevel", level), (entry + "AAuthType", AAUTH_TYPES[kind]),
                   (entry + "AAuthName", user), (entry + "AAuthSecret", secret)]
    for leaf, value in leaves:
        commands.append({"op": "Add", "target": "%s/%s" % (base, leaf), "data": value})
    commands.append({"op": "Replace", "target": base + "?prop=ACL",
                     "data": format_acl({"Add": (own_id,), "Delete": (own_id,),
                                         "Get": (own_id, peer_id),
                                         "Replace": (own_id, peer_id)})})
    for uri, acl_text in saved.items():
        commands.append({"op": "Replace", "target": uri + "?prop=ACL",
                         "data": delegated_acl(acl_text, own_id, peer_id, doc["type"])})
    return commands


def delegated_acl(acl_text, own_id, peer_id, extent):
    """The subtree ACL while delegated: the peer alone (partial) or added (full)."""
    if extent == "partial":
        return format_acl({command: (peer_id,) for command in ACL_COMMANDS})
    try:
        acl = parse_acl(acl_text)
    except TreeError:
        acl = {}
    out = {}
    for command in ACL_COMMANDS:
        ids = tuple(acl.get(command, ())) or (own_id,)
        if "*" in ids:
            out[command] = ("*",)
        else:
            out[command] = ids + ((peer_id,) if peer_id not in ids else ())
    return format_acl(out)
