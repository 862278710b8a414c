"""TNDS export/import (dm-tree-objects §4-5) in XML and WBXML."""

import pytest

from dmgateway.codec.xml import parse, serialize
from dmgateway.tree.tnds import export_tnds, parse_list_spec, read_tnds, to_wbxml, to_xml
from dmgateway.tree.tree import TNDS_WBXML, TNDS_XML, ManagementTree, TreeError

# Data of tests/fixtures/dm/19-results-tnds.xml (Get ./Vendor?list=TNDS+Value+ACL)
RESULTS_TNDS = (
    b'<MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD><Man>ExampleCorp</Man><Mod>EX-100</Mod>'
    b'<Node><NodeName>Vendor</NodeName><RTProperties><ACL>Get=*</ACL><Format><node/></Format>'
    b'<Type><DDFName/></Type></RTProperties></Node><Node><NodeName>ISP</NodeName><Path>Vendor</Path>'
    b'<RTProperties><Format><node/></Format><Type><DDFName/></Type></RTProperties></Node><Node>'
    b'<NodeName>GWName</NodeName><Path>Vendor/ISP</Path><RTProperties><ACL>Get=*&amp;Replace=com.example.dms'
    b'</ACL><Format><chr/></Format><Type><MIME>text/plain</MIME></Type></RTProperties><Value>gw.yyy.se'
    b'</Value></Node></MgmtTree>')

# dm-tree-objects §5 example with the ACL of fixture 18 (Add at ./OperatorX)
EMAIL_TNDS = (
    b'<MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD><Node><NodeName>E-Mail</NodeName>'
    b'<RTProperties><Format><node/></Format><Type><DDFName>com.operatorX.dm/1.0/EMail</DDFName></Type>'
    b'</RTProperties><Node><NodeName>POP3</NodeName><Node><NodeName>POPServer</NodeName><RTProperties>'
    b'<ACL>Get=*&amp;Replace=com.operatorX.dms</ACL><Format><chr/></Format><Type><MIME>text/plain</MIME>'
    b'</Type></RTProperties><Value>mail.operatorx.com</Value></Node><Node><NodeName>Port</NodeName>'
    b'<RTProperties><Format><int/></Format></RTProperties><Value>995</Value></Node></Node></Node></MgmtTree>')

# libwbxml output quoted in dm-wbxml §3.3
LIBWBXML_TNDS = bytes.fromhex(
    "0300006a1b2d2f2f4f4d412f2f4454442d444d2d44444620312e322f2f454e00"
    "0002607703312e3200016466034e616d6500016f5c0b017561037465787"
    "42f706c61696e00010101760358000101 01".replace(" ", ""))


def vendor_tree():
    tree = ManagementTree()
    tree.set("./Vendor/ISP/GWName", "gw.yyy.se")
    tree.set_acl("./Vendor", "Get=*")
    tree.set_acl("./Vendor/ISP/GWName", "Get=*&Replace=com.example.dms")
    return tree


def test_export_matches_the_results_fixture():
    tree = vendor_tree()
    node = export_tnds(tree, "./Vendor", "com.example.dms", parse_list_spec("TNDS+Value+ACL"),
                       man="ExampleCorp", mod="EX-100", flat=True)
    assert to_xml(node) == RESULTS_TNDS
    data = tree.get("./Vendor?list=TNDS+Value+ACL", server="com.example.dms")
    assert data.format == "xml" and data.type == TNDS_XML
    assert read_tnds(to_xml(data.value)) == data.value


def test_nested_export_reimports_to_the_same_tree():
    tree = vendor_tree()
    tree.set("./Vendor/Bin", b"\x00\x01", "bin")
    node = tree.get("./Vendor?list=TNDS").value
    copy = ManagementTree()
    copy.add(".", node, type=TNDS_XML)
    assert [(i.segments, i.format, i.value, i.acl) for i in copy.walk("./Vendor")] == \
        [(i.segments, i.format, i.value, i.acl) for i in tree.walk("./Vendor")]


@pytest.mark.parametrize("flat", [False, True])
def test_xml_wbxml_round_trip(flat):
    tree = vendor_tree()
    tree.set("./Vendor/Bin", b"\xff\x00", "bin")
    node = export_tnds(tree, "./Vendor", flat=flat)
    wbxml = to_wbxml(node)
    assert read_tnds(wbxml, TNDS_WBXML) == read_tnds(wbxml)
    back = read_tnds(wbxml)
    # XML carries the binary value as base64 text; both import to the same tree
    trees = []
    for doc in (back, to_xml(node)):
        t = ManagementTree()
        t.add(".", doc, type=TNDS_WBXML if doc is back else TNDS_XML)
        trees.append([(i.segments, i.format, i.value, i.acl) for i in t.walk(".")])
    assert trees[0] == trees[1]
    assert ("Vendor", "Bin") in [s for s, _, _, _ in trees[0]]
    assert dict((s, v) for s, _, v, _ in trees[0])[("Vendor", "Bin")] == b"\xff\x00"


def test_libwbxml_vector_imports():
    node = read_tnds(LIBWBXML_TNDS)
    assert to_wbxml(node) == LIBWBXML_TNDS
    tree = ManagementTree()
    tree.add("./Dir", format="node")
    tree.add("./Dir", LIBWBXML_TNDS, type=TNDS_WBXML)
    assert tree.get("./Dir/Name").value == "X"


def test_add_email_example():
    tree = ManagementTree()
    tree.add("./OperatorX", format="node")
    tree.add("./OperatorX", EMAIL_TNDS, "xml", TNDS_XML, server="com.operatorX.dms")
    assert tree.get("./OperatorX/E-Mail").type == "com.operatorX.dm/1.0/EMail"
    assert tree.get("./OperatorX/E-Mail/POP3/Port").format == "int"
    assert tree.get("./OperatorX/E-Mail/POP3/POPServer?prop=ACL").value == \
        "Get=*&Replace=com.operatorX.dms"


def test_add_is_all_or_nothing():
    tree = ManagementTree()
    tree.set("./OperatorX/E-Mail/POP3/Port", "1")  # the last node collides
    before = [(i.segments, i.value) for i in tree.walk(".")]
    with pytest.raises(TreeError) as info:
        tree.add("./OperatorX", EMAIL_TNDS, type=TNDS_XML)
    assert info.value.status == 418
    assert [(i.segments, i.value) for i in tree.walk(".")] == before


def test_acl_denial_inside_tnds_rolls_back():
    tree = ManagementTree()
    tree.set("./OperatorX", None, "node")
    tree.set_acl("./OperatorX", "Get=*")
    with pytest.raises(TreeError) as info:
        tree.add("./OperatorX", EMAIL_TNDS, type=TNDS_XML, server="srv")
    assert info.value.status == 425
    assert tree.get("./OperatorX").value == []


def test_replace_subtree():
    tree = vendor_tree()
    tree.set("./Vendor/Old", "gone")
    new = (b'<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName>Vendor</NodeName><RTProperties>'
           b'<Format><node/></Format></RTProperties><Node><NodeName>New</NodeName><Value>n</Value>'
           b'</Node></Node></MgmtTree>')
    tree.replace(".", new, "xml", TNDS_XML)
    assert tree.get("./Vendor").value == ["New"]


def test_empty_nodename_is_the_target():
    doc = (b'<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName/><RTProperties><Format><node/></Format>'
           b'</RTProperties><Node><NodeName>L</NodeName><Value>v</Value></Node></Node></MgmtTree>')
    tree = ManagementTree()
    tree.add("./Here", doc, type=TNDS_XML)
    assert tree.get("./Here/L").value == "v"


@pytest.mark.parametrize("doc", [b"", b"<x/>", b"<MgmtTree><Node><NodeName>a/b</NodeName></Node></MgmtTree>",
                                 b"\x03\x00\x00", b"<MgmtTree><Node><NodeName>a</NodeName>"
                                 b"<RTProperties><Format><weird/></Format></RTProperties></Node></MgmtTree>"])
def test_bad_documents_are_400(doc):
    with pytest.raises(TreeError) as info:
        ManagementTree().add(".", doc, type=TNDS_XML)
    assert info.value.status == 400


def test_list_specs():
    assert parse_list_spec("TNDS+Value+ACL") == {"Value", "ACL"}
    assert "Format" not in parse_list_spec("TNDS-Format")
    for bad in ("TNDS+ACL-Value", "TNDS+Colour", "TNDSx"):
        with pytest.raises(TreeError) as info:
            parse_list_spec(bad)
        assert info.value.status == 406


def test_tnds_export_hides_unreadable_nodes():
    tree = vendor_tree()
    tree.set_access("./Vendor/ISP/GWName", ("Replace",))
    xml = to_xml(tree.get("./Vendor?list=TNDS", server="x").value)
    assert b"GWName" not in xml and b"ISP" in xml
    assert serialize(parse(xml)) == xml
