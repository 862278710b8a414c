"""The client's management tree: :mod:`dmgateway.tree` plus the account glue.

The device simulator uses the full :class:`dmgateway.tree.ManagementTree`
(ACLs, properties, TNDS, Inbox routing); this module keeps the names the
client library has always offered and builds the standard tree for one
:class:`~.account.Account`:

* :func:`default_tree` -- DevInfo, DevDetail, Inbox from
  :func:`dmgateway.tree.standard.standard_tree` and ``./DMAcc/<x>`` for the
  account (:func:`dmgateway.tree.standard.add_dmacc`);
* :func:`account_path`, :func:`client_nonce_path`, :func:`server_nonce_path`
  -- where the account's nonces live in the tree.
"""

from ..tree import ManagementTree, NodeData, TreeError, UriLimits
from ..tree.standard import add_dmacc, standard_tree
from .account import AAUTH_TYPES

__all__ = [
    "NodeData",
    "TreeError",
    "ManagementTree",
    "default_tree",
    "populate_defaults",
    "DEVINFO_LEAVES",
    "account_path",
    "client_nonce_path",
    "server_nonce_path",
    "auth_data_path",
]

DEVINFO_LEAVES = ("DevId", "Man", "Mod", "DmV", "Lang")  # what package 1 reports
DEFAULT_DEVINFO = {"Man": "dmgateway", "Mod": "dmgw-sim", "DmV": "1.2", "Lang": "en-US"}
DEFAULT_DEVDETAIL = {"DevTyp": "simulator", "OEM": "dmgateway", "FwV": "1.0", "SwV": "1.0",
                     "HwV": "1.0"}


def account_path(account):
    return "./DMAcc/" + account.name


def client_nonce_path(account):
    return account_path(account) + "/AppAuth/1/AAuthData"


def server_nonce_path(account):
    return account_path(account) + "/AppAuth/2/AAuthData"


def auth_data_path(tree, account, level):
    """The ``AAuthData`` URI of the account's ``level`` (CLCRED/SRVCRED) entry in ``tree``.

    A bootstrap may have written the entries in any order; without a
    matching entry the default place (CLCRED 1, SRVCRED 2) is returned.
    """
    base = account_path(account) + "/AppAuth"
    if tree.exists(base):
        for index in tree.read(base).value:
            entry = "%s/%s/" % (base, index)
            if tree.exists(entry + "AAuthLevel") and tree.read(entry + "AAuthLevel").value == level:
                return entry + "AAuthData"
    return client_nonce_path(account) if level == "CLCRED" else server_nonce_path(account)


def populate_defaults(tree, account):
    """Write ``./DMAcc/<x>`` for ``account`` into ``tree`` (CLCRED AppAuth/1, SRVCRED 2)."""
    auth = []
    for level, creds in (("CLCRED", account.client), ("SRVCRED", account.server)):
        auth.append({"AAuthLevel": level, "AAuthType": AAUTH_TYPES[creds.scheme],
                     "AAuthName": creds.name, "AAuthSecret": creds.secret,
                     "AAuthData": creds.nonce})
    add_dmacc(tree, account.name, account.server_id, account.server_url, app_name="",
              auth=auth, aauth_pref=AAUTH_TYPES[account.client.scheme])
    return tree


def default_tree(account, *, devinfo=None, devdetail=None, max_depth=0, max_tot_len=0,
                 max_seg_len=0, clock=None):
    """A new standard :class:`ManagementTree` holding ``account``.

    ``devinfo``/``devdetail`` override leaf values (paths below the object,
    e.g. ``"SwV"`` or ``"Ext/Foo"``); DevId is the account's device id.
    """
    tree = standard_tree(dict(DEFAULT_DEVINFO, DevId=account.device_id, **(devinfo or {})),
                         dict(DEFAULT_DEVDETAIL, **(devdetail or {})),
                         limits=UriLimits(max_depth, max_tot_len, max_seg_len), clock=clock)
    return populate_defaults(tree, account)
