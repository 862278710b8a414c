"""Structured logs.

Every log call in the gateway is a ``twisted.logger`` event with fields
(``session_id``, ``device_id``, ``bearer``, ``outcome`` ...).  The JSON form
is one flat object per line, what log collectors ingest as it is::

    {"time": "2026-12-04T17:20:01.123456Z", "level": "info",
     "logger": "dmgateway.dispatch", "message": "session 3 of ... ended: ok",
     "session_id": 3, "device_id": "...", ...}

(no 0x1e record separator, no ``log_*`` bookkeeping keys).  Two ways to get it:

* ``[logging] format = json`` with ``file = PATH`` writes it to PATH, next to
  twistd's usual log; SIGHUP reopens PATH (after logrotate moved it);
* ``twistd --logger=dmgateway.logs.json_observer dmgateway ...`` makes it
  the only log, on standard output (what the systemd unit uses, so the
  journal gets structured lines); ``--logger=dmgateway.logs.text_observer``
  is the same in readable text.

``[logging] level`` applies to both, and SIGHUP applies a changed level.
"""

import json
import sys
from _string import formatter_field_name_split as _field_name_split, formatter_parser as _formatter_parser
from operator import itemgetter
from time import time

from zope.interface import implementer
from twisted.logger import (
    ILogObserver,
    LogLevel,
    Logger as _TwistedLogger,
    LogLevelFilterPredicate,
    PredicateResult,
    eventAsText,
    formatEvent,
    formatTime,
    globalLogPublisher,
)

from dmgateway.redact import is_secret_name
from dmgateway.utctime import utc_parts

# One level for every observer this module makes (set from [logging] level).
_predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
_installed = []
#: LogLevel -> whether ``_predicate`` lets an event of that level through
_passes = {each: not each < LogLevel.info for each in LogLevel.iterconstants()}
_debug = False  # whether [logging] level is debug (read on hot paths: a plain global)


def set_level(level_name):
    """Apply ``[logging] level`` to every observer made here; return the old name."""
    global _debug
    old = _predicate.logLevelForNamespace(None)
    level = LogLevel.levelWithName(level_name)
    _predicate.setLogLevelForNamespace(None, level)
    _debug = level is LogLevel.debug
    _passes.clear()
    _passes.update({each: not each < level for each in LogLevel.iterconstants()})
    return old.name


def debug_enabled():
    """Whether ``[logging] level`` is ``debug``.

    Debug events on a per-message path are built only then: twistd's own
    log observer writes every event it is given, so an unwanted debug
    line would cost its formatting, a write and a flush each time.
    """
    return _debug


_LEVELS = frozenset(LogLevel.iterconstants())


class Logger(_TwistedLogger):
    """twisted's ``Logger``, the same events, sooner: ``emit`` looks the
    level up in a set (twisted's lists and sorts LogLevel's constants for
    every event), and ``debug`` ... ``critical`` hand their fields to it as
    the dict they came in (twisted's pass them on as ``**kwargs``, a second
    dict built per event) and add the ``log_*`` keys one by one.  A level
    that is not a LogLevel is left to twisted, which reports it."""

    def emit(self, level, format=None, **kwargs):
        self._emit(level, format, kwargs)

    def _emit(self, level, format, fields):
        if level not in _LEVELS:
            return _TwistedLogger.emit(self, level, format, **fields)
        fields["log_logger"] = self
        fields["log_level"] = level
        fields["log_namespace"] = self.namespace
        fields["log_source"] = self.source
        fields["log_format"] = format
        fields["log_time"] = time()
        if "log_trace" in fields:
            fields["log_trace"].append((self, self.observer))
        self.observer(fields)

    def debug(self, format=None, **kwargs):
        self._emit(LogLevel.debug, format, kwargs)

    def info(self, format=None, **kwargs):
        self._emit(LogLevel.info, format, kwargs)

    def warn(self, format=None, **kwargs):
        self._emit(LogLevel.warn, format, kwargs)

    def error(self, format=None, **kwargs):
        self._emit(LogLevel.error, format, kwargs)

    def critical(self, format=None, **kwargs):
        self._emit(LogLevel.critical, format, kwargs)


def _level_filtered(observer):
    return _LevelFiltered(observer)


@implementer(ILogObserver)
class _LevelFiltered:
    """``FilteringLogObserver(observer, [_predicate])``, the same events let
    through, without its generic machinery (a list of predicates, each
    result compared with constants): the level of an event is looked up in
    :data:`_passes`, what ``_predicate`` answers for each level (all
    namespaces share one level: :func:`set_level` is the only setter)."""

    def __init__(self, observer):
        self._observer = observer

    def __call__(self, event):
        level = event.get("log_level")
        passes = _passes.get(level)
        if passes is None:  # no level, or not a LogLevel: the predicate decides
            passes = _predicate(event) is not PredicateResult.no
        elif not event.get("log_namespace"):
            passes = False
        if passes:
            if "log_trace" in event:
                event["log_trace"].append((self, self._observer))
            self._observer(event)


def _iso_time(seconds):
    """``%Y-%m-%dT%H:%M:%S.%fZ`` in UTC, what ``datetime.fromtimestamp``
    gives (see L{dmgateway.utctime})."""
    text, micros = utc_parts(seconds)
    return "%s%06dZ" % (text, micros)


class _Fields(dict):
    """An event's fields for ``str.format_map``, with twisted's ``{name()}``
    (the field called, its result formatted)."""

    __slots__ = ()

    def __missing__(self, key):
        if key.endswith("()"):
            return self[key[:-2]]()
        raise KeyError(key)


def event_message(event):
    """``twisted.logger.formatEvent(event)``, the same text, sooner.

    twisted formats a ``log_format`` with ``string.Formatter``, in Python,
    field by field: some 12 us for the line that ends a session, half the
    cost of its log line.  ``str.format_map`` parses and formats the same
    way (names, attributes, indexes, conversions, specs) in C; anything
    unusual (a flattened event, a format that is not text, a field that does
    not format) is left to twisted, which also words the errors.
    """
    fmt = event.get("log_format")
    if type(fmt) is str and "log_flattened" not in event:
        try:
            return fmt.format_map(event)  # a field called, "{name()}", is a missing key here
        except Exception:
            pass
        try:
            return fmt.format_map(_Fields(event))
        except Exception:
            pass
    return formatEvent(event)


class _SecondsCache:
    """twisted's ``formatTime`` (local time to the second, with its offset),
    formatted once per second: a busy gateway writes many lines in each."""

    __slots__ = ("second", "text")

    def __init__(self):
        self.second = None
        self.text = None

    def __call__(self, when):
        if when is None or when < 0 or when - int(when) >= 0.999999:
            # (a fraction this close to 1 rounds up to the next second)
            return formatTime(when)
        second = int(when)
        if second != self.second:
            self.text, self.second = formatTime(when), second
        return self.text


def _plain(value):
    """A JSON-able form of one field value."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def flat_event(event):
    """The flat JSON object of one ``twisted.logger`` event."""
    level = event.get("log_level")
    record = {
        "time": _iso_time(event.get("log_time") or 0.0),
        "level": level.name if level is not None else "info",
        "logger": event.get("log_namespace") or "-",
        "message": event_message(event),
    }
    failure = event.get("log_failure")
    if failure is not None:
        record["error"] = "%s: %s" % (getattr(failure.type, "__name__", failure.type), failure.getErrorMessage())
        record["traceback"] = failure.getTraceback()
    for key, value in event.items():
        kind = _FIELD_KINDS.get(key)
        if kind is None:
            kind = _field_kind(key)
        if kind is _SKIP or key in record:
            continue
        if kind is _SECRET:
            record[key] = "[redacted]"
        elif type(value) in _SCALARS:
            record[key] = value
        else:
            record[key] = _plain(value)
    return record


_SKIP, _SECRET, _FIELD = "skip", "secret", "field"
_SCALARS = frozenset((str, int, float, bool, type(None)))
#: what each field name is, once found out: the names are those of the
#: gateway's log calls, a few dozen (the map stops growing at 1000 anyway)
_FIELD_KINDS = {}


def _field_kind(key):
    if key.startswith("log_") or key == "format":
        kind = _SKIP
    elif is_secret_name(key):
        kind = _SECRET
    else:
        kind = _FIELD
    if len(_FIELD_KINDS) < 1000:
        _FIELD_KINDS[key] = kind
    return kind


class FlatJsonObserver:
    """Writes each event as one flat JSON object and a newline.

    The line is :func:`flat_event` as ``json.dumps(..., ensure_ascii=False,
    default=str)`` writes it, the same text, put together here: the fixed
    parts of one log call's line (names, level, logger) written once, its
    message rendered from the values the line writes, text values escaped
    by the json module's own C function, numbers as it writes them, anything
    else through its encoder (see :data:`_PLANS`).
    """

    def __init__(self, stream):
        self.stream = stream

    def __call__(self, event):
        try:
            line = _json_line(event)
        except (TypeError, ValueError):
            line = json.dumps({"time": _iso_time(event.get("log_time") or 0.0), "level": "error",
                               "logger": "dmgateway.logs", "message": "unserialisable log event"})
        self.stream.write(line + "\n")
        self.stream.flush()


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)  # what json.dumps(...) above makes
_encode_text = json.encoder.encode_basestring  # how it writes a str
#: ``("name": , secret)`` of each field name seen, ``("", False)`` for one
#: never written (the map stops growing at 1000 names, like _FIELD_KINDS);
#: the first four of every line are never taken from the event's fields
_HEADS = dict.fromkeys(("time", "level", "logger", "message"), ("", False))


def _head(key):
    kind = _FIELD_KINDS.get(key)
    if kind is None:
        kind = _field_kind(key)
    entry = ("", False) if kind is _SKIP else ('"%s": ' % (_encode_text(key)[1:-1],), kind is _SECRET)
    if len(_HEADS) < 1000:
        _HEADS[key] = entry
    return entry


def _json(value):
    return _encode_text(value) if value.__class__ is str else _ENCODER.encode(value)


def _json_other(value):
    """How the line writes a field value of any other class (a float, a list, bytes ...)."""
    return _ENCODER.encode(_plain(value))


#: how the line writes a field value, by its exact class (what
#: ``json.dumps`` writes for it); any other class: :func:`_json_other`
_VALUE_TEXT = {
    str: _encode_text,
    int: int.__repr__,
    bool: {True: "true", False: "false"}.__getitem__,
    type(None): {None: "null"}.__getitem__,
}


#: ``(field names of an event, its log_format, log_level, log_namespace)``
#: -> the plan of its line, ``(fetch, count, template, message)``, or None
#: for an event written the generic way (a failure, a name that is not
#: text): one per log call of the gateway, the map stops growing at 1000
#: like _HEADS.  ``fetch(event)`` gives the values of the ``count`` fields
#: the line writes (an ``operator.itemgetter``); ``template`` is the line
#: with ``%s%06d`` for the time (what :func:`_iso_time` writes), a ``%s``
#: for the message and one for each of those values (the rest: names,
#: level, logger and redacted values, written in once);
#: ``message`` is the log_format with each field made the position of its
#: value (``"{3}"``), for ``str.format``, or None (the message is then
#: :func:`event_message`'s)
_PLANS = {}


def _message_template(fmt, positions):
    """``fmt`` for ``str.format(*values)``: each field named by its value's
    position; None if a field is not one of them (or not a plain name)."""
    if fmt.__class__ is not str:
        return None
    parts = []
    try:
        for literal, name, spec, conversion in _formatter_parser(fmt):
            parts.append(literal.replace("{", "{{").replace("}", "}}"))
            if name is None:
                continue
            first, _rest = _field_name_split(name)
            if first.__class__ is not str or not first or first not in positions or "{" in spec:
                return None
            parts.append("{%d%s%s%s}" % (positions[first], name[len(first):],
                                         "" if conversion is None else "!" + conversion, spec and ":" + spec))
    except ValueError:  # (a format that does not parse: format_map raises, event_message decides)
        return None
    return "".join(parts)


def _plan(key):
    keys, fmt, level, namespace = key
    if "log_failure" in keys or not all(name.__class__ is str for name in keys):
        plan = None
    else:
        fetched = []
        template = ['{"time": "%%s%%06dZ", "level": %s, "logger": %s, "message": %%s' % (
            (_json(level.name) if level is not None else '"info"').replace("%", "%%"),
            _json(namespace or "-").replace("%", "%%"),
        )]
        for name in keys:
            head, secret = _HEADS.get(name) or _head(name)
            if not head:
                continue
            head = head.replace("%", "%%")
            if secret:
                template.append(head + '"[redacted]"')
            else:
                template.append(head + "%s")
                fetched.append(name)
        count = len(fetched)
        message = None
        if "log_flattened" not in keys:
            message = _message_template(fmt, {name: i for i, name in enumerate(fetched)})
        plan = (itemgetter(*fetched) if fetched else None, count, ", ".join(template) + "}", message)
    if len(_PLANS) < 1000:
        _PLANS[key] = plan
    return plan


def _json_line(event):
    """``json.dumps(flat_event(event), ensure_ascii=False, default=str)``, sooner."""
    key = (tuple(event), event.get("log_format"), event.get("log_level"), event.get("log_namespace"))
    try:
        plan = _PLANS[key]
    except KeyError:
        plan = _plan(key)
    except TypeError:  # (a format, level or namespace that does not hash)
        plan = None
    if plan is None:
        return _ENCODER.encode(flat_event(event))  # rare: the generic way
    fetch, count, template, message = plan
    if count > 1:
        values = fetch(event)
    elif count:
        values = (fetch(event),)
    else:
        values = ()
    if message is not None:
        try:
            message = message.format(*values)
        except Exception:  # (what format_map would raise too: event_message decides)
            message = event_message(event)
    else:
        message = event_message(event)
    texts = _VALUE_TEXT
    return template % (
        *utc_parts(event.get("log_time") or 0.0),  # (what _iso_time writes)
        _json(message),
        *[texts.get(value.__class__, _json_other)(value) for value in values],
    )


class TextObserver:
    """One readable line per event (twisted's text form)."""

    def __init__(self, stream):
        self.stream = stream
        self._time = _SecondsCache()

    def __call__(self, event):
        if "log_failure" in event:
            text = eventAsText(event, includeSystem=False)
        else:  # what eventAsText writes for it (nothing at all for an empty message)
            text = event_message(event)
            if text:
                text = self._time(event.get("log_time")) + " " + text
        # one event, one line: what a peer sent (a device id with a line
        # break) cannot start a line that looks like another event
        text = text.replace("\r", "\\r").replace("\n", "\n\t")
        self.stream.write(text + "\n")
        self.stream.flush()


def json_observer():
    """A twistd ``--logger`` factory: flat JSON lines on standard output."""
    return _level_filtered(FlatJsonObserver(sys.stdout))


def text_observer():
    """A twistd ``--logger`` factory: text lines on standard output, with ``[logging] level``."""
    return _level_filtered(TextObserver(sys.stdout))


class LogFile:
    """The ``[logging] file``: one observer whose file can be reopened."""

    def __init__(self, path, fmt):
        self.path = path
        self.format = fmt
        self._stream = open(path, "a", encoding="utf-8")
        self._writer = self._make_writer()
        self.observer = _level_filtered(self._write)

    def _make_writer(self):
        return (FlatJsonObserver if self.format == "json" else TextObserver)(self._stream)

    def _write(self, event):
        self._writer(event)

    def reopen(self, fmt=None):
        """Close the file and open its path again (logrotate moved it)."""
        stream = open(self.path, "a", encoding="utf-8")
        old, self._stream = self._stream, stream
        if fmt is not None:
            self.format = fmt
        self._writer = self._make_writer()
        old.close()

    def close(self):
        self._stream.close()


def install_json_log(logging_config):
    """Apply ``[logging]``: its level, and the file observer (once per process)."""
    set_level(getattr(logging_config, "level", "info"))
    path = getattr(logging_config, "file", "") or ""
    fmt = getattr(logging_config, "format", "text")
    if not path or _installed:
        return None
    log_file = LogFile(path, fmt)
    globalLogPublisher.addObserver(log_file.observer)
    _installed.append(log_file)
    return log_file.observer


def reopen_logs(logging_config):
    """SIGHUP: reopen the log file, apply a changed level; a list of what changed."""
    changes = []
    old_level = set_level(logging_config.level)
    if old_level != logging_config.level:
        changes.append("logging level %s -> %s" % (old_level, logging_config.level))
    for log_file in _installed:
        if log_file.path != logging_config.file:
            changes.append("logging file: a new path needs a restart (still %s)" % (log_file.path,))
        if log_file.format != logging_config.format:
            changes.append("logging format %s -> %s" % (log_file.format, logging_config.format))
        log_file.reopen(logging_config.format)
    return changes
