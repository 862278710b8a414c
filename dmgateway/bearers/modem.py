"""SMS wake-ups through a GSM modem: the ``[modem]`` service.

:class:`ModemService` opens the ``[modem]`` device and reopens it with
backoff when it closes or the modem cannot be initialised; it takes sends
(PDUs, SMS-SUBMITs, trigger messages, or the SMPP-shaped ``submit``) and
hands them to the open port once the modem is ready.  All timing comes from
an injected clock.

The port itself is :class:`~.modem_protocol.ModemProtocol` (initialisation,
``AT+CMGS`` sends, unsolicited result codes); the AT vocabulary, error codes
and status reports are in :mod:`.modem_at` (3GPP TS 27.005/27.007).
"""

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from dmgateway.bearers.modem_at import InvalidPDU, ModemDown, PinRejected, QueueFull
from dmgateway.bearers.modem_protocol import ModemFactory, fire
from dmgateway.notify import sms as _sms
from dmgateway.notify import trigger as _trigger
from dmgateway.notify.package0 import NotificationError

__all__ = ["ModemService", "serial_opener"]

log = Logger(namespace="dmgateway.modem")


def serial_opener(reactor, device, baudrate):
    """``open(protocol)`` connecting ``protocol`` to the serial ``device`` (needs pyserial)."""
    from twisted.internet.serialport import SerialPort

    def open_port(proto):
        return SerialPort(proto, device, reactor, baudrate=baudrate)
    return open_port


class ModemService(service.Service):
    """The ``[modem]`` device, kept open and initialised.

    ``opener(protocol)`` connects a protocol to the port (default: the
    configured serial device); when the port closes or initialisation fails
    it is reopened after ``reopen_initial`` seconds, doubling up to
    ``reopen_max``.  A refused PIN stops the service (another wrong PIN
    could block the SIM).  Sends made while the modem is not ready wait up
    to ``wait_timeout`` seconds.
    """

    name = "modem"
    reopen_initial = 1.0
    reopen_max = 60.0

    def __init__(self, config, reactor, *, clock=None, opener=None, on_report=None,
                 on_unsolicited=None, wait_timeout=60.0, queue_limit=100):
        self.config = config
        self._clock = clock or reactor
        self._opener = opener or serial_opener(reactor, config.device, config.baudrate)
        self.factory = ModemFactory(config, self._clock, on_report, on_unsolicited)
        self.wait_timeout, self.queue_limit = wait_timeout, queue_limit
        self.failures = 0
        self.stopped_by = None  # the error that stopped the service (PinRejected)
        self._protocol = self._reopen_call = None
        self._waiters = []

    @property
    def state(self):
        """``stopped``, ``failed`` (PIN refused), ``opening``, ``initialising``, ``ready`` or ``waiting``."""
        if not self.running or self.stopped_by is not None:
            return "stopped" if not self.running else "failed"
        if self._protocol is not None:
            return self._protocol.state
        return "waiting" if self._reopen_call is not None else "opening"

    def startService(self):
        super().startService()
        log.info("modem {device}: starting ({baudrate} baud)", device=self.config.device,
                 baudrate=self.config.baudrate)
        self.failures = 0
        self.stopped_by = None
        self._open()

    def stopService(self):
        super().stopService()
        if self._reopen_call is not None and self._reopen_call.active():
            self._reopen_call.cancel()
        self._reopen_call = None
        self._release(ModemDown("modem service stopped"))
        p, self._protocol = self._protocol, None
        if p is None or p.state == "closed":
            return defer.succeed(None)
        bounded = defer.Deferred()
        give_up = self._clock.callLater(self.config.command_timeout, bounded.callback, None)

        def gone(_):
            if give_up.active():
                give_up.cancel()
                bounded.callback(None)
        p.close().addCallback(gone)
        return bounded

    def _open(self):
        self._reopen_call = None
        proto = self.factory.buildProtocol(None)
        try:
            self._opener(proto)
        except Exception as e:  # serial.SerialException is an OSError; any failure means "later"
            log.warn("modem {device}: cannot open: {error}", device=self.config.device, error=str(e))
            self._schedule_reopen()
            return
        if proto.state == "closed" and proto.closed.called:
            self._schedule_reopen()
            return
        self._protocol = proto
        proto.ready.addCallbacks(self._became_ready, self._not_ready, errbackArgs=(proto,))
        proto.closed.addCallback(self._port_closed, proto)

    def _release(self, result):
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            fire(w, result)

    def _became_ready(self, proto):
        self.failures = 0
        self._release(proto)

    def _not_ready(self, failure, proto):
        if failure.check(PinRejected):
            log.critical("modem {device}: {error}; not retrying - fix [modem] pin",
                         device=self.config.device, error=failure.getErrorMessage())
            self.stopped_by = failure.value
            self._release(failure.value)

    def _port_closed(self, _, proto):
        if self._protocol is not proto:
            return
        self._protocol = None
        if self.running and self.stopped_by is None:
            self._schedule_reopen()

    def _schedule_reopen(self):
        if not self.running:
            return
        delay = min(self.reopen_initial * 2 ** self.failures, self.reopen_max)
        self.failures += 1
        log.info("modem {device}: reopening in {delay}s", device=self.config.device, delay=delay)
        self._reopen_call = self._clock.callLater(delay, self._open)

    def send_pdus(self, pdus):
        """Like :meth:`ModemProtocol.send_pdus`, once the modem is ready."""
        if not self.running:
            return defer.fail(ModemDown("modem service is stopped"))
        if self.stopped_by is not None:
            return defer.fail(self.stopped_by)
        if self._protocol is not None and self._protocol.state == "ready":
            return self._protocol.send_pdus(pdus)
        if len(self._waiters) >= self.queue_limit:
            return defer.fail(QueueFull("%d sends wait for modem %s"
                                        % (len(self._waiters), self.config.device)))
        waiter = defer.Deferred(lambda d: self._waiters.remove(d) if d in self._waiters else None)
        self._waiters.append(waiter)

        def timed_out(result, timeout):
            if isinstance(result, defer.Failure) and result.check(defer.CancelledError):
                raise ModemDown("modem %s not ready within %gs" % (self.config.device, timeout))
            return result
        waiter.addTimeout(self.wait_timeout, self._clock, onTimeoutCancel=timed_out)
        waiter.addCallback(lambda proto: proto.send_pdus(pdus))
        return waiter

    def send_submits(self, submits):
        """Send :class:`~dmgateway.notify.sms.SmsSubmit` TPDUs; fires with their TP-MRs."""
        try:
            pdus = [_sms.at_cmgs(s) for s in submits]
        except NotificationError as e:
            return defer.fail(InvalidPDU(str(e)))
        return self.send_pdus(pdus)

    def send_trigger(self, message, destination, **fields):
        """Send an SMS :class:`~dmgateway.notify.trigger.TriggerMessage` to ``destination``.

        The PDUs carry an empty SMSC field (the modem's SMSC, set with
        AT+CSCA from ``[modem] smsc``); a status report is requested when
        the service has an ``on_report``.  ``fields`` go to every SMS-SUBMIT.
        """
        fields.setdefault("smsc", "")
        fields.setdefault("status_report", self.factory.on_report is not None)
        try:
            submits = _trigger.sms_submits(message, destination, **fields)
        except NotificationError as e:
            return defer.fail(InvalidPDU(str(e)))
        return self.send_submits(submits)

    def submit(self, destination_msisdn, short_message_segments, *, data_coding=_sms.DCS_8BIT,
               status_report=None, **_ignored):
        """The :meth:`~dmgateway.bearers.smpp.SMPPLink.submit` call shape: TP-UD segments (UDH
        included) to one number; fires with the TP-MRs as text."""
        if status_report is None:
            status_report = self.factory.on_report is not None
        submits = [_sms.SmsSubmit(destination=destination_msisdn.strip(), user_data=bytes(segment),
                                  udhi=True, dcs=data_coding, smsc="", status_report=status_report)
                   for segment in short_message_segments]
        d = self.send_submits(submits)
        return d.addCallback(lambda refs: [None if r is None else str(r) for r in refs])
