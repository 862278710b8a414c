"""The fleet runner: pacing on a fake clock, then real fleets against the real daemon.

The daemon tests run ``twistd dmgateway`` on loopback (tests/interop/daemon.py)
and talk to it over real HTTP on the real reactor.
"""

import io
import shutil
import tempfile
import urllib.parse
from types import SimpleNamespace

from twisted.internet import defer, reactor, task
from twisted.internet.error import ConnectionRefusedError
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web.client import ResponseDone
from twisted.web.http_headers import Headers

from dmgateway.client import fleet, sim
from dmgateway.client.functions import DeviceFunctions
from dmgateway.codec import syncml as sm
from dmgateway.config.services import FunctionsConfig
from dmgateway.devfunctions import FunctionService
from dmgateway.notify import package0, wsp
from tests.interop.daemon import Daemon
from tests.outbox.test_service import config as outbox_config
from tests.outbox.test_service import open_outbox

SERVER_ID = "dmgw-e2e"  # what tests/interop/daemon.py configures


class HeldAgent:
    """An agent whose requests wait until the test answers them."""

    def __init__(self):
        self.requests = []

    def request(self, method, uri, headers=None, bodyProducer=None):
        d = defer.Deferred()
        self.requests.append((uri, d))
        return d

    def open(self):
        return [d for _, d in self.requests if not d.called]


class PacingTests(TestCase):
    def run_fleet(self, **options):
        clock, agent = task.Clock(), HeldAgent()
        devices = list(sim.pattern_devices(options.pop("count", 5)))
        runner = fleet.FleetRunner(reactor, devices, "http://127.0.0.1:9/dm", agent=agent,
                                   clock=clock, random_bytes=lambda n: b"\x01" * n, **options)
        return clock, agent, runner, runner.run()

    def test_rate_and_concurrency_are_respected(self):
        clock, agent, runner, done = self.run_fleet(rate=10, concurrency=2)
        self.assertEqual(len(agent.open()), 1)  # one token to start with
        clock.advance(0.05)
        self.assertEqual(len(agent.open()), 1)
        clock.advance(0.05)
        self.assertEqual(len(agent.open()), 2)
        clock.advance(1.0)
        self.assertEqual(len(agent.open()), 2)  # the concurrency cap, tokens or not
        agent.open()[0].errback(ConnectionRefusedError())
        self.assertEqual(len(agent.open()), 2)  # a saved token starts the next one at once
        while agent.open():
            clock.advance(0.1)
            for d in agent.open():
                d.errback(ConnectionRefusedError())
        summary = self.successResultOf(done)
        self.assertEqual(len(agent.requests), 5)
        self.assertEqual(summary["sessions"], 5)
        self.assertEqual(summary["errors"]["transport"], 5)
        self.assertEqual(summary["completed"], 0)
        self.assertEqual(summary["outcomes"], {"failed": 5})
        self.assertIsNotNone(summary["latency_ms"]["p99"])

    def test_duration_stops_a_fleet_that_goes_round(self):
        clock, agent, runner, done = self.run_fleet(count=2, rate=0, concurrency=1, duration=1.0)
        for _ in range(6):  # every 0.3 s the open request fails; devices go round
            clock.advance(0.3)
            for d in agent.open():
                d.errback(ConnectionRefusedError())
        summary = self.successResultOf(done)
        self.assertEqual(summary["sessions"], 4)  # started at 0, 0.3, 0.6, 0.9
        self.assertEqual(summary["elapsed_s"], 1.2)

    def test_http_timeout_counts_as_transport_error(self):
        clock, agent, runner, done = self.run_fleet(count=1, timeout=5)
        clock.advance(5)
        summary = self.successResultOf(done)
        self.assertEqual(summary["errors"]["transport"], 1)
        self.assertIn("within 5", summary["error_samples"]["transport"][0])

    def test_progress_line_is_written_at_most_twice_a_second(self):
        stream = io.StringIO()
        clock, agent, runner, done = self.run_fleet(count=1, progress=stream)
        clock.pump([0.25] * 8)
        self.assertEqual(stream.getvalue().count("\r"), 4)
        agent.open()[0].errback(ConnectionRefusedError())
        self.successResultOf(done)
        self.assertTrue(stream.getvalue().endswith("\n"))
        self.assertIn("sessions 1", stream.getvalue().splitlines()[-1])

    def test_progress_only_on_a_tty_unless_asked(self):
        class Tty(io.StringIO):
            def isatty(self):
                return True

        self.assertIsNone(fleet.progress_stream(False, io.StringIO()))
        pipe = io.StringIO()
        self.assertIs(fleet.progress_stream(True, pipe), pipe)
        tty = Tty()
        self.assertIs(fleet.progress_stream(False, tty), tty)


class _Body:
    """What an Agent's response is to the fleet: a code, headers and a body."""

    def __init__(self, reply):
        self.code = reply.code
        self.phrase = b"OK"
        self.headers = Headers({b"content-type": [reply.content_type.encode("latin-1")]})
        for name, value in reply.headers.items():
            self.headers.setRawHeaders(name.encode("latin-1"), [value.encode("latin-1")])
        self._body = reply.body

    def deliverBody(self, protocol):
        protocol.dataReceived(self._body)
        protocol.connectionLost(Failure(ResponseDone()))


class GatewayAgent:
    """An Agent whose POSTs go to a dispatcher in memory.

    Before a reply goes back, the outbox finishes the pass the message
    started: a wake-up sent when a session ends reaches the device before
    the session's last reply does, as an SMS may overtake an HTTP answer.
    """

    def __init__(self, dispatcher, outbox):
        self.dispatcher = dispatcher
        self.outbox = outbox

    def request(self, method, uri, headers=None, bodyProducer=None):
        return defer.ensureDeferred(self._request(uri, headers, bodyProducer))

    async def _request(self, uri, headers, producer):
        sent = []
        producer.startProducing(SimpleNamespace(write=sent.append))
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(uri.decode("utf-8")).query)
        content_type = (headers.getRawHeaders(b"content-type") or [b""])[0]
        hmac_header = (headers.getRawHeaders(b"x-syncml-hmac") or [None])[0]
        reply = await self.dispatcher.handle_dm(
            b"".join(sent), encoding="wbxml" if b"wbxml" in content_type else "xml",
            hmac_header=hmac_header.decode("latin-1") if hmac_header else None, token=query.get("s", [None])[0])
        await self.outbox.tick()
        return _Body(reply)


class SipBearer:
    """Delivers package #0 to the fleet's SIP wake source at once."""

    delivered_on_accept = True

    def __init__(self, source):
        self.source = source

    def address(self, device):
        return device.sip_uri

    def send(self, address, trigger, report):
        self.source.deliver(address, trigger.package0)
        report.sent(["sip-1"])


class WakeDuringSessionTests(TestCase):
    """A wake-up that reaches a device still in a session (issue 18)."""

    timeout = 60

    async def setUp(self):
        self.source = fleet.CallbackWakeSource("sip")
        # a dispatcher and its outbox on an in-memory store, on a task.Clock
        await open_outbox(self, outbox_config(), {"sip": SipBearer(self.source)})
        self.service = FunctionService(self.handlers, FunctionsConfig(timeout=3600, expiry_interval=30),
                                       self.clock)
        self.service.start()
        self.addCleanup(self.service.stop)

    @defer.inlineCallbacks
    def test_a_wipe_woken_as_its_first_session_ends_runs_in_the_next(self):
        """The AvailableWipeList read ends a session and queues the wipe; its
        wake-up, signed with the server nonce that session handed out, comes
        before the session's last reply: the device checks it once the
        session is over, and the wipe runs in the session it opens."""
        (device,) = sim.pattern_devices(1, start=7, server_name="dmgw-test", sip_domain="sim.test")
        yield self.handlers.put_device(device.device_id, sim.api_account(device))
        functions = DeviceFunctions(device.device_id)
        # the read, the wipe, the report of its result
        runner = fleet.FleetRunner(reactor, [device], "http://127.0.0.1:8080/dm", clock=self.clock,
                                   agent=GatewayAgent(self.dispatcher, self.outbox), wake_source=self.source,
                                   sessions=3, functions={device.device_id: functions})
        done = runner.run()
        view = yield defer.ensureDeferred(self.service.start_operation(device.device_id, {
            "function": "lawmo", "action": "wipe", "wipe_list": ["sdcard"], "confirm": True}))
        try:
            summary = yield done.addTimeout(10, reactor)
        except defer.TimeoutError:
            self.fail("the wipe stalled: %s" % (runner.stats.summary(),))
        self.assertEqual(summary["wakeups"], {"accepted": 2}, summary)
        self.assertEqual(summary["completed"], 3, summary)
        self.assertEqual(functions.wiped, ["sdcard"])
        op = yield self.service.get_operation(view["id"])
        self.assertEqual((op["state"], op["result_code"]), ("done", 1201))


def wake_up_bytes(device, kind, session_id, secret=None):
    credential = package0.ServerCredential(device.server_name, device.server_nonce,
                                           secret=secret or device.server_secret)
    data = package0.build(package0.Notification(device.server_name, session_id), credential)
    if kind == "sms":
        data = wsp.encode_push(wsp.PushPDU(content_type=wsp.CT_SYNCML_NOTIFICATION,
                                           app_id=wsp.APP_SYNCML_DM, body=data))
    return data


class DaemonFleetTests(TestCase):
    timeout = 120

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="dmgw-fleet-")
        cls.daemon = Daemon(cls.workdir)
        try:
            cls.daemon.start()
        except BaseException:  # (no tearDownClass then)
            shutil.rmtree(cls.workdir, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.daemon.stop()
        finally:
            shutil.rmtree(cls.workdir, ignore_errors=True)

    def devices(self, count, start, **options):
        return list(sim.pattern_devices(count, start=start, server_name=SERVER_ID, **options))

    def provision(self, devices, job=None):
        return fleet.provision(reactor, self.daemon.api, self.daemon.token, devices,
                               job=job, concurrency=4)

    def runner(self, devices, **options):
        return fleet.FleetRunner(reactor, devices, self.daemon.url, **options)

    @defer.inlineCallbacks
    def test_fifty_devices_rate_limited_all_complete(self):
        devices = self.devices(50, 1000)
        provisioned = yield self.provision(devices, job=sim.api_job())
        self.assertEqual(provisioned, 50)
        summary = yield self.runner(devices, rate=100, concurrency=8).run()
        self.assertEqual(summary["sessions"], 50)
        self.assertEqual(summary["completed"], 50, summary)
        self.assertEqual(summary["errors"], {"transport": 0, "auth": 0, "http": 0, "protocol": 0})
        latency = summary["latency_ms"]
        for name in ("p50", "p90", "p99"):
            self.assertGreater(latency[name], 0)
        self.assertTrue(latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"])
        self.assertGreaterEqual(summary["elapsed_s"], 0.45)  # 50 sessions at 100/s
        self.assertLessEqual(summary["sessions_per_s"], 110)
        # the nonces were kept: a second round authenticates with the rotated ones
        self.assertTrue(all(d.client_nonce and d.server_nonce for d in devices))
        again = yield self.runner(devices[:10], rate=0, concurrency=4).run()
        self.assertEqual(again["completed"], 10, again)

    @defer.inlineCallbacks
    def test_provision_without_replace_never_touches_an_existing_account(self):
        devices = self.devices(3, 4000)
        yield self.provision(devices[1:2])
        before = self.daemon.call("GET", "/devices/" + devices[1].device_id.replace(":", "%3A"))[1]
        with self.assertRaises(fleet.ApiError) as raised:
            yield fleet.provision(reactor, self.daemon.api, self.daemon.token, devices, concurrency=1,
                                  replace=False)
        self.assertIn("already exists", str(raised.exception))
        after = self.daemon.call("GET", "/devices/" + devices[1].device_id.replace(":", "%3A"))[1]
        self.assertEqual(before["updated"], after["updated"])
        fresh = self.devices(2, 4100)
        count = yield fleet.provision(reactor, self.daemon.api, self.daemon.token, fresh, replace=False)
        self.assertEqual(count, 2)

    @defer.inlineCallbacks
    def test_csv_fleet_counts_an_unknown_device_as_auth_failure(self):
        text = io.StringIO()
        sim.write_csv(self.devices(3, 2000), text)
        text.write("IMEI:359999999999999,ghost,nope,%s,nope,,\n" % (SERVER_ID,))
        devices = sim.load_csv(text.getvalue())
        yield self.provision(devices[:3])
        summary = yield self.runner(devices, concurrency=2).run()
        self.assertEqual(summary["sessions"], 4)
        self.assertEqual(summary["completed"], 3, summary)
        self.assertEqual(summary["errors"]["auth"], 1, summary)

    @defer.inlineCallbacks
    def test_wake_hook_opens_sessions_with_alert_1200_and_the_session_id(self):
        for kind in ("sms", "sip"):
            devices = self.devices(4, 3000 if kind == "sms" else 3100, sip_domain="sim.test")
            yield self.provision(devices, job=sim.api_job())
            source = fleet.CallbackWakeSource(kind)
            seen = []
            runner = self.runner(devices, concurrency=2, sessions=len(devices),
                                 wake_source=source,
                                 observer=lambda device, session: seen.append((device, session)))
            source.deliver(devices[0].destination(kind), b"not a notification")
            source.deliver(devices[1].destination(kind),
                           wake_up_bytes(devices[1], kind, 0x77, secret="wrong"))
            source.deliver("+999", wake_up_bytes(devices[1], kind, 0x78))
            done = runner.run()
            for n, device in enumerate(devices):
                source.deliver(device.destination(kind), wake_up_bytes(device, kind, 0x1A0 + n))
            summary = yield done
            self.assertEqual(summary["completed"], 4, summary)
            self.assertEqual(summary["wakeups"], {"accepted": 4, "rejected": 2,
                                                  "unknown_destination": 1})
            by_device = {device.device_id: session for device, session in seen}
            for n, device in enumerate(devices):
                session = by_device[device.device_id]
                self.assertEqual(session.session_id, "%X" % (0x1A0 + n,))
                direction, first = session.transcript[0]
                self.assertEqual(direction, "out")
                alerts = [c.data for c in first.body if isinstance(c, sm.Alert)]
                self.assertEqual(alerts, [sm.ALERT_SERVER_INITIATED])
                self.assertEqual(session.executed[0][2], 200)
