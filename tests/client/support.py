"""Helpers for driving a :class:`ClientSession` with hand-written server messages.

Server messages are written as XML text here, the way a DM server would
put them on the wire; the credential values are computed with hashlib and
base64 directly (dm-security §3), independently of :mod:`dmgateway.auth`.
"""

import base64
import hashlib
import random

from dmgateway.client.account import Account, Credentials
from dmgateway.client.session import ClientSession
from dmgateway.codec import decode_message
from dmgateway.codec import syncml as sm

from tests.spec_values import (  # noqa: F401 (used by the client tests through this module)
    CLIENT_NAME, CLIENT_NONCE, CLIENT_SECRET, DEVICE_ID, NEXT_CLIENT_NONCE, NEXT_SERVER_NONCE,
    RESP_URI, SERVER_ID, SERVER_NAME, SERVER_NONCE, SERVER_SECRET, SERVER_URL,
)

DEVINFO = {"Man": "ExampleCorp", "Mod": "EX-100", "DmV": "1.2", "Lang": "en-US"}
DEVDETAIL = {"SwV": "4.2.1"}
XML_HEADERS = {"Content-Type": "application/vnd.syncml.dm+xml"}


# -- credentials, computed independently ------------------------------------

def _md5(data):
    return hashlib.md5(data).digest()


def _b64(data):
    return base64.b64encode(data)


def md5_cred(name, secret, nonce):
    return _b64(_md5(_b64(_md5(("%s:%s" % (name, secret)).encode())) + b":" + nonce)).decode()


def basic_cred(name, secret):
    return _b64(("%s:%s" % (name, secret)).encode()).decode()


def mac(name, secret, nonce, body):
    inner = _b64(_md5(("%s:%s" % (name, secret)).encode()))
    return _b64(_md5(inner + b":" + nonce + b":" + _b64(_md5(body)))).decode()


def server_hmac_header(nonce, body):
    return 'algorithm=MD5, username="%s", mac=%s' % (
        SERVER_NAME, mac(SERVER_NAME, SERVER_SECRET, nonce, body))


def b64(data):
    return base64.b64encode(data).decode()


# -- sessions ---------------------------------------------------------------

def seeded_random(seed=1):
    """A reproducible ``random_bytes``."""
    rng = random.Random(seed)
    return rng.randbytes


def make_account(client_scheme="md5", server_scheme="md5", client_nonce=CLIENT_NONCE,
                 server_nonce=SERVER_NONCE):
    return Account(
        device_id=DEVICE_ID, server_id=SERVER_ID, server_url=SERVER_URL,
        client=Credentials(client_scheme, CLIENT_NAME, CLIENT_SECRET, client_nonce),
        server=Credentials(server_scheme, SERVER_NAME, SERVER_SECRET, server_nonce),
    )


OPEN_ACL = "Add=*&Delete=*&Exec=*&Get=*&Replace=*"


def open_acl(tree, uri="."):
    """Give every server every right at ``uri`` (the real tree enforces ACLs).

    The default root ACL is ``Add=*&Get=*``: a node the device creates below
    it inherits that, so the server may not Replace, Delete or Exec it, and
    a node the server adds gets an ACL naming the server for Add, Delete and
    Replace only (dm-tree-objects §3.3).  Tests about commands, not ACLs,
    start from this open tree.
    """
    tree.set_acl(uri, OPEN_ACL)
    return tree


def make_session(account=None, **options):
    options.setdefault("random_bytes", seeded_random())
    options.setdefault("session_id", "1A2")
    options.setdefault("devinfo", DEVINFO)
    options.setdefault("devdetail", DEVDETAIL)
    return ClientSession(account or make_account(), **options)


# -- server messages --------------------------------------------------------

def md5_cred_xml(nonce):
    return (
        "<Cred><Meta><Type xmlns='syncml:metinf'>syncml:auth-md5</Type>"
        "<Format xmlns='syncml:metinf'>b64</Format></Meta><Data>%s</Data></Cred>"
        % (md5_cred(SERVER_NAME, SERVER_SECRET, nonce),)
    )


def server_message(body, msg_id, *, final=True, cred="", resp_uri=None, meta="",
                   session_id="1A2", loc_name=None):
    """A server message as XML bytes.  ``cred`` and ``meta`` are XML snippets."""
    source = "<LocURI>%s</LocURI>" % (SERVER_URL,)
    if loc_name:
        source += "<LocName>%s</LocName>" % (loc_name,)
    hdr = (
        "<SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>"
        "<SessionID>%s</SessionID><MsgID>%s</MsgID>"
        "<Target><LocURI>%s</LocURI></Target><Source>%s</Source>%s%s%s</SyncHdr>"
        % (session_id, msg_id, DEVICE_ID, source,
           "<RespURI>%s</RespURI>" % (resp_uri.replace("&", "&amp;"),) if resp_uri else "",
           cred, "<Meta>%s</Meta>" % (meta,) if meta else "")
    )
    return ('<SyncML xmlns="SYNCML:SYNCML1.2">%s<SyncBody>%s%s</SyncBody></SyncML>'
            % (hdr, body, "<Final/>" if final else "")).encode("utf-8")


def limits(max_msg_size=None, max_obj_size=None):
    meta = ""
    if max_msg_size:
        meta += "<MaxMsgSize xmlns='syncml:metinf'>%d</MaxMsgSize>" % (max_msg_size,)
    if max_obj_size:
        meta += "<MaxObjSize xmlns='syncml:metinf'>%d</MaxObjSize>" % (max_obj_size,)
    return meta


def chal_xml(scheme_type, nonce=None):
    next_nonce = ("<NextNonce xmlns='syncml:metinf'>%s</NextNonce>" % (b64(nonce),)
                  if nonce is not None else "")
    return ("<Chal><Meta><Type xmlns='syncml:metinf'>%s</Type>"
            "<Format xmlns='syncml:metinf'>b64</Format>%s</Meta></Chal>" % (scheme_type, next_nonce))


def status_xml(cmd_id, msg_ref, cmd_ref, cmd, code, chal=""):
    return ("<Status><CmdID>%s</CmdID><MsgRef>%s</MsgRef><CmdRef>%s</CmdRef><Cmd>%s</Cmd>%s"
            "<Data>%d</Data></Status>" % (cmd_id, msg_ref, cmd_ref, cmd, chal, code))


def hdr_status_xml(msg_ref, code=212, chal=""):
    return status_xml(1, msg_ref, 0, "SyncHdr", code, chal)


def item_xml(target=None, data=None, fmt=None, mtype=None, source=None, size=None, more=False):
    out = "<Item>"
    if target is not None:
        out += "<Target><LocURI>%s</LocURI></Target>" % (target,)
    if source is not None:
        out += "<Source><LocURI>%s</LocURI></Source>" % (source,)
    meta = ""
    if fmt:
        meta += "<Format xmlns='syncml:metinf'>%s</Format>" % (fmt,)
    if mtype:
        meta += "<Type xmlns='syncml:metinf'>%s</Type>" % (mtype,)
    if size is not None:
        meta += "<Size xmlns='syncml:metinf'>%d</Size>" % (size,)
    if meta:
        out += "<Meta>%s</Meta>" % (meta,)
    if data is not None:
        out += "<Data>%s</Data>" % (data,)
    if more:
        out += "<MoreData/>"
    return out + "</Item>"


def command_xml(name, cmd_id, *items, extra=""):
    return "<%s><CmdID>%s</CmdID>%s%s</%s>" % (name, cmd_id, extra, "".join(items), name)


def begin(session, commands="", *, final=True, meta="", alert=sm.ALERT_CLIENT_INITIATED):
    """Start ``session`` and answer package 1 as an md5 server that accepts it (212).

    ``commands`` (XML) follow the three Statuses; CmdIDs 4 and up are free.
    Returns the client's reply (a Request) or None.
    """
    session.start(alert=alert)
    body = (hdr_status_xml(1) + status_xml(2, 1, 1, "Alert", 200)
            + status_xml(3, 1, 2, "Replace", 200) + commands)
    message = server_message(body, 1, final=final, meta=meta,
                             cred=md5_cred_xml(session.account.server.nonce),
                             loc_name=SERVER_NAME)
    return session.receive(message, XML_HEADERS)


def follow(session, msg_id, commands="", *, final=True, meta="", code=200):
    """The next server message: Status for the client's last SyncHdr, then ``commands``."""
    last = session.transcript[-1][1].hdr.msg_id  # the client message being answered
    body = hdr_status_xml(last, code) + commands
    return session.receive(server_message(body, msg_id, final=final, meta=meta), XML_HEADERS)


# -- reading the client's messages --------------------------------------------

def decode(request):
    msg, _ = decode_message(request.body)
    return msg


def statuses(msg):
    """``[(Cmd, CmdRef, code)]`` of the Statuses in ``msg`` (a model or a Request)."""
    if not isinstance(msg, sm.SyncML):
        msg = decode(msg)
    return [(s.cmd, s.cmd_ref, s.data) for s in msg.commands(sm.Status)]


def status_for(msg, cmd_ref):
    if not isinstance(msg, sm.SyncML):
        msg = decode(msg)
    found = [s for s in msg.commands(sm.Status) if s.cmd_ref == cmd_ref]
    assert len(found) == 1, found
    return found[0]


def results(msg):
    if not isinstance(msg, sm.SyncML):
        msg = decode(msg)
    return msg.commands(sm.Results)
