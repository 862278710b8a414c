"""The delegation wire format: round trips, the schema, hostile input."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from dmgateway.delegation import messages as m
from dmgateway.delegation.grants import delegated_acl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TID = "0123456789abcdef0123456789abcdef"


def test_packaged_schema_is_the_documented_one():
    with open(os.path.join(ROOT, "docs", "delegation-1.xsd"), "rb") as f:
        documented = f.read()
    with open(m._SCHEMA_PATH, "rb") as f:
        assert f.read() == documented
    etree.XMLSchema(etree.fromstring(documented))


def test_request_round_trip():
    request = m.Request(TID, "dms-a", "dms-b", (m.Device("IMEI:1", "Acme", "X1"), m.Device("IMEI:2")),
                        ("./Vendor/X", "./FUMO"), "partial", "temporary", 1900000000.0)
    body = m.serialize(request)
    assert body.startswith(b"<?xml") and b"urn:dmgateway:delegation:1" in body
    assert m.parse(body) == request


def test_response_and_notification_round_trip():
    account = m.Account("IMEI:1", "dms-b", "https://b.example/dm", m.Auth("md5", "dev1", "s1"),
                        m.Auth("md5", "dms-b", "s2"))
    for message in (m.Response(TID, True, None, (account,)),
                    m.Response(TID, False, m.Reason("device_known", "already managed")),
                    m.Notification(TID, "dms-a", "device-ready"),
                    m.Notification(TID, "dms-a", "failed", m.Reason("device_refused", "425"))):
        assert m.parse(m.serialize(message)) == message
    assert "s1" not in repr(account)  # secrets stay out of reprs (and so of logs)


@pytest.mark.parametrize("body,reason", [
    (b"", "well-formed"),
    (b"<a/>", "schema"),
    (b"<DelegationRequest xmlns='urn:dmgateway:delegation:1' version='1.0'/>", "schema"),
    (b"<!DOCTYPE x [<!ENTITY e 'boom'>]><x>&e;</x>", "DTD"),
    (b"<DelegationNotification xmlns='urn:dmgateway:delegation:1' version='2.0'>"
     b"<TransactionId>" + TID.encode() + b"</TransactionId><FromServerID>a</FromServerID>"
     b"<State>completed</State></DelegationNotification>", "schema"),
    (b"<DelegationNotification xmlns='urn:dmgateway:delegation:1' version='1.0'>"
     b"<TransactionId>XYZ</TransactionId><FromServerID>a</FromServerID>"
     b"<State>completed</State></DelegationNotification>", "schema"),
    (b"<x>" + b"a" * (m.MAX_SIZE + 1) + b"</x>", "larger"),
])
def test_bad_documents_raise_message_error(body, reason):
    with pytest.raises(m.MessageError) as raised:
        m.parse(body)
    assert reason in str(raised.value)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_message_error(body):
    try:
        m.parse(body)
    except m.MessageError:
        pass


def test_serialize_refuses_what_would_not_validate():
    with pytest.raises(m.MessageError):
        m.serialize(m.Notification("not-hex", "dms-a", "completed"))
    with pytest.raises(m.MessageError):
        m.serialize(m.Request(TID, "dms a", "dms-b", (m.Device("d"),), ("./X",), "partial",
                              "temporary"))


@pytest.mark.parametrize("uri,expected", [
    (".", "."), ("./", "."), ("./Vendor/X", "./Vendor/X"), ("./Vendor/X/", "./Vendor/X")])
def test_check_scope_accepts(uri, expected):
    assert m.check_scope(uri) == expected


@pytest.mark.parametrize("uri", ["Vendor/X", "./Vendor/../X", "./a b", "./X?prop=ACL", "/X",
                                 "./" + "a/" * 200, 5])
def test_check_scope_refuses(uri):
    with pytest.raises(m.MessageError):
        m.check_scope(uri)


def test_delegated_acl():
    assert delegated_acl("Get=*&Replace=dms-a", "dms-a", "dms-b", "partial") == \
        "Add=dms-b&Delete=dms-b&Exec=dms-b&Get=dms-b&Replace=dms-b"
    assert delegated_acl("Get=*&Replace=dms-a", "dms-a", "dms-b", "full") == \
        "Add=dms-a+dms-b&Delete=dms-a+dms-b&Exec=dms-a+dms-b&Get=*&Replace=dms-a+dms-b"
    assert delegated_acl("", "dms-a", "dms-b", "full").count("dms-b") == 5
    assert delegated_acl("not an acl", "dms-a", "dms-b", "full").count("dms-b") == 5


def test_names_outside_the_schema_never_reach_lxml(monkeypatch):
    # libxml2 keeps every name it parses for good: invented names are refused
    # by the expat pre-pass, before lxml could keep them
    def no_lxml(*args, **kwargs):
        raise AssertionError("lxml parsed a document with unknown names")

    monkeypatch.setattr(m.etree, "fromstring", no_lxml)
    for body in (
        b"<DelegationRequest xmlns='urn:dmgateway:delegation:1' version='1.0'><Invented1/></DelegationRequest>",
        b"<DelegationRequest xmlns='urn:dmgateway:delegation:1' version='1.0' invented2='x'/>",
        b"<DelegationRequest xmlns='urn:other' version='1.0'/>",
    ):
        with pytest.raises(m.MessageError, match="unknown name"):
            m.parse(body)
