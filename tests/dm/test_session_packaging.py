"""ServerSession: MaxMsgSize, multi-message packages and large objects both ways.

``Client`` checks every reply against the MaxMsgSize it announced.
"""

import pytest

from dmgateway.codec import syncml as sm
from dmgateway.codec import wbxml, xml
from dmgateway.dm.effects import (
    DevInfoReceived,
    EventRaised,
    InputIgnored,
    JobFinished,
    SessionEnded,
    JobSpec,
    JobStarted,
)

from .client import Client, make_device, make_session, server_commands, status_for, statuses

# With 1024-byte XML messages, an md5 Cred, a Chal and a long RespURI leave no room for
# anything else; these tests use a lean header: the server authenticated by TLS, no RespURI.


def lean_session(jobs=(), **options):
    return make_session(make_device(server_scheme="none"), jobs, resp_uri=None, **options)


def of_type(effects, cls):
    return [effect for effect in effects if isinstance(effect, cls)]


def next_message():
    return sm.Alert(data=sm.ALERT_NEXT_MESSAGE)


def drive(client, out, tree=None, codes=None, limit=50):
    """Answer replies like a device until the session ends; return all outcomes."""
    outcomes = [out]
    while not out.finished:
        assert len(outcomes) < limit, "the session does not end"
        reply = out.reply
        if reply.final:
            out = client.send(client.answer(reply, tree=tree, codes=codes))
        else:  # more of the server's package to come: Status (+ 213s) and 1222, no Final
            chunk_codes = dict(codes or {})
            for cmd in server_commands(reply):
                if cmd.NAME in ("Add", "Replace") and cmd.items[-1].more_data:
                    chunk_codes.setdefault(cmd.cmd_id, 213)
            out = client.send(client.answer(reply, tree=tree, codes=chunk_codes,
                                            extra=[next_message()]), final=False)
        outcomes.append(out)
    return outcomes


def test_max_msg_size_1024_spreads_a_package_over_several_messages():
    commands = [{"op": "Replace", "target": "./Vendor/Settings/Key%02d" % n, "data": "value %d" % n}
                for n in range(25)]
    session = lean_session(jobs=[JobSpec("big", commands)])
    client = Client(session, max_msg_size=1024)
    outcomes = drive(client, client.send(client.package1()))
    replies = [o.reply for o in outcomes]
    sizes = [len(xml.encode(reply)) for reply in replies]
    assert all(size <= 1024 for size in sizes) and len(replies) >= 4
    sent = [cmd for reply in replies for cmd in server_commands(reply) if cmd.NAME == "Replace"]
    assert [cmd.items[0].target.loc_uri for cmd in sent] == [c["target"] for c in commands]
    package_2 = replies[:-1]
    assert [r.final for r in package_2] == [False] * (len(package_2) - 1) + [True]
    assert not server_commands(replies[-1]) and replies[-1].final
    [finished] = of_type(outcomes[-1].effects, JobFinished)
    assert finished.state == "done" and len(finished.results) == 25
    for reply in replies[1:-1]:  # answers to the client's non-final messages: its 1222 gets a Status
        assert [s.cmd for s in statuses(reply)] == ["SyncHdr", "Alert"]


def test_md5_both_ways_with_a_long_resp_uri_honours_the_limit():
    commands = [{"op": "Replace", "target": "./Vendor/Settings/Key%02d" % n, "data": "value %d" % n}
                for n in range(25)]
    session = make_session(jobs=[JobSpec("big", commands)])
    client = Client(session, max_msg_size=1500)
    outcomes = drive(client, client.send(client.package1()))  # Client checks every size
    assert len(outcomes) >= 4
    assert of_type(outcomes[-1].effects, JobFinished)[0].state == "done"


def test_package_2_honours_max_msg_size_too():
    commands = [{"op": "Get", "target": "./A/%d" % n} for n in range(40)]
    session = lean_session(jobs=[JobSpec("j", commands)])
    client = Client(session, max_msg_size=1200)
    out = client.send(client.package1())
    assert len(xml.encode(out.reply)) <= 1200 and not out.reply.final
    assert 0 < len(server_commands(out.reply)) < 40


def test_later_header_changes_max_msg_size():
    commands = [{"op": "Get", "target": "./A/%d" % n} for n in range(30)]
    session = make_session(jobs=[JobSpec("j", commands)])
    client = Client(session)
    out = client.send(client.package1())
    assert out.reply.final and len(server_commands(out.reply)) == 30  # no limit announced
    session.add_job(JobSpec("k", commands))
    client.max_msg_size = 1100
    out = client.send(client.answer(out.reply))
    assert len(xml.encode(out.reply)) <= 1100 and not out.reply.final
    client.max_msg_size = None  # the limit stays in force without a new announcement
    out = client.send(client.answer(out.reply, extra=[next_message()]), final=False)
    assert len(xml.encode(out.reply)) <= 1100


def test_default_max_msg_size_applies_until_the_client_announces_one():
    commands = [{"op": "Get", "target": "./A/%d" % n} for n in range(30)]
    session = make_session(jobs=[JobSpec("j", commands)], default_max_msg_size=1500)
    client = Client(session)
    out = client.send(client.package1())
    assert len(xml.encode(out.reply)) <= 1500 and not out.reply.final


def test_following_job_waits_when_it_does_not_fit_whole():
    first = JobSpec("first", [{"op": "Get", "target": "./A/%d" % n} for n in range(8)])
    second = JobSpec("second", [{"op": "Get", "target": "./B/%d" % n} for n in range(8)])
    session = make_session(jobs=[first, second])
    client = Client(session, max_msg_size=1300)
    out = client.send(client.package1())
    started = [e.job_id for e in of_type(out.effects, JobStarted)]
    assert started == ["first"]
    outcomes = drive(client, out)
    started = [e.job_id for o in outcomes for e in of_type(o.effects, JobStarted)]
    assert started == ["first", "second"]
    second_started = next(n for n, o in enumerate(outcomes) if JobStarted("second") in o.effects)
    assert any(JobFinished == type(e) for o in outcomes[:second_started + 1] for e in o.effects)
    assert [e.state for o in outcomes for e in of_type(o.effects, JobFinished)] == ["done", "done"]


def test_client_results_over_several_messages():
    commands = [{"op": "Get", "target": "./A/%d" % n} for n in range(6)]
    session = make_session(jobs=[JobSpec("j", commands)])
    client = Client(session)
    reply = client.send(client.package1()).reply
    body = client.answer(reply, tree={c["target"]: "v" * 50 for c in commands})
    first_half, second_half = body[:10], [client.hdr_answer(reply)] + body[10:]
    out = client.send(first_half, final=False)
    assert [cmd.NAME for cmd in out.reply.body] == ["Status", "Alert"]  # "next message" reply
    assert out.reply.body[1].data == sm.ALERT_NEXT_MESSAGE and not out.reply.final
    assert not of_type(out.effects, JobFinished)
    out = client.send(second_half[1:])
    [finished] = of_type(out.effects, JobFinished)
    assert finished.state == "done" and all(r["data"] == "v" * 50 for r in finished.results)
    assert out.finished


def test_large_object_out_in_chunks():
    data = "".join(chr(0x41 + n % 26) for n in range(5000)) + "é<&>"
    job = JobSpec("lo", [{"op": "Get", "target": "./First"},
                         {"op": "Replace", "target": "./Vendor/Blob", "data": data,
                          "type": "text/plain"},
                         {"op": "Delete", "target": "./After"}])
    session = lean_session(jobs=[job])
    client = Client(session, max_msg_size=1024)
    outcomes = drive(client, client.send(client.package1()), tree={"./First": "1"})
    chunks = [cmd for o in outcomes for cmd in server_commands(o.reply) if cmd.NAME == "Replace"]
    assert len(chunks) > 5
    assert "".join(c.items[0].data for c in chunks) == data
    assert chunks[0].items[0].meta == sm.Meta(format="chr", type="text/plain", size=len(data.encode()))
    assert all(c.items[0].meta == sm.Meta(format="chr", type="text/plain") for c in chunks[1:])
    assert [c.items[0].more_data for c in chunks] == [True] * (len(chunks) - 1) + [False]
    assert all(c.items[0].target.loc_uri == "./Vendor/Blob" for c in chunks)
    for o in outcomes:  # a message holding a non-last chunk never has Final
        if any(c.items[0].more_data for c in server_commands(o.reply) if c.NAME == "Replace"):
            assert not o.reply.final
    names = [cmd.NAME for o in outcomes for cmd in server_commands(o.reply)]
    assert names.index("Get") < names.index("Replace") and names.index("Delete") > len(chunks)
    [finished] = of_type(outcomes[-1].effects, JobFinished)
    assert finished.state == "done" and [r["status"] for r in finished.results] == [200, 200, 200]


def test_large_object_refused_by_the_device_mid_way():
    job = JobSpec("lo", [{"op": "Replace", "target": "./Blob", "data": "x" * 4000}])
    session = lean_session(jobs=[job])
    client = Client(session, max_msg_size=1200)
    out = client.send(client.package1())
    chunk = server_commands(out.reply)[0]
    assert chunk.items[0].more_data
    out = client.send(client.answer(out.reply, codes={chunk.cmd_id: 420}, extra=[next_message()]),
                      final=False)
    assert not [c for c in server_commands(out.reply) if c.NAME == "Replace"]  # no more chunks
    [finished] = of_type(out.effects, JobFinished)
    assert finished.results[0]["status"] == 420 and finished.error["code"] == "command_failed"


def test_object_larger_than_client_max_obj_size_is_not_sent():
    job = JobSpec("j", [{"op": "Replace", "target": "./Big", "data": "y" * 600},
                        {"op": "Replace", "target": "./Small", "data": "ok"}])
    session = make_session(jobs=[job])
    client = Client(session, max_obj_size=500)
    out = client.send(client.package1())
    assert [cmd.items[0].target.loc_uri for cmd in server_commands(out.reply)] == ["./Small"]
    out = client.send(client.answer(out.reply))
    [finished] = of_type(out.effects, JobFinished)
    assert finished.state == "failed" and finished.error["code"] == "too_large"
    assert "MaxObjSize 500" in finished.error["message"]
    assert [r["status"] for r in finished.results] == [413, 200]


def test_atomic_that_cannot_fit_one_message_fails_too_large():
    atomic = JobSpec("a", [{"op": "Replace", "target": "./Vendor/K%d" % n, "data": "v" * 40}
                           for n in range(30)], atomic=True)
    after = JobSpec("b", [{"op": "Delete", "target": "./X"}])
    session = lean_session(jobs=[atomic, after])
    client = Client(session, max_msg_size=1200)
    out = client.send(client.package1())
    [failed] = of_type(out.effects, JobFinished)
    assert failed.job_id == "a" and failed.state == "failed" and failed.error["code"] == "too_large"
    assert all(r["status"] is None for r in failed.results)
    assert [cmd.NAME for cmd in server_commands(out.reply)] == ["Delete"]  # the next job goes on


def test_command_that_can_never_fit_fails_too_large():
    job = JobSpec("j", [{"op": "Get", "target": "./" + "x" * 2000}, {"op": "Get", "target": "./ok"}])
    session = lean_session(jobs=[job])
    client = Client(session, max_msg_size=1024)
    outcomes = drive(client, client.send(client.package1()))
    [finished] = [e for o in outcomes for e in of_type(o.effects, JobFinished)]
    assert finished.error["code"] == "too_large"
    assert [r["status"] for r in finished.results] == [None, 200]


def test_tiny_max_msg_size_still_ends():
    """A MaxMsgSize nothing can honour is exceeded (and reported), never a livelock."""
    job = JobSpec("j", [{"op": "Get", "target": "./A"}])
    session = make_session(jobs=[job])
    client = Client(session)
    hdr = client.header()
    hdr.meta = sm.Meta(max_msg_size=300)  # smaller than any reply can be
    body = xml.encode(sm.SyncML(hdr, client.package1(), final=True))
    out = session.handle(xml.decode(body), body=body)
    outcomes = drive(client, out, limit=5)
    effects = [e for o in outcomes for e in o.effects]
    assert any("MaxMsgSize 300 too small" in getattr(e, "reason", "") for e in effects)
    [finished] = of_type(effects, JobFinished)
    assert finished.state == "failed" and finished.error["code"] == "too_large"

def results_chunks(reply, get, pieces, size, msg_ref="1"):
    """Results for ``get`` split into ``pieces`` (one Results per message)."""
    out = []
    for n, piece in enumerate(pieces):
        meta = sm.Meta(format="chr", size=size) if n == 0 else sm.Meta(format="chr")
        out.append(sm.Results(msg_ref=msg_ref, cmd_ref=get.cmd_id, items=[
            sm.Item(source=get.items[0].target, meta=meta, data=piece,
                    more_data=n < len(pieces) - 1)]))
    return out


def send_results_in_chunks(client, reply, pieces, size):
    get = server_commands(reply)[0]
    chunks = results_chunks(reply, get, pieces, size)
    outs = []
    for n, chunk in enumerate(chunks):
        chunk.cmd_id = "3"
        body = [client.hdr_answer(reply)]
        if n == 0:
            body.append(sm.Status(cmd_id="2", msg_ref="1", cmd_ref=get.cmd_id, cmd="Get", data=200))
        outs.append(client.send(body + [chunk], final=n == len(chunks) - 1))
    return outs


def test_large_object_in_reassembled():
    session = make_session(jobs=[JobSpec("j", [{"op": "Get", "target": "./Log"}])])
    client = Client(session)
    reply = client.send(client.package1()).reply
    pieces = ["a" * 300, "b" * 300, "c" * 7]
    outs = send_results_in_chunks(client, reply, pieces, 607)
    for out in outs[:-1]:
        assert [(s.cmd, s.data) for s in statuses(out.reply)] == [("SyncHdr", 200), ("Results", 213)]
        assert out.reply.body[-1].data == sm.ALERT_NEXT_MESSAGE and not out.reply.final
        assert not of_type(out.effects, JobFinished)
    [finished] = of_type(outs[-1].effects, JobFinished)
    assert finished.state == "done" and finished.results[0]["data"] == "".join(pieces)
    assert [s.cmd for s in statuses(outs[-1].reply)] == ["SyncHdr"]  # no Status for good Results
    assert outs[-1].finished


def test_large_object_in_size_mismatch_is_424():
    session = make_session(jobs=[JobSpec("j", [{"op": "Get", "target": "./Log"}])])
    client = Client(session)
    reply = client.send(client.package1()).reply
    outs = send_results_in_chunks(client, reply, ["a" * 300, "b" * 10], 999)
    assert status_for(outs[-1].reply, "3").data == 424
    [finished] = of_type(outs[-1].effects, JobFinished)
    assert finished.results[0]["status"] == 424 and finished.state == "failed"


def test_large_object_in_over_our_max_obj_size_is_413():
    session = make_session(jobs=[JobSpec("j", [{"op": "Get", "target": "./Log"}])], max_obj_size=500)
    client = Client(session)
    reply = client.send(client.package1()).reply
    outs = send_results_in_chunks(client, reply, ["a" * 300, "b" * 300, "c"], 601)
    assert [status_for(o.reply, "3").data for o in outs] == [413, 413, 413]
    [finished] = of_type(outs[0].effects, JobFinished)  # refused at once (Size > 500)
    assert finished.results[0]["status"] == 413 and finished.state == "failed"


def test_large_object_in_without_size_still_bounded():
    session = make_session(jobs=[JobSpec("j", [{"op": "Get", "target": "./Log"}])], max_obj_size=500)
    client = Client(session)
    reply = client.send(client.package1()).reply
    outs = send_results_in_chunks(client, reply, ["a" * 300, "b" * 300, "c"], None)
    assert [status_for(o.reply, "3").data for o in outs] == [213, 413, 413]


def test_interrupted_large_object_in_gets_alert_1225():
    job = JobSpec("j", [{"op": "Get", "target": "./Log"}, {"op": "Get", "target": "./Other"}])
    session = make_session(jobs=[job])
    client = Client(session)
    reply = client.send(client.package1()).reply
    get_log, get_other = server_commands(reply)
    first = results_chunks(reply, get_log, ["a" * 100, "b"], 101)[0]
    first.cmd_id = "4"
    body = client.answer(reply)[:3] + [first]
    out = client.send(body, final=False)
    assert status_for(out.reply, "4").data == 213
    other = sm.Results(cmd_id="2", msg_ref="1", cmd_ref=get_other.cmd_id,
                       items=[sm.Item(source=sm.LocRef("./Other"), data="o")])
    out = client.send([client.hdr_answer(out.reply, 200), other])
    alerts = [c for c in out.reply.body if isinstance(c, sm.Alert)]
    assert [a.data for a in alerts] == [sm.ALERT_NO_END_OF_DATA]
    assert alerts[0].items == [sm.Item(source=sm.LocRef("./Log"))]
    [finished] = of_type(out.effects, JobFinished)
    assert [r["status"] for r in finished.results] == [412, 200]
    assert finished.results[1]["data"] == "o"


def test_chunked_devinfo_replace_in_package_1():
    session = make_session()
    client = Client(session)
    ext = "z" * 250
    first = sm.Replace(cmd_id="2", items=[
        sm.Item(source=sm.LocRef("./DevInfo/Man"), data="ExampleCorp"),
        sm.Item(source=sm.LocRef("./DevInfo/Ext/Big"), meta=sm.Meta(size=len(ext)), data=ext[:200],
                more_data=True)])
    out = client.send([sm.Alert(cmd_id="1", data=1201), first], final=False)
    assert status_for(out.reply, "2").data == 213 and out.reply.body[-1].data == 1222
    assert of_type(out.effects, DevInfoReceived) == [DevInfoReceived({"Man": "ExampleCorp"})]
    rest = sm.Replace(cmd_id="1", items=[sm.Item(source=sm.LocRef("./DevInfo/Ext/Big"), data=ext[200:])])
    out = client.send([client.hdr_answer(out.reply, 200), rest])
    assert status_for(out.reply, "1").data == 200
    assert of_type(out.effects, DevInfoReceived) == [DevInfoReceived({"Ext/Big": ext})]
    assert out.finished


def test_chunked_generic_alert():
    session = make_session()
    client = Client(session)
    meta = sm.Meta(type="Reversed-Domain-Name: org.example.log", format="chr", size=12)
    part1 = sm.Alert(cmd_id="3", data=1226, items=[
        sm.Item(source=sm.LocRef("./Log"), meta=meta, data="hello ", more_data=True)])
    out = client.send(client.package1(extra=[part1]), final=False)
    assert status_for(out.reply, "3").data == 213
    part2 = sm.Alert(cmd_id="2", data=1226, items=[
        sm.Item(source=sm.LocRef("./Log"), meta=sm.Meta(type=meta.type, format="chr"), data="world!")])
    out = client.send([client.hdr_answer(out.reply, 200), part2])
    assert status_for(out.reply, "2").data == 200
    [event] = of_type(out.effects, EventRaised)
    assert event.payload["data"] == "hello world!" and event.payload["source"] == "./Log"


def test_results_chunk_after_completion_is_ignored():
    session = make_session(jobs=[JobSpec("j", [{"op": "Get", "target": "./Log"}]),
                                 JobSpec("k", [{"op": "Get", "target": "./Z"}])],
                           default_max_msg_size=None)
    client = Client(session)
    reply = client.send(client.package1()).reply
    get = server_commands(reply)[0]
    body = client.answer(reply, tree={"./Log": "done", "./Z": "z"})
    duplicate = results_chunks(reply, get, ["again"], None)[0]
    duplicate.cmd_id = "40"
    out = client.send(body + [duplicate])
    assert any("second Results for Get ./Log" in getattr(e, "reason", "") for e in out.effects)
    assert [e.results[0]["data"] for e in of_type(out.effects, JobFinished)] == ["done", "z"]


# -- small MaxMsgSize never fails a job (many small commands + one large value) --

def _mixed_job():
    commands = [{"op": "Replace", "target": "./Vendor/S%02d" % n, "data": "v%02d" % n + "s" * 147}
                for n in range(15)]
    commands.insert(7, {"op": "Replace", "target": "./Vendor/Large",
                        "data": "".join("%05d;" % n for n in range(1000))})
    return commands


@pytest.mark.parametrize("limit", [1024, 2048])
@pytest.mark.parametrize("codec", [xml, wbxml], ids=["xml", "wbxml"])
def test_small_max_msg_size_with_md5_resp_uri_and_a_large_value(codec, limit):
    session = make_session(jobs=[JobSpec("mixed", _mixed_job())], encode=codec.encode,
                           measure=lambda msg: len(codec.encode(msg)))
    client = Client(session, max_msg_size=limit, codec=codec)  # checks every reply's size
    outcomes = drive(client, client.send(client.package1()), limit=400)
    effects = [e for o in outcomes for e in o.effects]
    assert not [e for e in of_type(effects, InputIgnored) if "MaxMsgSize" in e.reason]
    [finished] = of_type(effects, JobFinished)
    assert finished.state == "done" and [r["status"] for r in finished.results] == [200] * 16
    sent = [cmd for o in outcomes for cmd in server_commands(o.reply) if cmd.NAME == "Replace"]
    large = "".join(str(cmd.items[0].data) for cmd in sent
                    if cmd.items[0].target.loc_uri == "./Vendor/Large")
    assert large == _mixed_job()[7]["data"]


def test_small_max_msg_size_fails_only_a_value_above_max_obj_size():
    session = make_session(jobs=[JobSpec("mixed", _mixed_job())])
    client = Client(session, max_msg_size=1024, max_obj_size=4000)
    outcomes = drive(client, client.send(client.package1()), limit=400)
    [finished] = of_type([e for o in outcomes for e in o.effects], JobFinished)
    codes = [r["status"] for r in finished.results]
    assert finished.state == "failed" and codes[7] == 413
    assert codes[:7] + codes[8:] == [200] * 15


def test_max_msg_size_too_small_for_any_data_fails_clearly_and_at_once():
    # a public URL of 100 characters: at 1 KiB in XML the header, the RespURI and
    # the Statuses every message carries leave no room for a chunk of one byte
    url = "https://dm.example.com/" + "x" * 77
    session = make_session(jobs=[JobSpec("mixed", _mixed_job())], server_uri=url,
                           resp_uri=url + "?s=ee05797442394364aa31bcc5be3ed861")
    client = Client(session, max_msg_size=1024)
    outcomes = drive(client, client.send(client.package1()), limit=60)
    assert len(outcomes) <= 5  # not a loop of Statuses until the session times out
    effects = [e for o in outcomes for e in o.effects]
    [finished] = of_type(effects, JobFinished)
    assert finished.state == "failed" and finished.error["code"] == "max_msg_size_too_small"
    assert "MaxMsgSize 1024 cannot carry the Statuses" in finished.error["message"]
    assert of_type(effects, SessionEnded)[0].outcome == "max_msg_size_too_small"


def test_no_room_for_a_chunk_fails_the_command_clearly():
    # room for the Statuses, not for one byte of data with its Replace around it
    url = "https://dm.example.com/" + "x" * 42
    session = make_session(jobs=[JobSpec("j", [{"op": "Replace", "target": "./Vendor/" + "T" * 60,
                                                "data": "v" * 300}])],
                           server_uri=url, resp_uri=url + "?s=ee05797442394364aa31bcc5be3ed861")
    client = Client(session, max_msg_size=1024)
    outcomes = drive(client, client.send(client.package1()), limit=30)
    [finished] = of_type([e for o in outcomes for e in o.effects], JobFinished)
    assert finished.state == "failed" and finished.error["code"] == "max_msg_size_too_small"
    assert "MaxMsgSize 1024 leaves no room for data" in finished.error["message"]


def _placed(monkeypatch, max_msg_size, together, encoding):
    """Which jobs each reply started and the commands it carried, with the
    whole following jobs measured together or (``together`` False) one by one."""
    from dmgateway.dm.outgoing import ServerCommands

    if not together:
        monkeypatch.setattr(ServerCommands, "_try_whole_jobs", lambda self, builder, first, turn: False)
    codec = xml if encoding == "xml" else wbxml
    jobs = [JobSpec("j%d" % n, [{"op": "Get", "target": "./A/%d/%s" % (n, "x" * (n * 7 % 40))}
                                for _ in range(1 + n % 3)]) for n in range(24)]
    session = make_session(jobs=jobs, encode=codec.encode, measure=None)  # (measured by encoding, as the gateway)
    client = Client(session, max_msg_size=max_msg_size, codec=codec)
    outcomes = drive(client, client.send(client.package1()))
    monkeypatch.undo()
    return [([e.job_id for e in of_type(o.effects, JobStarted)],
             [(cmd.NAME, cmd.cmd_id, [item.target.loc_uri for item in getattr(cmd, "items", []) if item.target])
              for cmd in o.reply.body], o.body) for o in outcomes]


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
@pytest.mark.parametrize("max_msg_size", [1100, 1500, 2200, 3000, 5000, 20000])
def test_whole_jobs_measured_together_go_where_one_by_one_puts_them(monkeypatch, max_msg_size, encoding):
    # (the same replies, byte for byte, whether the whole jobs that follow
    # are measured together, as they are, or job by job)
    together = _placed(monkeypatch, max_msg_size, True, encoding)
    assert together == _placed(monkeypatch, max_msg_size, False, encoding)
    assert sum(len(started) for started, _cmds, _body in together) == 24


def test_whole_jobs_that_all_fit_are_measured_once(monkeypatch):
    from dmgateway.dm.outgoing import ServerCommands
    from dmgateway.dm.packaging import MessageBuilder

    def measures(together):
        measured = []
        size = MessageBuilder._size
        monkeypatch.setattr(MessageBuilder, "_size", lambda self, body, hdr=None: measured.append(len(body)) or
                            size(self, body, hdr))
        if not together:
            monkeypatch.setattr(ServerCommands, "_try_whole_jobs", lambda self, builder, first, turn: False)
        jobs = [JobSpec("j%d" % n, [{"op": "Get", "target": "./A/%d" % n}]) for n in range(6)]
        client = Client(make_session(jobs=jobs, measure=None), max_msg_size=20000)
        out = client.send(client.package1())
        monkeypatch.undo()
        assert [e.job_id for e in of_type(out.effects, JobStarted)] == ["j%d" % n for n in range(6)]
        assert measured[-1] == len(out.reply.body)  # (the reply is the last message measured: not encoded again)
        return len(measured)

    # the five jobs after the first: one measure, not one each
    assert measures(True) == measures(False) - 4
