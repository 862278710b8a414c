"""dm.commands: job command dicts to SyncML, device answers back to results."""

import pytest

from dmgateway.codec import syncml as sm
from dmgateway.codec.element import NS_DMDDF, Node
from dmgateway.dm.commands import (
    alert_answer,
    build_command,
    build_job_commands,
    data_size,
    devinfo_key,
    event_payload,
    item_text,
    results_answer,
)


def test_replace_defaults_to_chr():
    cmd = build_command({"op": "Replace", "target": "./X", "data": "v"})
    assert cmd == sm.Replace(items=[sm.Item(target=sm.LocRef("./X"), meta=sm.Meta(format="chr"),
                                            data="v")])
    assert cmd.cmd_id == ""  # the packer numbers commands per message


def test_add_interior_node_has_no_data():
    cmd = build_command({"op": "Add", "target": "./N", "format": "node"})
    assert cmd.items == [sm.Item(target=sm.LocRef("./N"), meta=sm.Meta(format="node"))]


def test_get_and_delete_carry_meta_only_when_asked():
    assert build_command({"op": "Get", "target": "./X"}).items[0].meta is None
    get = build_command({"op": "Get", "target": "./X?list=TNDS", "type": "application/vnd.syncml.dmtnds+xml"})
    assert get.items[0].meta == sm.Meta(type="application/vnd.syncml.dmtnds+xml")
    assert build_command({"op": "Delete", "target": "./X"}) == sm.Delete(
        items=[sm.Item(target=sm.LocRef("./X"))])


def test_exec_and_copy():
    exec_ = build_command({"op": "Exec", "target": "./Run", "data": "a", "correlator": "c1"})
    assert exec_.correlator == "c1" and exec_.items[0].data == "a"
    assert exec_.items[0].meta == sm.Meta(format="chr")
    copy = build_command({"op": "Copy", "target": "./To", "source": "./From"})
    assert copy.items == [sm.Item(target=sm.LocRef("./To"), source=sm.LocRef("./From"))]


def test_ui_alert_items():
    alert = build_command({"op": "Alert", "alert": 1104, "data": "Pick", "options": "MAXDT=9",
                           "choices": ["x", "y"]})
    assert alert.data == 1104
    assert [item.data for item in alert.items] == ["MAXDT=9", "Pick", "x", "y"]
    display = build_command({"op": "Alert", "alert": 1100, "data": "Hi"})
    assert [item.data for item in display.items] == ["", "Hi"]  # empty option Item


@pytest.mark.parametrize("spec, message", [
    ({"op": "Frobnicate", "target": "./X"}, "unknown job command op"),
    ({"op": "Get"}, "needs 'target'"),
    ({"op": "Copy", "target": "./X"}, "needs 'source'"),
    ({"op": "Replace", "target": "./X", "data": 5}, "must be a string"),
    ({"op": "Alert", "alert": 1201}, "alert must be one of"),
    ({"op": "Alert", "alert": 1103, "data": "x"}, "needs choices"),
    ({"op": "Alert", "alert": 1100, "choices": ["a"]}, "only for alerts 1103 and 1104"),
    ("Get", "must be a dict"),
])
def test_bad_commands_raise_value_error(spec, message):
    with pytest.raises(ValueError, match=message):
        build_command(spec)


def test_atomic_job_wraps_commands_and_refuses_get():
    [atomic] = build_job_commands([{"op": "Delete", "target": "./A"},
                                   {"op": "Replace", "target": "./B", "data": "1"}], atomic=True)
    assert isinstance(atomic, sm.Atomic) and [c.NAME for c in atomic.commands] == ["Delete", "Replace"]
    with pytest.raises(ValueError, match="Get is not allowed inside an atomic job"):
        build_job_commands([{"op": "Get", "target": "./A"}], atomic=True)
    with pytest.raises(ValueError, match="at least one command"):
        build_job_commands([], atomic=False)


def test_data_size_is_bytes_as_transmitted():
    assert data_size("é") == 2 and data_size(b"\x00\x01") == 2 and data_size(None) == 0


def test_data_size_of_an_inline_tree_is_its_xml_text():
    from dmgateway.codec.xml import serialize

    tree = Node("MgmtTree", NS_DMDDF, [Node("VerDTD", NS_DMDDF, text="1.2")])
    assert data_size(tree) == len(serialize(tree)) > 0


def test_item_text():
    assert item_text("a", "chr") == ("a", "chr")
    assert item_text(b"ok", "bin") == ("ok", "bin")
    assert item_text(b"\xff", "bin") == ("/w==", "b64")
    tree = Node("MgmtTree", NS_DMDDF, [Node("VerDTD", NS_DMDDF, text="1.2")])
    assert item_text(tree, None) == (
        '<MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD></MgmtTree>', "xml")


def test_alert_answers():
    status = sm.Status(data=200, items=[sm.Item(data=" 2 ")])
    assert alert_answer(1103, status) == "2"
    assert alert_answer(1102, sm.Status(items=[sm.Item(data=" typed ")])) == " typed "
    assert alert_answer(1104, sm.Status(items=[sm.Item(data="1"), sm.Item(data="3")])) == ["1", "3"]
    assert alert_answer(1104, sm.Status(items=[sm.Item(data="2-3")])) == ["2", "3"]
    assert alert_answer(1104, sm.Status()) == []
    assert alert_answer(1102, sm.Status()) is None
    assert alert_answer(1101, sm.Status(items=[sm.Item(data="x")])) is None


def test_results_answer_item_meta_over_command_meta():
    results = sm.Results(meta=sm.Meta(format="chr", type="text/plain"), items=[
        sm.Item(source=sm.LocRef("./A"), meta=sm.Meta(format="int"), data="5")])
    assert results_answer(results) == {"data": "5", "format": "int", "type": "text/plain"}
    assert results_answer(sm.Results()) == {"data": None, "format": None, "type": None}
    assert results_answer(results, data="reassembled")["data"] == "reassembled"


def test_devinfo_key():
    assert devinfo_key(sm.Item(source=sm.LocRef("./DevInfo/Ext/Foo"))) == "Ext/Foo"
    assert devinfo_key(sm.Item(source=sm.LocRef("DevInfo/Man"))) == "Man"
    assert devinfo_key(sm.Item(target=sm.LocRef("./DevInfo/Mod"))) == "Mod"
    assert devinfo_key(sm.Item(source=sm.LocRef("./DevDetail/SwV"))) is None
    assert devinfo_key(sm.Item(source=sm.LocRef("./DevInfo/"))) is None
    assert devinfo_key(sm.Item()) is None


def test_event_payload_without_meta():
    alert = sm.Alert(data=1226, items=[sm.Item(data="x")])
    assert event_payload(alert, alert.items[0]) == {
        "alert": 1226, "source": None, "target": None, "meta_type": None, "format": None,
        "mark": None, "data": "x", "correlator": None}
