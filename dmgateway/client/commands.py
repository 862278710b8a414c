"""Executing a DM server's commands against the client's management tree.

:class:`CommandRunner` takes one (authenticated) server message and returns
what it owes the server: a Status for every command -- containers first,
then the commands inside them -- the Results of every Get, and any alerts of
its own (1225 when an incoming large object was interrupted).  Nothing here
does I/O; UI alerts go through the injected policy (:mod:`.ui`).

Rules (dm-protocol §5.1, §6, §8):

* Atomic: Get, Exec and nested containers inside it are refused (500, the
  rest 215, the Atomic 507).  Otherwise commands run in order until one
  fails; then the tree is restored, the failed command keeps its code, the
  ones before it become 216, the ones after it 215 and the Atomic 507.
* Sequence: 200 for the Sequence; a cancelled (214) or refused (304) UI
  alert skips the rest of it (215).  A cancel at the top level skips the
  rest of the message.
* Large objects: chunks of an Add/Replace are buffered (213) and executed
  when the last one arrives, after the byte count is checked against the
  first chunk's Meta/Size (424 on mismatch, 413 over our MaxObjSize).
* Every command is checked against the ACLs for the server's ServerID
  (425 on denial); TNDS data (``application/vnd.syncml.dmtnds+xml|+wbxml``,
  inline ``MgmtTree`` or a document) is imported by Add/Replace, and
  ``?list=TNDS`` Gets return the ``MgmtTree`` inline.
"""

import base64
import binascii
import re
from dataclasses import dataclass, field, replace
from typing import List

from ..codec import syncml as sm
from ..codec import xml as xml_codec
from ..codec import XML
from ..codec.element import Node
from ..dm.commands import data_size
from . import ui
from ..tree import TNDS_XML, TNDS_WBXML
from .tree import TreeError

__all__ = ["CommandRunner", "Owed", "data_size", "result_item"]

OK = 200
ACCEPTED = 202
CHUNK_ACCEPTED = 213
CANCELLED = 214
NOT_EXECUTED = 215
ROLLED_BACK = 216
NOT_MODIFIED = 304
BAD_REQUEST = 400
NOT_ALLOWED = 405
NOT_SUPPORTED = 406
INCOMPLETE = 412
TOO_LARGE = 413
UNSUPPORTED_MEDIA = 415
SIZE_MISMATCH = 424
FAILED = 500
ATOMIC_FAILED = 507

_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
TNDS_TYPES = (TNDS_XML, TNDS_WBXML)
_SUCCESS = (OK, ACCEPTED)
_NOT_IN_ATOMIC = (sm.Get, sm.Exec, sm.Atomic, sm.Sequence, sm.UnknownCommand)


class _Refused(Exception):
    def __init__(self, status, reason=""):
        self.status = status
        self.reason = reason
        super().__init__(reason)


@dataclass
class Owed:
    """What one server message asks us to send back, in sending order."""

    statuses: List[sm.Status] = field(default_factory=list)
    results: List[sm.Results] = field(default_factory=list)
    alerts: List[sm.Alert] = field(default_factory=list)
    cancelled: bool = False  # a top-level UI alert was cancelled


@dataclass
class _Turn:
    msg_ref: str
    server_max_obj_size: object
    owed: Owed


class _Incoming:
    """An Add/Replace data item arriving in chunks."""

    def __init__(self, command, uri, first_item, meta, size):
        self.command = command
        self.uri = uri
        self.first_item = first_item
        self.meta = meta
        self.size = size
        self.parts = []
        self.nbytes = 0
        self.text = True

    def feed(self, data):
        if isinstance(data, (bytes, bytearray)):
            self.text = False
            raw = bytes(data)
        elif isinstance(data, str):
            raw = data.encode("utf-8", "surrogatepass")
        elif data is None:
            raw = b""
        else:
            raise _Refused(BAD_REQUEST, "chunk data is markup")
        self.parts.append(raw)
        self.nbytes += len(raw)

    def joined(self):
        raw = b"".join(self.parts)
        if self.text:
            return raw.decode("utf-8", "surrogatepass")
        return raw


def result_item(node_data, encoding, with_data=True):
    """The Results ``Item`` of one :class:`~.tree.NodeData`.

    Binary values go out as Format ``b64`` text over XML and as ``bin``
    (OPAQUE) over WBXML; interior nodes list their children ``a/b/c``.
    """
    value, fmt, mtype = node_data.value, node_data.format, node_data.type
    if isinstance(value, Node):  # a TNDS MgmtTree, carried inline
        return sm.Item(source=sm.LocRef(node_data.uri),
                       meta=sm.Meta(format="xml", type=mtype or TNDS_XML),
                       data=value if with_data else None)
    if fmt == "node":
        data = "/".join(value) if value is not None else None
        meta = sm.Meta(format="node", type=mtype or None)
    elif isinstance(value, (bytes, bytearray)) or fmt == "bin":
        if isinstance(value, str):
            value = value.encode("utf-8", "surrogatepass")
        value = bytes(value or b"")
        if encoding == XML:
            data, fmt = base64.b64encode(value).decode("ascii"), "b64"
        else:
            data, fmt = value, "bin"
        meta = sm.Meta(format=fmt, type=mtype or "application/octet-stream")
    elif encoding == XML and isinstance(value, str) and _NOT_XML_CHAR.search(value):
        # text XML cannot carry (control characters ...): its UTF-8 bytes as b64
        data = base64.b64encode(value.encode("utf-8", "surrogatepass")).decode("ascii")
        meta = sm.Meta(format="b64", type=mtype or "text/plain")
    else:
        data = "" if value is None else str(value)
        meta = sm.Meta(format=fmt or "chr", type=mtype or "text/plain")
    if not with_data:
        data = None
    return sm.Item(source=sm.LocRef(node_data.uri), meta=meta, data=data)


def _merged_meta(command_meta, item_meta):
    """Item Meta over command Meta, field by field."""
    if command_meta is None:
        return item_meta or sm.Meta()
    if item_meta is None:
        return command_meta
    merged = replace(command_meta)
    for name in ("type", "format", "mark", "size"):
        value = getattr(item_meta, name)
        if value is not None:
            setattr(merged, name, value)
    return merged


def _text(data):
    if data is None:
        return ""
    if isinstance(data, Node):
        return xml_codec.serialize(data).decode("utf-8")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).decode("utf-8", "replace")
    return data


def _uri(ref):
    if ref is None or not ref.loc_uri:
        raise _Refused(BAD_REQUEST, "Item without LocURI")
    return ref.loc_uri


def item_value(data, meta):
    """``(value, format, type)`` to store for an Item's data and effective Meta."""
    fmt = (meta.format or "chr").strip().lower()
    mtype = meta.type.strip() if meta.type else None
    if mtype in TNDS_TYPES:  # the tree reads Node, XML or WBXML documents
        if data is None or data == "":
            raise _Refused(BAD_REQUEST, "TNDS without data")
        return data, "xml", mtype
    if fmt == "node":
        return None, "node", mtype
    if isinstance(data, Node):
        return xml_codec.serialize(data).decode("utf-8"), fmt, mtype
    if data is None:
        data = ""
    if fmt == "b64":
        try:
            text = data.decode("ascii") if isinstance(data, (bytes, bytearray)) else data
            return base64.b64decode("".join(text.split()), validate=True), "bin", mtype
        except (UnicodeDecodeError, binascii.Error, ValueError):
            raise _Refused(BAD_REQUEST, "data is not base64") from None
    if fmt == "bin":
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        return bytes(data), "bin", mtype
    if isinstance(data, (bytes, bytearray)):
        try:
            return bytes(data).decode("utf-8"), fmt, mtype
        except UnicodeDecodeError:
            return bytes(data), "bin", mtype
    return data, fmt, mtype


class CommandRunner:
    """Runs server commands on ``tree``; keeps the incoming large object between messages."""

    def __init__(self, tree, *, server=None, ui_policy=None, encoding=XML, max_obj_size=None,
                 log=None, large_objects=True):
        self.tree = tree
        self.server = server  # the ServerID the ACLs are checked for (None: no ACLs)
        self.ui_policy = ui_policy or ui.default_policy
        self.encoding = encoding
        self.max_obj_size = max_obj_size
        self.large_objects = large_objects  # False: a chunk is taken as the whole value
        self.log = log or (lambda text: None)
        self.pending = None  # _Incoming
        self._in_atomic = False
        self.executed = []  # (command, uri, status) per item, for tests and logs

    # -- entry points -------------------------------------------------------

    def run(self, msg, server_max_obj_size=None):
        """The :class:`Owed` answers to the commands of server message ``msg``."""
        turn = _Turn(msg.hdr.msg_id, server_max_obj_size, Owed())
        skipping = False
        for cmd in msg.body:
            if isinstance(cmd, (sm.Status, sm.Results)):
                continue
            if self.pending is not None and not self._continues(cmd):
                self._interrupt(turn, "a new command came before the last chunk")
            if skipping:
                self._skip(cmd, turn)
                continue
            code = self._execute(cmd, turn, None)
            if code == CANCELLED and isinstance(cmd, sm.Alert):
                skipping = turn.owed.cancelled = True
        return turn.owed

    def end_of_package(self, msg_ref=""):
        """Alerts owed when the server's package ends (1225 for a half-received object)."""
        turn = _Turn(msg_ref, None, Owed())
        if self.pending is not None:
            self._interrupt(turn, "the server package ended before the last chunk")
        return turn.owed.alerts

    def refuse_all(self, msg, code):
        """Status ``code`` for every command of ``msg``, nothing executed."""
        turn = _Turn(msg.hdr.msg_id, None, Owed())
        for cmd in msg.body:
            if not isinstance(cmd, (sm.Status, sm.Results)):
                self._status(turn, cmd, code)
        return turn.owed.statuses

    # -- dispatch -----------------------------------------------------------

    def _execute(self, cmd, turn, container):
        if isinstance(cmd, sm.Atomic):
            return self._atomic(cmd, turn)
        if isinstance(cmd, sm.Sequence):
            return self._sequence(cmd, turn)
        if isinstance(cmd, sm.Alert):
            return self._alert(cmd, turn)
        if isinstance(cmd, sm.UnknownCommand):
            self.log("unsupported command %s" % (cmd.name,))
            return self._status(turn, cmd, BAD_REQUEST).data
        if isinstance(cmd, sm.ItemCommand):
            return self._item_command(cmd, turn)
        return None

    def _status(self, turn, cmd, code, targets=(), sources=(), items=()):
        name = cmd.name if isinstance(cmd, sm.UnknownCommand) else cmd.NAME
        status = sm.Status(msg_ref=turn.msg_ref, cmd_ref=cmd.cmd_id, cmd=name,
                           target_refs=list(targets), source_refs=list(sources), data=code,
                           items=list(items))
        turn.owed.statuses.append(status)
        return status

    def _skip(self, cmd, turn):
        self._status(turn, cmd, NOT_EXECUTED)
        if isinstance(cmd, sm.Container):
            for inner in cmd.commands:
                if not isinstance(inner, (sm.Status, sm.Results)):
                    self._skip(inner, turn)

    # -- containers -------------------------------------------------------

    def _atomic(self, cmd, turn):
        status = self._status(turn, cmd, OK)
        inner = [c for c in cmd.commands if not isinstance(c, (sm.Status, sm.Results))]
        if any(isinstance(c, _NOT_IN_ATOMIC) for c in inner):
            for c in inner:
                if isinstance(c, _NOT_IN_ATOMIC):
                    self._status(turn, c, FAILED)
                else:
                    self._skip(c, turn)
            status.data = ATOMIC_FAILED
            return ATOMIC_FAILED
        snapshot = self.tree.snapshot()
        pending = self.pending
        executed = []  # Status lists of the commands that succeeded
        failed = False
        for c in inner:
            if failed:
                self._skip(c, turn)
                continue
            start = len(turn.owed.statuses)
            self._in_atomic = True
            try:
                code = self._execute(c, turn, "Atomic")
            finally:
                self._in_atomic = False
            if code in _SUCCESS:
                executed.append(turn.owed.statuses[start:])
            else:
                failed = True
        if failed:
            self.tree.restore(snapshot)
            self.pending = pending  # no half-received object may outlive the Atomic
            for statuses in executed:
                for s in statuses:
                    s.data = ROLLED_BACK
            status.data = ATOMIC_FAILED
            self.log("Atomic %s rolled back" % (cmd.cmd_id,))
        return status.data

    def _sequence(self, cmd, turn):
        self._status(turn, cmd, OK)
        skipping = False
        for c in cmd.commands:
            if isinstance(c, (sm.Status, sm.Results)):
                continue
            if skipping:
                self._skip(c, turn)
                continue
            code = self._execute(c, turn, "Sequence")
            if isinstance(c, sm.Alert) and code in (CANCELLED, NOT_MODIFIED):
                skipping = True
        return OK

    # -- alerts -------------------------------------------------------------

    def _alert(self, cmd, turn):
        code = cmd.data
        if code in (sm.ALERT_NEXT_MESSAGE, sm.ALERT_NO_END_OF_DATA):
            return self._status(turn, cmd, OK).data
        if code not in ui.UI_ALERTS:
            return self._status(turn, cmd, NOT_SUPPORTED).data
        status, answers = self._ask_user(cmd)
        items = [sm.Item(data=answer) for answer in answers]
        self.executed.append(("Alert", str(code), status))
        return self._status(turn, cmd, status, items=items).data

    def _ask_user(self, cmd):
        items = cmd.items
        choices = [_text(item.data) for item in items[2:]]
        if len(items) < 2 or (cmd.data in (ui.SINGLE_CHOICE, ui.MULTIPLE_CHOICE) and not choices):
            return INCOMPLETE, []
        options = ui.parse_options(_text(items[0].data))
        text = _text(items[1].data)
        try:
            status, answers = self.ui_policy(cmd.data, options, text, choices)
            status = int(status)
            answers = [str(answer) for answer in (answers or ())]
        except Exception as error:  # the policy is caller code: its failure is ours
            self.log("UI policy failed on alert %s: %r" % (cmd.data, error))
            return FAILED, []
        return status, answers

    # -- item commands ------------------------------------------------------

    def _item_command(self, cmd, turn):
        if not cmd.items:
            return self._status(turn, cmd, INCOMPLETE).data
        handler = {
            "Get": self._get, "Add": self._add, "Replace": self._replace,
            "Delete": self._delete, "Copy": self._copy, "Exec": self._exec,
        }[cmd.NAME]
        outcomes = []  # (code, target, source)
        found = []
        for item in cmd.items:
            target = item.target.loc_uri if item.target is not None else None
            source = item.source.loc_uri if item.source is not None else None
            try:
                code = handler(cmd, item, turn, found)
            except TreeError as error:
                code = error.status
                self.log("%s %s: %s" % (cmd.NAME, target, error))
            except _Refused as error:
                code = error.status
                self.log("%s %s: %s %s" % (cmd.NAME, target, code, error.reason))
            self.executed.append((cmd.NAME, target, code))
            outcomes.append((code, target, source))
        codes = {code for code, _, _ in outcomes}
        if len(codes) == 1:
            self._status(turn, cmd, outcomes[0][0],
                         [t for _, t, _ in outcomes if t], [s for _, _, s in outcomes if s])
        else:
            for code, target, source in outcomes:
                self._status(turn, cmd, code, [target] if target else [],
                             [source] if source else [])
        if found:
            turn.owed.results.append(sm.Results(msg_ref=turn.msg_ref, cmd_ref=cmd.cmd_id,
                                                items=found))
        for code, _, _ in outcomes:
            if code not in _SUCCESS:
                return code
        return outcomes[0][0]

    def _get(self, cmd, item, turn, found):
        uri = _uri(item.target)
        query = uri.partition("?")[2]
        found_data = self.tree.get(uri, server=self.server)
        if isinstance(found_data, list):  # ?list=Struct / StructData
            with_data = query == "list=StructData"
            items = [result_item(nd, self.encoding, with_data) for nd in found_data]
        else:
            items = [result_item(found_data, self.encoding)]
        limit = turn.server_max_obj_size
        if limit and any(data_size(i.data) > limit for i in items):
            raise _Refused(TOO_LARGE, "value larger than the server's MaxObjSize")
        found.extend(items)
        return OK

    def _add(self, cmd, item, turn, found):
        return self._store(cmd, item, self.tree.add)

    def _replace(self, cmd, item, turn, found):
        return self._store(cmd, item, self.tree.replace)

    def _store(self, cmd, item, write):
        uri = _uri(item.target)
        meta = _merged_meta(cmd.meta, item.meta)
        data = item.data
        if item.more_data and self._in_atomic:
            raise _Refused(BAD_REQUEST, "a large object cannot be part of an Atomic")
        if item.more_data and not self.large_objects:
            self.log("chunk for %s stored as the whole value (no large object support)" % (uri,))
        elif item.more_data or self.pending is not None:
            data, meta = self._chunk(cmd, item, meta, uri)
            if data is None:
                return CHUNK_ACCEPTED
        elif self.max_obj_size and data_size(data) > self.max_obj_size:
            raise _Refused(TOO_LARGE, "object larger than our MaxObjSize")
        value, fmt, mtype = item_value(data, meta)
        write(uri, value, fmt, mtype, server=self.server)
        return OK

    def _chunk(self, cmd, item, meta, uri):
        """Buffer one chunk: ``(None, None)`` while more follow, else the whole data."""
        incoming = self.pending
        if incoming is not None and (incoming.uri, incoming.command) != (uri, cmd.NAME):
            self.pending = None
            raise _Refused(BAD_REQUEST, "a second object started before the first ended")
        if incoming is None:
            size = meta.size
            if size is not None and self.max_obj_size and size > self.max_obj_size:
                raise _Refused(TOO_LARGE, "announced size %d over our MaxObjSize" % (size,))
            incoming = self.pending = _Incoming(cmd.NAME, uri, item, meta, size)
        try:
            incoming.feed(item.data)
        except _Refused:
            self.pending = None
            raise
        over = incoming.size if incoming.size is not None else self.max_obj_size
        if over and incoming.nbytes > over:
            self.pending = None
            code = SIZE_MISMATCH if incoming.size is not None else TOO_LARGE
            raise _Refused(code, "more data than announced")
        if item.more_data:
            return None, None
        self.pending = None
        if incoming.size is not None and incoming.nbytes != incoming.size:
            raise _Refused(SIZE_MISMATCH, "got %d bytes, Size said %d" % (
                incoming.nbytes, incoming.size))
        return incoming.joined(), incoming.meta

    def _continues(self, cmd):
        """Is ``cmd`` the next chunk of the pending large object?"""
        pending = self.pending
        if not isinstance(cmd, (sm.Add, sm.Replace)) or cmd.NAME != pending.command:
            return False
        first = cmd.items[0] if cmd.items else None
        return (first is not None and first.target is not None
                and first.target.loc_uri == pending.uri)

    def _interrupt(self, turn, why):
        incoming, self.pending = self.pending, None
        first = incoming.first_item
        turn.owed.alerts.append(sm.Alert(data=sm.ALERT_NO_END_OF_DATA,
                                         items=[sm.Item(target=first.target, source=first.source)]))
        self.log("large object for %s dropped: %s" % (incoming.uri, why))

    def _delete(self, cmd, item, turn, found):
        self.tree.delete(_uri(item.target), server=self.server)
        return OK

    def _copy(self, cmd, item, turn, found):
        self.tree.copy(_uri(item.target), _uri(item.source), server=self.server)
        return OK

    def _exec(self, cmd, item, turn, found):
        data = item.data if isinstance(item.data, (bytes, bytearray)) else _text(item.data)
        return self.tree.exec(_uri(item.target), data, cmd.correlator, server=self.server)
