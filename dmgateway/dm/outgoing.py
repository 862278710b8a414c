"""The server's side of a DM session: building the commands we send.

:class:`ServerCommands` is mixed into :class:`~.session.ServerSession`: it
writes our SyncHdr (credentials, our limits once) and the Status for the
client's, fills a message with the units of the open package and whole
following jobs that fit (:mod:`.packaging`), sends values too large for one
message as chunks (:mod:`.largeobject`), and records each command sent so
that answers can be correlated (:class:`Sent`).
"""

import dataclasses
from dataclasses import dataclass
from typing import Optional

from ..codec import syncml as sm
from . import status as st
from .commands import data_size
from .effects import JobStarted
from .incoming import loc_uri
from .jobs import QUEUED, RUNNING

__all__ = ["MAX_DEFERRALS", "Sent", "ServerCommands"]

# a command that fits a plain continuation message waits for one while other
# content fills the messages; this many in a row is a loop guard, not a rule
MAX_DEFERRALS = 10
# the most units placed by one search (rendered as the search goes)
_RUN = 128
# the most whole jobs measured together (see ServerCommands._try_whole_jobs)
_WHOLE_JOBS = 16


@dataclass(slots=True)  # (one or more per job: no instance dict)
class Sent:
    """One command we sent, by (our MsgID, its CmdID)."""

    unit: object  # jobs.Unit, or None for our own Alerts (1222, 1225)
    index: Optional[int] = None  # job command index; None for the Atomic itself
    chunk: bool = False  # a chunk other than the last of a large object
    answered: bool = False


class ServerCommands:
    """How :class:`~.session.ServerSession` builds its messages.

    A mixin: it uses the session's ``_queue``, ``_jobs``, ``_sent``, limits
    and auth state.
    """

    # -- sending ---------------------------------------------------------

    def _reply_hdr(self):
        self._msg_id += 1
        cred, loc_name = self._server_auth.header_cred()
        ver_dtd, ver_proto = self._version
        # our limits go out once: they hold for the whole session
        max_msg_size = None if self._msg_size_announced else self.accept_msg_size
        max_obj_size = None if self._obj_size_announced else self.max_obj_size
        meta = None
        if max_msg_size is not None or max_obj_size is not None:
            meta = sm.Meta(max_msg_size=max_msg_size, max_obj_size=max_obj_size)
        # (positional: a keyword call costs more than the rest of the header;
        # the field order is checked by tests/dm/test_model_order.py)
        return sm.SyncHdr(
            self._session_id, str(self._msg_id),
            sm.LocRef(self.device.device_id), sm.LocRef(self.server_uri, loc_name),
            ver_dtd, ver_proto, self.resp_uri, False, cred, meta,
        )

    def _hdr_status(self, hdr, code, chal):
        target, source = hdr.target, hdr.source
        return sm.Status(  # (positional, see _reply_hdr) CmdID set by the builder
            "", hdr.msg_id, "0", "SyncHdr",
            [(target.loc_uri or "") if target is not None else ""],
            [(source.loc_uri or "") if source is not None else ""],
            None, chal, code, [],
        )

    def _remember_limits(self, meta):
        if meta is None:
            return
        if meta.max_msg_size:
            self._max_msg_size = meta.max_msg_size
        if meta.max_obj_size:
            self._client_max_obj_size = meta.max_obj_size

    def _fill(self, builder, turn):
        """Place units of the open package; then whole following jobs that fit.

        Runs of units go through :meth:`_place_run` unless our last message
        held a single command from here: one a message, the search only
        adds its own cost to what one by one measures.
        """
        runs = builder.limit is not None and self._last_fill != 1  # (unlimited: nothing is measured)
        start = builder.optional
        self._package_had = self._package_has_commands
        try:
            self._fill_units(builder, turn, runs)
        finally:
            self._last_fill = builder.optional - start

    def _fill_units(self, builder, turn, runs):
        together = builder.limit is not None  # (unlimited: nothing is measured, nothing to save)
        while True:
            if not self._queue:
                for job in self._jobs:  # the first job not started yet
                    if job.state == QUEUED:
                        break
                else:
                    return
                if not self._package_has_commands:
                    self._start(job, turn)
                elif together and self._try_whole_jobs(builder, job, turn):
                    pass
                else:
                    together = False  # (they did not all fit: job by job from here)
                    if not self._try_whole_job(builder, job, turn):
                        return
                continue
            run = "short"
            if runs and len(self._queue) > 1:
                run = self._place_run(builder)
                if run == "whole":
                    continue
                if run == "error":  # one by one from here, as before
                    runs = False
            unit = self._queue[0]
            placed = self._place(builder, unit, misfit=run == "misfit")
            if placed == "placed":
                self._queue.popleft()
            else:
                unit.deferrals += placed == "full"
                return

    def _start(self, job, turn):
        job.state = RUNNING
        self._queue.extend(job.units)
        turn.effects.append(JobStarted(job.job_id))

    def _try_whole_jobs(self, builder, first, turn):
        """Every queued job from ``first`` on, whole, in this message with ONE
        measure, when there are several and they all fit (a few small jobs,
        the usual case), as :meth:`_try_whole_job` job by job would place
        them: a message only grows as commands are appended, so when all
        fit each job would have.  Else nothing is placed (False), and the
        caller goes job by job (those rendered here render again, fresh).
        At most :data:`_WHOLE_JOBS` jobs at once: a backlog too large for
        the message costs one measure more, of that many jobs."""
        jobs = self._jobs
        waiting = [job for job in jobs[jobs.index(first):] if job.state == QUEUED][:_WHOLE_JOBS]
        return len(waiting) > 1 and self._place_whole(builder, waiting, turn)

    def _try_whole_job(self, builder, job, turn):
        """All of ``job``'s units in this message, or none (then False)."""
        return self._place_whole(builder, (job,), turn)

    def _place_whole(self, builder, jobs, turn):
        """All units of every one of ``jobs`` in this message, measured once,
        or none (then False)."""
        if self._client_max_obj_size:  # (_too_large_for_client answers None without it)
            for job in jobs:
                for unit in job.units:
                    if self._too_large_for_client(unit) is not None:
                        return False
        cmds = []
        for job in jobs:
            for unit in job.units:
                cmds.append(unit.render())
        try:
            fits = builder.try_add_all(cmds)  # one measure: a message grows with each command
        except ValueError:
            fits = False
        if not fits:
            return False
        placed = iter(cmds)
        for job in jobs:
            job.state = RUNNING
            turn.effects.append(JobStarted(job.job_id))
            for unit in job.units:
                self._record(builder, unit, next(placed))
        return True

    def _place_run(self, builder):
        """Place the plain units at the front of the queue (whole commands,
        none over the device's MaxObjSize) that fit, as :meth:`_place` one by
        one would, with fewer measures.  Returns "whole" (the run is placed),
        "misfit" (the unit now first was measured not to fit after those
        placed), "error" (an encoder error: nothing placed, :meth:`_place`
        judges each unit then) or "short" (the first unit is not plain:
        nothing done).  Units are rendered only as far as the search needs."""
        queue, units = self._queue, []

        def make(index):
            if index >= len(queue):
                return None
            unit = queue[index]
            if unit.outgoing is not None or self._too_large_for_client(unit) is not None:
                return None
            units.append(unit)
            return unit.render()

        try:
            count, misfit = builder.add_fitting_prefix(make, _RUN)
        except ValueError:
            return "error"
        if not units:
            return "short"
        for unit, cmd in zip(units, builder.body[len(builder.body) - count:]):
            self._record(builder, unit, cmd)
            queue.popleft()
        return "misfit" if misfit else "whole"

    def _place(self, builder, unit, misfit=False):
        """Put ``unit`` (or its next chunk) in the message: "placed", "partial" or "full".

        ``misfit``: the whole command was just measured not to fit (by
        :meth:`_place_run`): try_add would say so again.
        """
        job = unit.job
        problem = self._too_large_for_client(unit)
        if problem is not None:
            job.fail_unit(unit, "too_large", problem, status=st.TOO_LARGE)
            return "placed"
        if unit.outgoing is None:
            if not misfit:
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
                if alone and unit.deferrals < MAX_DEFERRALS:
                    return "full"
                job.fail_unit(unit, "too_large", "%s does not fit in a message of %s bytes" % (
                    unit.template.NAME, self._max_msg_size))
                return "placed"
            if alone and unit.deferrals < MAX_DEFERRALS:
                return "full"  # it fits whole in the next message: no need to chunk
            unit.start_chunks()
        # a chunk of n units is at least n bytes: never try more than the limit
        longest = min(unit.outgoing.remaining, self._max_msg_size or unit.outgoing.remaining)
        length, cmd = builder.fit_largest(unit.render_chunk, longest)
        if cmd is None:
            # no room left here (a first reply carries Cred and Chal, Statuses
            # fill it): if a chunk fits in a plain continuation message, end
            # this one and go on there
            if self._fits_later(builder, unit.render_chunk(1)) and unit.deferrals < MAX_DEFERRALS:
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
                    size, loc_uri(item.target), limit)
        return None

    def _record(self, builder, unit, cmd, chunk=False):
        msg_id = builder.msg_id
        if unit.atomic:
            self._sent[(msg_id, cmd.cmd_id)] = Sent(unit)
            for index, inner in zip(unit.indexes, cmd.commands):
                self._sent[(msg_id, inner.cmd_id)] = Sent(unit, index)
        else:
            self._sent[(msg_id, cmd.cmd_id)] = Sent(unit, unit.indexes[0], chunk)
        if not chunk:
            unit.state = "sent"
        self._package_has_commands = True

