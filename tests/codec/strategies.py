"""Hypothesis strategies for the SyncML DM message model.

``messages()`` draws valid :class:`~dmgateway.codec.syncml.SyncML` models that
survive a trip through any wire format unchanged: ``decode(encode(m)) == m``.
To make that hold the drawn values respect what the readers normalise:

* values of non-``Data`` elements have no leading/trailing whitespace
  (readers strip it);
* text is made of characters XML 1.0 can carry (no NUL, no C0 controls other
  than tab/LF/CR, no surrogates, no U+FFFE/U+FFFF);
* element text inside embedded markup (``Item.data`` nodes, ``Meta.extra``)
  is never the empty string: an empty element reads back as ``text=None``;
* ``Item.data`` is ``str`` (any text, kept exactly), an inline TNDS
  ``MgmtTree`` :class:`~dmgateway.codec.element.Node` or, only with
  ``binary_data=True``, non-empty ``bytes`` with Format ``bin`` (the readers
  type Data by its Format: text unless ``bin``); no command Meta says ``bin``.

The API is stable: ``messages(binary_data=False)``; the smaller strategies
(``metas()``, ``items()``, ``commands()`` ...) may be used on their own.
"""

from hypothesis import strategies as st

from dmgateway.codec.element import NS_DMDDF, NS_METINF, NS_SYNCML, Node
from dmgateway.codec.syncml import (
    Add,
    Alert,
    Atomic,
    Chal,
    Copy,
    Cred,
    Delete,
    Exec,
    Get,
    Item,
    LocRef,
    Meta,
    Replace,
    Results,
    Sequence,
    Status,
    SyncHdr,
    SyncML,
    UnknownCommand,
)

__all__ = [
    "FORMATS",
    "ALERT_CODES",
    "xml_text",
    "values",
    "data_texts",
    "metas",
    "loc_refs",
    "creds",
    "chals",
    "mgmt_trees",
    "items",
    "commands",
    "sync_hdrs",
    "messages",
]

# Meta/Format values of dm-tree-objects §2.2
FORMATS = ("b64", "bin", "bool", "chr", "int", "node", "null", "xml", "date", "time", "float")
ALERT_CODES = (1100, 1101, 1102, 1103, 1104, 1200, 1201, 1222, 1223, 1224, 1225, 1226)
STATUS_CODES = (200, 202, 212, 213, 214, 215, 216, 304, 401, 404, 405, 406, 407, 418, 500, 507)
MARKS = ("fatal", "critical", "minor", "warning", "informational", "harmless", "indeterminate")
TYPES = (
    "text/plain",
    "application/vnd.syncml.dmtnds+xml",
    "syncml:auth-md5",
    "syncml:auth-basic",
    "syncml:auth-MAC",
    "Reversed-Domain-Name: org.openmobilealliance.dm.firmwareupdate.download",
)
URIS = (
    "./DevInfo/DevId",
    "./DevDetail/SwV",
    "./DMAcc/example/AppAddr/1/Addr",
    "./FUMO/fw1/Update",
    "./Vendor/X?list=Struct",
    "./A?prop=ACL",
    "https://dms.example.com/dm?s=1A2&dev=490154203237518",
    "IMEI:490154203237518",
)
COMMAND_NAMES = ("Add", "Alert", "Atomic", "Copy", "Delete", "Exec", "Get", "Replace", "Sequence",
                 "Results", "SyncHdr")

# C0 controls XML 1.0 cannot carry, plus the two non-characters it excludes
_NOT_XML = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + ["\ufffe", "\uffff"]


def xml_text(min_size=0, max_size=20):
    """Any text XML 1.0 can carry, whitespace included."""
    alphabet = st.characters(exclude_categories=("Cs",), exclude_characters=_NOT_XML)
    return st.text(alphabet, min_size=min_size, max_size=max_size)


def values(max_size=20, examples=()):
    """Values for non-Data elements: no surrounding whitespace, sometimes realistic."""
    random = xml_text(max_size=max_size).map(str.strip)
    if examples:
        return st.one_of(st.sampled_from(examples), random)
    return random


def _words(min_size=1):
    """Non-empty values without surrounding whitespace (for embedded markup)."""
    return xml_text(min_size=min_size).map(str.strip).filter(bool)


def _numbers(lo=1, hi=9999):
    return st.integers(lo, hi).map(str)


def data_texts():
    """``<Data>`` text, kept exactly: any characters, whitespace included."""
    return st.one_of(
        st.just(""),
        st.sampled_from(("4.2.1", "ExampleCorp", "true", "42", "AQIDBAUGBwgJCgsMDQ4PEA==",
                         "MAXDT=30&DR=1", "<xml>escaped</xml>", " padded\r\n\t")),
        xml_text(max_size=40),
    )


def _extra_metinf():
    """Metinf elements the model keeps verbatim in ``Meta.extra``."""
    def leaf(name):
        return st.builds(lambda text: Node(name, NS_METINF, [], text),
                         st.one_of(st.none(), _words()))

    anchor = st.builds(
        lambda last, nxt: Node("Anchor", NS_METINF, [c for c in (last, nxt) if c is not None]),
        st.one_of(st.none(), leaf("Last")),
        leaf("Next"),
    )
    mem = st.builds(
        lambda parts: Node("Mem", NS_METINF, parts),
        st.lists(st.one_of(leaf("FreeMem"), leaf("FreeID"), leaf("SharedMem")), min_size=1,
                 max_size=3),
    )
    return st.one_of(anchor, mem, leaf("FieldLevel"))


def metas(full=False):
    """``Meta``: a few fields usually, every field when ``full``."""
    opt = (lambda s: s) if full else (lambda s: st.one_of(st.none(), s))
    sizes = st.integers(0, 2**31 - 1)
    return st.builds(
        Meta,
        type=opt(values(examples=TYPES)),
        format=opt(st.sampled_from(FORMATS)),
        mark=opt(values(examples=MARKS)),
        size=opt(sizes),
        next_nonce=opt(values(examples=("Dx4tPEtaaXg=", "ESIzRFVmd4g=", ""))),
        max_msg_size=opt(sizes),
        max_obj_size=opt(sizes),
        version=opt(values(examples=("1.0", "1.2"))),
        emi=st.lists(values(), min_size=1 if full else 0, max_size=2),
        extra=st.lists(_extra_metinf(), min_size=1 if full else 0, max_size=2),
    )


def loc_refs():
    return st.builds(LocRef, values(examples=URIS), st.one_of(st.none(), values()))


def creds():
    return st.builds(
        Cred,
        meta=st.one_of(st.none(), metas()),
        data=values(examples=("Q3r6Z+uEU9+S9G0eEFL04w==", "ZG1jbGllbnQwMTpzM2NyM3Qh")),
    )


def chals():
    return st.builds(Chal, metas())


def _tnds_node(depth):
    """One TNDS ``Node``: a leaf with a Value, or an interior node with children."""
    def ddf(name, *children, text=None):
        return Node(name, NS_DMDDF, list(children), text)

    leaf = st.builds(
        lambda name, fmt, value: ddf(
            "Node", ddf("NodeName", text=name),
            ddf("RTProperties", ddf("Format", ddf(fmt)),
                ddf("Type", ddf("MIME", text="text/plain"))),
            ddf("Value", text=value)),
        _words(), st.sampled_from(("chr", "int", "bool", "b64")), st.one_of(st.none(), _words()),
    )
    if depth <= 0:
        return leaf
    interior = st.builds(
        lambda name, children: ddf(
            "Node", ddf("NodeName", text=name),
            ddf("RTProperties", ddf("Format", ddf("node")),
                ddf("Type", ddf("DDFName", text="org.example/1.0/MO"))),
            *children),
        _words(), st.lists(_tnds_node(depth - 1), min_size=1, max_size=2),
    )
    return st.one_of(leaf, interior)


def mgmt_trees():
    """An inline TNDS document (``MgmtTree`` in ns DMDDF) as carried in ``<Data>``."""
    return st.builds(
        lambda nodes: Node("MgmtTree", NS_DMDDF, [Node("VerDTD", NS_DMDDF, text="1.2")] + nodes),
        st.lists(_tnds_node(2), min_size=1, max_size=2),
    )


def _format_agrees(item):
    """Readers type Data by Format: bytes are Format ``bin``, text is not."""
    if isinstance(item.data, bytes):
        item.meta = item.meta or Meta()
        item.meta.format = "bin"
    elif item.meta is not None and item.meta.format == "bin":
        item.meta.format = "chr"
    return item


def _no_bin_command_format(cmd):
    """A command-level Format ``bin`` would make its items' text binary."""
    if cmd.meta is not None and cmd.meta.format == "bin":
        cmd.meta.format = "chr"
    return cmd


def items(binary_data=False):
    data = [st.none(), data_texts(), mgmt_trees()]
    if binary_data:
        data.append(st.binary(min_size=1, max_size=40))
    return st.builds(
        Item,
        target=st.one_of(st.none(), loc_refs()),
        source=st.one_of(st.none(), loc_refs()),
        meta=st.one_of(st.none(), metas()),
        data=st.one_of(*data),
        more_data=st.booleans(),
    ).map(_format_agrees)


def _item_command(cls, binary_data, **extra):
    return st.builds(
        cls,
        cmd_id=_numbers(),
        no_resp=st.booleans(),
        cred=st.one_of(st.none(), creds()),
        meta=st.one_of(st.none(), metas()),
        items=st.lists(items(binary_data), min_size=1, max_size=3),
        **extra,
    ).map(_no_bin_command_format)


def _alerts(binary_data):
    return st.builds(
        Alert,
        cmd_id=_numbers(),
        no_resp=st.booleans(),
        cred=st.one_of(st.none(), creds()),
        data=st.one_of(st.none(), st.sampled_from(ALERT_CODES), st.integers(0, 99999)),
        correlator=st.one_of(st.none(), values(examples=("abc123",))),
        items=st.lists(items(binary_data), max_size=3),
    )


def _statuses(binary_data):
    refs = st.lists(values(examples=URIS), max_size=2)
    return st.builds(
        Status,
        cmd_id=_numbers(),
        msg_ref=st.one_of(st.none(), _numbers()),
        cmd_ref=_numbers(0),
        cmd=values(examples=COMMAND_NAMES),
        target_refs=refs,
        source_refs=refs,
        cred=st.one_of(st.none(), creds()),
        chal=st.one_of(st.none(), chals()),
        data=st.one_of(st.sampled_from(STATUS_CODES), st.integers(0, 999)),
        items=st.lists(items(binary_data), max_size=2),
    )


def _results(binary_data):
    refs = st.lists(values(examples=URIS), max_size=2)
    return st.builds(
        Results,
        cmd_id=_numbers(),
        msg_ref=st.one_of(st.none(), _numbers()),
        cmd_ref=_numbers(),
        meta=st.one_of(st.none(), metas()),
        target_refs=refs,
        source_refs=refs,
        items=st.lists(items(binary_data), min_size=1, max_size=3),
    ).map(_no_bin_command_format)


def _unknown_commands():
    """SyncBody children DM does not use, as a reader keeps them."""
    def build(name, cmd_id, no_resp):
        node = Node(name, NS_SYNCML, [Node("CmdID", NS_SYNCML, text=cmd_id)])
        if no_resp:
            node.add("NoResp")
        return UnknownCommand(cmd_id=cmd_id, name=name, node=node)

    return st.builds(build, st.sampled_from(("Put", "Map", "Sync", "Search")), _numbers(),
                     st.booleans())


def _leaf_commands(binary_data):
    return st.one_of(
        _item_command(Add, binary_data),
        _item_command(Replace, binary_data),
        _item_command(Delete, binary_data),
        _item_command(Copy, binary_data),
        _item_command(Get, binary_data),
        _item_command(Exec, binary_data,
                      correlator=st.one_of(st.none(), values(examples=("abc123",)))),
        _alerts(binary_data),
    )


def _containers(cls, inner):
    return st.builds(
        cls,
        cmd_id=_numbers(),
        no_resp=st.booleans(),
        meta=st.one_of(st.none(), metas()),
        commands=st.lists(inner, min_size=1, max_size=3),
    )


def commands(binary_data=False):
    """Any SyncBody child, including Atomic inside Sequence."""
    leaf = _leaf_commands(binary_data)
    atomic = _containers(Atomic, leaf)
    sequence = _containers(Sequence, st.one_of(leaf, atomic))
    return st.one_of(
        leaf, atomic, sequence,
        _statuses(binary_data), _results(binary_data), _unknown_commands(),
    )


def sync_hdrs():
    return st.builds(
        SyncHdr,
        session_id=st.one_of(st.sampled_from(("0", "1A2", "AF")), values(max_size=8)),
        msg_id=_numbers(),
        target=loc_refs(),
        source=loc_refs(),
        ver_dtd=st.sampled_from(("1.1", "1.2")),
        ver_proto=st.sampled_from(("DM/1.1", "DM/1.2", "DM/1.3")),
        resp_uri=st.one_of(st.none(), values(examples=URIS)),
        no_resp=st.booleans(),
        cred=st.one_of(st.none(), creds()),
        meta=st.one_of(st.none(), metas(), metas(full=True)),
    )


def messages(binary_data: bool = False):
    """Valid ``SyncML`` models; ``binary_data`` also draws ``bytes`` Item data."""
    return st.builds(
        SyncML,
        hdr=sync_hdrs(),
        body=st.lists(commands(binary_data), max_size=5),
        final=st.booleans(),
    )


def reencoded(data, encodings):
    """C{data} (a UTF-8 document) declared and encoded in each of C{encodings} that can carry it."""
    text = data.decode("utf-8")
    if text.startswith("<?xml"):
        text = text[text.index("?>") + 2:]
    for encoding in encodings:
        try:
            yield ('<?xml version="1.0" encoding="%s"?>' % (encoding,) + text).encode(encoding)
        except UnicodeEncodeError:
            continue
