"""dm.sessionauth: per-message verdicts on the client and on our own credentials."""

from dmgateway.auth.verify import challenge
from dmgateway.codec import syncml as sm
from dmgateway.dm.effects import AuthFailed, Authenticated, InputIgnored, NoncesChanged
from dmgateway.dm.sessionauth import ClientAuth, ServerAuth

from .client import SERVER_NAME, Client, counting_random, make_device, make_session


def test_client_auth_checks_until_212_then_trusts_the_session():
    device = make_device()
    auth = ClientAuth(device, counting_random(), max_attempts=2)
    client = Client(make_session(device))
    hdr = client.header()
    check = auth.check(hdr, b"", None)
    assert check.ok and check.status == 212 and auth.authenticated
    assert check.effects[0] == Authenticated("md5")
    assert check.effects[1] == NoncesChanged(client_nonce=device.client_nonce)
    later = auth.check(sm.SyncHdr(), b"", None)  # no credentials needed any more
    assert later.ok and later.status == 200 and later.chal is None and later.effects == []


def test_client_auth_exhausted_after_max_attempts():
    device = make_device()
    auth = ClientAuth(device, counting_random(), max_attempts=2)
    first = auth.check(sm.SyncHdr(), b"", None)
    assert not first.ok and first.status == 407 and not first.exhausted
    assert first.effects[0] == AuthFailed(407, "missing credentials")
    assert auth.check(sm.SyncHdr(), b"", None).exhausted


def test_server_auth_header_and_verdicts():
    device = make_device()
    auth = ServerAuth(device, max_attempts=2)
    cred, loc_name = auth.header_cred()
    assert cred.meta.type == "syncml:auth-md5" and loc_name == SERVER_NAME
    verdict, effects = auth.on_status(sm.Status(data=401, chal=challenge("md5", b"\x02" * 16)), True)
    assert verdict == "rejected" and effects == [NoncesChanged(server_nonce=b"\x02" * 16)]
    verdict, _ = auth.on_status(sm.Status(data=407), True)
    assert verdict == "give_up"
    auth = ServerAuth(make_device(), max_attempts=3)
    assert auth.on_status(sm.Status(data=212), True) == ("ok", [])
    assert auth.accepted and auth.header_cred() == (None, None)


def test_server_auth_none_gives_up_at_once_and_hmac_signs():
    none = ServerAuth(make_device(server_scheme="none"), max_attempts=3)
    assert none.header_cred() == (None, None)
    assert none.on_status(sm.Status(data=407), True)[0] == "give_up"
    hmac = ServerAuth(make_device(server_scheme="hmac"), max_attempts=3)
    assert hmac.signs and hmac.header_cred() == (None, SERVER_NAME)
    assert hmac.sign(b"body").startswith('algorithm=MD5, username="com.example.dms", mac=')


def test_server_auth_unpersisted_nonce():
    device = make_device()
    auth = ServerAuth(device, max_attempts=3)
    _, effects = auth.on_status(sm.Status(data=200, chal=challenge("md5", b"\x03" * 16)), False)
    assert effects == [] and device.server_nonce == b"\x03" * 16
    assert auth.on_device_authenticated() == [NoncesChanged(server_nonce=b"\x03" * 16)]
    assert auth.on_device_authenticated() == []
    _, effects = auth.on_status(sm.Status(data=200, chal=sm.Chal(sm.Meta(next_nonce="%%"))), True)
    assert isinstance(effects[0], InputIgnored)
