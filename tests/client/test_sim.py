"""Simulated devices: records, device sets, API bodies, wake-ups, pacing, statistics."""

import base64
import gc
import io
import tracemalloc

import pytest

from dmgateway.auth.verify import challenge
from dmgateway.client import sim
from dmgateway.client.http import TransportError
from dmgateway.codec import decode_message
from dmgateway.codec import syncml as sm
from dmgateway.notify import package0, wsp

URL = "http://dm.example.com/dm"


def device(**kw):
    values = dict(device_id="IMEI:490154203237518", client_name="dmclient01",
                  client_secret="s3cr3t!", server_name="com.example.dms",
                  server_secret="srvPass123", msisdn="+447700900123",
                  sip_uri="sip:dev@example.com")
    values.update(kw)
    args = [values.pop(k) for k in ("device_id", "client_name", "client_secret",
                                    "server_name", "server_secret")]
    return sim.SimDevice(*args, **values)


# -- the record ------------------------------------------------------------------


def test_session_is_built_on_demand_with_the_device_credentials():
    d = device(client_nonce=b"\x01\x02", server_nonce=b"\x03")
    session = d.session(URL, random_bytes=lambda n: b"\x07" * n, encoding="wbxml")
    assert session.account.device_id == d.device_id
    assert session.account.server_url == URL
    assert session.account.client.name == "dmclient01"
    assert session.account.client.nonce == b"\x01\x02"
    assert session.account.server.nonce == b"\x03"
    request = session.start()
    msg, encoding = decode_message(request.body, request.headers["Content-Type"])
    assert encoding == "wbxml"
    assert msg.hdr.source.loc_uri == d.device_id
    assert msg.hdr.cred is not None  # md5 in package 1
    # a second session gets its own tree: nothing is shared through the record
    other = d.session(URL, random_bytes=lambda n: b"\x08" * n)
    assert other.tree is not session.tree


def test_devinfo_overrides_reach_package_1():
    d = device(overrides={"devinfo": {"Man": "SimCorp"}})
    request = d.session(URL, random_bytes=lambda n: b"\x01" * n).start()
    msg, _ = decode_message(request.body, request.headers["Content-Type"])
    replace = next(c for c in msg.body if isinstance(c, sm.Replace))
    values = {item.source.loc_uri: item.data for item in replace.items}
    assert values["./DevInfo/Man"] == "SimCorp"


def sent_challenge(session, nonce):
    """Record in ``session`` an outgoing SyncHdr Status carrying our Chal with ``nonce``."""
    request = session.start()
    msg, _ = decode_message(request.body, request.headers["Content-Type"])
    status = sm.Status(msg_ref="1", cmd_ref="0", cmd="SyncHdr", data=212,
                       chal=challenge("md5", nonce))
    session.transcript.append(("out", sm.SyncML(hdr=msg.hdr, body=[status], final=True)))


def test_remember_keeps_rotated_nonces_and_replaced_credentials():
    d = device(server_nonce=b"old-server")
    session = d.session(URL, random_bytes=lambda n: b"\x01" * n)
    sent_challenge(session, b"next-server")
    session.account.client.nonce = b"next-client"
    session.account.server.nonce = b"next-server"
    base = "./DMAcc/" + session.account.name
    session.tree.set(base + "/AppAuth/2/AAuthSecret", "rotated-secret", "chr")
    d.remember(session)
    assert d.client_nonce == b"next-client"
    assert d.server_nonce == b"next-server"
    assert d.server_secret == "rotated-secret"
    assert d.client_secret == "s3cr3t!"
    assert d.server_url is None  # still where it was sent
    assert d.session(URL, random_bytes=bytes).account.server.nonce == b"next-server"


def test_a_server_nonce_never_sent_is_not_kept():
    """The session made a new SRVCRED nonce but ended before sending it."""
    d = device(server_nonce=b"old-server")
    session = d.session(URL, random_bytes=lambda n: b"\x01" * n)
    session.start()
    session.account.server.nonce = b"made-but-never-sent"
    d.remember(session)
    assert d.server_nonce == b"old-server"


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError):
        device(scheme="digest")


# -- device sets ------------------------------------------------------------------


def test_pattern_devices_are_deterministic_and_distinct():
    first = list(sim.pattern_devices(3, start=7, sip_domain="sim.example"))
    again = list(sim.pattern_devices(3, start=7, sip_domain="sim.example"))
    assert [d.device_id for d in first] == ["IMEI:350000000000007", "IMEI:350000000000008",
                                            "IMEI:350000000000009"]
    assert [d.client_secret for d in first] == [d.client_secret for d in again]
    assert len({d.client_secret for d in first} | {d.server_secret for d in first}) == 6
    assert first[0].msisdn == "+4477009000007"
    assert first[0].sip_uri == "sip:350000000000007@sim.example"
    other_seed = next(sim.pattern_devices(1, start=7, seed="other"))
    assert other_seed.client_secret != first[0].client_secret
    with pytest.raises(ValueError):
        list(sim.pattern_devices(2, imei_prefix="35" * 8))


CSV = """# devices for the lab
device_id,client_name,client_secret,server_name,server_secret,msisdn,sip_uri
IMEI:350000000000101,dev101,c101,dmgw-e2e,s101,+447700900101,sip:101@lab
IMEI:350000000000102,,c102,,s102,,

"""


def test_csv_loading():
    devices = sim.load_csv(io.StringIO(CSV), server_name="fallback")
    assert [d.device_id for d in devices] == ["IMEI:350000000000101", "IMEI:350000000000102"]
    first, second = devices
    assert (first.client_name, first.client_secret, first.server_name, first.server_secret) == (
        "dev101", "c101", "dmgw-e2e", "s101")
    assert (first.msisdn, first.sip_uri) == ("+447700900101", "sip:101@lab")
    assert second.client_name == "IMEI:350000000000102"
    assert second.server_name == "fallback"
    assert second.msisdn is None and second.sip_uri is None


def test_csv_round_trip_and_scheme_column():
    out = io.StringIO()
    originals = list(sim.pattern_devices(2, scheme="hmac"))
    sim.write_csv(originals, out)
    loaded = sim.load_csv(out.getvalue())
    assert [(d.device_id, d.client_secret, d.server_secret, d.scheme, d.msisdn) for d in loaded] \
        == [(d.device_id, d.client_secret, d.server_secret, "hmac", d.msisdn) for d in originals]


@pytest.mark.parametrize("text, message", [
    ("client_name,client_secret\nx,y\n", "no device_id column"),
    ("device_id,client_secret\n,abc\n", "line 2: empty device_id"),
    ("device_id,client_secret,scheme\nIMEI:1,abc,digest\n", "line 2: unknown authentication"),
    ("", "no device_id column"),
])
def test_csv_errors_name_the_problem(text, message):
    with pytest.raises(sim.CsvError, match=message):
        sim.load_csv(text)


def test_api_bodies():
    d = device(server_nonce=b"\x00\x01", scheme="hmac")
    body = sim.api_account(d, server_id="dmgw-e2e")
    assert body == {
        "server_id": "dmgw-e2e",
        "client_auth": {"type": "hmac", "name": "dmclient01", "secret": "s3cr3t!"},
        "server_auth": {"type": "hmac", "name": "com.example.dms", "secret": "srvPass123",
                        "nonce": base64.b64encode(b"\x00\x01").decode()},
        "msisdn": "+447700900123",
        "sip_uri": "sip:dev@example.com",
    }
    assert sim.api_job() == {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}],
                             "notify": "none"}


# -- wake-ups -------------------------------------------------------------------------


def package_zero(d, session_id=0x1A2B, secret=None, nonce=None):
    credential = package0.ServerCredential(
        d.server_name, d.server_nonce if nonce is None else nonce,
        secret=secret or d.server_secret)
    return package0.build(package0.Notification(d.server_name, session_id,
                                                ui_mode=package0.UI_BACKGROUND), credential)


def push(body):
    return wsp.encode_push(wsp.PushPDU(content_type=wsp.CT_SYNCML_NOTIFICATION,
                                       app_id=wsp.APP_SYNCML_DM, body=body))


def test_sip_wakeup_gives_the_session_id_in_hex():
    d = device(server_nonce=b"\x10\x20\x30")
    wake = sim.parse_wakeup(d, "sip", package_zero(d))
    assert wake.session_id == "1A2B"
    assert wake.ui_mode == package0.UI_BACKGROUND
    assert wake.server_id == "com.example.dms"
    assert not wake.resynchronised


def test_sms_wakeup_is_unwrapped_from_the_push():
    d = device()
    wake = sim.parse_wakeup(d, "sms", push(package_zero(d, session_id=0x00FF)))
    assert wake.session_id == "FF"


def test_wakeup_with_a_resync_nonce_is_accepted_and_flagged():
    d = device(server_nonce=b"current")
    wake = sim.parse_wakeup(d, "sip", package_zero(d, nonce=b"\x00\x00\x00\x00"))
    assert wake.resynchronised


@pytest.mark.parametrize("kind, data, message", [
    ("sip", None, "does not verify"),
    ("sip", b"\x00" * 5, "malformed sip"),
    ("sms", b"\x01\x06", "malformed sms"),
    ("sms", "other-push", "not a DM notification"),
    ("mms", b"", "unknown wake-up kind"),
])
def test_bad_wakeups_are_refused(kind, data, message):
    d = device()
    if data is None:
        data = package_zero(d, secret="not-the-secret")
    elif data == "other-push":
        data = wsp.encode_push(wsp.PushPDU(content_type=wsp.CT_SYNCML_DM_WBXML,
                                           app_id=wsp.APP_SYNCML_DM, body=b"x"))
    with pytest.raises(sim.WakeError, match=message):
        sim.parse_wakeup(d, kind, data)


# -- pacing and statistics -------------------------------------------------------------


def test_token_bucket_paces_on_the_given_clock():
    bucket = sim.TokenBucket(10, now=100.0)
    assert bucket.take(100.0)
    assert not bucket.take(100.0)
    assert bucket.delay(100.0) == pytest.approx(0.1)
    assert not bucket.take(100.05)
    assert bucket.take(100.1)
    # a long pause saves up at most the burst (1 token at 10/s)
    assert bucket.take(200.0)
    assert not bucket.take(200.0)
    unlimited = sim.TokenBucket(0, now=0.0)
    assert all(unlimited.take(0.0) for _ in range(100))
    assert unlimited.delay(0.0) == 0.0


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert sim.percentile(values, 0.5) == 50
    assert sim.percentile(values, 0.9) == 90
    assert sim.percentile(values, 0.99) == 99
    assert sim.percentile([7], 0.99) == 7
    assert sim.percentile([], 0.5) is None


class _Session:
    def __init__(self, outcome, error=None):
        self.outcome, self.error = outcome, error


def test_failures_are_classified():
    assert sim.classify_failure(error=TransportError("HTTP 503", 503)) == ("http", "HTTP 503")
    assert sim.classify_failure(error=TransportError("connection refused")) == (
        "transport", "connection refused")
    assert sim.classify_failure(_Session("failed", "the server rejected our credentials 3 times")
                                )[0] == "auth"
    assert sim.classify_failure(_Session("failed", "the server failed authentication 3 times")
                                )[0] == "auth"
    assert sim.classify_failure(_Session("failed", "undecodable server message: x")) == (
        "protocol", "undecodable server message: x")
    assert sim.classify_failure(_Session("aborted")) == ("protocol", "aborted")


def test_stats_summary():
    stats = sim.FleetStats()
    stats.started, stats.ended = 10.0, 12.0
    for n in range(1, 11):
        stats.record(n / 1000.0, "completed", messages=2)
    stats.record(0.5, "failed", "http", "HTTP 500")
    stats.record(0.6, "failed", "http", "HTTP 500")
    summary = stats.summary()
    assert summary["sessions"] == 12
    assert summary["completed"] == 10
    assert summary["errors"] == {"transport": 0, "auth": 0, "http": 2, "protocol": 0}
    assert summary["error_samples"] == {"http": ["HTTP 500"]}
    assert summary["sessions_per_s"] == 6.0
    assert summary["messages"] == 20
    assert summary["latency_ms"]["p50"] == 6.0
    assert summary["latency_ms"]["p99"] == 600.0
    assert summary["latency_ms"]["max"] == 600.0
    line = stats.progress_line(11.0, active=3)
    assert "sessions 12" in line and "failed 2" in line and "active 3" in line
    assert "ETA -" in line
    # with a total: done/total and the time left at the rate so far (12 in 1 s: 36 left, 3 s)
    line = stats.progress_line(11.0, active=3, total=48)
    assert "sessions 12/48" in line and "ETA 3s" in line
    assert "ETA 1s" in stats.progress_line(11.0, active=3, total=48, deadline=12.0)
    histogram = summary["latency_histogram"]
    assert [b["le_ms"] for b in histogram] == [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, None]
    assert sum(b["count"] for b in histogram) == 12
    # 1-10 ms in the first bucket, 500 ms in "<= 500", 600 ms in "<= 1000"
    assert [b["count"] for b in histogram] == [10, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]


# -- memory -----------------------------------------------------------------------------


def test_memory_per_device_is_small():
    """100,000 devices with rotated nonces must fit in one process: < 2 KiB each."""
    count = 100_000
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        devices = list(sim.pattern_devices(count, sip_domain="sim.example"))
        for n, d in enumerate(devices):  # as after a session: fresh 16-byte nonces each
            d.client_nonce = n.to_bytes(16, "big")
            d.server_nonce = (n + count).to_bytes(16, "big")
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    per_device = used / count
    print("memory per simulated device: %.0f bytes" % (per_device,))
    assert len(devices) == count
    assert 100 < per_device < 2048


def test_fleet_summary_text_draws_the_histogram():
    from dmgateway.cli.sim import format_summary_text

    stats = sim.FleetStats()
    stats.started, stats.ended = 0.0, 1.0
    for latency in (0.005, 0.006, 0.3):
        stats.record(latency, "completed")
    text = format_summary_text(stats.summary())
    assert "latency histogram (ms):" in text
    assert "  <= 10            2  " + "#" * 40 + "\n" in text
    assert "  <= 500           1  " + "#" * 20 + "\n" in text
    assert "  > 10000          0\n" in text
