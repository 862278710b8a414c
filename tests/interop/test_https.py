"""DM-2 over HTTPS: certificates from files, TLS 1.2 as the floor."""

import datetime
import os
import socket
import ssl
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials
from tests.interop.daemon import Daemon, free_port


def make_certificate(directory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("https")
    key_path, cert_path = make_certificate(str(workdir))
    port = free_port()
    https_ini = (
        "[http]\nenabled = false\n\n[https]\nenabled = true\n"
        "endpoint = ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s\npath = /dm\nmin_tls = 1.2\n"
        % (port, key_path, cert_path)
    )
    gw = Daemon(workdir, extra_ini={"http.ini": https_ini})
    gw.url = "https://127.0.0.1:%d/dm" % (port,)
    gw.https_port = port
    gw._write_config()  # public_url (the RespURI) is the HTTPS one
    gw.start()
    yield gw
    gw.stop()


def client_context(**kwargs):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for name, value in kwargs.items():
        setattr(context, name, value)
    return context


def test_session_over_https(gateway):
    gateway.put_device(
        "IMEI:350000000000010",
        {
            "server_id": "dmgw-e2e",
            "client_auth": {"type": "md5", "name": "dev", "secret": "s1"},
            "server_auth": {"type": "md5", "name": "dmgw-e2e", "secret": "s2"},
        },
    )
    job_id = gateway.create_job(
        "IMEI:350000000000010", {"commands": [{"op": "Get", "target": "./DevInfo/Mod"}], "notify": "none"}
    )
    account = Account(
        "IMEI:350000000000010", "dmgw-e2e", gateway.url, Credentials("md5", "dev", "s1"),
        Credentials("md5", "dmgw-e2e", "s2"),
    )
    session = ClientSession(account, random_bytes=os.urandom)
    request = session.start()
    context = client_context()
    while request is not None:
        http_request = urllib.request.Request(request.url, data=request.body, method="POST")
        for name, value in request.headers.items():
            http_request.add_header(name, value)
        with urllib.request.urlopen(http_request, timeout=30, context=context) as response:
            assert response.status == 200
            request = session.receive(response.read(), dict(response.headers))
    assert session.outcome == "completed", session.log
    assert gateway.job(job_id)["state"] == "done"


def test_tls_below_1_2_is_refused(gateway):
    context = client_context(minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1)
    try:
        context.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with socket.create_connection(("127.0.0.1", gateway.https_port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            with context.wrap_socket(raw) as tls:
                tls.do_handshake()


def test_tls_1_2_and_1_3_accepted(gateway):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = client_context(minimum_version=version, maximum_version=version)
        with socket.create_connection(("127.0.0.1", gateway.https_port), timeout=10) as raw:
            with context.wrap_socket(raw) as tls:
                assert tls.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
