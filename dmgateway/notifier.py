"""The notification outbox: wakes devices that have work (DM-1, package #0).

Every notification is a row in the store *before* anything is sent:
``queued -> sent -> delivered | failed | expired``.  The outbox loop takes
due rows, builds package #0 with the device's current server nonce
(:mod:`dmgateway.notify`), and hands it to a bearer (SMS through SMPP or a
modem, SIP Push).  What a bearer reports decides the row's fate:

* accepted (SMSC ``submit_sm_resp`` OK, SIP 2xx): ``sent``; the job becomes
  ``notified``; a delivery receipt later makes it ``delivered``;
* a temporary failure (throttled, queue full, link down, timeout): stays
  ``queued`` with a backoff, at most ``max_attempts`` times;
* a permanent failure, or too many attempts: ``failed``; with
  ``notify: auto`` the next bearer of ``auto_order`` is tried.

A job whose device never opens its session is notified again after
``renotify_after`` seconds with the *same* 16-bit session id (the device
starts one session however many copies arrive), up to ``max_notifications``;
then the job ``expired``.  Nothing here keeps state that a restart would
lose: the loop rebuilds everything from the store.
"""

from collections import Counter, OrderedDict
from dataclasses import replace

from twisted.internet import defer, task
from twisted.logger import Logger

from dmgateway.notify.package0 import NotificationError, ServerCredential
from dmgateway.notify.trigger import build_trigger, push_message
from dmgateway.notify.wsp import encode_push, parse_push
from dmgateway.store.model import StoreUnavailable

log = Logger(namespace="dmgateway.notify")

#: seconds a process holds a notification it is sending before others may retry it
CLAIM_LEASE = 120.0
#: receipts kept for message ids not stored yet (a receipt may overtake the submit's result)
EARLY_REPORTS = 1000
#: notifications of one pass in flight at once: an SMPP link keeps a window
#: of submits outstanding, so sending one at a time would leave it idle
#: waiting for each answer (and for the store between them)
SEND_CONCURRENCY = 10


class TemporaryFailure(Exception):
    """The bearer could not send now; try again later."""


class PermanentFailure(Exception):
    """The bearer will never deliver this (bad number, refused, ...)."""


def reason_of(failure):
    return str(failure.value) or failure.type.__name__


def _standalone(n):
    """Event fields naming a notification of no job (a bootstrap push)."""
    return {} if n.job_id else {"notification_id": n.notification_id, "kind": "bootstrap"}


class Outbox:
    """One per process: the notification loop over the store.

    ``bearers`` maps a bearer name (``"sms"``, ``"sip"``) to an object with
    ``address(device) -> str | None`` (where to reach the device, None if
    it cannot be) and ``send(address, trigger) -> Deferred[list[str]]``
    (message ids), failing with :class:`TemporaryFailure` or
    :class:`PermanentFailure`.  ``is_live(device_id)`` says whether the
    device is in a session; ``event(type, device_id, payload)`` appends an
    event (a coroutine function).
    """

    def __init__(self, store, config, clock, bearers, is_live, event, random_bytes):
        self.store = store
        self.config = config.notify
        self.server_version = config.gateway.notification_version
        self.clock = clock
        self.bearers = dict(bearers)
        self.is_live = is_live
        self.event = event
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
        """A store outage: one line, not a traceback every pass; passes go on."""
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
        bearer = self._first_bearer(job.notify, device)
        if bearer is None:
            log.warn(
                "job {job_id}: no bearer can reach {device_id} (notify={notify})",
                job_id=job.job_id,
                device_id=device.device_id,
                notify=job.notify,
            )
            await self.event(
                "notification",
                device.device_id,
                {"job_id": job.job_id, "bearer": None, "state": "failed", "error": "no_bearer"},
            )
            return None
        session_id = 1 + int.from_bytes(self.random_bytes(2), "big") % 0xFFFF  # 1..65535
        notification = await self.store.add_notification(
            device.device_id, bearer, b"", job_id=job.job_id, session_id=session_id,
            next_attempt_at=self.clock.seconds(),
        )
        self.tick()
        self.queued()
        return notification

    async def session_started(self, device_id, job_ids):
        """The device connected: what is still queued for its jobs is moot."""
        for job_id in job_ids:
            for n in await self.store.notifications_for_job(job_id):
                if n.state == "queued":
                    await self.store.update_notification(
                        n.notification_id,
                        state="expired",
                        last_error="device opened a session",
                        expect_state="queued",
                    )

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
        changed = await self.store.update_notification(
            n.notification_id, state=state, last_error=error, expect_state="sent"
        )
        if changed:
            self.stats["delivered" if delivered else "failed"] += 1
            self.by_bearer[(bearer, "delivered" if delivered else "failed")] += 1
            await self.event(
                "notification",
                n.device_id,
                {"job_id": n.job_id, "bearer": bearer, "state": state, "message_id": message_id, "error": error,
                 **_standalone(n)},
            )
            if not delivered and n.job_id:
                await self._undelivered(n, error or "not delivered")

    async def _undelivered(self, n, reason):
        """A wake-up the network gave up on: unless another copy is on its way, move on."""
        job = await self.store.get_job(n.job_id)
        if job is None or job.state != "notified":
            return
        others = await self.store.notifications_for_job(n.job_id)
        if any(o.state in ("queued", "sent", "delivered") for o in others if o.notification_id != n.notification_id):
            return
        await self._next_bearer(n, job, await self.store.get_device(n.device_id), reason)

    # -- sending -------------------------------------------------------------------------

    def _first_bearer(self, notify, device, after=None):
        order = list(self.config.auto_order) if notify == "auto" else [notify]
        if after is not None:
            if notify != "auto" or after not in order:
                return None
            order = order[order.index(after) + 1:]
        for name in order:
            bearer = self.bearers.get(name)
            if bearer is not None and bearer.address(device):
                return name
        return None

    async def _send(self, n):
        now = self.clock.seconds()
        # another process sharing the store may have taken it meanwhile
        if not await self.store.claim_notification(n.notification_id, now, CLAIM_LEASE):
            return
        job = await self.store.get_job(n.job_id) if n.job_id else None
        if job is not None and job.state not in ("queued", "notified"):
            await self.store.update_notification(
                n.notification_id, state="expired", last_error="job is %s" % (job.state,), expect_state="queued"
            )
            return
        if self.is_live(n.device_id):
            await self.store.update_notification(
                n.notification_id, next_attempt_at=now + self.config.scan_interval, expect_state="queued"
            )
            return
        device = await self.store.get_device(n.device_id)
        bearer = self.bearers[n.bearer]
        address = bearer.address(device) if device is not None else None
        if address is None:
            await self._failed(n, job, device, "device has no address for %s" % (n.bearer,))
            return
        server = device.server_auth
        try:
            if n.payload:  # a ready push (bootstrap): sent as it is
                trigger = push_message(n.payload, reference=self.random_bytes(1)[0])
            else:
                trigger = build_trigger(
                    ServerCredential(server.name, server.nonce or b"", hashed=server.user_hash),
                    device.server_id,
                    n.session_id,
                    ui_mode=job.ui_mode if job is not None else 0,
                    version=self.server_version,
                    bearer=n.bearer,
                    reference=self.random_bytes(1)[0],
                )
        except (NotificationError, ValueError) as e:  # the account cannot be notified as it is
            what = "the push" if n.payload else "package #0"
            await self._failed(n, job, device, "cannot build %s: %s" % (what, e))
            return
        try:
            message_ids = await bearer.send(address, trigger)
        except TemporaryFailure as e:
            await self._retry(n, job, device, str(e) or "temporary failure")
            return
        except PermanentFailure as e:
            await self._failed(n, job, device, str(e) or "refused")
            return
        except Exception as e:  # a bearer bug must not stop the outbox
            log.failure("bearer {bearer} failed unexpectedly", bearer=n.bearer)
            await self._retry(n, job, device, "internal error: %s" % (type(e).__name__,))
            return
        message_id = message_ids[0] if message_ids else None
        # SIP: the 2xx comes from the device's side, so it is a delivery
        state = "delivered" if getattr(bearer, "delivered_on_accept", False) else "sent"
        await self.store.update_notification(
            n.notification_id, state=state, count_attempt=True, message_id=message_id, expect_state="queued"
        )
        if job is not None:
            await self.store.update_job(job.job_id, state="notified", expect_state="queued")
        await self._forget_document(n)
        self.stats["sent"] += 1
        self.by_bearer[(n.bearer, "sent")] += 1
        if n.job_id is None:
            log.info(
                "pushed notification {id} to {device_id} by {bearer} in {parts} part(s)",
                id=n.notification_id,
                device_id=n.device_id,
                bearer=n.bearer,
                parts=len(trigger.payloads),
            )
        else:
            log.info(
                "notified {device_id} by {bearer} (session {session_id:04X}, job {job_id})",
                device_id=n.device_id,
                bearer=n.bearer,
                session_id=n.session_id,
                job_id=n.job_id,
            )
        await self.event(
            "notification",
            n.device_id,
            {"job_id": n.job_id, "bearer": n.bearer, "state": state, "message_id": message_id, **_standalone(n)},
        )
        early = self._early_reports.pop((n.bearer, message_id), None) if message_id else None
        if early is not None:
            await self.delivery_report(n.bearer, message_id, *early)

    async def _retry(self, n, job, device, reason):
        self.stats["temporary_failures"] += 1
        self.by_bearer[(n.bearer, "temporary_failure")] += 1
        if n.attempts + 1 >= self.config.max_attempts:
            await self.store.update_notification(n.notification_id, count_attempt=True)
            await self._failed(n, job, device, "%s (after %d attempts)" % (reason, n.attempts + 1))
            return
        delay = min(self.config.retry_initial * (2 ** n.attempts), self.config.retry_max)
        await self.store.update_notification(
            n.notification_id,
            count_attempt=True,
            last_error=reason,
            next_attempt_at=self.clock.seconds() + delay,
            expect_state="queued",
        )
        log.info(
            "notification {id} by {bearer} will be retried in {delay}s: {reason}",
            id=n.notification_id,
            bearer=n.bearer,
            delay=delay,
            reason=reason,
        )

    async def _forget_document(self, n):
        """A ready push (a bootstrap: plain secrets) is not kept once it is sent or given up:
        only its WSP headers stay, enough to show what it was."""
        if n.job_id or not n.payload:
            return
        try:
            headers = encode_push(replace(parse_push(n.payload), body=b""))
        except NotificationError:
            headers = b""
        await self.store.set_notification_payload(n.notification_id, headers)

    async def _failed(self, n, job, device, reason):
        self.stats["failed"] += 1
        self.by_bearer[(n.bearer, "failed")] += 1
        await self.store.update_notification(n.notification_id, state="failed", last_error=reason, expect_state="queued")
        await self._forget_document(n)
        log.warn(
            "notification of {device_id} by {bearer} failed: {reason}",
            device_id=n.device_id,
            bearer=n.bearer,
            reason=reason,
        )
        await self.event(
            "notification",
            n.device_id,
            {"job_id": n.job_id, "bearer": n.bearer, "state": "failed", "error": reason, **_standalone(n)},
        )
        await self._next_bearer(n, job, device, reason)

    async def _next_bearer(self, n, job, device, reason):
        """After ``n`` failed: the next bearer of ``auto_order``, else the job fails."""
        if job is None or device is None:
            return
        fallback = self._first_bearer(job.notify, device, after=n.bearer)
        if fallback is not None:
            await self.store.add_notification(
                n.device_id, fallback, b"", job_id=job.job_id, session_id=n.session_id,
                next_attempt_at=self.clock.seconds(),
            )
            log.info("job {job_id}: falling back to {bearer}", job_id=job.job_id, bearer=fallback)
            return
        error = {"code": "notification_failed", "message": "no bearer could wake the device: %s" % (reason,)}
        if await self.store.update_job(job.job_id, state="failed", error=error, expect_state=("queued", "notified")):
            await self.event("job", n.device_id, {"job_id": job.job_id, "state": "failed", "error": "notification_failed"})

    # -- devices that never came ---------------------------------------------------------

    async def _renotify(self, now):
        for job in await self.store.jobs_in_state(["notified"], limit=1000):
            if self.is_live(job.device_id):
                continue
            notifications = await self.store.notifications_for_job(job.job_id)
            if any(n.state == "queued" for n in notifications):
                continue
            sent = [n for n in notifications if n.state in ("sent", "delivered")]
            if not sent or now - max(n.updated for n in sent) < self.config.renotify_after:
                continue
            last = max(sent, key=lambda n: n.notification_id)
            if len(sent) >= self.config.max_notifications:
                error = {
                    "code": "device_unreachable",
                    "message": "no session after %d notifications" % (len(sent),),
                }
                if await self.store.update_job(job.job_id, state="expired", error=error, expect_state="notified"):
                    await self.event(
                        "job", job.device_id, {"job_id": job.job_id, "state": "expired", "error": "device_unreachable"}
                    )
                continue
            await self.store.add_notification(
                job.device_id, last.bearer, b"", job_id=job.job_id, session_id=last.session_id,
                next_attempt_at=now,
            )
            log.info("job {job_id}: device did not connect, notifying again", job_id=job.job_id)
