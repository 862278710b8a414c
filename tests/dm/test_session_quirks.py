"""ServerSession against what real clients send (issue 11, engine layer).

Windows' package 1 Replace with DevInfo plus a vendor node, pretty-printed
values, device-side challenges the account cannot answer, and a client that
says it supports large objects but answers a middle chunk with 200.
"""

from pathlib import Path

import pytest

from dmgateway.auth.verify import challenge
from dmgateway.codec import syncml as sm
from dmgateway.codec import wbxml, xml
from dmgateway.dm.effects import (
    DevInfoReceived,
    DeviceChallenged,
    InputIgnored,
    JobFinished,
    JobSpec,
)

from .client import Client, hdr_status, make_device, make_session, server_commands, status_for

FIXTURES = Path(__file__).parent.parent / "fixtures" / "dm"


def of_type(effects, cls):
    return [effect for effect in effects if isinstance(effect, cls)]


def fixture_body(name):
    return xml.decode((FIXTURES / name).read_bytes()).body


# -- 5, 6. package 1 Replace with DevInfo and other nodes, values trimmed ----------


@pytest.mark.parametrize("codec", [xml, wbxml], ids=["xml", "wbxml"])
def test_devinfo_plus_a_vendor_node_is_stored_and_answered_200(codec):
    session = make_session(encode=codec.encode, measure=lambda m: len(codec.encode(m)))
    client = Client(session, codec=codec)
    out = client.send(fixture_body("33-pkg1-devinfo-and-vendor-node.xml"))
    assert status_for(out.reply, "3").data == 200
    [received] = of_type(out.effects, DevInfoReceived)
    assert received.values == {"DevId": "IMEI:490154203237518", "Man": "ExampleCorp",
                                "Mod": "EX-100", "DmV": "1.3", "Lang": "en-US"}
    assert received.reported == {"./Vendor/MSFT/DMClient/HWDevID": "00001125D3B6A2F4C1E8"}


def test_windows_crlf_pretty_printed_devinfo_is_trimmed():
    session = make_session()
    client = Client(session)
    replace = sm.Replace(cmd_id="2", items=[
        sm.Item(source=sm.LocRef("./DevInfo/DevId"), data="\r\n   000000011234567\r\n  "),
        sm.Item(source=sm.LocRef("./Vendor/MSFT/DMClient/HWDevID"), data="\r\n\tABC\r\n"),
    ])
    out = client.send([sm.Alert(cmd_id="1", data=1201), replace])
    [received] = of_type(out.effects, DevInfoReceived)
    assert received.values == {"DevId": "000000011234567"}
    assert received.reported == {"./Vendor/MSFT/DMClient/HWDevID": "ABC"}


def test_reported_nodes_are_bounded():
    session = make_session()
    client = Client(session)
    items = [sm.Item(source=sm.LocRef("./Vendor/N%02d" % n), data="x" * 5000) for n in range(40)]
    out = client.send([sm.Alert(cmd_id="1", data=1201), sm.Replace(cmd_id="2", items=items)])
    [received] = of_type(out.effects, DevInfoReceived)
    assert len(received.reported) == 32 and all(len(v) == 4096 for v in received.reported.values())
    assert any("reported nodes" in e.reason for e in of_type(out.effects, InputIgnored))


def test_replace_item_naming_no_node_is_incomplete():
    session = make_session()
    client = Client(session)
    out = client.send([sm.Alert(cmd_id="1", data=1201),
                       sm.Replace(cmd_id="2", items=[sm.Item(data="orphan")])])
    assert status_for(out.reply, "2").data == 412


@pytest.mark.parametrize("fmt, expected", [
    ("chr", "4.2.1"), (None, "4.2.1"), ("int", "4.2.1"), ("b64", "\r\n  4.2.1\r\n ")])
def test_results_of_format_chr_are_trimmed(fmt, expected):
    session = make_session(jobs=[JobSpec("j", [{"op": "Get", "target": "./DevDetail/SwV"}])])
    client = Client(session)
    out = client.send(client.package1())
    body = client.answer(out.reply, tree={"./DevDetail/SwV": "\r\n  4.2.1\r\n "})
    results = [cmd for cmd in body if isinstance(cmd, sm.Results)][0]
    results.items[0].meta = sm.Meta(format=fmt) if fmt else None
    out = client.send(body)
    [finished] = of_type(out.effects, JobFinished)
    assert finished.results[0]["data"] == expected


# -- 9. device-side challenges ---------------------------------------------------


def _answer_with_chal(client, reply, chal, code=212):
    body = client.answer(reply, hdr_code=code)
    body[0].chal = chal
    return body


@pytest.mark.parametrize("server_scheme, chal_scheme", [("none", "md5"), ("md5", "hmac"),
                                                         ("basic", "md5")])
def test_a_challenge_we_cannot_answer_is_reported_once(server_scheme, chal_scheme):
    job = JobSpec("j", [{"op": "Replace", "target": "./Vendor/K%d" % n, "data": "v"} for n in range(3)])
    session = make_session(make_device(server_scheme=server_scheme), [job], default_max_msg_size=None)
    client = Client(session, max_msg_size=1200)
    out = client.send(client.package1())
    seen = []
    for _ in range(10):
        if out.finished:
            break
        chal = challenge(chal_scheme, b"device-nonce-01")
        out = client.send(_answer_with_chal(client, out.reply, chal, code=212 if server_scheme != "none" else 200),
                          final=out.reply.final)
        seen.extend(of_type(out.effects, DeviceChallenged))
    assert seen == [DeviceChallenged(chal_scheme, 212 if server_scheme != "none" else 200)]
    assert session.device.server_nonce != b"device-nonce-01"  # not taken for another scheme


def test_a_challenge_for_our_own_scheme_is_not_reported():
    session = make_session(jobs=[JobSpec("j", [{"op": "Get", "target": "./DevDetail/SwV"}])])
    client = Client(session)
    out = client.send(client.package1())
    out = client.send(_answer_with_chal(client, out.reply, challenge("md5", b"next-nonce-0001")))
    assert not of_type(out.effects, DeviceChallenged)
    assert session.device.server_nonce == b"next-nonce-0001"


def test_fixture_device_challenge_md5_without_server_credentials():
    session = make_session(make_device(server_scheme="none"),
                           [JobSpec("j", [{"op": "Get", "target": "./DevDetail/SwV"}])])
    client = Client(session)
    out = client.send(client.package1())
    [get] = server_commands(out.reply)
    body = fixture_body("35-device-challenge-md5.xml")
    body[0].msg_ref, body[1].msg_ref, body[2].msg_ref = (out.reply.hdr.msg_id,) * 3
    body[1].cmd_ref = body[2].cmd_ref = get.cmd_id
    out = client.send(body)
    assert of_type(out.effects, DeviceChallenged) == [DeviceChallenged("md5", 200)]
    [finished] = of_type(out.effects, JobFinished)
    assert finished.state == "done" and finished.results[0]["data"] == "4.2.1"
    assert hdr_status(out.reply).data == 200


# -- 8. a client that answers a middle chunk with 200 -------------------------------


def _run_answering_chunks_with(code, commands):
    session = make_session(jobs=[JobSpec("j", commands)])
    client = Client(session, max_msg_size=1500)
    out = client.send(client.package1())
    outcomes, chunks = [out], []
    for _ in range(40):
        if out.finished:
            break
        reply = out.reply
        codes = {}
        for cmd in server_commands(reply):
            if cmd.NAME == "Replace" and cmd.items[0].target.loc_uri == "./Vendor/Big":
                chunks.append(cmd)
                if cmd.items[-1].more_data:
                    codes[cmd.cmd_id] = code
        extra = [] if reply.final else [sm.Alert(data=sm.ALERT_NEXT_MESSAGE)]
        out = client.send(client.answer(reply, codes=codes, extra=extra), final=reply.final)
        outcomes.append(out)
    assert out.finished
    return chunks, [e for o in outcomes for e in o.effects]


def test_middle_chunk_answered_200_stops_the_object_and_fails_the_command():
    commands = [{"op": "Replace", "target": "./Vendor/Big", "data": "b" * 5000},
                {"op": "Replace", "target": "./Vendor/Small", "data": "s"}]
    chunks, effects = _run_answering_chunks_with(200, commands)
    assert len(chunks) == 1 and chunks[0].items[-1].more_data  # the rest never went out
    [finished] = of_type(effects, JobFinished)
    assert finished.state == "failed"
    assert finished.error["code"] == "large_object_unsupported"
    assert "device does not support large objects" in finished.error["message"]
    assert [r["status"] for r in finished.results] == [200, 200]


def test_middle_chunk_refused_is_the_final_status():
    chunks, effects = _run_answering_chunks_with(
        418, [{"op": "Replace", "target": "./Vendor/Big", "data": "b" * 5000}])
    assert len(chunks) == 1
    [finished] = of_type(effects, JobFinished)
    assert finished.state == "failed" and finished.results[0]["status"] == 418


def test_chunks_answered_213_complete():
    chunks, effects = _run_answering_chunks_with(
        213, [{"op": "Replace", "target": "./Vendor/Big", "data": "b" * 5000}])
    assert len(chunks) >= 4 and "".join(c.items[0].data for c in chunks) == "b" * 5000
    [finished] = of_type(effects, JobFinished)
    assert finished.state == "done"


# -- 10. Sequence from the API -------------------------------------------------------


def _sequence_job():
    return JobSpec("seq", [
        {"op": "Get", "target": "./DevInfo/Man"},
        {"op": "Sequence", "commands": [
            {"op": "Replace", "target": "./Vendor/A", "data": "1"},
            {"op": "Get", "target": "./Vendor/A"},
            {"op": "Delete", "target": "./Vendor/B"},
        ]},
    ])


def test_sequence_goes_out_as_one_sequence_with_a_result_per_inner_command():
    session = make_session(jobs=[_sequence_job()])
    client = Client(session)
    out = client.send(client.package1())
    sequences = [cmd for cmd in out.reply.body if isinstance(cmd, sm.Sequence)]
    assert len(sequences) == 1
    assert [c.NAME for c in sequences[0].commands] == ["Replace", "Get", "Delete"]
    out = client.send(client.answer(out.reply, tree={"./DevInfo/Man": "ACME", "./Vendor/A": "1"},
                                    codes={"./Vendor/B": 404}))
    [finished] = of_type(out.effects, JobFinished)
    assert [(r["op"], r["target"], r["status"], r["data"]) for r in finished.results] == [
        ("Get", "./DevInfo/Man", 200, "ACME"),
        ("Replace", "./Vendor/A", 200, None),
        ("Get", "./Vendor/A", 200, "1"),
        ("Delete", "./Vendor/B", 404, None),
    ]
    assert finished.state == "failed" and "Delete ./Vendor/B" in finished.error["message"]


def test_sequence_answered_only_as_a_whole():
    session = make_session(jobs=[JobSpec("seq", [{"op": "Sequence", "commands": [
        {"op": "Replace", "target": "./Vendor/A", "data": "1"},
        {"op": "Delete", "target": "./Vendor/B"}]}])])
    client = Client(session)
    out = client.send(client.package1())
    [sequence] = [cmd for cmd in out.reply.body if isinstance(cmd, sm.Sequence)]
    body = [client.hdr_answer(out.reply), sm.Status(
        cmd_id="2", msg_ref=out.reply.hdr.msg_id, cmd_ref=sequence.cmd_id, cmd="Sequence", data=500)]
    out = client.send(body)
    [finished] = of_type(out.effects, JobFinished)
    assert [r["status"] for r in finished.results] == [500, 500]
    assert finished.state == "failed" and "Sequence" in finished.error["message"]


def test_sequence_in_an_atomic_job_is_refused():
    with pytest.raises(ValueError):
        make_session(jobs=[JobSpec("a", [{"op": "Sequence", "commands": [
            {"op": "Delete", "target": "./X"}]}], atomic=True)])


# -- 11. [auth] nonce_size and accept_hex_mac reach the session ---------------------


@pytest.mark.parametrize("size", [8, 16, 24, 64])
def test_nonce_size_is_the_size_of_the_client_nonces_issued(size):
    from dmgateway.auth.nonce import decode_nonce

    session = make_session(nonce_size=size)
    out = Client(session).send(Client(session).package1())
    assert len(decode_nonce(hdr_status(out.reply).chal.meta.next_nonce)) == size


@pytest.mark.parametrize("accept, code", [(True, 200), (False, 401)])
def test_accept_hex_mac_takes_the_hex_form_of_an_hmac(accept, code):
    import base64

    from dmgateway.auth.credentials import hmac_mac, user_hash
    from tests.spec_values import CLIENT_NAME, CLIENT_NONCE, CLIENT_SECRET

    session = make_session(make_device(client_scheme="hmac", server_scheme="hmac"),
                           accept_hex_mac=accept)
    client = Client(session, scheme="hmac")
    msg = sm.SyncML(hdr=client.header(), body=client.package1(), final=True)
    data = xml.encode(msg)
    mac = hmac_mac(user_hash(CLIENT_NAME, CLIENT_SECRET), CLIENT_NONCE, data)
    hex_mac = base64.b64encode(base64.b64decode(mac).hex().encode()).decode()
    header = 'algorithm=MD5, username="%s", mac=%s' % (CLIENT_NAME, hex_mac)
    out = session.handle(xml.decode(data), body=data, hmac_header=header)
    assert hdr_status(out.reply).data == code


def test_a_challenge_from_an_unauthenticated_message_is_not_reported():
    session = make_session(make_device(server_scheme="none"))
    client = Client(session)
    chal_status = sm.Status(cmd_id="9", msg_ref="1", cmd_ref="0", cmd="SyncHdr", data=200,
                            chal=challenge("md5", b"nonce-of-a-stranger"))
    wrong = sm.Cred(sm.Meta(type="syncml:auth-md5", format="b64"), "d3JvbmcgZGlnZXN0IQ==")
    out = client.send(client.package1(extra=[chal_status]), cred=wrong)
    assert hdr_status(out.reply).data == 401
    assert not of_type(out.effects, DeviceChallenged)


def test_generic_alert_with_type_under_item_keeps_its_meta_type():
    from dmgateway.dm.effects import EventRaised

    session = make_session()
    client = Client(session)
    out = client.send(fixture_body("32-generic-alert-type-under-item.xml"))
    [event] = of_type(out.effects, EventRaised)
    assert (event.type, event.payload["meta_type"], event.payload["data"]) == (
        "generic_alert", "com.microsoft.mdm.reboot.status", "Pending")
    assert status_for(out.reply, "2").data == 200
