"""
The device-function routes: what they answer when the services are absent,
how service errors become API errors, hostile ids and parameters, the CSV
report and the upload size limit.  The services are fakes here; the real
ones answer through the daemon in tests/interop/test_campaign_e2e.py.
"""

from __future__ import annotations

from twisted.internet import defer

from dmgateway.campaigns import CampaignError
from dmgateway.firmware import FirmwareError
from dmgateway.functions import FunctionError
from tests.api.test_resources import DEVICE_PATH, ApiTestCase

CAMPAIGN = "c" * 32
VIEW = {"id": CAMPAIGN, "function": "lawmo", "action": "fully_lock", "state": "running", "wave": 1, "waves": 1,
        "total": 2, "progress": {"by_state": {"waiting": 2}, "by_result": {}, "by_wave": {}}}


class FakeCampaigns:
    def __init__(self):
        self.calls = []
        self.error = None

    async def create(self, body):
        self.calls.append(("create", body))
        if self.error:
            raise self.error
        return VIEW

    async def get(self, campaign_id):
        return VIEW if campaign_id == CAMPAIGN else None

    async def list(self):
        return [VIEW]

    async def change(self, campaign_id, action):
        self.calls.append((action, campaign_id))
        if self.error:
            raise self.error
        return VIEW

    async def report(self, campaign_id, fmt):
        if campaign_id != CAMPAIGN:
            return None
        if fmt == "csv":
            return "device_id,wave,state\r\nIMEI:1,0,waiting\r\n"
        return {"campaign": VIEW, "devices": [{"device_id": "IMEI:1", "state": "waiting"}]}


class FakeFirmware:
    def __init__(self):
        self.uploads = []

    async def register(self, meta, upload=None):
        if upload is not None:
            upload.seek(0)
            self.uploads.append((meta, upload.read()))
        if meta.get("name") == "bad":
            raise FirmwareError("nope", "checksum_mismatch")
        return {"id": "f" * 32, "name": meta.get("name"), "version": meta.get("version"), "uploaded": upload is not None}

    async def list(self):
        return []

    async def get(self, firmware_id):
        return None


class FakeFunctions:
    def __init__(self):
        self.campaigns = FakeCampaigns()
        self.firmware = FakeFirmware()

    async def start_operation(self, device_id, body):
        raise FunctionError("function must be one of fumo, scomo, lawmo")

    def get_operation(self, op_id):
        return defer.succeed(None)


class AbsentTests(ApiTestCase):
    def test_without_device_functions_every_route_is_503(self):
        for method, path, body in (("GET", "/api/v1/campaigns", None), ("POST", "/api/v1/campaigns", {}),
                                   ("GET", "/api/v1/firmware", None), ("GET", "/api/v1/operations/" + "a" * 32, None),
                                   ("POST", DEVICE_PATH + "/operations", {"function": "lawmo"})):
            self.assertError(self.call(method, path, body), 503, "service_unavailable")


class RouteTests(ApiTestCase):
    def setUp(self):
        super().setUp()
        self.service.functions = FakeFunctions()

    def test_campaign_routes(self):
        response = self.call("POST", "/api/v1/campaigns", {"function": "lawmo"})
        self.assertEqual((response.status, response.header("location")), (201, "/api/v1/campaigns/" + CAMPAIGN))
        self.assertEqual(self.call("GET", "/api/v1/campaigns/" + CAMPAIGN).json["state"], "running")
        self.assertEqual(self.call("POST", "/api/v1/campaigns/%s/pause" % (CAMPAIGN,), {}).status, 200)
        self.assertEqual(self.service.functions.campaigns.calls[-1], ("pause", CAMPAIGN))
        self.assertError(self.call("GET", "/api/v1/campaigns/" + "d" * 32), 404, "not_found")
        for bad in ("../x", "C" * 32, "c" * 31, "%00" * 8):
            self.assertError(self.call("GET", "/api/v1/campaigns/" + bad), 404, "not_found")

    def test_service_errors_become_api_errors(self):
        campaigns = self.service.functions.campaigns
        campaigns.error = CampaignError("a done campaign cannot resume", "invalid_state", 409)
        self.assertError(self.call("POST", "/api/v1/campaigns/%s/resume" % (CAMPAIGN,), {}), 409, "invalid_state")
        campaigns.error = CampaignError("'waves' must increase")
        self.assertError(self.call("POST", "/api/v1/campaigns", {}), 400, "invalid_campaign")
        self.assertError(self.call("POST", DEVICE_PATH + "/operations", {"function": "x"}), 400, "invalid_operation")
        self.assertError(self.call("POST", "/api/v1/campaigns", raw=b"{nope"), 400, "bad_json")
        self.assertError(self.call("POST", "/api/v1/campaigns", {}, headers={"Content-Type": "text/plain"}),
                         415, "unsupported_media_type")

    def test_report_json_and_csv(self):
        self.assertEqual(self.call("GET", "/api/v1/campaigns/%s/report" % (CAMPAIGN,)).json["devices"][0]["state"],
                         "waiting")
        response = self.open("GET", "/api/v1/campaigns/%s/report?format=csv" % (CAMPAIGN,)).response
        self.assertEqual((response.status, response.header("content-type")), (200, "text/csv; charset=utf-8"))
        self.assertTrue(response.raw.startswith(b"device_id,wave,state"))
        self.assertEqual(response.header("cache-control"), "no-store")  # reports are not kept by caches
        self.assertError(self.call("GET", "/api/v1/campaigns/%s/report?format=xml" % (CAMPAIGN,)), 400,
                         "invalid_parameter")
        self.assertError(self.call("GET", "/api/v1/campaigns/%s/report" % ("d" * 32,)), 404, "not_found")

    def test_firmware_upload_parameters(self):
        headers = {"Content-Type": "application/octet-stream"}
        response = self.call("POST", "/api/v1/firmware?name=fw&version=2.0", raw=b"\x00package", headers=headers)
        self.assertEqual(response.status, 201)
        self.assertEqual(self.service.functions.firmware.uploads, [({"name": "fw", "version": "2.0"}, b"\x00package")])
        self.assertError(self.call("POST", "/api/v1/firmware?name=fw&evil=1", raw=b"x", headers=headers), 400,
                         "invalid_parameter")
        self.assertError(self.call("POST", "/api/v1/firmware?name=bad&version=1", raw=b"x", headers=headers), 400,
                         "checksum_mismatch")

    def test_upload_limit_is_the_package_limit_only_for_firmware(self):
        self.site.upload_limit = 10 * self.max_body
        headers = {"Content-Type": "application/octet-stream"}
        big = b"x" * (2 * self.max_body)
        response = self.call("POST", "/api/v1/firmware?name=fw&version=2", raw=big, headers=headers)
        self.assertEqual(response.status, 201)
        self.assertEqual(self.open("POST", "/api/v1/campaigns", raw=big).response.status, 413)
        self.assertEqual(self.open("POST", "/api/v1/firmware?name=fw&version=2", raw=b"x" * (11 * self.max_body),
                                   headers=headers).response.status, 413)
        # without the token (or with a wrong one) the body is refused at max_body, before it is buffered
        for token in (None, "nope"):
            self.assertEqual(self.open("POST", "/api/v1/firmware?name=fw&version=2", raw=big, headers=headers,
                                       token=token).response.status, 413)
        self.assertEqual(self.call("POST", "/api/v1/firmware?name=fw&version=2", raw=b"x", headers=headers,
                                   token=None).status, 401)
