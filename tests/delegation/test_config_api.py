"""delegation.ini problems and the body check of POST /api/v1/delegations."""

import pytest

from dmgateway.api.delegations import validate_delegation
from dmgateway.api.validation import ValidationError
from dmgateway.config import check_config, load_config
from tests.interop.test_https import make_certificate

KEY = "00112233445566778899aabbccddeeff"


@pytest.fixture
def conf(tmp_path, monkeypatch):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "api.token").write_text("token\n")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "conf"
    path.mkdir()
    (path / "dmgateway.ini").write_text("[gateway]\n")
    key, cert = make_certificate(str(tmp_path))
    (tmp_path / "good.psk").write_text(KEY + "\n")
    (tmp_path / "short.psk").write_text("0011\n")
    (tmp_path / "nothex.psk").write_text("not hex at all, sorry\n")
    endpoint = "ssl:18444:interface=127.0.0.1:privateKey=%s:certKey=%s" % (key, cert)
    return path, endpoint, cert


def write(conf, text):
    path, endpoint, _cert = conf
    (path / "delegation.ini").write_text(
        "[delegation]\nenabled = true\nendpoint = %s\n%s" % (endpoint, text))
    return check_config(str(path), hostname="n")


def test_psk_config_is_read(conf):
    assert write(conf, "psk_identity = dms-a\npsk_file = good.psk\n"
                       "[peer:dms-b]\nurl = https://127.0.0.1:9/d\npsk_identity = dms-b\n") == []
    cfg = load_config(str(conf[0]), hostname="n").delegation
    assert cfg.uses_psk and cfg.peer("dms-b").psk_identity == "dms-b"


@pytest.mark.parametrize("text,expected", [
    ("psk_identity = dms-a\n", "psk_file: missing required key"),
    ("psk_identity = dms-a\npsk_file = short.psk\n", "must be 16 to 256 bytes"),
    ("psk_identity = dms-a\npsk_file = nothex.psk\n", "must hold the key as hex digits"),
    ("peers = dms-b=https://127.0.0.1:9/d\n", "has no pinned certificate and peer_ca is empty"),
    ("[peer:dms-b]\ncertificate = nowhere.pem\n", "no URL for peer 'dms-b'"),
    ("[peer:dms-b]\nurl = http://127.0.0.1:9/d\ncertificate = %s\n", "https"),
    ("[peer:dms-b]\nurl = https://127.0.0.1:9/d\ncertificat = x\n", "unknown key"),
    ("psk_identity = dms-a\npsk_file = good.psk\n[peer:b1]\nurl = https://h/d\n"
     "psk_identity = same\n[peer:b2]\nurl = https://h/d\npsk_identity = same\n",
     "two peers use the same psk_identity"),
])
def test_bad_delegation_config(conf, text, expected):
    if "%s" in text:
        text = text % (conf[2],)
    found = write(conf, text)
    assert any(expected in line for line in found), found


BASE = {"peer": "dms-b", "devices": ["IMEI:1"], "subtrees": ["./Vendor/X"], "type": "partial",
        "duration": "temporary"}


def test_valid_delegation_body():
    spec = validate_delegation(dict(BASE, until="2031-01-01T00:00:00Z"))
    assert spec["until_epoch"] == 1924992000.0 and spec["subtrees"] == ["./Vendor/X"]
    assert validate_delegation(dict(BASE, type="full", subtrees=["."]))["subtrees"] == ["."]


@pytest.mark.parametrize("change", [
    {"peer": ""}, {"devices": []}, {"devices": ["a", "a"]}, {"devices": "IMEI:1"},
    {"subtrees": ["./a", "./a"]}, {"subtrees": ["../x"]}, {"subtrees": ["."]},
    {"type": "half"}, {"duration": "forever"}, {"until": "tomorrow"},
    {"until": "2031-01-01T00:00:00"}, {"duration": "permanent", "until": "2031-01-01T00:00:00Z"},
    {"extra": 1}, {"devices": ["x" * 300]},
])
def test_bad_delegation_bodies(change):
    with pytest.raises(ValidationError):
        validate_delegation(dict(BASE, **change))
