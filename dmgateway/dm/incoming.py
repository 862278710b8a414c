"""The device's side of a DM session: its commands, Statuses and Results.

:class:`ClientCommands` is mixed into :class:`~.session.ServerSession` and
works on its state: it reads the device's verdict on our credentials, answers
every client command with a Status (owed until a reply has room for it),
correlates Statuses and Results with the job commands we sent (by MsgRef and
CmdRef), takes Alerts (events, chunked or not) and Replace of DevInfo, and
reassembles incoming large objects (:mod:`.largeobject`), dropping an
unfinished one with Alert 1225.
"""

from typing import Optional

from ..codec import syncml as sm
from . import status as st
from .commands import (
    EVENT_TYPES, MAX_REPORTED, event_payload, reported_key, reported_text, results_answer,
)
from .effects import DevInfoReceived, EventRaised, InputIgnored
from .jobs import FINISHED

__all__ = ["ClientCommands", "SESSION_ALERTS", "command_name", "is_hdr_status", "loc_uri"]

SESSION_ALERTS = (sm.ALERT_SERVER_INITIATED, sm.ALERT_CLIENT_INITIATED)


def is_hdr_status(status: sm.Status) -> bool:
    """Whether ``status`` answers a SyncHdr (CmdRef 0, or Cmd SyncHdr without CmdRef)."""
    return status.cmd_ref == "0" or status.cmd == "SyncHdr"


def command_name(cmd: sm.Command) -> str:
    """The element name of a client command, also of one the codec did not know."""
    if isinstance(cmd, sm.UnknownCommand):
        return cmd.name or (cmd.node.name if cmd.node is not None else "")
    return cmd.NAME


def loc_uri(ref: Optional[sm.LocRef]) -> Optional[str]:
    """The LocURI of a Target or Source (None without one)."""
    return ref.loc_uri if ref is not None else None


def _size_of(item, command_meta):
    for meta in (item.meta, command_meta):
        if meta is not None and meta.size is not None:
            return meta.size
    return None


class ClientCommands:
    """What :class:`~.session.ServerSession` does with each client message's commands.

    A mixin: it uses the session's ``_statuses``, ``_sent``, ``_sent_order``,
    ``_queue``, ``_alerts``, ``_reassembler`` and auth state, and its
    ``_in_package1()``.
    """

    # -- the device's verdict on our credentials ---------------------------

    def _take_server_verdicts(self, turn):
        """Read the device's Status for our SyncHdr(s); True if we must give up."""
        for status in turn.msg.body:
            # (is_hdr_status, inline: every Status of a message comes by)
            if status.__class__ is not sm.Status or status.cmd_ref != "0" and status.cmd != "SyncHdr":
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
        kind = cmd.__class__  # (these model classes have no subclasses)
        if kind is sm.Status:
            self._take_status(cmd, turn)
        elif kind is sm.Results:
            self._take_results(cmd, turn)
        elif not cmd.cmd_id:
            turn.effects.append(InputIgnored("%s without CmdID" % (command_name(cmd),)))
            self._owe(cmd, st.BAD_REQUEST, turn)
        elif kind is sm.Alert:
            self._owe(cmd, self._take_alert(cmd, turn), turn)
        elif kind is sm.Replace:
            self._owe(cmd, self._take_replace(cmd, turn), turn)
        elif kind is sm.UnknownCommand:
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
        self._statuses.append(sm.Status(  # (positional, see ServerCommands._reply_hdr)
            "", turn.msg.hdr.msg_id, cmd.cmd_id or "", command_name(cmd), [], [], None, None, code, [],
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
        if status.cmd_ref == "0" or status.cmd == "SyncHdr":  # (is_hdr_status, inline: one per job)
            return  # read by _take_server_verdicts
        msg_ref = status.msg_ref
        if msg_ref:  # (_find's first case, inline)
            sent = self._sent.get((msg_ref, status.cmd_ref))
        else:
            msg_ref, sent = self._find(msg_ref, status.cmd_ref)
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
        job = unit._job() if unit is not None else None  # (Unit.job: a weak reference, looked up once)
        if job is None or job.state == FINISHED:
            return  # our own alert, or too late to matter
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
                target = loc_uri(unit.data_item().target)
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
        msg_ref = results.msg_ref
        if msg_ref:  # (_find's first case, inline: one per Get)
            sent = self._sent.get((msg_ref, results.cmd_ref))
        else:
            msg_ref, sent = self._find(msg_ref, results.cmd_ref)
        key = ("Results", msg_ref, results.cmd_ref)
        reassembler = self._reassembler
        # (no large object open nor refused, the common case: none of the checks below can hold)
        quiet = reassembler.pending is None and not reassembler.refused
        if not quiet and reassembler.is_refused(key) and results.items:  # the rest of a refused object
            self._owe(results, reassembler.feed(key, results.items[-1]).status, turn)
            return
        command = job = None
        if sent is not None and sent.unit is not None and sent.index is not None:
            job = sent.unit._job()  # (Unit.job: a weak reference, looked up once)
            command = job.commands[sent.index]
        if command is None or command.op != "Get" or job.state == FINISHED:
            turn.effects.append(InputIgnored("Results for no pending Get (%s/%s)" % (
                results.msg_ref, results.cmd_ref)))
            return
        if not quiet:
            self._check_interrupt(key, turn)
        last = results.items[-1] if results.items else None
        chunked = last is not None and (last.more_data or not quiet and reassembler.is_open(key))
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
        if code in SESSION_ALERTS:
            return st.OK if self._in_package1() else st.OPTIONAL_FEATURE_NOT_SUPPORTED
        if code == sm.ALERT_NEXT_MESSAGE:
            return st.OK
        if code not in EVENT_TYPES:
            return st.OPTIONAL_FEATURE_NOT_SUPPORTED  # incl. UI alerts: servers ignore them
        if not alert.items:
            return st.INCOMPLETE_COMMAND
        kind = EVENT_TYPES[code]
        last = alert.items[-1]
        key = ("Alert", code, loc_uri(last.source) or loc_uri(last.target))
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
        devinfo, reported = {}, {}  # ./DevInfo/X is named X; any other node by its URI
        for name, text in values.items():
            if text is not None:
                if name.startswith("./"):
                    reported[name] = text
                else:
                    devinfo[name] = text
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
