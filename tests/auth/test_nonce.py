"""Tests for dmgateway.auth.nonce."""

import base64
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.auth.credentials import AuthError
from dmgateway.auth.nonce import (
    DEFAULT_NONCE_SIZE,
    RESYNC_NONCE_TEXT,
    RESYNC_NONCE_ZEROS,
    RESYNC_NONCES,
    decode_nonce,
    encode_nonce,
    new_nonce,
)

from . import vectors as v

fuzz = settings(database=None, max_examples=300)


def seeded(seed):
    """A deterministic random source with the os.urandom signature."""
    return random.Random(seed).randbytes


def test_new_nonce_default_is_128_bits():
    assert DEFAULT_NONCE_SIZE == 16
    nonce = new_nonce(seeded(1))
    assert isinstance(nonce, bytes) and len(nonce) == 16


def test_new_nonce_takes_bytes_from_the_source():
    calls = []

    def source(n):
        calls.append(n)
        return bytes(range(n))

    assert new_nonce(source, 8) == bytes(range(8))
    assert calls == [8]


def test_new_nonce_is_reproducible_with_a_seed_and_differs_between_calls():
    assert new_nonce(seeded(7)) == new_nonce(seeded(7))
    source = seeded(7)
    first, second = new_nonce(source), new_nonce(source)
    assert first != second


@pytest.mark.parametrize("size", [0, -1, 1.5])
def test_new_nonce_bad_size(size):
    with pytest.raises(ValueError):
        new_nonce(seeded(1), size)


@pytest.mark.parametrize("result", [b"short", "x" * 16, None])
def test_new_nonce_rejects_a_misbehaving_source(result):
    with pytest.raises(ValueError):
        new_nonce(lambda n: result)


def test_vector_nonces():
    assert encode_nonce(v.CLIENT_NONCE) == v.CLIENT_NONCE_B64
    assert decode_nonce(v.CLIENT_NONCE_B64) == v.CLIENT_NONCE
    assert encode_nonce(v.SERVER_NONCE) == v.SERVER_NONCE_B64
    assert decode_nonce(v.SERVER_NONCE_B64) == v.SERVER_NONCE
    assert decode_nonce(v.NEXT_CLIENT_NONCE_B64) == v.NEXT_CLIENT_NONCE
    assert decode_nonce(v.NEXT_SERVER_NONCE_B64) == v.NEXT_SERVER_NONCE


@pytest.mark.parametrize(
    "text",
    [
        "AQIDBAUGBwgJCgsMDQ4PEA==",
        "AQIDBAUGBwgJCgsMDQ4PEA",  # no padding
        "AQIDBAUGBwgJCgsMDQ4PEA=",  # short padding
        " AQIDBAUG\nBwgJCgsM\r\nDQ4PEA== ",  # folded, indented
        "\tAQIDBAUGBwgJCgsMDQ4PEA==\n",
        b"AQIDBAUGBwgJCgsMDQ4PEA==",
    ],
)
def test_decode_nonce_is_tolerant(text):
    assert decode_nonce(text) == v.CLIENT_NONCE


@pytest.mark.parametrize(
    "text",
    ["AQID*AUG", "AQIDB", "AQ==ID", "-_-_", "\u00c4QID", b"\x80\x81", None, 1234],
)
def test_decode_nonce_garbage_raises_auth_error(text):
    with pytest.raises(AuthError):
        decode_nonce(text)


def test_empty_nonce():
    assert decode_nonce("") == b""
    assert encode_nonce(b"") == ""


def test_resync_nonces():
    assert RESYNC_NONCE_TEXT == b"0x00000000"
    assert RESYNC_NONCE_ZEROS == bytes(4)
    assert set(RESYNC_NONCES) == {RESYNC_NONCE_TEXT, RESYNC_NONCE_ZEROS}


@fuzz
@given(st.binary(max_size=64))
def test_round_trip(nonce):
    text = encode_nonce(nonce)
    assert text == base64.b64encode(nonce).decode("ascii")
    assert decode_nonce(text) == nonce
    assert decode_nonce(text.rstrip("=")) == nonce


@fuzz
@given(st.one_of(st.text(), st.binary()))
def test_decode_nonce_random_input_raises_only_auth_error(text):
    try:
        result = decode_nonce(text)
    except AuthError:
        return
    assert isinstance(result, bytes)


@fuzz
@given(st.text(alphabet="ABCDabcd0189+/= \r\n\t"))
def test_decode_nonce_b64_alphabet_soup_raises_only_auth_error(text):
    try:
        nonce = decode_nonce(text)
    except AuthError:
        return
    # Non-canonical trailing bits are tolerated, so compare lengths, not text.
    assert len(nonce) == len("".join(text.split()).rstrip("=")) * 3 // 4
