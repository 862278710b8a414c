"""Structured logs: JSON events with fields, level filtering, the [logging] file."""

import io
import json
from types import SimpleNamespace

from twisted.logger import LogLevel, Logger, LogPublisher, globalLogPublisher

from dmgateway import logs


def records(text):
    """JSON log records: each starts with RS (0x1E) and ends with a newline (RFC 7464)."""
    return [line.strip("\x1e") for line in text.split("\n") if line.strip("\x1e")]


def test_json_observer_writes_one_event_per_line_with_fields(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(logs.sys, "stdout", out)
    publisher = LogPublisher(logs.json_observer())
    log = Logger(namespace="dmgateway.test", observer=publisher)
    log.info("session {session_id} ended: {outcome}", session_id="1A2", outcome="completed")
    log.debug("not shown at info")
    (line,) = records(out.getvalue())
    event = json.loads(line)
    assert event["session_id"] == "1A2" and event["outcome"] == "completed"
    assert event["log_namespace"] == "dmgateway.test"


def test_logging_file_gets_json_events(tmp_path):
    path = tmp_path / "gw.json"
    observer = logs.install_json_log(SimpleNamespace(format="json", level="warn", file=str(path)))
    try:
        Logger(namespace="dmgateway.test").warn("device {device_id} locked out", device_id="IMEI:1")
        Logger(namespace="dmgateway.test").info("below the level")
    finally:
        globalLogPublisher.removeObserver(observer)
        stream = logs._installed.pop()[1]
        stream.close()
    lines = [json.loads(line) for line in records(path.read_text())]
    assert [e["device_id"] for e in lines if e.get("log_namespace") == "dmgateway.test"] == ["IMEI:1"]
    assert all(e["log_level"]["name"] != LogLevel.info.name for e in lines if e.get("log_namespace") == "dmgateway.test")
