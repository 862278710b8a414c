"""ServerSession: client authentication, nonces, HMAC and mutual authentication."""

from dmgateway.auth.credentials import md5_value, user_hash
from dmgateway.auth.nonce import decode_nonce, encode_nonce
from dmgateway.auth.verify import challenge
from dmgateway.codec import syncml as sm
from dmgateway.dm.effects import (
    Authenticated,
    AuthFailed,
    JobFinished,
    JobSpec,
    JobStarted,
    NoncesChanged,
    SessionEnded,
)

from .client import (
    CLIENT_NONCE,
    SERVER_NAME,
    SERVER_NONCE,
    SERVER_SECRET,
    Client,
    hdr_status,
    make_device,
    make_session,
    server_commands,
    statuses,
)

JOB = JobSpec("j", [{"op": "Get", "target": "./DevDetail/SwV"},
                    {"op": "Replace", "target": "./X", "data": "1"}])


def of_type(effects, cls):
    return [effect for effect in effects if isinstance(effect, cls)]


def server_md5(nonce):
    return md5_value(user_hash(SERVER_NAME, SERVER_SECRET), nonce)


def test_missing_credentials_407_then_retry():
    device = make_device()
    session = make_session(device, [JOB])
    client = Client(session)
    out = client.send(client.package1(), hdr=_no_cred_header(client))
    status = hdr_status(out.reply)
    assert status.data == 407
    assert status.chal.meta.type == "syncml:auth-md5" and status.chal.meta.format == "b64"
    fresh = decode_nonce(status.chal.meta.next_nonce)
    assert fresh != CLIENT_NONCE and device.client_nonce == fresh
    assert [s.data for s in statuses(out.reply)] == [407, 407, 407]
    assert all(isinstance(cmd, sm.Status) for cmd in out.reply.body)  # Status only
    assert out.reply.final and not out.finished
    assert out.effects == [AuthFailed(407, "missing credentials"), NoncesChanged(client_nonce=fresh)]

    out = client.send(client.package1())  # restart package 1 with the new nonce
    assert hdr_status(out.reply).data == 212
    assert of_type(out.effects, Authenticated) == [Authenticated("md5")]
    assert [cmd.NAME for cmd in server_commands(out.reply)] == ["Get", "Replace"]
    out = client.send(client.answer(out.reply, tree={"./DevDetail/SwV": "2"}))
    assert of_type(out.effects, JobFinished)[0].state == "done" and out.finished


def _no_cred_header(client):
    hdr = client.header()
    hdr.cred = None
    return hdr


def test_wrong_credentials_three_times_end_the_session_and_nothing_is_sent():
    device = make_device()
    session = make_session(device, [JOB])
    client = Client(session, secret="wrong")
    nonces = []
    for attempt in range(3):
        out = client.send(client.package1())
        assert all(isinstance(cmd, sm.Status) for cmd in out.reply.body)
        assert hdr_status(out.reply).data == 401
        assert of_type(out.effects, AuthFailed) == [AuthFailed(401, "bad digest")]
        nonces.append(device.client_nonce)
        assert out.finished == (attempt == 2)
    assert len(set(nonces)) == 3  # a fresh nonce every time
    assert out.effects[-1] == SessionEnded("auth_failed", "authentication failed 3 times")
    assert not of_type(out.effects, JobStarted) and not of_type(out.effects, JobFinished)
    assert not any(server_commands(reply) for reply in client.replies)


def test_max_auth_attempts_is_configurable():
    session = make_session(jobs=[JOB], max_auth_attempts=1)
    client = Client(session, secret="wrong")
    out = client.send(client.package1())
    assert out.finished and out.effects[-1].outcome == "auth_failed"


def test_replayed_digest_with_the_old_nonce_is_rejected():
    device = make_device()
    first = Client(make_session(device))
    digest = first.cred()
    assert hdr_status(first.send(first.package1()).reply).data == 212
    assert device.client_nonce != CLIENT_NONCE  # rotated for the next session
    # an eavesdropper replays the same digest in a new session
    second = Client(make_session(device), session_id="2B")
    out = second.send(second.package1(), cred=digest)
    assert hdr_status(out.reply).data == 401
    assert of_type(out.effects, AuthFailed) == [AuthFailed(401, "bad digest")]


def test_stale_nonce_gets_one_more_challenge():
    device = make_device(client_nonce=b"\x05" * 16)
    session = make_session(device, [JOB])
    client = Client(session)  # still uses the old CLIENT_NONCE
    out = client.send(client.package1())
    assert hdr_status(out.reply).data == 401 and not out.finished
    out = client.send(client.package1())  # with the nonce of the Chal
    assert hdr_status(out.reply).data == 212


def test_md5_success_hands_out_next_nonce_once():
    device = make_device()
    session = make_session(device, [JOB])
    client = Client(session)
    out = client.send(client.package1())
    chal = hdr_status(out.reply).chal
    assert chal.meta.type == "syncml:auth-md5"
    assert decode_nonce(chal.meta.next_nonce) == device.client_nonce
    out = client.send(client.answer(out.reply))
    status = hdr_status(out.reply)
    assert status.data == 200 and status.chal is None  # authenticated for the session
    assert not of_type(out.effects, NoncesChanged)


def test_basic_session():
    device = make_device(client_scheme="basic", server_scheme="basic")
    session = make_session(device, [JOB])
    client = Client(session, scheme="basic")
    out = client.send(client.package1())
    status = hdr_status(out.reply)
    assert status.data == 212 and status.chal is None
    assert out.reply.hdr.cred.meta.type == "syncml:auth-basic"
    assert out.reply.hdr.cred.data == "Y29tLmV4YW1wbGUuZG1zOnNydlBhc3MxMjM="  # b64(name:secret)
    assert out.reply.hdr.source.loc_name is None
    out = client.send(client.answer(out.reply))
    assert out.finished and of_type(out.effects, JobFinished)[0].state == "done"


def test_basic_wrong_password_gets_basic_challenge():
    session = make_session(make_device(client_scheme="basic"), [JOB])
    client = Client(session, scheme="basic", secret="nope")
    status = hdr_status(client.send(client.package1()).reply)
    assert status.data == 401 and status.chal.meta.type == "syncml:auth-basic"
    assert status.chal.meta.next_nonce is None


def test_no_authentication():
    device = make_device(client_scheme="none", server_scheme="none")
    session = make_session(device, [JOB])
    client = Client(session, scheme="none")
    out = client.send(client.package1())
    # nothing was sent, so nothing is "accepted" (212): a plain 200
    assert hdr_status(out.reply).data == 200 and hdr_status(out.reply).chal is None
    assert out.reply.hdr.cred is None and out.hmac_header is None
    assert of_type(out.effects, Authenticated) == [Authenticated("none")]
    out = client.send(client.answer(out.reply))
    assert out.finished


def test_hmac_every_message_verified_and_signed():
    device = make_device(client_scheme="hmac", server_scheme="hmac")
    session = make_session(device, [JOB, JobSpec("k", [{"op": "Delete", "target": "./Y"}])],
                           default_max_msg_size=1024)
    client = Client(session, scheme="hmac")
    out = client.send(client.package1())
    assert out.hmac_header is not None  # Client checks the MAC with the server nonce
    assert out.reply.hdr.cred is None and out.reply.hdr.source.loc_name == SERVER_NAME
    seen = []
    while not out.finished:
        status = hdr_status(out.reply)
        assert status.data == 200 and status.chal.meta.type == "syncml:auth-MAC"
        assert decode_nonce(status.chal.meta.next_nonce) == device.client_nonce
        seen.append(device.client_nonce)
        assert NoncesChanged(client_nonce=device.client_nonce) in out.effects
        out = client.send(client.answer(out.reply, hdr_code=200))
    assert len(seen) == len(set(seen)) >= 3  # a new nonce per message
    assert [e.state for e in of_type(out.effects, JobFinished)] == ["done"]


def test_hmac_bad_mac_mid_session_gets_401_and_status_only():
    device = make_device(client_scheme="hmac", server_scheme="md5")
    session = make_session(device, [JOB])
    client = Client(session, scheme="hmac")
    out = client.send(client.package1())
    answer = client.answer(out.reply)
    out = client.send(answer, hmac_header='username="dmclient01", mac=AAAAAAAAAAAAAAAAAAAAAA==')
    status = hdr_status(out.reply)
    assert status.data == 401 and status.chal.meta.type == "syncml:auth-MAC"
    assert all(isinstance(cmd, sm.Status) for cmd in out.reply.body)
    assert of_type(out.effects, AuthFailed) == [AuthFailed(401, "bad MAC")]
    assert not of_type(out.effects, JobFinished)  # nothing of that message was taken
    out = client.send(client.answer(client.replies[-2]))  # the client sends its answers again
    assert hdr_status(out.reply).data == 200
    assert of_type(out.effects, JobFinished)[0].state == "done"


def test_hmac_missing_header_is_407():
    session = make_session(make_device(client_scheme="hmac"), [JOB])
    client = Client(session, scheme="hmac")
    out = client.send(client.package1(), hmac_header="")
    assert hdr_status(out.reply).data == 407


def test_server_hmac_requires_encode():
    import pytest

    from dmgateway.dm.effects import SessionError

    with pytest.raises(SessionError):
        make_session(make_device(server_scheme="hmac"), encode=None)


def test_server_cred_in_every_reply_until_the_device_says_212():
    session = make_session(jobs=[JOB])
    client = Client(session)
    out = client.send(client.package1())
    assert out.reply.hdr.cred.data == server_md5(SERVER_NONCE)
    session.add_job(JobSpec("k", [{"op": "Delete", "target": "./Y"}]))
    out = client.send(client.answer(out.reply, hdr_code=200))  # accepted for that message only
    assert out.reply.hdr.cred.data == server_md5(SERVER_NONCE)
    assert out.reply.hdr.source.loc_name == SERVER_NAME
    session.add_job(JobSpec("m", [{"op": "Delete", "target": "./Z"}]))
    out = client.send(client.answer(out.reply, hdr_code=212))  # accepted for the session
    assert out.reply.hdr.cred is None and out.reply.hdr.source.loc_name is None
    out = client.send(client.answer(out.reply, hdr_code=200))
    assert out.finished and out.reply.hdr.cred is None

def test_device_challenges_server_then_accepts():
    device = make_device()
    session = make_session(device, [JOB])
    client = Client(session)
    out = client.send(client.package1())
    assert out.reply.hdr.cred.data == server_md5(SERVER_NONCE)
    new_nonce = b"\x42" * 16
    # the device refuses our credentials: Status only, with its own Chal
    rejected = [client.hdr_answer(out.reply, 401, challenge("md5", new_nonce))]
    for cmd in server_commands(out.reply):
        rejected.append(sm.Status(cmd_id=str(len(rejected) + 1), msg_ref="1", cmd_ref=cmd.cmd_id,
                                  cmd=cmd.NAME, data=401))
    out = client.send(rejected)
    assert NoncesChanged(server_nonce=new_nonce) in out.effects
    assert device.server_nonce == new_nonce
    assert out.reply.hdr.cred.data == server_md5(new_nonce)
    assert [cmd.NAME for cmd in server_commands(out.reply)] == ["Get", "Replace"]  # sent again
    assert not of_type(out.effects, JobFinished)
    out = client.send(client.answer(out.reply, tree={"./DevDetail/SwV": "9"}))
    job = of_type(out.effects, JobFinished)[0]
    assert job.state == "done" and job.results[0]["data"] == "9"
    assert out.finished


def test_device_rejecting_server_repeatedly_ends_session():
    session = make_session(jobs=[JOB])
    client = Client(session)
    out = client.send(client.package1())
    for attempt in range(3):
        out = client.send([client.hdr_answer(out.reply, 401, challenge("md5", bytes([attempt]) * 16))])
        if out.finished:
            break
    assert attempt == 2 and out.finished
    assert out.effects[-1].outcome == "server_auth_rejected"
    job = of_type(out.effects, JobFinished)[0]
    assert job.state == "failed" and job.error["code"] == "server_auth_rejected"


def test_device_next_nonce_on_success_is_persisted():
    device = make_device()
    session = make_session(device, [JOB])
    client = Client(session)
    out = client.send(client.package1())
    body = client.answer(out.reply)
    body[0].chal = challenge("md5", b"\x77" * 16)
    out = client.send(body)
    assert NoncesChanged(server_nonce=b"\x77" * 16) in out.effects
    assert device.server_nonce == b"\x77" * 16


def test_device_nonce_from_unauthenticated_message_persisted_only_after_auth():
    device = make_device()
    session = make_session(device, [JOB])
    client = Client(session, secret="wrong")
    out = client.send(client.package1())  # 401 for the client; our reply carries our Cred
    assert hdr_status(out.reply).data == 401
    # still wrong, but the device also refuses our Cred and hands out a nonce
    body = [client.hdr_answer(out.reply, 401, challenge("md5", b"\x33" * 16))] + client.package1()
    body[0].cmd_id = "3"
    out = client.send(body)
    assert hdr_status(out.reply).data == 401
    assert device.server_nonce == b"\x33" * 16  # used at once ...
    assert all(e.server_nonce is None for e in of_type(out.effects, NoncesChanged))  # ... not kept
    assert out.reply.hdr.cred.data == server_md5(b"\x33" * 16)
    client.secret = "s3cr3t!"
    out = client.send(client.package1())
    assert hdr_status(out.reply).data == 212
    assert NoncesChanged(server_nonce=b"\x33" * 16) in out.effects


def test_device_nonce_that_is_not_base64_is_ignored():
    session = make_session(jobs=[JOB])
    client = Client(session)
    out = client.send(client.package1())
    body = client.answer(out.reply)
    body[0].chal = sm.Chal(sm.Meta(type="syncml:auth-md5", format="b64", next_nonce="!!not base64!!"))
    out = client.send(body)
    assert any("NextNonce" in getattr(e, "reason", "") for e in out.effects)
    assert out.finished


def test_chal_nonce_text_matches_device_state():
    device = make_device()
    session = make_session(device)
    client = Client(session, secret="x")
    status = hdr_status(client.send(client.package1()).reply)
    assert status.chal.meta.next_nonce == encode_nonce(device.client_nonce)


def test_a_212_in_one_session_leaks_nothing_into_another():
    # a later message of an authenticated session gets 200 without a check;
    # another device's session still checks its credentials
    first_device, other_device = make_device(), make_device()
    first = Client(make_session(first_device, [JOB]))
    out = first.send(first.package1())
    assert hdr_status(out.reply).data == 212
    out = first.send(first.answer(out.reply), final=False)  # a later message: the shared verdict
    assert hdr_status(out.reply).data == 200 and hdr_status(out.reply).chal is None
    assert not of_type(out.effects, Authenticated) and not of_type(out.effects, NoncesChanged)

    stranger = Client(make_session(other_device, [JOB]), secret="not-the-secret")
    out = stranger.send(stranger.package1())
    status = hdr_status(out.reply)
    assert status.data == 401 and status.chal is not None
    assert of_type(out.effects, AuthFailed) == [AuthFailed(401, "bad digest")]
    assert not server_commands(out.reply)

    out = first.send([], final=False)  # the first session goes on as before
    assert hdr_status(out.reply).data == 200 and hdr_status(out.reply).chal is None
    assert not of_type(out.effects, AuthFailed)
