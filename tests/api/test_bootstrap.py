"""POST /api/v1/devices/{id}/bootstrap: validation and answers (the in-memory fake service)."""

from __future__ import annotations

import pytest

from dmgateway.api.bootstrap import validate_bootstrap
from dmgateway.api.validation import ValidationError
from tests.api.test_resources import ACCOUNT, DEVICE_PATH, ApiTestCase

PATH = f"{DEVICE_PATH}/bootstrap"


class BootstrapResourceTests(ApiTestCase):
    def test_push_is_accepted(self):
        self.put_device()
        response = self.call("POST", PATH, {"profile": "dm", "sec": "USERPIN", "pin": "0000"})
        self.assertEqual(response.status, 202, response.raw)
        self.assertEqual(response.json["state"], "queued")
        self.assertIsInstance(response.json["id"], int)
        name, (device_id, spec) = self.service.calls[-1]
        self.assertEqual((name, spec["deliver"], spec["pin"]), ("bootstrap", "push", "0000"))

    def test_return(self):
        self.put_device()
        response = self.call("POST", PATH, {"profile": "cp", "sec": "none", "deliver": "return"})
        self.assertEqual(response.status, 200, response.raw)
        self.assertIn("document", response.json)

    def test_unknown_device(self):
        self.assertError(self.call("POST", PATH, {"profile": "cp", "sec": "none"}), 404, "unknown_device")

    def test_refusals_are_400s_and_nothing_is_sent(self):
        self.assertEqual(self.call("PUT", DEVICE_PATH, dict(ACCOUNT, msisdn=None)).status, 201)
        error = self.assertError(self.call("POST", PATH, {"profile": "cp", "sec": "NETWPIN"}), 400, "no_imsi")
        self.assertIn("IMSI", error["message"])
        self.assertError(self.call("POST", PATH, {"profile": "cp", "sec": "USERPIN", "pin": "1234"}),
                         400, "no_msisdn")
        before = len(self.service.calls)
        error = self.assertError(self.call("POST", PATH, {"profile": "cp", "sec": "USERPIN", "pin": "12a4"}),
                                 400, "invalid_bootstrap")
        self.assertIn("pin", error["message"])
        self.assertEqual(len(self.service.calls), before)  # refused before the service saw it

    def test_wrong_media_type_and_bad_json(self):
        self.put_device()
        self.assertError(self.call("POST", PATH, raw=b"{", headers={"Content-Type": "application/json"}),
                         400, "bad_json")


OK = {"profile": "dm", "sec": "USERPIN", "pin": "1234"}


def test_defaults():
    spec = validate_bootstrap(OK)
    assert spec == {"profile": "dm", "sec": "USERPIN", "pin": "1234", "deliver": "push", "name": None,
                    "layout": "dm12", "tnds": False, "account_name": None, "pref_con_ref": None}
    assert validate_bootstrap({"profile": "cp", "sec": "userpinmac", "pin": "12345"})["sec"] == "USERPINMAC"
    cp = validate_bootstrap({"profile": "cp", "sec": "none", "napdef": {"NAPID": "N"}, "proxy": {"PROXY-ID": "P"}})
    assert cp["napdef"] == {"NAPID": "N"} and cp["proxy"] == {"PROXY-ID": "P"}
    dm = validate_bootstrap(dict(OK, connectivity=[{"uri": "./ConnMO/a", "format": "node"},
                                                   {"uri": "./ConnMO/a/Addr", "data": "apn"}]))
    assert dm["connectivity"][1] == {"uri": "./ConnMO/a/Addr", "data": "apn", "format": "chr"}


@pytest.mark.parametrize("body, field", [
    ([], "body"),
    ({"sec": "none"}, "profile"),
    ({"profile": "xx", "sec": "none"}, "profile"),
    ({"profile": "dm"}, "sec"),
    ({"profile": "dm", "sec": "PIN"}, "sec"),
    ({"profile": "dm", "sec": "USERPIN"}, "pin"),
    ({"profile": "dm", "sec": "USERPIN", "pin": 1234}, "pin"),
    ({"profile": "dm", "sec": "USERPIN", "pin": "12 34"}, "pin"),
    ({"profile": "dm", "sec": "USERPIN", "pin": "\u0661\u0662"}, "pin"),
    ({"profile": "dm", "sec": "USERPIN", "pin": "1" * 33}, "pin"),
    ({"profile": "dm", "sec": "USERPINMAC", "pin": "1234"}, "pin"),
    ({"profile": "dm", "sec": "NETWPIN", "pin": "1234"}, "pin"),
    (dict(OK, deliver="mail"), "deliver"),
    (dict(OK, napdef={"NAPID": "N"}), "napdef"),
    ({"profile": "cp", "sec": "none", "tnds": True}, "tnds"),
    ({"profile": "cp", "sec": "none", "napdef": "N"}, "napdef"),
    (dict(OK, tnds="yes"), "tnds"),
    (dict(OK, tnds=True, layout="dm11"), "tnds"),
    (dict(OK, layout="dm13"), "layout"),
    (dict(OK, account_name="a/b"), "account_name"),
    (dict(OK, name="x\x00"), "name"),
    (dict(OK, connectivity=[]), "connectivity"),
    (dict(OK, connectivity=[{"uri": "../x", "data": "a"}]), "connectivity[0].uri"),
    (dict(OK, connectivity=[{"uri": "./C/a", "format": "node", "data": "x"}]), "connectivity[0].data"),
    (dict(OK, connectivity=[{"uri": "./C/a", "format": "bin", "data": "x"}]), "connectivity[0].format"),
    (dict(OK, extra=1), "extra"),
    (dict(OK, max_size=0), "max_size"),
    (dict(OK, max_size=True), "max_size"),
    (dict(OK, max_size="4096"), "max_size"),
])
def test_refused(body, field):
    with pytest.raises(ValidationError) as caught:
        validate_bootstrap(body)
    assert caught.value.code == "invalid_bootstrap"
    assert caught.value.message.startswith(field) or field == "body", caught.value.message
