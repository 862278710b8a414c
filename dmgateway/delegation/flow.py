"""Both sides of a DM-6 delegation (docs/delegation.md).

The **delegating** gateway (A, which manages the device):

1. ``requested``: the operator's ``POST /api/v1/delegations`` is checked
   (peer configured, devices known here, subtrees well formed) and a
   :class:`~.messages.Request` goes to the peer;
2. ``accepted``/``rejected``: the peer's :class:`~.messages.Response`; an
   acceptance carries one device account per device;
3. ``preparing``: per device, a job reads the ACL of each delegated subtree
   (a subtree the device does not have fails here), then ONE Atomic job adds
   the peer's ``./DMAcc/<x>`` and replaces the subtrees' ACLs (partial: the
   peer alone; full: the peer added to each command) -- the device rolls
   the Atomic back if any command fails;
4. ``device-ready``: the peer is told to proceed; ``active`` once it
   reports ``completed``;
5. ``revoking`` -> ``revoked`` (operator ``DELETE`` or the ``until`` time of
   a temporary delegation): a job restores the saved ACLs and deletes the
   peer's DMAcc, then the peer is told ``revoked``.

The **target** gateway (B): a request from an authenticated peer naming a
device it does not manage yet is accepted with fresh credentials (the
device account, with the wake-up addresses the request carries, is created
in B's store at once, so B can serve the device as soon as it connects);
``device-ready`` makes it ``contacting``: B queues a first job per device
(Get ``./DevInfo/DevId``, woken by package #0 like any job) and, once the
device has run it for B, becomes ``active`` and tells A ``completed`` (or
``failed`` if the device refused B); ``revoked``/``failed`` delete the
accounts again.

A device takes part in one delegation at a time.  A permanent delegation
has no end time and is not revoked (its history stays); a temporary one
ends by ``DELETE`` or at ``until``.

Every step is appended to the record's ``history``; the record is the
``GET /api/v1/delegations/{id}`` view.  Secrets never reach a log line nor
a view; the peer's device credentials are kept in A's record only until
the Atomic job holding them is queued.

The target's side (messages from peers) is in :mod:`.target`; the commands
written to a device for the peer in :mod:`.grants`.
"""

import os
import uuid

from twisted.internet import defer, task
from twisted.logger import Logger

from dmgateway.delegation import messages as m
from dmgateway.delegation.grants import account_dict, account_name, grant_commands
from dmgateway.delegation.target import TargetSide
from dmgateway.store.delegations import DelegationRecords

__all__ = ["DelegationError", "DelegationService", "delegation_view"]

log = Logger(namespace="dmgateway.delegation")

MAX_DEVICES = 100
MAX_SUBTREES = 32
ACTIVE_DELEGATING = ("preparing", "revoking")
REVOCABLE = ("requested", "accepted", "preparing", "device-ready", "active")
#: states in which a delegation holds its devices (on either side)
HOLDING = REVOCABLE + ("revoking", "contacting")


class DelegationError(Exception):
    """A delegation request or message refused: ``status`` for HTTP, ``code`` for JSON."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def delegation_view(doc):
    """The API view of a record (no secrets: those never enter ``steps``/``history``)."""
    view = {key: doc.get(key) for key in (
        "id", "role", "peer", "transaction_id", "state", "devices", "subtrees", "type",
        "duration", "until", "created", "updated", "history", "error")}
    view["device_steps"] = {
        dev: {k: v for k, v in step.items() if k in ("step", "jobs", "account", "error")}
        for dev, step in doc.get("device_steps", {}).items()
    }
    return view


class DelegationService(TargetSide):
    """The delegation flow of one gateway; ``send(peer, message)`` fires with the answer."""

    def __init__(self, config, handlers, store, clock, send, random_bytes=os.urandom):
        self.config = config
        self.own_id = config.gateway.server_id
        self.public_url = config.gateway.public_url
        self.handlers = handlers
        self.records = DelegationRecords(store, clock)
        self.store = store
        self.clock = clock
        self.send = send
        self.random_bytes = random_bytes
        self._loop = None
        self._busy = False
        self._again = False
        self._locks = {}  # delegation id -> DeferredLock: one change at a time per record
        self._creating = defer.DeferredLock()  # the one-delegation-per-device check

    # -- life cycle ---------------------------------------------------------

    def start(self):
        self.handlers.events.listen(self.poke)
        self._loop = task.LoopingCall(self.poke)
        self._loop.clock = self.clock
        self._loop.start(self.config.delegation.check_interval, now=True)

    def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def poke(self):
        """Look at every delegation waiting on a job or an end time (coalesced)."""
        if self._busy:
            self._again = True
            return
        self._busy = True
        d = defer.ensureDeferred(self._advance_all())
        d.addErrback(lambda f: log.failure("delegation check failed", f))
        d.addBoth(self._idle)

    def _idle(self, _):
        self._busy = False
        if self._again:
            self._again = False
            self.poke()

    # -- the operator's side (API) ---------------------------------------------

    async def create(self, spec):
        peer = self.config.delegation.peer(spec["peer"])
        if peer is None:
            raise DelegationError(400, "unknown_peer", "peer %r is not configured in "
                                  "delegation.ini" % (spec["peer"],))
        devices = []
        for dev_id in spec["devices"]:
            device = await self.store.get_device(dev_id)
            if device is None:
                raise DelegationError(404, "unknown_device",
                                      "device %r is not managed here" % (dev_id,))
            devinfo = device.devinfo or {}
            devices.append(m.Device(dev_id, str(devinfo.get("Man", ""))[:256],
                                    str(devinfo.get("Mod", ""))[:256],
                                    device.msisdn or "", device.sip_uri or ""))
        now = self.clock.seconds()
        until = spec.get("until_epoch")
        if until is not None and until <= now:
            raise DelegationError(400, "invalid_request", "until is in the past")
        doc = {
            "id": uuid.uuid4().hex,
            "role": "delegating",
            "peer": peer.server_id,
            "transaction_id": uuid.uuid4().hex,
            "state": "requested",
            "devices": list(spec["devices"]),
            "subtrees": list(spec["subtrees"]),
            "type": spec["type"],
            "duration": spec["duration"],
            "until": None if until is None else m.iso(until),
            "until_epoch": until,
            "created": m.iso(now),
            "updated": m.iso(now),
            "history": [],
            "device_steps": {},
            "error": None,
        }
        self._step(doc, "requested", "request sent to %s" % (peer.server_id,))
        lock = self._lock(doc["id"])
        await lock.acquire()
        try:
            await self._creating.acquire()
            try:
                busy = await self._delegated(spec["devices"])
                if busy:
                    raise DelegationError(409, "device_delegated",
                                          "device %r is in delegation %s" % busy)
                await self._save(doc)
            finally:
                self._creating.release()
            return await self._requested(doc, peer, devices, until)
        finally:
            self._unlock(doc["id"], lock)

    async def _requested(self, doc, peer, devices, until):
        request = m.Request(doc["transaction_id"], self.own_id, peer.server_id, tuple(devices),
                            tuple(doc["subtrees"]), doc["type"], doc["duration"], until)
        try:
            answer = await self.send(peer, request)
        except Exception as e:
            self._fail(doc, "peer_unreachable", "no answer from %s: %s"
                       % (peer.server_id, _short(e)))
            await self._save(doc)
            return delegation_view(doc)
        if not isinstance(answer, m.Response) or answer.transaction_id != doc["transaction_id"]:
            self._fail(doc, "bad_answer", "the peer's answer is not a response to this request")
        elif not answer.accepted:
            reason = answer.reason or m.Reason("rejected")
            doc["state"] = "rejected"
            doc["error"] = {"code": reason.code, "message": reason.text}
            self._step(doc, "rejected", "%s: %s" % (reason.code, reason.text))
        else:
            accounts = {a.dev_id: a for a in answer.accounts}
            missing = [d for d in doc["devices"] if d not in accounts]
            if missing:
                self._fail(doc, "bad_answer", "no account for %s" % (", ".join(missing),))
            else:
                doc["state"] = "accepted"
                self._step(doc, "accepted", "accepted by %s" % (peer.server_id,))
                try:
                    await self._start_preparing(doc, accounts)
                except Exception as e:  # e.g. the device was deleted meanwhile
                    log.failure("delegation {id}: device jobs could not be queued", id=doc["id"])
                    for step in doc["device_steps"].values():
                        step.pop("pending", None)  # only ACL reads were queued: nothing to undo
                        step["step"] = "restored"
                    self._fail(doc, "not_started", "device jobs could not be queued: %s"
                               % (_short(e),))
        await self._save(doc)
        if doc["state"] == "failed" and doc["error"]["code"] in ("bad_answer", "not_started"):
            await self._notify(doc, "failed", m.Reason(doc["error"]["code"],
                                                        doc["error"]["message"]))
        return delegation_view(doc)

    async def _delegated(self, device_ids):
        """``(device, delegation id)`` of the first of ``device_ids`` already delegated."""
        for doc in await self.records.in_states(HOLDING):
            for dev_id in device_ids:
                if dev_id in doc["devices"]:
                    return dev_id, doc["id"]
        return None

    async def get(self, delegation_id):
        doc = await self.records.get(delegation_id)
        return None if doc is None else delegation_view(doc)

    def _lock(self, delegation_id):
        lock = self._locks.get(delegation_id)
        if lock is None:
            lock = self._locks[delegation_id] = defer.DeferredLock()
        return lock

    def _unlock(self, delegation_id, lock):
        lock.release()
        if not lock.locked and not lock.waiting:
            self._locks.pop(delegation_id, None)

    async def _with_record(self, delegation_id, work):
        """``work(doc)`` on a fresh copy of the record, alone; ``None`` if there is none."""
        lock = self._lock(delegation_id)
        await lock.acquire()
        try:
            doc = await self.records.get(delegation_id)
            return None if doc is None else await work(doc)
        finally:
            self._unlock(delegation_id, lock)

    async def revoke(self, delegation_id):
        return await self._with_record(delegation_id, self._revoke_request)

    async def _revoke_request(self, doc):
        if doc["role"] != "delegating":
            raise DelegationError(409, "not_delegating", "only the delegating server revokes")
        if doc["duration"] == "permanent":
            raise DelegationError(409, "not_revocable", "a permanent delegation is not revoked")
        if doc["state"] not in REVOCABLE:
            raise DelegationError(409, "not_revocable", "delegation is %s" % (doc["state"],))
        await self._revoke(doc, "revoked by the operator")
        return delegation_view(doc)

    # -- the delegating side ------------------------------------------------

    async def _start_preparing(self, doc, accounts):
        doc["state"] = "preparing"
        for dev_id in doc["devices"]:
            account = accounts[dev_id]
            job = await self.handlers.create_job(dev_id, {
                "commands": [{"op": "Get", "target": uri + "?prop=ACL"}
                             for uri in doc["subtrees"]],
                "atomic": False, "notify": "auto", "ui_mode": 0,
            })
            doc["device_steps"][dev_id] = {
                "step": "read_acl",
                "jobs": [job["id"]],
                "account": {"server_id": account.server_id, "name": account_name(doc)},
                "pending": account_dict(account),  # dropped once the grant job is queued
            }
            self._step(doc, "read_acl", "job %s reads the ACLs" % (job["id"],), dev_id)

    async def _advance_all(self):
        waiting = await self.records.in_states(ACTIVE_DELEGATING + ("device-ready", "active",
                                                                    "contacting"))
        unsent = await self.records.unsent()
        for delegation_id in dict.fromkeys([d["id"] for d in waiting + unsent]):
            try:
                await self._with_record(delegation_id, self._advance_one)
            except Exception:
                log.failure("delegation {id} could not advance", id=delegation_id)

    async def _advance_one(self, doc):
        if doc.get("unsent"):
            state, code, text = doc["unsent"]
            await self._notify(doc, state, m.Reason(code, text) if code else None)
        if doc["role"] == "target":
            if doc["state"] == "contacting":
                await self._contacted(doc)
        elif doc["state"] in ACTIVE_DELEGATING:
            await self._advance(doc)
        elif doc["state"] in ("device-ready", "active") and doc["duration"] == "temporary" \
                and doc.get("until_epoch") is not None \
                and doc["until_epoch"] <= self.clock.seconds():
            await self._revoke(doc, "the end time %s has passed" % (doc["until"],))

    async def _advance(self, doc):
        changed = False
        if doc["state"] == "revoking" and any(s["step"] in ("granted", "grant")
                                              for s in doc["device_steps"].values()):
            await self._restore_devices(doc)  # (a revocation a store failure cut short)
            changed = True
        for dev_id, step in doc["device_steps"].items():
            if step["step"] in ("granted", "restored", "failed"):
                continue
            job = await self.store.get_job(step["jobs"][-1])
            if job is None:  # gone with its device: an operator here deleted it
                changed = True
                self._device_failed(doc, dev_id, step, step["jobs"][-1], "the device was deleted")
                continue
            if job.state not in ("done", "failed", "expired"):
                continue
            changed = True
            if job.state != "done":
                error = (job.error or {}).get("message") or "job %s" % (job.state,)
                self._device_failed(doc, dev_id, step, job.job_id, error)
            elif step["step"] == "read_acl":
                await self._grant(doc, dev_id, step, job)
            elif step["step"] == "grant":
                step["step"] = "granted"
                self._step(doc, "granted", "the device accepted the new account and ACLs", dev_id)
            elif step["step"] == "restore":
                step["step"] = "restored"
                self._step(doc, "restored", "the device's ACLs are restored", dev_id)
        if not changed:
            return
        steps = [s["step"] for s in doc["device_steps"].values()]
        if doc["state"] == "preparing":
            if "failed" in steps:
                if all(s in ("failed", "granted", "restored") for s in steps):
                    await self._give_up(doc)
            elif all(s == "granted" for s in steps):
                doc["state"] = "device-ready"
                self._step(doc, "device-ready", "telling %s to proceed" % (doc["peer"],))
                await self._save(doc)
                await self._notify(doc, "device-ready")
                return
        elif doc["state"] == "revoking" and all(s in ("restored", "failed") for s in steps):
            final = "failed" if doc.get("error") else "revoked"
            doc["state"] = final
            self._step(doc, final, "every device is back to its ACLs")
            await self._save(doc)
            await self._notify(doc, "failed" if final == "failed" else "revoked",
                               m.Reason(doc["error"]["code"], doc["error"]["message"])
                               if final == "failed" else None)
            return
        await self._save(doc)

    def _device_failed(self, doc, dev_id, step, job_id, error):
        phase = step["step"]
        step["step"] = "failed"
        step.pop("pending", None)
        step["error"] = error
        if doc["error"] is None:
            doc["error"] = {"code": "device_refused",
                            "message": "%s: %s failed: %s" % (dev_id, phase, error)}
        self._step(doc, "failed", "%s job %s: %s" % (phase, job_id, error) if job_id is not None
                   else "%s: %s" % (phase, error), dev_id)

    async def _grant(self, doc, dev_id, step, job):
        saved = {}
        for uri, result in zip(doc["subtrees"], job.results):
            status = result.get("status")
            if status != 200:
                self._device_failed(doc, dev_id, step, job.job_id, "%s: status %s (the device "
                                    "has no such subtree or refuses to show its ACL)"
                                    % (uri, status))
                return
            saved[uri] = result.get("data") or ""
        step["saved_acls"] = saved
        account = step.pop("pending")
        commands = grant_commands(doc, self.own_id, step["account"]["name"], account, saved)
        grant = await self.handlers.create_job(dev_id, {
            "commands": commands, "atomic": True, "notify": "auto", "ui_mode": 0})
        step["step"] = "grant"
        step["jobs"].append(grant["id"])
        self._step(doc, "grant", "Atomic job %s adds %s's account and sets the ACLs"
                   % (grant["id"], doc["peer"]), dev_id)

    async def _give_up(self, doc):
        """A device refused: undo what the others accepted, then say failed."""
        doc["state"] = "revoking"
        self._step(doc, "revoking", "undoing the devices that accepted")
        await self._restore_devices(doc)
        if all(s["step"] in ("restored", "failed") for s in doc["device_steps"].values()):
            doc["state"] = "failed"
            self._step(doc, "failed", doc["error"]["message"])
            await self._save(doc)
            await self._notify(doc, "failed", m.Reason(doc["error"]["code"],
                                                        doc["error"]["message"]))

    async def _revoke(self, doc, why):
        doc["state"] = "revoking"
        self._step(doc, "revoking", why)
        for step in doc["device_steps"].values():
            step.pop("pending", None)  # the peer's credentials are not needed any more
            if step["step"] == "read_acl":
                step["step"] = "restored"  # nothing was changed on this device yet
        await self._restore_devices(doc)
        if all(s["step"] in ("restored", "failed") for s in doc["device_steps"].values()):
            final = "failed" if doc.get("error") else "revoked"
            doc["state"] = final
            self._step(doc, final, "nothing to undo on the devices")
            await self._save(doc)
            await self._notify(doc, final, m.Reason(doc["error"]["code"], doc["error"]["message"])
                               if final == "failed" else None)
            return
        await self._save(doc)

    async def _restore_devices(self, doc):
        """Queue the restore job of each device granted (or being granted),
        the record saved after each: a store failure part way leaves it
        ``revoking`` with the rest still to queue, which :meth:`_advance`
        resumes (before: nothing was saved, and the next try queued the
        first devices' jobs again)."""
        for dev_id, step in doc["device_steps"].items():
            if step["step"] not in ("granted", "grant"):
                continue
            commands = [{"op": "Replace", "target": uri + "?prop=ACL", "data": acl}
                        for uri, acl in step["saved_acls"].items()]
            commands.append({"op": "Delete", "target": "./DMAcc/" + step["account"]["name"]})
            try:
                job = await self.handlers.create_job(dev_id, {
                    "commands": commands, "atomic": True, "notify": "auto", "ui_mode": 0})
            except Exception as error:
                # deleted here: nothing to restore (raising, the next try queued the others' again)
                if not await self._device_gone(dev_id, error):
                    raise
                self._device_failed(doc, dev_id, step, None, "the device was deleted")
            else:
                step["step"] = "restore"
                step["jobs"].append(job["id"])
                self._step(doc, "restore", "Atomic job %s restores the ACLs and removes %s's "
                           "account" % (job["id"], doc["peer"]), dev_id)
            await self._save(doc)

    async def _notify(self, doc, state, reason=None):
        """Tell the peer ``state``; undelivered, it is retried every ``check_interval``."""
        peer = self.config.delegation.peer(doc["peer"])
        note = m.Notification(doc["transaction_id"], self.own_id, state, reason)
        try:
            if peer is None:
                raise ValueError("peer %r is no longer configured" % (doc["peer"],))
            answer = await self.send(peer, note)
        except Exception as e:
            await self._keep_unsent(doc, state, reason, _short(e))
            return None
        if not answer.accepted and answer.reason is not None and answer.reason.code == "unavailable":
            # the peer could not handle it now ("retry later"): as if undelivered
            await self._keep_unsent(doc, state, reason, "refused: unavailable: %s" % (answer.reason.text,))
            return None
        doc.pop("unsent", None)
        if answer.accepted:
            self._step(doc, "notified", "%s: acknowledged by %s" % (state, doc["peer"]))
        else:
            why = answer.reason or m.Reason("rejected")
            self._step(doc, "notified", "%s: refused by %s: %s: %s"
                       % (state, doc["peer"], why.code, why.text))
        await self._save(doc)
        return answer

    async def _keep_unsent(self, doc, state, reason, why):
        """Keep notice ``state`` to send again every ``check_interval`` (see :meth:`_advance_one`)."""
        retry = doc.get("unsent") is not None and doc["unsent"][0] == state
        doc["unsent"] = [state, reason.code if reason else None, reason.text if reason else ""]
        if not retry:  # one history entry per notice, not per attempt
            self._step(doc, "notify-failed", "%s not delivered to %s (retried every %gs): %s"
                       % (state, doc["peer"], self.config.delegation.check_interval, why))
        await self._save(doc)

    # -- helpers --------------------------------------------------------------

    async def _save(self, doc):
        """Store ``doc``; a new state is also an event (``GET /api/v1/events``, webhooks)."""
        changed = doc.get("announced") != doc["state"]
        doc["announced"] = doc["state"]
        await self.records.save(doc)
        if changed:
            await self.handlers.events.append("delegation", None, {
                "delegation_id": doc["id"], "role": doc["role"], "peer": doc["peer"],
                "state": doc["state"], "devices": list(doc["devices"])})

    def _step(self, doc, step, detail, device=None):
        now = self.clock.seconds()
        entry = {"time": m.iso(now), "step": step, "detail": detail}
        if device is not None:
            entry["device_id"] = device
        doc["history"].append(entry)
        doc["updated"] = m.iso(now)
        log.info("delegation {id} ({role}, peer {peer}): {step}: {detail}", id=doc["id"],
                 role=doc["role"], peer=doc["peer"], step=step, detail=detail)

    def _fail(self, doc, code, message):
        doc["state"] = "failed"
        doc["error"] = {"code": code, "message": message}
        self._step(doc, "failed", message)


def _short(error):
    text = str(error) or error.__class__.__name__
    return text[:200]
