"""More differential cases for the C readers straight to the model
(``decode_xml``, ``decode_model``), beyond ``test_message_tree``'s bytes
bent one at a time: element trees of real messages changed as a whole
(children repeated, dropped, shuffled, moved, texts replaced by edge values)
and written both ways; WBXML tokens of other code pages whose names are
SyncML names (page 2 ``Add``, ``Get``, ``VerDTD``, ``Format``), page
switches anywhere, text pieces, header fields; XML namespace values and
whitespace around every piece of markup; nesting at the limits and very
long text.  Each answers the model the pure path builds, or the same error.
All seeded: the same cases on every run."""

import copy
import random

import pytest

from dmgateway.codec import wbxml, xml
from dmgateway.codec.element import Node
from dmgateway.codec.errors import CodecError
from dmgateway.codec.wbxml_pages import SYNCML12
from dmgateway.codec.wbxml_writer import encode_node
from tests.codec.test_message_tree import CLIENT, CORPUS, assert_same, assert_same_wbxml

pytestmark = pytest.mark.skipif(
    xml._c_decode is None or wbxml._c_decode_model is None,
    reason="dmgateway.codec._wbxml_speedups is not built, or a DMGW_PURE_* switch is set: "
           "only the pure readers and mapping")

LIMITS = [(3, None), (5, 30), (64, 20), (64, 1), (6, None)]

TEXTS = ["", " ", "0", "1", "-1", "007", " 42 ", "\t7\n", "99999999999999999999", "999999999999999999999",
         "18446744073709551616", "4294967296", "1.5", "+1", "\u0661", "b64", "bin", "chr", "xml", "int",
         "text/plain", "application/vnd.syncml.dmtnds+xml", "syncml:auth-md5", "syncml:auth-basic",
         "\u00e9", "a\nb", "&<>\"'", "1201", "1200", "1222", "200", "212", "401", "SyncHdr", "./a",
         "x" * 300, "1.1", "1.2", "DM/1.1", "DM/1.2", "\t", "]]", "]"]

NAMES = ["Final", "Meta", "Data", "Item", "CmdID", "MsgRef", "CmdRef", "Cmd", "Format", "Type", "Size",
         "MaxObjSize", "MaxMsgSize", "NoResp", "MoreData", "Target", "Source", "LocURI", "LocName", "Cred",
         "Chal", "NextNonce", "Atomic", "Sequence", "Get", "Replace", "Add", "Delete", "Exec", "Copy",
         "Alert", "Status", "Results", "SourceRef", "TargetRef", "SessionID", "MsgID", "VerDTD",
         "VerProto", "RespURI", "Foo", "MgmtTree", "EMI", "Mark", "Correlator", "Sync", "Map", "Lang"]


def elements(root):
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node.children)
    return found


def changed(rng, root):
    """A copy of element tree ``root`` changed in one to three places."""
    root = copy.deepcopy(root)
    for _ in range(rng.randrange(1, 4)):
        every = elements(root)
        node = rng.choice(every)
        r = rng.random()
        if r < 0.3 and not node.children:
            node.text = rng.choice(TEXTS) or None
        elif r < 0.45 and node.children:
            node.children.append(copy.deepcopy(rng.choice(node.children)))
        elif r < 0.6 and node.children:
            node.children.remove(rng.choice(node.children))
        elif r < 0.7:
            rng.shuffle(node.children)
        elif r < 0.85 and node.text is None:
            node.children.insert(rng.randrange(len(node.children) + 1),
                                 Node(rng.choice(NAMES), node.ns, None, rng.choice(TEXTS) or None))
        else:
            donor = rng.choice(every)
            if donor is not root and donor is not node and node.text is None:
                node.children.append(copy.deepcopy(donor))
    return root


@pytest.mark.parametrize("seed", range(4))
def test_changed_trees_read_the_same_both_ways(seed):
    rng = random.Random(seed)
    seeds = []
    for data in list(CLIENT) + [path.read_bytes() for path in CORPUS]:
        try:
            seeds.append(xml.parse(data))
        except CodecError:
            pass
    mapped = 0
    for _ in range(150):
        root = changed(rng, rng.choice(seeds))
        max_depth, max_elements = (64, None) if rng.random() < 0.8 else rng.choice(LIMITS)
        for write, check in ((xml.serialize, assert_same), (lambda r: encode_node(r, SYNCML12), assert_same_wbxml)):
            try:
                data = write(root)
            except CodecError:
                continue
            mapped += check(data, max_depth=max_depth, max_elements=max_elements) is not None
    assert mapped > 50  # the C readers mapped a good share of them


def wbxml_cases():
    w0 = wbxml.encode(xml.decode(CLIENT[0]))
    w1 = wbxml.encode(xml.decode(CLIENT[1]))
    end = b"\x12\x01\x01"  # <Final/> </SyncBody> </SyncML>
    cases = [
        w0.replace(b"mlq\x031.2\x00\x01", b"ml\x00\x02w\x031.2\x00\x01\x00\x00"),  # page 2 VerDTD
        w0.replace(b"\x01" + end, b"\x01\x00\x02G\x00\x00K\x039\x00\x01\x01" + end),  # page 2 Add
        w0.replace(b"\x01" + end, b"\x01\x00\x02]\x00\x00K\x039\x00\x01\x01" + end),  # page 2 Get
        w0.replace(b"G\x03b64\x00\x01", b"\x00\x02\\\x03b64\x00\x01\x00\x01"),  # page 2 Format in Meta
        w0.replace(b"\x01" + end, b"\x01\x00\x01\x12\x00\x00\x01\x01"),  # page 1 Size in SyncBody
        w0.replace(end, b"\x00\x00" + end),
        w0.replace(end, b"\x00\x01\x00\x00" + end),
        w0.replace(end, end + b"\x00\x00"),
        w0.replace(end, b"\x12\x01\x00\x00\x01"),
        w0.replace(end, end + b"\x43abc\x00\x01"),
        w0.replace(end, b"\x12\x00\x05\x01\x01"),
        w0.replace(end, b"\x12\x00\xff\x01\x01"),
        w0.replace(end, end + b"\x01"),
        w0.replace(end, end[:-1]),
        w0.replace(end, end + b"\x6d\x01"),
        w0.replace(b"\x03dev0\x00", b"\x03\x00\x03x\x00"),
        w0.replace(b"V\x03dev0\x00\x01", b"\x16"),
        w0[:3] + b"\x00" + w0[4:], w0[:3] + b"\x04" + w0[4:],
        w0[:1] + b"\x00\x00" + w0[2:], w0[:4] + b"\x05abcde" + w0[5:],
        w0[:4] + b"\x8f\xff\xff\xff\x7f" + w0[5:], w0[:4] + b"\x80\x80\x80\x80\x80\x00" + w0[5:],
    ] + [bytes((version,)) + w0[1:] for version in (0, 1, 2, 4)]
    for text in (b"", b" ", b"\t", b"\r", b"\r\n", b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80",
                 b"\xed\xa0\x80", b"\xc0\x80", b"\xff", b"\x7f", b"\x01", b"\xef\xbf\xbe", b"\xef\xbb\xbf",
                 b" \xc2\xa0 ", b"]]>", b"&amp;", b"<"):
        cases += [w0.replace(b"\x03dev0\x00", b"\x03" + text + b"\x00"),
                  w0.replace(b"\x031201\x00", b"\x03" + text + b"\x00"),
                  w0.replace(b"\x03dmgateway\x00", b"\x03" + text + b"\x00"),
                  w0.replace(b"\x03b64\x00", b"\x03" + text + b"\x00"),
                  w1.replace(b"R\x032\x00", b"R\x03" + text + b"2\x00"),
                  w0.replace(b"\x03dev0\x00", b"\x03" + text + b"\x00\x03x\x00")]
    return cases


def test_wbxml_pages_tokens_texts_and_headers_read_the_same():
    cases = wbxml_cases()
    assert all(case != wbxml.encode(xml.decode(CLIENT[0])) for case in cases[:17])
    mapped = 0
    for data in cases:
        mapped += assert_same_wbxml(data) is not None
        for max_depth, max_elements in ((6, None), (5, None), (0, None), (1, 1), (64, 44), (64, 45),
                                        (64, 46), (64, 0)):
            assert_same_wbxml(data, max_depth=max_depth, max_elements=max_elements)
    assert mapped > 40
    assert all(wbxml._read_model(data, 100, None) is not None for data in cases[:4])  # other pages' names


def xml_cases():
    c0, c1 = CLIENT
    cases = []
    for ns in ("syncml:", "SYNCML:", "syncml:.", "syncml:1", "", "syncml:dmddf1.2", "syncml:metinf",
               "SyncML:SyncML1.1", "Syncml:x"):
        uri = ns.encode()
        cases += [c0.replace(b'<SyncML xmlns="SYNCML:SYNCML1.2">', b'<SyncML xmlns="%s">' % uri),
                  c0.replace(b"<Data>8xz", b'<Data xmlns="%s">8xz' % uri),
                  c0.replace(b'<Format xmlns="syncml:metinf">b64', b'<Format xmlns="%s">b64' % uri),
                  c0.replace(b"<Meta><Format", b'<Meta xmlns="%s"><Format' % uri)]
    for text in (b"\x7f", b"\t", b"\n", b" ", b">", b"]", b"]]", b"]>", b"&quot;&apos;"):
        cases += [c0.replace(b"dev0", b"dev" + text), c0.replace(b"<Data>8xz", b"<Data>" + text + b"8xz"),
                  c0.replace(b"<Data>1201", b"<Data>" + text),
                  c0.replace(b"<LocName>dev0</LocName>", b"<LocName>" + text + b"</LocName>")]
    for space in (b" ", b"\t", b"\n", b"  \n\t"):
        cases += [c0.replace(b"<SyncHdr>", b"<SyncHdr" + space + b">"),
                  c0.replace(b"</SyncHdr>", b"</SyncHdr" + space + b">"),
                  c0.replace(b"<Final/>", b"<Final" + space + b"/>"),
                  c0.replace(b'xmlns="SYNCML:SYNCML1.2"',
                             b"xmlns" + space + b"=" + space + b'"SYNCML:SYNCML1.2"' + space),
                  space + c0 + space, b'<?xml version="1.0"?>' + space + c0,
                  c0.replace(b"<MsgID>1</MsgID>", b"<MsgID>" + space + b"1" + space + b"</MsgID>"),
                  c0.replace(b"<Meta>", b"<Meta>" + space), c0.replace(b"</Meta>", space + b"</Meta>")]
    size = b'<Size xmlns="syncml:metinf"> 2 </Size>'
    cases += [c0.replace(b"<Final/>", b"<Final></Final>"), c0.replace(b"<Final/>", b"<Final> </Final>"),
              c0.replace(b"<Final/>", b"<Final>x</Final>"), c0.replace(b"<Final/>", b"<Final><Final/></Final>"),
              c0.replace(b"<LocName>dev0</LocName>", b"<LocName/>"),
              c0.replace(b"<Data>1201</Data>", b"<Data> </Data>"),
              c0.replace(b'<Format xmlns="syncml:metinf">b64</Format>', b"<Format> </Format>"),
              c1.replace(size, b"<Size>\t2\n</Size>"), c1.replace(size, b"<Size></Size>"),
              c1.replace(size, b"<Size>00000000000000000000002</Size>"),
              c1.replace(size, b"<Size>99999999999999999999</Size>"),
              c1.replace(b"<MoreData/>", b"<MoreData> </MoreData>")]
    return cases


def test_xml_namespaces_whitespace_and_texts_read_the_same():
    cases = xml_cases()
    mapped = 0
    for data in cases:
        mapped += assert_same(data) is not None
        for max_depth, max_elements in ((6, None), (64, 45), (64, 46), (64, 47), (64, 44)):
            assert_same(data, max_depth=max_depth, max_elements=max_elements)
        assert_same_wbxml(data)
    assert mapped > 100


def test_nesting_at_the_limits_and_long_text_read_the_same():
    c0 = CLIENT[0]
    head = c0.split(b"<SyncBody>")[0]
    w0 = wbxml.encode(xml.decode(c0))
    for k in (62, 63, 64, 65, 254, 255, 256, 257):
        for inner in (b"<Final/>", b"<CmdID>1</CmdID>"):
            data = head + b"<SyncBody>" + b"<Atomic>" * k + inner + b"</Atomic>" * k + b"</SyncBody></SyncML>"
            for max_depth in (64, 65, 255, 256, 257, 10 ** 6):
                assert_same(data, max_depth=max_depth)
                assert_same(data, max_depth=max_depth, max_elements=k + 20)
        deep = w0.replace(b"\x12\x01\x01", b"\x48" * k + b"\x12" + b"\x01" * k + b"\x01\x01")
        for max_depth in (64, 100, 256, 257, 10 ** 5):
            assert_same_wbxml(deep, max_depth=max_depth)
    long = c0.replace(b"dev0", b"x" * 1_000_000).replace(b"<Data>dmgateway</Data>",
                                                         b"<Data>" + b"&amp;" * 100_000 + b"</Data>")
    assert assert_same(long) is not None
    assert assert_same_wbxml(wbxml.encode(xml.decode(long))) is not None
