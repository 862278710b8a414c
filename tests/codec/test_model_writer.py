"""The fast writer (model -> bytes, :mod:`dmgateway.codec.model_writer`) against
the reference path (model -> Node tree -> bytes): the same bytes for every
message, the same error for every model the reference refuses, and the fast
path really taken for the messages the gateway sends."""

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmgateway.codec import mapping, wbxml, xml
from dmgateway.codec import syncml as sm
from dmgateway.codec.element import NS_DMDDF, NS_METINF, Node
from dmgateway.codec.errors import CodecError, ModelError
from dmgateway.codec.model_writer import Unhandled, write
from dmgateway.codec.wbxml_pages import SYNCML11, SYNCML12
from dmgateway.codec.wbxml_writer import encode_message_body, encode_node
from tests.codec.strategies import messages


def reference_xml(msg, xml_declaration=False):
    return xml.serialize(mapping.message_to_node(msg), syncml_uri=xml.syncml_namespace(msg.hdr.ver_dtd),
                         xml_declaration=xml_declaration)


def reference_wbxml(msg):
    root = mapping.message_to_node(msg)
    wbxml._embedded_tnds(root, wbxml._tree_to_opaque, wbxml.DEFAULT_MAX_DEPTH)
    return encode_node(root, SYNCML11 if msg.hdr.ver_dtd == "1.1" else SYNCML12)


def outcome(function, msg):
    """The bytes, or the error's class and text (path included)."""
    try:
        return function(copy.deepcopy(msg))
    except (CodecError, ModelError, ValueError, TypeError) as error:
        return type(error), str(error)


def assert_same(msg):
    assert outcome(xml.encode, msg) == outcome(reference_xml, msg)
    assert outcome(lambda m: xml.encode(m, xml_declaration=True), msg) == \
        outcome(lambda m: reference_xml(m, True), msg)
    assert outcome(wbxml.encode, msg) == outcome(reference_wbxml, msg)


def server_reply(ver_dtd="1.2"):
    """A reply as the session engine writes it: header with Cred and limits,
    Statuses (one with a Chal), a Get and an Exec, Final."""
    return sm.SyncML(
        hdr=sm.SyncHdr(
            session_id="1A", msg_id="2", target=sm.LocRef("IMEI:490154203237518"),
            source=sm.LocRef("https://gw.example/dm", "dmgw"), ver_dtd=ver_dtd,
            resp_uri="https://gw.example/dm?s=abc&x=1",
            cred=sm.Cred(sm.Meta(type="syncml:auth-md5", format="b64"), "Q3r6Z+uEU9+S9G0eEFL04w=="),
            meta=sm.Meta(max_msg_size=16384, max_obj_size=4194304)),
        body=[
            sm.Status(cmd_id="1", msg_ref="1", cmd_ref="0", cmd="SyncHdr",
                      target_refs=["https://gw.example/dm"], source_refs=["IMEI:490154203237518"],
                      chal=sm.Chal(sm.Meta(type="syncml:auth-md5", format="b64",
                                           next_nonce="Dx4tPEtaaXg=")), data=212),
            sm.Status(cmd_id="2", msg_ref="1", cmd_ref="1", cmd="Alert", data=200),
            sm.Get(cmd_id="3", items=[sm.Item(target=sm.LocRef("./DevDetail/SwV"))]),
            sm.Exec(cmd_id="4", correlator="c1", items=[sm.Item(
                target=sm.LocRef("./FUMO/fw/Update"), meta=sm.Meta(format="chr"), data="x<y & z")]),
        ],
        final=True,
    )


@pytest.mark.parametrize("ver_dtd", ["1.1", "1.2"])
def test_a_server_reply_takes_the_fast_path_in_both_formats(ver_dtd):
    msg = server_reply(ver_dtd)
    write(msg, xml._DIALECTS[ver_dtd == "1.1"])
    vocab = SYNCML11 if ver_dtd == "1.1" else SYNCML12
    if ver_dtd == "1.1":  # SyncML 1.1 has no Correlator token: a LITERAL, through the tree
        with pytest.raises(Unhandled):
            encode_message_body(msg, vocab)
        msg.body[3].correlator = None
    assert encode_message_body(msg, vocab) == reference_wbxml(msg)
    assert_same(msg)


def test_the_bytes_of_a_reply_are_the_reference_bytes():
    msg = server_reply()
    data = xml.encode(msg)
    assert data == reference_xml(msg)
    assert (b'<Meta><Format xmlns="syncml:metinf">b64</Format>'
            b'<Type xmlns="syncml:metinf">syncml:auth-md5</Type></Meta>') in data
    assert b"<RespURI>https://gw.example/dm?s=abc&amp;x=1</RespURI>" in data
    assert b"<Data>x&lt;y &amp; z</Data>" in data


def test_wbxml_switches_back_to_page_0_lazily_after_a_meta():
    # Cred's Meta is followed by Data; the SyncHdr's by END END and SyncBody:
    # the switch to page 0 comes right before the next tag, after the ENDs
    msg = server_reply()
    data = wbxml.encode(msg)
    assert data == reference_wbxml(msg)
    assert b"\x01\x01\x00\x00" in data  # END (Meta) END (SyncHdr) SWITCH_PAGE 0, then SyncBody


@pytest.mark.parametrize("change", [
    lambda m: setattr(m, "body", []),  # <SyncBody/> (no commands, no Final)
    lambda m: setattr(m, "final", False),
    lambda m: m.body[2].items.append(sm.Item()),  # <Item/>
    lambda m: setattr(m.body[2], "meta", sm.Meta()),  # <Meta/>
    lambda m: setattr(m.hdr, "meta", sm.Meta(emi=["", "x"], mark="")),
    lambda m: setattr(m.body[3].items[0], "data", b"\x00\xff\x80binary"),
    lambda m: setattr(m.body[3].items[0], "data", b""),
    lambda m: setattr(m.body[3].items[0], "data", ""),
    lambda m: setattr(m.body[3].items[0], "more_data", True),
    lambda m: setattr(m.hdr, "no_resp", True),
    lambda m: setattr(m.hdr.source, "loc_name", ""),
    lambda m: m.body.append(sm.Atomic(cmd_id="5", no_resp=True, meta=sm.Meta(type="t"), commands=[
        sm.Replace(cmd_id="6", items=[sm.Item(target=sm.LocRef("./A"), data="1")]),
        sm.Sequence(cmd_id="7", commands=[sm.Delete(cmd_id="8", items=[sm.Item(target=sm.LocRef("./B"))])]),
    ])),
    lambda m: m.body.append(sm.Atomic(cmd_id="5")),
    lambda m: m.body.append(sm.Alert(cmd_id="5", data=1101, no_resp=True, cred=sm.Cred(None, ""),
                                     correlator="", items=[sm.Item(data="Reboot?")])),
    lambda m: m.body.append(sm.Results(cmd_id="5", msg_ref="2", cmd_ref="3", meta=sm.Meta(format="int"),
                                       target_refs=["a"], source_refs=["", "b"], items=[sm.Item(data="1")])),
    lambda m: m.body.append(sm.Alert(cmd_id="5", data=1226, items=[sm.Item(
        meta=sm.Meta(type="x", format="chr", mark="critical", size=0, version="1.0", next_nonce="n",
                     max_msg_size=1, max_obj_size=2, emi=["e1"]), data="done")])),
    # text that must be escaped, or is not ASCII, or not printable
    lambda m: setattr(m.body[3].items[0], "data", " padded\r\n\t"),
    lambda m: setattr(m.body[3].items[0], "data", "caf\u00e9 \u2603 \U0001F600 ]]> \"'"),
    lambda m: setattr(m.hdr, "session_id", "a\rb"),
    lambda m: setattr(m.body[2].items[0].target, "loc_uri", "./A>B"),
])
def test_messages_the_fast_path_writes_match_the_reference(change):
    msg = server_reply()
    change(msg)
    assert_same(msg)
    write(msg, xml._DIALECTS[False])  # and they were written by the fast path


@pytest.mark.parametrize("change", [
    # values the reference refuses: the same error, path included
    lambda m: setattr(m.hdr, "session_id", None),
    lambda m: setattr(m.hdr, "msg_id", 2),
    lambda m: setattr(m.hdr, "target", "IMEI:1"),
    lambda m: setattr(m.body[0], "data", "200"),
    lambda m: setattr(m.body[0], "data", True),
    lambda m: setattr(m.body[0], "data", -1),
    lambda m: setattr(m.body[0], "chal", sm.Chal(None)),
    lambda m: setattr(m.body[0], "chal", sm.Meta()),
    lambda m: setattr(m.body[0], "target_refs", [None]),
    lambda m: setattr(m.hdr.meta, "max_msg_size", "16384"),
    lambda m: setattr(m.hdr.meta, "max_msg_size", -5),
    lambda m: setattr(m.hdr.meta, "type", 5),
    lambda m: setattr(m.hdr.meta, "emi", [None]),
    lambda m: setattr(m.body[2].items[0], "data", 42),
    lambda m: setattr(m.body[2], "items", [None]),
    lambda m: m.body.append("not a command"),
    lambda m: m.body.append(sm.Command(cmd_id="9")),
    # text XML or WBXML cannot carry
    lambda m: setattr(m.body[3].items[0], "data", "nul\x00here"),
    lambda m: setattr(m.body[3].items[0], "data", "bell\x07"),
    lambda m: setattr(m.body[3].items[0], "data", "lone \udc80 surrogate"),
    lambda m: setattr(m.hdr.meta, "type", "\ufffe"),
    # what only the tree writes: embedded markup, unknown commands, metinf extras, subclasses
    lambda m: setattr(m.body[3].items[0], "data", Node("MgmtTree", NS_DMDDF, [Node("VerDTD", NS_DMDDF, text="1.2")])),
    lambda m: setattr(m.body[3].items[0], "data", Node("Foo", "urn:x", text="y")),
    lambda m: m.body.append(sm.UnknownCommand(cmd_id="9", name="Put")),
    lambda m: setattr(m.hdr.meta, "extra", [Node("Anchor", NS_METINF, [Node("Next", NS_METINF, text="1")])]),
    lambda m: setattr(m.body[3].items[0], "data", ""),  # (plain, a control case)
])
def test_what_the_fast_path_leaves_to_the_tree_gives_the_reference_answer(change):
    msg = server_reply()
    change(msg)
    assert_same(msg)


def test_a_str_subclass_or_a_command_subclass_goes_through_the_tree():
    class Text(str):
        pass

    class MyGet(sm.Get):
        pass

    msg = server_reply()
    msg.hdr.session_id = Text("1A")
    with pytest.raises(Unhandled):
        write(msg, xml._DIALECTS[False])
    assert_same(msg)
    msg = server_reply()
    msg.body.append(MyGet(cmd_id="5", items=[sm.Item(target=sm.LocRef("./X"))]))
    with pytest.raises(Unhandled):
        write(msg, xml._DIALECTS[False])
    assert_same(msg)


def test_not_a_message():
    for value in (None, "x", sm.SyncHdr()):
        assert outcome(xml.encode, value) == outcome(reference_xml, value)
        assert outcome(wbxml.encode, value) == outcome(reference_wbxml, value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(binary_data=True))
def test_any_model_same_bytes_as_the_reference(msg):
    assert_same(msg)


def _plain(msg):
    """``msg`` without what only the tree writes (embedded markup, metinf
    extras, unknown commands): what the fast path takes."""
    def metas(meta):
        if meta is not None:
            meta.extra = []

    def items(items):
        for item in items:
            metas(item.meta)
            if isinstance(item.data, Node):
                item.data = "tree left out"

    def commands(cmds):
        cmds[:] = [cmd for cmd in cmds if not isinstance(cmd, sm.UnknownCommand)]
        for cmd in cmds:
            for attr in ("meta", "cred", "chal"):
                part = getattr(cmd, attr, None)
                metas(getattr(part, "meta", part) if part is not None else None)
            items(getattr(cmd, "items", []))
            commands(getattr(cmd, "commands", []))

    metas(msg.hdr.meta)
    if msg.hdr.cred is not None:
        metas(msg.hdr.cred.meta)
    commands(msg.body)
    return msg


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(binary_data=True).map(_plain))
def test_any_plain_model_is_written_by_the_fast_path_as_the_reference_does(msg):
    write(copy.deepcopy(msg), xml._DIALECTS[msg.hdr.ver_dtd == "1.1"])  # the fast path takes it
    assert_same(msg)


_junk = st.one_of(st.none(), st.integers(-2, 3), st.booleans(), st.binary(max_size=3),
                  st.text(max_size=4), st.just(sm.Meta()), st.just([None]))
_FIELDS = [
    ("hdr", "session_id"), ("hdr", "resp_uri"), ("hdr", "meta"), ("hdr", "cred"), ("hdr", "source"),
    ("body0", "data"), ("body0", "chal"), ("body0", "msg_ref"), ("body0", "target_refs"),
    ("body0", "items"), ("body2", "items"), ("body2", "meta"), ("body2", "no_resp"),
    ("item", "data"), ("item", "target"), ("item", "meta"), ("item", "more_data"),
    ("meta", "size"), ("meta", "type"), ("meta", "emi"), ("msg", "final"), ("msg", "body"),
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_FIELDS), _junk), min_size=1, max_size=3))
def test_a_model_with_junk_fields_gets_the_reference_answer(changes):
    msg = server_reply()
    targets = {"hdr": msg.hdr, "body0": msg.body[0], "body2": msg.body[2], "item": msg.body[3].items[0],
               "meta": msg.hdr.meta, "msg": msg}
    for (where, attr), value in changes:
        setattr(targets[where], attr, value)
    assert_same(msg)


# any character at all (lone surrogates, NUL, C0/C1 controls, U+FFFE, "\r",
# non-BMP, "]]>"), in the fields a device's answers and the API fill
_any_text = st.one_of(st.text(st.characters(), max_size=12), st.sampled_from(
    ["]]>", "\r", "\r\n", "\x00", "\udc80", "\U0001F600", "a\x85b", "\u2028", "\ufffe", " ", "",
     "&#13;", "\x7f"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(binary_data=True), st.data())
def test_any_characters_in_any_text_field_same_answer_as_the_reference(msg, data):
    draw = data.draw
    commands = []

    def walk(cmds):
        for cmd in cmds:
            commands.append(cmd)
            if isinstance(cmd, sm.Container):
                walk(cmd.commands)

    walk(msg.body)
    for cmd in commands:
        for item in getattr(cmd, "items", []):
            if isinstance(item.data, str) and draw(st.booleans()):
                item.data = draw(_any_text)
            if item.target is not None and draw(st.booleans()):
                item.target.loc_uri = draw(_any_text)
            if item.meta is not None and draw(st.booleans()):
                item.meta.type = draw(_any_text)
                item.meta.emi = draw(st.lists(_any_text, max_size=2))
        if draw(st.booleans()):
            cmd.cmd_id = draw(_any_text)
    if draw(st.booleans()):
        msg.hdr.session_id = draw(_any_text)
    if draw(st.booleans()):
        msg.hdr.source.loc_name = draw(st.none() | _any_text)
    if draw(st.booleans()):
        msg.hdr.resp_uri = draw(st.none() | _any_text)
    assert_same(msg)
