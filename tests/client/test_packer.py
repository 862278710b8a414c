"""Packing answers under the server's MaxMsgSize: multi-message packages and outgoing large objects."""

import base64

import pytest

from dmgateway.client.packer import MessagePacker
from dmgateway.codec import WBXML, XML, decode_message, encode_message
from dmgateway.codec import syncml as sm

from .support import (
    XML_HEADERS,
    begin,
    command_xml,
    decode,
    hdr_status_xml,
    item_xml,
    limits,
    make_session,
    server_message,
    status_xml,
    statuses,
)


def next_message(session, msg_id, extra=""):
    """The server's "next message" response: Status for the SyncHdr + Alert 1222, no Final."""
    last = session.transcript[-1][1].hdr.msg_id
    body = hdr_status_xml(last, 200) + extra + "<Alert><CmdID>9</CmdID><Data>1222</Data></Alert>"
    return session.receive(server_message(body, msg_id, final=False), XML_HEADERS)


def drain(session, reply, limit, ack=""):
    """Fetch every message of the client's package; returns their bodies and models."""
    messages = []
    msg_id = 2
    while True:
        assert len(reply.body) <= limit, (len(reply.body), limit)
        msg, _ = decode_message(reply.body)
        messages.append(msg)
        if msg.final:
            return messages
        assert not [a for a in msg.commands(sm.Alert) if a.data == 1222]
        extra = ack(msg) if callable(ack) else ack
        reply = next_message(session, msg_id, extra)
        msg_id += 1
        assert msg_id < 200, "no end in sight"


# -- many small answers --------------------------------------------------------------

def test_many_results_are_split_over_messages():
    session = make_session()
    for n in range(40):
        session.tree.set("./Vendor/Item%02d" % (n,), "value of item %d" % (n,) * 3)
    gets = "".join(command_xml("Get", 4 + n, item_xml("./Vendor/Item%02d" % (n,)))
                   for n in range(40))
    limit = 1500
    reply = begin(session, gets, meta=limits(max_msg_size=limit))
    messages = drain(session, reply, limit)
    assert len(messages) > 3
    seen_status, seen_results = [], []
    for index, msg in enumerate(messages):
        assert msg.body[0].cmd == "SyncHdr"
        assert [c.cmd_id for c in msg.body] == [str(n) for n in range(1, len(msg.body) + 1)]
        for cmd in msg.body[1:]:
            if isinstance(cmd, sm.Status) and cmd.cmd == "Get":
                seen_status.append((cmd.cmd_ref, index))
            elif isinstance(cmd, sm.Results):
                seen_results.append((cmd.cmd_ref, index, cmd.items[0].data))
        if index:  # every later message answers the server's Alert 1222
            assert ("Alert", "9", 200) in statuses(msg)
    refs = [str(4 + n) for n in range(40)]
    assert [ref for ref, _ in seen_status] == refs
    assert [ref for ref, _, _ in seen_results] == refs
    status_at = dict(seen_status)
    assert all(status_at[ref] <= index for ref, index, _ in seen_results)
    assert seen_results[7][2] == "value of item 7" * 3
    assert session.receive(server_message(hdr_status_xml(messages[-1].hdr.msg_id, 200), 50),
                           XML_HEADERS) is None
    assert session.outcome == "completed"


def test_non_final_server_message_gets_alert_1222():
    session = make_session()
    reply = begin(session, command_xml("Get", 4, item_xml("./DevInfo/Man")), final=False)
    msg = decode(reply)
    assert not msg.final
    assert [c.NAME for c in msg.body] == ["Status", "Status", "Results", "Alert"]
    assert msg.body[-1].data == 1222
    body = hdr_status_xml(2, 200) + command_xml("Get", 2, item_xml("./DevInfo/Mod"))
    msg = decode(session.receive(server_message(body, 2), XML_HEADERS))
    assert msg.final and not msg.commands(sm.Alert)
    assert msg.commands(sm.Results)[0].items[0].data == "EX-100"


def test_max_msg_size_too_small_fails_the_session():
    session = make_session()
    reply = begin(session, command_xml("Get", 4, item_xml("./DevInfo/Man")),
                  meta=limits(max_msg_size=200))
    assert reply is None and session.outcome == "failed"
    assert "MaxMsgSize" in session.error


# -- large Results ----------------------------------------------------------------------

BIG = "".join("line %04d of the log\n" % (n,) for n in range(300))  # 6300 characters


def large_get(limit, encoding=XML, value=BIG, max_obj_size=None):
    session = make_session(encoding=encoding)
    session.tree.set("./Vendor/Log", value, "bin" if isinstance(value, bytes) else "chr")
    reply = begin(session, command_xml("Get", 4, item_xml("./Vendor/Log")),
                  meta=limits(max_msg_size=limit, max_obj_size=max_obj_size))
    return session, reply


def chunks_of(messages):
    parts = []
    for msg in messages:
        for res in msg.commands(sm.Results):
            assert res.cmd_ref == "4"
            parts.extend(res.items)
    return parts


@pytest.mark.parametrize("ack", ["213", "bare"])
def test_large_results_go_out_in_chunks(ack):
    limit = 1200

    def acknowledge(msg):
        if ack == "bare":
            return ""
        res = msg.commands(sm.Results)[-1]
        return status_xml(8, msg.hdr.msg_id, res.cmd_id, "Results", 213)

    session, reply = large_get(limit)
    messages = drain(session, reply, limit, acknowledge)
    parts = chunks_of(messages)
    assert len(parts) >= 6
    assert all(p.more_data for p in parts[:-1]) and not parts[-1].more_data
    assert parts[0].meta.size == len(BIG.encode())
    assert all(p.meta.size is None for p in parts[1:])
    assert all((p.meta.format, p.meta.type) == ("chr", "text/plain") for p in parts)
    assert all(p.source.loc_uri == "./Vendor/Log" for p in parts)
    assert "".join(p.data for p in parts) == BIG
    assert statuses(messages[0])[1] == ("Get", "4", 200)
    assert session.counters["chunks_sent"] == len(parts) - 1


def test_large_binary_results_over_xml_are_base64_chunks():
    value = bytes(range(256)) * 12
    session, reply = large_get(1000, value=value)
    parts = chunks_of(drain(session, reply, 1000))
    text = "".join(p.data for p in parts)
    assert parts[0].meta.size == len(text) and parts[0].meta.format == "b64"
    assert base64.b64decode(text) == value


def test_large_binary_results_over_wbxml_are_opaque_chunks():
    value = bytes(range(256)) * 12
    limit = 700
    session, reply = large_get(limit, encoding=WBXML, value=value)
    messages = []
    msg_id = 2
    while True:
        assert len(reply.body) <= limit
        msg, encoding = decode_message(reply.body)
        assert encoding == WBXML
        messages.append(msg)
        if msg.final:
            break
        hdr = sm.SyncHdr(session_id="1A2", msg_id=str(msg_id), target=sm.LocRef("dev"),
                         source=sm.LocRef("srv"))
        answer = sm.SyncML(hdr=hdr, body=[
            sm.Status(cmd_id="1", msg_ref=msg.hdr.msg_id, cmd_ref="0", cmd="SyncHdr", data=200),
            sm.Alert(cmd_id="2", data=1222)])
        reply = session.receive(encode_message(answer, WBXML), {})
        msg_id += 1
    parts = chunks_of(messages)
    assert all(isinstance(p.data, bytes) and p.meta.format == "bin" for p in parts)
    assert parts[0].meta.size == len(value)
    assert b"".join(p.data for p in parts) == value


def test_results_over_the_server_max_obj_size_are_refused():
    session, reply = large_get(100000, max_obj_size=1000)
    msg = decode(reply)
    assert statuses(msg)[1] == ("Get", "4", 413)
    assert not msg.commands(sm.Results) and msg.final


def test_server_refusing_a_chunk_stops_the_object():
    session, reply = large_get(1200)
    msg = decode(reply)
    res = msg.commands(sm.Results)[0]
    assert res.items[0].more_data
    refusal = status_xml(8, msg.hdr.msg_id, res.cmd_id, "Results", 413)
    reply = next_message(session, 2, refusal)
    msg = decode(reply)
    assert msg.final and not msg.commands(sm.Results)
    assert "refused our Results" in session.log[-1]


# -- the MessagePacker on its own ---------------------------------------------------

def measure(msg):
    return len(encode_message(msg, XML))


def test_packer_without_limit_takes_everything():
    box = MessagePacker(measure)
    box.extend([sm.Status(msg_ref="1", cmd_ref=str(n), cmd="Get", data=200) for n in range(50)])
    hdr = sm.SyncHdr(session_id="1", msg_id="2", target=sm.LocRef("s"), source=sm.LocRef("d"))
    body, progressed = box.fill(hdr, [], None)
    assert progressed and len(body) == 50 and not box
    assert [c.cmd_id for c in body] == [str(n) for n in range(1, 51)]


def test_packer_reserves_room_for_the_trailer():
    box = MessagePacker(measure)
    statuses_ = [sm.Status(msg_ref="1", cmd_ref=str(n), cmd="Get", data=200) for n in range(30)]
    box.extend(statuses_)
    hdr = sm.SyncHdr(session_id="1", msg_id="2", target=sm.LocRef("s"), source=sm.LocRef("d"))
    trailer = [sm.Alert(data=1222)]
    body, _ = box.fill(hdr, [], 800, trailer)
    assert measure(sm.SyncML(hdr=hdr, body=body, final=True)) <= 800
    assert body[-1].data == 1222 and body[-1].cmd_id == str(len(body))
    assert len(box) == 30 - (len(body) - 1)
    assert statuses_[0].cmd_id == ""  # queued commands are never renumbered in place


def test_packer_sends_a_results_whole_in_the_next_message_rather_than_chunking():
    box = MessagePacker(measure)
    hdr = sm.SyncHdr(session_id="1", msg_id="2", target=sm.LocRef("s"), source=sm.LocRef("d"))
    results = sm.Results(msg_ref="1", cmd_ref="9", items=[
        sm.Item(source=sm.LocRef("./Vendor/Mid"), meta=sm.Meta(format="chr"), data="m" * 1000)])
    box.extend([sm.Status(msg_ref="1", cmd_ref=str(n), cmd="Get", data=200) for n in range(8)])
    box.extend([results])
    first, _ = box.fill(hdr, [], 1500)
    assert [c.NAME for c in first] == ["Status"] * 8
    second, _ = box.fill(hdr, [], 1500)
    assert [c.NAME for c in second] == ["Results"] and not second[0].items[0].more_data
    assert not box


def test_packer_chunks_only_what_cannot_fit_alone():
    box = MessagePacker(measure)
    hdr = sm.SyncHdr(session_id="1", msg_id="2", target=sm.LocRef("s"), source=sm.LocRef("d"))
    small = sm.Item(source=sm.LocRef("./A"), data="a" * 10)
    big = sm.Item(source=sm.LocRef("./B"), meta=sm.Meta(format="chr"), data="b" * 2000)
    box.extend([sm.Results(msg_ref="1", cmd_ref="9", items=[small, big])])
    parts = []
    while box:
        body, progressed = box.fill(hdr, [], 700)
        assert progressed and measure(sm.SyncML(hdr=hdr, body=body, final=True)) <= 700
        parts.extend(body[0].items)
    assert parts[0] == small
    assert parts[1].meta.size == 2000 and parts[1].more_data
    assert "".join(p.data for p in parts[1:]) == "b" * 2000
    assert not parts[-1].more_data and all(p.more_data for p in parts[1:-1])


def test_packer_reports_no_progress():
    box = MessagePacker(measure)
    hdr = sm.SyncHdr(session_id="1", msg_id="2", target=sm.LocRef("s"), source=sm.LocRef("d"))
    box.extend([sm.Status(msg_ref="1", cmd_ref="4", cmd="Get", data=200)])
    body, progressed = box.fill(hdr, [], 100)
    assert body == [] and not progressed and len(box) == 1
    box.drop_results("1", "4")
    assert len(box) == 1
    box.clear()
    assert not box
