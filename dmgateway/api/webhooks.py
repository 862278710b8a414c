"""
Webhooks: the API's event log pushed to operator URLs.

Delivery, per URL and independently of the other URLs:

    - one event per POST, in ``seq`` order; the body is the same JSON as the
      long-poll answers, ``{"events": [event]}``, with headers
      ``X-Dmgw-Event-Seq: <seq>`` and, when a secret is configured,
      ``X-Dmgw-Signature: sha256=<hex HMAC-SHA256(secret, body)>``;
    - a 2xx answer delivers the event and the URL's cursor (the last
      delivered seq) is saved, so a restart resumes after it.  Delivery is
      at least once: a receiver should ignore a seq it has seen;
    - no answer (connection error, timeout), 5xx, 408 or 429: the receiver
      is unavailable.  The event is retried with exponential backoff
      (``initial_delay`` doubling up to ``max_delay``) for as long as it takes,
      so an outage loses nothing and order is kept;
    - any other 4xx: the receiver refuses this event.  It is retried
      ``retries`` times with the same backoff, then logged as an error and
      skipped (it stays readable through ``GET /api/v1/events``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

from twisted.application.service import Service
from twisted.internet import task
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from dmgateway.redact import redact_uri

SIGNATURE_HEADER = b"X-Dmgw-Signature"
SEQ_HEADER = b"X-Dmgw-Event-Seq"

log = Logger()


def sign(secret: bytes, body: bytes) -> str:
    """
    The ``X-Dmgw-Signature`` value for ``body``: ``sha256=<hex>``.
    """
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | bytes | None) -> bool:
    """
    For receivers: does ``header`` sign ``body`` with ``secret``?
    (Constant-time comparison.)
    """
    if header is None:
        return False
    if isinstance(header, str):
        header = header.encode("ascii", "replace")
    return hmac.compare_digest(header, sign(secret, body).encode("ascii"))


@implementer(IBodyProducer)
class _BytesProducer:
    """
    A request body that is already in memory.
    """

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self.body)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class _Drain(Protocol):
    """
    Reads a response body, keeping its first bytes for the log.
    ``done`` fires with them at the end of the body; cancelling it (the
    timeout) drops the connection, so a receiver that never finishes its
    answer does not keep it open.
    """

    keep = 200

    def __init__(self) -> None:
        self.done: Deferred[bytes] = Deferred(self._abort)
        self.head = b""

    def _abort(self, done: Deferred[bytes]) -> None:
        if self.transport is not None:
            self.transport.stopProducing()

    def dataReceived(self, data: bytes) -> None:
        if len(self.head) < self.keep:
            self.head = (self.head + data)[: self.keep]

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if not self.done.called:
            self.done.callback(self.head)


def _check_urls(urls: Sequence[str]) -> None:
    for url in urls:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"webhook URL must be http or https: {redact_uri(url, path_only=True)}")


def _transient(code: int) -> bool:
    return code >= 500 or code in (408, 429)


class _Target:
    """
    Delivery to one URL: a loop of fetch, POST, save cursor; idle until
    woken when there is nothing to send.
    """

    def __init__(self, sender: WebhookSender, url: str) -> None:
        self.sender = sender
        self.url = url
        self.name = redact_uri(url, path_only=True)
        self.cursor: int | None = None
        self._woken = False
        self._idle: Deferred[None] | None = None
        self._loop: Deferred[None] | None = None

    def start(self) -> None:
        self._loop = Deferred.fromCoroutine(self._run())
        self._loop.addErrback(self._stopped)

    def stop(self) -> None:
        if self._loop is not None:
            loop, self._loop = self._loop, None
            loop.cancel()

    def wake(self) -> None:
        self._woken = True
        if self._idle is not None:
            idle, self._idle = self._idle, None
            idle.callback(None)

    def _stopped(self, reason: Failure) -> None:
        if not reason.check(CancelledError):
            log.failure("webhook {url}: delivery stopped", reason, url=self.name)

    async def _run(self) -> None:
        sender = self.sender
        cursor = await self._store("load cursor", lambda: sender.load_cursor(self.url))
        self.cursor = cursor = int(cursor or 0)
        while True:
            self._woken = False
            events = await self._store(
                "fetch events", lambda: sender.fetch_events(cursor, sender.batch)
            )
            events = sorted(
                (e for e in events if e["seq"] > cursor), key=lambda e: e["seq"]
            )
            if not events:
                if not self._woken:
                    self._idle = Deferred(lambda d: setattr(self, "_idle", None))
                    await self._idle
                continue
            for event in events:
                await self._deliver(event)
                cursor = event["seq"]
                await self._store(
                    "save cursor", lambda: sender.save_cursor(self.url, cursor)
                )
                self.cursor = cursor

    async def _store(self, what: str, call: Callable[[], Deferred[Any]]) -> Any:
        """
        Call the store until it answers, backing off between failures.
        """
        failures = 0
        while True:
            try:
                return await maybeDeferred(call)
            except CancelledError:
                raise
            except Exception:
                failures += 1
                delay = self.sender.backoff(failures)
                log.failure(
                    "webhook {url}: {what} failed; again in {delay}s",
                    url=self.name, what=what, delay=delay,
                )
                await self.sender.sleep(delay)

    async def _deliver(self, event: dict[str, Any]) -> None:
        sender = self.sender
        seq = event["seq"]
        body = json.dumps({"events": [event]}, ensure_ascii=False).encode("utf-8")
        failures = 0
        while True:
            try:
                code, head = await sender.post(self.url, seq, body)
            except CancelledError:
                raise
            except Exception as e:
                code, head, reason = None, b"", f"{type(e).__name__}: {e}"
            else:
                if 200 <= code < 300:
                    return
                reason = f"HTTP {code}"
            failures += 1
            if code is not None and not _transient(code) and failures > sender.retries:
                log.error(
                    "webhook {url}: event {seq} refused ({reason}) {failures} times;"
                    " skipped",
                    url=self.name, seq=seq, reason=reason, failures=failures,
                    answer=head.decode("utf-8", "replace"),
                )
                return
            delay = sender.backoff(failures)
            log.warn(
                "webhook {url}: event {seq} not delivered ({reason}); again in {delay}s",
                url=self.name, seq=seq, reason=reason, delay=delay,
                answer=head.decode("utf-8", "replace"),
            )
            await sender.sleep(delay)


class WebhookSender(Service):
    """
    Pushes the event log to webhook URLs (delivery rules: module docstring).

    :param urls: the receivers' ``http(s)://`` URLs.
    :param secret: the HMAC key signing each body, or ``None`` for no
        signature.
    :param agent: an :class:`IAgent` (e.g. :class:`twisted.web.client.Agent` with a
        persistent pool).
    :param clock: the time source for backoff and timeouts.
    :param load_cursor: ``load_cursor(url) -> Deferred[int]``, the last
        delivered seq (0 for none).
    :param save_cursor: ``save_cursor(url, seq) -> Deferred``.
    :param fetch_events: ``fetch_events(after, limit) -> Deferred[list]``,
        events with ``seq > after`` in order.
    """

    def __init__(
        self,
        urls: Sequence[str],
        secret: bytes | None,
        agent: Any,
        clock: IReactorTime,
        load_cursor: Callable[[str], Deferred[int]],
        save_cursor: Callable[[str, int], Deferred[Any]],
        fetch_events: Callable[[int, int], Deferred[list[dict[str, Any]]]],
        *,
        retries: int = 5,
        initial_delay: float = 1.0,
        max_delay: float = 300.0,
        timeout: float = 30.0,
        batch: int = 100,
    ) -> None:
        _check_urls(urls)
        self.urls = list(urls)
        self.secret = secret
        self.agent = agent
        self.clock = clock
        self.load_cursor = load_cursor
        self.save_cursor = save_cursor
        self.fetch_events = fetch_events
        self.retries = retries
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self.batch = batch
        self._targets: list[_Target] = []

    def startService(self) -> None:
        super().startService()
        self._targets = [_Target(self, url) for url in self.urls]
        for target in self._targets:
            target.start()

    def stopService(self) -> None:
        super().stopService()
        for target in self._targets:
            target.stop()
        self._targets = []

    def reconfigure(
        self, urls: Sequence[str], secret: bytes | None, *, retries: int, timeout: float
    ) -> list[str]:
        """
        Apply reloaded C{[api]} webhook settings while running (C{SIGHUP}).

        A URL no longer listed stops being delivered to (its cursor stays in
        the store, so listing it again resumes where it stopped); a new URL
        starts from its stored cursor, as at start-up.  The secret, the
        retries and the timeout apply from the next POST.

        @return: lines saying what changed, with no secret in them.
        """
        _check_urls(urls)
        changes: list[str] = []
        removed = [url for url in self.urls if url not in urls]
        added = [url for url in urls if url not in self.urls]
        for target in self._targets:
            if target.url in removed:
                target.stop()
        self._targets = [t for t in self._targets if t.url not in removed]
        if self.running:  # else startService starts them all
            for url in added:
                target = _Target(self, url)
                self._targets.append(target)
                target.start()
        self.urls = list(urls)
        changes += ["webhook %s removed" % (redact_uri(url, path_only=True),) for url in removed]
        changes += ["webhook %s added" % (redact_uri(url, path_only=True),) for url in added]
        if secret != self.secret:
            self.secret = secret
            changes.append("webhook secret replaced" if secret is not None else "webhook secret removed")
        if (retries, timeout) != (self.retries, self.timeout):
            self.retries, self.timeout = retries, timeout
            changes.append("webhook retries %d, timeout %gs" % (retries, timeout))
        return changes

    def notify(self) -> None:
        """
        A new event was appended: wake the idle deliveries.
        """
        for target in self._targets:
            target.wake()

    def cursors(self) -> dict[str, int | None]:
        """
        The last delivered seq of each URL (``None`` before it is loaded).
        """
        return {target.url: target.cursor for target in self._targets}

    def backoff(self, failures: int) -> float:
        """
        The delay after ``failures`` failures in a row.
        """
        return min(self.initial_delay * 2 ** min(failures - 1, 32), self.max_delay)

    def sleep(self, delay: float) -> Deferred[None]:
        return task.deferLater(self.clock, delay, lambda: None)

    async def _exchange(self, url: str, headers: Headers, body: bytes) -> tuple[int, bytes]:
        response = await self.agent.request(
            b"POST", url.encode("ascii"), headers, _BytesProducer(body)
        )
        drain = _Drain()
        response.deliverBody(drain)
        return response.code, await drain.done

    def post(self, url: str, seq: int, body: bytes) -> Deferred[tuple[int, bytes]]:
        """
        POST one body; fires with the status code and the first bytes of
        the answer, or fails (connection error, timeout).
        """
        headers = Headers({
            b"Content-Type": [b"application/json; charset=utf-8"],
            b"User-Agent": [b"dmgateway-webhook/1"],
            SEQ_HEADER: [b"%d" % (seq,)],
        })
        if self.secret is not None:
            headers.setRawHeaders(SIGNATURE_HEADER, [sign(self.secret, body).encode("ascii")])
        d = Deferred.fromCoroutine(self._exchange(url, headers, body))
        return d.addTimeout(self.timeout, self.clock)
