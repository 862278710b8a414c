"""Package #0 on the device side, with the vectors of dm-notification §2.1."""

import pytest

from dmgateway.client.notification import (
    NotificationError,
    accept_notification,
    parse_notification,
    verify_notification,
)

from .support import SERVER_NONCE, make_account, make_session

PACKAGE0 = bytes.fromhex(
    "75de829554b9780e661638bafb45118e02f800000012340f636f6d2e6578616d706c652e646d73")
DIGEST_ZERO_NONCE = bytes.fromhex("90d25dd4db57962f73d5f3ad9c5f745a")
DIGEST_TEXT_NONCE = bytes.fromhex("5d6f6b3b0098966b08ab5b6f30ebe2c9")
SPEC_HEADER = bytes.fromhex("02d0000000123412")  # version 11, ui 1, initiator 0, id 0x1234


def test_parse_the_vector():
    package = parse_notification(PACKAGE0)
    note = package.notification
    assert (note.version, note.ui_mode, note.initiator) == (11, 3, 1)
    assert note.push_session_id == 0x1234 and note.syncml_session_id == "1234"
    assert note.server_id == "com.example.dms" and note.body == b""
    assert package.trigger == PACKAGE0[16:] and len(package.trigger) == 23
    spec = parse_notification(bytes(16) + SPEC_HEADER + b"com.mgmtsrv.manage" + b"\x01\x02")
    spec = spec.notification
    assert (spec.version, spec.ui_mode, spec.initiator) == (11, 1, 0)
    assert spec.server_id == "com.mgmtsrv.manage" and spec.body == b"\x01\x02"


@pytest.mark.parametrize("data", [
    PACKAGE0[:24],
    PACKAGE0[:24] + b"x",  # says 15 bytes of server id
    PACKAGE0[:23] + b"\x00" + b"x",  # no server id
    PACKAGE0[:23] + b"\x01" + b"\xff",
    "text",
])
def test_malformed(data):
    with pytest.raises(NotificationError):
        parse_notification(data)


def test_digest_with_the_stored_nonce():
    account = make_account()
    note = parse_notification(PACKAGE0)
    assert verify_notification(note, account) == (SERVER_NONCE, False)
    account.server.nonce = b"other"
    assert verify_notification(note, account, resync=False) is None


def test_resynchronisation_nonces():
    for digest, nonce in ((DIGEST_ZERO_NONCE, b"\x00" * 4), (DIGEST_TEXT_NONCE, b"0x00000000")):
        account = make_account(server_nonce=b"stale")
        trigger = accept_notification(digest + PACKAGE0[16:], [account])
        assert trigger.resynchronised and trigger.nonce == nonce
        assert account.server.nonce == nonce
        assert accept_notification(digest + PACKAGE0[16:], [make_account(server_nonce=b"stale")],
                                   resync=False) is None


def test_accept_checklist():
    other = make_account()
    other.server_id = "org.other"
    account = make_account()
    trigger = accept_notification(PACKAGE0, [other, account])
    assert trigger.account is account and trigger.session_id == "1234"
    assert not trigger.resynchronised and account.server.nonce == SERVER_NONCE
    assert accept_notification(PACKAGE0, [other]) is None  # unknown server
    assert accept_notification(PACKAGE0, [account], active_session_ids=["1234"]) is None
    assert accept_notification(b"\x00" * 16 + PACKAGE0[16:], [account]) is None  # bad digest
    assert accept_notification(PACKAGE0[:30], [account]) is None
    old = bytearray(PACKAGE0)
    old[16] = 0x00  # version 3
    assert accept_notification(bytes(old), [account]) is None


def test_trigger_opens_a_server_initiated_session():
    trigger = accept_notification(PACKAGE0, [make_account()])
    session = make_session(trigger.account, session_id=trigger.session_id)
    msg = session.start(alert=1200)
    assert b"<SessionID>1234</SessionID>" in msg.body and b"<Data>1200</Data>" in msg.body


def test_syncml_session_id_is_upper_hex_without_leading_zeros():
    from dmgateway.notify.package0 import Notification, ServerCredential, build

    account = make_account()
    cred = ServerCredential(account.server.name, account.server.nonce,
                            secret=account.server.secret)
    data = build(Notification(account.server_id, 0x00AB), cred)
    trigger = accept_notification(data, [account])
    assert trigger.session_id == "AB"
    # the same notification again while that session runs starts nothing
    assert accept_notification(data, [account], active_session_ids=[trigger.session_id]) is None


def test_wsp_push_is_unwrapped():
    from dmgateway.notify import wsp

    push = wsp.encode_push(wsp.PushPDU(wsp.CT_SYNCML_NOTIFICATION, PACKAGE0,
                                       app_id=wsp.APP_SYNCML_DM))
    assert push[:6] == bytes.fromhex("0106 03 c4 af 87".replace(" ", ""))
    trigger = accept_notification(push, [make_account()])
    assert trigger is not None and trigger.session_id == "1234"
    other = wsp.encode_push(wsp.PushPDU(wsp.CT_CONNECTIVITY_WBXML, PACKAGE0,
                                        app_id=wsp.APP_SYNCML_DM))
    assert accept_notification(other, [make_account()]) is None


def test_concatenated_sms_segments_are_reassembled():
    from dmgateway.client.notification import SmsInbox
    from dmgateway.notify import sms, wsp

    body = PACKAGE0 + bytes(200)  # a vendor body long enough to need several parts
    note = parse_notification(body)
    assert note.notification.body == bytes(200)
    account = make_account()
    # sign the long trigger the way the server does
    from dmgateway.notify.package0 import ServerCredential, build
    cred = ServerCredential(account.server.name, account.server.nonce,
                            secret=account.server.secret)
    data = build(note.notification, cred)
    push = wsp.encode_push(wsp.PushPDU(wsp.CT_SYNCML_NOTIFICATION, data, app_id=wsp.APP_SYNCML_DM))
    parts = sms.segment(push, reference=0x2A)
    assert len(parts) > 1
    trigger = accept_notification(parts, [account])
    assert trigger is not None and trigger.notification.body == bytes(200)
    # one by one, out of order, with a duplicate
    inbox = SmsInbox()
    assert inbox.add(parts[-1]) is None and inbox.add(parts[-1]) is None
    whole = None
    for part in parts[:-1]:
        whole = inbox.add(part)
    assert whole == push
    assert accept_notification(parts[:-1], [account]) is None  # incomplete
