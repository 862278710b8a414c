"""Tests for dmgateway.auth.credentials: formulas and the x-syncml-hmac header."""

import base64
import binascii
import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.auth.credentials import (
    AUTH_BASIC,
    AUTH_MAC,
    AUTH_MD5,
    SCHEME_TO_TYPE,
    AuthError,
    HmacHeader,
    b64decode_tolerant,
    basic_value,
    constant_time_equal,
    format_hmac_header,
    hmac_mac,
    mac_digest,
    md5_digest,
    md5_value,
    parse_basic,
    parse_hmac_header,
    scheme_for_type,
    user_hash,
)

from . import vectors as v

fuzz = settings(database=None, max_examples=300)


# -- constants ---------------------------------------------------------------


def test_meta_types():
    assert AUTH_BASIC == "syncml:auth-basic"
    assert AUTH_MD5 == "syncml:auth-md5"
    assert AUTH_MAC == "syncml:auth-MAC"
    assert SCHEME_TO_TYPE == {"basic": AUTH_BASIC, "md5": AUTH_MD5, "hmac": AUTH_MAC}


@pytest.mark.parametrize(
    "meta_type, scheme",
    [
        ("syncml:auth-basic", "basic"),
        ("syncml:auth-md5", "md5"),
        ("syncml:auth-MAC", "hmac"),
        ("syncml:auth-mac", "hmac"),
        ("SYNCML:AUTH-MD5", "md5"),
        (" syncml:auth-md5 ", "md5"),
        ("syncml:auth-X509", None),
        ("", None),
        (None, None),
    ],
)
def test_scheme_for_type(meta_type, scheme):
    assert scheme_for_type(meta_type) == scheme


# -- formulas against the vectors --------------------------------------------


def test_spec_basic_vector():
    assert basic_value(v.SPEC_USER, v.SPEC_PASS) == v.SPEC_BASIC
    assert parse_basic(v.SPEC_BASIC) == (v.SPEC_USER, v.SPEC_PASS)


def test_spec_md5_vector():
    assert md5_value(user_hash(v.SPEC_USER, v.SPEC_PASS), v.SPEC_NONCE) == v.SPEC_MD5


def test_client_user_hash():
    assert user_hash(v.CLIENT_USER, v.CLIENT_PASS) == v.CLIENT_HASH
    assert base64.b64decode(v.CLIENT_HASH).hex() == v.CLIENT_HASH_HEX


def test_client_basic_vector():
    assert basic_value(v.CLIENT_USER, v.CLIENT_PASS) == v.CLIENT_BASIC
    assert parse_basic(v.CLIENT_BASIC) == (v.CLIENT_USER, v.CLIENT_PASS)


def test_client_md5_vector_uses_raw_nonce():
    assert md5_value(v.CLIENT_HASH, v.CLIENT_NONCE) == v.CLIENT_MD5
    assert md5_digest(v.CLIENT_HASH, v.CLIENT_NONCE) == base64.b64decode(v.CLIENT_MD5)


def test_md5_with_b64_text_nonce_is_the_known_bug_value():
    # Using the NextNonce *text* gives the bug value, not the right one.
    wrong = md5_value(v.CLIENT_HASH, v.CLIENT_NONCE_B64.encode("ascii"))
    assert wrong == v.CLIENT_MD5_WRONG_B64_NONCE
    assert wrong != v.CLIENT_MD5


def test_server_md5_vector():
    server_hash = user_hash(v.SERVER_USER, v.SERVER_PASS)
    assert md5_value(server_hash, v.SERVER_NONCE) == v.SERVER_MD5


def test_hmac_vector():
    assert len(v.HMAC_BODY) == 320
    assert hashlib.md5(v.HMAC_BODY).hexdigest() == v.HMAC_BODY_MD5_HEX
    assert hmac_mac(v.CLIENT_HASH, v.CLIENT_NONCE, v.HMAC_BODY) == v.HMAC_MAC
    assert mac_digest(v.CLIENT_HASH, v.CLIENT_NONCE, v.HMAC_BODY) == base64.b64decode(v.HMAC_MAC)


def test_hmac_depends_on_every_body_byte():
    changed = v.HMAC_BODY.replace(b"<MsgID>1<", b"<MsgID>2<")
    assert hmac_mac(v.CLIENT_HASH, v.CLIENT_NONCE, changed) != v.HMAC_MAC


def test_utf8_names_and_secrets():
    name, secret = "jürgen", "pässwörd:with:colons"
    expected = base64.b64encode(hashlib.md5("jürgen:pässwörd:with:colons".encode()).digest())
    assert user_hash(name, secret) == expected.decode()
    assert parse_basic(basic_value(name, secret)) == (name, secret)


# -- parse_basic -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "QnJ1Y2UyOk9oQmVoYXZl",
        " QnJ1Y2Uy\r\nOk9oQmVoYXZl ",
        b"QnJ1Y2UyOk9oQmVoYXZl",
    ],
)
def test_parse_basic_tolerates_whitespace_and_bytes(text):
    assert parse_basic(text) == ("Bruce2", "OhBehave")


def test_parse_basic_missing_padding():
    encoded = basic_value("ab", "c")  # "YWI6Yw==" has padding
    assert encoded.endswith("==")
    assert parse_basic(encoded.rstrip("=")) == ("ab", "c")


def test_parse_basic_empty_secret_and_name():
    assert parse_basic(basic_value("user", "")) == ("user", "")
    assert parse_basic(basic_value("", "pw")) == ("", "pw")


@pytest.mark.parametrize(
    "text",
    [
        "",  # no colon
        "bm9jb2xvbg==",  # "nocolon"
        "not base64!",
        "QnJ1Y2UyOk9oQmVoYXZl=A",  # padding in the middle
        "A",  # truncated
        "/w==",  # 0xff: not UTF-8
        "Qn\u00e9J1",  # non-ASCII
        b"\xff\xfe",
        None,
        12,
    ],
)
def test_parse_basic_garbage_raises_auth_error(text):
    with pytest.raises(AuthError):
        parse_basic(text)


@fuzz
@given(st.one_of(st.text(), st.binary()))
def test_parse_basic_random_input_raises_only_auth_error(text):
    try:
        name, secret = parse_basic(text)
    except AuthError:
        return
    assert isinstance(name, str) and isinstance(secret, str)


@fuzz
@given(st.text().filter(lambda s: ":" not in s), st.text())
def test_basic_round_trip(name, secret):
    assert parse_basic(basic_value(name, secret)) == (name, secret)


# -- b64decode_tolerant ----------------------------------------------------


def test_b64_tolerant_accepts_extra_padding_and_spaces():
    assert b64decode_tolerant("AQID====") == b"\x01\x02\x03"
    assert b64decode_tolerant(" A Q I D ") == b"\x01\x02\x03"
    assert b64decode_tolerant("") == b""


@given(st.binary(max_size=40), st.sampled_from(["", " ", "\n", "="]), st.integers(0, 8))
def test_b64_tolerant_decodes_canonical_text_as_the_tolerant_steps_do(raw, extra, where):
    text = base64.b64encode(raw).decode("ascii")
    assert b64decode_tolerant(text) == raw
    varied = text[:where] + extra + text[where:]
    try:
        expected = base64.b64decode(varied.replace(" ", "").replace("\n", "").rstrip("=")
                                    + "=" * (-len(varied.replace(" ", "").replace("\n", "").rstrip("=")) % 4),
                                    validate=True)
    except ValueError:
        expected = None
    try:
        got = b64decode_tolerant(varied)
    except AuthError:
        got = None
    assert got == expected


@pytest.mark.parametrize("text", ["A", "AB=C", "AQID=", "AQ==AQ==", "AQI", "AQ", "é", "AQ\x00D"])
def test_b64_tolerant_refuses_or_repairs_odd_text(text):
    try:
        got = b64decode_tolerant(text)
    except AuthError:
        got = "refused"
    assert got == {"AQID=": b"\x01\x02\x03", "AQI": b"\x01\x02", "AQ": b"\x01"}.get(text, "refused")


# -- x-syncml-hmac header ----------------------------------------------------


EXPECTED = HmacHeader(algorithm="MD5", username="dmclient01", mac=v.HMAC_MAC)


@pytest.mark.parametrize(
    "value",
    [
        v.HMAC_HEADER,
        # AOSP: no spaces after commas
        'algorithm=MD5,username="dmclient01",mac=mss1ap8FuNwyckf6H22MUw==',
        # reordered keys
        'mac=mss1ap8FuNwyckf6H22MUw==, username="dmclient01", algorithm=MD5',
        'username="dmclient01",algorithm=MD5,mac=mss1ap8FuNwyckf6H22MUw==',
        # quoted mac, unquoted user name
        'algorithm=MD5, username=dmclient01, mac="mss1ap8FuNwyckf6H22MUw=="',
        # missing algorithm
        'username="dmclient01", mac=mss1ap8FuNwyckf6H22MUw==',
        # spaces around '=' and commas, tabs, trailing comma
        ' algorithm = MD5 ,\tusername = "dmclient01" , mac = mss1ap8FuNwyckf6H22MUw== ,',
        # key case, unknown extra key
        'Algorithm=MD5, UserName="dmclient01", MAC=mss1ap8FuNwyckf6H22MUw==, x=1',
        # bytes, as Twisted hands headers out
        v.HMAC_HEADER.encode("ascii"),
    ],
)
def test_parse_hmac_header_variants(value):
    assert parse_hmac_header(value) == EXPECTED


def test_parse_hmac_header_keeps_other_algorithm():
    header = parse_hmac_header('algorithm=SHA1, username="u", mac=AAAA')
    assert header.algorithm == "SHA1"


def test_parse_hmac_header_quoted_specials():
    header = parse_hmac_header(r'username="a, \"b\"=c", mac=AAAA')
    assert header.username == 'a, "b"=c'


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "algorithm=MD5",
        'username="dmclient01"',  # no mac
        "mac=mss1ap8FuNwyckf6H22MUw==",  # no username
        'username="", mac=AAAA',  # empty username
        'username="u", mac=',  # empty mac
        'username="unterminated, mac=AAAA',
        'username="u"x, mac=AAAA',  # text after the quoted string
        'username=u"v, mac=AAAA',  # stray quote
        'username="u", username="v", mac=AAAA',  # duplicate key
        'username="u", garbage, mac=AAAA',  # element without '='
        '=x, username="u", mac=AAAA',  # empty key
        b"username=\xff, mac=AAAA",  # bytes, not UTF-8
        None,
    ],
)
def test_parse_hmac_header_garbage_raises_auth_error(value):
    with pytest.raises(AuthError):
        parse_hmac_header(value)


@fuzz
@given(st.one_of(st.text(), st.binary()))
def test_parse_hmac_header_random_input_raises_only_auth_error(value):
    try:
        header = parse_hmac_header(value)
    except AuthError:
        return
    assert header.username and header.mac


@fuzz
@given(
    st.lists(
        st.sampled_from(
            ["algorithm", "username", "mac", "=", ",", " ", '"', "\\", "MD5", "x", "AA=="]
        ),
        max_size=20,
    )
)
def test_parse_hmac_header_token_soup_raises_only_auth_error(parts):
    try:
        header = parse_hmac_header("".join(parts))
    except AuthError:
        return
    assert header.username and header.mac and header.algorithm


def test_format_hmac_header_vector():
    assert format_hmac_header(v.CLIENT_USER, v.HMAC_MAC) == v.HMAC_HEADER


def test_format_hmac_header_escapes_quotes():
    value = format_hmac_header('we"ird\\name', "AAAA")
    assert value == 'algorithm=MD5, username="we\\"ird\\\\name", mac=AAAA'
    assert parse_hmac_header(value).username == 'we"ird\\name'


@pytest.mark.parametrize(
    "username, mac",
    [
        ("evil\r\nSet-Cookie: x", "AAAA"),  # header injection
        ("", "AAAA"),
        ("u", "not base64"),
        ("u", ""),
        ("u", "AAAA\r\nX: y"),
    ],
)
def test_format_hmac_header_is_strict(username, mac):
    with pytest.raises(AuthError):
        format_hmac_header(username, mac)


@fuzz
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs")),
        min_size=1,
    ),
    st.binary(min_size=16, max_size=16),
)
def test_hmac_header_round_trip(username, digest):
    mac = base64.b64encode(digest).decode()
    assert parse_hmac_header(format_hmac_header(username, mac)) == HmacHeader("MD5", username, mac)


# -- constant_time_equal -----------------------------------------------------


def test_constant_time_equal():
    assert constant_time_equal("abc", "abc")
    assert constant_time_equal(b"abc", "abc")
    assert not constant_time_equal("abc", "abd")
    assert not constant_time_equal(b"abc", b"abcd")
    assert constant_time_equal("jürgen", "jürgen".encode())


# the decoding b64decode_tolerant had before its strict fast path: a regex
# for canonical text, then whitespace removed and padding restored
_CANONICAL = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _reference_b64decode(text):
    if _CANONICAL.fullmatch(text):
        return binascii.a2b_base64(text)
    compact = re.sub(r"[ \t\r\n\f\v]+", "", text)
    if not re.fullmatch(r"[A-Za-z0-9+/]*=*", compact):
        raise AuthError("not base64 text")
    compact = compact.rstrip("=")
    if len(compact) % 4 == 1:
        raise AuthError("truncated base64 text")
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise AuthError("not base64 text") from None


def _outcome(decode, text):
    try:
        return decode(text)
    except AuthError:
        return AuthError


@given(st.text(alphabet="AQIDaz09+/= \t\n-.\u00e9", max_size=14))
@settings(max_examples=3000)
def test_b64decode_tolerant_decodes_as_the_reference(text):
    assert _outcome(b64decode_tolerant, text) == _outcome(_reference_b64decode, text)


@given(st.binary(max_size=12), st.integers(min_value=0, max_value=20), st.sampled_from("A=/ \u00e9"))
def test_b64decode_tolerant_decodes_altered_base64_as_the_reference(data, where, char):
    text = base64.b64encode(data).decode("ascii")
    for altered in (text, text[:where] + char + text[where + 1:], text[:where] + char + text[where:]):
        assert _outcome(b64decode_tolerant, altered) == _outcome(_reference_b64decode, altered)
