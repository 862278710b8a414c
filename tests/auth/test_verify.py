"""Tests for dmgateway.auth.verify: checking and producing message credentials."""

import base64
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.auth.credentials import (
    AUTH_BASIC,
    AUTH_MAC,
    AUTH_MD5,
    AuthError,
    basic_value,
    md5_value,
)
from dmgateway.auth.nonce import new_nonce
from dmgateway.auth.verify import (
    STATUS_AUTHENTICATED,
    STATUS_INVALID,
    STATUS_MISSING,
    STATUS_OK,
    AuthAccount,
    Verdict,
    challenge,
    client_cred,
    client_hmac_header,
    cred_scheme,
    parse_challenge,
    server_cred,
    server_hmac_header,
    verify_client,
    verify_server_cred,
)
from dmgateway.codec.syncml import Chal, Cred, Meta

from . import vectors as v

fuzz = settings(database=None, max_examples=200)

SECRETS = (v.CLIENT_PASS, v.CLIENT_HASH, v.SPEC_PASS, v.SERVER_PASS)


def md5_cred(data, meta_type=AUTH_MD5, fmt="b64"):
    return Cred(meta=Meta(type=meta_type, format=fmt), data=data)


def basic_cred(data, meta_type=AUTH_BASIC, fmt="b64"):
    return Cred(meta=Meta(type=meta_type, format=fmt), data=data)


def client(scheme="md5"):
    return AuthAccount(scheme=scheme, name=v.CLIENT_USER, user_hash=v.CLIENT_HASH)


def check(account, nonce=v.CLIENT_NONCE, *, cred=None, loc_name=None, hmac_header=None,
          body=b"", **kw):
    verdict = verify_client(
        account, nonce, cred=cred, loc_name=loc_name, hmac_header=hmac_header, body=body, **kw
    )
    assert isinstance(verdict, Verdict)
    for secret in SECRETS:
        assert secret not in verdict.reason
    return verdict


def rotated_nonce():
    nonce = new_nonce(random.Random(42).randbytes)
    assert nonce != v.CLIENT_NONCE
    return nonce


# -- AuthAccount -------------------------------------------------------------


def test_account_from_secret():
    account = AuthAccount.from_secret("md5", v.CLIENT_USER, v.CLIENT_PASS)
    assert account.user_hash == v.CLIENT_HASH
    assert account.secret is None
    kept = AuthAccount.from_secret("basic", v.CLIENT_USER, v.CLIENT_PASS, keep_secret=True)
    assert kept.secret == v.CLIENT_PASS


def test_account_repr_hides_secrets():
    account = AuthAccount("basic", v.CLIENT_USER, v.CLIENT_HASH, v.CLIENT_PASS)
    text = repr(account)
    assert v.CLIENT_USER in text
    assert v.CLIENT_HASH not in text and v.CLIENT_PASS not in text


# -- md5 ---------------------------------------------------------------------


def test_md5_vector_authenticates_for_the_session():
    verdict = check(client(), cred=md5_cred(v.CLIENT_MD5), loc_name=v.CLIENT_USER)
    assert verdict.ok and verdict.status == STATUS_AUTHENTICATED == 212


def test_md5_made_with_the_b64_text_of_the_nonce_fails():
    verdict = check(client(), cred=md5_cred(v.CLIENT_MD5_WRONG_B64_NONCE), loc_name=v.CLIENT_USER)
    assert not verdict.ok and verdict.status == STATUS_INVALID == 401


def test_md5_replay_with_rotated_nonce_fails():
    # The digest is valid for nonce N, the server has moved on to N'.
    verdict = check(client(), rotated_nonce(), cred=md5_cred(v.CLIENT_MD5), loc_name=v.CLIENT_USER)
    assert (verdict.ok, verdict.status) == (False, 401)


def test_md5_spec_vector():
    account = AuthAccount.from_secret("md5", v.SPEC_USER, v.SPEC_PASS)
    verdict = check(account, v.SPEC_NONCE, cred=md5_cred(v.SPEC_MD5), loc_name=v.SPEC_USER)
    assert (verdict.ok, verdict.status) == (True, 212)


def test_md5_wrong_loc_name():
    verdict = check(client(), cred=md5_cred(v.CLIENT_MD5), loc_name="dmclient02")
    assert (verdict.ok, verdict.status, verdict.reason) == (False, 401, "user name mismatch")


def test_md5_missing_loc_name_is_tolerated_unless_required():
    assert check(client(), cred=md5_cred(v.CLIENT_MD5)).ok
    verdict = check(client(), cred=md5_cred(v.CLIENT_MD5), require_loc_name=True)
    assert (verdict.ok, verdict.status) == (False, 401)


def test_md5_account_of_another_user_fails_even_with_its_name():
    other = AuthAccount.from_secret("md5", v.CLIENT_USER, "other secret")
    verdict = check(other, cred=md5_cred(v.CLIENT_MD5), loc_name=v.CLIENT_USER)
    assert (verdict.ok, verdict.status, verdict.reason) == (False, 401, "bad digest")


@pytest.mark.parametrize(
    "cred",
    [
        md5_cred(v.CLIENT_MD5, meta_type="syncml:auth-MD5"),
        md5_cred(v.CLIENT_MD5, meta_type=" SYNCML:AUTH-MD5 "),
        md5_cred(v.CLIENT_MD5, fmt=None),
        md5_cred(v.CLIENT_MD5, fmt="B64"),
        md5_cred(" Q3r6Z+uEU9+S\n9G0eEFL04w "),  # folded, unpadded
        md5_cred(base64.b64decode(v.CLIENT_MD5), fmt="bin"),  # WBXML opaque
        md5_cred(v.CLIENT_MD5.encode("ascii")),  # b64 text as bytes
    ],
)
def test_md5_tolerated_forms(cred):
    verdict = check(client(), cred=cred, loc_name=v.CLIENT_USER)
    assert (verdict.ok, verdict.status) == (True, 212)


@pytest.mark.parametrize(
    "cred",
    [
        md5_cred("not*base64"),
        md5_cred(v.CLIENT_MD5, fmt="chr"),
        md5_cred(v.CLIENT_MD5, fmt="bin"),  # bin needs bytes
        md5_cred(""),
        md5_cred(None),
        md5_cred(v.CLIENT_MD5[:-4]),  # truncated digest
    ],
)
def test_md5_malformed_is_401(cred):
    verdict = check(client(), cred=cred, loc_name=v.CLIENT_USER)
    assert (verdict.ok, verdict.status) == (False, 401)


def test_account_without_credentials_fails_closed():
    empty = AuthAccount("md5", v.CLIENT_USER, "")
    forged = md5_value("", v.CLIENT_NONCE)  # what an empty stored hash would accept
    verdict = check(empty, cred=md5_cred(forged), loc_name=v.CLIENT_USER)
    assert (verdict.ok, verdict.status) == (False, 401)


def test_account_with_only_a_plain_secret():
    account = AuthAccount("md5", v.CLIENT_USER, "", secret=v.CLIENT_PASS)
    assert check(account, cred=md5_cred(v.CLIENT_MD5), loc_name=v.CLIENT_USER).ok


def test_unknown_account_scheme_fails_closed():
    verdict = check(client("x509"), cred=md5_cred(v.CLIENT_MD5), loc_name=v.CLIENT_USER)
    assert (verdict.ok, verdict.status) == (False, 401)


# -- basic -------------------------------------------------------------------


def test_basic_spec_vector():
    account = AuthAccount.from_secret("basic", v.SPEC_USER, v.SPEC_PASS)
    verdict = check(account, None, cred=basic_cred(v.SPEC_BASIC))
    assert (verdict.ok, verdict.status) == (True, 212)


def test_basic_client_vector_and_nonce_is_irrelevant():
    for nonce in (v.CLIENT_NONCE, rotated_nonce(), b""):
        verdict = check(client("basic"), nonce, cred=basic_cred(v.CLIENT_BASIC))
        assert (verdict.ok, verdict.status) == (True, 212)


def test_basic_without_meta_is_basic():
    verdict = check(client("basic"), cred=Cred(meta=None, data=v.CLIENT_BASIC))
    assert verdict.ok


def test_basic_wrong_password():
    verdict = check(client("basic"), cred=basic_cred(basic_value(v.CLIENT_USER, "guess")))
    assert (verdict.ok, verdict.status, verdict.reason) == (False, 401, "bad password")


def test_basic_wrong_name():
    verdict = check(client("basic"), cred=basic_cred(basic_value("mallory", v.CLIENT_PASS)))
    assert (verdict.ok, verdict.status, verdict.reason) == (False, 401, "user name mismatch")


@pytest.mark.parametrize("data", ["bm9jb2xvbg==", "%%%", "/w=="])
def test_basic_malformed(data):
    verdict = check(client("basic"), cred=basic_cred(data))
    assert (verdict.ok, verdict.status, verdict.reason) == (False, 401, "malformed credentials")


# -- hmac --------------------------------------------------------------------


def hmac_check(header=v.HMAC_HEADER, body=v.HMAC_BODY, nonce=v.CLIENT_NONCE, **kw):
    return check(client("hmac"), nonce, hmac_header=header, body=body,
                 loc_name=v.CLIENT_USER, **kw)


def hex_variant(mac):
    """The OMA example's form: base64 of the hex text of the digest, unpadded."""
    return base64.b64encode(base64.b64decode(mac).hex().encode()).decode().rstrip("=")


def test_hmac_vector_is_accepted_per_message():
    verdict = hmac_check()
    assert (verdict.ok, verdict.status) == (True, STATUS_OK) == (True, 200)


@pytest.mark.parametrize(
    "header",
    [
        'algorithm=MD5,username="dmclient01",mac=mss1ap8FuNwyckf6H22MUw==',
        'mac="mss1ap8FuNwyckf6H22MUw==", username=dmclient01',
        'algorithm=md5, username="dmclient01", mac=mss1ap8FuNwyckf6H22MUw',
        v.HMAC_HEADER.encode("ascii"),
    ],
)
def test_hmac_header_variants(header):
    assert hmac_check(header).ok


def test_hmac_over_a_changed_body_fails():
    body = v.HMAC_BODY.replace(b"<Final/>", b"<Final/> ")
    verdict = hmac_check(body=body)
    assert (verdict.ok, verdict.status, verdict.reason) == (False, 401, "bad MAC")


def test_hmac_replay_with_rotated_nonce_fails():
    verdict = hmac_check(nonce=rotated_nonce())
    assert (verdict.ok, verdict.status) == (False, 401)


def test_hmac_wrong_username():
    header = v.HMAC_HEADER.replace("dmclient01", "dmclient02")
    verdict = hmac_check(header)
    assert (verdict.ok, verdict.status, verdict.reason) == (False, 401, "user name mismatch")


def test_hmac_unsupported_algorithm():
    verdict = hmac_check(v.HMAC_HEADER.replace("MD5", "SHA256"))
    assert (verdict.ok, verdict.status) == (False, 401)


@pytest.mark.parametrize("header", ["garbage", 'username="dmclient01"', 'mac=AAAA'])
def test_hmac_malformed_header(header):
    verdict = hmac_check(header)
    assert (verdict.ok, verdict.status, verdict.reason) == (
        False, 401, "malformed x-syncml-hmac header")


def test_hmac_hex_variant_only_behind_the_flag():
    assert hex_variant(v.HMAC_MAC) != v.HMAC_MAC
    header = 'algorithm=MD5, username="dmclient01", mac=%s' % (hex_variant(v.HMAC_MAC),)
    assert not hmac_check(header).ok
    assert hmac_check(header, accept_hex_mac=True).ok
    # the flag does not weaken the normal form or accept a wrong hex MAC
    assert hmac_check(accept_hex_mac=True).ok
    wrong = 'username="dmclient01", mac=%s' % (hex_variant("AAAAAAAAAAAAAAAAAAAAAA=="),)
    assert not hmac_check(wrong, accept_hex_mac=True).ok


def test_oma_example_mac_is_base64_of_hex_text():
    # The shape the flag exists for: 43 unpadded chars decoding to 32 hex digits.
    from dmgateway.auth.credentials import b64decode_tolerant

    assert b64decode_tolerant(v.OMA_HEX_MAC) == v.OMA_HEX_MAC_TEXT


# -- wrong scheme / missing --------------------------------------------------


@pytest.mark.parametrize(
    "scheme, cred, header",
    [
        ("md5", basic_cred(v.CLIENT_BASIC), None),
        ("md5", None, v.HMAC_HEADER),
        ("basic", md5_cred(v.CLIENT_MD5), None),
        ("basic", None, v.HMAC_HEADER),
        ("hmac", md5_cred(v.CLIENT_MD5), None),
        ("hmac", basic_cred(v.CLIENT_BASIC), None),
        ("md5", Cred(meta=Meta(type="syncml:auth-X509"), data="AAAA"), None),
        ("md5", Cred(meta=None, data=v.CLIENT_MD5), None),  # no type = basic
    ],
)
def test_wrong_scheme_is_401(scheme, cred, header):
    verdict = check(client(scheme), cred=cred, hmac_header=header, body=v.HMAC_BODY,
                    loc_name=v.CLIENT_USER)
    assert (verdict.ok, verdict.status, verdict.reason) == (
        False, 401, "wrong authentication scheme")


@pytest.mark.parametrize("scheme", ["basic", "md5", "hmac"])
@pytest.mark.parametrize("header", [None, ""])
def test_missing_credentials_is_407(scheme, header):
    verdict = check(client(scheme), hmac_header=header, loc_name=v.CLIENT_USER)
    assert (verdict.ok, verdict.status) == (False, STATUS_MISSING) == (False, 407)


@pytest.mark.parametrize(
    "cred, header",
    [(None, None), (md5_cred("garbage!"), "garbage"), (basic_cred(v.CLIENT_BASIC), None)],
)
def test_scheme_none_is_always_ok(cred, header):
    verdict = check(client("none"), cred=cred, hmac_header=header)
    assert (verdict.ok, verdict.status) == (True, 212)


def test_cred_scheme():
    assert cred_scheme(md5_cred("x")) == "md5"
    assert cred_scheme(md5_cred("x", meta_type="syncml:auth-mac")) == "hmac"
    assert cred_scheme(Cred(meta=Meta(), data="x")) == "basic"
    assert cred_scheme(Cred(meta=Meta(type="syncml:auth-securid"), data="x")) is None


@fuzz
@given(
    scheme=st.sampled_from(["basic", "md5", "hmac"]),
    meta_type=st.one_of(st.none(), st.sampled_from([AUTH_BASIC, AUTH_MD5, AUTH_MAC]), st.text()),
    fmt=st.one_of(st.none(), st.sampled_from(["b64", "bin", "chr"]), st.text()),
    data=st.one_of(st.none(), st.text(), st.binary()),
    loc_name=st.one_of(st.none(), st.text()),
    header=st.one_of(st.none(), st.text(), st.binary()),
    body=st.binary(max_size=64),
)
def test_random_input_never_raises_and_never_authenticates(
    scheme, meta_type, fmt, data, loc_name, header, body
):
    cred = Cred(meta=Meta(type=meta_type, format=fmt), data=data)
    verdict = check(client(scheme), cred=cred, loc_name=loc_name, hmac_header=header, body=body,
                    accept_hex_mac=True)
    assert not verdict.ok
    assert verdict.status in (401, 407)


# -- producing credentials ---------------------------------------------------


def server(scheme="md5", **kw):
    return AuthAccount.from_secret(scheme, v.SERVER_USER, v.SERVER_PASS, **kw)


def test_server_md5_cred_vector():
    cred = server_cred(server(), v.SERVER_NONCE)
    assert cred == Cred(meta=Meta(type=AUTH_MD5, format="b64"), data=v.SERVER_MD5)


def test_client_side_verifies_the_server_cred():
    cred = server_cred(server(), v.SERVER_NONCE)
    verdict = verify_server_cred(server(), v.SERVER_NONCE, cred=cred, loc_name=v.SERVER_USER,
                                 hmac_header=None, body=b"")
    assert (verdict.ok, verdict.status) == (True, 212)
    verdict = verify_server_cred(server(), v.NEXT_SERVER_NONCE, cred=cred, loc_name=v.SERVER_USER,
                                 hmac_header=None, body=b"")
    assert (verdict.ok, verdict.status) == (False, 401)
    verdict = verify_server_cred(server(), v.SERVER_NONCE, cred=None, loc_name=v.SERVER_USER,
                                 hmac_header=None, body=b"")
    assert (verdict.ok, verdict.status) == (False, 407)


def test_server_basic_cred_needs_the_plain_secret():
    cred = server_cred(server("basic", keep_secret=True), None)
    assert cred.meta.type == AUTH_BASIC and cred.meta.format == "b64"
    assert cred.data == basic_value(v.SERVER_USER, v.SERVER_PASS)
    with pytest.raises(AuthError):
        server_cred(server("basic"), None)


@pytest.mark.parametrize("scheme", ["hmac", "none"])
def test_no_cred_for_hmac_and_none(scheme):
    assert server_cred(server(scheme), v.SERVER_NONCE) is None


def test_server_cred_errors():
    with pytest.raises(AuthError):
        server_cred(server("x509"), v.SERVER_NONCE)
    with pytest.raises(AuthError):
        server_cred(AuthAccount("md5", v.SERVER_USER, ""), v.SERVER_NONCE)


def test_hmac_header_production_vector():
    account = AuthAccount.from_secret("hmac", v.CLIENT_USER, v.CLIENT_PASS)
    assert server_hmac_header(account, v.CLIENT_NONCE, v.HMAC_BODY) == v.HMAC_HEADER
    assert client_hmac_header(account, v.CLIENT_NONCE, v.HMAC_BODY) == v.HMAC_HEADER


def test_hmac_round_trip_both_directions():
    srv = server("hmac")
    body = b"<SyncML>any body</SyncML>"
    header = server_hmac_header(srv, v.SERVER_NONCE, body)
    verdict = verify_server_cred(srv, v.SERVER_NONCE, cred=None, loc_name=None,
                                 hmac_header=header, body=body)
    assert (verdict.ok, verdict.status) == (True, 200)


def test_client_cred_matches_vector():
    cred = client_cred(client(), v.CLIENT_NONCE)
    assert cred.data == v.CLIENT_MD5
    assert check(client(), cred=cred, loc_name=v.CLIENT_USER).ok


# -- challenges --------------------------------------------------------------


def test_md5_challenge():
    chal = challenge("md5", v.NEXT_CLIENT_NONCE)
    assert chal == Chal(meta=Meta(type=AUTH_MD5, format="b64", next_nonce=v.NEXT_CLIENT_NONCE_B64))
    assert parse_challenge(chal) == ("md5", v.NEXT_CLIENT_NONCE)


def test_hmac_challenge():
    chal = challenge("hmac", v.CLIENT_NONCE)
    assert (chal.meta.type, chal.meta.format, chal.meta.next_nonce) == (
        AUTH_MAC, "b64", v.CLIENT_NONCE_B64)


def test_basic_challenge_has_no_nonce():
    chal = challenge("basic", v.CLIENT_NONCE)
    assert chal == Chal(meta=Meta(type=AUTH_BASIC, format="b64"))
    assert parse_challenge(chal) == ("basic", None)


def test_challenge_without_nonce():
    assert challenge("md5", None).meta.next_nonce is None


@pytest.mark.parametrize("scheme", ["none", "x509", "", None])
def test_challenge_bad_scheme(scheme):
    with pytest.raises(AuthError):
        challenge(scheme, None)


def test_parse_challenge_from_peer():
    chal = Chal(meta=Meta(type="syncml:auth-mac", format="b64", next_nonce="ESIzRFVmd4g"))
    assert parse_challenge(chal) == ("hmac", v.NEXT_SERVER_NONCE)
    chal = Chal(meta=Meta(type="syncml:auth-securid", next_nonce=v.CLIENT_NONCE_B64))
    assert parse_challenge(chal) == (None, v.CLIENT_NONCE)
    with pytest.raises(AuthError):
        parse_challenge(Chal(meta=Meta(type=AUTH_MD5, format="b64", next_nonce="%%%")))
    with pytest.raises(AuthError):
        parse_challenge(Chal(meta=Meta(type=AUTH_MD5, format="chr", next_nonce="abc")))
