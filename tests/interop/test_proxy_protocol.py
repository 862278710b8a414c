"""The DM-2 listener behind a real HAProxy speaking the PROXY protocol.

Debian ``haproxy`` forwards TCP with ``send-proxy`` to the daemon's
``haproxy:tcp:...`` endpoint.  Devices connect to HAProxy from 127.0.0.2 and
127.0.0.3; the daemon must see each device's own address, so that
``max_connections_per_peer`` (1 here) counts devices, not the proxy.
"""

import os
import shutil
import socket
import time

import pytest

from tests.interop.daemon import Daemon, free_port, haproxy

HAPROXY = """global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend devices
    bind 127.0.0.1:{listen}
    default_backend gateway
backend gateway
    server gw 127.0.0.1:{gateway} send-proxy
"""


@pytest.fixture
def proxied_gateway(tmp_path):
    if shutil.which("haproxy") is None:  # `make test` installs it
        pytest.skip("haproxy is needed (apt-get install haproxy)")
    daemon = Daemon(tmp_path / "gw")
    with open(os.path.join(daemon.conf, "http.ini"), "w") as f:
        f.write("[http]\nenabled = true\nendpoint = haproxy:tcp:%d:interface=127.0.0.1\npath = /dm\n"
                "max_connections_per_peer = 1\n" % (daemon.http_port,))
    daemon.start()
    listen = free_port()
    try:
        with haproxy(HAPROXY.format(listen=listen, gateway=daemon.http_port), tmp_path, listen):
            yield daemon, listen
    finally:
        daemon.stop()


def device_connection(source, port):
    """A connection to HAProxy from ``source`` that has sent the start of a
    request (the daemon counts it once the first bytes after the header are in)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"POST /dm HTTP/1.1\r\nHost: gw\r\n")
    return sock


def answer(sock):
    """What the daemon sent before closing, or b"" if it is still waiting."""
    sock.settimeout(1.0)
    try:
        return sock.recv(4096)
    except socket.timeout:
        return b""


def test_the_cap_counts_each_device_behind_the_proxy(proxied_gateway):
    daemon, port = proxied_gateway
    first = device_connection("127.0.0.2", port)
    other = device_connection("127.0.0.3", port)
    try:
        time.sleep(0.3)  # both counted by now
        # a second device through the same proxy is not refused: the proxy's
        # own address is not what is counted
        assert answer(other) == b""
        # the same device again is over its cap of 1: 503 with Retry-After
        again = device_connection("127.0.0.2", port)
        try:
            refused = answer(again)
            assert refused.startswith(b"HTTP/1.1 503 "), refused
            assert b"Retry-After: 1" in refused
        finally:
            again.close()
        # the first device's request is still served once it is whole
        first.sendall(b"Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n")
        first.settimeout(10)
        served = first.recv(4096)
        assert served.startswith(b"HTTP/1.1 "), served
        assert not served.startswith(b"HTTP/1.1 503 "), served
    finally:
        first.close()
        other.close()
    assert "refused a connection from 127.0.0.2" in daemon.log()
