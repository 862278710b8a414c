"""Structured logs: flat JSON objects, level filtering, the [logging] file and its reopening."""

import datetime
import io
import json
import os
from types import SimpleNamespace

import pytest
from twisted.logger import Logger, LogPublisher, globalLogPublisher

from dmgateway import logs


@pytest.fixture(autouse=True)
def _level_back():
    yield
    logs.set_level("info")


def lines_of(text):
    return [json.loads(line) for line in text.splitlines()]


def test_json_observer_writes_one_flat_object_per_line(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(logs.sys, "stdout", out)
    publisher = LogPublisher(logs.json_observer())
    log = Logger(namespace="dmgateway.test", observer=publisher)
    log.info("session {session_id} ended: {outcome}", session_id="1A2", outcome="completed")
    log.debug("not shown at info")
    text = out.getvalue()
    assert "\x1e" not in text
    (event,) = lines_of(text)
    assert event["session_id"] == "1A2" and event["outcome"] == "completed"
    assert event["logger"] == "dmgateway.test"
    assert event["level"] == "info"
    assert event["message"] == "session 1A2 ended: completed"
    assert not [key for key in event if key.startswith("log_")]
    parsed = datetime.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(parsed.replace(tzinfo=datetime.timezone.utc).timestamp() - __import__("time").time()) < 60


def test_secret_looking_fields_are_redacted_and_odd_values_serialised(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(logs.sys, "stdout", out)
    log = Logger(namespace="dmgateway.test", observer=LogPublisher(logs.json_observer()))
    log.info("bind {system_id}", system_id="esme", password="hunter2", api_token=b"t0k", peer=object(), raw=b"\xff")
    (event,) = lines_of(out.getvalue())
    assert event["password"] == "[redacted]" and event["api_token"] == "[redacted]"
    assert "hunter2" not in out.getvalue() and "t0k" not in out.getvalue()
    assert event["raw"] == "\ufffd" and isinstance(event["peer"], str)


def test_failure_events_carry_error_and_traceback(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(logs.sys, "stdout", out)
    log = Logger(namespace="dmgateway.test", observer=LogPublisher(logs.json_observer()))
    try:
        1 / 0
    except ZeroDivisionError:
        log.failure("it broke while {doing}", doing="dividing")
    (event,) = lines_of(out.getvalue())
    assert event["level"] == "critical" and event["message"] == "it broke while dividing"
    assert event["error"].startswith("ZeroDivisionError") and "Traceback" in event["traceback"]


def test_level_applies_to_the_stdout_observers(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(logs.sys, "stdout", out)
    log = Logger(namespace="dmgateway.test", observer=LogPublisher(logs.json_observer()))
    logs.set_level("debug")
    log.debug("now shown")
    logs.set_level("error")
    log.warn("hidden")
    log.error("shown")
    assert [e["message"] for e in lines_of(out.getvalue())] == ["now shown", "shown"]


def test_debug_enabled_follows_the_level():
    try:
        logs.set_level("debug")
        assert logs.debug_enabled()
        logs.set_level("info")
        assert not logs.debug_enabled()
        logs.set_level("debug")
        logs.set_level("warn")
        assert not logs.debug_enabled()
    finally:
        logs.set_level("info")


def _install(tmp_path, **kwargs):
    config = dict(format="json", level="info", file=str(tmp_path / "gw.json"))
    config.update(kwargs)
    observer = logs.install_json_log(SimpleNamespace(**config))
    return observer


def _uninstall(observer):
    globalLogPublisher.removeObserver(observer)
    logs._installed.pop().close()


def test_logging_file_gets_json_events_at_its_level(tmp_path):
    observer = _install(tmp_path, level="warn")
    try:
        Logger(namespace="dmgateway.test").warn("device {device_id} locked out", device_id="IMEI:1")
        Logger(namespace="dmgateway.test").info("below the level")
    finally:
        _uninstall(observer)
    events = [e for e in lines_of((tmp_path / "gw.json").read_text()) if e["logger"] == "dmgateway.test"]
    assert [e["device_id"] for e in events] == ["IMEI:1"]
    assert [e["level"] for e in events] == ["warn"]


def test_reopen_after_logrotate_writes_to_the_new_file_and_applies_the_level(tmp_path):
    path = tmp_path / "gw.json"
    observer = _install(tmp_path)
    try:
        log = Logger(namespace="dmgateway.test")
        log.info("before rotation")
        os.rename(path, tmp_path / "gw.json.1")
        log.info("still to the moved file")
        changes = logs.reopen_logs(SimpleNamespace(format="json", level="debug", file=str(path)))
        log.debug("after rotation")
    finally:
        _uninstall(observer)
    assert changes == ["logging level info -> debug"]
    old = [e["message"] for e in lines_of((tmp_path / "gw.json.1").read_text()) if e["logger"] == "dmgateway.test"]
    new = [e["message"] for e in lines_of(path.read_text()) if e["logger"] == "dmgateway.test"]
    assert old == ["before rotation", "still to the moved file"]
    assert new == ["after rotation"]


def test_text_lines_cannot_be_forged_by_a_line_break_in_a_field():
    stream = io.StringIO()
    observer = logs.TextObserver(stream)
    publisher = LogPublisher(observer)
    forged = "IMEI:1\n2026-12-04T18:00:00+0000 [dmgateway#critical] store unavailable\rX"
    Logger(namespace="dmgateway.dispatch", observer=publisher).warn(
        "session refused: unknown device {device_id}", device_id=forged)
    lines = stream.getvalue().splitlines()
    assert "session refused: unknown device IMEI:1" in lines[0]
    assert all(line.startswith("\t") for line in lines[1:]), lines
    assert "\r" not in stream.getvalue()


# -- the observers' own formatting: the same text as twisted's, sooner ------------------

FORMATS = [
    ("session {session_id} of {device_id} ended: {outcome} ({messages} messages)",
     dict(session_id="1A2", device_id="IMEI:{1}", outcome="completed", messages=2)),
    ("{called()} {text!r} {number:>5} {seq[0]} {value.real} {{literal}}",
     dict(called=lambda: "called", text="x", number=3, seq=[9], value=1.5)),
    ("{width_from_a_field:{width}}", dict(width_from_a_field=3, width=5)),
    ("a missing {field}", {}),
    ("{value.method()}", dict(value=1)),
    ("unbalanced {", {}),
    (b"bytes {value}", dict(value=1)),
    (None, {}),
    ("", {}),
]


@pytest.mark.parametrize("fmt, fields", FORMATS)
def test_event_message_is_twisteds_text(fmt, fields):
    from twisted.logger import formatEvent

    event = dict(fields, log_format=fmt, log_time=1796486400.25, log_namespace="dmgateway.test")
    assert logs.event_message(event) == formatEvent(event)


@pytest.mark.parametrize("fmt, fields", FORMATS)
def test_text_observer_writes_what_event_as_text_gives(fmt, fields):
    from twisted.logger import eventAsText

    event = dict(fields, log_format=fmt, log_time=1796486400.25, log_namespace="dmgateway.test")
    stream = io.StringIO()
    logs.TextObserver(stream)(event)
    assert stream.getvalue() == eventAsText(event, includeSystem=False) + "\n"


@pytest.mark.parametrize("when", [1796486400.0, 1796486400.5, 1796486400.9999994, 1796486400.9999996, 0.0, None])
def test_seconds_cache_is_twisteds_format_time(when):
    from twisted.logger import formatTime

    cache = logs._SecondsCache()
    assert cache(when) == formatTime(when)
    assert cache(when) == formatTime(when)  # the cached text


def test_json_time_has_microseconds_in_utc():
    assert logs._iso_time(1796486400.123456) == "2026-12-05T16:00:00.123456Z"
    assert logs._iso_time(0.0) == "1970-01-01T00:00:00.000000Z"


# -- the JSON line put together by hand: json.dumps's very text ------------------------

_ODD = object()


@pytest.mark.parametrize("fields", [
    dict(session_id="1A2", device_id="IMEI:\u00e9\u2028\"\\\n\x00", messages=2, jobs=0, ok=True, no=False, none=None),
    dict(ratio=1.5, nan=float("nan"), inf=float("-inf"), big=10 ** 30, seq=[1, b"\xff", (2, None)],
         mapping={1: "x", "y": [_ODD]}, raw=b"\xff", peer=_ODD),
    dict(password="hunter2", api_token=b"t0k", time="not the time", level="x", logger="y", message="z",
         format="skipped", log_extra="skipped"),
    dict(text="\ud800 lone surrogate", flag=__import__("enum").IntEnum("E", "A").A),
    {},
])
@pytest.mark.parametrize("namespace", ["dmgateway.dispatch", None, "", 3])
def test_json_line_is_json_dumps_of_the_flat_event(fields, namespace):
    from twisted.logger import LogLevel

    event = dict(fields, log_format="session {session_id!r:>3}" if "session_id" in fields else "x {0}",
                 log_time=1796486400.123456, log_namespace=namespace, log_level=LogLevel.warn)
    expected = json.dumps(logs.flat_event(event), ensure_ascii=False, default=str)
    assert logs._json_line(event) == expected
    event.pop("log_level")
    assert logs._json_line(event) == json.dumps(logs.flat_event(event), ensure_ascii=False, default=str)


@pytest.mark.parametrize("level", ["debug", "info", "warn", "error", "critical"])
def test_level_filter_lets_through_what_twisteds_predicate_does(level):
    from twisted.logger import LogLevel, LogLevelFilterPredicate, PredicateResult

    logs.set_level(level)
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
    seen = []
    observer = logs._level_filtered(seen.append)
    events = [{"log_level": lvl, "log_namespace": ns} for lvl in list(LogLevel.iterconstants()) + [None]
              for ns in ("dmgateway.x", "", None)]
    for event in events:
        observer(event)
    assert seen == [event for event in events if predicate(event) is not PredicateResult.no]


@pytest.mark.parametrize("when", [1796486400.9999994, 1796486400.9999996, 1796486400.0000005, 1796486400.0000015,
                                  -0.5, -1e-7, -0.9999999, 2.0000025, 1796486399.999999, 4102444800.5])
def test_json_time_is_what_datetime_gives(when):
    s = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
    expected = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (
        s.year, s.month, s.day, s.hour, s.minute, s.second, s.microsecond)
    assert logs._iso_time(when) == expected
    assert logs._iso_time(when) == expected  # the second's text cached


def _captured(logger_class, call):
    events = []
    log = logger_class(namespace="dmgateway.test", observer=events.append)
    call(log)
    return log, events


@pytest.mark.parametrize("call", [
    lambda log: log.info("session {session_id} ended", session_id="1A2", jobs=1),
    lambda log: log.warn("locked out {peer}", peer="10.0.0.1"),
    lambda log: log.error("store down: {reason}", reason="x"),
    lambda log: log.debug("quiet"),
    lambda log: log.info(),
    lambda log: log.info("traced", log_trace=[]),
])
def test_logger_events_are_twisteds(call):
    ours, mine = _captured(logs.Logger, call)
    theirs, twisteds = _captured(Logger, call)
    assert len(mine) == len(twisteds) == 1
    (event,), (expected,) = mine, twisteds
    assert list(event) == list(expected)  # the same fields, in the same order
    assert event["log_logger"] is ours and expected["log_logger"] is theirs
    assert abs(event.pop("log_time") - expected.pop("log_time")) < 5
    if "log_trace" in event:
        assert event.pop("log_trace") == [(ours, ours.observer)]
        assert expected.pop("log_trace") == [(theirs, theirs.observer)]
    assert {k: v for k, v in event.items() if k != "log_logger"} == \
        {k: v for k, v in expected.items() if k != "log_logger"}


def test_logger_leaves_a_bad_level_to_twisted():
    events = []
    log = logs.Logger(namespace="dmgateway.test", observer=events.append)
    log.emit("loud", "not a level")
    (event,) = events
    assert event["log_level"].name == "critical" and event["invalidLevel"] == "loud"


def test_json_lines_of_one_call_site_reuse_their_plan():
    from twisted.logger import LogLevel

    def event(**fields):
        return dict(fields, log_format="{a}", log_time=1796486400.5, log_namespace="dmgateway.x",
                    log_level=LogLevel.info)

    for fields in (dict(a=1, password="p"), dict(a="two", password=None), dict(a=[3], password=b"q")):
        assert logs._json_line(event(**fields)) == json.dumps(logs.flat_event(event(**fields)),
                                                              ensure_ascii=False, default=str)
    odd = event(a=1, password="p")
    odd[7] = "a name that is no text"  # the generic way, which cannot write it either
    with pytest.raises(AttributeError):
        logs.flat_event(odd)
    with pytest.raises(AttributeError):
        logs._json_line(odd)


@pytest.mark.parametrize("method", ["debug", "info", "warn", "error", "critical"])
def test_the_gateways_logger_makes_twisteds_events(method):
    """Each level method hands on the fields it was given plus the same log_* keys, in twisted's order."""
    ours, theirs = [], []
    fields = dict(session_id="1", device_id="IMEI:1", messages=2, log_trace=None)
    for logger_class, events in ((logs.Logger, ours), (Logger, theirs)):
        logger = logger_class(namespace="dmgateway.test", observer=events.append)
        getattr(logger, method)("session {session_id} of {device_id}", **{k: v for k, v in fields.items()
                                                                             if k != "log_trace"})
        logger.emit(getattr(logs.LogLevel, method), "x {messages}", messages=3)
    assert len(ours) == len(theirs) == 2
    for mine, twisteds in zip(ours, theirs):
        assert list(mine) == list(twisteds)
        for key in mine:
            if key not in ("log_logger", "log_time"):
                assert mine[key] == twisteds[key], key
        assert logs.event_message(mine) == logs.event_message(twisteds)


def test_a_level_that_is_not_a_loglevel_is_left_to_twisted():
    events = []
    logs.Logger(namespace="dmgateway.test", observer=events.append).emit("loud", "x")
    assert events[0]["log_level"] is logs.LogLevel.critical and events[0]["invalidLevel"] == "loud"  # twisted reports it


@pytest.mark.parametrize("fmt", [
    "session {session_id} of {device_id}: {jobs} jobs, {ok} {none}",
    "{session_id!r:>12} {jobs:04d} {ratio:.2f} {seq[1]} {ok!s}",
    "{{literal}} 100% {session_id} {{{jobs}}}",
    "secret {password}",          # a redacted field: the message is twisted's (it holds the value)
    "{log_namespace} {log_time}",  # fields the line does not write
    "{} {0} {missing}",            # what format_map cannot render: twisted's text
    "{session_id:{jobs}}",         # a nested field in a spec
    "{session_id.upper}",          # an attribute (format_map's text)
    "{jobs:x!}",                   # a bad spec: format_map raises
    "{unclosed",
    None,
    b"bytes {jobs}",
])
@pytest.mark.parametrize("namespace", ["dmgateway.100%", "dmgateway.x"])
def test_json_line_message_from_the_planned_values_is_format_maps(fmt, namespace):
    """A call site's line renders its message from the values it writes; the
    text is what json.dumps writes for the flat event, whatever the format."""
    from twisted.logger import LogLevel

    for fields in (dict(session_id="1A\u00e9\"%s", device_id="IMEI:1", jobs=3, ok=True, none=None,
                        ratio=0.5, seq=[1, 2], password="hunter2", **{"odd%name": "%d"}),
                   dict(session_id=7, device_id=None, jobs=-1, ok=False, none="x", ratio=2,
                        seq=("a", "b"), password=b"p", **{"odd%name": 1.5})):
        event = dict(fields, log_format=fmt, log_time=1796486400.000001, log_namespace=namespace,
                     log_level=LogLevel.info)
        for _ in range(2):  # the plan made, then the plan reused
            assert logs._json_line(event) == json.dumps(logs.flat_event(event), ensure_ascii=False, default=str)
        assert json.loads(logs._json_line(event))["password"] == "[redacted]"
