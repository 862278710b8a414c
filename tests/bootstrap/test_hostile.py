"""Hostile input: random or mangled pushes raise only the bootstrap errors, and apply nothing."""

from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.bootstrap import BootstrapPushError, push_pdu, read_push, secure, sec
from dmgateway.client.bootstrap import BootstrapError, accept_bootstrap
from dmgateway.notify import sms
from dmgateway.tree.standard import find_accounts, standard_tree
from tests.bootstrap import vectors as v

PUSH = push_pdu(secure("dm", v.DM_DOC, "USERPIN", pin="1234"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_not_a_push(data):
    try:
        read_push(data)
    except BootstrapPushError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(PUSH) - 1), st.integers(0, 255))
def test_a_changed_byte_is_rejected_and_nothing_applied(index, value):
    data = bytearray(PUSH)
    if data[index] == value:
        return
    data[index] = value
    tree = standard_tree()
    try:
        accept_bootstrap(tree, bytes(data), pin="1234")
    except BootstrapError:
        assert find_accounts(tree) == []
        return
    # only changes the MAC does not cover may pass: the TID or a header byte read the same way
    assert read_push(bytes(data)).document == v.DM_DOC


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=140), max_size=6))
def test_random_sms_parts(parts):
    try:
        accept_bootstrap(standard_tree(), parts, pin="1234")
    except BootstrapError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.one_of(st.none(), st.text(max_size=40)), st.one_of(st.none(), st.text(max_size=20)))
def test_verify_mac_never_raises(mac, pin, imsi):
    for method in sec.METHODS:
        assert sec.verify_mac(method, v.CP_DOC, mac, pin=pin, imsi=imsi) in (True, False)


def test_the_parts_in_any_order():
    parts = sms.segment(PUSH, reference=9)
    account = accept_bootstrap(standard_tree(), list(reversed(parts)), pin="1234")
    assert account.server_id == "com.example.dms"
