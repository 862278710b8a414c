"""What one peer may cost the DM-2 listener (issue 10): the total request-read
deadline, the per-address connection cap, the pre-authentication counts
handed to the dispatcher; a real HTTPChannel on StringTransport and Clock."""

import shutil
import tempfile
from types import SimpleNamespace

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from dmgateway.bearers.http import dm_site, with_backlog
from dmgateway.bearers.httplimits import MessageLimits
from tests.bearers.test_http import FakeDispatcher, post

LISTENER = SimpleNamespace(endpoint="tcp:8080", read_timeout=30, max_connections_per_peer=3, max_elements=100,
                           max_commands=5, max_items=7)


class LimitsDispatcher(FakeDispatcher):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.peers = []

    def handle_dm(self, body, encoding=None, hmac_header=None, token=None, peer=None, limits=None):
        self.limits = limits
        self.peers.append(peer)
        return super().handle_dm(body, encoding, hmac_header, token, peer)


def connect(site, host="127.0.0.1", port=40000):
    address = IPv4Address("TCP", host, port)
    protocol = site.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    return protocol, transport


class ReadDeadlineTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.dispatcher = LimitsDispatcher()
        self.site = dm_site(self.dispatcher, "/dm", 4096, reactor=self.clock, listener=LISTENER)

    def test_one_byte_every_20_seconds_is_cut_at_the_deadline(self):
        protocol, transport = connect(self.site)
        request = post()
        for i in range(2):
            protocol.dataReceived(request[i:i + 1])
            self.clock.advance(20)  # each byte would reset an idle timer
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "), transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.dispatcher.calls, [])

    def test_headers_in_time_but_body_too_slow(self):
        protocol, transport = connect(self.site)
        request = post(body=b"<SyncML>" + b" " * 100 + b"</SyncML>")
        protocol.dataReceived(request[:-20])
        self.clock.advance(29)
        self.assertEqual(transport.value(), b"")
        self.clock.advance(1)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "))
        self.assertEqual(self.dispatcher.calls, [])

    def test_a_whole_request_in_time_is_served_and_the_next_gets_fresh_time(self):
        protocol, transport = connect(self.site)
        self.clock.advance(25)
        protocol.dataReceived(post())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "))
        transport.clear()
        self.clock.advance(25)  # 50 s since the connection opened, 25 since the answer
        protocol.dataReceived(post())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "))
        transport.clear()
        self.clock.advance(30)  # an idle keep-alive connection is closed too
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "))

    def test_no_deadline_while_the_server_works(self):
        from twisted.internet import defer

        self.dispatcher.pending = defer.Deferred()
        protocol, transport = connect(self.site)
        protocol.dataReceived(post())
        self.clock.advance(300)
        self.assertEqual(transport.value(), b"")
        self.dispatcher.pending.callback(self.dispatcher.reply)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "))

    def test_an_answer_just_before_the_timer_still_gives_the_next_request_its_whole_time(self):
        protocol, transport = connect(self.site)
        self.clock.advance(29)
        protocol.dataReceived(post())  # answered at 29 s: the next must be whole by 59 s
        transport.clear()
        self.clock.advance(1)  # the connection's timer comes at 30 s and finds nothing due
        self.clock.advance(28.9)
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "))

    def test_a_slow_answer_then_a_fresh_deadline(self):
        from twisted.internet import defer

        self.dispatcher.pending = defer.Deferred()
        protocol, transport = connect(self.site)
        protocol.dataReceived(post())
        self.clock.advance(45)  # the server works past the timer
        self.dispatcher.pending.callback(self.dispatcher.reply)
        transport.clear()
        self.clock.advance(29.9)
        self.assertEqual(transport.value(), b"")
        self.clock.advance(0.1)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "))

    def test_requests_on_one_connection_make_no_timers_of_their_own(self):
        protocol, transport = connect(self.site)
        protocol.dataReceived(post())
        pending = len(self.clock.getDelayedCalls())
        for _ in range(5):
            self.clock.advance(1)
            protocol.dataReceived(post())
        self.assertEqual(transport.value().count(b"HTTP/1.1 200 "), 6)
        self.assertEqual(len(self.clock.getDelayedCalls()), pending)

    def test_addresses_are_read_once_per_connection(self):
        protocol, transport = connect(self.site)
        calls = []
        get_host = transport.getHost
        transport.getHost = lambda: calls.append(1) or get_host()
        for _ in range(3):
            protocol.dataReceived(post())
        self.assertLessEqual(len(calls), 1)  # at most once per connection, never per request
        self.assertEqual(self.dispatcher.peers, ["127.0.0.1:40000"] * 3)

    def test_closed_connection_leaves_no_timer(self):
        protocol, transport = connect(self.site)
        protocol.connectionLost(None)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class PeerCapTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.site = dm_site(LimitsDispatcher(), "/dm", 4096, reactor=self.clock, listener=LISTENER)

    def test_fourth_connection_from_one_address_is_refused(self):
        held = [connect(self.site, "127.0.0.2", 50000 + i) for i in range(3)]
        _protocol, refused = connect(self.site, "127.0.0.2", 50003)
        self.assertTrue(refused.value().startswith(b"HTTP/1.1 503 "), refused.value())
        self.assertIn(b"Retry-After: 1", refused.value())
        self.assertTrue(refused.disconnecting)
        # another address is not concerned
        _protocol, other = connect(self.site, "127.0.0.1", 50004)
        self.assertFalse(other.disconnecting)
        # one closes: room for one more
        held[0][0].connectionLost(None)
        _protocol, again = connect(self.site, "127.0.0.2", 50005)
        self.assertFalse(again.disconnecting)
        self.assertEqual(self.site.connections["127.0.0.2"], 3)


def connect_proxied(factory, device, proxy="127.0.0.9", port=40000):
    """A connection from ``proxy`` whose PROXY v1 header names ``device``,
    with the first line of a request (a connection is counted by its
    device's address with the first bytes after the header)."""
    address = IPv4Address("TCP", proxy, port)
    protocol = factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    protocol.dataReceived(b"PROXY TCP4 %s 127.0.0.1 %d 8080\r\n" % (device.encode(), port))
    protocol.dataReceived(b"POST /dm HTTP/1.1\r\n")
    return protocol, transport


class ProxiedPeerCapTests(SynchronousTestCase):
    """Behind the PROXY protocol the cap counts each device's own address
    (the header's source), not the proxy's, as conf/http.ini promises."""

    def setUp(self):
        from twisted.internet import defer
        from twisted.protocols.haproxy import proxyEndpoint

        self.clock = Clock()
        listener = SimpleNamespace(**dict(vars(LISTENER), endpoint="haproxy:tcp:8080"))
        self.site = dm_site(LimitsDispatcher(), "/dm", 4096, reactor=self.clock, listener=listener)
        factories = []  # what "haproxy:" listens with: Twisted's PROXY wrapper around the site

        class Inner:
            def listen(self, factory):
                factories.append(factory)
                return defer.succeed(None)

        proxyEndpoint(Inner()).listen(self.site)
        self.factory = factories[0]

    def test_many_devices_through_one_proxy_are_served(self):
        self.assertTrue(self.site.proxied)
        held = [connect_proxied(self.factory, "10.0.0.%d" % (n,), port=50000 + n) for n in range(1, 11)]
        for _protocol, transport in held:
            self.assertFalse(transport.disconnecting)
        self.assertNotIn("127.0.0.9", self.site.connections)
        self.assertEqual(self.site.connections["10.0.0.1"], 1)
        self.assertEqual(self.site.refused, 0)

    def test_fourth_connection_of_one_device_is_refused_after_its_header(self):
        held = [connect_proxied(self.factory, "10.0.0.7", port=50000 + i) for i in range(3)]
        _protocol, refused = connect_proxied(self.factory, "10.0.0.7", port=50003)
        self.assertTrue(refused.value().startswith(b"HTTP/1.1 503 "), refused.value())
        self.assertIn(b"Retry-After: 1", refused.value())
        self.assertTrue(refused.disconnecting)
        self.assertEqual(self.site.refused, 1)
        self.assertEqual(self.site.connections["10.0.0.7"], 3)
        _protocol.connectionLost(None)  # the refused one leaves the count alone
        self.assertEqual(self.site.connections["10.0.0.7"], 3)
        held[0][0].connectionLost(None)
        _protocol, again = connect_proxied(self.factory, "10.0.0.7", port=50005)
        self.assertFalse(again.disconnecting)
        self.assertEqual(self.site.connections["10.0.0.7"], 3)

    def test_request_in_the_same_segment_as_the_header_is_served(self):
        address = IPv4Address("TCP", "127.0.0.9", 40000)
        protocol = self.factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        body = b"<SyncML/>"
        protocol.dataReceived(
            b"PROXY TCP4 10.0.0.5 127.0.0.1 40000 8080\r\nPOST /dm HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/vnd.syncml.dm+xml\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self.assertEqual(self.site.connections["10.0.0.5"], 1)
        self.assertEqual(self.site.resource.dispatcher.peers, ["10.0.0.5:40000"])


class MessageLimitTests(SynchronousTestCase):
    def test_listener_limits_reach_the_dispatcher(self):
        dispatcher = LimitsDispatcher()
        site = dm_site(dispatcher, "/dm", 4096, reactor=Clock(), listener=LISTENER)
        protocol, transport = connect(site)
        protocol.dataReceived(post())
        self.assertEqual(dispatcher.limits, MessageLimits(max_elements=100, max_commands=5, max_items=7))

    def test_backlog_is_added_where_the_endpoint_takes_one(self):
        self.assertEqual(with_backlog("tcp:8080:interface=127.0.0.1", 1024),
                         "tcp:8080:interface=127.0.0.1:backlog=1024")
        self.assertEqual(with_backlog("tcp:8080:backlog=7", 1024), "tcp:8080:backlog=7")
        self.assertEqual(with_backlog("systemd:domain=INET:index=0", 1024), "systemd:domain=INET:index=0")
        self.assertEqual(with_backlog("haproxy:tcp:8080", 99), "haproxy:tcp:8080:backlog=99")

    def test_backlog_reaches_the_listening_port(self):
        from twisted.internet import endpoints
        from twisted.internet.testing import MemoryReactor

        reactor = MemoryReactor()
        for description in ("tcp:8080:interface=127.0.0.1", "haproxy:tcp:8081"):
            endpoint = endpoints.serverFromString(reactor, with_backlog(description, 1024))
            endpoint.listen(dm_site(LimitsDispatcher(), "/dm", 4096, reactor=Clock(), listener=LISTENER))
        self.assertEqual([port[2] for port in reactor.tcpServers], [1024, 1024])  # (port, factory, backlog, interface)


class HttpsListenerTests(SynchronousTestCase):
    """``[https]`` behind ``haproxy:``: the PROXY header is read on the TCP
    connection, TLS inside it (HAProxy relays the device's TLS after its
    header), and the site still counts the device's address."""

    def https(self, endpoint):
        from tests.interop.test_https import make_certificate

        directory = tempfile.mkdtemp()  # (not mktemp(): that is under the working directory)
        self.addCleanup(shutil.rmtree, directory)
        key_path, cert_path = make_certificate(directory)
        return SimpleNamespace(endpoint=endpoint % (key_path, cert_path), min_tls="1.2", client_ca="",
                               ciphers="ECDHE+AESGCM", backlog=50, **{k: v for k, v in vars(LISTENER).items()
                                                                      if k != "endpoint"})

    def listened(self, https):
        from twisted.internet.testing import MemoryReactor

        from dmgateway.bearers.http import https_listener

        reactor = MemoryReactor()
        site = dm_site(LimitsDispatcher(), "/dm", 4096, reactor=Clock(), listener=https)
        endpoint, factory = https_listener(reactor, https, site)
        endpoint.listen(factory)
        return reactor, site

    def test_proxied_layers(self):
        from twisted.protocols.haproxy._wrapper import HAProxyWrappingFactory
        from twisted.protocols.tls import TLSMemoryBIOFactory

        https = self.https("haproxy:ssl:8443:interface=127.0.0.1:privateKey=%s:certKey=%s")
        reactor, site = self.listened(https)
        (port, factory, backlog, interface), = reactor.tcpServers
        self.assertEqual((port, backlog, interface), (8443, 50, "127.0.0.1"))
        self.assertIsInstance(factory, HAProxyWrappingFactory)  # outermost: the PROXY header in the clear
        self.assertIsInstance(factory.wrappedFactory, TLSMemoryBIOFactory)
        self.assertIs(factory.wrappedFactory.wrappedFactory, site)
        self.assertTrue(site.proxied)
        self.assertEqual(reactor.sslServers, [])

    def test_plain_https_is_unchanged(self):
        https = self.https("ssl:8443:interface=127.0.0.1:privateKey=%s:certKey=%s")
        reactor, site = self.listened(https)
        (port, factory, _context, backlog, interface), = reactor.sslServers
        self.assertEqual((port, backlog, interface), (8443, 50, "127.0.0.1"))
        self.assertIs(factory, site)
        self.assertFalse(site.proxied)

    def test_proxied_psk_layers(self):
        from twisted.internet.testing import MemoryReactor
        from twisted.protocols.haproxy._wrapper import HAProxyWrappingFactory

        from dmgateway.bearers import tlspsk
        from dmgateway.bearers.http import https_psk_listener

        if not tlspsk.psk_available():
            self.skipTest("this OpenSSL binding cannot do TLS-PSK")
        https = self.https("haproxy:ssl:8443:interface=127.0.0.1:privateKey=%s:certKey=%s")
        reactor = MemoryReactor()
        site = dm_site(LimitsDispatcher(), "/dm", 4096, reactor=Clock(), listener=https)
        endpoint, factory = https_psk_listener(reactor, https, site, lambda identity: None)
        endpoint.listen(factory)
        (port, outer, _backlog, _interface), = reactor.tcpServers
        self.assertEqual(port, 8443)
        self.assertIsInstance(outer, HAProxyWrappingFactory)
        self.assertIs(outer.wrappedFactory, factory)
        self.assertIs(factory.wrappedFactory, site)
