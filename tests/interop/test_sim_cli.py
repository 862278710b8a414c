"""``dmgw sim session`` and ``dmgw sim fleet`` as subprocesses against the real daemon."""

import json
import os
import subprocess
import sys

import pytest

from dmgateway.client import sim
from tests.interop.daemon import ROOT, Daemon

SERVER_ID = "dmgw-e2e"
TIMEOUT = 120


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("gw-sim"))
    d.start()
    yield d
    d.stop()


def dmgw(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "dmgateway.cli", "sim", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)


def session_args(daemon, device, *extra):
    return ("session", "--url", daemon.url, "--device", device.device_id,
            "--client-name", device.client_name, "--client-secret", device.client_secret,
            "--server-name", device.server_name, "--server-secret", device.server_secret,
            "--scheme", device.scheme, *extra)


@pytest.mark.parametrize("scheme, encoding", [("md5", "xml"), ("hmac", "wbxml"),
                                              ("basic", "xml")])
def test_session_prints_a_transcript_and_a_summary(daemon, scheme, encoding):
    number = {"md5": 1, "hmac": 2, "basic": 3}[scheme]
    device = next(sim.pattern_devices(1, start=number, scheme=scheme, server_name=SERVER_ID))
    assert daemon.put_device(device.device_id, sim.api_account(device))[0] == 201
    job = daemon.create_job(device.device_id, sim.api_job(["./DevDetail/SwV", "./DevInfo/Man"]))
    extra = ("--wbxml",) if encoding == "wbxml" else ()
    done = dmgw(*session_args(daemon, device, *extra, "--max-msg-size", "4000"))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "=== #1 device -> gateway  %s  (%s, " % (daemon.url, encoding) in out
    assert "=== #2 gateway -> device" in out
    assert "<MaxMsgSize" in out  # package 1, decoded
    assert "<LocURI>./DevDetail/SwV</LocURI>" in out
    assert "outcome:      completed" in out
    assert "Get      ./DevInfo/Man" in out
    assert daemon.job(job)["state"] == "done"


def test_session_with_wrong_secret_exits_1(daemon):
    device = next(sim.pattern_devices(1, start=10, server_name=SERVER_ID))
    daemon.put_device(device.device_id, sim.api_account(device))
    device.client_secret = "wrong"
    done = dmgw(*session_args(daemon, device, "--quiet"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "=== #1" not in done.stdout
    assert "outcome:      failed" in done.stdout
    assert "credentials" in done.stdout


def test_session_usage_errors_exit_2(daemon):
    done = dmgw("session", "--url", daemon.url, "--device", "IMEI:1", "--client-nonce", "!!")
    assert done.returncode == 2
    assert "--client-nonce is not base64" in done.stderr


def test_fleet_provisions_and_reports_json(daemon):
    token_file = os.path.join(daemon.workdir, "var", "api.token")
    done = dmgw("fleet", "--url", daemon.url, "--api", daemon.api, "--token-file", token_file,
                "--provision", "--job-get", "./DevDetail/SwV", "--count", "30", "--first", "100",
                "--rate", "200", "--concurrency", "6", "--server-name", SERVER_ID,
                "--wbxml", "--json", "--progress")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["provisioned"] == 30
    assert summary["sessions"] == summary["completed"] == 30
    assert summary["latency_ms"]["p99"] > 0
    assert "sessions 30" in done.stderr  # the final progress line


def test_fleet_from_csv_with_text_summary(daemon, tmp_path):
    devices = list(sim.pattern_devices(5, start=200, server_name=SERVER_ID))
    for device in devices:
        daemon.put_device(device.device_id, sim.api_account(device))
    path = tmp_path / "devices.csv"
    with open(path, "w") as f:
        sim.write_csv(devices, f)
    done = dmgw("fleet", "--url", daemon.url, "--csv", str(path), "--concurrency", "2",
                "--duration", "1.5", "--rate", "20")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "latency ms:  p50 " in done.stdout
    assert "errors:      transport 0, auth 0, http 0, protocol 0" in done.stdout
    assert done.stderr == ""  # no progress line when stderr is not a terminal


def test_fleet_usage_errors_exit_2(daemon, tmp_path):
    missing = dmgw("fleet", "--url", daemon.url, "--csv", str(tmp_path / "none.csv"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    wake = dmgw("fleet", "--url", daemon.url, "--wake", "sms", "--duration", "1")
    assert wake.returncode == 2 and "no sms wake source" in wake.stderr
    # --api and --token-file default as for dmgw api (var/api.token); a token file that is not there
    provision = dmgw("fleet", "--url", daemon.url, "--provision", "--token-file", str(tmp_path / "none.token"))
    assert provision.returncode == 2 and "cannot read %s" % (tmp_path / "none.token",) in provision.stderr
