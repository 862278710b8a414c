"""The dispatcher's defences: who may touch a live session, lockouts, outages.

Mixed into :class:`dmgateway.dispatch.Dispatcher` (it uses the dispatcher's
sessions, store and effects).  The rules:

* A message continues a session only on that session's RespURI (its token,
  compared in constant time) or with valid credentials for the device;
  anything else gets SyncML 403 and changes nothing, and counts as a guess
  for its peer address (``[auth] max_session_guesses``).
* A package 1 for a device in session replaces that session only once it
  authenticates; otherwise a throw-away engine answers it (401/407 + Chal)
  and the live session is untouched.  The same bytes as the live session's
  package 1 are a retransmission, never an authentication failure.
* Lockouts are per device *and peer address* (:mod:`dmgateway.guard`), with
  the store's per-device ceiling (``[auth] device_max_failures``).
* A store outage answers 503 with Retry-After; the sessions it interrupts
  are ended at once and written when the store is back (probed every
  ``[gateway] store_retry_after`` seconds).
* A store transaction that kept losing to concurrent ones (a PostgreSQL
  deadlock or serialization failure, run again by the store and lost every
  time) is no outage: the message gets a SyncML 503 (in HTTP 200), its
  session ends, and what the session did is written at once after the
  answer (as after an outage, if the store still refuses it).
"""

import hashlib
import hmac

from twisted.internet import defer

from dmgateway.auth.verify import verify_client
from dmgateway.codec import encode_message
from dmgateway.codec.errors import LimitExceeded
from dmgateway.devicelock import DeviceBusy, DeviceLock
from dmgateway.dm import effects as fx
from dmgateway.dm.effects import SessionError
from dmgateway.guard import peer_host
from dmgateway.live import DMReply, LiveSession, device_state, media_type_for, starts_session
from dmgateway.logs import Logger
from dmgateway.store.model import NotFound, StoreClosed, StoreContention, StoreUnavailable

log = Logger(namespace="dmgateway.dispatch")

#: The store's failures after which what a session did is kept (the
#: dispatcher's ``_repairs``) and written once the store takes it: it is
#: unavailable (an outage), or the transaction kept losing to concurrent ones.
WRITE_LATER = (StoreUnavailable, StoreContention)


class SessionGuard:
    """Dispatcher methods guarding sessions and the store (see the module docstring)."""

    #: the Deferred of the _repair running (a second one would write its
    #: first effects twice), else None
    _repairing = None

    def _continues(self, live, msg, token, body, hmac_header):
        """Whether ``msg`` continues ``live``: "continue", "take_over" or "refuse".

        A message continues a session only on its RespURI (the token, compared
        in constant time) or with valid credentials for the device.  A package
        1 that does neither may start a new session, never join this one.
        """
        starts = starts_session(msg)
        same_session = msg.hdr.session_id == live.syncml_session_id
        if token is not None:
            if same_session and hmac.compare_digest(token.encode("utf-8"), live.token.encode("utf-8")):
                if (starts and msg.hdr.msg_id == "1" and live.messages > 0
                        and _digest(body) != live.first_digest):
                    return "take_over"  # the device started again on an old RespURI
                return "continue"
            return "take_over" if starts else "refuse"
        if starts:
            if same_session and _digest(body) == live.first_digest and live.messages == 1:
                return "continue"  # package 1 again: the engine sends its reply again
            return "take_over"
        if same_session and self._credentials_ok(live.engine.device, msg, body, hmac_header):
            return "continue"
        return "refuse"

    def _credentials_ok(self, device, msg, body, hmac_header):
        """Whether ``msg`` proves it comes from ``device``.  An account with
        client authentication ``none`` presents no proof: its session goes on
        only on its RespURI, and nobody's package 1 replaces it."""
        if (device.client.scheme or "").strip().lower() == "none":
            return False
        hdr = msg.hdr
        verdict = verify_client(
            device.client,
            device.client_nonce,
            cred=hdr.cred,
            loc_name=hdr.source.loc_name if hdr.source is not None else None,
            hmac_header=hmac_header,
            body=body,
            accept_hex_mac=self.config.auth.accept_hex_mac,
        )
        return verdict.ok

    def _guessed(self, host, peer):
        """Count a message naming no session of its sender's; log when that blocks it."""
        if self.guard.guessed(host, self.clock.seconds()):
            log.warn(
                "peer {peer} refused for {lockout} s: too many messages for unknown sessions",
                peer=peer,
                lockout=self.config.auth.lockout,
            )

    async def _take_over(self, live, msg, encoding, body, hmac_header, peer):
        """A package 1 for a device in session: authenticate first, then supersede."""
        device_id = live.device_id
        host = peer_host(peer)
        now = self.clock.seconds()
        device = await self.store.get_device(device_id)
        refusal = self._refusal(device, device_id, host, peer, now)
        if refusal is not None:
            return self._plain_reply(msg, encoding, refusal)
        state = device_state(device)
        if self._credentials_ok(state, msg, body, hmac_header):
            # the new session takes the jobs left: no wake-up for them
            await self._abort(live, "superseded", "a new session from the device replaced this one", wake=False)
            fresh = await self._open(msg, encoding, peer, host)
            if isinstance(fresh, DMReply):
                return fresh
            fresh.first_digest = _digest(body)
            return await self._take(fresh, msg, body, hmac_header)
        # not authenticated: a session of its own answers (401/407 + Chal,
        # no RespURI token), the live session is not touched
        try:
            engine = self._new_engine(device, [], self.config.gateway.public_url,
                                      lambda m: encode_message(m, encoding))
        except SessionError as e:
            log.error("session refused: account of {device_id} is unusable: {reason}",
                      device_id=device_id, reason=str(e))
            return self._plain_reply(msg, encoding, 500)
        outcome = engine.handle(msg, body=body, hmac_header=hmac_header)
        throwaway = LiveSession(
            token="", device_id=device_id, syncml_session_id=msg.hdr.session_id, engine=engine,
            encoding=encoding, media_type=media_type_for(encoding), started=now,
            auth_failures=device.auth_failures, host=host, count_failures=_digest(body) != live.first_digest,
        )
        kept = (fx.NoncesChanged, fx.AuthFailed)
        await self._apply(throwaway, [e for e in outcome.effects if isinstance(e, kept)])
        log.info(
            "package 1 from {peer} for {device_id} in session did not authenticate: session kept",
            peer=peer,
            device_id=device_id,
        )
        reply_body = outcome.body if outcome.body is not None else encode_message(outcome.reply, encoding)
        headers = {"x-syncml-hmac": outcome.hmac_header} if outcome.hmac_header else {}
        return DMReply(200, media_type_for(encoding), reply_body, headers)

    def _refusal(self, device, device_id, host, peer, now):
        """The SyncML status refusing a session to ``device_id`` from ``host`` (None: go on)."""
        if device is None:
            # warn once per burst from one address (each connection has its own
            # port), not for every message of a scan
            if not self.limiter.blocked(host, now) and not self.limiter.failure(host, now):
                log.warn("session refused: unknown device {device_id} ({peer})", device_id=device_id, peer=peer)
            return 401
        if device.locked(now):
            log.info(
                "session refused: {device_id} locked out after repeated authentication failures",
                device_id=device_id,
            )
            return 401
        if self.guard.locked(device_id, host, now):
            log.info(
                "session refused: {device_id} locked out for {peer} after repeated authentication failures",
                device_id=device_id,
                peer=peer,
            )
            return 401
        return None

    async def _device_quiet(self, device_id, work, wait=None):
        """``await work()`` holding the device's lock, as its DM messages are
        handled: after the message of the device being handled (its writes
        done: package 1's row is in the store, or the session is over),
        before its next one.  What ends a session from outside runs so (its
        timeout, a DELETE, its device's newer session on another node): its
        end written while package 1's write is in flight would insert the
        session's row a second time (a Conflict).  ``wait``: seconds to wait
        for the lock at most (None: as long as it takes), then
        :class:`~dmgateway.devicelock.DeviceBusy` and nothing done."""
        lock = self._locks.get(device_id)
        if lock is None:
            lock = self._locks[device_id] = DeviceLock()
        acquired = lock.acquire()
        if wait is not None:
            acquired.addTimeout(wait, self.clock)  # (its waiter leaves the queue)
        try:
            await acquired
        except defer.TimeoutError:
            self._drop_lock(device_id, lock)
            raise DeviceBusy(device_id) from None
        try:
            return await work()
        finally:
            lock.release()
            self._drop_lock(device_id, lock)

    async def _end_quietly(self, device_id, outcome, reason, then):
        """:meth:`~dmgateway.dispatch.Dispatcher.end_session`, the device's lock held."""
        live = self._by_device.get(device_id)
        if live is not None:
            try:
                await self._abort(live, outcome, reason, wake=False)
            except WRITE_LATER as e:
                self._write_later(e)  # (its end, kept in _repairs, is written once the store takes it)
                raise
        return await then() if then is not None else None

    def store_failed(self, error: Exception) -> float:
        """The API met a store outage: note it, probe until it ends; the Retry-After."""
        self.outage.failed(error)
        self._schedule_repair()
        return self.outage.retry_after

    def _store_failed_dm(self, msg, encoding, error):
        """The answer to a DM message the store failed with ``error`` (one of WRITE_LATER)."""
        device_id = msg.hdr.source.loc_uri
        if isinstance(error, StoreUnavailable):
            return self._store_down(device_id, error)
        # the database works: no outage, a plain SyncML refusal the device may try again
        log.warn("DM message from {device_id} refused (SyncML 503): {error}", device_id=device_id,
                 error=str(error))
        live = self._by_device.get(device_id)
        if live is not None:
            self._abort_unrecorded(live, error)
        self._write_later(error)
        return self._plain_reply(msg, encoding, 503)

    def _write_later(self, error):
        """What sessions did waits in ``_repairs`` after ``error``: during an
        outage until the probe finds the store back, else written at once."""
        if isinstance(error, StoreUnavailable):
            self.outage.failed(error)
            self._schedule_repair()
        else:
            self._schedule_repair(0)

    def _store_down(self, device_id, error):
        """HTTP 503 for a DM message the store failed; the device's session is aborted."""
        if error is not None:
            self.outage.failed(error)
        live = self._by_device.get(device_id)
        if live is not None:
            self._abort_unrecorded(live, error)
        self._schedule_repair()
        return DMReply(
            503,
            "text/plain; charset=utf-8",
            b"store unavailable, try again later\n",
            {"retry-after": "%d" % (self.outage.retry_after,)},
        )

    def _abort_unrecorded(self, live, error, ended=()):
        """End ``live`` now, the store having failed with ``error``; its store
        rows are settled once the store takes them, with the ends of the jobs
        ``ended`` (JobFinished effects of the message the store failed)."""
        if isinstance(error, StoreContention):
            message = "the store's transaction kept losing to concurrent ones"
        else:
            message = "the store is unavailable"
        effects = [*ended, *live.engine.abort("store_unavailable", message)]
        self._forget(live)
        self._repairs.append((live, effects))

    def _end_unwritten(self, live, effects, error):
        """The store did not write ``live``'s end, ``effects``, failing with
        ``error``: it waits in ``_repairs``, and the session in ``_ending``
        (a cancel of a job it sent is still left to that end).

        A failure of the store (WRITE_LATER): the caller schedules the
        repair.  Any other error (its device deleted meanwhile, NotFound
        for a session whose row was never written; a conflict; a bug)
        gets a repair at once: the write is tried once more, and if refused
        again it is settled as :meth:`_repair` settles an end refused for
        good (the cancels left to it made, or dropped with the device's
        jobs; what is left live of it ended in the store).  Else those
        cancels would stay here for good, and the jobs still running until
        the gateway's next start.  An end the store took, ``error`` raised
        after its batch committed (a lockout's event, say), is not written
        again: the repair does only what follows it."""
        if live.token not in self._ending.get(live.device_id, ()):
            effects = []
        self._repairs.append((live, effects))
        if not isinstance(error, WRITE_LATER):
            self._schedule_repair(0)

    def _schedule_repair(self, delay=None):
        if self._stopping:
            return  # (stop() writes what is left itself)
        if self._probe is not None and self._probe.active():
            if delay == 0:
                self._probe.reset(0)
            return
        self._probe = self.clock.callLater(
            self.outage.retry_after if delay is None else delay, self._run_repair
        )

    def _run_repair(self):
        if self._repairing is not None:
            return  # (the one running writes what was added meanwhile too)
        d = self._repairing = defer.ensureDeferred(self._repair())

        def failed(failure):
            self._repairing = None
            failure.trap(*WRITE_LATER)
            if failure.check(StoreUnavailable):
                self.outage.failed(failure.value)
            self._schedule_repair()

        d.addCallbacks(self._repaired, failed)
        d.addErrback(lambda f: log.failure("settling sessions after a store outage failed", f))

    def _repaired(self, _):
        self._repairing = None

    async def _last_repair(self):
        """At stop: the repair running has ended, and what is left is written."""
        if self._repairing is not None:
            await self._repairing  # (fires with None, whatever became of it)
        if self._repairs:
            await self._repair()

    async def _repair(self):
        """Write what sessions aborted during an outage left (their jobs fail
        with a reason), and the ends the store refused
        (:meth:`_end_unwritten`), then what follows each end (cancels left
        to it, wake-ups).  One the store refuses for good (not a failure of the
        store: its device deleted meanwhile, say) is not retried: its
        session is settled in the store (:meth:`_settle_unwritten`), or left
        alone when its device is gone."""
        if not self._repairs:
            await self.store.last_event_seq()  # is it back?
        while self._repairs:
            live, effects = self._repairs[0]
            try:
                if effects:
                    try:
                        await self._apply(live, effects)
                    except NotFound:
                        # its device was deleted meanwhile, with its sessions and
                        # jobs: nothing to write, now or at any later try
                        log.info("session {session_id} of {device_id}: not settled, the device was deleted",
                                 session_id=live.syncml_session_id, device_id=live.device_id)
                    except (*WRITE_LATER, StoreClosed):
                        raise
                    except Exception:
                        # refused for good (its first write committed after all,
                        # but was reported failed: its row exists, say): tried
                        # again, it would stop every repair behind it, and the
                        # outage would never end.  Its cancels are still made,
                        # then the store ends what the write left live.
                        log.failure("session {session_id} of {device_id}: its end not written, settled",
                                    session_id=live.syncml_session_id, device_id=live.device_id)
                        await self._settle_unwritten(live)
                    # written (or never): if what follows fails, the next try does only that;
                    # a cancel asked from now on has no end to wait for (one the store took
                    # has left _ending already)
                    self._end_taken(live)
                    self._repairs[0] = (live, [])
                await self._wake_for_jobs_left(live)
            except (*WRITE_LATER, StoreClosed):
                raise
            except Exception:  # (as above: not for good)
                log.failure("session {session_id} of {device_id}: what follows its end failed, dropped",
                            session_id=live.syncml_session_id, device_id=live.device_id)
                self._end_taken(live)  # (given up: no cancel waits for it)
                for job_id in self._cancels_left_to(live):
                    del self._cancel_at_end[job_id]
            self._repairs.pop(0)
        self.outage.ended()

    async def _settle_unwritten(self, live):
        """End ``live`` in the store after its end was refused for good: its
        cancels made, its row removed and its jobs still running failed
        (what the gateway's next start would do with them, else)."""
        await self._cancel_left_at_session_end(live)
        failed = await self.store.settle_session(live.token, self.clock.seconds(), "store_unavailable",
                                                 {"code": "store_unavailable",
                                                  "message": "the session's end could not be written"})
        if failed:
            self.events.announce()


def _check_counts(msg, limits):
    """LimitExceeded when ``msg`` has more commands or items than ``limits`` allow."""
    commands = items = 0
    stack = list(msg.body)
    while stack:
        cmd = stack.pop()
        commands += 1
        items += len(getattr(cmd, "items", None) or ())
        stack.extend(getattr(cmd, "commands", None) or ())
    if commands > limits.max_commands:
        raise LimitExceeded("%d commands, more than the %d allowed" % (commands, limits.max_commands))
    if items > limits.max_items:
        raise LimitExceeded("%d items, more than the %d allowed" % (items, limits.max_items))


def _digest(body):
    return hashlib.sha256(body).digest()
