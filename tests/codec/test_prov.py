"""Tests for dmgateway.codec.prov: CP documents in WBXML and XML, w7 lookup."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.codec import prov, wbxml
from dmgateway.codec.element import NS_PROV, Node
from dmgateway.codec.errors import CodecError, ModelError, WBXMLCodecError, XMLCodecError
from dmgateway.codec.prov import Characteristic, Parm, ProvDoc
from tests.codec.wbxml_vectors import CP_EXAMPLE, CP_WSP_PDU, LIBWBXML_CP_W7_NAPDEF

# the C accelerator and the pure reader and writer, each through every test here
pytestmark = pytest.mark.usefixtures("wbxml_impl")

CP_FIXTURES = Path(__file__).parent.parent / "fixtures" / "cp"
HEADER = bytes.fromhex("030b6a00")

W7_MINIMAL = ProvDoc(characteristics=[
    Characteristic("APPLICATION", [Parm("APPID", "w7"), Parm("PROVIDER-ID", "com.example.dms")], [
        Characteristic("APPADDR", [Parm("ADDR", "https://dms.example.com/dm")]),
    ]),
])

W7_NAPDEF = ProvDoc(characteristics=[
    Characteristic("NAPDEF", [
        Parm("NAPID", "NAP1"), Parm("BEARER", "GSM-GPRS"), Parm("NAME", "Example APN"),
        Parm("NAP-ADDRESS", "internet.example"), Parm("NAP-ADDRTYPE", "APN"),
    ]),
    Characteristic("APPLICATION", [
        Parm("APPID", "w7"), Parm("PROVIDER-ID", "com.example.dms"), Parm("NAME", "Example DMS"),
        Parm("TO-NAPID", "NAP1"), Parm("INIT"),
    ], [
        Characteristic("APPADDR", [Parm("ADDR", "https://dms.example.com/dm"),
                                   Parm("ADDRTYPE", "URI")],
                       [Characteristic("PORT", [Parm("PORTNBR", "443")])]),
        Characteristic("APPAUTH", [
            Parm("AAUTHLEVEL", "APPSRV"), Parm("AAUTHTYPE", "DIGEST"),
            Parm("AAUTHNAME", "dmclient01"), Parm("AAUTHSECRET", "s3cr3t!"),
            Parm("AAUTHDATA", "AQIDBAUGBwgJCgsMDQ4PEA=="),
        ]),
        Characteristic("APPAUTH", [
            Parm("AAUTHLEVEL", "CLIENT"), Parm("AAUTHTYPE", "DIGEST"),
            Parm("AAUTHNAME", "com.example.dms"), Parm("AAUTHSECRET", "srvPass123"),
            Parm("AAUTHDATA", "obLD1OX2Bxg="),
        ]),
    ]),
])


def s(text):
    return b"\x03" + text.encode("utf-8") + b"\x00"


# -- the vectors -------------------------------------------------------------------

def test_cp_example_decodes_to_the_w7_document():
    assert len(CP_EXAMPLE) == 79
    assert prov.decode_wbxml(CP_EXAMPLE) == W7_MINIMAL


def test_cp_example_encodes_to_the_exact_bytes():
    assert prov.encode_wbxml(W7_MINIMAL) == CP_EXAMPLE


def test_document_inside_the_wsp_push_example():
    # PDU type Push (06), headers length 0x2F, then the WBXML document
    assert CP_WSP_PDU[1] == 0x06
    doc = CP_WSP_PDU[3 + CP_WSP_PDU[2]:]
    assert doc == CP_EXAMPLE
    assert prov.decode_wbxml(doc) == W7_MINIMAL


def test_libwbxml_encoding_of_the_w7_napdef_document():
    # string table refs, eager page switches, "Example " + APN value token,
    # page-1 tokens APPSRV (0x8D) and DIGEST (0x93)
    assert prov.decode_wbxml(LIBWBXML_CP_W7_NAPDEF) == W7_NAPDEF


def test_w7_napdef_wbxml_uses_only_tokens_all_sources_agree_on():
    data = prov.encode_wbxml(W7_NAPDEF)
    assert prov.decode_wbxml(data) == W7_NAPDEF
    assert b"\x87\x10\x06\xab\x01" in data                  # BEARER GSM-GPRS: page-0 token
    assert b"\x87\x30\x06\x8d\x01" in data                  # AAUTHLEVEL APPSRV: page-1 token
    assert b"\x87\x33\x06" + s("DIGEST") + b"\x01" in data  # DIGEST token disputed: STR_I
    assert b"\x87\x05" + s("INIT") + b"\x01" in data        # no token for INIT: name= STR_I
    assert b"\xc6\x00\x01\x55\x01" in data                  # attribute page 1 for APPLICATION


def test_disputed_values_are_read_from_tokens_but_written_inline():
    doc = ProvDoc(version=None, characteristics=[Characteristic("NAPDEF", [
        Parm("BEARER", "TETRA-SDS"), Parm("AUTH-ENTITY", "AAA"),
        Parm("BEARER", "CDMA2000-1X-SIMPLE-IP"),
    ])])
    data = prov.encode_wbxml(doc)
    assert s("TETRA-SDS") in data and s("AAA") in data and s("CDMA2000-1X-SIMPLE-IP") in data
    tokens = (HEADER + b"\xc5\x01\xc6\x55\x01" + b"\x87\x10\x06\xb5\x01" + b"\x87\x4e\x06\xe0\x01"
              + b"\x87\x10\x06\xb9\x01" + b"\x01\x01")
    assert prov.decode_wbxml(tokens) == doc
    # AAUTHTYPE built from the CP 1.1 page-1 pieces "HTTP-" "DIGEST", and AAA on page 1
    tokens = (HEADER + b"\xc5\x01\xc6\x00\x01\x57\x01\x87\x33\x06\x91\x93\x01"
              + b"\x87\x05" + s("X") + b"\x06\xe0\x01\x01\x01")
    assert prov.decode_wbxml(tokens) == ProvDoc(version=None, characteristics=[
        Characteristic("APPAUTH", [Parm("AAUTHTYPE", "HTTP-DIGEST"), Parm("X", "AAA")])])


def test_version_and_literal_attributes():
    table = b"\x06color\x00"  # length 6, then the string
    data = HEADER[:3] + table + b"\xc5\x45" + s("1.1") + b"\x04\x00" + s("red") + b"\x01\x01"
    root = wbxml.decode_node(data)
    assert root.attrs == {"version": "1.1", "color": "red"}
    assert prov.decode_wbxml(data) == ProvDoc(version="1.1")


# -- the fixtures and the XML side -----------------------------------------------

@pytest.mark.parametrize("path", sorted(CP_FIXTURES.glob("*.xml")), ids=lambda p: p.name)
def test_fixtures_read_the_same_from_xml_and_wbxml(path):
    doc = prov.decode_xml(path.read_bytes())
    assert doc.characteristics
    assert prov.decode_wbxml(prov.encode_wbxml(doc)) == doc
    assert prov.decode_xml(prov.encode_xml(doc)) == doc


def test_fixture_models():
    assert prov.decode_xml((CP_FIXTURES / "w7-minimal.xml").read_bytes()) == W7_MINIMAL
    assert prov.decode_xml((CP_FIXTURES / "w7-napdef.xml").read_bytes()) == W7_NAPDEF
    doc = prov.decode_xml((CP_FIXTURES / "pxlogical-napdef.xml").read_bytes())
    assert [c.type for c in doc.characteristics] == [
        "BOOTSTRAP", "PXLOGICAL", "NAPDEF", "CLIENTIDENTITY", "VENDORCONFIG", "ACCESS"]
    (proxy,) = doc.children("PXLOGICAL")
    assert [c.type for c in proxy.characteristics] == ["PXAUTHINFO", "PORT", "PXPHYSICAL"]
    assert proxy.children("PXPHYSICAL")[0].children("PORT")[0].get("PORTNBR") == "9201"
    (nap,) = doc.children("NAPDEF")
    assert [c.type for c in nap.characteristics] == ["NAPAUTHINFO", "VALIDITY"]
    assert prov.find_w7(doc) == []


def test_encode_xml_writes_the_prov_doctype():
    text = prov.encode_xml(W7_MINIMAL)
    assert text.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE wap-provisioningdoc '
                           b'PUBLIC "-//WAPFORUM//DTD PROV 1.0//EN"')
    assert b'<parm name="APPID" value="w7"/>' in text


def test_xml_reader_is_hardened():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE wap-provisioningdoc [<!ENTITY a "aaaa">]>'
            b'<wap-provisioningdoc><characteristic type="&a;"/></wap-provisioningdoc>')
    with pytest.raises(XMLCodecError):
        prov.decode_xml(bomb)
    external = (b'<!DOCTYPE wap-provisioningdoc [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                b'<wap-provisioningdoc><characteristic type="&x;"/></wap-provisioningdoc>')
    with pytest.raises(XMLCodecError):
        prov.decode_xml(external)
    with pytest.raises(XMLCodecError):
        prov.decode_xml(b"<wap-provisioningdoc><characteristic")


def test_find_w7():
    doc = prov.decode_xml((CP_FIXTURES / "w7-napdef.xml").read_bytes())
    (app,) = prov.find_w7(doc)
    assert app.get("PROVIDER-ID") == "com.example.dms"
    assert app.has("INIT") and app.get("INIT") is None
    assert [a.get("AAUTHLEVEL") for a in app.children("APPAUTH")] == ["APPSRV", "CLIENT"]
    other = Characteristic("APPLICATION", [Parm("APPID", "w4")])
    assert prov.find_w7(ProvDoc(characteristics=[other] + doc.characteristics)) == [app]


# -- structural errors ------------------------------------------------------------

@pytest.mark.parametrize("xml_text, reason", [
    (b"<SyncML/>", "not wap-provisioningdoc"),
    (b"<wap-provisioningdoc><parm name='A'/></wap-provisioningdoc>", "unexpected element 'parm'"),
    (b"<wap-provisioningdoc><characteristic/></wap-provisioningdoc>", "without a type"),
    (b"<wap-provisioningdoc><characteristic type='A'><parm value='1'/></characteristic>"
     b"</wap-provisioningdoc>", "parm without a name"),
    (b"<wap-provisioningdoc><characteristic type='A'><x/></characteristic>"
     b"</wap-provisioningdoc>", "unexpected element 'x'"),
    (b"<wap-provisioningdoc><characteristic type='A'><parm name='A'><x/></parm>"
     b"</characteristic></wap-provisioningdoc>", "parm with content"),
])
def test_model_errors(xml_text, reason):
    with pytest.raises(ModelError, match=reason) as info:
        prov.decode_xml(xml_text)
    assert info.value.path


def test_writer_model_errors():
    for doc in (ProvDoc(characteristics=[Characteristic("")]),
                ProvDoc(characteristics=[Characteristic("A", [Parm(5)])]),
                ProvDoc(characteristics=["x"]),
                "not a doc"):
        with pytest.raises(ModelError):
            prov.encode_wbxml(doc)
    assert prov.doc_to_node(ProvDoc(version=None)) == Node("wap-provisioningdoc", NS_PROV)


def test_wbxml_structural_errors():
    with pytest.raises(WBXMLCodecError, match="unknown attribute token"):
        prov.decode_wbxml(HEADER + b"\xc5\x01\xc6\x4d\x01\x01\x01")
    with pytest.raises(ModelError, match="without a type"):
        prov.decode_wbxml(HEADER + b"\xc5\x01\x46\x01\x01")


# -- properties -----------------------------------------------------------------------

_XML_SAFE = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff")
_NAMES = st.one_of(st.sampled_from(["APPID", "NAME", "ADDR", "INIT", "BEARER", "PORTNBR",
                                    "AAUTHLEVEL", "TO-NAPID", "version"]),
                   st.text(_XML_SAFE, min_size=1, max_size=10))
_VALUES = st.one_of(st.none(), st.sampled_from(["w7", "APPSRV", "GSM-GPRS", "IPV4", "APN", "",
                                                "DIGEST", "1.0", "Example APN"]),
                    st.text(_XML_SAFE, max_size=20))
_TYPES = st.one_of(st.sampled_from(["APPLICATION", "APPADDR", "APPAUTH", "NAPDEF", "PXLOGICAL",
                                    "PORT", "RESOURCE", "CLIENTIDENTITY", "ACCESS"]),
                   st.text(_XML_SAFE, min_size=1, max_size=10))
_PARMS = st.lists(st.builds(Parm, _NAMES, _VALUES), max_size=4)
_CHARACTERISTICS = st.recursive(
    st.builds(Characteristic, _TYPES, _PARMS),
    lambda inner: st.builds(Characteristic, _TYPES, _PARMS, st.lists(inner, max_size=3)),
    max_leaves=8,
)
_DOCS = st.builds(ProvDoc, st.one_of(st.just("1.0"), st.none(), st.text(_XML_SAFE, max_size=4)),
                  st.lists(_CHARACTERISTICS, max_size=3))


@settings(max_examples=150, deadline=None)
@given(_DOCS)
def test_documents_round_trip_through_wbxml(doc):
    assert prov.decode_wbxml(prov.encode_wbxml(doc)) == doc


@settings(max_examples=100, deadline=None)
@given(_DOCS)
def test_documents_round_trip_through_xml(doc):
    assert prov.decode_xml(prov.encode_xml(doc)) == doc


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bodies_raise_only_codec_errors(body):
    for data in (HEADER + body, body):
        try:
            prov.decode_wbxml(data)
        except CodecError:
            pass
