"""A store outage against the real daemon (issue 10): PostgreSQL (the
test harness's real server) stops in the middle of a session and comes
back.  Requests answer 503 with Retry-After, the outage is logged once when
it starts and once when it ends, the interrupted session's job does not stay
``running``, the gateway serves again without a restart, and a clean SIGTERM
afterwards is not reported as an unclean stop at the next start."""

import os
import time
import urllib.parse

import pytest

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials
from tests.fixtures import E2E_ACCOUNT as ACCOUNT
from tests.interop.daemon import Daemon, post, run_client
from tests.pgharness import PostgresServer, PostgresUnavailable, require_postgres

DEVICE = "IMEI:350000000000099"
GET_SWV = {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}], "notify": "none"}


@pytest.fixture
def postgres():
    try:
        with PostgresServer.start() as server:
            yield server
    except PostgresUnavailable as e:
        if require_postgres():
            pytest.fail(f"DMGW_REQUIRE_PG=1 but {e}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {e}")


def account(daemon):
    return Account(device_id=DEVICE, server_id="dmgw-e2e", server_url=daemon.url,
                   client=Credentials("md5", "dev1", "dev-secret-1"),
                   server=Credentials("md5", "dmgw-e2e", "srv-secret-1"))


def until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in %ss" % (timeout,))


def test_postgresql_restart_mid_session(postgres, tmp_path):
    uri = postgres.create_database()
    gw = Daemon(tmp_path, store=uri, session_timeout=60)
    with open(os.path.join(gw.conf, "dmgateway.ini")) as f:
        text = f.read()
    with open(os.path.join(gw.conf, "dmgateway.ini"), "w") as f:
        f.write(text.replace("session_timeout = 60\n", "session_timeout = 60\nstore_retry_after = 2\n"))
    gw.start()
    try:
        assert gw.put_device(DEVICE, ACCOUNT)[0] == 201
        job_id = gw.create_job(DEVICE, GET_SWV)
        session = ClientSession(account(gw), random_bytes=os.urandom)
        request = session.start()
        status, body, headers = post(request.url, request.body, request.headers)
        assert status == 200
        request = session.receive(body, headers)
        assert gw.job(job_id)["state"] == "running"

        postgres.stop_server()
        for _ in range(20):
            status, body, headers = post(request.url, request.body, request.headers)
            assert status == 503, body
            assert headers["retry-after"] == "2"
        for _ in range(20):
            status, error = gw.call("GET", "/jobs/" + job_id)
            assert (status, error["error"]["code"]) == (503, "store_unavailable")
        another = ClientSession(account(gw), random_bytes=os.urandom).start()
        status, body, headers = post(another.url, another.body, another.headers)
        assert status == 503

        postgres.start_again()
        until(lambda: "store available again" in gw.log())
        job = gw.job(job_id)
        # the results of the message the store failed were taken; else it failed with a reason
        assert job["state"] in ("done", "failed"), job
        if job["state"] == "failed":
            assert job["error"]["code"] == "store_unavailable"
        log = gw.log()
        assert log.count("store unavailable:") == 1, log[-4000:]
        assert gw.log().count("store available again") == 1
        # no traceback per request (40+ were answered 503): only adbapi's own
        # "Rollback failed", once per broken pool connection
        log = gw.log()
        assert log.count("Traceback") == log.count("Rollback failed") <= 10, log

        # served again without a restart
        created = gw.create_job(DEVICE, GET_SWV)
        fresh = Account(device_id=DEVICE, server_id="dmgw-e2e", server_url=gw.url,
                        client=Credentials("md5", "dev1", "dev-secret-1"),
                        server=Credentials("md5", "dmgw-e2e", "srv-secret-1"))
        fresh.client.nonce = session.account.client.nonce
        fresh.server.nonce = session.account.server.nonce
        done = run_client(ClientSession(fresh, random_bytes=os.urandom))
        assert done.outcome == "completed", done.log
        assert gw.job(created)["state"] == "done"
        view = gw.call("GET", "/devices/" + urllib.parse.quote(DEVICE, safe=""))[1]
        assert view["last_session"]["outcome"] == "completed"

        # a session live at SIGTERM is ended cleanly: the next start says so
        gw.create_job(DEVICE, GET_SWV)
        run_client(ClientSession(fresh, random_bytes=os.urandom), stop_after=1)
        gw.stop()
        before = len(gw.log())
        gw.start()
        restarted = gw.log()[before:]
        assert "unclean stop" not in restarted, restarted
    finally:
        gw.stop()
