"""DM-2 over HTTPS with TLS-PSK (``[https] psk = true``): a device's identity and
key set through the device API, package 1 posted with ``openssl s_client -psk``."""

import os
import subprocess
import time
import urllib.parse

import pytest

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials
from tests.fixtures import E2E_DEVICE as DEVICE
from tests.interop.daemon import Daemon, free_port
from tests.interop.test_https import client_context, make_certificate

IDENTITY = "psk-device-77"
KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("https-psk")
    key_path, cert_path = make_certificate(str(workdir))
    port = free_port()
    https_ini = (
        "[http]\nenabled = false\n\n[https]\nenabled = true\n"
        "endpoint = ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s\npath = /dm\npsk = true\n"
        % (port, key_path, cert_path)
    )
    gw = Daemon(workdir, extra_ini={"http.ini": https_ini})
    gw.url = "https://127.0.0.1:%d/dm" % (port,)
    gw.https_port = port
    gw._write_config()
    gw.start()
    status, body = gw.put_device(DEVICE, {
        "server_id": "dmgw-e2e",
        "client_auth": {"type": "md5", "name": "dev77", "secret": "s1"},
        "server_auth": {"type": "md5", "name": "dmgw-e2e", "secret": "s2"},
        "psk": {"identity": IDENTITY, "key": KEY},
    })
    assert status in (200, 201), body
    yield gw
    gw.stop()


def package1():
    account = Account(DEVICE, "dmgw-e2e", "https://127.0.0.1/dm", Credentials("md5", "dev77", "s1"),
                      Credentials("md5", "dmgw-e2e", "s2"))
    request = ClientSession(account, random_bytes=os.urandom).start()
    return request.body, request.headers


def post_with_openssl(port, version, identity, key):
    body, headers = package1()
    head = "".join("%s: %s\r\n" % item for item in headers.items())
    if "content-type" not in head.lower():
        head += "Content-Type: application/vnd.syncml.dm+xml\r\n"
    raw = ("POST /dm HTTP/1.0\r\nHost: 127.0.0.1\r\n%sContent-Length: %d\r\n\r\n"
           % (head, len(body))).encode("ascii") + body
    result = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % (port,), "-" + version,
         "-psk", key, "-psk_identity", identity, "-quiet", "-ign_eof"],
        input=raw, capture_output=True, timeout=30)
    return result.stdout.decode("utf-8", "replace")


@pytest.mark.parametrize("version", ["tls1_2", "tls1_3"])
def test_package1_over_psk(gateway, version):
    out = post_with_openssl(gateway.https_port, version, IDENTITY, KEY)
    assert "HTTP/1.0 200" in out or "HTTP/1.1 200" in out, out[:500]
    assert "<SyncML" in out and "<Status>" in out


def test_psk_key_is_never_returned(gateway):
    status, body = gateway.call("GET", "/devices/" + urllib.parse.quote(DEVICE, safe=""))
    assert status == 200
    assert body["psk"] == {"identity": IDENTITY}
    assert KEY not in str(body)


def test_bad_psk_bodies_are_refused(gateway):
    base = {"server_id": "dmgw-e2e", "client_auth": {"type": "md5", "name": "d", "secret": "s"},
            "server_auth": {"type": "md5", "name": "dmgw-e2e", "secret": "s"}}
    for psk in ({"identity": "x", "key": "abc"}, {"identity": "", "key": KEY},
                {"identity": "x"}, {"identity": "x", "key": KEY, "extra": 1}, "text"):
        status, body = gateway.put_device("IMEI:350000000000078", dict(base, psk=psk))
        assert status == 400 and body["error"]["code"] == "invalid_device", (psk, body)
    status, body = gateway.put_device("IMEI:350000000000079",
                                      dict(base, psk={"identity": IDENTITY, "key": KEY}))
    assert status == 400 and "another device" in body["error"]["message"], body


def test_wrong_key_refused_and_logged_once(gateway):
    # TLS 1.2: the PSK suite is chosen, the wrong key breaks the handshake.
    # (TLS 1.3 falls back to the certificate, as for an unknown identity.)
    needle = "wrong key"
    before = gateway.log().count(needle)
    out = post_with_openssl(gateway.https_port, "tls1_2", IDENTITY, "00" * 16)
    assert "HTTP/1." not in out
    deadline = time.monotonic() + 10
    while gateway.log().count(needle) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    lines = [line for line in gateway.log().splitlines() if needle in line]
    assert len(lines) == before + 1 and "127.0.0.1:" in lines[-1], lines
    assert KEY not in gateway.log()


def test_unknown_identity_falls_back_to_the_certificate(gateway):
    # This listener also has a certificate: a PSK it does not know is ignored
    # (TLS 1.3) and the handshake is an ordinary certificate one, after which
    # the device still has to pass DM-level authentication.
    body, _headers = package1()
    out = post_with_openssl(gateway.https_port, "tls1_3", "nobody-here", KEY)
    assert "HTTP/1.0 200" in out
    result = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % (gateway.https_port,), "-tls1_3",
         "-psk", KEY, "-psk_identity", "nobody-here", "-brief"],
        input=b"", capture_output=True, timeout=20)
    text = (result.stdout + result.stderr).decode("latin-1")
    assert "Peer certificate" in text or "Server certificate" in text, text


def test_certificate_clients_still_served(gateway):
    import socket

    with socket.create_connection(("127.0.0.1", gateway.https_port), timeout=10) as raw:
        with client_context().wrap_socket(raw) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
