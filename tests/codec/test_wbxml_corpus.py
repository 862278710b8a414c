"""The WBXML reader and writer over the whole fixture corpus, checked by libwbxml.

The reader and the writer are tuned for speed (inline hot paths, compiled
tables, a cached header); this keeps them honest with an implementation that
shares nothing with ours: every DM and CP fixture is

* written by ``xml2wbxml`` (with and without a string table) and read by us,
  giving the tree ``wbxml2xml`` reads from the same bytes (parsed by lxml);
* written by us and read back by ``wbxml2xml``, giving the fixture's tree.

Two habits of libwbxml are undone on the way: it sends ``<Data>`` as OPAQUE
(bytes in our tree, text in its XML) and carries TNDS as an embedded DDF
document with the Meta Type ``...dmtnds+wbxml`` (turned back into ``+xml``
by ``wbxml2xml``).
"""

from pathlib import Path

import pytest

from dmgateway.codec import wbxml, xml
from dmgateway.codec.element import NS_DMDDF
from dmgateway.codec.wbxml_pages import PROV10, SYNCML11, SYNCML12
from tests.codec.libwbxml import requires_libwbxml, wbxml2xml, xml2wbxml

FIXTURES = Path(__file__).parent.parent / "fixtures"
CORPUS = sorted((FIXTURES / "dm").glob("*.xml")) + sorted((FIXTURES / "cp").glob("*.xml"))
TNDS_XML = "application/vnd.syncml.dmtnds+xml"
TNDS_WBXML = "application/vnd.syncml.dmtnds+wbxml"

# the C accelerator and the pure reader and writer, each through every test here
pytestmark = [requires_libwbxml, pytest.mark.usefixtures("wbxml_impl")]


def vocabulary_of(tree):
    if tree.name != "SyncML":
        return PROV10
    ver = tree.find("SyncHdr").find("VerDTD").text
    return SYNCML11 if ver == "1.1" else SYNCML12


def walk(node):
    yield node
    for child in node.children:
        yield from walk(child)


def as_libwbxml_reads_it(tree):
    """``tree`` with OPAQUE as text and embedded TNDS as its tree (in place)."""
    for node in walk(tree):
        if node.text.__class__ is bytes:
            if node.text[:1] == b"\x03" and b"DM-DDF" in node.text[:64]:
                node.children, node.text = [wbxml.decode_tnds(node.text)], None
            else:
                node.text = node.text.decode("utf-8")
        if node.name == "Type" and node.text == TNDS_WBXML:
            node.text = TNDS_XML
    return tree


def with_embedded_tnds(tree):
    """``tree`` with every inline TNDS as an embedded WBXML document (libwbxml
    has no code page 2 for SyncML), the way :func:`wbxml.encode` sends it."""
    for item in walk(tree):
        data = item.find("Data") if item.name == "Item" else None
        if data is not None and len(data.children) == 1 and data.children[0].ns == NS_DMDDF:
            data.text, data.children = wbxml.encode_tnds(data.children[0]), []
            meta = item.find("Meta")
            meta_type = meta.find("Type") if meta is not None else None
            if meta_type is not None and meta_type.text == TNDS_XML:
                meta_type.text = TNDS_WBXML
    return tree


def test_the_corpus_is_there():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("options", [(), ("-n",)], ids=["string-table", "no-string-table"])
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_we_read_libwbxml_documents_as_libwbxml_does(path, options, tmp_path):
    theirs = xml2wbxml(path, options, tmp_path)
    ours = as_libwbxml_reads_it(wbxml.decode_node(theirs))
    assert ours == xml.parse(wbxml2xml(theirs, tmp_path))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_libwbxml_reads_our_documents_as_the_fixture(path, tmp_path):
    tree = xml.parse(path.read_bytes())
    ours = wbxml.encode_node(with_embedded_tnds(xml.parse(path.read_bytes())), vocabulary_of(tree))
    assert xml.parse(wbxml2xml(ours, tmp_path)) == tree
    assert as_libwbxml_reads_it(wbxml.decode_node(ours)) == tree
