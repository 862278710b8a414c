"""A scripted DM client for driving :class:`ServerSession` in tests.

Every message goes through a real codec (XML by default, or WBXML) both
ways: the client model is encoded, the bytes are decoded again and handed to
the session with the exact body (so MD5/HMAC work on real bytes), and every
reply is measured with the same encoder against the client's MaxMsgSize.

Values are those of dm-protocol §10 / dm-security §5.
"""

import itertools

from dmgateway.auth.credentials import basic_value, hmac_mac, md5_value, parse_hmac_header, user_hash
from dmgateway.auth.nonce import decode_nonce
from dmgateway.auth.verify import AuthAccount
from dmgateway.codec import syncml as sm
from dmgateway.codec import xml
from dmgateway.dm.effects import DeviceState
from dmgateway.dm.session import ServerSession

from tests.spec_values import (  # noqa: F401 (used by the engine tests through this module)
    CLIENT_NAME, CLIENT_NONCE, CLIENT_SECRET, DEVICE_ID, RESP_URI, SERVER_ID, SERVER_NAME,
    SERVER_NONCE, SERVER_SECRET,
)
from tests.spec_values import SERVER_URL as SERVER_URI

DEVINFO = {"DevId": DEVICE_ID, "Man": "ExampleCorp", "Mod": "EX-100", "DmV": "1.2", "Lang": "en-US"}


def counting_random(start=0):
    """A deterministic ``random_bytes``: consecutive byte values."""
    counter = itertools.count(start)
    return lambda size: bytes(next(counter) % 256 for _ in range(size))


def measure(msg):
    return len(xml.encode(msg))


def make_device(client_scheme="md5", server_scheme="md5", client_nonce=CLIENT_NONCE,
                server_nonce=SERVER_NONCE):
    return DeviceState(
        device_id=DEVICE_ID,
        server_id=SERVER_ID,
        client=AuthAccount.from_secret(client_scheme, CLIENT_NAME, CLIENT_SECRET),
        client_nonce=client_nonce,
        server=AuthAccount.from_secret(server_scheme, SERVER_NAME, SERVER_SECRET, keep_secret=True),
        server_nonce=server_nonce,
    )


def make_session(device=None, jobs=(), **options):
    options.setdefault("server_uri", SERVER_URI)
    options.setdefault("resp_uri", RESP_URI)
    options.setdefault("random_bytes", counting_random())
    options.setdefault("encode", xml.encode)
    options.setdefault("measure", measure)
    return ServerSession(device or make_device(), list(jobs), **options)


def devinfo_replace(cmd_id="2", values=DEVINFO):
    items = [
        sm.Item(source=sm.LocRef("./DevInfo/" + key), meta=sm.Meta(format="chr", type="text/plain"),
                data=value)
        for key, value in values.items()
    ]
    return sm.Replace(cmd_id=cmd_id, items=items)


def server_commands(reply):
    """The commands of a reply other than Status (Atomic and its inner commands too)."""
    found = []
    for cmd in reply.body:
        if isinstance(cmd, sm.Status):
            continue
        found.append(cmd)
        if isinstance(cmd, sm.Container):
            found.extend(cmd.commands)
    return found


def statuses(reply):
    return [cmd for cmd in reply.body if isinstance(cmd, sm.Status)]


def hdr_status(reply):
    first = reply.body[0]
    assert isinstance(first, sm.Status) and first.cmd_ref == "0" and first.cmd == "SyncHdr"
    return first


def status_for(reply, cmd_ref):
    return next(cmd for cmd in statuses(reply) if cmd.cmd_ref == cmd_ref)


class Client:
    """One device talking to one session.

    ``scheme`` is how it authenticates ("md5", "basic", "hmac", "none");
    ``nonce`` the client nonce it believes current.  ``send`` returns the
    Outcome; ``answer`` builds the usual package 3 for a reply.
    """

    def __init__(self, session, *, scheme="md5", name=CLIENT_NAME, secret=CLIENT_SECRET,
                 nonce=CLIENT_NONCE, server_nonce=SERVER_NONCE, session_id="1A2",
                 max_msg_size=None, max_obj_size=None, ver_dtd="1.2", ver_proto="DM/1.2",
                 codec=xml):
        self.session = session
        self.codec = codec  # the session must measure with the same codec
        self.scheme = scheme
        self.name, self.secret = name, secret
        self.nonce = nonce
        self.server_nonce = server_nonce
        self.session_id = session_id
        self.max_msg_size = max_msg_size
        self.max_obj_size = max_obj_size
        self.ver_dtd, self.ver_proto = ver_dtd, ver_proto
        self.msg_id = 0
        self.authenticated = False
        self.replies = []
        self.last_reply_msg_id = None
        self.resp_uri = None

    # -- building messages ---------------------------------------------

    def cred(self):
        uhash = user_hash(self.name, self.secret)
        if self.scheme == "md5":
            return sm.Cred(sm.Meta(type="syncml:auth-md5", format="b64"), md5_value(uhash, self.nonce))
        if self.scheme == "basic":
            return sm.Cred(sm.Meta(type="syncml:auth-basic", format="b64"),
                           basic_value(self.name, self.secret))
        return None

    def header(self, cred=None, meta=True):
        self.msg_id += 1
        meta_value = None
        if meta and (self.max_msg_size or self.max_obj_size):
            meta_value = sm.Meta(max_msg_size=self.max_msg_size, max_obj_size=self.max_obj_size)
        if cred is None and not self.authenticated:
            cred = self.cred()
        return sm.SyncHdr(
            session_id=self.session_id,
            msg_id=str(self.msg_id),
            target=sm.LocRef(self.resp_uri or SERVER_URI),
            source=sm.LocRef(DEVICE_ID, self.name if self.scheme in ("md5", "hmac") else None),
            ver_dtd=self.ver_dtd,
            ver_proto=self.ver_proto,
            cred=cred,
            meta=meta_value,
        )

    def package1(self, alert=sm.ALERT_CLIENT_INITIATED, extra=()):
        return [sm.Alert(cmd_id="1", data=alert), devinfo_replace("2"), *extra]

    def hdr_answer(self, reply, code=212, chal=None):
        hdr = reply.hdr
        return sm.Status(cmd_id="1", msg_ref=hdr.msg_id, cmd_ref="0", cmd="SyncHdr",
                         target_refs=[hdr.target.loc_uri], source_refs=[hdr.source.loc_uri],
                         chal=chal, data=code)

    def answer(self, reply, tree=None, codes=None, items=None, hdr_code=212, extra=()):
        """Statuses for every server command (200 unless ``codes[target or CmdID]``),
        Results for every successful Get from ``tree``, then ``extra``."""
        tree = tree or {}
        codes = codes or {}
        items = items or {}
        body = [self.hdr_answer(reply, hdr_code)]
        results = []
        ids = itertools.count(2)
        for cmd in server_commands(reply):
            target = _target(cmd)
            code = codes.get(cmd.cmd_id, codes.get(target, 200))
            if isinstance(cmd, sm.Alert) and cmd.data in (sm.ALERT_NEXT_MESSAGE, sm.ALERT_NO_END_OF_DATA):
                code = 200
            status = sm.Status(cmd_id=str(next(ids)), msg_ref=reply.hdr.msg_id, cmd_ref=cmd.cmd_id,
                               cmd=cmd.NAME, data=code,
                               target_refs=[target] if target else [],
                               items=[sm.Item(data=value) for value in items.get(cmd.cmd_id, ())])
            body.append(status)
            if isinstance(cmd, sm.Get) and code == 200:
                results.append(sm.Results(
                    msg_ref=reply.hdr.msg_id, cmd_ref=cmd.cmd_id,
                    items=[sm.Item(source=sm.LocRef(target), meta=sm.Meta(format="chr", type="text/plain"),
                                   data=tree.get(target, ""))]))
        for result in results:
            result.cmd_id = str(next(ids))
            body.append(result)
        for cmd in extra:
            cmd.cmd_id = str(next(ids))
            body.append(cmd)
        return body

    # -- talking -------------------------------------------------------

    def send(self, body, final=True, cred=None, hdr=None, hmac_header=None, raw=None):
        """Encode, decode and hand one message to the session; check the reply."""
        msg = sm.SyncML(hdr=hdr or self.header(cred=cred), body=list(body), final=final)
        data = raw if raw is not None else self.codec.encode(msg)
        if hmac_header is None and self.scheme == "hmac":
            mac = hmac_mac(user_hash(self.name, self.secret), self.nonce, data)
            hmac_header = 'algorithm=MD5, username="%s", mac=%s' % (self.name, mac)
        outcome = self.session.handle(self.codec.decode(data), body=data, hmac_header=hmac_header)
        self._check(outcome)
        return outcome

    def _check(self, outcome):
        reply = outcome.reply
        self.replies.append(reply)
        encoded = self.codec.encode(reply)
        if outcome.body is not None:
            assert outcome.body == encoded
        if self.max_msg_size:
            assert len(encoded) <= self.max_msg_size, (len(encoded), self.max_msg_size)
        assert self.codec.decode(encoded) == reply  # the reply is well-formed and round-trips
        ids = [cmd.cmd_id for cmd in _all_commands(reply.body)]
        assert len(ids) == len(set(ids)), "CmdIDs must be unique in a message: %r" % (ids,)
        if outcome.hmac_header is not None:
            header = parse_hmac_header(outcome.hmac_header)
            expected = hmac_mac(user_hash(SERVER_NAME, SERVER_SECRET), self.server_nonce, encoded)
            assert header.mac == expected and header.username == SERVER_NAME
        status = hdr_status(reply)
        if status.chal is not None and status.chal.meta.next_nonce:
            self.nonce = decode_nonce(status.chal.meta.next_nonce)
        if status.data == 212:
            self.authenticated = True
        self.last_reply_msg_id = reply.hdr.msg_id
        self.resp_uri = reply.hdr.resp_uri  # where the next message goes


def _target(cmd):
    items = getattr(cmd, "items", None)
    if items and items[0].target is not None:
        return items[0].target.loc_uri
    return None


def _all_commands(body):
    for cmd in body:
        yield cmd
        if isinstance(cmd, sm.Container):
            yield from _all_commands(cmd.commands)
