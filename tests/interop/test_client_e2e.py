"""The client library (device simulator) against the REAL daemon, in XML and WBXML.

Every job is created through the REST API, run in a DM session between the
``twistd dmgateway`` process and a :class:`ClientSession` over real HTTP,
and its results are read back through the REST API.
"""

import base64
import os

import pytest

from dmgateway.client import ClientSession, apply_bootstrap, ui
from dmgateway.client.account import Account, Credentials, GenericAlert
from dmgateway.codec import syncml as sm
from dmgateway.codec.prov import Characteristic, Parm, ProvDoc, encode_wbxml
from dmgateway.tree.standard import standard_tree
from tests.interop.daemon import Daemon, run_client

SERVER_ID = "dmgw-e2e"
ACCESS = "Add={0}&Delete={0}&Exec={0}&Get={0}&Replace={0}".format(SERVER_ID)
ENCODINGS = ["xml", "wbxml"]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("client-e2e"))
    d.start()
    yield d
    d.stop()


_serial = iter(range(10_000))


def new_device(daemon, encoding, **session_options):
    """A registered device and a ClientSession for it (md5 both ways)."""
    n = next(_serial)
    device_id = "IMEI:3510%05d%d" % (n, ENCODINGS.index(encoding))
    secret, srv_secret = "dev-secret-%d" % n, "srv-secret-%d" % n
    status, body = daemon.put_device(device_id, {
        "server_id": SERVER_ID,
        "client_auth": {"type": "md5", "name": "dev%d" % n, "secret": secret},
        "server_auth": {"type": "md5", "name": SERVER_ID, "secret": srv_secret},
    })
    assert status in (200, 201), body
    account = Account(device_id=device_id, server_id=SERVER_ID, server_url=daemon.url,
                      client=Credentials("md5", "dev%d" % n, secret),
                      server=Credentials("md5", SERVER_ID, srv_secret))
    session = ClientSession(account, random_bytes=os.urandom, encoding=encoding,
                            **session_options)
    session.tree.set("./Vendor", None, "node")
    session.tree.set_acl("./Vendor", ACCESS)
    return device_id, session


def run_job(daemon, device_id, session, job, **start):
    job = dict(job, notify="none")
    job_id = daemon.create_job(device_id, job)
    run_client(session, **start)
    assert session.outcome == "completed", session.log
    return daemon.job(job_id)


def statuses(job):
    return [r["status"] for r in job["results"]]


# -- every command -------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_command(daemon, encoding):
    device_id, session = new_device(daemon, encoding)
    tree = session.tree
    tree.set("./Vendor/Value", "old")
    tree.set("./Vendor/Gone", "bye")
    calls = []
    tree.register_exec("./Vendor/Reboot", lambda uri, data, corr: calls.append(data))
    job = run_job(daemon, device_id, session, {"commands": [
        {"op": "Get", "target": "./DevInfo/Man"},
        {"op": "Get", "target": "./DevInfo?list=Struct"},
        {"op": "Get", "target": "./DMAcc/example?prop=ACL"},
        {"op": "Add", "target": "./Vendor/App", "format": "node"},
        {"op": "Add", "target": "./Vendor/App/Leaf", "data": "new leaf"},
        {"op": "Replace", "target": "./Vendor/Value", "data": "new"},
        {"op": "Delete", "target": "./Vendor/Gone"},
        {"op": "Copy", "target": "./Vendor/Copied", "source": "./Vendor/Value"},
        {"op": "Exec", "target": "./Vendor/Reboot", "data": "now"},
        {"op": "Get", "target": "./Vendor/App/Leaf"},
    ]})
    assert job["state"] == "done", job
    assert statuses(job) == [200] * 10
    results = job["results"]
    assert results[0]["data"] == "dmgateway"
    struct = results[1]["items"]
    assert [(i["source"], i["format"], i["data"]) for i in struct] == [
        ("./DevInfo", "node", None), ("./DevInfo/DevId", "chr", None),
        ("./DevInfo/Man", "chr", None), ("./DevInfo/Mod", "chr", None),
        ("./DevInfo/DmV", "chr", None), ("./DevInfo/Lang", "chr", None)]
    assert results[2]["data"] == "Get=%s&Replace=%s&Delete=%s" % ((SERVER_ID,) * 3)
    assert results[9]["data"] == "new leaf"
    assert tree.read("./Vendor/Value").value == "new"
    assert tree.read("./Vendor/Copied").value == "new"
    assert not tree.exists("./Vendor/Gone")
    assert tree.read("./Vendor/App").format == "node"
    assert calls == ["now"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_acl_denial_and_missing_node(daemon, encoding):
    device_id, session = new_device(daemon, encoding)
    session.tree.set("./Vendor/Locked", "v")
    session.tree.set_acl("./Vendor/Locked", "Get=*&Replace=org.another.server")
    job = run_job(daemon, device_id, session, {"commands": [
        {"op": "Replace", "target": "./Vendor/Locked", "data": "x"},
        {"op": "Get", "target": "./Vendor/Nothing"},
        {"op": "Get", "target": "./Vendor/Locked"},
    ]})
    assert job["state"] == "failed", job
    assert statuses(job) == [425, 404, 200]
    assert session.tree.read("./Vendor/Locked").value == "v"


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_atomic_success_and_rollback(daemon, encoding):
    device_id, session = new_device(daemon, encoding)
    session.tree.set("./Vendor/A", "a")
    ok_id = daemon.create_job(device_id, {"atomic": True, "notify": "none", "commands": [
        {"op": "Replace", "target": "./Vendor/A", "data": "a2"},
        {"op": "Add", "target": "./Vendor/B", "data": "b"},
    ]})
    bad_id = daemon.create_job(device_id, {"atomic": True, "notify": "none", "commands": [
        {"op": "Replace", "target": "./Vendor/A", "data": "a3"},
        {"op": "Delete", "target": "./Vendor/Missing"},
    ]})
    run_client(session)
    assert session.outcome == "completed", session.log
    ok, bad = daemon.job(ok_id), daemon.job(bad_id)
    assert ok["state"] == "done" and statuses(ok) == [200, 200], ok
    assert bad["state"] == "failed", bad
    # the rolled-back Replace is 216, the failing Delete keeps its 404
    assert statuses(bad) == [216, 404], bad
    # the Atomic's own 507 is reported in the job error, not as a result
    assert bad["error"] == {"code": "command_failed", "message": (
        "Atomic: 507 Atomic failed; Replace ./Vendor/A: 216 Atomic roll back OK; "
        "Delete ./Vendor/Missing: 404 Not found")}
    assert session.tree.read("./Vendor/A").value == "a2"
    sent = [s for d, m in session.transcript if d == "out" for s in m.commands(sm.Status)
            if s.cmd == "Atomic"]
    assert [s.data for s in sent] == [200, 507]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_ui_alert_with_answers(daemon, encoding):
    policy = ui.scripted_policy([(200, []), (200, []), (200, ["typed text"]), (200, ["2"]),
                                 (200, ["1", "3"])])
    device_id, session = new_device(daemon, encoding, ui=policy)
    job = run_job(daemon, device_id, session, {"commands": [
        {"op": "Alert", "alert": 1100, "data": "Hello", "options": "MINDT=1"},
        {"op": "Alert", "alert": 1101, "data": "Sure?"},
        {"op": "Alert", "alert": 1102, "data": "Type", "options": "MAXLEN=20"},
        {"op": "Alert", "alert": 1103, "data": "Pick one", "choices": ["a", "b", "c"]},
        {"op": "Alert", "alert": 1104, "data": "Pick some", "choices": ["x", "y", "z"]},
    ]})
    assert job["state"] == "done", job
    assert statuses(job) == [200] * 5
    assert [c[0] for c in policy.calls] == [1100, 1101, 1102, 1103, 1104]
    assert policy.calls[3][3] == ["a", "b", "c"] and policy.calls[2][1] == {"MAXLEN": "20"}
    # the gateway reports a text answer and a single choice as text, multiple choices as a list
    assert [r["data"] for r in job["results"]] == [None, None, "typed text", "2", ["1", "3"]]


# -- sizes ---------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_large_objects_both_ways(daemon, encoding):
    # MaxMsgSize 4 KiB both ways: announced to the gateway, and our own messages
    # capped at 4 KiB (the gateway announces no MaxMsgSize of its own)
    device_id, session = new_device(daemon, encoding, max_msg_size=4096, max_obj_size=65536,
                                    max_send_size=4096)
    big_up = "".join("%05d," % i for i in range(3500))[:20 * 1024]
    big_down = "".join("d%04d;" % i for i in range(3500))[:20 * 1024]
    session.tree.set("./Vendor/Big", big_up)
    session.tree.set("./Vendor/Target", "")
    job = run_job(daemon, device_id, session, {"commands": [
        {"op": "Replace", "target": "./Vendor/Target", "data": big_down},
        {"op": "Get", "target": "./Vendor/Big"},
    ]})
    assert job["state"] == "done", job
    assert statuses(job) == [200, 200]
    assert session.tree.read("./Vendor/Target").value == big_down
    assert job["results"][1]["data"] == big_up
    incoming = [len(m) for m in _wire_sizes(session, "in")]
    outgoing = [len(m) for m in _wire_sizes(session, "out")]
    assert max(incoming) <= 4096 and len(incoming) >= 6, incoming  # 20 KiB came in chunks
    assert max(outgoing) <= 4096 and len(outgoing) >= 6, outgoing  # and went out in chunks
    assert session.counters["oversized_messages"] == 0
    assert session.counters["chunks_sent"] >= 5


def _wire_sizes(session, direction):
    from dmgateway.codec import encode_message

    return [encode_message(m, session.encoding) for d, m in session.transcript if d == direction]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_small_max_msg_size_forces_multi_message_packages(daemon, encoding):
    device_id, session = new_device(daemon, encoding, max_msg_size=1024)
    commands = [{"op": "Replace", "target": "./Vendor/V%d" % i, "data": "value %d" % i}
                for i in range(12)]
    for i in range(12):
        session.tree.set("./Vendor/V%d" % i, "")
    job = run_job(daemon, device_id, session, {"commands": commands})
    assert job["state"] == "done", job
    assert statuses(job) == [200] * 12
    incoming = [m for d, m in session.transcript if d == "in"]
    assert len(incoming) > 2
    assert any(not m.final for m in incoming)  # the package spans messages
    assert session.counters["oversized_messages"] == 0


# -- alerts and bootstrap --------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_generic_alert(daemon, encoding):
    device_id, session = new_device(daemon, encoding)
    before = daemon.events()
    after = before[-1]["seq"] if before else 0
    alert = GenericAlert(type="Reversed-Domain-Name: com.example.sim.event", format="chr",
                         data="sim %s" % encoding)
    run_client(session, generic_alerts=[alert])
    assert session.outcome == "completed", session.log
    events = [e for e in daemon.events(after=after)
              if e["type"] == "generic_alert" and e["device_id"] == device_id]
    assert [(e["meta_type"], e["data"]) for e in events] == [(alert.type, alert.data)]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_cp_bootstrapped_device_runs_a_job(daemon, encoding):
    n = next(_serial)
    device_id = "IMEI:3520%05d%d" % (n, ENCODINGS.index(encoding))
    names = ("boot%d" % n, "boot-secret-%d" % n, "boot-srv-secret-%d" % n)
    status, body = daemon.put_device(device_id, {
        "server_id": SERVER_ID,
        "client_auth": {"type": "md5", "name": names[0], "secret": names[1]},
        "server_auth": {"type": "md5", "name": SERVER_ID, "secret": names[2]},
    })
    assert status in (200, 201), body
    doc = ProvDoc(characteristics=[Characteristic("APPLICATION", [
        Parm("APPID", "w7"), Parm("PROVIDER-ID", SERVER_ID), Parm("NAME", "e2e")], [
        Characteristic("APPADDR", [Parm("ADDR", daemon.url)]),
        Characteristic("APPAUTH", [Parm("AAUTHLEVEL", "APPSRV"), Parm("AAUTHTYPE", "DIGEST"),
                                   Parm("AAUTHNAME", names[0]), Parm("AAUTHSECRET", names[1])]),
        Characteristic("APPAUTH", [Parm("AAUTHLEVEL", "CLIENT"), Parm("AAUTHTYPE", "DIGEST"),
                                   Parm("AAUTHNAME", SERVER_ID), Parm("AAUTHSECRET", names[2]),
                                   Parm("AAUTHDATA", base64.b64encode(b"").decode())]),
    ])])
    tree = standard_tree({"DevId": device_id})
    account = apply_bootstrap(tree, encode_wbxml(doc), "application/vnd.wap.connectivity-wbxml")
    assert account.device_id == device_id and account.server_url == daemon.url
    session = ClientSession(account, tree=tree, random_bytes=os.urandom, encoding=encoding)
    job = run_job(daemon, device_id, session, {"commands": [
        {"op": "Replace", "target": "./DMAcc/%s/Name" % account.name, "data": "bootstrapped"},
        {"op": "Get", "target": "./DMAcc/%s/ServerID" % account.name},
    ]})
    assert job["state"] == "done", job
    assert job["results"][1]["data"] == SERVER_ID
    assert tree.read("./DMAcc/%s/Name" % account.name).value == "bootstrapped"
    assert session.server_authenticated and session.client_authenticated
