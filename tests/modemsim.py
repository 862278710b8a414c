"""A GSM modem emulator for the modem bearer tests (3GPP TS 27.005/27.007 subset).

:class:`ModemSimulator` is the modem as a byte machine: ``feed()`` what the
gateway writes, read what it answers from ``write`` (a callable).  It echoes
until ATE0, answers ATZ ATE AT+CMEE AT+CPIN AT+CMGF AT+CSCA AT+CNMI AT+CMGS,
gives the ``> `` prompt, reads the hex PDU up to Ctrl-Z (ESC cancels),
answers ``+CMGS: <mr>`` and records the TPDU.  Faults: ``fail = {n: code}``
answers the n-th AT+CMGS with ``+CMS ERROR: <code>``; ``pin`` makes the SIM
ask for that PIN; ``mute`` names commands left without an answer;
``interleave`` lines go out (as unsolicited codes) before the next answer.

:class:`PtyModem` runs a simulator on the master side of a pty as a Twisted
reader; the gateway opens ``slave_path`` like a serial device.
"""

import os
import re
import tty
from dataclasses import dataclass

from twisted.internet import fdesc
from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer


@dataclass
class Received:
    """One message the simulator took: the SMSC field (may be empty) and the TPDU."""

    smsc: bytes
    tpdu: bytes
    length: int


def status_report_pdu(reference, status=0x00, recipient="447700900123", smsc=True):
    """``(SMS-STATUS-REPORT bytes, TPDU length)`` (TS 23.040 §9.2.2.3), SMSC field first if ``smsc``."""
    digits = recipient.lstrip("+")
    padded = digits + ("F" if len(digits) % 2 else "")
    swapped = bytes.fromhex("".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2)))
    stamp = bytes.fromhex("42105021433500")  # 2024-01-05 12:34:53 +00, semi-octets
    tpdu = (bytes([0x06, reference, len(digits), 0x91]) + swapped + stamp + stamp
            + bytes([status]))
    prefix = bytes.fromhex("07914477000000F0") if smsc else b""
    return prefix + tpdu, len(tpdu)


class ModemSimulator:
    def __init__(self, write, *, pin=None, first_reference=1, fail=None, echo=True):
        self.write = write
        self.pin = pin
        self.unlocked = pin is None
        self.next_reference = first_reference
        self.fail = dict(fail or {})
        self.echo = echo
        self.mute = set()
        self.interleave = []
        self.cmee = 0
        self.cmgf = 1
        self.smsc = None
        self.commands = []
        self.received = []
        self.cmgs_count = 0
        self._line = bytearray()
        self._pdu = None  # (length, bytearray) while reading a PDU after the prompt

    # -- output ---------------------------------------------------------

    def _send(self, text):
        while self.interleave:
            self.write(b"\r\n" + self.interleave.pop(0).encode() + b"\r\n")
        self.write(b"\r\n" + text.encode() + b"\r\n")

    def emit(self, line):
        """An unsolicited result code, now."""
        self.write(b"\r\n" + line.encode() + b"\r\n")

    def emit_status_report(self, reference, status=0x00, recipient="447700900123", smsc=True):
        pdu, length = status_report_pdu(reference, status, recipient, smsc)
        self.write(b"\r\n+CDS: %d\r\n%s\r\n" % (length, pdu.hex().upper().encode()))

    def _cme(self, code):
        self._send("+CME ERROR: %d" % code if self.cmee else "ERROR")

    # -- input ----------------------------------------------------------

    def feed(self, data):
        for value in data:
            byte = bytes([value])
            if self._pdu is not None:
                self._pdu_byte(byte)
                continue
            if self.echo and byte != b"\x1b":
                self.write(byte)
            if byte == b"\r":
                line, self._line = bytes(self._line).decode("latin-1").strip(), bytearray()
                if line:
                    self._command(line)
            elif byte not in (b"\n", b"\x1b"):
                self._line += byte

    def _pdu_byte(self, byte):
        length, text = self._pdu
        if self.echo:
            self.write(byte)
        if byte == b"\x1b":
            self._pdu = None
            self._send("OK")
        elif byte == b"\x1a":
            self._pdu = None
            self._message(length, bytes(text))
        elif byte not in (b"\r", b"\n"):
            text += byte

    def _message(self, length, text):
        self.cmgs_count += 1
        try:
            data = bytes.fromhex(text.decode("ascii"))
        except ValueError:
            self._send("+CMS ERROR: 304")
            return
        smsc, tpdu = data[:len(data) - length], data[len(data) - length:]
        if len(data) < length or (smsc and smsc[0] + 1 != len(smsc)):
            self._send("+CMS ERROR: 304")
            return
        if self.cmgs_count in self.fail:
            self._send("+CMS ERROR: %d" % self.fail[self.cmgs_count])
            return
        self.received.append(Received(smsc, tpdu, length))
        reference, self.next_reference = self.next_reference, (self.next_reference + 1) % 256
        self._send("+CMGS: %d" % reference)
        self._send("OK")

    def _command(self, line):
        self.commands.append(line)
        upper = line.upper()
        if upper in self.mute or upper.split("=")[0] in self.mute:
            return
        if not upper.startswith("AT"):
            self._send("ERROR")
            return
        body = upper[2:]
        if body in ("", "Z"):
            if body == "Z":
                self.echo, self.cmee, self.cmgf = True, 0, 1
            self._send("OK")
        elif body in ("E0", "E1"):
            self.echo = body == "E1"
            self._send("OK")
        elif m := re.fullmatch(r"\+CMEE=([012])", body):
            self.cmee = int(m.group(1))
            self._send("OK")
        elif body == "+CPIN?":
            self._send("+CPIN: READY" if self.unlocked else "+CPIN: SIM PIN")
            self._send("OK")
        elif m := re.fullmatch(r'\+CPIN="?([0-9]+)"?', body):
            if self.unlocked:
                self._cme(3)
            elif m.group(1) == self.pin:
                self.unlocked = True
                self._send("OK")
            else:
                self._cme(16)
        elif not self.unlocked:
            self._cme(11)
        elif m := re.fullmatch(r"\+CMGF=([01])", body):
            self.cmgf = int(m.group(1))
            self._send("OK")
        elif m := re.fullmatch(r'\+CSCA="(\+?[0-9]+)"(,1[24][59])?', body):
            self.smsc = m.group(1)
            self._send("OK")
        elif body.startswith("+CNMI="):
            self._send("OK")
        elif m := re.fullmatch(r"\+CMGS=([0-9]+)", body):
            if self.cmgf != 0:
                self._send("+CMS ERROR: 302")
                return
            self._pdu = (int(m.group(1)), bytearray())
            self.write(b"\r\n> ")
        else:
            self._send("ERROR")


@implementer(IReadDescriptor)
class PtyModem:
    """A :class:`ModemSimulator` on the master side of a fresh pty.

    The simulator keeps the slave open too, so the gateway may close and
    reopen ``slave_path`` without the master seeing a hang-up.  ``close()``
    removes the reader and closes both fds.
    """

    def __init__(self, reactor, **options):
        self.reactor = reactor
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.slave_path = os.ttyname(self.slave)
        fdesc.setNonBlocking(self.master)
        self.sim = ModemSimulator(self._write, **options)
        self.reactor.addReader(self)

    def _write(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view):]

    def fileno(self):
        return self.master

    def doRead(self):
        try:
            data = os.read(self.master, 4096)
        except BlockingIOError:
            return None
        except OSError:
            return None  # EIO: no slave open; ours keeps that from happening
        self.sim.feed(data)
        return None

    def connectionLost(self, reason):
        pass

    def logPrefix(self):
        return "PtyModem"

    def close(self):
        if self.master is not None:
            self.reactor.removeReader(self)
            os.close(self.master)
            os.close(self.slave)
            self.master = self.slave = None
