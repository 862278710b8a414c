"""/metrics of the real daemon, parsed with prometheus-client's own parser:
histograms move after a DM session, API requests are counted by status,
process_* is there, labels stay bounded, and [metrics] require_token works."""

import os
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials
from tests.fixtures import E2E_ACCOUNT as ACCOUNT, E2E_DEVICE as DEVICE
from tests.interop.daemon import Daemon, run_client



def scrape(daemon, token=None):
    request = urllib.request.Request(daemon.api[: -len("/api/v1")] + "/metrics")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode("utf-8")
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families, name, sample_name=None, **labels):
    family = families[name]
    for sample in family.samples:
        if sample.name == (sample_name or name) and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None


def test_metrics_parse_and_move_after_a_session(tmp_path):
    daemon = Daemon(tmp_path).start()
    try:
        before = scrape(daemon)
        assert before["dmgw_session_duration_seconds"].type == "histogram"
        assert before["dmgw_http_request_duration_seconds"].type == "histogram"
        assert before["dmgw_store_transaction_duration_seconds"].type == "histogram"
        assert value(before, "process_resident_memory_bytes") > 0
        assert value(before, "dmgw_up") == 1
        assert daemon.put_device(DEVICE, ACCOUNT)[0] == 201
        job = daemon.create_job(DEVICE, {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}], "notify": "none"})
        daemon.call("GET", "/jobs/nope-nope")  # a 404
        account = Account(device_id=DEVICE, server_id="dmgw-e2e", server_url=daemon.url,
                          client=Credentials("md5", "dev1", "dev-secret-1"),
                          server=Credentials("md5", "dmgw-e2e", "srv-secret-1"))
        session = run_client(ClientSession(account, random_bytes=os.urandom))
        assert session.outcome == "completed"
        assert daemon.job(job)["state"] == "done"
        after = scrape(daemon)
        assert value(after, "dmgw_session_duration_seconds", "dmgw_session_duration_seconds_count",
                     outcome="completed") == 1
        assert value(after, "dmgw_http_request_duration_seconds", "dmgw_http_request_duration_seconds_count",
                     listener="dm") >= 2
        assert value(after, "dmgw_api_requests", "dmgw_api_requests_total", status="201") >= 2
        assert value(after, "dmgw_api_requests", "dmgw_api_requests_total", status="404") == 1
        assert value(after, "dmgw_sessions_started", "dmgw_sessions_started_total") == 1
        assert value(after, "dmgw_jobs_finished", "dmgw_jobs_finished_total", state="done") == 1
        assert value(after, "dmgw_store_transaction_duration_seconds",
                     "dmgw_store_transaction_duration_seconds_count") > value(
            before, "dmgw_store_transaction_duration_seconds", "dmgw_store_transaction_duration_seconds_count")
        # bounded labels: no device id anywhere
        for family in after.values():
            for sample in family.samples:
                assert DEVICE not in " ".join(sample.labels.values())
    finally:
        daemon.stop()


def test_require_token(tmp_path):
    daemon = Daemon(tmp_path, gateway_extra="[metrics]\nrequire_token = true\n").start()
    try:
        try:
            scrape(daemon)
            raise AssertionError("/metrics answered without the token")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        assert "dmgw_up" in scrape(daemon, daemon.token)
    finally:
        daemon.stop()
