"""One open GSM modem port: AT commands in PDU mode on Twisted.

:class:`ModemProtocol` talks to one modem over any byte transport (a
``SerialPort`` in production, a ``StringTransport`` or a pty in tests).  On
connection it initialises the modem::

    ESC ATZ / ATE0 / AT+CMEE=1 / AT+CPIN? [AT+CPIN="<pin>"] / AT+CMGF=0
    [AT+CSCA="<smsc>",145] [AT+CNMI=2,1,0,1,0 when delivery reports are wanted]

then sends one message at a time: ``AT+CMGS=<length>``, waits for the ``> ``
prompt, writes the hex PDU and Ctrl-Z and reads ``+CMGS: <mr>`` then ``OK``.
Final results ``+CMS ERROR``/``+CME ERROR``/``ERROR`` fail the command with
a :class:`~.modem_at.CommandError`; a command without an answer fails with
:class:`~.modem_at.CommandTimeout` and the port is closed (the service,
:class:`~.modem.ModemService`, reopens it).  Unsolicited result codes
(``RING``, ``+CMTI``, ``+CDS`` ...) are recognised between and inside
commands; ``+CDS`` status reports go to ``on_report``.  The AT vocabulary
is in :mod:`.modem_at`.
"""

import re
from collections import deque

from twisted.internet import defer, protocol, task
from twisted.logger import Logger

from dmgateway.bearers.modem_at import (
    CTRL_Z, ERROR_RE, ESC, FINAL_OK, MAX_LINE, PDU_FOLLOWS, URC_PREFIXES, CommandError,
    CommandTimeout, InvalidPDU, ModemDown, ModemError, PinRejected, QueueFull, SimError, check_pdu,
    message_reference, parse_status_report,
)

__all__ = ["ModemFactory", "ModemProtocol", "fire"]

log = Logger(namespace="dmgateway.modem")


class _Command:
    """The command in flight: its text, optional PDU, information lines and deferred."""

    __slots__ = ("text", "shown", "data", "prompted", "prefix", "lines", "deferred", "timeout")

    def __init__(self, text, data, shown):
        self.text, self.data, self.shown = text, data, shown
        name = re.match(r"AT([+^][A-Z0-9]+)", text.upper())
        self.prefix = name.group(1) + ":" if name else None
        self.prompted, self.lines, self.timeout = False, [], None
        self.deferred = defer.Deferred()


class ModemProtocol(protocol.Protocol):
    """One open modem port.

    ``config`` is a :class:`~dmgateway.config.bearers.ModemConfig`, ``clock``
    an ``IReactorTime``.  ``on_report(StatusReport)`` receives delivery
    reports, ``on_unsolicited(line)`` every other unsolicited result code.
    ``ready`` fires with the protocol once initialised or fails
    (:class:`SimError`, :class:`CommandError`, :class:`ModemDown` ...);
    ``closed`` fires when the port is gone.
    """

    state = "closed"
    #: seconds to wait for ``+CMGS`` after the PDU (the network round trip); at least command_timeout
    send_timeout = 60.0
    #: AT+CPIN? checks after entering the PIN (or while the SIM is busy), and their spacing
    pin_checks = 5
    pin_check_delay = 1.0
    #: sends that may wait at once
    queue_limit = 100
    #: write ESC first, leaving a PDU prompt a previous run may have left open
    abort_input_on_open = True
    #: how delivery reports are routed to us (sent only with an ``on_report``); failure is tolerated
    report_indication = "AT+CNMI=2,1,0,1,0"

    def __init__(self, config, clock, on_report=None, on_unsolicited=None):
        self.config, self.clock = config, clock
        self.on_report, self.on_unsolicited = on_report, on_unsolicited
        self.ready, self.closed = defer.Deferred(), defer.Deferred()
        self._buffer = bytearray()
        self._current = self._sleep = None
        self._pdu_after = None  # the URC line whose PDU line comes next
        self._queue = deque()
        self._busy = self._closing = False

    # -- connection ------------------------------------------------------

    def connectionMade(self):
        self.state = "initialising"
        log.info("modem {device}: port open, initialising", device=self.config.device)
        if self.abort_input_on_open:
            self.transport.write(ESC)
        self._initialise().addCallbacks(self._initialised, self._init_failed)

    def connectionLost(self, reason=protocol.connectionDone):
        was, self.state = self.state, "closed"
        self._closing = True
        down = ModemDown("modem port %s closed (%s)" % (self.config.device, reason.getErrorMessage()))
        if self._sleep is not None:
            self._sleep.cancel()
        command, self._current = self._current, None
        if command is not None:
            self._finish(command, down)
        queue, self._queue = self._queue, deque()
        for _pdus, d in queue:
            if not d.called:
                d.errback(down)
        fire(self.ready, down)
        log.info("modem {device}: port closed in state {was}", device=self.config.device, was=was)
        self.closed.callback(None)

    def close(self):
        """Close the port; ``closed`` fires once it is gone."""
        if not self._closing and self.transport is not None:
            self._closing = True
            self.transport.loseConnection()
        return self.closed

    # -- initialisation ---------------------------------------------------

    @defer.inlineCallbacks
    def _initialise(self):
        c = self.config
        yield self._command("ATZ")
        yield self._command("ATE0")
        yield self._optional("AT+CMEE=1")  # numeric +CME ERROR codes, where supported
        yield self._unlock_sim()
        yield self._command("AT+CMGF=0")
        if c.smsc:
            yield self._command('AT+CSCA="%s",%d' % (c.smsc, 145 if c.smsc.startswith("+") else 129))
        if self.on_report is not None and self.report_indication:
            yield self._optional(self.report_indication)

    def _optional(self, text):
        """A command whose refusal is logged, not fatal."""
        def refused(failure):
            failure.trap(CommandError)
            log.warn("modem {device}: {error}", device=self.config.device,
                     error=failure.getErrorMessage())
        return self._command(text).addErrback(refused)

    @defer.inlineCallbacks
    def _sim_state(self):
        """``READY``, ``SIM PIN`` ... from AT+CPIN?, waiting while the SIM is busy."""
        for attempt in range(self.pin_checks):
            try:
                lines = yield self._command("AT+CPIN?")
            except CommandError as e:
                if e.kind == "CME" and e.code == 14 and attempt + 1 < self.pin_checks:
                    yield self._pause(self.pin_check_delay)
                    continue
                if e.kind == "CME" and e.code in (10, 13, 15):
                    raise SimError("SIM problem: %s" % (e.name,)) from None
                raise
            answer = next((line for line in lines if line.upper().startswith("+CPIN:")), "")
            return answer.split(":", 1)[1].strip().strip('"').upper() if answer else "READY"
        raise SimError("SIM busy")

    @defer.inlineCallbacks
    def _unlock_sim(self):
        device, pin = self.config.device, self.config.pin
        sim = yield self._sim_state()
        if sim == "READY":
            return
        if sim != "SIM PIN":
            raise SimError("SIM wants %s; only a SIM PIN can be entered" % (sim,))
        if not pin:
            raise SimError("SIM PIN required but [modem] pin is not configured")
        try:
            yield self._command('AT+CPIN="%s"' % (pin,), shown='AT+CPIN="****"')
        except CommandError as e:
            if e.kind == "CME" and e.code in (12, 16):
                raise PinRejected("SIM refused the configured PIN (%s)" % (e.name,)) from None
            raise
        log.info("modem {device}: PIN entered", device=device)
        for _ in range(self.pin_checks):
            sim = yield self._sim_state()
            if sim == "READY":
                return
            yield self._pause(self.pin_check_delay)
        raise SimError("SIM still reports %s after the PIN" % (sim,))

    def _pause(self, seconds):
        self._sleep = task.deferLater(self.clock, seconds, lambda: None)
        return self._sleep.addBoth(self._woke)

    def _woke(self, result):
        self._sleep = None
        if self._closing:
            raise ModemDown("modem port %s closed" % (self.config.device,))
        return result

    def _initialised(self, _):
        self.state = "ready"
        log.info("modem {device}: ready", device=self.config.device, outcome="ready")
        fire(self.ready, self)
        self._pump()

    def _init_failed(self, failure):
        err = failure.value
        if not isinstance(err, ModemError):
            err = ModemError("initialisation failed: %s" % (failure.getErrorMessage(),))
        if not isinstance(err, ModemDown):
            log.error("modem {device}: initialisation failed: {error}", device=self.config.device,
                      error=str(err), outcome="init_failed")
        fire(self.ready, err)
        self.close()

    # -- commands ---------------------------------------------------------

    def _command(self, text, data=None, shown=None):
        """Send ``text`` (and ``data`` after the prompt); fires with the information lines."""
        if self._closing:
            return defer.fail(ModemDown("modem port %s closed" % (self.config.device,)))
        if self._current is not None:
            return defer.fail(ModemError("command %s while %s runs" % (text, self._current.shown)))
        command = _Command(text, data, shown or text)
        self._current = command
        log.debug("modem {device}: > {command}", device=self.config.device, command=command.shown)
        command.timeout = self.clock.callLater(self.config.command_timeout, self._timed_out, command)
        self.transport.write(text.encode("ascii") + b"\r")
        return command.deferred

    def _finish(self, command, result):
        if command.timeout is not None and command.timeout.active():
            command.timeout.cancel()
        command.timeout = None
        if self._current is command:
            self._current = None
        fire(command.deferred, result)

    def _timed_out(self, command):
        command.timeout = None
        waited = self.config.command_timeout
        if command.prompted:
            waited = max(self.send_timeout, waited)
        log.error("modem {device}: no answer to {command} in {timeout}s, closing the port",
                  device=self.config.device, command=command.shown, timeout=waited,
                  outcome="timeout")
        if command.data is not None and not command.prompted:
            self.transport.write(ESC)  # leave the PDU input mode, if the modem is in it
        self._finish(command, CommandTimeout("no answer to %s within %gs" % (command.shown, waited)))
        self.close()

    def _prompted(self):
        command = self._current
        command.prompted = True
        if command.timeout is not None and command.timeout.active():
            command.timeout.reset(max(self.send_timeout, self.config.command_timeout))
        self.transport.write(command.data.encode("ascii") + CTRL_Z)

    # -- input --------------------------------------------------------------

    def dataReceived(self, data):
        self._buffer += data
        while self._buffer and not self._closing:
            start = 0
            while start < len(self._buffer) and self._buffer[start] in b"\r\n":
                start += 1
            del self._buffer[:start]
            if not self._buffer:
                return
            command = self._current
            if (self._buffer[:1] == b">" and command is not None and command.data is not None
                    and not command.prompted):
                del self._buffer[:2 if self._buffer[1:2] == b" " else 1]
                self._prompted()
                continue
            ends = [i for i in (self._buffer.find(b"\r"), self._buffer.find(b"\n")) if i >= 0]
            if not ends:
                if len(self._buffer) > MAX_LINE:
                    log.warn("modem {device}: dropping {n} bytes without a line end",
                             device=self.config.device, n=len(self._buffer))
                    self._buffer.clear()
                return
            end = min(ends)
            raw = bytes(self._buffer[:end])
            del self._buffer[:end + 1]
            line = raw.decode("latin-1").strip().rstrip("\x1a").strip()
            if line:
                self._line(line)

    def _line(self, line):
        command = self._current
        if self._pdu_after is not None:
            urc, self._pdu_after = self._pdu_after, None
            self._unsolicited_pdu(urc, line)
            return
        upper = line.upper()
        if upper.startswith("AT") or (command is not None and command.data is not None
                                      and upper == command.data.upper()):
            return  # echo (before ATE0, or a modem that ignores it)
        if command is not None and command.prefix and upper.startswith(command.prefix):
            command.lines.append(line)
        elif upper.startswith(URC_PREFIXES):
            self._unsolicited(line)
        elif command is None:
            log.debug("modem {device}: ignoring {line!r}", device=self.config.device, line=line)
        elif upper == FINAL_OK:
            self._finish(command, command.lines)
        elif upper == "ERROR" or upper.startswith(("COMMAND NOT SUPPORT", "TOO MANY PARAMETERS")):
            self._finish(command, CommandError(command.shown))
        elif ERROR_RE.match(line):
            kind, detail = ERROR_RE.match(line).groups()
            kind, detail = kind.upper(), detail.strip()
            code = int(detail) if detail.isdigit() else None
            self._finish(command, CommandError(command.shown, kind, code,
                                               None if code is not None or not detail else detail))
        else:
            command.lines.append(line)

    def _unsolicited(self, line):
        upper = line.upper()
        if upper.startswith(PDU_FOLLOWS):
            self._pdu_after = line
            return
        log.info("modem {device}: unsolicited {line}", device=self.config.device, line=line)
        self._tell(line)

    def _unsolicited_pdu(self, urc, pdu):
        if not urc.upper().startswith("+CDS:"):
            log.info("modem {device}: unsolicited {urc} (PDU of {n} hex digits)",
                     device=self.config.device, urc=urc, n=len(pdu))
            self._tell(urc)
            return
        try:
            length = int(urc.split(":", 1)[1].split(",")[-1])
            report = parse_status_report(bytes.fromhex(pdu), length)
        except ValueError as e:
            log.warn("modem {device}: unreadable status report {pdu!r}: {error}",
                     device=self.config.device, pdu=pdu, error=str(e))
            return
        self._report(report)

    def _report(self, report):
        log.info("modem {device}: status report for TP-MR {mr}: {state} (0x{status:02X})",
                 device=self.config.device, mr=report.reference, state=report.state,
                 status=report.status)
        self._call(self.on_report, report)

    def _tell(self, line):
        self._call(self.on_unsolicited, line)

    def _call(self, callback, value):
        if callback is not None:
            try:
                callback(value)
            except Exception:
                log.failure("modem {device}: callback {callback!r} failed",
                            device=self.config.device, callback=callback)

    # -- sending ----------------------------------------------------------

    def send_pdus(self, pdus):
        """Send ``[(tpdu_length, hex), ...]`` (see :func:`~dmgateway.notify.sms.at_cmgs`).

        One message at a time, batches in order; fires with the TP-MR the
        modem reports for each (None if it reported none) or fails with the
        first error (the rest of that batch is not sent).
        """
        try:
            pdus = [check_pdu(length, text) for length, text in pdus]
        except (TypeError, ValueError) as e:
            return defer.fail(InvalidPDU(str(e)))
        if self.state != "ready":
            return defer.fail(ModemDown("modem %s is %s" % (self.config.device, self.state)))
        if len(self._queue) >= self.queue_limit:
            return defer.fail(QueueFull("%d sends wait for modem %s" % (len(self._queue),
                                                                       self.config.device)))
        d = defer.Deferred()
        self._queue.append((pdus, d))
        self._pump()
        return d

    def _pump(self):
        if self._busy or self.state != "ready":
            return
        while self._queue:
            pdus, d = self._queue.popleft()
            if d.called:  # cancelled while waiting
                continue
            self._busy = True
            sent = self._send(pdus)
            sent.addBoth(self._sent, d)
            return

    def _sent(self, result, d):
        self._busy = False
        fire(d, result)
        self._pump()

    @defer.inlineCallbacks
    def _send(self, pdus):
        references = []
        for length, text in pdus:
            lines = yield self._command("AT+CMGS=%d" % (length,), data=text)
            references.append(message_reference(lines))
            if references[-1] is None:
                log.warn("modem {device}: no +CMGS in the answer", device=self.config.device)
        log.info("modem {device}: sent {n} message(s), TP-MR {refs}", device=self.config.device,
                 n=len(references), refs=references, outcome="sent")
        return references


def fire(d, result):
    """Fire ``d`` unless it already fired (cancelled); an exception or Failure errbacks."""
    if not d.called:
        if isinstance(result, (Exception, defer.Failure)):
            d.errback(result)
        else:
            d.callback(result)



class ModemFactory(protocol.Factory):
    """Builds :class:`ModemProtocol` for one ``[modem]`` section."""

    protocol = ModemProtocol

    def __init__(self, config, clock, on_report=None, on_unsolicited=None):
        self.config, self.clock = config, clock
        self.on_report, self.on_unsolicited = on_report, on_unsolicited

    def buildProtocol(self, addr):
        p = self.protocol(self.config, self.clock, self.on_report, self.on_unsolicited)
        p.factory = self
        return p
