"""
The inventory routes through the real resource tree (in-memory service):
parameters, answers, refusals.  Every answer is also checked against
docs/openapi.yaml by ApiTestCase.call.
"""

from __future__ import annotations

import os
from urllib.parse import quote

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.api.resources import build_site
from dmgateway.client import ClientSession
from dmgateway.store import StoreUnavailable
from dmgateway.store.inventory import DeviceFilter
from tests.api.test_resources import ACCOUNT, DEVICE_PATH, JOB, TOKEN, ApiTestCase
from tests.fixtures import ACCOUNT as SESSION_ACCOUNT
from tests.fixtures import API_DEVICE as DEVICE
from tests.fixtures import DEVICE as SESSION_DEVICE
from tests.openapi_check import checked
from tests.support import start_dispatcher
from tests.test_dispatch import account


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


class CancelInASessionTests(TestCase):
    """``POST /api/v1/jobs/{id}/cancel`` over the real handlers, dispatcher
    and store (SQLite, inline), for a device in a DM session."""

    timeout = 60
    call = ApiTestCase.call
    open = ApiTestCase.open
    assertError = ApiTestCase.assertError

    @defer.inlineCallbacks
    def setUp(self):
        yield start_dispatcher(self, SESSION_DEVICE, SESSION_ACCOUNT)
        self.site = build_site(self.handlers, TOKEN, reactor=self.clock)

    async def test_a_store_failure_after_the_drop_is_503_and_the_retry_200(self):
        path = "/api/v1/devices/%s/jobs" % quote(SESSION_DEVICE, safe="")
        sent = self.call("POST", path, dict(JOB, notify="none")).json["id"]
        session = ClientSession(account(), random_bytes=os.urandom)
        reply = await self.dispatcher.handle_dm(session.start().body, encoding="xml")  # sends it
        held = self.call("POST", path, dict(JOB, notify="none")).json["id"]  # joins the session
        live = self.dispatcher._by_device[SESSION_DEVICE]
        self.assertEqual(live.engine.waiting_jobs(), [held])
        real = self.store.cancel_job
        self.patch(self.store, "cancel_job", lambda job_id: defer.fail(StoreUnavailable("disk I/O error")))
        self.assertError(self.call("POST", f"/api/v1/jobs/{held}/cancel"), 503, "store_unavailable")
        self.patch(self.store, "cancel_job", real)
        self.assertEqual(live.engine.waiting_jobs(), [])  # dropped: the session never sends it
        # (before: 202 at_session_end, the job cancelled when the session ended)
        response = self.call("POST", f"/api/v1/jobs/{held}/cancel")
        self.assertEqual((response.status, response.json), (200, {"id": held, "state": "failed", "cancelled": True}))
        request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        while request is not None:
            token = request.url.split("?s=", 1)[1]
            reply = await self.dispatcher.handle_dm(request.body, encoding="xml", token=token)
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
        self.assertEqual(session.outcome, "completed", session.log)
        self.assertEqual([uri for _cmd, uri, _status in session.executed], ["./DevDetail/SwV"])
        states = [self.call("GET", f"/api/v1/jobs/{job_id}").json for job_id in (sent, held)]
        self.assertEqual([(job["state"], job.get("error", {}).get("code")) for job in states],
                         [("done", None), ("failed", "cancelled")])

    async def test_a_job_sent_is_202_with_its_state(self):
        path = "/api/v1/devices/%s/jobs" % quote(SESSION_DEVICE, safe="")
        sent = self.call("POST", path, dict(JOB, notify="none")).json["id"]
        await self.dispatcher.handle_dm(ClientSession(account(), random_bytes=os.urandom).start().body,
                                        encoding="xml")
        response = self.call("POST", f"/api/v1/jobs/{sent}/cancel")
        self.assertEqual((response.status, response.json),
                         (202, {"id": sent, "state": "running", "cancelled": False, "cancel": "at_session_end"}))
