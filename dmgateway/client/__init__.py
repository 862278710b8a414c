"""A DM client library: the device side of OMA DM 1.2/1.3, written from the spec.

Used to test the gateway (and by the device simulator): it shares the
codecs and credential formulas with the server but none of its session code.

* :class:`~.session.ClientSession` -- the sans-I/O session (package 1 to the end);
* :class:`dmgateway.tree.ManagementTree` / :func:`~.tree.default_tree` -- the
  device's tree (the real one: ACLs checked for the account's ServerID);
* :func:`~.bootstrap.apply_bootstrap` -- CP / DM bootstrap / TNDS to an Account;
* :func:`~.notification.accept_notification` -- package #0, WSP push or SMS parts;
* :class:`~.account.Account`, :class:`~.account.Credentials`,
  :class:`~.account.GenericAlert` -- what the session is configured with;
* :mod:`.ui` -- answering alerts 1100-1104;
* :func:`dmgateway.client.http.run_session` -- the Twisted HTTP transport
  (imported from its module, so the rest stays free of Twisted).
"""

from .account import Account, Credentials, GenericAlert, session_id_for_notification
from .bootstrap import BootstrapError, account_from_tree, apply_bootstrap
from .notification import Trigger, accept_notification
from .session import ClientSession, Request, SessionError
from .tree import ManagementTree, NodeData, TreeError, default_tree

__all__ = [
    "Account",
    "BootstrapError",
    "Trigger",
    "accept_notification",
    "account_from_tree",
    "apply_bootstrap",
    "ClientSession",
    "Credentials",
    "GenericAlert",
    "ManagementTree",
    "NodeData",
    "Request",
    "SessionError",
    "TreeError",
    "default_tree",
    "session_id_for_notification",
]
