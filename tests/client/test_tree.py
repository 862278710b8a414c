"""The client's management tree: URIs, node operations, status codes, defaults."""

import pytest

from dmgateway.client.tree import (
    DEVINFO_LEAVES,
    ManagementTree,
    NodeData,
    TreeError,
    default_tree,
)

from .support import CLIENT_NONCE, SERVER_ID, SERVER_NONCE, SERVER_URL, make_account


def status_of(call, *args):
    with pytest.raises(TreeError) as info:
        call(*args)
    return info.value.status


@pytest.fixture
def tree():
    tree = ManagementTree()
    tree.add_interior("./A")
    tree.add("./A/B", "b")
    tree.add("./A/C/D", "d", "int")
    return tree


def test_uri_forms(tree):
    assert tree.get("A/B") == NodeData("A/B", "b", "chr", None)
    assert tree.get("./A/B").value == "b"
    assert tree.get(".").value == ["A"]
    for bad in ("", "./", "./A/", "./A//B", "./A/../B", "./A/./B", "/A", "A/.."):
        assert status_of(tree.get, bad) == 414, bad


def test_uri_limits():
    tree = ManagementTree(max_depth=2, max_tot_len=12, max_seg_len=4)
    tree.add("./A/B", "x")
    assert status_of(tree.add, "./A/B/C", "x") == 414
    assert status_of(tree.add, "./ABCDE", "x") == 414
    assert status_of(tree.get, "./A/B?prop=Format") == 414  # 17 characters
    assert tree.get("./A/B").value == "x"


def test_get_interior_and_missing(tree):
    assert tree.get("./A") == NodeData("./A", ["B", "C"], "node", None)
    assert status_of(tree.get, "./A/X") == 404
    assert status_of(tree.get, "./A/B/X") == 404  # below a leaf


def test_add(tree):
    assert status_of(tree.add, "./A/B", "again") == 418
    assert status_of(tree.add, ".", None, "node") == 418
    assert status_of(tree.add, "./A/B/X", "x") == 405
    assert status_of(tree.add, "./A/B/X/Y", "x") == 405
    assert status_of(tree.add, "./A?prop=Title", "x") == 405
    tree.add("./N1/N2/Leaf", b"\x00", "bin", "application/x")
    assert tree.get("./N1/N2").format == "node"
    assert tree.get("./N1/N2/Leaf") == NodeData("./N1/N2/Leaf", b"\x00", "bin", "application/x")
    tree.add("./A/Empty", None)
    assert tree.get("./A/Empty").value == ""


def test_replace(tree):
    tree.replace("./A/B", "b2", "chr", "text/x")
    assert tree.get("./A/B")[1:] == ("b2", "chr", "text/x")
    assert status_of(tree.replace, "./A/Nope", "x") == 404
    assert status_of(tree.replace, "./A", "x") == 405
    assert status_of(tree.replace, "./A/B", None, "node") == 405
    tree.replace("./A", None, "node", "com.example/1.0/A")
    assert tree.get("./A").type == "com.example/1.0/A"


def test_properties(tree):
    tree.replace("./A?prop=ACL", "Get=*&Replace=srv")
    tree.replace("./A?prop=Title", b"The A")
    assert tree.get("./A?prop=ACL").value == "Get=*&Replace=srv"
    assert tree.get("./A/B?prop=ACL").value == ""
    assert tree.get("./A?prop=Title") == NodeData("./A?prop=Title", "The A", "chr", "text/plain")
    assert tree.get("./A/C/D?prop=Format").value == "int"
    assert tree.get("./A/B?prop=Type").value == ""
    assert tree.get("./A/B?prop=Size").value == "1"
    assert tree.get(".?prop=ACL").value == "Add=*&Get=*"
    assert status_of(tree.get, "./A?prop=Size") == 406
    assert status_of(tree.get, "./A?prop=TStamp") == 406
    assert status_of(tree.get, "./A?list=Struct") == 406
    assert status_of(tree.replace, "./A?prop=Format", "chr") == 405
    assert status_of(tree.replace, "./A?prop=Nope", "x") == 406


def test_rename(tree):
    tree.replace("./A/B?prop=Name", "B2")
    assert tree.get("./A").value == ["C", "B2"]
    assert tree.get("./A/B2?prop=Name").value == "B2"
    assert status_of(tree.replace, "./A/B2?prop=Name", "C") == 418
    assert status_of(tree.replace, "./A/B2?prop=Name", "x/y") == 414
    assert status_of(tree.replace, ".?prop=Name", "root") == 405


def test_delete(tree):
    assert status_of(tree.delete, ".") == 405
    assert status_of(tree.delete, "./A/X") == 404
    tree.set_permanent("./A/B")
    assert status_of(tree.delete, "./A/B") == 405
    tree.delete("./A/C")
    assert not tree.exists("./A/C/D")
    tree.delete("./A")  # permanent children go with their ancestor
    assert not tree.exists("./A/B")


def test_copy(tree):
    tree.copy("./A/E", "./A/C/D")
    assert tree.get("./A/E")[1:] == ("d", "int", None)
    tree.copy("./A/B", "./A/C/D")
    assert tree.get("./A/B").value == "d"
    assert status_of(tree.copy, "./A/F", "./A/C") == 405
    assert status_of(tree.copy, "./A/F", "./A/Nope") == 404
    assert status_of(tree.copy, "./A/C", "./A/B") == 405


def test_exec(tree):
    seen = []
    tree.register_exec("./Ops/Run", lambda uri, data, corr: seen.append((data, corr)))
    assert tree.exec("./Ops/Run", "arg", "c1") == 200
    assert seen == [("arg", "c1")]
    assert tree.get("./Ops/Run").value == ""
    tree.register_exec("./A/B", lambda uri, data, corr: 202)
    assert tree.exec("./A/B") == 202
    assert tree.get("./A/B").value == "b"  # an existing node keeps its value
    assert status_of(tree.exec, "./A/C/D") == 405
    assert status_of(tree.exec, "./Nope") == 404
    tree.register_exec("./Ops/Fail", lambda uri, data, corr: {}["missing"])
    assert status_of(tree.exec, "./Ops/Fail") == 500


def test_restrictions_apply_below(tree):
    tree.restrict("./A", ("Get", "Exec"))
    assert status_of(tree.get, "./A/C/D") == 425
    tree.register_exec("./A/Run", lambda *args: None)
    assert status_of(tree.exec, "./A/Run") == 425
    tree.unrestrict("./A")
    tree.read_only("./A/C")
    assert status_of(tree.add, "./A/C/E", "x") == 425
    assert status_of(tree.add, "./A/C/E/F", "x") == 425
    assert status_of(tree.replace, "./A/C/D", "x") == 425
    assert status_of(tree.delete, "./A/C") == 425
    assert status_of(tree.copy, "./A/C/D2", "./A/B") == 425
    tree.add("./A/Other", "fine")
    assert tree.read("./A/C/D").value == "d"
    with pytest.raises(ValueError):
        tree.restrict("./A", ("Fly",))


def test_struct_skips_what_may_not_be_read(tree):
    tree.restrict("./A/C", ("Get",))
    assert [nd.uri for nd in tree.get_struct("./A")] == ["./A", "./A/B"]
    assert tree.get_struct("./A/B", with_data=True) == [NodeData("./A/B", "b", "chr", None)]
    assert [nd.uri for nd in tree.get_struct(".")][:2] == [".", "./A"]
    assert status_of(tree.get_struct, "./A/C") == 425
    assert status_of(tree.get_struct, "./A?prop=ACL") == 406


def test_snapshot_and_restore(tree):
    snapshot = tree.snapshot()
    tree.replace("./A/B", "changed")
    tree.delete("./A/C")
    tree.add("./Z", "z")
    tree.restore(snapshot)
    assert tree.get("./A/B").value == "b"
    assert tree.get("./A/C/D").value == "d"
    assert not tree.exists("./Z")
    tree.replace("./A/B", "again")
    tree.restore(snapshot)  # a snapshot can be restored more than once
    assert tree.get("./A/B").value == "b"


def test_set_is_unchecked(tree):
    tree.set("./A/B/Sub", "x")  # a leaf in the way becomes interior
    assert tree.get("./A/B").format == "node"
    tree.restrict("./A/C/D", ("Get",))
    tree.set("./A/C/D", "new")
    assert status_of(tree.get, "./A/C/D") == 425  # restrictions survive an overwrite
    assert tree.read("./A/C/D").value == "new"
    with pytest.raises(TreeError):
        tree.set(".", "x")


def test_default_tree():
    account = make_account()
    tree = default_tree(account, devinfo={"Man": "ExampleCorp"}, devdetail={"SwV": "4.2.1"},
                        max_depth=12)
    assert [tree.read("./DevInfo/" + leaf).value for leaf in DEVINFO_LEAVES] == [
        "IMEI:490154203237518", "ExampleCorp", "dmgw-sim", "1.2", "en-US"]
    assert tree.read("./DevDetail/SwV").value == "4.2.1"
    assert tree.read("./DevDetail/LrgObj")[1:3] == ("true", "bool")
    assert tree.read("./DevDetail/URI/MaxDepth").value == "12"
    assert tree.get("./DevDetail").value == [
        "DevTyp", "OEM", "FwV", "SwV", "HwV", "LrgObj", "URI"]
    assert tree.get("./DevInfo?prop=Type").value == "urn:oma:mo:oma-dm-devinfo:1.0"
    assert status_of(tree.replace, "./DevInfo/Man", "x") == 405
    assert status_of(tree.delete, "./DevInfo") == 405
    assert status_of(tree.get, "./Inbox") == 405
    acc = "./DMAcc/example/"
    assert tree.get("./DMAcc/example?prop=Type").value == "urn:oma:mo:oma-dm-dmacc:1.0"
    values = {name: tree.get(acc + name).value for name in (
        "AppID", "ServerID", "AppAddr/1/Addr", "AppAddr/1/AddrType", "AAuthPref",
        "AppAuth/1/AAuthLevel", "AppAuth/1/AAuthType", "AppAuth/1/AAuthName",
        "AppAuth/2/AAuthLevel", "AppAuth/2/AAuthType", "AppAuth/2/AAuthName")}
    assert values == {
        "AppID": "w7", "ServerID": SERVER_ID, "AppAddr/1/Addr": SERVER_URL,
        "AppAddr/1/AddrType": "URI", "AAuthPref": "DIGEST",
        "AppAuth/1/AAuthLevel": "CLCRED", "AppAuth/1/AAuthType": "DIGEST",
        "AppAuth/1/AAuthName": "dmclient01",
        "AppAuth/2/AAuthLevel": "SRVCRED", "AppAuth/2/AAuthType": "DIGEST",
        "AppAuth/2/AAuthName": "com.example.dms",
    }
    for secret in ("AppAuth/1/AAuthSecret", "AppAuth/1/AAuthData", "AppAuth/2/AAuthData"):
        assert status_of(tree.get, acc + secret) == 405
    assert tree.read(acc + "AppAuth/1/AAuthData")[1:3] == (CLIENT_NONCE, "bin")
    assert tree.read(acc + "AppAuth/2/AAuthData").value == SERVER_NONCE
    assert tree.read(acc + "AppAuth/2/AAuthSecret").value == "srvPass123"
