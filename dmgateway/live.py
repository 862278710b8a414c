"""What the dispatcher (:mod:`dmgateway.dispatch`) shares with its guard,
its effects and the cluster hooks: the live-session record, the DM reply,
and the conversions from store rows to session-engine inputs.  (The JSON
views of the REST API are in :mod:`dmgateway.api.views`.)"""

from dataclasses import dataclass, field

from dmgateway.auth.verify import AuthAccount
from dmgateway.codec.syncml import ALERT_CLIENT_INITIATED, ALERT_SERVER_INITIATED, Alert
from dmgateway.dm import effects as fx
from dmgateway.dm.session import ServerSession
from dmgateway.utctime import utc_parts


@dataclass
class DMReply:
    """What the HTTP bearer sends back for one DM request."""

    code: int
    content_type: str
    body: bytes
    headers: dict = field(default_factory=dict)


@dataclass
class LiveSession:
    """One DM session open in this process.

    Two identifiers, never to be confused: ``token`` is the RespURI token
    (``NODE~SECRET``), the session's key in the store and in the
    dispatcher's maps; ``syncml_session_id`` is the SessionID of the SyncML
    header, chosen by the device.  (A wake-up's ``push_session_id``, the
    16-bit number in package #0, belongs to the notification; the device
    sends it, in hex, as the ``syncml_session_id`` of the session it opens.)
    """

    token: str  # the RespURI token: the store's key of the session
    device_id: str
    syncml_session_id: str  # the SessionID of the SyncML header
    engine: ServerSession
    encoding: str
    media_type: str
    started: float
    messages: int = 0
    timer: object = None  # its current deadline (a dmgateway.deadlines.Deadline), None if none is set
    unrecorded: bool = False  # the store has no row for this session yet
    auth_failures: int = 0  # the device's failure count as the store has it
    job_ids: list = field(default_factory=list)  # the jobs the store started for it, in that order
    unstarted: set = None  # jobs its engine started that the store did not (see SessionEffects._apply)
    host: str = None  # the peer address that opened it (lockouts are per address)
    first_digest: bytes = b""  # digest of package 1 as received, to know a retransmission
    count_failures: bool = True  # False for a retransmitted package 1
    function_readbacks: dict = field(default_factory=dict)  # Correlator -> read-back (job id, commands)
    function_request: object = None  # the update a FUMO device request gets (devfunctions)
    authenticated: bool = False  # the device proved itself in this session
    pending_jobs: list = field(default_factory=list)  # ids of the jobs it was opened with
    announced: bool = False  # the other nodes were told this session authenticated
    # the device's DevInfo and other reported nodes as the store holds them (not written again unchanged)
    devinfo: dict = None
    reported: dict = None


MEDIA_TYPES = {"xml": "application/vnd.syncml.dm+xml; charset=utf-8", "wbxml": "application/vnd.syncml.dm+wbxml"}


def media_type_for(encoding):
    return MEDIA_TYPES[encoding]


def iso_time(seconds):
    """Epoch seconds as an ISO 8601 UTC timestamp with milliseconds
    (what ``datetime.fromtimestamp`` gives, see L{dmgateway.utctime})."""
    text, micros = utc_parts(seconds)
    return "%s%03dZ" % (text, micros // 1000)


def starts_session(msg):
    """Whether ``msg`` opens a session (an Alert 1200 or 1201)."""
    for cmd in msg.body:
        if cmd.__class__ is Alert and cmd.data in _SESSION_STARTS:
            return True
    return False


_SESSION_STARTS = (ALERT_CLIENT_INITIATED, ALERT_SERVER_INITIATED)


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
    """The engine's input for stored ``job``.  Its commands are shared, not
    copied: the engine only reads them (it builds its SyncML commands from
    them), and a stored job's list is its own, decoded from its row."""
    return fx.JobSpec(job.job_id, job.commands, job.atomic)
