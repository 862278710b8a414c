"""The wake-up bearers' sections: ``smpp.ini``, ``modem.ini`` and ``sip.ini``.

Each class has ``read(reader, ...)`` which asks a
:class:`~dmgateway.config.reader.SectionReader` for each key with its type,
range and default (the defaults are the values of the shipped ``conf/``
files).  Secrets are left out of ``repr()``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from dmgateway.config import checks
from dmgateway.config.reader import SectionReader
from dmgateway.config.values import (
    DAY, host_port, max_length, msisdn_prefix, secret_file, single_word,
)

_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
_SMPP_NPI = (0, 1, 3, 4, 6, 8, 9, 10, 14, 18)  # SMPP 3.4 §5.2.6


@dataclass(frozen=True)
class SmppLinkConfig:
    """``smpp.ini [smpp]`` (named ``default``) or ``[smpp:NAME]``: one SMPP 3.4 ESME link."""

    name: str = "default"
    enabled: bool = False
    endpoint: str = "tcp:host=127.0.0.1:port=2775"
    system_id: str = ""
    password: str = field(default="", repr=False)
    system_type: str = ""
    bind: str = "transmitter"
    source_addr: str = ""
    source_ton: int = 5
    source_npi: int = 0
    window: int = 10
    max_per_second: float = 50.0
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    request_delivery_receipts: bool = True
    reconnect_initial: float = 1.0
    reconnect_max: float = 60.0
    routes: tuple[str, ...] = ()
    takeover_after: float = 10.0

    @classmethod
    def read(cls, r: SectionReader, *, name: str) -> SmppLinkConfig:
        r.active = r.boolean("enabled", False)
        source_ton = r.integer("source_ton", 5, 0, 6)
        source_npi = r.integer("source_npi", 0, 0, 18)
        if source_npi not in _SMPP_NPI:
            r.problem("source_npi", "%d is not an SMPP NPI (one of: %s)"
                      % (source_npi, ", ".join(map(str, _SMPP_NPI))))
        link = cls(
            name=name,
            enabled=r.active,
            endpoint=r.endpoint("endpoint", cls.endpoint, server=False),
            system_id=r.text("system_id", required=True, validate=max_length(15)),
            password=r.secret("password", validate=max_length(8)),
            system_type=r.text("system_type", validate=max_length(12)),
            bind=r.choice("bind", "transmitter", ("transmitter", "transceiver")),
            source_addr=r.text("source_addr", validate=lambda v: _source_addr(v, source_ton)),
            source_ton=source_ton,
            source_npi=source_npi,
            window=r.integer("window", 10, 1, 1000),
            max_per_second=r.number("max_per_second", 50.0, 0.1, 100000),
            enquire_link_interval=r.number("enquire_link_interval", 30.0, 1, 3600),
            response_timeout=r.number("response_timeout", 10.0, 0.1, 600),
            request_delivery_receipts=r.boolean("request_delivery_receipts", True),
            reconnect_initial=r.number("reconnect_initial", 1.0, 0.1, 3600),
            reconnect_max=r.number("reconnect_max", 60.0, 0.1, DAY),
            routes=tuple(dict.fromkeys(p.lstrip("+") for p in r.words(
                "routes", validate=msisdn_prefix, separators=","))),
            takeover_after=r.number("takeover_after", 10.0, 1.5, 600),
        )
        if link.reconnect_max < link.reconnect_initial:
            r.problem("reconnect_max", "%g is less than reconnect_initial (%g)"
                      % (link.reconnect_max, link.reconnect_initial))
        return link

    def serves(self, msisdn: str) -> bool:
        """Whether this link's ``routes`` cover ``msisdn`` (``+`` optional)."""
        number = msisdn.lstrip("+")
        return not self.routes or any(number.startswith(p) for p in self.routes)


def _source_addr(value: str, ton: int) -> str | None:
    if ton == 5 and len(value) > 11:  # alphanumeric sender (GSM 03.40 limit)
        return "an alphanumeric source_addr (source_ton 5) has at most 11 characters"
    if ton in (1, 2, 4) and not re.fullmatch(r"\+?[0-9]{1,20}", value):
        return "bad source_addr %r for source_ton %d (digits only)" % (value, ton)
    return max_length(20)(value)


# -- modem.ini -----------------------------------------------------------------


@dataclass(frozen=True)
class ModemConfig:
    """``modem.ini [modem]``: a serial GSM modem sending SMS (AT commands, PDU mode)."""

    enabled: bool = False
    device: str = "/dev/ttyUSB0"
    baudrate: int = 115200
    pin: str = field(default="", repr=False)
    smsc: str = ""
    command_timeout: float = 10.0

    @classmethod
    def read(cls, r: SectionReader) -> ModemConfig:
        r.active = r.boolean("enabled", False)
        device = r.text("device", cls.device, empty_ok=False)
        if r.active and device and not os.path.exists(device):
            r.problem("device", "device %r not found%s" % (device, checks.where(device)))
        elif r.active and device and not os.access(device, os.R_OK | os.W_OK):
            r.problem("device", "device %r is not readable and writable" % (device,))
        baudrate = r.integer("baudrate", 115200, 300, 4_000_000)
        if baudrate not in _BAUDRATES:
            r.problem("baudrate", "%d is not a standard rate (one of: %s)"
                      % (baudrate, ", ".join(map(str, _BAUDRATES))))
        return cls(
            enabled=r.active,
            device=device,
            baudrate=baudrate,
            pin=r.secret("pin", validate=lambda v: None if re.fullmatch(r"[0-9]{4,8}", v)
                         else "a SIM PIN is 4 to 8 digits"),
            smsc=r.text("smsc", validate=lambda v: None if re.fullmatch(r"\+?[0-9]{3,20}", v)
                        else "bad SMSC number %r" % (v,)),
            command_timeout=r.number("command_timeout", 10.0, 0.1, 600),
        )


# -- sip.ini -------------------------------------------------------------------


@dataclass(frozen=True)
class SipConfig:
    """``sip.ini [sip]``: SIP Push (pager-mode MESSAGE) to the device's ``sip_uri``."""

    enabled: bool = False
    transport: str = "udp"
    proxy: str = ""
    from_uri: str = ""
    push_app_id: str = "syncml.dm"
    content_type: str = "application/vnd.syncml.notification"
    local_endpoint: str = ""
    auth_user: str = ""
    auth_password_file: str = ""
    t1: float = 0.5
    timeout: float = 32.0
    tls_ca: str = ""

    @classmethod
    def read(cls, r: SectionReader) -> SipConfig:
        r.active = r.boolean("enabled", False)
        transport = r.choice("transport", "udp", ("udp", "tcp", "tls"))
        auth_user = r.text("auth_user", validate=single_word)
        config = cls(
            enabled=r.active,
            transport=transport,
            proxy=r.text("proxy", required=True,
                         validate=host_port(5061 if transport == "tls" else 5060)),
            from_uri=r.text("from_uri", required=True, validate=_sip_uri),
            push_app_id=r.text("push_app_id", "syncml.dm", empty_ok=False,
                               validate=lambda v: None if re.fullmatch(r"[\x21-\x7e]+", v)
                               and '"' not in v else "bad push application id %r" % (v,)),
            content_type=r.text("content_type", cls.content_type, empty_ok=False,
                                validate=lambda v: None if re.fullmatch(
                                    r"[\w.+-]+/[\w.+-]+", v) else "bad media type %r" % (v,)),
            local_endpoint=r.text("local_endpoint", validate=host_port(0)),
            auth_user=auth_user,
            auth_password_file=secret_file(r, "auth_password_file",
                                            required=bool(auth_user)),
            t1=r.number("t1", 0.5, 0.01, 10),
            timeout=r.number("timeout", 32.0, 0.1, 600),
            tls_ca=r.readable_file("tls_ca"),
        )
        if config.timeout < config.t1:
            r.problem("timeout", "%g is less than t1 (%g)" % (config.timeout, config.t1))
        return config

    @property
    def proxy_address(self) -> tuple[str, int]:
        """``(host, port)`` of ``proxy``; the port defaults to 5060 (5061 for TLS)."""
        return checks.parse_host_port(self.proxy, 5061 if self.transport == "tls" else 5060)


def _sip_uri(value: str) -> str | None:
    if not re.fullmatch(r"sips?:([^@\s<>\"]+@)?[^@\s<>\";:]+(:[0-9]{1,5})?(;[^\s<>\"]*)?",
                        value, re.IGNORECASE):
        return "bad SIP URI %r (like sip:dms@example.com)" % (value,)
    return None
