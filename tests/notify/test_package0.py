"""Tests for dmgateway.notify.package0: the spec's vectors, strictness of the
writer, tolerance and errors of the reader, digest verification, properties."""

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.auth.credentials import user_hash
from dmgateway.codec.errors import CodecError
from dmgateway.notify import package0 as p0
from dmgateway.notify.package0 import Notification, NotificationError, ServerCredential
from tests.notify import vectors as v

CRED = ServerCredential(v.SERVER_ID, v.SERVER_NONCE, secret=v.SERVER_PASSWORD)
VECTOR = Notification(v.SERVER_ID, v.SESSION_ID, ui_mode=p0.UI_USER_INTERACTION,
                      initiator=p0.INITIATOR_SERVER)


def test_error_is_a_codec_error():
    assert issubclass(NotificationError, CodecError)


# -- vectors -----------------------------------------------------------------


def test_trigger_vector():
    assert p0.encode_trigger(VECTOR) == v.TRIGGER
    assert v.TRIGGER[:8] == v.TRIGGER_HEADER


def test_intermediate_hashes():
    assert user_hash(v.SERVER_ID, v.SERVER_PASSWORD) == v.SERVER_HASH
    assert CRED.hash_for() == v.SERVER_HASH
    assert base64.b64encode(hashlib.md5(v.TRIGGER).digest()).decode() == v.TRIGGER_HASH


def test_digest_vector():
    assert p0.compute_digest(v.SERVER_HASH, v.SERVER_NONCE, v.TRIGGER) == v.DIGEST


def test_package_vector():
    assert p0.build(VECTOR, CRED) == v.PACKAGE0


def test_package_vector_from_stored_hash():
    stored = ServerCredential(v.SERVER_ID, v.SERVER_NONCE, hashed=v.SERVER_HASH)
    assert p0.build(VECTOR, stored) == v.PACKAGE0


@pytest.mark.parametrize("nonce, digest", [
    (b"\x00\x00\x00\x00", v.DIGEST_ZERO_BYTES_NONCE),
    (b"0x00000000", v.DIGEST_ASCII_NONCE),
])
def test_resync_nonce_vectors(nonce, digest):
    assert p0.build(VECTOR, CRED, nonce)[:16] == digest


def test_spec_example_header():
    n = Notification(v.SPEC_EXAMPLE_SERVER_ID, 0x1234, ui_mode=p0.UI_BACKGROUND,
                     initiator=p0.INITIATOR_CLIENT)
    assert p0.encode_trigger(n) == v.SPEC_EXAMPLE_HEADER + v.SPEC_EXAMPLE_SERVER_ID.encode()


def test_parse_vector():
    package = p0.parse(v.PACKAGE0)
    assert package.digest == v.DIGEST
    assert package.trigger == v.TRIGGER
    assert package.notification == VECTOR
    assert package.notification.version == 11
    assert package.notification.syncml_session_id == "1234"


def test_syncml_session_id_has_no_leading_zeros():
    assert Notification("s", 0x00AF).syncml_session_id == "AF"


def test_credential_repr_hides_secrets():
    text = repr(ServerCredential("n", b"x", secret="topsecret"))
    assert "topsecret" not in text
    text = repr(ServerCredential("n", b"x", hashed=v.SERVER_HASH))
    assert v.SERVER_HASH not in text


def test_credential_needs_exactly_one_secret():
    with pytest.raises(ValueError):
        ServerCredential("n", b"x")
    with pytest.raises(ValueError):
        ServerCredential("n", b"x", secret="a", hashed="b")


# -- writer strictness -------------------------------------------------------


@pytest.mark.parametrize("change", [
    {"version": 1024}, {"version": -1}, {"ui_mode": 4}, {"initiator": 2},
    {"push_session_id": 0}, {"push_session_id": 0x10000}, {"push_session_id": True},
    {"server_id": ""}, {"server_id": "x" * 256}, {"server_id": b"bytes"}, {"body": "text"},
])
def test_encode_rejects(change):
    fields = dict(server_id="s", push_session_id=1)
    fields.update(change)
    with pytest.raises(NotificationError):
        p0.encode_trigger(Notification(**fields))


def test_version_is_configurable():
    trigger = p0.encode_trigger(Notification("s", 1, version=12))
    assert int.from_bytes(trigger[:8], "big") >> 54 == 12


def test_body_is_carried_and_signed():
    n = Notification(v.SERVER_ID, 7, body=b"\x01vendor")
    data = p0.build(n, CRED)
    assert data.endswith(b"\x01vendor")
    package = p0.parse(data)
    assert package.notification.body == b"\x01vendor"
    assert p0.verify(package, CRED) is not None


# -- reader tolerance and errors --------------------------------------------


def test_future_use_bits_are_ignored():
    header = bytearray(v.TRIGGER_HEADER)
    header[3] |= 0x10
    package = p0.parse(v.DIGEST + bytes(header) + v.SERVER_ID.encode())
    assert package.notification == VECTOR


def test_session_id_zero_is_accepted_on_receipt():
    header = bytes.fromhex("02f800000000000f")
    assert p0.parse(v.DIGEST + header + v.SERVER_ID.encode()).notification.push_session_id == 0


@pytest.mark.parametrize("version", [10, 11, 12, 13])
def test_accepted_versions(version):
    data = p0.build(Notification("srv", 3, version=version), CRED)
    assert p0.parse(data).notification.version == version


@pytest.mark.parametrize("version", [9, 14, 1023])
def test_rejected_versions(version):
    data = p0.build(Notification("srv", 3, version=version), CRED)
    with pytest.raises(NotificationError) as e:
        p0.parse(data)
    assert e.value.offset == 16
    assert p0.parse(data, versions=[version]).notification.version == version


@pytest.mark.parametrize("data, offset", [
    (v.PACKAGE0[:24], 24),
    (v.DIGEST + v.TRIGGER_HEADER[:7] + b"\x00" + b"x", 23),
    (v.PACKAGE0[:-1], 23),
    (v.DIGEST + v.TRIGGER_HEADER[:7] + b"\x02" + b"\xff\xfe", 24),
])
def test_parse_errors_carry_offsets(data, offset):
    with pytest.raises(NotificationError) as e:
        p0.parse(data)
    assert e.value.offset == offset


def test_parse_rejects_non_bytes():
    with pytest.raises(NotificationError):
        p0.parse("text")


# -- verification ------------------------------------------------------------


def test_verify_with_stored_nonce():
    result = p0.verify(p0.parse(v.PACKAGE0), CRED)
    assert result == p0.Verification(v.SERVER_NONCE, False, v.SERVER_ID)


@pytest.mark.parametrize("nonce", [b"0x00000000", b"\x00\x00\x00\x00"])
def test_verify_resync_nonces(nonce):
    package = p0.parse(p0.build(VECTOR, CRED, nonce))
    result = p0.verify(package, CRED)
    assert result.nonce == nonce and result.resynchronised
    assert p0.verify(package, CRED, resync_nonces=()) is None


def test_verify_resync_nonces_are_configurable():
    package = p0.parse(p0.build(VECTOR, CRED, b"0x00000000"))
    assert p0.verify(package, CRED, resync_nonces=[b"\x00" * 4]) is None
    assert p0.verify(package, CRED, resync_nonces=[b"0x00000000"]).resynchronised


def test_verify_fails_on_tampering():
    data = bytearray(v.PACKAGE0)
    data[20] ^= 0x01  # session id
    assert p0.verify(p0.parse(bytes(data)), CRED) is None
    wrong = ServerCredential(v.SERVER_ID, v.SERVER_NONCE, secret="other")
    assert p0.verify(p0.parse(v.PACKAGE0), wrong) is None


def test_verify_with_trigger_server_id_as_name():
    # AOSP hashes the trigger's server id, libdmclient the SRVCRED name.
    signer = ServerCredential("trigger-id", v.SERVER_NONCE, secret=v.SERVER_PASSWORD)
    package = p0.parse(p0.build(Notification("trigger-id", 9), signer))
    device = ServerCredential("aauth-name", v.SERVER_NONCE, secret=v.SERVER_PASSWORD)
    assert p0.verify(package, device).name == "trigger-id"
    assert p0.verify(package, device, trigger_name=False) is None


# -- properties --------------------------------------------------------------

server_ids = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)
notifications = st.builds(
    Notification,
    server_id=server_ids,
    push_session_id=st.integers(1, 0xFFFF),
    ui_mode=st.integers(0, 3),
    initiator=st.integers(0, 1),
    version=st.integers(10, 13),
    body=st.binary(max_size=40),
)


@settings(max_examples=300, deadline=None)
@given(notifications, st.binary(max_size=16))
def test_parse_build_round_trip(notification, nonce):
    cred = ServerCredential(v.SERVER_ID, nonce, secret=v.SERVER_PASSWORD)
    data = p0.build(notification, cred)
    package = p0.parse(data)
    assert package.notification == notification
    assert package.trigger == data[16:]
    assert p0.verify(package, cred, resync_nonces=()).nonce == nonce


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_notification_error(data):
    try:
        package = p0.parse(data)
    except NotificationError:
        return
    future = (int.from_bytes(package.trigger[:8], "big") >> 24) & ((1 << 27) - 1)
    if future == 0 and package.notification.push_session_id:
        assert p0.encode_trigger(package.notification) == package.trigger


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=16, max_size=16), st.integers(10, 13), st.integers(0, (1 << 54) - 1),
       st.binary(max_size=60))
def test_plausible_headers_raise_only_notification_error(digest, version, rest, tail):
    data = digest + ((version << 54) | rest).to_bytes(8, "big") + tail
    try:
        package = p0.parse(data)
    except NotificationError:
        return
    assert package.notification.version == version
    assert len(package.notification.server_id.encode()) == rest & 0xFF


def test_build_wants_a_raw_nonce():
    with pytest.raises(NotificationError):
        p0.build(VECTOR, CRED, "obase64text==")
