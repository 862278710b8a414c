"""The web console in a real browser: Debian's chromium, headless, driven by
Playwright against the real daemon, with simulated devices doing the DM
sessions.  An operator logs in (by keyboard), finds a device by model,
builds a job and watches the simulator complete it, clears a lockout, sees
API errors as the API words them, follows the event feed and the
operations page, at 1280x800 and at phone width.

Screenshots of every page go to tmp/artifacts/console/ (or
$DMGW_ARTIFACTS/console/); they are not committed.
"""

import os
import re
import shutil
import tempfile
import time
import urllib.parse

import pytest

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials
from dmgateway.client.functions import DeviceFunctions
from tests.interop.daemon import ROOT, Daemon, run_client

CHROMIUM = "/usr/bin/chromium"
# Skipped without chromium or playwright, unless DMGW_REQUIRE_BROWSER=1 (CI): then they fail.
REQUIRED = os.environ.get("DMGW_REQUIRE_BROWSER") == "1"
try:
    from playwright import sync_api as playwright_api
except ImportError:  # pragma: no cover - depends on the machine
    if REQUIRED:
        raise
    pytest.skip("playwright missing: pip install -e '.[test]'", allow_module_level=True)
if not REQUIRED and not os.path.exists(CHROMIUM):
    pytest.skip("chromium missing: apt-get install -y chromium (make test-deps)", allow_module_level=True)

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 15_000
ARTIFACTS = os.path.join(os.environ.get("DMGW_ARTIFACTS") or os.path.join(ROOT, "tmp", "artifacts"), "console")

SERVER = {"type": "md5", "name": "dmgw-e2e", "secret": "srv-secret-1"}
DEVICES = {
    "IMEI:350000000000101": "Phone-A1",
    "IMEI:350000000000102": "Phone-B2",
    "IMEI:350000000000103": "Phone-A1",
}
LOCKED = "IMEI:350000000000103"


def account_of(device_id, secret=None):
    return Account(
        device_id=device_id, server_id="dmgw-e2e", server_url=None,
        client=Credentials("md5", device_id[-3:], secret or "secret-" + device_id[-3:]),
        server=Credentials("md5", "dmgw-e2e", "srv-secret-1"),
    )


def session(daemon, device_id, secret=None):
    account = account_of(device_id, secret)
    account.server_url = daemon.url
    client = ClientSession(account, random_bytes=os.urandom, devinfo={"Mod": DEVICES[device_id], "Man": "Acme"})
    return run_client(client)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(
        tmp_path_factory.mktemp("console"),
        gateway_extra="[auth]\nmax_failures = 2\nlockout = 600\n",
        extra_ini={"functions.ini": "[functions]\ncampaign_interval = 1\n"},
    ).start()
    try:
        for device_id in DEVICES:
            status, body = d.put_device(device_id, {
                "server_id": "dmgw-e2e",
                "client_auth": {"type": "md5", "name": device_id[-3:], "secret": "secret-" + device_id[-3:]},
                "server_auth": SERVER,
                "msisdn": "+4477000" + device_id[-3:],
            })
            assert status == 201, body
            assert session(d, device_id).outcome == "completed"
        # two sessions with a wrong secret lock 127.0.0.1 out of LOCKED
        for _ in range(2):
            session(d, LOCKED, secret="wrong")
        status, body = d.call("GET", "/devices/" + urllib.parse.quote(LOCKED, safe=""))
        assert [lockout["scope"] for lockout in body["lockouts"]] == ["peer"], body
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def browser():
    os.makedirs(ARTIFACTS, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="dmgw-chromium-")
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser, daemon):
    page = browser.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "401" not in m.text
            and "400" not in m.text and "404" not in m.text else None)
    page.set_viewport_size({"width": 1280, "height": 800})
    yield page
    page.close()
    assert not problems, problems  # no script error, no CSP violation


def console_url(daemon):
    return daemon.api[: -len("/api/v1")] + "/console/"


def shot(page, name):
    page.screenshot(path=os.path.join(ARTIFACTS, name + ".png"), full_page=True)


def log_in(page, daemon):
    page.goto(console_url(daemon))
    page.get_by_label("API token").fill(daemon.token)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Devices", level=1).wait_for()


def wait_status(page, fragment):
    """Wait for the message region to show ``fragment`` (no eval: the page's CSP forbids it)."""
    page.locator("#status").get_by_text(fragment).wait_for()


def nav(page, name):
    page.get_by_role("navigation", name="Sections").get_by_role("link", name=name).click()


def status_text(page):
    return page.locator("#status").inner_text()


def test_login_by_keyboard_token_in_session_storage_only(page, daemon):
    page.goto(console_url(daemon))
    heading = page.get_by_role("heading", name="Log in")
    heading.wait_for()
    shot(page, "01-login")
    # a wrong token: the API's own words
    page.keyboard.type("not-the-token")
    page.keyboard.press("Enter")
    wait_status(page, "401 ")
    assert "401 unauthorized: invalid bearer token" in status_text(page)
    assert page.evaluate("sessionStorage.getItem('dmgateway.token')") is None
    # the right one, by keyboard only: the field has the focus again
    page.keyboard.press("Control+A")
    page.keyboard.type(daemon.token)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Devices", level=1).wait_for()
    assert daemon.token not in page.url
    assert page.evaluate("sessionStorage.getItem('dmgateway.token')") == daemon.token
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    # every control on the page has a label
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input, select, textarea')]"
        ".filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.name)"
    )
    assert unlabelled == []
    # log out forgets it
    page.get_by_role("button", name="Log out").click()
    heading.wait_for()
    assert page.evaluate("sessionStorage.getItem('dmgateway.token')") is None


def test_find_a_device_by_model_and_run_a_job_through_the_simulator(page, daemon):
    log_in(page, daemon)
    page.get_by_label("Model (Mod)").fill("Phone-B2")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("1 device.").wait_for()
    rows = page.locator("table tbody tr")
    assert rows.count() == 1
    assert "IMEI:350000000000102" in rows.first.inner_text()
    assert "Phone-B2" in rows.first.inner_text()
    shot(page, "02-devices")

    page.get_by_role("link", name="IMEI:350000000000102").click()
    page.get_by_role("heading", name="IMEI:350000000000102", level=1).wait_for()
    devinfo = page.locator("section[aria-labelledby=h-devinfo]").inner_text()
    assert "Phone-B2" in devinfo and "Acme" in devinfo
    assert "completed" in page.locator("section[aria-labelledby=h-session]").inner_text()
    shot(page, "03-device")

    # the job builder: Get SwV, then a second command reading the model
    builder = page.get_by_role("form", name="New job")
    builder.get_by_role("button", name="Add a command").click()
    second = builder.locator("fieldset.command").nth(1)
    second.get_by_label("Target").fill("./DevInfo/Mod")
    builder.get_by_label("Wake-up").select_option("none")
    builder.get_by_role("button", name="Create job").click()
    page.wait_for_url("**#/jobs/*")
    job_id = urllib.parse.unquote(page.url.rsplit("/", 1)[1])
    page.locator(".job-state").get_by_text("queued").wait_for()
    assert daemon.job(job_id)["commands"] == [
        {"op": "Get", "target": "./DevDetail/SwV"}, {"op": "Get", "target": "./DevInfo/Mod"},
    ]
    # the device's session: the page follows it to the end
    assert session(daemon, "IMEI:350000000000102").outcome == "completed"
    page.locator(".job-state").get_by_text("done").wait_for()
    results = page.get_by_role("region", name="Results").inner_text()
    assert "./DevInfo/Mod" in results and "Phone-B2" in results and "200" in results
    shot(page, "04-job")

    # back on the device page: both sessions, the newest carrying the job
    page.get_by_role("link", name="IMEI:350000000000102").click()
    history = page.get_by_role("region", name="Last sessions")
    history.locator("tbody tr").nth(1).wait_for()
    rows = history.locator("tbody tr").all_inner_texts()
    assert len(rows) == 2 and job_id[:12] in rows[0] and "completed" in rows[1], rows
    assert job_id[:12] in page.get_by_role("region", name="Newest jobs").inner_text()
    # a wake-up over a bearer this gateway has not enabled: the API's refusal, word for word
    page.locator("summary", has_text="Wake up").click()
    page.get_by_label("Bearer").select_option("sms")
    page.get_by_role("button", name="Wake up").click()
    wait_status(page, "400 ")
    assert status_text(page).startswith("400 bearer_disabled: "), status_text(page)

    # the event feed shows that session and job
    nav(page, "Jobs and events")
    page.get_by_role("heading", name="Jobs and events").wait_for()
    page.get_by_text("Live: waiting for events").wait_for()
    feed = page.get_by_role("region", name="Event feed")
    feed.locator("tr[data-type=job]").first.wait_for()
    assert job_id[:12] in feed.inner_text()
    shot(page, "05-events")


def test_api_errors_are_shown_as_the_api_says(page, daemon):
    log_in(page, daemon)
    page.goto(console_url(daemon) + "#/devices/" + urllib.parse.quote("IMEI:350000000000101", safe=""))
    builder = page.get_by_role("form", name="New job")
    builder.get_by_label("Target").fill("./A/../B")
    builder.get_by_role("button", name="Create job").click()
    wait_status(page, "400 ")
    text = status_text(page)
    assert text.startswith("400 invalid_job: commands[0].target"), text
    # an unknown device
    page.goto(console_url(daemon) + "#/devices/IMEI%3A999")
    wait_status(page, "404 ")
    assert "404 unknown_device: no device 'IMEI:999'" in status_text(page)
    # a filter the inventory refuses
    page.goto(console_url(daemon) + "#/devices?last_session_after=yesterday")
    wait_status(page, "400 ")
    assert "400 invalid_parameter: last_session_after" in status_text(page)


def test_clear_a_lockout(page, daemon):
    log_in(page, daemon)
    page.get_by_label("Model (Mod)").fill("Phone-A1")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=LOCKED).click()
    lockouts = page.locator("section[aria-labelledby=h-lockouts]")
    lockouts.get_by_text("127.0.0.1").wait_for()
    shot(page, "06-lockout")
    lockouts.get_by_role("button", name="Clear lockouts").click()
    lockouts.get_by_text("none in force").wait_for()
    assert "Lockouts of %s cleared (1)." % LOCKED in status_text(page)
    status, body = daemon.call("GET", "/devices/" + urllib.parse.quote(LOCKED, safe=""))
    assert body["lockouts"] == []
    # and the device gets in again
    assert session(daemon, LOCKED).outcome == "completed"


def test_bootstrap_then_delete(page, daemon):
    doomed = "IMEI:350000000000199"
    status, body = daemon.put_device(doomed, {
        "server_id": "dmgw-e2e", "client_auth": {"type": "md5", "name": "199", "secret": "secret-199"},
        "server_auth": SERVER,
    })
    assert status == 201, body
    log_in(page, daemon)
    page.goto(console_url(daemon) + "#/devices/" + urllib.parse.quote(doomed, safe=""))
    page.locator("summary", has_text="Bootstrap").click()
    page.get_by_label("Profile").select_option("dm")
    page.get_by_label("Security (SEC)").select_option("USERPIN")
    page.get_by_label("PIN").fill("1234")
    page.get_by_label("Deliver").select_option("return")
    page.get_by_role("button", name="Bootstrap", exact=True).click()
    wait_status(page, "Bootstrap document built.")
    answer = page.locator("pre.json").inner_text()
    assert '"sec": "USERPIN"' in answer and '"content_type": "application/vnd.syncml.dm+wbxml"' in answer
    # a push to a device without an MSISDN: the API's 400
    page.get_by_label("Deliver").select_option("push")
    page.get_by_role("button", name="Bootstrap", exact=True).click()
    wait_status(page, "no_msisdn")
    assert status_text(page).startswith("400 no_msisdn: "), status_text(page)
    # delete, in two steps
    page.locator("summary", has_text="Delete").click()
    page.get_by_role("button", name="Delete device…").click()
    page.get_by_role("button", name="Confirm: delete " + doomed).click()
    page.get_by_role("heading", name="Devices", level=1).wait_for()
    wait_status(page, doomed + " deleted")
    assert daemon.call("GET", "/devices/" + urllib.parse.quote(doomed, safe=""))[0] == 404


def test_operations_page_from_metrics(page, daemon):
    log_in(page, daemon)
    nav(page, "Operations")
    page.get_by_role("heading", name="Operations", level=1).wait_for()
    page.locator(".health").get_by_text("ok").wait_for()
    assert page.locator(".live-sessions").inner_text() == "0"
    # two samples make the rate and latency charts
    page.locator("svg.chart polyline").nth(1).wait_for(state="attached")
    text = page.locator("main").inner_text()
    assert "Webhook backlog" in text and "no SMPP link configured" in text
    # sessions while the page watches: the rate and latency charts move
    for _ in range(4):
        assert session(daemon, "IMEI:350000000000101").outcome == "completed"
    moved = re.compile(r"peak (0\.[0-9]*[1-9]|[1-9])")
    for chart in ("DM sessions opened per second", "Mean DM request latency"):
        page.locator("svg.chart title").filter(has_text=chart).filter(has_text=moved).wait_for(state="attached")
    titles = page.locator("svg.chart title").all_text_contents()
    assert any("completed" in t for t in titles if t.startswith("Sessions ended by outcome")), titles
    shot(page, "07-operations")


def function_session(daemon, device_id, functions):
    """One session of a device with its FUMO/SCOMO/LAWMO simulator, carrying its reports."""
    account = account_of(device_id)
    account.server_url = daemon.url
    client = ClientSession(account, random_bytes=os.urandom, devinfo={"Mod": DEVICES[device_id], "Man": "Acme"})
    functions.install(client.tree)
    run_client(client, generic_alerts=functions.reports())
    assert client.outcome == "completed"
    functions.reported()


def test_campaign_from_a_filter_runs_to_its_end(page, daemon):
    daemon.call("DELETE", "/devices/%s/lockouts" % urllib.parse.quote(LOCKED, safe=""))  # if still locked
    log_in(page, daemon)
    nav(page, "Campaigns")
    page.get_by_role("heading", name="Campaigns", level=1).wait_for()
    form = page.get_by_role("form", name="New campaign")
    # what the API refuses is shown in its words
    form.get_by_label("Model (Mod)").fill("Phone-A1")
    form.get_by_label("Waves (%)").fill("50, 90")
    form.get_by_role("button", name="Start campaign").click()
    wait_status(page, "400 ")
    assert status_text(page).strip() == "400 invalid_campaign: 'waves' must increase and end at 100"
    # LAWMO fully_lock over the two Phone-A1 devices, in two waves
    form.get_by_label("Function").select_option("lawmo")
    form.get_by_label("Action").select_option("fully_lock")
    form.get_by_label("Waves (%)").fill("50, 100")
    form.get_by_label("Rate per minute").fill("600")
    shot(page, "08-campaign-new")
    form.get_by_role("button", name="Start campaign").click()
    page.wait_for_url("**#/campaigns/*")
    campaign_id = urllib.parse.unquote(page.url.rsplit("/", 1)[1])
    page.locator(".campaign-state").get_by_text("running").wait_for()
    # the devices call in when they have a job or a report, until the page says done
    fleet = {device_id: DeviceFunctions(device_id) for device_id in DEVICES if DEVICES[device_id] == "Phone-A1"}
    deadline = time.monotonic() + 60
    while not page.locator(".campaign-state").get_by_text("done").is_visible():
        assert time.monotonic() < deadline, daemon.call("GET", "/campaigns/" + campaign_id)
        for device_id, functions in fleet.items():
            status, jobs = daemon.call("GET", "/devices/%s/jobs" % urllib.parse.quote(device_id, safe=""))
            if functions.has_work() or any(j["state"] in ("queued", "notified") for j in jobs["jobs"]):
                function_session(daemon, device_id, functions)
        page.wait_for_timeout(300)
    report = page.locator("section[aria-labelledby=h-report]")
    report.get_by_text("IMEI:350000000000103").wait_for()
    text = report.inner_text()
    assert "IMEI:350000000000101" in text and "IMEI:350000000000102" not in text
    titles = page.locator("svg.chart title").all_text_contents()
    assert "Devices by state: done 2" in titles, titles
    assert "Devices by wave: wave 1 done 1, wave 2 done 1" in titles, titles
    assert any(t.startswith("Outcomes by result code: 1200 2") for t in titles), titles
    shot(page, "09-campaign")
    status, view = daemon.call("GET", "/campaigns/" + campaign_id)
    assert view["state"] == "done" and view["progress"]["by_state"] == {"done": 2}, view
    # the device page shows what the operation read back
    report.get_by_role("link", name="IMEI:350000000000101").click()
    functions = page.locator("section[aria-labelledby=h-functions]")
    functions.wait_for()
    status, device = daemon.call("GET", "/devices/" + urllib.parse.quote("IMEI:350000000000101", safe=""))
    lawmo_state = device["functions"]["lawmo_state"]
    assert lawmo_state is not None, device
    assert "LAWMO state\n%s" % (lawmo_state,) in functions.inner_text()


def test_phone_width(page, daemon):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, daemon)
    page.get_by_role("table").wait_for()
    shot(page, "10-phone-devices")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("link", name="IMEI:350000000000101").click()
    page.get_by_role("heading", name="IMEI:350000000000101", level=1).wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "11-phone-device")


def test_static_files_headers_and_no_token_needed(daemon):
    import urllib.request

    base = console_url(daemon)
    with urllib.request.urlopen(base, timeout=10) as response:
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        page = response.read().decode("utf-8")
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere
    started = time.monotonic()
    with urllib.request.urlopen(base + "app.js", timeout=10) as response:
        assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert time.monotonic() - started < 5
