"""The notification outbox: wakes devices that have work (DM-1, package #0).

Every notification is a row in the store *before* anything is sent:
``queued -> sent -> delivered | failed | expired`` (the table is
:mod:`dmgateway.jobstates`).  The outbox loop takes due rows, builds
package #0 with the device's current server nonce (:mod:`dmgateway.notify`),
and hands it to a bearer (SMS through SMPP or a modem, SIP Push) with a
:class:`SendReport` the bearer answers through.  What it answers decides the
row's fate (:mod:`dmgateway.outbox.decisions`):

* sent (SMSC ``submit_sm_resp`` OK, SIP 2xx): ``sent``; the job becomes
  ``notified``; a delivery receipt later makes it ``delivered``;
* retry (throttled, queue full, link down, timeout): stays ``queued`` with
  a backoff, at most ``max_attempts`` times;
* refused, or too many attempts: ``failed``; with ``notify: auto`` the next
  bearer of ``auto_order`` is tried.

A wake-up is one claim (with the reads it needs) and one batch recording
its outcome.  A job whose device never opens its session is notified again
after ``renotify_after`` seconds with the *same* 16-bit session id (the
device starts one session however many copies arrive), up to
``max_notifications``; then the job ``expired``.  Nothing here keeps state
that a restart would lose: the loop rebuilds everything from the store.
"""

from collections import Counter, OrderedDict

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from dmgateway.jobstates import change_job, change_notification
from dmgateway.notify.package0 import NotificationError, ServerCredential
from dmgateway.notify.trigger import build_trigger, push_message
from dmgateway.outbox import decisions as decide
from dmgateway.store.model import StoreContention, StoreUnavailable

log = Logger(namespace="dmgateway.notify")

#: seconds a process holds a notification it is sending before others may retry it
CLAIM_LEASE = 120.0
#: receipts kept for message ids not stored yet (a receipt may overtake the submit's result)
EARLY_REPORTS = 1000
#: notifications of one pass in flight at once: an SMPP link keeps a window
#: of submits outstanding, so sending one at a time would leave it idle
#: waiting for each answer (and for the store between them)
SEND_CONCURRENCY = 10


class SendReport:
    """How a bearer answers one :meth:`send`: exactly one of :meth:`sent`,
    :meth:`retry` or :meth:`refused` (later calls are ignored)."""

    def __init__(self):
        self.outcome = defer.Deferred()  # fires with ("sent", ids) | ("retry", reason) | ("refused", reason)

    def sent(self, message_ids=()):
        """Accepted; ``message_ids`` are the bearer's ids of the parts (receipts name them)."""
        self._settle(("sent", list(message_ids or ())))

    def retry(self, reason):
        """Not sent now (throttled, link down, timeout...): try again later."""
        self._settle(("retry", reason or "temporary failure"))

    def refused(self, reason):
        """Never deliverable this way (bad number, refused...)."""
        self._settle(("refused", reason or "refused"))

    def crashed(self, failure):
        """The bearer failed unexpectedly: logged, then tried again later."""
        log.failure("bearer failed unexpectedly", failure)
        self._settle(("retry", "internal error: %s" % (failure.type.__name__,)))

    def _settle(self, outcome):
        if not self.outcome.called:
            self.outcome.callback(outcome)


class NotificationOutbox:
    """One per process: the notification loop over the store.

    ``bearers`` maps a bearer name (``"sms"``, ``"sip"``) to an object with
    ``address(device) -> str | None`` (where to reach the device, None if
    it cannot be) and ``send(address, trigger, report)`` answering through
    the :class:`SendReport`; one with ``watch_deliveries(callback)`` is
    given ``callback(message_id, delivered, error)`` for its delivery
    receipts.  ``is_live(device_id)`` says whether the device is in a
    session; ``announce()`` wakes the readers of the events appended.
    """

    def __init__(self, store, config, clock, bearers, is_live, announce, random_bytes):
        self.store = store
        self.config = config.notify
        self.server_version = config.gateway.notification_version
        self.clock = clock
        self.bearers = dict(bearers)
        self.is_live = is_live
        self.announce = announce
        self.random_bytes = random_bytes
        self._loop = None
        self._running = None
        self._store_down = False  # the last pass met a store outage (logged once)
        self._last_renotify = float("-inf")
        self._early_reports = OrderedDict()  # (bearer, message id) -> (delivered, error)
        self.stats = {"sent": 0, "temporary_failures": 0, "failed": 0, "delivered": 0}
        self.by_bearer = Counter()  # (bearer, outcome) -> count, for /metrics and SNMP
        # whether this process runs renotification and expiry (the cluster's timers lease)
        self.runs_timers = lambda: True
        # tells the other processes a notification was queued (the bearer's holder sends it)
        self.queued = lambda: None
        for name, bearer in self.bearers.items():
            watch = getattr(bearer, "watch_deliveries", None)
            if watch is not None:
                watch(self._receipts_of(name))

    # -- life cycle --------------------------------------------------------------

    def start(self):
        self._loop = task.LoopingCall(self.tick)
        self._loop.clock = self.clock
        self._loop.start(self.config.scan_interval, now=True).addErrback(
            lambda f: log.failure("notification loop stopped", f)
        )

    def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return self._running or defer.succeed(None)

    def tick(self):
        """One pass: send what is due, then look for devices that never came."""
        if self._running is not None:
            return self._running
        d = defer.ensureDeferred(self._tick())
        d.addCallbacks(self._store_back, self._store_failed)
        d.addErrback(lambda f: log.failure("notification pass failed", f))
        self._running = d

        def done(result):
            self._running = None
            return result

        return d.addBoth(done)

    def _store_failed(self, failure):
        """A store outage: one line, not a traceback every pass; passes go on.
        A transaction that kept losing to concurrent ones is no outage: one
        line, and the next pass tries again."""
        if failure.check(StoreContention):
            log.warn("notification pass stopped short: {error}; the next pass tries again",
                     error=str(failure.value))
            return
        failure.trap(StoreUnavailable)
        if not self._store_down:
            self._store_down = True
            log.warn("notifications wait: the store is unavailable ({error})", error=str(failure.value))

    def _store_back(self, result):
        if self._store_down:
            self._store_down = False
            log.info("notifications resume: the store is available again")
        return result

    async def _tick(self):
        now = self.clock.seconds()
        # a bearer another process holds (the cluster's SMPP link) is left to it
        usable = [name for name, bearer in self.bearers.items() if getattr(bearer, "held", True)]
        due = iter(await self.store.due_notifications(now, 100, bearers=usable) if usable else ())

        async def sender():
            for notification in due:  # shared: each notification goes to one sender
                try:
                    await self._send(notification)
                except Exception:  # one bad row must not hold up the others
                    log.failure("notification {id} could not be handled", id=notification.notification_id)

        await defer.gatherResults([defer.ensureDeferred(sender()) for _ in range(SEND_CONCURRENCY)])
        # looking for devices that never came costs a query per notified job:
        # a few times per renotify_after is enough
        if self.runs_timers() and now - self._last_renotify >= min(self.config.renotify_after / 4.0, 60.0):
            self._last_renotify = now
            await self._renotify(now)

    # -- what the dispatcher calls ---------------------------------------------------

    async def job_created(self, job, device):
        """Queue the first notification of a new job (``notify`` other than none)."""
        if job.notify == "none" or self.is_live(device.device_id):
            return None
        bearer = decide.choose_bearer(job.notify, self.config.auto_order, self._reachable(device))
        if bearer is None:
            log.warn(
                "job {job_id}: no bearer can reach {device_id} (notify={notify})",
                job_id=job.job_id,
                device_id=device.device_id,
                notify=job.notify,
            )
            await self.store.append_event(
                "notification", device.device_id, self.clock.seconds(),
                {"job_id": job.job_id, "bearer": None, "state": "failed", "error": "no_bearer"},
            )
            self.announce()
            return None
        notification = await self.store.add_notification(
            device.device_id, bearer, b"", job_id=job.job_id,
            push_session_id=decide.new_push_session_id(self.random_bytes(2)), next_attempt_at=self.clock.seconds(),
        )
        self.tick()
        self.queued()
        return notification

    async def session_started(self, device_id, job_ids):
        """The device connected: what is still queued for its jobs is moot."""
        batch = self.store.batch()
        for job_id in job_ids:
            for n in await self.store.notifications_for_job(job_id):
                if n.state == "queued":
                    change_notification(batch, n.notification_id, "expired", expect="queued",
                                        last_error="device opened a session")
        await batch.commit()

    async def delivery_report(self, bearer, message_id, delivered, error=None):
        """A bearer's delivery receipt for ``message_id``."""
        n = await self.store.find_notification_by_message_id(message_id, bearer=bearer)
        if n is None:
            log.info("delivery report for unknown message {message_id} ({bearer})", message_id=message_id, bearer=bearer)
            self._early_reports[(bearer, message_id)] = (delivered, error)
            while len(self._early_reports) > EARLY_REPORTS:
                self._early_reports.popitem(last=False)
            return
        state = "delivered" if delivered else "failed"
        if not await change_notification(self.store, n.notification_id, state, expect="sent", last_error=error):
            return
        self.stats["delivered" if delivered else "failed"] += 1
        self.by_bearer[(bearer, "delivered" if delivered else "failed")] += 1
        batch = self.store.batch()
        batch.append_event("notification", n.device_id, self.clock.seconds(),
                           decide.notification_event(n, state, message_id=message_id, error=error))
        if not delivered and n.job_id:
            # a wake-up the network gave up on: unless another copy is on its way, move on
            job, others, device = await (self.store.batch().get_job(n.job_id).notifications_for_job(n.job_id)
                                         .get_device(n.device_id).commit())
            if not decide.still_on_its_way(n, job, others):
                self._move_on(batch, n, job, device, error or "not delivered")
        await batch.commit()
        self.announce()

    def _receipts_of(self, bearer):
        """The delivery callback given to ``bearer``."""

        def delivered(message_id, delivered, error=None):
            d = defer.ensureDeferred(self.delivery_report(bearer, message_id, delivered, error))
            d.addErrback(lambda f: log.failure("delivery receipt handling failed", f))

        return delivered

    # -- sending -------------------------------------------------------------------------

    def _reachable(self, device):
        """The names of the bearers that can reach ``device`` (None: no device)."""
        if device is None:
            return None
        return {name for name, bearer in self.bearers.items() if bearer.address(device)}

    async def _send(self, n):
        """One wake-up: a claim (with its reads), the bearer's answer, one batch."""
        now = self.clock.seconds()
        # another process sharing the store may have taken it meanwhile
        claim = self.store.batch().claim_notification(n.notification_id, now, CLAIM_LEASE)
        if n.job_id:
            claim.get_job(n.job_id)
        claimed, *read = await claim.get_device(n.device_id).commit()
        if not claimed:
            return
        job, device = (read[0], read[1]) if n.job_id else (None, read[0])
        decision = decide.before_send(job, self.is_live(n.device_id), now, self.config.scan_interval)
        if isinstance(decision, decide.Drop):
            await change_notification(self.store, n.notification_id, "expired", expect="queued",
                                      last_error=decision.reason)
            return
        if isinstance(decision, decide.Postpone):
            await self.store.update_notification(n.notification_id, next_attempt_at=decision.at, expect_state="queued")
            return
        bearer = self.bearers[n.bearer]
        address = bearer.address(device) if device is not None else None
        if address is None:
            await self._give_up(n, job, device, "device has no address for %s" % (n.bearer,))
            return
        try:
            trigger = self._trigger(n, job, device)
        except (NotificationError, ValueError) as e:  # the account cannot be notified as it is
            what = "the push" if n.payload else "package #0"
            await self._give_up(n, job, device, "cannot build %s: %s" % (what, e))
            return
        outcome, value = await self._attempt(bearer, address, trigger)
        if outcome == "retry":
            await self._retry(n, job, device, value)
        elif outcome == "refused":
            await self._give_up(n, job, device, value)
        else:
            await self._sent(n, job, bearer, value, len(trigger.payloads))

    def _trigger(self, n, job, device):
        if n.payload:  # a ready push (bootstrap): sent as it is
            return push_message(n.payload, reference=self.random_bytes(1)[0])
        server = device.server_auth
        return build_trigger(
            ServerCredential(server.name, server.nonce or b"", hashed=server.user_hash),
            device.server_id,
            n.push_session_id,
            ui_mode=job.ui_mode if job is not None else 0,
            version=self.server_version,
            bearer=n.bearer,
            reference=self.random_bytes(1)[0],
        )

    @staticmethod
    def _attempt(bearer, address, trigger):
        """Hand ``trigger`` to ``bearer``; fire with its answer (see :class:`SendReport`)."""
        report = SendReport()
        try:
            d = bearer.send(address, trigger, report)
        except Exception:  # a bearer bug must not stop the outbox
            report.crashed(Failure())
        else:
            if isinstance(d, defer.Deferred):
                d.addErrback(report.crashed)
        return report.outcome

    async def _sent(self, n, job, bearer, message_ids, parts):
        message_id = message_ids[0] if message_ids else None
        # SIP: the 2xx comes from the device's side, so it is a delivery
        state = "delivered" if getattr(bearer, "delivered_on_accept", False) else "sent"
        now = self.clock.seconds()
        batch = self.store.batch()
        change_notification(batch, n.notification_id, state, expect="queued", count_attempt=True,
                            message_id=message_id)
        if job is not None:
            change_job(batch, job.job_id, "notified", device_id=n.device_id, now=now, expect="queued")
        self._forget_document(batch, n)
        batch.append_event("notification", n.device_id, now,
                           decide.notification_event(n, state, message_id=message_id))
        await batch.commit()
        self.announce()
        self.stats["sent"] += 1
        self.by_bearer[(n.bearer, "sent")] += 1
        if n.job_id is None:
            log.info(
                "pushed notification {id} to {device_id} by {bearer} in {parts} part(s)",
                id=n.notification_id,
                device_id=n.device_id,
                bearer=n.bearer,
                parts=parts,
            )
        else:
            log.info(
                "notified {device_id} by {bearer} (session {session_id:04X}, job {job_id})",
                device_id=n.device_id,
                bearer=n.bearer,
                session_id=n.push_session_id,
                job_id=n.job_id,
            )
        early = self._early_reports.pop((n.bearer, message_id), None) if message_id else None
        if early is not None:
            await self.delivery_report(n.bearer, message_id, *early)

    async def _retry(self, n, job, device, reason):
        self.stats["temporary_failures"] += 1
        self.by_bearer[(n.bearer, "temporary_failure")] += 1
        decision = decide.after_temporary_failure(n.attempts, reason, self.config, self.clock.seconds())
        if isinstance(decision, decide.GiveUp):
            await self._give_up(n, job, device, decision.reason, count_attempt=True)
            return
        await self.store.update_notification(
            n.notification_id,
            count_attempt=True,
            last_error=reason,
            next_attempt_at=decision.at,
            expect_state="queued",
        )
        log.info(
            "notification {id} by {bearer} will be retried in {delay}s: {reason}",
            id=n.notification_id,
            bearer=n.bearer,
            delay=decision.delay,
            reason=reason,
        )

    def _forget_document(self, batch, n):
        kept = decide.forgotten_payload(n)
        if kept is not None:
            batch.set_notification_payload(n.notification_id, kept)

    async def _give_up(self, n, job, device, reason, count_attempt=False):
        """``n`` failed: record it, and move on to the next bearer or fail the job, in one batch."""
        self.stats["failed"] += 1
        self.by_bearer[(n.bearer, "failed")] += 1
        batch = self.store.batch()
        change_notification(batch, n.notification_id, "failed", expect="queued", last_error=reason,
                            count_attempt=count_attempt)
        self._forget_document(batch, n)
        log.warn(
            "notification of {device_id} by {bearer} failed: {reason}",
            device_id=n.device_id,
            bearer=n.bearer,
            reason=reason,
        )
        batch.append_event("notification", n.device_id, self.clock.seconds(),
                           decide.notification_event(n, "failed", error=reason))
        self._move_on(batch, n, job, device, reason)
        await batch.commit()
        self.announce()

    def _move_on(self, batch, n, job, device, reason):
        """After ``n`` failed: record the next bearer of ``auto_order`` in ``batch``, else the job's failure.

        Nothing while the device is in a session: the session takes the job
        (it could not record a job failed meanwhile), and wakes the device
        again if it ends without starting it.
        """
        if job is not None and self.is_live(n.device_id):
            return
        decision = decide.after_failure(job, n.bearer, self.config.auto_order, self._reachable(device), reason)
        now = self.clock.seconds()
        if isinstance(decision, decide.Fallback):
            batch.add_notification(n.device_id, decision.bearer, b"", job_id=job.job_id,
                                   push_session_id=n.push_session_id, next_attempt_at=now)
            log.info("job {job_id}: falling back to {bearer}", job_id=job.job_id, bearer=decision.bearer)
        elif isinstance(decision, decide.FailJob):
            change_job(batch, job.job_id, "failed", device_id=n.device_id, now=now,
                       expect=("queued", "notified"), error=decision.error)

    # -- devices that never came ---------------------------------------------------------

    async def _renotify(self, now):
        for job in await self.store.jobs_in_state(["notified"], limit=1000):
            if self.is_live(job.device_id):
                continue
            decision = decide.renotify(await self.store.notifications_for_job(job.job_id), now, self.config)
            if isinstance(decision, decide.ExpireJob):
                if await change_job(self.store, job.job_id, "expired", device_id=job.device_id, now=now,
                                    expect="notified", error=decision.error):
                    self.announce()
            elif isinstance(decision, decide.Renotify):
                await self.store.add_notification(
                    job.device_id, decision.bearer, b"", job_id=job.job_id,
                    push_session_id=decision.push_session_id, next_attempt_at=now,
                )
                log.info("job {job_id}: device did not connect, notifying again", job_id=job.job_id)
