"""
The inventory routes through the real resource tree (in-memory service):
parameters, answers, refusals.  Every answer is also checked against
docs/openapi.yaml by ApiTestCase.call.
"""

from __future__ import annotations

from dmgateway.store.inventory import DeviceFilter
from tests.api.test_resources import ACCOUNT, DEVICE_PATH, JOB, ApiTestCase
from tests.fixtures import API_DEVICE as DEVICE
from tests.openapi_check import checked


class DeviceListTests(ApiTestCase):
    def put(self, device_id, **changes):
        path = "/api/v1/devices/" + device_id.replace(":", "%3A")
        self.assertEqual(self.call("PUT", path, dict(ACCOUNT, **changes)).status, 201)

    def test_pages_follow_next(self):
        for n in range(1, 6):
            self.put("IMEI:%d" % n)
        seen, target = [], "/api/v1/devices?limit=2"
        while True:
            response = self.call("GET", target)
            self.assertEqual(response.status, 200)
            seen += [d["device_id"] for d in response.json["devices"]]
            if response.json["next"] is None:
                break
            target = "/api/v1/devices?limit=2&cursor=" + response.json["next"]
        self.assertEqual(seen, ["IMEI:%d" % n for n in range(1, 6)])

    def test_filters_reach_the_service(self):
        self.call("GET", "/api/v1/devices?server_id=dms&man=Acme&mod=X1&fwv=1.0&has_msisdn=true"
                         "&locked_out=false&never_seen=no&last_session_after=2026-01-01T00:00:00Z"
                         "&last_session_before=2026-02-01T00:00:00%2B01:00")
        (name, (where, limit, cursor)), = self.service.calls
        self.assertEqual(name, "list_devices")
        self.assertEqual((limit, cursor), (100, None))
        self.assertEqual(where, DeviceFilter(
            server_id="dms", man="Acme", mod="X1", fwv="1.0", has_msisdn=True, locked=False,
            never_seen=False, session_after=1767225600.0, session_before=1769900400.0,
        ))

    def test_bad_parameters_are_400(self):
        for query in ("limit=0", "limit=1001", "limit=x", "has_msisdn=maybe", "locked=true",
                      "last_session_after=yesterday", "man=", "man=" + "x" * 257, "cursor=",
                      "server_id=a&server_id=b"):
            response = self.call("GET", "/api/v1/devices?" + query)
            self.assertError(response, 400, "invalid_parameter")
        self.assertEqual(self.service.calls, [])

    def test_needs_the_token(self):
        self.assertError(self.call("GET", "/api/v1/devices", token=None), 401, "unauthorized")


class DeleteDeviceTests(ApiTestCase):
    def test_delete_keeps_history_by_default(self):
        self.put_device()
        job_id = self.call("POST", f"{DEVICE_PATH}/jobs", JOB).json["id"]
        response = self.call("DELETE", DEVICE_PATH)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json, {"device_id": DEVICE, "deleted": True, "jobs_cancelled": [job_id],
                                         "history": "kept"})
        self.assertEqual(self.service.calls[-1], ("delete_device", (DEVICE, False)))
        self.assertError(self.call("GET", DEVICE_PATH), 404, "unknown_device")

    def test_purge(self):
        self.put_device()
        self.assertEqual(self.call("DELETE", DEVICE_PATH + "?history=purge").json["history"], "purged")

    def test_unknown_device_and_bad_history(self):
        self.assertError(self.call("DELETE", DEVICE_PATH), 404, "unknown_device")
        self.assertError(self.call("DELETE", DEVICE_PATH + "?history=some"), 400, "invalid_parameter")
        self.assertError(self.call("DELETE", DEVICE_PATH + "?purge=1"), 400, "invalid_parameter")


class CancelJobTests(ApiTestCase):
    def test_cancel_then_conflict(self):
        self.put_device()
        job_id = self.call("POST", f"{DEVICE_PATH}/jobs", JOB).json["id"]
        response = self.call("POST", f"/api/v1/jobs/{job_id}/cancel")
        self.assertEqual((response.status, response.json),
                         (200, {"id": job_id, "state": "failed", "cancelled": True}))
        self.assertError(self.call("POST", f"/api/v1/jobs/{job_id}/cancel"), 409, "job_finished")

    def test_at_session_end_is_202(self):
        self.put_device()
        job_id = self.call("POST", f"{DEVICE_PATH}/jobs", JOB).json["id"]
        self.service.cancel_job = lambda job_id: __import__("twisted.internet.defer").internet.defer.succeed(
            {"id": job_id, "state": "running", "cancelled": False, "cancel": "at_session_end"})
        response = self.call("POST", f"/api/v1/jobs/{job_id}/cancel")
        self.assertEqual((response.status, response.json["cancel"]), (202, "at_session_end"))

    def test_unknown_job(self):
        self.assertError(self.call("POST", "/api/v1/jobs/nope/cancel"), 404, "unknown_job")


def test_answers_were_checked_against_the_document():
    # the tests above ran through ApiTestCase.call, which validates each answer
    assert checked["count"] > 0
