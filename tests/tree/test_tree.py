"""Server commands, properties, ACLs and AccessType of ManagementTree."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.tree.ddf import DDFNode
from dmgateway.tree.nodes import NodeData
from dmgateway.tree.tree import ManagementTree, TreeError


def status_of(call, *args, **kwargs):
    with pytest.raises(TreeError) as info:
        call(*args, **kwargs)
    return info.value.status


@pytest.fixture
def tree():
    clock = iter(range(1_000_000_000, 2_000_000_000, 60))
    return ManagementTree(clock=lambda: next(clock))


def test_add_get_leaf_and_interior(tree):
    tree.add("./Vendor", format="node", type="com.x/1.0/V")
    tree.add("./Vendor/Leaf", "hello")
    assert tree.get("./Vendor/Leaf") == NodeData("./Vendor/Leaf", "hello", "chr", None)
    assert tree.get("Vendor") == NodeData("Vendor", ["Leaf"], "node", "com.x/1.0/V")
    tree.add("./Empty", format="node")
    assert tree.get("./Empty").value == []


def test_add_statuses(tree):
    tree.add("./A/B", "x")                  # ancestors created implicitly
    assert tree.get("./A").format == "node"
    assert status_of(tree.add, "./A/B", "y") == 418
    assert status_of(tree.add, ".", None, "node") == 418
    assert status_of(tree.add, "./A/B/C", "y") == 405  # parent is a leaf
    assert status_of(tree.add, "./A?prop=Title", "t") == 405
    assert status_of(tree.add, "./A/X", "v", "weird") == 415
    assert status_of(tree.add, "./A//X", "v") == 414


def test_b64_is_stored_as_bin(tree):
    tree.add("./A/Bin", "AQID", "b64")
    data = tree.get("./A/Bin")
    assert data.value == b"\x01\x02\x03" and data.format == "bin"
    assert tree.get("./A/Bin?prop=Format").value == "bin"
    assert tree.get("./A/Bin?prop=Size").value == "3"   # decoded size


def test_replace_and_delete(tree):
    tree.add("./A/L", "1", "int")
    tree.replace("./A/L", "2", "int")
    assert tree.get("./A/L").value == "2"
    assert status_of(tree.replace, "./A/Missing", "x") == 404
    assert status_of(tree.replace, "./A", "x") == 405
    assert status_of(tree.replace, "./A/L", None, "node") == 405
    tree.delete("./A")
    assert not tree.exists("./A/L")
    assert status_of(tree.delete, ".") == 405
    assert status_of(tree.delete, "./A") == 404


def test_permanent_nodes(tree):
    tree.set("./DevInfo/Man", "x")
    tree.set_permanent("./DevInfo")
    assert status_of(tree.delete, "./DevInfo") == 405
    assert status_of(tree.replace, "./DevInfo?prop=Name", "Other") == 405
    tree.delete("./DevInfo/Man")  # a dynamic child still goes


def test_copy(tree):
    tree.add("./A/S", "src")
    tree.copy("./A/T", "./A/S")
    tree.add("./A/U", "old")
    tree.copy("./A/U", "./A/S")
    assert tree.get("./A/T").value == tree.get("./A/U").value == "src"
    assert status_of(tree.copy, "./A/V", "./A") == 405
    assert status_of(tree.copy, "./A/V", "./A/Nope") == 404


def test_exec(tree):
    calls = []
    tree.register_exec("./FUMO/Update", lambda uri, data, corr: calls.append((data, corr)))
    assert tree.exec("./FUMO/Update", "go", "c1") == 200
    tree.register_exec("./FUMO/Later", lambda *a: 202)
    assert tree.exec("./FUMO/Later") == 202
    tree.register_exec("./FUMO/Broken", lambda *a: 1 / 0)
    assert status_of(tree.exec, "./FUMO/Broken") == 500
    assert status_of(tree.exec, "./FUMO") == 405
    assert calls == [("go", "c1")]


def test_properties(tree):
    tree.add("./A/L", "abc")
    node = "./A/L"
    assert tree.get(node + "?prop=Name").value == "L"
    assert tree.get(node + "?prop=Size").value == "3"
    assert tree.get(node + "?prop=Type").value == ""
    assert tree.get(node + "?prop=TStamp").value == "20010909T014640Z"
    assert status_of(tree.get, "./A?prop=Size") == 406
    assert status_of(tree.get, node + "?prop=Colour") == 406
    for prop in ("Format", "Type", "Size", "TStamp", "VerNo"):
        assert status_of(tree.replace, node + "?prop=" + prop, "x") == 405
    assert status_of(tree.replace, node + "?prop=Colour", "x") == 406
    tree.replace(node + "?prop=Title", "A title")
    assert tree.get(node + "?prop=Title").value == "A title"
    assert status_of(tree.replace, node + "?prop=Title", "x" * 256) == 413


def test_verno_counts_changes_and_wraps(tree):
    tree.add("./A/L", "1")
    first = int(tree.get("./A/L?prop=VerNo").value)
    tree.replace("./A/L", "2")
    tree.replace("./A/L?prop=ACL", "Get=*")
    assert int(tree.get("./A/L?prop=VerNo").value) == first + 2
    tree._node("./A/L").verno = 0xFFFF
    tree.replace("./A/L", "3")
    assert tree.get("./A/L?prop=VerNo").value == "0"
    assert tree.get("./A/L?prop=TStamp").value != ""


def test_rename(tree):
    tree.add("./A/x", "1")
    tree.add("./A/y", "2")
    assert status_of(tree.replace, "./A/x?prop=Name", "y") == 418
    assert status_of(tree.replace, "./A/x?prop=Name", "a/b") == 414
    assert status_of(tree.replace, ".?prop=Name", "root") == 405
    tree.replace("./A/x?prop=Name", "z")
    assert tree.get("./A").value == ["z", "y"]
    assert tree.get("./A/z").value == "1"


# -- ACLs (dm-tree-objects §3) ------------------------------------------------


@pytest.fixture
def acl_tree():
    tree = ManagementTree()
    tree.set("./A/B/C", "leaf")
    tree.set_acl("./A", "Get=*&Replace=srv1&Add=srv1&Delete=srv1")
    tree.set_acl("./A/B/C", "Get=*")
    return tree


def test_root_acl_default():
    tree = ManagementTree()
    assert tree.get(".?prop=ACL").value == "Add=*&Get=*"
    tree.add("./X", "leaf", server="anyone")
    assert status_of(tree.delete, "./X", server="anyone") == 425  # no Delete in root ACL
    assert status_of(tree.replace, "./X", "v", server="anyone") == 425


def test_get_star_node_grants_get_only(acl_tree):
    assert acl_tree.get("./A/B/C", server="srv2").value == "leaf"
    assert status_of(acl_tree.replace, "./A/B/C", "x", server="srv1") == 425
    assert status_of(acl_tree.delete, "./A/B/C", server="srv1") == 425


def test_empty_acl_inherits_and_prop_acl_is_empty(acl_tree):
    assert acl_tree.get("./A/B?prop=ACL", server="srv1").value == ""
    acl_tree.replace("./A/B?prop=Title", "t", server="srv1")   # Replace from ./A
    assert status_of(acl_tree.replace, "./A/B?prop=Title", "t", server="srv2") == 425
    acl_tree.add("./A/B/D", "new", server="srv1")
    acl_tree.delete("./A/B/D", server="srv1")


def test_leaf_acl_changed_through_parent(acl_tree):
    # srv1 has Replace on ./A/B (inherited) so may take over ./A/B/C in two steps
    acl_tree.replace("./A/B/C?prop=ACL", "Get=*&Replace=srv1", server="srv1")
    acl_tree.replace("./A/B/C", "mine", server="srv1")
    assert status_of(acl_tree.replace, "./A/B/C?prop=ACL", "Get=*", server="srv2") == 425


def test_leaf_own_replace_does_not_allow_acl_change():
    tree = ManagementTree()
    tree.set("./P/L", "v")
    tree.set_acl("./P", "Get=*")
    tree.set_acl("./P/L", "Replace=srv1&Get=*")
    tree.replace("./P/L", "w", server="srv1")
    assert status_of(tree.replace, "./P/L?prop=ACL", "Get=*", server="srv1") == 425


def test_interior_acl_changed_by_own_replace(acl_tree):
    acl_tree.replace("./A?prop=ACL", "Get=*&Replace=srv1+srv2", server="srv1")
    assert acl_tree.get("./A?prop=ACL", server="srv2").value == "Get=*&Replace=srv1+srv2"


def test_root_acl_rules():
    tree = ManagementTree()
    assert status_of(tree.replace, ".?prop=ACL", "") == 405
    assert status_of(tree.replace, ".?prop=ACL", "Add=srv1&Get=*") == 405
    assert status_of(tree.replace, ".?prop=ACL", "Get=a b") == 400
    tree.replace(".?prop=ACL", "Add=*&Get=*&Replace=srv1")


def test_creator_gets_add_delete_replace():
    tree = ManagementTree()
    tree.add("./Vendor/Sub/Leaf", "v", server="srv1")   # root gives Add, not Replace
    assert tree.get("./Vendor?prop=ACL").value == "Add=srv1&Delete=srv1&Replace=srv1"
    assert tree.get("./Vendor/Sub?prop=ACL").value == ""
    tree.replace("./Vendor/Sub/Leaf", "w", server="srv1")
    assert status_of(tree.get, "./Vendor/Sub/Leaf", server="srv1") == 425  # no Get granted
    assert status_of(tree.delete, "./Vendor", server="srv2") == 425
    tree.delete("./Vendor", server="srv1")


def test_no_creator_acl_with_replace_on_parent(acl_tree):
    acl_tree.add("./A/N", format="node", server="srv1")
    assert acl_tree.get("./A/N?prop=ACL").value == ""


def test_explicit_acl_on_add():
    tree = ManagementTree()
    tree.add("./X", format="node", server="s", acl="Get=s&Replace=s&Delete=s")
    assert tree.get("./X?prop=ACL").value == "Get=s&Replace=s&Delete=s"


def test_copy_needs_get_and_add(acl_tree):
    assert status_of(acl_tree.copy, "./A/B/Z", "./A/B/C", server="srv2") == 425  # no Add
    acl_tree.copy("./A/B/Z", "./A/B/C", server="srv1")


def test_remove_server(acl_tree):
    acl_tree.remove_server("srv1")
    assert acl_tree.get("./A?prop=ACL").value == "Get=*"


# -- AccessType, restrictions, lists, snapshots ------------------------------------


def test_access_type_protects_direct_delete_only():
    tree = ManagementTree()
    tree.set("./P/Keep", "v")
    tree.set_access("./P/Keep", ("Get", "Replace"))
    assert status_of(tree.delete, "./P/Keep") == 405
    tree.delete("./P")   # deleted with its ancestor


def test_ddf_description_checks():
    desc = DDFNode("Vendor", format="node", children=[
        DDFNode("Ro", frozenset({"Get"}), "int"),
        DDFNode(None, frozenset({"Add", "Get", "Delete"}), "bool"),
    ])
    tree = ManagementTree()
    tree.set("./Vendor", None, "node")
    tree.bind_ddf("./Vendor", desc)
    assert status_of(tree.add, "./Vendor/Ro", "1", "int") == 405
    tree.add("./Vendor/flag", "true")          # chr default adopts the DDF format
    assert tree.get("./Vendor/flag").format == "bool"
    assert status_of(tree.add, "./Vendor/other", "AA==", "b64") == 415
    assert status_of(tree.replace, "./Vendor/flag", "false", "bool") == 405
    tree.set("./Vendor/Ro", "5", "int")
    assert status_of(tree.replace, "./Vendor/Ro", "6", "int") == 405
    assert tree.describe("./Vendor/flag").name is None


def test_restrict_compatibility(tree):
    tree.set("./Inbox", None, "node")
    tree.restrict("./Inbox", ("Get",), 405)
    tree.set("./Inbox/x", "v")
    assert status_of(tree.get, "./Inbox/x") == 405
    tree.unrestrict("./Inbox")
    assert tree.get("./Inbox/x").value == "v"


def spec_tree():
    """The tree of the ?list= appendix example: A{C, D{E{G,H}, F}}."""
    tree = ManagementTree()
    tree.set("./A/C", None, "node")
    tree.set("./A/D/E/G", "gv")
    tree.set("./A/D/E/H", b"\xff\xd8", "bin", "image/jpeg")
    tree.set("./A/D/F", "<x/>", "xml")
    return tree


def test_list_struct_order_and_data():
    tree = spec_tree()
    struct = tree.get("./A?list=Struct")
    assert [(d.uri, d.format) for d in struct] == [
        ("./A", "node"), ("./A/C", "node"), ("./A/D", "node"), ("./A/D/E", "node"),
        ("./A/D/F", "xml"), ("./A/D/E/G", "chr"), ("./A/D/E/H", "bin")]
    assert all(d.value is None for d in struct)
    data = {d.uri: d.value for d in tree.get("./A/D?list=StructData")}
    assert data["./A/D/E/H"] == b"\xff\xd8" and data["./A/D/F"] == "<x/>"
    assert status_of(tree.get, "./A?list=Everything") == 406
    assert tree.get_struct("./A") == struct


def test_list_leaves_out_what_the_server_may_not_get():
    tree = spec_tree()
    tree.set_acl("./A", "Get=*")
    tree.set_acl("./A/D/E", "Get=other")
    tree.set_access("./A/D/F", ("Replace",))
    uris = [d.uri for d in tree.get("./A?list=Struct", server="srv")]
    assert uris == ["./A", "./A/C", "./A/D"]


def test_snapshot_restore(tree):
    tree.add("./A/L", "1")
    snap = tree.snapshot()
    tree.replace("./A/L", "2")
    tree.delete("./A")
    tree.restore(snap)
    assert tree.get("./A/L").value == "1"
    tree.replace("./A/L", "3")
    tree.restore(snap)   # a snapshot can be restored more than once
    assert tree.get("./A/L").value == "1"


def test_limits_apply_to_commands():
    tree = ManagementTree(max_depth=2, max_seg_len=4)
    assert status_of(tree.add, "./A/B/C", "x") == 414
    assert status_of(tree.add, "./Toolong", "x") == 414


URI_PARTS = st.lists(st.sampled_from(["A", "B", ".", "..", "", "%", "%2F", "?prop=ACL",
                                      "?list=Struct", "?list=TNDS+ACL", "\x00", "é", "/"]),
                     max_size=6).map("".join)


@settings(max_examples=300, deadline=None)
@given(URI_PARTS, st.sampled_from(["get", "add", "replace", "delete", "exec", "copy"]),
       st.sampled_from([None, "srv1", "srv2"]))
def test_random_commands_raise_only_tree_errors(uri, command, server):
    tree = spec_tree()
    tree.set_acl("./A", "Get=srv1&Replace=srv1")
    try:
        if command == "copy":
            tree.copy(uri, "./A/D/E/G", server=server)
        elif command in ("add", "replace"):
            getattr(tree, command)(uri, "v", server=server)
        else:
            getattr(tree, command)(uri, server=server)
    except TreeError as error:
        assert 400 <= error.status < 600
