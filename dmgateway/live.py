"""What the dispatcher (:mod:`dmgateway.dispatch`) shares with its guard
(:mod:`dmgateway.dispatch_guard`), the inventory service and the cluster
hooks: the live-session record, the DM reply, and the conversions between
store rows, session-engine inputs and API views."""

from dataclasses import dataclass, field
from datetime import datetime, timezone

from dmgateway.auth.nonce import encode_nonce
from dmgateway.auth.verify import AuthAccount
from dmgateway.codec.syncml import ALERT_CLIENT_INITIATED, ALERT_SERVER_INITIATED, Alert
from dmgateway.dm import effects as fx
from dmgateway.dm.session import ServerSession


@dataclass
class DMReply:
    """What the HTTP bearer sends back for one DM request."""

    code: int
    content_type: str
    body: bytes
    headers: dict = field(default_factory=dict)


@dataclass
class LiveSession:
    token: str
    device_id: str
    session_id: str  # the SyncML SessionID
    engine: ServerSession
    encoding: str
    media_type: str
    started: float
    messages: int = 0
    timer: object = None
    unrecorded: bool = False  # the store has no row for this session yet
    auth_failures: int = 0  # the device's failure count as the store has it
    job_ids: list = field(default_factory=list)
    host: str = None  # the peer address that opened it (lockouts are per address)
    first_digest: bytes = b""  # digest of package 1 as received, to know a retransmission
    count_failures: bool = True  # False for a retransmitted package 1
    function_readbacks: dict = field(default_factory=dict)  # Correlator -> read-back (job id, commands)
    function_request: object = None  # the update a FUMO device request gets (devfunctions)
    authenticated: bool = False  # the device proved itself in this session
    pending_jobs: list = field(default_factory=list)  # ids of the jobs it was opened with
    announced: bool = False  # the other nodes were told this session authenticated


MEDIA_TYPES = {"xml": "application/vnd.syncml.dm+xml; charset=utf-8", "wbxml": "application/vnd.syncml.dm+wbxml"}


def media_type_for(encoding):
    return MEDIA_TYPES[encoding]


def iso_time(seconds):
    """Epoch seconds as an ISO 8601 UTC timestamp with milliseconds."""
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (stamp.microsecond // 1000,)


def starts_session(msg):
    """Whether ``msg`` opens a session (an Alert 1200 or 1201)."""
    return any(
        isinstance(cmd, Alert) and cmd.data in (ALERT_CLIENT_INITIATED, ALERT_SERVER_INITIATED)
        for cmd in msg.body
    )


def device_state(device):
    client, server = device.client_auth, device.server_auth
    return fx.DeviceState(
        device_id=device.device_id,
        server_id=device.server_id,
        client=AuthAccount(client.type, client.name, client.user_hash),
        client_nonce=client.nonce or b"",
        server=AuthAccount(server.type, server.name, server.user_hash, server.secret),
        server_nonce=server.nonce or b"",
    )


def job_spec(job):
    return fx.JobSpec(job_id=job.job_id, commands=list(job.commands), atomic=job.atomic)


def device_view(device):
    def auth(a):
        return {"type": a.type, "name": a.name, "nonce": encode_nonce(a.nonce or b"")}

    return {
        "device_id": device.device_id,
        "server_id": device.server_id,
        "client_auth": auth(device.client_auth),
        "server_auth": auth(device.server_auth),
        "msisdn": device.msisdn,
        "sip_uri": device.sip_uri,
        "imsi": device.imsi,
        "devinfo": device.devinfo,
        "reported": device.reported or {},
        "device_challenge": device.device_challenge,
        "last_session": device.last_session,
        "created": iso_time(device.created),
        "updated": iso_time(device.updated),
    }


def job_view(job, notifications):
    view = {
        "id": job.job_id,
        "device_id": job.device_id,
        "state": job.state,
        "commands": _redacted(job.commands),
        "atomic": job.atomic,
        "notify": job.notify,
        "ui_mode": job.ui_mode,
        "results": job.results,
        "notifications": [notification_view(n) for n in notifications],
        "created": iso_time(job.created),
        "updated": iso_time(job.updated),
    }
    if job.state in ("failed", "expired"):
        view["error"] = job.error or {"code": job.state, "message": "job %s" % (job.state,)}
    return view


def _redacted(commands):
    """Job commands for a view: the data of an ``.../AAuthSecret`` leaf is never
    shown, also inside a Sequence."""
    out = []
    for command in commands:
        if not isinstance(command, dict):
            out.append(command)
            continue
        target = str(command.get("target", ""))
        if target.split("?", 1)[0].rstrip("/").endswith("/AAuthSecret") and "data" in command:
            command = dict(command, data="(secret)")
        if isinstance(command.get("commands"), list):
            command = dict(command, commands=_redacted(command["commands"]))
        out.append(command)
    return out


def notification_view(n):
    return {
        "bearer": n.bearer,
        "state": n.state,
        "attempts": n.attempts,
        "last_error": n.last_error,
        "message_id": n.message_id,
    }


def event_view(event):
    view = dict(event)
    if isinstance(view.get("time"), (int, float)):
        view["time"] = iso_time(view["time"])
    return view
