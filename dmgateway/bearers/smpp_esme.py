"""The SMPP 3.4 ESME protocol: one bound connection to an SMSC, on Twisted.

:class:`ESMEProtocol` frames PDUs (refusing a command_length under 16 or
over 64 KiB), binds as transmitter or transceiver, keeps a window of
outstanding requests with a response timeout, paces submits with a token
bucket, keeps the link alive with enquire_link, answers what the SMSC asks
(enquire_link, unbind, deliver_sm) and reports delivery receipts.  All
timing comes from an injected clock.  The PDUs themselves are
:mod:`.smpp_pdu`; the service around a connection is :mod:`.smpp`.
"""

from collections import deque

from twisted.internet import defer, protocol
from twisted.logger import Logger

from dmgateway.bearers import smpp_pdu as P

__all__ = [
    "RETRYABLE_STATUSES", "BindError", "ESMEFactory", "ESMEProtocol", "LinkDown", "QueueFull",
    "ResponseTimeout", "SMPPError", "SubmitError",
]

log = Logger(namespace="dmgateway.smpp")

#: statuses meaning "not now": retried with backoff instead of failing
RETRYABLE_STATUSES = frozenset({P.ESME_RTHROTTLED, P.ESME_RMSGQFUL})


class SMPPError(Exception):
    """Base of the errors a submit fails with; ``retryable`` says if a later try may work."""

    retryable = False


class SubmitError(SMPPError):
    """The SMSC refused a request with ``status`` (``name`` is the ESME_* name)."""

    def __init__(self, status, name=None):
        self.status = status
        self.name = name or P.status_name(status)
        super().__init__("%s (0x%08x)" % (self.name, status))
        self.retryable = status in RETRYABLE_STATUSES


class BindError(SubmitError):
    """The SMSC refused the bind (wrong credentials, already bound ...)."""


class LinkDown(SMPPError):
    """The link was lost or is not bound: the submit may be tried again."""

    retryable = True


class ResponseTimeout(LinkDown):
    """The SMSC did not answer a request in time (the link is dropped)."""


class QueueFull(SMPPError):
    """Too many submits are already waiting for the link."""

    retryable = True

class _Request:
    """One outstanding request: its sequence, deferred and timeout call."""

    __slots__ = ("sequence", "command_id", "deferred", "timeout", "segment")

    def __init__(self, sequence, command_id, deferred, segment=None):
        self.sequence = sequence
        self.command_id = command_id
        self.deferred = deferred
        self.timeout = None
        self.segment = segment


class _Segment:
    """One submit_sm to send (and resend after ESME_RTHROTTLED/RMSGQFUL)."""

    __slots__ = ("fields", "deferred", "attempts")

    def __init__(self, fields, deferred):
        self.fields = fields
        self.deferred = deferred
        self.attempts = 0


def _one_id(message_id):
    return [message_id]


class ESMEProtocol(protocol.Protocol):
    """One SMPP session as ESME.

    ``config`` is a :class:`~dmgateway.config.bearers.SmppLinkConfig`,
    ``clock`` an ``IReactorTime``; ``on_receipt(message_id, state, error)``
    is called for each delivery receipt.  ``when_bound()`` fires with the
    protocol once bound, or fails with :class:`BindError`/:class:`LinkDown`.
    """

    state = "closed"
    #: retry after ESME_RTHROTTLED/RMSGQFUL: first delay, ceiling, attempts
    retry_initial = 1.0
    retry_max = 30.0
    retry_attempts = 6
    #: token bucket depth (submits that may go back to back)
    burst = 1

    def __init__(self, config, clock, on_receipt=None):
        self.config = config
        self.clock = clock
        self.on_receipt = on_receipt
        self._bound_result = None
        self._bound_waiters = []
        self._buffer = bytearray()
        self._sequence = 0
        self._outstanding = {}
        self._queue = deque()
        self._retry_calls = {}  # delayed resend -> the segment it resends
        self._pump_call = None
        self._enquire_call = None
        self._enquire_pending = None
        self._unbind_deferred = None
        self._tokens = float(self.burst)
        self._tokens_at = None
        self._closed = False

    @property
    def is_closed(self):
        """Whether the connection is gone (the protocol is not used again)."""
        return self._closed

    # -- connection ------------------------------------------------------

    def connectionMade(self):
        self.state = "binding"
        self._tokens_at = self.clock.seconds()
        c = self.config
        log.info("smpp link {link}: connected, binding as {mode} system_id={system_id}",
                 link=c.name, mode=c.bind, system_id=c.system_id)
        d = self._request(P.BIND_TRANSMITTER if c.bind == "transmitter" else P.BIND_TRANSCEIVER,
                          lambda seq: P.bind(seq, c.bind, c.system_id, c.password, c.system_type))
        d.addCallbacks(self._bind_done, self._bind_failed)

    def _bind_done(self, _pdu):
        self.state = "bound"
        log.info("smpp link {link}: bound", link=self.config.name, outcome="bound")
        self._schedule_enquire()
        self._fire_bound(self)
        self._pump()

    def _bind_failed(self, failure):
        error = failure.value
        if isinstance(error, SubmitError) and not isinstance(error, BindError):
            error = BindError(error.status, error.name)
        log.error("smpp link {link}: bind refused: {error}", link=self.config.name,
                  error=str(error), outcome="bind_failed")
        self._fire_bound(error)
        self._drop()

    def when_bound(self):
        """A new Deferred: this protocol once bound, or the reason it never will be."""
        if self._bound_result is None:
            d = defer.Deferred()
            self._bound_waiters.append(d)
            return d
        if isinstance(self._bound_result, Exception):
            return defer.fail(self._bound_result)
        return defer.succeed(self._bound_result)

    def _fire_bound(self, result):
        if self._bound_result is None:
            self._bound_result = result
            waiters, self._bound_waiters = self._bound_waiters, []
            for d in waiters:
                if isinstance(result, Exception):
                    d.errback(result)
                else:
                    d.callback(result)

    def connectionLost(self, reason=protocol.connectionDone):
        was = self.state
        self.state = "closed"
        self._closed = True
        retrying, self._retry_calls = list(self._retry_calls.items()), {}
        for call in [self._pump_call, self._enquire_call, *(c for c, _ in retrying)]:
            if call is not None and call.active():
                call.cancel()
        self._pump_call = self._enquire_call = None
        lost = LinkDown("SMPP link %s lost (%s)" % (self.config.name, reason.getErrorMessage()))
        outstanding, self._outstanding = self._outstanding, {}
        for request in outstanding.values():
            if request.timeout is not None and request.timeout.active():
                request.timeout.cancel()
            if not request.deferred.called:
                request.deferred.errback(lost)
        queue, self._queue = self._queue, deque()
        for segment in [*queue, *(s for _, s in retrying)]:
            if not segment.deferred.called:
                segment.deferred.errback(lost)
        self._fire_bound(lost)
        if self._unbind_deferred is not None and not self._unbind_deferred.called:
            self._unbind_deferred.callback(None)
        log.info("smpp link {link}: connection closed in state {was}", link=self.config.name,
                 was=was, outcome="closed")

    def _drop(self):
        """Close at once (a dead or misbehaving peer gets no orderly close)."""
        if self.transport is not None and not self._closed:
            self.state = "closing"
            abort = getattr(self.transport, "abortConnection", None)
            (abort or self.transport.loseConnection)()

    # -- framing ---------------------------------------------------------

    def dataReceived(self, data):
        self._buffer += data
        while not self._closed and self.state != "closing":
            try:
                raw = P.take_frame(self._buffer)
            except P.FramingError as e:
                log.error("smpp link {link}: bad command_length {length}, dropping the link",
                          link=self.config.name, length=e.length, outcome="bad_pdu")
                self.transport.write(P.generic_nack(e.sequence, P.ESME_RINVCMDLEN))
                self._buffer.clear()
                self._drop()
                return
            if raw is None:
                return
            self._frame_received(raw)

    def _frame_received(self, raw):
        quick = P.quick_submit_sm_resp(raw)  # most of what an SMSC sends us
        if quick is not None:
            self._response(P.read_header(raw), quick)
            return
        header = P.read_header(raw)
        try:
            pdu = P.decode(raw)
        except P.PDUError as e:
            log.warn("smpp link {link}: unreadable {command} (seq {seq}): {error}",
                     link=self.config.name, command=header.command_name, seq=header.sequence,
                     error=str(e), outcome="bad_pdu")
            if header.is_response:
                request = self._outstanding.get(header.sequence)
                if request is not None and header.status != P.ESME_ROK:
                    self._response(header, None)  # the status is all we need
                elif request is not None:
                    self._complete(request, SubmitError(e.status))
                    self.transport.write(P.generic_nack(header.sequence, e.status))
                else:
                    self.transport.write(P.generic_nack(header.sequence, e.status))
            elif header.command_id not in (P.ALERT_NOTIFICATION, P.OUTBIND):
                self.transport.write(P.response_for(header.command_id, header.sequence, e.status))
            return
        if header.command_id == P.GENERIC_NACK or header.is_response:
            self._response(header, pdu)
        else:
            self._smsc_request(header, pdu)

    # -- requests from the SMSC -----------------------------------------

    def _smsc_request(self, header, pdu):
        seq = header.sequence
        if header.command_id == P.ENQUIRE_LINK:
            self.transport.write(P.enquire_link_resp(seq))
        elif header.command_id == P.UNBIND:
            log.info("smpp link {link}: SMSC unbinds", link=self.config.name, outcome="unbound")
            self.transport.write(P.unbind_resp(seq))
            self.state = "closing"
            self.transport.loseConnection()
        elif header.command_id == P.DELIVER_SM:
            self.transport.write(P.deliver_sm_resp(seq))
            self._deliver(pdu)
        elif header.command_id in (P.ALERT_NOTIFICATION, P.OUTBIND):
            log.info("smpp link {link}: ignoring {command}", link=self.config.name,
                     command=header.command_name)
        else:
            log.warn("smpp link {link}: SMSC sent unsupported {command}", link=self.config.name,
                     command=header.command_name, outcome="bad_pdu")
            self.transport.write(P.response_for(header.command_id, seq, P.ESME_RINVCMDID))

    def _deliver(self, pdu):
        if not P.is_receipt(pdu):
            log.info("smpp link {link}: ignoring a mobile-originated deliver_sm",
                     link=self.config.name)
            return
        receipt = P.receipt_of(pdu)
        if receipt is None:
            log.warn("smpp link {link}: delivery receipt without a message id",
                     link=self.config.name, outcome="bad_receipt")
            return
        log.info("smpp link {link}: receipt {message_id} {state}", link=self.config.name,
                 message_id=receipt.message_id, state=receipt.state, error=receipt.error)
        if self.on_receipt is not None:
            try:
                self.on_receipt(receipt.message_id, receipt.state, receipt.error)
            except Exception:
                log.failure("smpp link {link}: receipt callback failed", link=self.config.name)

    # -- our requests ----------------------------------------------------

    def _next_sequence(self):
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    def _request(self, command_id, build, segment=None):
        """Send a request built by ``build(sequence)``; the deferred fires with the response."""
        sequence = self._next_sequence()
        request = _Request(sequence, command_id, defer.Deferred(), segment)
        self._outstanding[sequence] = request
        request.timeout = self.clock.callLater(self.config.response_timeout, self._timed_out, request)
        self.transport.write(build(sequence))
        return request.deferred

    def _timed_out(self, request):
        request.timeout = None
        log.error("smpp link {link}: no response to {command} (seq {seq}) in {timeout}s, dropping",
                  link=self.config.name, command=P.command_name(request.command_id),
                  seq=request.sequence, timeout=self.config.response_timeout, outcome="timeout")
        self._outstanding.pop(request.sequence, None)
        if not request.deferred.called:
            request.deferred.errback(ResponseTimeout(
                "no %s_resp within %gs" % (P.command_name(request.command_id),
                                          self.config.response_timeout)))
        self._drop()

    def _complete(self, request, result):
        self._outstanding.pop(request.sequence, None)
        if request.timeout is not None and request.timeout.active():
            request.timeout.cancel()
        request.timeout = None
        if isinstance(result, Exception):
            request.deferred.errback(result)
        else:
            request.deferred.callback(result)
        self._pump()

    def _response(self, header, pdu):
        request = self._outstanding.get(header.sequence)
        if request is None:
            log.warn("smpp link {link}: {command} for unknown seq {seq}", link=self.config.name,
                     command=header.command_name, seq=header.sequence, status=header.status)
            return
        if header.command_id != P.GENERIC_NACK and header.command_id != request.command_id | P.RESPONSE:
            log.warn("smpp link {link}: {command} answers a {expected} (seq {seq})",
                     link=self.config.name, command=header.command_name,
                     expected=P.command_name(request.command_id), seq=header.sequence)
            self._complete(request, SubmitError(P.ESME_RINVCMDID))
            return
        if header.status != P.ESME_ROK or header.command_id == P.GENERIC_NACK:
            status = header.status if header.status != P.ESME_ROK else P.ESME_RUNKNOWNERR
            if header.command_id == P.GENERIC_NACK:
                log.warn("smpp link {link}: generic_nack {status} for {command} (seq {seq})",
                         link=self.config.name, status=P.status_name(status),
                         command=P.command_name(request.command_id), seq=header.sequence)
            self._complete(request, SubmitError(status))
            return
        self._complete(request, pdu)

    # -- keep-alive -------------------------------------------------------

    def _schedule_enquire(self):
        if not self._closed:
            self._enquire_call = self.clock.callLater(self.config.enquire_link_interval,
                                                      self._enquire)

    def _enquire(self):
        self._enquire_call = None
        if self.state != "bound":
            return
        d = self._request(P.ENQUIRE_LINK, P.enquire_link)
        d.addCallbacks(lambda _: self._schedule_enquire(), self._enquire_failed)

    def _enquire_failed(self, failure):
        if failure.check(SubmitError):  # an answer, even an error one, proves the link lives
            self._schedule_enquire()
        elif not failure.check(LinkDown):
            return failure

    # -- submit -----------------------------------------------------------

    def submit(self, destination_msisdn, short_message_segments, *, esm_class=P.ESM_CLASS_UDHI,
               data_coding=0x04, registered_delivery=None):
        """Send one submit_sm per segment; fires with the SMSC's message ids, in order."""
        if self.state != "bound":
            return defer.fail(LinkDown("SMPP link %s is not bound" % (self.config.name,)))
        c = self.config
        if registered_delivery is None:
            registered_delivery = 1 if c.request_delivery_receipts else 0
        destination = destination_msisdn.strip().lstrip("+")
        deferreds = []
        for segment in short_message_segments:
            fields = dict(
                source_addr=c.source_addr.lstrip("+") if c.source_ton in (1, 2, 4) else c.source_addr,
                source_ton=c.source_ton, source_npi=c.source_npi,
                destination_addr=destination, short_message=bytes(segment),
                esm_class=esm_class, data_coding=data_coding,
                registered_delivery=registered_delivery,
            )
            d = defer.Deferred()
            self._queue.append(_Segment(fields, d))
            deferreds.append(d)
        if len(deferreds) == 1:  # a one-segment wake-up: no gathering needed
            result = deferreds[0].addCallback(_one_id)
        else:
            result = defer.gatherResults(deferreds, consumeErrors=True)
            result.addErrback(lambda f: f.value.subFailure if f.check(defer.FirstError) else f)
        self._pump()
        return result

    def _take_token(self):
        """A token from the bucket, or the seconds until the next one."""
        now = self.clock.seconds()
        rate = self.config.max_per_second
        self._tokens = min(float(self.burst), self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / rate

    def _pump(self):
        """Send queued submits while the window has room and the bucket has tokens."""
        if self.state != "bound":
            return
        while self._queue and len(self._outstanding) < self.config.window:
            wait = self._take_token()
            if wait > 0:
                if self._pump_call is None or not self._pump_call.active():
                    self._pump_call = self.clock.callLater(wait, self._pump)
                return
            segment = self._queue.popleft()
            if segment.deferred.called:  # cancelled by the caller
                continue
            self._send_segment(segment)

    def _send_segment(self, segment):
        segment.attempts += 1
        d = self._request(P.SUBMIT_SM, lambda seq: P.submit_sm(seq, **segment.fields), segment)
        d.addCallbacks(self._submitted, self._submit_failed,
                       callbackArgs=(segment,), errbackArgs=(segment,))

    def _submitted(self, pdu, segment):
        message_id = pdu.params.get("message_id") or b""
        if isinstance(message_id, bytes):
            message_id = message_id.decode("ascii", "replace")
        log.debug("smpp link {link}: submit_sm accepted as {message_id}", link=self.config.name,
                  message_id=message_id)
        segment.deferred.callback(message_id)

    def _submit_failed(self, failure, segment):
        error = failure.value
        if (isinstance(error, SubmitError) and error.retryable
                and segment.attempts < self.retry_attempts and not self._closed):
            delay = min(self.retry_initial * 2 ** (segment.attempts - 1), self.retry_max)
            log.warn("smpp link {link}: {status}, retrying in {delay}s", link=self.config.name,
                     status=error.name, delay=delay, outcome="throttled")
            call = None

            def again():
                self._retry_calls.pop(call, None)
                self._queue.appendleft(segment)
                self._pump()
            call = self.clock.callLater(delay, again)
            self._retry_calls[call] = segment
            return None
        if not segment.deferred.called:
            segment.deferred.errback(failure)
        return None

    # -- shutdown ---------------------------------------------------------

    def unbind(self):
        """Unbind and close; fires once the connection is gone (bounded by response_timeout)."""
        if self._closed:
            return defer.succeed(None)
        if self._unbind_deferred is not None:
            return self._unbind_deferred
        self._unbind_deferred = defer.Deferred()
        if self.state != "bound":
            self._drop()
            return self._unbind_deferred
        self.state = "unbinding"
        if self._enquire_call is not None and self._enquire_call.active():
            self._enquire_call.cancel()
        d = self._request(P.UNBIND, P.unbind)
        d.addBoth(lambda _: self.transport.loseConnection() if not self._closed else None)
        return self._unbind_deferred


class ESMEFactory(protocol.Factory):
    """Builds :class:`ESMEProtocol` for one link and tells the link about state changes."""

    protocol = ESMEProtocol

    def __init__(self, config, clock, on_receipt=None):
        self.config = config
        self.clock = clock
        self.on_receipt = on_receipt

    def buildProtocol(self, addr):
        p = self.protocol(self.config, self.clock, self.on_receipt)
        p.factory = self
        link = getattr(self, "link", None)
        if link is not None:
            link.connected(p)
        return p
