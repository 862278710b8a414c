"""SyncML messages written straight from the model to XML or WBXML.

The reference writer maps the model to a :class:`~.element.Node` tree
(:func:`.mapping.message_to_node`) and serializes the tree; every reply the
gateway sends, and every measure of a reply against the client's MaxMsgSize,
went through both.  This module walks the model once and appends
precompiled fragments of each tag (``<CmdID>``/``</CmdID>`` in XML, the
token forms in WBXML) to one list of ``str`` pieces, joined and encoded
once.  It writes the very same bytes as the reference path, element order
(the SyncML 1.2 DTD's, as in :mod:`.mapping`), namespace declarations and
lazy WBXML code-page switches included.

It is a fast path, not a second implementation of the rules: whatever is
not the plain model written the plain way (a value of the wrong type, a
text the wire format must refuse or escape specially, embedded markup
(:class:`~.element.Node`) anywhere, an element the vocabulary has no token
for) raises :class:`Unhandled`, and the codec writes that message through
the reference path, which gives the same bytes or the same error with its
element path.

The common messages are written by an optional C accelerator into the same
pieces (see :func:`_load_c_write`); it leaves anything else to this module.
"""

import base64

from . import mapping_reader
from .syncml import (
    Add, Alert, Atomic, Chal, Copy, Cred, Delete, Exec, Get, Item, LocRef, Meta, META_FIELDS,
    Replace, Results, Sequence, Status, SyncHdr, SyncML,
)

__all__ = ["Unhandled", "Tags", "Dialect", "write", "xml_dialect"]


class Unhandled(Exception):
    """The message is not one the fast path writes: use the reference path."""


class Tags(dict):
    """Fragments by element name; a name without fragments is :class:`Unhandled`."""

    def __missing__(self, name):
        raise Unhandled(name)


class Dialect:
    """The fragments and text rules of one wire format (XML or one WBXML vocabulary).

    ``open``/``close``/``empty`` map an element name to its start, end and
    empty-element fragments; ``leaf`` to ``(before, after)`` the text of an
    element holding text.  Metinf names have fragments of their own
    (``meta_*``) because both formats mark the namespace change.
    ``text(value)`` returns the piece for a non-empty ``str`` value (or raises
    :class:`Unhandled`); ``data_bytes(out, value)`` appends a ``<Data>``
    element holding ``bytes``.  ``meta_switch`` is true for WBXML: after a
    Meta with children the code page is MetInf's until the next SyncML tag.
    """

    def __init__(self, root_open, syncml, metinf, text, data_bytes, meta_switch, close_piece):
        self.root_open = root_open
        (self.open, self.close, self.empty, self.leaf) = syncml
        (self.meta_open, self.meta_empty, self.meta_leaf) = metinf
        self.text = text
        self.data_bytes = data_bytes
        self.meta_switch = meta_switch
        self.close_piece = close_piece
        self.known = {name: {} for name in _KNOWN_NAMES if name in self.leaf}
        # what the C writer reads (see _c_write)
        self.c_tables = (root_open, self.open, self.close, self.empty, self.leaf, self.meta_open,
                         self.meta_empty, self.meta_leaf, text, data_bytes, meta_switch)


#: element names of the SyncML namespace the fast path writes
SYNCML_NAMES = (
    "SyncML", "SyncHdr", "SyncBody", "VerDTD", "VerProto", "SessionID", "MsgID", "Target",
    "Source", "LocURI", "LocName", "RespURI", "NoResp", "Cred", "Meta", "Data", "Final",
    "CmdID", "MsgRef", "CmdRef", "Cmd", "TargetRef", "SourceRef", "Chal", "Item", "MoreData",
    "Correlator", "Status", "Results", "Alert", "Add", "Replace", "Delete", "Copy", "Get", "Exec",
    "Atomic", "Sequence",
)
#: element names of the MetInf namespace the fast path writes
METINF_NAMES = tuple(name for name, _, _ in META_FIELDS) + ("EMI",)


def write(msg, dialect):
    """The body pieces of ``msg`` (a list of ``str``), or :class:`Unhandled`."""
    if _c_write is not None:  # the common messages, written in C (None: any other)
        written = _c_write(msg, dialect.c_tables)
        if written is not None:
            out, ends = written
            if ends:
                _switch_back(out, ends, dialect.close_piece, dialect.meta_switch)
            return out
    if msg.__class__ is not SyncML:
        raise Unhandled("SyncML")
    out = []
    add = out.append
    ends = [] if dialect.meta_switch else None  # where a Meta with children ended
    add(dialect.root_open)
    _hdr(out, msg.hdr, dialect, ends)
    open_at = len(out)
    add(dialect.open["SyncBody"])
    _commands(out, msg.body, dialect, ends)
    if msg.final:
        add(dialect.empty["Final"])
    if len(out) == open_at + 1:
        out[open_at] = dialect.empty["SyncBody"]
    else:
        add(dialect.close["SyncBody"])
    add(dialect.close["SyncML"])
    if ends:
        _switch_back(out, ends, dialect.close_piece, dialect.meta_switch)
    return out


def _switch_back(out, ends, close_piece, switch):
    """Put the WBXML switch back to page 0 before the first tag after each Meta
    (lazily, like the reference writer: END tokens need no page)."""
    for index in reversed(ends):
        size = len(out)
        while index < size and out[index] == close_piece:
            index += 1
        if index < size:
            out.insert(index, switch)


def _value(out, dialect, name, value):
    """A required text element (the reference writes "" as an empty element)."""
    if value.__class__ is not str:
        raise Unhandled(name)
    if value:
        known = dialect.known.get(name)
        piece = known.get(value) if known is not None else None
        if piece is None:
            before, after = dialect.leaf[name]
            piece = before + dialect.text(value) + after
            if len(value) <= _KNOWN_LENGTH and name in _KNOWN_NAMES and len(known) < _KNOWN_COUNT:
                known[value] = piece
        out.append(piece)
    else:
        out.append(dialect.empty[name])


#: the elements whose values repeat from message to message (versions, command
#: names, references): each short value's whole element is kept once written,
#: at most _KNOWN_COUNT values per element
_KNOWN_NAMES = frozenset(("VerDTD", "VerProto", "MsgID", "CmdID", "MsgRef", "CmdRef", "Cmd", "SessionID",
                          "TargetRef", "SourceRef", "LocURI", "LocName"))
_KNOWN_LENGTH = 64
_KNOWN_COUNT = 256


def _optional(out, dialect, name, value):
    if value is not None:
        _value(out, dialect, name, value)


def _hdr(out, hdr, dialect, ends):
    if hdr.__class__ is not SyncHdr:
        raise Unhandled("SyncHdr")
    out.append(dialect.open["SyncHdr"])
    _value(out, dialect, "VerDTD", hdr.ver_dtd)
    _value(out, dialect, "VerProto", hdr.ver_proto)
    _value(out, dialect, "SessionID", hdr.session_id)
    _value(out, dialect, "MsgID", hdr.msg_id)
    _locref(out, dialect, "Target", hdr.target)
    _locref(out, dialect, "Source", hdr.source)
    _optional(out, dialect, "RespURI", hdr.resp_uri)
    if hdr.no_resp:
        out.append(dialect.empty["NoResp"])
    if hdr.cred is not None:
        _cred(out, dialect, hdr.cred, ends)
    if hdr.meta is not None:
        _meta(out, dialect, hdr.meta, ends)
    out.append(dialect.close["SyncHdr"])


def _locref(out, dialect, name, ref):
    if ref.__class__ is not LocRef:
        raise Unhandled(name)
    out.append(dialect.open[name])
    _value(out, dialect, "LocURI", ref.loc_uri)
    if ref.loc_name is not None:
        _value(out, dialect, "LocName", ref.loc_name)
    out.append(dialect.close[name])


def _cred(out, dialect, cred, ends):
    if cred.__class__ is not Cred:
        raise Unhandled("Cred")
    out.append(dialect.open["Cred"])
    if cred.meta is not None:
        _meta(out, dialect, cred.meta, ends)
    _value(out, dialect, "Data", cred.data)
    out.append(dialect.close["Cred"])


def _meta(out, dialect, meta, ends):
    if meta.__class__ is not Meta or meta.extra:
        raise Unhandled("Meta")
    add = out.append
    start = len(out)
    add(dialect.meta_open)
    leaf, empty, text = dialect.meta_leaf, dialect.meta_empty, dialect.text
    for name, attr, is_int in META_FIELDS:
        value = getattr(meta, attr)
        if value is None:
            continue
        if is_int:
            if value.__class__ is not int or value < 0:
                raise Unhandled(name)
            value = str(value)
        elif value.__class__ is not str:
            raise Unhandled(name)
        if value:
            before, after = leaf[name]
            add(before)
            add(text(value))
            add(after)
        else:
            add(empty[name])
    for value in meta.emi:
        if value.__class__ is not str:
            raise Unhandled("EMI")
        if value:
            before, after = leaf["EMI"]
            add(before)
            add(text(value))
            add(after)
        else:
            add(empty["EMI"])
    if len(out) == start + 1:
        out[start] = dialect.empty["Meta"]
        return
    add(dialect.close["Meta"])
    if ends is not None:
        ends.append(len(out))


def _items(out, dialect, items, ends):
    for item in items:
        if item.__class__ is not Item:
            raise Unhandled("Item")
        start = len(out)
        out.append(dialect.open["Item"])
        if item.target is not None:
            _locref(out, dialect, "Target", item.target)
        if item.source is not None:
            _locref(out, dialect, "Source", item.source)
        if item.meta is not None:
            _meta(out, dialect, item.meta, ends)
        data = item.data
        if data.__class__ is str:
            _value(out, dialect, "Data", data)
        elif data.__class__ is bytes:
            dialect.data_bytes(out, data)
        elif data is not None:
            raise Unhandled("Data")  # embedded markup, or a type the reference refuses
        if item.more_data:
            out.append(dialect.empty["MoreData"])
        if len(out) == start + 1:
            out[start] = dialect.empty["Item"]
        else:
            out.append(dialect.close["Item"])


def _int(out, dialect, name, value):
    if value.__class__ is not int or value < 0:
        raise Unhandled(name)
    before, after = dialect.leaf[name]
    out.append(before)
    out.append(str(value))
    out.append(after)


def _status(out, dialect, cmd, ends):
    _optional(out, dialect, "MsgRef", cmd.msg_ref)
    _value(out, dialect, "CmdRef", cmd.cmd_ref)
    _value(out, dialect, "Cmd", cmd.cmd)
    for value in cmd.target_refs:
        _value(out, dialect, "TargetRef", value)
    for value in cmd.source_refs:
        _value(out, dialect, "SourceRef", value)
    if cmd.cred is not None:
        _cred(out, dialect, cmd.cred, ends)
    if cmd.chal is not None:
        if cmd.chal.__class__ is not Chal:
            raise Unhandled("Chal")
        out.append(dialect.open["Chal"])
        _meta(out, dialect, cmd.chal.meta, ends)
        out.append(dialect.close["Chal"])
    _int(out, dialect, "Data", cmd.data)
    _items(out, dialect, cmd.items, ends)


def _results(out, dialect, cmd, ends):
    _optional(out, dialect, "MsgRef", cmd.msg_ref)
    _value(out, dialect, "CmdRef", cmd.cmd_ref)
    if cmd.meta is not None:
        _meta(out, dialect, cmd.meta, ends)
    for value in cmd.target_refs:
        _value(out, dialect, "TargetRef", value)
    for value in cmd.source_refs:
        _value(out, dialect, "SourceRef", value)
    _items(out, dialect, cmd.items, ends)


def _alert(out, dialect, cmd, ends):
    if cmd.no_resp:
        out.append(dialect.empty["NoResp"])
    if cmd.cred is not None:
        _cred(out, dialect, cmd.cred, ends)
    if cmd.data is not None:
        _int(out, dialect, "Data", cmd.data)
    _optional(out, dialect, "Correlator", cmd.correlator)
    _items(out, dialect, cmd.items, ends)


def _container(out, dialect, cmd, ends):
    if cmd.no_resp:
        out.append(dialect.empty["NoResp"])
    if cmd.meta is not None:
        _meta(out, dialect, cmd.meta, ends)
    _commands(out, cmd.commands, dialect, ends)


def _item_command(out, dialect, cmd, ends):
    if cmd.no_resp:
        out.append(dialect.empty["NoResp"])
    if cmd.cred is not None:
        _cred(out, dialect, cmd.cred, ends)
    if cmd.meta is not None:
        _meta(out, dialect, cmd.meta, ends)
    if cmd.__class__ is Exec:
        _optional(out, dialect, "Correlator", cmd.correlator)
    _items(out, dialect, cmd.items, ends)


_CHILDREN = {
    Status: _status, Results: _results, Alert: _alert, Atomic: _container, Sequence: _container,
    Add: _item_command, Replace: _item_command, Delete: _item_command, Copy: _item_command,
    Get: _item_command, Exec: _item_command,
}


def _commands(out, commands, dialect, ends):
    children = _CHILDREN
    for cmd in commands:
        write_children = children.get(cmd.__class__)
        if write_children is None:
            raise Unhandled("command")  # UnknownCommand, a subclass, not a command
        name = cmd.NAME
        out.append(dialect.open[name])
        _value(out, dialect, "CmdID", cmd.cmd_id)
        write_children(out, dialect, cmd, ends)
        out.append(dialect.close[name])


# -- the XML dialect ---------------------------------------------------------


_XML_METINF = ' xmlns="syncml:metinf"'


def xml_dialect(syncml_uri, text):
    """The XML fragments for root namespace ``syncml_uri``; ``text`` escapes a value."""
    names = SYNCML_NAMES
    syncml = (
        Tags({n: "<%s>" % n for n in names}),
        Tags({n: "</%s>" % n for n in names}),
        Tags({n: "<%s/>" % n for n in names}),
        Tags({n: ("<%s>" % n, "</%s>" % n) for n in names}),
    )
    metinf = (
        "<Meta>",
        Tags({n: "<%s%s/>" % (n, _XML_METINF) for n in METINF_NAMES}),
        Tags({n: ("<%s%s>" % (n, _XML_METINF), "</%s>" % n) for n in METINF_NAMES}),
    )
    return Dialect('<SyncML xmlns="%s">' % (syncml_uri,), syncml, metinf, text, _xml_data_bytes,
                   None, None)


def _xml_data_bytes(out, data):
    if data:
        out.append("<Data>%s</Data>" % (base64.b64encode(data).decode("ascii"),))
    else:
        out.append("<Data/>")


# The optional C accelerator (``_model_mapping.h``, built into
# ``_wbxml_speedups``, set up with the model classes by :mod:`.mapping_reader`)
# writes the same pieces for the common messages (a value element's start,
# text and end may be three pieces where this module joins them: the same
# string once joined) and answers None for anything else, which this module
# then writes or refuses as always.  DMGW_PURE_MODEL=1 keeps it unused.
def _load_c_write():
    if mapping_reader._c_map is None:  # not built, not set up, or DMGW_PURE_MODEL=1
        return None
    try:
        from ._wbxml_speedups import write_model
    except ImportError:  # built before it had one
        return None
    return write_model


_c_write = _load_c_write()
