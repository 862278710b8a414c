"""Building, securing and sending a device's bootstrap (DM-4, CP-1; DM-3 by ``deliver: return``).

``POST /api/v1/devices/{id}/bootstrap`` lands here
(:meth:`BootstrapHandlers.bootstrap`).  A bootstrap gives the device *new* credentials: the store
keeps only ``B64(MD5(name:secret))`` of a secret, so the plain secrets a
DMAcc needs exist only when they are made.  Both directions get a fresh
random secret and fresh nonces; the device row is updated before anything
leaves, so the gateway then expects the device's first session with
exactly what the bootstrap carried.  (A bootstrap that never reaches the
device therefore leaves it with credentials the gateway no longer accepts;
another bootstrap fixes that.)

``deliver: push`` puts the WSP push in the notification outbox as a
notification without a job: the outbox sends it over SMS (SMPP or modem)
concatenated, with the same states, retries, receipts and events as a
wake-up.  ``deliver: return`` hands the document, its SEC and MAC to the
caller.
"""

import base64
import re
from typing import Any, Awaitable, Callable, Dict, Tuple

from twisted.internet import defer
from twisted.logger import Logger

from dmgateway.api.service import BootstrapRefused, UnknownDevice
from dmgateway.auth.credentials import user_hash
from dmgateway.bootstrap import PROFILE_DM, push_pdu, secure
from dmgateway.bootstrap import cpprofile, dmprofile
from dmgateway.bootstrap.sec import SecurityError, method_name
from dmgateway.codec import prov
from dmgateway.store.model import ClientAuth, ServerAuth

log = Logger(namespace="dmgateway.bootstrap")

SECRET_BYTES = 12  # 24 hex digits
NONCE_BYTES = 16
#: methods whose key is (partly) the IMSI
_NEEDS_IMSI = ("NETWPIN", "USERNETWPIN")
_NODE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def account_node_name(server_id: str) -> str:
    """The ``./DMAcc/<x>`` name for ``server_id``: its safe characters, at most 32."""
    name = _NODE_NAME.sub("", server_id)[:32]
    return name if name and name not in (".", "..") else "dmgateway"


class Bootstrapper:
    """Made per request; ``outbox()`` returns the notification Outbox or None;
    ``is_live(device_id)`` says whether the device is in a session."""

    def __init__(self, store, config, clock, random_bytes: Callable[[int], bytes],
                 outbox: Callable[[], Any], event: Callable[..., Awaitable[None]],
                 is_live: Callable[[str], bool] = lambda device_id: False) -> None:
        self.store = store
        self.is_live = is_live
        self.config = config
        self.clock = clock
        self.random_bytes = random_bytes
        self.outbox = outbox
        self.event = event

    def _sms(self):
        outbox = self.outbox()
        return None if outbox is None else outbox.bearers.get("sms")

    async def bootstrap(self, device_id: str, spec: Dict[str, Any]) -> Tuple[int, Dict[str, Any]]:
        """``(HTTP status, body)`` for a validated request ``spec``."""
        device = await self.store.get_device(device_id)
        if device is None:
            raise UnknownDevice(device_id)
        if self.is_live(device_id):
            # the session would write its nonces over the bootstrapped ones when it ends
            raise BootstrapRefused(409, "session_live", "the device is in a DM session; try again after it")
        sec = None if spec["sec"] == "none" else method_name(spec["sec"])
        if sec in _NEEDS_IMSI and not device.imsi:
            raise BootstrapRefused(400, "no_imsi", "%s needs the device's IMSI; it has none" % (sec,))
        push = spec["deliver"] == "push"
        if push:
            if not device.msisdn:
                raise BootstrapRefused(400, "no_msisdn", "the device has no MSISDN to push to")
            sms = self._sms()
            if sms is None:
                raise BootstrapRefused(409, "no_sms_bearer", "no SMS bearer (smpp or modem) is enabled")
            if sms.address(device) is None:
                raise BootstrapRefused(400, "no_route", "no SMS link serves the device's MSISDN")
        account, client_auth, server_auth = self._new_account(device, spec)
        try:
            if spec["profile"] == PROFILE_DM:
                message = dmprofile.build_message(account, layout=spec["layout"], tnds=spec["tnds"])
                document = dmprofile.encode(message)
            else:
                document = prov.encode_wbxml(cpprofile.build_document(
                    account, napdef=spec.get("napdef"), proxy=spec.get("proxy")))
            boot = secure(spec["profile"], document, sec, pin=spec.get("pin"), imsi=device.imsi)
        except (SecurityError, cpprofile.CPError, ValueError) as e:
            raise BootstrapRefused(400, "invalid_bootstrap", str(e)) from None
        if spec.get("max_size") is not None and len(boot.document) > spec["max_size"]:
            raise BootstrapRefused(400, "too_large", "the document is %d bytes, more than max_size %d"
                                   % (len(boot.document), spec["max_size"]))
        pdu = push_pdu(boot)
        # the gateway expects the new credentials from now on
        await self.store.put_device(device_id, server_id=device.server_id, client_auth=client_auth,
                                    server_auth=server_auth, msisdn=device.msisdn,
                                    sip_uri=device.sip_uri, imsi=device.imsi)
        answer = {"profile": boot.profile, "sec": boot.sec or "none", "mac": boot.mac,
                  "size": len(boot.document)}
        if boot.user_code is not None:
            answer["user_pin"] = boot.user_code
        log.info("bootstrap ({profile}, {sec}, {size} bytes) for {device_id}: {deliver}",
                 profile=boot.profile, sec=answer["sec"], size=len(boot.document),
                 device_id=device_id, deliver=spec["deliver"])
        if not push:
            await self.event("bootstrap", device_id, {"profile": boot.profile, "sec": answer["sec"],
                                                      "deliver": "return"})
            answer.update(content_type=boot.content_type,
                          document=base64.b64encode(boot.document).decode("ascii"),
                          push=base64.b64encode(pdu).decode("ascii"))
            return 200, answer
        notification = await self.store.add_notification(device_id, "sms", pdu,
                                                         next_attempt_at=self.clock.seconds())
        await self.event("bootstrap", device_id, {"profile": boot.profile, "sec": answer["sec"],
                                                  "deliver": "push",
                                                  "notification_id": notification.notification_id})
        self.outbox().tick()
        answer.update(id=notification.notification_id, state=notification.state)
        return 202, answer

    def _secret(self):
        return self.random_bytes(SECRET_BYTES).hex()

    def _new_account(self, device, spec):
        """The DMAccount to send, and the device's new stored credentials."""
        client, server = device.client_auth, device.server_auth
        c_secret = self._secret() if client.type != "none" else ""
        s_secret = self._secret() if server.type != "none" else ""
        c_nonce = self.random_bytes(NONCE_BYTES) if client.type != "none" else b""
        s_nonce = self.random_bytes(NONCE_BYTES) if server.type != "none" else b""
        connectivity = tuple(dmprofile.ConItem(c["uri"], c.get("data"), c.get("format", "chr"))
                             for c in spec.get("connectivity") or ())
        account = dmprofile.DMAccount(
            server_id=device.server_id, address=self.config.gateway.public_url,
            device_id=device.device_id,
            client=dmprofile.AuthEntry(client.type, client.name, c_secret, c_nonce),
            server=dmprofile.AuthEntry(server.type, server.name, s_secret, s_nonce),
            name=spec.get("account_name") or account_node_name(device.server_id),
            display_name=spec.get("name"), pref_con_ref=spec.get("pref_con_ref"),
            connectivity=connectivity)
        client_auth = ClientAuth(type=client.type, name=client.name,
                                 user_hash=user_hash(client.name, c_secret) if c_secret else "",
                                 nonce=c_nonce)
        server_auth = ServerAuth(type=server.type, name=server.name,
                                 user_hash=user_hash(server.name, s_secret) if s_secret else "",
                                 secret=s_secret if server.type == "basic" else None, nonce=s_nonce)
        return account, client_auth, server_auth


class BootstrapHandlers:
    """``bootstrap``: one :class:`Bootstrapper` per request."""

    def bootstrap(self, device_id: str, spec: Dict[str, Any]) -> "defer.Deferred[Tuple[int, Dict[str, Any]]]":
        """Build the device's bootstrap and push or return it: ``(HTTP status, body)``."""
        dispatcher = self.dispatcher
        bootstrapper = Bootstrapper(self.store, self.config, self.clock, dispatcher.random_bytes,
                                    lambda: dispatcher.outbox, self.events.append, dispatcher.is_live)
        return defer.ensureDeferred(bootstrapper.bootstrap(device_id, spec))
