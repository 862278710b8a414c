"""``dmgw decode`` / ``dmgw encode``: detection, output, one-line errors."""

import glob
import io
import os
import sys
import types

import pytest

from dmgateway import cli
from dmgateway.codec import prov, wbxml, xml

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
DM = sorted(glob.glob(os.path.join(FIXTURES, "dm", "*.xml")))
CP = sorted(glob.glob(os.path.join(FIXTURES, "cp", "*.xml")))


def run(argv, stdin=b""):
    """main(argv) with captured binary stdout/stderr: (status, out, err)."""
    out, err = io.BytesIO(), io.StringIO()
    old = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = types.SimpleNamespace(buffer=io.BytesIO(stdin))
    sys.stdout = types.SimpleNamespace(buffer=out)
    sys.stderr = err
    try:
        status = cli.main(argv)
    finally:
        sys.stdin, sys.stdout, sys.stderr = old
    return status, out.getvalue(), err.getvalue()


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("path", DM, ids=os.path.basename)
def test_syncml_round_trip_through_the_command(path, tmp_path):
    binary = tmp_path / "m.wbxml"
    status, _, err = run(["encode", "--wbxml", path, "-o", str(binary)])
    assert status == 0, err
    assert binary.read_bytes() == wbxml.encode(xml.decode(read(path)))
    status, out, err = run(["decode", str(binary)])
    assert status == 0, err
    assert out.startswith(b"<?xml")
    assert xml.decode(out) == xml.decode(read(path))


@pytest.mark.parametrize("path", CP, ids=os.path.basename)
def test_cp_documents(path, tmp_path):
    binary = tmp_path / "cp.wbxml"
    assert run(["encode", "--wbxml", path, "-o", str(binary)])[0] == 0
    assert binary.read_bytes()[:2] == b"\x03\x0b"
    status, out, err = run(["decode", str(binary)])
    assert status == 0, err
    assert b"wap-provisioningdoc" in out
    assert prov.decode_xml(out) == prov.decode_xml(read(path))


def test_decode_reads_standard_input():
    data = wbxml.encode(xml.decode(read(DM[0])))
    status, out, _ = run(["decode", "-"], stdin=data)
    assert status == 0
    assert b"<SyncML" in out


def test_tnds_document():
    tree = xml.parse(
        b'<MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD><Node><NodeName>A</NodeName>'
        b"<Value>x</Value></Node></MgmtTree>"
    )
    status, out, _ = run(["decode", "-"], stdin=wbxml.encode_tnds(tree))
    assert status == 0
    assert xml.parse(out) == tree


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty input"),
        (b"garbage", "invalid input"),
        (b"<html><body/></html>", "root element 'html'"),
        (b"\x03\x6a\x6a\x00", "public id"),
        (b"\x03\xa4\x01\x6a\x00\x6d\x6c", "invalid input"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><SyncML/>', "invalid input"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(data, words):
    status, out, err = run(["decode", "-"], stdin=data)
    assert status == 2
    assert out == b""
    assert err.count("\n") == 1 and words in err, err


def test_missing_file():
    status, _, err = run(["decode", "/nonexistent/file.wbxml"])
    assert status == 2
    assert "cannot read" in err


def test_encode_refuses_wbxml_input():
    data = wbxml.encode(xml.decode(read(DM[0])))
    status, _, err = run(["encode", "--wbxml", "-"], stdin=data)
    assert status == 2
    assert "already WBXML" in err


def test_wsp_push_and_package0_decode_to_json():
    import json

    from dmgateway.notify import sms
    from dmgateway.notify.package0 import ServerCredential
    from dmgateway.notify.trigger import build_trigger

    trigger = build_trigger(ServerCredential("dmgw", b"nonce", secret="s"), "dmgw", 0x1A2B, bearer="sms")
    push = sms.parse_user_data(trigger.payloads[0]).payload
    status, out, err = run(["decode", "-"], stdin=push)
    assert status == 0, err
    view = json.loads(out)
    assert view["kind"] == "wsp-push"
    assert view["content_type"] == "application/vnd.syncml.notification"
    assert view["body"]["session_id_text"] == "1A2B"
    assert view["body"]["server_id"] == "dmgw"
    status, out, _ = run(["decode", "-"], stdin=trigger.package0)
    assert status == 0
    assert json.loads(out)["session_id"] == 0x1A2B


def test_cp_push_shows_the_document():
    import json

    from dmgateway.notify import wsp

    doc = prov.encode_wbxml(prov.decode_xml(read(CP[0])))
    push = wsp.encode_push(wsp.PushPDU(wsp.CT_CONNECTIVITY_WBXML, doc))
    status, out, err = run(["decode", "-"], stdin=push)
    assert status == 0, err
    view = json.loads(out)
    assert "wap-provisioningdoc" in view["body"]


# -- bootstrap pushes and files (dm-bootstrap-cp §3-4) -------------------------------


def _bootstrap_vectors():
    from tests.bootstrap import vectors

    return vectors


def test_bootstrap_push_mac_is_checked_with_the_pin():
    import json

    v = _bootstrap_vectors()
    status, out, _ = run(["decode", "-", "--pin", "1234"], v.CP_PUSH)
    assert status == 0
    view = json.loads(out)
    assert view["bootstrap"] == {"profile": "cp", "sec": "USERPIN", "mac": v.CP_MACS[1][3], "mac_verified": True}
    assert "wap-provisioningdoc" in view["body"]
    status, out, _ = run(["decode", "-", "--pin", "1235"], v.CP_PUSH)
    assert (status, json.loads(out)["bootstrap"]["mac_verified"]) == (1, False)
    status, out, _ = run(["decode", "-"], v.CP_PUSH)
    assert (status, json.loads(out)["bootstrap"]["mac_verified"]) == (0, None)


def test_dm_bootstrap_push_with_the_imsi():
    import json

    v = _bootstrap_vectors()
    push = v.DM_PUSH_HEAD + v.DM_DOC
    status, out, _ = run(["decode", "-", "--imsi", v.IMSI], push)
    view = json.loads(out)
    assert (status, view["bootstrap"]["sec"], view["bootstrap"]["mac_verified"]) == (0, "NETWPIN", True)
    assert "./DMAcc/example/AppAuth/1/AAuthSecret" in view["body"]
    status, _, _ = run(["decode", "-", "--imsi", "001010123456780"], push)
    assert status == 1


def test_padded_card_file_and_a_given_mac():
    import json

    v = _bootstrap_vectors()
    card = v.DM_DOC + b"\xff" * 100
    status, out, err = run(["decode", "-"], card)
    assert status == 0 and b"<SyncML" in out
    status, out, err = run(["decode", "-", "--sec", "NETWPIN", "--mac", v.DM_NETWPIN_MAC, "--imsi", v.IMSI], card)
    assert (status, json.loads(err)["mac_verified"]) == (0, True)
    status, out, err = run(["decode", "-", "--sec", "NETWPIN", "--mac", "00" * 20, "--imsi", v.IMSI], card)
    assert (status, json.loads(err)["mac_verified"]) == (1, False)
    status, _, err = run(["decode", "-", "--sec", "USERPIN", "--pin", "1"], card)
    assert status == 2 and "--mac" in err
