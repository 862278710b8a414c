"""End to end: the real daemon (twistd) managing a device over HTTP.

A job created through the REST API runs in a DM session driven by the
client library over real HTTP, in XML and in WBXML with MD5 authentication
both ways; results, Generic Alerts and failures come back through the API.
"""

import base64
import os
import socket
import time

import pytest

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials, GenericAlert
from tests.fixtures import API_DEVICE as DEVICE, E2E_ACCOUNT
from tests.interop.daemon import Daemon, post, run_client

ACCOUNT = dict(E2E_ACCOUNT, msisdn="+447700900001")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("gw"))
    d.start()
    yield d
    d.stop()


def device_account(daemon, device_id=DEVICE, client_secret="dev-secret-1"):
    return Account(
        device_id=device_id,
        server_id="dmgw-e2e",
        server_url=daemon.url,
        client=Credentials("md5", "dev1", client_secret),
        server=Credentials("md5", "dmgw-e2e", "srv-secret-1"),
    )


def new_session(account, encoding="xml", **kwargs):
    return ClientSession(account, random_bytes=os.urandom, encoding=encoding, **kwargs)


JOB = {
    "commands": [
        {"op": "Get", "target": "./DevDetail/SwV"},
        {"op": "Replace", "target": "./DMAcc/example/Name", "data": "Managed by dmgateway"},
        {"op": "Alert", "alert": 1101, "data": "Install the update now?", "options": "MAXDT=30"},
        {"op": "Get", "target": "./DMAcc/example/Name"},
    ],
    "notify": "none",
}
ATOMIC_JOB = {
    "commands": [
        {"op": "Replace", "target": "./DMAcc/example/Name", "data": "atomic name"},
        {"op": "Replace", "target": "./DMAcc/example/AppAddr/1/AddrType", "data": "URI"},
    ],
    "atomic": True,
    "notify": "none",
}


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
def test_job_runs_to_done_with_results(daemon, encoding):
    device_id = "IMEI:35000000000000%d" % (1 if encoding == "xml" else 2,)
    assert daemon.put_device(device_id, ACCOUNT)[0] in (200, 201)
    job_id = daemon.create_job(device_id, JOB)
    atomic_id = daemon.create_job(device_id, ATOMIC_JOB)
    assert daemon.job(job_id)["state"] == "queued"

    account = device_account(daemon, device_id)
    session = run_client(new_session(account, encoding))
    assert session.outcome == "completed", session.log

    job = daemon.job(job_id)
    assert job["state"] == "done", job
    results = job["results"]
    assert [r["op"] for r in results] == ["Get", "Replace", "Alert", "Get"]
    assert [r["status"] for r in results] == [200, 200, 200, 200]
    assert results[0]["data"] == session.tree.get("./DevDetail/SwV").value
    assert results[3]["data"] == "Managed by dmgateway"

    atomic = daemon.job(atomic_id)
    assert atomic["state"] == "done", atomic
    assert [r["status"] for r in atomic["results"]] == [200, 200]
    assert session.tree.get("./DMAcc/example/Name").value == "atomic name"

    status, device = daemon.call("GET", "/devices/" + device_id.replace(":", "%3A"))
    assert status == 200
    assert device["devinfo"]["DevId"] == device_id
    assert device["last_session"]["outcome"] == "completed"
    # the nonces rotated in the session and the device holds the same ones
    assert device["client_auth"]["nonce"] != ""
    assert base64.b64decode(device["client_auth"]["nonce"]) == account.client.nonce
    assert base64.b64decode(device["server_auth"]["nonce"]) == account.server.nonce

    # a second session with the rotated nonces authenticates and has nothing to do
    again = run_client(new_session(account, encoding))
    assert again.outcome == "completed", again.log
    assert again.executed == []


def test_generic_alert_reaches_the_event_api(daemon):
    device_id = "IMEI:350000000000003"
    daemon.put_device(device_id, ACCOUNT)
    before = daemon.events()
    after = before[-1]["seq"] if before else 0
    alert = GenericAlert(
        type="Reversed-Domain-Name: org.openmobilealliance.dm.firmwareupdate.devicerequest",
        format="chr",
        data="update please",
    )
    session = run_client(new_session(device_account(daemon, device_id)), generic_alerts=[alert])
    assert session.outcome == "completed", session.log
    events = [e for e in daemon.events(after=after) if e["type"] == "generic_alert"]
    assert len(events) == 1, events
    event = events[0]
    assert event["device_id"] == device_id
    assert event["meta_type"] == alert.type
    assert event["format"] == "chr"
    assert event["data"] == "update please"


def test_wrong_credentials_execute_nothing(daemon):
    device_id = "IMEI:350000000000004"
    daemon.put_device(device_id, ACCOUNT)
    job_id = daemon.create_job(device_id, JOB)
    session = run_client(new_session(device_account(daemon, device_id, client_secret="wrong")))
    assert session.outcome != "completed" or session.executed == []
    assert session.executed == []
    assert daemon.job(job_id)["state"] == "queued"
    assert "authentication failed for %s" % (device_id,) in daemon.log()
    assert "wrong" not in daemon.log().replace("wrong credentials", "")


def test_malformed_and_oversized_bodies_get_http_errors(daemon):
    status, body, _ = post(daemon.url, b"<SyncML><broken", {"Content-Type": "application/vnd.syncml.dm+xml"})
    assert status == 400
    # announced too large: answered 413 from the headers alone, nothing of the body is read
    with socket.create_connection(("127.0.0.1", daemon.http_port), timeout=10) as s:
        s.sendall(
            b"POST /dm HTTP/1.1\r\nHost: gw\r\nContent-Type: application/vnd.syncml.dm+xml\r\n"
            b"Content-Length: 2000000\r\n\r\n" + b"x" * 1000
        )
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    status, _, _ = post(daemon.url, b"<a/>", {"Content-Type": "text/html"})
    assert status == 415
    # the daemon still serves a well-formed session afterwards
    daemon.put_device("IMEI:350000000000005", ACCOUNT)
    session = run_client(new_session(device_account(daemon, "IMEI:350000000000005")))
    assert session.outcome == "completed"


def test_kill_9_mid_session_leaves_every_job_explicit(tmp_path):
    gw = Daemon(tmp_path)
    gw.start()
    try:
        gw.put_device(DEVICE, ACCOUNT)
        first = gw.create_job(DEVICE, JOB)
        session = run_client(new_session(device_account(gw, DEVICE)), stop_after=1)
        assert not session.finished
        assert gw.job(first)["state"] == "running"
        gw.kill()
        gw.start()
        job = gw.job(first)
        assert job["state"] == "failed"
        assert job["error"]["code"] == "interrupted"
        assert "recovered after an unclean stop" in gw.log()
        # the device can open a new session at once, and new work runs
        second = gw.create_job(DEVICE, {"commands": [{"op": "Get", "target": "./DevInfo/Man"}], "notify": "none"})
        account = device_account(gw, DEVICE)
        account.client.nonce = session.account.client.nonce
        account.server.nonce = session.account.server.nonce
        done = run_client(new_session(account))
        assert done.outcome == "completed", done.log
        assert gw.job(second)["state"] == "done"
    finally:
        gw.stop()


def test_check_config_command_reports_every_problem_and_binds_nothing(tmp_path):
    import subprocess

    gw = Daemon(tmp_path)
    with open(os.path.join(gw.conf, "http.ini"), "w") as f:
        f.write("[http]\nenabled = true\nendpoint = tcp:99999\nmax_bodyy = 5\n")
    command = gw.command()
    command.insert(command.index("dmgateway") + 1, "--check-config")
    done = subprocess.run(command, cwd=gw.workdir, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("http.ini")]
    assert len(lines) == 2, done.stderr
    assert any("[http] endpoint" in line and "99999" in line for line in lines)
    assert any("[http] max_bodyy" in line for line in lines)
    # a bad configuration never starts: the daemon exits 2 before binding anything
    started = subprocess.run(gw.command(), cwd=gw.workdir, capture_output=True, text=True, timeout=60)
    assert started.returncode == 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", gw.api_port))


def hook_server():
    """A webhook receiver on loopback in a thread: (server, its URL, the (signature, body) list)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers.get("X-Dmgw-Signature"), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, "http://127.0.0.1:%d/hook" % (server.server_port,), received


def test_webhooks_receive_signed_events_and_resume_after_restart(tmp_path):
    import hashlib
    import hmac
    import json

    server, url, received = hook_server()
    secret = b"hook-secret"
    (tmp_path / "hook.secret").write_bytes(secret)
    api_extra = "webhooks = %s\nwebhook_secret_file = %s\n" % (url, tmp_path / "hook.secret")
    gw = Daemon(tmp_path / "gw")
    gw.gateway_extra = ""
    gw._write_config()
    with open(os.path.join(gw.conf, "dmgateway.ini"), "a") as f:
        f.write(api_extra)  # appended to the [api] section, the file's last
    try:
        gw.start()
        gw.put_device(DEVICE, ACCOUNT)
        session = run_client(new_session(device_account(gw, DEVICE)))
        assert session.outcome == "completed"

        def events():
            return [json.loads(body)["events"][0] for _sig, body in received]

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(e["type"] == "session" for e in events()):
            time.sleep(0.05)
        assert [e["type"] for e in events()] == ["session"]
        for signature, body in received:
            assert signature == "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        # after a restart the cursor resumes: nothing delivered twice, new events still come
        gw.stop()
        gw.start()
        again = run_client(new_session(session.account))
        assert again.outcome == "completed", again.log
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(events()) < 2:
            time.sleep(0.05)
        assert [e["type"] for e in events()] == ["session", "session"]
        seqs = [e["seq"] for e in events()]
        assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs)
    finally:
        gw.stop()
        server.shutdown()


def test_sighup_adds_and_removes_webhook_targets(tmp_path):
    import json
    import signal

    server, url, received = hook_server()
    gw = Daemon(tmp_path / "gw")
    ini = os.path.join(gw.conf, "dmgateway.ini")
    original = open(ini).read()  # [api] is the file's last section

    def reload(text):
        with open(ini, "w") as f:
            f.write(text)
        offset = len(gw.log())
        gw.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "reloaded on SIGHUP" not in gw.log()[offset:]:
            time.sleep(0.05)
        return [line for line in gw.log()[offset:].splitlines() if "reloaded on SIGHUP" in line]

    def session_events():
        return [e for _sig, body in received for e in json.loads(body)["events"] if e["type"] == "session"]

    try:
        gw.start()
        gw.put_device(DEVICE, E2E_ACCOUNT)
        account = device_account(gw, DEVICE)
        assert run_client(new_session(account)).outcome == "completed"
        (line,) = reload(original + "webhooks = %s\n" % (url,))
        assert "webhooks started: 1 URL(s)" in line and "needs a restart" not in line
        # the new target starts from the beginning of the event log, then follows it
        assert run_client(new_session(account)).outcome == "completed"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(session_events()) < 2:
            time.sleep(0.05)
        assert len(session_events()) == 2
        (line,) = reload(original)
        assert "webhook %s removed" % (url,) in line
        assert run_client(new_session(account)).outcome == "completed"
        time.sleep(1.0)  # nothing more comes to a removed target
        assert len(session_events()) == 2
    finally:
        gw.stop()
        server.shutdown()
