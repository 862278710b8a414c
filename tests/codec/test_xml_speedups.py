"""The optional C accelerator of the XML reader against the pure builder.

Differential: on valid messages, on every fixture, on hostile, mutated and
random documents, ``xml_reader.read`` answers the same with the accelerator
as without it (the same tree -- the same name and namespace-key objects from
the reader's caches, the same text and attributes -- or the same error with
the same text and path), and the C function itself answers either the tree
the pure builder answers or None (the pure builder then reads the document):
never a tree for a document the pure builder refuses.  It reads the common
documents itself (it is not a path never taken), and the process-wide caches
stay bounded with it.
"""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dmgateway.codec import xml, xml_reader
from dmgateway.codec.element import NS_SYNCML, Node
from dmgateway.codec.errors import CodecError
from dmgateway.codec.mapping import message_to_node
from tests.codec import lxml_reference
from tests.codec.strategies import messages, reencoded
from tests.codec.test_xml_reader import FIXTURES, HOSTILE, _documents, _mutations

try:
    from dmgateway.codec import _xml_speedups
except ImportError:  # not built (no compiler or no libexpat headers at install time)
    _xml_speedups = None

pytestmark = pytest.mark.skipif(
    _xml_speedups is None, reason="dmgateway.codec._xml_speedups is not built (no C compiler or "
                                  "no libexpat headers at install time): only the pure reader is in use")

ROOT = Path(__file__).resolve().parent.parent.parent
HYPOTHESIS = settings(max_examples=400, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def shape(node):
    """A tree as a flat pre-order list of plain data (text type, attrs None or
    dict, whether the name and key are the objects the name cache holds);
    without recursion, for deep trees."""
    cached = {id(found[0]) for found in xml_reader._NAMES.values()}
    cached_keys = {id(found[1]) for found in xml_reader._NAMES.values()}
    flat, work = [], [node]
    while work:
        node = work.pop()
        flat.append((node.__class__, node.name, node.ns, node.text.__class__, node.text,
                     node.attrs.__class__, node.attrs, len(node.children), node.children.__class__,
                     id(node.name) in cached, id(node.ns) in cached_keys or node.ns is NS_SYNCML))
        work.extend(reversed(node.children))
    return flat


def outcome(data, c, **limits):
    """What ``read`` answers, with (``c``) or without the accelerator."""
    saved = xml_reader._c_build
    xml_reader._c_build = _xml_speedups.build if c else None
    try:
        return "tree", shape(xml_reader.read(data, limits.get("max_depth", 20),
                                             limits.get("max_elements")))
    except CodecError as e:
        return "error", e.__class__, str(e), e.path, e.offset
    finally:
        xml_reader._c_build = saved


def c_alone(data, max_depth=20, max_elements=None):
    """The C function on its own: a root Node or None."""
    data, encoding = xml_reader._transcoded(data)
    declared = {}
    root = _xml_speedups.build(data, encoding, min(max_depth, xml_reader.HARD_MAX_DEPTH),
                               max_elements, declared, Node, xml_reader._NAMES, xml_reader._resolve,
                               xml_reader._attrs, xml_reader.ROOT_KEYS, NS_SYNCML)
    return root, declared


def assert_same(data, **limits):
    """Both paths answer alike; the C function alone answers None or the pure tree."""
    pure = outcome(data, False, **limits)
    assert outcome(data, True, **limits) == pure, data[:300]
    try:
        root, declared = c_alone(data, **limits)
    except CodecError:  # from _transcoded, before any parse: both paths raise it
        assert pure[0] == "error"
        return pure, None
    if root is not None:  # then read() checks the URIs declared, as _build does
        try:
            xml_reader._check_declared(declared)
        except CodecError as e:
            assert pure == ("error", e.__class__, str(e), e.path, e.offset), data[:300]
        else:
            assert pure == ("tree", shape(root)), data[:300]
    return pure, root


def test_module_is_in_use():
    assert xml_reader._c_build is not None or os.environ.get("DMGW_PURE_XML", "") not in ("", "0")
    assert _xml_speedups.expat_version() == xml_reader.pyexpat.EXPAT_VERSION


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(ROOT / "tests")))
def test_every_fixture_reads_the_same(path):
    data = path.read_bytes()
    pure, root = assert_same(data)
    assert pure[0] == "tree"
    if b"<!DOCTYPE" not in data or b"[" not in data.split(b"<!DOCTYPE", 1)[1].split(b">", 1)[0]:
        assert root is not None, "the C builder gave up on an accepted fixture"
    count = len(pure[1])
    for limit in (0, 1, count // 2, count - 2, count - 1, count, count + 1):
        assert_same(data, max_elements=limit)
    for depth in (0, 1, 3, 4, 256, 10_000):
        assert_same(data, max_depth=depth)
    for encoded in reencoded(data, ("utf-16", "utf-16-be", "utf-32", "iso-8859-1", "windows-1252",
                                    "shift_jis", "us-ascii")):
        assert assert_same(encoded)[0] == pure


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages(), st.sampled_from([None, 0, 5, 20, 60]), st.sampled_from([1, 3, 6, 20]))
def test_generated_messages_read_the_same(msg, limit, depth):
    data = xml.serialize(message_to_node(msg))
    pure, root = assert_same(data)
    assert pure[0] == "tree" and root is not None
    assert_same(data, max_elements=limit, max_depth=depth)
    # and the lxml oracle agrees with what the C path reads
    assert lxml_reference.parse(data) == xml.parse(data)


MORE_HOSTILE = [
    b'<?xml version="1.0"?>\n<!DOCTYPE SyncML PUBLIC "-//SYNCML//DTD SyncML 1.2//EN" "x"><SyncML><a>1</a></SyncML>',
    b'<?xml version="1.0" encoding="UTF-8" standalone="no"?><SyncML/>',
    b"<?xml version='1.0' encoding='utf-8'?><SyncML/>",
    b'<?xml version="1.x"?><SyncML/>',
    b'<?xml version="10"?><SyncML/>',
    b"<SyncML>" + b"<a>x</a>" * 5000 + b"</SyncML>",
    b"<SyncML>" + b"&amp;" * 100_000 + b"</SyncML>",
    b"<SyncML><a>" + b"x\r\n" * 300_000 + b"</a></SyncML>",
    b"<SyncML><a>" + b"\xc3\xa9" * 600_000 + b"</a></SyncML>",
    b"<SyncML><a><![CDATA[" + b"]" * 2_000_000 + b"]]></a></SyncML>",
    b"<SyncML>" + b" " * 2_100_000 + b"<a/></SyncML>",
    b"<SyncML>" + b"<a>" * 255 + b"</a>" * 255 + b"</SyncML>",
    b"<SyncML>" + b"<a>" * 256 + b"</a>" * 256 + b"</SyncML>",
    b"<a>" * 256 + b"x" + b"</a>" * 256,
    b"<a>" * 256 + b"<b/>" + b"</a>" * 256,
    b'<SyncML xmlns:a="urn:a" xmlns:a2="u v"><a:x/></SyncML>',
    b'<SyncML xmlns="urn:one"><a xmlns="urn:two"/><b xmlns="bad uri"/></SyncML>',
    b'<SyncML xmlns:p="urn:p"><p:a p:x="1" y="2" z="&lt;"/><b y="3"/></SyncML>',
    b'<SyncML xmlns:p="bad uri x"><a p:x="1"/></SyncML>',
    b'<x:SyncML xmlns:x="syncml:dmddf1.2"><MgmtTree/></x:SyncML>',
    b'<MgmtTree xmlns="syncml:dmddf1.2"><Node><NodeName>a</NodeName></Node></MgmtTree>',
    b"<SyncML><a>t</a>\n<b> </b>\t<c/>x</SyncML>",
    b"<SyncML><a>t<!--c--></a> <!--d--> <b><?p?>u</b></SyncML>",
    b"<SyncML><a>&#x20;&#x9;</a><b>&#xa;<c/></b></SyncML>",
    b"<SyncML><a>&#x41;<c/></a></SyncML>",
    b"<SyncML></SyncML>",
    b"<SyncML><a></a><a/></SyncML>",
    b"<SyncML>" + b"<" + b"n" * 200 + b"/>" + b"<" + b"n" * 200 + b"/></SyncML>",
    b"<SyncML>" + b"<n" + b"\xc3\xa9" * 25_001 + b"/></SyncML>",
    b'<SyncML xmlns="' + b"u" * 300 + b'"><a/><a/></SyncML>',
    b"\xfe\xff\x00<\x00S\x00/\x00>",
    b"\xff\xfe<\x00S\x00/\x00>\x00",
    b'<?xml version="1.0" encoding="utf-16"?><SyncML/>',
    b'<?xml version="1.0" encoding="koi8-r"?><SyncML>\xc1</SyncML>',
    b'<?xml version="1.0" encoding="iso-8859-15"?><SyncML>\xa4</SyncML>',
    b'<?xml version="1.0" encoding="US-ASCII"?><SyncML>\x80</SyncML>',
    b'<?xml version="1.0" encoding="ISO-8859-1"?><SyncML a="\xe9">\xe9</SyncML>',
    b"<SyncML>\xf4\x90\x80\x80</SyncML>",
    b"<SyncML>\xc0\x80</SyncML>",
    b"<SyncML>\xe0\x80\x80</SyncML>",
    b"<SyncML><a>\xed\x9f\xbf</a></SyncML>",
    b"<SyncML/>   \n",
    b"<SyncML/><!--x--><?p?>",
    b"<SyncML/>x",
    b"<SyncML><a/></SyncML><b/>",
    b'<!DOCTYPE SyncML SYSTEM "x"><SyncML>&amp;&e;</SyncML>',
    b'<!DOCTYPE SyncML SYSTEM "x" [<!ENTITY % e "x">]><SyncML/>',
    b'<!DOCTYPE SyncML [<!ENTITY a "&b;"><!ENTITY b "x">]><SyncML>&a;</SyncML>',
    b'<!DOCTYPE SyncML [%e;]><SyncML/>',
]


@pytest.mark.parametrize("data", HOSTILE + MORE_HOSTILE, ids=lambda d: repr(d[:40]))
def test_hostile_documents_read_the_same(data):
    for limits in ({}, {"max_elements": 0}, {"max_elements": 1}, {"max_elements": 3},
                   {"max_depth": 0}, {"max_depth": 2}, {"max_elements": 3, "max_depth": 2}):
        assert_same(data, **limits)


@HYPOTHESIS
@given(_mutations(), st.sampled_from([None, 1, 5, 40]), st.sampled_from([1, 3, 64]))
@example(b"<SyncML><a>" + b"<b>" * 70 + b"x" + b"</b>" * 70 + b"</a>junk" + b"<c/>" * 60, 50, 64)
def test_mutated_documents_read_the_same(data, limit, depth):
    assert_same(data, max_elements=limit, max_depth=depth)


@HYPOTHESIS
@given(_documents(), st.sampled_from([None, 0, 1, 5, 20]), st.integers(0, 8))
def test_small_documents_read_the_same(data, limit, depth):
    assert_same(data, max_elements=limit, max_depth=depth)


def _dm_documents():
    """SyncML-like documents from pieces: namespaces, prefixes, attributes,
    declarations, encodings, characters expat takes and refuses."""
    names = st.sampled_from(["SyncML", "SyncHdr", "Item", "Data", "LocURI", "Meta", "MgmtTree",
                             "Node", "a", "p:a", "q:b", "x" * 130, "\u00e9l", "wap-provisioningdoc"])
    uris = st.sampled_from(["SYNCML:SYNCML1.2", "syncml:metinf", "syncml:dmddf1.2", "urn:x", "",
                            "bad uri", "http://x/%zz", "u" * 200, "\u00e9"])
    texts = st.sampled_from(["", " ", "x", " \r\n\t", "&amp;", "&lt;x&gt;", "&#65;", "&#0;",
                             "<![CDATA[ ]]>", "<![CDATA[x<y]]>", "<!--c-->", "<?pi x?>", "&e;",
                             "\u20ac", "\x01", "\ufffe", "\U0001F600", "]]>", "y" * 3000])
    attrs = st.lists(st.tuples(st.sampled_from(["a", "b", "p:a", "q:c", "xmlns", "xmlns:p",
                                                "xmlns:q", "xml:lang"]), uris), max_size=3)
    element = st.tuples(names, attrs, texts)

    def render(parts, prolog, encoding):
        out = [prolog]
        stack = []
        for (name, pairs, text), close in parts:
            if close and stack:
                out.append("</%s>" % (stack.pop(),))
            out.append("<%s%s>%s" % (name, "".join(' %s="%s"' % pair for pair in pairs), text))
            stack.append(name)
        while stack:
            out.append("</%s>" % (stack.pop(),))
        document = "".join(out)
        try:
            return document.encode(encoding)
        except UnicodeEncodeError:
            return document.encode("utf-8")

    prologs = st.sampled_from(["", '<?xml version="1.0"?>', '<?xml version="1.1" encoding="utf-8"?>',
                               '<?xml version="2.0"?>', '<!DOCTYPE SyncML SYSTEM "x">',
                               "<!DOCTYPE SyncML [<!ENTITY e 'v'>]>", '<?xml version="1.0" '
                               'encoding="ISO-8859-1"?>', '<?xml version="1.0" encoding="utf-16"?>',
                               "\ufeff"])
    return st.builds(render, st.lists(st.tuples(element, st.booleans()), min_size=1, max_size=12),
                     prologs, st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-32"]))


@HYPOTHESIS
@given(_dm_documents(), st.sampled_from([None, 2, 8]), st.sampled_from([2, 5, 64]))
def test_built_documents_read_the_same(data, limit, depth):
    assert_same(data, max_elements=limit, max_depth=depth)


@HYPOTHESIS
@given(st.binary(max_size=200).map(lambda tail: b"<SyncML>" + tail))
def test_random_bytes_read_the_same(data):
    assert_same(data)


def test_seeded_mutation_fuzz():
    # thousands of byte-level mutations of the fixtures, reproducible
    rng = random.Random(16)
    sources = [p.read_bytes() for p in FIXTURES]
    pieces = [b"<", b">", b"/", b"&", b";", b"]]>", b"<![CDATA[", b"<!--", b"-->", b"<?", b"?>",
              b'"', b"=", b":", b"xmlns:p='urn:p'", b" ", b"\x00", b"\xc3", b"\xe9", b"<a>", b"</a>"]
    trees = 0
    for _ in range(int(os.environ.get("DMGW_XML_FUZZ", "3000"))):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data) + 1)
            op = rng.random()
            if op < 0.4:
                data[at:at] = rng.choice(pieces)
            elif op < 0.7:
                del data[at:at + rng.randint(1, 12)]
            elif data:
                data[min(at, len(data) - 1)] = rng.randrange(256)
        pure, _ = assert_same(bytes(data), max_elements=rng.choice([None, 10, 100]),
                              max_depth=rng.choice([4, 20]))
        trees += pure[0] == "tree"
    assert trees > 0


def test_pure_path_can_be_forced():
    script = ("import sys; sys.path.insert(0, %r)\n"
              "from dmgateway.codec import xml_reader\n"
              "print(xml_reader._c_build is None)" % (str(ROOT),))
    for value, pure in (("1", "True"), ("0", "False"), ("", "False")):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env={**os.environ, "DMGW_PURE_XML": value}, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == pure


def test_caches_stay_bounded_through_the_c_path():
    for n in range(30):
        root, _ = c_alone(b'<SyncML xmlns="urn:%d%s">%s</SyncML>' % (
            n, b"u" * 100, b"".join(b"<x%d_%d/>" % (n, i) for i in range(400))))
        assert root is not None
    assert len(xml_reader._NAMES) <= xml_reader._MAX_NAMES
    assert all(len(name) <= xml_reader._MAX_NAME_CHARS for name in xml_reader._NAMES)
    assert len(xml_reader._URIS) <= 256


def test_declared_namespaces_are_handed_back():
    root, declared = c_alone(b'<p:SyncML xmlns:p="urn:p" xmlns="urn:d"><a xmlns=""/></p:SyncML>')
    assert root is not None
    assert declared == {"p": "urn:p", None: None}
    with pytest.raises(CodecError, match="is not a URI"):
        xml_reader.read(b'<SyncML xmlns:p="bad uri"/>', 20, None)


def test_references_are_given_back():
    # every path of the C builder, the trees it gives up on included, returns
    # the references it took: the shared names, keys and constants are held
    # exactly as often before and after a few thousand builds
    documents = [p.read_bytes() for p in FIXTURES[:10]] + [d for d in HOSTILE + MORE_HOSTILE
                                                           if len(d) < 10_000]
    limits = [{}, {"max_elements": 3}, {"max_depth": 2}, {"max_depth": 0}]

    def run():
        for data in documents:
            for limit in limits:
                try:
                    c_alone(data, **limit)
                except CodecError:
                    pass

    run()  # the caches filled
    shared = [NS_SYNCML, xml_reader.ROOT_KEYS, xml_reader._resolve, xml_reader._attrs]
    shared += [item for found in list(xml_reader._NAMES.values()) for item in (found, *found)]
    before = [sys.getrefcount(item) for item in shared]
    for _ in range(20):
        run()
    assert [sys.getrefcount(item) for item in shared] == before


def test_only_pyexpats_expat_release_is_used(monkeypatch):
    # the extension links the system's libexpat: another release than the one
    # pyexpat carries (or other features) could read a document differently
    monkeypatch.delenv("DMGW_PURE_XML", raising=False)  # (the suite may run in pure mode)
    assert xml_reader._load_c_build() is _xml_speedups.build or xml_reader._AMPLIFICATION
    monkeypatch.setattr(xml_reader.pyexpat, "EXPAT_VERSION", "expat_0.0.0")
    assert xml_reader._load_c_build() is None
    monkeypatch.undo()
    monkeypatch.setattr(xml_reader.pyexpat, "features", [("XML_DTD", 0)])
    assert xml_reader._load_c_build() is None
    monkeypatch.undo()
    monkeypatch.setenv("DMGW_PURE_XML", "1")
    assert xml_reader._load_c_build() is None


# -- the quick reader (the common documents read without expat) ------------------------

QUICK_EDGES = [
    b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD></SyncHdr></SyncML>',
    b'<?xml version="1.0" encoding="UTF-8"?><SyncML><a>x</a></SyncML>',
    b'<?xml version="1.0" encoding="utf-8"?>\n<SyncML>\n <a>x</a>\n</SyncML>\n',
    b'<?xml version="1.0"?><SyncML/>', b'<?xml version="1.0" ?><SyncML/>',
    b' <?xml version="1.0"?><SyncML/>', b"\n\t <SyncML/> \n", b"<SyncML/><a/>", b"<SyncML/>x",
    b"<SyncML><a>x &amp; y &lt;&gt;&quot;&apos;</a></SyncML>", b"<SyncML><a>&#65;</a></SyncML>",
    b"<SyncML><a>&amp</a></SyncML>", b"<SyncML><a>&e;</a></SyncML>", b"<SyncML><a>]]></a></SyncML>",
    b"<SyncML><a>]]</a><b>]></b><c>] ]></c></SyncML>", b"<SyncML><a>a\rb</a></SyncML>",
    b"<SyncML><a>a\x01b</a></SyncML>", b"<SyncML><a>\xc3\xa9</a></SyncML>",
    b"<SyncML><a>\t\n</a><b> </b></SyncML>", b"<SyncML> x <a/></SyncML>", b"<SyncML><a/> x </SyncML>",
    b"<SyncML><a></b></SyncML>", b"<SyncML><a></a ></SyncML>", b"<SyncML><a></a\n\t></SyncML>",
    b"<SyncML><ab></a></SyncML>", b"<SyncML><a></ab></SyncML>", b"<SyncML><a>", b"<SyncML><a/",
    b'<SyncML xmlns="syncml:metinf"><a xmlns="">x</a><b xmlns=\'urn:b\'><c/></b></SyncML>',
    b'<SyncML xmlns = "urn:a" ><a xmlns="urn:a"/></SyncML>', b'<SyncML xmlns="urn:a"xmlns="b"/>',
    b'<SyncML xmlns="urn:a" xmlns="urn:b"/>', b'<SyncML xmlns="urn:a" a="1"/>', b'<SyncML a="1"/>',
    b'<SyncML xmlns="urn:}a"/>', b'<SyncML xmlns="http://www.w3.org/XML/1998/namespace"/>',
    b'<SyncML xmlns="http://www.w3.org/2000/xmlns/"/>', b'<SyncML xmlns="bad uri"/>',
    b'<SyncML xmlns="a&amp;b"/>', b'<SyncML xmlns="a\tb"/>', b'<SyncML xmlns="a<b"/>',
    b'<SyncML xmlns="a>b"/>', b'<SyncML xmlns="x"', b'<SyncML xmlns/>', b'<SyncML xmlns="x/>',
    b"<xml/>", b"<XMLa/>", b"<SyncML><xmlns/></SyncML>", b"<p:SyncML xmlns:p='urn:p'/>",
    b"<SyncML><a.b-c_1/><_a/></SyncML>", b"<SyncML><1a/></SyncML>", b"<SyncML><-a/></SyncML>",
    b"<SyncML>" + b"<a>" * 300 + b"</a>" * 300 + b"</SyncML>",
    b"<SyncML><" + b"n" * 300 + b"/></SyncML>", b'<SyncML xmlns="' + b"u" * 1100 + b'"/>',
    b"<SyncML><a>x</a><a>y<b/></a></SyncML>", b"<SyncML></SyncML>", b"<SyncML/ >", b"< SyncML/>",
    b"<MgmtTree><Node/></MgmtTree>", b"<wap-provisioningdoc/>", b"<SyncML><!--c--></SyncML>",
    b"<SyncML><a><![CDATA[x]]></a></SyncML>", b"<SyncML><?p x?></SyncML>",
    # an end tag before any element is open
    b"</SyncML>", b"</a>", b" \n</a>", b"</", b'<?xml version="1.0"?></SyncML>',
]


@pytest.mark.parametrize("data", QUICK_EDGES)
@pytest.mark.parametrize("limits", [{}, {"max_elements": 1}, {"max_elements": 2}, {"max_depth": 1}])
def test_quick_reader_edges_read_the_same(data, limits):
    assert_same(data, **limits)


def _quick_documents():
    """Documents of the quick reader's subset and just past its edges."""
    tokens = st.sampled_from([
        b"<a>", b"</a>", b"<b>", b"</b>", b"<a/>", b"<b />", b"x", b" ", b"\n", b"\t", b"&amp;", b"&lt;",
        b"&x;", b"]]>", b"]", b">", b"<", b"&", b"\r", b"\xc3\xa9", b'<a xmlns="urn:a">',
        b"<b xmlns=''>", b'<a xmlns="syncml:metinf">', b'<a xmlns="a}b">', b"</a >", b"<a/ >",
        b"<a x='1'>", b"<p:a>", b"</SyncML>", b"<!--c-->"])
    return st.lists(tokens, max_size=25).map(lambda parts: b"<SyncML>" + b"".join(parts) + b"</SyncML>")


@HYPOTHESIS
@given(_quick_documents(), st.sampled_from([None, 1, 4]), st.sampled_from([1, 3, 64]))
def test_quick_documents_read_the_same(data, limit, depth):
    assert_same(data, max_elements=limit, max_depth=depth)


def test_quick_reader_hands_declarations_back():
    # as expat does: the last default namespace declared, None for xmlns=""
    assert c_alone(b'<SyncML xmlns="urn:d"><a xmlns=""/></SyncML>')[1] == {None: None}
    assert c_alone(b'<SyncML xmlns=""><a xmlns="urn:d"/></SyncML>')[1] == {None: "urn:d"}
    assert c_alone(b'<SyncML/>')[1] == {}


def test_quick_reader_reads_client_messages():
    # what the client library sends: a tree, the same as the pure builder's
    data = (b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD></SyncHdr><SyncBody>'
            b'<Alert><CmdID>1</CmdID><Meta><Format xmlns="syncml:metinf">chr</Format></Meta>'
            b'<Data>a &amp; b</Data></Alert><Final/></SyncBody></SyncML>')
    pure, root = assert_same(data)
    assert pure[0] == "tree" and root is not None


def test_a_document_left_late_keeps_its_element_budget():
    # the quick reader counts the elements it reads before it meets a comment;
    # expat then reads the document again with the whole budget, not what was left
    data = b"<SyncML>" + b"<a/>" * 10 + b"<!--c--></SyncML>"
    assert c_alone(data, max_elements=11)[0] is not None
    assert c_alone(data, max_elements=10)[0] is None  # past the limit: the pure path says why
    assert_same(data, max_elements=11)


# -- what the C builder keeps between documents, and its cheaper constructors ------------


def _c_with_names(data, names, resolve):
    """The C function with a names dict (and a _resolve filling it) of the caller's own."""
    data, encoding = xml_reader._transcoded(data)
    return _xml_speedups.build(data, encoding, 20, None, {}, Node, names, resolve,
                               xml_reader._attrs, xml_reader.ROOT_KEYS, NS_SYNCML)


def _flat(node):
    return [(n.name, n.ns, n.text, n.attrs, len(n.children)) for n in _walk(node)]


def _walk(node):
    work = [node]
    while work:
        node = work.pop()
        yield node
        work.extend(reversed(node.children))


def test_names_are_the_held_ones_across_documents_and_paths():
    # the same names met by the quick reader, then by expat (a comment sends
    # the document there), then by the quick reader again: each time the very
    # tuple items _NAMES holds, whichever path met them first
    quick = (b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD></SyncHdr>'
             b'<SyncBody><Meta><Type xmlns="syncml:metinf">t</Type></Meta></SyncBody></SyncML>')
    via_expat = quick.replace(b"<SyncBody>", b"<SyncBody><!--c-->")
    for data in (quick, via_expat, quick, via_expat):
        pure, root = assert_same(data)
        assert root is not None
        for node in _walk(root):
            expat_name = ("syncml:metinf}" if node.name == "Type" else "SYNCML:SYNCML1.2}") + node.name
            local, key = xml_reader._NAMES[expat_name]
            assert node.name is local and node.ns is key


def test_many_names_push_each_other_out_and_still_read_the_same():
    # more names than the C table holds, several documents over: every tree
    # as the pure builder's, the names those _NAMES holds (or made again)
    for round_ in range(3):
        names = b"".join(b"<n%d_%d/><m%d/>" % (round_, i, i) for i in range(700))
        data = b'<SyncML xmlns="urn:t%d">%s</SyncML>' % (round_, names)
        pure, root = assert_same(data)
        assert root is not None and len(root.children) == 1400
    assert_same(b"<SyncML>" + b"".join(b"<m%d>x</m%d>" % (i, i) for i in range(700)) + b"</SyncML>")


def test_long_names_are_looked_up_each_time():
    # names of 63, 64 and 65 bytes ("URI}local" counted), held or not
    for n in (46, 47, 48, 60, 200):
        local = b"a" * n
        data = b'<SyncML xmlns="SYNCML:SYNCML1.2"><%s>x</%s><%s/></SyncML>' % (local, local, local)
        for _ in range(2):
            pure, root = assert_same(data)
            assert root is not None and [c.name for c in root.children] == [local.decode()] * 2


def test_another_names_dict_is_answered_from_it():
    # the table describes one names dict: another's names are its own, and
    # _NAMES' are found again afterwards
    data = (b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD></SyncHdr>'
            b'<ab xmlns="syncml:metinf"/></SyncML>')
    xml_reader.read(data, 20, None)  # the table filled from _NAMES
    own = {}

    def resolve(name):
        found = (name.rsplit("}", 1)[-1], "K" if "}" in name else None)  # new strs
        own[name] = found
        return found

    for _ in range(2):
        root = _c_with_names(data, own, resolve)
        assert root is not None
        for node in _walk(root):
            held = [found for found in own.values() if found[0] is node.name]
            assert held and node.ns == ("K" if held[0][1] else root.ns)
            assert node.name is not xml_reader._NAMES.get("SYNCML:SYNCML1.2}" + node.name, (None,))[0]
    assert _flat(root) == [("SyncML", "K", None, None, 2), ("SyncHdr", "K", None, None, 1),
                           ("VerDTD", "K", "1.2", None, 0), ("ab", "K", None, None, 0)]
    pure, root = assert_same(data)
    assert root.name is xml_reader._NAMES["SYNCML:SYNCML1.2}SyncML"][0]


def test_a_resolve_that_does_not_hold_its_answer_is_asked_each_time():
    asked = []

    def resolve(name):
        asked.append(name)
        return (name, None)

    data = b"<SyncML><a/><a/><b/></SyncML>"
    for _ in range(2):
        root = _c_with_names(data, {}, resolve)
        assert _flat(root) == [("SyncML", NS_SYNCML, None, None, 3), ("a", NS_SYNCML, None, None, 0),
                               ("a", NS_SYNCML, None, None, 0), ("b", NS_SYNCML, None, None, 0)]
    assert asked == ["SyncML", "a", "a", "b"] * 2


def test_a_resolve_answer_that_is_not_a_pair_gives_up():
    for answer in ((), ("a",), ("a", None, 1), ["a", None], "ab"):
        assert _c_with_names(b"<SyncML><a/></SyncML>", {}, lambda name, answer=answer: answer) is None


@pytest.mark.parametrize("text", [
    b"x", b"xy", b" ", b"  ", b"\t\n", b"&amp;", b"&lt;&gt;", b"a&amp;b", b"&quot;&apos;x", b"1.2",
    b"x" * 5000, b"\x7f", b"~}{|", b"]", b"]]", b"] ]>", b"\xc3\xa9", b"a\xe2\x82\xacb", b"<![CDATA[x]]>",
    b"<![CDATA[\xc3\xa9]]>", b"&#65;", b"&#xe9;", b"a\rb", b" x ",
])
def test_text_reads_the_same(text):
    # ASCII text the quick reader made into a str without the decoder, and
    # every other text through it: equal, of the same kind, one ASCII
    # character the shared str
    data = b'<SyncML xmlns="SYNCML:SYNCML1.2"><a>%s</a><b>%s<!--c--></b></SyncML>' % (text, text)
    for document in (data, data.replace(b"<!--c-->", b"")):
        pure, root = assert_same(document)
        assert root is not None
        for node in root.children:
            if node.text is not None and len(node.text) == 1 and node.text.isascii():
                assert node.text is chr(ord(node.text))
            if node.text is not None:
                assert node.text.isascii() == all(ord(c) < 128 for c in node.text)


@pytest.mark.parametrize("declared", [
    [b"SYNCML:SYNCML1.2"], [b"urn:a", b"urn:b"], [b"urn:b", b"urn:a"], [b"urn:a", b""], [b"", b"urn:a"],
    [b"urn:a", b"urn:ab"], [b"urn:ab", b"urn:a"], [b"bad uri"], [b"urn:a", b"bad uri"],
])
def test_the_last_default_namespace_is_handed_back(declared):
    # in sequence, so that the URI the C builder last made a str of is met again
    children = b"".join(b'<a xmlns="%s"/>' % (uri,) for uri in declared[1:])
    data = b'<SyncML xmlns="%s">%s</SyncML>' % (declared[0], children)
    for _ in range(2):
        assert_same(data)
        root, got = c_alone(data)
        if b"bad uri" in declared:  # _resolve refuses the name: the pure path says why
            assert root is None
            continue
        assert root is not None
        last = declared[-1].decode()
        assert got == {None: last or None}
