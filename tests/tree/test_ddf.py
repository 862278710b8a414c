import os

import pytest

from dmgateway.codec.errors import CodecError
from dmgateway.tree.ddf import parse_ddf
from dmgateway.tree.tnds import to_wbxml
from dmgateway.tree.tree import ManagementTree, TreeError

HERE = os.path.dirname(os.path.abspath(__file__))


def vendor_ddf():
    with open(os.path.join(HERE, "fixtures", "vendor.ddf.xml"), "rb") as f:
        return parse_ddf(f.read())


def test_properties_read():
    ddf = vendor_ddf()
    assert (ddf.man, ddf.mod) == ("ExampleCorp", "EX-100")
    vendor = ddf.find_by_type("com.example/1.0/Vendor")
    assert vendor.permanent and vendor.access == {"Get"} and vendor.format == "node"
    profile = vendor.child("anything")
    assert profile.name is None and profile.occurrence == ("ZeroOrN", 4)
    assert profile.title == "A profile"
    enabled = profile.child("ENABLED")   # CaseSense CIS
    assert enabled.format == "bool" and enabled.default == "false"
    assert enabled.mime == "text/plain" and enabled.access == {"Add", "Get", "Replace"}
    assert ddf.lookup(("Vendor", "p1", "Enabled")) is enabled


def test_wbxml_reads_the_same():
    from dmgateway.codec.xml import parse

    with open(os.path.join(HERE, "fixtures", "vendor.ddf.xml"), "rb") as f:
        node = parse(f.read())
    assert parse_ddf(to_wbxml(node)) == parse_ddf(node)


def test_tree_uses_the_ddf_by_mo_id():
    ddf = vendor_ddf()
    tree = ManagementTree()
    tree.register_ddf("com.example/1.0/Vendor", ddf.find_by_type("com.example/1.0/Vendor"))
    tree.set("./Vendor", None, "node", "com.example/1.0/Vendor")
    tree.add("./Vendor/p1/Enabled", "true")
    assert tree.get("./Vendor/p1/Enabled").format == "bool"
    with pytest.raises(TreeError) as info:
        tree.delete("./Vendor/p1/Enabled")
    assert info.value.status == 405
    tree.delete("./Vendor/p1")


@pytest.mark.parametrize("doc", [b"<Other/>", b"<MgmtTree><Node/></MgmtTree>",
                                 b"<MgmtTree><Node><NodeName>a</NodeName></Node></MgmtTree>",
                                 b"not xml", "text"])
def test_bad_ddf_raises_codec_errors(doc):
    with pytest.raises(CodecError):
        parse_ddf(doc)
