"""The DM-2 dispatcher: bearers -> session engine -> effects.

One per process.  A device has at most one live session; messages of one
device are handled one at a time (a per-device lock), so jobs run in order
and a session's state is never touched by two requests at once.  The session
engine (:mod:`dmgateway.dm`) decides what to answer and which effects follow;
the dispatcher performs the effects (store writes, events, logs) *before* the
reply leaves, so a result the device reported is never lost by a crash after
the device was told it was received.

The rules guarding sessions are in :mod:`dmgateway.dispatch_guard`, the
effects written to the store in :mod:`dmgateway.dispatch_effects`, the
other processes' signals in :mod:`dmgateway.cluster.hooks`.  The REST API
is served by :mod:`dmgateway.handlers`, which call the public methods
here (live sessions, wake-ups); this module imports neither it nor the API.
"""

import types
from collections import Counter, OrderedDict
from typing import Any, Optional
from urllib.parse import quote_plus, urlencode

from twisted.internet import defer

from dmgateway.auth.randompool import random_bytes as system_random_bytes
from dmgateway.auth.ratelimit import FailureLimiter
from dmgateway.cluster.hooks import ClusterHooks
from dmgateway.cluster.signals import JOBS
from dmgateway.codec import CONTENT_TYPES, decode_message, encode_message, sniff_encoding
from dmgateway.codec.errors import CodecError, LimitExceeded
from dmgateway.deadlines import SessionDeadlines
from dmgateway.devicelock import DeviceLock
from dmgateway.dm import effects as fx
from dmgateway.dm.effects import SessionError
from dmgateway.dm.jobs import why_refused
from dmgateway.dm.session import ServerSession
from dmgateway.dm.replies import bad_request_reply, status_only_reply
from dmgateway.dispatch_effects import SessionEffects
from dmgateway.dispatch_guard import WRITE_LATER, SessionGuard, _check_counts, _digest
from dmgateway.eventlog import EventLog
from dmgateway.guard import PeerLockouts, StoreOutage, peer_host
from dmgateway.live import DMReply, LiveSession, device_state, job_spec, media_type_for, starts_session
from dmgateway.logs import Logger, debug_enabled

log = Logger(namespace="dmgateway.dispatch")


def session_token(node: str, secret: str) -> str:
    """The RespURI token of a session of ``node``: ``NODE~SECRET`` ("~" is in no node name)."""
    return "%s~%s" % (node, secret)


class Dispatcher(SessionGuard, SessionEffects, ClusterHooks):
    """Bearers -> session engine -> effects, for every DM session of this process.

    ``events`` is the process's :class:`~dmgateway.eventlog.EventLog` (one
    of its own if not given); ``outbox`` (the wake-up outbox),
    ``functions`` (device functions), ``instruments`` (metrics) and
    ``signals`` (cluster) are set by whoever starts it, when they exist.
    ``random_bytes(n)`` makes the nonces (by default the process's
    :mod:`~dmgateway.auth.randompool`, kernel CSPRNG bytes).
    """

    def __init__(self, store, config, clock, random_bytes=system_random_bytes,
                 events: Optional[EventLog] = None) -> None:
        self.store = store
        self.events = events if events is not None else EventLog(store, clock)
        self.config = config
        self.clock = clock
        self.random_bytes = random_bytes
        self.node = config.gateway.node_name
        self.limiter = FailureLimiter(
            max_failures=config.auth.max_failures,
            window=config.auth.failure_window,
            lockout=config.auth.lockout,
        )
        self.guard = PeerLockouts(config.auth)
        self.outage = StoreOutage(clock, config.gateway.store_retry_after)
        self._repairs = []  # (live, effects) of sessions aborted while the store was down
        self._stopping = False
        self._first_bodies = OrderedDict()  # device id -> package 1 of its last session
        self._probe = None
        self.outbox = None  # the NotificationOutbox (dmgateway.outbox), when a bearer is configured
        self.functions = None  # the device-function service (dmgateway.devfunctions), when started
        # our MaxMsgSize: what every DM listener accepts (its max_body)
        limits = [l.max_body for l in (config.http, config.https) if l.enabled]
        self.accept_msg_size = min(limits) if limits else None
        self._resp_prefix = None  # (public_url, RespURI up to the token's secret, "NODE~")
        self._by_token = {}
        self._by_device = {}
        self._authenticated_live = 0  # live sessions whose device authenticated
        self._locks = {}
        self.deadlines = SessionDeadlines(clock, self._expire)  # every live session's session_timeout
        self.stats = {"sessions_started": 0, "messages": 0, "bad_requests": 0, "auth_failures": 0}
        self._refusing_busy = False  # [gateway] max_sessions reached (logged once)
        self.sessions_ended = Counter()  # by outcome
        self.jobs_finished = Counter()  # by state
        self.draining = False  # SIGTERM: live sessions finish, no new one opens
        # job id -> the LiveSession at whose end what is left of it is cancelled
        # (a job sent, cancelled while that session runs or its end is written)
        self._cancel_at_end = {}
        # device id -> {token: a session of it over here whose end the store has
        # not taken yet} (a cancel looks at its device's only: many wait in an outage)
        self._ending = {}
        self.instruments = None  # GatewayMetrics, when /metrics is on
        self.signals = None  # cross-process signals, when [gateway] cluster is on

    # -- life cycle ----------------------------------------------------------

    async def start(self) -> None:
        """Settle what an unclean stop left in the store (sessions, running jobs)."""
        recovery = await self.store.recover(self.node, self.clock.seconds())
        counts = recovery.counts()
        if recovery.sessions or recovery.failed_jobs:
            log.warn(
                "recovered after an unclean stop: {sessions_ended} sessions ended, "
                "{jobs_failed} running jobs failed (interrupted), {jobs_queued} jobs still queued",
                **counts,
            )
            if recovery.failed_jobs:  # their events were appended with the recovery
                self.events.announce()
        else:
            log.info("store clean: nothing was in flight", **counts)

    async def stop(self) -> None:
        """End every session cleanly: new messages get 503, those in flight finish first."""
        self._stopping = True
        if self._probe is not None and self._probe.active():
            self._probe.cancel()
        for lock in list(self._locks.values()):
            await lock.acquire()  # a message in flight (even a session opening) is done
            lock.release()
        for live in list(self._by_token.values()):
            try:
                await self._abort(live, "shutdown", "gateway shutting down")
            except WRITE_LATER:
                pass  # (kept in _repairs: written below, or at the next start)
            except Exception:  # (an end refused for good, in _repairs too: settled below)
                log.failure("session {session_id} of {device_id}: its end at the stop refused",
                            session_id=live.syncml_session_id, device_id=live.device_id)
        self.deadlines.stop()
        if self._repairs or self._repairing is not None:
            try:
                await self._last_repair()
            except WRITE_LATER:
                log.warn("store still failing at shutdown: {count} aborted sessions left "
                         "for the next start to settle", count=len(self._repairs))
        self.events.stop()

    def live_count(self) -> int:
        """DM sessions open in this process now."""
        return len(self._by_token)

    def is_live(self, device_id: str) -> bool:
        """Whether ``device_id`` is in a session with this process now, one in
        which it authenticated (a stranger's package 1 with wrong credentials
        holds back no wake-up and no bootstrap)."""
        live = self._by_device.get(device_id)
        return live is not None and live.authenticated

    # -- DM-2 ------------------------------------------------------------------

    def handle_dm(self, body: bytes, encoding: Optional[str] = None, hmac_header: Optional[str] = None,
                  token: Optional[str] = None, peer: Optional[str] = None,
                  limits: Any = None) -> "defer.Deferred[DMReply]":
        """Answer one DM message; fires with a :class:`DMReply`.

        ``limits`` (a :class:`~dmgateway.bearers.httplimits.MessageLimits`)
        bound a message that is not on the RespURI of a session whose device
        authenticated.
        """
        answer = self.answer_dm(body, encoding, hmac_header, token, peer, limits)
        return answer if isinstance(answer, defer.Deferred) else defer.succeed(answer)

    def answer_dm(self, body: bytes, encoding: Optional[str] = None, hmac_header: Optional[str] = None,
                  token: Optional[str] = None, peer: Optional[str] = None,
                  limits: Any = None) -> "DMReply | defer.Deferred[DMReply]":
        """:meth:`handle_dm`, but the :class:`DMReply` itself when the message
        was answered without waiting for anything (a store that ran inline):
        the bearer then writes it at once, with no Deferred in between."""
        return run_now(self._handle_dm(body, encoding, hmac_header, token, peer, limits))

    async def _handle_dm(self, body, encoding, hmac_header, token, peer, limits=None):
        self.stats["messages"] += 1
        if self._stopping:
            return DMReply(503, "text/plain; charset=utf-8", b"gateway shutting down\n", {"retry-after": "5"})
        host = peer_host(peer)
        if token is not None and token not in self._by_token and self.guard.guessing(host, self.clock.seconds()):
            # an address that spent its budget of wrong tokens: not even decoded
            return DMReply(403, "text/plain; charset=utf-8", b"too many messages for unknown sessions\n")
        live = self._by_token.get(token) if token is not None else None
        if live is not None and live.authenticated:
            limits = None  # the RespURI of a session whose device authenticated
        try:
            msg, encoding = decode_message(
                body, CONTENT_TYPES.get(encoding), max_elements=limits.max_elements if limits else None
            )
            if limits is not None:
                _check_counts(msg, limits)
        except LimitExceeded as e:
            self.stats["bad_requests"] += 1
            log.info("refused a DM message from {peer} over the limits before authentication: {reason}",
                     peer=peer, reason=str(e))
            text = "message too large before authentication: %s\n" % (e,)
            return DMReply(413, "text/plain; charset=utf-8", text.encode("utf-8"))
        except CodecError as e:
            self.stats["bad_requests"] += 1
            log.info("rejected malformed DM message from {peer}: {reason}", peer=peer, reason=str(e))
            return self._bad_request(body, encoding or sniff_encoding(body), e)
        device_id = msg.hdr.source.loc_uri
        lock = self._locks.get(device_id)
        if lock is None:
            lock = self._locks[device_id] = DeviceLock()
        if lock.locked:
            await lock.acquire()
        else:  # uncontended (nearly always): taken at once, without a Deferred to await
            lock.locked = True
        try:
            reply = self._in_session(msg, encoding, body, hmac_header, token, peer, host)
            if reply.__class__ is not DMReply:
                reply = await reply
            if self.outage.active:
                self._schedule_repair(0)
            return reply
        except WRITE_LATER as e:
            return self._store_failed_dm(msg, encoding, e)
        finally:
            lock.release()
            if not lock.locked and not lock.waiting and device_id not in self._by_device:
                self._locks.pop(device_id, None)

    def _in_session(self, msg, encoding, body, hmac_header, token, peer, host):
        """The reply to ``msg``, the device's lock held: a :class:`DMReply`, or
        the coroutine that makes it (awaited by the caller: no coroutine of
        its own in between, for a message that continues its session)."""
        device_id = msg.hdr.source.loc_uri
        live = self._by_device.get(device_id)
        if live is None:
            return self._start(msg, encoding, body, hmac_header, peer, host, device_id)
        verdict = self._continues(live, msg, token, body, hmac_header)
        if verdict == "take_over":
            # a package 1 for a device in session: it may replace the
            # session only once it authenticates (a device that restarted)
            return self._take_over(live, msg, encoding, body, hmac_header, peer)
        if verdict == "refuse":
            # neither the session's RespURI nor the device's credentials:
            # it must not touch the session (nor learn its token)
            log.info("message from {device_id} for a session not its own ({peer})",
                     device_id=device_id, peer=peer)
            self._guessed(host, peer)
            return self._plain_reply(msg, encoding, 403)
        return self._take(live, msg, body, hmac_header)

    async def _start(self, msg, encoding, body, hmac_header, peer, host, device_id):
        """``msg`` for a device in no session here: open one, if it may, and take it in."""
        if self.outage.active:
            return self._store_down(device_id, None)
        if not starts_session(msg):
            log.info(
                "message for no live session from {device_id} ({peer})",
                device_id=device_id,
                peer=peer,
            )
            self._guessed(host, peer)
            return self._plain_reply(msg, encoding, 403)
        if self.draining:
            log.info("session refused while draining: {device_id} ({peer})", device_id=device_id, peer=peer)
            return self._plain_reply(msg, encoding, 503)
        live = await self._open(msg, encoding, peer, host)
        if isinstance(live, DMReply):
            return live
        live.first_digest = digest = _digest(body)
        # the package 1 of a session that just ended, again: its digest is
        # stale by now, but that is a retransmission, not a guess
        live.count_failures = self._first_bodies.get(device_id) != digest
        return await self._take(live, msg, body, hmac_header)

    async def _take(self, live, msg, body, hmac_header):
        """One message into ``live``'s engine; the reply to send."""
        if self.signals is not None and live.messages:
            await self._drop_jobs_ended_elsewhere(live)
        live.messages += 1
        preparing = self.functions.before_message(live, msg) if self.functions is not None else None
        if preparing is not None:  # (None, nearly always: the message needs nothing prepared)
            await preparing
        # (package 1 was hashed already, to know it again: not twice)
        digest = live.first_digest if live.messages == 1 and live.first_digest else None
        outcome = live.engine.handle(msg, body=body, hmac_header=hmac_header, digest=digest)
        ended = outcome.finished or live.engine.finished
        just_authenticated = False
        if not live.authenticated:
            for effect in outcome.effects:
                if effect.__class__ is fx.Authenticated:
                    just_authenticated = True
                    break
        if just_authenticated and self._by_token.get(live.token) is live:
            live.authenticated = True
            self._authenticated_live += 1
        if ended:
            # at once: a job created while the effects are written must not
            # be handed to an engine that is over
            self._forget(live)
        try:
            unstarted = await self._apply(live, outcome.effects)
        except Exception as e:
            if ended:
                self._end_unwritten(live, outcome.effects, e)
            elif isinstance(e, WRITE_LATER):
                # the jobs the device finished in this message, started by the
                # store before: their ends are written with the abort (else
                # they would stay running, with no session to end them)
                ended_here = [effect for effect in outcome.effects
                              if effect.__class__ is fx.JobFinished and effect.job_id in live.job_ids]
                self._abort_unrecorded(live, e, ended_here)
            raise
        if unstarted:  # (before the reply is encoded, below)
            outcome = self._withdraw(live, outcome, unstarted)
        if just_authenticated and self.outbox is not None and live.pending_jobs:
            await self.outbox.session_started(live.device_id, live.pending_jobs)
        reply_body = outcome.body if outcome.body is not None else encode_message(outcome.reply, live.encoding)
        headers = {}
        if outcome.hmac_header:
            headers["x-syncml-hmac"] = outcome.hmac_header
        if ended:
            if self._cancel_at_end or self.outbox is not None:  # (else nothing follows its end)
                await self._wake_for_jobs_left(live)
        else:
            self._arm_timer(live)
        return DMReply(200, live.media_type, reply_body, headers)

    def _bad_request(self, body, encoding, error):
        """SyncML that is not valid: HTTP 200 with a SyncML Status 400 when
        the header names the session (DESIGN §4), else plain HTTP 400."""
        reply = bad_request_reply(body, encoding, self.config.gateway.public_url) if body else None
        if reply is not None:
            try:
                return DMReply(200, media_type_for(encoding), encode_message(reply, encoding))
            except CodecError:
                pass
        text = "malformed SyncML message: %s\n" % (error,)
        return DMReply(400, "text/plain; charset=utf-8", text.encode("utf-8"))

    def _plain_reply(self, msg, encoding, code):
        reply = status_only_reply(msg, code, server_uri=self.config.gateway.public_url)
        return DMReply(200, media_type_for(encoding), encode_message(reply, encoding))

    async def _open(self, msg, encoding, peer, host):
        device_id = msg.hdr.source.loc_uri
        now = self.clock.seconds()
        # only sessions whose device authenticated take a place: a stranger's
        # package 1 (wrong credentials for a known device id) cannot fill them
        if self._authenticated_live >= self.config.gateway.max_sessions:
            if not self._refusing_busy:  # said once per overload, not per device
                log.warn("sessions refused (503): {count} open, [gateway] max_sessions reached",
                         count=len(self._by_device))
            self._refusing_busy = True
            return self._plain_reply(msg, encoding, 503)
        self._refusing_busy = False
        device, jobs = await self.store.session_reads(device_id)
        refusal = self._refusal(device, device_id, host, peer, now)
        if refusal is not None:
            return self._plain_reply(msg, encoding, refusal)
        # 128 random bits: the RespURI is the session's key; its "NODE~" prefix lets
        # a load balancer route the session's later packages to this process
        # (never from the injected random_bytes: tests make those repeatable)
        token = session_token(self.node, system_random_bytes(16).hex())
        resp_uri = self._resp_uri(token)

        def encode(message):
            return encode_message(message, encoding)

        specs = [job_spec(job) for job in jobs]
        try:
            try:
                engine = self._new_engine(device, specs, resp_uri, encode)
            except ValueError:
                # a stored job the engine refuses (the API's checks make this
                # rare): fail that one, run the others
                runnable = []
                for spec in specs:
                    problem = why_refused(spec)
                    if problem is None:
                        runnable.append(spec)
                    else:
                        await self._fail_job(spec.job_id, device_id, "invalid_job", problem)
                engine = self._new_engine(device, runnable, resp_uri, encode)
        except SessionError as e:
            log.error(
                "session refused: account of {device_id} is unusable: {reason}",
                device_id=device_id,
                reason=str(e),
            )
            return self._plain_reply(msg, encoding, 500)
        live = LiveSession(
            token=token,
            device_id=device_id,
            syncml_session_id=msg.hdr.session_id,
            engine=engine,
            encoding=encoding,
            media_type=media_type_for(encoding),
            started=now,
            auth_failures=device.auth_failures,
            host=host,
            devinfo=device.devinfo,
            reported=device.reported,
        )
        self._by_token[token] = live
        self._by_device[device_id] = live
        self._arm_timer(live)  # from now on, whatever happens next, it times out
        self.stats["sessions_started"] += 1
        # recorded with the effects of the first message, in the same transaction
        live.unrecorded = True
        # their queued wake-ups are moot once the device authenticates (not before:
        # a stranger's package 1 must not stop them)
        live.pending_jobs = [job.job_id for job in jobs]
        # debug: the info line of a session is the one at its end (with the
        # encoding and host), one line per session instead of two
        if debug_enabled():
            log.debug(
                "session {session_id} started: device {device_id} ({encoding}, {jobs} pending jobs) from {peer}",
                session_id=msg.hdr.session_id,
                device_id=device_id,
                encoding=encoding,
                jobs=len(jobs),
                peer=peer,
            )
        return live

    def _new_engine(self, device, specs, resp_uri, encode):
        return ServerSession(
            device_state(device),
            specs,
            server_uri=self.config.gateway.public_url,
            resp_uri=resp_uri,
            encode=encode,
            random_bytes=self.random_bytes,
            accept_msg_size=self.accept_msg_size,
            nonce_size=self.config.auth.nonce_size,
            accept_hex_mac=self.config.auth.accept_hex_mac,
        )

    def _resp_uri(self, token):
        url = self.config.gateway.public_url
        cached = self._resp_prefix
        if cached is None or cached[0] != url:
            # every token is "NODE~HEX": only the node's part may need quoting
            separator = "&" if "?" in url else "?"
            cached = self._resp_prefix = (url, url + separator + "s=" + quote_plus(self.node + "~"),
                                          self.node + "~")
        _url, prefix, head = cached
        if token.startswith(head):
            secret = token[len(head):]
            if secret.isascii() and secret.isalnum():  # (hex, as made here: nothing to quote)
                return prefix + secret
            return prefix + quote_plus(secret)
        return url + ("&" if "?" in url else "?") + urlencode({"s": token})

    def _arm_timer(self, live):
        self.deadlines.arm(live, self.config.gateway.session_timeout)

    def _expire(self, live):
        d = defer.ensureDeferred(self._device_quiet(live.device_id, lambda: self._expire_locked(live)))
        d.addErrback(lambda f: log.failure("session timeout handling failed", f))

    def _drop_lock(self, device_id, lock):
        """Forget ``lock`` once nobody holds or waits for it and no session is live."""
        if not lock.locked and not lock.waiting and device_id not in self._by_device:
            if self._locks.get(device_id) is lock:
                del self._locks[device_id]

    async def _expire_locked(self, live):
        if self._by_token.get(live.token) is live:
            log.info(
                "session {session_id} of {device_id} timed out",
                session_id=live.syncml_session_id,
                device_id=live.device_id,
            )
            try:
                await self._abort(live, "session_timeout", "the device stopped answering")
            except WRITE_LATER as e:
                self._write_later(e)

    async def _abort(self, live, code, message, wake=True):
        effects = live.engine.abort(code, message)
        self._forget(live)
        try:
            await self._apply(live, effects)
        except Exception as e:
            self._end_unwritten(live, effects, e)
            raise
        if wake:
            await self._wake_for_jobs_left(live)
        else:  # its jobs left go to a new session (or away with the device): not those cancelled
            await self._cancel_left_at_session_end(live)

    async def _wake_for_jobs_left(self, live):
        """Notify again for the jobs a session ended without starting.

        A job still ``queued`` in the store has no wake-up on its way: it
        joined the session after it began (no notification was made), or
        the session's start expired the one that was waiting.  Nor has a
        ``notified`` job whose wake-ups all failed while the session ran
        (the outbox leaves such a job to the session).  Without this it
        would wait for the device to call by itself.
        """
        await self._cancel_left_at_session_end(live)
        if self.outbox is None:
            return
        device, jobs = await self.store.session_reads(live.device_id)
        if device is None:
            return
        for job in jobs:
            notifications = await self.store.notifications_for_job(job.job_id)
            if job.state == "notified" and any(n.state in ("sent", "delivered") for n in notifications):
                continue  # the outbox notifies again if the device stays away
            # (a notified job whose wake-ups all failed during the session has none on its way)
            if not any(n.state == "queued" for n in notifications):
                await self.outbox.job_created(job, device)

    def _forget(self, live):
        """``live`` is over: no message reaches it now; its end is written next
        (until then, a cancel of a job it sent is left to that end)."""
        self.deadlines.cancel(live)
        self._ending.setdefault(live.device_id, {})[live.token] = live
        if live.first_digest:
            self._first_bodies.pop(live.device_id, None)
            self._first_bodies[live.device_id] = live.first_digest
            while len(self._first_bodies) > self.config.gateway.max_sessions:
                self._first_bodies.popitem(last=False)
        if self._by_token.pop(live.token, None) is live and live.authenticated:
            self._authenticated_live -= 1
        if self._by_device.get(live.device_id) is live:
            del self._by_device[live.device_id]

    # -- what the REST handlers and the other services call -------------------------

    async def job_created(self, job: Any, device: Any) -> None:
        """A job was created through the API: hand it to the device's live
        session (or to its session on another node), and wake the device
        unless a session in which it authenticated has the job."""
        device_id = device.device_id
        live = self._by_device.get(device_id)
        if live is not None:
            live.engine.add_job(job_spec(job))
            live.pending_jobs.append(job.job_id)
        elif self.signals is not None:
            self.signals.send(JOBS, device_id)  # its session may live on another node
        if (live is None or not live.authenticated) and self.outbox is not None:
            # a session whose device has not authenticated (a stranger's wrong
            # credentials, perhaps) may never go on: wake the device anyway
            await self.outbox.job_created(job, device)

    async def job_queued(self, job: Any, device: Any) -> None:
        """A job was queued outside the API: hand it to the live session, or wake the device."""
        live = self._by_device.get(device.device_id)
        if live is not None and not live.engine.finished:
            live.engine.add_job(job_spec(job))
            live.pending_jobs.append(job.job_id)
        if (live is None or live.engine.finished or not live.authenticated) and self.outbox is not None:
            # as for a job of the API: a session whose device has not
            # authenticated may never go on
            await self.outbox.job_created(job, device)

    async def end_session(self, device_id: str, outcome: str, reason: str, then: Any = None,
                          wait: Optional[float] = None) -> Any:
        """End the device's live session, if it has one (its jobs left get no
        wake-up), once the message of the device being handled is answered;
        then ``await then()``, if given, before the device's next message is
        handled: its value (see :meth:`_device_quiet`, and its ``wait``)."""
        return await self._device_quiet(device_id, lambda: self._end_quietly(device_id, outcome, reason, then),
                                        wait)


def run_now(coro):
    """Run ``coro`` until it finishes or waits: its value if it finished
    (an exception it raised as a failed Deferred), else a Deferred of the rest.

    What ``ensureDeferred`` does, minus its Deferred and callback chain for
    the messages that never wait (every await of an already-fired Deferred
    returns at once): most of them, with a store that runs inline.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    except BaseException:
        return defer.fail()
    return defer.ensureDeferred(_resumed(coro))


@types.coroutine
def _resumed(coro):
    """The rest of a started coroutine, for ``ensureDeferred``.  Resuming it
    re-enters the ``await`` of the Deferred it waits for, which yields that
    Deferred again until it has fired."""
    return (yield from coro)
