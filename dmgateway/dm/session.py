"""The server side of one SyncML DM session, without I/O.

The dispatcher hands every client message to :meth:`ServerSession.handle`
and gets an :class:`~.effects.Outcome` back: the reply to send and the
effects to perform.  The session moves through four states::

    INIT ----------> SENDING ----------> WAITING ----------> (SENDING ...)
     package 1        our package          we sent Final;      the client's
     until the        is open: more        the client's        package is
     client is        messages follow      package 3 comes     complete: next
     authenticated    (no Final yet)       in (1222 replies)   package or end
     and sends Final

and ENDED (``finished``) once a reply closes the session.  Rules kept here:

* Nothing is executed and no command is sent before the client is
  authenticated (:mod:`.sessionauth`); a failed message gets Status only.
* Every client command gets a Status (the SyncHdr first, CmdRef 0), except
  Status and successful Results.
* A package holds the first waiting job, over several messages if it must,
  plus any following jobs that fit whole in its last message.  Every reply
  is measured against the client's MaxMsgSize (:mod:`.packaging`); data too
  large for a message goes out in chunks (:mod:`.largeobject`).
* Answers are correlated by (MsgRef, CmdRef) to the job commands
  (:mod:`.jobs`); a job finishes as soon as every command is answered.

The flow and the replies that end or refuse a session are here; what is
done with the device's commands is in :mod:`.incoming`, how our commands
are placed in messages in :mod:`.outgoing`.
"""

import hashlib
import re
from collections import deque
from dataclasses import dataclass, field
from typing import List, Optional

from ..auth.credentials import AuthError
from ..auth.nonce import DEFAULT_NONCE_SIZE
from ..codec import syncml as sm
from . import status as st
from .effects import Effect, InputIgnored, Outcome, SessionEnded, SessionError
from .incoming import SESSION_ALERTS, ClientCommands, is_hdr_status
from .jobs import QUEUED, RUNNING, JobRun
from .largeobject import Reassembler
from .outgoing import Sent, ServerCommands
from .packaging import MessageBuilder, number
from .sessionauth import ClientAuth, ServerAuth

__all__ = ["DROPPED", "NOT_HELD", "STARTED", "ServerSession"]

INIT, SENDING, WAITING, ENDED = "init", "sending", "waiting", "ended"

# what ServerSession.drop_job found: the job was dropped (not started), had
# started (its commands are out, or in the reply being written), or the
# session does not hold it (never had it, or forgot it)
DROPPED, STARTED, NOT_HELD = "dropped", "started", "not held"

_VER_PROTO = re.compile(r"DM/1\.[0-9]+\Z", re.IGNORECASE)  # DM/1.1, 1.2, 1.3 (1.3 unconfirmed)
# what devices write, taken without the regex (a match costs more than the rest of the check)
_VER_PROTO_USUAL = (sm.VERPROTO_DM_1_2, sm.VERPROTO_DM_1_1, sm.VERPROTO_DM_1_3)
_VER_DTD = ("1.1", "1.2")
_MAX_STALLS = 3  # messages in a row that could not pay off the Statuses owed

# job error code for each way a session can end early
_JOB_ERRORS = {"aborted": "session_aborted", "timeout": "session_timeout"}
_NO_META = sm.Meta()  # (compared with, never sent: nothing changes it)


@dataclass
class _Turn:
    """Scratch state while one client message is handled."""

    msg: sm.SyncML
    body: bytes
    digest: Optional[bytes]  # of body (None: not computed yet)
    effects: List[Effect] = field(default_factory=list)
    hdr_status: Optional[sm.Status] = None
    next_alert: bool = False  # the reply asks for the client's next message (1222)


class ServerSession(ClientCommands, ServerCommands):
    """One device's DM session.  See the module docstring for the states."""

    _forgotten = ()  # ids of the jobs dropped or withdrawn (a set once there is one)

    def __init__(self, device, jobs, *, server_uri, resp_uri, measure=None, random_bytes,
                 max_obj_size=4 * 1024 * 1024, default_max_msg_size=None,
                 max_auth_attempts=3, encode=None, accept_msg_size=None,
                 nonce_size=DEFAULT_NONCE_SIZE, accept_hex_mac=False):
        """
        ``measure(msg) -> int`` is the encoded size of a reply in the client's
        encoding.  ``encode(msg) -> bytes`` (optional; required when we sign
        with HMAC) makes each Outcome carry the exact ``body`` that was
        signed; it also serves as ``measure`` if that is not given.
        ``jobs`` that cannot be sent (e.g. Get in an atomic job) raise
        ``ValueError``.  ``nonce_size`` is the size of the client nonces we
        issue; ``accept_hex_mac`` also takes a device HMAC written as base64
        of the hex digest (``[auth]`` keys of the same names).
        """
        # measured by encoding (``measure`` not given): each reply's builder
        # keeps the bytes of its last measure, often the very reply sent
        self._builder_encode = None
        if measure is None:
            if encode is None:
                raise SessionError("a session needs measure or encode")
            measure = lambda msg: len(encode(msg))  # noqa: E731
            self._builder_encode = encode
        self.device = device
        self.server_uri = server_uri
        self.resp_uri = resp_uri
        self.max_obj_size = max_obj_size
        self.accept_msg_size = accept_msg_size  # our MaxMsgSize: the largest body we take
        self._measure = measure
        self._encode = encode
        self._jobs = [JobRun(job) for job in jobs]
        self._client_auth = ClientAuth(device, random_bytes, max_auth_attempts,
                                       nonce_size=nonce_size, accept_hex_mac=accept_hex_mac)
        self._server_auth = ServerAuth(device, max_auth_attempts)
        if self._server_auth.signs and encode is None:
            raise SessionError("HMAC server credentials need encode to sign replies")
        try:
            self._server_auth.header_cred()
        except AuthError as error:
            raise SessionError("server credentials unusable: %s" % (error,)) from None
        self._reassembler = Reassembler(max_obj_size)
        self._state = INIT
        self._pkg1_fresh = True  # the next message starts (or restarts) package 1
        self._queue = deque()  # units of the open package, in sending order
        self._statuses = []  # Status commands owed to the client
        self._alerts = []  # our own alerts waiting for room (1225)
        self._sent = {}  # (our MsgID, CmdID) -> Sent
        self._sent_order = []  # our MsgIDs, oldest first
        self._rejected = set()  # our MsgIDs whose credentials the device refused
        self._msg_id = 0
        self._session_id = None
        self._version = (sm.VERDTD_1_2, sm.VERPROTO_DM_1_2)
        self._max_msg_size = default_max_msg_size
        self._client_max_obj_size = None
        self._package_has_commands = False
        self._package_had = False  # whether it had, before our last message was filled (for withdraw)
        self._last = None  # (client MsgID, body digest, Outcome) for retransmissions
        self._deferred_chal = None  # a 212's Chal that did not fit, for our next message
        self._msg_size_announced = accept_msg_size is None  # our MaxMsgSize went out once
        self._obj_size_announced = False  # and our MaxObjSize (both hold for the session)
        self._owed_before, self._stalls = 0, 0  # Statuses still owed after our last message
        self._last_fill = None  # how many commands our last message took from _fill
        self.finished = False

    # -- public ----------------------------------------------------------

    def add_job(self, job):
        """Queue a job created while the session is live (sent in a later
        package); False if the session has it already (it was queued when the
        session opened) or forgot it (:meth:`drop_job`, :meth:`withdraw`)."""
        if self.finished:
            raise SessionError("the session is over")
        if job.job_id in self._forgotten or any(run.job_id == job.job_id for run in self._jobs):
            return False
        self._jobs.append(JobRun(job))
        return True

    def waiting_jobs(self):
        """The ids of the jobs not started yet, in sending order."""
        return [run.job_id for run in self._jobs if run.state == QUEUED]

    def drop_job(self, job_id):
        """Forget the job ``job_id`` if it has not started (it ended, or is
        being cancelled, outside the session): :data:`DROPPED`.  Else
        :data:`STARTED` (its commands are out, or in the reply being
        written: they cannot be called back), or :data:`NOT_HELD` (the
        session never had it, or forgot it already).  A job forgotten is
        not taken again (:meth:`add_job`): a store read made before it
        ended does not bring it back."""
        for run in self._jobs:
            if run.job_id == job_id:
                if run.state != QUEUED:
                    return STARTED
                self._jobs.remove(run)
                self._forget_jobs((job_id,))
                return DROPPED
        return NOT_HELD

    def _forget_jobs(self, job_ids):
        if not self._forgotten:
            self._forgotten = set()
        self._forgotten.update(job_ids)

    def withdraw(self, job_ids):
        """Forget the jobs ``job_ids`` that the last reply started, and take
        their commands out of it: the caller could not start them (they
        ended outside the session after it read them, a cancel, say).

        No effect of theirs follows, nor are they taken again
        (:meth:`add_job`).  Returns the reply without their
        commands (an :class:`Outcome` with no effects, encoded and signed
        again; the other commands renumbered from 1, their answers still
        correlated), or None when it carried none of them.  Only the reply
        not sent yet may be changed: the caller asks before sending it.
        """
        gone = [job for job in self._jobs if job.job_id in job_ids]
        if not gone:
            return None
        units = {unit for job in gone for unit in job.units}
        self._jobs = [job for job in self._jobs if job not in gone]
        self._forget_jobs(job.job_id for job in gone)
        if self._queue:  # what was left of them for the package's next messages
            self._queue = deque(unit for unit in self._queue if unit not in units)
        if self._last is None:  # the session ended: its last reply carries no job command
            return None
        client_msg_id, digest, last = self._last
        reply = last.reply
        msg_id = reply.hdr.msg_id
        dropped = set()
        for key, sent in list(self._sent.items()):
            if key[0] == msg_id and sent.unit in units:
                dropped.add(key[1])
                del self._sent[key]
        if not dropped:
            return None
        reply.body = [cmd for cmd in reply.body if cmd.cmd_id not in dropped]
        carries = any(sent.unit is not None for key, sent in self._sent.items() if key[0] == msg_id)
        self._package_has_commands = self._package_had or carries
        if not carries and reply.final:
            # a last message without commands would end the session for the
            # device: it asks for the next one instead, which the rest fills
            reply.final = False
            self._state = SENDING
        numbered = [(cmd, cmd.cmd_id) for top in reply.body for cmd in _nested(top)]
        answers = {old: self._sent.pop((msg_id, old)) for _cmd, old in numbered if (msg_id, old) in self._sent}
        next_id = 1
        for top in reply.body:
            next_id = number(top, next_id)
        for cmd, old in numbered:
            if old in answers:
                self._sent[(msg_id, cmd.cmd_id)] = answers[old]
        body = self._encode(reply) if self._encode is not None else None
        signature = self._server_auth.sign(body) if self._server_auth.signs else None
        result = Outcome(reply, signature, [], self.finished, body)
        self._last = (client_msg_id, digest, result)
        return result

    def abort(self, reason_code, message):
        """End the session from outside (timeout, superseded, shutdown).

        Running jobs fail with ``reason_code`` ("timeout" becomes
        ``session_timeout``); jobs never started are left to the dispatcher.
        """
        if self.finished:
            return []
        effects = self._end_effects(reason_code, message, _JOB_ERRORS.get(reason_code, reason_code))
        return effects

    def handle(self, msg, *, body, hmac_header=None, digest=None):
        """The reply to one client message and the effects it has.

        ``digest`` is the SHA-256 of ``body``, if the caller has it already.
        """
        if self.finished:
            raise SessionError("the session is over")
        if not isinstance(msg, sm.SyncML):
            raise SessionError("handle() takes a SyncML model, not %s" % (type(msg).__name__,))
        hdr = msg.hdr
        last = self._last  # (the body is hashed only for a MsgID seen last time)
        if last is not None and last[0] == hdr.msg_id and last[1] == _digest(body):
            cached = self._last[2]  # the client did not get our reply: send it again
            return Outcome(cached.reply, cached.hmac_header, [], cached.finished, cached.body)
        turn = _Turn(msg, body, digest)
        if msg.unknown:  # kept out of the model by the codec: said once per message
            turn.effects.append(InputIgnored("elements not understood, ignored: %s" % (
                ", ".join(msg.unknown),)))
        if self._session_id is None:
            self._session_id = hdr.session_id
            self._version = (hdr.ver_dtd, hdr.ver_proto)
            problem = self._version_problem(hdr)
            if problem is not None:
                code, reason = problem
                turn.hdr_status = self._hdr_status(hdr, code, None)
                return self._reject(turn, code, "protocol_error", reason)
        self._remember_limits(hdr.meta)

        check = self._client_auth.check(hdr, body, hmac_header)
        turn.effects.extend(check.effects)
        turn.hdr_status = self._hdr_status(hdr, check.status, check.chal)
        if not check.ok:
            return self._auth_failed(turn, check)
        turn.effects.extend(self._server_auth.on_device_authenticated())

        for cmd in msg.body:
            if cmd.__class__ is sm.Alert and cmd.data == sm.ALERT_SESSION_ABORT:
                return self._client_abort(turn)
        if self._state == INIT:
            problem = self._package1_problem(msg)
            if problem is not None:
                return self._reject(turn, st.BAD_REQUEST, "protocol_error", problem)
            self._pkg1_fresh = False
        gave_up = self._take_server_verdicts(turn)
        for cmd in msg.body:
            kind = cmd.__class__  # (_take's first two cases, inline: each job's answers)
            if kind is sm.Status:
                self._take_status(cmd, turn)
            elif kind is sm.Results:
                self._take_results(cmd, turn)
            else:
                self._take(cmd, turn)
        if gave_up:
            reason = "the device rejected our credentials %d times" % (self._server_auth.failures,)
            return self._compose(turn, commands=False, end=("server_auth_rejected", reason))
        return self._respond(turn)

    # -- flow ------------------------------------------------------------

    def _respond(self, turn):
        msg = turn.msg
        if self._state == SENDING:
            return self._compose(turn, commands=True)  # next message of our package
        if not msg.final:
            turn.next_alert = True  # the client's package goes on: ask for more
            return self._compose(turn, commands=False, final=False)
        if self._reassembler.pending is not None:
            self._interrupt(turn, "the client ended its package")
            turn.next_alert = False  # there is no more to come: 1225, not 1222
        if self._state == WAITING:
            for job in self._jobs:  # the answers to our package are all in
                if job.state == RUNNING and job.all_sent():
                    turn.effects.append(job.finish())
        self._state = SENDING
        self._package_has_commands = False
        return self._compose(turn, commands=True)

    def _compose(self, turn, *, commands, final=None, end=None):
        """Build the reply: SyncHdr Status, owed Statuses, alerts, then commands."""
        builder = MessageBuilder(self._reply_hdr(), self._measure, self._max_msg_size, (),
                                 self._builder_encode)
        status = turn.hdr_status
        if self._deferred_chal is not None and status.chal is None and status.data == st.AUTHENTICATED:
            status.chal, self._deferred_chal = self._deferred_chal, None
        builder.add(status)
        builder.take_fitting(self._statuses)
        if self._statuses and builder.optional == 0 and end is None and self._shed_header(builder):
            # room made by moving the Chal to our next message
            builder.take_fitting(self._statuses)
        if self._statuses and builder.optional == 0:
            # MaxMsgSize cannot hold the header and one Status: it cannot be
            # honoured, so exceed it rather than owe Statuses forever
            while self._statuses:
                builder.add(self._statuses.pop(0))
            turn.effects.append(InputIgnored("MaxMsgSize %s too small for one Status; exceeded" % (
                self._max_msg_size,)))
        if turn.next_alert:
            alert = sm.Alert(data=sm.ALERT_NEXT_MESSAGE)
            if not builder.try_add(alert):
                builder.add(alert)
            self._sent[(builder.msg_id, alert.cmd_id)] = Sent(None)
        while self._alerts and builder.try_add(self._alerts[0]):
            self._sent[(builder.msg_id, self._alerts.pop(0).cmd_id)] = Sent(None)
        owed = len(self._statuses) + len(self._alerts)
        # (nothing owed now nor after our last message: _stalled would change nothing)
        if end is None and (owed or self._owed_before) and self._stalled(owed):
            reason = "the device's MaxMsgSize %s cannot carry the Statuses owed besides the " \
                     "message header (RespURI, Source)" % (self._max_msg_size,)
            for job in self._jobs:
                if job.state == QUEUED:
                    turn.effects.append(job.abandon("max_msg_size_too_small", reason))
            end = ("max_msg_size_too_small", reason)
        if end is not None:
            final = True
        elif commands:
            if not owed:
                self._fill(builder, turn)
            final = not owed and not self._queue
            if final and not self._package_has_commands:
                end = ("completed", "nothing left to do")
            elif final:
                self._state = WAITING
            else:
                self._state = SENDING
        if not final and end is None and builder.limit is not None:
            self._defer_chal_if_too_large(builder)
        return self._emit(builder, final, turn, end)

    def _stalled(self, owed):
        """Whether Statuses stay owed message after message without ever
        decreasing (each message has room for fewer than the client's last
        one needs): the session cannot go on."""
        if not owed:
            self._stalls = 0
        elif owed >= self._owed_before:
            self._stalls += 1
        else:
            self._stalls = 0
        self._owed_before = owed
        return self._stalls >= _MAX_STALLS

    def _defer_chal_if_too_large(self, builder):
        """Move the next-session NextNonce of a 212, then our own MaxMsgSize,
        to our next message when this one would otherwise exceed the client's
        MaxMsgSize (a first reply with Cred, RespURI and Chal can, at 1 KiB in
        XML).  Never from a last message (the caller asks only for one that
        is not, under a limit), never for HMAC (whose Chal belongs to every
        message)."""
        status = builder.body[0]
        if status.chal is not None and status.data == st.AUTHENTICATED and builder.size(False) > builder.limit:
            self._deferred_chal, status.chal = status.chal, None
            builder.forget()
        meta = builder.hdr.meta
        for attr in ("max_msg_size", "max_obj_size"):
            if meta is not None and getattr(meta, attr) is not None and builder.size(False) > builder.limit:
                setattr(meta, attr, None)  # announced in the next message instead
                builder.forget()

    def _shed_header(self, builder):
        """Move a 212's next-session Chal and our MaxMsgSize and MaxObjSize out
        of a message that is not the last (it owes Statuses): True if anything
        moved."""
        status, meta, moved = builder.body[0], builder.hdr.meta, False
        if status.chal is not None and status.data == st.AUTHENTICATED:
            self._deferred_chal, status.chal, moved = status.chal, None, True
        for attr in ("max_msg_size", "max_obj_size"):
            if meta is not None and getattr(meta, attr) is not None:
                setattr(meta, attr, None)
                moved = True
        if moved:
            builder.forget()
        return moved

    def _emit(self, builder, final, turn, end):
        for job in self._jobs:
            if job.state == RUNNING and job.settled():
                turn.effects.append(job.finish())
        if end is not None:
            outcome, reason = end
            turn.effects.extend(self._end_effects(outcome, reason, _JOB_ERRORS.get(outcome, outcome)))
        reply = builder.build(final)
        meta = reply.hdr.meta
        if meta is not None:
            if meta.max_msg_size is not None:
                self._msg_size_announced = True
            if meta.max_obj_size is not None:
                self._obj_size_announced = True
            if meta.max_msg_size is None and meta.max_obj_size is None and meta == _NO_META:
                reply.hdr.meta = None  # everything in it went out before
                builder.forget()
        if builder.encode is not None:  # the bytes of the last measure, when it was of this reply
            body = builder.encoded(reply)
        else:
            body = self._encode(reply) if self._encode is not None else None
        signature = self._server_auth.sign(body) if self._server_auth.signs else None
        self._sent_order.append(builder.msg_id)
        result = Outcome(reply, signature, turn.effects, self.finished, body)
        if self.finished:  # handle() takes no message any more: none to answer again
            self._last = None
            return result
        # a digest, not the body: a session waiting for its device (after a
        # 401, say) must not hold a message of up to max_body bytes
        digest = turn.digest if turn.digest is not None else _digest(turn.body)
        self._last = (turn.msg.hdr.msg_id, digest, result)
        return result

    def _end_effects(self, outcome, reason, job_code):
        effects = [
            job.abandon(job_code, reason) for job in self._jobs if job.state == RUNNING
        ]
        effects.append(SessionEnded(outcome, reason))
        self.finished = True
        self._state = ENDED
        return effects

    # -- replies that end or refuse ---------------------------------------

    def _auth_failed(self, turn, check):
        """Status only: the SyncHdr (401/407 + Chal) and every command, nothing executed."""
        for cmd in turn.msg.body:
            if isinstance(cmd, sm.Status):
                if is_hdr_status(cmd):  # a stranger's word: take its nonce, nothing else
                    turn.effects.extend(self._server_auth.adopt_nonce(cmd, False))
            else:
                self._owe(cmd, check.status, turn)
        aborting = self._state == INIT and any(
            isinstance(c, sm.Alert) and c.data == sm.ALERT_SESSION_ABORT for c in turn.msg.body
        )
        if aborting:
            return self._compose(turn, commands=False, end=("aborted", "the device aborted the session"))
        if check.exhausted:
            reason = "authentication failed %d times" % (self._client_auth.failures,)
            return self._compose(turn, commands=False, end=("auth_failed", reason))
        if self._state == INIT:
            self._pkg1_fresh = True  # the client restarts package 1
        return self._compose(turn, commands=False, final=self._state == INIT)

    def _client_abort(self, turn):
        """Alert 1223: Status for the SyncHdr and the Alert only, then the end.

        Statuses and Results that came with it still count for the jobs.
        """
        for cmd in turn.msg.body:
            if isinstance(cmd, (sm.Status, sm.Results)):
                self._take(cmd, turn)
        self._statuses = []
        for cmd in turn.msg.body:
            if isinstance(cmd, sm.Alert) and cmd.data == sm.ALERT_SESSION_ABORT:
                self._owe(cmd, st.OK, turn)
        return self._compose(turn, commands=False,
                             end=("aborted", "the device aborted the session (Alert 1223)"))

    def _reject(self, turn, code, outcome, reason):
        """Refuse the whole message with ``code`` for every command, and end."""
        for cmd in turn.msg.body:
            if not isinstance(cmd, sm.Status):
                unknown = isinstance(cmd, sm.UnknownCommand)
                self._owe(cmd, st.OPTIONAL_FEATURE_NOT_SUPPORTED if unknown else code, turn)
        turn.effects.append(InputIgnored(reason))
        return self._compose(turn, commands=False, end=(outcome, reason))

    def _version_problem(self, hdr):
        if hdr.ver_dtd not in _VER_DTD:
            return st.DTD_VERSION_NOT_SUPPORTED, "unsupported VerDTD %r" % (hdr.ver_dtd,)
        if hdr.ver_proto not in _VER_PROTO_USUAL and not _VER_PROTO.match(hdr.ver_proto or ""):
            return st.PROTOCOL_VERSION_NOT_SUPPORTED, "unsupported VerProto %r" % (hdr.ver_proto,)
        return None

    def _in_package1(self):
        """Whether the client's package 1 is still coming in (nothing sent yet)."""
        return self._state == INIT

    def _package1_problem(self, msg):
        starts = [c for c in msg.body if isinstance(c, sm.Alert) and c.data in SESSION_ALERTS]
        if self._pkg1_fresh and len(starts) != 1:
            return "package 1 needs exactly one Alert 1200/1201, got %d" % (len(starts),)
        if not self._pkg1_fresh and starts:
            return "Alert %d repeated within package 1" % (starts[0].data,)
        return None


def _nested(cmd):
    """``cmd`` and the commands inside it (a container's), in message order."""
    yield cmd
    if isinstance(cmd, sm.Container):
        for inner in cmd.commands:
            yield from _nested(inner)


def _digest(body):
    """What identifies a message's bytes (None for no body)."""
    if body is None:
        return None
    return hashlib.sha256(body.encode("utf-8") if isinstance(body, str) else body).digest()
