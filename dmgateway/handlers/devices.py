"""The devices of the REST API: accounts, the inventory list, deleting, lockouts.

``put_device`` turns the API's account (plain secrets) into what the store
keeps (``B64(MD5(name:secret))``, the server secret only for ``basic``) and
the device's TLS-PSK key, if it has one; ``get_device`` adds what only this
process knows (lockouts, PSK identity, bootstrap pushes, operations).
"""

import base64
import binascii
from typing import Any, Dict, Optional

from twisted.internet import defer
from twisted.logger import Logger

from dmgateway.api.service import ServiceUnavailable, UnknownDevice
from dmgateway.api.validation import ValidationError
from dmgateway.api.views import bootstrap_view, device_view
from dmgateway.auth.credentials import user_hash
from dmgateway.auth.nonce import decode_nonce
from dmgateway.devicelock import DeviceBusy
from dmgateway.live import iso_time
from dmgateway.store.model import ClientAuth, NotFound, ServerAuth

log = Logger(namespace="dmgateway.handlers")

#: seconds a DELETE of a device waits for the message of it being handled
#: (its lock): past them it is answered 503 and nothing is deleted
DELETE_WAIT = 30.0

#: the newest bootstrap pushes the device view lists
BOOTSTRAPS_SHOWN = 10


def encode_cursor(device_id: str) -> str:
    """The opaque ``next`` cursor that continues after ``device_id``."""
    return base64.urlsafe_b64encode(device_id.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(text: str) -> str:
    """The device id a cursor continues after; ``ValidationError`` if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError("invalid_parameter", "cursor: not a cursor this API returned")
    if not value or len(value) > 1024:
        raise ValidationError("invalid_parameter", "cursor: not a cursor this API returned")
    return value


class DeviceHandlers:
    """``put_device``, ``get_device``, ``list_devices``, ``delete_device``, ``clear_lockouts``."""

    # -- one device --------------------------------------------------------------

    def put_device(self, device_id: str, account: Dict[str, Any]) -> "defer.Deferred[bool]":
        """Create or replace the account; fires with True if it was created."""
        client = account["client_auth"]
        server = account["server_auth"]
        client_auth = ClientAuth(
            type=client["type"],
            name=client.get("name") or "",
            user_hash=_stored_hash(client),
            nonce=_nonce_or_none(client),
        )
        server_auth = ServerAuth(
            type=server["type"],
            name=server.get("name") or "",
            user_hash=_stored_hash(server),
            secret=server["secret"] if server["type"] == "basic" else None,
            nonce=_nonce_or_none(server),
        )
        d = self.store.put_device(
            device_id,
            server_id=account.get("server_id") or self.config.gateway.server_id,
            client_auth=client_auth,
            server_auth=server_auth,
            msisdn=account.get("msisdn"),
            sip_uri=account.get("sip_uri"),
            imsi=account.get("imsi"),
        )
        if account.get("psk") is not None:
            d.addCallback(self._put_device_psk, device_id, account["psk"])
        return d

    def _put_device_psk(self, created, device_id, psk):
        """Store the device's TLS-PSK identity/key (DM 1.3) after its account."""
        from dmgateway.store.devicepsk import PskIdentityTaken

        keys = self.device_psk
        if keys is None:
            raise ValidationError("invalid_device", "psk: this gateway keeps no PSK keys")

        def taken(failure):
            if failure.check(NotFound):  # a DELETE removed it after its account was written
                raise UnknownDevice(device_id)
            failure.trap(PskIdentityTaken)
            raise ValidationError("invalid_device", "psk.identity is used by another device")

        d = keys.set(device_id, psk["identity"], psk["key"])
        return d.addCallbacks(lambda _: created, taken)

    def get_device(self, device_id: str) -> "defer.Deferred[Optional[Dict[str, Any]]]":
        """The device view (DESIGN §4, no secrets), or None if there is no such device."""
        return defer.ensureDeferred(self._get_device(device_id))

    async def _get_device(self, device_id):
        device = await self.store.get_device(device_id)
        if device is None:
            return None
        view = self._with_lockouts(device_view(device), device)
        keys = self.device_psk
        identity = keys.identity_of(device.device_id) if keys is not None else None
        if identity is not None:
            view["psk"] = {"identity": identity}  # the key is never returned
        view["bootstraps"] = [
            dict(bootstrap_view(n), created=iso_time(n.created), updated=iso_time(n.updated))
            for n in await self.store.standalone_notifications(device_id, BOOTSTRAPS_SHOWN)
        ]
        if self.functions is not None:
            view = await self.functions.annotate_device(view)
        return view

    def _with_lockouts(self, view, device):
        now = self.clock.seconds()
        lockouts = [
            {"scope": "peer", "peer": host, "until": iso_time(until)}
            for host, until in self.dispatcher.guard.lockouts(device.device_id, now)
        ]
        if device.locked(now):
            lockouts.append({"scope": "device", "peer": None, "until": iso_time(device.locked_until)})
        view["lockouts"] = lockouts
        return view

    def clear_lockouts(self, device_id: str) -> "defer.Deferred[Dict[str, Any]]":
        """Lift the device's lockouts (per address and device-wide); fires with how many."""
        return defer.ensureDeferred(self._clear_lockouts(device_id))

    async def _clear_lockouts(self, device_id):
        device = await self.store.get_device(device_id)
        if device is None:
            raise UnknownDevice(device_id)
        now = self.clock.seconds()
        guard = self.dispatcher.guard
        cleared = len(guard.lockouts(device_id, now)) + (1 if device.locked(now) else 0)
        guard.clear(device_id)
        await self.store.reset_auth_failures(device_id)
        log.info("lockouts of {device_id} cleared by an operator ({count})", device_id=device_id, count=cleared)
        return {"device_id": device_id, "cleared": cleared}

    # -- the inventory -----------------------------------------------------------

    def list_devices(self, where: Any, limit: int, cursor: Optional[str]) -> "defer.Deferred[Dict[str, Any]]":
        """``{"devices": [...], "next": cursor or None}``."""
        after = decode_cursor(cursor) if cursor is not None else None

        def page(devices):
            more = len(devices) > limit
            devices = devices[:limit]
            return {
                "devices": [self.inventory_view(device, device_view(device)) for device in devices],
                "next": encode_cursor(devices[-1].device_id) if more else None,
            }

        # one more than asked says whether there is a next page
        return self.store.find_devices(where, limit + 1, after).addCallback(page)

    def _remove(self, device_id, purge_history):
        d = self.store.remove_device(device_id, purge_history)
        if self.device_psk is not None:
            # its TLS-PSK key, whose row went with the account, opens the
            # HTTPS listener no more: forgotten as soon as that is committed
            d.addCallback(self._forget_key, device_id)
        return d

    def _forget_key(self, cancelled, device_id):
        self.device_psk.forget(device_id)
        return cancelled

    def inventory_view(self, device: Any, view: Dict[str, Any]) -> Dict[str, Any]:
        """The device view and whether it is locked out now."""
        view["locked_out"] = device.locked(self.clock.seconds())
        return view

    def delete_device(self, device_id: str, purge_history: bool) -> "defer.Deferred[Dict[str, Any]]":
        """End its session, delete the account and its pending jobs (and history if asked)."""
        return defer.ensureDeferred(self._delete_device(device_id, purge_history))

    async def _delete_device(self, device_id, purge_history):
        try:
            # removed before the device's next message is handled: no session
            # opens between its session's end and its removal
            cancelled = await self.dispatcher.end_session(
                device_id, "device_deleted", "the device account was deleted",
                then=lambda: self._remove(device_id, purge_history), wait=DELETE_WAIT)
        except NotFound:
            raise UnknownDevice(device_id)
        except DeviceBusy:
            raise ServiceUnavailable("a message of the device is still being handled (its write waits "
                                     "on the store); nothing was deleted: try again",
                                     retry_after=int(DELETE_WAIT)) from None
        if not purge_history:
            self.events.announce()
        log.info(
            "device {device_id} deleted: {count} pending jobs cancelled, history {history}",
            device_id=device_id,
            count=len(cancelled),
            history="purged" if purge_history else "kept",
        )
        return {"device_id": device_id, "deleted": True, "jobs_cancelled": cancelled,
                "history": "purged" if purge_history else "kept"}


def _stored_hash(auth):
    """B64(MD5(name:secret)): all the store keeps of a secret ("" for type none)."""
    if auth["type"] == "none":
        return ""
    return user_hash(auth["name"], auth["secret"])


def _nonce_or_none(auth):
    text = auth.get("nonce")
    if text is None:
        return None
    return decode_nonce(text)
