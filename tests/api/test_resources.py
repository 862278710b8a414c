"""
The REST API v1 resources, driven in memory through a real HTTPChannel.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import http as twisted_http
from twisted.web.resource import Resource
from twisted.web.server import Site

from dmgateway.api.resources import build_root, build_site
from dmgateway.api.service import ServiceUnavailable
from dmgateway.store.model import NotFound
from tests.api.fakes import FakeApiHandlers
from tests.api.inmemory import Connection, Response, raw_request
from tests.fixtures import API_ACCOUNT, API_DEVICE as DEVICE
from tests.openapi_check import check_response

TOKEN = "t0ken-for-tests"
DEVICE_PATH = "/api/v1/devices/IMEI%3A350000000000001"
ACCOUNT = dict(API_ACCOUNT, msisdn="+447700900123",  # the auth type in any case
               server_auth=dict(API_ACCOUNT["server_auth"], type="MD5", nonce="AAECAw=="))
JOB = {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}]}


class _Metrics(Resource):
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"text/plain; version=0.0.4")
        return b"dmgw_up 1\n"


class ApiTestCase(SynchronousTestCase):
    max_body = 4096

    def setUp(self) -> None:
        self.clock = Clock()
        self.service = FakeApiHandlers(self.clock)
        self.site = build_site(
            self.service, TOKEN, metrics_resource=_Metrics(),
            max_body=self.max_body, reactor=self.clock,
        )

    def open(
        self, method: str, path: str, body: Any = None, *,
        token: str | None = TOKEN, headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Connection:
        all_headers = {}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if body is not None or raw is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        data = raw if raw is not None else (
            None if body is None else json.dumps(body).encode("utf-8")
        )
        connection = Connection(self.site)
        connection.send(raw_request(method, path, data, all_headers))
        return connection

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Response:
        response = self.open(method, path, body, **kw).response
        self.assertIsNotNone(response, "no response")
        assert response is not None
        self.assertEqual(response.header("content-type"), "application/json; charset=utf-8")
        if method != "HEAD":
            check_response(method, path, response.status, response.header("content-type"), response.raw,
                           {k: v[0] for k, v in response.headers.items()})
        return response

    def assertError(self, response: Response, status: int, code: str) -> dict[str, Any]:
        self.assertEqual((response.status, response.error_code), (status, code), response.raw)
        self.assertEqual(set(response.json), {"error"})
        self.assertIsInstance(response.json["error"]["message"], str)
        return response.json["error"]

    def put_device(self) -> None:
        self.assertEqual(self.call("PUT", DEVICE_PATH, ACCOUNT).status, 201)


class AuthTests(ApiTestCase):
    def test_missing_token(self):
        response = self.call("GET", DEVICE_PATH, token=None)
        self.assertError(response, 401, "unauthorized")
        self.assertEqual(response.header("www-authenticate"), 'Bearer realm="dmgateway"')
        self.assertEqual(self.service.calls, [])

    def test_wrong_token(self):
        response = self.call("GET", DEVICE_PATH, token="nope")
        self.assertError(response, 401, "unauthorized")
        self.assertIn('error="invalid_token"', response.header("www-authenticate"))

    def test_wrong_scheme(self):
        response = self.call(
            "GET", DEVICE_PATH, token=None, headers={"Authorization": f"Basic {TOKEN}"}
        )
        self.assertError(response, 401, "unauthorized")

    def test_scheme_is_case_insensitive(self):
        response = self.call(
            "GET", DEVICE_PATH, token=None, headers={"Authorization": f"bearer {TOKEN}"}
        )
        self.assertError(response, 404, "unknown_device")

    def test_unknown_path_under_api_needs_token(self):
        self.assertError(self.call("GET", "/api/v1/nothing", token=None), 401, "unauthorized")
        self.assertError(self.call("GET", "/api/v1", token=None), 401, "unauthorized")
        self.assertError(self.call("GET", "/api/v1/nothing"), 404, "not_found")
        self.assertError(self.call("GET", "/api/v1"), 404, "not_found")

    def test_metrics_without_token(self):
        response = self.open("GET", "/metrics", token=None).response
        self.assertEqual((response.status, response.raw), (200, b"dmgw_up 1\n"))

    def test_empty_token_refused(self):
        self.assertRaises(ValueError, build_site, self.service, " \n")


class PathTests(ApiTestCase):
    def test_unknown_paths(self):
        for path in ("/", "/api", "/other", "/api/v2/devices/x",
                     "/api/v1/devices/", "/api/v1/jobs", f"{DEVICE_PATH}/other",
                     f"{DEVICE_PATH}/jobs/x", "/api/v1/jobs/job-1/x", "/api/v1/events/x"):
            self.assertError(self.call("GET", path, token=TOKEN), 404, "not_found")

    def test_bootstrap_is_post_only(self):
        response = self.call("GET", f"{DEVICE_PATH}/bootstrap")
        self.assertError(response, 405, "method_not_allowed")
        self.assertEqual(response.header("allow"), "POST")
        self.assertError(self.call("POST", f"{DEVICE_PATH}/bootstrap/x"), 404, "not_found")

    def test_method_not_allowed(self):
        cases = [
            ("PATCH", DEVICE_PATH, "DELETE, GET, PUT, HEAD"),
            ("POST", DEVICE_PATH, "DELETE, GET, PUT, HEAD"),
            ("POST", "/api/v1/devices", "GET, HEAD"),
            ("GET", "/api/v1/jobs/job-1/cancel", "POST"),
            ("PUT", f"{DEVICE_PATH}/jobs", "GET, POST, HEAD"),
            ("PUT", "/api/v1/jobs/job-1", "GET, HEAD"),
            ("POST", "/api/v1/events", "GET, HEAD"),
        ]
        for method, path, allow in cases:
            response = self.call(method, path)
            self.assertError(response, 405, "method_not_allowed")
            self.assertEqual(response.header("allow"), allow)

    def test_head_answers_like_get_without_body(self):
        self.put_device()
        connection = self.open("HEAD", DEVICE_PATH)
        data = connection.transport.value()
        self.assertTrue(data.startswith(b"HTTP/1.1 200 "))
        self.assertTrue(data.endswith(b"\r\n\r\n"))

    def test_device_id_is_percent_decoded(self):
        self.put_device()
        self.assertEqual(self.service.calls[0][1][0], DEVICE)
        self.assertEqual(self.call("GET", "/api/v1/devices/IMEI:350000000000001").status, 200)

    def test_invalid_device_ids(self):
        for segment in ("IMEI%20350", "IMEI%3A%C3%A9", "x" * 129, "IMEI%09x", "%00"):
            response = self.call("GET", f"/api/v1/devices/{segment}")
            self.assertError(response, 400, "invalid_device_id")
            response = self.call("POST", f"/api/v1/devices/{segment}/jobs", JOB)
            self.assertError(response, 400, "invalid_device_id")
        self.assertEqual(self.service.calls, [])

    def test_longest_device_id(self):
        response = self.call("PUT", "/api/v1/devices/" + "x" * 128, ACCOUNT)
        self.assertEqual(response.status, 201)


class DeviceTests(ApiTestCase):
    def test_put_creates_then_updates(self):
        response = self.call("PUT", DEVICE_PATH, ACCOUNT)
        self.assertEqual(response.status, 201)
        self.assertEqual(response.json, {"device_id": DEVICE, "created": True})
        self.assertEqual(response.header("location"), DEVICE_PATH)
        response = self.call("PUT", DEVICE_PATH, ACCOUNT)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json, {"device_id": DEVICE, "created": False})
        self.assertIsNone(response.header("location"))

    def test_put_passes_the_validated_account(self):
        self.put_device()
        name, (device_id, account) = self.service.calls[0]
        self.assertEqual((name, device_id), ("put_device", DEVICE))
        self.assertEqual(account["server_auth"]["type"], "md5")
        self.assertEqual(account["sip_uri"], None)
        self.assertNotIn("nonce", account["client_auth"])

    def test_get(self):
        self.put_device()
        response = self.call("GET", DEVICE_PATH)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json["server_auth"], {
            "type": "md5", "name": "dms.example.com", "nonce": "AAECAw==",
        })
        self.assertNotIn(b"s3cret", response.raw)

    def test_get_unknown(self):
        self.assertError(self.call("GET", DEVICE_PATH), 404, "unknown_device")

    def test_invalid_account(self):
        bad = dict(ACCOUNT, msisdn="+44 7700")
        error = self.assertError(self.call("PUT", DEVICE_PATH, bad), 400, "invalid_device")
        self.assertIn("msisdn", error["message"])
        bad = dict(ACCOUNT, client_auth={"type": "md5", "name": "x"})
        error = self.assertError(self.call("PUT", DEVICE_PATH, bad), 400, "invalid_device")
        self.assertEqual(error["message"], "client_auth.secret is required for type md5")
        self.assertError(self.call("PUT", DEVICE_PATH, [1]), 400, "invalid_device")
        self.assertEqual(self.service.calls, [])

    def test_bad_json(self):
        for raw in (b"{", b"{\"a\": NaN}", b"\xff\xfe", b"[" * 4000, b""):
            response = self.call("PUT", DEVICE_PATH, raw=raw)
            self.assertError(response, 400, "bad_json")

    def test_content_type(self):
        for ctype in ("text/plain", "application/x-www-form-urlencoded",
                      "application/json; charset=latin-1", None):
            headers = {"Content-Type": ctype} if ctype else {}
            connection = Connection(self.site)
            connection.send(raw_request(
                "PUT", DEVICE_PATH, json.dumps(ACCOUNT).encode(),
                {"Authorization": f"Bearer {TOKEN}", **headers},
            ))
            self.assertError(connection.response, 415, "unsupported_media_type")
        response = self.call(
            "PUT", DEVICE_PATH, ACCOUNT,
            headers={"Content-Type": "Application/JSON; charset=UTF-8"},
        )
        self.assertEqual(response.status, 201)

    def test_form_bodies_are_not_parsed(self):
        # JSON only: twisted.web must not run each POST's Content-Type
        # through its form parser, nor put a url-encoded body in args.
        parsed = []
        self.patch(twisted_http, "_parseContentType", lambda line: parsed.append(line) or b"")
        connection = Connection(self.site)
        connection.send(raw_request(
            "POST", f"{DEVICE_PATH}/jobs", b"limit=1",
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-www-form-urlencoded"},
        ))
        self.assertError(connection.response, 415, "unsupported_media_type")
        self.assertEqual(parsed, [])


class BodySizeTests(ApiTestCase):
    max_body = 2048

    def test_refused_by_content_length_before_reading(self):
        connection = Connection(self.site)
        connection.send(raw_request(
            "PUT", DEVICE_PATH, None,
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
             "Content-Length": "2049", "Expect": "100-continue"},
        ))
        self.assertError(connection.response, 413, "payload_too_large")
        self.assertTrue(connection.transport.disconnecting)
        self.assertNotIn(b"100 Continue", connection.transport.value())
        connection.send(b"x" * 2049)
        self.assertEqual(self.service.calls, [])

    def test_refused_while_reading_a_chunked_body(self):
        connection = Connection(self.site)
        connection.send(raw_request(
            "PUT", DEVICE_PATH, None,
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
             "Transfer-Encoding": "chunked"},
        ))
        connection.send(b"400\r\n" + b" " * 1024 + b"\r\n")
        self.assertIsNone(connection.response)
        connection.send(b"400\r\n" + b" " * 1024 + b"\r\n")
        self.assertIsNone(connection.response)
        connection.send(b"1\r\n \r\n")
        self.assertError(connection.response, 413, "payload_too_large")
        self.assertTrue(connection.transport.disconnecting)
        connection.send(b"0\r\n\r\n")
        self.assertEqual(self.service.calls, [])

    def test_limit_also_holds_on_a_plain_site(self):
        site = Site(build_root(self.service, TOKEN, max_body=self.max_body), reactor=self.clock)
        connection = Connection(site)
        connection.send(raw_request(
            "PUT", DEVICE_PATH, b" " * 2049,
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        ))
        self.assertError(connection.response, 413, "payload_too_large")
        self.assertEqual(self.service.calls, [])

    def test_body_of_max_size_accepted(self):
        body = json.dumps(ACCOUNT).encode()
        body += b" " * (self.max_body - len(body))
        self.assertEqual(self.call("PUT", DEVICE_PATH, raw=body).status, 201)

    def test_chunked_body_accepted(self):
        body = json.dumps(ACCOUNT).encode()
        connection = Connection(self.site)
        connection.send(raw_request(
            "PUT", DEVICE_PATH, None,
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
             "Transfer-Encoding": "chunked"},
        ) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        self.assertEqual(connection.response.status, 201)


class JobTests(ApiTestCase):
    def test_create(self):
        self.put_device()
        spec = {
            "commands": [
                {"op": "replace", "target": "./DevDetail/Ext/Conf", "data": "aGk=",
                 "format": "b64", "type": "application/octet-stream"},
                {"op": "Alert", "alert": 1103, "data": "Pick", "choices": ["a", "b"]},
            ],
            "atomic": True, "notify": "sms", "ui_mode": 3,
        }
        response = self.call("POST", f"{DEVICE_PATH}/jobs", spec)
        self.assertEqual(response.status, 201)
        self.assertEqual(response.json, {"id": "job-1", "state": "queued"})
        self.assertEqual(response.header("location"), "/api/v1/jobs/job-1")
        name, (device_id, passed) = self.service.calls[-1]
        self.assertEqual((name, device_id), ("create_job", DEVICE))
        self.assertEqual(passed["commands"][0]["op"], "Replace")
        self.assertEqual((passed["atomic"], passed["notify"], passed["ui_mode"]),
                         (True, "sms", 3))

    def test_create_defaults(self):
        self.put_device()
        self.call("POST", f"{DEVICE_PATH}/jobs", JOB)
        passed = self.service.calls[-1][1][1]
        self.assertEqual((passed["atomic"], passed["notify"], passed["ui_mode"]),
                         (False, "auto", 0))

    def test_create_for_unknown_device(self):
        response = self.call("POST", f"{DEVICE_PATH}/jobs", JOB)
        error = self.assertError(response, 404, "unknown_device")
        self.assertEqual(error["message"], f"no device {DEVICE!r}")

    def test_unknown_op(self):
        self.put_device()
        body = {"commands": [{"op": "Sync", "target": "./A"}]}
        error = self.assertError(self.call("POST", f"{DEVICE_PATH}/jobs", body), 400, "unknown_op")
        self.assertIn("commands[0].op", error["message"])

    def test_invalid_jobs(self):
        self.put_device()
        cases = [
            ({"commands": []}, "commands must be a non-empty list"),
            ({"commands": [{"op": "Get", "target": "./A/../B"}]}, "commands[0].target"),
            ({"commands": [{"op": "Get", "target": "./A"}], "atomic": True},
             "commands[0]: Get is not allowed inside an atomic job"),
            ({"commands": [{"op": "Add", "target": "./A"}, {"op": "Exec", "target": "./B"}],
              "atomic": True}, "commands[1]: Exec is not allowed inside an atomic job"),
            ({"commands": [{"op": "Copy", "target": "./A"}]},
             "commands[0].source is required for Copy"),
            ({"commands": [{"op": "Alert", "alert": 1104}]},
             "commands[0].choices must be a non-empty list for alert 1104"),
            ({"commands": JOB["commands"], "ui_mode": 4}, "ui_mode must be an integer from 0 to 3"),
            ({"commands": JOB["commands"], "notify": "mms"}, "notify must be one of"),
        ]
        for body, message in cases:
            response = self.call("POST", f"{DEVICE_PATH}/jobs", body)
            error = self.assertError(response, 400, "invalid_job")
            self.assertIn(message, error["message"])
        self.assertEqual([c[0] for c in self.service.calls], ["put_device"])

    def test_too_many_commands(self):
        self.put_device()
        body = {"commands": [{"op": "Get", "target": "./A"}] * 101}
        error = self.assertError(self.call("POST", f"{DEVICE_PATH}/jobs", body), 400, "invalid_job")
        self.assertEqual(error["message"], "commands has more than 100 entries")

    def test_get(self):
        self.put_device()
        self.call("POST", f"{DEVICE_PATH}/jobs", JOB)
        response = self.call("GET", "/api/v1/jobs/job-1")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json, {
            "id": "job-1", "device_id": DEVICE, "state": "queued",
            "results": [], "notifications": [],
        })

    def test_get_unknown(self):
        self.assertError(self.call("GET", "/api/v1/jobs/job-9"), 404, "unknown_job")
        self.assertError(self.call("GET", "/api/v1/jobs/a%20b"), 404, "unknown_job")
        self.assertEqual(self.service.calls, [("get_job", ("job-9",))])

    def test_paging(self):
        self.put_device()
        for _ in range(5):
            self.call("POST", f"{DEVICE_PATH}/jobs", JOB)
        pages = []
        after = None
        while True:
            query = "?limit=2" + (f"&after={after}" if after else "")
            response = self.call("GET", f"{DEVICE_PATH}/jobs{query}")
            self.assertEqual(response.status, 200)
            pages.append([job["id"] for job in response.json["jobs"]])
            after = response.json["next"]
            if after is None:
                break
        self.assertEqual(pages, [["job-1", "job-2"], ["job-3", "job-4"], ["job-5"]])
        response = self.call("GET", f"{DEVICE_PATH}/jobs")
        self.assertEqual(len(response.json["jobs"]), 5)
        self.assertIsNone(response.json["next"])
        self.assertEqual(self.service.calls[-1], ("list_jobs", (DEVICE, 51, None)))

    def test_paging_exact_page_has_no_next(self):
        self.put_device()
        for _ in range(2):
            self.call("POST", f"{DEVICE_PATH}/jobs", JOB)
        response = self.call("GET", f"{DEVICE_PATH}/jobs?limit=2")
        self.assertEqual(response.json["next"], None)

    def test_paging_parameters(self):
        self.put_device()
        for query in ("limit=0", "limit=501", "limit=x", "limit=-1", "limit=1&limit=2",
                      "after=a%20b"):
            response = self.call("GET", f"{DEVICE_PATH}/jobs?{query}")
            self.assertError(response, 400, "invalid_parameter")

    def test_paging_after_an_unknown_job(self):
        # The gateway's service fails with the store's NotFound when
        # "after" names no job (a stale or mistyped cursor): a client
        # error, not a 500.
        self.put_device()
        self.service.failure = NotFound("no job 'job-9' to page after")
        response = self.call("GET", f"{DEVICE_PATH}/jobs?after=job-9")
        error = self.assertError(response, 400, "invalid_parameter")
        self.assertEqual(error["message"], "after: no job 'job-9'")

    def test_list_for_unknown_device(self):
        error = self.assertError(self.call("GET", f"{DEVICE_PATH}/jobs"), 404, "unknown_device")
        self.assertEqual(error["message"], f"no device {DEVICE!r}")


class EventTests(ApiTestCase):
    def test_existing_events_at_once(self):
        self.service.append_event("session", DEVICE)
        self.service.append_event("generic_alert", DEVICE, data="ok")
        response = self.call("GET", "/api/v1/events?after=1&wait=30")
        self.assertEqual(response.status, 200)
        self.assertEqual([e["seq"] for e in response.json["events"]], [2])
        self.assertEqual(response.json["events"][0]["data"], "ok")

    def test_defaults(self):
        response = self.call("GET", "/api/v1/events")
        self.assertEqual(response.json, {"events": []})
        self.assertEqual(self.service.calls, [("wait_events", (0, 100, 0.0))])

    def test_long_poll_fires_on_event(self):
        connection = self.open("GET", "/api/v1/events?after=0&wait=30&limit=5")
        self.clock.advance(10)
        self.assertIsNone(connection.response)
        self.service.append_event("notification", DEVICE, state="delivered")
        response = connection.response
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json["events"][0]["type"], "notification")

    def test_long_poll_times_out_empty(self):
        connection = self.open("GET", "/api/v1/events?wait=2.5")
        self.clock.advance(2.4)
        self.assertIsNone(connection.response)
        self.clock.advance(0.1)
        self.assertEqual(connection.response.json, {"events": []})

    def test_after_accepts_the_largest_sequence_number(self):
        # the message says 0 to 2**63 - 1: all of that range must be accepted
        response = self.call("GET", "/api/v1/events?after=9223372036854775807")
        self.assertEqual(response.status, 200)
        self.assertEqual(self.service.calls, [("wait_events", (2**63 - 1, 100, 0.0))])
        error = self.assertError(
            self.call("GET", "/api/v1/events?after=9223372036854775808"), 400, "invalid_parameter")
        self.assertIn("9223372036854775807", error["message"])

    def test_wait_is_capped(self):
        self.open("GET", "/api/v1/events?wait=3600")
        self.assertEqual(self.service.calls, [("wait_events", (0, 100, 60.0))])

    def test_disconnect_cancels_the_wait(self):
        connection = self.open("GET", "/api/v1/events?wait=30")
        self.assertEqual(len(self.service.waiters), 1)
        connection.disconnect()
        self.assertEqual(self.service.waiters, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.service.append_event("session", DEVICE)
        self.assertEqual(connection.transport.value(), b"")

    def test_invalid_parameters(self):
        for query in ("after=-1", "after=x", "wait=-1", "wait=1e3", "limit=0",
                      "limit=1001", "after=1&after=2"):
            response = self.call("GET", f"/api/v1/events?{query}")
            self.assertError(response, 400, "invalid_parameter")


class XmlIllegalTextTests(ApiTestCase):
    """Text no SyncML message can carry is refused where it enters (issue 10)."""

    def test_lone_surrogate_in_job_data_is_400(self):
        self.put_device()
        body = {"commands": [{"op": "Replace", "target": "./A", "data": "x\ud800y"}], "notify": "none"}
        response = self.call("POST", f"{DEVICE_PATH}/jobs", body)  # sent as the escape \ud800
        error = self.assertError(response, 400, "bad_json")
        self.assertIn("U+D800", error["message"])
        self.assertIn("/commands/0/data", error["message"])
        self.assertNotIn("create_job", [name for name, _args in self.service.calls])

    def test_controls_in_device_fields_are_400(self):
        for char in ("\x00", "\x01", "\x1f", "\udfff", "\uffff"):
            body = dict(ACCOUNT, msisdn="+44" + char)
            self.assertError(self.call("PUT", DEVICE_PATH, body), 400, "bad_json")
        self.assertNotIn("put_device", [name for name, _args in self.service.calls])

    def test_tab_newline_and_a_surrogate_pair_pass(self):
        self.put_device()
        body = {"commands": [{"op": "Alert", "alert": 1100, "data": "a\tb\r\nc \U0001F600"}], "notify": "none"}
        self.assertEqual(self.call("POST", f"{DEVICE_PATH}/jobs", body).status, 201)


class ServiceErrorTests(ApiTestCase):
    def test_unavailable(self):
        self.service.failure = ServiceUnavailable("store is down")
        error = self.assertError(self.call("GET", DEVICE_PATH), 503, "service_unavailable")
        self.assertEqual(error["message"], "store is down")

    def test_store_outage_is_503_with_retry_after_and_no_traceback(self):
        from dmgateway.store.model import StoreUnavailable

        self.service.failure = StoreUnavailable("OperationalError: database or disk is full")
        for _ in range(3):
            response = self.call("GET", DEVICE_PATH)
            self.assertError(response, 503, "store_unavailable")
            self.assertEqual(response.header("retry-after"), "5")
            self.assertNotIn(b"disk", response.raw)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_store_contention_is_503_without_an_outage(self):
        # (a PostgreSQL transaction that lost to concurrent ones every time
        # the store ran it: the database works, no outage is noted)
        from dmgateway.store.model import StoreContention

        noted = []
        self.service.store_failed = noted.append
        self.service.failure = StoreContention("DeadlockDetected: deadlock detected", "40P01")
        response = self.call("POST", f"{DEVICE_PATH}/jobs", JOB)
        error = self.assertError(response, 503, "store_unavailable")
        self.assertEqual(error["message"], "the store is busy with concurrent changes; try again")
        self.assertEqual(response.header("retry-after"), "1")
        self.assertEqual((noted, self.flushLoggedErrors()), ([], []))

    def test_a_store_closed_under_a_request_is_503(self):
        # (a request in flight when the gateway stops: not an internal error)
        from dmgateway.store.model import StoreClosed

        self.service.failure = StoreClosed("the store is closed")
        response = self.call("DELETE", DEVICE_PATH)
        error = self.assertError(response, 503, "service_unavailable")
        self.assertEqual(error["message"], "the gateway is stopping; try again")
        self.assertEqual(response.header("retry-after"), "5")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_clear_lockouts(self):
        self.put_device()
        response = self.call("DELETE", f"{DEVICE_PATH}/lockouts")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json, {"device_id": "IMEI:350000000000001", "cleared": 0})
        self.assertError(self.call("DELETE", "/api/v1/devices/IMEI%3A1/lockouts"), 404, "unknown_device")
        self.assertError(self.call("GET", f"{DEVICE_PATH}/lockouts"), 405, "method_not_allowed")

    def test_unexpected_error_is_500_json(self):
        self.service.failure = RuntimeError("boom at line 3")
        response = self.call("POST", f"{DEVICE_PATH}/jobs", JOB)
        error = self.assertError(response, 500, "internal_error")
        self.assertEqual(error["message"], "internal error")
        self.assertNotIn(b"Traceback", response.raw)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_unserialisable_representation_is_500(self):
        self.put_device()
        self.service.devices[DEVICE]["server_id"] = object()
        self.assertError(self.call("GET", DEVICE_PATH), 500, "internal_error")
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)


class LoggingTests(ApiTestCase):
    def test_one_event_per_request(self):
        with capturedLogs() as events:
            connection = self.open("GET", "/api/v1/events?wait=5")
            self.clock.advance(5)
            self.assertEqual(connection.response.status, 200)
        logged = [e for e in events if e.get("status") is not None]
        self.assertEqual(len(logged), 1)
        event = logged[0]
        self.assertEqual((event["method"], event["path"], event["status"], event["duration"]),
                         ("GET", "/api/v1/events", 200, 5.0))
        self.assertEqual(event["client"], "127.0.0.1")

    def test_no_token_or_secret_logged(self):
        with capturedLogs() as events:
            self.call("PUT", DEVICE_PATH, ACCOUNT)
            self.call("GET", DEVICE_PATH, token="wrong-token")
            self.open("PUT", DEVICE_PATH, raw=b"x" * 5000)
        self.assertEqual(len(events), 3)
        text = repr(events)
        for secret in (TOKEN, "wrong-token", "cl1ent-s3cret", "s3rver-s3cret"):
            self.assertNotIn(secret, text)
        self.assertEqual([e["status"] for e in events], [201, 401, 413])

    def test_disconnect_is_logged(self):
        with capturedLogs() as events:
            self.open("GET", "/api/v1/events?wait=5").disconnect()
        self.assertEqual(len(events), 1)
        self.assertIn("client went away", events[0]["outcome"])


class ConnectionLimitTests(ApiTestCase):
    """The API listener is reachable without a token (/healthz, /metrics, the
    401): slow requests and piled-up connections are bounded as on DM-2."""

    def connect(self, host: str = "127.0.0.2", port: int = 40000):
        from twisted.internet.address import IPv4Address
        from twisted.internet.testing import StringTransport

        address = IPv4Address("TCP", host, port)
        protocol = self.site.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        return protocol, transport

    def test_a_request_trickled_byte_by_byte_is_cut_at_the_deadline(self) -> None:
        from dmgateway.api.resources import API_READ_TIMEOUT

        protocol, transport = self.connect()
        request = b"GET /metrics HTTP/1.1\r\nHost: gw\r\n"
        for i in range(API_READ_TIMEOUT // 20 + 1):
            protocol.dataReceived(request[i:i + 1])
            self.clock.advance(20)  # each byte would reset an idle timer
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "), transport.value())
        self.assertTrue(transport.disconnecting)

    def test_one_address_holds_a_bounded_number_of_connections(self) -> None:
        from dmgateway.api.resources import API_MAX_CONNECTIONS_PER_PEER

        held = [self.connect(port=40000 + i) for i in range(API_MAX_CONNECTIONS_PER_PEER)]
        self.assertFalse(any(transport.disconnecting for _p, transport in held))
        _protocol, refused = self.connect(port=50000)
        self.assertTrue(refused.value().startswith(b"HTTP/1.1 503 "), refused.value())
        self.assertTrue(refused.disconnecting)
        _protocol, other = self.connect(host="127.0.0.1")
        self.assertFalse(other.disconnecting)

    def test_a_long_poll_is_not_cut_by_the_read_deadline(self) -> None:
        from dmgateway.api.resources import API_READ_TIMEOUT

        protocol, transport = self.connect()
        protocol.dataReceived(b"GET /api/v1/events?after=0&wait=60 HTTP/1.1\r\nHost: gw\r\n"
                              b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
        self.clock.advance(API_READ_TIMEOUT + 1)
        self.assertFalse(transport.disconnecting)
        self.assertNotIn(b" 408 ", transport.value())
