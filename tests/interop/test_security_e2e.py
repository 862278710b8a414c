"""Issue 10's attacks against the real daemon (twistd) on loopback, the
attacker at 127.0.0.2, the device at 127.0.0.1: session hijack without the
RespURI, an unauthenticated package 1 against a live session, password
guessing that must not lock the device out, hostile text (WBXML ENTITY 0,
lone surrogates in the API), slow requests and connection floods."""

import http.client
import json
import os
import socket
import time
import urllib.parse

import pytest

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials
from dmgateway.codec import decode_message, encode_message
from tests.fixtures import E2E_ACCOUNT as ACCOUNT, E2E_DEVICE as DEVICE
from tests.interop.daemon import Daemon, post, run_client

GET_SWV = {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}], "notify": "none"}
ATTACKER = "127.0.0.2"
READ_TIMEOUT = 2
PEER_CAP = 4


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("security")
    d = Daemon(workdir, session_timeout=60)
    d.extra_ini["http.ini"] = (
        "[http]\nenabled = true\nendpoint = tcp:%d:interface=127.0.0.1\npath = /dm\n"
        "read_timeout = %d\nmax_connections_per_peer = %d\n" % (d.http_port, READ_TIMEOUT, PEER_CAP)
    )
    d._write_config()
    d.start()
    yield d
    d.stop()
    log = d.log()
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture
def device(daemon):
    """A fresh device id per test (lockouts and sessions stay apart)."""
    device_id = "IMEI:35000000%07d" % (int.from_bytes(os.urandom(3), "big") % 10_000_000,)
    status, _ = daemon.put_device(device_id, ACCOUNT)
    assert status in (200, 201)
    return device_id


def account(daemon, device_id, secret="dev-secret-1"):
    return Account(
        device_id=device_id,
        server_id="dmgw-e2e",
        server_url=daemon.url,
        client=Credentials("md5", "dev1", secret),
        server=Credentials("md5", "dmgw-e2e", "srv-secret-1"),
    )


def post_from(source, url, body, headers, timeout=10):
    """POST from the address ``source``: (status, body, lower-cased headers)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout,
                                            source_address=(source, 0))
    try:
        path = parts.path + ("?" + parts.query if parts.query else "")
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def device_view(daemon, device_id):
    status, view = daemon.call("GET", "/devices/" + urllib.parse.quote(device_id, safe=""))
    assert status == 200, view
    return view


def test_fifty_wrong_passwords_from_another_address_do_not_stop_the_device(daemon, device):
    job_id = daemon.create_job(device, GET_SWV)
    for _ in range(50):
        guess = ClientSession(account(daemon, device, secret="guess-%s" % os.urandom(4).hex()),
                              random_bytes=os.urandom)
        request = guess.start()
        status, body, _headers = post_from(ATTACKER, request.url, request.body, request.headers)
        assert status == 200, body
        assert b"<Data>401</Data>" in body  # never 5xx, also past the budget
    view = device_view(daemon, device)
    assert [(l["scope"], l["peer"]) for l in view["lockouts"]] == [("peer", ATTACKER)]
    # the device itself, from 127.0.0.1, completes its session and its job
    session = run_client(ClientSession(account(daemon, device), random_bytes=os.urandom))
    assert session.outcome == "completed", session.log
    assert daemon.job(job_id)["state"] == "done"
    events = daemon.events()
    assert any(e["type"] == "lockout" and e["device_id"] == device and e["peer"] == ATTACKER for e in events)
    # an operator lifts the lockout
    status, cleared = daemon.call("DELETE", "/devices/%s/lockouts" % urllib.parse.quote(device, safe=""))
    assert (status, cleared["cleared"]) == (200, 1)
    assert device_view(daemon, device)["lockouts"] == []


def _forged_results(session, device, url):
    return (
        '<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>'
        "<SessionID>%s</SessionID><MsgID>2</MsgID><Target><LocURI>%s</LocURI></Target>"
        "<Source><LocURI>%s</LocURI></Source></SyncHdr><SyncBody>"
        "<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd>"
        "<TargetRef>%s</TargetRef><SourceRef>dmgw-e2e</SourceRef><Data>212</Data></Status>"
        "<Results><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>3</CmdRef><Item><Source><LocURI>"
        "./DevDetail/SwV</LocURI></Source><Data>forged</Data></Item></Results><Final/></SyncBody></SyncML>"
        % (session.session_id, url, device, device)
    ).encode()


def test_hijack_refused_then_the_device_completes(daemon, device):
    job_id = daemon.create_job(device, GET_SWV)
    session = ClientSession(account(daemon, device), random_bytes=os.urandom)
    request = session.start()
    status, body, headers = post(request.url, request.body, request.headers)
    request = session.receive(body, headers)  # package 3, addressed to the RespURI
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)["s"][0]
    assert len(token) >= 32  # 128 bits
    assert daemon.job(job_id)["state"] == "running"
    # the device's Results, forged by someone who knows the SessionID and the
    # device id but not the RespURI token, posted to the plain DM URL
    forged = _forged_results(session, device, daemon.url)
    for _ in range(3):
        status, answer, _ = post_from(ATTACKER, daemon.url, forged,
                                      {"Content-Type": "application/vnd.syncml.dm+xml"})
        assert (status, b"<Data>403</Data>" in answer) == (200, True)
        assert token.encode() not in answer
    assert daemon.job(job_id)["state"] == "running"
    while request is not None:
        status, body, headers = post(request.url, request.body, request.headers)
        assert status == 200
        request = session.receive(body, headers)
    assert session.outcome == "completed"
    job = daemon.job(job_id)
    assert job["state"] == "done"
    assert job["results"][0]["data"] != "forged"


def test_wrong_package1_leaves_the_live_session_alone(daemon, device):
    job_id = daemon.create_job(device, GET_SWV)
    session = ClientSession(account(daemon, device), random_bytes=os.urandom)
    request = session.start()
    status, body, headers = post(request.url, request.body, request.headers)
    request = session.receive(body, headers)
    intruder = ClientSession(account(daemon, device, secret="wrong"), random_bytes=os.urandom)
    first = intruder.start()
    status, answer, _ = post_from(ATTACKER, first.url, first.body, first.headers)
    assert (status, b"<Data>401</Data>" in answer) == (200, True)
    while request is not None:
        status, body, headers = post(request.url, request.body, request.headers)
        assert status == 200
        request = session.receive(body, headers)
    assert session.outcome == "completed"
    assert daemon.job(job_id)["state"] == "done"
    assert device_view(daemon, device)["last_session"]["outcome"] == "completed"


def test_wbxml_entity_nul_in_a_locuri_is_400_and_leaves_nothing_live(daemon, device):
    xml = (
        '<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>'
        "<SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>%s</LocURI></Target>"
        "<Source><LocURI>%s</LocURI></Source></SyncHdr><SyncBody>"
        "<Alert><CmdID>1</CmdID><Data>1201</Data></Alert><Final/></SyncBody></SyncML>" % (daemon.url, device)
    ).encode()
    msg, _ = decode_message(xml, "application/vnd.syncml.dm+xml")
    wbxml = encode_message(msg, "wbxml")
    inline = b"\x03" + device.encode() + b"\x00"
    hostile = wbxml.replace(inline, b"\x03IMEI:\x00\x02\x00" + b"\x03" + device[5:].encode() + b"\x00")
    assert hostile != wbxml
    status, body, _ = post(daemon.url, hostile, {"Content-Type": "application/vnd.syncml.dm+wbxml"})
    assert status == 400, body
    # a NUL in the Source LocURI of an XML message never reaches the store either
    status, body, _ = post(daemon.url, xml.replace(device.encode(), b"IMEI:&#0;1"),
                           {"Content-Type": "application/vnd.syncml.dm+xml"})
    assert status == 400, body
    # the device is served at once: no session was left behind
    job_id = daemon.create_job(device, GET_SWV)
    session = run_client(ClientSession(account(daemon, device), random_bytes=os.urandom))
    assert session.outcome == "completed"
    assert daemon.job(job_id)["state"] == "done"


def test_api_refuses_lone_surrogates_and_keeps_serving(daemon, device):
    path = "/devices/%s" % urllib.parse.quote(device, safe="")
    status, error = daemon.call("PUT", path, dict(ACCOUNT, msisdn="+44\ud800"))
    assert (status, error["error"]["code"]) == (400, "bad_json")
    status, error = daemon.call("POST", path + "/jobs", {
        "commands": [{"op": "Replace", "target": "./A", "data": "x\udc00"}], "notify": "none"})
    assert (status, error["error"]["code"]) == (400, "bad_json")
    assert device_view(daemon, device)["msisdn"] is None
    job_id = daemon.create_job(device, GET_SWV)
    assert run_client(ClientSession(account(daemon, device), random_bytes=os.urandom)).outcome == "completed"
    assert daemon.job(job_id)["state"] == "done"


def _connect(daemon, source):
    s = socket.create_connection(("127.0.0.1", daemon.http_port), timeout=10, source_address=(source, 0))
    return s


def test_one_byte_at_a_time_is_cut_at_the_read_deadline(daemon):
    s = _connect(daemon, ATTACKER)
    started = time.monotonic()
    try:
        request = b"POST /dm HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n"
        answer = b""
        for byte in request:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            s.settimeout(0.5)
            try:
                answer = s.recv(4096)
            except socket.timeout:
                continue
            break
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - started < READ_TIMEOUT + 3
    finally:
        s.close()


def test_connections_per_address_are_capped(daemon, device):
    held = [_connect(daemon, ATTACKER) for _ in range(PEER_CAP)]
    try:
        time.sleep(0.2)
        extra = _connect(daemon, ATTACKER)
        extra.settimeout(5)
        answer = extra.recv(4096)
        extra.close()
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        # the device at another address is served meanwhile
        job_id = daemon.create_job(device, GET_SWV)
        assert run_client(ClientSession(account(daemon, device), random_bytes=os.urandom)).outcome == "completed"
        assert daemon.job(job_id)["state"] == "done"
    finally:
        for s in held:
            s.close()


def test_events_after_the_largest_sequence_number(daemon):
    status, body = daemon.call("GET", "/events?after=9223372036854775807")
    assert (status, body) == (200, {"events": []})
    assert json.dumps(body)


def test_a_megabyte_of_empty_items_is_refused_before_any_work(daemon, device):
    xml = (
        '<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>'
        "<SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>%s</LocURI></Target>"
        "<Source><LocURI>%s</LocURI></Source></SyncHdr><SyncBody>"
        "<Alert><CmdID>1</CmdID><Data>1201</Data></Alert><Replace><CmdID>2</CmdID>%s</Replace>"
        "<Final/></SyncBody></SyncML>" % (daemon.url, device, "<Item/>" * 148000)
    ).encode()
    assert 1_000_000 < len(xml) <= 1048576
    started = time.monotonic()
    status, body, _ = post_from(ATTACKER, daemon.url, xml, {"Content-Type": "application/vnd.syncml.dm+xml"})
    assert status == 413, body
    assert b"elements" in body
    assert time.monotonic() - started < 1.0
    # the same count of Items as 1-byte WBXML tokens (148 kB) is refused too
    msg, _ = decode_message(xml.replace(b"<Item/>" * 148000, b"<Item/>"), "application/vnd.syncml.dm+xml")
    msg.body[1].items = msg.body[1].items * 148000
    wbxml = encode_message(msg, "wbxml")
    status, body, _ = post_from(ATTACKER, daemon.url, wbxml, {"Content-Type": "application/vnd.syncml.dm+wbxml"})
    assert status == 413, body
    job_id = daemon.create_job(device, GET_SWV)
    assert run_client(ClientSession(account(daemon, device), random_bytes=os.urandom)).outcome == "completed"
    assert daemon.job(job_id)["state"] == "done"
