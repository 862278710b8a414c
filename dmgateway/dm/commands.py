"""Job commands to SyncML and device answers back to job results.

A job command is a REST API v1 dict (DESIGN.md §4)::

    {"op": "Replace", "target": "./X", "data": "v", "format": "chr", "type": "text/plain"}
    {"op": "Copy", "target": "./To", "source": "./From"}
    {"op": "Exec", "target": "./FUMO/fw/Update", "correlator": "abc"}
    {"op": "Alert", "alert": 1103, "data": "Pick one", "options": "MAXDT=30", "choices": ["a", "b"]}

:func:`build_command` turns one into a SyncML command without a CmdID (the
packer numbers commands per message).  The other functions read what the
device sends back: Status answers of UI alerts, Results items, DevInfo
Replace items and Generic Alert items.
"""

import base64

from ..codec import syncml as sm
from ..codec.element import Node
from ..codec.errors import CodecError

__all__ = [
    "UI_ALERTS",
    "build_command",
    "build_job_commands",
    "data_size",
    "item_text",
    "effective_meta",
    "alert_answer",
    "results_answer",
    "devinfo_key",
    "reported_key",
    "reported_text",
    "event_payload",
]

UI_ALERTS = (
    sm.ALERT_DISPLAY,
    sm.ALERT_CONFIRM,
    sm.ALERT_TEXT_INPUT,
    sm.ALERT_SINGLE_CHOICE,
    sm.ALERT_MULTIPLE_CHOICE,
)
_CHOICE_ALERTS = (sm.ALERT_SINGLE_CHOICE, sm.ALERT_MULTIPLE_CHOICE)
_DATA_OPS = {"Add": sm.Add, "Replace": sm.Replace}
_PLAIN_OPS = {"Get": sm.Get, "Delete": sm.Delete}
DEFAULT_FORMAT = "chr"


def _text(spec, key, required=False):
    value = spec.get(key)
    if value is None:
        if required:
            raise ValueError("%s command needs %r" % (spec.get("op"), key))
        return None
    if not isinstance(value, str):
        raise ValueError("%r of a %s command must be a string" % (key, spec.get("op")))
    return value


def _meta(fmt, mime_type):
    if fmt is None and mime_type is None:
        return None
    return sm.Meta(format=fmt, type=mime_type)


def build_command(spec):
    """The SyncML command (CmdID unset) for one job command dict.

    Raises ``ValueError`` naming the problem for a dict the REST layer
    should not have accepted.
    """
    if not isinstance(spec, dict):
        raise ValueError("a job command must be a dict")
    op = spec.get("op")
    plain = _PLAIN_OPS.get(op)
    if plain is not None and len(spec) == 2:  # (Get or Delete of a target alone: most jobs)
        target = spec.get("target")
        if target.__class__ is str:
            # (positional: Item's target, Get's and Delete's items, as tests/dm/test_model_order.py pins them)
            return plain("", False, None, None, [sm.Item(sm.LocRef(target))])
    if op == "Sequence":
        inner = spec.get("commands")
        if not isinstance(inner, list) or not inner:
            raise ValueError("a Sequence needs at least one command")
        if any(not isinstance(c, dict) or c.get("op") == "Sequence" for c in inner):
            raise ValueError("a Sequence holds commands, not another Sequence")
        return sm.Sequence(commands=[build_command(c) for c in inner])
    target = _text(spec, "target", required=op != "Alert")
    mime_type = _text(spec, "type")
    fmt = _text(spec, "format")
    if op in _DATA_OPS:
        data = spec.get("data")
        if data is not None and not isinstance(data, (str, bytes)):
            raise ValueError("'data' of a %s command must be a string" % (op,))
        if data is not None or mime_type is not None:
            fmt = fmt or DEFAULT_FORMAT
        item = sm.Item(target=sm.LocRef(target), meta=_meta(fmt, mime_type), data=data)
        return _DATA_OPS[op](items=[item])
    if op in _PLAIN_OPS:
        item = sm.Item(target=sm.LocRef(target), meta=_meta(fmt, mime_type))
        return _PLAIN_OPS[op](items=[item])
    if op == "Exec":
        data = _text(spec, "data")
        if data is not None:
            fmt = fmt or DEFAULT_FORMAT
        item = sm.Item(target=sm.LocRef(target), meta=_meta(fmt, mime_type), data=data)
        return sm.Exec(items=[item], correlator=_text(spec, "correlator"))
    if op == "Copy":
        source = _text(spec, "source", required=True)
        return sm.Copy(items=[sm.Item(target=sm.LocRef(target), source=sm.LocRef(source))])
    if op == "Alert":
        return _ui_alert(spec)
    raise ValueError("unknown job command op %r" % (op,))


def _ui_alert(spec):
    code = spec.get("alert")
    if code not in UI_ALERTS:
        raise ValueError("alert must be one of %s, not %r" % (UI_ALERTS, code))
    options = _text(spec, "options") or ""
    text = _text(spec, "data") or ""
    # Item 1: options (may be empty), Item 2: the text, Items 3..: choices
    items = [sm.Item(data=options), sm.Item(data=text)]
    choices = spec.get("choices") or []
    if choices and code not in _CHOICE_ALERTS:
        raise ValueError("choices are only for alerts 1103 and 1104")
    if code in _CHOICE_ALERTS and not choices:
        raise ValueError("alert %d needs choices" % (code,))
    for choice in choices:
        if not isinstance(choice, str):
            raise ValueError("alert choices must be strings")
        items.append(sm.Item(data=choice))
    return sm.Alert(data=code, items=items)


def build_job_commands(commands, atomic):
    """The commands of one job: a list of SyncML commands, or one Atomic.

    Inside an Atomic, Get is not allowed (dm-protocol §6.2): ``ValueError``.
    """
    if not isinstance(commands, list) or not commands:
        raise ValueError("a job needs at least one command")
    # (one command, most jobs: without a comprehension's frame)
    built = [build_command(commands[0])] if len(commands) == 1 else [build_command(spec) for spec in commands]
    if not atomic:
        return built
    for cmd in built:
        if isinstance(cmd, sm.Get):
            raise ValueError("Get is not allowed inside an atomic job")
        if isinstance(cmd, sm.Sequence):
            raise ValueError("Sequence is not allowed inside an atomic job")
    return [sm.Atomic(commands=built)]


def data_size(data):
    """Byte size of Item data as transmitted: UTF-8 for text, the XML text of an
    embedded tree (an inline TNDS ``MgmtTree``), 0 for no data."""
    if isinstance(data, str):
        return len(data.encode("utf-8", "surrogatepass"))
    if isinstance(data, (bytes, bytearray)):
        return len(data)
    if isinstance(data, Node):
        from ..codec.xml import serialize

        return len(serialize(data))
    return 0


# -- reading what the device sends ----------------------------------------


def item_text(data, fmt=None):
    """``(text, format)`` for Item data: JSON-friendly text.

    Binary data that is not UTF-8 comes back as base64 with format ``b64``;
    embedded markup (an inline TNDS tree) as its XML text.
    """
    if data is None or isinstance(data, str):
        return data, fmt
    if isinstance(data, (bytes, bytearray)):
        try:
            return bytes(data).decode("utf-8"), fmt
        except UnicodeDecodeError:
            return base64.b64encode(bytes(data)).decode("ascii"), "b64"
    if isinstance(data, Node):
        from ..codec.xml import serialize  # the XML text of an embedded tree

        try:
            return serialize(data).decode("utf-8"), fmt or "xml"
        except CodecError:
            return None, fmt
    return None, fmt


def effective_meta(item, command_meta=None):
    """``(format, type)``: the Item's Meta, falling back to the command's."""
    fmt = mime_type = None
    for meta in (command_meta, item.meta if item is not None else None):
        if meta is not None:
            fmt = meta.format or fmt
            mime_type = meta.type or mime_type
    return fmt, mime_type


def alert_answer(code, status):
    """The device's answer to a UI alert, from the Items of its Status.

    1102: the text typed; 1103: the chosen number; 1104: the list of chosen
    numbers; otherwise None.
    """
    texts = []
    for item in status.items:
        text, _ = item_text(item.data)
        if text is not None:
            texts.append(text.strip() if code in _CHOICE_ALERTS else text)
    if code == sm.ALERT_TEXT_INPUT:
        return texts[0] if texts else None
    if code == sm.ALERT_SINGLE_CHOICE:
        return texts[0] if texts else None
    if code == sm.ALERT_MULTIPLE_CHOICE:
        chosen = []
        for text in texts:  # one Item per choice; also tolerate "1-3" in one Item
            chosen.extend(part for part in text.replace(",", "-").split("-") if part)
        return chosen
    return None


# formats whose value never starts or ends with XML whitespace
_TRIMMED_FORMATS = ("chr", "int", "bool", "float", "date", "time")


def results_answer(results, data=None):
    """``{"data", "format", "type"}`` (+ ``"items"`` when several) of a Results.

    ``data`` replaces the last Item's data (a reassembled large object).
    """
    items = results.items
    if len(items) == 1 and data is None:  # (one Item of text: most Results, without the calls below)
        item = items[0]
        text = item.data
        if text.__class__ is str:
            fmt = mime_type = None
            for meta in (results.meta, item.meta):  # (effective_meta, inline)
                if meta is not None:
                    fmt = meta.format or fmt
                    mime_type = meta.type or mime_type
            if (fmt or "chr") in _TRIMMED_FORMATS:
                text = text.strip(" \t\r\n")
            return {"data": text, "format": fmt, "type": mime_type}
    answers = []
    for index, item in enumerate(items):
        fmt, mime_type = effective_meta(item, results.meta)
        raw = data if (index == len(items) - 1 and data is not None) else item.data
        text, fmt = item_text(raw, fmt)
        if isinstance(text, str) and (fmt or "chr") in _TRIMMED_FORMATS:
            text = text.strip(" \t\r\n")  # pretty-printed <Data>: the value is inside
        source = item.source.loc_uri if item.source is not None else None
        answers.append({"source": source, "data": text, "format": fmt, "type": mime_type})
    if not answers:
        return {"data": None, "format": None, "type": None}
    first = answers[0]
    answer = {"data": first["data"], "format": first["format"], "type": first["type"]}
    if len(answers) > 1:
        answer["items"] = answers
    return answer


def devinfo_key(item):
    """``"Man"`` for an Item whose Source (or Target) is ``./DevInfo/Man``; else None."""
    ref = item.source or item.target
    return _devinfo_name(ref.loc_uri if ref is not None else "")


def _devinfo_name(uri):
    if uri.startswith("./DevInfo/"):  # (what devices send: one test, not three)
        return uri[10:] or None
    for prefix in ("DevInfo/", "/DevInfo/"):
        if uri.startswith(prefix) and len(uri) > len(prefix):
            return uri[len(prefix):]
    return None


MAX_REPORTED = 32  # nodes other than DevInfo kept from one client Replace
MAX_REPORTED_TEXT = 4096  # characters of each
XML_SPACE = " \t\r\n"  # around a value: pretty-printing, not the value


def reported_key(item):
    """``"Man"`` for ./DevInfo/Man, the node's URI for any other node, None without one."""
    ref = item.source or item.target
    uri = ref.loc_uri if ref is not None else ""
    key = _devinfo_name(uri)
    if key is not None:
        return key
    if not uri:
        return None
    return uri if uri.startswith("./") else "./" + uri.lstrip("/")


def reported_text(data):
    """A reported value as stored: text without the XML whitespace around it."""
    text = data if data.__class__ is str else item_text(data)[0]
    if text is None:
        return None
    return text.strip(XML_SPACE)[:MAX_REPORTED_TEXT]


EVENT_TYPES = {
    sm.ALERT_GENERIC: "generic_alert",
    sm.ALERT_CLIENT_EVENT: "client_event",
    sm.ALERT_NO_END_OF_DATA: "no_end_of_data",
}


def event_payload(alert, item, data=None):
    """The EventRaised payload for one Item of a client alert (1224/1225/1226)."""
    meta = item.meta or sm.Meta()
    text, fmt = item_text(item.data if data is None else data, meta.format)
    return {
        "alert": alert.data,
        "source": item.source.loc_uri if item.source is not None else None,
        "target": item.target.loc_uri if item.target is not None else None,
        "meta_type": meta.type,
        "format": fmt,
        "mark": meta.mark,
        "data": text,
        "correlator": alert.correlator,
    }
