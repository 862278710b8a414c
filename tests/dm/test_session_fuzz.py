"""ServerSession never crashes on a well-formed model, whatever the client sends.

Hypothesis builds sloppy and malicious sessions: Statuses for unknown
CmdRefs or MsgRefs, Results for nothing, stray chunks, odd alert codes,
commands a client may not send, missing CmdIDs, random Final flags and
MaxMsgSize values.  Every message must get a reply that starts with the
SyncHdr Status, has unique CmdIDs and encodes; nothing but the reply and
effects may come out.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from dmgateway.auth.verify import challenge
from dmgateway.codec import syncml as sm
from dmgateway.codec import xml
from dmgateway.dm.effects import Authenticated, JobFinished, JobSpec, SessionEnded

from .client import Client, make_session, server_commands

JOBS = [
    JobSpec("get", [{"op": "Get", "target": "./DevDetail/SwV"}, {"op": "Get", "target": "./Big"}]),
    JobSpec("atomic", [{"op": "Add", "target": "./A", "data": "1"},
                       {"op": "Delete", "target": "./B"}], atomic=True),
    JobSpec("lo", [{"op": "Replace", "target": "./Blob", "data": "q" * 3000}]),
    JobSpec("ui", [{"op": "Alert", "alert": 1103, "data": "pick", "choices": ["a", "b"]}]),
]

text = hs.text(alphabet="abcXYZ019./:- ", max_size=12)
ref = hs.sampled_from(["", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "12"])
msg_ref = hs.one_of(hs.none(), hs.sampled_from(["1", "2", "3", "4", "9"]))
codes = hs.sampled_from([200, 202, 212, 213, 214, 215, 216, 304, 401, 404, 407, 412, 420, 500, 507])


@hs.composite
def metas(draw):
    if not draw(hs.booleans()):
        return None
    return sm.Meta(format=draw(hs.one_of(hs.none(), hs.sampled_from(["chr", "b64", "int"]))),
                   type=draw(hs.one_of(hs.none(), text)),
                   size=draw(hs.one_of(hs.none(), hs.integers(0, 5000))))


@hs.composite
def items(draw):
    return sm.Item(
        target=draw(hs.one_of(hs.none(), text.map(sm.LocRef))),
        source=draw(hs.one_of(hs.none(), hs.sampled_from(
            ["./DevInfo/Man", "./Big", "./DevDetail/SwV", "./Log"]).map(sm.LocRef))),
        meta=draw(metas()),
        data=draw(hs.one_of(hs.none(), text, hs.binary(max_size=8))),
        more_data=draw(hs.booleans()),
    )


@hs.composite
def commands(draw):
    kind = draw(hs.sampled_from(["status", "hdrstatus", "results", "alert", "replace", "other"]))
    cmd_id = draw(hs.sampled_from(["", "1", "2", "3", "4", "5"]))
    item_list = draw(hs.lists(items(), max_size=3))
    if kind == "status":
        return sm.Status(cmd_id=cmd_id, msg_ref=draw(msg_ref), cmd_ref=draw(ref),
                         cmd=draw(hs.sampled_from(["Get", "Replace", "Alert", "Atomic", ""])),
                         data=draw(codes), items=item_list)
    if kind == "hdrstatus":
        chal = draw(hs.sampled_from([None, challenge("md5", b"\x01" * 16),
                                     sm.Chal(sm.Meta(next_nonce="***"))]))
        return sm.Status(cmd_id=cmd_id, msg_ref=draw(msg_ref), cmd_ref="0", cmd="SyncHdr",
                         data=draw(codes), chal=chal)
    if kind == "results":
        return sm.Results(cmd_id=cmd_id, msg_ref=draw(msg_ref), cmd_ref=draw(ref),
                          meta=draw(metas()), items=item_list)
    if kind == "alert":
        code = draw(hs.sampled_from([None, 1100, 1103, 1200, 1201, 1222, 1223, 1224, 1225, 1226, 4242]))
        return sm.Alert(cmd_id=cmd_id, data=code, correlator=draw(hs.one_of(hs.none(), text)),
                        items=item_list)
    if kind == "replace":
        return sm.Replace(cmd_id=cmd_id, items=item_list, meta=draw(metas()))
    return draw(hs.sampled_from([
        sm.UnknownCommand(cmd_id=cmd_id, name="Sync"),
        sm.Get(cmd_id=cmd_id, items=[sm.Item(target=sm.LocRef("./X"))]),
        sm.Atomic(cmd_id=cmd_id, commands=[sm.Delete(cmd_id="9", items=[])]),
        sm.Sequence(cmd_id=cmd_id),
    ]))


messages = hs.lists(
    hs.tuples(hs.lists(commands(), max_size=6), hs.booleans(),
              hs.one_of(hs.none(), hs.integers(200, 3000))),
    min_size=1, max_size=8,
)


def check(outcome):
    reply = outcome.reply
    first = reply.body[0]
    assert isinstance(first, sm.Status) and first.cmd_ref == "0" and first.cmd == "SyncHdr"
    ids = []
    for cmd in reply.body:
        ids.append(cmd.cmd_id)
        ids.extend(inner.cmd_id for inner in getattr(cmd, "commands", []))
    assert len(ids) == len(set(ids))
    xml.decode(xml.encode(reply))  # encodes, and reads back as a message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first_valid=hs.booleans(), script=messages, jobs=hs.lists(hs.sampled_from(JOBS), max_size=3,
                                                                  unique_by=lambda j: j.job_id))
def test_any_client_behaviour_gets_replies_and_nothing_else(first_valid, script, jobs):
    session = make_session(jobs=jobs)
    client = Client(session)
    authenticated = False
    if first_valid:
        out = session.handle(sm.SyncML(client.header(), client.package1(), True), body=b"1")
        check(out)
        authenticated = True
    finished_jobs = set()
    for body, final, max_msg_size in script:
        if session.finished:
            break
        hdr = client.header()
        if max_msg_size is not None:
            hdr.meta = sm.Meta(max_msg_size=max_msg_size)
        out = session.handle(sm.SyncML(hdr, body, final), body=xml.encode(sm.SyncML(hdr, body, final)))
        check(out)
        authenticated = authenticated or any(isinstance(e, Authenticated) for e in out.effects)
        if not authenticated:
            assert not server_commands(out.reply)  # never a command to a stranger
        for effect in out.effects:
            if isinstance(effect, JobFinished):
                assert effect.job_id not in finished_jobs  # a job finishes once
                finished_jobs.add(effect.job_id)
                assert effect.state in ("done", "failed")
                assert (effect.error is None) == (effect.state == "done")
        assert out.finished == session.finished
        if out.finished:
            assert isinstance(out.effects[-1], SessionEnded)
