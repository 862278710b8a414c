"""
The simulated device's FUMO, SCOMO and LAWMO (sans-I/O).

:class:`DeviceFunctions` keeps a device's function state between sessions
(firmware version, FUMO State, installed components, lock state, what is
in progress) and installs it into each session's tree: the MO nodes, and
Exec hooks that accept an operation with 202.  What the operation needs
next is the caller's job: :meth:`downloads` lists the packages to fetch
(the fleet fetches them over HTTP with the URL's token), :meth:`downloaded`
hands the bytes back, and :meth:`reports` gives the Generic Alerts (with
the Exec's Correlator) for the device's next session -- after a FUMO
update, in the new firmware ("reboot").

Outcomes follow a :class:`FunctionPolicy`: a deterministic failure mix
(a fraction of devices, chosen by a hash of the device id, fails with a
given result code), so a test knows exactly which devices fail.

A simulated package is any bytes; one whose first line is
``DMGW-PKG <version>`` installs that version (firmware or component),
otherwise the version is the package's SHA-256 prefix.  A package whose
size or checksum does not match what the URL's ``sha256=`` says is
corrupted (FUMO 402, SCOMO 1402).
"""

import hashlib
import re
from dataclasses import dataclass, field
from typing import Dict, Optional

from ..functions import mo
from .account import GenericAlert

__all__ = ["FunctionPolicy", "DeviceFunctions", "Pending", "package_version", "fails"]

FUMO_ROOT = "./FUMO/fw1"
SCOMO_ROOT = "./SCOMO"
LAWMO_ROOT = "./LAWMO"
_ALL = "Get=*&Replace=*&Add=*&Delete=*&Exec=*"
_HEADER = re.compile(rb"^DMGW-PKG ([\x21-\x7e]{1,64})\r?\n")
WIPE_LIST = ("contacts", "sdcard")
_SCOMO_DOWNLOAD_OP = re.compile(r"^\./SCOMO/Download/([A-Za-z0-9_.\-]+)/Operations/"
                                r"(DownloadInstall|DownloadInstallInactive|Download)$")


def package_version(body):
    """The version a simulated package installs."""
    match = _HEADER.match(body or b"")
    if match:
        return match.group(1).decode("ascii")
    return hashlib.sha256(body or b"").hexdigest()[:12]


def fails(device_id, fraction, salt=""):
    """Whether ``device_id`` is among the ``fraction`` of devices that fail (stable)."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(("%s|%s" % (salt, device_id)).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


@dataclass(frozen=True)
class FunctionPolicy:
    """
    The failure mix: ``{function: (fraction, code)}``; e.g.
    ``{"fumo": (0.05, 402)}`` makes 5% of devices report 402.  ``salt``
    changes which devices those are.
    """

    failures: Dict[str, tuple] = field(default_factory=dict)
    salt: str = ""

    def code_for(self, device_id, function):
        fraction, code = self.failures.get(function, (0.0, None))
        if code is not None and fails(device_id, fraction, self.salt + function):
            return int(code)
        return None


@dataclass
class Pending:
    """An accepted operation the device has not reported yet."""

    correlator: Optional[str]
    function: str
    action: str
    source: str
    alert_type: str
    url: Optional[str] = None
    component: Optional[str] = None
    package_id: Optional[str] = None
    code: Optional[int] = None  # set when the operation is over
    version: Optional[str] = None
    reporting: bool = False  # its alert is in the session under way


class DeviceFunctions:
    """One device's function state (kept between sessions)."""

    def __init__(self, device_id, *, fwv="1.0", policy=None):
        self.device_id = device_id
        self.fwv = fwv
        self.fumo_state = 10
        self.lawmo_state = 30
        self.components = {}  # name -> {"version", "state"}: Inventory/Deployed
        self.delivered = {}  # name -> {"package_id", "state"}: Inventory/Delivered
        self.wiped = []  # the AvailableWipeList entries the last Wipe wiped
        self.firmware_package = None  # a FUMO Download's package, kept for the Update
        self.policy = policy or FunctionPolicy()
        self.pending = []
        self.accepted = 0  # operations accepted (Exec 202), for tests
        self.max_package = 64 * 1024 * 1024  # the largest package it downloads

    # -- the tree of one session ----------------------------------------------------

    def install(self, tree):
        """Put the MOs and their Exec hooks into a session's tree."""
        tree.set("./DevDetail/FwV", self.fwv)
        for root, mo_id in ((FUMO_ROOT, mo.MO_IDS[mo.FUMO]), (SCOMO_ROOT, mo.MO_IDS[mo.SCOMO]),
                            (LAWMO_ROOT, mo.MO_IDS[mo.LAWMO])):
            tree.set(root, None, format="node", type=mo_id)
            tree.set_acl(root, _ALL)
        tree.set(FUMO_ROOT + "/State", str(self.fumo_state), format="int")
        for node in ("Download", "DownloadAndUpdate"):
            tree.set("%s/%s/PkgURL" % (FUMO_ROOT, node), "")
            tree.register_exec("%s/%s" % (FUMO_ROOT, node), self._fumo_hook(tree, node))
        tree.register_exec(FUMO_ROOT + "/Update", self._fumo_hook(tree, "Update"))
        tree.set(SCOMO_ROOT + "/Download", None, format="node")
        tree.set(SCOMO_ROOT + "/Inventory/Delivered", None, format="node")
        tree.set(SCOMO_ROOT + "/Inventory/Deployed", None, format="node")
        for name, package in self.delivered.items():
            base = "%s/Inventory/Delivered/%s" % (SCOMO_ROOT, name)
            tree.set(base + "/PkgID", package["package_id"])
            tree.set(base + "/Name", name)
            tree.set(base + "/State", str(package["state"]), format="int")
            tree.set(base + "/Status", "10", format="int")
        for name, component in self.components.items():
            base = "%s/Inventory/Deployed/%s" % (SCOMO_ROOT, name)
            tree.set(base + "/ID", name)
            tree.set(base + "/Name", name)
            tree.set(base + "/Version", component["version"])
            tree.set(base + "/Status", "10", format="int")
            tree.set(base + "/State", str(component["state"]), format="int")
            for op in ("Activate", "Deactivate", "Remove"):
                tree.register_exec("%s/Operations/%s" % (base, op), self._scomo_component_hook(name, op))
        tree.set(LAWMO_ROOT + "/State", str(self.lawmo_state), format="int")
        for name in WIPE_LIST:
            tree.set("%s/AvailableWipeList/%s/ListItemName" % (LAWMO_ROOT, name), name)
            tree.set("%s/AvailableWipeList/%s/ToBeWiped" % (LAWMO_ROOT, name), "false", format="bool")
        for node in ("FullyLock", "PartiallyLock", "UnLock", "Wipe", "FactoryReset"):
            tree.register_exec("%s/Operations/%s" % (LAWMO_ROOT, node), self._lawmo_hook(tree, node))
        # Download/<x> nodes are added by the server in the session itself: their
        # Operations exist as soon as <x> does, as on a real device
        plain_exec = tree.exec

        def exec_(uri, data=None, correlator=None, server=None):
            match = _SCOMO_DOWNLOAD_OP.match(uri)
            if match and tree.exists("%s/Download/%s" % (SCOMO_ROOT, match.group(1))):
                return self._scomo_download_hook(tree, match.group(1), match.group(2))(uri, data, correlator)
            return plain_exec(uri, data, correlator, server=server)

        tree.exec = exec_

    # -- Exec hooks ------------------------------------------------------------------

    def _fumo_hook(self, tree, node):
        alert_type = {"Download": mo.FUMO_ALERT_DOWNLOAD, "Update": mo.FUMO_ALERT_UPDATE,
                      "DownloadAndUpdate": mo.FUMO_ALERT_DOWNLOAD_AND_UPDATE}[node]

        def hook(uri, data, correlator):
            url = None
            if node != "Update":
                url = _read(tree, "%s/%s/PkgURL" % (FUMO_ROOT, node))
                if not url:
                    return 405  # nothing to download
            self.fumo_state = 30 if url else 60
            pending = Pending(correlator, mo.FUMO, node, FUMO_ROOT, alert_type, url=url)
            self._accept(pending)
            if node == "Update":  # installs what an earlier Download kept
                self._update(pending)
            return 202
        return hook

    def _scomo_download_hook(self, tree, name, op):
        def hook(uri, data, correlator):
            url = _read(tree, "%s/Download/%s/PkgURL" % (SCOMO_ROOT, name))
            if not url:
                return 405
            package_id = _read(tree, "%s/Download/%s/PkgID" % (SCOMO_ROOT, name))
            self._accept(Pending(correlator, mo.SCOMO, op, uri, mo.SCOMO_ALERT, url=url, component=name,
                                 package_id=package_id))
            return 202
        return hook

    def _scomo_component_hook(self, name, op):
        def hook(uri, data, correlator):
            pending = Pending(correlator, mo.SCOMO, op, uri, mo.SCOMO_ALERT, component=name)
            self._accept(pending)
            self._finish_scomo(pending, None)
            return 202
        return hook

    def _lawmo_hook(self, tree, node):
        def hook(uri, data, correlator):
            pending = Pending(correlator, mo.LAWMO, node, uri, mo.LAWMO_ALERT)
            self._accept(pending)
            code = self.policy.code_for(self.device_id, mo.LAWMO)
            if code is None:
                code = 1200
                if node == "FullyLock":
                    self.lawmo_state = 10
                elif node == "PartiallyLock":
                    self.lawmo_state = 20
                elif node == "UnLock":
                    self.lawmo_state = 30
                elif node == "Wipe":
                    # wipes the entries the server marked ToBeWiped; none marked: nothing done
                    self.wiped = [name for name in WIPE_LIST if _read(
                        tree, "%s/AvailableWipeList/%s/ToBeWiped" % (LAWMO_ROOT, name)) == "true"]
                    code = 1201 if self.wiped else 1405
            pending.code = code
            return 202
        return hook

    def _accept(self, pending):
        self.accepted += 1
        self.pending.append(pending)

    # -- between sessions ------------------------------------------------------------

    def downloads(self):
        """The operations waiting for their package: ``(Pending, url)``."""
        return [(p, p.url) for p in self.pending if p.code is None and p.url]

    def downloaded(self, pending, body, error=None):
        """The package of ``pending`` arrived (``body``) or did not (``error``: a result code)."""
        if pending.function == mo.FUMO:
            self._finish_fumo(pending, body, error)
        else:
            self._finish_scomo(pending, body, error)

    def _checksum_ok(self, url, body):
        match = re.search(r"[?&]sha256=([0-9a-fA-F]{64})", url or "")
        return match is None or hashlib.sha256(body).hexdigest() == match.group(1).lower()

    def _finish_fumo(self, pending, body, error):
        if error is not None:
            pending.code, self.fumo_state = error, 20
            return
        code = self.policy.code_for(self.device_id, mo.FUMO)
        if code is None and not self._checksum_ok(pending.url, body):
            code = 402
        if code is not None:
            pending.code, self.fumo_state = code, 80
            return
        if pending.action == "Download":
            pending.code, self.fumo_state, self.firmware_package = 200, 50, body
            return
        self._install_firmware(pending, body)

    def _update(self, pending):
        if self.firmware_package is None:
            pending.code, self.fumo_state = 410, 80  # Update Failed / No Data
            return
        code = self.policy.code_for(self.device_id, mo.FUMO)
        if code is not None:
            pending.code, self.fumo_state = code, 70  # Update Failed / Have Data
            return
        self._install_firmware(pending, self.firmware_package)

    def _install_firmware(self, pending, body):
        self.fwv = package_version(body)  # the reboot into the new firmware
        self.firmware_package = None
        pending.code, self.fumo_state, pending.version = 200, 100, self.fwv

    def _finish_scomo(self, pending, body, error=None):
        name = pending.component
        if error is not None:
            pending.code = 1402 if error < 1000 else error
            return
        code = self.policy.code_for(self.device_id, mo.SCOMO)
        if code is not None:
            pending.code = code
            return
        if pending.action in ("DownloadInstall", "DownloadInstallInactive"):
            if not self._checksum_ok(pending.url, body):
                pending.code = 1402
                return
            state = 20 if pending.action == "DownloadInstall" else 10
            self.components[name] = {"version": package_version(body), "state": state}
            self.delivered[name] = {"package_id": pending.package_id or name, "state": 20}
        elif pending.action == "Download":
            self.delivered[name] = {"package_id": pending.package_id or name, "state": 10}
        elif name not in self.components:
            pending.code = 1408 if pending.action == "Remove" else 1409
            return
        elif pending.action == "Remove":
            del self.components[name]
            self.delivered.pop(name, None)  # the package goes with its component
        else:
            self.components[name]["state"] = 20 if pending.action == "Activate" else 10
        pending.code = 1200

    def reports(self):
        """The Generic Alerts of the finished operations, for the next session."""
        alerts = []
        for p in self.pending:
            if p.code is None:
                continue
            p.reporting = True
            success = p.code < 300 or 1200 <= p.code < 1300
            if p.function == mo.FUMO:
                alerts.append(GenericAlert(type=p.alert_type, format="int", data=str(p.code), source=p.source,
                                           mark="informational" if success else "critical",
                                           correlator=p.correlator))
            elif p.function == mo.SCOMO:
                data = "<ResultCode>%d</ResultCode><Identifier>%s</Identifier>" % (p.code, p.component)
                alerts.append(GenericAlert(type=p.alert_type, format="text/plain", data=data, source=p.source,
                                           mark="informational" if success else "warning",
                                           correlator=p.correlator))
            else:
                alerts.append(GenericAlert(type=p.alert_type, format="text/plain", data=str(p.code),
                                           source=p.source, mark="warning", correlator=p.correlator))
        return alerts

    def reported(self):
        """The session carrying :meth:`reports` ended well: forget them."""
        self.pending = [p for p in self.pending if not p.reporting]
        if self.fumo_state in mo.FUMO_TERMINAL_STATES:
            self.fumo_state = 10

    def unreported(self):
        """The session carrying :meth:`reports` failed: report them again next time."""
        for p in self.pending:
            p.reporting = False

    def reports_due(self):
        """Whether a finished operation waits to be reported."""
        return any(p.code is not None for p in self.pending)

    def has_work(self):
        return bool(self.pending)


def _read(tree, uri):
    try:
        if not tree.exists(uri):
            return None
        value = tree.read(uri).value if hasattr(tree, "read") else tree.get(uri).value
    except Exception:  # noqa: BLE001 - a missing or odd node is no value
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else None
