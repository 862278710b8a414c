"""The daemon's life cycle through the real twistd: failed starts, one daemon per
SQLite file, systemd notifications, SIGHUP after logrotate, SIGTERM drain, health."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials
from tests.fixtures import E2E_ACCOUNT as ACCOUNT
from tests.interop.daemon import Daemon, free_port, post

JOB = {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}], "notify": "none"}


def run_to_exit(daemon, timeout=30):
    """Start the daemon expecting it to stop by itself: (exit status, its log)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        daemon.command(), cwd=daemon.workdir, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=timeout,
    )
    return result.returncode, result.stdout.decode("utf-8", "replace")


def get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_busy_port_exits_non_zero_with_one_clear_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        daemon = Daemon(tmp_path)
        daemon.http_port = busy.getsockname()[1]
        daemon._write_config()
        status, output = run_to_exit(daemon)
    assert status == 1, output
    lines = [line for line in output.splitlines() if "cannot start" in line]
    assert len(lines) == 1, output
    assert "cannot listen on 127.0.0.1:%d" % daemon.http_port in lines[0]
    assert "Traceback" not in output


def test_unusable_https_key_exits_non_zero(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("not a key\n")
    daemon = Daemon(tmp_path / "gw", extra_ini={"http.ini": (
        "[http]\nenabled = true\nendpoint = tcp:%d:interface=127.0.0.1\npath = /dm\n\n"
        "[https]\nenabled = true\nendpoint = ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s\n"
        % (free_port(), free_port(), key, key))})
    status, output = run_to_exit(daemon)
    assert status in (1, 2), output
    assert "key.pem" in output or "cannot start" in output, output
    assert "Traceback" not in output


def test_missing_https_key_is_a_configuration_error(tmp_path):
    daemon = Daemon(tmp_path, extra_ini={"http.ini": (
        "[https]\nenabled = true\nendpoint = ssl:%d:interface=127.0.0.1"
        ":privateKey=missing-key.pem:certKey=missing-cert.pem\n" % free_port())})
    status, output = run_to_exit(daemon)
    assert status == 2, output
    assert "missing-key.pem" in output and "Traceback" not in output


def test_unreachable_store_exits_non_zero(tmp_path):
    port = free_port()
    daemon = Daemon(tmp_path, store="postgresql://nobody@127.0.0.1:%d/none?connect_timeout=2" % port)
    status, output = run_to_exit(daemon, timeout=60)
    assert status == 1, output
    (line,) = [line for line in output.splitlines() if "cannot start" in line]
    assert "store" in line
    assert "Traceback" not in output


def test_second_daemon_on_one_sqlite_file_refuses(tmp_path):
    first = Daemon(tmp_path / "one").start()
    try:
        second = Daemon(tmp_path / "two", store="sqlite:" + os.path.join(first.workdir, "var", "dmgateway.sqlite"))
        status, output = run_to_exit(second)
        assert status == 1, output
        (line,) = [line for line in output.splitlines() if "cannot start" in line]
        assert "in use by another dmgateway process (pid %d)" % first.process.pid in line
        assert first.call("GET", "/events?after=0")[0] == 200  # the first one is untouched
    finally:
        first.stop()
    # once the first is gone, the file is free again
    third = Daemon(tmp_path / "three", store=second.store).start()
    third.stop()


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    yield path, sock
    sock.close()


def test_systemd_notify_ready_reload_stopping_and_sighup_reopens_the_log(tmp_path, notify_socket):
    path, sock = notify_socket
    daemon = Daemon(tmp_path, gateway_extra="[logging]\nformat = json\nlevel = info\nfile = var/gw.json\n")
    daemon.env = {"NOTIFY_SOCKET": path}
    daemon.start()
    try:
        assert sock.recv(4096).split(b"\n")[0] == b"READY=1"
        log_path = os.path.join(daemon.workdir, "var", "gw.json")
        os.rename(log_path, log_path + ".1")
        with open(os.path.join(daemon.workdir, "var", "api.token"), "w") as f:
            f.write("a-new-token\n")
        daemon.process.send_signal(signal.SIGHUP)
        assert sock.recv(4096) == b"RELOADING=1"
        assert sock.recv(4096) == b"READY=1"
        old_token, daemon.token = daemon.token, "a-new-token"
        assert daemon.call("GET", "/events?after=0")[0] == 200
        daemon.token = old_token
        assert daemon.call("GET", "/events?after=0")[0] == 401
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(log_path) and "GET /api/v1/events" in open(log_path).read():
                break
            time.sleep(0.05)
        new_lines = [json.loads(line) for line in open(log_path)]
        assert any(e["message"].startswith("reloaded on SIGHUP") and "API token replaced" in e["message"]
                   for e in new_lines)
        assert any(e.get("status") == 401 for e in new_lines)
        for name in (log_path, log_path + ".1"):  # every line of both files is one JSON object
            for line in open(name):
                record = json.loads(line)
                assert {"time", "level", "logger", "message"} <= set(record)
        assert "a-new-token" not in open(log_path).read()
    finally:
        daemon.process.send_signal(signal.SIGTERM)
        assert sock.recv(4096) == b"STOPPING=1"
        assert daemon.process.wait(20) in (0, -signal.SIGTERM)  # twistd re-raises the signal: systemd counts it clean
        daemon.stop()


def test_health_and_readiness_without_token(tmp_path):
    daemon = Daemon(tmp_path).start()
    try:
        base = daemon.api[: -len("/api/v1")]
        assert get(base + "/healthz") == (200, {"status": "ok"})
        assert get(base + "/readyz") == (200, {"status": "ok"})
        assert daemon.call("GET", "/events?after=0")[0] == 200
    finally:
        daemon.stop()


def _device(daemon, device_id):
    return Account(
        device_id=device_id, server_id="dmgw-e2e", server_url=daemon.url,
        client=Credentials("md5", "dev1", "dev-secret-1"),
        server=Credentials("md5", "dmgw-e2e", "srv-secret-1"),
    )


def test_sigterm_lets_the_live_session_finish_and_refuses_new_ones(tmp_path):
    daemon = Daemon(tmp_path, drain_timeout=20)
    daemon.start()
    for device_id in ("IMEI:1", "IMEI:2"):
        assert daemon.put_device(device_id, ACCOUNT)[0] == 201
    job_id = daemon.create_job("IMEI:1", JOB)
    session = ClientSession(_device(daemon, "IMEI:1"), random_bytes=os.urandom)
    request = session.start()
    status, body, headers = post(request.url, request.body, request.headers)
    assert status == 200
    daemon.process.send_signal(signal.SIGTERM)
    # wait until the signal is handled (the DM listener still answers)
    deadline = time.monotonic() + 10
    while "draining: 1 live DM sessions" not in daemon.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    other = ClientSession(_device(daemon, "IMEI:2"), random_bytes=os.urandom)
    other_request = other.start()
    status, other_body, other_headers = post(other_request.url, other_request.body, other_request.headers)
    assert status == 200 and b"503" in other_body
    assert other.receive(other_body, other_headers) is None and other.outcome != "completed"
    # the live session goes on to its end
    request = session.receive(body, headers)
    while request is not None:
        status, body, headers = post(request.url, request.body, request.headers)
        assert status == 200
        request = session.receive(body, headers)
    assert session.outcome == "completed", session.log
    assert daemon.process.wait(20) in (0, -signal.SIGTERM)  # twistd re-raises the signal: systemd counts it clean
    log = daemon.log()
    assert "drained: 1 sessions ended, 0 aborted" in log
    daemon.stop()
    # the job it ran is done in the store
    daemon.start()
    try:
        assert daemon.job(job_id)["state"] == "done"
    finally:
        daemon.stop()
