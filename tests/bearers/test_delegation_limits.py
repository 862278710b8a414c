"""The delegation listener is reachable before any TLS handshake names a peer:
it has the DM-2 listeners' per-address connection cap and whole-request
deadline (a real HTTPChannel on StringTransport and Clock, TLS left out)."""

from types import SimpleNamespace

from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from dmgateway.bearers import delegation


def connect(site, host="127.0.0.2", port=40000):
    address = IPv4Address("TCP", host, port)
    protocol = site.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    return protocol, transport


class DelegationListenerLimitsTests(SynchronousTestCase):
    def setUp(self):
        self.patch(delegation, "server_context", lambda config, peers: SSL.Context(SSL.TLS_METHOD))
        self.clock = Clock()
        config = SimpleNamespace(endpoint="ssl:0:interface=127.0.0.1", path="/dm-delegation", timeout=30.0)
        _endpoint, factory = delegation.delegation_listener(self.clock, config, service=None, peers=None)
        self.site = factory.wrappedFactory  # the HTTP site inside the TLS wrapper

    def test_one_address_cannot_hold_more_than_its_share_of_connections(self):
        cap = delegation.MAX_CONNECTIONS_PER_PEER
        held = [connect(self.site, port=40000 + i) for i in range(cap)]
        for _protocol, transport in held:
            self.assertFalse(transport.disconnecting)
        _protocol, transport = connect(self.site, port=41000)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 503 "), transport.value())
        self.assertTrue(transport.disconnecting)
        _protocol, other = connect(self.site, host="127.0.0.1", port=42000)  # another address is served
        self.assertFalse(other.disconnecting)

    def test_a_request_trickled_byte_by_byte_is_cut_at_the_deadline(self):
        protocol, transport = connect(self.site)
        request = b"POST /dm-delegation HTTP/1.1\r\nHost: x\r\n"
        for i in range(3):
            protocol.dataReceived(request[i:i + 1])
            self.clock.advance(20)  # each byte would reset an idle timer
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "), transport.value())
        self.assertTrue(transport.disconnecting)
