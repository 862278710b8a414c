"""The job handlers over a real SQLite store: the notify bearer check on job
creation, and the note on an ``auto`` job nobody can wake."""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from dmgateway.api.validation import ValidationError
from dmgateway.handlers.jobs import NO_BEARER
from tests.api.service_contract import ACCOUNT, DEVICE
from tests.support import start_dispatcher


class NotifyBearerTests(TestCase):
    timeout = 60

    def setUp(self):
        return start_dispatcher(self, DEVICE, ACCOUNT)

    def job(self, notify):
        return {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}], "atomic": False,
                "notify": notify, "ui_mode": 0}

    @defer.inlineCallbacks
    def test_sms_or_sip_without_that_bearer_is_refused(self):
        for notify in ("sms", "sip"):
            with self.assertRaises(ValidationError) as raised:
                yield self.handlers.create_job(DEVICE, self.job(notify))
            self.assertEqual(raised.exception.code, "bearer_disabled")
            self.assertIn(notify.upper(), raised.exception.message)
        self.assertEqual((yield self.store.list_jobs(DEVICE)), [])

    @defer.inlineCallbacks
    def test_auto_without_bearer_says_so_in_the_job_view(self):
        created = yield self.handlers.create_job(DEVICE, self.job("auto"))
        view = yield self.handlers.get_job(created["id"])
        self.assertEqual(view["notify_note"], NO_BEARER)
        created = yield self.handlers.create_job(DEVICE, self.job("none"))
        self.assertNotIn("notify_note", (yield self.handlers.get_job(created["id"])))

    @defer.inlineCallbacks
    def test_enabled_bearer_is_accepted(self):
        calls = []

        class Outbox:
            bearers = {"sms": object()}

            async def job_created(self, job, device):
                calls.append(job.job_id)

        self.dispatcher.outbox = Outbox()
        created = yield self.handlers.create_job(DEVICE, self.job("sms"))
        self.assertEqual(calls, [created["id"]])
        self.assertNotIn("notify_note", (yield self.handlers.get_job(created["id"])))
        with self.assertRaises(ValidationError):
            yield self.handlers.create_job(DEVICE, self.job("sip"))
