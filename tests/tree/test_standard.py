import os

import pytest

from dmgateway.codec.prov import decode_xml
from dmgateway.tree.standard import (MO_DMACC, add_dmacc, apply_cp_w7, apply_dm_bootstrap,
                                     find_accounts, standard_tree)
from dmgateway.tree.tnds import to_wbxml
from dmgateway.tree.tree import TNDS_XML, TreeError
from dmgateway.tree.uri import UriLimits

HERE = os.path.dirname(os.path.abspath(__file__))

# dm-bootstrap-cp §5.4 (copy of tests/fixtures/cp/w7-napdef.xml)
CP_W7 = os.path.join(HERE, "..", "fixtures", "cp", "w7-napdef.xml")

EXPECTED_54 = {
    "./DMAcc/acc1/AppID": "w7",
    "./DMAcc/acc1/ServerID": "com.example.dms",
    "./DMAcc/acc1/Name": "Example DMS",
    "./DMAcc/acc1/PrefConRef": "NAP1",
    "./DMAcc/acc1/AppAddr/1/Addr": "https://dms.example.com/dm",
    "./DMAcc/acc1/AppAddr/1/AddrType": "URI",
    "./DMAcc/acc1/AppAddr/1/Port/1/PortNbr": "443",
    "./DMAcc/acc1/AppAuth/1/AAuthLevel": "CLCRED",
    "./DMAcc/acc1/AppAuth/1/AAuthType": "DIGEST",
    "./DMAcc/acc1/AppAuth/1/AAuthName": "dmclient01",
    "./DMAcc/acc1/AppAuth/1/AAuthSecret": "s3cr3t!",
    "./DMAcc/acc1/AppAuth/1/AAuthData": bytes(range(1, 17)),
    "./DMAcc/acc1/AppAuth/2/AAuthLevel": "SRVCRED",
    "./DMAcc/acc1/AppAuth/2/AAuthType": "DIGEST",
    "./DMAcc/acc1/AppAuth/2/AAuthName": "com.example.dms",
    "./DMAcc/acc1/AppAuth/2/AAuthSecret": "srvPass123",
    "./DMAcc/acc1/AppAuth/2/AAuthData": bytes.fromhex("a1b2c3d4e5f60718"),
}


def leaves(tree, uri):
    return {"./" + "/".join(i.segments): i.value for i in tree.walk(uri, checked=False) if i.format != "node"}


def test_standard_objects():
    tree = standard_tree({"DevId": "IMEI:490154203237518"},
                         limits=UriLimits(max_depth=10, max_tot_len=255, max_seg_len=32))
    assert tree.get("./DevInfo/DevId", server="any").value == "IMEI:490154203237518"
    assert tree.get("./DevDetail/URI/MaxDepth").value == "10"
    assert tree.get("./DevDetail/URI/MaxTotLen").value == "255"
    assert tree.get("./DevDetail/URI/MaxSegLen").value == "32"
    assert tree.get("./DevDetail/LrgObj").format == "bool"
    for call, args in ((tree.replace, ("./DevInfo/Man", "x")), (tree.delete, ("./DevInfo",)),
                       (tree.get, ("./Inbox",)), (tree.get, ("./Inbox?prop=ACL",))):
        with pytest.raises(TreeError) as info:
            call(*args)
        assert info.value.status == 405


def test_cp_w7_example_gives_the_exact_tree():
    tree = standard_tree()
    with open(CP_W7, "rb") as f:
        doc = decode_xml(f.read())
    assert apply_cp_w7(tree, doc) == ["./DMAcc/acc1"]
    assert leaves(tree, "./DMAcc/acc1") == EXPECTED_54
    assert tree.get("./DMAcc/acc1?prop=ACL").value == \
        "Get=com.example.dms&Replace=com.example.dms&Delete=com.example.dms"
    assert tree.get("./DMAcc/acc1").type == MO_DMACC
    assert tree.get("./DMAcc/acc1/AppAuth/1/AAuthData?prop=Format").value == "bin"
    # the provisioned server reads its account but never the secrets
    assert tree.get("./DMAcc/acc1/ServerID", server="com.example.dms").value == "com.example.dms"
    for secret in ("AAuthSecret", "AAuthData"):
        with pytest.raises(TreeError) as info:
            tree.get("./DMAcc/acc1/AppAuth/1/" + secret, server="com.example.dms")
        assert info.value.status == 405
    with pytest.raises(TreeError) as info:
        tree.get("./DMAcc/acc1/ServerID", server="other")
    assert info.value.status == 425
    assert find_accounts(tree, "com.example.dms") == ["./DMAcc/acc1"]
    assert apply_cp_w7(tree, doc) == ["./DMAcc/acc2"]   # next free name


def test_cp_without_provider_id_changes_nothing():
    doc = decode_xml(b'<wap-provisioningdoc version="1.0"><characteristic type="APPLICATION">'
                     b'<parm name="APPID" value="w7"/></characteristic></wap-provisioningdoc>')
    tree = standard_tree()
    with pytest.raises(TreeError):
        apply_cp_w7(tree, doc)
    assert tree.get("./DMAcc").value == []


BOOT = (b'<MgmtTree><VerDTD>1.2</VerDTD>'
        b'<Node><NodeName>Internet</NodeName><RTProperties><Format><node/></Format><Type>'
        b'<DDFName>urn:oma:mo:unknown-conn:1.0</DDFName></Type></RTProperties></Node>'
        b'<Node><NodeName>boot</NodeName><RTProperties><ACL>Get=com.example.dms&amp;Replace='
        b'com.example.dms</ACL><Format><node/></Format><Type><DDFName>org.openmobilealliance/1.0/w7'
        b'</DDFName></Type></RTProperties>'
        b'<Node><NodeName>AppID</NodeName><Value>w7</Value></Node>'
        b'<Node><NodeName>ServerID</NodeName><Value>com.example.dms</Value></Node>'
        b'<Node><NodeName>PrefConRef</NodeName><Value>./Inbox/boot/AppID</Value></Node>'
        b'</Node></MgmtTree>')


def test_dm_bootstrap_via_inbox_wbxml():
    from dmgateway.codec.xml import parse

    tree = standard_tree()
    placed = apply_dm_bootstrap(tree, to_wbxml(parse(BOOT)))
    assert placed == ["./DMAcc/boot"]   # the unknown MO is skipped
    assert tree.get("./DMAcc/boot/ServerID", server="com.example.dms").value == "com.example.dms"
    assert tree.read("./DMAcc/boot/PrefConRef").value == "./DMAcc/boot/AppID"  # rewritten
    assert find_accounts(tree) == ["./DMAcc/boot"]


def test_server_add_to_inbox_routes_the_mo():
    tree = standard_tree()
    uri = tree.add("./Inbox", BOOT.replace(b"urn:oma:mo:unknown-conn:1.0", MO_DMACC.encode()),
                   "xml", TNDS_XML, server="com.example.dms")
    assert uri == "./DMAcc/Internet"
    assert tree.exists("./DMAcc/boot/AppID")
    tree.add("./Inbox/acc9", None, "node", MO_DMACC, server="com.example.dms")
    assert tree.exists("./DMAcc/acc9") and tree.read("./Inbox").value == []
    with pytest.raises(TreeError) as info:
        tree.add("./Inbox/x", None, "node", "urn:unknown", server="s")
    assert info.value.status == 406


def test_add_dmacc_helper():
    tree = standard_tree()
    base = add_dmacc(tree, "srv", "com.example.dms", "https://dms.example.com/dm", auth=[
        {"AAuthLevel": "CLCRED", "AAuthType": "DIGEST", "AAuthName": "u", "AAuthSecret": "p",
         "AAuthData": b"n"}])
    assert leaves(tree, base)["./DMAcc/srv/AppAuth/1/AAuthData"] == b"n"
    with pytest.raises(TreeError):
        add_dmacc(tree, "srv", "x", "y")
