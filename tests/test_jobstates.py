"""The life-cycle tables, pair by pair, and change_job/change_notification
against a recording batch (against every store engine: tests/store/test_jobs.py)."""

from itertools import product

from twisted.trial.unittest import SynchronousTestCase

from dmgateway import jobstates as js
from dmgateway.store.model import JOB_STATES, NOTIFICATION_STATES, PENDING_JOB_STATES
from dmgateway.store.functions import OPERATION_STATES

# written out here, apart from the module, so that a change of the tables is a change of this list too
JOB_ALLOWED = {
    ("queued", "notified"), ("queued", "running"), ("queued", "failed"), ("queued", "expired"),
    ("notified", "running"), ("notified", "failed"), ("notified", "expired"),
    ("running", "done"), ("running", "failed"), ("running", "queued"),
}
NOTIFICATION_ALLOWED = {
    ("queued", "sent"), ("queued", "delivered"), ("queued", "failed"), ("queued", "expired"),
    ("sent", "delivered"), ("sent", "failed"),
}
OPERATION_ALLOWED = {
    ("pending", "awaiting_device"), ("pending", "verifying"), ("pending", "done"), ("pending", "failed"),
    ("pending", "expired"),
    ("awaiting_device", "verifying"), ("awaiting_device", "done"), ("awaiting_device", "failed"),
    ("awaiting_device", "expired"),
    ("verifying", "done"), ("verifying", "failed"),
}
KINDS = {
    "job": (js.JOB_STATES, JOB_ALLOWED, js.check_job),
    "notification": (js.NOTIFICATION_STATES, NOTIFICATION_ALLOWED, js.check_notification),
    "operation": (js.OPERATION_STATES, OPERATION_ALLOWED, js.check_operation),
}


class TableTests(SynchronousTestCase):
    def test_every_pair_of_every_table(self):
        checked = 0
        for kind, (states, allowed, check) in KINDS.items():
            for old, new in product(states, states):
                with self.subTest(kind=kind, old=old, new=new):
                    expected = (old, new) in allowed
                    self.assertEqual(js.allowed(kind, old, new), expected)
                    if expected:
                        check(old, new)
                    else:
                        with self.assertRaises(js.RefusedTransition) as caught:
                            check(old, new)
                        self.assertEqual((caught.exception.kind, caught.exception.old, caught.exception.new),
                                         (kind, old, new))
                checked += 1
        self.assertEqual(checked, 6 * 6 + 5 * 5 + 6 * 6)  # every pair of every vocabulary

    def test_final_states_are_final_and_the_others_lead_somewhere(self):
        for table, final in ((js.JOB_TRANSITIONS, js.FINAL_JOB_STATES),
                             (js.OPERATION_TRANSITIONS, js.FINAL_OPERATION_STATES)):
            for state, targets in table.items():
                self.assertEqual(not targets, state in final, state)

    def test_sources_are_the_table_read_backwards(self):
        for kind, (states, allowed, _check) in KINDS.items():
            for new in states:
                self.assertEqual(js.sources(kind, new), tuple(old for old in states if (old, new) in allowed))
        self.assertEqual(js.sources("job", "running"), ("queued", "notified"))
        self.assertEqual(js.sources("job", "queued"), ("running",))

    def test_unknown_states_are_errors_not_refusals(self):
        with self.assertRaises(ValueError):
            js.allowed("job", "queued", "sleeping")
        with self.assertRaises(ValueError):
            js.allowed("job", "sleeping", "done")
        with self.assertRaises(ValueError):
            js.sources("notification", "read")

    def test_the_store_and_the_functions_use_these_vocabularies(self):
        self.assertEqual(JOB_STATES, js.JOB_STATES)
        self.assertEqual(PENDING_JOB_STATES, js.PENDING_JOB_STATES)
        self.assertEqual(NOTIFICATION_STATES, js.NOTIFICATION_STATES)
        self.assertEqual(OPERATION_STATES, js.OPERATION_STATES)

    def test_job_event_carries_the_error_code_only(self):
        self.assertEqual(js.job_event("j1", "done"), {"job_id": "j1", "state": "done"})
        self.assertEqual(js.job_event("j1", "failed", {"code": "cancelled", "message": "by the API"}),
                         {"job_id": "j1", "state": "failed", "error": "cancelled"})
        self.assertEqual(js.job_event("j1", "expired", "device_unreachable"),
                         {"job_id": "j1", "state": "expired", "error": "device_unreachable"})


class Recording:
    def __init__(self):
        self.calls = []

    def transition_job(self, *args, **kwargs):
        self.calls.append(("transition_job", args, kwargs))
        return self

    def update_notification(self, *args, **kwargs):
        self.calls.append(("update_notification", args, kwargs))
        return self

    def start_jobs(self, *args, **kwargs):
        self.calls.append(("start_jobs", args, kwargs))
        return self


class ChangeTests(SynchronousTestCase):
    def test_change_job_expects_every_state_the_table_allows_by_default(self):
        batch = Recording()
        self.assertIs(js.change_job(batch, "j1", "failed", device_id="d", now=5.0, error={"code": "x"}), batch)
        ((name, args, kwargs),) = batch.calls
        self.assertEqual((name, args), ("transition_job", ("j1", "failed")))
        self.assertEqual(kwargs, {"expect": ("queued", "notified", "running"), "device_id": "d", "now": 5.0,
                                  "error": {"code": "x"}, "results": None,
                                  "event": {"job_id": "j1", "state": "failed", "error": "x"}})

    def test_only_an_end_has_a_job_event(self):
        for state in js.JOB_STATES:
            if not js.sources("job", state):
                continue
            batch = Recording()
            js.change_job(batch, "j1", state, device_id="d", now=1.0)
            event = batch.calls[0][2]["event"]
            self.assertEqual(event is not None, state in js.FINAL_JOB_STATES, state)

    def test_change_job_refuses_an_expected_state_the_table_does_not_allow(self):
        batch = Recording()
        with self.assertRaises(js.RefusedTransition):
            js.change_job(batch, "j1", "notified", device_id="d", now=1.0, expect=("queued", "running"))
        with self.assertRaises(js.RefusedTransition):
            js.change_job(batch, "j1", "queued", device_id="d", now=1.0, expect="done")
        self.assertEqual(batch.calls, [])

    def test_start_jobs_expects_every_state_running_may_follow(self):
        batch = Recording()
        self.assertIs(js.start_jobs(batch, ["j1", "j2"], now=5.0), batch)
        self.assertEqual(batch.calls, [("start_jobs", (["j1", "j2"],), {"expect": ("queued", "notified"), "now": 5.0})])

    def test_change_notification_is_a_compare_and_set(self):
        batch = Recording()
        js.change_notification(batch, 7, "delivered", expect="sent", last_error=None)
        js.change_notification(batch, 8, "failed", last_error="x")
        self.assertEqual(batch.calls, [
            ("update_notification", (7,), {"state": "delivered", "expect_state": ("sent",), "last_error": None}),
            ("update_notification", (8,), {"state": "failed", "expect_state": ("queued", "sent"),
                                           "last_error": "x"}),
        ])
        with self.assertRaises(js.RefusedTransition):
            js.change_notification(batch, 9, "sent", expect="delivered")
