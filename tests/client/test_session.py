"""ClientSession: the spec's example session, authentication both ways, session end."""

import pytest

from dmgateway.client.account import GenericAlert, session_id_for_notification
from dmgateway.client.session import HMAC_HEADER, ClientSession, SessionError
from dmgateway.codec import WBXML, decode_message, encode_message
from dmgateway.codec import syncml as sm
from dmgateway.codec import xml

from . import spec_session as spec
from .support import (
    CLIENT_NAME,
    CLIENT_NONCE,
    CLIENT_SECRET,
    DEVICE_ID,
    NEXT_CLIENT_NONCE,
    NEXT_SERVER_NONCE,
    RESP_URI,
    SERVER_NAME,
    SERVER_NONCE,
    SERVER_SECRET,
    SERVER_URL,
    XML_HEADERS,
    b64,
    basic_cred,
    begin,
    chal_xml,
    command_xml,
    decode,
    follow,
    hdr_status_xml,
    item_xml,
    mac,
    make_account,
    make_session,
    md5_cred,
    md5_cred_xml,
    seeded_random,
    server_hmac_header,
    server_message,
    status_xml,
    statuses,
)


def spec_session(**options):
    """The client of dm-protocol §10: it hands out the 8-byte server nonce 11..88."""
    nonces = [NEXT_SERVER_NONCE]
    options.setdefault("max_msg_size", 10000)
    options.setdefault("max_obj_size", 524288)
    return make_session(random_bytes=lambda n: nonces.pop(0), nonce_size=8, **options)


# -- the example session of dm-protocol §10 -----------------------------------

def test_package1_is_the_spec_example():
    session = spec_session()
    request = session.start()
    assert request.url == SERVER_URL
    assert request.headers["Content-Type"] == "application/vnd.syncml.dm+xml"
    assert HMAC_HEADER not in request.headers
    msg = decode(request)
    assert msg.hdr.cred.data == "Q3r6Z+uEU9+S9G0eEFL04w=="
    assert msg == xml.decode(spec.PKG1_CLIENT_INIT)


def test_package3_is_the_spec_example():
    account = make_account()
    session = spec_session(account=account)
    session.start()
    request = session.receive(spec.PKG2_SERVER_INIT, XML_HEADERS)
    assert request.url == RESP_URI
    assert decode(request) == xml.decode(spec.PKG3_CLIENT_RESPONSE)
    assert session.server_authenticated and session.client_authenticated
    # the server was authenticated, so its NextNonce is kept for the next session
    assert account.client.nonce == NEXT_CLIENT_NONCE
    # ... and the nonce we handed out is the server's from now on
    assert account.server.nonce == NEXT_SERVER_NONCE
    tree = session.tree
    assert tree.read("./DMAcc/example/AppAuth/1/AAuthData").value == NEXT_CLIENT_NONCE
    assert tree.read("./DMAcc/example/AppAuth/2/AAuthData").value == NEXT_SERVER_NONCE
    assert tree.read("./DMAcc/example/Name").value == "Example Management Server"


def test_package4_ends_the_session():
    session = spec_session()
    session.start()
    session.receive(spec.PKG2_SERVER_INIT, XML_HEADERS)
    assert session.receive(spec.PKG4_SERVER_CLOSE, XML_HEADERS) is None
    assert session.finished and session.outcome == "completed" and session.error is None
    assert [direction for direction, _ in session.transcript] == ["out", "in", "out", "in"]
    assert session.counters["messages_sent"] == 2
    assert session.counters["messages_received"] == 2
    assert session.executed == [("Get", "./DevDetail/SwV", 200),
                                ("Replace", "./DMAcc/example/Name", 200)]
    with pytest.raises(SessionError):
        session.receive(spec.PKG4_SERVER_CLOSE, XML_HEADERS)


def test_the_example_session_in_wbxml():
    session = spec_session(encoding=WBXML)
    request = session.start()
    assert request.headers["Content-Type"] == "application/vnd.syncml.dm+wbxml"
    assert request.body[:1] == b"\x03"  # WBXML 1.3
    msg, encoding = decode_message(request.body)
    assert encoding == WBXML
    assert msg == xml.decode(spec.PKG1_CLIENT_INIT)
    pkg2 = encode_message(xml.decode(spec.PKG2_SERVER_INIT), WBXML)
    request = session.receive(pkg2, {"content-type": "application/vnd.syncml.dm+wbxml"})
    assert decode_message(request.body)[0] == xml.decode(spec.PKG3_CLIENT_RESPONSE)


def test_start_twice_and_receive_before_start_are_refused():
    session = make_session()
    with pytest.raises(SessionError):
        session.receive(spec.PKG2_SERVER_INIT, XML_HEADERS)
    session.start()
    with pytest.raises(SessionError):
        session.start()


# -- package 1 ---------------------------------------------------------------

def test_server_initiated_session_id_and_alert():
    assert session_id_for_notification(0x00AF) == "AF"
    assert session_id_for_notification(0x1A2) == "1A2"
    assert session_id_for_notification(0) == "0"
    with pytest.raises(ValueError):
        session_id_for_notification(0x10000)
    session = make_session(session_id=session_id_for_notification(0xAF))
    msg = decode(session.start(alert=sm.ALERT_SERVER_INITIATED))
    assert msg.hdr.session_id == "AF"
    assert msg.body[0].data == 1200


def test_random_session_id_without_leading_zeros():
    session = ClientSession(make_account(), random_bytes=lambda n: b"\x00\x2a"[:n])
    assert session.session_id == "2A"


def test_generic_alerts_in_package1():
    alert = GenericAlert(
        type="Reversed-Domain-Name: org.openmobilealliance.dm.firmwareupdate.download",
        format="int", data="200", source="./FUMO/fw1", mark="critical", correlator="abc123")
    session = make_session()
    msg = decode(session.start(generic_alerts=[alert, GenericAlert("Content-Type: text/plain",
                                                                   "chr", "hello")]))
    names = [(cmd.NAME, getattr(cmd, "data", None)) for cmd in msg.body if cmd.NAME == "Alert"]
    assert names == [("Alert", 1201), ("Alert", 1226), ("Alert", 1226)]
    first = msg.body[2]
    assert first.correlator == "abc123"
    item = first.items[0]
    assert item.source.loc_uri == "./FUMO/fw1"
    assert (item.meta.type, item.meta.format, item.meta.mark) == (alert.type, "int", "critical")
    assert item.data == "200"
    second = msg.body[3].items[0]
    assert second.source is None and second.meta.mark is None and msg.body[3].correlator is None
    assert [cmd.cmd_id for cmd in msg.body] == ["1", "2", "3", "4"]


def test_generic_alert_later_in_the_session():
    session = make_session()
    begin(session, command_xml("Get", 4, item_xml("./DevInfo/Man")))
    session.send_generic_alert(GenericAlert("Content-Type: text/plain", "chr", "done",
                                            correlator="c-1"))
    reply = follow(session, 2)
    alerts = decode(reply).commands(sm.Alert)
    assert [(a.data, a.correlator) for a in alerts] == [(1226, "c-1")]
    assert decode(reply).final


def test_client_event_1224():
    session = make_session()
    session.send_client_event("com.example/Battery", "chr", "low")  # before the start
    alerts = decode(session.start()).commands(sm.Alert)
    assert [a.data for a in alerts] == [1201, 1224]
    item = alerts[1].items[0]
    assert (item.meta.type, item.meta.format, item.data) == ("com.example/Battery", "chr", "low")
    session = make_session()
    assert begin(session, command_xml("Get", 4, item_xml("./DevInfo/Man"))) is not None
    session.send_client_event("com.microsoft/MDM/LoginStatus", "chr", "user")
    alerts = decode(follow(session, 2)).commands(sm.Alert)
    assert [(a.data, a.items[0].data) for a in alerts] == [(1224, "user")]
    with pytest.raises(ValueError):
        session.send_client_event("", "chr", "x")


def test_server_message_over_our_max_msg_size_is_counted():
    session = make_session(max_msg_size=1024)
    reply = begin(session, command_xml("Get", 4, item_xml("./DevInfo/Man")) + "<!-- %s -->" % (
        "x" * 1200,))
    assert reply is not None  # still answered
    assert session.counters["oversized_messages"] == 1
    assert any("over our MaxMsgSize 1024" in line for line in session.log)


def test_no_credentials_when_the_account_has_none():
    session = make_session(make_account(client_scheme="none", server_scheme="none"))
    msg = decode(session.start())
    assert msg.hdr.cred is None and msg.hdr.source.loc_name is None
    assert msg.hdr.meta is None


# -- our credentials: challenges ------------------------------------------------

def challenge_message(code, scheme_type, nonce, msg_id=1, cred=""):
    body = (hdr_status_xml(1, code, chal_xml(scheme_type, nonce))
            + status_xml(2, 1, 1, "Alert", 407) + status_xml(3, 1, 2, "Replace", 407))
    return server_message(body, msg_id, cred=cred, resp_uri=RESP_URI)


def test_md5_challenge_restarts_package1_with_the_new_nonce():
    account = make_account()
    session = make_session(account)
    session.start()
    new_nonce = bytes(range(100, 116))
    request = session.receive(challenge_message(401, "syncml:auth-md5", new_nonce), XML_HEADERS)
    msg = decode(request)
    assert request.url == RESP_URI
    assert msg.hdr.msg_id == "2" and msg.hdr.session_id == "1A2"
    assert msg.hdr.target.loc_uri == RESP_URI
    assert msg.hdr.cred.data == md5_cred(CLIENT_NAME, CLIENT_SECRET, new_nonce)
    assert msg.hdr.source.loc_name == CLIENT_NAME
    assert msg.hdr.meta is None  # no MaxMsgSize/MaxObjSize configured
    # package 1 again: Alert + DevInfo, after the Status for the server's SyncHdr
    assert [cmd.NAME for cmd in msg.body] == ["Status", "Alert", "Replace"]
    assert msg.body[1].data == 1201
    assert msg.final
    # the challenge came without server credentials: we challenge back ...
    hdr_status = msg.body[0]
    assert hdr_status.data == 407 and hdr_status.cmd == "SyncHdr" and hdr_status.cmd_ref == "0"
    assert hdr_status.chal.meta.type == "syncml:auth-md5"
    assert hdr_status.chal.meta.next_nonce == b64(account.server.nonce)
    # ... and the nonce of an unauthenticated server is used but not stored
    assert account.client.nonce == CLIENT_NONCE
    assert session.counters["auth_retries"] == 1

    # the server now proves itself with our nonce and accepts us
    body = (hdr_status_xml(2, 212, chal_xml("syncml:auth-md5", NEXT_CLIENT_NONCE))
            + status_xml(2, 2, 2, "Alert", 200) + status_xml(3, 2, 3, "Replace", 200))
    reply = session.receive(server_message(body, 2, cred=md5_cred_xml(account.server.nonce),
                                           loc_name=SERVER_NAME), XML_HEADERS)
    assert reply is None and session.outcome == "completed"
    assert account.client.nonce == NEXT_CLIENT_NONCE


def test_challenge_nonce_is_stored_once_the_server_authenticates():
    account = make_account()
    session = make_session(account)
    session.start()
    new_nonce = bytes(range(50, 66))
    session.receive(challenge_message(401, "syncml:auth-md5", new_nonce), XML_HEADERS)
    assert account.client.nonce == CLIENT_NONCE
    body = (hdr_status_xml(2, 212) + status_xml(2, 2, 2, "Alert", 200)
            + command_xml("Get", 4, item_xml("./DevInfo/Mod")))
    session.receive(server_message(body, 2, cred=md5_cred_xml(account.server.nonce)),
                    XML_HEADERS)
    assert account.client.nonce == new_nonce


def test_challenge_for_basic_switches_scheme():
    session = make_session()
    session.start()
    request = session.receive(challenge_message(407, "syncml:auth-basic", None), XML_HEADERS)
    cred = decode(request).hdr.cred
    assert cred.meta.type == "syncml:auth-basic"
    assert cred.data == basic_cred(CLIENT_NAME, CLIENT_SECRET) == "ZG1jbGllbnQwMTpzM2NyM3Qh"


def test_repeated_challenges_give_up():
    session = make_session(max_auth_attempts=2)
    session.start()
    assert session.receive(challenge_message(401, "syncml:auth-md5", b"n1"), XML_HEADERS)
    assert session.receive(challenge_message(401, "syncml:auth-md5", b"n2", 2), XML_HEADERS) is None
    assert session.outcome == "failed"
    assert "rejected our credentials" in session.error


def test_challenge_for_an_unknown_scheme_gives_up():
    session = make_session()
    session.start()
    assert session.receive(challenge_message(401, "syncml:auth-X509", b"n"), XML_HEADERS) is None
    assert session.outcome == "failed"


def test_credentials_stop_after_212_and_continue_after_200():
    session = make_session()
    reply = begin(session, command_xml("Get", 4, item_xml("./DevInfo/Man")))
    assert decode(reply).hdr.cred is None
    session = make_session()
    session.start()
    body = (hdr_status_xml(1, 200, chal_xml("syncml:auth-md5", b"next"))
            + command_xml("Get", 4, item_xml("./DevInfo/Man")))
    reply = session.receive(server_message(body, 1, cred=md5_cred_xml(SERVER_NONCE)), XML_HEADERS)
    assert decode(reply).hdr.cred.data == md5_cred(CLIENT_NAME, CLIENT_SECRET, b"next")


def test_hmac_client_signs_every_message():
    account = make_account(client_scheme="hmac")
    session = make_session(account)
    request = session.start()
    msg = decode(request)
    assert msg.hdr.cred is None and msg.hdr.source.loc_name == CLIENT_NAME
    assert request.headers[HMAC_HEADER] == 'algorithm=MD5, username="%s", mac=%s' % (
        CLIENT_NAME, mac(CLIENT_NAME, CLIENT_SECRET, CLIENT_NONCE, request.body))
    # the server answers 200 with a new nonce for the next message (fixture 08 style)
    body = (hdr_status_xml(1, 200, chal_xml("syncml:auth-MAC", NEXT_CLIENT_NONCE))
            + status_xml(2, 1, 1, "Alert", 200)
            + command_xml("Get", 3, item_xml("./DevDetail/FwV")))
    request = session.receive(server_message(body, 1, cred=md5_cred_xml(SERVER_NONCE)),
                              XML_HEADERS)
    assert request.headers[HMAC_HEADER].endswith(
        "mac=" + mac(CLIENT_NAME, CLIENT_SECRET, NEXT_CLIENT_NONCE, request.body))
    assert account.client.nonce == NEXT_CLIENT_NONCE  # the server is authenticated
    assert statuses(request)[:2] == [("SyncHdr", "0", 212), ("Get", "3", 200)]


def test_hmac_challenge_switches_to_hmac():
    session = make_session()
    session.start()
    request = session.receive(challenge_message(401, "syncml:auth-MAC", b"\x01\x02"), XML_HEADERS)
    assert decode(request).hdr.cred is None
    assert request.headers[HMAC_HEADER].endswith(
        "mac=" + mac(CLIENT_NAME, CLIENT_SECRET, b"\x01\x02", request.body))


# -- the server's credentials ------------------------------------------------------

def test_wrong_server_credentials_get_401_and_nothing_runs():
    account = make_account()
    session = make_session(account)
    session.start()
    body = (hdr_status_xml(1, 212) + status_xml(2, 1, 1, "Alert", 200)
            + command_xml("Replace", 4, item_xml("./DMAcc/example/Name", "evil"))
            + command_xml("Delete", 5, item_xml("./DMAcc/example")))
    wrong = md5_cred_xml(b"wrong nonce")
    reply = session.receive(server_message(body, 1, cred=wrong), XML_HEADERS)
    msg = decode(reply)
    assert statuses(msg) == [("SyncHdr", "0", 401), ("Replace", "4", 407), ("Delete", "5", 407)]
    assert not msg.commands(sm.Results)
    chal = msg.body[0].chal
    assert chal.meta.type == "syncml:auth-md5"
    assert chal.meta.next_nonce == b64(account.server.nonce)
    assert account.server.nonce != SERVER_NONCE and len(account.server.nonce) == 16
    assert session.tree.read("./DMAcc/example/Name").value == ""
    assert session.tree.exists("./DMAcc/example")
    assert session.executed == []
    # retried with the nonce we handed out: accepted and executed
    reply = session.receive(server_message(body, 2, cred=md5_cred_xml(account.server.nonce)),
                            XML_HEADERS)
    assert statuses(reply) == [("SyncHdr", "0", 212), ("Replace", "4", 200), ("Delete", "5", 200)]
    assert not session.tree.exists("./DMAcc/example")


def test_missing_server_credentials_get_407():
    session = make_session()
    session.start()
    body = hdr_status_xml(1, 212) + command_xml("Get", 4, item_xml("./DevInfo/Man"))
    reply = session.receive(server_message(body, 1), XML_HEADERS)
    assert statuses(reply) == [("SyncHdr", "0", 407), ("Get", "4", 407)]
    assert not decode(reply).commands(sm.Results)


def test_server_with_wrong_password_never_gets_in():
    session = make_session(max_auth_attempts=3)
    session.start()
    body = hdr_status_xml(1, 212) + command_xml("Get", 4, item_xml("./DevInfo/Man"))
    for msg_id in (1, 2):
        nonce = session.account.server.nonce
        bad = ("<Cred><Meta><Type xmlns='syncml:metinf'>syncml:auth-md5</Type></Meta>"
               "<Data>%s</Data></Cred>" % (md5_cred(SERVER_NAME, "guess", nonce),))
        assert session.receive(server_message(body, msg_id, cred=bad), XML_HEADERS) is not None
    assert session.receive(server_message(body, 3, cred=bad), XML_HEADERS) is None
    assert session.outcome == "failed" and "failed authentication" in session.error
    assert session.executed == []


def test_no_bare_status_and_chal_answer():
    """dm-security §2.3 rule 3: bad credentials, no challenge, no commands -> no answer."""
    session = make_session()
    session.start()
    body = hdr_status_xml(1, 212) + status_xml(2, 1, 1, "Alert", 200)
    assert session.receive(server_message(body, 1, cred=md5_cred_xml(b"stale")),
                           XML_HEADERS) is None
    assert session.outcome == "failed"


def test_basic_server_credentials():
    session = make_session(make_account(server_scheme="basic"))
    session.start()
    cred = ("<Cred><Meta><Type xmlns='syncml:metinf'>syncml:auth-basic</Type>"
            "<Format xmlns='syncml:metinf'>b64</Format></Meta><Data>%s</Data></Cred>"
            % (basic_cred(SERVER_NAME, SERVER_SECRET),))
    body = hdr_status_xml(1, 212) + command_xml("Get", 4, item_xml("./DevInfo/Man"))
    reply = decode(session.receive(server_message(body, 1, cred=cred), XML_HEADERS))
    assert reply.body[0].data == 212 and reply.body[0].chal is None


def test_hmac_server_is_checked_on_every_message():
    account = make_account(server_scheme="hmac")
    session = make_session(account)
    session.start()
    body = hdr_status_xml(1, 212) + command_xml("Get", 4, item_xml("./DevInfo/Man"))
    message = server_message(body, 1, final=True)
    reply = session.receive(message, {HMAC_HEADER: server_hmac_header(SERVER_NONCE, message)})
    hdr_status = decode(reply).body[0]
    assert hdr_status.data == 200
    assert hdr_status.chal.meta.type == "syncml:auth-MAC"
    given = account.server.nonce
    assert hdr_status.chal.meta.next_nonce == b64(given)
    # the next message must be signed with the nonce we gave
    message = server_message(hdr_status_xml(2, 200) + command_xml(
        "Get", 2, item_xml("./DevInfo/Mod")), 2)
    reply = session.receive(message, {HMAC_HEADER: server_hmac_header(SERVER_NONCE, message)})
    assert statuses(reply)[:2] == [("SyncHdr", "0", 401), ("Get", "2", 407)]
    message = server_message(hdr_status_xml(3, 200) + command_xml(
        "Get", 2, item_xml("./DevInfo/Mod")), 3)
    reply = session.receive(message, {HMAC_HEADER: server_hmac_header(account.server.nonce,
                                                                      message).encode()})
    assert statuses(reply)[:2] == [("SyncHdr", "0", 200), ("Get", "2", 200)]


def test_transport_authenticated_server_needs_no_credentials():
    session = make_session(make_account(server_scheme="none"))
    session.start()
    body = hdr_status_xml(1, 212) + command_xml("Get", 4, item_xml("./DevInfo/Man"))
    reply = decode(session.receive(server_message(body, 1), XML_HEADERS))
    assert reply.body[0].data == 200 and reply.body[0].chal is None


# -- the end of a session --------------------------------------------------------

def test_server_abort_ends_without_answer():
    session = make_session()
    assert begin(session, "<Alert><CmdID>4</CmdID><Data>1223</Data></Alert>") is None
    assert session.outcome == "aborted"


def test_undecodable_server_message_fails_the_session():
    session = make_session()
    session.start()
    assert session.receive(b"<SyncML><oops", XML_HEADERS) is None
    assert session.outcome == "failed" and "undecodable" in session.error
    session = make_session()
    session.start()
    assert session.receive(b"", {}) is None and session.outcome == "failed"


def test_status_only_package_ends_the_session():
    session = make_session()
    assert begin(session) is None
    assert session.outcome == "completed"
    assert [s.cmd for s in session.server_statuses] == ["SyncHdr", "Alert", "Replace"]


def test_respuri_is_followed():
    session = make_session()
    begin(session, command_xml("Get", 4, item_xml("./DevInfo/Man")))
    body = hdr_status_xml(2, 200) + command_xml("Get", 2, item_xml("./DevInfo/Mod"))
    other = SERVER_URL + "/next?x=1"
    request = session.receive(server_message(body, 2, resp_uri=other), XML_HEADERS)
    assert request.url == other and decode(request).hdr.target.loc_uri == other


def test_abort_from_outside():
    session = make_session()
    session.start()
    session.abort("transport: timeout")
    assert session.finished and session.outcome == "failed"
    assert session.error == "transport: timeout"
    session.abort("again")
    assert session.error == "transport: timeout"


def test_seeded_random_is_reproducible():
    assert seeded_random(3)(16) == seeded_random(3)(16)
    first = make_session()
    second = make_session()
    for session in (first, second):
        session.start()
        session.receive(server_message(hdr_status_xml(1, 212) + command_xml(
            "Get", 4, item_xml("./DevInfo/Man")), 1, cred=md5_cred_xml(b"bad")), XML_HEADERS)
    assert first.account.server.nonce == second.account.server.nonce
    assert first.transcript[-1][1] == second.transcript[-1][1]
    assert DEVICE_ID == first.transcript[0][1].hdr.source.loc_uri
    assert SERVER_SECRET not in repr(first.account)
