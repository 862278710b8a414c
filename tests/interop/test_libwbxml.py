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

Two libwbxml habits are normalised before comparing, both documented in its
encoder and harmless to the model's meaning:

* it writes some ``<Data>`` values as OPAQUE, which our model keeps as
  ``bytes``: compared as their UTF-8 text;
* it cannot read or write inline DDF tokens (code page 2) inside a SyncML
  document: it turns an inline ``MgmtTree`` into an OPAQUE WBXML TNDS
  document and changes Meta/Type to ``...dmtnds+wbxml`` (and back when
  decoding).  For (a) we therefore send TNDS data the way libwbxml does;
  for (b) the embedded document is read back into a tree.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from dmgateway.codec import prov, wbxml, xml
from dmgateway.codec.syncml import Container

FIXTURES = Path(__file__).parent.parent / "fixtures"
DM_CORPUS = sorted((FIXTURES / "dm").glob("*.xml"))
CP_DOCS = sorted((FIXTURES / "cp").glob("*.xml"))
TNDS_WBXML = "application/vnd.syncml.dmtnds+wbxml"
TNDS_XML = "application/vnd.syncml.dmtnds+xml"
TIMEOUT = 30

pytestmark = pytest.mark.skipif(
    not (shutil.which("xml2wbxml") and shutil.which("wbxml2xml")),
    reason="libwbxml tools missing: apt-get install libwbxml2-utils",
)


def run(tool, *args):
    result = subprocess.run([tool, *map(str, args)], capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 0, (tool, result.stdout, result.stderr)


def wbxml2xml(data, tmp_path):
    source, target = tmp_path / "in.wbxml", tmp_path / "out.xml"
    source.write_bytes(data)
    run("wbxml2xml", "-m", "0", "-k", "-o", target, source)
    return target.read_bytes()


def xml2wbxml(path, options, tmp_path):
    target = tmp_path / "out.wbxml"
    run("xml2wbxml", *options, "-o", target, path)
    return target.read_bytes()


def items(commands):
    for cmd in commands:
        yield from getattr(cmd, "items", ())
        if isinstance(cmd, Container):
            yield from items(cmd.commands)


def as_read_from_xml(msg):
    """Undo libwbxml's OPAQUE ``<Data>`` of text values, in place."""
    for item in items(msg.body):
        if isinstance(item.data, bytes):
            item.data = item.data.decode("utf-8")
    return msg


def test_there_is_enough_to_compare():
    assert len(DM_CORPUS) >= 20 and len(CP_DOCS) >= 3


@pytest.mark.parametrize("path", DM_CORPUS, ids=lambda p: p.name)
def test_dm_our_wbxml_read_by_libwbxml(path, tmp_path):
    msg = xml.decode(path.read_bytes())
    ours = wbxml.encode(msg)
    assert xml.decode(wbxml2xml(ours, tmp_path)) == msg


@pytest.mark.parametrize("options", [(), ("-n",)], ids=["string-table", "no-string-table"])
@pytest.mark.parametrize("path", DM_CORPUS, ids=lambda p: p.name)
def test_dm_libwbxml_wbxml_read_by_us(path, options, tmp_path):
    msg = xml.decode(path.read_bytes())
    theirs = xml2wbxml(path, options, tmp_path)
    assert as_read_from_xml(wbxml.decode(theirs)) == msg


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
