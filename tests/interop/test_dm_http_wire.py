"""The DM-2 listener's HTTP/1.1 server against real peers: raw sockets,
curl, twisted.web.client's Agent, openssl s_client, and HAProxy (TCP mode,
``send-proxy``) in front of ``[https]``.

``<SyncML/>`` reaches the dispatcher, which answers ``400`` with "malformed
SyncML message: missing SyncHdr": that text says the body arrived whole.
"""

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.interop.daemon import ROOT, Daemon, free_port, haproxy
from tests.interop.test_https import client_context, make_certificate
from tests.interop.test_proxy_protocol import HAPROXY

BODY = b"<SyncML/>"
REACHED = b"missing SyncHdr"
CTYPE = b"Content-Type: application/vnd.syncml.dm+xml\r\n"


def request(body=BODY, extra=b"", version=b"HTTP/1.1"):
    return (b"POST /dm?s=t %s\r\nHost: gw\r\n%sContent-Length: %d\r\n%s\r\n" % (version, CTYPE, len(body), extra)
            + body)


def read_answers(sock, count, timeout=10):
    """``count`` whole answers (status line, headers, Content-Length body) off ``sock``."""
    sock.settimeout(timeout)
    data, answers = b"", []
    while len(answers) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            if len(rest) >= length:
                answers.append((head, rest[:length]))
                data = rest[length:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return answers


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wire")
    key_path, cert_path = make_certificate(str(workdir))
    https_port = free_port()
    http_ini = None
    gw = Daemon(workdir)
    http_ini = (
        "[http]\nenabled = true\nendpoint = tcp:%d:interface=127.0.0.1\npath = /dm\nread_timeout = 2\n"
        "max_body = 4096\n\n[https]\nenabled = true\n"
        "endpoint = ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s\npath = /dm\n"
        % (gw.http_port, https_port, key_path, cert_path)
    )
    gw.extra_ini = {"http.ini": http_ini}
    gw.https_port = https_port
    gw._write_config()
    gw.start()
    yield gw
    gw.stop()


def connect(gateway):
    return socket.create_connection(("127.0.0.1", gateway.http_port), timeout=10)


def test_pipelined_requests_are_answered_in_order(gateway):
    with connect(gateway) as sock:
        sock.sendall(request() + b"GET /dm HTTP/1.1\r\nHost: gw\r\n\r\n" + request(body=b"") + request())
        answers = read_answers(sock, 4)
    codes = [head.split(b" ")[1] for head, _body in answers]
    assert codes == [b"400", b"405", b"400", b"400"], answers
    assert REACHED in answers[0][1] and REACHED in answers[3][1]
    assert REACHED not in answers[2][1]  # the empty body is another message


def test_100_continue(gateway):
    with connect(gateway) as sock:
        sock.sendall(request(body=b"", extra=b"Expect: 100-continue\r\n").replace(b"Length: 0", b"Length: 9"))
        sock.settimeout(10)
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(BODY)
        (head, body), = read_answers(sock, 1)
        assert head.startswith(b"HTTP/1.1 400 ") and REACHED in body


def test_http10_is_closed_after_its_answer(gateway):
    with connect(gateway) as sock:
        sock.sendall(request(version=b"HTTP/1.0"))
        (head, body), = read_answers(sock, 1)
        assert head.startswith(b"HTTP/1.0 400 ") and REACHED in body
        assert sock.recv(4096) == b""


def test_hostile_heads_are_400_and_closed(gateway):
    for raw in (
        b"POST /dm HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n",
        b"POST /dm HTTP/1.1\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n",
        request(extra=b"Transfer-Encoding: chunked\r\n"),
        b"POST /dm HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /dm HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    ):
        with connect(gateway) as sock:
            try:
                sock.sendall(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before all was sent
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 400 "), (raw[:60], answer)


def test_oversized_body_is_413_before_it_is_sent(gateway):
    with connect(gateway) as sock:
        sock.sendall(b"POST /dm HTTP/1.1\r\nHost: gw\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert "refused oversized request body (limit 4096 bytes)" in gateway.log()


def test_slow_loris_is_cut_at_the_read_deadline(gateway):
    with connect(gateway) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /dm HTTP/1.1\r\n")
        sock.settimeout(1)
        answer = b""
        while not answer and time.monotonic() - started < 10:
            try:
                sock.sendall(b"X")
                answer = sock.recv(4096)
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - started < 5


def curl(*args):
    return subprocess.run(["curl", "-sS", "-D", "-", *args],
                          capture_output=True, timeout=30)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is needed")
def test_curl_chunked_http10_and_expect(gateway, tmp_path):
    body_file = tmp_path / "body.xml"
    body_file.write_bytes(BODY)
    common = ["-H", "Content-Type: application/vnd.syncml.dm+xml", "--data-binary", "@" + str(body_file),
              gateway.url]
    for extra in (["-H", "Transfer-Encoding: chunked"], ["--http1.0"], ["-H", "Expect: 100-continue"], []):
        result = curl(*extra, *common)
        assert result.returncode == 0, result.stderr
        assert REACHED in result.stdout, (extra, result.stdout)
        status = b"HTTP/1.0 400 " if extra == ["--http1.0"] else b"HTTP/1.1 400 "
        assert result.stdout.replace(b"HTTP/1.1 100 Continue\r\n\r\n", b"").startswith(status), result.stdout


AGENT = r"""
import sys
from twisted.internet import defer, reactor, task
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH
from zope.interface import implementer
from twisted.web.iweb import IBodyProducer

@implementer(IBodyProducer)
class Chunks:
    length = UNKNOWN_LENGTH  # Agent sends it chunked
    def startProducing(self, consumer):
        for piece in (b"<Sync", b"ML/>"):
            consumer.write(piece)
        return defer.succeed(None)
    def stopProducing(self):
        pass
    def pauseProducing(self):
        pass
    def resumeProducing(self):
        pass

async def main(url):
    pool = HTTPConnectionPool(reactor, persistent=True)
    agent = Agent(reactor, pool=pool)
    headers = Headers({b"content-type": [b"application/vnd.syncml.dm+xml"]})
    for _ in range(3):
        response = await agent.request(b"POST", url.encode(), headers, Chunks())
        body = await readBody(response)
        print(response.code, body.decode().strip(), flush=True)
    await pool.closeCachedConnections()

task.react(lambda _reactor, url: defer.ensureDeferred(main(url)), sys.argv[1:])
"""


def test_twisted_agent_chunked_on_a_kept_connection(gateway):
    result = subprocess.run([sys.executable, "-c", AGENT, gateway.url], capture_output=True, timeout=60,
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 3 and all(line.startswith("400 ") and "missing SyncHdr" in line for line in lines), lines


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed")
def test_openssl_s_client_pipelined_over_https(gateway):
    raw = request() + request(extra=b"Connection: close\r\n")
    result = subprocess.run(
        ["openssl", "s_client", "-quiet", "-ign_eof", "-connect", "127.0.0.1:%d" % (gateway.https_port,)],
        input=raw, capture_output=True, timeout=30)
    out = result.stdout
    assert out.count(b"HTTP/1.1 400 ") == 2, (out, result.stderr)
    assert out.count(REACHED) == 2


def test_https_pipelined_with_python_ssl(gateway):
    with socket.create_connection(("127.0.0.1", gateway.https_port), timeout=10) as raw:
        with client_context().wrap_socket(raw) as tls:
            tls.sendall(request() + request())
            answers = read_answers(tls, 2)
    assert [REACHED in body for _head, body in answers] == [True, True]


# -- HAProxy (TCP mode, send-proxy) in front of [https] -----------------------------------


@pytest.fixture
def proxied_https(tmp_path):
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is needed (apt-get install haproxy)")
    key_path, cert_path = make_certificate(str(tmp_path))
    gw = Daemon(tmp_path / "gw")
    https_port = free_port()
    gw.extra_ini = {"http.ini": (
        "[http]\nenabled = false\n\n[https]\nenabled = true\n"
        "endpoint = haproxy:ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s\npath = /dm\n"
        "max_connections_per_peer = 1\n" % (https_port, key_path, cert_path))}
    gw._write_config()
    gw.start()
    listen = free_port()
    try:
        with haproxy(HAPROXY.format(listen=listen, gateway=https_port), tmp_path, listen):
            yield gw, listen
    finally:
        gw.stop()


def tls_device(source, port):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(10)
    raw.bind((source, 0))
    raw.connect(("127.0.0.1", port))
    return client_context().wrap_socket(raw)


def test_https_behind_haproxy_sees_and_caps_each_device(proxied_https):
    gw, port = proxied_https
    first = tls_device("127.0.0.2", port)
    other = tls_device("127.0.0.3", port)
    try:
        first.sendall(request())
        (head, body), = read_answers(first, 1)
        assert head.startswith(b"HTTP/1.1 400 ") and REACHED in body
        other.sendall(request())  # another device through the same proxy is served too
        (head, body), = read_answers(other, 1)
        assert REACHED in body
        # the first device again, while its connection is open: over its cap of 1
        again = tls_device("127.0.0.2", port)
        try:
            again.sendall(b"POST")
            refused = again.recv(4096)
            assert refused.startswith(b"HTTP/1.1 503 "), refused
        finally:
            again.close()
    finally:
        first.close()
        other.close()
    assert "refused a connection from 127.0.0.2" in gw.log()
