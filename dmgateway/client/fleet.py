"""Running many simulated devices against a gateway, with Twisted.

:class:`FleetRunner` opens sessions for a list of :class:`~.sim.SimDevice`
at a target rate (a token bucket on the reactor's clock), at most
``concurrency`` at a time, over one persistent HTTP connection pool, and
counts latency, outcomes and errors (:class:`~.sim.FleetStats`).  A device
is never in two sessions at once (its nonces would diverge).

With a :class:`WakeSource`, devices open no session of their own: each
waits for a wake-up addressed to it (msisdn for SMS, sip_uri for SIP),
checks it with its SRVCRED and then opens the session with Alert 1200 and
the notification's session id.  A wake-up that reaches a device in a
session is checked when that session is over, with the nonce it handed out.  :class:`CallbackWakeSource` is the
in-process source tests use; :mod:`.wakesources` has the simulated SMSC
and SIP endpoint the gateway really sends to (``wakesources.WAKE_SOURCES``).

:func:`provision` creates the devices (and optionally a job each) through
the REST API.
"""

import json
import os
import sys
import urllib.parse
from collections import deque

from twisted.internet import defer, task
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers
from zope.interface import implementer

from ..codec import syncml as sm
from .http import DEFAULT_TIMEOUT, MAX_BODY, TransportError, _BytesProducer, _read_body, run_session
from .iwake import IWakeSource, WakeSource
from .sim import FleetStats, TokenBucket, WakeError, api_account, classify_failure, parse_wakeup

__all__ = ["WakeSource", "IWakeSource", "CallbackWakeSource", "FleetRunner", "ApiError",
           "provision", "api_call", "new_pool", "progress_stream", "react"]

PROGRESS_INTERVAL = 0.5  # at most two progress lines a second


@implementer(IWakeSource)
class CallbackWakeSource:
    """An in-process wake source: whoever holds it calls :meth:`deliver`."""

    def __init__(self, kind):
        if kind not in ("sms", "sip"):
            raise ValueError("a wake source is 'sms' or 'sip'")
        self.kind = kind
        self._listener = None
        self.pending = []  # deliveries before anyone listened

    def listen(self, on_notification):
        self._listener = on_notification
        pending, self.pending = self.pending, []
        for destination, data in pending:
            on_notification(destination, data)

    def stop(self):
        self._listener = None

    def deliver(self, destination, data):
        """Hand ``data`` to the device at ``destination``."""
        if self._listener is None:
            self.pending.append((destination, data))
        else:
            self._listener(destination, data)


def new_pool(reactor, concurrency):
    """A persistent connection pool sized for ``concurrency`` sessions."""
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = max(2, concurrency)
    pool.retryAutomatically = False
    return pool


class FleetRunner:
    """Sessions of ``devices`` against ``url``; :meth:`run` fires with the summary dict.

    ``rate``: sessions started per second (0: no limit); ``concurrency``:
    sessions in flight at most; stop after ``sessions`` sessions (default:
    one per device) or ``duration`` seconds, whichever comes first (with a
    duration and no session limit, devices go round again).  ``observer(device,
    session)`` is called after every session.  ``progress``
    is a text stream for a progress line (None: none).  ``session_options``
    go to every :class:`~.session.ClientSession` (``encoding``,
    ``max_msg_size`` ...).
    """

    def __init__(self, reactor, devices, url, *, rate=0, concurrency=8, sessions=None,
                 duration=None, agent=None, wake_source=None, progress=None, clock=None,
                 random_bytes=os.urandom, timeout=DEFAULT_TIMEOUT, server_id=None,
                 observer=None, functions=None, encoding_for=None, report_delay=0.0,
                 **session_options):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.devices = list(devices)
        self.url = url
        self.rate = rate
        self.concurrency = concurrency
        if sessions is None and duration is None:
            sessions = len(self.devices)
        self.limit = sessions
        self.duration = duration
        self._own_pool = None
        if agent is None:
            self._own_pool = new_pool(reactor, concurrency)
            agent = Agent(reactor, pool=self._own_pool)
        self.agent = agent
        self.wake_source = wake_source
        self.progress = progress
        self.random_bytes = random_bytes
        self.timeout = timeout
        self.server_id = server_id
        self.session_options = session_options
        self.observer = observer  # observer(device, session) after every session
        # device functions (FUMO/SCOMO/LAWMO): device_id -> client.functions.DeviceFunctions;
        # a device downloads what an Exec asked for after its session, then reports
        # in a session of its own ``report_delay`` seconds later
        self.functions = functions or {}
        self.encoding_for = encoding_for  # device -> "xml" | "wbxml" (default: session_options)
        self.report_delay = report_delay
        self.download_attempts = 6  # a package download is tried this often,
        self.download_backoff = 0.5  # waiting 0.5 s, 1 s, 2 s ... in between
        self.downloads = {"ok": 0, "failed": 0, "bytes": 0}
        self._working = 0  # downloads and report delays under way
        self._held = False
        self.stats = FleetStats()

        self._ready = deque()  # (device, WakeUp or None) waiting to start
        self._busy = set()  # ids of devices in a session
        self._held_wakeups = {}  # id(device) -> [(destination, data)] that came during its session
        self._started = 0
        self._active = 0
        self._stopping = False
        self._timer = None
        self._deadline = None
        self._progress_loop = None
        self._done = None
        self._by_destination = {}
        self._bucket = None
        self._finishing = False

    # -- public ----------------------------------------------------------------

    def run(self):
        """Start; the Deferred fires with :meth:`FleetStats.summary` when done."""
        now = self.clock.seconds()
        self.stats.started = now
        self._bucket = TokenBucket(self.rate, now)
        self._done = defer.Deferred()
        if self.duration is not None:
            self._deadline = self.clock.callLater(self.duration, self.stop)
        if self.progress is not None:
            self._progress_loop = task.LoopingCall(self._show_progress)
            self._progress_loop.clock = self.clock
            self._progress_loop.start(PROGRESS_INTERVAL, now=False)
        if self.wake_source is None:
            self._ready.extend((device, None) for device in self.devices)
        else:
            kind = self.wake_source.kind
            for device in self.devices:
                destination = device.destination(kind)
                if destination:
                    self._by_destination[_normal(kind, destination)] = device
            self.wake_source.listen(self._wakeup)
        self._pump()
        self._maybe_finish()
        return self._done

    def hold(self):
        """Start no session until :meth:`release` (wake-ups and reports wait)."""
        self._held = True

    def release(self):
        self._held = False
        self._pump()

    @property
    def active(self):
        """Sessions in flight now."""
        return self._active

    def stop(self):
        """Start no more sessions; the run ends when the ones in flight do."""
        self._stopping = True
        self._ready.clear()
        self._maybe_finish()

    # -- wake-ups ----------------------------------------------------------------

    def _wakeup(self, destination, data):
        kind = self.wake_source.kind
        device = self._by_destination.get(_normal(kind, destination or ""))
        if device is None:
            self.stats.wakeups["unknown_destination"] += 1
            return
        if id(device) in self._busy:
            # checked once the session is over: the gateway signs it with the
            # server nonce this session hands out, which the device keeps only
            # at the session's end (SimDevice.remember)
            self._held_wakeups.setdefault(id(device), []).append((destination, data))
            return
        try:
            wake = parse_wakeup(device, kind, data)
        except WakeError as error:
            self.stats.wakeups["rejected"] += 1
            kept = self.stats.samples.setdefault("wakeup", [])
            if len(kept) < self.stats.SAMPLES:
                kept.append(str(error))
            return
        self.stats.wakeups["accepted"] += 1
        if self._stopping:
            return
        self._ready.append((device, wake))
        self._pump()

    # -- scheduling ----------------------------------------------------------------

    def _more_allowed(self):
        return not self._stopping and (self.limit is None or self._started < self.limit)

    def _pump(self):
        if self._held or (self._timer is not None and self._timer.active()):
            return
        self._timer = None
        skipped = []
        while self._ready and self._active < self.concurrency and self._more_allowed():
            device, wake = self._ready[0]
            if id(device) in self._busy:
                skipped.append(self._ready.popleft())
                continue
            now = self.clock.seconds()
            if not self._bucket.take(now):
                self._timer = self.clock.callLater(max(self._bucket.delay(now), 0.001),
                                                   self._tick)
                break
            self._ready.popleft()
            self._start(device, wake)
        self._ready.extendleft(reversed(skipped))
        if not self._more_allowed():
            self._maybe_finish()

    def _tick(self):
        self._timer = None
        self._pump()

    def _start(self, device, wake):
        self._started += 1
        self._active += 1
        self._busy.add(id(device))
        options = dict(self.session_options)
        alert = sm.ALERT_CLIENT_INITIATED
        if wake is not None:
            options["session_id"] = wake.session_id
            alert = sm.ALERT_SERVER_INITIATED
        if self.encoding_for is not None:
            options["encoding"] = self.encoding_for(device)
        functions = self.functions.get(device.device_id)
        began = self.clock.seconds()
        try:
            session = device.session(self.url, random_bytes=self.random_bytes,
                                     server_id=self.server_id, **options)
            alerts = ()
            if functions is not None:
                functions.install(session.tree)
                alerts = functions.reports()
            request = session.start(alert=alert, generic_alerts=alerts)
        except Exception as error:  # noqa: BLE001 - a broken device must not stop the fleet
            self._finished(device, began, None, "protocol", "cannot start: %s" % (error,))
            return
        d = run_session(session, self.reactor, self.agent, request=request,
                        timeout=self.timeout, clock=self.clock)

        def ended(result):
            kind = detail = None
            if session.outcome != "completed":
                error = None
                if isinstance(result, Failure):
                    error = result.value
                    if isinstance(error, defer.CancelledError):
                        error = TransportError("cancelled")
                kind, detail = classify_failure(session, error)
            device.remember(session)
            if functions is not None:
                if session.outcome == "completed":
                    functions.reported()
                else:
                    functions.unreported()
            self._finished(device, began, session, kind, detail)
            if self.observer is not None:
                self.observer(device, session)
            if functions is not None and (functions.has_work() or (
                    session.outcome != "completed" and wake is not None)):
                self._working += 1
                defer.ensureDeferred(self._work(device, functions)).addBoth(self._worked)

        d.addBoth(ended)

    def _finished(self, device, began, session, kind, detail):
        self._active -= 1
        self._busy.discard(id(device))
        outcome = session.outcome if session is not None else "failed"
        messages = session.counters["messages_sent"] if session is not None else 0
        self.stats.record(self.clock.seconds() - began, outcome or "failed", kind, detail,
                          messages)
        if self.wake_source is None and self._more_allowed():
            self._ready.append((device, None))  # round again while sessions are wanted
        for destination, data in self._held_wakeups.pop(id(device), ()):
            self._wakeup(destination, data)
        self._pump()
        self._maybe_finish()

    async def _work(self, device, functions):
        """Fetch the packages the device's operations need, then report in a new session."""
        for pending, url in functions.downloads():
            body = await self._download(url, functions.max_package)
            if body is None:  # the device gives up: download failed, network error
                self.downloads["failed"] += 1
                functions.downloaded(pending, None, error=503)
                continue
            self.downloads["ok"] += 1
            self.downloads["bytes"] += len(body)
            functions.downloaded(pending, body)
        if self.report_delay:
            await task.deferLater(self.clock, self.report_delay, lambda: None)
        if not self._stopping and (functions.reports_due() or not functions.has_work()):
            self._ready.append((device, None))

    async def _download(self, url, limit):
        """The package at ``url``, trying again with backoff as device clients do; None if it never came."""
        for attempt in range(self.download_attempts):
            if attempt:
                self.downloads["retries"] = self.downloads.get("retries", 0) + 1
                await task.deferLater(self.clock, self.download_backoff * 2 ** (attempt - 1), lambda: None)
            try:
                response = await self.agent.request(b"GET", url.encode("utf-8"))
                body = await _read_body(response, limit)
            except Exception:  # noqa: BLE001 - any transport failure: try again
                continue
            if response.code == 200:
                return body
            if response.code < 500:
                return None  # refused (bad token, no such package): no point in trying again
        return None

    def _worked(self, result):
        self._working -= 1
        if isinstance(result, Failure):
            self.stats.record(0.0, "failed", "protocol", "device function: %s" % (result.value,), 0)
        self._pump()
        self._maybe_finish()

    def _maybe_finish(self):
        if self._done is None or self._finishing or self._active or self._working:
            return
        if self._more_allowed() and (self._ready or self.wake_source is not None):
            return  # more to start, or wake-ups to wait for (until the deadline)
        self._finishing = True
        self.stats.ended = self.clock.seconds()
        for call in (self._timer, self._deadline):
            if call is not None and call.active():
                call.cancel()
        if self._progress_loop is not None and self._progress_loop.running:
            self._progress_loop.stop()
            self._show_progress(final=True)
        if self.wake_source is not None:
            self.wake_source.stop()
        summary = self.stats.summary()
        done = self._done
        if self._own_pool is not None:
            d = self._own_pool.closeCachedConnections()
            d.addBoth(lambda _: done.callback(summary))
        else:
            done.callback(summary)

    def _show_progress(self, final=False):
        deadline = None
        if self.duration is not None and self.stats.started is not None:
            deadline = self.stats.started + self.duration
        line = self.stats.progress_line(self.clock.seconds(), self._active, total=self.limit, deadline=deadline)
        self.progress.write("\r" + line + ("\n" if final else ""))
        self.progress.flush()


def _normal(kind, destination):
    """msisdns match with or without '+'; SIP URIs case-insensitively."""
    destination = destination.strip()
    if kind == "sms":
        return destination.lstrip("+")
    return destination.lower()


# -- provisioning ------------------------------------------------------------------


class ApiError(Exception):
    """The REST API refused a call; ``code`` is the HTTP status."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


@defer.inlineCallbacks
def api_call(agent, method, url, token, body=None):
    """``(status, decoded JSON or None)`` of one REST call."""
    headers = Headers({b"Authorization": [b"Bearer " + token.encode("utf-8")]})
    producer = None
    if body is not None:
        headers.setRawHeaders(b"Content-Type", [b"application/json"])
        producer = _BytesProducer(json.dumps(body).encode("utf-8"))
    response = yield agent.request(method.encode("ascii"), url.encode("utf-8"), headers, producer)
    data = yield _read_body(response, MAX_BODY)
    try:
        decoded = json.loads(data) if data else None
    except ValueError:
        decoded = None
    return response.code, decoded


def provision(reactor, api, token, devices, *, server_id=None, job=None, concurrency=8,
              agent=None, replace=True):
    """PUT every device (and POST ``job`` to each when given) through the REST API.

    ``api`` is the API base, e.g. ``http://127.0.0.1:8081/api/v1``.  Fires
    with the number of devices provisioned; fails with :class:`ApiError`
    at the first refusal.  Without ``replace`` each device is first looked
    up, and one that exists stops the run before its account is touched.
    """
    pool = None
    if agent is None:
        pool = new_pool(reactor, concurrency)
        agent = Agent(reactor, pool=pool)
    api = api.rstrip("/")
    queue = deque(devices)
    count = [0]

    @defer.inlineCallbacks
    def worker():
        while queue:
            device = queue.popleft()
            path = api + "/devices/" + urllib.parse.quote(device.device_id, safe="")
            if not replace:
                status, answer = yield api_call(agent, "GET", path, token)
                if status != 404:
                    queue.clear()
                    raise ApiError("device %s already exists (HTTP %d): not replacing it; pass "
                                   "--reuse-ids or --first to use fixed ids" % (device.device_id, status),
                                   status)
            status, answer = yield api_call(agent, "PUT", path, token,
                                            api_account(device, server_id))
            if status not in (200, 201):
                queue.clear()
                raise ApiError("PUT %s: HTTP %d %s" % (device.device_id, status, answer), status)
            if job is not None:
                status, answer = yield api_call(agent, "POST", path + "/jobs", token, job)
                if status != 201:
                    queue.clear()
                    raise ApiError("job for %s: HTTP %d %s" % (device.device_id, status, answer),
                                   status)
            count[0] += 1

    workers = [worker() for _ in range(max(1, concurrency))]
    d = defer.gatherResults(workers, consumeErrors=True)

    def close(result):
        if pool is None:
            return result
        return pool.closeCachedConnections().addBoth(lambda _: result)

    d.addBoth(close)

    def unwrap(failure):
        if failure.check(defer.FirstError):
            return failure.value.subFailure
        return failure

    d.addCallbacks(lambda _: count[0], unwrap)
    return d


def react(main):
    """Run ``main(reactor)`` (a Deferred or coroutine) on the global reactor, then stop it.

    Returns its result or raises its exception; for one-shot commands.
    """
    from twisted.internet import reactor

    outcome = {}

    def start():
        def call():
            result = main(reactor)
            if hasattr(result, "__await__") and not isinstance(result, defer.Deferred):
                result = defer.ensureDeferred(result)
            return result

        d = defer.maybeDeferred(call)

        def done(result):
            outcome["result"] = result
            reactor.stop()

        d.addBoth(done)

    reactor.callWhenRunning(start)
    reactor.run()
    result = outcome.get("result")
    if isinstance(result, Failure):
        result.raiseException()
    return result


def progress_stream(requested, stream=None):
    """``stream`` (default stderr) when progress was asked for or it is a TTY, else None."""
    stream = stream if stream is not None else sys.stderr
    if requested or (hasattr(stream, "isatty") and stream.isatty()):
        return stream
    return None
