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
