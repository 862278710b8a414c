"""Tests for dmgateway.codec (package level): picking XML or WBXML for a body."""

import pytest

from dmgateway.codec import (
    CONTENT_TYPES,
    decode_message,
    encode_message,
    encoding_for_content_type,
    sniff_encoding,
)
from dmgateway.codec.errors import CodecError, ModelError, XMLCodecError
from dmgateway.codec.syncml import Alert, Meta

# dm-wbxml.md §5: the same message as XML and as WBXML (verified with libwbxml)
XML_BODY = (
    b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>'
    b'<SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>https://dms.example.com/dm</LocURI>'
    b'</Target><Source><LocURI>IMEI:490154203237518</LocURI></Source><Meta>'
    b'<MaxMsgSize xmlns="syncml:metinf">10000</MaxMsgSize></Meta></SyncHdr><SyncBody><Alert>'
    b'<CmdID>1</CmdID><Data>1201</Data></Alert><Final/></SyncBody></SyncML>'
)
WBXML_BODY = bytes.fromhex(
    "03a4016a006d6c7103312e3200017203444d2f312e32000165033100015b033100016e570368747470733a2f2f"
    "646d732e6578616d706c652e636f6d2f646d000101675703494d45493a343930313534323033323337353138"
    "0001015a00014c0331303030300001010100006b464b033100014f0331323031000101120101"
)


@pytest.mark.parametrize("content_type, encoding", [
    ("application/vnd.syncml.dm+xml", "xml"),
    ("application/vnd.syncml.dm+xml; charset=utf-8", "xml"),
    ("Application/VND.SyncML.DM+XML ;charset=\"UTF-8\"; verproto=\"DM/1.2\"", "xml"),
    ("application/vnd.syncml+xml", "xml"),
    (b"application/vnd.syncml.dm+wbxml", "wbxml"),
    ("application/vnd.syncml.dm+wbxml;charset=utf-8", "wbxml"),
    ("application/vnd.syncml+wbxml", "wbxml"),
    ("application/vnd.syncml.dm.wbxml", None),
    ("text/xml", None),
    ("", None),
    (None, None),
])
def test_encoding_for_content_type(content_type, encoding):
    assert encoding_for_content_type(content_type) == encoding


@pytest.mark.parametrize("body, encoding", [
    (b"\x03\xa4\x01j\x00", "wbxml"),
    (b"\x01\x0b\x6a\x00", "wbxml"),
    (b"\x00\x00\x00", "wbxml"),
    (b"<SyncML/>", "xml"),
    (b"\xef\xbb\xbf<?xml", "xml"),
    (b"\xff\xfe<\x00", "xml"),
    (b"\x00<\x00S", "xml"),
    (b"  <SyncML/>", "xml"),
])
def test_sniff_encoding(body, encoding):
    assert sniff_encoding(body) == encoding


def test_decode_xml_by_type_and_by_sniffing():
    for content_type in ("application/vnd.syncml.dm+xml; charset=utf-8", None, "text/plain"):
        msg, encoding = decode_message(XML_BODY, content_type)
        assert encoding == "xml"
        assert msg.body == [Alert(cmd_id="1", data=1201)]
        assert msg.hdr.meta == Meta(max_msg_size=10000)
    assert encode_message(msg, "xml") == XML_BODY


def test_content_type_wins_over_sniffing():
    with pytest.raises(XMLCodecError):
        decode_message(WBXML_BODY, "application/vnd.syncml.dm+xml")


def test_bad_bodies():
    for body in (b"", "text", None):
        with pytest.raises(CodecError):
            decode_message(body)
    with pytest.raises(ModelError):
        decode_message(b"<html/>", "application/vnd.syncml.dm+xml")
    with pytest.raises(ValueError):
        encode_message(decode_message(XML_BODY)[0], "json")


def test_content_types_to_send():
    assert CONTENT_TYPES == {"xml": "application/vnd.syncml.dm+xml",
                             "wbxml": "application/vnd.syncml.dm+wbxml"}


def test_decode_wbxml():
    pytest.importorskip("dmgateway.codec.wbxml")
    xml_msg, _ = decode_message(XML_BODY)
    for content_type in ("application/vnd.syncml.dm+wbxml", None):
        msg, encoding = decode_message(WBXML_BODY, content_type)
        assert encoding == "wbxml"
        assert msg == xml_msg
    assert decode_message(encode_message(msg, "wbxml"))[0] == xml_msg
