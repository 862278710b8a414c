"""Tables for ``dmgw api`` lists (devices, jobs, events), drawn with rich.

Scripts use ``--json`` instead: the API's own JSON, unchanged.
"""

from __future__ import annotations

from typing import Any, TextIO

from rich.console import Console
from rich.table import Table


def _console(out: TextIO) -> Console:
    return Console(file=out, width=160, highlight=False, soft_wrap=False)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def devices(out: TextIO, answer: dict[str, Any]) -> None:
    table = Table(title="devices", title_justify="left")
    for name in ("device", "server id", "msisdn", "Man", "Mod", "FwV", "last session", "locked out"):
        table.add_column(name, overflow="fold")
    for device in answer.get("devices", []):
        devinfo = device.get("devinfo") or {}
        session = device.get("last_session") or {}
        table.add_row(
            device.get("device_id"), _text(device.get("server_id")), _text(device.get("msisdn")),
            _text(devinfo.get("Man")), _text(devinfo.get("Mod")), _text(devinfo.get("FwV")),
            _text(session.get("ended")) + ("" if not session else " (%s)" % session.get("outcome", "?")),
            _text(device.get("locked_out")),
        )
    _console(out).print(table)
    _next(out, answer)


def jobs(out: TextIO, answer: dict[str, Any]) -> None:
    table = Table(title="jobs", title_justify="left")
    for name in ("job", "device", "state", "error"):
        table.add_column(name, overflow="fold")
    for job in answer.get("jobs", []):
        error = job.get("error") or {}
        table.add_row(job.get("id"), _text(job.get("device_id")), _text(job.get("state")),
                      _text(error.get("code")))
    _console(out).print(table)
    _next(out, answer)


def events(out: TextIO, answer: dict[str, Any]) -> None:
    table = Table(title="events", title_justify="left")
    for name in ("seq", "time", "type", "device", "details"):
        table.add_column(name, overflow="fold")
    for event in answer.get("events", []):
        details = ", ".join(
            "%s=%s" % (k, _text(v)) for k, v in event.items() if k not in ("seq", "time", "type", "device_id")
        )
        table.add_row(_text(event.get("seq")), _text(event.get("time")), _text(event.get("type")),
                      _text(event.get("device_id")), details)
    _console(out).print(table)


def _next(out: TextIO, answer: dict[str, Any]) -> None:
    if answer.get("next"):
        out.write("more: --%s %s\n" % ("cursor" if "devices" in answer else "after", answer["next"]))
