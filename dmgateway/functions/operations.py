"""
One device-function operation as job commands.

:func:`build_operation` checks a request (function, action, parameters)
and returns an :class:`Operation`: the commands of the job that starts it
(parameters first, then the Exec with the Correlator, in one order the
device runs them in), the alert type its completion will carry, and the
commands that read the result back once the device has reported.

Request parameters (all strings unless said otherwise):

* FUMO ``download_and_update`` | ``download`` | ``update``: ``package_url``
  (not for ``update``), ``root`` (default ``./FUMO/fw1``);
* SCOMO ``install`` | ``install_inactive``: ``package_url``, ``component``
  (the Download/<x> and Deployed/<x> node name), ``package_id``;
  ``activate`` | ``deactivate`` | ``remove``: ``component``; ``root``
  (default ``./SCOMO``);
* LAWMO ``fully_lock`` | ``partially_lock`` | ``unlock``; ``wipe`` with
  ``wipe_list`` (AvailableWipeList names) and ``confirm`` true;
  ``factory_reset`` with ``confirm`` true; ``root`` (default ``./LAWMO``);
  ``node``: the Operations node's name on this device (default
  ``FullyLock``, ``PartiallyLock``, ``UnLock``, ``Wipe``, ``FactoryReset``).
"""

import re
from dataclasses import dataclass, field
from typing import List, Optional

from . import mo

__all__ = ["FunctionError", "Operation", "ACTIONS", "build_operation", "correlator_for"]

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_ROOT = re.compile(r"^\./[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")
_MAX_URL = 2048

FUMO_EXEC = {
    "download_and_update": ("DownloadAndUpdate", mo.FUMO_ALERT_DOWNLOAD_AND_UPDATE),
    "download": ("Download", mo.FUMO_ALERT_DOWNLOAD),
    "update": ("Update", mo.FUMO_ALERT_UPDATE),
}
SCOMO_ACTIONS = ("install", "install_inactive", "activate", "deactivate", "remove")
LAWMO_EXEC = {
    "fully_lock": "FullyLock",
    "partially_lock": "PartiallyLock",
    "unlock": "UnLock",
    "wipe": "Wipe",
    "factory_reset": "FactoryReset",
}
#: The actions of each function.
ACTIONS = {
    mo.FUMO: tuple(FUMO_EXEC),
    mo.SCOMO: SCOMO_ACTIONS,
    mo.LAWMO: tuple(LAWMO_EXEC),
}
#: LAWMO actions that destroy data: the request must say ``confirm: true``.
DESTRUCTIVE = ("wipe", "factory_reset")
#: The default action of each function.
DEFAULT_ACTION = {mo.FUMO: "download_and_update", mo.SCOMO: "install", mo.LAWMO: "fully_lock"}
DEFAULT_ROOT = {mo.FUMO: "./FUMO/fw1", mo.SCOMO: "./SCOMO", mo.LAWMO: "./LAWMO"}


class FunctionError(ValueError):
    """The request cannot become an operation; the message says why."""


@dataclass(frozen=True)
class Operation:
    """
    A checked operation.

    ``commands`` are REST job command dicts; ``exec_target`` the node the
    Exec runs (and the alert's Source, normalised); ``readback`` the Get
    commands that confirm the result after the alert.
    """

    function: str
    action: str
    root: str
    correlator: str
    exec_target: str
    alert_type: str
    commands: List[dict]
    readback: List[dict] = field(default_factory=list)
    component: Optional[str] = None


def correlator_for(job_key):
    """A short alphanumeric Correlator for ``job_key`` (hex, from a job id)."""
    token = re.sub(r"[^A-Za-z0-9]", "", str(job_key))[:20]
    if not token:
        raise FunctionError("a correlator needs an alphanumeric key")
    return "j" + token


def _string(params, key, required=False, pattern=None, limit=256):
    value = params.get(key)
    if value is None:
        if required:
            raise FunctionError("%r is required" % (key,))
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise FunctionError("%r must be a non-empty string of at most %d characters" % (key, limit))
    if pattern is not None and not pattern.match(value):
        raise FunctionError("%r has characters a node name cannot have" % (key,))
    return value


def _url(params):
    url = _string(params, "package_url", required=True, limit=_MAX_URL)
    if not (url.startswith("http://") or url.startswith("https://")):
        raise FunctionError("'package_url' must be an http or https URL")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise FunctionError("'package_url' cannot contain spaces or control characters")
    return url


def build_operation(function, action, params, correlator):
    """
    The :class:`Operation` for a request; :class:`FunctionError` for a bad one.
    """
    if function not in ACTIONS:
        raise FunctionError("function must be one of %s" % (", ".join(mo.FUNCTIONS),))
    if not isinstance(params, dict):
        raise FunctionError("parameters must be an object")
    action = action or DEFAULT_ACTION[function]
    if action not in ACTIONS[function]:
        raise FunctionError("%s action must be one of %s" % (function, ", ".join(ACTIONS[function])))
    root = _string(params, "root", pattern=_ROOT) or DEFAULT_ROOT[function]
    builder = {mo.FUMO: _fumo, mo.SCOMO: _scomo, mo.LAWMO: _lawmo}[function]
    return builder(action, params, root, correlator)


def _exec(target, correlator):
    return {"op": "Exec", "target": target, "correlator": correlator}


def _fumo(action, params, root, correlator):
    node, alert_type = FUMO_EXEC[action]
    target = "%s/%s" % (root, node)
    commands = []
    if action != "update":
        commands.append(
            {"op": "Replace", "target": target + "/PkgURL", "data": _url(params), "format": "chr",
             "type": "text/plain"}
        )
    commands.append(_exec(target, correlator))
    readback = [{"op": "Get", "target": root + "/State"}, {"op": "Get", "target": "./DevDetail/FwV"}]
    return mo_operation(mo.FUMO, action, root, correlator, target, alert_type, commands, readback)


def _scomo(action, params, root, correlator):
    component = _string(params, "component", required=True, pattern=_NAME)
    deployed = "%s/Inventory/Deployed/%s" % (root, component)
    if action in ("install", "install_inactive"):
        url = _url(params)
        package_id = _string(params, "package_id") or component
        base = "%s/Download/%s" % (root, component)
        commands = [
            {"op": "Add", "target": base, "format": "node"},
            {"op": "Add", "target": base + "/PkgID", "data": package_id, "format": "chr"},
            {"op": "Add", "target": base + "/PkgURL", "data": url, "format": "chr"},
        ]
        node = "DownloadInstall" if action == "install" else "DownloadInstallInactive"
        target = "%s/Operations/%s" % (base, node)
        readback = [{"op": "Get", "target": deployed + "/Version"}, {"op": "Get", "target": deployed + "/State"}]
    else:
        node = {"activate": "Activate", "deactivate": "Deactivate", "remove": "Remove"}[action]
        target = "%s/Operations/%s" % (deployed, node)
        commands = []
        readback = [] if action == "remove" else [{"op": "Get", "target": deployed + "/State"}]
    commands.append(_exec(target, correlator))
    return mo_operation(mo.SCOMO, action, root, correlator, target, mo.SCOMO_ALERT, commands, readback,
                        component=component)


def _lawmo(action, params, root, correlator):
    if action in DESTRUCTIVE and params.get("confirm") is not True:
        raise FunctionError("%s destroys data on the device: the request must say \"confirm\": true" % (action,))
    commands = []
    if action == "wipe":
        wipe_list = params.get("wipe_list")
        if not isinstance(wipe_list, list) or not wipe_list or len(wipe_list) > 32:
            raise FunctionError("'wipe_list' must list 1 to 32 AvailableWipeList entries")
        for name in wipe_list:
            if not isinstance(name, str) or not _NAME.match(name):
                raise FunctionError("'wipe_list' entries must be node names")
            commands.append(
                {"op": "Replace", "target": "%s/AvailableWipeList/%s/ToBeWiped" % (root, name),
                 "data": "true", "format": "bool"}
            )
    # the node names come from one vendor's client (one version spells "Unlock"):
    # a request may name the device's own
    node = _string(params, "node", pattern=_NAME) or LAWMO_EXEC[action]
    target = "%s/Operations/%s" % (root, node)
    commands.append(_exec(target, correlator))
    readback = [{"op": "Get", "target": root + "/State"}]
    return mo_operation(mo.LAWMO, action, root, correlator, target, mo.LAWMO_ALERT, commands, readback)


def mo_operation(function, action, root, correlator, target, alert_type, commands, readback, component=None):
    return Operation(
        function=function,
        action=action,
        root=root,
        correlator=correlator,
        exec_target=target,
        alert_type=alert_type,
        commands=commands,
        readback=readback,
        component=component,
    )
