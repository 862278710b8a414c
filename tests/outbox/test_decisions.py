"""The outbox's pure decisions: bearer choice, backoff, fallback, renotify."""

from types import SimpleNamespace

from twisted.trial.unittest import SynchronousTestCase

from dmgateway.notify import wsp
from dmgateway.notify.wsp import parse_push
from dmgateway.outbox import decisions as decide

CONFIG = SimpleNamespace(max_attempts=3, retry_initial=5.0, retry_max=12.0, renotify_after=300,
                         max_notifications=2, auto_order=("sip", "sms"))


def note(notification_id=1, state="queued", bearer="sms", job_id="j1", updated=0.0, push_session_id=0x1234,
         payload=b""):
    return SimpleNamespace(notification_id=notification_id, state=state, bearer=bearer, job_id=job_id,
                           updated=updated, push_session_id=push_session_id, payload=payload, device_id="d")


def job(state="queued", notify="auto"):
    return SimpleNamespace(job_id="j1", state=state, notify=notify)


class BearerChoiceTests(SynchronousTestCase):
    def test_auto_walks_the_order_over_the_reachable_bearers(self):
        self.assertEqual(decide.choose_bearer("auto", ("sip", "sms"), {"sms", "sip"}), "sip")
        self.assertEqual(decide.choose_bearer("auto", ("sip", "sms"), {"sms"}), "sms")
        self.assertIsNone(decide.choose_bearer("auto", ("sip", "sms"), set()))

    def test_an_explicit_bearer_is_the_only_one(self):
        self.assertEqual(decide.choose_bearer("sms", ("sip", "sms"), {"sms", "sip"}), "sms")
        self.assertIsNone(decide.choose_bearer("sms", ("sip", "sms"), {"sip"}))

    def test_after_a_failure_only_later_bearers_of_auto_are_left(self):
        self.assertEqual(decide.choose_bearer("auto", ("sip", "sms"), {"sip", "sms"}, after="sip"), "sms")
        self.assertIsNone(decide.choose_bearer("auto", ("sip", "sms"), {"sip", "sms"}, after="sms"))
        self.assertIsNone(decide.choose_bearer("sms", ("sip", "sms"), {"sip", "sms"}, after="sms"))
        self.assertIsNone(decide.choose_bearer("auto", ("sip",), {"sip", "sms"}, after="sms"))

    def test_session_ids_are_never_zero(self):
        self.assertEqual(decide.new_push_session_id(b"\x00\x00"), 1)
        self.assertEqual(decide.new_push_session_id(b"\xff\xfe"), 0xFFFF)
        self.assertEqual(decide.new_push_session_id(b"\xff\xff"), 1)


class SendTests(SynchronousTestCase):
    def test_before_send(self):
        self.assertIsNone(decide.before_send(job("queued"), False, 10.0, 5.0))
        self.assertIsNone(decide.before_send(job("notified"), False, 10.0, 5.0))
        self.assertIsNone(decide.before_send(None, False, 10.0, 5.0))  # a bootstrap push
        self.assertEqual(decide.before_send(job("running"), False, 10.0, 5.0), decide.Drop("job is running"))
        self.assertEqual(decide.before_send(job("failed"), True, 10.0, 5.0), decide.Drop("job is failed"))
        self.assertEqual(decide.before_send(job("queued"), True, 10.0, 5.0), decide.Postpone(15.0))

    def test_backoff_doubles_up_to_the_cap_then_gives_up(self):
        self.assertEqual(decide.after_temporary_failure(0, "busy", CONFIG, 100.0), decide.Retry(105.0, 5.0, "busy"))
        self.assertEqual(decide.after_temporary_failure(1, "busy", CONFIG, 100.0), decide.Retry(110.0, 10.0, "busy"))
        self.assertEqual(decide.after_temporary_failure(2, "busy", CONFIG, 100.0),
                         decide.GiveUp("busy (after 3 attempts)"))
        many = SimpleNamespace(**dict(vars(CONFIG), max_attempts=10))
        self.assertEqual(decide.after_temporary_failure(5, "busy", many, 0.0), decide.Retry(12.0, 12.0, "busy"))

    def test_after_failure_falls_back_then_fails_the_job(self):
        self.assertEqual(decide.after_failure(job(), "sip", CONFIG.auto_order, {"sip", "sms"}, "404"),
                         decide.Fallback("sms"))
        failed = decide.after_failure(job(), "sms", CONFIG.auto_order, {"sip", "sms"}, "refused")
        self.assertEqual(failed, decide.FailJob({"code": "notification_failed",
                                                 "message": "no bearer could wake the device: refused"}))
        self.assertIsNone(decide.after_failure(None, "sms", CONFIG.auto_order, {"sms"}, "x"))  # bootstrap
        self.assertIsNone(decide.after_failure(job(), "sms", CONFIG.auto_order, None, "x"))  # device gone

    def test_an_undelivered_copy_moves_on_only_when_none_other_is_on_its_way(self):
        failed = note(1, "failed")
        self.assertFalse(decide.still_on_its_way(failed, job("notified"), [failed]))
        self.assertTrue(decide.still_on_its_way(failed, job("notified"), [failed, note(2, "sent")]))
        self.assertFalse(decide.still_on_its_way(failed, job("notified"), [failed, note(2, "expired")]))
        self.assertTrue(decide.still_on_its_way(failed, job("running"), [failed]))
        self.assertTrue(decide.still_on_its_way(failed, None, [failed]))


class RenotifyTests(SynchronousTestCase):
    def test_waits_while_a_copy_is_queued_or_the_last_is_recent(self):
        self.assertIsNone(decide.renotify([note(1, "sent"), note(2, "queued")], 1000.0, CONFIG))
        self.assertIsNone(decide.renotify([note(1, "sent", updated=800.0)], 1000.0, CONFIG))
        self.assertIsNone(decide.renotify([note(1, "failed")], 1000.0, CONFIG))

    def test_notifies_again_by_the_last_bearer_with_the_same_session_id(self):
        notes = [note(1, "failed", bearer="sip"), note(2, "delivered", bearer="sms", push_session_id=77, updated=600.0)]
        self.assertEqual(decide.renotify(notes, 1000.0, CONFIG), decide.Renotify("sms", 77))

    def test_expires_the_job_after_max_notifications(self):
        notes = [note(1, "sent"), note(2, "delivered")]
        self.assertEqual(decide.renotify(notes, 1000.0, CONFIG), decide.ExpireJob(
            {"code": "device_unreachable", "message": "no session after 2 notifications"}))


class EventTests(SynchronousTestCase):
    def test_a_bootstrap_push_names_itself(self):
        self.assertEqual(decide.notification_event(note(), "sent", message_id="m1"),
                         {"job_id": "j1", "bearer": "sms", "state": "sent", "message_id": "m1"})
        self.assertEqual(decide.notification_event(note(9, job_id=None), "failed", error="x"),
                         {"job_id": None, "bearer": "sms", "state": "failed", "error": "x",
                          "notification_id": 9, "kind": "bootstrap"})

    def test_a_sent_push_keeps_its_headers_only(self):
        push = wsp.encode_push(wsp.PushPDU(wsp.CT_CONNECTIVITY_WBXML, b"secret-document"))
        kept = decide.forgotten_payload(note(job_id=None, payload=push))
        self.assertEqual(parse_push(kept).body, b"")
        self.assertEqual(decide.forgotten_payload(note(job_id=None, payload=b"\x00garbage")), b"")
        self.assertIsNone(decide.forgotten_payload(note(job_id="j1", payload=b"")))
        self.assertIsNone(decide.forgotten_payload(note(job_id=None, payload=b"")))

