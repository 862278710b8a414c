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
  ``activate`` | ``deactivate`` | ``remove``: ``component``; ``inventory``
  (nothing: reads the inventory only); ``root`` (default ``./SCOMO``).
  Every SCOMO operation reads the whole inventory back (Delivered and
  Deployed, ``?list=StructData``);
* LAWMO ``fully_lock`` | ``partially_lock`` | ``unlock``; ``wipe`` with
  ``confirm`` true and an optional ``wipe_list`` (AvailableWipeList names;
  absent: everything the device offers): its job only reads the device's
  AvailableWipeList, and :func:`wipe_commands` gives the second job
  (ToBeWiped, Exec) once the list is known;
  ``factory_reset`` with ``confirm`` true; ``root`` (default ``./LAWMO``);
  ``node``: the Operations node's name on this device (default
  ``FullyLock``, ``PartiallyLock``, ``UnLock``, ``Wipe``, ``FactoryReset``).
"""

import re
from dataclasses import dataclass, field
from typing import List, Optional

from . import mo

__all__ = ["FunctionError", "Operation", "ACTIONS", "build_operation", "correlator_for", "wipe_commands",
           "INVENTORY_PARTS", "MAX_WIPE_LIST"]

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_ROOT = re.compile(r"^\./[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")
_MAX_URL = 2048

FUMO_EXEC = {
    "download_and_update": ("DownloadAndUpdate", mo.FUMO_ALERT_DOWNLOAD_AND_UPDATE),
    "download": ("Download", mo.FUMO_ALERT_DOWNLOAD),
    "update": ("Update", mo.FUMO_ALERT_UPDATE),
}
SCOMO_ACTIONS = ("install", "install_inactive", "activate", "deactivate", "remove", "inventory")
#: The SCOMO inventory listings read back, as named in the outcome.
INVENTORY_PARTS = {"Delivered": "delivered", "Deployed": "deployed"}
MAX_WIPE_LIST = 32
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
    wipe_list: Optional[List[str]] = None


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


def inventory_reads(root):
    """The Gets that read a SCOMO root's whole inventory (one listing per part)."""
    return [{"op": "Get", "target": "%s/Inventory/%s?list=StructData" % (root, part)} for part in INVENTORY_PARTS]


def _scomo(action, params, root, correlator):
    if action == "inventory":
        # no Exec: the job's own results are the inventory
        return mo_operation(mo.SCOMO, action, root, correlator, root + "/Inventory", mo.SCOMO_ALERT,
                            inventory_reads(root), [])
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
    readback = readback + inventory_reads(root)
    return mo_operation(mo.SCOMO, action, root, correlator, target, mo.SCOMO_ALERT, commands, readback,
                        component=component)


def _lawmo(action, params, root, correlator):
    if action in DESTRUCTIVE and params.get("confirm") is not True:
        raise FunctionError("%s destroys data on the device: the request must say \"confirm\": true" % (action,))
    commands = []
    if action == "wipe":
        wipe_list = params.get("wipe_list")
        if wipe_list is not None:
            if not isinstance(wipe_list, list) or not wipe_list or len(wipe_list) > MAX_WIPE_LIST:
                raise FunctionError("'wipe_list' must list 1 to %d AvailableWipeList entries" % (MAX_WIPE_LIST,))
            if not all(isinstance(name, str) and _NAME.match(name) and name.strip(".") for name in wipe_list):
                raise FunctionError("'wipe_list' entries must be node names")
        # first read what the device offers; the store sends the wipe itself
        # (wipe_commands) once the answer is checked against the request
        commands.append({"op": "Get", "target": root + "/AvailableWipeList"})
    # the node names come from one vendor's client (one version spells "Unlock"):
    # a request may name the device's own
    node = _string(params, "node", pattern=_NAME) or LAWMO_EXEC[action]
    target = "%s/Operations/%s" % (root, node)
    if action != "wipe":
        commands.append(_exec(target, correlator))
    readback = [{"op": "Get", "target": root + "/State"}]
    return mo_operation(mo.LAWMO, action, root, correlator, target, mo.LAWMO_ALERT, commands, readback,
                        wipe_list=list(wipe_list) if action == "wipe" and wipe_list else None)


def offered_wipe_list(data):
    """The entry names of a Get of AvailableWipeList (an interior node's
    child list, ``/``-separated), bounded; ValueError for an answer that is
    not one."""
    if not isinstance(data, str):
        raise ValueError("the device sent no AvailableWipeList")
    names = [name for name in data.strip().split("/") if name]
    if len(names) > 256 or not all(_NAME.match(name) and name.strip(".") for name in names):
        raise ValueError("the device's AvailableWipeList is not a list of node names")
    return names


def wipe_commands(root, exec_target, correlator, requested, offered):
    """
    The commands of a wipe once the device's AvailableWipeList is known:
    ToBeWiped true on each ``requested`` entry (all ``offered`` when None)
    and the Exec.  :class:`FunctionError` names requested entries the
    device does not offer, or an empty list.
    """
    missing = [name for name in requested or () if name not in offered]
    if missing:
        raise FunctionError("the device offers no wipe list entry %s (it offers: %s)"
                            % (", ".join(missing), ", ".join(offered) or "none"))
    chosen = list(requested) if requested else list(offered)
    if not chosen:
        raise FunctionError("the device offers nothing to wipe")
    commands = [{"op": "Replace", "target": "%s/AvailableWipeList/%s/ToBeWiped" % (root, name),
                 "data": "true", "format": "bool"} for name in chosen[:256]]
    commands.append(_exec(exec_target, correlator))
    return commands


def mo_operation(function, action, root, correlator, target, alert_type, commands, readback, component=None,
                 wipe_list=None):
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
        wipe_list=wipe_list,
    )


#: The leaves of an inventory entry kept in the device view, and their key.
INVENTORY_LEAVES = {"ID": "id", "Name": "name", "Version": "version", "State": "state", "Status": "status",
                    "PkgID": "package_id", "PkgIDRef": "package_id"}
MAX_COMPONENTS = 256


def parse_inventory(target, answer):
    """
    The ``(part, entries)`` a SCOMO inventory listing answered: ``part``
    ``"delivered"`` or ``"deployed"`` (from the Get's ``target``), entries
    ``{name: {"id", "name", "version", "state", "status", "package_id"}}``
    (those the device sent; State/Status as integers).  None for a Get that
    is no inventory listing.  Bounded: at most :data:`MAX_COMPONENTS`
    entries, values of 256 characters.
    """
    base, _, query = str(target or "").partition("?")
    part = INVENTORY_PARTS.get(base.rsplit("/", 1)[-1])
    if part is None or not query.startswith("list=") or "/Inventory/" not in base:
        return None
    items = answer.get("items") if isinstance(answer, dict) else None
    entries = {}
    prefix = base + "/"
    for item in items or ():
        if not isinstance(item, dict):
            continue
        source = item.get("source")
        if not isinstance(source, str) or not source.startswith(prefix):
            continue
        path = source[len(prefix):].split("/")
        if not _NAME.match(path[0]) or not path[0].strip("."):
            continue
        if path[0] not in entries and len(entries) >= MAX_COMPONENTS:
            continue
        entry = entries.setdefault(path[0], {})
        key = INVENTORY_LEAVES.get(path[1]) if len(path) == 2 else None
        data = item.get("data")
        if key is None or not isinstance(data, str):
            continue
        value = data.strip()[:256]
        if key in ("state", "status"):
            value = int(value) if value.isdigit() and len(value) < 7 else value
        entry[key] = value
    return part, entries
