"""[https] ciphers against ``openssl s_client`` (issue 10): with the default,
TLS 1.2 offers forward-secret AEAD suites only; TLS 1.3 is unchanged; the
key does what it says when set; a string selecting nothing is refused."""

import datetime
import os
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.interop.daemon import Daemon, free_port

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def rsa_certificate(directory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def https_daemon(workdir, ciphers_line=""):
    key_path, cert_path = rsa_certificate(str(workdir))
    port = free_port()
    gw = Daemon(workdir, extra_ini={"http.ini": (
        "[http]\nenabled = false\n\n[https]\nenabled = true\n"
        "endpoint = ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s\npath = /dm\n%s"
        % (port, key_path, cert_path, ciphers_line))})
    gw.https_port = port
    gw.url = "https://127.0.0.1:%d/dm" % (port,)
    gw._write_config()
    return gw


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = https_daemon(tmp_path_factory.mktemp("ciphers"))
    gw.start()
    yield gw
    gw.stop()


def handshake(port, *options):
    """(completed?, s_client output) of one handshake with ``options``."""
    result = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % (port,), "-servername", "127.0.0.1", *options],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20,
    )
    output = result.stdout.decode("utf-8", "replace")
    completed = result.returncode == 0 and "Cipher is (NONE)" not in output and "Cipher is " in output
    return completed, output


@pytest.mark.parametrize("cipher", [
    "AES128-SHA",  # static RSA, CBC
    "AES256-GCM-SHA384",  # static RSA, AEAD
    "ECDHE-RSA-AES128-SHA",  # forward secret but CBC-SHA1
    "ECDHE-RSA-AES256-SHA384",  # forward secret but CBC
    "DHE-RSA-AES128-GCM-SHA256",  # finite-field DHE
])
def test_tls12_refuses_what_is_not_ecdhe_aead(gateway, cipher):
    completed, output = handshake(gateway.https_port, "-tls1_2", "-cipher", cipher)
    assert not completed, output


@pytest.mark.parametrize("cipher", [
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305",
])
def test_tls12_accepts_ecdhe_aead(gateway, cipher):
    completed, output = handshake(gateway.https_port, "-tls1_2", "-cipher", cipher)
    assert completed, output
    assert "Cipher is %s" % (cipher,) in output


def test_tls13_is_unchanged(gateway):
    completed, output = handshake(gateway.https_port, "-tls1_3")
    assert completed, output
    assert "TLSv1.3" in output


def test_the_key_does_what_it_says(tmp_path):
    gw = https_daemon(tmp_path, "ciphers = ECDHE+CHACHA20\n")
    gw.start()
    try:
        completed, output = handshake(gw.https_port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
        assert not completed, output
        completed, output = handshake(gw.https_port, "-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305")
        assert completed, output
    finally:
        gw.stop()


def test_a_string_selecting_nothing_is_refused_by_check_config(tmp_path):
    gw = https_daemon(tmp_path, "ciphers = NO-SUCH-CIPHER\n")
    result = subprocess.run(gw.command() + ["--check-config"], cwd=gw.workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=60,
                            env=dict(os.environ, PYTHONPATH=os.getcwd()))
    output = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 2, output
    assert "ciphers" in output and "NO-SUCH-CIPHER" in output
