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
"""

import re
from collections import deque
import dataclasses
from dataclasses import dataclass, field
from typing import List, Optional

from ..auth.credentials import AuthError
from ..auth.nonce import DEFAULT_NONCE_SIZE
from ..codec import syncml as sm
from . import status as st
from .commands import (
    EVENT_TYPES, MAX_REPORTED, data_size, event_payload, reported_key, reported_text,
    results_answer,
)
from .effects import (
    DevInfoReceived,
    Effect,
    EventRaised,
    InputIgnored,
    JobStarted,
    Outcome,
    SessionEnded,
    SessionError,
)
from .jobs import FINISHED, QUEUED, RUNNING, JobRun
from .largeobject import Reassembler
from .packaging import MessageBuilder
from .sessionauth import ClientAuth, ServerAuth

__all__ = ["ServerSession"]

INIT, SENDING, WAITING, ENDED = "init", "sending", "waiting", "ended"

_VER_PROTO = re.compile(r"DM/1\.[0-9]+\Z", re.IGNORECASE)  # DM/1.1, 1.2, 1.3 (1.3 unconfirmed)
_VER_DTD = ("1.1", "1.2")
_SESSION_ALERTS = (sm.ALERT_SERVER_INITIATED, sm.ALERT_CLIENT_INITIATED)
# a command that fits a plain continuation message waits for one while other
# content fills the messages; this many in a row is a loop guard, not a rule
_MAX_DEFERRALS = 10
_MAX_STALLS = 3  # messages in a row that could not pay off the Statuses owed

# job error code for each way a session can end early
_JOB_ERRORS = {"aborted": "session_aborted", "timeout": "session_timeout"}


@dataclass
class _Sent:
    """One command we sent, by (our MsgID, its CmdID)."""

    unit: object  # jobs.Unit, or None for our own Alerts (1222, 1225)
    index: Optional[int] = None  # job command index; None for the Atomic itself
    chunk: bool = False  # a chunk other than the last of a large object
    answered: bool = False


@dataclass
class _Turn:
    """Scratch state while one client message is handled."""

    msg: sm.SyncML
    body: bytes
    effects: List[Effect] = field(default_factory=list)
    hdr_status: Optional[sm.Status] = None
    next_alert: bool = False  # the reply asks for the client's next message (1222)


def _is_hdr_status(status):
    return status.cmd_ref == "0" or status.cmd == "SyncHdr"


def _command_name(cmd):
    if isinstance(cmd, sm.UnknownCommand):
        return cmd.name or (cmd.node.name if cmd.node is not None else "")
    return cmd.NAME


def _loc(ref):
    return ref.loc_uri if ref is not None else None


def _size_of(item, command_meta):
    for meta in (item.meta, command_meta):
        if meta is not None and meta.size is not None:
            return meta.size
    return None


class ServerSession:
    """One device's DM session.  See the module docstring for the states."""

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
        if measure is None:
            if encode is None:
                raise SessionError("a session needs measure or encode")
            measure = lambda msg: len(encode(msg))  # noqa: E731
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
        self._sent = {}  # (our MsgID, CmdID) -> _Sent
        self._sent_order = []  # our MsgIDs, oldest first
        self._rejected = set()  # our MsgIDs whose credentials the device refused
        self._msg_id = 0
        self._session_id = None
        self._version = (sm.VERDTD_1_2, sm.VERPROTO_DM_1_2)
        self._max_msg_size = default_max_msg_size
        self._client_max_obj_size = None
        self._package_has_commands = False
        self._last = None  # (client MsgID, body, Outcome) for retransmissions
        self._deferred_chal = None  # a 212's Chal that did not fit, for our next message
        self._msg_size_announced = accept_msg_size is None  # our MaxMsgSize went out once
        self._obj_size_announced = False  # and our MaxObjSize (both hold for the session)
        self._owed_before, self._stalls = 0, 0  # Statuses still owed after our last message
        self.finished = False

    # -- public ----------------------------------------------------------

    def add_job(self, job):
        """Queue a job created while the session is live (sent in a later package)."""
        if self.finished:
            raise SessionError("the session is over")
        if any(run.job_id == job.job_id for run in self._jobs):
            return  # the session already has it (it was queued when the session opened)
        self._jobs.append(JobRun(job))

    def abort(self, reason_code, message):
        """End the session from outside (timeout, superseded, shutdown).

        Running jobs fail with ``reason_code`` ("timeout" becomes
        ``session_timeout``); jobs never started are left to the dispatcher.
        """
        if self.finished:
            return []
        effects = self._end_effects(reason_code, message, _JOB_ERRORS.get(reason_code, reason_code))
        return effects

    def handle(self, msg, *, body, hmac_header=None):
        """The reply to one client message and the effects it has."""
        if self.finished:
            raise SessionError("the session is over")
        if not isinstance(msg, sm.SyncML):
            raise SessionError("handle() takes a SyncML model, not %s" % (type(msg).__name__,))
        hdr = msg.hdr
        if self._last is not None and self._last[:2] == (hdr.msg_id, body):
            cached = self._last[2]  # the client did not get our reply: send it again
            return Outcome(cached.reply, cached.hmac_header, [], cached.finished, cached.body)
        turn = _Turn(msg, body)
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

        if any(isinstance(c, sm.Alert) and c.data == sm.ALERT_SESSION_ABORT for c in msg.body):
            return self._client_abort(turn)
        if self._state == INIT:
            problem = self._package1_problem(msg)
            if problem is not None:
                return self._reject(turn, st.BAD_REQUEST, "protocol_error", problem)
            self._pkg1_fresh = False
        gave_up = self._take_server_verdicts(turn)
        for cmd in msg.body:
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
        builder = MessageBuilder(self._reply_hdr(), self._measure, self._max_msg_size)
        status = turn.hdr_status
        if self._deferred_chal is not None and status.chal is None and status.data == st.AUTHENTICATED:
            status.chal, self._deferred_chal = self._deferred_chal, None
        builder.add(status)
        while self._statuses and builder.try_add(self._statuses[0]):
            self._statuses.pop(0)
        if self._statuses and builder.optional == 0 and end is None and self._shed_header(builder):
            while self._statuses and builder.try_add(self._statuses[0]):
                self._statuses.pop(0)  # room made by moving the Chal to our next message
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
            self._sent[(builder.msg_id, alert.cmd_id)] = _Sent(None)
        while self._alerts and builder.try_add(self._alerts[0]):
            self._sent[(builder.msg_id, self._alerts.pop(0).cmd_id)] = _Sent(None)
        owed = bool(self._statuses or self._alerts)
        if end is None and self._stalled(len(self._statuses) + len(self._alerts)):
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
        self._defer_chal_if_too_large(builder, final, end)
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

    def _defer_chal_if_too_large(self, builder, final, end):
        """Move the next-session NextNonce of a 212, then our own MaxMsgSize,
        to our next message when this one would otherwise exceed the client's
        MaxMsgSize (a first reply with Cred, RespURI and Chal can, at 1 KiB in
        XML).  Never from a last message, never for HMAC (whose Chal belongs
        to every message)."""
        status = builder.body[0]
        if final or end is not None or builder.limit is None:
            return
        if status.chal is not None and status.data == st.AUTHENTICATED and builder.size(final) > builder.limit:
            self._deferred_chal, status.chal = status.chal, None
        meta = builder.hdr.meta
        for attr in ("max_msg_size", "max_obj_size"):
            if meta is not None and getattr(meta, attr) is not None and builder.size(final) > builder.limit:
                setattr(meta, attr, None)  # announced in the next message instead

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
        return moved

    def _emit(self, builder, final, turn, end):
        for job in self._jobs:
            if job.state == RUNNING and job.settled():
                turn.effects.append(job.finish())
        if end is not None:
            outcome, reason = end
            turn.effects.extend(self._end_effects(outcome, reason, _JOB_ERRORS.get(outcome, outcome)))
        reply = builder.build(final)
        if reply.hdr.meta is not None and reply.hdr.meta.max_msg_size is not None:
            self._msg_size_announced = True
        if reply.hdr.meta is not None and reply.hdr.meta.max_obj_size is not None:
            self._obj_size_announced = True
        if reply.hdr.meta is not None and reply.hdr.meta == sm.Meta():
            reply.hdr.meta = None  # everything in it went out before
        body = self._encode(reply) if self._encode is not None else None
        signature = self._server_auth.sign(body) if self._server_auth.signs else None
        self._sent_order.append(builder.msg_id)
        result = Outcome(reply, signature, turn.effects, self.finished, body)
        self._last = (turn.msg.hdr.msg_id, turn.body, result)
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
                if _is_hdr_status(cmd):  # a stranger's word: take its nonce, nothing else
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
        if not _VER_PROTO.match(hdr.ver_proto or ""):
            return st.PROTOCOL_VERSION_NOT_SUPPORTED, "unsupported VerProto %r" % (hdr.ver_proto,)
        return None

    def _package1_problem(self, msg):
        starts = [c for c in msg.body if isinstance(c, sm.Alert) and c.data in _SESSION_ALERTS]
        if self._pkg1_fresh and len(starts) != 1:
            return "package 1 needs exactly one Alert 1200/1201, got %d" % (len(starts),)
        if not self._pkg1_fresh and starts:
            return "Alert %d repeated within package 1" % (starts[0].data,)
        return None

    # -- the device's verdict on our credentials ---------------------------

    def _take_server_verdicts(self, turn):
        """Read the device's Status for our SyncHdr(s); True if we must give up."""
        for status in turn.msg.commands(sm.Status):
            if not _is_hdr_status(status):
                continue
            msg_ref = status.msg_ref or (self._sent_order[-1] if self._sent_order else None)
            if msg_ref not in self._sent_order:
                turn.effects.append(InputIgnored("SyncHdr Status for unknown MsgRef %r" % (msg_ref,)))
                continue
            verdict, effects = self._server_auth.on_status(status, device_authenticated=True)
            turn.effects.extend(effects)
            if verdict == "give_up":
                return True
            if verdict == "rejected":
                self._resend(msg_ref)
        return False

    def _resend(self, msg_id):
        """Queue again everything our message ``msg_id`` carried."""
        self._rejected.add(msg_id)
        units = []
        for (sent_msg, _), sent in self._sent.items():
            if sent_msg == msg_id and sent.unit is not None and sent.unit not in units:
                units.append(sent.unit)
        for unit in reversed(units):
            if unit in self._queue:
                self._queue.remove(unit)
            unit.requeue()
            self._queue.appendleft(unit)

    # -- client commands -------------------------------------------------

    def _take(self, cmd, turn):
        if isinstance(cmd, sm.Status):
            self._take_status(cmd, turn)
        elif isinstance(cmd, sm.Results):
            self._take_results(cmd, turn)
        elif not cmd.cmd_id:
            turn.effects.append(InputIgnored("%s without CmdID" % (_command_name(cmd),)))
            self._owe(cmd, st.BAD_REQUEST, turn)
        elif isinstance(cmd, sm.Alert):
            self._owe(cmd, self._take_alert(cmd, turn), turn)
        elif isinstance(cmd, sm.Replace):
            self._owe(cmd, self._take_replace(cmd, turn), turn)
        elif isinstance(cmd, sm.UnknownCommand):
            self._owe(cmd, st.OPTIONAL_FEATURE_NOT_SUPPORTED, turn)
        else:
            self._refuse(cmd, turn)  # management commands are not for clients to send

    def _refuse(self, cmd, turn):
        self._owe(cmd, st.NOT_ALLOWED, turn)
        if isinstance(cmd, sm.Container):
            for inner in cmd.commands:
                if not isinstance(inner, sm.Status):
                    self._refuse(inner, turn)

    def _owe(self, cmd, code, turn):
        self._statuses.append(sm.Status(
            msg_ref=turn.msg.hdr.msg_id, cmd_ref=cmd.cmd_id or "", cmd=_command_name(cmd), data=code,
        ))

    def _find(self, msg_ref, cmd_ref):
        """The command we sent that (MsgRef, CmdRef) names; newest message if no MsgRef."""
        if msg_ref:
            return msg_ref, self._sent.get((msg_ref, cmd_ref))
        for msg_id in reversed(self._sent_order):
            sent = self._sent.get((msg_id, cmd_ref))
            if sent is not None:
                return msg_id, sent
        return None, None

    def _take_status(self, status, turn):
        if _is_hdr_status(status):
            return  # read by _take_server_verdicts
        msg_ref, sent = self._find(status.msg_ref, status.cmd_ref)
        if msg_ref in self._rejected:
            return  # the device refused that message; it is being sent again
        if sent is None:
            turn.effects.append(InputIgnored(
                "Status %s for unknown command %s/%s" % (status.data, status.msg_ref, status.cmd_ref)))
            return
        if sent.answered:
            turn.effects.append(InputIgnored("second Status for %s/%s" % (msg_ref, status.cmd_ref)))
            return
        sent.answered = True
        unit = sent.unit
        if unit is None or unit.job.state == FINISHED:
            return  # our own alert, or too late to matter
        job = unit.job
        if sent.chunk:
            if status.data == st.CHUNK_ACCEPTED:
                return
            # any other answer to a chunk that is not the last ends the object:
            # an error is the device's final word; a success means it took the
            # chunk as the whole value (it does not support large objects), so
            # the rest is not sent and the command fails
            if unit in self._queue:
                self._queue.remove(unit)
            if st.is_success(status.data):
                target = _loc(unit.data_item().target)
                job.fail_unit(unit, "large_object_unsupported",
                              "device does not support large objects: it answered %d to a chunk "
                              "of %s that was not the last" % (status.data, target),
                              status=status.data)
                turn.effects.append(InputIgnored("Status %d for a middle chunk of %s: large object "
                                                 "stopped" % (status.data, target)))
            else:
                job.set_status(unit.indexes[0], status)
                unit.state = "sent"
            return
        if sent.index is None:  # the Atomic or Sequence itself
            unit.container_status = status.data
            if job.spec.atomic:
                job.atomic_status = status.data
        else:
            job.set_status(sent.index, status)

    def _take_results(self, results, turn):
        msg_ref, sent = self._find(results.msg_ref, results.cmd_ref)
        key = ("Results", msg_ref, results.cmd_ref)
        if self._reassembler.is_refused(key) and results.items:  # the rest of a refused object
            self._owe(results, self._reassembler.feed(key, results.items[-1]).status, turn)
            return
        command = None
        if sent is not None and sent.unit is not None and sent.index is not None:
            command = sent.unit.job.commands[sent.index]
        if command is None or command.op != "Get" or sent.unit.job.state == FINISHED:
            turn.effects.append(InputIgnored("Results for no pending Get (%s/%s)" % (
                results.msg_ref, results.cmd_ref)))
            return
        job = sent.unit.job
        self._check_interrupt(key, turn)
        last = results.items[-1] if results.items else None
        chunked = last is not None and (last.more_data or self._reassembler.is_open(key))
        if not chunked:
            if not job.set_results(sent.index, results_answer(results)):
                turn.effects.append(InputIgnored("second Results for %s" % (command.label,)))
            return
        chunk = self._reassembler.feed(key, last, _size_of(last, results.meta))
        if chunk.status == st.CHUNK_ACCEPTED:
            command.results_pending = True
            turn.next_alert = True
            self._owe(results, st.CHUNK_ACCEPTED, turn)
        elif chunk.status == st.OK:
            job.set_results(sent.index, results_answer(results, data=chunk.data))
        else:  # 413 too large / 424 size mismatch: the Get failed
            command.results_pending = False
            command.status = chunk.status
            self._owe(results, chunk.status, turn)

    def _take_alert(self, alert, turn):
        code = alert.data
        if code is None:
            return st.INCOMPLETE_COMMAND
        if code in _SESSION_ALERTS:
            return st.OK if self._state == INIT else st.OPTIONAL_FEATURE_NOT_SUPPORTED
        if code == sm.ALERT_NEXT_MESSAGE:
            return st.OK
        if code not in EVENT_TYPES:
            return st.OPTIONAL_FEATURE_NOT_SUPPORTED  # incl. UI alerts: servers ignore them
        if not alert.items:
            return st.INCOMPLETE_COMMAND
        kind = EVENT_TYPES[code]
        last = alert.items[-1]
        key = ("Alert", code, _loc(last.source) or _loc(last.target))
        self._check_interrupt(key, turn)
        for item in alert.items[:-1]:
            turn.effects.append(EventRaised(kind, event_payload(alert, item)))
        if not (last.more_data or self._reassembler.is_open(key)):
            turn.effects.append(EventRaised(kind, event_payload(alert, last)))
            return st.OK
        chunk = self._reassembler.feed(key, last, _size_of(last, None))
        if chunk.status == st.CHUNK_ACCEPTED:
            turn.next_alert = True
        elif chunk.status == st.OK:
            turn.effects.append(EventRaised(kind, event_payload(alert, last, data=chunk.data)))
        return chunk.status

    def _take_replace(self, replace, turn):
        """A client may replace DevInfo (package 1, tolerated later); other
        nodes in the same Replace are kept as reported device data."""
        if not replace.items:
            return st.INCOMPLETE_COMMAND
        keys = [reported_key(item) for item in replace.items]
        if None in keys:
            return st.INCOMPLETE_COMMAND  # an Item naming no node
        last, key = replace.items[-1], ("Replace", keys[-1])
        self._check_interrupt(key, turn)
        values, code = {}, st.OK
        for item, name in zip(replace.items[:-1], keys):
            values[name] = reported_text(item.data)
        if last.more_data or self._reassembler.is_open(key):
            chunk = self._reassembler.feed(key, last, _size_of(last, replace.meta))
            code = chunk.status
            if code == st.CHUNK_ACCEPTED:
                turn.next_alert = True
            elif code == st.OK:
                values[keys[-1]] = reported_text(chunk.data)
        else:
            values[keys[-1]] = reported_text(last.data)
        devinfo = {name: text for name, text in values.items()
                   if text is not None and not name.startswith("./")}
        reported = {uri: text for uri, text in values.items()
                    if text is not None and uri.startswith("./")}
        if len(reported) > MAX_REPORTED:
            turn.effects.append(InputIgnored("%d reported nodes; the first %d kept" % (
                len(reported), MAX_REPORTED)))
            reported = dict(list(reported.items())[:MAX_REPORTED])
        if devinfo or reported:
            turn.effects.append(DevInfoReceived(devinfo, reported))
        return code

    def _check_interrupt(self, key, turn):
        pending = self._reassembler.pending
        if pending is not None and pending.key != key:
            self._interrupt(turn, "a new object came before its last chunk")

    def _interrupt(self, turn, why):
        """Drop an unfinished incoming large object and tell the client (Alert 1225)."""
        obj = self._reassembler.interrupt()
        item = obj.first_item
        self._alerts.append(sm.Alert(data=sm.ALERT_NO_END_OF_DATA,
                                     items=[sm.Item(target=item.target, source=item.source)]))
        turn.effects.append(InputIgnored("large object %r dropped: %s" % (obj.key[0], why)))
        if obj.key[0] == "Results":
            _, sent = self._find(obj.key[1], obj.key[2])
            command = sent.unit.job.commands[sent.index]
            command.results_pending = False
            command.status = st.INCOMPLETE_COMMAND

    # -- sending ---------------------------------------------------------

    def _reply_hdr(self):
        self._msg_id += 1
        cred, loc_name = self._server_auth.header_cred()
        ver_dtd, ver_proto = self._version
        meta = sm.Meta(  # our limits go out once: they hold for the whole session
            max_msg_size=None if self._msg_size_announced else self.accept_msg_size,
            max_obj_size=None if self._obj_size_announced else self.max_obj_size,
        )
        return sm.SyncHdr(
            session_id=self._session_id,
            msg_id=str(self._msg_id),
            target=sm.LocRef(self.device.device_id),
            source=sm.LocRef(self.server_uri, loc_name),
            ver_dtd=ver_dtd,
            ver_proto=ver_proto,
            resp_uri=self.resp_uri,
            cred=cred,
            meta=meta if meta != sm.Meta() else None,
        )

    def _hdr_status(self, hdr, code, chal):
        return sm.Status(
            msg_ref=hdr.msg_id, cmd_ref="0", cmd="SyncHdr",
            target_refs=[_loc(hdr.target) or ""], source_refs=[_loc(hdr.source) or ""],
            chal=chal, data=code,
        )

    def _remember_limits(self, meta):
        if meta is None:
            return
        if meta.max_msg_size:
            self._max_msg_size = meta.max_msg_size
        if meta.max_obj_size:
            self._client_max_obj_size = meta.max_obj_size

    def _fill(self, builder, turn):
        """Place units of the open package; then whole following jobs that fit."""
        while True:
            if not self._queue:
                job = next((job for job in self._jobs if job.state == QUEUED), None)
                if job is None:
                    return
                if not self._package_has_commands:
                    self._start(job, turn)
                elif not self._try_whole_job(builder, job, turn):
                    return
                continue
            unit = self._queue[0]
            placed = self._place(builder, unit)
            if placed == "placed":
                self._queue.popleft()
            else:
                unit.deferrals += placed == "full"
                return

    def _start(self, job, turn):
        job.state = RUNNING
        self._queue.extend(job.units)
        turn.effects.append(JobStarted(job.job_id))

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

    def _place(self, builder, unit):
        """Put ``unit`` (or its next chunk) in the message: "placed", "partial" or "full"."""
        job = unit.job
        problem = self._too_large_for_client(unit)
        if problem is not None:
            job.fail_unit(unit, "too_large", problem, status=st.TOO_LARGE)
            return "placed"
        if unit.outgoing is None:
            cmd = unit.render()
            try:
                if builder.try_add(cmd):
                    self._record(builder, unit, cmd)
                    return "placed"
            except ValueError as error:
                job.fail_unit(unit, "bad_command", "cannot encode %s: %s" % (cmd.NAME, error))
                return "placed"
            alone = self._fits_later(builder, unit.render())
            if unit.data_item() is None or unit.atomic:
                if alone and unit.deferrals < _MAX_DEFERRALS:
                    return "full"
                job.fail_unit(unit, "too_large", "%s does not fit in a message of %s bytes" % (
                    cmd.NAME, self._max_msg_size))
                return "placed"
            if alone and unit.deferrals < _MAX_DEFERRALS:
                return "full"  # it fits whole in the next message: no need to chunk
            unit.start_chunks()
        # a chunk of n units is at least n bytes: never try more than the limit
        longest = min(unit.outgoing.remaining, self._max_msg_size or unit.outgoing.remaining)
        length, cmd = builder.fit_largest(unit.render_chunk, longest)
        if cmd is None:
            # no room left here (a first reply carries Cred and Chal, Statuses
            # fill it): if a chunk fits in a plain continuation message, end
            # this one and go on there
            if self._fits_later(builder, unit.render_chunk(1)) and unit.deferrals < _MAX_DEFERRALS:
                return "full"
            job.fail_unit(unit, "max_msg_size_too_small",
                          "the device's MaxMsgSize %s leaves no room for data after the message "
                          "header (RespURI, Source) and the Statuses" % (self._max_msg_size,))
            return "placed"
        last = not cmd.items[0].more_data
        self._record(builder, unit, cmd, chunk=not last)
        unit.outgoing.advance(length)
        unit.deferrals = 0
        return "placed" if last else "partial"

    def _fits_later(self, builder, cmd):
        """Whether ``cmd`` fits in a plain continuation message: only the SyncHdr
        Status and one more, no Chal, no Meta (our limits went out) and no Cred (the device answers our
        credentials in its next message)."""
        lean = dataclasses.replace(builder.hdr, cred=None, meta=None)
        return builder.fits_alone(cmd, self._minimal_body(builder), lean)

    def _minimal_body(self, builder):
        """What every continuation message carries at least: the SyncHdr Status and one more."""
        hdr_status = dataclasses.replace(builder.body[0], chal=None)  # a Chal goes out once
        return [hdr_status, sm.Status(cmd_id="2", msg_ref="99", cmd_ref="99", cmd="Alert")]

    def _too_large_for_client(self, unit):
        limit = self._client_max_obj_size
        if not limit:
            return None
        for item in unit.data_items():
            size = data_size(item.data)
            if size > limit:
                return "object of %d bytes for %s exceeds the device's MaxObjSize %d" % (
                    size, _loc(item.target), limit)
        return None

    def _record(self, builder, unit, cmd, chunk=False):
        msg_id = builder.msg_id
        if unit.atomic:
            self._sent[(msg_id, cmd.cmd_id)] = _Sent(unit)
            for index, inner in zip(unit.indexes, cmd.commands):
                self._sent[(msg_id, inner.cmd_id)] = _Sent(unit, index)
        else:
            self._sent[(msg_id, cmd.cmd_id)] = _Sent(unit, unit.indexes[0], chunk)
        if not chunk:
            unit.state = "sent"
        self._package_has_commands = True
