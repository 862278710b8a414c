"""The inventory routes against the real daemon: cursor paging and filters
over 10,000 devices, deleting a device, cancelling jobs (also one whose
session is live), and the notify bearer check.  Every answer is checked
against docs/openapi.yaml by Daemon.call."""

import os
import sqlite3
import time
import urllib.parse

import pytest

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials
from tests.fixtures import E2E_ACCOUNT as ACCOUNT
from tests.interop.daemon import Daemon, post

COUNT = 10_000
JOB = {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}], "notify": "none"}


def _fill(path, count, now):
    """10,000 accounts written straight into the daemon's (stopped) SQLite store."""
    rows = []
    for n in range(count):
        rows.append((
            "IMEI:%015d" % n, "fleet-%d" % (n % 4), "+4477%08d" % n if n % 10 else None,
            "md5", "dev%d" % n, "aGFzaA==", b"", "md5", "srv", "aGFzaA==", None, b"",
            ("Acme" if n % 2 else "Other"), ("X%d" % (n % 5)), "1.%d" % (n % 3),
            (now - n) if n % 7 else None, (now + 900) if n % 1000 == 1 else None, now, now,
        ))
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO devices (device_id, server_id, msisdn, client_auth_type, client_auth_name,"
            " client_user_hash, client_nonce, server_auth_type, server_auth_name, server_user_hash,"
            " server_secret, server_nonce, devinfo_man, devinfo_mod, devinfo_fwv, last_session_at,"
            " locked_until, created, updated) VALUES (%s)" % ", ".join("?" * 19),
            rows,
        )


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("inventory"))
    d.start()
    d.stop()  # the schema exists now
    now = time.time()
    _fill(os.path.join(d.workdir, "var", "dmgateway.sqlite"), COUNT, now)
    d.now = now
    d.start()
    yield d
    d.stop()


def pages(daemon, query, limit):
    seen, cursor, calls = [], None, 0
    while True:
        target = "/devices?limit=%d%s%s" % (limit, "&" + query if query else "",
                                            "&cursor=" + cursor if cursor else "")
        status, body = daemon.call("GET", target)
        assert status == 200, body
        calls += 1
        assert len(body["devices"]) <= limit
        seen += [d["device_id"] for d in body["devices"]]
        cursor = body["next"]
        if cursor is None:
            return seen, calls


def test_every_device_once_in_order_over_10000(daemon):
    seen, calls = pages(daemon, "", 1000)
    expected = sorted("IMEI:%015d" % n for n in range(COUNT))
    assert seen == expected
    assert calls == 10  # the tenth full page already says there is no next one
    small, _ = pages(daemon, "server_id=fleet-1", 777)
    assert small == [d for d in expected if int(d[5:]) % 4 == 1]


def test_filters_over_10000(daemon):
    man, _ = pages(daemon, "man=Acme&mod=X3", 500)
    assert man == sorted("IMEI:%015d" % n for n in range(COUNT) if n % 2 and n % 5 == 3)
    no_msisdn, _ = pages(daemon, "has_msisdn=false", 1000)
    assert len(no_msisdn) == COUNT // 10
    locked, _ = pages(daemon, "locked_out=true", 1000)
    assert locked == ["IMEI:%015d" % n for n in range(COUNT) if n % 1000 == 1]
    never, _ = pages(daemon, "never_seen=true", 1000)
    assert len(never) == len([n for n in range(COUNT) if n % 7 == 0])
    cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(daemon.now - 100))
    recent, _ = pages(daemon, "last_session_after=" + urllib.parse.quote(cutoff), 1000)
    assert recent == sorted("IMEI:%015d" % n for n in range(101) if n % 7)
    status, body = daemon.call("GET", "/devices?fwv=1.2&limit=3")
    assert status == 200 and all(d["device_id"] for d in body["devices"]) and body["next"]
    assert daemon.call("GET", "/devices?cursor=not-ours!")[0] == 400
    assert daemon.call("GET", "/devices?colour=red")[0] == 400


def _account(daemon, device_id):
    return Account(device_id=device_id, server_id="dmgw-e2e", server_url=daemon.url,
                   client=Credentials("md5", "dev1", "dev-secret-1"),
                   server=Credentials("md5", "dmgw-e2e", "srv-secret-1"))


def test_delete_device_and_cancel_jobs(daemon):
    device = "IMEI:990000000000001"
    assert daemon.put_device(device, ACCOUNT)[0] == 201
    first = daemon.create_job(device, JOB)
    second = daemon.create_job(device, JOB)
    status, body = daemon.call("POST", "/jobs/%s/cancel" % first)
    assert (status, body) == (200, {"id": first, "state": "failed", "cancelled": True})
    assert daemon.job(first)["error"]["code"] == "cancelled"
    assert daemon.call("POST", "/jobs/%s/cancel" % first)[0] == 409
    quoted = urllib.parse.quote(device, safe="")
    status, body = daemon.call("DELETE", "/devices/" + quoted)
    assert (status, body["jobs_cancelled"], body["history"]) == (200, [second], "kept")
    assert daemon.call("GET", "/devices/" + quoted)[0] == 404
    assert daemon.call("GET", "/jobs/" + second)[0] == 404
    events = [e for e in daemon.events() if e.get("device_id") == device]
    assert ("device", "deleted") in [(e["type"], e.get("action")) for e in events]
    assert daemon.call("DELETE", "/devices/" + quoted)[0] == 404


def test_cancel_in_a_live_session_waits_for_its_end_only_for_a_job_sent(daemon):
    device = "IMEI:990000000000002"
    assert daemon.put_device(device, ACCOUNT)[0] == 201
    running = daemon.create_job(device, JOB)
    session = ClientSession(_account(daemon, device), random_bytes=os.urandom)
    request = session.start()
    status, body, headers = post(request.url, request.body, request.headers)
    assert status == 200
    # the session is live: its job sent already is cancelled at its end; a job
    # queued now joins it, and, not sent yet, is dropped from it and cancelled at once
    joined = daemon.create_job(device, JOB)
    status, answer = daemon.call("POST", "/jobs/%s/cancel" % running)
    assert (status, answer["cancel"]) == (202, "at_session_end")
    status, answer = daemon.call("POST", "/jobs/%s/cancel" % joined)
    assert (status, answer["state"], answer["cancelled"]) == (200, "failed", True)
    request = session.receive(body, headers)
    while request is not None:
        status, body, headers = post(request.url, request.body, request.headers)
        request = session.receive(body, headers)
    states = {job_id: daemon.job(job_id) for job_id in (running, joined)}
    # the running job's commands went out and came back: it is done; the other never ran
    assert states[running]["state"] == "done"
    assert (states[joined]["state"], states[joined]["error"]["code"]) == ("failed", "cancelled")
    assert [uri for _cmd, uri, _status in session.executed] == ["./DevDetail/SwV"]


def test_notify_sms_without_smpp_is_400(daemon):
    device = "IMEI:990000000000003"
    assert daemon.put_device(device, ACCOUNT)[0] == 201
    quoted = urllib.parse.quote(device, safe="")
    status, body = daemon.call("POST", "/devices/%s/jobs" % quoted, dict(JOB, notify="sms"))
    assert (status, body["error"]["code"]) == (400, "bearer_disabled")
    status, body = daemon.call("POST", "/devices/%s/jobs" % quoted, dict(JOB, notify="auto"))
    assert status == 201
    assert "no notification bearer" in daemon.job(body["id"])["notify_note"]
