"""ServerSession: complete sessions, package rules, versions, ending."""

import pathlib

import pytest

from dmgateway.auth.nonce import encode_nonce
from dmgateway.codec import syncml as sm
from dmgateway.codec import xml
from dmgateway.dm.effects import (
    Authenticated,
    DevInfoReceived,
    InputIgnored,
    JobFinished,
    JobSpec,
    JobStarted,
    NoncesChanged,
    SessionEnded,
    SessionError,
)
from dmgateway.dm.session import DROPPED, NOT_HELD, STARTED

from .client import (
    DEVICE_ID,
    DEVINFO,
    RESP_URI,
    SERVER_URI,
    Client,
    counting_random,
    hdr_status,
    make_device,
    make_session,
    server_commands,
    status_for,
    statuses,
)

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def fixture(name):
    return (FIXTURES / name).read_bytes()


def of_type(effects, cls):
    return [effect for effect in effects if isinstance(effect, cls)]


EXAMPLE_JOB = JobSpec("job-1", [
    {"op": "Get", "target": "./DevDetail/SwV"},
    {"op": "Replace", "target": "./DMAcc/example/Name", "data": "Example Management Server",
     "format": "chr", "type": "text/plain"},
])


def test_example_session_of_the_spec():
    """dm-protocol §10, byte for byte where the values are not random."""
    device = make_device()
    session = make_session(device, [EXAMPLE_JOB], random_bytes=counting_random(0x40))
    body = fixture("example_pkg1.xml")
    out = session.handle(xml.decode(body), body=body)

    expected = xml.decode(fixture("example_pkg2.xml"))
    next_nonce = bytes(range(0x40, 0x50))
    expected.body[0].chal.meta.next_nonce = encode_nonce(next_nonce)
    expected.hdr.meta = sm.Meta(max_obj_size=4 * 1024 * 1024)  # we announce our MaxObjSize
    assert out.reply == expected
    assert out.hmac_header is None and not out.finished
    assert out.effects == [
        Authenticated("md5"),
        NoncesChanged(client_nonce=next_nonce),
        DevInfoReceived(dict(DEVINFO)),
        JobStarted("job-1"),
    ]
    assert device.client_nonce == next_nonce

    body = fixture("example_pkg3.xml")
    out = session.handle(xml.decode(body), body=body)
    expected = xml.decode(fixture("example_pkg4.xml"))
    expected.hdr.resp_uri = RESP_URI  # RespURI goes in every reply
    # our MaxObjSize went out in package 2 and holds for the session: as in the spec
    assert out.reply == expected
    assert out.finished and session.finished
    server_nonce = bytes.fromhex("1122334455667788")
    assert out.effects == [
        NoncesChanged(server_nonce=server_nonce),
        JobFinished("job-1", "done", [
            {"op": "Get", "target": "./DevDetail/SwV", "status": 200, "data": "4.2.1",
             "format": "chr", "type": "text/plain"},
            {"op": "Replace", "target": "./DMAcc/example/Name", "status": 200, "data": None,
             "format": None, "type": None},
        ], None),
        SessionEnded("completed", "nothing left to do"),
    ]
    assert device.server_nonce == server_nonce


def test_reply_header_echoes_session_and_addresses_device():
    session = make_session(jobs=[EXAMPLE_JOB], resp_uri=None)
    client = Client(session, session_id="7F")
    out = client.send(client.package1())
    hdr = out.reply.hdr
    assert (hdr.session_id, hdr.msg_id, hdr.ver_dtd, hdr.ver_proto) == ("7F", "1", "1.2", "DM/1.2")
    assert hdr.target == sm.LocRef(DEVICE_ID)
    assert hdr.source == sm.LocRef(SERVER_URI, "com.example.dms")  # LocName with md5 Cred
    assert hdr.resp_uri is None
    out = client.send(client.answer(out.reply, tree={"./DevDetail/SwV": "1"}))
    assert out.reply.hdr.msg_id == "2"
    assert out.reply.hdr.source == sm.LocRef(SERVER_URI)  # device accepted us: no Cred, no LocName
    assert out.reply.hdr.cred is None


@pytest.mark.parametrize("ver_dtd, ver_proto", [("1.1", "DM/1.1"), ("1.2", "DM/1.2"), ("1.2", "DM/1.3")])
def test_versions_are_echoed(ver_dtd, ver_proto):
    session = make_session(jobs=[EXAMPLE_JOB])
    client = Client(session, ver_dtd=ver_dtd, ver_proto=ver_proto)
    out = client.send(client.package1())
    assert (out.reply.hdr.ver_dtd, out.reply.hdr.ver_proto) == (ver_dtd, ver_proto)
    if ver_dtd == "1.1":
        assert xml.encode(out.reply).startswith(b'<SyncML xmlns="SYNCML:SYNCML1.1">')
    out = client.send(client.answer(out.reply))
    assert (out.reply.hdr.ver_dtd, out.reply.hdr.ver_proto) == (ver_dtd, ver_proto)
    assert out.finished


def test_unsupported_protocol_version_is_refused():
    session = make_session(jobs=[EXAMPLE_JOB])
    client = Client(session, ver_proto="DM/2.0")
    out = client.send(client.package1())
    assert hdr_status(out.reply).data == 513
    assert [s.data for s in statuses(out.reply)[1:]] == [513, 513]
    assert out.finished and out.reply.final
    assert not server_commands(out.reply)
    assert of_type(out.effects, SessionEnded)[0].outcome == "protocol_error"


def test_session_without_jobs_ends_after_package_2():
    session = make_session()
    client = Client(session)
    out = client.send(client.package1())
    assert [s.data for s in statuses(out.reply)] == [212, 200, 200]
    assert [(s.cmd_ref, s.cmd, s.msg_ref) for s in statuses(out.reply)] == [
        ("0", "SyncHdr", "1"), ("1", "Alert", "1"), ("2", "Replace", "1")]
    assert out.reply.final and out.finished
    assert of_type(out.effects, SessionEnded) == [SessionEnded("completed", "nothing left to do")]


def test_server_initiated_alert_1200_is_accepted():
    session = make_session()
    client = Client(session)
    out = client.send(client.package1(alert=sm.ALERT_SERVER_INITIATED))
    assert status_for(out.reply, "1").data == 200


@pytest.mark.parametrize("body", [
    [],  # no session alert at all
    [sm.Alert(cmd_id="1", data=1201), sm.Alert(cmd_id="3", data=1200)],  # two
])
def test_package_1_needs_exactly_one_session_alert(body):
    session = make_session(jobs=[EXAMPLE_JOB])
    client = Client(session)
    out = client.send(body + [sm.Replace(cmd_id="2", items=[
        sm.Item(source=sm.LocRef("./DevInfo/Man"), data="X")])])
    assert out.finished and out.reply.final
    assert all(s.data == 400 for s in statuses(out.reply)[1:])
    assert len(statuses(out.reply)) == len(body) + 2
    assert not server_commands(out.reply)
    assert of_type(out.effects, SessionEnded)[0].outcome == "protocol_error"
    assert not of_type(out.effects, JobStarted)


def test_status_for_every_client_command():
    session = make_session()
    client = Client(session)
    unknown = sm.UnknownCommand(cmd_id="5", name="Sync")
    exec_from_client = sm.Exec(cmd_id="6", items=[sm.Item(target=sm.LocRef("./X"))])
    ui_alert = sm.Alert(cmd_id="7", data=1100, items=[sm.Item(data="")])
    odd_alert = sm.Alert(cmd_id="8", data=1299)
    not_devinfo = sm.Replace(cmd_id="9", items=[sm.Item(source=sm.LocRef("./DMAcc/x"), data="y")])
    sequence = sm.Sequence(cmd_id="10", commands=[sm.Get(cmd_id="11", items=[
        sm.Item(target=sm.LocRef("./X"))])])
    out = client.send(client.package1(extra=[unknown, exec_from_client, ui_alert, odd_alert,
                                             not_devinfo, sequence]))
    codes = {s.cmd_ref: (s.cmd, s.data) for s in statuses(out.reply)}
    assert codes == {
        "0": ("SyncHdr", 212), "1": ("Alert", 200), "2": ("Replace", 200),
        "5": ("Sync", 406), "6": ("Exec", 405), "7": ("Alert", 406), "8": ("Alert", 406),
        "9": ("Replace", 200),  # a node other than DevInfo: kept as reported data
        "10": ("Sequence", 405), "11": ("Get", 405),
    }


def test_cmd_ids_unique_and_statuses_first():
    jobs = [JobSpec("a", [{"op": "Get", "target": "./A"}, {"op": "Delete", "target": "./B"}]),
            JobSpec("b", [{"op": "Add", "target": "./C", "data": "1"},
                          {"op": "Replace", "target": "./D", "data": "2"}], atomic=True)]
    session = make_session(jobs=jobs)
    client = Client(session)
    out = client.send(client.package1())
    names = [cmd.NAME for cmd in out.reply.body]
    assert names == ["Status", "Status", "Status", "Get", "Delete", "Atomic"]
    ids = [cmd.cmd_id for cmd in server_commands(out.reply)]
    assert ids == ["4", "5", "6", "7", "8"]  # Atomic 6 holds Add 7 and Replace 8
    assert of_type(out.effects, JobStarted) == [JobStarted("a"), JobStarted("b")]


def test_non_final_package_1_gets_next_message_reply():
    session = make_session(jobs=[EXAMPLE_JOB])
    client = Client(session)
    out = client.send(client.package1(), final=False)
    assert not out.reply.final and not out.finished
    assert [cmd.NAME for cmd in out.reply.body] == ["Status", "Status", "Status", "Alert"]
    assert out.reply.body[-1].data == sm.ALERT_NEXT_MESSAGE
    assert not of_type(out.effects, JobStarted)
    generic = sm.Alert(cmd_id="1", data=1226, items=[sm.Item(
        meta=sm.Meta(type="Reversed-Domain-Name: org.example", format="chr"), data="x")])
    out = client.send([client.hdr_answer(out.reply, 200), generic])
    assert [type(cmd).__name__ for cmd in server_commands(out.reply)] == ["Get", "Replace"]
    assert status_for(out.reply, "1").data == 200  # the Generic Alert
    assert out.reply.final


def test_second_session_alert_in_package_1_continuation_ends():
    session = make_session()
    client = Client(session)
    client.send(client.package1(), final=False)
    out = client.send([sm.Alert(cmd_id="1", data=1201)])
    assert out.finished and status_for(out.reply, "1").data == 400


def test_client_abort_fails_running_jobs():
    session = make_session(jobs=[EXAMPLE_JOB])
    client = Client(session)
    out = client.send(client.package1())
    body = client.answer(out.reply)[:2] + [sm.Alert(cmd_id="9", data=sm.ALERT_SESSION_ABORT)]
    out = client.send(body)
    assert [(s.cmd_ref, s.data) for s in statuses(out.reply)] == [("0", 200), ("9", 200)]
    assert len(out.reply.body) == 2 and out.reply.final and out.finished
    finished = of_type(out.effects, JobFinished)
    assert len(finished) == 1 and finished[0].state == "failed"
    assert finished[0].error["code"] == "session_aborted"
    assert [r["status"] for r in finished[0].results] == [200, None]  # what came with it counts
    assert out.effects[-1] == SessionEnded("aborted", "the device aborted the session (Alert 1223)")


def test_a_job_dropped_before_it_starts_is_not_sent():
    later = JobSpec("later", [{"op": "Get", "target": "./Z"}])
    session = make_session(jobs=[EXAMPLE_JOB, later])
    assert session.waiting_jobs() == ["job-1", "later"]
    assert session.drop_job("later") == DROPPED  # ended outside the session (cancelled on another node)
    assert session.drop_job("later") == NOT_HELD  # (asked again: the session has it no more)
    assert session.add_job(later) is False  # read again from a store read made before it ended
    assert session.drop_job("never-read") == NOT_HELD
    client = Client(session)
    out = client.send(client.package1())
    assert [e.job_id for e in of_type(out.effects, JobStarted)] == ["job-1"]
    assert session.waiting_jobs() == []
    assert session.drop_job("job-1") == STARTED  # its commands are out
    assert session.add_job(EXAMPLE_JOB) is False  # (one it has)
    assert session.add_job(JobSpec("new", [{"op": "Get", "target": "./N"}])) is True
    assert session.drop_job("job-1") == STARTED  # (not forgotten: still the session's)


def test_abort_from_the_dispatcher():
    session = make_session(jobs=[EXAMPLE_JOB, JobSpec("later", [{"op": "Get", "target": "./Z"}])])
    client = Client(session)
    client.send(client.package1())
    effects = session.abort("superseded", "a new session for this device")
    assert [type(e).__name__ for e in effects] == ["JobFinished", "JobFinished", "SessionEnded"]
    assert [e.job_id for e in effects[:2]] == ["job-1", "later"]  # both were in package 2
    assert effects[0].error == {"code": "superseded", "message": "a new session for this device"}
    assert effects[2] == SessionEnded("superseded", "a new session for this device")
    assert session.finished
    assert session.abort("timeout", "again") == []
    with pytest.raises(SessionError):
        client.send([])


def test_timeout_maps_to_session_timeout():
    session = make_session(jobs=[EXAMPLE_JOB])
    client = Client(session)
    client.send(client.package1())
    effects = session.abort("timeout", "no message for 300 s")
    assert effects[0].error["code"] == "session_timeout"
    assert effects[-1].outcome == "timeout"


def test_add_job_goes_in_the_next_package():
    session = make_session(jobs=[EXAMPLE_JOB])
    client = Client(session)
    out = client.send(client.package1())
    session.add_job(JobSpec("late", [{"op": "Delete", "target": "./Old"}]))
    out = client.send(client.answer(out.reply, tree={"./DevDetail/SwV": "1"}))
    assert [e.job_id for e in of_type(out.effects, JobFinished)] == ["job-1"]
    assert of_type(out.effects, JobStarted) == [JobStarted("late")]
    assert [cmd.NAME for cmd in server_commands(out.reply)] == ["Delete"]
    out = client.send(client.answer(out.reply))
    assert of_type(out.effects, JobFinished)[0].state == "done"
    assert out.finished
    with pytest.raises(SessionError):
        session.add_job(JobSpec("too-late", [{"op": "Get", "target": "./X"}]))


def test_retransmitted_message_gets_the_same_reply():
    session = make_session(jobs=[EXAMPLE_JOB])
    client = Client(session)
    msg = sm.SyncML(client.header(), client.package1(), final=True)
    body = xml.encode(msg)
    first = session.handle(xml.decode(body), body=body)
    again = session.handle(xml.decode(body), body=body)
    assert again.reply == first.reply and again.body == first.body
    assert again.effects == [] and first.effects


def test_same_msg_id_with_other_bytes_is_not_a_retransmission():
    session = make_session(jobs=[EXAMPLE_JOB])
    client = Client(session)
    msg = sm.SyncML(client.header(), client.package1(), final=True)
    body = xml.encode(msg)
    first = session.handle(xml.decode(body), body=body)
    other = body + b" "  # the same message, but not the same bytes
    again = session.handle(xml.decode(other), body=other)
    assert again.effects and again.body != first.body


def test_handle_rejects_non_models():
    session = make_session()
    with pytest.raises(SessionError):
        session.handle(b"<SyncML/>", body=b"<SyncML/>")


def test_get_inside_atomic_job_is_a_value_error():
    bad = JobSpec("bad", [{"op": "Get", "target": "./X"}], atomic=True)
    with pytest.raises(ValueError, match="Get is not allowed inside an atomic job"):
        make_session(jobs=[bad])
    session = make_session()
    with pytest.raises(ValueError):
        session.add_job(bad)


def test_needs_measure_or_encode():
    with pytest.raises(SessionError):
        make_session(measure=None, encode=None)
    session = make_session(measure=None)  # encode alone is enough
    client = Client(session)
    assert client.send(client.package1()).finished


def test_client_nonce_from_device_state_is_used():
    device = make_device(client_nonce=b"\x09" * 16)
    session = make_session(device)
    client = Client(session, nonce=b"\x09" * 16)
    out = client.send(client.package1())
    assert hdr_status(out.reply).data == 212
    assert device.client_nonce != b"\x09" * 16 and device.client_nonce == client.nonce


def test_nothing_is_dropped_silently():
    """Statuses for unknown commands and Results for nothing are reported, not fatal."""
    session = make_session(jobs=[EXAMPLE_JOB])
    client = Client(session)
    out = client.send(client.package1())
    body = client.answer(out.reply, tree={"./DevDetail/SwV": "1"}) + [
        sm.Status(cmd_id="20", msg_ref="1", cmd_ref="77", cmd="Get", data=200),
        sm.Status(cmd_id="21", msg_ref="9", cmd_ref="4", cmd="Get", data=200),
        sm.Results(cmd_id="22", msg_ref="1", cmd_ref="77", items=[sm.Item(data="x")]),
    ]
    out = client.send(body)
    reasons = [e.reason for e in of_type(out.effects, InputIgnored)]
    assert len(reasons) == 3
    assert "unknown command 1/77" in reasons[0] and "unknown command 9/4" in reasons[1]
    assert "Results for no pending Get" in reasons[2]
    assert of_type(out.effects, JobFinished)[0].state == "done"
    assert out.finished


def test_missing_cmd_id_gets_400_with_empty_cmdref():
    session = make_session()
    client = Client(session)
    out = client.send(client.package1(extra=[
        sm.Alert(cmd_id="", data=1226, items=[sm.Item(data="x")])]))
    bad = [s for s in statuses(out.reply) if s.cmd_ref == ""]
    assert len(bad) == 1 and bad[0].data == 400


def test_add_job_ignores_a_job_the_session_already_has():
    # the dispatcher may hand over a job the session read from the store when
    # it opened (create_job and a session start racing): it must run once
    session = make_session(jobs=[EXAMPLE_JOB])
    client = Client(session)
    session.add_job(EXAMPLE_JOB)
    out = client.send(client.package1())
    assert of_type(out.effects, JobStarted) == [JobStarted("job-1")]
    assert [cmd.NAME for cmd in server_commands(out.reply)] == ["Get", "Replace"]
    out = client.send(client.answer(out.reply, tree={"./DevDetail/SwV": "1"}))
    assert [e.job_id for e in of_type(out.effects, JobFinished)] == ["job-1"]
    assert out.finished
