"""Tests for dmgateway.notify.wsp: push PDUs of the spec (notification, CP and DM
bootstrap with SEC/MAC), uintvar, tolerant parsing, errors, properties."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.notify import wsp
from dmgateway.notify.package0 import NotificationError
from dmgateway.notify.wsp import PushPDU
from tests.notify import vectors as v

NOTIFICATION_PUSH = PushPDU(wsp.CT_SYNCML_NOTIFICATION, v.PACKAGE0, app_id=wsp.APP_SYNCML_DM)


# -- vectors -----------------------------------------------------------------


def test_notification_push_bytes():
    assert wsp.encode_push(NOTIFICATION_PUSH) == v.WSP_PUSH_HEADER + v.PACKAGE0


def test_notification_push_parses():
    pdu = wsp.parse_push(v.WSP_PUSH_HEADER + v.PACKAGE0)
    assert pdu == NOTIFICATION_PUSH
    assert wsp.is_dm_notification(pdu)
    assert wsp.content_type_name(pdu) == "application/vnd.syncml.notification"
    assert wsp.application_id_name(pdu) == "x-wap-application:syncml.dm"


def test_cp_bootstrap_push_bytes():
    pdu = PushPDU(wsp.CT_CONNECTIVITY_WBXML, v.CP_WBXML,
                  parameters=(("SEC", wsp.SEC_USERPIN), ("MAC", v.CP_MAC)))
    assert wsp.encode_push(pdu) == v.CP_PUSH
    assert wsp.parse_push(v.CP_PUSH) == pdu


def test_dm_bootstrap_push_header():
    pdu = PushPDU(wsp.CT_SYNCML_DM_WBXML, b"", app_id=wsp.APP_SYNCML_DM,
                  parameters=(("SEC", wsp.SEC_NETWPIN), ("MAC", v.DM_BOOTSTRAP_MAC)))
    assert wsp.encode_push(pdu) == v.DM_BOOTSTRAP_PUSH_HEADER
    assert wsp.parse_push(v.DM_BOOTSTRAP_PUSH_HEADER + b"doc") == PushPDU(
        wsp.CT_SYNCML_DM_WBXML, b"doc", app_id=7,
        parameters=(("SEC", 0), ("MAC", v.DM_BOOTSTRAP_MAC)))


def test_parameter_names_are_case_insensitive_when_sending():
    assert wsp.encode_content_type(0x42, [("sec", 1)]) == bytes.fromhex("03c29181")


def test_content_type_short_and_text_forms():
    assert wsp.encode_content_type(0x44) == b"\xc4"
    assert wsp.encode_content_type("application/x") == b"application/x\x00"
    assert wsp.encode_content_type(0x0201) == bytes.fromhex("03020201")


# -- tolerant reading --------------------------------------------------------


def test_text_content_type_and_application_id():
    data = (b"\x05\x06\x3f" + b"Application/vnd.syncml.notification\x00"
            + b"\xaf" + b"x-wap-application:syncml.dm\x00" + v.PACKAGE0)
    data = data[:2] + bytes([len(data) - 3 - len(v.PACKAGE0)]) + data[3:]
    pdu = wsp.parse_push(data)
    assert pdu.tid == 5
    assert pdu.content_type == "Application/vnd.syncml.notification"
    assert wsp.is_dm_notification(pdu)
    assert pdu.body == v.PACKAGE0


def test_content_type_0x58_is_not_a_dm_notification():
    pdu = wsp.parse_push(bytes.fromhex("010603d8af87") + v.PACKAGE0)
    assert wsp.content_type_name(pdu) == "application/vnd.syncml.dm.notification"
    assert not wsp.is_dm_notification(pdu)


def test_other_headers_are_kept_and_skipped():
    # Content-Length (0x0D) short integer, a text header, a Date (0x12) long integer
    headers = b"\xc4" + b"\x8d\x8a" + b"X-Foo\x00bar\x00" + b"\x92\x04\x00\x00\x00\x01" + b"\xaf\x87"
    data = b"\x01\x06" + bytes([len(headers)]) + headers + b"body"
    pdu = wsp.parse_push(data)
    assert pdu.app_id == 7
    assert pdu.headers == ((0x0D, b"\x8a"), ("X-Foo", b"bar\x00"), (0x12, b"\x04\x00\x00\x00\x01"))
    assert wsp.encode_push(pdu) == data[:3] + b"\xc4\xaf\x87" + headers[1:-2] + b"body"


def test_shift_sequences_are_skipped():
    headers = b"\xc4\x7f\x02\x05\xaf\x87"
    pdu = wsp.parse_push(b"\x01\x06" + bytes([len(headers)]) + headers)
    assert pdu.app_id == 7


def test_confirmed_push_is_read():
    assert wsp.parse_push(b"\x01\x07\x01\xc4").pdu_type == wsp.PDU_CONFIRMED_PUSH


def test_long_application_id():
    pdu = PushPDU(0x44, app_id=0x9000)
    data = wsp.encode_push(pdu)
    assert data == bytes.fromhex("010605c4af029000")
    assert wsp.parse_push(data) == pdu


def test_unknown_parameters_round_trip():
    pdu = PushPDU("text/plain", parameters=((0x01, 106), ("level", "1.0"), (0x30, 300), ("q", "")),
                  body=b"x")
    data = wsp.encode_push(pdu)
    assert wsp.parse_push(data).parameters == ((1, 106), ("level", "1.0"), (0x30, 300), ("q", ""))


# -- errors ------------------------------------------------------------------


@pytest.mark.parametrize("data, offset", [
    (b"\x01\x06", 2),
    (b"\x01\x05\x01\xc4", 1),
    (b"\x01\x06\x05\xc4", 2),
    (b"\x01\x06\x80", 3),
    (b"\x01\x06\x81\x80\x80\x80\x80\x00", 2),
    (b"\x01\x06\x02\xc4\xaf", 5),
    (b"\x01\x06\x03abc", 3),
    (b"\x01\x06\x04\x05\xc2\x91\x80", 3),
    (b"\x01\x06\x01\x00", 3),
])
def test_parse_errors_carry_offsets(data, offset):
    with pytest.raises(NotificationError) as e:
        wsp.parse_push(data)
    assert e.value.offset == offset


@pytest.mark.parametrize("pdu", [
    PushPDU(0x44, tid=256),
    PushPDU(0x44, pdu_type=0x08),
    PushPDU("caf\u00e9"),
    PushPDU(""),
    PushPDU("a\x00b"),
    PushPDU(-1),
    PushPDU(0x44, parameters=(("SEC", -1),)),
    PushPDU(0x44, parameters=((0x80, 1),)),
    PushPDU(0x44, headers=((0x0D, b"\x8a\x8b"),)),
    PushPDU(0x44, headers=((0x0D, b""),)),
    PushPDU(0x44, body="text"),
])
def test_encode_rejects(pdu):
    with pytest.raises(NotificationError):
        wsp.encode_push(pdu)


# -- uintvar -----------------------------------------------------------------


@pytest.mark.parametrize("value, raw", [
    (0, "00"), (0x7F, "7f"), (0x80, "8100"), (0x3FFF, "ff7f"), (0xFFFFFFFF, "8fffffff7f"),
])
def test_uintvar(value, raw):
    assert wsp.encode_uintvar(value) == bytes.fromhex(raw)
    assert wsp.decode_uintvar(bytes.fromhex(raw), 0) == (value, len(raw) // 2)


def test_uintvar_limits():
    with pytest.raises(NotificationError):
        wsp.encode_uintvar(1 << 32)
    with pytest.raises(NotificationError):
        wsp.decode_uintvar(bytes.fromhex("9fffffff7f"), 0)


# -- properties --------------------------------------------------------------

tokens = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12).filter(
    lambda s: s.upper() not in wsp.PARAMETERS)
values = st.one_of(st.integers(0, 1 << 40), tokens)


def _with_length(raw):
    return (bytes([len(raw)]) if len(raw) <= 30 else b"\x1f" + wsp.encode_uintvar(len(raw))) + raw


header_values = st.one_of(
    st.integers(0x80, 0xFF).map(lambda b: bytes([b])),  # short integer
    tokens.map(lambda t: t.encode() + b"\x00"),  # text string
    st.binary(max_size=200).map(_with_length),  # value-length form
)
pdus = st.builds(
    PushPDU,
    content_type=st.one_of(st.integers(0, 0xFFFF), tokens),
    body=st.binary(max_size=64),
    app_id=st.one_of(st.none(), st.integers(0, 0xFFFF), tokens),
    parameters=st.lists(st.tuples(st.one_of(st.sampled_from(["SEC", "MAC"]), st.integers(0, 0x7F)
                                            .filter(lambda c: c not in (0x11, 0x12)), tokens),
                                  values), max_size=4).map(tuple),
    headers=st.lists(st.tuples(st.one_of(st.integers(0, 0x7F).filter(lambda c: c != 0x2F), tokens),
                               header_values), max_size=3).map(tuple),
    tid=st.integers(0, 255),
    pdu_type=st.sampled_from([wsp.PDU_PUSH, wsp.PDU_CONFIRMED_PUSH]),
)


@settings(max_examples=300, deadline=None)
@given(pdus)
def test_parse_encode_round_trip(pdu):
    assert wsp.parse_push(wsp.encode_push(pdu)) == pdu


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=60))
def test_random_bytes_raise_only_notification_error(data):
    try:
        wsp.parse_push(data)
    except NotificationError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=60))
def test_random_headers_raise_only_notification_error(headers):
    try:
        pdu = wsp.parse_push(b"\x01\x06" + wsp.encode_uintvar(len(headers)) + headers)
    except NotificationError:
        return
    assert pdu.body == b""
