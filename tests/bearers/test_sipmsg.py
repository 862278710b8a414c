"""The pure SIP codec: encode/parse, framing, header helpers, digest."""

import hashlib
import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.bearers import sipmsg as M
from dmgateway.codec.errors import CodecError

# dm-notification.md §2.1 / §3.4: the 39-byte package #0 vector
PACKAGE0 = bytes.fromhex(
    "75de829554b9780e661638bafb45118e02f800000012340f636f6d2e6578616d706c652e646d73")

# dm-notification.md §4.2 wire form (comments dropped), CRLF line ends
SPEC_HEAD = (
    "MESSAGE sip:+447700900123@ims.example.net SIP/2.0\r\n"
    "Via: SIP/2.0/UDP dms-pi.example.com;branch=z9hG4bK776sgdkse\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:dms@example.com>;tag=49583\r\n"
    "To: <sip:+447700900123@ims.example.net>\r\n"
    "Call-ID: a84b4c76e66710@dms-pi.example.com\r\n"
    "CSeq: 1 MESSAGE\r\n"
    'Accept-Contact: *;+g.oma.pusheventapp="syncml.dm";require;explicit\r\n'
    "Content-Type: application/vnd.syncml.notification\r\n"
    "Content-Length: 39\r\n"
    "\r\n").encode()
SPEC_MESSAGE = SPEC_HEAD + PACKAGE0


def test_package0_vector_is_39_bytes():
    assert len(PACKAGE0) == 39


def test_spec_wire_example_parses():
    message = M.parse(SPEC_MESSAGE)
    assert isinstance(message, M.Request)
    assert (message.method, message.uri) == ("MESSAGE", "sip:+447700900123@ims.example.net")
    assert message.body == PACKAGE0
    assert message.header("content-type") == "application/vnd.syncml.notification"
    assert message.header("Accept-Contact") == \
        '*;+g.oma.pusheventapp="syncml.dm";require;explicit'
    assert M.parse_cseq(message.header("CSeq")) == (1, "MESSAGE")
    assert M.parse_via(message.header("Via")) == (
        "UDP", "dms-pi.example.com", {"branch": "z9hG4bK776sgdkse"})
    assert M.parse_name_addr(message.header("From")) == ("sip:dms@example.com", {"tag": "49583"})


def test_spec_wire_example_encodes_byte_for_byte():
    parsed = M.parse(SPEC_MESSAGE)
    rebuilt = M.Request(parsed.method, parsed.uri,
                        [(n, v) for n, v in parsed.headers if n != "Content-Length"],
                        parsed.body)
    assert M.encode(rebuilt) == SPEC_MESSAGE


def test_binary_body_with_crlf_and_nul():
    body = b"\r\n\r\n\x00\x00SIP/2.0 200 OK\r\n\r\n\xff"
    data = M.encode(M.Request("MESSAGE", "sip:a@b", [("CSeq", "1 MESSAGE")], body))
    assert data.endswith(b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert M.parse(data).body == body


def test_content_length_counts_bytes_not_characters():
    body = "é€😀".encode()  # 3 characters, 9 bytes
    data = M.encode(M.Response(200, "OK", [("Subject", "tést")], body))
    assert b"Content-Length: 9\r\n" in data
    assert M.parse(data).body == body
    assert M.parse(data).header("s") == "tést"


def test_given_content_length_is_replaced():
    data = M.encode(M.Request("MESSAGE", "sip:a@b", [("Content-Length", "999"), ("l", "5")],
                              b"abc"))
    assert data.count(b"Content-Length") == 1
    assert b"Content-Length: 3\r\n" in data


def test_compact_names_folding_and_bare_lf():
    data = (b"SIP/2.0 180 Ringing\n"
            b"v: SIP/2.0/TCP h:5060\n ;branch=z9hG4bKx\n"
            b"i: abc\n"
            b"l: 2\n"
            b"c:text/plain\n"
            b"Subject: one\n\ttwo\n"
            b"\nhi")
    message = M.parse(data)
    assert isinstance(message, M.Response)
    assert (message.code, message.reason) == (180, "Ringing")
    assert message.header("Via") == "SIP/2.0/TCP h:5060 ;branch=z9hG4bKx"
    assert M.parse_via(message.header("via"))[2]["branch"] == "z9hG4bKx"
    assert message.header("Call-ID") == "abc"
    assert message.header("Content-Type") == "text/plain"
    assert message.header("Subject") == "one two"
    assert message.body == b"hi"


def test_extra_bytes_after_content_length_are_ignored_and_missing_length_takes_rest():
    assert M.parse(b"SIP/2.0 200 OK\r\nl: 2\r\n\r\nokTRAILING").body == b"ok"
    assert M.parse(b"SIP/2.0 200 OK\r\nCSeq: 1 MESSAGE\r\n\r\nrest").body == b"rest"
    assert M.parse(b"\r\n\r\nSIP/2.0 200 OK\r\nCSeq: 1 MESSAGE").code == 200


def test_repeated_headers_kept_apart():
    message = M.parse(b"SIP/2.0 407 Proxy Authentication Required\r\n"
                      b"Proxy-Authenticate: Digest realm=\"a\", nonce=\"1\"\r\n"
                      b"proxy-authenticate: Digest realm=\"b\", nonce=\"2\"\r\n\r\n")
    assert message.reason == "Proxy Authentication Required"
    assert [M.parse_challenge(v)["realm"] for v in
            message.headers_named("Proxy-Authenticate")] == ["a", "b"]


@pytest.mark.parametrize("data", [
    b"",
    b"\r\n\r\n",
    b"garbage",
    b"MESSAGE sip:a@b\r\n\r\n",
    b"MESSAGE sip:a@b SIP/3.0\r\n\r\n",
    b"MESSAGE  sip:a@b SIP/2.0\r\n\r\n",
    b"SIP/2.0 99 Low\r\n\r\n",
    b"SIP/2.0 700 High\r\n\r\n",
    b"SIP/1.0 200 OK\r\n\r\n",
    b"SIP/2.0 200 OK\r\nno colon here\r\n\r\n",
    b"SIP/2.0 200 OK\r\n bad: continuation first\r\n\r\n",
    b"SIP/2.0 200 OK\r\nBad Name: x\r\n\r\n",
    b"SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"SIP/2.0 200 OK\r\nContent-Length: 12x\r\n\r\n",
    b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    b"SIP/2.0 200 OK\r\nContent-Length: 1\r\nl: 2\r\n\r\nxx",
    b"SIP/2.0 200 OK\r\nSubject: \xff\xfe\r\n\r\n",
    b"SIP/2.0 200 OK\r\nSubject: a\x00b\r\n\r\n",
])
def test_malformed_input_raises_sip_error(data):
    with pytest.raises(M.SIPError) as info:
        M.parse(data)
    assert isinstance(info.value, CodecError)


def test_parse_refuses_non_bytes_and_oversize():
    with pytest.raises(M.SIPError):
        M.parse("SIP/2.0 200 OK\r\n\r\n")
    with pytest.raises(M.SIPError):
        M.parse(b"SIP/2.0 200 OK\r\n\r\n" + b"x" * 100, max_size=50)


@pytest.mark.parametrize("message", [
    M.Request("BAD METHOD", "sip:a@b"),
    M.Request("MESSAGE", "sip:a b"),
    M.Request("MESSAGE", "sip:a@b", [("X-Bad", "a\r\nInjected: 1")]),
    M.Request("MESSAGE", "sip:a@b", [("Bad Name", "v")]),
    M.Response(99, "Low"),
    M.Response(200, "O\r\nK"),
    "not a message",
])
def test_encode_refuses_what_would_break_framing(message):
    with pytest.raises(M.SIPError):
        M.encode(message)


def test_framer_splits_a_stream_honouring_content_length():
    one = M.encode(M.Response(100, "Trying", [("CSeq", "1 MESSAGE")]))
    two = M.encode(M.Response(200, "OK", [("CSeq", "1 MESSAGE")], b"\r\n\r\nSIP/2.0 x"))
    stream = b"\r\n\r\n" + one + b"\r\n" + two + one
    framer = M.SIPFramer()
    received = []
    for i in range(len(stream)):  # one byte at a time
        received += framer.feed(stream[i:i + 1])
    assert [m.code for m in received] == [100, 200, 100]
    assert received[1].body == b"\r\n\r\nSIP/2.0 x"
    framer = M.SIPFramer()
    assert [m.code for m in framer.feed(stream)] == [100, 200, 100]


def test_framer_needs_content_length_and_bounds_sizes():
    with pytest.raises(M.SIPError):
        M.SIPFramer().feed(b"SIP/2.0 200 OK\r\nCSeq: 1 MESSAGE\r\n\r\n")
    with pytest.raises(M.SIPError):
        M.SIPFramer(max_body=10).feed(b"SIP/2.0 200 OK\r\nContent-Length: 11\r\n\r\n")
    with pytest.raises(M.SIPError):
        M.SIPFramer(max_head=100).feed(b"SIP/2.0 200 OK\r\nSubject: " + b"x" * 200)
    with pytest.raises(M.SIPError):
        M.SIPFramer(max_head=100).feed(b"SIP/2.0 200 OK\r\nSubject: " + b"x" * 200 + b"\r\n\r\n")


def test_random_identifiers():
    rng = random.Random(7)
    branches = {M.new_branch(rng) for _ in range(100)}
    assert len(branches) == 100
    assert all(b.startswith("z9hG4bK") and len(b) == 7 + 16 for b in branches)
    assert len(M.new_tag(rng)) == 8
    call_id = M.new_call_id(rng, "example.com")
    assert call_id.endswith("@example.com") and len(call_id.split("@")[0]) == 24
    via = M.format_via("udp", "10.0.0.1:5060", "z9hG4bKabc", rport=None)
    assert via == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport"
    assert M.parse_via(via) == ("UDP", "10.0.0.1:5060", {"branch": "z9hG4bKabc", "rport": None})
    assert M.format_cseq(3, "MESSAGE") == "3 MESSAGE"
    for bad in ["", "MESSAGE", "x MESSAGE", "1", "99999999999 MESSAGE"]:
        with pytest.raises(M.SIPError):
            M.parse_cseq(bad)
    with pytest.raises(M.SIPError):
        M.parse_via("SIP/2.0 nohost")
    with pytest.raises(M.SIPError):
        M.parse_name_addr("<sip:a@b;tag=1")


# -- digest ----------------------------------------------------------------------

RFC2617 = dict(method="GET", uri="/dir/index.html", username="Mufasa",
               password="Circle Of Life")
RFC2617_CHALLENGE = ('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                     'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                     'opaque="5ccc069c403ebaf9f0171e9517f40e41"')


def _params(header):
    assert header.startswith("Digest ")
    return M.parse_challenge(header)


def test_digest_rfc2617_example_qop_auth():
    challenge = M.parse_challenge(RFC2617_CHALLENGE)
    assert challenge["qop"] == "auth,auth-int"
    header = M.digest_response(challenge, cnonce="0a4f113b", nc=1, **RFC2617)
    params = _params(header)
    assert params["response"] == "6629fae49393a05397450978507c4ef1"  # RFC 2617 §3.5
    assert (params["qop"], params["nc"], params["cnonce"]) == ("auth", "00000001", "0a4f113b")
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert params["username"] == "Mufasa" and params["uri"] == "/dir/index.html"


def test_digest_without_qop_is_rfc2069_form():
    challenge = M.parse_challenge('Digest realm="testrealm@host.com", '
                                  'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"')
    params = _params(M.digest_response(challenge, **RFC2617))
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha1, ha2 = md5("Mufasa:testrealm@host.com:Circle Of Life"), md5("GET:/dir/index.html")
    assert params["response"] == md5(ha1 + ":dcd98b7102dd2f0e8b11d0f600bfb0c093:" + ha2)
    assert "qop" not in params and "cnonce" not in params and "nc" not in params


def test_digest_rfc7616_examples_md5_and_sha256():
    base = ('Digest realm="http-auth@example.org", qop="auth, auth-int", '
            'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
            'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
    args = dict(method="GET", uri="/dir/index.html", username="Mufasa",
                password="Circle of Life", cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
    md5 = _params(M.digest_response(M.parse_challenge(base + ", algorithm=MD5"), **args))
    assert md5["response"] == "8ca523f5e9506fed4657c9700eebdbec"
    sha = _params(M.digest_response(M.parse_challenge(base + ", algorithm=SHA-256"), **args))
    assert sha["response"] == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert sha["algorithm"] == "SHA-256"


def test_digest_md5_sess_and_auth_int_follow_the_formulas():
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    challenge = M.parse_challenge('Digest realm="r", nonce="n", qop="auth-int", '
                                  'algorithm=MD5-sess')
    params = _params(M.digest_response(challenge, method="MESSAGE", uri="sip:a@b", username="u",
                                       password="p", cnonce="c", nc=2, body=b"\x00body"))
    ha1 = md5("%s:n:c" % md5("u:r:p"))
    ha2 = md5("MESSAGE:sip:a@b:" + hashlib.md5(b"\x00body").hexdigest())
    assert params["qop"] == "auth-int" and params["nc"] == "00000002"
    assert params["response"] == md5("%s:n:00000002:c:auth-int:%s" % (ha1, ha2))


def test_digest_quoting_and_refusals():
    challenge = M.parse_challenge(r'Digest realm="a \"q\" b", nonce="x,y"')
    assert challenge == {"realm": 'a "q" b', "nonce": "x,y"}
    params = _params(M.digest_response(challenge, method="M", uri="sip:x", username='u"1',
                                       password="p"))
    assert params["realm"] == 'a "q" b' and params["username"] == 'u"1'
    for bad in ['Basic realm="x"', "Digest realm=\"x\"", 'Digest nonce="x', "Digest =1",
                "", "Digest realm"]:
        with pytest.raises(M.SIPError):
            M.parse_challenge(bad)
    for extra in [', algorithm=SHA-1', ', qop="auth-conf"']:
        with pytest.raises(M.SIPError):
            M.digest_response(M.parse_challenge('Digest nonce="n"' + extra), method="M",
                              uri="sip:x", username="u", password="p", cnonce="c")
    with pytest.raises(M.SIPError):  # qop needs a cnonce
        M.digest_response(M.parse_challenge('Digest nonce="n", qop="auth"'), method="M",
                          uri="sip:x", username="u", password="p")


# -- properties -----------------------------------------------------------------

_token = st.text(alphabet=string.ascii_letters + string.digits + "-.!%*_+`'~",
                 min_size=1, max_size=12)
_value = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40).map(
    str.strip)
_headers = st.lists(st.tuples(_token.filter(lambda n: n.lower() not in ("content-length", "l")),
                              _value), max_size=8)


@settings(max_examples=200, deadline=None)
@given(method=_token, uri=st.from_regex(r"sips?:[a-z0-9+.@]{1,20}", fullmatch=True),
       headers=_headers, body=st.binary(max_size=300))
def test_request_round_trip(method, uri, headers, body):
    data = M.encode(M.Request(method, uri, headers, body))
    message = M.parse(data)
    assert (message.method, message.uri, message.body) == (method, uri, body)
    assert [v for n, v in message.headers if n != "Content-Length"] == [v for n, v in headers]
    assert M.encode(message) == M.encode(M.Request(method, uri, message.headers, body))
    assert [m.body for m in M.SIPFramer().feed(data + data)] == [body, body]


@settings(max_examples=200, deadline=None)
@given(code=st.integers(100, 699), reason=_value, headers=_headers,
       body=st.binary(max_size=300))
def test_response_round_trip(code, reason, headers, body):
    message = M.parse(M.encode(M.Response(code, reason, headers, body)))
    assert (message.code, message.reason, message.body) == (code, reason, body)


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_sip_error(data):
    for attempt in (lambda: M.parse(data), lambda: M.SIPFramer().feed(data)):
        try:
            attempt()
        except M.SIPError:
            pass


@settings(max_examples=300, deadline=None)
@given(cut=st.integers(0, len(SPEC_MESSAGE)), flip=st.integers(0, len(SPEC_MESSAGE) - 1),
       byte=st.integers(0, 255))
def test_mutated_spec_message_raises_only_sip_error(cut, flip, byte):
    mutated = bytearray(SPEC_MESSAGE)
    mutated[flip] = byte
    for data in (bytes(mutated), SPEC_MESSAGE[:cut]):
        try:
            M.parse(data)
        except M.SIPError:
            pass
        try:
            M.SIPFramer().feed(data)
        except M.SIPError:
            pass


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80))
def test_header_helpers_raise_only_sip_error(text):
    for helper in (M.parse_via, M.parse_cseq, M.parse_name_addr, M.parse_challenge):
        try:
            helper(text)
        except M.SIPError:
            pass


@pytest.mark.parametrize("value", ["\x1c39", "39\x1f", "\u200939", "3\x0b9"])
def test_content_length_with_non_sip_whitespace_is_a_sip_error(value):
    # found by the mutation test above: Python's \s matched U+001C, int() did not
    head = SPEC_HEAD.replace(b"Content-Length: %d" % len(PACKAGE0), b"Content-Length: " + value.encode())
    assert head != SPEC_HEAD
    with pytest.raises(M.SIPError, match="Content-Length"):
        M.parse(head + PACKAGE0)


def test_content_length_with_sip_whitespace_is_accepted():
    head = SPEC_HEAD.replace(b"Content-Length: %d" % len(PACKAGE0), b"Content-Length: \t%d \t" % len(PACKAGE0))
    assert M.parse(head + PACKAGE0).body == PACKAGE0
