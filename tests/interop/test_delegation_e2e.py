"""DM-6 end to end: two real gateways on loopback, each with its own store and
ports, hand a simulated device's ./Vendor/X over to each other and back,
over TLS-PSK and over mutually authenticated certificates."""

import json
import os
import subprocess
import sys
import time
import urllib.parse

import pytest

from dmgateway.client import ClientSession
from dmgateway.client.account import Account, Credentials
from dmgateway.client.tree import default_tree
from dmgateway.tree import TreeError
from tests.fixtures import DEVICE
from tests.interop.daemon import ROOT, Daemon, free_port, run_client
from tests.interop.test_https import make_certificate

KEY = "7c1e5a2b9d3f40e6a8b2c4d6e8f01234"
OTHER_KEY = "00000000000000000000000000000001"
VENDOR_ACL = "Add=dms-a&Delete=dms-a&Get=dms-a&Replace=dms-a"


class Gateway(Daemon):
    def __init__(self, workdir, server_id, delegation_ini):
        self.server_id = server_id
        self.delegation_ini = delegation_ini
        self.delegation_port = free_port()
        super().__init__(workdir)

    def _write_config(self):
        self.extra_ini = dict(self.extra_ini, **{"delegation.ini": self.delegation_ini(self)})
        super()._write_config()
        path = os.path.join(self.conf, "dmgateway.ini")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("server_id = dmgw-e2e", "server_id = " + self.server_id))

    def delegation(self, delegation_id):
        status, body = self.call("GET", "/delegations/" + delegation_id)
        assert status == 200, body
        return body

    @property
    def delegation_url(self):
        return "https://127.0.0.1:%d/dm-delegation" % (self.delegation_port,)


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def psk_pair(workdir):
    """Gateways A (dms-a) and B (dms-b) sharing one key; A also knows a
    dms-c that is B's address with another key (a wrong PSK)."""
    key = _write(os.path.join(workdir, "shared.psk"), KEY + "\n")
    other = _write(os.path.join(workdir, "other.psk"), OTHER_KEY + "\n")
    key_path, cert_path = make_certificate(workdir)
    gateways = {}

    def ini(own, peer, extra=""):
        def text(gw):
            return (
                "[delegation]\nenabled = true\n"
                "endpoint = ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s\n"
                "psk_identity = %s\npsk_file = %s\ntimeout = 10\ncheck_interval = 0.5\n\n"
                "[peer:%s]\nurl = %s\npsk_identity = %s\n%s"
                % (gw.delegation_port, key_path, cert_path, own, key, peer,
                   gateways[peer].delegation_url, peer, extra)
            )
        return text

    a_dir, b_dir = os.path.join(workdir, "a"), os.path.join(workdir, "b")
    os.makedirs(a_dir), os.makedirs(b_dir)
    # ports first: each side's file names the other's URL
    b = Gateway.__new__(Gateway)
    b.delegation_port = free_port()
    gateways["dms-b"] = b
    a = Gateway(a_dir, "dms-a", ini("dms-a", "dms-b", "\n[peer:dms-c]\nurl = https://127.0.0.1:%d/dm-delegation\n"
                                                     "psk_identity = dms-c\npsk_file = %s\n"
                                    % (b.delegation_port, other)))
    gateways["dms-a"] = a
    port = b.delegation_port
    Gateway.__init__(b, b_dir, "dms-b", ini("dms-b", "dms-a"))
    b.delegation_port = port
    b._write_config()
    return a, b


def cert_pair(workdir):
    """Gateways A and B with their own certificates, each pinning the other's."""
    certs = {}
    for name in ("a", "b"):
        directory = os.path.join(workdir, name)
        os.makedirs(directory)
        certs[name] = make_certificate(directory)
    gateways = {}

    def ini(own, peer):
        def text(gw):
            key_path, cert_path = certs[own]
            return (
                "[delegation]\nenabled = true\n"
                "endpoint = ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s\n"
                "timeout = 10\ncheck_interval = 0.5\n\n"
                "[peer:dms-%s]\nurl = %s\ncertificate = %s\n"
                % (gw.delegation_port, key_path, cert_path, peer,
                   gateways[peer].delegation_url, certs[peer][1])
            )
        return text

    b = Gateway.__new__(Gateway)
    b.delegation_port = free_port()
    gateways["b"] = b
    a = Gateway(os.path.join(workdir, "a"), "dms-a", ini("a", "b"))
    gateways["a"] = a
    port = b.delegation_port
    Gateway.__init__(b, os.path.join(workdir, "b"), "dms-b", ini("b", "a"))
    b.delegation_port = port
    b._write_config()
    return a, b


def issue(ca, common_name, directory):
    """A key and certificate for ``common_name`` signed by ``ca`` (key, cert); paths."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=30)))
    if ca_cert is None:  # self-signed CA
        builder = builder.issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                    common_name)]))
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        cert = builder.sign(key, hashes.SHA256())
    else:
        cert = builder.issuer_name(ca_cert.subject).sign(ca_key, hashes.SHA256())
    os.makedirs(directory, exist_ok=True)
    key_path = os.path.join(directory, common_name + ".key")
    cert_path = os.path.join(directory, common_name + ".pem")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return (key, cert), key_path, cert_path


def ca_pair(workdir):
    """Gateways A and B with certificates from one CA (peer_ca), no pins: the CN names the peer."""
    ca, _key, ca_path = issue((None, None), "test-ca", os.path.join(workdir, "ca"))
    paths = {name: issue(ca, "dms-" + name, os.path.join(workdir, name))[1:]
             for name in ("a", "b")}
    gateways = {}

    def ini(own, peer):
        def text(gw):
            key_path, cert_path = paths[own]
            return (
                "[delegation]\nenabled = true\n"
                "endpoint = ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s\n"
                "peer_ca = %s\ntimeout = 10\ncheck_interval = 0.5\n\n"
                "[peer:dms-%s]\nurl = %s\n"
                % (gw.delegation_port, key_path, cert_path, ca_path, peer,
                   gateways[peer].delegation_url)
            )
        return text

    b = Gateway.__new__(Gateway)
    b.delegation_port = free_port()
    gateways["b"] = b
    a = Gateway(os.path.join(workdir, "a"), "dms-a", ini("a", "b"))
    gateways["a"] = a
    port = b.delegation_port
    Gateway.__init__(b, os.path.join(workdir, "b"), "dms-b", ini("b", "a"))
    b.delegation_port = port
    b._write_config()
    a.ca = (ca, os.path.join(workdir, "ca"))
    return a, b


PAIRS = {"psk": psk_pair, "certificates": cert_pair, "ca": ca_pair}


@pytest.fixture(params=sorted(PAIRS), scope="module")
def pair(request, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("delegation-" + request.param))
    a, b = PAIRS[request.param](workdir)
    a.start()
    try:
        b.start()
    except Exception:
        a.stop()
        raise
    a.mode = request.param
    yield a, b
    a.stop()
    b.stop()


class Device:
    """A simulated device whose management tree outlives its sessions."""

    def __init__(self, url):
        self.account = Account(DEVICE, "dms-a", url, Credentials("md5", "dev-a", "secret-a"),
                               Credentials("md5", "dms-a", "server-a"), name="dmsa")
        self.tree = default_tree(self.account)
        for sub in ("X", "Y"):
            self.tree.set("./Vendor/%s/Setting" % (sub,), "initial")
        self.tree.set_acl("./Vendor", VENDOR_ACL)

    def session(self, account):
        return run_client(ClientSession(account, random_bytes=os.urandom, tree=self.tree))

    def account_for(self, server_id, url):
        """The Account of the DMAcc that names ``server_id`` (as the device reads it)."""
        for name in self.tree.read("./DMAcc").value:
            base = "./DMAcc/" + name
            if self.tree.read(base + "/ServerID").value != server_id:
                continue
            auth = {}
            for index in self.tree.read(base + "/AppAuth").value:
                entry = "%s/AppAuth/%s/" % (base, index)
                auth[self.tree.read(entry + "AAuthLevel").value] = Credentials(
                    "md5", self.tree.read(entry + "AAuthName").value,
                    self.tree.read(entry + "AAuthSecret").value)
            return Account(DEVICE, server_id, url, auth["CLCRED"], auth["SRVCRED"], name=name)
        return None


def wait_for(check, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def put_device(gw):
    status, body = gw.put_device(DEVICE, {
        "server_id": "dms-a",
        "client_auth": {"type": "md5", "name": "dev-a", "secret": "secret-a"},
        "server_auth": {"type": "md5", "name": "dms-a", "secret": "server-a"},
    })
    assert status in (200, 201), body


def sessions_until(device, gw, delegation_id, states, limit=4):
    for _ in range(limit):
        state = gw.delegation(delegation_id)["state"]
        if state in states:
            return state
        session = device.session(device.account)
        assert session.outcome == "completed", session.log
        time.sleep(0.3)
    return wait_for(lambda: gw.delegation(delegation_id)["state"] in states and
                    gw.delegation(delegation_id)["state"], "states %s" % (states,))


def test_partial_temporary_delegation_and_revocation(pair):
    a, b = pair
    put_device(a)
    device = Device(a.url)
    session = device.session(device.account)  # A learns DevInfo
    assert session.outcome == "completed", session.log

    status, body = a.call("POST", "/delegations", {
        "peer": "dms-b", "devices": [DEVICE], "subtrees": ["./Vendor/X"],
        "type": "partial", "duration": "temporary"})
    assert status == 201, body
    assert body["state"] == "preparing", body
    delegation_id = body["id"]
    # B holds an account for the device already (it supplied its credentials)
    assert b.call("GET", "/devices/" + urllib.parse.quote(DEVICE, safe=""))[0] == 200

    assert sessions_until(device, a, delegation_id, ("device-ready", "failed")) == \
        "device-ready", a.delegation(delegation_id)
    view = a.delegation(delegation_id)
    steps = [entry["step"] for entry in view["history"]]
    assert steps[:2] == ["requested", "accepted"] and "device-ready" in steps, steps
    assert "secret" not in str(view).lower()
    grant = a.job(view["device_steps"][DEVICE]["jobs"][1])
    secrets = [c["data"] for c in grant["commands"] if c["target"].endswith("/AAuthSecret")]
    assert secrets == ["(secret)", "(secret)"], grant["commands"]
    assert device.tree.get("./Vendor/X?prop=ACL").value == \
        "Add=dms-b&Delete=dms-b&Exec=dms-b&Get=dms-b&Replace=dms-b"

    # B manages ./Vendor/X; the device refuses B elsewhere (425).  B's first
    # session also runs its contact job, after which B reports completion.
    b_account = device.account_for("dms-b", b.url)
    assert b_account is not None
    job_id = b.create_job(DEVICE, {"commands": [
        {"op": "Replace", "target": "./Vendor/X/Setting", "data": "from-b"},
        {"op": "Replace", "target": "./Vendor/Y/Setting", "data": "from-b"},
        {"op": "Replace", "target": "./DMAcc/dmsa/Name", "data": "from-b"},
    ], "notify": "none"})
    session = device.session(b_account)
    assert session.outcome == "completed", session.log
    results = b.job(job_id)["results"]
    assert [r["status"] for r in results] == [200, 425, 425], results
    assert device.tree.read("./Vendor/X/Setting").value == "from-b"
    assert device.tree.read("./Vendor/Y/Setting").value == "initial"
    wait_for(lambda: a.delegation(delegation_id)["state"] == "active", "B's completion")
    assert any(e["step"] == "active" and "completion" in e["detail"]
               for e in a.delegation(delegation_id)["history"])

    # revocation: A restores the ACLs and removes B's account; B forgets the device
    status, body = a.call("DELETE", "/delegations/" + delegation_id)
    assert status == 200 and body["state"] == "revoking", body
    assert sessions_until(device, a, delegation_id, ("revoked", "failed")) == "revoked", \
        a.delegation(delegation_id)
    assert device.account_for("dms-b", b.url) is None
    shown = subprocess.run(
        [sys.executable, "-m", "dmgateway.cli", "api", "--url", a.api.rsplit("/api/v1", 1)[0],
         "--token", a.token, "delegation", "get", delegation_id],
        capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "revoked"
    assert device.tree.get("./Vendor/X?prop=ACL").value == ""  # inherits ./Vendor's again
    with pytest.raises(TreeError) as refused:
        device.tree.replace("./Vendor/X/Setting", "again", server="dms-b")
    assert refused.value.status == 425
    device.tree.replace("./Vendor/X/Setting", "a-again", server="dms-a")
    wait_for(lambda: b.call("GET", "/devices/" + urllib.parse.quote(DEVICE, safe=""))[0] == 404,
             "B to drop the device")
    status, body = b.call("POST", "/devices/%s/jobs" % (urllib.parse.quote(DEVICE, safe=""),),
                          {"commands": [{"op": "Get", "target": "./Vendor/X/Setting"}]})
    assert status == 404, body


def test_bad_requests_are_refused_before_the_peer_is_asked(pair):
    a, b = pair
    put_device(a)
    base = {"peer": "dms-b", "devices": [DEVICE], "subtrees": ["./Vendor/X"],
            "type": "partial", "duration": "temporary"}
    for change, status, code in (
        ({"peer": "nobody"}, 400, "unknown_peer"),
        ({"devices": ["IMEI:000000000000000"]}, 404, "unknown_device"),
        ({"subtrees": ["Vendor/../X"]}, 400, "invalid_request"),
        ({"type": "half"}, 400, "invalid_request"),
        ({"duration": "permanent", "until": "2030-01-01T00:00:00Z"}, 400, "invalid_request"),
    ):
        got, body = a.call("POST", "/delegations", dict(base, **change))
        assert (got, body["error"]["code"]) == (status, code), body


def test_subtree_missing_on_the_device_fails_cleanly(pair):
    a, b = pair
    put_device(a)
    device = Device(a.url)
    status, body = a.call("POST", "/delegations", {
        "peer": "dms-b", "devices": [DEVICE], "subtrees": ["./Vendor/Nope"],
        "type": "partial", "duration": "temporary"})
    assert status == 201, body
    state = sessions_until(device, a, body["id"], ("failed",))
    assert state == "failed"
    view = a.delegation(body["id"])
    assert view["error"]["code"] == "device_refused", view
    assert device.account_for("dms-b", b.url) is None
    wait_for(lambda: b.call("GET", "/devices/" + urllib.parse.quote(DEVICE, safe=""))[0] == 404,
             "B to drop the device after the failure")


def test_wrong_psk_or_unpinned_certificate_is_refused(pair, tmp_path):
    a, b = pair
    if a.mode == "psk":
        put_device(a)
        status, body = a.call("POST", "/delegations", {
            "peer": "dms-c", "devices": [DEVICE], "subtrees": ["./Vendor/X"],
            "type": "partial", "duration": "temporary"})
        assert status == 201 and body["state"] == "failed", body
        assert body["error"]["code"] == "peer_unreachable", body
        # A presents its identity with the key it holds for dms-c: B's key for dms-a differs
        wait_for(lambda: "wrong key" in b.log(), "B to log the refused handshake")
        time.sleep(0.3)
        lines = [line for line in b.log().splitlines() if "wrong key" in line]
        assert len(lines) == 1 and "127.0.0.1:" in lines[0] and "'dms-a'" in lines[0], lines
        assert KEY not in b.log() and OTHER_KEY not in a.log()
    elif a.mode == "ca":
        # a certificate from the same CA whose CN is not the peer it claims to be
        note = notification_from("dms-a")
        for name, expected in (("intruder", b"403"), ("dms-a", b"200")):
            _c, key_path, cert_path = issue(a.ca[0], name, str(tmp_path))
            result = subprocess.run(
                ["openssl", "s_client", "-connect", "127.0.0.1:%d" % (b.delegation_port,),
                 "-cert", cert_path, "-key", key_path, "-quiet", "-ign_eof"],
                input=note, capture_output=True, timeout=20)
            assert b"HTTP/1.0 " + expected in result.stdout, (name, result.stdout)
        assert b"unknown_transaction" in result.stdout  # dms-a is heard, and answered
    else:
        key_path, cert_path = make_certificate(str(tmp_path))
        result = subprocess.run(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % (b.delegation_port,),
             "-cert", cert_path, "-key", key_path, "-quiet", "-ign_eof"],
            input=b"POST /dm-delegation HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
            capture_output=True, timeout=20)
        assert b"HTTP/1." not in result.stdout
        result = subprocess.run(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % (b.delegation_port,),
             "-quiet", "-ign_eof"],
            input=b"POST /dm-delegation HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
            capture_output=True, timeout=20)
        assert b"HTTP/1." not in result.stdout
        wait_for(lambda: b.log().count("TLS handshake with 127.0.0.1:") >= 2,
                 "B to log both refused handshakes")


def notification_from(server_id):
    from dmgateway.delegation import messages as m

    body = m.serialize(m.Notification(os.urandom(16).hex(), server_id, "completed"))
    return (b"POST /dm-delegation HTTP/1.0\r\nContent-Type: application/vnd.dm.delegation+xml"
            b"\r\nContent-Length: %d\r\n\r\n" % (len(body),) + body)


def test_invalid_message_over_psk_gets_a_clear_400(pair):
    a, b = pair
    if a.mode != "psk":
        pytest.skip("the PSK identity lets openssl s_client speak for dms-a")
    body = b"<DelegationRequest xmlns='urn:dmgateway:delegation:1' version='1.0'/>"
    request = (b"POST /dm-delegation HTTP/1.0\r\nContent-Type: application/vnd.dm.delegation+xml\r\n"
               b"Content-Length: %d\r\n\r\n" % (len(body),) + body)
    for version in ("-tls1_2", "-tls1_3"):
        result = subprocess.run(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % (b.delegation_port,), version,
             "-psk", KEY, "-psk_identity", "dms-a", "-quiet", "-ign_eof"],
            input=request, capture_output=True, timeout=20)
        assert b"HTTP/1.0 400" in result.stdout or b"HTTP/1.1 400" in result.stdout, result
        assert b"schema" in result.stdout


def test_temporary_delegation_ends_at_its_end_time(pair):
    a, b = pair
    if a.mode != "psk":
        pytest.skip("the end-time check does not depend on the TLS mode")
    put_device(a)
    device = Device(a.url)
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 10))
    status, body = a.call("POST", "/delegations", {
        "peer": "dms-b", "devices": [DEVICE], "subtrees": ["./Vendor/Y"],
        "type": "full", "duration": "temporary", "until": until})
    assert status == 201 and body["until"] == until, body
    delegation_id = body["id"]
    # A restarts in the middle: the delegation goes on from its store
    a.stop()
    a.start()
    assert sessions_until(device, a, delegation_id, ("device-ready", "failed")) == "device-ready"
    assert "dms-b" in device.tree.get("./Vendor/Y?prop=ACL").value
    assert "dms-a" in device.tree.get("./Vendor/Y?prop=ACL").value  # full: A keeps its rights
    session = device.session(device.account_for("dms-b", b.url))  # B's contact job
    assert session.outcome == "completed", session.log
    wait_for(lambda: a.delegation(delegation_id)["state"] == "active", "B's completion")
    wait_for(lambda: a.delegation(delegation_id)["state"] == "revoking", "the end time", 15)
    assert sessions_until(device, a, delegation_id, ("revoked",)) == "revoked"
    assert device.tree.get("./Vendor/Y?prop=ACL").value == ""
    history = a.delegation(delegation_id)["history"]
    assert any("end time" in entry["detail"] for entry in history), history
