"""Tests for dmgateway.codec.xml: hardened parsing, compact writing, the DM corpus."""

import base64
from pathlib import Path

import pytest
from lxml import etree
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dmgateway.codec import xml, xml_reader
from dmgateway.codec.element import NS_DMDDF, NS_METINF, NS_PROV, NS_SYNCML, Node
from dmgateway.codec.errors import CodecError, LimitExceeded, ModelError, XMLCodecError
from dmgateway.codec.mapping import message_to_node
from dmgateway.codec.syncml import (
    Add,
    Alert,
    Atomic,
    Exec,
    Get,
    Item,
    LocRef,
    Meta,
    Replace,
    Results,
    Sequence,
    Status,
    SyncHdr,
    SyncML,
    UnknownCommand,
)
from tests.codec.strategies import FORMATS, messages

CORPUS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "dm"
CORPUS = sorted(CORPUS_DIR.glob("*.xml"))
HYPOTHESIS = settings(max_examples=200, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# dm-wbxml.md §5: the compact XML of the worked example, as the writer must produce it
SPEC_COMPACT = (
    b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>'
    b'<SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>https://dms.example.com/dm</LocURI>'
    b'</Target><Source><LocURI>IMEI:490154203237518</LocURI></Source><Meta>'
    b'<MaxMsgSize xmlns="syncml:metinf">10000</MaxMsgSize></Meta></SyncHdr><SyncBody><Alert>'
    b'<CmdID>1</CmdID><Data>1201</Data></Alert><Final/></SyncBody></SyncML>'
)

MINIMAL = (
    '<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>'
    '<SessionID>{session}</SessionID><MsgID>1</MsgID><Target><LocURI>srv</LocURI></Target>'
    '<Source><LocURI>dev</LocURI></Source></SyncHdr><SyncBody>{body}</SyncBody></SyncML>'
)


def minimal(body="", session="1"):
    return MINIMAL.format(body=body, session=session).encode("utf-8")


def corpus(name):
    return (CORPUS_DIR / name).read_bytes()


def raises_exactly(error_type, data, **kwargs):
    with pytest.raises(CodecError) as info:
        xml.decode(data, **kwargs)
    assert type(info.value) is error_type, info.value
    return info.value


# -- the corpus ---------------------------------------------------------------


def test_corpus_is_complete():
    assert len(CORPUS) >= 20
    commands = set()
    alerts = set()
    formats = set()

    def walk(cmds):
        for cmd in cmds:
            commands.add(type(cmd).__name__)
            if isinstance(cmd, Alert):
                alerts.add(cmd.data)
            if isinstance(cmd, Results):
                formats.update(i.meta.format for i in cmd.items if i.meta)
            if isinstance(cmd, (Atomic, Sequence)):
                walk(cmd.commands)

    for path in CORPUS:
        walk(xml.decode(path.read_bytes()).body)
    assert commands >= {"Add", "Replace", "Delete", "Copy", "Exec", "Get", "Atomic", "Sequence",
                        "Alert", "Status", "Results"}
    assert alerts >= {1100, 1101, 1102, 1103, 1104, 1200, 1201, 1222, 1223, 1224, 1225, 1226}
    assert formats >= set(FORMATS)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_corpus_decodes_and_round_trips(path):
    msg = xml.decode(path.read_bytes())
    assert isinstance(msg, SyncML)
    encoded = xml.encode(msg)
    assert xml.decode(encoded) == msg
    assert xml.encode(xml.decode(encoded)) == encoded
    assert b">\n" not in encoded and b">  <" not in encoded


def test_spec_package_1():
    msg = xml.decode(corpus("01-pkg1-client-init.xml"))
    hdr = msg.hdr
    assert (hdr.ver_dtd, hdr.ver_proto, hdr.session_id, hdr.msg_id) == ("1.2", "DM/1.2", "1A2", "1")
    assert hdr.target == LocRef("https://dms.example.com/dm")
    assert hdr.source == LocRef("IMEI:490154203237518", "dmclient01")
    assert hdr.cred.meta == Meta(type="syncml:auth-md5", format="b64")
    assert hdr.cred.data == "Q3r6Z+uEU9+S9G0eEFL04w=="
    assert hdr.meta == Meta(max_msg_size=10000, max_obj_size=524288)
    assert msg.final is True
    alert, replace = msg.body
    assert alert == Alert(cmd_id="1", data=1201)
    assert isinstance(replace, Replace) and replace.cmd_id == "2"
    assert [(i.source.loc_uri, i.data) for i in replace.items] == [
        ("./DevInfo/DevId", "IMEI:490154203237518"),
        ("./DevInfo/Man", "ExampleCorp"),
        ("./DevInfo/Mod", "EX-100"),
        ("./DevInfo/DmV", "1.2"),
        ("./DevInfo/Lang", "en-US"),
    ]
    assert {(i.meta.format, i.meta.type) for i in replace.items} == {("chr", "text/plain")}


def test_spec_package_2():
    msg = xml.decode(corpus("02-pkg2-server-init.xml"))
    assert msg.hdr.resp_uri == "https://dms.example.com/dm?s=1A2&dev=490154203237518"
    assert msg.hdr.source == LocRef("https://dms.example.com/dm", "com.example.dms")
    assert msg.hdr.cred.data == "FW66ju32iLhlrhkMJpX8JQ=="
    hdr_status, alert_status, replace_status, get, replace = msg.body
    assert hdr_status.msg_ref == "1" and hdr_status.cmd_ref == "0"
    assert hdr_status.cmd == "SyncHdr" and hdr_status.data == 212
    assert hdr_status.target_refs == ["https://dms.example.com/dm"]
    assert hdr_status.source_refs == ["IMEI:490154203237518"]
    assert hdr_status.chal.meta == Meta(type="syncml:auth-md5", format="b64",
                                        next_nonce="Dx4tPEtaaXg=")
    assert alert_status == Status(cmd_id="2", msg_ref="1", cmd_ref="1", cmd="Alert", data=200)
    assert replace_status == Status(cmd_id="3", msg_ref="1", cmd_ref="2", cmd="Replace", data=200)
    assert get == Get(cmd_id="4", items=[Item(target=LocRef("./DevDetail/SwV"))])
    assert replace == Replace(cmd_id="5", items=[Item(
        target=LocRef("./DMAcc/example/Name"), meta=Meta(format="chr", type="text/plain"),
        data="Example Management Server")])
    assert msg.final is True


def test_spec_package_3():
    msg = xml.decode(corpus("03-pkg3-client-response.xml"))
    assert msg.hdr.msg_id == "2"
    assert msg.hdr.target.loc_uri == "https://dms.example.com/dm?s=1A2&dev=490154203237518"
    assert msg.hdr.cred is None
    hdr_status, get_status, replace_status, results = msg.body
    assert hdr_status.chal.meta.next_nonce == "ESIzRFVmd4g=" and hdr_status.data == 212
    assert get_status.target_refs == ["./DevDetail/SwV"] and get_status.cmd_ref == "4"
    assert replace_status.target_refs == ["./DMAcc/example/Name"]
    assert results == Results(cmd_id="4", msg_ref="1", cmd_ref="4", items=[Item(
        source=LocRef("./DevDetail/SwV"), meta=Meta(format="chr", type="text/plain"),
        data="4.2.1")])


def test_spec_package_4():
    msg = xml.decode(corpus("04-pkg4-server-close.xml"))
    assert msg.final is True
    assert msg.body == [Status(
        cmd_id="1", msg_ref="2", cmd_ref="0", cmd="SyncHdr",
        target_refs=["https://dms.example.com/dm?s=1A2&dev=490154203237518"],
        source_refs=["IMEI:490154203237518"], data=200)]


def test_spec_compact_example_is_written_byte_for_byte():
    msg = xml.decode(SPEC_COMPACT)
    assert xml.encode(msg) == SPEC_COMPACT


def test_corpus_tnds_inline_and_large_object():
    add = xml.decode(corpus("18-add-tnds-inline.xml")).body[1]
    tree = add.items[0].data
    assert isinstance(tree, Node) and (tree.name, tree.ns) == ("MgmtTree", NS_DMDDF)
    pop = tree.find("Node").findall("Node")[0]
    server = pop.findall("Node")[0]
    assert server.find("Value") == Node("Value", NS_DMDDF, text="mail.operatorx.com")
    assert server.find("RTProperties").find("Format").children == [Node("chr", NS_DMDDF)]
    chunk = xml.decode(corpus("20-large-object-first-chunk.xml"))
    assert chunk.final is False
    item = chunk.body[1].items[0]
    assert item.more_data is True and item.meta.size == 96


def test_corpus_versions_and_correlators():
    dm11 = xml.decode(corpus("28-dm11-client-init.xml"))
    assert (dm11.hdr.ver_dtd, dm11.hdr.ver_proto) == ("1.1", "DM/1.1")
    assert xml.encode(dm11).startswith(b'<SyncML xmlns="SYNCML:SYNCML1.1">')
    dm13 = xml.decode(corpus("29-dm13-client-init.xml"))
    assert (dm13.hdr.ver_dtd, dm13.hdr.ver_proto) == ("1.2", "DM/1.3")
    exec_ = xml.decode(corpus("11-exec-correlator.xml")).body[2]
    assert isinstance(exec_, Exec) and exec_.correlator == "fumo-7d3a91"
    generic = xml.decode(corpus("27-generic-alert-1226-fumo.xml")).body[1]
    assert generic.correlator == "fumo-7d3a91" and generic.items[0].meta.mark == "critical"


# -- sloppy but acceptable input -------------------------------------------------


def test_single_quoted_xmlns_and_lower_case_namespaces():
    for uri in ("'SYNCML:SYNCML1.2'", "'syncml:syncml1.2'", '"SyncML:SyncML1.2"',
                '"SYNCML:SYNCML1.1"'):
        data = minimal('<Alert><CmdID>1</CmdID><Data>1201</Data></Alert>').replace(
            b'"SYNCML:SYNCML1.2"', uri.encode())
        assert xml.decode(data).body == [Alert(cmd_id="1", data=1201)]


def test_no_namespace_at_all_and_prefixed_namespace():
    bare = minimal('<Alert><CmdID>1</CmdID><Data>1201</Data></Alert>').replace(
        b' xmlns="SYNCML:SYNCML1.2"', b"")
    assert xml.parse(bare).ns == NS_SYNCML
    assert xml.decode(bare).body == [Alert(cmd_id="1", data=1201)]
    prefixed = (b'<s:SyncML xmlns:s="SYNCML:SYNCML1.2"><s:SyncHdr><s:VerDTD>1.2</s:VerDTD>'
                b'<s:VerProto>DM/1.2</s:VerProto><s:SessionID>1</s:SessionID><s:MsgID>1</s:MsgID>'
                b'<s:Target><s:LocURI>a</s:LocURI></s:Target><s:Source><s:LocURI>b</s:LocURI>'
                b'</s:Source><s:Meta><m:MaxMsgSize xmlns:m="syncml:metinf">9</m:MaxMsgSize>'
                b'</s:Meta></s:SyncHdr><s:SyncBody/></s:SyncML>')
    msg = xml.decode(prefixed)
    assert msg.hdr.meta.max_msg_size == 9


def test_metinf_without_xmlns():
    body = ('<Results><CmdID>1</CmdID><CmdRef>2</CmdRef><Item><Meta><Type>text/plain</Type>'
            '<Format>chr</Format></Meta><Data>x</Data></Item></Results>')
    item = xml.decode(minimal(body)).body[0].items[0]
    assert item.meta == Meta(type="text/plain", format="chr")


def test_odd_whitespace_session_zero_and_declarations():
    data = (b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8" standalone="yes"?>\r\n'
            b'<!-- a comment -->\n<SyncML   xmlns = "SYNCML:SYNCML1.2" >\r\n\t<SyncHdr>\n'
            b'<VerDTD>\n1.2\n</VerDTD><VerProto> DM/1.2 </VerProto>\r\n<SessionID>0</SessionID>'
            b'<MsgID>\t1</MsgID><Target>\n  <LocURI>srv</LocURI>\n</Target><Source><LocURI>'
            b'dev</LocURI><?pi ignored?></Source></SyncHdr>\n<SyncBody>\n<Status>\n<CmdID> 1 '
            b'</CmdID><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd>\n<Data>\n  200\n</Data></Status>'
            b'<Final />\n</SyncBody>\n</SyncML>\n\n')
    msg = xml.decode(data)
    assert msg.hdr.session_id == "0" and msg.hdr.ver_dtd == "1.2"
    assert msg.body == [Status(cmd_id="1", cmd_ref="0", cmd="SyncHdr", data=200)]
    assert msg.final is True


def test_other_encodings():
    text = minimal('<Add><CmdID>1</CmdID><Item><Data>Grüße €</Data></Item></Add>').decode()
    utf16 = ('<?xml version="1.0" encoding="UTF-16"?>' + text).encode("utf-16")
    assert xml.decode(utf16).body[0].items[0].data == "Grüße €"
    latin1 = ('<?xml version="1.0" encoding="ISO-8859-1"?>' + text.replace(" €", "")).encode(
        "latin-1")
    assert xml.decode(latin1).body[0].items[0].data == "Grüße"


def test_cdata_in_data():
    body = ('<Replace><CmdID>1</CmdID><Item><Data><![CDATA[<MgmtTree>&amp;</MgmtTree>]]>'
            '</Data></Item><Item><Data>a<![CDATA[ <b> ]]>c</Data></Item></Replace>')
    items = xml.decode(minimal(body)).body[0].items
    assert items[0].data == "<MgmtTree>&amp;</MgmtTree>"
    assert items[1].data == "a <b> c"


def test_data_kept_exactly_and_empty_data():
    body = ('<Add><CmdID>1</CmdID><Item><Data>  two\r\n lines </Data></Item>'
            '<Item><Data/></Item><Item><Data></Data></Item><Item/></Add>')
    items = xml.decode(minimal(body)).body[0].items
    assert [i.data for i in items] == ["  two\n lines ", "", "", None]


def test_carriage_return_survives_a_round_trip():
    msg = xml.decode(minimal('<Add><CmdID>1</CmdID><Item><Data>a&#13;&#10;b</Data></Item></Add>'))
    assert msg.body[0].items[0].data == "a\r\nb"
    assert b"a&#13;\nb" in xml.encode(msg)
    assert xml.decode(xml.encode(msg)) == msg


def test_unknown_commands_are_kept():
    body = ('<Put><CmdID>3</CmdID><Item><Data>x</Data></Item></Put>'
            '<Atomic><CmdID>4</CmdID><Sync><CmdID>5</CmdID></Sync></Atomic>')
    put, atomic = xml.decode(minimal(body)).body
    assert isinstance(put, UnknownCommand) and (put.name, put.cmd_id) == ("Put", "3")
    assert put.node.find("Item").find("Data").text == "x"
    assert isinstance(atomic.commands[0], UnknownCommand) and atomic.commands[0].cmd_id == "5"


def test_doctype_without_subset_is_accepted_and_never_loaded():
    data = (b'<!DOCTYPE SyncML SYSTEM "file:///etc/passwd">' + minimal())
    assert xml.decode(data).hdr.session_id == "1"
    data = (b'<!DOCTYPE SyncML PUBLIC "-//SYNCML//DTD SyncML 1.2//EN" '
            b'"http://www.openmobilealliance.org/tech/DTD/OMA-TS-DM_DTD_V1_2.dtd">' + minimal())
    assert xml.decode(data).hdr.session_id == "1"


# -- bad input -------------------------------------------------------------------


BILLION_LAUGHS = b'<?xml version="1.0"?><!DOCTYPE SyncML [<!ENTITY lol "lol">' + b"".join(
    b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
    for n in range(1, 10)
) + b']><SyncML><SyncHdr><SessionID>&lol9;</SessionID></SyncHdr></SyncML>'


@pytest.mark.parametrize("data", [
    BILLION_LAUGHS,
    b'<!DOCTYPE SyncML [<!ENTITY a "aaaa">]><SyncML><SyncHdr/>&a;</SyncML>',
    b'<!DOCTYPE SyncML [<!ENTITY a "harmless">]><SyncML/>',
    b'<!DOCTYPE SyncML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<SyncML><SyncHdr><SessionID>&xxe;</SessionID></SyncHdr></SyncML>',
    b'<!DOCTYPE SyncML [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><SyncML/>',
    b'<!DOCTYPE SyncML [<!ENTITY ext SYSTEM "http://127.0.0.1:1/x">]><SyncML>&ext;</SyncML>',
    b'<!DOCTYPE SyncML [<!ELEMENT SyncML ANY>]><SyncML/>',
], ids=["billion-laughs", "internal-entity", "unused-entity", "xxe-file", "parameter-entity",
        "xxe-network", "element-decl"])
def test_entities_and_dtds_are_refused(data):
    error = raises_exactly(XMLCodecError, data)
    assert "root:" not in str(error)
    assert len(str(error)) < 1000


@pytest.mark.parametrize("data", [
    b"",
    b"   \n",
    b"\x03\xa4\x01\x6a\x00\x6d\x6c\x71\x03\x31\x2e\x32\x00\x01",
    b"\xff\xfe\x00\x00garbage",
    b"not xml at all",
    b"<SyncML>",
    b"<SyncML></SyncBody>",
    b"<SyncML><SyncHdr>text<VerDTD/></SyncHdr></SyncML>",
    b"<SyncML><SyncHdr><VerDTD/>tail</SyncHdr></SyncML>",
    b"<SyncML/><SyncML/>",
    b'<?xml version="1.0" encoding="x-unknown-charset"?><SyncML/>',
    b"<SyncML>\x00</SyncML>",
    b"<SyncML>&#0;</SyncML>",
    b"<1SyncML/>",
], ids=lambda d: repr(d[:20]))
def test_malformed_xml(data):
    raises_exactly(XMLCodecError, data)


def test_truncated_corpus_file():
    data = corpus("02-pkg2-server-init.xml")
    for cut in (1, 10, len(data) // 2, len(data) - 12):
        raises_exactly(XMLCodecError, data[:cut])


def test_nesting_limits():
    raises_exactly(XMLCodecError, b"<a>" * 10000 + b"</a>" * 10000)
    deep = b"<SyncML>" + b"<a>" * 70 + b"</a>" * 70 + b"</SyncML>"
    assert "nesting" in raises_exactly(XMLCodecError, deep).reason
    assert xml.parse(deep, max_depth=100).name == "SyncML"
    shallow = b"<SyncML>" + b"<a>" * 5 + b"</a>" * 5 + b"</SyncML>"
    raises_exactly(XMLCodecError, shallow, max_depth=4)


def test_size_limit():
    data = corpus("01-pkg1-client-init.xml")
    raises_exactly(XMLCodecError, data, max_size=len(data) - 1)
    assert xml.decode(data, max_size=len(data)).hdr.session_id == "1A2"


def test_input_must_be_bytes():
    with pytest.raises(XMLCodecError):
        xml.parse(minimal().decode())
    assert xml.parse(bytearray(minimal())).name == "SyncML"


@pytest.mark.parametrize("data, path", [
    (b"<html><body/></html>", "html"),
    (minimal().replace(b"<SessionID>1</SessionID>", b""), "SyncML/SyncHdr"),
    (minimal().replace(b"<SessionID>1</SessionID>", b"<SessionID><x/></SessionID>"),
     "SyncML/SyncHdr/SessionID"),
    (minimal('<Status><CmdID>1</CmdID><CmdRef>0</CmdRef><Data>OK</Data></Status>'),
     "SyncML/SyncBody/Status[1]/Data"),
    (minimal('<Alert><CmdID>1</CmdID><Data>12O1</Data></Alert>'),
     "SyncML/SyncBody/Alert[1]/Data"),
    (minimal('<Replace><CmdID>1</CmdID></Replace><Replace><Item/></Replace>'),
     "SyncML/SyncBody/Replace[2]"),
    (minimal().replace(b"</SyncHdr>", b'<Meta><MaxMsgSize xmlns="syncml:metinf">1e4</MaxMsgSize>'
                                       b"</Meta></SyncHdr>"),
     "SyncML/SyncHdr/Meta/MaxMsgSize"),
], ids=["wrong-root", "no-session-id", "element-session-id", "status-code", "alert-code",
        "no-cmd-id", "max-msg-size"])
def test_structural_errors(data, path):
    assert raises_exactly(ModelError, data).path == path


# -- writer ------------------------------------------------------------------------


def test_writer_namespaces():
    msg = SyncML(hdr=SyncHdr(meta=Meta(max_msg_size=1, extra=[
        Node("Mem", NS_METINF, [Node("FreeMem", NS_METINF, text="5")])])), body=[
        Add(cmd_id="1", items=[Item(data=Node("MgmtTree", NS_DMDDF, [
            Node("VerDTD", NS_DMDDF, text="1.2"), Node("Node", NS_DMDDF, [
                Node("Format", NS_DMDDF, [Node("chr", NS_DMDDF)])])]))])])
    out = xml.encode(msg)
    assert out.startswith(b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr>')
    assert b'<Meta><MaxMsgSize xmlns="syncml:metinf">1</MaxMsgSize><Mem xmlns="syncml:metinf">' \
           b'<FreeMem>5</FreeMem></Mem></Meta>' in out
    assert b'<Data><MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD><Node><Format><chr/>' \
           b'</Format></Node></MgmtTree></Data>' in out
    assert xml.decode(out) == msg
    msg.hdr.ver_dtd = "1.1"
    assert xml.encode(msg).startswith(b'<SyncML xmlns="SYNCML:SYNCML1.1">')


def test_writer_declaration_flag():
    msg = xml.decode(SPEC_COMPACT)
    assert xml.encode(msg, xml_declaration=True) == (
        b'<?xml version="1.0" encoding="UTF-8"?>' + SPEC_COMPACT)


def test_writer_escapes_and_bytes_as_base64():
    msg = SyncML(body=[Replace(cmd_id="1", items=[
        Item(target=LocRef("./A?x=1&y=<2>"), data=b"\x00\x01\xfe\xff"),
        Item(data="]]> & <tag> \"'"),
    ])])
    out = xml.encode(msg)
    assert b"<LocURI>./A?x=1&amp;y=&lt;2&gt;</LocURI>" in out
    assert b"<Data>" + base64.b64encode(b"\x00\x01\xfe\xff") + b"</Data>" in out
    assert b"<Data>]]&gt; &amp; &lt;tag&gt; \"'</Data>" in out
    back = xml.decode(out)
    assert back.body[0].items[0].data == "AAH+/w=="
    assert back.body[0].items[1].data == "]]> & <tag> \"'"


@pytest.mark.parametrize("text", ["\x00", "a\x01b", "\x1f", "\ufffe", "\ud800"])
def test_writer_refuses_characters_xml_cannot_carry(text):
    msg = SyncML(body=[Replace(cmd_id="1", items=[Item(data=text)])])
    with pytest.raises(XMLCodecError) as info:
        xml.encode(msg)
    assert info.value.path == "SyncML/SyncBody/Replace/Item/Data"


def test_serialize_other_vocabularies_and_attributes():
    prov = Node("wap-provisioningdoc", NS_PROV, [
        Node("characteristic", NS_PROV, [
            Node("parm", NS_PROV, attrs={"name": "NAME", "value": 'a"b&c\td'})],
            attrs={"type": "APPLICATION"})], attrs={"version": "1.0"})
    out = xml.serialize(prov)
    assert out == (b'<wap-provisioningdoc version="1.0"><characteristic type="APPLICATION">'
                   b'<parm name="NAME" value="a&quot;b&amp;c&#9;d"/></characteristic>'
                   b'</wap-provisioningdoc>')
    assert xml.parse(out) == prov
    tree = Node("MgmtTree", NS_DMDDF, [Node("VerDTD", NS_DMDDF, text="1.2")])
    assert xml.parse(xml.serialize(tree)) == tree
    foreign = Node("SyncML", NS_SYNCML, [Node("x", "urn:example:x", [Node("y", NS_SYNCML)])])
    out = xml.serialize(foreign)
    assert out == (b'<SyncML xmlns="SYNCML:SYNCML1.2"><x xmlns="urn:example:x">'
                   b'<y xmlns="SYNCML:SYNCML1.2"/></x></SyncML>')
    assert xml.parse(out) == foreign


@pytest.mark.parametrize("node", [
    Node("bad name"),
    Node("SyncML", children=[Node("A", text="t")], text="mixed"),
    Node("A", attrs={"xmlns": "x"}),
    Node("A", text=42),
    Node("A", ns=None),
    "not a node",
])
def test_serialize_refuses_bad_trees(node):
    with pytest.raises(XMLCodecError):
        xml.serialize(node)


# -- properties ----------------------------------------------------------------------


@HYPOTHESIS
@given(messages())
def test_encode_decode_round_trip(msg):
    assert xml.decode(xml.encode(msg)) == msg


@HYPOTHESIS
@given(messages())
def test_node_level_round_trip(msg):
    node = message_to_node(msg)
    assert xml.parse(xml.serialize(node)) == node


@HYPOTHESIS
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_codec_errors(data):
    try:
        xml.decode(data)
    except CodecError:
        pass


def _mutations():
    sources = st.sampled_from([p.read_bytes() for p in CORPUS])
    edits = st.lists(st.tuples(st.sampled_from(["flip", "delete", "insert", "cut"]),
                               st.floats(0, 1), st.binary(min_size=1, max_size=8)),
                     min_size=1, max_size=4)

    def apply(data, ops):
        data = bytearray(data)
        for op, where, chunk in ops:
            at = int(where * (len(data) - 1)) if data else 0
            if op == "flip" and data:
                data[at] ^= chunk[0] or 1
            elif op == "delete":
                del data[at:at + len(chunk)]
            elif op == "insert":
                data[at:at] = chunk
            else:
                del data[at:]
        return bytes(data)

    tokens = st.sampled_from([b"<", b">", b"</Data>", b"<Item>", b"&", b"&#0;", b"<![CDATA[",
                              b"<!DOCTYPE x [<!ENTITY e 'e'>]>", b"\x00", b"\xff", b"<Data>"])
    token_edits = st.tuples(sources, st.floats(0, 1), tokens).map(
        lambda t: t[0][:int(t[1] * len(t[0]))] + t[2] + t[0][int(t[1] * len(t[0])):])
    return st.one_of(st.builds(apply, sources, edits), token_edits)


@HYPOTHESIS
@given(_mutations())
def test_mutated_corpus_raises_only_codec_errors(data):
    try:
        msg = xml.decode(data)
    except CodecError as e:
        assert type(e) in (XMLCodecError, ModelError)
        event(type(e).__name__)
    else:
        event("decoded")
        assert isinstance(msg, SyncML)
        assert xml.decode(xml.encode(msg)) == msg


# -- element limit: counted while converting, still checked first -------------


def test_element_limit_counts_every_element():
    data = corpus("01-pkg1-client-init.xml")
    count = len(list(etree.fromstring(data).iter("{*}*", "*")))
    assert xml.parse(data, max_elements=count).name == "SyncML"
    with pytest.raises(LimitExceeded, match="^%d elements, more than the %d allowed" % (
            count, count - 1)):
        xml.parse(data, max_elements=count - 1)
    with pytest.raises(LimitExceeded):
        xml.parse(b"<SyncML/>", max_elements=0)
    assert xml.parse(b"<SyncML/>", max_elements=1).name == "SyncML"


@pytest.mark.parametrize("fault", [
    b"<SyncML>text<a/>",  # mixed content, met before the limit is reached
    b"<SyncML><a/>tail",
    b"<SyncML>" + b"<b>" * 70 + b"</b>" * 70,  # too deep
])
def test_element_limit_comes_before_other_findings(fault):
    # the document is over the limit: that is what it is refused for, as when
    # its elements were counted before anything else was looked at
    data = fault + b"<c/>" * 100 + b"</SyncML>"
    with pytest.raises(LimitExceeded):
        xml.parse(data, max_elements=50)
    with pytest.raises(XMLCodecError) as caught:
        xml.parse(data, max_elements=1000)
    assert type(caught.value) is XMLCodecError


def test_tag_name_cache_is_bounded():
    for n in range(3):
        names = b"".join(b"<x%d_%d/>" % (n, i) for i in range(3000))
        xml.parse(b'<SyncML xmlns="urn:x%d">%s</SyncML>' % (n, names))
    assert len(xml_reader._NAMES) <= xml_reader._MAX_NAMES
    for n in range(100):
        tree = xml.parse(b'<SyncML><a xmlns="urn:y%d"><b/></a></SyncML>' % (n,))
        assert tree.children[0].children[0].ns == "urn:y%d" % (n,)
        assert tree.children[0].children[0].children == [] and tree.children[0].children[0].name == "b"
    assert len(xml_reader._NAMES) <= xml_reader._MAX_NAMES


def _cache_chars():
    """Characters the tag-name cache holds (names and what they resolve to)."""
    return sum(len(name) + len(local) + len(str(ns)) for name, (local, ns) in xml_reader._NAMES.items())


def test_tag_name_cache_holds_no_attacker_sized_names():
    # Documents from peers not yet authenticated: every one brings new long
    # tag names and namespace URIs.  The cache is process-wide and never
    # emptied, so what it keeps must stay small in characters, not only in
    # entries (64 keys x 4096 names x 50,000-character names was gigabytes).
    for n in range(30):
        uri = b"urn:" + b"u" * 3000 + b"%d" % (n,)
        long_names = b"".join(b"<%s%d_%d/>" % (b"n" * 3000, n, i) for i in range(60))
        xml.parse(b'<SyncML><a xmlns="%s">%s</a>%s</SyncML>' % (uri, long_names, long_names))
    assert _cache_chars() < 2_000_000
    # names are still read right past the cache
    tree = xml.parse(b'<SyncML><%s/><a xmlns="urn:z"><%s/></a></SyncML>' % (b"n" * 3000, b"m" * 3000))
    assert tree.children[0].name == "n" * 3000 and tree.children[0].ns == NS_SYNCML
    assert tree.children[1].children[0].name == "m" * 3000 and tree.children[1].children[0].ns == "urn:z"


def _documents():
    """Small documents, some with mixed content or too deep, as bytes."""
    leaves = st.sampled_from([b"<a/>", b"<b>x</b>", b"text", b"<c> </c>"])
    trees = st.recursive(leaves, lambda kids: st.lists(kids, max_size=5).map(
        lambda parts: b"<e>" + b"".join(parts) + b"</e>"), max_leaves=30)
    return trees.map(lambda inner: b"<SyncML>" + inner + b"</SyncML>")


@HYPOTHESIS
@given(_documents(), st.integers(0, 40), st.sampled_from([3, 64]))
def test_element_limit_is_decided_by_the_count_alone(data, limit, depth):
    count = data.count(b"<") - data.count(b"</")
    try:
        xml.parse(data, max_elements=limit, max_depth=depth)
    except LimitExceeded:
        assert count > limit
    except XMLCodecError:
        assert count <= limit
    else:
        assert count <= limit
        assert xml.parse(data, max_depth=depth) == xml.parse(data, max_elements=limit,
                                                             max_depth=depth)
