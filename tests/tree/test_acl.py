import pytest

from dmgateway.tree.acl import acl_allows, acl_without_server, format_acl, parse_acl
from dmgateway.tree.uri import TreeError

SPEC = "Add=www.sonera.fi-8765&Delete=www.sonera.fi-8765&Replace=www.sonera.fi-8765+321_ibm.com&Get=*"


def test_spec_example_round_trips():
    acl = parse_acl(SPEC)
    assert acl["Replace"] == ("www.sonera.fi-8765", "321_ibm.com")
    assert acl["Get"] == ("*",)
    assert format_acl(acl) == SPEC
    assert acl_allows(acl, "Get", "anyone")
    assert acl_allows(acl, "Replace", "321_ibm.com")
    assert not acl_allows(acl, "Delete", "321_ibm.com")
    assert not acl_allows(acl, "Exec", "www.sonera.fi-8765")


def test_tolerant_reading():
    assert parse_acl("") == {}
    assert parse_acl(None) == {}
    assert parse_acl(" Get = a + b & Get=c&Replace=") == {"Get": ("a", "b", "c")}
    assert parse_acl("Get=a+*") == {"Get": ("*",)}  # * wins
    assert parse_acl(b"Get=*") == {"Get": ("*",)}


@pytest.mark.parametrize("bad", ["Copy=a", "Get", "Fetch=*", "Get=a*b", "Get=a b", b"\xff"])
def test_bad_acl_is_400(bad):
    with pytest.raises(TreeError) as info:
        parse_acl(bad)
    assert info.value.status == 400


def test_removing_a_server():
    acl = parse_acl("Get=a+b&Replace=a")
    assert acl_without_server(acl, "a") == {"Get": ("b",)}
    assert acl_without_server(parse_acl("Add=a&Get=*"), "a", root=True) == {"Add": ("*",),
                                                                             "Get": ("*",)}
