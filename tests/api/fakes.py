"""
An in-memory :class:`ApiHandlers` for the API tests.  It passes the same
contract tests (:mod:`tests.api.service_contract`) as the real handlers
should, so it cannot drift from the interface.
"""

from __future__ import annotations

import copy
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall

from dmgateway.api.service import BootstrapRefused, UnknownDevice, UnknownJob


class _Waiter:
    def __init__(self, after: int, limit: int) -> None:
        self.after = after
        self.limit = limit
        self.deferred: Deferred[list[dict[str, Any]]] | None = None
        self.timer: IDelayedCall | None = None


class FakeApiHandlers:
    """
    Devices, jobs and events in dicts and lists; time from ``clock``.

    :ivar calls: the (method, args) of every call, for assertions.
    :ivar failure: if set, every call fails with this exception.
    """

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.devices: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.waiters: list[_Waiter] = []
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.failure: Exception | None = None

    def _call(self, name: str, *args: Any) -> Deferred[Any] | None:
        self.calls.append((name, args))
        if self.failure is not None:
            return fail(self.failure)
        return None

    def put_device(self, device_id: str, account: dict[str, Any]) -> Deferred[bool]:
        failed = self._call("put_device", device_id, account)
        if failed:
            return failed
        created = device_id not in self.devices
        self.devices[device_id] = copy.deepcopy(account)
        return succeed(created)

    def clear_lockouts(self, device_id: str) -> Deferred[dict[str, Any]]:
        failed = self._call("clear_lockouts", device_id)
        if failed:
            return failed
        if device_id not in self.devices:
            return fail(UnknownDevice(device_id))
        return succeed({"device_id": device_id, "cleared": 0})

    def get_device(self, device_id: str) -> Deferred[dict[str, Any] | None]:
        failed = self._call("get_device", device_id)
        if failed:
            return failed
        account = self.devices.get(device_id)
        if account is None:
            return succeed(None)

        def public(auth: dict[str, Any]) -> dict[str, Any]:
            return {
                "type": auth["type"],
                "name": auth.get("name"),
                "nonce": auth.get("nonce", ""),
            }

        return succeed({
            "device_id": device_id,
            "server_id": account["server_id"],
            "client_auth": public(account["client_auth"]),
            "server_auth": public(account["server_auth"]),
            "msisdn": account["msisdn"],
            "sip_uri": account["sip_uri"],
            "imsi": account["imsi"],
            "devinfo": None,
            "last_session": None,
        })

    def create_job(self, device_id: str, spec: dict[str, Any]) -> Deferred[dict[str, Any]]:
        failed = self._call("create_job", device_id, spec)
        if failed:
            return failed
        if device_id not in self.devices:
            return fail(UnknownDevice(device_id))
        job_id = "job-%d" % (len(self.jobs) + 1,)
        self.jobs[job_id] = {
            "id": job_id,
            "device_id": device_id,
            "state": "queued",
            "spec": copy.deepcopy(spec),
            "results": [],
            "notifications": [],
        }
        return succeed({"id": job_id, "state": "queued"})

    def bootstrap(
        self, device_id: str, spec: dict[str, Any]
    ) -> Deferred[tuple[int, dict[str, Any]]]:
        """
        Checks what the gateway checks first; no document is built: a
        returned one is a fixed placeholder, a push gets an id.
        """
        failed = self._call("bootstrap", device_id, spec)
        if failed:
            return failed
        account = self.devices.get(device_id)
        if account is None:
            return fail(UnknownDevice(device_id))
        if spec["sec"] in ("NETWPIN", "USERNETWPIN") and not account.get("imsi"):
            return fail(BootstrapRefused(400, "no_imsi", "the device has no IMSI"))
        body = {"profile": spec["profile"], "sec": spec["sec"], "mac": "0" * 40, "size": 3}
        if spec["deliver"] == "return":
            body.update(document="AwtqAA==", push="AQY=", content_type="application/octet-stream")
            return succeed((200, body))
        if not account.get("msisdn"):
            return fail(BootstrapRefused(400, "no_msisdn", "the device has no MSISDN"))
        body.update(id=len(self.calls), state="queued")
        return succeed((202, body))

    def get_job(self, job_id: str) -> Deferred[dict[str, Any] | None]:
        failed = self._call("get_job", job_id)
        if failed:
            return failed
        job = self.jobs.get(job_id)
        if job is None:
            return succeed(None)
        return succeed({k: copy.deepcopy(v) for k, v in job.items() if k != "spec"})

    def list_jobs(
        self, device_id: str, limit: int, after: str | None
    ) -> Deferred[list[dict[str, Any]]]:
        failed = self._call("list_jobs", device_id, limit, after)
        if failed:
            return failed
        if device_id not in self.devices:
            return fail(UnknownDevice(device_id))
        ids = [i for i, job in self.jobs.items() if job["device_id"] == device_id]
        if after is not None:
            ids = ids[ids.index(after) + 1:] if after in ids else []
        return succeed([self._summary(i) for i in ids[:limit]])

    def list_devices(self, where: Any, limit: int, cursor: str | None) -> Deferred[dict[str, Any]]:
        """
        Devices in id order; of the filters only ``server_id`` and
        ``has_msisdn`` (the store's tests cover the rest).  The cursor is
        the last id of the previous page.
        """
        failed = self._call("list_devices", where, limit, cursor)
        if failed:
            return failed
        ids = sorted(self.devices)
        if cursor is not None:
            ids = [i for i in ids if i > cursor]
        if where.server_id is not None:
            ids = [i for i in ids if self.devices[i]["server_id"] == where.server_id]
        if where.has_msisdn is not None:
            ids = [i for i in ids if bool(self.devices[i].get("msisdn")) == where.has_msisdn]
        page = ids[:limit]
        views = []
        for device_id in page:
            view = self.get_device(device_id).result
            view["locked_out"] = False
            views.append(view)
        return succeed({"devices": views, "next": page[-1] if len(ids) > limit else None})

    def delete_device(self, device_id: str, purge: bool) -> Deferred[dict[str, Any]]:
        failed = self._call("delete_device", device_id, purge)
        if failed:
            return failed
        if device_id not in self.devices:
            return fail(UnknownDevice(device_id))
        del self.devices[device_id]
        cancelled = []
        for job_id, job in list(self.jobs.items()):
            if job["device_id"] == device_id:
                if job["state"] in ("queued", "notified"):
                    cancelled.append(job_id)
                del self.jobs[job_id]
        return succeed({"device_id": device_id, "deleted": True, "jobs_cancelled": cancelled,
                        "history": "purged" if purge else "kept"})

    def cancel_job(self, job_id: str) -> Deferred[dict[str, Any]]:
        failed = self._call("cancel_job", job_id)
        if failed:
            return failed
        job = self.jobs.get(job_id)
        if job is None:
            return fail(UnknownJob(job_id))
        if job["state"] not in ("queued", "notified"):
            return succeed({"id": job_id, "state": job["state"], "cancelled": False})
        job["state"] = "failed"
        job["error"] = {"code": "cancelled", "message": "cancelled through the API"}
        return succeed({"id": job_id, "state": "failed", "cancelled": True})

    def _summary(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        return {"id": job_id, "device_id": job["device_id"], "state": job["state"]}

    def append_event(self, kind: str, device_id: str, **fields: Any) -> dict[str, Any]:
        """
        Append an event (as the dispatcher would) and wake waiters.
        """
        event = {
            "seq": len(self.events) + 1,
            "type": kind,
            "device_id": device_id,
            "time": "1970-01-01T00:00:%06.3fZ" % (self.clock.seconds() % 60,),
            **fields,
        }
        self.events.append(event)
        for waiter in list(self.waiters):
            if event["seq"] > waiter.after:
                self._release(waiter, self._after(waiter.after, waiter.limit))
        return event

    def _after(self, after: int, limit: int) -> list[dict[str, Any]]:
        return [copy.deepcopy(e) for e in self.events if e["seq"] > after][:limit]

    def _release(self, waiter: _Waiter, events: list[dict[str, Any]]) -> None:
        self.waiters.remove(waiter)
        if waiter.timer is not None and waiter.timer.active():
            waiter.timer.cancel()
        assert waiter.deferred is not None
        waiter.deferred.callback(events)

    def device_events(
        self, device_id: str, types: tuple[str, ...], limit: int, before: int | None
    ) -> Deferred[list[dict[str, Any]]]:
        failed = self._call("device_events", device_id, types, limit, before)
        if failed:
            return failed
        if device_id not in self.devices:
            return fail(UnknownDevice(device_id))
        found = [
            copy.deepcopy(e) for e in reversed(self.events)
            if e["device_id"] == device_id and (not types or e["type"] in types)
            and (before is None or e["seq"] < before)
        ]
        return succeed(found[:limit])

    def wait_events(self, after: int, limit: int, wait: float) -> Deferred[list[dict[str, Any]]]:
        failed = self._call("wait_events", after, limit, wait)
        if failed:
            return failed
        events = self._after(after, limit)
        if events or wait <= 0:
            return succeed(events)
        waiter = _Waiter(after, limit)

        def cancel(d: Deferred[Any]) -> None:
            self.waiters.remove(waiter)
            assert waiter.timer is not None
            waiter.timer.cancel()

        waiter.deferred = Deferred(cancel)
        waiter.timer = self.clock.callLater(wait, self._release, waiter, [])
        self.waiters.append(waiter)
        return waiter.deferred
