"""What real clients send, read the way they mean it (issue 11, codec layer).

Each construct is built here or comes from a fixture under tests/fixtures/dm:
OPAQUE text (libwbxml and Nokia-style clients send every Data as OPAQUE),
Format-typed data identical from XML and WBXML, Meta Type kept as asked,
the SyncHdr's Status without CmdRef, public ids in any letter case, Type
directly under Item (MS-MDM examples) and unknown elements listed.
"""

import base64
from pathlib import Path

import pytest

from dmgateway import cli
from dmgateway.codec import syncml as sm
from dmgateway.codec import wbxml, xml
from dmgateway.codec.errors import ModelError
from dmgateway.codec.wbxml_pages import SYNCML11, SYNCML12, vocabulary_for

# the C accelerator and the pure reader and writer, each through every test here
pytestmark = pytest.mark.usefixtures("wbxml_impl")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "dm"
TNDS_XML = "application/vnd.syncml.dmtnds+xml"


def fixture(name):
    return (FIXTURES / name).read_bytes()


def results(*items, meta=None):
    return sm.SyncML(body=[sm.Results(cmd_id="3", msg_ref="1", cmd_ref="2", meta=meta,
                                      items=list(items))], final=True)


def item(data, fmt=None):
    return sm.Item(source=sm.LocRef("./DevInfo/DmV"),
                   meta=sm.Meta(format=fmt) if fmt else None, data=data)


def decoded_items(data, codec):
    return codec.decode(data).body[0].items


# -- 1. OPAQUE data is text when the item says so --------------------------------


@pytest.mark.parametrize("fmt", [None, "chr", "int", "xml", "b64"])
def test_opaque_utf8_is_text_unless_format_bin(fmt):
    value = "Grüße 1.3" if fmt != "b64" else "MS4z"
    ours = wbxml.encode(results(item(value.encode("utf-8"), fmt)))  # bytes go out as OPAQUE
    raw = value.encode("utf-8")
    assert bytes([0xC3, len(raw)]) + raw in ours  # OPAQUE, length, the UTF-8 bytes
    [got] = decoded_items(ours, wbxml)
    assert got.data == value and isinstance(got.data, str)


def test_opaque_with_format_bin_stays_bytes_and_xml_says_the_same():
    raw = bytes(range(256))
    msg = results(item(raw, "bin"))
    [from_wbxml] = decoded_items(wbxml.encode(msg), wbxml)
    [from_xml] = decoded_items(xml.encode(msg), xml)
    assert from_wbxml.data == raw == from_xml.data
    assert base64.b64encode(raw) in xml.encode(msg)


def test_opaque_that_is_not_utf8_stays_bytes():
    [got] = decoded_items(wbxml.encode(results(item(b"\xff\xfe\x00"))), wbxml)
    assert got.data == b"\xff\xfe\x00"


def test_format_of_the_command_meta_applies_to_its_items():
    raw = b"\x00\x01\x02"
    msg = results(item(raw), meta=sm.Meta(format="bin"))
    assert decoded_items(wbxml.encode(msg), wbxml)[0].data == raw
    assert decoded_items(xml.encode(msg), xml)[0].data == raw


def test_xml_and_wbxml_read_every_corpus_message_the_same():
    for path in sorted(FIXTURES.glob("*.xml")):
        msg = xml.decode(path.read_bytes())
        assert wbxml.decode(wbxml.encode(msg)) == msg, path.name
        assert xml.decode(xml.encode(msg)) == msg, path.name


def test_decode_command_shows_opaque_text_as_text():
    msg = xml.decode(fixture("31-synchdr-status-without-cmdref.xml"))
    for entry in msg.body[2].items:  # what libwbxml and most clients send: OPAQUE
        entry.data = entry.data.encode("utf-8")
    shown = cli.decode_to_xml(wbxml.encode(msg)).decode("utf-8")
    assert "<Data>1.3</Data>" in shown and "MS4z" not in shown
    assert "Grüße, 世界" in shown


# -- 2. never rewrite what was asked ----------------------------------------------


@pytest.mark.parametrize("codec", [xml, wbxml], ids=["xml", "wbxml"])
def test_get_for_the_xml_tnds_form_keeps_its_type(codec):
    msg = xml.decode(fixture("34-get-tnds-xml-type.xml"))
    encoded = codec.encode(msg)
    assert b"dmtnds+wbxml" not in encoded
    again = codec.decode(encoded)
    assert again.body[1].meta.type == TNDS_XML and again.body[2].items[0].meta.type == TNDS_XML


# -- 3. what the DTD allows and clients send ------------------------------------


@pytest.mark.parametrize("codec", [xml, wbxml], ids=["xml", "wbxml"])
def test_synchdr_status_without_cmdref(codec):
    msg = xml.decode(fixture("31-synchdr-status-without-cmdref.xml"))
    status = codec.decode(codec.encode(msg)).body[0]
    assert (status.cmd, status.cmd_ref, status.data) == ("SyncHdr", "0", 212)


def test_other_status_without_cmdref_is_still_refused():
    text = fixture("31-synchdr-status-without-cmdref.xml").replace(
        b"<CmdRef>3</CmdRef><Cmd>Get</Cmd>", b"<Cmd>Get</Cmd>")
    with pytest.raises(ModelError) as caught:
        xml.decode(text)
    assert caught.value.path == "SyncML/SyncBody/Status[2]"


def _with_fpi(data, fpi):
    """``data`` (our WBXML) with its numeric public id replaced by ``fpi`` in the string table."""
    header = wbxml.read_header(data)
    raw = fpi.encode("ascii") + b"\0"
    return b"\x02\x00\x00\x6a" + bytes([len(raw)]) + raw + data[header.body_offset:]


@pytest.mark.parametrize("fpi", ["-//SYNCML//DTD SyncML 1.2//EN", "-//SYNCML//DTD SYNCML 1.2//EN",
                                 "-//syncml//dtd syncml 1.2//en"])
def test_public_id_in_any_letter_case(fpi):
    msg = xml.decode(fixture("01-pkg1-client-init.xml"))
    data = _with_fpi(wbxml.encode(msg), fpi)
    assert wbxml.read_header(data).fpi == fpi
    assert wbxml.decode(data) == msg
    assert vocabulary_for(0, fpi) is SYNCML12
    assert cli.identify(data) == ("syncml", "wbxml")


def test_public_id_of_syncml_1_1_in_upper_case():
    assert vocabulary_for(0, "-//SYNCML//DTD SYNCML 1.1//EN") is SYNCML11
    assert vocabulary_for(0, "-//SYNCML//DTD SYNCML 9.9//EN") is None


@pytest.mark.parametrize("codec", [xml, wbxml], ids=["xml", "wbxml"])
def test_type_directly_under_item_is_its_meta_type(codec):
    msg = xml.decode(fixture("32-generic-alert-type-under-item.xml"))
    alert = msg.body[1]
    assert alert.items[0].meta.type == "com.microsoft.mdm.reboot.status"
    assert alert.items[0].data == "Pending"
    assert codec.decode(codec.encode(msg)) == msg
    assert not msg.unknown


def test_type_under_item_does_not_override_its_meta():
    text = fixture("32-generic-alert-type-under-item.xml").replace(
        b"<Type>", b"<Meta><Type xmlns='syncml:metinf'>from-meta</Type></Meta><Type>")
    assert xml.decode(text).body[1].items[0].meta.type == "from-meta"


def test_unknown_elements_are_listed_not_silently_dropped():
    text = fixture("33-pkg1-devinfo-and-vendor-node.xml")
    text = text.replace(b"</MsgID>", b"</MsgID><Vendor>x</Vendor>")
    text = text.replace(b"<CmdID>3</CmdID>", b"<CmdID>3</CmdID><Hint>fast</Hint>")
    text = text.replace(b"<Data>EX-100</Data>", b"<Data>EX-100</Data><Extra/>")
    msg = xml.decode(text)
    assert sorted(msg.unknown) == ["SyncML/SyncBody/Replace/Hint", "SyncML/SyncBody/Replace/Item/Extra",
                                   "SyncML/SyncHdr/Vendor"]
    assert msg == xml.decode(fixture("33-pkg1-devinfo-and-vendor-node.xml"))


def test_known_corpus_has_no_unknown_elements():
    for path in sorted(FIXTURES.glob("*.xml")):
        assert xml.decode(path.read_bytes()).unknown == [], path.name


def test_unknown_elements_listed_are_bounded():
    text = fixture("33-pkg1-devinfo-and-vendor-node.xml")
    noise = b"".join(b"<X%d%s/>" % (n, b"y" * 500) for n in range(50))
    msg = xml.decode(text.replace(b"</MsgID>", b"</MsgID>" + noise))
    assert len(msg.unknown) == 20 and all(len(path) <= 200 for path in msg.unknown)
