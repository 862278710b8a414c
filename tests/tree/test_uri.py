"""URI rules of dm-tree-objects §1.1."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.tree.uri import TreeError, URI, UriLimits, join, normalize, parse_uri


@pytest.mark.parametrize("uri, segments", [
    (".", ()),
    ("./DMAcc", ("DMAcc",)),
    ("DMAcc", ("DMAcc",)),
    ("./DMAcc/x/AppAddr", ("DMAcc", "x", "AppAddr")),
    ("DMAcc/x", ("DMAcc", "x")),
    ("./A/my%20node", ("A", "my node")),
    ("./A/caf%C3%A9", ("A", "caf\u00e9")),
    ("./A/100%", ("A", "100%")),            # a lone % is kept
    ("./A/.hidden", ("A", ".hidden")),       # '.' inside names is fine
    ("./A/IMEI:490154203237518", ("A", "IMEI:490154203237518")),
])
def test_valid(uri, segments):
    assert parse_uri(uri).segments == segments


@pytest.mark.parametrize("uri", [
    "", "./", "./DMAcc/", "/DMAcc", "./A//B", "A/./B", "A/../B", "..", "./..", "A/.",
    "././A", "./A/\x00", "./A\nB", "./A/%2F", "./A/%FF", b"./\xff",
])
def test_malformed_is_414(uri):
    with pytest.raises(TreeError) as info:
        parse_uri(uri)
    assert info.value.status == 414


def test_same_node_with_and_without_dot_slash():
    assert parse_uri("./DMAcc/x") == parse_uri("DMAcc/x")
    assert normalize("DMAcc/x") == "./DMAcc/x"
    assert normalize(".") == "."


def test_queries():
    assert parse_uri("./DMAcc/x?prop=ACL") == URI(("DMAcc", "x"), prop="ACL")
    assert parse_uri(".?list=TNDS-Format") == URI((), list="TNDS-Format")
    assert normalize("A?list=Struct") == "./A?list=Struct"
    for bad in ("./A?foo=bar", "./A?prop=", "./A?prop", "./A?"):
        with pytest.raises(TreeError) as info:
            parse_uri(bad)
        assert info.value.status == 406


def test_limits():
    limits = UriLimits(max_depth=3, max_tot_len=20, max_seg_len=5)
    assert parse_uri("./A/B/C", limits).segments == ("A", "B", "C")
    for bad in ("./A/B/C/D", "./ABCDEF", "./A/B?prop=ACLXXXXXXXXXX"):
        with pytest.raises(TreeError) as info:
            parse_uri(bad, limits)
        assert info.value.status == 414
    # MaxTotLen counts the property suffix; MaxSegLen the decoded name
    assert parse_uri("./A/%41%42", limits).segments == ("A", "AB")
    assert len("./A?prop=ACL") <= 20
    with pytest.raises(ValueError):
        UriLimits(max_depth=70000)


def test_join_escapes_what_needs_it():
    assert join(("A", "my node", "a/b", "x?y")) == "./A/my%20node/a%2Fb/x%3Fy"
    assert join(()) == "."
    u = parse_uri(join(("A", "caf\u00e9", "50%")))
    assert u.segments == ("A", "caf\u00e9", "50%")


def test_parent_child():
    u = parse_uri("./A/B")
    assert u.parent.path == "./A" and u.child("C").path == "./A/B/C"
    assert u.is_under(parse_uri("./A")) and not parse_uri("./A").is_under(u)
    with pytest.raises(TreeError):
        parse_uri(".").parent


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.binary(), st.text(alphabet="./?%=AB\u00e9\x00 +-").map(str)))
def test_random_uris_raise_only_tree_errors(uri):
    try:
        u = parse_uri(uri, UriLimits(4, 40, 8))
    except TreeError as error:
        assert error.status in (406, 414)
    else:
        assert parse_uri(u.path).segments == u.segments  # normalised form reads back
