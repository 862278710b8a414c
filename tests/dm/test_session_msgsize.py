"""ServerSession under a device's MaxMsgSize: the measuring shortcuts send the same bytes.

A session measured by encoding (``encode`` only, as the dispatcher builds it)
keeps the bytes of its last measure for the reply, places runs of units with
few measures and whole jobs with one.  Every reply must be what the session
measured message by message used to send: ``reference`` is that session
(``measure`` given, so nothing is kept; units and whole jobs one by one, the
code before the shortcuts), and both are driven by the same device script.
"""

import pytest

from dmgateway.codec import syncml as sm
from dmgateway.codec import wbxml, xml
from dmgateway.dm.effects import JobSpec, JobStarted
from dmgateway.dm.jobs import RUNNING
from dmgateway.dm.session import ServerSession

from .client import Client, make_device, make_session, server_commands


class OneByOne(ServerSession):
    """The session as it placed commands before: one try_add per unit."""

    def _place_run(self, builder):
        return "short"

    def _try_whole_job(self, builder, job, turn):
        mark, placed = builder.mark(), []
        for unit in job.units:
            if self._too_large_for_client(unit) is not None:
                builder.rollback(mark)
                return False
            cmd = unit.render()
            try:
                fits = builder.try_add(cmd)
            except ValueError:
                fits = False
            if not fits:
                builder.rollback(mark)
                return False
            placed.append((unit, cmd))
        job.state = RUNNING
        turn.effects.append(JobStarted(job.job_id))
        for unit, cmd in placed:
            self._record(builder, unit, cmd)
        return True


class Device(Client):
    """A Client that takes replies over its MaxMsgSize (below ~1 KiB the
    server exceeds it on purpose: both sessions must do so alike)."""

    def _check(self, outcome):
        limit, self.max_msg_size = self.max_msg_size, None
        try:
            super()._check(outcome)
        finally:
            self.max_msg_size = limit


def _reference_session(codec, jobs, device, **options):
    session = make_session(device, jobs, encode=codec.encode,
                           measure=lambda msg: len(codec.encode(msg)), **options)
    session.__class__ = OneByOne
    return session


BLOB = "".join(chr(0x41 + n % 26) for n in range(3000)) + "é<&>"

JOB_SETS = {
    "get": [JobSpec("g", [{"op": "Get", "target": "./DevDetail/SwV"}])],
    "replaces": [JobSpec("r", [{"op": "Replace", "target": "./Vendor/Settings/Key%02d" % n,
                                "data": "value %s" % ("v" * (n * 7 % 60))} for n in range(25)])],
    "mixed": [
        JobSpec("lo", [{"op": "Get", "target": "./First"},
                       {"op": "Replace", "target": "./Vendor/Blob", "data": BLOB, "type": "text/plain"},
                       {"op": "Delete", "target": "./After"},
                       {"op": "Get", "target": "./Second"}]),
        JobSpec("gets", [{"op": "Get", "target": "./B/%d" % n} for n in range(6)]),
        JobSpec("atomic", [{"op": "Replace", "target": "./Vendor/A%d" % n, "data": "a" * 30}
                           for n in range(3)], atomic=True),
        JobSpec("small", [{"op": "Delete", "target": "./X"}]),
        JobSpec("tail", [{"op": "Replace", "target": "./Vendor/T%d" % n, "data": "t" * 20}
                         for n in range(5)]),
    ],
    "big_object": [JobSpec("big", [{"op": "Replace", "target": "./Big", "data": "y" * 900},
                                   {"op": "Get", "target": "./ok"},
                                   {"op": "Get", "target": "./ok2"}]),
                   JobSpec("next", [{"op": "Get", "target": "./C/%d" % n} for n in range(4)])],
}

SIZES = list(range(300, 2000, 61)) + [2048, 2500, 3000, 4096, 6000, 8192, 12000, 16384, 20000]


def _next_message():
    return sm.Alert(data=sm.ALERT_NEXT_MESSAGE)


def _answer(client, reply):
    """What a device answers (the drive of test_session_packaging)."""
    if reply.final:
        return client.answer(reply, tree={"./First": "1"}), True
    codes = {}
    for cmd in server_commands(reply):
        if cmd.NAME in ("Add", "Replace") and cmd.items[-1].more_data:
            codes.setdefault(cmd.cmd_id, 213)
    return client.answer(reply, tree={"./First": "1"}, codes=codes, extra=[_next_message()]), False


def _run_both(codec, jobs, max_msg_size, server_scheme="md5", client_scheme="md5", **client_options):
    def device():
        return make_device(client_scheme=client_scheme, server_scheme=server_scheme)
    options = {} if server_scheme != "none" else {"resp_uri": None}
    fast = make_session(device(), jobs, encode=codec.encode, measure=None, **options)
    assert fast._builder_encode is codec.encode  # the path under test
    slow = _reference_session(codec, jobs, device(), **options)
    scheme = client_scheme
    clients = [Device(session, codec=codec, max_msg_size=max_msg_size, scheme=scheme, **client_options)
               for session in (fast, slow)]
    outs = [client.send(client.package1()) for client in clients]
    messages = 1
    while True:
        fast_out, slow_out = outs
        assert fast_out.body == slow_out.body, (max_msg_size, messages)
        assert fast_out.hmac_header == slow_out.hmac_header
        assert fast_out.reply == slow_out.reply
        assert fast_out.effects == slow_out.effects
        assert fast_out.finished == slow_out.finished
        if fast_out.finished:
            return messages
        assert messages < 400, "the session does not end"
        answers = [_answer(client, out.reply) for client, out in zip(clients, outs)]
        outs = [client.send(body, final=final) for client, (body, final) in zip(clients, answers)]
        messages += 1


@pytest.mark.parametrize("codec", [xml, wbxml], ids=["xml", "wbxml"])
@pytest.mark.parametrize("name", sorted(JOB_SETS))
def test_replies_are_the_bytes_of_one_by_one_measures(codec, name):
    for size in SIZES:
        _run_both(codec, JOB_SETS[name], size)


@pytest.mark.parametrize("codec", [xml, wbxml], ids=["xml", "wbxml"])
def test_lean_header_and_max_obj_size(codec):
    for size in SIZES[::2]:
        _run_both(codec, JOB_SETS["mixed"], size, server_scheme="none", client_scheme="none")
        _run_both(codec, JOB_SETS["big_object"], size, max_obj_size=500)


@pytest.mark.parametrize("codec", [xml, wbxml], ids=["xml", "wbxml"])
def test_hmac_signed_replies_are_the_same(codec):
    for size in SIZES[::3]:
        _run_both(codec, JOB_SETS["mixed"], size, server_scheme="hmac", client_scheme="hmac")
