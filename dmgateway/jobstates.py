"""The life cycles of jobs, wake-up notifications and device-function operations.

Every rule that changes one of their states is a row of a table here (in the
spirit of h11's ``_state.py``): ``JOB_TRANSITIONS[old]`` is the set of states
a job may move to from ``old``, and so on.  A job is::

    queued --> notified --> running --> done
       |  '-------------------> ^ |---> failed   (the session's verdict, or interrupted)
       |          |               '---> queued   (cancelled in its session: settled at its end)
       '----------+-----------------> failed     (cancelled, invalid, no bearer woke the device)
                  '-----------------> expired    (the device never came, its operation's deadline)

a cancelled job becomes ``failed`` with error code ``cancelled``.  A
notification is ``queued -> sent -> delivered``, ending ``failed`` or
``expired`` on the way; an operation is ``pending -> awaiting_device ->
verifying -> done``, ending ``failed`` or ``expired``.

:func:`change_job` is the one way a job changes state: it records, in the
store batch it is given, a compare-and-set on the job's old state (so two
processes cannot both move it) together with the job's event
(:func:`start_jobs` and :func:`end_jobs` do the same for several jobs at
once, in one store call).  A job's end
(``done``, ``failed``, ``expired``) appends a ``job`` event; its way there
does not (the ``notification`` and ``session`` events tell it).  The store's
own transactions (recovery, cancel, operation expiry) use :func:`job_event`
and :func:`sources` through the store's ``_transition_job_txn``.  Nothing
here does I/O or reads the clock.
"""

__all__ = [
    "JOB_STATES",
    "PENDING_JOB_STATES",
    "FINAL_JOB_STATES",
    "JOB_TRANSITIONS",
    "NOTIFICATION_STATES",
    "NOTIFICATION_TRANSITIONS",
    "OPERATION_STATES",
    "OPEN_OPERATION_STATES",
    "FINAL_OPERATION_STATES",
    "OPERATION_TRANSITIONS",
    "RefusedTransition",
    "allowed",
    "sources",
    "check_job",
    "check_notification",
    "check_operation",
    "job_event",
    "change_job",
    "start_jobs",
    "end_jobs",
    "change_notification",
]

JOB_STATES = ("queued", "notified", "running", "done", "failed", "expired")
PENDING_JOB_STATES = ("queued", "notified")
FINAL_JOB_STATES = ("done", "failed", "expired")

JOB_TRANSITIONS = {
    # woken (notified), taken by a session (running), cancelled/refused/unwakeable
    # (failed), its operation's deadline passed (expired)
    "queued": frozenset({"notified", "running", "failed", "expired"}),
    # as queued, plus: no session after the last wake-up (expired)
    "notified": frozenset({"running", "failed", "expired"}),
    # the session's verdict (done, failed), or a cancel waiting for the session's end (queued)
    "running": frozenset({"done", "failed", "queued"}),
    "done": frozenset(),
    "failed": frozenset(),
    "expired": frozenset(),
}

NOTIFICATION_STATES = ("queued", "sent", "delivered", "failed", "expired")

NOTIFICATION_TRANSITIONS = {
    # the bearer accepted it (sent; delivered when the accept comes from the device's
    # side), gave up on it (failed), it became moot (expired: the job ended, a session began)
    "queued": frozenset({"sent", "delivered", "failed", "expired"}),
    # the network's delivery receipt
    "sent": frozenset({"delivered", "failed"}),
    "delivered": frozenset(),
    "failed": frozenset(),
    "expired": frozenset(),
}

OPERATION_STATES = ("pending", "awaiting_device", "verifying", "done", "failed", "expired")
OPEN_OPERATION_STATES = ("pending", "awaiting_device")
FINAL_OPERATION_STATES = ("done", "failed", "expired")

OPERATION_TRANSITIONS = {
    # (an operation staying in its state while its outcome grows, a read-back, is no transition)
    "pending": frozenset({"awaiting_device", "verifying", "done", "failed", "expired"}),
    "awaiting_device": frozenset({"verifying", "done", "failed", "expired"}),
    "verifying": frozenset({"done", "failed"}),
    "done": frozenset(),
    "failed": frozenset(),
    "expired": frozenset(),
}

_TABLES = {"job": JOB_TRANSITIONS, "notification": NOTIFICATION_TRANSITIONS, "operation": OPERATION_TRANSITIONS}


class RefusedTransition(ValueError):
    """A state change the tables do not allow (a bug in the caller)."""

    def __init__(self, kind, old, new):
        super().__init__("a %s cannot go from %r to %r" % (kind, old, new))
        self.kind, self.old, self.new = kind, old, new


def allowed(kind, old, new):
    """Whether a ``kind`` (``job``, ``notification``, ``operation``) may go from ``old`` to ``new``."""
    table = _TABLES[kind]
    if old not in table or new not in table:
        raise ValueError("unknown %s state: %r" % (kind, old if old not in table else new))
    return new in table[old]


def sources(kind, new):
    """The states a ``kind`` may reach ``new`` from, in the vocabulary's order."""
    found = _SOURCES.get((kind, new))
    if found is None:  # (an unknown kind: the KeyError it always raised)
        _TABLES[kind]
        raise ValueError("unknown %s state: %r" % (kind, new))
    return found


#: (kind, new state) -> the states it may be reached from (the tables do not change)
_SOURCES = {
    (kind, new): tuple(old for old in table if new in table[old])
    for kind, table in _TABLES.items() for new in table
}


def _check(kind, old, new):
    if not allowed(kind, old, new):
        raise RefusedTransition(kind, old, new)


def check_job(old, new):
    """Raise :class:`RefusedTransition` unless a job may go from ``old`` to ``new``."""
    if new not in JOB_TRANSITIONS.get(old, ()):  # (a transition the table has: nothing to check)
        _check("job", old, new)


def check_notification(old, new):
    """Raise :class:`RefusedTransition` unless a notification may go from ``old`` to ``new``."""
    _check("notification", old, new)


def check_operation(old, new):
    """Raise :class:`RefusedTransition` unless an operation may go from ``old`` to ``new``."""
    _check("operation", old, new)


def job_event(job_id, state, error=None):
    """The payload of the ``job`` event of a job that moved to ``state``.

    ``error`` is the job's error (``{"code", "message"}``) or just its code;
    the event carries the code only.
    """
    payload = {"job_id": job_id, "state": state}
    code = error.get("code") if isinstance(error, dict) else error
    if code:
        payload["error"] = code
    return payload


def _expected(kind, new, expect):
    """The states a compare-and-set to ``new`` expects: ``expect`` checked, or every allowed one."""
    if expect is None:
        expect = sources(kind, new)
    elif expect.__class__ is str and new in _TABLES[kind].get(expect, ()):
        return (expect,)  # one old state, one the table allows
    else:
        expect = (expect,) if isinstance(expect, str) else tuple(expect)
        for old in expect:
            _check(kind, old, new)
    if not expect:
        raise RefusedTransition(kind, None, new)
    return expect


def change_job(batch, job_id, new_state, *, device_id, now, expect=None, error=None, results=None):
    """Move a job to ``new_state`` and append its ``job`` event, in one transaction.

    ``batch`` is a store :class:`~dmgateway.store.base.Batch` (the change is
    recorded there and takes effect with the batch's other calls) or the
    store itself (its own transaction).  The change is a compare-and-set:
    it happens only if the job is still in one of ``expect`` (default:
    every state the table allows ``new_state`` from), and the event is
    appended only if it happens; the result (in the batch's results) says
    whether it did.  Only an end (``done``, ``failed``, ``expired``) has a
    ``job`` event: a job's way there is told by the ``notification`` and
    ``session`` events.

    :raise RefusedTransition: ``expect`` names a state ``new_state`` may not follow.
    """
    expect = _expected("job", new_state, expect)
    return batch.transition_job(
        job_id, new_state, expect=expect, device_id=device_id, now=now, error=error, results=results,
        event=job_event(job_id, new_state, error) if new_state in FINAL_JOB_STATES else None,
    )


def start_jobs(batch, job_ids, *, now):
    """Move jobs to ``running``, each only from a state the table allows it from, in one statement.

    ``batch`` as for :func:`change_job`; the result is the ids of the jobs
    started (those running after it, in the order given).  ``running`` has
    no ``job`` event.
    """
    return batch.start_jobs(job_ids, expect=sources("job", "running"), now=now)


def end_jobs(batch, ends, *, device_id, now):
    """End several jobs of ``device_id``, each as :func:`change_job` would, in one store call.

    ``ends`` holds per job ``(job_id, new_state, expect, results, error)``:
    ``new_state`` an end (``done``, ``failed``, ``expired``), ``expect``,
    ``results`` and ``error`` as :func:`change_job` takes them.  Each is its
    own compare-and-set, with its own ``job`` event appended only if it
    happens.  ``batch`` as for :func:`change_job`; the result is whether
    each job changed, in the order given (a tuple).  On PostgreSQL one
    statement ends them all (see the store's ``end_jobs``).

    :raise RefusedTransition: an ``expect`` names a state its ``new_state`` may not follow.
    :raise ValueError: a ``new_state`` is not an end.
    """
    checked = []
    for job_id, new_state, expect, results, error in ends:
        if new_state not in FINAL_JOB_STATES:
            raise ValueError("%r is not the end of a job" % (new_state,))
        # (one old state the table allows and no error, a session's usual end: _expected and job_event, inline)
        if error is None and expect.__class__ is str and new_state in JOB_TRANSITIONS.get(expect, ()):
            checked.append((job_id, new_state, (expect,), results, None, {"job_id": job_id, "state": new_state}))
            continue
        checked.append((job_id, new_state, _expected("job", new_state, expect), results, error,
                        job_event(job_id, new_state, error)))
    return batch.end_jobs(checked, device_id=device_id, now=now)


def change_notification(batch, notification_id, new_state, *, expect=None, **fields):
    """Move a notification to ``new_state`` (with ``fields`` of ``update_notification``),
    a compare-and-set on ``expect`` (default: every state the table allows
    ``new_state`` from), recorded in ``batch`` as :func:`change_job` is.

    :raise RefusedTransition: ``expect`` names a state ``new_state`` may not follow.
    """
    expect = _expected("notification", new_state, expect)
    return batch.update_notification(notification_id, state=new_state, expect_state=expect, **fields)
