"""Tests for dmgateway.codec.mapping: SyncML model <-> Node trees."""

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmgateway.codec.element import NS_DMDDF, NS_METINF, NS_SYNCML, Node
from dmgateway.codec.errors import CodecError, ModelError
from dmgateway.codec.mapping import (
    command_to_node,
    item_to_node,
    message_to_node,
    meta_to_node,
    node_to_command,
    node_to_item,
    node_to_message,
    node_to_meta,
)
from dmgateway.codec.mapping_reader import unknown_elements
from dmgateway.codec.syncml import (
    Add,
    Alert,
    Atomic,
    Chal,
    Cred,
    Delete,
    Exec,
    Get,
    Item,
    LocRef,
    Meta,
    Replace,
    Results,
    Sequence,
    Status,
    SyncHdr,
    SyncML,
    UnknownCommand,
)
from tests.codec.strategies import messages

HYPOTHESIS = settings(max_examples=200, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def el(name, *children, text=None, ns=NS_SYNCML):
    return Node(name, ns, list(children), text)


def value(name, text, ns=NS_SYNCML):
    return Node(name, ns, [], text)


def hdr_node(*extra, session="1A2", msg="1"):
    children = [
        value("VerDTD", "1.2"),
        value("VerProto", "DM/1.2"),
        value("SessionID", session),
        value("MsgID", msg),
        el("Target", value("LocURI", "https://dms.example.com/dm")),
        el("Source", value("LocURI", "IMEI:490154203237518")),
    ]
    return el("SyncHdr", *[c for c in children if c.name not in {e.name for e in extra}], *extra)


def message_node(*commands, hdr=None):
    return el("SyncML", hdr if hdr is not None else hdr_node(), el("SyncBody", *commands))


def raises_model_error(node):
    with pytest.raises(ModelError) as info:
        node_to_message(node)
    assert type(info.value) is ModelError
    return info.value


def names(node):
    return [child.name for child in node.children]


# -- writer: order, namespaces, strictness ---------------------------------


def full_message():
    meta = Meta(type="text/plain", format="chr", mark="critical", size=12, next_nonce="AQID",
                max_msg_size=10000, max_obj_size=524288, version="1.0", emi=["x-a", "x-b"],
                extra=[el("Mem", value("FreeMem", "1024", ns=NS_METINF), ns=NS_METINF)])
    cred = Cred(Meta(type="syncml:auth-md5", format="b64"), "Q3r6Z+uEU9+S9G0eEFL04w==")
    item = Item(target=LocRef("./A", "a"), source=LocRef("./B"), meta=Meta(format="b64"),
                data="AAEC", more_data=True)
    hdr = SyncHdr(session_id="1A2", msg_id="3", target=LocRef("https://dms.example.com/dm"),
                  source=LocRef("IMEI:490154203237518", "dmclient01"), resp_uri="https://x/dm?s=1",
                  no_resp=True, cred=cred, meta=meta)
    status = Status(cmd_id="1", msg_ref="2", cmd_ref="0", cmd="SyncHdr", target_refs=["t1", "t2"],
                    source_refs=["s1"], cred=cred, chal=Chal(Meta(type="syncml:auth-md5")),
                    data=212, items=[Item(data="x")])
    results = Results(cmd_id="2", msg_ref="2", cmd_ref="4", meta=Meta(format="chr"),
                      target_refs=["t"], source_refs=["s"], items=[item])
    alert = Alert(cmd_id="3", no_resp=True, cred=cred, data=1226, correlator="abc123",
                  items=[item])
    exec_ = Exec(cmd_id="4", no_resp=True, cred=cred, meta=Meta(format="chr"), correlator="c1",
                 items=[item])
    seq = Sequence(cmd_id="5", no_resp=True, meta=Meta(format="chr"),
                   commands=[Atomic(cmd_id="6", commands=[Add(cmd_id="7", items=[item])])])
    return SyncML(hdr=hdr, body=[status, results, alert, exec_, seq], final=True)


def test_writer_element_order():
    node = message_to_node(full_message())
    assert names(node) == ["SyncHdr", "SyncBody"]
    hdr, body = node.children
    assert names(hdr) == ["VerDTD", "VerProto", "SessionID", "MsgID", "Target", "Source",
                          "RespURI", "NoResp", "Cred", "Meta"]
    assert names(hdr.find("Source")) == ["LocURI", "LocName"]
    assert names(hdr.find("Cred")) == ["Meta", "Data"]
    assert names(body) == ["Status", "Results", "Alert", "Exec", "Sequence", "Final"]
    status, results, alert, exec_, seq, _ = body.children
    assert names(status) == ["CmdID", "MsgRef", "CmdRef", "Cmd", "TargetRef", "TargetRef",
                             "SourceRef", "Cred", "Chal", "Data", "Item"]
    assert names(results) == ["CmdID", "MsgRef", "CmdRef", "Meta", "TargetRef", "SourceRef",
                              "Item"]
    assert names(alert) == ["CmdID", "NoResp", "Cred", "Data", "Correlator", "Item"]
    assert names(exec_) == ["CmdID", "NoResp", "Cred", "Meta", "Correlator", "Item"]
    assert names(exec_.find("Item")) == ["Target", "Source", "Meta", "Data", "MoreData"]
    assert names(seq) == ["CmdID", "NoResp", "Meta", "Atomic"]
    assert names(seq.find("Atomic")) == ["CmdID", "Add"]


def test_writer_meta_in_metinf_namespace_in_dtd_order():
    node = message_to_node(full_message()).find("SyncHdr").find("Meta")
    assert node.ns == NS_SYNCML
    assert names(node) == ["Format", "Type", "Mark", "Size", "Version", "NextNonce",
                           "MaxMsgSize", "MaxObjSize", "EMI", "EMI", "Mem"]
    assert {child.ns for child in node.children} == {NS_METINF}
    assert node.find("MaxMsgSize").text == "10000"


def test_writer_empty_meta_and_extras_kept_in_order():
    assert meta_to_node(Meta()) == el("Meta")
    extras = [el("Mem", ns=NS_METINF), el("Anchor", value("Next", "1", ns=NS_METINF), ns=NS_METINF)]
    node = meta_to_node(Meta(size=3, extra=extras))
    assert names(node) == ["Size", "Mem", "Anchor"]
    assert node_to_meta(node) == Meta(size=3, extra=extras)


def test_writer_item_data_kinds():
    tree = el("MgmtTree", value("VerDTD", "1.2", ns=NS_DMDDF), ns=NS_DMDDF)
    assert item_to_node(Item(data="")).find("Data").text is None
    assert item_to_node(Item(data=" a\n")).find("Data").text == " a\n"
    assert item_to_node(Item(data=b"\x00\xff")).find("Data").text == b"\x00\xff"
    assert item_to_node(Item(data=tree)).find("Data").children == [tree]
    assert item_to_node(Item()).find("Data") is None


@pytest.mark.parametrize("cmd, path", [
    (Alert(cmd_id="1", data="1201"), "Alert/Data"),
    (Status(cmd_id="1", data=-1), "Status/Data"),
    (Status(cmd_id="1", data=True), "Status/Data"),
    (Status(cmd_id=1), "Status/CmdID"),
    (Get(cmd_id="1", items=[Item(target=LocRef(None))]), "Get/Item[1]/Target/LocURI"),
    (Get(cmd_id="1", items=[Item(data=42)]), "Get/Item[1]/Data"),
    (Replace(cmd_id="1", meta=Meta(size="12")), "Replace/Meta/Size"),
    (Replace(cmd_id="1", items=["not an item"]), "Replace/Item[1]"),
])
def test_writer_refuses_wrong_types(cmd, path):
    with pytest.raises(ModelError) as info:
        command_to_node(cmd, cmd.NAME)
    assert info.value.path == path


def test_writer_refuses_non_commands():
    msg = SyncML(body=["Add"])
    with pytest.raises(ModelError):
        message_to_node(msg)
    with pytest.raises(ModelError):
        message_to_node("SyncML")


def test_writer_unknown_command_without_node():
    node = command_to_node(UnknownCommand(cmd_id="9", name="Put"))
    assert node == el("Put", value("CmdID", "9"))


# -- reader: tolerance -------------------------------------------------------


def test_reader_minimal_message():
    msg = node_to_message(message_node())
    assert msg.hdr.session_id == "1A2"
    assert msg.hdr.target == LocRef("https://dms.example.com/dm")
    assert msg.body == [] and msg.final is False


def test_reader_session_id_zero_and_whitespace_stripped():
    hdr = hdr_node(value("SessionID", "\n  0\t"), value("MsgID", " 1 "))
    msg = node_to_message(message_node(hdr=hdr))
    assert msg.hdr.session_id == "0"
    assert msg.hdr.msg_id == "1"


def test_reader_children_in_any_order():
    alert = el("Alert", el("Item", value("Data", "x"), el("Target", value("LocURI", "./A"))),
               value("Data", "1100"), value("CmdID", "4"))
    hdr = el("SyncHdr", el("Source", value("LocURI", "dev")), value("MsgID", "2"),
             el("Target", value("LocURI", "srv")), value("SessionID", "7"),
             value("VerProto", "DM/1.2"), value("VerDTD", "1.2"))
    msg = node_to_message(el("SyncML", el("SyncBody", value("Final", None), alert), hdr))
    assert msg.final is True
    assert msg.hdr == SyncHdr(session_id="7", msg_id="2", target=LocRef("srv"),
                              source=LocRef("dev"))
    assert msg.body == [Alert(cmd_id="4", data=1100,
                              items=[Item(target=LocRef("./A"), data="x")])]


def test_reader_metinf_in_any_namespace():
    meta = el("Meta", value("Type", "text/plain"), value("Format", " chr "),
              value("MaxMsgSize", "\n8192\n", ns="urn:whatever"), value("EMI", "a"),
              value("EMI", "b"))
    assert node_to_meta(meta) == Meta(type="text/plain", format="chr", max_msg_size=8192,
                                      emi=["a", "b"])


def test_reader_meta_extra_kept_and_moved_to_metinf():
    mem = el("Mem", value("FreeMem", "1024"))
    anchor = el("Anchor", value("Next", "5", ns=NS_METINF), ns=NS_METINF)
    meta = node_to_meta(el("Meta", mem, value("Size", "7"), anchor))
    assert meta.size == 7
    assert meta.extra == [el("Mem", value("FreeMem", "1024", ns=NS_METINF), ns=NS_METINF),
                          anchor]


def test_reader_unknown_elements_in_known_containers_ignored():
    get = el("Get", value("CmdID", "2"), value("Lang", "en"), value("Bogus", "x"),
             el("Item", el("Target", value("LocURI", "./A"), value("Extra", "y")),
                value("TargetParent", None)))
    delete = el("Delete", value("CmdID", "3"), value("Archive", None), value("SftDel", None),
                el("Item", el("Target", value("LocURI", "./B"))))
    msg = node_to_message(message_node(get, delete))
    assert msg.body == [Get(cmd_id="2", items=[Item(target=LocRef("./A"))]),
                        Delete(cmd_id="3", items=[Item(target=LocRef("./B"))])]


def test_reader_unknown_commands_kept():
    put = el("Put", value("CmdID", " 5 "), el("Item", value("Data", "x")))
    nameless = el("Sync", value("Target", None))
    atomic = el("Atomic", value("CmdID", "6"), el("Map", value("CmdID", "7")))
    msg = node_to_message(message_node(put, nameless, atomic))
    assert msg.body[0] == UnknownCommand(cmd_id="5", name="Put", node=put)
    assert msg.body[1] == UnknownCommand(cmd_id="", name="Sync", node=nameless)
    inner = msg.body[2].commands[0]
    assert (inner.name, inner.cmd_id, inner.node) == ("Map", "7", atomic.children[1])
    # and they are written back as read
    assert message_to_node(msg) == message_node(put, nameless, atomic)


def test_reader_booleans():
    item = el("Item", value("Data", "chunk"), value("MoreData", None))
    cmd = el("Replace", value("CmdID", "1"), value("NoResp", None), item)
    msg = node_to_message(message_node(cmd, value("Final", None)))
    assert msg.final is True
    assert msg.body[0].no_resp is True
    assert msg.body[0].items[0].more_data is True


def test_reader_data_kept_exactly_but_codes_stripped():
    alert = el("Alert", value("CmdID", "1"), value("Data", "\n 1222 \n"),
               el("Item", value("Data", "  spaced \r\n")))
    status = el("Status", value("CmdID", "2"), value("MsgRef", "1"), value("CmdRef", "0"),
                value("Cmd", "SyncHdr"), value("Data", "\t200\t"))
    msg = node_to_message(message_node(alert, status))
    assert msg.body[0].data == 1222
    assert msg.body[0].items[0].data == "  spaced \r\n"
    assert msg.body[1].data == 200


def test_reader_item_data_kinds():
    tree = el("MgmtTree", value("VerDTD", "1.2", ns=NS_DMDDF), ns=NS_DMDDF)
    assert node_to_item(el("Item", value("Data", None))).data == ""
    assert node_to_item(el("Item", value("Data", b"\xff\x00"))).data == b"\xff\x00"
    assert node_to_item(el("Item", el("Data", tree))).data == tree
    assert node_to_item(el("Item")).data is None
    other = el("DevInf", value("Man", "x"), ns="syncml:devinf")
    assert node_to_item(el("Item", el("Data", other))).data is other


def test_reader_inline_tnds_without_namespace_moves_to_dmddf():
    tree = el("MgmtTree", value("VerDTD", "1.2"), el("Node", value("NodeName", "A")))
    data = node_to_item(el("Item", el("Data", tree))).data
    assert data == el("MgmtTree", value("VerDTD", "1.2", ns=NS_DMDDF),
                      el("Node", value("NodeName", "A", ns=NS_DMDDF), ns=NS_DMDDF), ns=NS_DMDDF)


def test_reader_opaque_where_a_string_is_expected():
    hdr = hdr_node(value("SessionID", b" 1A2 "),
                   el("Target", value("LocURI", "https://dms.example.com/dm".encode())))
    msg = node_to_message(message_node(hdr=hdr))
    assert msg.hdr.session_id == "1A2"
    assert msg.hdr.target.loc_uri == "https://dms.example.com/dm"
    status = el("Status", value("CmdID", "1"), value("CmdRef", "0"), value("Data", b"200"))
    assert node_to_command(status).data == 200


def test_reader_opaque_not_utf8_is_a_model_error():
    hdr = hdr_node(value("MsgID", b"\xff\xfe"))
    error = raises_model_error(message_node(hdr=hdr))
    assert error.path == "SyncML/SyncHdr/MsgID"


def test_reader_status_cmd_may_be_missing_and_chal_without_meta():
    status = el("Status", value("CmdID", "1"), value("CmdRef", "0"), el("Chal"),
                value("Data", "407"))
    assert node_to_command(status) == Status(cmd_id="1", cmd_ref="0", cmd="", chal=Chal(Meta()),
                                              data=407)


# -- reader: structural errors with paths -----------------------------------


def without(node, name):
    return Node(node.name, node.ns, [c for c in node.children if c.name != name], node.text)


@pytest.mark.parametrize("missing", ["SessionID", "MsgID", "Target", "Source", "VerDTD",
                                     "VerProto"])
def test_missing_header_element(missing):
    error = raises_model_error(message_node(hdr=without(hdr_node(), missing)))
    assert error.path == "SyncML/SyncHdr"
    assert missing in error.reason


def test_missing_sync_hdr_or_body():
    assert raises_model_error(el("SyncML", el("SyncBody"))).path == "SyncML"
    assert raises_model_error(el("SyncML", hdr_node())).path == "SyncML"


def test_wrong_root():
    error = raises_model_error(el("SyncMLX", hdr_node(), el("SyncBody")))
    assert error.path == "SyncMLX"
    with pytest.raises(ModelError):
        node_to_message("<SyncML/>")


def test_missing_loc_uri_path():
    hdr = hdr_node(el("Source", value("LocName", "x")))
    assert raises_model_error(message_node(hdr=hdr)).path == "SyncML/SyncHdr/Source"


def test_error_path_names_command_and_item_index():
    good = el("Replace", value("CmdID", "1"), el("Item", value("Data", "a")))
    bad = el("Replace", value("CmdID", "2"), el("Item", value("Data", "a")),
             el("Item", el("Target", value("LocName", "no uri"))))
    error = raises_model_error(message_node(value("Final", None), good, bad))
    assert error.path == "SyncML/SyncBody/Replace[2]/Item[2]/Target"


def test_missing_cmd_id_path():
    error = raises_model_error(message_node(el("Get", el("Item"))))
    assert error.path == "SyncML/SyncBody/Get[1]"
    nested = el("Sequence", value("CmdID", "1"), el("Add", el("Item")))
    error = raises_model_error(message_node(nested))
    assert error.path == "SyncML/SyncBody/Sequence[1]/Add[1]"


@pytest.mark.parametrize("code", ["OK", "", "-200", "+200", "2_00", "20 0", "\u0662\u0660\u0660",
                                  "1" * 21, "0x1F"])
def test_non_numeric_codes(code):
    status = el("Status", value("CmdID", "1"), value("CmdRef", "0"), value("Data", code))
    error = raises_model_error(message_node(status))
    assert error.path == "SyncML/SyncBody/Status[1]/Data"
    alert = el("Alert", value("CmdID", "1"), value("Data", code))
    assert raises_model_error(message_node(alert)).path == "SyncML/SyncBody/Alert[1]/Data"


def test_status_without_data_or_cmd_ref():
    status = el("Status", value("CmdID", "1"), value("CmdRef", "0"))
    assert "Data" in raises_model_error(message_node(status)).reason
    status = el("Status", value("CmdID", "1"), value("Data", "200"))
    assert "CmdRef" in raises_model_error(message_node(status)).reason
    results = el("Results", value("CmdID", "1"))
    assert "CmdRef" in raises_model_error(message_node(results)).reason


@pytest.mark.parametrize("name", ["MaxMsgSize", "MaxObjSize", "Size"])
def test_bad_metinf_int(name):
    hdr = hdr_node(el("Meta", value(name, "10k", ns=NS_METINF)))
    error = raises_model_error(message_node(hdr=hdr))
    assert error.path == "SyncML/SyncHdr/Meta/" + name


def test_value_with_element_content():
    hdr = hdr_node(el("SessionID", value("b", "1")))
    assert raises_model_error(message_node(hdr=hdr)).path == "SyncML/SyncHdr/SessionID"


def test_data_with_two_elements():
    item = el("Item", el("Data", value("A", "1"), value("B", "2")))
    error = raises_model_error(message_node(el("Add", value("CmdID", "1"), item)))
    assert error.path == "SyncML/SyncBody/Add[1]/Item[1]/Data"


# -- properties ---------------------------------------------------------------


@HYPOTHESIS
@given(messages(binary_data=True))
def test_model_round_trip(msg):
    assert node_to_message(message_to_node(msg)) == msg


def _vocabulary_nodes():
    names = st.sampled_from(["SyncML", "SyncHdr", "SyncBody", "VerDTD", "VerProto", "SessionID",
                             "MsgID", "Target", "Source", "LocURI", "LocName", "CmdID", "Data",
                             "Item", "Meta", "Type", "Format", "Size", "Status", "Alert", "Add",
                             "Atomic", "Sequence", "Results", "Cmd", "CmdRef", "MsgRef", "Final",
                             "MoreData", "Chal", "Cred", "Exec", "Correlator", "Put"])
    texts = st.one_of(st.none(), st.sampled_from(["1", " 200 ", "x", "1.2", ""]),
                      st.binary(max_size=4))
    leaves = st.builds(lambda n, t, ns: Node(n, ns, [], t), names, texts,
                       st.sampled_from([NS_SYNCML, NS_METINF, NS_DMDDF]))
    return st.recursive(
        leaves,
        lambda kids: st.builds(lambda n, c: Node(n, NS_SYNCML, c), names,
                               st.lists(kids, max_size=6)),
        max_leaves=40,
    )


@HYPOTHESIS
@given(st.one_of(_vocabulary_nodes(),
                 _vocabulary_nodes().map(lambda body: Node("SyncML", NS_SYNCML, [
                     message_to_node(SyncML()).children[0], Node("SyncBody", NS_SYNCML, [body])]))))
def test_reader_never_crashes_on_arbitrary_trees(node):
    try:
        msg = node_to_message(node)
    except CodecError as e:
        assert type(e) is ModelError
    else:
        assert isinstance(msg, SyncML)


def _with_strays(draw_from, tree):
    """``tree`` with known and unknown elements inserted, and children copied,
    at places the strategy picks: the cases the reader's stray check must see."""
    def nodes(node):
        yield node
        for child in node.children:
            yield from nodes(child)

    extras = ["Foo", "Target", "Source", "Cred", "Chal", "Item", "Final", "LocURI", "Meta",
              "Data", "CmdID", "SyncHdr", "SyncBody", "Status", "Filter", "Correlator"]
    for _ in range(draw_from(st.integers(0, 4))):
        containers = [node for node in nodes(tree) if node.children]
        parent = draw_from(st.sampled_from(containers))
        at = draw_from(st.integers(0, len(parent.children)))
        if draw_from(st.booleans()):
            stray = copy.deepcopy(draw_from(st.sampled_from(parent.children)))
            inside = [node for node in nodes(stray) if node.children]
            if inside:  # an unknown element in the copy only
                draw_from(st.sampled_from(inside)).children.append(
                    Node("Odd", NS_SYNCML, [], "x"))
        else:
            stray = Node(draw_from(st.sampled_from(extras)), NS_SYNCML,
                         [Node("Foo", NS_SYNCML, [], "x")] if draw_from(st.booleans()) else [],
                         None)
        parent.children.insert(at, stray)
    return tree


@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages(), st.data())
def test_reader_lists_the_same_unknown_elements_as_the_walk(msg, data):
    # the reader walks unknown_elements only when it met a stray on its way:
    # whenever the walk would list something, the reader must have met it
    tree = _with_strays(data.draw, message_to_node(msg))
    try:
        read = node_to_message(tree)
    except ModelError:
        return
    assert read.unknown == unknown_elements(tree)


def test_reader_sees_strays_below_a_second_copy_of_a_container():
    # the reader reads only the first Target of an Item; the walk visits both
    item = el("Item", el("Target", value("LocURI", "./A")),
              el("Target", value("LocURI", "./B"), value("Odd", "x")))
    msg = node_to_message(message_node(el("Get", value("CmdID", "2"), item)))
    assert msg.unknown == ["SyncML/SyncBody/Get/Item/Target/Odd"]
    assert node_to_message(message_node(el("Get", value("CmdID", "2"), el(
        "Item", el("Target", value("LocURI", "./A")))))).unknown == []


def test_reader_lists_what_a_container_cannot_hold():
    atomic = el("Atomic", value("CmdID", "1"), value("Foo", "x"),
                el("Get", value("CmdID", "2"), el("Item", el("Target", value("LocURI", "./A")))))
    assert node_to_message(message_node(atomic)).unknown == ["SyncML/SyncBody/Atomic/Foo"]
    atomic.children[1] = value("Meta", None)
    assert node_to_message(message_node(atomic)).unknown == []


# -- the reader's fast paths (the usual Item, the usual Meta) read what the general ones do --

_LEAF_TEXT = st.one_of(st.none(), st.sampled_from(["chr", " bin ", "b64", "12", "0", "", " 7 ", "x1", "AAEC"]),
                       st.binary(max_size=3), st.text(max_size=3))


@st.composite
def _leaf(draw, names, ns=NS_SYNCML):
    node = Node(draw(st.sampled_from(names)), ns, None, draw(_LEAF_TEXT))
    if draw(st.integers(0, 9)) == 0:  # element content where a value is expected
        node.children = [Node("LocURI", NS_SYNCML, None, "x")]
    return node


_META_CHILD_NAMES = ["Format", "Type", "Mark", "Size", "Version", "NextNonce", "MaxMsgSize", "MaxObjSize",
                     "EMI", "Anchor"]
_META_NODE = st.lists(_leaf(_META_CHILD_NAMES, NS_METINF), max_size=5).map(
    lambda children: Node("Meta", NS_SYNCML, children))
_LOCREF_NODE = st.builds(lambda name, children: Node(name, NS_SYNCML, children),
                         st.sampled_from(["Target", "Source"]),
                         st.lists(_leaf(["LocURI", "LocName", "Filter"]), min_size=0, max_size=2))
_ITEM_CHILD = st.one_of(_META_NODE, _LOCREF_NODE, _leaf(["Data", "MoreData", "Type", "SourceParent", "Bogus"]))


def _read(read, *args):
    strays = []
    try:
        return read(*args, strays), bool(strays)
    except ModelError as e:
        return ("error", str(e), e.path), None


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ITEM_CHILD, max_size=6), st.sampled_from([None, "bin", "chr"]))
def test_reader_item_fast_path_is_the_general_one(children, inherited):
    from dmgateway.codec import mapping_reader as reader

    node = Node("Item", NS_SYNCML, children)
    path = ("SyncML", ("Item", 1))
    assert _read(reader._node_to_item, node, path, inherited) == _read(
        reader._node_to_item_any, node, path, inherited)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_META_NODE)
def test_reader_meta_fast_path_is_the_general_one(node):
    from dmgateway.codec import mapping_reader as reader

    def general(node, path, strays):
        return reader._node_to_meta_any(node, path)

    assert _read(reader._node_to_meta, node, "Meta") == _read(general, node, "Meta")
