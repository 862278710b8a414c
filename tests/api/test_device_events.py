"""GET /api/v1/devices/{device_id}/events: one device's events, newest first,
by type, paged with before; refusals are 400/404, never 5xx."""

from __future__ import annotations

from tests.api.test_resources import DEVICE_PATH, ApiTestCase
from tests.fixtures import API_DEVICE as DEVICE

EVENTS = DEVICE_PATH + "/events"


class DeviceEventsTests(ApiTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.put_device()
        self.service.append_event("session", DEVICE, outcome="completed")
        self.service.append_event("notification", DEVICE, bearer="sms", state="delivered")
        self.service.append_event("session", "IMEI:other", outcome="completed")
        self.service.append_event("session", DEVICE, outcome="auth_failed")

    def test_newest_first(self):
        response = self.call("GET", EVENTS)
        self.assertEqual(response.status, 200)
        events = response.json["events"]
        self.assertEqual([e["type"] for e in events], ["session", "notification", "session"])
        self.assertEqual([e.get("outcome") for e in events], ["auth_failed", None, "completed"])
        self.assertEqual({e["device_id"] for e in events}, {DEVICE})

    def test_types_limit_and_before(self):
        sessions = self.call("GET", EVENTS + "?type=session").json["events"]
        self.assertEqual([e["outcome"] for e in sessions], ["auth_failed", "completed"])
        both = self.call("GET", EVENTS + "?type=session,notification&limit=1").json["events"]
        self.assertEqual([e["outcome"] for e in both], ["auth_failed"])
        older = self.call("GET", EVENTS + "?type=session,notification&before=%d" % both[0]["seq"]).json["events"]
        self.assertEqual([e["type"] for e in older], ["notification", "session"])
        self.assertEqual(self.call("GET", EVENTS + "?type=lockout").json["events"], [])
        self.assertEqual(self.service.calls[-1], ("device_events", (DEVICE, ("lockout",), 20, None)))

    def test_refusals(self):
        for query, code in (
            ("?type=Session", "invalid_parameter"), ("?type=", "invalid_parameter"),
            ("?type=" + ",".join("t%d" % n for n in range(9)), "invalid_parameter"),
            ("?type=a-b", "invalid_parameter"), ("?limit=0", "invalid_parameter"),
            ("?limit=101", "invalid_parameter"), ("?before=0", "invalid_parameter"),
            ("?before=x", "invalid_parameter"), ("?after=3", "invalid_parameter"),
            ("?limit=1&limit=2", "invalid_parameter"), ("?type=%ff", "invalid_parameter"),
        ):
            response = self.call("GET", EVENTS + query)
            self.assertEqual(response.status, 400, query)
            self.assertError(response, 400, code)
        self.assertError(self.call("GET", "/api/v1/devices/IMEI%3A9/events"), 404, "unknown_device")
        self.assertError(self.call("POST", EVENTS, {}), 405, "method_not_allowed")
        self.assertError(self.call("GET", EVENTS, token=None), 401, "unauthorized")
