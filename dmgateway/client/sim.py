"""Simulated devices: compact records, provisioning data and wake-up parsing.

A :class:`SimDevice` keeps only what must survive between sessions -- the
identity, both credential sets with their current nonces and a few
overrides -- so that a hundred thousand of them fit in one process.  The
management tree and the :class:`~.session.ClientSession` are built when a
session starts (:meth:`SimDevice.session`) and dropped after it;
:meth:`SimDevice.remember` keeps what the session changed that matters
(nonces, and DMAcc credentials or server address the server replaced).

Also here, all free of I/O and of Twisted:

* :func:`pattern_devices` / :func:`load_csv` -- device sets;
* :func:`api_account` / :func:`api_job` -- the REST API bodies that
  provision a device (``PUT /api/v1/devices/{id}``) and give it work;
* :func:`parse_wakeup` -- an SMS push or SIP package #0 as the device sees it,
  digest checked with its SRVCRED;
* :class:`TokenBucket` and :class:`FleetStats` -- what the fleet runner
  (:mod:`.fleet`) paces and counts with.
"""

import csv
import hashlib
import hmac
import io
import math
from collections import Counter

from ..auth.credentials import AuthError
from ..auth.verify import parse_challenge
from ..codec import syncml as sm
from ..codec.errors import CodecError
from ..notify import package0, wsp
from .account import Account, Credentials
from .session import ClientSession
from .tree import account_path

__all__ = [
    "CSV_COLUMNS",
    "ERROR_KINDS",
    "FleetStats",
    "SimDevice",
    "TokenBucket",
    "WakeError",
    "WakeUp",
    "api_account",
    "api_job",
    "classify_failure",
    "load_csv",
    "parse_wakeup",
    "pattern_devices",
    "percentile",
]

CSV_COLUMNS = ("device_id", "client_name", "client_secret", "server_name", "server_secret",
               "msisdn", "sip_uri")
ERROR_KINDS = ("transport", "auth", "http", "protocol")
DEFAULT_SERVER_ID = "dmgateway"


class SimDevice:
    """One simulated device between sessions.

    ``scheme`` is the authentication scheme of both directions (``md5``,
    ``basic`` or ``hmac``).  Nonces are raw bytes.  ``overrides`` is None
    or a dict with optional ``devinfo``/``devdetail`` leaf overrides.
    """

    __slots__ = ("device_id", "scheme", "client_name", "client_secret", "server_name",
                 "server_secret", "client_nonce", "server_nonce", "msisdn", "sip_uri",
                 "server_url", "overrides")

    def __init__(self, device_id, client_name, client_secret, server_name, server_secret, *,
                 scheme="md5", msisdn=None, sip_uri=None, client_nonce=b"", server_nonce=b"",
                 server_url=None, overrides=None):
        if scheme not in ("md5", "basic", "hmac"):
            raise ValueError("unknown authentication scheme %r" % (scheme,))
        self.device_id = device_id
        self.scheme = scheme
        self.client_name = client_name
        self.client_secret = client_secret
        self.server_name = server_name
        self.server_secret = server_secret
        self.client_nonce = client_nonce
        self.server_nonce = server_nonce
        self.msisdn = msisdn or None
        self.sip_uri = sip_uri or None
        self.server_url = server_url or None
        self.overrides = overrides or None

    def __repr__(self):
        return "<SimDevice %s %s>" % (self.device_id, self.scheme)

    def account(self, url, server_id=None):
        """A fresh :class:`~.account.Account` with the current credentials and nonces.

        ``url`` is used unless the server has moved the device elsewhere.
        """
        return Account(
            device_id=self.device_id,
            server_id=server_id or self.server_name,
            server_url=self.server_url or url,
            client=Credentials(self.scheme, self.client_name, self.client_secret,
                               self.client_nonce),
            server=Credentials(self.scheme, self.server_name, self.server_secret,
                               self.server_nonce),
        )

    def session(self, url, *, random_bytes, server_id=None, **options):
        """A new :class:`~.session.ClientSession` for this device (tree built now).

        ``options`` go to the session (``encoding``, ``max_msg_size``, ``ui``,
        ``session_id`` ...).
        """
        overrides = self.overrides or {}
        return ClientSession(self.account(url, server_id), random_bytes=random_bytes,
                             devinfo=overrides.get("devinfo"),
                             devdetail=overrides.get("devdetail"), **options)

    def remember(self, session):
        """Keep what ``session`` changed that the next session needs."""
        account = session.account
        self.client_nonce = account.client.nonce
        self.server_nonce = _server_nonce_sent(session, self.server_nonce)
        base = account_path(account)
        changed = {
            "client_name": _leaf(session.tree, base + "/AppAuth/1/AAuthName"),
            "client_secret": _leaf(session.tree, base + "/AppAuth/1/AAuthSecret"),
            "server_name": _leaf(session.tree, base + "/AppAuth/2/AAuthName"),
            "server_secret": _leaf(session.tree, base + "/AppAuth/2/AAuthSecret"),
            "server_url": _leaf(session.tree, base + "/AppAddr/1/Addr"),
        }
        for name, value in changed.items():
            if name == "server_url" and value == account.server_url:
                continue  # the address it was given, not a move
            if value and value != getattr(self, name):
                setattr(self, name, value)

    def destination(self, kind):
        """Where a wake-up of ``kind`` (``sms``/``sip``) reaches this device."""
        return self.msisdn if kind == "sms" else self.sip_uri


def _server_nonce_sent(session, previous):
    """The server nonce the server knows: the last NextNonce we sent, else ``previous``.

    The session stores a new SRVCRED nonce as soon as it makes one, also
    when the session then ends without sending it (e.g. a package 2 with
    nothing to do); keeping that one would fail the next session.
    """
    nonce = previous
    for direction, msg in session.transcript:
        if direction != "out":
            continue
        for status in msg.commands(sm.Status):
            if status.cmd_ref == "0" and status.chal is not None:
                try:
                    _, sent = parse_challenge(status.chal)
                except AuthError:
                    continue
                if sent is not None:
                    nonce = sent
    return nonce


def _leaf(tree, uri):
    """The text value of ``uri`` in ``tree``, or None (tolerant of any tree error)."""
    try:
        if not tree.exists(uri):
            return None
        reader = getattr(tree, "read", None) or tree.get  # read: the device itself, no ACL
        value = reader(uri).value
    except Exception:  # noqa: BLE001 - the tree is someone else's; a miss is a miss
        return None
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


# -- device sets ---------------------------------------------------------------


def _derived_secret(seed, device_id, role):
    mac = hmac.new(seed.encode("utf-8"), ("%s|%s" % (role, device_id)).encode("utf-8"),
                   hashlib.sha256)
    return mac.hexdigest()[:20]


def pattern_devices(count, *, start=0, imei_prefix="35", scheme="md5", seed="dmgw-sim",
                    server_name=DEFAULT_SERVER_ID, msisdn_prefix="+4477009", sip_domain=None):
    """``count`` devices ``IMEI:<prefix><n>`` (15 digits) numbered from ``start``.

    Names are ``dev<n>``; secrets are derived from ``seed`` and the device id,
    so the same arguments give the same fleet in another process.  Each
    device gets an MSISDN ``<msisdn_prefix><n>`` and, with ``sip_domain``,
    a SIP URI ``sip:<imei>@<sip_domain>``.
    """
    width = 15 - len(imei_prefix)
    if width < 1 or start + count > 10 ** width:
        raise ValueError("the IMEI prefix leaves no room for %d devices" % (start + count,))
    for n in range(start, start + count):
        imei = "%s%0*d" % (imei_prefix, width, n)
        device_id = "IMEI:" + imei
        yield SimDevice(
            device_id, "dev%d" % (n,), _derived_secret(seed, device_id, "client"),
            server_name, _derived_secret(seed, device_id, "server"), scheme=scheme,
            msisdn="%s%06d" % (msisdn_prefix, n) if msisdn_prefix else None,
            sip_uri="sip:%s@%s" % (imei, sip_domain) if sip_domain else None,
        )


class CsvError(ValueError):
    """A device CSV that cannot be used; the message names the line."""


def load_csv(source, *, scheme="md5", server_name=DEFAULT_SERVER_ID):
    """Devices from CSV text or a file object with a header line.

    Columns: ``device_id,client_name,client_secret,server_name,server_secret,
    msisdn,sip_uri`` (any order; only ``device_id`` and ``client_secret``
    required; an optional ``scheme`` column overrides ``scheme``).  Blank
    lines and lines starting with ``#`` are skipped.
    """
    if isinstance(source, str):
        source = io.StringIO(source)
    lines = (line for line in source if line.strip() and not line.lstrip().startswith("#"))
    reader = csv.DictReader(lines)
    fields = [name.strip().lower() for name in reader.fieldnames or ()]
    for required in ("device_id", "client_secret"):
        if required not in fields:
            raise CsvError("the CSV header has no %s column" % (required,))
    devices = []
    for number, row in enumerate(reader, start=2):
        row = {(key or "").strip().lower(): (value or "").strip() for key, value in row.items()
               if isinstance(value, str)}
        device_id = row.get("device_id")
        if not device_id:
            raise CsvError("line %d: empty device_id" % (number,))
        try:
            devices.append(SimDevice(
                device_id, row.get("client_name") or device_id, row.get("client_secret", ""),
                row.get("server_name") or server_name, row.get("server_secret", ""),
                scheme=(row.get("scheme") or scheme).lower(), msisdn=row.get("msisdn"),
                sip_uri=row.get("sip_uri"),
            ))
        except ValueError as error:
            raise CsvError("line %d: %s" % (number, error)) from None
    return devices


def write_csv(devices, out):
    """Write ``devices`` as CSV (the columns :func:`load_csv` reads, plus ``scheme``)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + ("scheme",))
    for d in devices:
        writer.writerow([d.device_id, d.client_name, d.client_secret, d.server_name,
                         d.server_secret, d.msisdn or "", d.sip_uri or "", d.scheme])


def api_account(device, server_id=None):
    """The JSON body of ``PUT /api/v1/devices/{device_id}`` for ``device``."""
    import base64

    def auth(name, secret, nonce):
        body = {"type": device.scheme, "name": name, "secret": secret}
        if nonce:
            body["nonce"] = base64.b64encode(nonce).decode("ascii")
        return body

    body = {
        "server_id": server_id or device.server_name,
        "client_auth": auth(device.client_name, device.client_secret, device.client_nonce),
        "server_auth": auth(device.server_name, device.server_secret, device.server_nonce),
    }
    if device.msisdn:
        body["msisdn"] = device.msisdn
    if device.sip_uri:
        body["sip_uri"] = device.sip_uri
    return body


def api_job(gets=("./DevDetail/SwV",), notify="none"):
    """The JSON body of ``POST /api/v1/devices/{id}/jobs``: one Get per URI."""
    return {"commands": [{"op": "Get", "target": uri} for uri in gets], "notify": notify}


# -- wake-ups --------------------------------------------------------------------


class WakeError(ValueError):
    """A wake-up the device ignores: malformed, not for DM, or a bad digest."""


class WakeUp:
    """A verified notification: the session to open."""

    __slots__ = ("session_id", "ui_mode", "server_id", "resynchronised")

    def __init__(self, session_id, ui_mode, server_id, resynchronised):
        self.session_id = session_id  # SyncHdr/SessionID text
        self.ui_mode = ui_mode
        self.server_id = server_id
        self.resynchronised = resynchronised

    def __repr__(self):
        return "<WakeUp session %s from %s>" % (self.session_id, self.server_id)


def parse_wakeup(device, kind, data):
    """The :class:`WakeUp` in ``data`` for ``device``, or :class:`WakeError`.

    ``kind`` ``sms``: ``data`` is a WSP push PDU carrying package #0;
    ``sip``: ``data`` is the package #0 itself.  The digest is checked with
    the device's SRVCRED (name, secret, current nonce; resync nonces too).
    """
    try:
        if kind == "sms":
            pdu = wsp.parse_push(data)
            if not wsp.is_dm_notification(pdu):
                raise WakeError("push is not a DM notification (%s for %s)" % (
                    wsp.content_type_name(pdu), wsp.application_id_name(pdu)))
            data = pdu.body
        elif kind != "sip":
            raise WakeError("unknown wake-up kind %r" % (kind,))
        package = package0.parse(data)
    except CodecError as error:
        raise WakeError("malformed %s wake-up: %s" % (kind, error)) from None
    credential = package0.ServerCredential(device.server_name, bytes(device.server_nonce or b""),
                                           secret=device.server_secret)
    verified = package0.verify(package, credential)
    if verified is None:
        raise WakeError("package #0 digest does not verify with the device's SRVCRED")
    note = package.notification
    return WakeUp(note.syncml_session_id, note.ui_mode, note.server_id, verified.resynchronised)


# -- pacing and counting ---------------------------------------------------------


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; times come from the caller.

    A ``rate`` of 0 or None means no limit.
    """

    def __init__(self, rate, now, burst=None):
        self.rate = float(rate or 0)
        self.burst = float(burst if burst is not None else max(1.0, self.rate / 10.0))
        self.tokens = min(1.0, self.burst)
        self.stamp = now

    def _refill(self, now):
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = max(self.stamp, now)

    def take(self, now):
        """True (and one token spent) when a session may start at ``now``."""
        if not self.rate:
            return True
        self._refill(now)
        if self.tokens >= 1.0 - 1e-9:  # float steps of 1/rate must add up to a token
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False

    def delay(self, now):
        """Seconds from ``now`` until the next token."""
        if not self.rate:
            return 0.0
        self._refill(now)
        return max(0.0, (1.0 - self.tokens) / self.rate)


#: upper bounds (ms) of the latency histogram of a fleet summary; one more bucket above
HISTOGRAM_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


def latency_histogram(sorted_values):
    """Counts of session latencies (seconds, ascending) per :data:`HISTOGRAM_MS` bucket."""
    buckets, at = [], 0
    for bound in HISTOGRAM_MS:
        start = at
        while at < len(sorted_values) and sorted_values[at] * 1000.0 <= bound:
            at += 1
        buckets.append({"le_ms": bound, "count": at - start})
    buckets.append({"le_ms": None, "count": len(sorted_values) - at})
    return buckets


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def classify_failure(session=None, error=None):
    """``(kind, detail)`` of a session that did not complete; kind in :data:`ERROR_KINDS`.

    ``error`` is the transport exception (anything with ``code``/``reason``)
    when the transport failed, else the session's own error decides.
    """
    if error is not None:
        code = getattr(error, "code", None)
        if code is not None:
            return "http", "HTTP %d" % (code,)
        return "transport", str(getattr(error, "reason", None) or error or type(error).__name__)
    text = (session.error or session.outcome or "unknown") if session is not None else "unknown"
    lowered = text.lower()
    if "credential" in lowered or "authentic" in lowered:
        return "auth", text
    return "protocol", text


class FleetStats:
    """Latencies, outcomes and errors of many sessions; :meth:`summary` is JSON-ready."""

    SAMPLES = 5  # error messages kept per kind

    def __init__(self):
        self.latencies = []
        self.outcomes = Counter()
        self.errors = Counter()
        self.samples = {}
        self.messages = 0
        self.wakeups = Counter()
        self.started = None
        self.ended = None

    def record(self, latency, outcome, kind=None, detail=None, messages=0):
        self.latencies.append(latency)
        self.outcomes[outcome] += 1
        self.messages += messages
        if kind is not None:
            self.errors[kind] += 1
            kept = self.samples.setdefault(kind, [])
            if len(kept) < self.SAMPLES and detail not in kept:
                kept.append(detail)

    @property
    def sessions(self):
        return len(self.latencies)

    def summary(self):
        ordered = sorted(self.latencies)
        elapsed = (self.ended - self.started) if self.started is not None and \
            self.ended is not None else 0.0
        ms = lambda value: None if value is None else round(value * 1000.0, 3)  # noqa: E731
        return {
            "sessions": self.sessions,
            "completed": self.outcomes.get("completed", 0),
            "outcomes": dict(self.outcomes),
            "errors": {kind: self.errors.get(kind, 0) for kind in ERROR_KINDS},
            "error_samples": {kind: list(v) for kind, v in self.samples.items()},
            "elapsed_s": round(elapsed, 3),
            "sessions_per_s": round(self.sessions / elapsed, 2) if elapsed > 0 else None,
            "messages": self.messages,
            "latency_ms": {
                "p50": ms(percentile(ordered, 0.50)),
                "p90": ms(percentile(ordered, 0.90)),
                "p99": ms(percentile(ordered, 0.99)),
                "mean": ms(sum(ordered) / len(ordered)) if ordered else None,
                "max": ms(ordered[-1]) if ordered else None,
            },
            "wakeups": dict(self.wakeups),
            "latency_histogram": latency_histogram(ordered),
        }

    def progress_line(self, now, active, total=None, deadline=None):
        """A one-line progress text for a terminal: done/total and ETA when known."""
        elapsed = now - self.started if self.started is not None else 0.0
        rate = self.sessions / elapsed if elapsed > 0 else 0.0
        ordered = sorted(self.latencies[-1000:])
        p50 = percentile(ordered, 0.5)
        done = "%d/%d" % (self.sessions, total) if total else "%d" % (self.sessions,)
        eta = None
        if total and rate > 0:
            eta = max(total - self.sessions, 0) / rate
        if deadline is not None:
            eta = max(0.0, deadline - now) if eta is None else min(eta, max(0.0, deadline - now))
        return "%7.1fs  sessions %s  ok %d  failed %d  active %d  %.1f/s  p50 %s  ETA %s" % (
            elapsed, done, self.outcomes.get("completed", 0),
            self.sessions - self.outcomes.get("completed", 0), active, rate,
            "-" if p50 is None else "%.1f ms" % (p50 * 1000.0,),
            "-" if eta is None else "%.0fs" % (eta,))
