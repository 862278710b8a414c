"""SMS wake-ups through a GSM modem: AT commands in PDU mode (3GPP TS 27.005/27.007).

:class:`ModemProtocol` talks to one modem over any byte transport (a
``SerialPort`` in production, a ``StringTransport`` or a pty in tests).  On
connection it initialises the modem::

    ESC ATZ / ATE0 / AT+CMEE=1 / AT+CPIN? [AT+CPIN="<pin>"] / AT+CMGF=0
    [AT+CSCA="<smsc>",145] [AT+CNMI=2,1,0,1,0 when delivery reports are wanted]

then sends one message at a time: ``AT+CMGS=<length>``, waits for the ``> ``
prompt, writes the hex PDU and Ctrl-Z and reads ``+CMGS: <mr>`` then ``OK``.
Final results ``+CMS ERROR``/``+CME ERROR``/``ERROR`` fail the command with
a :class:`CommandError`; a command without an answer fails with
:class:`CommandTimeout` and the port is closed (the service reopens it).
Unsolicited result codes (``RING``, ``+CMTI``, ``+CDS`` ...) are recognised
between and inside commands; ``+CDS`` status reports go to ``on_report``.

:class:`ModemService` opens the ``[modem]`` device and reopens it with
backoff when it closes or the modem cannot be initialised.  All timing comes
from an injected clock.
"""

import re
from collections import deque
from dataclasses import dataclass

from twisted.application import service
from twisted.internet import defer, protocol, task
from twisted.logger import Logger

from dmgateway.notify import sms as _sms
from dmgateway.notify import trigger as _trigger
from dmgateway.notify.package0 import NotificationError

log = Logger(namespace="dmgateway.modem")

CTRL_Z = b"\x1a"
ESC = b"\x1b"
MAX_LINE = 4096  # longest line kept; a PDU line is at most ~350 characters

#: +CMS ERROR codes (TS 27.005 §3.2.5; 0..127 are TS 24.011 RP causes, 128..255 TS 23.040 TP-FCS)
CMS_ERRORS = {
    1: "unassigned number", 8: "operator determined barring", 10: "call barred",
    21: "short message transfer rejected", 27: "destination out of service",
    28: "unidentified subscriber", 29: "facility rejected", 30: "unknown subscriber",
    38: "network out of order", 41: "temporary failure", 42: "congestion",
    47: "resources unavailable", 50: "requested facility not subscribed",
    69: "requested facility not implemented", 81: "invalid short message reference",
    95: "invalid message", 96: "invalid mandatory information", 97: "message type not implemented",
    98: "message not compatible with protocol state", 99: "information element not implemented",
    111: "protocol error", 127: "interworking unspecified",
    128: "telematic interworking not supported", 129: "short message type 0 not supported",
    130: "cannot replace short message", 143: "unspecified TP-PID error",
    144: "data coding scheme not supported", 145: "message class not supported",
    159: "unspecified TP-DCS error", 160: "command cannot be actioned", 161: "command unsupported",
    176: "TPDU not supported", 192: "SC busy", 193: "no SC subscription", 194: "SC system failure",
    195: "invalid SME address", 196: "destination SME barred", 197: "duplicate SM rejected",
    198: "TP-VPF not supported", 199: "TP-VP not supported", 208: "SIM SMS storage full",
    210: "error in MS", 211: "memory capacity exceeded", 255: "unspecified error cause",
    300: "ME failure", 301: "SMS service of ME reserved", 302: "operation not allowed",
    303: "operation not supported", 304: "invalid PDU mode parameter",
    305: "invalid text mode parameter", 310: "SIM not inserted", 311: "SIM PIN required",
    312: "PH-SIM PIN required", 313: "SIM failure", 314: "SIM busy", 315: "SIM wrong",
    316: "SIM PUK required", 317: "SIM PIN2 required", 318: "SIM PUK2 required",
    320: "memory failure", 321: "invalid memory index", 322: "memory full",
    330: "SMSC address unknown", 331: "no network service", 332: "network timeout",
    340: "no +CNMA acknowledgement expected", 500: "unknown error",
}

#: +CME ERROR codes (TS 27.007 §9.2)
CME_ERRORS = {
    0: "phone failure", 1: "no connection to phone", 2: "phone adaptor link reserved",
    3: "operation not allowed", 4: "operation not supported", 5: "PH-SIM PIN required",
    10: "SIM not inserted", 11: "SIM PIN required", 12: "SIM PUK required", 13: "SIM failure",
    14: "SIM busy", 15: "SIM wrong", 16: "incorrect password", 17: "SIM PIN2 required",
    18: "SIM PUK2 required", 20: "memory full", 21: "invalid index", 22: "not found",
    23: "memory failure", 24: "text string too long", 25: "invalid characters in text string",
    30: "no network service", 31: "network timeout",
    32: "network not allowed - emergency calls only", 100: "unknown",
}

#: codes after which a later try may work
RETRYABLE_CMS = frozenset({38, 41, 42, 47, 192, 194, 314, 331, 332, 500})
RETRYABLE_CME = frozenset({14, 30, 31, 100})

_FINAL_OK = "OK"
_ERROR_RE = re.compile(r"^\+(CMS|CME) ERROR:\s*(.*)$", re.IGNORECASE)
#: unsolicited result codes; (+CMT, +CDS, +CBM) in PDU mode are followed by a PDU line
_URC_PREFIXES = ("RING", "+CRING:", "+CLIP:", "+CMTI:", "+CMT:", "+CDS:", "+CDSI:", "+CBM:",
                 "+CBMI:", "+CREG:", "+CGREG:", "+CEREG:", "+CIEV:", "+CUSD:", "+CGEV:",
                 "NO CARRIER", "^")
_PDU_FOLLOWS = ("+CMT:", "+CDS:", "+CBM:")


def error_name(kind, code):
    """A readable name for ``+CMS``/``+CME ERROR: <code>`` (``kind`` "CMS" or "CME")."""
    table = CMS_ERRORS if kind == "CMS" else CME_ERRORS
    if code is None:
        return "error"
    return table.get(code, "%s error %d" % (kind, code))


class ModemError(Exception):
    """Base of the errors a send fails with; ``retryable`` says if a later try may work."""

    retryable = False


class CommandError(ModemError):
    """The modem answered ``command`` with an error final result.

    ``kind`` is ``"CMS"``, ``"CME"`` or None (plain ``ERROR``); ``code`` the
    number (None for plain or verbose errors); ``name`` a readable text.
    """

    def __init__(self, command, kind=None, code=None, name=None):
        self.command = command
        self.kind = kind
        self.code = code
        self.name = name or error_name(kind, code)
        if kind is None:
            text = "ERROR"
        elif code is None:
            text = "+%s ERROR: %s" % (kind, self.name)
        else:
            text = "+%s ERROR: %d (%s)" % (kind, code, self.name)
        super().__init__("%s answered %s" % (command, text))
        retryable = RETRYABLE_CMS if kind == "CMS" else RETRYABLE_CME if kind == "CME" else ()
        self.retryable = code in retryable


class CommandTimeout(ModemError):
    """No final result in time (the port is closed and reopened)."""
    retryable = True


class ModemDown(ModemError):
    """The port is closed or the modem not initialised: try again later."""
    retryable = True


class QueueFull(ModemError):
    """Too many sends wait already."""
    retryable = True


class SimError(ModemError):
    """The SIM needs a PIN that is not configured, or is missing/blocked."""


class PinRejected(SimError):
    """The SIM refused the configured PIN: the service stops so the SIM does not lock."""


class InvalidPDU(ModemError):
    """What was given to send is not a ``(length, hex)`` PDU."""


@dataclass(frozen=True)
class StatusReport:
    """A ``+CDS`` delivery report: TP-MR of the sent message and TP-ST.

    ``state`` is ``"delivered"`` (TP-ST 0x00-0x1F), ``"pending"`` (SC still
    trying, 0x20-0x3F) or ``"failed"``.
    """

    reference: int
    status: int
    recipient: str = ""

    @property
    def state(self):
        if self.status < 0x20:
            return "delivered"
        return "pending" if self.status < 0x40 else "failed"


def _digits(raw, count):
    nibbles = [n for byte in raw for n in (byte & 0x0F, byte >> 4) if n != 0xF]
    return "".join("0123456789*#abc"[n] for n in nibbles[:count])


def parse_status_report(data, tpdu_length=None):
    """A :class:`StatusReport` from SMS-STATUS-REPORT bytes (TS 23.040 §9.2.2.3).

    With ``tpdu_length`` (the ``+CDS: <length>``), extra leading bytes are an
    SMSC address field and are skipped.  Raises ValueError on anything else.
    """
    data = bytes(data)
    if tpdu_length is not None and len(data) > tpdu_length:
        data = data[len(data) - tpdu_length:]
    if len(data) < 4 or data[0] & 0x03 != 0x02:
        raise ValueError("not an SMS-STATUS-REPORT")
    reference, count, address_type = data[1], data[2], data[3]
    pos = 4 + (count + 1) // 2
    if pos + 15 > len(data):
        raise ValueError("truncated SMS-STATUS-REPORT")
    if (address_type >> 4) & 0x7 == 5:  # alphanumeric: keep it as hex
        recipient = data[4:pos].hex()
    else:
        recipient = ("+" if address_type & 0x70 == 0x10 else "") + _digits(data[4:pos], count)
    return StatusReport(reference, data[pos + 14], recipient)


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
        _fire(self.ready, down)
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
        _fire(self.ready, self)
        self._pump()

    def _init_failed(self, failure):
        err = failure.value
        if not isinstance(err, ModemError):
            err = ModemError("initialisation failed: %s" % (failure.getErrorMessage(),))
        if not isinstance(err, ModemDown):
            log.error("modem {device}: initialisation failed: {error}", device=self.config.device,
                      error=str(err), outcome="init_failed")
        _fire(self.ready, err)
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
        _fire(command.deferred, result)

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
        elif upper.startswith(_URC_PREFIXES):
            self._unsolicited(line)
        elif command is None:
            log.debug("modem {device}: ignoring {line!r}", device=self.config.device, line=line)
        elif upper == _FINAL_OK:
            self._finish(command, command.lines)
        elif upper == "ERROR" or upper.startswith(("COMMAND NOT SUPPORT", "TOO MANY PARAMETERS")):
            self._finish(command, CommandError(command.shown))
        elif _ERROR_RE.match(line):
            kind, detail = _ERROR_RE.match(line).groups()
            kind, detail = kind.upper(), detail.strip()
            code = int(detail) if detail.isdigit() else None
            self._finish(command, CommandError(command.shown, kind, code,
                                               None if code is not None or not detail else detail))
        else:
            command.lines.append(line)

    def _unsolicited(self, line):
        upper = line.upper()
        if upper.startswith(_PDU_FOLLOWS):
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
            pdus = [_check_pdu(length, text) for length, text in pdus]
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
        _fire(d, result)
        self._pump()

    @defer.inlineCallbacks
    def _send(self, pdus):
        references = []
        for length, text in pdus:
            lines = yield self._command("AT+CMGS=%d" % (length,), data=text)
            references.append(_message_reference(lines))
            if references[-1] is None:
                log.warn("modem {device}: no +CMGS in the answer", device=self.config.device)
        log.info("modem {device}: sent {n} message(s), TP-MR {refs}", device=self.config.device,
                 n=len(references), refs=references, outcome="sent")
        return references


def _fire(d, result):
    """Fire ``d`` unless it already fired (cancelled); an exception or Failure errbacks."""
    if not d.called:
        if isinstance(result, (Exception, defer.Failure)):
            d.errback(result)
        else:
            d.callback(result)


def _check_pdu(length, text):
    if not isinstance(length, int) or isinstance(length, bool) or not 7 <= length <= 176:
        raise ValueError("TPDU length %r out of range" % (length,))
    if not isinstance(text, str) or not re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", text):
        raise ValueError("PDU is not hex text")
    if len(text) // 2 < length:
        raise ValueError("PDU of %d bytes shorter than its length %d" % (len(text) // 2, length))
    return length, text.upper()


def _message_reference(lines):
    for line in lines:
        if line.upper().startswith("+CMGS:"):
            try:
                return int(line.split(":", 1)[1].split(",")[0])
            except ValueError:
                return None
    return None


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
            _fire(w, result)

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


__all__ = [
    "CME_ERRORS", "CMS_ERRORS", "CommandError", "CommandTimeout", "InvalidPDU", "ModemDown",
    "ModemError", "ModemFactory", "ModemProtocol", "ModemService", "PinRejected", "QueueFull",
    "SimError", "StatusReport", "error_name", "parse_status_report", "serial_opener",
]
