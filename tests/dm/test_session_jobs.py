"""ServerSession: job commands on the wire, results, Atomic, UI alerts, client alerts."""

import pytest

from dmgateway.codec import syncml as sm
from dmgateway.codec import xml
from dmgateway.dm.effects import EventRaised, JobFinished, JobSpec, JobStarted

from .client import Client, make_session, server_commands, status_for


def of_type(effects, cls):
    return [effect for effect in effects if isinstance(effect, cls)]


def run(jobs, tree=None, codes=None, items=None, **client_options):
    """Package 1, then answer package 2; return (package 2 reply, outcome of package 3)."""
    session = make_session(jobs=jobs)
    client = Client(session, **client_options)
    first = client.send(client.package1())
    out = client.send(client.answer(first.reply, tree=tree, codes=codes, items=items))
    return first.reply, out


def test_every_op_on_the_wire():
    job = JobSpec("ops", [
        {"op": "Get", "target": "./DevDetail/SwV"},
        {"op": "Add", "target": "./Vendor/Node", "format": "node"},
        {"op": "Add", "target": "./Vendor/Leaf", "data": "v1"},
        {"op": "Replace", "target": "./Vendor/B64", "data": "AAEC", "format": "b64",
         "type": "application/octet-stream"},
        {"op": "Delete", "target": "./Vendor/Old"},
        {"op": "Exec", "target": "./FUMO/fw/Update", "correlator": "c-42"},
        {"op": "Exec", "target": "./Vendor/Run", "data": "arg"},
        {"op": "Copy", "target": "./Vendor/To", "source": "./Vendor/From"},
    ])
    reply, out = run([job], tree={"./DevDetail/SwV": "4.2.1"}, codes={"./FUMO/fw/Update": 202})
    cmds = server_commands(reply)
    assert [cmd.NAME for cmd in cmds] == ["Get", "Add", "Add", "Replace", "Delete", "Exec", "Exec", "Copy"]
    get, node, leaf, b64, delete, fumo, run_, copy = cmds
    assert get.items == [sm.Item(target=sm.LocRef("./DevDetail/SwV"))]
    assert node.items == [sm.Item(target=sm.LocRef("./Vendor/Node"), meta=sm.Meta(format="node"))]
    assert leaf.items == [sm.Item(target=sm.LocRef("./Vendor/Leaf"), meta=sm.Meta(format="chr"),
                                  data="v1")]
    assert b64.items[0].meta == sm.Meta(format="b64", type="application/octet-stream")
    assert b64.items[0].data == "AAEC"
    assert delete.items == [sm.Item(target=sm.LocRef("./Vendor/Old"))]
    assert fumo.correlator == "c-42" and fumo.items[0].data is None
    assert run_.correlator is None and run_.items[0].data == "arg"
    assert copy.items == [sm.Item(target=sm.LocRef("./Vendor/To"), source=sm.LocRef("./Vendor/From"))]
    [finished] = of_type(out.effects, JobFinished)
    assert finished.state == "done" and finished.error is None
    assert [r["status"] for r in finished.results] == [200, 200, 200, 200, 200, 202, 200, 200]
    assert finished.results[0] == {"op": "Get", "target": "./DevDetail/SwV", "status": 200,
                                   "data": "4.2.1", "format": "chr", "type": "text/plain"}


@pytest.mark.parametrize("code", [214, 215, 304, 404, 500])
def test_non_success_status_fails_the_job(code):
    job = JobSpec("j", [{"op": "Replace", "target": "./A", "data": "1"},
                        {"op": "Delete", "target": "./B"}])
    _, out = run([job], codes={"./B": code})
    [finished] = of_type(out.effects, JobFinished)
    assert finished.state == "failed"
    assert finished.error["code"] == "command_failed"
    assert "Delete ./B: %d" % code in finished.error["message"]
    assert [r["status"] for r in finished.results] == [200, code]


def test_failed_get_needs_no_results():
    _, out = run([JobSpec("j", [{"op": "Get", "target": "./Nope"}])], codes={"./Nope": 404})
    [finished] = of_type(out.effects, JobFinished)
    assert finished.results[0]["status"] == 404 and finished.results[0]["data"] is None


def test_missing_status_and_missing_results_fail_at_package_end():
    session = make_session(jobs=[JobSpec("j", [{"op": "Get", "target": "./A"},
                                               {"op": "Delete", "target": "./B"}])])
    client = Client(session)
    reply = client.send(client.package1()).reply
    get = server_commands(reply)[0]
    out = client.send([client.hdr_answer(reply),
                       sm.Status(cmd_id="2", msg_ref="1", cmd_ref=get.cmd_id, cmd="Get", data=200)])
    [finished] = of_type(out.effects, JobFinished)
    assert finished.state == "failed"
    assert finished.error["message"] == ("Get ./A: no Results from the device; "
                                         "Delete ./B: no status from the device")
    assert out.finished


def test_results_correlated_by_cmdref_and_msgref():
    job = JobSpec("j", [{"op": "Get", "target": "./A"}, {"op": "Get", "target": "./B"}])
    session = make_session(jobs=[job])
    client = Client(session)
    reply = client.send(client.package1()).reply
    body = client.answer(reply, tree={"./A": "alpha", "./B": "beta"})
    body[-1].msg_ref = None  # MsgRef is optional in Results: the newest message is meant
    body[-2], body[-1] = body[-1], body[-2]  # order does not matter
    out = client.send(body)
    [finished] = of_type(out.effects, JobFinished)
    assert [r["data"] for r in finished.results] == ["alpha", "beta"]


def test_results_with_several_items_and_command_meta():
    session = make_session(jobs=[JobSpec("j", [{"op": "Get", "target": "./Tree?list=Struct"}])])
    client = Client(session)
    reply = client.send(client.package1()).reply
    get = server_commands(reply)[0]
    results = sm.Results(cmd_id="3", msg_ref="1", cmd_ref=get.cmd_id, meta=sm.Meta(format="node"),
                         items=[sm.Item(source=sm.LocRef("./Tree"), data=""),
                                sm.Item(source=sm.LocRef("./Tree/Leaf"),
                                        meta=sm.Meta(format="int"), data="7")])
    out = client.send(client.answer(reply)[:2] + [results])
    result = of_type(out.effects, JobFinished)[0].results[0]
    assert (result["data"], result["format"]) == ("", "node")
    assert result["items"] == [
        {"source": "./Tree", "data": "", "format": "node", "type": None},
        {"source": "./Tree/Leaf", "data": "7", "format": "int", "type": None},
    ]


def test_binary_results_are_base64_text():
    session = make_session(jobs=[JobSpec("j", [{"op": "Get", "target": "./Bin"}])])
    client = Client(session)
    reply = client.send(client.package1()).reply
    results = sm.Results(cmd_id="3", msg_ref="1", cmd_ref=server_commands(reply)[0].cmd_id,
                         items=[sm.Item(source=sm.LocRef("./Bin"), meta=sm.Meta(format="bin"),
                                        data=b"\xff\x00\x01")])
    msg = sm.SyncML(client.header(), client.answer(reply)[:2] + [results], final=True)
    out = session.handle(msg, body=b"not used after authentication")
    result = of_type(out.effects, JobFinished)[0].results[0]
    assert (result["data"], result["format"]) == ("/wAB", "b64")


def test_atomic_success():
    job = JobSpec("a", [{"op": "Add", "target": "./A", "data": "1"},
                        {"op": "Replace", "target": "./B", "data": "2"},
                        {"op": "Delete", "target": "./C"}], atomic=True)
    reply, out = run([job])
    [atomic] = [cmd for cmd in reply.body if isinstance(cmd, sm.Atomic)]
    assert [cmd.NAME for cmd in atomic.commands] == ["Add", "Replace", "Delete"]
    [finished] = of_type(out.effects, JobFinished)
    assert finished.state == "done" and [r["status"] for r in finished.results] == [200, 200, 200]


def test_atomic_rollback_maps_inner_statuses():
    job = JobSpec("a", [{"op": "Add", "target": "./A", "data": "1"},
                        {"op": "Replace", "target": "./B", "data": "2"},
                        {"op": "Delete", "target": "./C"}], atomic=True)
    session = make_session(jobs=[job])
    client = Client(session)
    reply = client.send(client.package1()).reply
    atomic = next(cmd for cmd in reply.body if isinstance(cmd, sm.Atomic))
    ids = [cmd.cmd_id for cmd in atomic.commands]
    out = client.send(client.answer(reply, codes={atomic.cmd_id: 507, ids[0]: 216, ids[1]: 404,
                                                  ids[2]: 216}))
    [finished] = of_type(out.effects, JobFinished)
    assert finished.state == "failed"
    assert [r["status"] for r in finished.results] == [216, 404, 216]
    assert finished.error["message"].startswith("Atomic: 507 Atomic failed; Add ./A: 216")


def test_atomic_status_alone_applies_to_every_command():
    job = JobSpec("a", [{"op": "Add", "target": "./A", "data": "1"},
                        {"op": "Delete", "target": "./C"}], atomic=True)
    session = make_session(jobs=[job])
    client = Client(session)
    reply = client.send(client.package1()).reply
    atomic = next(cmd for cmd in reply.body if isinstance(cmd, sm.Atomic))
    out = client.send([client.hdr_answer(reply),
                       sm.Status(cmd_id="2", msg_ref="1", cmd_ref=atomic.cmd_id, cmd="Atomic",
                                 data=507)])
    [finished] = of_type(out.effects, JobFinished)
    assert [r["status"] for r in finished.results] == [507, 507]
    assert finished.state == "failed"


UI_JOB = JobSpec("ui", [
    {"op": "Alert", "alert": 1100, "data": "Hello", "options": "MINDT=5"},
    {"op": "Alert", "alert": 1101, "data": "Update now?", "options": "MAXDT=30&DR=1"},
    {"op": "Alert", "alert": 1102, "data": "Your name", "options": "MAXLEN=10&IT=A"},
    {"op": "Alert", "alert": 1103, "data": "Pick one", "choices": ["red", "green", "blue"]},
    {"op": "Alert", "alert": 1104, "data": "Pick some", "choices": ["a", "b", "c"]},
])


ANSWERS = {"6": ["Ann"], "7": ["2"], "8": ["1", "3"]}  # Status Items for 1102, 1103, 1104


def test_ui_alerts_on_the_wire():
    reply, _ = run([UI_JOB], items=ANSWERS)
    alerts = server_commands(reply)
    assert [(a.cmd_id, a.data) for a in alerts] == [
        ("4", 1100), ("5", 1101), ("6", 1102), ("7", 1103), ("8", 1104)]
    assert [i.data for i in alerts[0].items] == ["MINDT=5", "Hello"]
    assert [i.data for i in alerts[1].items] == ["MAXDT=30&DR=1", "Update now?"]
    assert [i.data for i in alerts[2].items] == ["MAXLEN=10&IT=A", "Your name"]
    assert [i.data for i in alerts[3].items] == ["", "Pick one", "red", "green", "blue"]
    assert [i.data for i in alerts[4].items] == ["", "Pick some", "a", "b", "c"]


def test_ui_alert_answers():
    _, out = run([UI_JOB], items=ANSWERS)
    [finished] = of_type(out.effects, JobFinished)
    assert finished.state == "done"
    assert [(r["status"], r["data"]) for r in finished.results] == [
        (200, None), (200, None), (200, "Ann"), (200, "2"), (200, ["1", "3"])]
    assert all(r["target"] is None and r["op"] == "Alert" for r in finished.results)


def test_ui_alert_rejected_or_cancelled():
    _, out = run([UI_JOB], codes={"5": 304, "6": 214, "7": 215, "8": 215})
    [finished] = of_type(out.effects, JobFinished)
    assert finished.state == "failed"
    assert [r["status"] for r in finished.results] == [200, 304, 214, 215, 215]
    assert "Alert 1101: 304 Not modified" in finished.error["message"]


def test_generic_alert_raises_event_per_item():
    session = make_session()
    client = Client(session)
    generic = sm.Alert(cmd_id="3", data=1226, correlator="abc123", items=[
        sm.Item(source=sm.LocRef("./FUMO/fw1"), meta=sm.Meta(
            type="Reversed-Domain-Name: org.openmobilealliance.dm.firmwareupdate.download",
            format="int", mark="critical"), data="200"),
        sm.Item(target=sm.LocRef("./Other"), meta=sm.Meta(type="Content-Type: text/plain",
                                                          format="chr"), data="hi"),
    ])
    event = sm.Alert(cmd_id="4", data=1224, items=[
        sm.Item(meta=sm.Meta(type="com.microsoft/MDM/LoginStatus", format="chr"), data="user")])
    out = client.send(client.package1(extra=[generic, event]))
    assert status_for(out.reply, "3").data == 200 and status_for(out.reply, "4").data == 200
    assert of_type(out.effects, EventRaised) == [
        EventRaised("generic_alert", {
            "alert": 1226, "source": "./FUMO/fw1", "target": None,
            "meta_type": "Reversed-Domain-Name: org.openmobilealliance.dm.firmwareupdate.download",
            "format": "int", "mark": "critical", "data": "200", "correlator": "abc123"}),
        EventRaised("generic_alert", {
            "alert": 1226, "source": None, "target": "./Other", "meta_type": "Content-Type: text/plain",
            "format": "chr", "mark": None, "data": "hi", "correlator": "abc123"}),
        EventRaised("client_event", {
            "alert": 1224, "source": None, "target": None, "meta_type": "com.microsoft/MDM/LoginStatus",
            "format": "chr", "mark": None, "data": "user", "correlator": None}),
    ]


def test_generic_alert_in_package_3_and_without_items():
    session = make_session(jobs=[JobSpec("j", [{"op": "Delete", "target": "./X"}])])
    client = Client(session)
    reply = client.send(client.package1()).reply
    good = sm.Alert(data=1226, items=[sm.Item(meta=sm.Meta(type="x", format="chr"), data="d")])
    empty = sm.Alert(data=1226)
    out = client.send(client.answer(reply, extra=[good, empty]))
    assert [s.data for s in out.reply.body[1:]] == [200, 412]
    assert len(of_type(out.effects, EventRaised)) == 1
    assert out.finished


def test_no_end_of_data_alert_is_an_event():
    session = make_session()
    client = Client(session)
    out = client.send(client.package1(extra=[sm.Alert(cmd_id="3", data=1225, items=[
        sm.Item(target=sm.LocRef("./Big"))])]))
    assert [e.type for e in of_type(out.effects, EventRaised)] == ["no_end_of_data"]


def test_jobs_are_sent_in_order_and_share_a_package_when_they_fit():
    jobs = [JobSpec(str(n), [{"op": "Get", "target": "./N%d" % n}]) for n in range(3)]
    reply, out = run(jobs)
    assert [cmd.items[0].target.loc_uri for cmd in server_commands(reply)] == ["./N0", "./N1", "./N2"]
    assert [e.job_id for e in of_type(out.effects, JobFinished)] == ["0", "1", "2"]


def test_duplicate_status_is_ignored():
    session = make_session(jobs=[JobSpec("j", [{"op": "Delete", "target": "./X"}])])
    client = Client(session)
    reply = client.send(client.package1()).reply
    body = client.answer(reply, codes={"./X": 404})
    twice = sm.Status(cmd_id="9", msg_ref="1", cmd_ref=body[1].cmd_ref, cmd="Delete", data=200)
    out = client.send(body + [twice])
    assert of_type(out.effects, JobFinished)[0].results[0]["status"] == 404
    assert any("second Status" in getattr(e, "reason", "") for e in out.effects)


def test_job_started_once_per_job():
    _, out = run([JobSpec("j", [{"op": "Delete", "target": "./X"}])])
    assert not of_type(out.effects, JobStarted)


def test_a_withdrawn_job_leaves_the_reply_and_the_session():
    # (the dispatcher could not start "b": it ended in the store after the session read it)
    jobs = [JobSpec(name, [{"op": "Get", "target": "./" + name}]) for name in ("a", "b", "c")]
    session = make_session(jobs=jobs)
    client = Client(session)
    first = client.send(client.package1())
    assert [effect.job_id for effect in of_type(first.effects, JobStarted)] == ["a", "b", "c"]
    amended = session.withdraw({"b"})
    assert amended.effects == [] and amended.finished is False
    assert [cmd.items[0].target.loc_uri for cmd in server_commands(amended.reply)] == ["./a", "./c"]
    # the reply's commands numbered from 1 again, and its bytes those of the reply amended
    assert [cmd.cmd_id for cmd in amended.reply.body] == [str(n) for n in range(1, len(amended.reply.body) + 1)]
    assert amended.body == xml.encode(amended.reply)
    assert session.withdraw({"b"}) is None  # forgotten already
    assert session.add_job(jobs[1]) is False  # and not taken again
    assert session.waiting_jobs() == []
    out = client.send(client.answer(amended.reply, tree={"./a": "1", "./c": "3"}))
    finished = of_type(out.effects, JobFinished)
    assert [(f.job_id, f.state, f.results[0]["data"]) for f in finished] == [("a", "done", "1"), ("c", "done", "3")]
    assert out.finished or out.reply.final


def test_a_withdrawn_job_spanning_messages_leaves_them_all():
    # a small MaxMsgSize: "big"'s commands go over several messages; withdrawn
    # from the first, none of them follows, and the next job runs
    big = JobSpec("big", [{"op": "Replace", "target": "./Vendor/N%d" % n, "data": "v" * 300} for n in range(6)])
    after = JobSpec("after", [{"op": "Get", "target": "./after"}])
    session = make_session(jobs=[big, after])
    client = Client(session, max_msg_size=2500)

    def answer(reply):
        if reply.final:
            return client.send(client.answer(reply, tree={"./after": "x"}))
        # the device asks for the rest of our package
        return client.send(client.answer(reply, extra=[sm.Alert(data=sm.ALERT_NEXT_MESSAGE)]), final=False)

    out = client.send(client.package1())
    assert [effect.job_id for effect in of_type(out.effects, JobStarted)] == ["big"]
    assert not out.reply.final and len(server_commands(out.reply)) == 2  # of 6
    out = session.withdraw(["big"])
    assert [cmd for cmd in server_commands(out.reply) if cmd.NAME == "Replace"] == []
    sent, finished = [], []
    while not out.finished:
        out = answer(out.reply)
        sent += [cmd.items[0].target.loc_uri for cmd in server_commands(out.reply) if cmd.NAME != "Alert"]
        finished += of_type(out.effects, JobFinished)
        assert len(client.replies) < 10, "the session does not end"
    assert sent == ["./after"]
    assert [(f.job_id, f.state) for f in finished] == [("after", "done")]
