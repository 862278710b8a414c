"""Interop with libwbxml's command-line tools (Debian ``libwbxml2-utils``).

For every DM corpus message and every CP fixture:

(a) our WBXML, decoded by ``wbxml2xml``, reads (with our XML reader) to the
    same model;
(b) ``xml2wbxml``'s WBXML of the XML fixture reads (with our WBXML reader) to
    the same model.

Options used:

* ``wbxml2xml -m 0 -k``: compact output (no indentation added inside text)
  and keep whitespace, so ``<Data>`` text comes back byte for byte.  The
  language comes from the public id we write; no ``-l`` needed.
* ``xml2wbxml`` with its defaults (string table on: exercises our STR_T
  reading) and again with ``-n`` (no string table).  No ``-k``: with it
  libwbxml puts the fixtures' indentation into the OPAQUE TNDS document it
  embeds, which is then no longer WBXML (its first byte is a newline).

Nothing is normalised before comparing but one libwbxml habit: libwbxml writes
``<Data>`` values as OPAQUE, and our reader types Data by its Format (text
unless ``bin``), so its WBXML decodes to exactly what the XML says.  The
habit: ``xml2wbxml`` rewrites every Meta Type ``...dmtnds+xml`` to
``...dmtnds+wbxml``, even on a Get that asks for the XML form and carries no
data; that one rewrite is checked and undone (our encoder never does it).  libwbxml cannot read or write
inline DDF tokens (code page 2) inside a SyncML document: it turns an inline
``MgmtTree`` into an OPAQUE WBXML TNDS document and changes Meta/Type to
``...dmtnds+wbxml`` (and back when decoding); we send TNDS data the same way
and read the embedded document back into a tree.
"""

import base64
from pathlib import Path

import pytest

from dmgateway.codec import prov, wbxml, xml
from dmgateway.codec.syncml import Container
from tests.codec.libwbxml import requires_libwbxml, wbxml2xml, xml2wbxml

FIXTURES = Path(__file__).parent.parent / "fixtures"
DM_CORPUS = sorted((FIXTURES / "dm").glob("*.xml"))
CP_DOCS = sorted((FIXTURES / "cp").glob("*.xml"))
TNDS_WBXML = "application/vnd.syncml.dmtnds+wbxml"
TNDS_XML = "application/vnd.syncml.dmtnds+xml"

pytestmark = requires_libwbxml


def items(commands):
    for cmd in commands:
        yield from getattr(cmd, "items", ())
        if isinstance(cmd, Container):
            yield from items(cmd.commands)


def test_there_is_enough_to_compare():
    assert len(DM_CORPUS) >= 20 and len(CP_DOCS) >= 3


def as_xml_can_carry(text, msg):
    """``wbxml2xml`` copies OPAQUE binary (Format ``bin``) into its XML byte
    for byte, which no XML reader takes: check each value is there exactly
    once, as sent, and write it as the base64 text XML uses instead."""
    for item in items(msg.body):
        if isinstance(item.data, bytes):
            raw = b"<Data>" + item.data + b"</Data>"
            assert text.count(raw) == 1, item
            text = text.replace(raw, b"<Data>" + base64.b64encode(item.data) + b"</Data>")
    return text


@pytest.mark.parametrize("path", DM_CORPUS, ids=lambda p: p.name)
def test_dm_our_wbxml_read_by_libwbxml(path, tmp_path):
    msg = xml.decode(path.read_bytes())
    ours = wbxml.encode(msg)
    assert xml.decode(as_xml_can_carry(wbxml2xml(ours, tmp_path), msg)) == msg


@pytest.mark.parametrize("options", [(), ("-n",)], ids=["string-table", "no-string-table"])
@pytest.mark.parametrize("path", DM_CORPUS, ids=lambda p: p.name)
def test_dm_libwbxml_wbxml_read_by_us(path, options, tmp_path):
    msg = xml.decode(path.read_bytes())
    theirs = xml2wbxml(path, options, tmp_path)
    assert undo_type_rewrite(wbxml.decode(theirs), msg) == msg


def metas(commands):
    for cmd in commands:
        if getattr(cmd, "meta", None) is not None:
            yield cmd.meta
        for item in getattr(cmd, "items", ()):
            if item.meta is not None:
                yield item.meta
        if isinstance(cmd, Container):
            yield from metas(cmd.commands)


def undo_type_rewrite(decoded, expected):
    """libwbxml's ``+xml`` -> ``+wbxml`` on Meta Type, where the XML said ``+xml``."""
    for got, want in zip(metas(decoded.body), metas(expected.body)):
        if (got.type, want.type) == (TNDS_WBXML, TNDS_XML):
            got.type = TNDS_XML
    return decoded


def test_our_encoder_keeps_the_tnds_type_asked_for(tmp_path):
    """A Get for the XML form of a subtree goes out asking for the XML form."""
    msg = xml.decode((FIXTURES / "dm" / "34-get-tnds-xml-type.xml").read_bytes())
    ours = wbxml.encode(msg)
    assert TNDS_WBXML.encode() not in ours and TNDS_XML.encode() in ours
    assert wbxml.decode(ours) == msg
    assert xml.decode(wbxml2xml(ours, tmp_path)) == msg


def test_tnds_in_a_dm_message_goes_as_libwbxml_expects(tmp_path):
    """libwbxml has no code page 2 for SyncML: TNDS travels as an embedded document."""
    msg = xml.decode((FIXTURES / "dm" / "18-add-tnds-inline.xml").read_bytes())
    decoded = wbxml2xml(wbxml.encode(msg), tmp_path)
    assert b"<unknown>" not in decoded
    assert b"MgmtTree" in decoded
    assert xml.decode(decoded) == msg


@pytest.mark.parametrize("path", CP_DOCS, ids=lambda p: p.name)
def test_cp_our_wbxml_read_by_libwbxml(path, tmp_path):
    doc = prov.decode_xml(path.read_bytes())
    assert prov.decode_xml(wbxml2xml(prov.encode_wbxml(doc), tmp_path)) == doc


@pytest.mark.parametrize("options", [(), ("-n",)], ids=["string-table", "no-string-table"])
@pytest.mark.parametrize("path", CP_DOCS, ids=lambda p: p.name)
def test_cp_libwbxml_wbxml_read_by_us(path, options, tmp_path):
    doc = prov.decode_xml(path.read_bytes())
    assert prov.decode_wbxml(xml2wbxml(path, options, tmp_path)) == doc


def test_stand_alone_tnds_read_by_libwbxml(tmp_path):
    """libwbxml reads our stand-alone TNDS document (FPI in the string table)."""
    msg = xml.decode((FIXTURES / "dm" / "18-add-tnds-inline.xml").read_bytes())
    tree = msg.body[1].items[0].data
    text = wbxml2xml(wbxml.encode_tnds(tree), tmp_path)
    assert xml.parse(text) == tree
