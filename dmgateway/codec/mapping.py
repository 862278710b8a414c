"""Map the SyncML message model to :class:`~.element.Node` trees and back.

Both wire codecs (XML and WBXML) go through this module, so they agree on
what a message means.  (To write a plain message they take the shortcut of
:mod:`.model_writer`, which writes the bytes this tree would give and falls
back to it for anything else: the order and the rules here are the reference
it is tested against.)  This module writes (model -> tree);
:mod:`.mapping_reader` reads (tree -> model, tolerant of what devices send)
and its public functions are re-exported here.

The writer is strict: elements come out in the order of the SyncML 1.2 DTD
(dm-protocol §3.1, §6.1), every metinf element in namespace ``MetInf``, and a
model value of the wrong type raises :class:`~.errors.ModelError`.
"""

from .element import NS_METINF, Node
from .errors import ModelError
from .mapping_reader import (
    node_to_command,
    node_to_item,
    node_to_message,
    node_to_meta,
)
from .syncml import (
    Alert,
    Chal,
    Container,
    Cred,
    Exec,
    Item,
    ItemCommand,
    LocRef,
    Meta,
    META_FIELDS,
    Results,
    Status,
    SyncHdr,
    SyncML,
    UnknownCommand,
)

__all__ = [
    "message_to_node",
    "node_to_message",
    "command_to_node",
    "node_to_command",
    "meta_to_node",
    "node_to_meta",
    "item_to_node",
    "node_to_item",
]


# -- writer ---------------------------------------------------------------


def message_to_node(msg):
    """The ``<SyncML>`` element tree of ``msg``."""
    _expect(msg, SyncML, "SyncML")
    root = Node("SyncML")
    root.append(_hdr_to_node(msg.hdr, "SyncML/SyncHdr"))
    body = root.add("SyncBody")
    _commands_to_nodes(body, msg.body, "SyncML/SyncBody")
    if msg.final:
        body.add("Final")
    return root


def _hdr_to_node(hdr, path):
    _expect(hdr, SyncHdr, path)
    node = Node("SyncHdr")
    _add_value(node, "VerDTD", hdr.ver_dtd, path)
    _add_value(node, "VerProto", hdr.ver_proto, path)
    _add_value(node, "SessionID", hdr.session_id, path)
    _add_value(node, "MsgID", hdr.msg_id, path)
    node.append(_locref_to_node("Target", hdr.target, path + "/Target"))
    node.append(_locref_to_node("Source", hdr.source, path + "/Source"))
    _add_value(node, "RespURI", hdr.resp_uri, path, optional=True)
    if hdr.no_resp:
        node.add("NoResp")
    _add_cred(node, hdr.cred, path)
    _add_meta(node, hdr.meta, path)
    return node


def _commands_to_nodes(parent, commands, path):
    counts = {}
    for cmd in commands:
        name = _command_name(cmd, path)
        counts[name] = counts.get(name, 0) + 1
        parent.append(command_to_node(cmd, "%s/%s[%d]" % (path, name, counts[name])))


def _command_name(cmd, path):
    if isinstance(cmd, UnknownCommand):
        name = cmd.node.name if cmd.node is not None else cmd.name
    else:
        name = getattr(cmd, "NAME", "")
    if not isinstance(name, str) or not name:
        raise ModelError("not a command: %r" % (type(cmd).__name__,), path=path)
    return name


def command_to_node(cmd, path=None):
    """The element of one SyncBody (or Atomic/Sequence) child."""
    name = _command_name(cmd, path or "SyncBody")
    path = path or name
    if isinstance(cmd, UnknownCommand):
        if cmd.node is not None:
            _expect(cmd.node, Node, path)
            return cmd.node
        node = Node(name)
        _add_value(node, "CmdID", cmd.cmd_id, path)
        return node
    node = Node(name)
    _add_value(node, "CmdID", cmd.cmd_id, path)
    if isinstance(cmd, Status):
        _status_children(node, cmd, path)
    elif isinstance(cmd, Results):
        _results_children(node, cmd, path)
    elif isinstance(cmd, Alert):
        _add_flag(node, "NoResp", cmd.no_resp)
        _add_cred(node, cmd.cred, path)
        if cmd.data is not None:
            _add_value(node, "Data", _int_text(cmd.data, path + "/Data"), path)
        _add_value(node, "Correlator", cmd.correlator, path, optional=True)
        _add_items(node, cmd.items, path)
    elif isinstance(cmd, Container):
        _add_flag(node, "NoResp", cmd.no_resp)
        _add_meta(node, cmd.meta, path)
        _commands_to_nodes(node, cmd.commands, path)
    elif isinstance(cmd, ItemCommand):
        _add_flag(node, "NoResp", cmd.no_resp)
        _add_cred(node, cmd.cred, path)
        _add_meta(node, cmd.meta, path)
        if isinstance(cmd, Exec):
            _add_value(node, "Correlator", cmd.correlator, path, optional=True)
        _add_items(node, cmd.items, path)
    else:
        raise ModelError("unsupported command class %s" % (type(cmd).__name__,), path=path)
    return node


def _status_children(node, cmd, path):
    _add_value(node, "MsgRef", cmd.msg_ref, path, optional=True)
    _add_value(node, "CmdRef", cmd.cmd_ref, path)
    _add_value(node, "Cmd", cmd.cmd, path)
    _add_values(node, "TargetRef", cmd.target_refs, path)
    _add_values(node, "SourceRef", cmd.source_refs, path)
    _add_cred(node, cmd.cred, path)
    if cmd.chal is not None:
        _expect(cmd.chal, Chal, path + "/Chal")
        chal = node.add("Chal")
        chal.append(meta_to_node(cmd.chal.meta, path + "/Chal/Meta"))
    _add_value(node, "Data", _int_text(cmd.data, path + "/Data"), path)
    _add_items(node, cmd.items, path)


def _results_children(node, cmd, path):
    _add_value(node, "MsgRef", cmd.msg_ref, path, optional=True)
    _add_value(node, "CmdRef", cmd.cmd_ref, path)
    _add_meta(node, cmd.meta, path)
    _add_values(node, "TargetRef", cmd.target_refs, path)
    _add_values(node, "SourceRef", cmd.source_refs, path)
    _add_items(node, cmd.items, path)


def _add_items(node, items, path):
    for index, item in enumerate(items, 1):
        node.append(item_to_node(item, "%s/Item[%d]" % (path, index)))


def item_to_node(item, path="Item"):
    _expect(item, Item, path)
    node = Node("Item")
    if item.target is not None:
        node.append(_locref_to_node("Target", item.target, path + "/Target"))
    if item.source is not None:
        node.append(_locref_to_node("Source", item.source, path + "/Source"))
    _add_meta(node, item.meta, path)
    data = item.data
    if isinstance(data, Node):
        node.add("Data").append(data)
    elif isinstance(data, (str, bytes)):
        node.add("Data", data if data != "" else None)
    elif data is not None:
        raise ModelError("Item data must be str, bytes or Node", path=path + "/Data")
    _add_flag(node, "MoreData", item.more_data)
    return node


def meta_to_node(meta, path="Meta"):
    """``<Meta>`` with its metinf children in DTD order, extras last."""
    _expect(meta, Meta, path)
    node = Node("Meta")
    for name, attr, is_int in META_FIELDS:
        value = getattr(meta, attr)
        if value is None:
            continue
        if is_int:
            if value.__class__ is not int or value < 0:
                value = _int_text(value, "%s/%s" % (path, name))  # refuses what is not an int
            value = str(value)
        elif value.__class__ is not str:
            value = _value(value, "%s/%s" % (path, name))  # refuses what is not text
        node.add(name, value or None, ns=NS_METINF)
    for emi in meta.emi:
        node.add("EMI", _value(emi, path + "/EMI"), ns=NS_METINF)
    for extra in meta.extra:
        _expect(extra, Node, path)
        node.append(extra)
    return node


def _locref_to_node(name, ref, path):
    _expect(ref, LocRef, path)
    node = Node(name)
    _add_value(node, "LocURI", ref.loc_uri, path)
    _add_value(node, "LocName", ref.loc_name, path, optional=True)
    return node


def _add_cred(node, cred, path):
    if cred is None:
        return
    path += "/Cred"
    _expect(cred, Cred, path)
    child = node.add("Cred")
    _add_meta(child, cred.meta, path)
    _add_value(child, "Data", cred.data, path)


def _add_meta(node, meta, path):
    if meta is not None:
        node.append(meta_to_node(meta, path + "/Meta"))


def _add_flag(node, name, flag):
    if flag:
        node.add(name)


def _add_value(node, name, value, path, optional=False):
    if value.__class__ is not str:  # (paths are formatted for errors only)
        if value is None and optional:
            return
        value = _value(value, "%s/%s" % (path, name))  # refuses what is not text
    node.add(name, value or None)


def _add_values(node, name, values, path):
    for index, value in enumerate(values, 1):
        if value.__class__ is not str:
            value = _value(value, "%s/%s[%d]" % (path, name, index))  # refuses what is not text
        node.add(name, value or None)


def _value(value, path):
    if not isinstance(value, str):
        raise ModelError("expected a string, not %s" % (type(value).__name__,), path=path)
    return value if value else None


def _int_text(value, path):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ModelError("expected a non-negative int, not %r" % (value,), path=path)
    return str(value)


def _expect(value, cls, path):
    if not isinstance(value, cls):
        raise ModelError("expected %s, not %s" % (cls.__name__, type(value).__name__), path=path)
