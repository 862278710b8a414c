"""Structured logs.

Every log call in the gateway is a ``twisted.logger`` event with fields
(``session_id``, ``device_id``, ``bearer``, ``outcome`` ...), so the JSON form
can be filtered by monitoring without parsing text.  Two ways to get it:

* ``[logging] format = json`` with ``file = PATH`` writes one JSON event per
  line to PATH, next to twistd's usual text log;
* ``twistd --logger=dmgateway.logs.json_observer dmgateway ...`` makes JSON
  the only log on standard output (what the systemd unit uses, so the
  journal gets structured lines).
"""

import sys

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
    jsonFileLogObserver,
    textFileLogObserver,
)

_installed = []


def _level_filtered(observer, level_name):
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level_name))
    return FilteringLogObserver(observer, [predicate])


def json_observer():
    """A twistd ``--logger`` factory: JSON lines on standard output."""
    return _level_filtered(jsonFileLogObserver(sys.stdout), "info")


def install_json_log(logging_config):
    """Add the file observer ``[logging]`` asks for (once per process)."""
    path = getattr(logging_config, "file", "") or ""
    fmt = getattr(logging_config, "format", "text")
    level = getattr(logging_config, "level", "info")
    if not path or _installed:
        return None
    stream = open(path, "a", encoding="utf-8")
    if fmt == "json":
        observer = jsonFileLogObserver(stream)
    else:
        observer = textFileLogObserver(stream)
    observer = _level_filtered(observer, level)
    globalLogPublisher.addObserver(observer)
    _installed.append((observer, stream))
    return observer
