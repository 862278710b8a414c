"""Account data: credential schemes, notification session ids."""

import pytest

from dmgateway.client.account import Credentials, session_id_for_notification


def test_credentials_normalise_the_scheme():
    creds = Credentials(" MD5 ", "user", "secret", bytearray(b"\x01"))
    assert creds.scheme == "md5" and creds.nonce == b"\x01"
    assert Credentials(None, "user", "secret").scheme == "none"
    with pytest.raises(ValueError):
        Credentials("X509", "user", "secret")


def test_secrets_stay_out_of_repr():
    text = repr(Credentials("md5", "user", "s3cr3t!", b"nonce-bytes"))
    assert "s3cr3t!" not in text and "nonce-bytes" not in text and "user" in text


def test_notification_session_id():
    assert [session_id_for_notification(n) for n in (0x00AF, 0x0001, 0xFFFF)] == ["AF", "1", "FFFF"]
    for bad in (-1, 0x10000, "AF"):
        with pytest.raises(ValueError):
            session_id_for_notification(bad)
