"""
Contract tests for any :class:`dmgateway.api.service.ApiHandlers`.

Subclass :class:`ApiHandlersContract` together with
:class:`twisted.trial.unittest.TestCase` and define:

    - ``make_service()`` returning ``(service, clock)``, the clock being the
      :class:`twisted.internet.task.Clock` the service uses for timeouts;
    - ``append_event(service, kind, device_id, **fields)`` appending one
      event the way the gateway does (returns nothing or a Deferred);
    - optionally ``settle()``, returning a Deferred that fires once the
      service's pending store work is done (an adbapi store answers in a
      later reactor turn); the default fires at once.

The in-memory fake used by the API tests runs it (test_service.py); the
real handlers run it too (tests/handlers/test_contract.py), so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, inlineCallbacks, succeed

from dmgateway.api.service import BootstrapRefused, UnknownDevice, UnknownJob
from dmgateway.store.inventory import DeviceFilter
from tests.fixtures import API_ACCOUNT, API_DEVICE as DEVICE

ACCOUNT = dict(API_ACCOUNT, msisdn="+447700900123", sip_uri=None, imsi=None,
               server_auth=dict(API_ACCOUNT["server_auth"], nonce="AAECAw=="))
JOB = {
    "commands": [{"op": "Get", "target": "./DevDetail/SwV"}],
    "atomic": False,
    "notify": "none",
    "ui_mode": 0,
}
BOOTSTRAP = {"profile": "cp", "sec": "USERPIN", "pin": "1234", "deliver": "return",
             "name": None, "layout": "dm12", "tnds": False, "account_name": None,
             "pref_con_ref": None}


class ApiHandlersContract:
    """
    What the API relies on from the service.
    """

    make_service: Any
    append_event: Any

    def settle(self) -> Any:
        return succeed(None)

    @inlineCallbacks
    def test_put_device_creates_then_updates(self):
        service, _ = self.make_service()
        self.assertIs((yield service.put_device(DEVICE, ACCOUNT)), True)
        self.assertIs((yield service.put_device(DEVICE, ACCOUNT)), False)

    @inlineCallbacks
    def test_get_device_never_returns_secrets(self):
        service, _ = self.make_service()
        self.assertIsNone((yield service.get_device(DEVICE)))
        yield service.put_device(DEVICE, ACCOUNT)
        device = yield service.get_device(DEVICE)
        self.assertEqual(device["client_auth"]["name"], "dmclient01")
        self.assertEqual(device["server_auth"]["nonce"], "AAECAw==")
        self.assertEqual(device["client_auth"]["nonce"], "")
        text = repr(device)
        self.assertNotIn("cl1ent-s3cret", text)
        self.assertNotIn("s3rver-s3cret", text)

    @inlineCallbacks
    def test_bootstrap_for_unknown_device_fails(self):
        service, _ = self.make_service()
        with self.assertRaises(UnknownDevice):
            yield service.bootstrap(DEVICE, BOOTSTRAP)

    @inlineCallbacks
    def test_bootstrap_returned(self):
        service, _ = self.make_service()
        yield service.put_device(DEVICE, ACCOUNT)
        status, body = yield service.bootstrap(DEVICE, BOOTSTRAP)
        self.assertEqual(status, 200)
        self.assertEqual((body["profile"], body["sec"]), ("cp", "USERPIN"))
        self.assertRegex(body["mac"], "^[0-9A-F]{40}$")
        self.assertIsInstance(body["document"], str)
        self.assertIsInstance(body["push"], str)

    @inlineCallbacks
    def test_bootstrap_refusals(self):
        service, _ = self.make_service()
        yield service.put_device(DEVICE, dict(ACCOUNT, msisdn=None))
        with self.assertRaises(BootstrapRefused) as caught:
            yield service.bootstrap(DEVICE, dict(BOOTSTRAP, deliver="push"))
        self.assertEqual((caught.exception.status, caught.exception.code), (400, "no_msisdn"))
        with self.assertRaises(BootstrapRefused) as caught:
            yield service.bootstrap(DEVICE, dict(BOOTSTRAP, sec="NETWPIN", pin=None))
        self.assertEqual((caught.exception.status, caught.exception.code), (400, "no_imsi"))

    @inlineCallbacks
    def test_create_job_for_unknown_device_fails(self):
        service, _ = self.make_service()
        with self.assertRaises(UnknownDevice):
            yield service.create_job(DEVICE, JOB)

    @inlineCallbacks
    def test_create_and_get_job(self):
        service, _ = self.make_service()
        yield service.put_device(DEVICE, ACCOUNT)
        created = yield service.create_job(DEVICE, JOB)
        self.assertEqual(created["state"], "queued")
        job = yield service.get_job(created["id"])
        self.assertEqual(job["id"], created["id"])
        self.assertEqual(job["device_id"], DEVICE)
        self.assertIn(job["state"], ("queued", "notified", "running", "done", "failed", "expired"))
        self.assertIsInstance(job["results"], list)
        self.assertIsInstance(job["notifications"], list)
        self.assertIsNone((yield service.get_job("no-such-job")))

    @inlineCallbacks
    def test_list_jobs_pages_in_creation_order(self):
        service, _ = self.make_service()
        yield service.put_device(DEVICE, ACCOUNT)
        ids = []
        for _ in range(5):
            ids.append((yield service.create_job(DEVICE, JOB))["id"])
        first = yield service.list_jobs(DEVICE, 2, None)
        self.assertEqual([j["id"] for j in first], ids[:2])
        rest = yield service.list_jobs(DEVICE, 10, ids[1])
        self.assertEqual([j["id"] for j in rest], ids[2:])
        with self.assertRaises(UnknownDevice):
            yield service.list_jobs("IMEI:1", 10, None)

    @inlineCallbacks
    def test_list_devices_pages_with_the_cursor_it_returns(self):
        service, _ = self.make_service()
        for n in range(1, 6):
            account = dict(ACCOUNT, server_id="a" if n % 2 else "b", msisdn=None if n == 2 else "+4477009000%d" % n)
            yield service.put_device("IMEI:%d" % n, account)
        seen, cursor = [], None
        while True:
            page = yield service.list_devices(DeviceFilter(), 2, cursor)
            self.assertLessEqual(len(page["devices"]), 2)
            seen += [d["device_id"] for d in page["devices"]]
            for device in page["devices"]:
                self.assertIs(device["locked_out"], False)
                self.assertNotIn("cl1ent-s3cret", repr(device))
            cursor = page["next"]
            if cursor is None:
                break
        self.assertEqual(seen, ["IMEI:%d" % n for n in range(1, 6)])
        page = yield service.list_devices(DeviceFilter(server_id="b"), 10, None)
        self.assertEqual([d["device_id"] for d in page["devices"]], ["IMEI:2", "IMEI:4"])
        self.assertIsNone(page["next"])
        page = yield service.list_devices(DeviceFilter(has_msisdn=False), 10, None)
        self.assertEqual([d["device_id"] for d in page["devices"]], ["IMEI:2"])

    @inlineCallbacks
    def test_delete_device_cancels_its_pending_jobs(self):
        service, _ = self.make_service()
        yield service.put_device(DEVICE, ACCOUNT)
        job = yield service.create_job(DEVICE, JOB)
        deleted = yield service.delete_device(DEVICE, False)
        self.assertEqual(deleted, {"device_id": DEVICE, "deleted": True, "jobs_cancelled": [job["id"]],
                                   "history": "kept"})
        self.assertIsNone((yield service.get_device(DEVICE)))
        with self.assertRaises(UnknownDevice):
            yield service.delete_device(DEVICE, True)

    @inlineCallbacks
    def test_cancel_job_once(self):
        service, _ = self.make_service()
        yield service.put_device(DEVICE, ACCOUNT)
        job = yield service.create_job(DEVICE, JOB)
        self.assertEqual((yield service.cancel_job(job["id"])),
                         {"id": job["id"], "state": "failed", "cancelled": True})
        view = yield service.get_job(job["id"])
        self.assertEqual((view["state"], view["error"]["code"]), ("failed", "cancelled"))
        self.assertEqual((yield service.cancel_job(job["id"]))["cancelled"], False)
        with self.assertRaises(UnknownJob):
            yield service.cancel_job("no-such-job")

    @inlineCallbacks
    def test_device_events_newest_first_by_type(self):
        service, _ = self.make_service()
        with self.assertRaises(UnknownDevice):
            yield service.device_events(DEVICE, (), 10, None)
        yield service.put_device(DEVICE, ACCOUNT)
        yield service.put_device("IMEI:2", ACCOUNT)
        yield self.append_event(service, "session", DEVICE)
        yield self.append_event(service, "notification", DEVICE)
        yield self.append_event(service, "session", "IMEI:2")
        yield self.append_event(service, "session", DEVICE)
        events = yield service.device_events(DEVICE, (), 10, None)
        self.assertEqual([e["type"] for e in events], ["session", "notification", "session"])
        self.assertEqual({e["device_id"] for e in events}, {DEVICE})
        self.assertGreater(events[0]["seq"], events[1]["seq"])
        sessions = yield service.device_events(DEVICE, ("session",), 10, None)
        self.assertEqual([e["seq"] for e in sessions], [events[0]["seq"], events[2]["seq"]])
        older = yield service.device_events(DEVICE, ("session", "notification"), 1, events[0]["seq"])
        self.assertEqual([e["seq"] for e in older], [events[1]["seq"]])
        self.assertEqual((yield service.device_events("IMEI:2", ("job",), 10, None)), [])

    @inlineCallbacks
    def test_wait_events_fires_at_once_with_existing_events(self):
        service, _ = self.make_service()
        yield self.append_event(service, "session", DEVICE)
        yield self.append_event(service, "session", DEVICE)
        events = yield service.wait_events(0, 10, 30)
        self.assertEqual([e["type"] for e in events], ["session", "session"])
        self.assertLess(events[0]["seq"], events[1]["seq"])
        later = yield service.wait_events(events[0]["seq"], 10, 0)
        self.assertEqual([e["seq"] for e in later], [events[1]["seq"]])
        limited = yield service.wait_events(0, 1, 0)
        self.assertEqual(len(limited), 1)

    @inlineCallbacks
    def test_wait_events_fires_when_an_event_arrives(self):
        service, clock = self.make_service()
        d = service.wait_events(0, 10, 30)
        yield self.settle()
        self.assertNoResult(d)
        clock.advance(10)
        self.assertNoResult(d)
        yield self.append_event(service, "generic_alert", DEVICE, data="x")
        events = yield d
        self.assertEqual(events[0]["type"], "generic_alert")
        self.assertEqual(events[0]["device_id"], DEVICE)

    @inlineCallbacks
    def test_wait_events_times_out_empty(self):
        service, clock = self.make_service()
        d = service.wait_events(0, 10, 30)
        yield self.settle()
        clock.advance(29.9)
        self.assertNoResult(d)
        clock.advance(0.1)
        self.assertEqual((yield d), [])

    @inlineCallbacks
    def test_wait_events_can_be_cancelled(self):
        service, clock = self.make_service()
        d = service.wait_events(0, 10, 30)
        yield self.settle()
        d.cancel()
        with self.assertRaises(CancelledError):
            yield d
        self.assertEqual(clock.getDelayedCalls(), [])
