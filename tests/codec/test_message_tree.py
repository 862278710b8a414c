"""The C readers of common messages straight to the model, without Nodes
(``decode_xml``, ``_xml_tree.h``; ``decode_model``, WBXML) against the XML
and WBXML readers and the pure mapping.

Differential: on messages (the corpus, drawn ones, the client's, each bent
byte by byte: cut short, characters changed, markup inserted) ``decode_xml``
answers None or the very model the XML reader and the pure mapping build
(same classes, field values of the same types); where they raise it answers
None; and ``xml.decode`` answers the same model or raises the same error
with it as without it.  Hostile input (deep nesting, long names, bad UTF-8,
entities, limits) gets None from it, and the same errors from ``xml.decode``.
Likewise ``wbxml.decode`` with and without ``decode_model`` (messages cut
short, bytes changed, limits).
"""

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from dmgateway.codec import mapping_reader, wbxml, wbxml_reader, xml, xml_reader
from dmgateway.codec.errors import CodecError, LimitExceeded
from tests.codec.conftest import speedups
from tests.codec.strategies import messages
from tests.codec.test_model_mapping import plain

SPEEDUPS = speedups()
pytestmark = pytest.mark.skipif(
    xml._c_decode is None,
    reason="dmgateway.codec._wbxml_speedups is not built (no C compiler at install time), "
           "or DMGW_PURE_XML=1 or DMGW_PURE_MODEL=1: only the XML reader and the pure mapping")

CORPUS = sorted((Path(__file__).parent.parent / "fixtures" / "dm").glob("*.xml"))

# what a client sends: package 1 (MD5 credentials, DevInfo) and package 3 (Status, Results)
CLIENT = [
    b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>'
    b'<SessionID>8310</SessionID><MsgID>1</MsgID><Target><LocURI>http://127.0.0.1:57395/dm</LocURI>'
    b'</Target><Source><LocURI>IMEI:350000000000000</LocURI><LocName>dev0</LocName></Source><Cred>'
    b'<Meta><Format xmlns="syncml:metinf">b64</Format><Type xmlns="syncml:metinf">syncml:auth-md5'
    b'</Type></Meta><Data>8xzRxgHFm8iQscOkxh5dfQ==</Data></Cred></SyncHdr><SyncBody><Alert><CmdID>1'
    b'</CmdID><Data>1201</Data></Alert><Replace><CmdID>2</CmdID><Item><Source><LocURI>./DevInfo/DevId'
    b'</LocURI></Source><Meta><Format xmlns="syncml:metinf">chr</Format><Type xmlns="syncml:metinf">'
    b'text/plain</Type></Meta><Data>IMEI:350000000000000</Data></Item><Item><Source><LocURI>'
    b'./DevInfo/Man</LocURI></Source><Meta><Format xmlns="syncml:metinf">chr</Format></Meta><Data>'
    b'dmgateway</Data></Item></Replace><Final/></SyncBody></SyncML>',
    b'<?xml version="1.0" encoding="UTF-8"?>\n<SyncML xmlns=\'syncml:SyncML1.2\'>\n <SyncHdr>\n'
    b'  <VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>8310</SessionID><MsgID>2</MsgID>\n'
    b'  <Target><LocURI>http://127.0.0.1:57395/dm?s=a&amp;b=&lt;c&gt;</LocURI></Target>\n'
    b'  <Source><LocURI>IMEI:350000000000000</LocURI></Source>\n </SyncHdr>\n <SyncBody>\n'
    b'  <Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd>'
    b'<TargetRef>IMEI:350000000000000</TargetRef><SourceRef>http://x/dm</SourceRef><Data>212</Data>'
    b'</Status>\n  <Results><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>3</CmdRef><Item><Source>'
    b'<LocURI>./DevDetail/SwV</LocURI></Source><Meta><Format xmlns="syncml:metinf">int</Format>'
    b'<Size xmlns="syncml:metinf"> 2 </Size></Meta><Data> 42 </Data><MoreData/></Item></Results>\n'
    b'  <Final />\n </SyncBody>\n</SyncML>\n',
]


def pure_outcome(data, **limits):
    saved = xml._c_decode, xml_reader._c_build, mapping_reader._c_map
    xml._c_decode = xml_reader._c_build = mapping_reader._c_map = None
    try:
        return outcome(data, **limits)
    finally:
        xml._c_decode, xml_reader._c_build, mapping_reader._c_map = saved


def outcome(data, **limits):
    try:
        msg = xml.decode(data, **limits)
    except CodecError as e:
        return "error", e.__class__, str(e), getattr(e, "path", None)
    return "model", plain(msg), msg.unknown


def assert_same(data, max_depth=xml.MAX_DEPTH, max_elements=None):
    """decode_xml answers None or the pure model; xml.decode the same either way."""
    expected = pure_outcome(data, max_depth=max_depth, max_elements=max_elements)
    mapped = SPEEDUPS.decode_xml(data, max_depth, max_elements)
    if mapped is not None:
        assert expected[0] == "model"
        assert plain(mapped) == expected[1]
        assert mapped.unknown == [] == expected[2]
    assert outcome(data, max_depth=max_depth, max_elements=max_elements) == expected
    return mapped


def test_client_messages_are_read_in_c():
    for data in CLIENT:
        assert assert_same(data) is not None


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_corpus_reads_the_same(path):
    data = path.read_bytes()
    assert_same(data)
    try:
        compact = xml.encode(xml.decode(data))
    except CodecError:
        return
    assert_same(compact)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_drawn_messages_read_the_same(msg):
    data = xml.encode(msg)
    mapped = assert_same(data)
    if mapped is not None:
        assert plain(mapped) == plain(xml.decode(data))


BENT = [
    b"\r", b"\xc3\xa9", b"\xff", b"\x00", b"&", b"&#65;", b"&amp;", b"&nbsp;", b"]]>", b"<", b">",
    b"<!-- c -->", b"<?pi x?>", b"<![CDATA[x]]>", b" ", b"\n", b"\t", b"x", b"/", b"'", b'"',
    b"<Foo/>", b"<Final/>", b"<Data>1</Data>", b"<Meta/>", b"<CmdID>9</CmdID>", b"</Item>",
    b' xmlns="syncml:metinf"', b' xmlns=""', b' xmlns="http://www.w3.org/XML/1998/namespace"',
    b' xmlns="syncml:a b"', b' a="1"', b' xmlns:x="syncml:x"', b"<!DOCTYPE SyncML>",
]


@pytest.mark.parametrize("index", range(len(CLIENT)))
def test_bent_client_messages_read_the_same(index):
    data = CLIENT[index]
    rng = random.Random(index)
    cuts = sorted(set(rng.randrange(len(data) + 1) for _ in range(60)) | {0, 1, len(data) - 1})
    for at in cuts:
        assert_same(data[:at])
        assert_same(data[:at] + data[at + 1:])
        for piece in rng.sample(BENT, 4):
            assert_same(data[:at] + piece + data[at:])


def test_limits_read_the_same():
    data = CLIENT[0]
    elements = data.count(b"<") - data.count(b"</")
    for max_elements in (None, 0, 1, elements - 1, elements, elements + 1):
        assert_same(data, max_elements=max_elements)
    for max_depth in (0, 1, 5, 6, 7, 64, 256, 257, 10 ** 30):
        assert_same(data, max_depth=max_depth)
    assert SPEEDUPS.decode_xml(data, 64, elements) is not None
    assert SPEEDUPS.decode_xml(data, 64, elements - 1) is None
    with pytest.raises(LimitExceeded):
        xml.decode(data, max_elements=elements - 1)
    assert SPEEDUPS.decode_xml(data, 6, None) is not None  # SyncML/SyncHdr/Cred/Meta/Format
    assert SPEEDUPS.decode_xml(data, 5, None) is None


def test_hostile_documents_get_none_and_the_same_errors():
    hdr = CLIENT[0].split(b"<SyncBody>")[0]
    deep = hdr + b"<SyncBody>" + b"<Atomic>" * 300 + b"</Atomic>" * 300 + b"</SyncBody></SyncML>"
    long_name = hdr + b"<SyncBody><" + b"A" * 100_000 + b"/></SyncBody></SyncML>"
    for data in (deep, long_name, CLIENT[0].replace(b"dev0", b"d\xc3\x28v"),
                 CLIENT[0].replace(b"dev0", b"&lol;"), CLIENT[0].replace(b"dev0", b"&#0;"),
                 CLIENT[0][:-1], CLIENT[0] + b"<SyncML/>", b"", b"   ", b"<SyncML/>"):
        assert SPEEDUPS.decode_xml(data, 64, None) is None
        assert_same(data)


def test_odd_arguments_answer_none():
    assert SPEEDUPS.decode_xml(bytearray(CLIENT[0]), 64, None) is None
    assert SPEEDUPS.decode_xml(CLIENT[0], 64.0, None) is None
    assert SPEEDUPS.decode_xml(CLIENT[0], 64, "1") is None
    with pytest.raises(TypeError):
        SPEEDUPS.decode_xml(CLIENT[0], 64)


def test_switches_turn_it_off():
    from tests.codec.conftest import printed_with_switch

    code = "from dmgateway.codec import xml; print(xml._c_decode is None)"
    assert printed_with_switch(code, "DMGW_PURE_XML", ("1", "0", "")) == ["True", "False", "False"]
    assert printed_with_switch(code, "DMGW_PURE_MODEL", ("1", "")) == ["True", "False"]


# -- WBXML ---------------------------------------------------------------------------


def wbxml_outcome(data, **limits):
    try:
        msg = wbxml.decode(data, **limits)
    except CodecError as e:
        return "error", e.__class__, str(e), getattr(e, "offset", None)
    return "model", plain(msg), msg.unknown


def wbxml_pure_outcome(data, **limits):
    saved = wbxml._c_decode_model, wbxml_reader._c_decode_body, mapping_reader._c_map
    wbxml._c_decode_model = wbxml_reader._c_decode_body = mapping_reader._c_map = None
    try:
        return wbxml_outcome(data, **limits)
    finally:
        wbxml._c_decode_model, wbxml_reader._c_decode_body, mapping_reader._c_map = saved


def assert_same_wbxml(data, max_depth=wbxml.DEFAULT_MAX_DEPTH, max_elements=None):
    """wbxml._read_model answers None or the pure model; wbxml.decode the same either way."""
    expected = wbxml_pure_outcome(data, max_depth=max_depth, max_elements=max_elements)
    mapped = wbxml._read_model(data, max_depth, max_elements) if b"\xc3" not in data else None
    if mapped is not None:
        assert expected[0] == "model"
        assert plain(mapped) == expected[1]
        assert mapped.unknown == [] == expected[2]
    assert wbxml_outcome(data, max_depth=max_depth, max_elements=max_elements) == expected
    return mapped


needs_wbxml = pytest.mark.skipif(wbxml._c_decode_model is None,
                                 reason="decode_model not built, or DMGW_PURE_WBXML=1 or DMGW_PURE_MODEL=1")


@needs_wbxml
def test_client_messages_are_read_in_c_from_wbxml():
    for data in CLIENT:
        assert assert_same_wbxml(wbxml.encode(xml.decode(data))) is not None


@needs_wbxml
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_corpus_reads_the_same_from_wbxml(path):
    try:
        data = wbxml.encode(xml.decode(path.read_bytes()))
    except CodecError:
        return
    assert_same_wbxml(data)


@needs_wbxml
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_drawn_messages_read_the_same_from_wbxml(msg):
    assert_same_wbxml(wbxml.encode(msg))


@needs_wbxml
@pytest.mark.parametrize("index", range(len(CLIENT)))
def test_bent_wbxml_messages_read_the_same(index):
    data = wbxml.encode(xml.decode(CLIENT[index]))
    rng = random.Random(index)
    for at in sorted(set(rng.randrange(len(data) + 1) for _ in range(80)) | {0, 4, len(data) - 1}):
        assert_same_wbxml(data[:at])
        assert_same_wbxml(data[:at] + data[at + 1:])
        for byte in rng.sample(range(256), 6):
            assert_same_wbxml(data[:at] + bytes((byte,)) + data[at + 1:])
            assert_same_wbxml(data[:at] + bytes((byte,)) + data[at:])


@needs_wbxml
def test_wbxml_limits_read_the_same():
    data = wbxml.encode(xml.decode(CLIENT[0]))
    elements = CLIENT[0].count(b"<") - CLIENT[0].count(b"</")
    for max_elements in (None, 0, 1, elements - 1, elements, elements + 1):
        assert_same_wbxml(data, max_elements=max_elements)
    for max_depth in (0, 1, 5, 6, 7, 64):
        assert_same_wbxml(data, max_depth=max_depth)
    assert wbxml._read_model(data, 10 ** 30, None) is None  # (decode_body raises OverflowError)
    assert wbxml._read_model(data, 64, elements) is not None
    assert wbxml._read_model(data, 64, elements - 1) is None
    with pytest.raises(LimitExceeded):
        wbxml.decode(data, max_elements=elements - 1)


def test_wbxml_switches_turn_it_off():
    from tests.codec.conftest import printed_with_switch

    code = "from dmgateway.codec import wbxml; print(wbxml._c_decode_model is None)"
    assert printed_with_switch(code, "DMGW_PURE_WBXML", ("1", "0", "")) == ["True", "False", "False"]
    assert printed_with_switch(code, "DMGW_PURE_MODEL", ("1", "")) == ["True", "False"]
