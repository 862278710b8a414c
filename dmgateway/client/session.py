"""The client side of one OMA DM session, without I/O.

A :class:`ClientSession` turns server messages into client messages::

    session = ClientSession(account, random_bytes=os.urandom)
    request = session.start()                 # package 1: (url, body, headers)
    while request is not None:
        body, headers = post(*request)        # any transport
        request = session.receive(body, headers)

It never reads the clock or global randomness and never does I/O; the
transport (:mod:`.http`, or a test) moves the bytes.  What it does
(dm-protocol §4, dm-security §2):

* package 1: Alert 1200/1201, the DevInfo Replace and any Generic Alerts,
  with credentials per the account (md5/basic in ``SyncHdr/Cred``, hmac in
  the ``x-syncml-hmac`` header of every message);
* a 401/407 ``Chal`` for our SyncHdr restarts what was rejected (package 1
  at first) with the requested scheme and NextNonce; a NextNonce is used at
  once but stored in the account only once the server is authenticated;
* the server's credentials are checked against SRVCRED until it is
  authenticated (212; every message for hmac).  A server that fails gets
  401/407 with our own ``Chal`` and a fresh nonce, Status-only answers, and
  none of its commands run; a NextNonce we hand out becomes the SRVCRED
  nonce at once;
* commands are run by :class:`~.commands.CommandRunner`; answers are packed
  by :class:`~.packer.MessagePacker` under the server's MaxMsgSize, over several
  messages when needed (no Final until the server's Alert 1222 has fetched
  the rest); a non-final server message is answered with its Statuses plus
  Alert 1222;
* the session ends (``receive`` returns None) on a server package with
  nothing needing a reply, on Alert 1223, or on failure (``error`` says why).
"""

from collections import Counter, namedtuple

from ..auth.credentials import AuthError
from ..auth.nonce import DEFAULT_NONCE_SIZE, new_nonce
from ..auth.verify import (
    AuthAccount,
    challenge,
    client_cred,
    client_hmac_header,
    parse_challenge,
    verify_server_cred,
)
from ..codec import CONTENT_TYPES, WBXML, XML, decode_message, encode_message
from ..codec import syncml as sm
from ..codec.errors import CodecError
from .commands import CommandRunner
from .packer import MessagePacker
from .tree import DEVINFO_LEAVES, auth_data_path, default_tree

__all__ = ["ClientSession", "Request", "SessionError", "HMAC_HEADER"]

HMAC_HEADER = "x-syncml-hmac"

OK, AUTHENTICATED, CHUNK_ACCEPTED = 200, 212, 213
INVALID, MISSING = 401, 407
_CHALLENGES = (INVALID, MISSING)

Request = namedtuple("Request", "url body headers")
Request.__doc__ = "One message to POST: ``body`` bytes to ``url`` with ``headers`` (a dict)."


class SessionError(Exception):
    """The session was used out of order (receive before start, after the end ...)."""


def _header(headers, name):
    """Case-insensitive lookup in a dict of str/bytes names and values (or value lists)."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if key.lower() != wanted:
            continue
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        return value
    return None


def _is_hdr_status(status):
    return status.cmd_ref == "0" or status.cmd == "SyncHdr"


class ClientSession:
    """One DM session as the device.  See the module docstring.

    ``account`` is an :class:`~.account.Account` (its nonces are updated in
    place); ``tree`` defaults to :func:`~.tree.default_tree` for it, with
    ``devinfo``/``devdetail`` overrides.  ``random_bytes(n)`` supplies
    nonces.  ``max_msg_size``/``max_obj_size`` are what we announce in
    package 1 (None: not announced; ``max_obj_size`` also bounds incoming
    objects).  ``ui(code, options, text, choices) -> (status, answers)``
    answers alerts 1100-1104.  ``session_id`` defaults to a random one; for
    a server-initiated session pass the notification's id, see
    :func:`~.account.session_id_for_notification`.  ``max_send_size``
    caps our own messages below the server's MaxMsgSize (a device with a
    small buffer; also when the server announces none).  A server message
    over our ``max_msg_size`` is handled but logged and counted
    (``counters["oversized_messages"]``).  ``large_objects=False`` plays a
    client that claims large object support but has none (libdmclient): a
    chunk is stored as if it were the whole value and answered 200.
    """

    def __init__(self, account, *, random_bytes, tree=None, max_msg_size=None,
                 max_obj_size=None, encoding=XML, ui=None, session_id=None,
                 ver_proto=sm.VERPROTO_DM_1_2, nonce_size=DEFAULT_NONCE_SIZE,
                 max_auth_attempts=3, devinfo=None, devdetail=None, max_send_size=None,
                 large_objects=True):
        if encoding not in (XML, WBXML):
            raise ValueError("encoding must be 'xml' or 'wbxml'")
        self.account = account
        self.tree = tree if tree is not None else default_tree(account, devinfo=devinfo,
                                                                 devdetail=devdetail)
        self.random_bytes = random_bytes
        self.max_msg_size = max_msg_size
        self.max_obj_size = max_obj_size
        self.max_send_size = max_send_size
        self.encoding = encoding
        self.ver_proto = ver_proto
        self.ver_dtd = sm.VERDTD_1_1 if ver_proto == sm.VERPROTO_DM_1_1 else sm.VERDTD_1_2
        self.nonce_size = nonce_size
        self.max_auth_attempts = max_auth_attempts
        if session_id is None:
            session_id = "%X" % (int.from_bytes(new_nonce(random_bytes, 2), "big"),)
        self.session_id = session_id
        self.url = account.server_url

        self.transcript = []  # ("out" | "in", SyncML) in wire order
        self.log = []  # human-readable events
        self.results = []  # the Results commands we sent
        self.server_statuses = []  # every Status the server sent us
        self.counters = Counter()
        self.finished = False
        self.outcome = None  # "completed" | "aborted" | "failed"
        self.error = None

        self.client_authenticated = False  # the server said 212
        self.server_authenticated = account.server.scheme == "none"
        self._client_scheme = account.client.scheme
        self._client_nonce = account.client.nonce  # the one our next credentials use
        self._client_nonce_unsaved = False
        self._server_failures = 0
        self._challenges = 0
        self._offered_server_nonce = None  # a NextNonce for the server, not sent yet
        self._server_max_msg_size = None
        self._server_max_obj_size = None
        self._in_package1 = True
        self._msg_id = 0
        self._last_sent = []  # commands of our last message, resent if it is rejected
        self._sent = {}  # (our MsgID, CmdID) -> command
        self._packer = MessagePacker(lambda msg: len(encode_message(msg, encoding)))
        self._runner = CommandRunner(self.tree, server=account.server_id, ui_policy=ui,
                                     encoding=encoding,
                                     max_obj_size=max_obj_size, log=self._note,
                                     large_objects=large_objects)

    # -- public -------------------------------------------------------------

    @property
    def executed(self):
        """``(command, target URI, status)`` of every item the server had us run."""
        return self._runner.executed

    def start(self, alert=sm.ALERT_CLIENT_INITIATED, generic_alerts=()):
        """Package 1 as a :class:`Request`.

        ``alert`` is 1201 (client-initiated) or 1200 (answering a
        notification); ``generic_alerts`` are :class:`~.account.GenericAlert`.
        """
        if self._msg_id:
            raise SessionError("the session has already started")
        commands = [sm.Alert(data=alert), self._devinfo_replace()]
        commands.extend(self._generic_alert(alert) for alert in generic_alerts)
        self._packer.push_front(commands)  # ahead of client events queued before the start
        return self._send(None, ask_next=False)

    def send_generic_alert(self, alert):
        """Queue a Generic Alert (e.g. an Exec's late result) for our next message."""
        if self.finished:
            raise SessionError("the session is over")
        self._packer.extend([self._generic_alert(alert)])

    def send_client_event(self, type, format, data):
        """Queue a Client Event alert (1224) with one item for our next message.

        ``type`` and ``format`` are the item's Meta Type and Format (both
        mandatory, dm-protocol §5.2); ``data`` its text or bytes.
        """
        if self.finished:
            raise SessionError("the session is over")
        if not type or not format:
            raise ValueError("a client event needs a Meta Type and Format")
        item = sm.Item(meta=sm.Meta(type=type, format=format), data=data)
        self._packer.extend([sm.Alert(data=sm.ALERT_CLIENT_EVENT, items=[item])])
        self.counters["client_events"] += 1

    def receive(self, body, headers=None):
        """The next :class:`Request` after server message ``body``; None when the session ends."""
        if self.finished:
            raise SessionError("the session is over")
        if not self._msg_id:
            raise SessionError("start() the session first")
        self.counters["messages_received"] += 1
        self.counters["bytes_received"] += len(body or b"")
        if self.max_msg_size and len(body or b"") > self.max_msg_size:
            # the server broke our limit; the message is still handled (tolerant)
            self.counters["oversized_messages"] += 1
            self._note("server message of %d bytes is over our MaxMsgSize %d" % (
                len(body), self.max_msg_size))
        try:
            msg, _ = decode_message(body, _header(headers, "content-type"))
        except CodecError as error:
            return self._fail("undecodable server message: %s" % (error,))
        self.transcript.append(("in", msg))
        hdr = msg.hdr
        self._take_header(hdr)
        code, chal, trusted = self._check_server(msg, body, _header(headers, HMAC_HEADER))
        verdict = self._take_statuses(msg)
        if trusted and self._client_nonce_unsaved:
            self._save_client_nonce()
        if verdict == "give_up":
            return self._fail("the server rejected our credentials %d times" % (self._challenges,))
        if any(isinstance(c, sm.Alert) and c.data == sm.ALERT_SESSION_ABORT for c in msg.body):
            self._note("the server aborted the session (Alert 1223)")
            return self._finish("aborted")
        if verdict == "retry":
            self._packer.push_front(self._last_sent)
        else:
            self._in_package1 = False

        has_commands = any(not isinstance(c, (sm.Status, sm.Results)) for c in msg.body)
        if trusted:
            owed = self._runner.run(msg, self._server_max_obj_size)
            # Statuses belong in our next message (dm-protocol §3.3): ahead of leftovers
            self._packer.push_front(owed.statuses)
            self._packer.extend(owed.results + owed.alerts)
            if msg.final:
                self._packer.extend(self._runner.end_of_package(hdr.msg_id))
        else:
            if self._server_failures >= self.max_auth_attempts:
                return self._fail("the server failed authentication %d times" % (
                    self._server_failures,))
            if not has_commands and verdict != "retry":
                # dm-security §2.3 rule 3: no bare Status + Chal answer
                return self._fail("unauthenticated server message with nothing to answer")
            self._packer.push_front(self._runner.refuse_all(msg, MISSING))

        next_message = any(isinstance(c, sm.Alert) and c.data == sm.ALERT_NEXT_MESSAGE
                           for c in msg.body)
        ask_next = not msg.final and not next_message
        if not (has_commands or self._packer or verdict == "retry" or ask_next):
            return self._finish("completed")
        hdr_status = sm.Status(
            msg_ref=hdr.msg_id, cmd_ref="0", cmd="SyncHdr",
            target_refs=[hdr.target.loc_uri], source_refs=[hdr.source.loc_uri],
            chal=chal, data=code,
        )
        if chal is not None and self._offered_server_nonce is not None:
            # the server learns this nonce from our message: from now on it is the one
            self._save_server_nonce(self._offered_server_nonce)
        self._offered_server_nonce = None
        return self._send(hdr_status, ask_next)

    def abort(self, reason):
        """End the session from outside (transport failure, timeout)."""
        if not self.finished:
            self._fail(reason)

    def _take_header(self, hdr):
        """The server's limits and RespURI (tolerating a foreign SessionID)."""
        if hdr.session_id != self.session_id:
            self._note("server SessionID %r differs from ours %r" % (
                hdr.session_id, self.session_id))
        if hdr.meta is not None:
            if hdr.meta.max_msg_size:
                self._server_max_msg_size = hdr.meta.max_msg_size
            if hdr.meta.max_obj_size:
                self._server_max_obj_size = hdr.meta.max_obj_size
        if hdr.resp_uri:
            self.url = hdr.resp_uri

    # -- package 1 ----------------------------------------------------------

    def _devinfo_replace(self):
        items = []
        for leaf in DEVINFO_LEAVES:
            uri = "./DevInfo/" + leaf
            if not self.tree.exists(uri):
                continue
            value = self.tree.read(uri).value
            if isinstance(value, (bytes, bytearray)):
                value = bytes(value).decode("utf-8", "replace")
            items.append(sm.Item(source=sm.LocRef(uri),
                                 meta=sm.Meta(format="chr", type="text/plain"),
                                 data=value if value is not None else ""))
        return sm.Replace(items=items)

    @staticmethod
    def _generic_alert(alert):
        item = sm.Item(
            source=sm.LocRef(alert.source) if alert.source else None,
            meta=sm.Meta(type=alert.type, format=alert.format, mark=alert.mark),
            data=alert.data,
        )
        return sm.Alert(data=sm.ALERT_GENERIC, correlator=alert.correlator, items=[item])

    # -- authentication -----------------------------------------------------

    def _client_account(self):
        creds = self.account.client
        return AuthAccount.from_secret(self._client_scheme, creds.name, creds.secret,
                                       keep_secret=True)

    def _check_server(self, msg, body, hmac_header):
        """``(SyncHdr status, Chal or None, trusted)`` for the server's credentials."""
        creds = self.account.server
        scheme = creds.scheme
        if scheme == "none" or (self.server_authenticated and scheme != "hmac"):
            return OK, None, True
        hdr = msg.hdr
        verdict = verify_server_cred(
            AuthAccount.from_secret(scheme, creds.name, creds.secret), creds.nonce,
            cred=hdr.cred, loc_name=hdr.source.loc_name, hmac_header=hmac_header, body=body,
        )
        chal = None
        if scheme in ("md5", "hmac") or not verdict.ok:
            nonce = new_nonce(self.random_bytes, self.nonce_size) if scheme != "basic" else None
            # kept only once the Chal carrying it is really sent (see receive)
            self._offered_server_nonce = nonce
            chal = challenge(scheme, nonce)
        if verdict.ok:
            if not self.server_authenticated:
                self._note("server authenticated (%s)" % (scheme,))
            self.server_authenticated = True
            return verdict.status, chal, True
        self._server_failures += 1
        self.counters["server_auth_failures"] += 1
        self._note("server message %s not authenticated: %s" % (hdr.msg_id, verdict.reason))
        return verdict.status, chal, False

    def _take_statuses(self, msg):
        """Read the server's Statuses; "ok", "retry" (we were challenged) or "give_up"."""
        verdict = "ok"
        for status in msg.commands(sm.Status):
            self.server_statuses.append(status)
            if _is_hdr_status(status):
                answer = self._take_hdr_status(status)
                if answer != "ok" and verdict != "give_up":
                    verdict = answer
                continue
            sent = self._sent.get((status.msg_ref or str(self._msg_id), status.cmd_ref))
            if isinstance(sent, sm.Results) and status.data not in (OK, CHUNK_ACCEPTED):
                if self._packer.drop_results(sent.msg_ref, sent.cmd_ref):
                    self._note("server refused our Results for %s/%s: %d" % (
                        sent.msg_ref, sent.cmd_ref, status.data))
        return verdict

    def _take_hdr_status(self, status):
        scheme = nonce = None
        if status.chal is not None:
            try:
                scheme, nonce = parse_challenge(status.chal)
            except AuthError as error:
                self._note("server NextNonce not usable: %s" % (error,))
            if nonce is not None:
                self._client_nonce = nonce
                self._client_nonce_unsaved = True
        code = status.data
        if code == AUTHENTICATED:
            self.client_authenticated = True
            return "ok"
        if code not in _CHALLENGES:
            return "ok"
        self.client_authenticated = False
        self._challenges += 1
        self.counters["auth_retries"] += 1
        self._note("the server challenged us (%d%s)" % (code, ", " + scheme if scheme else ""))
        if self._challenges >= self.max_auth_attempts:
            return "give_up"
        if status.chal is not None:
            if scheme is None:
                self._note("the server asked for an unknown authentication scheme")
                return "give_up"
            self._client_scheme = scheme
        if self._client_scheme == "none":
            return "give_up"
        return "retry"

    def _save_client_nonce(self):
        self._client_nonce_unsaved = False
        self.account.client.nonce = self._client_nonce
        self._mirror(auth_data_path(self.tree, self.account, "CLCRED"), self._client_nonce)

    def _save_server_nonce(self, nonce):
        self.account.server.nonce = nonce
        self._mirror(auth_data_path(self.tree, self.account, "SRVCRED"), nonce)

    def _mirror(self, uri, nonce):
        if self.tree.exists(uri):
            self.tree.set(uri, nonce, "bin")

    # -- sending --------------------------------------------------------------

    def _hdr(self):
        self._msg_id += 1
        creds = self.account.client
        scheme = self._client_scheme
        cred = loc_name = None
        if scheme == "hmac":
            loc_name = creds.name
        elif scheme in ("md5", "basic") and not self.client_authenticated:
            cred = client_cred(self._client_account(), self._client_nonce)
            loc_name = creds.name
        meta = None
        if self._in_package1 and (self.max_msg_size or self.max_obj_size):
            meta = sm.Meta(max_msg_size=self.max_msg_size, max_obj_size=self.max_obj_size)
        return sm.SyncHdr(
            session_id=self.session_id, msg_id=str(self._msg_id),
            target=sm.LocRef(self.url), source=sm.LocRef(self.account.device_id, loc_name),
            ver_dtd=self.ver_dtd, ver_proto=self.ver_proto, cred=cred, meta=meta,
        )

    def _send(self, hdr_status, ask_next):
        hdr = self._hdr()
        first = [hdr_status] if hdr_status is not None else []
        trailer = [sm.Alert(data=sm.ALERT_NEXT_MESSAGE)] if ask_next else []
        limits = [n for n in (self._server_max_msg_size, self.max_send_size) if n]
        limit = min(limits) if limits else None
        body, progressed = self._packer.fill(hdr, first, limit, trailer)
        if not progressed:
            return self._fail("the server's MaxMsgSize (%s) leaves no room for our answers" % (
                limit,))
        final = not ask_next and not self._packer
        msg = sm.SyncML(hdr=hdr, body=body, final=final)
        data = encode_message(msg, self.encoding)
        if limit and len(data) > limit:
            self._note("message %s is %d bytes, over the limit %d" % (
                hdr.msg_id, len(data), limit))
        headers = {"Content-Type": CONTENT_TYPES[self.encoding],
                   "Accept": CONTENT_TYPES[self.encoding]}
        if self._client_scheme == "hmac":
            headers[HMAC_HEADER] = client_hmac_header(self._client_account(), self._client_nonce,
                                                      data)
        self._last_sent = body[len(first):len(body) - len(trailer)]
        for cmd in body:
            self._sent[(hdr.msg_id, cmd.cmd_id)] = cmd
            if isinstance(cmd, sm.Results):
                self.results.append(cmd)
                if cmd.items and cmd.items[-1].more_data:
                    self.counters["chunks_sent"] += 1
        self.transcript.append(("out", msg))
        self.counters["messages_sent"] += 1
        self.counters["bytes_sent"] += len(data)
        return Request(self.url, data, headers)

    # -- the end --------------------------------------------------------------

    def _note(self, text):
        self.log.append(text)

    def _finish(self, outcome):
        self.finished = True
        self.outcome = outcome
        self._note("session %s %s" % (self.session_id, outcome))
        return None

    def _fail(self, reason):
        self.error = reason
        self._note(reason)
        return self._finish("failed")
