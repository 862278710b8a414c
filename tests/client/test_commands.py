"""Server commands run by the client: every command, Atomic, Sequence, UI alerts, large objects.

Each test starts a session, answers package 1 as the server and puts
hand-written commands in the server's package 2.
"""

import base64

from dmgateway.client import ui
from dmgateway.codec import WBXML, decode_message, encode_message
from dmgateway.codec import syncml as sm

from .support import (
    SERVER_ID,
    XML_HEADERS,
    begin,
    command_xml,
    decode,
    follow,
    hdr_status_xml,
    item_xml,
    make_account,
    make_session,
    md5_cred_xml,
    open_acl,
    results,
    server_message,
    status_for,
    statuses,
)


def run(commands, session=None, **options):
    """``(session, reply model)`` after package 2 carrying ``commands``."""
    session = session or make_session(**options)
    reply = begin(session, commands)
    return session, decode(reply)


def codes(msg):
    """``{CmdRef: code}`` of the command Statuses (SyncHdr left out)."""
    return {ref: code for cmd, ref, code in statuses(msg) if cmd != "SyncHdr"}


# -- Get ---------------------------------------------------------------------------

def test_get_leaf_results_follow_the_status():
    _, msg = run(command_xml("Get", 4, item_xml("./DevDetail/SwV"), item_xml("./DevInfo/Mod")))
    assert [c.NAME for c in msg.body] == ["Status", "Status", "Results"]
    status = status_for(msg, "4")
    assert status.data == 200 and status.target_refs == ["./DevDetail/SwV", "./DevInfo/Mod"]
    (res,) = results(msg)
    assert (res.msg_ref, res.cmd_ref) == ("1", "4")
    assert [(i.source.loc_uri, i.meta.format, i.meta.type, i.data) for i in res.items] == [
        ("./DevDetail/SwV", "chr", "text/plain", "4.2.1"),
        ("./DevInfo/Mod", "chr", "text/plain", "EX-100"),
    ]


def test_get_interior_lists_children():
    _, msg = run(command_xml("Get", 4, item_xml("./DevDetail/URI")) +
                 command_xml("Get", 5, item_xml("./DMAcc/example/AppAddr/1")))
    first, second = results(msg)
    assert first.items[0].meta.format == "node"
    assert first.items[0].data == "MaxDepth/MaxTotLen/MaxSegLen"
    assert second.items[0].data == "Addr/AddrType"


def test_get_empty_interior_gives_empty_data():
    session = make_session()
    session.tree.add_interior("./Vendor")
    _, msg = run(command_xml("Get", 4, item_xml("./Vendor")), session)
    item = results(msg)[0].items[0]
    assert item.data == "" and item.meta.format == "node"


def test_get_failures():
    session = make_session()
    session.tree.set("./Private", "x")
    session.tree.restrict("./Private", ("Get",))
    _, msg = run(
        command_xml("Get", 4, item_xml("./Nope"))
        + command_xml("Get", 5, item_xml("./Inbox"))
        + command_xml("Get", 6, item_xml("./DMAcc/example/AppAuth/1/AAuthSecret"))
        + command_xml("Get", 7, item_xml("./DevInfo//Man"))
        + command_xml("Get", 8, item_xml("./Private"))
        + command_xml("Get", 9, item_xml("./DevInfo?list=Bogus"))
        + command_xml("Get", 10, "<Item/>")
        + command_xml("Get", 11),
        session)
    assert codes(msg) == {"4": 404, "5": 405, "6": 405, "7": 414, "8": 425, "9": 406,
                          "10": 400, "11": 412}
    assert results(msg) == []


def test_get_properties():
    _, msg = run(
        command_xml("Get", 4, item_xml("./DMAcc/example?prop=ACL"))
        + command_xml("Get", 5, item_xml("./DevDetail/LrgObj?prop=Format"))
        + command_xml("Get", 6, item_xml("./DevInfo?prop=Type"))
        + command_xml("Get", 7, item_xml("./DevInfo/Man?prop=Size"))
        + command_xml("Get", 8, item_xml("./DMAcc?prop=ACL"))
        + command_xml("Get", 9, item_xml("./DevInfo?prop=Bogus")))
    assert codes(msg)["9"] == 406
    values = {r.cmd_ref: r.items[0].data for r in results(msg)}
    assert values == {
        "4": "Get=%s&Replace=%s&Delete=%s" % (SERVER_ID, SERVER_ID, SERVER_ID),
        "5": "bool",
        "6": "urn:oma:mo:oma-dm-devinfo:1.0",
        "7": "11",  # ExampleCorp
        "8": "",  # no ACL of its own: empty, not the inherited one
    }
    assert results(msg)[0].items[0].source.loc_uri == "./DMAcc/example?prop=ACL"


def test_get_list_struct():
    session = make_session()
    tree = session.tree
    for uri in ("./A/C", "./A/D/E"):
        tree.add_interior(uri)
    tree.add("./A/D/F", "<x/>", "xml")
    tree.add("./A/D/E/G", "g")
    tree.add("./A/D/E/H", b"\xff\xd8", "bin", "image/jpeg")
    _, msg = run(command_xml("Get", 4, item_xml("./A?list=Struct"))
                 + command_xml("Get", 5, item_xml("./A/D/E?list=StructData")), session)
    struct, data = results(msg)
    assert [(i.source.loc_uri, i.meta.format, i.data) for i in struct.items] == [
        # breadth-first, as in the spec's example (the real tree's order)
        ("./A", "node", None), ("./A/C", "node", None), ("./A/D", "node", None),
        ("./A/D/E", "node", None), ("./A/D/F", "xml", None), ("./A/D/E/G", "chr", None),
        ("./A/D/E/H", "b64", None),
    ]
    assert [(i.source.loc_uri, i.data) for i in data.items] == [
        ("./A/D/E", None), ("./A/D/E/G", "g"), ("./A/D/E/H", base64.b64encode(b"\xff\xd8").decode()),
    ]
    assert data.items[2].meta.type == "image/jpeg"


# -- Add / Replace / Delete / Copy / Exec --------------------------------------------

def test_add_leaf_interior_and_binary():
    session, msg = run(
        command_xml("Add", 4, item_xml("./Vendor/App/Setting", "on"))
        + command_xml("Add", 5, item_xml("./Vendor/Tree", fmt="node", mtype="com.example/1.0/T"))
        + command_xml("Add", 6, item_xml("./Vendor/Blob", base64.b64encode(b"\x00\x01\xfe").decode(),
                                         fmt="b64", mtype="application/octet-stream"))
        + command_xml("Add", 7, item_xml("./Vendor/Count", "42", fmt="int")))
    assert codes(msg) == {"4": 200, "5": 200, "6": 200, "7": 200}
    tree = session.tree
    assert tree.read("./Vendor/App/Setting").value == "on"
    assert tree.read("./Vendor/App").format == "node"  # created implicitly
    assert tree.read("./Vendor/Tree")[1:] == ([], "node", "com.example/1.0/T")
    assert tree.read("./Vendor/Blob")[1:] == (b"\x00\x01\xfe", "bin", "application/octet-stream")
    assert tree.read("./Vendor/Count")[1:3] == ("42", "int")
    assert tree.get("./Vendor/Blob?prop=Format").value == "bin"
    assert tree.get("./Vendor/Blob?prop=Size").value == "3"


def test_binary_value_read_back_over_xml_and_wbxml():
    for encoding, fmt, data in (("xml", "b64", base64.b64encode(b"\x00\xff").decode()),
                                (WBXML, "bin", b"\x00\xff")):
        session = make_session(encoding=encoding)
        session.tree.set("./Vendor/Blob", b"\x00\xff", "bin")
        reply = begin(session, command_xml("Get", 4, item_xml("./Vendor/Blob")))
        msg, _ = decode_message(reply.body)
        item = results(msg)[0].items[0]
        assert (item.meta.format, item.data) == (fmt, data)


def test_add_failures():
    session = make_session()
    session.tree.read_only("./DMAcc/example")
    _, msg = run(
        command_xml("Add", 4, item_xml("./DevInfo"))
        + command_xml("Add", 5, item_xml("./DevInfo/Man/Sub", "x"))
        + command_xml("Add", 6, item_xml("./DMAcc/example/New", "x"))
        + command_xml("Add", 7, item_xml("./DevInfo/Ext2", "x"))
        + command_xml("Add", 8, item_xml("./Bad/", "x"))
        + command_xml("Add", 9, item_xml("./Vendor/T", "&lt;NotTNDS/&gt;", fmt="xml",
                                         mtype="application/vnd.syncml.dmtnds+xml"))
        + command_xml("Add", 10, item_xml("./Vendor/B", "not base64!", fmt="b64")),
        session)
    # the real tree: ./DevInfo/Ext2 is denied by the ACL Get=* (425; no DDF there to say 405);
    # a TNDS that is not a MgmtTree is 400 (TNDS is supported now)
    assert codes(msg) == {"4": 418, "5": 405, "6": 425, "7": 425, "8": 414, "9": 400, "10": 400}
    assert not session.tree.exists("./Vendor")


def test_replace_delete_copy():
    session = make_session()
    open_acl(session.tree)
    session.tree.set("./Vendor/A", "a")
    session.tree.set("./Vendor/Sub/B", "b")
    _, msg = run(
        command_xml("Replace", 4, item_xml("./Vendor/A", "A2", mtype="text/x-a"))
        + command_xml("Replace", 5, item_xml("./Vendor/Missing", "x"))
        + command_xml("Replace", 6, item_xml("./DevInfo/Man", "x"))
        + command_xml("Replace", 7, item_xml("./Vendor?prop=Title", "Vendor stuff"))
        + command_xml("Copy", 8, item_xml("./Vendor/C", source="./Vendor/A"))
        + command_xml("Copy", 9, item_xml("./Vendor/D", source="./Vendor/Nope"))
        + command_xml("Delete", 10, item_xml("./Vendor/Sub"))
        + command_xml("Delete", 11, item_xml("."))
        + command_xml("Delete", 12, item_xml("./Vendor/Sub"))
        + command_xml("Delete", 13, item_xml("./DevDetail")),
        session)
    assert codes(msg) == {"4": 200, "5": 404, "6": 405, "7": 200, "8": 200, "9": 404,
                          "10": 200, "11": 405, "12": 404, "13": 405}
    tree = session.tree
    assert tree.read("./Vendor/A")[1:] == ("A2", "chr", "text/x-a")
    assert tree.read("./Vendor/C")[1:] == ("A2", "chr", "text/x-a")
    assert tree.get("./Vendor?prop=Title").value == "Vendor stuff"
    assert not tree.exists("./Vendor/Sub")
    assert status_for(msg, "8").source_refs == ["./Vendor/A"]


def test_exec_hooks():
    session = make_session()
    calls = []

    def reboot(uri, data, correlator):
        calls.append((uri, data, correlator))

    open_acl(session.tree)
    session.tree.register_exec("./Vendor/Reboot", reboot)
    session.tree.register_exec("./FUMO/fw1/Update", lambda uri, data, corr: 202)
    session.tree.register_exec("./Vendor/Broken", lambda uri, data, corr: 1 / 0)
    _, msg = run(
        command_xml("Exec", 4, item_xml("./Vendor/Reboot", "now"), extra="")
        + "<Exec><CmdID>5</CmdID><Correlator>fw-77</Correlator>"
        + item_xml("./FUMO/fw1/Update") + "</Exec>"
        + command_xml("Exec", 6, item_xml("./DevInfo/Man"))
        + command_xml("Exec", 7, item_xml("./Vendor/None"))
        + command_xml("Exec", 8, item_xml("./Vendor/Broken")),
        session)
    assert codes(msg) == {"4": 200, "5": 202, "6": 405, "7": 404, "8": 500}
    assert calls == [("./Vendor/Reboot", "now", None)]


def test_items_with_different_outcomes_get_a_status_each():
    session, msg = run(command_xml("Add", 4, item_xml("./Vendor/X", "1"), item_xml("./DevInfo", "2")))
    found = [s for s in msg.commands(sm.Status) if s.cmd_ref == "4"]
    assert [(s.target_refs, s.data) for s in found] == [(["./Vendor/X"], 200), (["./DevInfo"], 418)]


def test_unknown_command_gets_400():
    _, msg = run("<Sync><CmdID>4</CmdID></Sync>" + command_xml("Get", 5, item_xml("./DevInfo/Man")))
    assert statuses(msg)[-2:] == [("Sync", "4", 400), ("Get", "5", 200)]


# -- Atomic -------------------------------------------------------------------------

ATOMIC = (
    "<Atomic><CmdID>4</CmdID>"
    + command_xml("Add", 5, item_xml("./DMAcc/backup", fmt="node"))
    + command_xml("Copy", 6, item_xml("./DMAcc/backup/Name", source="./DMAcc/example/Name"))
    + command_xml("Replace", 7, item_xml("./DMAcc/example/AppAddr/1/Addr",
                                         "https://dms2.example.com/dm", fmt="chr"))
    + command_xml("Delete", 8, item_xml("./DMAcc/old"))
    + "<Alert><CmdID>9</CmdID><Data>1101</Data><Item><Data>MAXDT=60&amp;DR=0</Data></Item>"
      "<Item><Data>Move management to the new server?</Data></Item></Alert>"
    + "</Atomic>"
)


def test_atomic_rolls_back():
    session = make_session()
    before = session.tree.read("./DMAcc/example/AppAddr/1/Addr").value
    _, msg = run(ATOMIC, session)
    assert statuses(msg)[1:] == [("Atomic", "4", 507), ("Add", "5", 216), ("Copy", "6", 216),
                                 ("Replace", "7", 216), ("Delete", "8", 404), ("Alert", "9", 215)]
    assert not session.tree.exists("./DMAcc/backup")
    assert session.tree.read("./DMAcc/example/AppAddr/1/Addr").value == before


def test_atomic_commits_when_everything_succeeds():
    session = make_session(ui=ui.scripted_policy([(200, [])]))
    open_acl(session.tree)
    session.tree.set("./DMAcc/old/Name", "old")
    _, msg = run(ATOMIC, session)
    assert codes(msg) == {"4": 200, "5": 200, "6": 200, "7": 200, "8": 200, "9": 200}
    assert session.tree.read("./DMAcc/backup/Name").value == ""
    assert not session.tree.exists("./DMAcc/old")
    assert session.tree.read("./DMAcc/example/AppAddr/1/Addr").value == "https://dms2.example.com/dm"


def test_atomic_user_says_no():
    session = make_session()  # default policy: DR=0 rejects
    open_acl(session.tree)
    session.tree.set("./DMAcc/old/Name", "old")
    _, msg = run(ATOMIC, session)
    assert codes(msg) == {"4": 507, "5": 216, "6": 216, "7": 216, "8": 216, "9": 304}
    assert session.tree.exists("./DMAcc/old") and not session.tree.exists("./DMAcc/backup")


def test_atomic_refuses_get_and_nesting():
    session = make_session()
    _, msg = run("<Atomic><CmdID>4</CmdID>" + command_xml("Add", 5, item_xml("./V/A", "1"))
                 + command_xml("Get", 6, item_xml("./DevInfo/Man"))
                 + "<Atomic><CmdID>7</CmdID>" + command_xml("Add", 8, item_xml("./V/B", "1"))
                 + "</Atomic></Atomic>", session)
    assert statuses(msg)[1:] == [("Atomic", "4", 507), ("Add", "5", 215), ("Get", "6", 500),
                                 ("Atomic", "7", 500)]
    assert not session.tree.exists("./V") and results(msg) == []


# -- Sequence and UI alerts -------------------------------------------------------------

def test_sequence_runs_in_order_and_stops_on_cancel():
    policy = ui.scripted_policy([(214, [])])
    session = make_session(ui=policy)
    open_acl(session.tree)
    _, msg = run(
        "<Sequence><CmdID>4</CmdID>"
        + command_xml("Add", 5, item_xml("./V/A", "1"))
        + command_xml("Get", 6, item_xml("./V/A"))
        + "<Alert><CmdID>7</CmdID><Data>1101</Data><Item/><Item><Data>Go on?</Data></Item></Alert>"
        + command_xml("Add", 8, item_xml("./V/B", "2"))
        + "</Sequence>"
        + command_xml("Add", 9, item_xml("./V/C", "3")),
        session)
    assert statuses(msg)[1:] == [("Sequence", "4", 200), ("Add", "5", 200), ("Get", "6", 200),
                                 ("Alert", "7", 214), ("Add", "8", 215), ("Add", "9", 200)]
    assert [r.cmd_ref for r in results(msg)] == ["6"]
    assert session.tree.exists("./V/C") and not session.tree.exists("./V/B")


UI_ALERTS = (
    "<Alert><CmdID>4</CmdID><Data>1100</Data><Item><Data>MINDT=10&amp;MAXDT=30</Data></Item>"
    "<Item><Data>Your device is being configured by Example IT</Data></Item></Alert>"
    "<Alert><CmdID>5</CmdID><Data>1101</Data><Item><Data>MAXDT=120&amp;DR=1</Data></Item>"
    "<Item><Data>Install the security update now?</Data></Item></Alert>"
    "<Alert><CmdID>6</CmdID><Data>1102</Data>"
    "<Item><Data>MAXDT=300&amp;MAXLEN=8&amp;IT=N&amp;ET=P&amp;DR=</Data></Item>"
    "<Item><Data>Enter your unlock PIN</Data></Item></Alert>"
    "<Alert><CmdID>7</CmdID><Data>1103</Data><Item><Data>DR=2</Data></Item>"
    "<Item><Data>Choose the update time</Data></Item><Item><Data>Now</Data></Item>"
    "<Item><Data>Tonight</Data></Item><Item><Data>Next weekend</Data></Item></Alert>"
    "<Alert><CmdID>8</CmdID><Data>1104</Data><Item/>"
    "<Item><Data>Which apps may use mobile data?</Data></Item><Item><Data>Mail</Data></Item>"
    "<Item><Data>Browser</Data></Item><Item><Data>Maps</Data></Item></Alert>"
)


def test_ui_alerts_go_through_the_policy():
    policy = ui.scripted_policy([(200, []), (304, []), (200, ["1234"]), (200, ["3"]),
                                 (200, ["1", "3"])])
    _, msg = run(UI_ALERTS, make_session(ui=policy))
    assert [call[0] for call in policy.calls] == [1100, 1101, 1102, 1103, 1104]
    assert policy.calls[0][1:] == ({"MINDT": "10", "MAXDT": "30"},
                                   "Your device is being configured by Example IT", [])
    assert policy.calls[2][1] == {"MAXDT": "300", "MAXLEN": "8", "IT": "N", "ET": "P", "DR": ""}
    assert policy.calls[3][3] == ["Now", "Tonight", "Next weekend"]
    assert policy.calls[4][1] == {}
    assert codes(msg) == {"4": 200, "5": 304, "6": 200, "7": 200, "8": 200}
    answers = {s.cmd_ref: [i.data for i in s.items] for s in msg.commands(sm.Status)}
    assert answers["6"] == ["1234"] and answers["7"] == ["3"] and answers["8"] == ["1", "3"]
    assert answers["4"] == [] and answers["5"] == []


def test_ui_alerts_default_answers():
    _, msg = run(UI_ALERTS)
    assert codes(msg) == {"4": 200, "5": 200, "6": 200, "7": 200, "8": 200}
    answers = {s.cmd_ref: [i.data for i in s.items] for s in msg.commands(sm.Status)}
    assert answers["7"] == ["2"] and answers["8"] == [] and answers["6"] == [""]


def test_top_level_cancel_skips_the_rest_of_the_message():
    policy = ui.scripted_policy([(200, []), (214, [])])
    session, msg = run(UI_ALERTS + command_xml("Add", 9, item_xml("./V/A", "1")),
                       make_session(ui=policy))
    assert codes(msg) == {"4": 200, "5": 214, "6": 215, "7": 215, "8": 215, "9": 215}
    assert len(policy.calls) == 2 and not session.tree.exists("./V/A")


def test_bad_alerts():
    def broken(code, options, text, choices):
        raise RuntimeError("no screen")

    _, msg = run(
        "<Alert><CmdID>4</CmdID><Data>1100</Data><Item><Data>only one</Data></Item></Alert>"
        "<Alert><CmdID>5</CmdID><Data>1103</Data><Item/><Item><Data>no choices</Data></Item></Alert>"
        "<Alert><CmdID>6</CmdID><Data>1150</Data></Alert>"
        "<Alert><CmdID>7</CmdID><Data>1101</Data><Item/><Item><Data>?</Data></Item></Alert>",
        make_session(ui=broken))
    assert codes(msg) == {"4": 412, "5": 412, "6": 406, "7": 500}


# -- incoming large objects ------------------------------------------------------------

WALLPAPER = bytes(range(256)) * 3  # 768 bytes
WALLPAPER_B64 = base64.b64encode(WALLPAPER).decode()  # 1024 characters


def chunk(cmd_id, part, *, first=False, more=True, size=None, target="./Vendor/Wallpaper"):
    return command_xml("Replace", cmd_id, item_xml(
        target, part, fmt="b64", mtype="image/png",
        size=(len(WALLPAPER_B64) if size is None else size) if first else None, more=more))


def started_large_object(session=None, size=None):
    session = session or make_session(max_obj_size=4096)
    open_acl(session.tree)
    session.tree.set("./Vendor/Wallpaper", b"", "bin")
    reply = begin(session, chunk(4, WALLPAPER_B64[:400], first=True, size=size), final=False)
    return session, reply


def test_large_object_is_received_in_chunks():
    session, reply = started_large_object()
    msg = decode(reply)
    assert statuses(msg)[-1] == ("Replace", "4", 213)
    assert msg.commands(sm.Alert)[-1].data == 1222 and not msg.final
    reply = follow(session, 2, chunk(2, WALLPAPER_B64[400:800]), final=False)
    assert statuses(reply)[-1] == ("Replace", "2", 213) and not decode(reply).final
    assert session.tree.read("./Vendor/Wallpaper").value == b""
    reply = follow(session, 3, chunk(2, WALLPAPER_B64[800:], more=False))
    msg = decode(reply)
    assert statuses(msg)[-1] == ("Replace", "2", 200)
    assert msg.final and not msg.commands(sm.Alert)
    assert session.tree.read("./Vendor/Wallpaper")[1:] == (WALLPAPER, "bin", "image/png")


def test_large_object_size_mismatch_is_424():
    session, _ = started_large_object(size=1000)
    reply = follow(session, 2, chunk(2, WALLPAPER_B64[400:], more=False))
    assert statuses(reply)[-1] == ("Replace", "2", 424)
    assert session.tree.read("./Vendor/Wallpaper").value == b""


def test_large_object_over_our_max_obj_size_is_413():
    session, reply = started_large_object(make_session(max_obj_size=1000))
    assert statuses(reply)[-1] == ("Replace", "4", 413)
    session = make_session(max_obj_size=10)
    _, msg = run(command_xml("Add", 4, item_xml("./V/Big", "x" * 11)), session)
    assert codes(msg) == {"4": 413}


def test_interrupted_large_object_is_dropped_with_1225():
    session, _ = started_large_object()
    reply = follow(session, 2, command_xml("Add", 2, item_xml("./V/Other", "x")))
    msg = decode(reply)
    assert codes(msg) == {"2": 200}
    (alert,) = msg.commands(sm.Alert)
    assert alert.data == 1225 and alert.items[0].target.loc_uri == "./Vendor/Wallpaper"
    assert session.tree.read("./Vendor/Wallpaper").value == b""


def test_large_object_cut_by_the_end_of_the_package():
    session, _ = started_large_object()
    reply = follow(session, 2, chunk(2, WALLPAPER_B64[400:800]))  # MoreData, yet Final
    msg = decode(reply)
    assert statuses(msg)[-1] == ("Replace", "2", 213)
    assert [a.data for a in msg.commands(sm.Alert)] == [1225]


def test_large_object_in_wbxml_as_opaque_chunks():
    session = make_session(make_account(server_scheme="none"), encoding=WBXML, max_obj_size=4096)
    open_acl(session.tree)
    session.tree.set("./Vendor/Blob", b"", "bin")
    session.start()
    first = sm.Replace(cmd_id="4", items=[sm.Item(
        target=sm.LocRef("./Vendor/Blob"), meta=sm.Meta(format="bin", size=len(WALLPAPER)),
        data=WALLPAPER[:500], more_data=True)])
    hdr = sm.SyncHdr(session_id="1A2", msg_id="1", target=sm.LocRef("IMEI:490154203237518"),
                     source=sm.LocRef("https://dms.example.com/dm"))
    message = sm.SyncML(hdr=hdr, body=[sm.Status(cmd_id="1", msg_ref="1", cmd_ref="0",
                                                 cmd="SyncHdr", data=212), first])
    reply = session.receive(encode_message(message, WBXML), {})
    assert statuses(reply)[-1] == ("Replace", "4", 213)
    last = sm.Replace(cmd_id="2", items=[sm.Item(target=sm.LocRef("./Vendor/Blob"),
                                                 meta=sm.Meta(format="bin"), data=WALLPAPER[500:])])
    hdr.msg_id = "2"
    message = sm.SyncML(hdr=hdr, body=[sm.Status(cmd_id="1", msg_ref="2", cmd_ref="0",
                                                 cmd="SyncHdr", data=200), last], final=True)
    reply = session.receive(encode_message(message, WBXML), {})
    assert statuses(reply)[-1] == ("Replace", "2", 200)
    assert session.tree.read("./Vendor/Blob").value == WALLPAPER


def test_cred_in_a_follow_up_is_ignored_after_212():
    session = make_session()
    begin(session, command_xml("Get", 4, item_xml("./DevInfo/Man")))
    message = server_message(hdr_status_xml(2, 200) + command_xml(
        "Get", 2, item_xml("./DevInfo/Mod")), 2, cred=md5_cred_xml(b"old"))
    assert statuses(session.receive(message, XML_HEADERS))[:2] == [("SyncHdr", "0", 200),
                                                                  ("Get", "2", 200)]


def test_text_xml_cannot_carry_goes_out_as_base64():
    session = make_session()
    session.tree.set("./Vendor/Odd", "bell\x07here")
    _, msg = run(command_xml("Get", 4, item_xml("./Vendor/Odd")), session)
    item = results(msg)[0].items[0]
    assert item.meta.format == "b64"
    assert base64.b64decode(item.data) == "bell\x07here".encode()


def test_chunk_inside_a_failed_atomic_is_not_kept():
    session = make_session()
    _, msg = run("<Atomic><CmdID>4</CmdID>"
                 + command_xml("Add", 5, item_xml("./V/Big", "part", size=100, more=True))
                 + "</Atomic>" + command_xml("Add", 6, item_xml("./V/Next", "x")), session)
    assert codes(msg) == {"4": 507, "5": 400, "6": 200}
    assert not msg.commands(sm.Alert)
    assert session.tree.exists("./V/Next") and not session.tree.exists("./V/Big")


# -- ACLs, TNDS, Inbox (the real management tree) -------------------------------------

def test_acl_denial_is_425():
    session = make_session()
    tree = session.tree
    tree.set("./Vendor/Locked", "v")
    tree.set_acl("./Vendor/Locked", "Get=*&Replace=org.other.server")
    tree.set("./Vendor/Mine", "m")
    tree.set_acl("./Vendor/Mine", "Get=*&Replace=%s" % (SERVER_ID,))
    _, msg = run(
        command_xml("Replace", 4, item_xml("./Vendor/Locked", "x"))
        + command_xml("Replace", 5, item_xml("./Vendor/Mine", "y"))
        + command_xml("Delete", 6, item_xml("./Vendor/Mine"))
        + command_xml("Get", 7, item_xml("./Vendor/Locked")),
        session)
    assert codes(msg) == {"4": 425, "5": 200, "6": 425, "7": 200}
    assert tree.read("./Vendor/Locked").value == "v" and tree.read("./Vendor/Mine").value == "y"


TNDS_APP = (
    "<MgmtTree xmlns='syncml:dmddf1.2'><VerDTD>1.2</VerDTD>"
    "<Node><NodeName>App</NodeName><RTProperties><Format><node/></Format></RTProperties>"
    "<Node><NodeName>Mode</NodeName><RTProperties><Format><chr/></Format>"
    "<Type><MIME>text/plain</MIME></Type></RTProperties><Value>%s</Value></Node>"
    "</Node></MgmtTree>"
)


def test_tnds_add_replace_and_list_tnds():
    session = make_session()
    open_acl(session.tree)
    _, msg = run(
        command_xml("Add", 4, item_xml("./Vendor", TNDS_APP % "fast", fmt="xml",
                                       mtype="application/vnd.syncml.dmtnds+xml"))
        + command_xml("Replace", 5, item_xml("./Vendor", TNDS_APP % "slow", fmt="xml",
                                             mtype="application/vnd.syncml.dmtnds+xml"))
        + command_xml("Get", 6, item_xml("./Vendor/App?list=TNDS")),
        session)
    assert codes(msg) == {"4": 200, "5": 200, "6": 200}
    assert session.tree.read("./Vendor/App/Mode").value == "slow"
    (res,) = results(msg)
    item = res.items[0]
    assert item.meta.type == "application/vnd.syncml.dmtnds+xml" and item.meta.format == "xml"
    tnds = item.data
    assert tnds.name == "MgmtTree"
    (node,) = tnds.findall("Node")
    assert node.find("NodeName").text == "App"
    assert node.find("Node").find("Value").text == "slow"


def test_tnds_in_wbxml_goes_both_ways():
    from dmgateway.codec.xml import parse as parse_xml

    session = make_session(make_account(server_scheme="none"), encoding=WBXML)
    open_acl(session.tree)
    session.start()
    hdr = sm.SyncHdr(session_id="1A2", msg_id="1", target=sm.LocRef("IMEI:490154203237518"),
                     source=sm.LocRef("https://dms.example.com/dm"))
    tnds = parse_xml((TNDS_APP % "wb").encode())
    body = [sm.Status(cmd_id="1", msg_ref="1", cmd_ref="0", cmd="SyncHdr", data=212),
            sm.Add(cmd_id="2", items=[sm.Item(
                target=sm.LocRef("./Vendor"),
                meta=sm.Meta(format="xml", type="application/vnd.syncml.dmtnds+xml"),
                data=tnds)]),
            sm.Get(cmd_id="3", items=[sm.Item(target=sm.LocRef("./Vendor/App?list=TNDS"))])]
    reply = session.receive(encode_message(sm.SyncML(hdr=hdr, body=body, final=True), WBXML), {})
    msg, _ = decode_message(reply.body)
    assert codes(msg) == {"2": 200, "3": 200}
    assert session.tree.read("./Vendor/App/Mode").value == "wb"
    assert b"application/vnd.syncml.dmtnds+wbxml" in reply.body  # OPAQUE TNDS on the wire
    data = results(msg)[0].items[0].data
    assert data.find("Node").find("Node").find("Value").text == "wb"


def test_inbox_routes_a_dmacc_to_dmacc():
    session = make_session()
    dmacc = (
        "<MgmtTree xmlns='syncml:dmddf1.2'><VerDTD>1.2</VerDTD>"
        "<Node><NodeName>second</NodeName><RTProperties><Format><node/></Format>"
        "<Type><DDFName>urn:oma:mo:oma-dm-dmacc:1.0</DDFName></Type></RTProperties>"
        "<Node><NodeName>ServerID</NodeName><RTProperties><Format><chr/></Format></RTProperties>"
        "<Value>org.second</Value></Node></Node></MgmtTree>"
    )
    _, msg = run(
        command_xml("Add", 4, item_xml("./Inbox", dmacc, fmt="xml",
                                       mtype="application/vnd.syncml.dmtnds+xml"))
        + command_xml("Get", 5, item_xml("./Inbox")),
        session)
    assert codes(msg) == {"4": 200, "5": 405}
    assert session.tree.read("./DMAcc/second/ServerID").value == "org.second"
