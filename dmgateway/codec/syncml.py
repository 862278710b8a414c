"""Typed model of a SyncML DM 1.2/1.3 message.

The model is what the session engines, the client library and the tools work
on; the wire formats (:mod:`.xml`, :mod:`.wbxml`) only read and write it.
Field names follow the SyncML element names in snake case.  Values stay the
strings found on the wire (``cmd_id``, ``msg_ref``, LocURIs ...) except where
a number is the element's meaning: alert and status codes are ``int``, the
metinf sizes are ``int``.

``Item.data`` is one of
  * ``str``   -- character data (also base64 text when Format is b64),
  * ``bytes`` -- binary data (WBXML OPAQUE; written as base64 text in XML),
  * :class:`~.element.Node` -- embedded markup, e.g. an inline TNDS ``MgmtTree``,
  * ``None``  -- no ``<Data>`` element.
An empty ``<Data/>`` is ``""``.
"""

import copy
from dataclasses import dataclass, field, fields
from typing import List, Optional, Union

from .element import Node


def _model(cls):
    """A model class: a dataclass whose fields are slots, with a quick ``copy.copy``.

    Slots, not an instance ``__dict__``: the C mapping (``_model_mapping.h``)
    fills and reads them by offset, a fraction of what setting attributes
    one by one cost per decoded message.  A class with slots has no
    ``__dict__`` to copy, and ``copy.copy`` would go through the pickle
    protocol, so each class gets a ``__copy__`` that copies its fields
    (a subclass defined elsewhere copies the usual way).
    """
    cls = dataclass(slots=True)(cls)
    names = tuple(f.name for f in fields(cls))
    # one assignment per field, as dataclass writes its __init__
    source = "def __copy__(self):\n" \
             "    if self.__class__ is not cls:\n" \
             "        return reconstruct(self, None, *self.__reduce_ex__(4))\n" \
             "    new = new_object(cls)\n" \
             + "".join("    new.%s = self.%s\n" % (name, name) for name in names) \
             + "    return new\n"
    scope = {"cls": cls, "new_object": object.__new__, "reconstruct": copy._reconstruct}
    exec(source, scope)
    scope["__copy__"].__qualname__ = cls.__qualname__ + ".__copy__"
    cls.__copy__ = scope["__copy__"]
    return cls

VERDTD_1_1 = "1.1"
VERDTD_1_2 = "1.2"
VERPROTO_DM_1_1 = "DM/1.1"
VERPROTO_DM_1_2 = "DM/1.2"
VERPROTO_DM_1_3 = "DM/1.3"

# Alert codes (dm-protocol §5)
ALERT_DISPLAY = 1100
ALERT_CONFIRM = 1101
ALERT_TEXT_INPUT = 1102
ALERT_SINGLE_CHOICE = 1103
ALERT_MULTIPLE_CHOICE = 1104
ALERT_SERVER_INITIATED = 1200
ALERT_CLIENT_INITIATED = 1201
ALERT_NEXT_MESSAGE = 1222
ALERT_SESSION_ABORT = 1223
ALERT_CLIENT_EVENT = 1224
ALERT_NO_END_OF_DATA = 1225
ALERT_GENERIC = 1226


@_model
class Meta:
    """``<Meta>`` with its ``syncml:metinf`` children."""

    type: Optional[str] = None
    format: Optional[str] = None
    mark: Optional[str] = None
    size: Optional[int] = None
    next_nonce: Optional[str] = None  # base64 text as carried on the wire
    max_msg_size: Optional[int] = None
    max_obj_size: Optional[int] = None
    version: Optional[str] = None
    emi: List[str] = field(default_factory=list)
    # metinf elements the model has no field for (Anchor, Mem, ...), kept verbatim
    extra: List[Node] = field(default_factory=list)


#: the metinf children :class:`Meta` has a field for, in DTD order:
#: ``(element name, field name, whether the value is an int)``
META_FIELDS = (
    ("Format", "format", False),
    ("Type", "type", False),
    ("Mark", "mark", False),
    ("Size", "size", True),
    ("Version", "version", False),
    ("NextNonce", "next_nonce", False),
    ("MaxMsgSize", "max_msg_size", True),
    ("MaxObjSize", "max_obj_size", True),
)


@_model
class LocRef:
    """``<Target>`` / ``<Source>``: a LocURI and optional LocName."""

    loc_uri: str
    loc_name: Optional[str] = None


@_model
class Cred:
    meta: Optional[Meta] = None
    data: str = ""


@_model
class Chal:
    meta: Meta = field(default_factory=Meta)


@_model
class Item:
    target: Optional[LocRef] = None
    source: Optional[LocRef] = None
    meta: Optional[Meta] = None
    data: Union[str, bytes, Node, None] = None
    more_data: bool = False


@_model
class Command:
    """Base of every SyncBody child.  ``NAME`` is the element name."""

    NAME = ""
    cmd_id: str = ""


@_model
class ItemCommand(Command):
    no_resp: bool = False
    cred: Optional[Cred] = None  # never allowed in DM; read so it can be refused
    meta: Optional[Meta] = None
    items: List[Item] = field(default_factory=list)


@_model
class Add(ItemCommand):
    NAME = "Add"


@_model
class Replace(ItemCommand):
    NAME = "Replace"


@_model
class Delete(ItemCommand):
    NAME = "Delete"


@_model
class Copy(ItemCommand):
    NAME = "Copy"


@_model
class Get(ItemCommand):
    NAME = "Get"


@_model
class Exec(ItemCommand):
    NAME = "Exec"
    correlator: Optional[str] = None


@_model
class Alert(Command):
    NAME = "Alert"
    no_resp: bool = False
    cred: Optional[Cred] = None
    data: Optional[int] = None
    correlator: Optional[str] = None
    items: List[Item] = field(default_factory=list)


@_model
class Container(Command):
    no_resp: bool = False
    meta: Optional[Meta] = None
    commands: List[Command] = field(default_factory=list)


@_model
class Atomic(Container):
    NAME = "Atomic"


@_model
class Sequence(Container):
    NAME = "Sequence"


@_model
class Status(Command):
    NAME = "Status"
    msg_ref: Optional[str] = None
    cmd_ref: str = "0"
    cmd: str = ""
    target_refs: List[str] = field(default_factory=list)
    source_refs: List[str] = field(default_factory=list)
    cred: Optional[Cred] = None
    chal: Optional[Chal] = None
    data: int = 200
    items: List[Item] = field(default_factory=list)


@_model
class Results(Command):
    NAME = "Results"
    msg_ref: Optional[str] = None
    cmd_ref: str = ""
    meta: Optional[Meta] = None
    target_refs: List[str] = field(default_factory=list)
    source_refs: List[str] = field(default_factory=list)
    items: List[Item] = field(default_factory=list)


@_model
class UnknownCommand(Command):
    """A SyncBody child DM does not use (Sync, Map, Put, Search ...).

    Kept so a session can answer it with a Status instead of refusing the
    whole message.  ``node`` is the element as read.
    """

    name: str = ""
    node: Optional[Node] = None


COMMAND_CLASSES = {
    cls.NAME: cls
    for cls in (Add, Replace, Delete, Copy, Get, Exec, Alert, Atomic, Sequence, Status, Results)
}


@_model
class SyncHdr:
    session_id: str = "1"
    msg_id: str = "1"
    target: LocRef = field(default_factory=lambda: LocRef(""))
    source: LocRef = field(default_factory=lambda: LocRef(""))
    ver_dtd: str = VERDTD_1_2
    ver_proto: str = VERPROTO_DM_1_2
    resp_uri: Optional[str] = None
    no_resp: bool = False
    cred: Optional[Cred] = None
    meta: Optional[Meta] = None


@_model
class SyncML:
    hdr: SyncHdr = field(default_factory=SyncHdr)
    body: List[Command] = field(default_factory=list)
    final: bool = False
    # element paths a reader found and the model has no place for (read, not
    # written, not compared): the session logs them once per message
    unknown: List[str] = field(default_factory=list, compare=False, repr=False)

    def commands(self, cls=None):
        """The top-level commands, optionally only those of class ``cls``."""
        if cls is None:
            return list(self.body)
        return [cmd for cmd in self.body if isinstance(cmd, cls)]
