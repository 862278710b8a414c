"""Tests for dmgateway.config: the shipped conf/, every kind of problem, bearer rules."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.testing import MemoryReactor

from dmgateway.config import (
    FILES, ConfigError, GatewayConfig, Problem, SmppLinkConfig, check_config,
    endpoint_parameters, load_config, parse_host_port, split_endpoint,
)
from dmgateway.config import checks, inifile

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "conf"
LINE = re.compile(r"^[\w./-]+( \[[^\]]+\]( [\w-]+)?)?: \S.*$")


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """The daemon's working directory: var/ with an API token, as deployed."""
    run = tmp_path / "run"
    (run / "var").mkdir(parents=True)
    (run / "var" / "api.token").write_text("s3cret-token\n")
    monkeypatch.chdir(run)
    return run


@pytest.fixture
def conf(run_dir):
    """A minimal config directory: dmgateway.ini with only [gateway]."""
    path = run_dir / "conf"
    path.mkdir()
    (path / "dmgateway.ini").write_text("[gateway]\n")
    return path


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text)


def problems(directory) -> list[str]:
    lines = check_config(str(directory), hostname="node1")
    for line in lines:
        assert LINE.match(line), line
        # the loader's own failure; junk text merely quoted back may say anything
        assert not re.match(r"^[^:]+: internal error while checking", line), line
    return lines


def make_cert(directory: Path, name: str) -> None:
    """A self-signed EC certificate ``name.crt`` and key ``name.key``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime(2024, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(1).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    (directory / (name + ".key")).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (directory / (name + ".crt")).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


# -- the shipped conf/ ---------------------------------------------------------


def test_shipped_conf_is_clean(run_dir):
    assert sorted(p.name for p in SHIPPED.glob("*.ini")) == sorted(FILES)
    assert problems(SHIPPED) == []
    cfg = load_config(str(SHIPPED), hostname="node1")
    assert cfg.gateway.server_id == "dmgateway"
    assert cfg.gateway.public_url == "http://127.0.0.1:8080/dm"
    assert cfg.gateway.store == "sqlite:var/dmgateway.sqlite"
    assert cfg.gateway.notification_version == 11
    assert cfg.gateway.session_timeout == 300
    assert cfg.gateway.node_name == "node1"
    assert (cfg.api.enabled, cfg.api.endpoint, cfg.api.token_file) == (
        True, "tcp:8081:interface=127.0.0.1", "var/api.token")
    assert (cfg.http.enabled, cfg.http.endpoint, cfg.http.path, cfg.http.max_body) == (
        True, "tcp:8080:interface=127.0.0.1", "/dm", 1048576)
    assert not cfg.https.enabled
    assert [link.enabled for link in cfg.smpp_links] == [False]
    assert cfg.enabled_smpp_links == ()
    assert not (cfg.modem.enabled or cfg.sip.enabled or cfg.delegation.enabled
                or cfg.snmp.enabled)
    assert cfg.sip.push_app_id == "syncml.dm"


def test_defaults_are_what_the_shipped_files_say(conf):
    """A section left out entirely equals the shipped file's section."""
    write(conf, "http.ini", "")
    minimal = load_config(str(conf), hostname="node1")
    shipped = load_config(str(SHIPPED), hostname="node1")
    for f in fields(GatewayConfig):
        if f.name in ("config_dir", "files", "smpp_links"):
            continue
        assert getattr(minimal, f.name) == getattr(shipped, f.name), f.name
    assert shipped.smpp_links == (SmppLinkConfig(),)


def test_shipped_commented_keys_are_known(run_dir, tmp_path):
    """Every optional key shown commented out in conf/ is a real key."""
    copy = tmp_path / "uncommented"
    copy.mkdir()
    for path in SHIPPED.glob("*.ini"):
        text = re.sub(r"(?m)^#(\[[\w:]+\]|\w+ =.*)$", r"\1", path.read_text())
        (copy / path.name).write_text(text)
    found = problems(copy)
    assert not [line for line in found if "unknown" in line or "duplicate" in line], found


def test_shipped_files_document_every_key(run_dir):
    """Each key the loader knows appears (maybe commented) in its shipped file."""
    for name in FILES:
        text = (SHIPPED / name).read_text()
        shown = set(re.findall(r"(?m)^#?(\w+) =", text))
        raw = inifile.parse(re.sub(r"(?m)^#(\w+ =)", r"\1", text), name, [])
        for section in raw:
            assert set(section.values) <= shown
    cfg = load_config(str(SHIPPED), hostname="n")
    keys = {f.name for part in (cfg.gateway, cfg.api, cfg.http, cfg.https, cfg.sip,
                                cfg.delegation, cfg.modem, cfg.snmp, cfg.auth, cfg.logging)
            for f in fields(part)}
    everything = "".join((SHIPPED / n).read_text() for n in FILES)
    for key in keys - {"peers"}:
        assert re.search(r"(?m)^#?%s =" % key, everything), key


# -- one line per problem --------------------------------------------------------

CASES = [
    ("dmgateway.ini", "[gateway]\nserver_di = x\n",
     "dmgateway.ini [gateway] server_di: unknown key (did you mean 'server_id'?)"),
    ("http.ini", "[http]\nenabled = maybe\n",
     "http.ini [http] enabled: bad boolean 'maybe' (use true/false, yes/no, on/off or 1/0)"),
    ("dmgateway.ini", "[gateway]\nnotification_version = 14\n",
     "dmgateway.ini [gateway] notification_version: 14 out of range (10-13)"),
    ("dmgateway.ini", "[gateway]\nsession_timeout = soon\n",
     "dmgateway.ini [gateway] session_timeout: bad integer 'soon'"),
    ("http.ini", "[http]\nendpoint = tcp:8080:interfase=127.0.0.1\n",
     "http.ini [http] endpoint: bad endpoint 'tcp:8080:interfase=127.0.0.1': "
     "unknown parameter 'interfase' (did you mean 'interface'?)"),
    ("http.ini", "[http]\nendpoint = tpc:8080\n",
     "http.ini [http] endpoint: bad endpoint 'tpc:8080': unknown endpoint type 'tpc' "
     "(did you mean 'tcp'?)"),
    ("http.ini", "[http]\nendpoint = tcp:99999\n",
     "http.ini [http] endpoint: bad endpoint 'tcp:99999': port out of range (0-65535)"),
    ("http.ini", "[http]\nendpoint = tcp:http\n",
     "http.ini [http] endpoint: bad endpoint 'tcp:http': port 'http' is not a number"),
    # a missing token file is created at start: only where it cannot be is it a problem
    ("dmgateway.ini", "[api]\ntoken_file = /dev/null/none.token\n",
     "dmgateway.ini [api] token_file: file '/dev/null/none.token' not found and '/dev/null' "
     "is not a directory"),
    ("dmgateway.ini", "[api]\ntoken_file = var\n",
     "dmgateway.ini [api] token_file: 'var' is a directory, not a file"),
    ("http.ini", "[https]\nenabled = true\nendpoint = ssl:8443:privateKey=missing.pem\n",
     "http.ini [https] endpoint: bad endpoint 'ssl:8443:privateKey=missing.pem': "
     "privateKey: file 'missing.pem' not found"),
    ("http.ini", "[https]\nenabled = true\nendpoint = tcp:8443\n",
     "http.ini [https] endpoint: bad endpoint 'tcp:8443': must be one of ssl:, tls: "
     "(optionally after haproxy:)"),
    # the PROXY protocol in front of TLS: the inner endpoint is what is checked
    ("http.ini", "[https]\nenabled = true\nendpoint = haproxy:tcp:8443\n",
     "http.ini [https] endpoint: bad endpoint 'haproxy:tcp:8443': must be one of ssl:, tls: "
     "(optionally after haproxy:)"),
    ("http.ini", "[https]\nenabled = true\nendpoint = haproxy:ssl:8443:privateKey=missing.pem\n",
     "http.ini [https] endpoint: bad endpoint 'ssl:8443:privateKey=missing.pem': "
     "privateKey: file 'missing.pem' not found"),
    ("dmgateway.ini", "[gateway]\nstore = mysql://dm:hunter2@db/dm\n",
     "dmgateway.ini [gateway] store: bad store URI 'mysql://dm:***@db/dm': expected "
     "sqlite:PATH, sqlite::memory: or postgresql://..."),
    # the store creates a missing directory: only one it cannot create is a problem
    ("dmgateway.ini", "[gateway]\nstore = sqlite:/dev/null/dm.sqlite\n",
     "dmgateway.ini [gateway] store: file '/dev/null/dm.sqlite' not found and '/dev/null' "
     "is not a directory"),
    # the SQLite URI options are checked, not taken for part of the file name
    ("dmgateway.ini", "[gateway]\nstore = sqlite:var/gw.sqlite?synchronous=fast\n",
     "dmgateway.ini [gateway] store: bad store URI 'sqlite:var/gw.sqlite?synchronous=fast': "
     "unknown SQLite store option 'synchronous=fast'"),
    ("dmgateway.ini", "[gateway]\nstore = sqlite:var/gw.sqlite?cache_size=64MiB\n",
     "dmgateway.ini [gateway] store: bad store URI 'sqlite:var/gw.sqlite?cache_size=64MiB': "
     "bad SQLite store option 'cache_size=64MiB' (cache_size is a whole number >= 1)"),
    ("dmgateway.ini", "[gateway]\nstore = sqlite:var/gw.sqlite?mmap_size=-1\n",
     "dmgateway.ini [gateway] store: bad store URI 'sqlite:var/gw.sqlite?mmap_size=-1': "
     "bad SQLite store option 'mmap_size=-1' (mmap_size is a whole number >= 0)"),
    ("dmgateway.ini", "[gateway]\nstore = sqlite:var/gw.sqlite?inline=yes\n",
     "dmgateway.ini [gateway] store: bad store URI 'sqlite:var/gw.sqlite?inline=yes': "
     "unknown SQLite store option 'inline=yes'"),
    ("dmgateway.ini", "[gateway]\nstore = sqlite:var/gw.sqlite?synchronous=full&inline=1\n",
     "dmgateway.ini [gateway] store: bad store URI 'sqlite:var/gw.sqlite?synchronous=full&inline=1': "
     "inline=1 with synchronous=full would wait for the disk in the reactor thread at every commit"),
    ("dmgateway.ini", "[gateway]\nstore = postgresql://dm:hunter2@db:99999/dm\n",
     "dmgateway.ini [gateway] store: bad store URI 'postgresql://dm:***@db:99999/dm'"),
    ("dmgateway.ini", "[gateway]\npublic_url = ftp://dm.example.com/dm\n",
     "dmgateway.ini [gateway] public_url: bad URL 'ftp://dm.example.com/dm': must be an "
     "absolute http or https URL"),
    ("dmgateway.ini", "[gateway]\npublic_url = /dm\n",
     "dmgateway.ini [gateway] public_url: bad URL '/dm'"),
    ("http.ini", "[htps]\nenabled = true\n",
     "http.ini [htps]: unknown section (did you mean [https]?)"),
    ("dmgateway.ini", "[gateway]\n[sip]\nenabled = true\n",
     "dmgateway.ini [sip]: section belongs in sip.ini"),
    ("htpp.ini", "[http]\n",
     "htpp.ini: unknown config file (expected: dmgateway.ini, http.ini"),
    ("smpp.ini", "[smpp]\nbind = receiver\n",
     "smpp.ini [smpp] bind: bad value 'receiver' (one of: transmitter, transceiver)"),
    ("smpp.ini", "[smpp]\nenabled = true\n", "smpp.ini [smpp] system_id: missing required key"),
    ("smpp.ini", "[smpp]\nenabled = on\nsystem_id =\n",
     "smpp.ini [smpp] system_id: missing required value"),
    ("smpp.ini", "[smpp]\nroutes = +44 +33x\n",
     "smpp.ini [smpp] routes: bad MSISDN prefix '+33x'"),
    ("smpp.ini", "[smpp]\nendpoint = tcp:host=smsc:port=0\n",
     "smpp.ini [smpp] endpoint: bad endpoint 'tcp:host=smsc:port=0': port out of range "
     "(1-65535)"),
    ("smpp.ini", "[smpp]\nendpoint = tcp:smsc.example.net\n",
     "smpp.ini [smpp] endpoint: bad endpoint 'tcp:smsc.example.net': no port given"),
    ("smpp.ini", "[smpp]\nreconnect_initial = 10\nreconnect_max = 5\n",
     "smpp.ini [smpp] reconnect_max: 5 is less than reconnect_initial (10)"),
    ("smpp.ini", "[smpp]\nsource_npi = 2\n", "smpp.ini [smpp] source_npi: 2 is not an SMPP NPI"),
    ("smpp.ini", "[smpp]\nsource_addr = DMGATEWAY-LONG\n",
     "smpp.ini [smpp] source_addr: an alphanumeric source_addr (source_ton 5) has at most 11"),
    ("sip.ini", "[sip]\nenabled = true\nproxy = pcscf:99999\nfrom_uri = sip:dm@example.com\n",
     "sip.ini [sip] proxy: bad address 'pcscf:99999': port out of range (1-65535)"),
    ("sip.ini", "[sip]\nenabled = true\nproxy = pcscf\nfrom_uri = dm@example.com\n",
     "sip.ini [sip] from_uri: bad SIP URI 'dm@example.com'"),
    ("sip.ini", "[sip]\nenabled = true\nproxy = p\nfrom_uri = sip:d@e\nauth_user = dm\n",
     "sip.ini [sip] auth_password_file: missing required key"),
    ("dmgateway.ini", "[api]\nwebhooks = https://a.example/hook\n  hook.example/x\n",
     "dmgateway.ini [api] webhooks: bad URL 'hook.example/x'"),
    ("delegation.ini", "[delegation]\npeers = dms-b=http://b.example/d\n",
     "delegation.ini [delegation] peers: bad URL 'http://b.example/d': must be an absolute "
     "https URL"),
    ("http.ini", "[http]\nendpoint = tcp:8081:interface=0.0.0.0\n",
     "http.ini [http] endpoint: port 8081 is also used by dmgateway.ini [api] endpoint"),
    ("modem.ini", "[modem]\nenabled = true\ndevice = /nonexistent/ttyUSB9\n",
     "modem.ini [modem] device: device '/nonexistent/ttyUSB9' not found"),
    ("modem.ini", "[modem]\nbaudrate = 1234\n", "modem.ini [modem] baudrate: 1234 is not a"),
    ("dmgateway.ini", "[logging]\nfile = nodir/gw.log\nlevel = warning\n",
     "dmgateway.ini [logging] file: directory 'nodir' for 'nodir/gw.log' not found"),
    ("dmgateway.ini", "[logging]\nlevel = loud\n",
     "dmgateway.ini [logging] level: bad value 'loud' (one of: debug, info, warn, error, "
     "critical)"),
    ("dmgateway.ini", "[gateway]\nnode_name = node 1\n",
     "dmgateway.ini [gateway] node_name: bad node name 'node 1'"),
    ("dmgateway.ini", "[gateway]\nstore = sqlite:var/gw.sqlite\ncluster = true\n",
     "dmgateway.ini [gateway] cluster: several processes need a shared postgresql:// store; "
     "a sqlite: store serves one process only (set cluster = false)"),
    ("smpp.ini", "[smpp]\ntakeover_after = 1\n", "smpp.ini [smpp] takeover_after: 1 out of range (1.5-600)"),
    ("dmgateway.ini", "[auth]\nnonce_size = 4\n",
     "dmgateway.ini [auth] nonce_size: 4 out of range (8-64)"),
    ("http.ini", "[http]\npath = dm\n", "http.ini [http] path: bad path 'dm'"),
    ("http.ini", "[http]\nmax_body = 1e6\n", "http.ini [http] max_body: bad integer '1e6'"),
    ("sip.ini", "[sip]\nt1 = fast\n", "sip.ini [sip] t1: bad number 'fast'"),
    ("snmp.ini", "[snmp]\naddress = 127.0.0.1\n",
     "snmp.ini [snmp] address: bad address '127.0.0.1': no port (expected host:port)"),
    ("http.ini", "[http]\nenabled = true\nenabled = false\n",
     "http.ini [http] enabled: line 3: duplicate key (first at line 2)"),
    ("http.ini", "[http]\n[http]\n", "http.ini [http]: line 2: duplicate section"),
    ("http.ini", "[http]\nendpoint\n", "http.ini [http]: line 2: expected 'key = value'"),
    ("http.ini", "path = /dm\n", "http.ini: line 1: key 'path' outside any [section]"),
    ("http.ini", "[http\n", "http.ini: line 1: bad section header '[http'"),
    ("smpp.ini", "[smpp]\nsystem_id = a\n  b\n", "smpp.ini [smpp] system_id: must be on one line"),
    ("http.ini", "[http]\nmax-body = 1\n",
     "http.ini [http] max-body: unknown key (did you mean 'max_body'?)"),
    ("http.ini", "[http]\nmax body = 1\n", "http.ini [http]: line 2: bad key name 'max body'"),
    ("smpp.ini", "[smpp:two words]\n", "smpp.ini [smpp:two words]: bad link name 'two words'"),
    ("smpp.ini", "[smpp]\n[smpp:default]\n",
     "smpp.ini [smpp:default]: link name 'default' is used twice"),
    ("functions.ini", "[functions]\nresult_codes = fumo:403=maybe\n",
     "functions.ini [functions] result_codes: bad result-code rule 'fumo:403=maybe'"),
    ("functions.ini", "[functions]\ntimeout = 5\n", "functions.ini [functions] timeout: 5 out of range"),
    ("functions.ini", "[functions]\nread_timeout = 0\n", "functions.ini [functions] read_timeout: 0 out of range"),
    ("functions.ini", "[functions]\nmax_connections_per_peer = 0\n",
     "functions.ini [functions] max_connections_per_peer: 0 out of range"),
    ("functions.ini", "[functions]\ndownload_enabled = true\ndownload_url = ftp://x/fw\n",
     "functions.ini [functions] download_url:"),
]


@pytest.mark.parametrize("name,text,expected", CASES, ids=[c[2][:60] for c in CASES])
def test_each_problem_is_one_line(conf, name, text, expected):
    if name == "dmgateway.ini":
        text = "[gateway]\n" + text if not text.startswith("[gateway]") else text
    write(conf, name, text)
    found = problems(conf)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found[0]


def test_secrets_never_in_messages(conf):
    write(conf, "dmgateway.ini", "[gateway]\nstore = postgresql://dm:hunter2@db:99999/dm\n")
    write(conf, "smpp.ini", "[smpp]\npassword = hunter2hunter2\n")
    write(conf, "modem.ini", "[modem]\npin = hunter2\n")
    found = problems(conf)
    assert len(found) == 3 and not [line for line in found if "hunter2" in line], found


def test_secret_files_must_exist_and_not_be_empty(conf, run_dir):
    (run_dir / "var" / "empty").write_text("")
    (run_dir / "var" / "psk").write_text("00112233445566778899aabbccddeeff\n")
    make_cert(run_dir, "d")
    write(conf, "dmgateway.ini", "[gateway]\n[api]\ntoken_file = var/empty\n"
          "webhook_secret_file = var/psk\n")
    write(conf, "delegation.ini", "[delegation]\nenabled = true\n"
          "endpoint = ssl:8444:privateKey=d.key:certKey=d.crt\npsk_identity = dms-a\n"
          "psk_file = var/psk\npeer_ca = d.crt\n")
    write(conf, "sip.ini", "[sip]\nenabled = true\nproxy = 192.0.2.1\nfrom_uri = sip:dm@e\n"
          "auth_user = dm\nauth_password_file = var/empty\n")
    assert problems(conf) == [
        "dmgateway.ini [api] token_file: file 'var/empty' is empty",
        "sip.ini [sip] auth_password_file: file 'var/empty' is empty",
    ]


def test_not_utf8(conf):
    (conf / "http.ini").write_bytes(b"[http]\npath = /d\xe9\n")
    assert problems(conf) == ["http.ini: not UTF-8: byte 0xe9 at offset 16 (line 2)"]


def test_missing_directory_and_files(run_dir, tmp_path):
    missing = tmp_path / "nope"
    assert problems(missing) == ["%s: config directory %r not found" % (missing, str(missing))]
    afile = tmp_path / "file"
    afile.write_text("")
    assert problems(afile) == ["%s: config %r is not a directory" % (afile, str(afile))]
    empty = tmp_path / "empty"
    empty.mkdir()
    [line] = problems(empty)
    assert line.startswith("dmgateway.ini: file not found in %s" % (empty,))
    with pytest.raises(ConfigError) as caught:
        load_config(str(missing))
    assert [p.file for p in caught.value.problems] == [str(missing)]


def test_ini_directory_entry(conf):
    (conf / "sip.ini").mkdir()
    assert problems(conf) == ["sip.ini: not a regular file"]


def _check_as_nobody(directories: list[str]) -> list[list[str]]:
    """check_config() of each directory in a forked child running as 'nobody'.

    Root reads everything, so permission problems can only be seen by an
    unprivileged process; the child reuses this interpreter's imports.
    """
    check_config(str(SHIPPED))  # import everything the check may need first
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.chdir(os.path.dirname(directories[0]))
            data = json.dumps([check_config(d) for d in directories]).encode()
            os.write(write_end, data)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(data)


def test_unreadable_directory_and_file():
    """Permission denied is reported, not raised."""
    base = tempfile.mkdtemp()
    try:
        os.chmod(base, 0o755)
        os.mkdir(os.path.join(base, "var"))
        with open(os.path.join(base, "var", "api.token"), "w") as f:
            f.write("token\n")
        closed = os.path.join(base, "closed")
        os.mkdir(closed, 0o000)
        locked = os.path.join(base, "locked")
        os.mkdir(locked, 0o755)
        with open(os.path.join(locked, "dmgateway.ini"), "w") as f:
            f.write("[gateway]\n")
        os.chmod(os.path.join(locked, "dmgateway.ini"), 0o000)
        if os.geteuid() == 0:
            closed_lines, locked_lines = _check_as_nobody([closed, locked])
        else:
            here = os.getcwd()
            os.chdir(base)
            try:
                closed_lines, locked_lines = check_config(closed), check_config(locked)
            finally:
                os.chdir(here)
        assert closed_lines == ["%s: config directory %r is not readable (permission denied)"
                                % (closed, closed)]
        assert len(locked_lines) == 1
        assert locked_lines[0].startswith("dmgateway.ini: cannot read ")
        assert locked_lines[0].endswith("Permission denied")
    finally:
        for root, dirs, _ in os.walk(base):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        shutil.rmtree(base)


def test_all_problems_reported_in_one_pass(conf):
    write(conf, "dmgateway.ini", "[gateway]\nnotification_version = 9\nstore = nosql\n"
          "[api]\ntoken_file = /dev/null/missing.token\nendpoint = tcp:99999\n")
    write(conf, "http.ini", "[http]\nenabled = perhaps\npath = x\n[htps]\n")
    write(conf, "sip.ini", "[sip]\nenabled = true\n")
    found = problems(conf)
    expected = [
        "dmgateway.ini [gateway] store:",
        "dmgateway.ini [gateway] notification_version:",
        "dmgateway.ini [api] endpoint:",
        "dmgateway.ini [api] token_file:",
        "http.ini [htps]:",
        "http.ini [http] enabled:",
        "http.ini [http] path:",
        "sip.ini [sip] proxy:",
        "sip.ini [sip] from_uri:",
    ]
    assert sorted(line.split(": ")[0] + ":" for line in found) == sorted(expected), found
    with pytest.raises(ConfigError) as caught:
        load_config(str(conf))
    assert [str(p) for p in caught.value.problems] == found
    assert str(caught.value).splitlines() == found


def test_problem_format():
    assert str(Problem("http.ini", "http", "endpoint", "bad")) == "http.ini [http] endpoint: bad"
    assert str(Problem("http.ini", "htps", None, "unknown")) == "http.ini [htps]: unknown"
    assert str(Problem("x.ini", None, None, "a\nb")) == "x.ini: a b"


# -- bearer rules --------------------------------------------------------------


def test_minimal_dir_runs_with_defaults(conf):
    cfg = load_config(str(conf), hostname="node1")
    assert cfg.files == ("dmgateway.ini",)
    assert cfg.api.enabled and cfg.metrics.enabled
    assert not (cfg.http.enabled or cfg.https.enabled or cfg.smpp_links or cfg.modem.enabled
                or cfg.sip.enabled or cfg.delegation.enabled or cfg.snmp.enabled)
    write(conf, "http.ini", "# only comments\n")
    assert load_config(str(conf)).http.enabled


def test_disabled_bearers_need_not_be_complete(conf):
    write(conf, "http.ini", "[http]\nenabled = false\n[https]\nenabled = no\n"
          "endpoint = ssl:8443:privateKey=/nonexistent/key.pem\n")
    write(conf, "sip.ini", "[sip]\nenabled = false\nauth_user = dm\n")
    write(conf, "smpp.ini", "[smpp]\nenabled = 0\nendpoint =\n")
    write(conf, "modem.ini", "[modem]\nenabled = off\ndevice = /nonexistent/tty\n")
    write(conf, "delegation.ini", "[delegation]\npsk_identity = me\n")
    write(conf, "snmp.ini", "[snmp]\n")
    assert problems(conf) == []
    cfg = load_config(str(conf))
    assert not (cfg.http.enabled or cfg.https.enabled or cfg.sip.enabled or cfg.modem.enabled
                or cfg.delegation.enabled or cfg.snmp.enabled or cfg.enabled_smpp_links)


def test_disabled_bearer_still_checks_names_and_syntax(conf):
    write(conf, "sip.ini", "[sip]\nenabled = false\nproxi = p:5060\ntransport = sctp\n")
    assert problems(conf) == [
        "sip.ini [sip] transport: bad value 'sctp' (one of: udp, tcp, tls)",
        "sip.ini [sip] proxi: unknown key (did you mean 'proxy'?)",
    ]


def test_smpp_links(conf):
    write(conf, "smpp.ini", """\
[smpp]
enabled = true
system_id = first
password = pw
routes = +4477, 4478
    +4479

[smpp:second]
enabled = yes
endpoint = tcp:host=smsc2.example.net:port=2776
system_id = second
bind = transceiver
source_ton = 1
source_npi = 1
source_addr = +447700900001

[smpp:spare]
""")
    cfg = load_config(str(conf))
    assert [link.name for link in cfg.smpp_links] == ["default", "second", "spare"]
    assert [link.name for link in cfg.enabled_smpp_links] == ["default", "second"]
    first, second, spare = cfg.smpp_links
    assert first.routes == ("4477", "4478", "4479")
    assert first.serves("+447712345678") and not first.serves("+33612345678")
    assert second.routes == () and second.serves("+33612345678")
    assert (second.endpoint, second.bind, second.source_ton) == (
        "tcp:host=smsc2.example.net:port=2776", "transceiver", 1)
    assert spare == SmppLinkConfig(name="spare")
    assert "pw" not in repr(first)


def test_listener_clash_with_wildcard(conf):
    write(conf, "http.ini", "[http]\nendpoint = tcp:8081\n")
    [line] = problems(conf)
    assert line == "http.ini [http] endpoint: port 8081 is also used by dmgateway.ini [api] endpoint"
    write(conf, "http.ini", "[http]\nendpoint = tcp:8081:interface=127.0.0.2\n")
    assert problems(conf) == []
    write(conf, "http.ini", "[http]\nendpoint = haproxy:tcp:8081\n")
    [line] = problems(conf)
    assert line == "http.ini [http] endpoint: port 8081 is also used by dmgateway.ini [api] endpoint"


def test_ssl_endpoint_built_with_real_key_material(conf, run_dir):
    make_cert(run_dir, "a")
    make_cert(run_dir, "b")
    good = "ssl:8443:interface=127.0.0.1:privateKey=a.key:certKey=a.crt"
    write(conf, "http.ini", "[https]\nenabled = true\nendpoint = %s\nclient_ca = a.crt\n" % good)
    assert problems(conf) == []
    assert load_config(str(conf)).https.endpoint == good
    write(conf, "http.ini", "[https]\nenabled = true\nendpoint = haproxy:%s\n" % good)
    assert problems(conf) == []
    write(conf, "http.ini", "[https]\nenabled = true\n"
          "endpoint = ssl:8443:privateKey=b.key:certKey=a.crt\nclient_ca = ca.pem\n")
    found = problems(conf)
    assert len(found) == 2
    assert found[0].startswith("http.ini [https] endpoint: bad endpoint "
                               "'ssl:8443:privateKey=b.key:certKey=a.crt': ")
    assert found[1].startswith("http.ini [https] client_ca: file 'ca.pem' not found")


def test_ini_syntax_accepted(conf):
    (conf / "http.ini").write_bytes(
        b"\xef\xbb\xbf; comment\n[http]\nENDPOINT: tcp:8090:interface=127.0.0.1  # inline\n"
        b"path=/dm/v1 ; another\n")
    write(conf, "dmgateway.ini", "[gateway]\n[api]\nwebhooks = https://a.example/1\n"
          "    https://b.example/2 https://a.example/1\nwebhook_timeout = 2.5\n")
    cfg = load_config(str(conf))
    assert (cfg.http.endpoint, cfg.http.path) == ("tcp:8090:interface=127.0.0.1", "/dm/v1")
    assert cfg.api.webhooks == ("https://a.example/1", "https://b.example/2")
    assert cfg.api.webhook_timeout == 2.5


def test_typed_values(conf):
    write(conf, "dmgateway.ini", "[gateway]\nstore = postgresql://dm@db.example.net:5432/dm\n"
          "node_name = gw-2\n[logging]\nlevel = WARNING\nformat = json\n")
    write(conf, "sip.ini", "[sip]\nenabled = true\ntransport = tls\nproxy = [2001:db8::1]\n"
          "from_uri = sips:dm@example.com\n")
    write(conf, "delegation.ini", "[delegation]\npeers = dms-b=https://b.example:8444/d\n"
          "  dms-c=https://c.example/d\n")
    cfg = load_config(str(conf))
    assert cfg.gateway.node_name == "gw-2"
    assert (cfg.logging.level, cfg.logging.format) == ("warn", "json")
    assert cfg.sip.proxy_address == ("2001:db8::1", 5061)
    assert [(p.server_id, p.url) for p in cfg.delegation.peers] == [
        ("dms-b", "https://b.example:8444/d"), ("dms-c", "https://c.example/d")]
    assert "postgresql" not in repr(cfg.gateway)


# -- endpoint strings ------------------------------------------------------------


def test_split_endpoint_follows_twisted_rules():
    assert split_endpoint("ssl:8443:privateKey=k.pem") == ("ssl", ["8443"], {"privateKey": "k.pem"})
    assert split_endpoint(r"unix:/tmp/a\:b:mode=600") == ("unix", ["/tmp/a:b"], {"mode": "600"})
    assert split_endpoint("tcp:a=b=c") == ("tcp", [], {"a": "b=c"})
    assert endpoint_parameters("tcp:host=h:2775", server=False) == {"host": "h", "port": "2775"}
    assert endpoint_parameters("ssl:8443:privateKey=k.pem") == {"port": "8443",
                                                                 "privateKey": "k.pem"}


@pytest.mark.parametrize("description,server", [
    ("tcp:0", True), ("tcp6:8080:interface=\\:\\:1", True), ("unix:/run/dm.sock", True),
    ("systemd:domain=INET:index=0", True), ("tcp:smsc.example.net:2775", False),
    ("tcp:host=127.0.0.1:port=2775:timeout=5", False), ("unix:/run/smsc.sock", False),
])
def test_good_endpoints(description, server):
    assert checks.check_endpoint(description, server=server, reactor=MemoryReactor(),
                                 environment=True) == []


@pytest.mark.parametrize("description,server,reason", [
    ("tcp:8080:interface=999.1.1.1", True, "bad interface '999.1.1.1'"),
    ("tcp:8080:8081", True, "too many ':'-separated values"),
    ("tcp:8080:backlog=lots", True, "backlog must be a whole number, got 'lots'"),
    ("tcp:port=1:port=2", True, "parameter 'port' given twice"),
    ("tcp:8080\\", True, "ends with a lone backslash"),
    (":8080", True, "no endpoint type (like tcp: or ssl:)"),
    ("tcp:host=:port=1", False, "no host given"),
    ("ssl:h:1:caCertsDir=/nonexistent", False, "caCertsDir: directory '/nonexistent' not found"),
])
def test_bad_endpoints(description, server, reason):
    [message] = checks.check_endpoint(description, server=server, reactor=MemoryReactor(),
                                      environment=True)
    assert message == "bad endpoint %r: %s" % (description, reason)


def test_parse_host_port():
    assert parse_host_port("[::1]:5060") == ("::1", 5060)
    assert parse_host_port("pcscf.example.net", 5060) == ("pcscf.example.net", 5060)
    with pytest.raises(ValueError, match="bad host '1.2.3.999'"):
        parse_host_port("1.2.3.999:5")


# -- never crash -----------------------------------------------------------------

_ini_text = st.lists(st.one_of(
    st.sampled_from(["[gateway]", "[http]", "[https]", "[api]", "[smpp:x]", "[", "[]",
                     "enabled = true", "endpoint = tcp:99999", "endpoint = ssl:1:\\",
                     "  continued", "store = sqlite:", "key", "= v", "path: /x"]),
    st.text(max_size=40)), max_size=12).map("\n".join)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dm=_ini_text, http=_ini_text, junk=st.binary(max_size=60))
def test_random_files_never_raise(conf, dm, http, junk):
    write(conf, "dmgateway.ini", dm)
    write(conf, "http.ini", http)
    (conf / "smpp.ini").write_bytes(junk)
    problems(conf)  # asserts every line is well-formed and none is internal


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="tcpslunix:=\\/.0123456789abhostr", max_size=30), st.booleans())
def test_random_endpoints_never_raise(description, server):
    for message in checks.check_endpoint(description, server=server, reactor=MemoryReactor(),
                                         environment=True):
        assert isinstance(message, str)


# -- systemd unit ----------------------------------------------------------------


def test_systemd_unit(tmp_path):
    unit = SHIPPED / "dmgateway.service"
    text = unit.read_text()
    for line in ("User=dmgateway", "WorkingDirectory=/var/lib/dmgateway", "Type=notify",
                 "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec=60",
                 "ExecStart=/opt/dmgateway/bin/twistd --nodaemon --pidfile= "
                 "--logger=dmgateway.logs.json_observer dmgateway --config-dir /etc/dmgateway", "Restart=on-failure", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ReadWritePaths=/var/lib/dmgateway", "PrivateTmp=yes"):
        assert re.search("(?m)^%s$" % re.escape(line), text), line
    assert re.search(r"(?m)^ExecStartPre=.* --check-config --config-dir /etc/dmgateway$", text)
    assert re.search(r"(?m)^LimitNOFILE=\d{5,}$", text)
    assert re.search(r"(?m)^TimeoutStopSec=\d+$", text)
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (Debian package: systemd)")
    assert _unit_syntax_errors(tool, unit) == []
    # The same filter does see a syntax error, so the check above is not vacuous.
    broken = tmp_path / "dmgateway.service"
    broken.write_text(text.replace("[Install]", "Bogus=1\n[Install]"))
    assert len(_unit_syntax_errors(tool, broken)) == 1


def _unit_syntax_errors(tool: str, unit: Path) -> list[str]:
    """systemd-analyze verify's complaints about the unit file's own syntax.

    The binary and user exist only on a real install, so complaints about
    them are left out; syntax messages name the unit file and a line.
    """
    result = subprocess.run([tool, "verify", "--man=no", str(unit)], capture_output=True,
                            text=True, timeout=120)
    return [line for line in (result.stdout + result.stderr).splitlines()
            if re.match(r"^%s:\d+:" % re.escape(str(unit)), line)
            or "Unknown key" in line or "Unknown section" in line
            or "Failed to parse" in line or "Invalid" in line]


def test_sqlite_uri_options_are_not_part_of_the_path(tmp_path):
    from dmgateway.config.checks import check_store

    assert check_store("sqlite:%s/gw.sqlite?synchronous=full" % (tmp_path,), environment=True) == []
    assert check_store("sqlite::memory:?inline=1") == []
    assert check_store("sqlite:%s/gw.sqlite?inline=0" % (tmp_path,), environment=True) == []
    assert check_store("sqlite:%s/gw.sqlite?inline=1" % (tmp_path,), environment=True) == []
    assert check_store("sqlite:%s/gw.sqlite?cache_size=131072&mmap_size=0" % (tmp_path,), environment=True) == []
    assert check_store("sqlite:%s/gw.sqlite?cache_size=0" % (tmp_path,)) == [
        "bad store URI 'sqlite:%s/gw.sqlite?cache_size=0': bad SQLite store option 'cache_size=0'"
        " (cache_size is a whole number >= 1)" % (tmp_path,)]
    assert check_store("sqlite:%s?synchronous=full" % (tmp_path,), environment=True) == [
        "%r is a directory, not a database file" % (str(tmp_path),)]
