"""The TLS-PSK layer against OpenSSL's own tools, both ways, TLS 1.2 and 1.3."""

import socket
import subprocess
import sys
import time

import pytest

from dmgateway.bearers import tlspsk
from tests.interop.daemon import ROOT, free_port

KEY = "3f2a9c1e5b7d40a8c6e2f19b0d4a7c35"
IDENTITY = "dev-psk-1"
WRONG_KEY = "3f2a9c1e5b7d40a8c6e2f19b0d4a7c36"


def _peer(*args, stderr=subprocess.PIPE):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.interop.pskpeer", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


@pytest.fixture(scope="module")
def listener(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("pskpeer") / "log.txt"
    with open(log_path, "w") as log_file:
        process = _peer("serve", IDENTITY, KEY, stderr=log_file)
    line = process.stdout.readline()
    assert line.startswith("PORT "), log_path.read_text()
    process.port = int(line.split()[1])
    process.log_path = log_path
    yield process
    process.terminate()
    process.wait(10)


def s_client(port, version, identity, key, request=b"GET / HTTP/1.0\r\n\r\n"):
    result = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % (port,), "-" + version,
         "-psk", key, "-psk_identity", identity, "-quiet", "-ign_eof"],
        input=request, capture_output=True, timeout=20,
    )
    return result.stdout.decode("latin-1"), result.stderr.decode("latin-1")


@pytest.mark.parametrize("version", ["tls1_2", "tls1_3"])
def test_openssl_client_completes_psk_handshake(listener, version):
    out, err = s_client(listener.port, version, IDENTITY, KEY)
    assert "HTTP/1.0 200" in out, err
    assert "identity=%s" % (IDENTITY,) in out


def test_tls12_suite_is_forward_secret(listener):
    result = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % (listener.port,), "-tls1_2",
         "-psk", KEY, "-psk_identity", IDENTITY, "-brief"],
        input=b"", capture_output=True, timeout=20,
    )
    text = result.stderr.decode("latin-1") + result.stdout.decode("latin-1")
    assert "Ciphersuite: ECDHE-PSK-" in text, text


def _log_lines(listener, needle, wait=5.0):
    """Lines of the listener's log containing ``needle``, once some have appeared."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if needle in listener.log_path.read_text():
            time.sleep(0.3)  # a second line, if there were one, would be there by now
            break
        time.sleep(0.05)
    return [line for line in listener.log_path.read_text().splitlines() if needle in line]


@pytest.mark.parametrize("version", ["tls1_2", "tls1_3"])
def test_unknown_identity_is_refused_and_logged_once(listener, version):
    name = "stranger-" + version
    out, err = s_client(listener.port, version, name, KEY)
    assert "HTTP/1.0" not in out
    lines = _log_lines(listener, name)
    assert len(lines) == 1, lines
    assert "refused" in lines[0] and "127.0.0.1:" in lines[0]


@pytest.mark.parametrize("version", ["tls1_2", "tls1_3"])
def test_wrong_key_is_refused_and_logged_once(listener, version):
    # The identity is known, so the refusal names it (the key itself is never logged).
    before = len(_log_lines(listener, "wrong key", wait=0))
    out, err = s_client(listener.port, version, IDENTITY, WRONG_KEY)
    assert "HTTP/1.0" not in out
    deadline = time.monotonic() + 5
    while len(_log_lines(listener, "wrong key", wait=0)) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    lines = _log_lines(listener, "wrong key", wait=0)[before:]
    assert len(lines) == 1, lines
    assert "127.0.0.1:" in lines[0] and WRONG_KEY not in lines[0] and KEY not in lines[0]


def test_client_without_psk_is_refused(listener):
    result = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % (listener.port,), "-quiet"],
        input=b"GET / HTTP/1.0\r\n\r\n", capture_output=True, timeout=20,
    )
    assert b"HTTP/1.0" not in result.stdout


@pytest.fixture
def s_server(request):
    port = free_port()
    version = getattr(request, "param", "tls1_3")
    process = subprocess.Popen(
        ["openssl", "s_server", "-accept", "127.0.0.1:%d" % (port,), "-nocert", "-" + version,
         "-psk", KEY, "-psk_identity", IDENTITY, "-www"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    process.port = port
    yield process
    process.kill()
    process.wait(10)


@pytest.mark.parametrize("s_server", ["tls1_2", "tls1_3"], indirect=True)
def test_gateway_client_against_openssl_server(s_server):
    fetch = _peer("fetch", "https://127.0.0.1:%d/" % (s_server.port,), IDENTITY, KEY)
    out, err = fetch.communicate(timeout=30)
    assert "STATUS 200" in out, out + err


def test_gateway_client_with_wrong_key_fails(s_server):
    fetch = _peer("fetch", "https://127.0.0.1:%d/" % (s_server.port,), IDENTITY, WRONG_KEY)
    out, err = fetch.communicate(timeout=30)
    assert fetch.returncode == 1 and "ERROR" in out, out + err


def test_parse_psk():
    assert tlspsk.parse_psk(" %s\n" % (KEY,)) == bytes.fromhex(KEY)
    assert tlspsk.parse_psk("0x" + KEY) == bytes.fromhex(KEY)
    for bad in ("", "abc", "zz" * 16, "00" * 15, "00" * 257):
        with pytest.raises(tlspsk.PskError):
            tlspsk.parse_psk(bad)
    with pytest.raises(tlspsk.PskError):
        tlspsk.check_identity("")
    with pytest.raises(tlspsk.PskError):
        tlspsk.check_identity("x" * 129)
