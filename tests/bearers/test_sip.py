"""The SIP Push UAC on a fake reactor: UDP timers, challenges, TCP/TLS framing."""

import random

import pytest
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from dmgateway.bearers import sipmsg as M
from dmgateway.bearers.sip import SIPPusher
from dmgateway.config.bearers import SipConfig
from tests.bearers.test_sipmsg import PACKAGE0

PROXY = ("192.0.2.10", 5060)


class FakeUDPPort:
    def __init__(self, protocol, port, interface):
        self.protocol = protocol
        self.port = port or 40000
        self.interface = interface
        self.sent = []  # (time, bytes, address)
        self.clock = None
        self.stopped = False

    def write(self, data, addr):
        self.sent.append((self.clock.seconds(), data, addr))

    def getHost(self):
        return IPv4Address("UDP", self.interface or "0.0.0.0", self.port)

    def stopListening(self):
        self.stopped = True


class FakeReactor(MemoryReactorClock):
    """MemoryReactorClock plus listenUDP and resolve."""

    def __init__(self):
        super().__init__()
        self.udp = []
        self.resolved = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        fake = FakeUDPPort(protocol, port, interface)
        fake.clock = self
        protocol.makeConnection(fake)
        self.udp.append(fake)
        return fake

    def resolve(self, name, timeout=None):
        self.resolved.append(name)
        return defer.succeed(PROXY[0])


def config(**overrides):
    values = dict(enabled=True, transport="udp", proxy="%s:%d" % PROXY,
                  from_uri="sip:dms@example.com", local_endpoint="127.0.0.1:5070",
                  auth_user="gw", t1=0.5, timeout=60.0)
    values.update(overrides)
    return SipConfig(**values)


def make(**overrides):
    reactor = FakeReactor()
    pusher = SIPPusher(config(**overrides), reactor, random.Random(3), password="s3cret",
                       local_address=lambda ip, port: "198.51.100.7")
    return reactor, pusher


def outcome(d):
    results = []
    d.addBoth(results.append)
    return results


def respond(reactor, request, code, reason, extra=()):
    headers = [(n, v) for n, v in request.headers
               if n in ("Via", "From", "To", "Call-ID", "CSeq")]
    data = M.encode(M.Response(code, reason, headers + list(extra)))
    reactor.udp[0].protocol.datagramReceived(data, PROXY)


def sent(reactor):
    return [M.parse(data) for _, data, _ in reactor.udp[0].sent]


def test_message_on_the_wire():
    reactor, pusher = make()
    pusher.push("sip:+447700900123@ims.example.net", PACKAGE0)
    [(when, data, addr)] = reactor.udp[0].sent
    assert (when, addr) == (0, PROXY)
    assert reactor.udp[0].port == 5070 and reactor.udp[0].interface == "127.0.0.1"
    request = M.parse(data)
    assert (request.method, request.uri) == ("MESSAGE", "sip:+447700900123@ims.example.net")
    transport, sent_by, params = M.parse_via(request.header("Via"))
    assert (transport, sent_by) == ("UDP", "127.0.0.1:5070")
    assert params["branch"].startswith("z9hG4bK") and "rport" in params
    assert request.header("Max-Forwards") == "70"
    uri, from_params = M.parse_name_addr(request.header("From"))
    assert uri == "sip:dms@example.com" and from_params["tag"]
    assert request.header("To") == "<sip:+447700900123@ims.example.net>"
    assert request.header("Call-ID").endswith("@example.com")
    assert request.header("CSeq") == "1 MESSAGE"
    assert request.header("Accept-Contact") == \
        '*;+g.oma.pusheventapp="syncml.dm";require;explicit'
    assert request.header("Content-Type") == "application/vnd.syncml.notification"
    assert request.header("Content-Length") == "39"
    assert request.body == PACKAGE0
    assert data.endswith(b"\r\n\r\n" + PACKAGE0)


def test_configured_app_id_content_type_and_wildcard_local_host():
    reactor, pusher = make(push_app_id="x.y",
                           content_type="application/vnd.syncml.dm.notification",
                           local_endpoint="", proxy="proxy.example.net:5080")
    pusher.push("sip:dev@ims.example.net", b"\x00")
    [(_, data, addr)] = reactor.udp[0].sent
    request = M.parse(data)
    assert reactor.resolved == ["proxy.example.net"] and addr == (PROXY[0], 5080)
    assert request.header("Accept-Contact") == '*;+g.oma.pusheventapp="x.y";require;explicit'
    assert request.header("Content-Type") == "application/vnd.syncml.dm.notification"
    assert M.parse_via(request.header("Via"))[1] == "198.51.100.7:40000"
    pusher.push("sip:dev2@ims.example.net", b"\x01", content_type="text/x-one")
    assert M.parse(reactor.udp[0].sent[1][1]).header("Content-Type") == "text/x-one"
    assert len(reactor.udp) == 1  # one port for every push


def test_retransmission_schedule_and_timer_f_timeout():
    reactor, pusher = make()
    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    reactor.pump([0.25] * 200)
    times = [t for t, _, _ in reactor.udp[0].sent]
    # Timer E: T1 doubling to T2 = 4 s; Timer F = 64 * T1 = 32 s
    assert times == [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert len({data for _, data, _ in reactor.udp[0].sent}) == 1  # identical copies
    [result] = results
    assert not result.delivered and result.error == "timeout" and result.state == "failed"
    assert not reactor.getDelayedCalls()


def test_whole_push_timeout_bounds_the_transaction():
    reactor, pusher = make(timeout=5.0)
    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    reactor.pump([0.25] * 19)
    assert results == []
    reactor.advance(0.25)
    assert results[0].error == "timeout"
    reactor.pump([1] * 40)
    assert [t for t, _, _ in reactor.udp[0].sent] == [0, 0.5, 1.5, 3.5]
    assert not reactor.getDelayedCalls()


def test_provisional_then_200():
    reactor, pusher = make()
    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    [request] = sent(reactor)
    reactor.advance(0.2)
    respond(reactor, request, 100, "Trying")
    reactor.pump([0.05, 0.25] + [0.25] * 18)  # to t = 5.0
    # Proceeding: Timer E keeps firing, at T2 intervals (RFC 3261 §17.1.2.2)
    assert [t for t, _, _ in reactor.udp[0].sent] == [0, 0.5, 4.5]
    assert results == []
    respond(reactor, request, 200, "OK")
    [result] = results
    assert result.delivered and (result.code, result.reason) == (200, "OK")
    assert result.call_id == request.header("Call-ID") and result.state == "delivered"
    respond(reactor, request, 200, "OK")  # a retransmitted final response is absorbed
    reactor.pump([1] * 40)
    assert len(reactor.udp[0].sent) == 3
    assert not reactor.getDelayedCalls() and not pusher._transactions


def test_486_fails_with_code_and_reason():
    reactor, pusher = make()
    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    respond(reactor, sent(reactor)[0], 486, "Busy Here")
    [result] = results
    assert (result.delivered, result.error, result.code) == (False, "SIP 486 Busy Here", 486)
    reactor.pump([1] * 10)
    assert len(reactor.udp[0].sent) == 1


def _challenge(code, qop=True):
    name = "Proxy-Authenticate" if code == 407 else "WWW-Authenticate"
    value = 'Digest realm="ims.example.net", nonce="abc123", opaque="op"'
    if qop:
        value += ', qop="auth", algorithm=MD5'
    return [(name, value)]


@pytest.mark.parametrize("code,reason,answer", [
    (407, "Proxy Authentication Required", "Proxy-Authorization"),
    (401, "Unauthorized", "Authorization"),
])
def test_challenge_then_authorised_retry(code, reason, answer):
    reactor, pusher = make()
    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    [first] = sent(reactor)
    respond(reactor, first, code, reason, _challenge(code))
    assert results == []
    second = sent(reactor)[1]
    assert second.header("CSeq") == "2 MESSAGE"
    assert second.header("Call-ID") == first.header("Call-ID")
    assert second.header("From") == first.header("From")
    assert M.parse_via(second.header("Via"))[2]["branch"] != \
        M.parse_via(first.header("Via"))[2]["branch"]
    assert second.body == PACKAGE0
    params = M.parse_challenge(second.header(answer))
    expected = M.digest_response(M.parse_challenge(_challenge(code)[0][1]), method="MESSAGE",
                                 uri="sip:dev@example.net", username="gw", password="s3cret",
                                 cnonce=params["cnonce"], nc=1)
    assert second.header(answer) == expected
    assert (params["username"], params["realm"], params["qop"]) == \
        ("gw", "ims.example.net", "auth")
    respond(reactor, first, code, reason, _challenge(code))  # late copy: absorbed
    assert len(reactor.udp[0].sent) == 2
    reactor.advance(0.5)  # the new transaction retransmits on its own Timer E
    assert len(reactor.udp[0].sent) == 3
    respond(reactor, second, 200, "OK")
    assert results[0].delivered


def test_second_challenge_fails_and_no_credentials_fail_at_once():
    reactor, pusher = make()
    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    respond(reactor, sent(reactor)[0], 407, "Proxy Authentication Required", _challenge(407))
    respond(reactor, sent(reactor)[1], 407, "Proxy Authentication Required",
            _challenge(407, qop=False))
    assert results[0].error == "SIP 407 Proxy Authentication Required"
    assert len(reactor.udp[0].sent) == 2

    reactor, pusher = make(auth_user="")
    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    respond(reactor, sent(reactor)[0], 401, "Unauthorized", _challenge(401))
    assert results[0].error == "SIP 401 Unauthorized" and len(reactor.udp[0].sent) == 1


def test_unusable_challenge_fails():
    reactor, pusher = make()
    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    respond(reactor, sent(reactor)[0], 407, "Proxy Authentication Required",
            [("Proxy-Authenticate", 'Digest realm="x", nonce="n", algorithm=SHA-1'),
             ("Proxy-Authenticate", "Basic realm=x")])
    assert results[0].error == "SIP 407 Proxy Authentication Required"


def test_garbage_and_stray_datagrams_are_dropped():
    reactor, pusher = make()
    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    [request] = sent(reactor)
    channel = reactor.udp[0].protocol
    for junk in [b"", b"\r\n\r\n", b"\x00\xff garbage", b"SIP/2.0 200 OK\r\nl: 99\r\n\r\nx",
                 b"SIP/2.0 200 OK\r\nVia: nonsense\r\nCSeq: 1 MESSAGE\r\n\r\n",
                 M.encode(M.Request("OPTIONS", "sip:gw@example.com", [("CSeq", "1 OPTIONS")])),
                 M.encode(M.Response(200, "OK", [
                     ("Via", M.format_via("UDP", "h", "z9hG4bKother")),
                     ("CSeq", "1 MESSAGE")])),
                 M.encode(M.Response(200, "OK", [
                     ("Via", request.header("Via")), ("CSeq", "1 OPTIONS")]))]:
        channel.datagramReceived(junk, PROXY)
    assert results == []
    respond(reactor, request, 202, "Accepted")
    assert results[0].delivered and results[0].code == 202


def test_bad_uri_cancel_and_stop():
    reactor, pusher = make()
    results = outcome(pusher.push("mailto:x@y", PACKAGE0))
    assert results[0].error.startswith("bad SIP URI")
    results = outcome(pusher.push("sip:a b@c", PACKAGE0))
    assert results[0].error.startswith("bad SIP URI")
    results = outcome(pusher.push("<sip:dev@example.net>", PACKAGE0))
    assert sent(reactor)[0].uri == "sip:dev@example.net"
    d = pusher.push("sip:dev2@example.net", PACKAGE0)
    cancelled = outcome(d)
    d.cancel()
    assert cancelled[0].error == "cancelled"
    pusher.stop()
    assert results[0].error == "stopped"
    assert reactor.udp[0].stopped and not reactor.getDelayedCalls()


def test_unresolvable_proxy_fails():
    reactor, pusher = make(proxy="nowhere.invalid")
    reactor.resolve = lambda name, timeout=None: defer.fail(Failure(OSError("no such host")))
    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    assert results[0].error.startswith("cannot send to proxy nowhere.invalid")


def test_password_comes_from_the_file(tmp_path):
    secret = tmp_path / "sip.pw"
    secret.write_text("from-file\n")
    pusher = SIPPusher(config(auth_password_file=str(secret)), FakeReactor(), random.Random(1))
    assert pusher.password == "from-file" and pusher.can_authenticate
    assert "from-file" not in repr(pusher.config)


# -- TCP and TLS ----------------------------------------------------------------


def connect_stream(reactor, index=0):
    connector = (reactor.tcpClients + reactor.sslClients)[index]
    factory = connector[2]
    proto = factory.buildProtocol(None)
    transport = StringTransport(hostAddress=IPv4Address("TCP", "127.0.0.1", 45000),
                                peerAddress=IPv4Address("TCP", *PROXY))
    proto.makeConnection(transport)
    return proto, transport


def stream_requests(transport):
    return M.SIPFramer().feed(transport.value())


def stream_respond(proto, request, code, reason, extra=(), chunk=7):
    headers = [(n, v) for n, v in request.headers
               if n in ("Via", "From", "To", "Call-ID", "CSeq")]
    data = M.encode(M.Response(code, reason, headers + list(extra), b"\r\n\x00body"))
    for i in range(0, len(data), chunk):  # split across reads
        proto.dataReceived(data[i:i + chunk])


def test_tcp_push_with_challenge_on_one_connection():
    reactor, pusher = make(transport="tcp")
    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    host, port, _, timeout, bind = reactor.tcpClients[0]
    assert (host, port, timeout, bind) == (PROXY[0], PROXY[1], 60.0, ("127.0.0.1", 5070))
    proto, transport = connect_stream(reactor)
    [request] = stream_requests(transport)
    transport_name, sent_by, params = M.parse_via(request.header("Via"))
    assert (transport_name, sent_by) == ("TCP", "127.0.0.1:45000") and "rport" not in params
    assert request.body == PACKAGE0 and request.header("Content-Length") == "39"
    reactor.advance(10)
    assert len(stream_requests(transport)) == 1  # reliable: no retransmission
    stream_respond(proto, request, 100, "Trying")
    stream_respond(proto, request, 407, "Proxy Authentication Required", _challenge(407))
    first, second = stream_requests(transport)
    assert second.header("CSeq") == "2 MESSAGE" and second.header("Proxy-Authorization")
    stream_respond(proto, second, 200, "OK")
    assert results[0].delivered and transport.disconnecting
    assert not reactor.getDelayedCalls() and not pusher._transactions


def test_tcp_timer_f_and_connection_trouble():
    reactor, pusher = make(transport="tcp")
    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    proto, transport = connect_stream(reactor)
    reactor.advance(31.9)
    assert results == []
    reactor.advance(0.1)
    assert results[0].error == "timeout" and transport.disconnecting

    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    connector = reactor.tcpClients[1]
    connector[2].clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    assert results[0].error.startswith("connection failed")

    results = outcome(pusher.push("sip:dev@example.net", PACKAGE0))
    proto, transport = connect_stream(reactor, 2)
    proto.dataReceived(b"SIP/2.0 200 OK\r\nCSeq: 1 MESSAGE\r\n\r\n")  # no Content-Length
    assert transport.disconnecting
    proto.connectionLost(Failure(ConnectionRefusedError()))
    assert results[0].error.startswith("connection lost")
    assert not reactor.getDelayedCalls()


def test_tls_uses_connect_ssl_with_the_given_options():
    options = object()
    reactor = FakeReactor()
    pusher = SIPPusher(config(transport="tls", proxy="proxy.example.net", local_endpoint=""),
                       reactor, random.Random(2), password="x", tls_options=options)
    results = outcome(pusher.push("sips:dev@example.net", PACKAGE0))
    host, port, _, context, timeout, bind = reactor.sslClients[0]
    assert (host, port, context, bind) == ("proxy.example.net", 5061, options, None)
    proto, transport = connect_stream(reactor)
    [request] = stream_requests(transport)
    assert M.parse_via(request.header("Via"))[0] == "TLS"
    stream_respond(proto, request, 603, "Decline")
    assert results[0].error == "SIP 603 Decline"
