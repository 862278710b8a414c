"""Request latency metrics reach every listener's HTTP site, also the TLS
listeners whose factory wraps the site (HTTPS with PSK, delegation)."""

from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from dmgateway.bearers import tlspsk
from dmgateway.bearers.http import dm_site
from dmgateway.tap import instrument
from tests.bearers.test_http import FakeDispatcher, post


class ListenerMetricsTests(SynchronousTestCase):
    def serve_one(self, site):
        address = IPv4Address("TCP", "127.0.0.1", 40000)
        protocol = site.buildProtocol(address)
        protocol.makeConnection(StringTransport(peerAddress=address))
        protocol.dataReceived(post())

    def test_a_tls_wrapped_dm_site_is_timed(self):
        observed = []
        site = dm_site(FakeDispatcher(), "/dm", 4096, reactor=Clock())
        wrapper = tlspsk.PeerLoggingTLSFactory(tlspsk.ConnectionCreator(SSL.Context(SSL.TLS_METHOD)), site,
                                               name="https")
        instrument(wrapper, "https", lambda *args: observed.append(args))
        self.serve_one(site)  # the request as the TLS layer hands it over
        self.assertEqual([(listener, status) for listener, status, _s in observed], [("dm", 200)])

    def test_a_plain_site_keeps_its_label(self):
        observed = []
        site = dm_site(FakeDispatcher(), "/dm", 4096, reactor=Clock())
        instrument(site, "http", lambda *args: observed.append(args))
        self.serve_one(site)
        self.assertEqual([(listener, status) for listener, status, _s in observed], [("dm", 200)])


class ObservationTests(SynchronousTestCase):
    """The instruments keep their labelled children: each observation still
    lands in its own label's series, and a new label value gets its own."""

    def test_each_label_value_keeps_its_own_series(self):
        from dmgateway.monitor.metrics import GatewayMetrics

        metrics = GatewayMetrics(None, Clock(), process=False)
        for listener, status, seconds in (("dm", 200, 0.002), ("dm", 200, 0.3), ("api", 404, 0.01),
                                          ("api", 200, 0.02), ("api", 404, -1.0), ("delegation", 999, 0.1)):
            metrics.http_request(listener, status, seconds)
        for outcome, seconds in (("completed", 1.0), ("completed", 3.0), ("session_timeout", 300.0)):
            metrics.session_ended(outcome, seconds)
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for instrument in (metrics.http_latency, metrics.api_requests, metrics.session_duration)
            for family in instrument.collect()  # (the registry would also read the gateway's state)
            for sample in family.samples
        }

        def value(name, labels):
            return samples.get((name, tuple(sorted(labels.items()))))

        self.assertEqual(value("dmgw_http_request_duration_seconds_count", {"listener": "dm"}), 2)
        self.assertAlmostEqual(value("dmgw_http_request_duration_seconds_sum", {"listener": "dm"}), 0.302)
        self.assertEqual(value("dmgw_http_request_duration_seconds_bucket", {"listener": "dm", "le": "0.0025"}), 1)
        self.assertEqual(value("dmgw_http_request_duration_seconds_count", {"listener": "api"}), 3)
        self.assertEqual(value("dmgw_http_request_duration_seconds_count", {"listener": "delegation"}), 1)
        self.assertEqual(value("dmgw_api_requests_total", {"status": "404"}), 2)
        self.assertEqual(value("dmgw_api_requests_total", {"status": "200"}), 1)
        self.assertIsNone(value("dmgw_api_requests_total", {"status": "other"}))  # only the API's statuses
        self.assertEqual(value("dmgw_session_duration_seconds_count", {"outcome": "completed"}), 2)
        self.assertEqual(value("dmgw_session_duration_seconds_sum", {"outcome": "completed"}), 4.0)
        self.assertEqual(value("dmgw_session_duration_seconds_count", {"outcome": "session_timeout"}), 1)
