"""The target side of a DM-6 delegation (gateway B; docs/delegation.md).

:class:`TargetSide` is mixed into :class:`~.flow.DelegationService`: it
answers the messages of authenticated peers.  A request naming devices this
gateway does not manage yet is accepted with fresh device accounts (created
in the store at once); ``device-ready`` makes the delegation ``contacting``
and queues a first job per device; once every device has run it, the
delegation is ``active`` and the peer is told ``completed`` (or ``failed``);
``revoked``/``failed`` delete the accounts again, as an operator's ``DELETE``
of each device does.  Notifications for the delegating side (``completed``,
``failed``) are taken here too.
"""

import uuid

from twisted.logger import Logger

from dmgateway.delegation import messages as m
from dmgateway.store.model import StoreClosed, StoreContention, StoreUnavailable

__all__ = ["CONTACT_URI", "TargetSide"]

log = Logger(namespace="dmgateway.delegation")

CONTACT_URI = "./DevInfo/DevId"


class TargetSide:
    """Messages from peers (a mixin: it uses the service's store, records,
    REST handlers and its ``_save``, ``_step``, ``_notify``, ``_revoke`` ...)."""

    async def receive(self, peer, message):
        """The :class:`~.messages.Response` to ``message`` from authenticated ``peer``."""
        if isinstance(message, m.Request):
            return await self._received_request(peer, message)
        if isinstance(message, m.Notification):
            return await self._received_notification(peer, message)
        return _rejected(message.transaction_id, "unexpected", "a response is not a request")

    async def _received_request(self, peer, request):
        tid = request.transaction_id
        if request.from_server != peer.server_id:
            return _rejected(tid, "wrong_server", "FromServerID is not the authenticated peer")
        if request.to_server != self.own_id:
            return _rejected(tid, "wrong_server", "ToServerID %r is not this server"
                             % (request.to_server,))
        if await self.records.find("target", peer.server_id, tid) is not None:
            return _rejected(tid, "duplicate", "transaction already received")
        try:
            scope = [m.check_scope(uri) for uri in request.scope]
        except m.MessageError as e:
            return _rejected(tid, "bad_subtree", str(e))
        if request.extent == "partial" and "." in scope:
            return _rejected(tid, "bad_subtree", "a partial delegation cannot name the root")
        busy = await self._delegated([d.dev_id for d in request.devices])
        if busy:
            return _rejected(tid, "device_known", "device %r is in delegation %s" % busy)
        for device in request.devices:
            if await self.store.get_device(device.dev_id) is not None:
                return _rejected(tid, "device_known", "device %r is already managed here"
                                 % (device.dev_id,))
        if len({d.dev_id for d in request.devices}) != len(request.devices):
            return _rejected(tid, "invalid_message", "a device is listed twice")
        now = self.clock.seconds()
        accounts = []
        try:
            for device in request.devices:
                client = m.Auth("md5", "dev-" + self.random_bytes(6).hex(), self.random_bytes(16).hex())
                server = m.Auth("md5", self.own_id, self.random_bytes(16).hex())
                await self.handlers.put_device(device.dev_id, {
                    "server_id": self.own_id,
                    "client_auth": {"type": client.type, "name": client.name, "secret": client.secret},
                    "server_auth": {"type": server.type, "name": server.name, "secret": server.secret},
                    "msisdn": device.msisdn or None,
                    "sip_uri": device.sip_uri or None,
                })
                accounts.append(m.Account(device.dev_id, self.own_id, self.public_url, client, server))
        except Exception:
            # answered "unavailable", the peer's delegation is rejected: the
            # accounts made for it go (kept, they refused the devices later)
            await self._undo_accounts([a.dev_id for a in accounts])
            raise
        doc = {
            "id": uuid.uuid4().hex, "role": "target", "peer": peer.server_id,
            "transaction_id": tid, "state": "accepted",
            "devices": [d.dev_id for d in request.devices], "subtrees": scope,
            "type": request.extent, "duration": request.duration,
            "until": None if request.until is None else m.iso(request.until),
            "until_epoch": request.until, "created": m.iso(now), "updated": m.iso(now),
            "history": [], "device_steps": {}, "error": None,
        }
        self._step(doc, "accepted", "device accounts created for %s" % (", ".join(doc["devices"]),))
        await self._save(doc)
        log.info("delegation {id} from {peer} accepted: {count} devices", id=doc["id"],
                 peer=peer.server_id, count=len(accounts))
        return m.Response(tid, True, None, tuple(accounts))

    async def _received_notification(self, peer, note):
        tid = note.transaction_id
        if note.from_server != peer.server_id:
            return _rejected(tid, "wrong_server", "FromServerID is not the authenticated peer")
        # completed comes from the target, device-ready/revoked from the delegating
        # server; failed from either
        roles = {"completed": ("delegating",), "failed": ("target", "delegating")}.get(
            note.state, ("target",))
        doc = None
        for role in roles:
            doc = await self.records.find(role, peer.server_id, tid)
            if doc is not None:
                break
        if doc is None:
            return _rejected(tid, "unknown_transaction", "no such delegation with this peer")
        return await self._with_record(
            doc["id"], lambda fresh: self._take_notification(fresh, peer, note))

    async def _undo_accounts(self, device_ids):
        for dev_id in device_ids:
            try:
                await self.handlers.delete_device(dev_id, False)
            except Exception:
                log.failure("the account of {device_id} made for a delegation request that "
                            "failed stays: delete it", device_id=dev_id)

    async def _take_notification(self, doc, peer, note):
        tid = note.transaction_id
        reason = " (%s: %s)" % (note.reason.code, note.reason.text) if note.reason else ""
        if doc["role"] == "delegating" and note.state == "failed":
            if doc["state"] in ("revoking", "revoked", "failed", "rejected"):
                return m.Response(tid, True)
            doc["error"] = {"code": "peer_failed", "message": "%s reports failure%s"
                            % (peer.server_id, reason)}
            await self._revoke(doc, doc["error"]["message"])
            return m.Response(tid, True)
        if note.state == "completed":
            if doc["state"] != "device-ready":
                return _rejected(tid, "out_of_order", "delegation is %s" % (doc["state"],))
            doc["state"] = "active"
            self._step(doc, "active", "%s reports completion" % (peer.server_id,))
        elif note.state == "device-ready":
            if doc["state"] != "accepted":
                return _rejected(tid, "out_of_order", "delegation is %s" % (doc["state"],))
            await self._queue_contacts(doc)
            doc["state"] = "contacting"
        else:  # revoked | failed
            if doc["state"] in ("revoked", "failed"):
                return m.Response(tid, True)
            await self._delete_accounts(doc)
            doc["state"] = note.state
            self._step(doc, note.state, "%s by %s%s; device accounts removed"
                       % (note.state, peer.server_id, reason))
        await self._save(doc)
        return m.Response(tid, True)

    async def _queue_contacts(self, doc):
        """A first job per device, each kept in the record as soon as it is
        queued: the notice sent again after a failure here (answered
        ``unavailable``) queues the rest, not a second job for a device.  A
        device an operator deleted here meanwhile is failed (see
        :meth:`_contacted`)."""
        for dev_id in doc["devices"]:
            if dev_id in doc["device_steps"]:
                continue  # queued by this notice before, which failed on a later device
            try:
                job = await self.handlers.create_job(dev_id, {
                    "commands": [{"op": "Get", "target": CONTACT_URI}],
                    "atomic": False, "notify": "auto", "ui_mode": 0})
            except Exception as error:
                if not await self._device_gone(dev_id, error):
                    raise
                doc["device_steps"][dev_id] = {"step": "contact", "jobs": []}
                self._device_failed(doc, dev_id, doc["device_steps"][dev_id], None,
                                    "the device was deleted")
            else:
                doc["device_steps"][dev_id] = {"step": "contact", "jobs": [job["id"]]}
                self._step(doc, "contact", "job %s: first session with the device" % (job["id"],),
                           dev_id)
            await self._save(doc)

    async def _contacted(self, doc):
        """The target: once every device ran its first job for us, report to the peer."""
        for dev_id, step in doc["device_steps"].items():
            if step["step"] != "contact":
                continue
            job_id = step["jobs"][-1]
            job = await self.store.get_job(job_id)
            if job is None:  # gone with its device: an operator here deleted it
                self._device_failed(doc, dev_id, step, job_id, "the device was deleted")
                continue
            if job.state not in ("done", "failed", "expired"):
                continue
            status = (job.results or [{}])[0].get("status") if job.results else None
            if job.state == "done" and status == 200:
                step["step"] = "managed"
                self._step(doc, "managed", "the device ran our first job", dev_id)
            else:
                error = (job.error or {}).get("message") or "status %s" % (status,)
                self._device_failed(doc, dev_id, step, job_id, error)
        steps = [s["step"] for s in doc["device_steps"].values()]
        if "contact" in steps:
            await self._save(doc)
            return
        if "failed" in steps:
            doc["state"] = "failed"
            self._step(doc, "failed", doc["error"]["message"])
            await self._delete_accounts(doc)
            await self._save(doc)
            await self._notify(doc, "failed", m.Reason(doc["error"]["code"],
                                                        doc["error"]["message"]))
        else:
            doc["state"] = "active"
            self._step(doc, "active", "managing the devices")
            await self._save(doc)
            await self._notify(doc, "completed")

    async def _delete_accounts(self, doc):
        """Delete the delegation's device accounts as an operator's ``DELETE``
        does: a live session ended (the device's next message refused), the
        pending jobs cancelled, each with its event, the TLS-PSK key forgotten;
        the device's events kept (the audit trail).  A device deleted already
        (by an operator, or a notice taken twice) is no error; a failure of
        the store is (the peer's notice fails, and is sent again)."""
        for dev_id in doc["devices"]:
            try:
                await self.handlers.delete_device(dev_id, False)
            except Exception as error:
                if not await self._device_gone(dev_id, error):
                    raise


    async def _device_gone(self, dev_id, error):
        """Whether ``error``, raised by the handlers for ``dev_id``, says only
        that the device is gone (the API's UnknownDevice, a layer above this
        one: an operator here deleted it).  A store failure never does."""
        if isinstance(error, (StoreUnavailable, StoreContention, StoreClosed)):
            return False
        return await self.store.get_device(dev_id) is None


def _rejected(tid, code, text):
    return m.Response(tid, False, m.Reason(code, text[:256]))
