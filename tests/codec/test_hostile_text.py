"""Hostile DM input the codecs must refuse with a CodecError (issue 10):
text XML 1.0 cannot carry, by every WBXML path that makes text, and
documents with more elements than allowed, counted before any model exists."""

import pytest

from dmgateway.codec import decode_message, encode_message
from dmgateway.codec.errors import CodecError, LimitExceeded
from tests.fixtures import DEVICE

# the C accelerator and the pure reader and writer, each through every test here
pytestmark = pytest.mark.usefixtures("wbxml_impl")

PLACE = "IMEI:ZZZZZZZZZZZZZZZ"  # a LocURI to patch, same length as DEVICE


def package1(source=PLACE, session_id="ABCD"):
    return (
        '<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>'
        "<SessionID>%s</SessionID><MsgID>1</MsgID><Target><LocURI>http://gw/dm</LocURI></Target>"
        "<Source><LocURI>%s</LocURI></Source></SyncHdr><SyncBody>"
        "<Alert><CmdID>1</CmdID><Data>1201</Data></Alert><Final/></SyncBody></SyncML>" % (session_id, source)
    ).encode()


def wbxml_package1():
    msg, _ = decode_message(package1(), "application/vnd.syncml.dm+xml")
    return encode_message(msg, "wbxml")


def inline(text):
    return b"\x03" + text + b"\x00"


def test_the_template_decodes():
    data = wbxml_package1()
    assert inline(PLACE.encode()) in data
    msg, encoding = decode_message(data, "application/vnd.syncml.dm+wbxml")
    assert (msg.hdr.source.loc_uri, encoding) == (PLACE, "wbxml")


@pytest.mark.parametrize("entity", [0x00, 0x01, 0x08, 0x0B, 0x1F, 0xFFFE])
def test_entity_that_xml_cannot_carry_in_a_locuri(entity):
    # IMEI: + ENTITY n + the rest: the ENTITY 0 attack of the issue
    mb = bytes([entity]) if entity < 0x80 else b"\x83\xff\x7e"
    patched = wbxml_package1().replace(
        inline(PLACE.encode()), inline(b"IMEI:") + b"\x02" + mb + inline(b"ZZZZZZZZZZZZZZZ")
    )
    with pytest.raises(CodecError, match="ENTITY"):
        decode_message(patched, "application/vnd.syncml.dm+wbxml")


def test_entity_tab_is_fine():
    patched = wbxml_package1().replace(
        inline(PLACE.encode()), inline(b"IMEI:") + b"\x02\x09" + inline(b"ZZZZZZZZZZZZZZZ")
    )
    msg, _ = decode_message(patched, "application/vnd.syncml.dm+wbxml")
    assert msg.hdr.source.loc_uri == "IMEI:\tZZZZZZZZZZZZZZZ"


@pytest.mark.parametrize("char", [b"\x01", b"\x07", b"\x1b", b"\x7f\x0c"])
def test_str_i_with_a_control_character(char):
    text = (b"IMEI:" + char).ljust(len(PLACE), b"9")
    patched = wbxml_package1().replace(PLACE.encode(), text)
    with pytest.raises(CodecError, match="cannot appear in an XML document"):
        decode_message(patched, "application/vnd.syncml.dm+wbxml")


def test_str_i_lone_surrogate_in_utf8_is_refused():
    # CESU-style encoded surrogate: not UTF-8, refused as such
    text = b"IMEI:\xed\xa0\x80".ljust(len(PLACE), b"9")
    patched = wbxml_package1().replace(PLACE.encode(), text)
    with pytest.raises(CodecError):
        decode_message(patched, "application/vnd.syncml.dm+wbxml")


def test_str_t_with_a_control_character():
    data = wbxml_package1()
    # header: version, public id 0x1201 (2 bytes), charset UTF-8, table length
    assert (data[1:3], data[3]) == (b"\xa4\x01", 0x6A)
    length = data[4]
    table = data[5:5 + length] + b"IMEI:\x01ZZZ\x00"
    body = data[5 + length:].replace(inline(PLACE.encode()), b"\x83" + bytes([length]))
    patched = data[:4] + bytes([len(table)]) + table + body
    with pytest.raises(CodecError, match="cannot appear"):
        decode_message(patched, "application/vnd.syncml.dm+wbxml")
    # the same document with a clean string in the table decodes
    clean = patched.replace(b"IMEI:\x01ZZZ", b"IMEI:9ZZZ")
    msg, _ = decode_message(clean, "application/vnd.syncml.dm+wbxml")
    assert msg.hdr.source.loc_uri == "IMEI:9ZZZ"


def test_opaque_as_text_with_a_nul():
    # the SessionID as OPAQUE: read as text by the model, so it must be text XML can carry
    data = wbxml_package1()
    patched = data.replace(inline(b"ABCD"), b"\xc3\x04AB\x00D")
    assert patched != data
    with pytest.raises(CodecError, match="U\\+0000"):
        decode_message(patched, "application/vnd.syncml.dm+wbxml")


@pytest.mark.parametrize("reference", [b"&#0;", b"&#1;", b"&#x1F;", b"&#xFFFE;", b"\x01"])
def test_xml_with_a_character_xml_cannot_carry(reference):
    body = package1(source="IMEI:").replace(b"IMEI:", b"IMEI:" + reference)
    with pytest.raises(CodecError):
        decode_message(body, "application/vnd.syncml.dm+xml")


def items(count):
    return package1().replace(
        b"<Final/>", b"<Replace><CmdID>2</CmdID>" + b"<Item/>" * count + b"</Replace><Final/>"
    )


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
def test_element_count_is_bounded_before_a_model_is_built(encoding):
    body = items(5000)
    if encoding == "wbxml":
        # the same 5000 empty Items, as 1-byte empty-element tokens
        msg, _ = decode_message(body, "application/vnd.syncml.dm+xml")
        body = encode_message(msg, "wbxml")
    ctype = "application/vnd.syncml.dm+" + encoding
    with pytest.raises(LimitExceeded, match="1000"):
        decode_message(body, ctype, max_elements=1000)
    msg, _ = decode_message(body, ctype, max_elements=20000)
    assert len(msg.body[1].items) == 5000


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
def test_exactly_the_limit_passes(encoding):
    msg, _ = decode_message(package1(), "application/vnd.syncml.dm+xml")
    body = encode_message(msg, encoding)
    ctype = "application/vnd.syncml.dm+" + encoding
    counted = None
    for limit in range(5, 40):
        try:
            decode_message(body, ctype, max_elements=limit)
        except LimitExceeded:
            continue
        counted = limit
        break
    assert counted is not None
    with pytest.raises(LimitExceeded):
        decode_message(body, ctype, max_elements=counted - 1)


def tnds_document(nodes):
    """A stand-alone WBXML TNDS document: a MgmtTree of ``nodes`` empty Nodes (1 byte each)."""
    fpi = b"-//OMA//DTD-DM-DDF 1.2//EN\x00"
    return (bytes([0x03, 0x00, 0x00, 0x6A, len(fpi)]) + fpi + bytes([0x00, 0x02, 0x40 | 0x20])
            + b"\x24" * nodes + b"\x01")


def test_an_embedded_tnds_document_shares_the_message_element_budget():
    # one Item whose OPAQUE Data is a TNDS document of 200,000 one-byte
    # elements: the message's own elements are few, the document's count too
    from dmgateway.codec.syncml import Item, LocRef, Meta, Replace

    msg, _ = decode_message(package1(), "application/vnd.syncml.dm+xml")
    msg.body.append(Replace(cmd_id="9", items=[Item(
        target=LocRef("./Vendor/X"), meta=Meta(format="xml", type="application/vnd.syncml.dmtnds+wbxml"),
        data=tnds_document(200_000))]))
    body = encode_message(msg, "wbxml")
    assert len(body) < 210_000
    ctype = "application/vnd.syncml.dm+wbxml"
    with pytest.raises(LimitExceeded, match="embedded TNDS"):
        decode_message(body, ctype, max_elements=10_000)
    small = msg
    small.body[-1].items[0].data = tnds_document(50)
    decoded, _ = decode_message(encode_message(small, "wbxml"), ctype, max_elements=10_000)
    assert len(decoded.body[-1].items[0].data.children) == 50
    decoded, _ = decode_message(body, ctype)  # no limit: a session's own RespURI
    assert len(decoded.body[-1].items[0].data.children) == 200_000
