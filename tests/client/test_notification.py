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
    note = parse_notification(PACKAGE0)
    assert (note.version, note.ui_mode, note.initiator) == (11, 3, 1)
    assert note.session_id == 0x1234 and note.session_id_text == "1234"
    assert note.server_id == "com.example.dms" and note.body == b""
    assert note.trigger == PACKAGE0[16:] and len(note.trigger) == 23
    spec = parse_notification(bytes(16) + SPEC_HEADER + b"com.mgmtsrv.manage" + b"\x01\x02")
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
