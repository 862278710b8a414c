"""Tests for dmgateway.notify.sms: UDH vectors, segmentation, reassembly,
SMS-SUBMIT TPDUs (the spec's PDU-mode vector), validity periods, properties."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.notify import sms
from dmgateway.notify.package0 import NotificationError
from dmgateway.notify.sms import Concatenation, Reassembler, SmsSubmit, UserData
from tests.notify import vectors as v

PUSH = v.WSP_PUSH_HEADER + v.PACKAGE0


# -- user data headers -------------------------------------------------------


def test_single_part_udh():
    assert sms.segment(PUSH, reference=0) == [v.UDH_SINGLE + PUSH]


def test_ports_are_configurable():
    assert sms.segment(b"x", reference=0, ports=(2948, 2948)) == [bytes.fromhex("0605040b840b84") + b"x"]
    assert sms.segment(b"x", reference=0, ports=None) == [b"\x00x"]


def test_concatenated_parts():
    payload = bytes(range(256)) + bytes(44)  # 300 bytes -> 128 + 128 + 44
    parts = sms.segment(payload, reference=0x2A)
    assert [len(p) for p in parts] == [140, 140, 56]
    for number, part in enumerate(parts, 1):
        assert part[:12] == v.UDH_CONCAT_PREFIX + bytes([0x2A, 3, number])
    assert b"".join(p[12:] for p in parts) == payload


def test_concatenated_parts_wide_reference():
    parts = sms.segment(bytes(200), reference=0x1234, wide_reference=True)
    assert [len(p) for p in parts] == [140, 86]
    assert parts[1][:13] == bytes.fromhex("0c05040b8423f0080412340202")


def test_boundary_between_one_and_two_parts():
    assert len(sms.segment(bytes(133), reference=0)) == 1
    assert len(sms.segment(bytes(134), reference=0)) == 2


@pytest.mark.parametrize("kwargs", [
    {"reference": 256}, {"reference": -1}, {"reference": 0x10000, "wide_reference": True},
    {"reference": 0, "max_octets": 12},
])
def test_segment_rejects(kwargs):
    with pytest.raises(NotificationError):
        sms.segment(bytes(300), **kwargs)


def test_too_many_parts():
    with pytest.raises(NotificationError):
        sms.segment(bytes(128 * 255 + 1), reference=0)
    assert len(sms.segment(bytes(128 * 255), reference=0)) == 255


def test_parse_user_data():
    ud = sms.parse_user_data(v.UDH_CONCAT_PREFIX + b"\x07\x02\x01" + b"data")
    assert ud == UserData(b"data", (2948, 9200), Concatenation(7, 2, 1))


def test_unknown_and_malformed_ies_are_kept_as_other():
    raw = bytes.fromhex("0d" "0a0100" "00030a0300" "05030b8423") + b"p"
    ud = sms.parse_user_data(raw)
    assert ud.ports is None and ud.concatenation is None
    assert ud.other == ((0x0A, b"\x00"), (0x00, b"\x0a\x03\x00"), (0x05, b"\x0b\x84\x23"))


def test_last_repeated_ie_counts():
    ud = sms.parse_user_data(bytes.fromhex("0c" "050400010002" "050400030004"))
    assert ud.ports == (3, 4)


def test_user_data_without_header():
    assert sms.parse_user_data(b"\x06abc", udhi=False) == UserData(b"\x06abc", has_header=False)
    assert sms.encode_user_data(UserData(b"abc", has_header=False)) == b"abc"
    with pytest.raises(NotificationError):
        sms.encode_user_data(UserData(b"abc", ports=(1, 2), has_header=False))


@pytest.mark.parametrize("data, offset", [
    (b"", 0), (b"\x07\x05\x04\x0b\x84\x23\xf0", 0), (b"\x01\x05", 1), (b"\x03\x05\x04\x0b", 1),
])
def test_parse_user_data_errors(data, offset):
    with pytest.raises(NotificationError) as e:
        sms.parse_user_data(data)
    assert e.value.offset == offset


@pytest.mark.parametrize("ud", [
    UserData(b"", ports=(0x10000, 0)),
    UserData(b"", concatenation=Concatenation(1, 2, 3)),
    UserData(b"", concatenation=Concatenation(256, 1, 1)),
    UserData(b"", other=((0x05, b"1234"),)),
    UserData(b"", other=((0x0A, b"x" * 256),)),
    UserData("text"),
])
def test_encode_user_data_rejects(ud):
    with pytest.raises(NotificationError):
        sms.encode_user_data(ud)


# -- reassembly --------------------------------------------------------------


def test_reassembly_in_any_order_with_duplicates():
    payload = bytes(range(150)) * 2
    parts = [sms.parse_user_data(p) for p in sms.segment(payload, reference=9)]
    r = Reassembler()
    assert r.add(parts[2], "a") is None
    assert r.add(parts[0], "a") is None
    assert r.add(parts[0], "a") is None
    assert len(r) == 1
    assert r.add(parts[1], "a") == payload
    assert len(r) == 0


def test_reassembly_keeps_senders_apart():
    a = [sms.parse_user_data(p) for p in sms.segment(b"A" * 200, reference=1)]
    b = [sms.parse_user_data(p) for p in sms.segment(b"B" * 200, reference=1)]
    r = Reassembler()
    assert r.add(a[0], "a") is None
    assert r.add(b[1], "b") is None
    assert r.add(b[0], "b") == b"B" * 200
    assert r.add(a[1], "a") == b"A" * 200


def test_single_part_passes_through():
    assert Reassembler().add(sms.parse_user_data(v.UDH_SINGLE + PUSH)) == PUSH


def test_expiry_and_limit():
    r = Reassembler(max_pending=2)
    for ref, now in ((1, 10.0), (2, 20.0), (3, 30.0)):
        r.add(sms.parse_user_data(sms.segment(bytes(200), reference=ref)[0]), now=now)
    assert len(r) == 2  # reference 1 was evicted
    assert r.expire(25.0) == 1
    assert len(r) == 1
    last = sms.parse_user_data(sms.segment(bytes(200), reference=3)[1])
    assert r.add(last, now=31.0) == bytes(200)


# -- SMS-SUBMIT --------------------------------------------------------------

VECTOR_SUBMIT = SmsSubmit(v.SMS_DESTINATION, v.UDH_SINGLE + PUSH, dcs=sms.DCS_8BIT_CLASS1)


def test_submit_vector():
    assert sms.encode_submit(VECTOR_SUBMIT) == v.SMS_SUBMIT


def test_parse_submit_vector():
    parsed = sms.parse_submit(v.SMS_SUBMIT)
    assert parsed == VECTOR_SUBMIT
    ud = sms.parse_user_data(parsed.user_data)
    assert ud.ports == (sms.WAP_PUSH_PORT, sms.WSP_PORT)
    assert ud.payload == PUSH


def test_at_cmgs():
    length, text = sms.at_cmgs(VECTOR_SUBMIT)
    assert length == len(v.SMS_SUBMIT) and text == v.SMS_SUBMIT.hex().upper()
    length, text = sms.at_cmgs(SmsSubmit(v.SMS_DESTINATION, b"x", udhi=False, smsc=""))
    assert text.startswith("00") and length == len(bytes.fromhex(text)) - 1


def test_smsc_field():
    s = SmsSubmit("12345", b"x", udhi=False, smsc="+447785016005")
    data = sms.encode_submit(s)
    assert data[:8] == bytes.fromhex("0791447758100650")
    assert data[8:13] == bytes.fromhex("0100058121")
    assert sms.parse_submit(data, with_smsc=True) == s
    length, _ = sms.at_cmgs(s)
    assert length == len(data) - 8


def test_all_flags_and_relative_validity():
    s = SmsSubmit("0123456789*#", b"\x00", udhi=False, message_reference=200, pid=0x7F,
                  dcs=0x08, vp_format=sms.VPF_RELATIVE, validity=bytes([sms.relative_validity(86400)]),
                  reject_duplicates=True, status_report=True, reply_path=True)
    data = sms.encode_submit(s)
    assert data[0] == 0x01 | 0x04 | 0x10 | 0x20 | 0x80
    assert data[2:10] == bytes.fromhex("0c81" "1032547698ba")
    assert data[12] == 167
    assert sms.parse_submit(data) == s


def test_address_type_override_and_absolute_validity():
    s = SmsSubmit("1234", b"ab", udhi=False, address_type=0xA1, vp_format=sms.VPF_ABSOLUTE,
                  validity=bytes(7))
    assert sms.parse_submit(sms.encode_submit(s)) == s


def test_seven_bit_user_data_length_is_in_septets():
    s = SmsSubmit("1234", bytes.fromhex("c8329bfd06"), udhi=False, dcs=0x00, septets=5)  # "hello"
    data = sms.encode_submit(s)
    assert data[-6] == 5
    assert sms.parse_submit(data) == s


@pytest.mark.parametrize("s", [
    SmsSubmit("", b""), SmsSubmit("12a4x", b"", udhi=False), SmsSubmit("1" * 21, b"", udhi=False),
    SmsSubmit("1", b"x" * 141, udhi=False), SmsSubmit("1", b"\x05", udhi=True),
    SmsSubmit("1", b"", message_reference=256), SmsSubmit("1", b"", vp_format=sms.VPF_RELATIVE),
    SmsSubmit("1", b"ab", dcs=0x00, udhi=False), SmsSubmit("1", b"ab", dcs=0x00, septets=5, udhi=False),
    SmsSubmit("1", b"ab", septets=2, udhi=False), SmsSubmit("1", b"", udhi=False, address_type=0x10),
])
def test_encode_submit_rejects(s):
    with pytest.raises(NotificationError):
        sms.encode_submit(s)


@pytest.mark.parametrize("data, offset", [
    (b"\x41\x00\x0c", 0),
    (bytes.fromhex("42000c91"), 0),
    (bytes.fromhex("41001591"), 2),
    (bytes.fromhex("41000ad0"), 3),
    (bytes.fromhex("41000c91447700"), 4),
    (bytes.fromhex("41000391f1ff0004"), 4),
    (bytes.fromhex("41000191f80004ff"), 7),
    (bytes.fromhex("41000191f8000403ab"), 8),
    (bytes.fromhex("41000191f8000402ab01"), 8),
])
def test_parse_submit_errors(data, offset):
    with pytest.raises(NotificationError) as e:
        sms.parse_submit(data)
    assert e.value.offset == offset


@pytest.mark.parametrize("dcs, alphabet", [
    (0x00, "gsm7"), (0x04, "8bit"), (0x08, "ucs2"), (0x0C, "gsm7"), (0x44, "8bit"), (0xF5, "8bit"),
    (0xF1, "gsm7"), (0xE0, "ucs2"), (0xC0, "gsm7"), (0x80, "gsm7"),
])
def test_dcs_alphabet(dcs, alphabet):
    assert sms.dcs_alphabet(dcs) == alphabet


@pytest.mark.parametrize("seconds, vp", [
    (0, 0), (300, 0), (301, 1), (12 * 3600, 143), (12 * 3600 + 1, 144), (86400, 167),
    (2 * 86400, 168), (30 * 86400, 196), (31 * 86400, 197), (63 * 7 * 86400, 255), (10 ** 9, 255),
])
def test_relative_validity(seconds, vp):
    assert sms.relative_validity(seconds) == vp


@given(st.integers(0, 255))
def test_relative_validity_inverse(vp):
    assert sms.relative_validity(sms.relative_validity_seconds(vp)) == vp


# -- properties --------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.integers(0, 255), st.booleans(),
       st.one_of(st.none(), st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))))
def test_segment_reassemble_round_trip(payload, reference, wide, ports):
    parts = sms.segment(payload, reference=reference, wide_reference=wide, ports=ports)
    assert all(len(p) <= sms.MAX_USER_DATA for p in parts)
    r = Reassembler()
    results = [r.add(sms.parse_user_data(p), "x") for p in reversed(parts)]
    assert results[-1] == payload and not any(results[:-1])
    for part in parts:
        ud = sms.parse_user_data(part)
        assert ud.ports == ports
        assert sms.encode_user_data(ud) == part


digits = st.text(st.sampled_from("0123456789*#abc"), min_size=1, max_size=20)
submits = st.builds(
    SmsSubmit,
    destination=st.one_of(digits, digits.map(lambda d: "+" + d)),
    user_data=st.one_of(st.binary(max_size=140).map(lambda b: b"\x00" + b[:139])),
    udhi=st.just(True),
    message_reference=st.integers(0, 255),
    pid=st.integers(0, 255),
    dcs=st.sampled_from([0x04, 0xF5, 0x08, 0x44]),
    vp_format=st.just(sms.VPF_NONE),
    reject_duplicates=st.booleans(),
    status_report=st.booleans(),
    reply_path=st.booleans(),
    smsc=st.one_of(st.none(), st.just(""), digits.map(lambda d: "+" + d[:18])),
)


@settings(max_examples=300, deadline=None)
@given(submits)
def test_submit_round_trip(s):
    assert sms.parse_submit(sms.encode_submit(s), with_smsc=s.smsc is not None) == s


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_random_tpdus_raise_only_notification_error(data, with_smsc):
    try:
        sms.parse_submit(data, with_smsc=with_smsc)
    except NotificationError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=160))
def test_random_user_data_raises_only_notification_error(data):
    try:
        ud = sms.parse_user_data(data)
    except NotificationError:
        return
    assert ud.payload == data[1 + data[0]:]
