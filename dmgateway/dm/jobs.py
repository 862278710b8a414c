"""Book-keeping for the jobs of one session.

A :class:`JobRun` follows one :class:`~.effects.JobSpec` from "queued" to a
:class:`~.effects.JobFinished`: the SyncML commands built for it, the
:class:`Unit` s the packer sends (one per command, or one Atomic), and what
the device answered for every job command.
"""

import copy
import weakref

from ..codec import syncml as sm
from . import status as st
from .commands import alert_answer, build_job_commands
from .effects import JobFinished
from .largeobject import OutgoingObject

QUEUED, RUNNING, FINISHED = "queued", "running", "finished"


class CommandState:
    """One job command and what became of it."""

    __slots__ = ("spec", "op", "target", "status", "answer", "results_pending")

    def __init__(self, spec):
        self.spec = spec
        self.op = spec.get("op")
        self.target = spec.get("target")
        self.status = None  # final status code, from the device or decided locally
        # {"data", "format", "type"[, "items"]} (in that order) from Results / alert Status
        self.answer = None
        self.results_pending = False  # an incoming chunked Results is being reassembled

    @property
    def label(self):
        if self.op == "Alert":
            return "Alert %s" % (self.spec.get("alert"),)
        return "%s %s" % (self.op, self.target)

    def result(self):
        answer = self.answer
        if answer is None:
            return {"op": self.op, "target": self.target, "status": self.status,
                    "data": None, "format": None, "type": None}
        # (the answer's keys are data, format, type and items, in that order)
        return {"op": self.op, "target": self.target, "status": self.status, **answer}

    def needs_results(self):
        """A successful Get is not settled before its Results arrive."""
        return self.op == "Get" and st.is_success(self.status) and self.answer is None

    def settled(self):
        return self.status is not None and not self.needs_results() and not self.results_pending


class Unit:
    """What the packer places in a message: one command or one Atomic.

    ``indexes`` are the job commands it carries.  ``outgoing`` is set while
    its data goes out as a large object; ``state`` is "queued" (not yet
    fully sent), "sent" or "dropped" (decided locally, never sent).

    Its :class:`JobRun` is held by a weak reference: the job holds its
    units, and a cycle between them would outlive the session until the
    cyclic garbage collector found it (every session would leave one).
    """

    __slots__ = ("_job", "indexes", "template", "atomic", "outgoing", "state", "deferrals",
                 "container_status", "_rendered")

    def __init__(self, job, indexes, template):
        self._job = weakref.ref(job)
        self.indexes = indexes
        self.template = template
        self.atomic = isinstance(template, sm.Container)  # an Atomic or a Sequence
        self.outgoing = None
        self.state = "queued"
        self.deferrals = 0  # messages in a row that had no room for it
        self.container_status = None  # the device's Status for an Atomic/Sequence
        self._rendered = False  # the template went out as rendered once

    @property
    def job(self):
        return self._job()

    def data_item(self):
        """The Item whose data may be chunked (Add/Replace), or None."""
        cmd = self.template
        if isinstance(cmd, (sm.Add, sm.Replace)) and len(cmd.items) == 1:
            item = cmd.items[0]
            if isinstance(item.data, (str, bytes)) and item.data:
                return item
        return None

    def data_items(self):
        """Every Item with data this unit sends (for the MaxObjSize check)."""
        commands = self.template.commands if self.atomic else [self.template]
        return [
            item
            for cmd in commands
            if isinstance(cmd, (sm.Add, sm.Replace))
            for item in cmd.items
            if isinstance(item.data, (str, bytes))
        ]

    def render(self):
        """The command to number and send: the template itself the first time
        (numbering changes only its CmdID, which the template does not use),
        then a fresh copy each time (one it was sent as may still be in a
        reply kept for a retransmission)."""
        if not self._rendered:
            self._rendered = True
            return self.template
        return _fresh(self.template)

    def start_chunks(self):
        self.outgoing = OutgoingObject(self.data_item().data)

    def render_chunk(self, length):
        """The command carrying the next ``length`` units of data.

        Every chunk repeats Target and Meta Type/Format; only the first has
        Meta/Size; all but the last have MoreData (dm-protocol §8).
        """
        outgoing = self.outgoing
        cmd = _fresh(self.template)  # (never the template: a chunk changes its Item)
        item = cmd.items[0]
        item.data = outgoing.piece(length)
        item.more_data = length < outgoing.remaining
        if outgoing.first:
            item.meta = _shallow(item.meta) if item.meta is not None else sm.Meta()
            item.meta.size = outgoing.size
        return cmd

    def requeue(self):
        """Send again from the start (the device rejected our credentials)."""
        self.state = "queued"
        if self.outgoing is not None:
            self.outgoing.restart()


def _fresh(cmd):
    """A copy of ``cmd`` that numbering and chunking may change.

    Only what they change is copied (the command and the commands inside a
    container: CmdID; each Item: data, MoreData, Meta, which is itself
    copied before it is changed); targets, sources and Meta are shared with
    the template, which nothing changes.  A deep copy cost more than the
    rest of rendering.
    """
    fresh = _shallow(cmd)
    if isinstance(cmd, sm.Container):
        fresh.commands = [_fresh(inner) for inner in cmd.commands]
    items = getattr(cmd, "items", None)
    if items is not None:
        fresh.items = [_shallow(item) for item in items]
    return fresh


def _shallow(model):
    """``copy.copy(model)`` for a SyncML model object: its fields copied into
    a new instance at once (``copy.copy`` goes through the pickle protocol,
    a third of a job's rendering)."""
    state = getattr(model, "__dict__", None)
    if state is None or hasattr(model, "__copy__"):
        return copy.copy(model)
    fresh = object.__new__(type(model))
    fresh.__dict__.update(state)
    return fresh


class JobRun:
    """One job in this session."""

    def __init__(self, spec):
        self.spec = spec
        self.job_id = spec.job_id
        built = build_job_commands(spec.commands, spec.atomic)  # ValueError for a bad job
        # _containers: the units whose Status the device may give for several
        # commands (an Atomic or a Sequence); most jobs have none
        if spec.atomic:
            self.commands = [CommandState(cmd) for cmd in spec.commands]
            self.units = self._containers = [Unit(self, list(range(len(self.commands))), built[0])]
        else:
            # a Sequence is one unit; its inner commands are job commands of
            # their own (one result each, in order)
            self.commands, self.units, self._containers = [], [], []
            for cmd_spec, cmd in zip(spec.commands, built):
                first = len(self.commands)
                if cmd.__class__ is sm.Sequence:
                    for inner in cmd_spec["commands"]:
                        self.commands.append(CommandState(inner))
                    unit = Unit(self, list(range(first, len(self.commands))), cmd)
                    self._containers.append(unit)
                else:
                    self.commands.append(CommandState(cmd_spec))
                    unit = Unit(self, [first], cmd)
                self.units.append(unit)
        self.atomic_status = None
        self.error = None  # a local failure: {"code", "message"}
        self.state = QUEUED

    # -- what the device said --------------------------------------------

    def set_status(self, index, status):
        """Record the device's Status for job command ``index``; False if a duplicate."""
        command = self.commands[index]
        if command.status is not None:
            return False
        command.status = status.data
        if command.op == "Alert":
            code = command.spec.get("alert")
            if code in (sm.ALERT_TEXT_INPUT, sm.ALERT_SINGLE_CHOICE, sm.ALERT_MULTIPLE_CHOICE):
                command.answer = {"data": alert_answer(code, status), "format": None, "type": None}
        return True

    def set_results(self, index, answer):
        command = self.commands[index]
        if command.answer is not None:
            return False
        command.answer = answer
        command.results_pending = False
        return True

    def fail_unit(self, unit, code, message, status=None):
        """A unit that will never be sent: ``status`` for its commands, job error ``code``."""
        unit.state = "dropped"
        for index in unit.indexes:
            if self.commands[index].status is None:
                self.commands[index].status = status
        if self.error is None:
            self.error = {"code": code, "message": message}

    # -- completion ------------------------------------------------------

    def all_sent(self):
        for unit in self.units:
            if unit.state == "queued":
                return False
        return True

    def settled(self):
        """Every command has its final answer: the job can finish now."""
        commands = self.commands
        for unit in self.units:
            state = unit.state
            if state == "dropped":
                continue
            if state == "queued" or unit.atomic and unit.container_status is None:
                return False
            for index in unit.indexes:
                command = commands[index]
                if command.status is None or not command.settled():  # (no Status yet: most asked)
                    return False
        return True

    def finish(self):
        """The JobFinished for what is known now (missing answers count as failures)."""
        self.state = FINISHED
        if self._containers:
            self._complete_from_containers()
        commands = self.commands
        # (one command, most jobs: without a comprehension's frame)
        results = [commands[0].result()] if len(commands) == 1 else [command.result() for command in commands]
        error = self.error or self._command_error()
        return JobFinished(self.job_id, "failed" if error else "done", results, error)

    def _complete_from_containers(self):
        """Give the commands the device answered only through their Atomic or
        Sequence that container's Status."""
        if self.spec.atomic and self.atomic_status is not None:
            for command in self.commands:
                if command.status is None:  # the device only answered for the Atomic
                    command.status = self.atomic_status
        for unit in self._sequences():
            for index in unit.indexes:
                if self.commands[index].status is None:  # only the Sequence was answered
                    self.commands[index].status = unit.container_status

    def abandon(self, code, message):
        """The JobFinished of a job cut short by the end of the session."""
        self.state = FINISHED
        results = [command.result() for command in self.commands]
        return JobFinished(self.job_id, "failed", results, {"code": code, "message": message})

    def _sequences(self):
        """The Sequence units the device answered."""
        return [unit for unit in self._containers if isinstance(unit.template, sm.Sequence)
                and unit.container_status is not None]

    def _command_error(self):
        problems = []
        if self._containers:
            if self.spec.atomic and self.atomic_status is not None and not st.is_success(
                self.atomic_status
            ):
                problems.append("Atomic: %s" % (st.describe(self.atomic_status),))
            for unit in self._sequences():
                if not st.is_success(unit.container_status):
                    problems.append("Sequence: %s" % (st.describe(unit.container_status),))
        for command in self.commands:
            status = command.status
            if (status.__class__ is int and 200 <= status <= 212 and not command.results_pending
                    and (command.answer is not None or command.op != "Get")):
                continue  # (a success with all its answers, the usual case: the tests below, inline)
            if status is None:
                problems.append("%s: no status from the device" % (command.label,))
            elif not st.is_success(command.status):
                problems.append("%s: %s" % (command.label, st.describe(command.status)))
            elif command.needs_results() or command.results_pending:
                problems.append("%s: no Results from the device" % (command.label,))
        if not problems:
            return None
        return {"code": "command_failed", "message": "; ".join(problems)}


def why_refused(spec):
    """Why the session engine refuses job ``spec`` (None if it takes it)."""
    try:
        JobRun(spec)
    except ValueError as e:
        return str(e)
    return None
