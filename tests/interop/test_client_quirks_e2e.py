"""What real clients send, against the REAL daemon (issue 11, daemon layer).

Raw messages (built from the fixtures) over HTTP for the constructs the
project's simulator does not produce: a Windows-style package 1 (DevInfo plus
a vendor node, padded values, no client credentials), a device challenge the
account cannot answer, invalid SyncML with a readable header.  The simulator
(``dmgateway.client``) runs a Sequence job in XML and WBXML.
"""

import urllib.parse
from pathlib import Path

import pytest

from dmgateway.codec import decode_message, encode_message
from dmgateway.codec import syncml as sm
from dmgateway.codec import wbxml, xml
from dmgateway.codec.mapping import message_to_node
from dmgateway.codec.wbxml_pages import SYNCML12
from tests.interop.daemon import Daemon, post
from tests.interop.test_client_e2e import new_device, run_job, statuses

FIXTURES = Path(__file__).parent.parent / "fixtures" / "dm"
DM_XML = {"Content-Type": "application/vnd.syncml.dm+xml"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("client-quirks"))
    d.start()
    yield d
    d.stop()


def fixture_message(name, device_id, session_id="1"):
    msg = xml.decode((FIXTURES / name).read_bytes())
    msg.hdr.source = sm.LocRef(device_id)
    msg.hdr.session_id = session_id
    return msg


def exchange(url, msg, encoding="xml"):
    """POST ``msg``; (HTTP status, the reply model)."""
    content_type = {"Content-Type": "application/vnd.syncml.dm+%s" % (encoding,)}
    status, body, headers = post(url, encode_message(msg, encoding), content_type)
    assert headers["content-type"].startswith("application/vnd.syncml.dm+" + encoding), headers
    return status, decode_message(body, headers["content-type"])[0]


def windows_device(daemon, device_id):
    status, body = daemon.put_device(device_id, {
        "server_id": "dmgw-e2e",
        "client_auth": {"type": "none"},
        "server_auth": {"type": "none"},
    })
    assert status in (200, 201), body


def device_view(daemon, device_id):
    status, body = daemon.call("GET", "/devices/" + urllib.parse.quote(device_id, safe=""))
    assert status == 200, body
    return body


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
def test_windows_package_1_devinfo_plus_vendor_node_and_a_device_challenge(daemon, encoding):
    device_id = "IMEI:35300000000001%d" % (encoding == "wbxml",)
    windows_device(daemon, device_id)
    job_id = daemon.create_job(device_id, {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}],
                                           "notify": "none"})
    after = (daemon.events() or [{"seq": 0}])[-1]["seq"]
    pkg1 = fixture_message("33-pkg1-devinfo-and-vendor-node.xml", device_id)
    status, reply = exchange(daemon.url, pkg1, encoding)
    assert status == 200
    codes = {s.cmd_ref: s.data for s in reply.body if isinstance(s, sm.Status)}
    assert codes["0"] == 200  # no credentials sent, none accepted: not 212
    assert codes["3"] == 200  # the Replace with a node outside DevInfo
    [get] = [c for c in reply.body if isinstance(c, sm.Get)]
    view = device_view(daemon, device_id)
    assert view["devinfo"]["DevId"] == "IMEI:490154203237518"  # trimmed
    assert view["reported"] == {"./Vendor/MSFT/DMClient/HWDevID": "00001125D3B6A2F4C1E8"}
    assert view["device_challenge"] is None

    pkg3 = fixture_message("35-device-challenge-md5.xml", device_id)
    pkg3.hdr.target = sm.LocRef(reply.hdr.resp_uri or daemon.url)
    for cmd in pkg3.body:
        cmd.msg_ref = reply.hdr.msg_id
    pkg3.body[1].cmd_ref = pkg3.body[2].cmd_ref = get.cmd_id
    status, reply = exchange(reply.hdr.resp_uri or daemon.url, pkg3, encoding)
    assert status == 200 and reply.final
    job = daemon.job(job_id)
    assert job["state"] == "done" and job["results"][0]["data"] == "4.2.1"
    challenged = [e for e in daemon.events(after=after)
                  if e["type"] == "device_challenge" and e["device_id"] == device_id]
    assert [(e["scheme"], e["status"]) for e in challenged] == [("md5", 200)]
    assert device_view(daemon, device_id)["device_challenge"]["scheme"] == "md5"
    assert "device challenged us with md5" in daemon.log()


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
def test_invalid_syncml_with_a_readable_header_gets_a_syncml_status(daemon, encoding):
    msg = fixture_message("31-synchdr-status-without-cmdref.xml", "IMEI:353000000000099", "77")
    root = message_to_node(msg)
    get_status = root.find("SyncBody").findall("Status")[1]
    get_status.children = [c for c in get_status.children if c.name != "CmdRef"]  # not valid
    body = wbxml.encode_node(root, SYNCML12) if encoding == "wbxml" else xml.serialize(root)
    status, data, headers = post(daemon.url, body,
                                 {"Content-Type": "application/vnd.syncml.dm+%s" % (encoding,)})
    assert status == 200
    reply, _ = decode_message(data, headers["content-type"])
    assert reply.hdr.session_id == "77" and reply.hdr.target.loc_uri == "IMEI:353000000000099"
    [hdr_status] = reply.body
    assert (hdr_status.cmd, hdr_status.msg_ref, hdr_status.data) == ("SyncHdr", "2", 400)
    status, _, _ = post(daemon.url, b"<SyncML><broken", DM_XML)
    assert status == 400  # not SyncML at all: still a bare 400


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
def test_sequence_job_through_the_simulator(daemon, encoding):
    device_id, session = new_device(daemon, encoding)
    session.tree.set("./Vendor/Gone", "x")
    job = run_job(daemon, device_id, session, {"commands": [
        {"op": "Get", "target": "./DevInfo/Man"},
        {"op": "Sequence", "commands": [
            {"op": "Add", "target": "./Vendor/New", "data": "v1"},
            {"op": "Get", "target": "./Vendor/New"},
            {"op": "Delete", "target": "./Vendor/Gone"},
        ]},
    ]})
    assert job["state"] == "done", job
    assert [(r["op"], r["target"]) for r in job["results"]] == [
        ("Get", "./DevInfo/Man"), ("Add", "./Vendor/New"), ("Get", "./Vendor/New"),
        ("Delete", "./Vendor/Gone")]
    assert statuses(job) == [200, 200, 200, 200]
    assert job["results"][2]["data"] == "v1"
    assert session.tree.read("./Vendor/New").value == "v1"
    sent = [cmd for d, m in session.transcript if d == "in" for cmd in m.body]
    assert any(isinstance(cmd, sm.Sequence) for cmd in sent)


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
def test_generic_alert_with_type_under_item_keeps_meta_type(daemon, encoding):
    device_id = "IMEI:35300000000002%d" % (encoding == "wbxml",)
    windows_device(daemon, device_id)
    after = (daemon.events() or [{"seq": 0}])[-1]["seq"]
    msg = fixture_message("32-generic-alert-type-under-item.xml", device_id)
    status, reply = exchange(daemon.url, msg, encoding)
    assert status == 200 and reply.final
    events = [e for e in daemon.events(after=after)
              if e["type"] == "generic_alert" and e["device_id"] == device_id]
    assert [(e["meta_type"], e["data"], e["source"]) for e in events] == [
        ("com.microsoft.mdm.reboot.status", "Pending", "./Vendor/MSFT/Reboot")]


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
def test_client_without_large_objects_answering_a_middle_chunk_200(daemon, encoding):
    # libdmclient's way: LrgObj true, but a chunk is stored as the whole value
    device_id, session = new_device(daemon, encoding, max_msg_size=1024, large_objects=False)
    session.tree.set("./Vendor/Big", "")
    session.tree.set("./Vendor/After", "")
    big = "".join("%05d;" % n for n in range(1000))
    job = run_job(daemon, device_id, session, {"commands": [
        {"op": "Replace", "target": "./Vendor/Big", "data": big},
        {"op": "Replace", "target": "./Vendor/After", "data": "after"},
    ]})
    assert job["state"] == "failed", job
    assert job["error"]["code"] == "large_object_unsupported"
    assert "device does not support large objects" in job["error"]["message"]
    chunks = [cmd for d, m in session.transcript if d == "in" for cmd in m.body
              if isinstance(cmd, sm.Replace) and cmd.items[0].target.loc_uri == "./Vendor/Big"]
    assert len(chunks) == 1 and chunks[0].items[0].more_data  # the rest was not sent
    stored = session.tree.read("./Vendor/Big").value
    assert stored and big.startswith(stored) and stored != big
    assert session.tree.read("./Vendor/After").value == "after"  # the job went on
