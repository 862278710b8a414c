"""The optional C accelerator of the WBXML reader and writer against the pure
reference.

Differential: on valid messages, on the corpus and on corrupted or hostile
bytes, ``decode_node`` answers the same with the accelerator as without it
(the same tree, or the same error with the same text and offset), and the
C function itself answers either that same tree or None (the pure reader
then reads the document).  It never reads past the buffer, never builds
past a limit.  Likewise ``encode_node`` writes the same bytes, or raises the
same error, with or without it, on valid and on malformed trees.
"""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmgateway.codec import mapping, wbxml, wbxml_reader, wbxml_writer, xml
from dmgateway.codec.element import NS_DMDDF, NS_METINF, NS_SYNCML, Node
from dmgateway.codec.errors import CodecError
from dmgateway.codec.wbxml_pages import DMDDF12, PROV10, SYNCML11, SYNCML12
from dmgateway.codec.wbxml_tables import K_END, K_OPAQUE, K_STR_I, K_SWITCH, compiled
from tests.codec.conftest import printed_with_switch, speedups
from tests.codec.strategies import messages
from tests.codec.wbxml_vectors import DDF_EXAMPLE, DM_WORKED_EXAMPLE, LIBWBXML_DM_TNDS

SPEEDUPS = speedups()
pytestmark = pytest.mark.skipif(
    SPEEDUPS is None, reason="dmgateway.codec._wbxml_speedups is not built (no C compiler at "
                             "install time): only the pure reader is in use")

CORPUS = sorted((Path(__file__).parent.parent / "fixtures" / "dm").glob("*.xml"))
HEADER_12 = bytes.fromhex("03a4016a00")  # WBXML 1.3, SyncML 1.2, UTF-8, no string table
SYNCML, SYNCHDR, VERDTD, SOURCE, LOCURI = 0x6D, 0x6C, 0x71, 0x67, 0x57


def shape(node):
    """A tree as a flat pre-order list of plain data, text types and attrs
    None-or-dict included (``Node.__eq__`` takes None and {} for the same);
    without recursion, for deep trees."""
    flat, work = [], [node]
    while work:
        node = work.pop()
        flat.append((node.__class__, node.name, node.ns, node.text.__class__, node.text,
                     node.attrs, len(node.children)))
        work.extend(reversed(node.children))
    return flat


def outcome(data, c, vocabulary=SYNCML12, **limits):
    """What ``decode_node`` answers, with (``c``) or without the accelerator."""
    saved = wbxml_reader._c_decode_body
    wbxml_reader._c_decode_body = SPEEDUPS.decode_body if c else None
    try:
        return "tree", shape(wbxml_reader.decode_node(data, vocabulary, **limits))
    except CodecError as e:
        return "error", e.__class__, str(e), getattr(e, "offset", None)
    finally:
        wbxml_reader._c_decode_body = saved


def c_body(data, vocabulary=SYNCML12, max_depth=100, max_elements=None):
    """The C function alone, on a document with a plain header."""
    header = wbxml_reader.read_header(data)
    return SPEEDUPS.decode_body(data, header.body_offset, compiled(vocabulary).tag_pages, Node,
                                max_depth, max_elements, K_END, K_STR_I, K_SWITCH, K_OPAQUE)


def assert_same(data, vocabulary=SYNCML12, **limits):
    pure = outcome(data, False, vocabulary, **limits)
    assert outcome(data, True, vocabulary, **limits) == pure
    return pure


def wbxml_of(path):
    return wbxml.encode(xml.decode(path.read_bytes()))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_the_accelerator_reads_the_corpus_itself_as_the_pure_reader(path):
    data = wbxml_of(path)
    root = c_body(data)
    assert root is not None, "the common subset should not fall back"
    assert shape(root) == assert_same(data)[1]


def test_it_reads_opaque_data_and_switches_pages():
    body = bytes([0x40 | SYNCML, 0x40 | SYNCHDR, 0x40 | VERDTD, 0xC3, 3]) + b"a\x00b" + bytes(
        [0x01, 0x00, 0x01, 0x40 | 0x0F, 0x03]) + b"x\x00" + bytes([0x01, 0x00, 0x00, 0x01, 0x01])
    data = HEADER_12 + body
    root = c_body(data)
    assert root is not None
    assert root.children[0].children[0].text == b"a\x00b"
    assert shape(root) == assert_same(data)[1]


@pytest.mark.parametrize("data", [DDF_EXAMPLE, LIBWBXML_DM_TNDS, DM_WORKED_EXAMPLE])
def test_spec_vectors(data):
    assert assert_same(data, None)[0] == "tree"  # the language by the document's public id


def leaf(text=b"x"):
    return bytes([0x40 | LOCURI, 0x03]) + text + b"\x00\x01"


def doc(*inner):
    return HEADER_12 + bytes([0x40 | SYNCML, 0x40 | SOURCE]) + b"".join(inner) + b"\x01\x01"


HOSTILE = {
    "empty body": HEADER_12,
    "truncated mid-element": doc(leaf())[:-1],
    "unterminated STR_I": HEADER_12 + bytes([0x40 | SYNCML, 0x03]) + b"abc",
    "opaque length truncated mb": HEADER_12 + bytes([0x40 | SYNCML, 0xC3, 0x81, 0x82]),
    "opaque length of six bytes": HEADER_12 + bytes([0x40 | SYNCML, 0xC3]) + b"\x81" * 5 + b"\x01",
    "opaque length overflows 32 bits": HEADER_12 + bytes([0x40 | SYNCML, 0xC3, 0x9F]) + b"\xff" * 3
    + b"\x7f",
    "opaque huge length": HEADER_12 + bytes([0x40 | SYNCML, 0xC3, 0x8F, 0xFF, 0xFF, 0xFF, 0x7F,
                                             0x01]),
    "opaque one past the end": HEADER_12 + bytes([0x40 | SYNCML, 0xC3, 0x05]) + b"abcd",
    "switch page at the end": HEADER_12 + bytes([0x40 | SYNCML, 0x00]),
    "switch to an unknown page": HEADER_12 + bytes([0x40 | SYNCML, 0x00, 0x77, 0x45, 0x01]),
    "unknown tag": HEADER_12 + bytes([0x40 | SYNCML, 0x3F, 0x01]),
    "end outside any element": HEADER_12 + b"\x01",
    "text outside the root": HEADER_12 + b"\x03a\x00",
    "two roots": HEADER_12 + bytes([SYNCML, SYNCML]),
    "data after the root": doc(leaf()) + b"\x45",
    "pi after the root": doc(leaf()) + b"\x43\x05\x01",
    "nul control character": doc(leaf(b"a\x01b")),
    "U+FFFE": doc(leaf("a\ufffe".encode("utf-8"))),
    "U+FFFF": doc(leaf("\uffff".encode("utf-8"))),
    "surrogate in utf-8": doc(leaf(b"\xed\xa0\x80")),
    "invalid utf-8": doc(leaf(b"\xff\xfe")),
    "text and elements": doc(bytes([0x40 | LOCURI]) + b"\x03t\x00" + bytes([LOCURI]) + b"\x01"),
    "elements then text": doc(bytes([0x40 | LOCURI, LOCURI]) + b"\x03 \x00\x01"),
    "two text pieces": doc(bytes([0x40 | LOCURI]) + b"\x03a\x00\x03b\x00\x01"),
    "attributes": doc(bytes([0x80 | LOCURI]) + b"\x01"),
    "entity": doc(bytes([0x40 | LOCURI, 0x02, 0x41, 0x01])),
    "str_t": doc(bytes([0x40 | LOCURI, 0x83, 0x00, 0x01])),
    "literal": doc(bytes([0x44, 0x00, 0x01])),
    "tab, lf, cr": doc(leaf(b"\ta\nb\rc")),
    "non-ascii": doc(leaf("h\u00e9llo \u4e16\U0001F600".encode("utf-8"))),
    "empty text": doc(leaf(b"")),
    # inline strings: ASCII (made without the decoder from two characters), one character, DEL, high bytes
    "one ascii character": doc(leaf(b"a")),
    "ascii text": doc(leaf(b"./DevDetail/SwV")),
    "ascii with del": doc(leaf(b"a\x7fb")),
    "ascii then one high byte": doc(leaf(b"abc\xc3\xa9")),
    "a high byte alone": doc(leaf(b"\x80")),
    "a lone continuation byte after ascii": doc(leaf(b"abc\x80")),
    "empty opaque": doc(bytes([0x40 | LOCURI, 0xC3, 0x00, 0x01])),
}


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_and_unusual_input_answers_as_the_pure_reader(data):
    assert_same(data)
    root = c_body(data) if len(data) > len(HEADER_12) else None
    if root is not None:
        assert shape(root) == outcome(data, False)[1]


def nested(depth):
    return HEADER_12 + bytes([0x40 | SYNCML]) * depth + b"\x01" * depth


@pytest.mark.parametrize("depth", [99, 100, 101, 5000])
def test_nesting_is_bounded_in_the_c_path(depth):
    result = assert_same(nested(depth))
    if depth > 100:
        assert result[0] == "error" and "nested deeper" in result[2]
        assert c_body(nested(depth)) is None


def test_a_deep_limit_is_honoured_too():
    assert assert_same(nested(5000), max_depth=10000)[0] == "tree"
    assert assert_same(nested(5000), max_depth=4999)[0] == "error"


@pytest.mark.parametrize("limit", [0, 1, 3, 4, 5, 2 ** 70, -1])
def test_the_element_budget_holds_in_the_c_path(limit):
    data = doc(leaf(), leaf())  # four elements
    result = assert_same(data, max_elements=limit)
    if 0 <= limit < 4:
        assert result[0] == "error" and "more than %d elements" % limit in result[2]
        assert c_body(data, max_elements=limit) is None


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(messages(binary_data=True))
def test_random_messages_read_the_same(msg):
    data = wbxml.encode(msg)
    assert_same(data)
    assert wbxml.decode(data) == msg


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(CORPUS), st.data())
def test_corrupted_messages_answer_the_same(path, draw):
    data = bytearray(wbxml_of(path))
    for _ in range(draw.draw(st.integers(1, 4))):
        where = draw.draw(st.integers(0, len(data) - 1))
        how = draw.draw(st.sampled_from(["flip", "byte", "cut", "insert", "drop"]))
        if how == "flip":
            data[where] ^= 1 << draw.draw(st.integers(0, 7))
        elif how == "byte":
            data[where] = draw.draw(st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x04, 0x43, 0x80,
                                                     0x83, 0xC3, 0xFF, 0x7F]))
        elif how == "cut":
            del data[where:]
        elif how == "insert":
            data[where:where] = draw.draw(st.binary(min_size=1, max_size=6))
        elif len(data) > 1:
            del data[where]
        if not data:
            data = bytearray(b"\x03")
    assert_same(bytes(data))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=200))
def test_random_bodies_answer_the_same(body):
    assert_same(HEADER_12 + body)
    assert_same(HEADER_12 + bytes([0x40 | SYNCML]) + body)


def test_a_memoryview_or_bytearray_reads_the_same():
    data = wbxml_of(CORPUS[0])
    expected = assert_same(data)
    assert shape(wbxml_reader.decode_node(bytearray(data), SYNCML12)) == expected[1]
    assert shape(wbxml_reader.decode_node(memoryview(data), SYNCML12)) == expected[1]


def test_dmgw_pure_wbxml_keeps_the_accelerator_unused():
    code = "from dmgateway.codec import wbxml_reader as r; print(r._c_decode_body is None)"
    assert printed_with_switch(code, "DMGW_PURE_WBXML", ("1", "0", "")) == ["True", "False", "False"]


# -- the writer -----------------------------------------------------------------

def encoded(root, vocabulary, c, **options):
    """What ``encode_node`` answers, with (``c``) or without the accelerator."""
    saved = wbxml_writer._c_encode_body
    wbxml_writer._c_encode_body = SPEEDUPS.encode_body if c else None
    try:
        return "bytes", wbxml_writer.encode_node(root, vocabulary, **options)
    except CodecError as e:
        return "error", e.__class__, str(e), getattr(e, "path", None)
    finally:
        wbxml_writer._c_encode_body = saved


def assert_same_bytes(root, vocabulary=SYNCML12, **options):
    pure = encoded(root, vocabulary, False, **options)
    assert encoded(root, vocabulary, True, **options) == pure
    return pure


def c_encode(root, vocabulary=SYNCML12, max_depth=100):
    comp = compiled(vocabulary)
    return SPEEDUPS.encode_body(root, comp.page_tags, comp.enc_tags, Node, max_depth)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_the_accelerator_writes_the_corpus_itself_as_the_pure_writer(path):
    msg = xml.decode(path.read_bytes())
    vocabulary = SYNCML11 if msg.hdr.ver_dtd == "1.1" else SYNCML12
    root = mapping.message_to_node(msg)
    assert c_encode(root, vocabulary) is not None, "the common subset should not fall back"
    kind, data = assert_same_bytes(root, vocabulary)
    assert kind == "bytes"
    assert data.endswith(c_encode(root, vocabulary))
    # and one that 1.1 has no token for (a LITERAL) goes the pure writer's way
    assert_same_bytes(root, SYNCML11)


def tree(*children, text=None, name="SyncML", ns=NS_SYNCML):
    return Node(name, ns, list(children), text)


class Text(str):
    pass


class Element(Node):
    __slots__ = ()


def chain(depth):
    root = node = Node("SyncML")
    for _ in range(depth - 1):
        node = node.add("SyncML")
    return root


TREES = {
    "one empty element": tree(),
    "a leaf": tree(tree(text="x", name="LocURI")),
    "non-ascii text": tree(tree(text="h\u00e9 \u4e16\U0001F600", name="LocURI")),
    "empty text": tree(tree(text="", name="LocURI")),
    "opaque": tree(tree(text=b"\x00\x01\xff" * 100, name="Data")),
    "empty opaque": tree(tree(text=b"", name="Data")),
    "metinf switches pages": tree(tree(tree(text="1", name="MaxMsgSize", ns=NS_METINF),
                                       tree(text="b64", name="Format", ns=NS_METINF), name="Meta"),
                                  tree(text="2", name="CmdID")),
    "a TNDS tree in a SyncML document": tree(tree(tree(text="x", name="NodeName", ns=NS_DMDDF),
                                                  name="MgmtTree", ns=NS_DMDDF), name="Data"),
    "NUL in text": tree(tree(text="a\x00b", name="LocURI")),
    "lone surrogate": tree(tree(text="a\udc80", name="LocURI")),
    "text and children": tree(tree(), text="t"),
    "empty text and children": tree(tree(), text=""),
    "bytes and children": tree(tree(), text=b"t"),
    "int text": tree(tree(text=5, name="LocURI")),
    "str subclass text": tree(tree(text=Text("x"), name="LocURI")),
    "attributes": Node("SyncML", attrs={"a": "b"}),
    "empty attributes": Node("SyncML", attrs={}),
    "unknown name (LITERAL)": tree(tree(name="NoSuchTag")),
    "unknown namespace": tree(tree(name="LocURI", ns="Elsewhere")),
    "a Node subclass": tree(Element("LocURI", text="x")),
    "not a node": tree("LocURI"),
    "children a tuple": Node("SyncML", children=(Node("LocURI", text="x"),)),
    "name not a str": tree(Node(5)),
}


@pytest.mark.parametrize("root", TREES.values(), ids=TREES.keys())
@pytest.mark.parametrize("vocabulary", [SYNCML12, SYNCML11, DMDDF12, PROV10],
                         ids=lambda v: v.name)
def test_unusual_and_malformed_trees_write_as_with_the_pure_writer(root, vocabulary):
    assert_same_bytes(root, vocabulary)
    assert_same_bytes(root, vocabulary, public_id=0x1234)


@pytest.mark.parametrize("depth", [1, 2, 99, 100, 101, 3000])
def test_writing_depth_is_bounded_in_the_c_path(depth):
    result = assert_same_bytes(chain(depth))
    assert (result[0] == "error") == (depth > 100)
    assert (c_encode(chain(depth)) is None) == (depth > 100)
    assert assert_same_bytes(chain(depth), max_depth=depth)[0] == "bytes"
    assert assert_same_bytes(chain(depth), max_depth=depth - 1)[0] == "error"


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(messages(binary_data=True))
def test_random_message_trees_write_the_same(msg):
    root = mapping.message_to_node(msg)
    kind, data = assert_same_bytes(root)
    assert kind == "bytes"
    assert shape(wbxml_reader.decode_node(data, SYNCML12)) == shape(root)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(messages(binary_data=True), st.data())
def test_damaged_message_trees_write_or_fail_the_same(msg, draw):
    root = mapping.message_to_node(msg)
    nodes, work = [], [root]
    while work:
        node = work.pop()
        nodes.append(node)
        work.extend(node.children)
    node = draw.draw(st.sampled_from(nodes))
    how = draw.draw(st.sampled_from(["text", "name", "ns", "attrs", "child"]))
    if how == "text":
        node.text = draw.draw(st.one_of(st.none(), st.text(max_size=5), st.binary(max_size=5),
                                        st.integers()))
    elif how == "name":
        node.name = draw.draw(st.sampled_from(["LocURI", "Nope", "MaxMsgSize", "DDFName", "", 7]))
    elif how == "ns":
        node.ns = draw.draw(st.sampled_from([NS_SYNCML, NS_METINF, NS_DMDDF, "PROV", "X", None]))
    elif how == "attrs":
        node.attrs = draw.draw(st.sampled_from([None, {}, {"type": "x"}]))
    else:
        node.children.append(draw.draw(st.sampled_from([Node("LocURI", text="x"), "junk", None])))
    assert_same_bytes(root)


def test_a_code_page_of_another_shape_is_left_to_the_pure_reader():
    """Both C readers answer None, with no Python error left set, when an
    entry of a code page is not a (name, ns, int) tuple or a page is not a
    list of 256: the token lookup they share judges the table, not the
    bytes."""
    data = doc(leaf())
    header = wbxml_reader.read_header(data)
    for bad in ((None, None, "not an int"), ("Source",), None):
        page = list(compiled(SYNCML12).tag_pages[0])
        page[0x40 | SYNCML] = bad
        pages = [page] + list(compiled(SYNCML12).tag_pages[1:])
        assert SPEEDUPS.decode_body(data, header.body_offset, pages, Node, 100, None,
                                    K_END, K_STR_I, K_SWITCH, K_OPAQUE) is None
        assert SPEEDUPS.decode_model(data, header.body_offset, pages, 100, None,
                                     K_END, K_STR_I, K_SWITCH, K_OPAQUE) is None
    short = [list(compiled(SYNCML12).tag_pages[0])[:255]] + list(compiled(SYNCML12).tag_pages[1:])
    assert SPEEDUPS.decode_model(data, header.body_offset, short, 100, None,
                                 K_END, K_STR_I, K_SWITCH, K_OPAQUE) is None
