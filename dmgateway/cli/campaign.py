"""
C{dmgw campaign} and C{dmgw firmware}: device-function campaigns and
firmware packages through the REST API v1.

    dmgw campaign create (--json JSON | --file F) [--devices-csv CSV]
    dmgw campaign list | get ID | pause ID | resume ID | cancel ID
    dmgw campaign report ID [--format json|csv] [-o FILE]
    dmgw campaign watch ID [--interval S] [--once]     live progress bar
    dmgw firmware upload FILE --name N --version V [--man M --model M --from-fwv V]
    dmgw firmware register --url URL --name N --version V [...]
    dmgw firmware list

The connection options are those of C{dmgw api} (C{--url}, C{--token-file},
C{--token}, C{--timeout}).  Exit status: 0 on success, 1 when the API
answers an error, 2 on usage, input or connection errors.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from typing import Any, TextIO
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

from dmgateway.cli.api import (
    API_ERROR, DEFAULT_TOKEN_FILE, DEFAULT_URL, OK, USAGE, _Client, _connection_arguments, _error_message,
    _Failed, _print, _read_body, _token,
)

BAR = 40
FINAL = ("done", "cancelled")


def add_arguments(subparsers: Any) -> None:
    defaults = {"url": DEFAULT_URL, "token_file": DEFAULT_TOKEN_FILE, "token": None, "timeout": 30.0}
    campaign = subparsers.add_parser("campaign", help="device-function campaigns (FUMO, SCOMO, LAWMO)",
                                     description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _connection_arguments(campaign, defaults)
    sub = campaign.add_subparsers(dest="campaign_command", metavar="COMMAND", required=True)
    create = sub.add_parser("create", help="start a campaign")
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--json", metavar="JSON", help="the campaign as JSON text")
    source.add_argument("--file", metavar="FILE", help="read the campaign JSON from FILE ('-': stdin)")
    create.add_argument("--devices-csv", metavar="CSV",
                        help="select the devices listed in CSV (first column, or a device_id column)")
    create.set_defaults(run=_create)
    sub.add_parser("list", help="list campaigns").set_defaults(run=_list)
    for name, handler in (("get", _get), ("pause", _act), ("resume", _act), ("cancel", _act)):
        p = sub.add_parser(name, help="%s a campaign" % ("show" if name == "get" else name))
        p.add_argument("campaign_id", metavar="ID")
        p.set_defaults(run=handler, action=name)
    report = sub.add_parser("report", help="the per-device report")
    report.add_argument("campaign_id", metavar="ID")
    report.add_argument("--format", choices=("json", "csv"), default="json")
    report.add_argument("-o", "--output", help="write to this file instead of standard output")
    report.set_defaults(run=_report)
    watch = sub.add_parser("watch", help="follow a campaign with a live progress bar")
    watch.add_argument("campaign_id", metavar="ID")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between updates (default 2)")
    watch.add_argument("--once", action="store_true", help="print the progress once and stop")
    watch.set_defaults(run=_watch)
    campaign.set_defaults(func=run)

    firmware = subparsers.add_parser("firmware", help="firmware packages for FUMO campaigns")
    _connection_arguments(firmware, defaults)
    fsub = firmware.add_subparsers(dest="firmware_command", metavar="COMMAND", required=True)
    for name in ("upload", "register"):
        p = fsub.add_parser(name, help="upload a package file" if name == "upload" else "register an external URL")
        if name == "upload":
            p.add_argument("path", metavar="FILE")
        else:
            p.add_argument("--url", required=True, dest="package_url")
        p.add_argument("--name", required=True)
        p.add_argument("--version", required=True)
        p.add_argument("--man")
        p.add_argument("--model")
        p.add_argument("--from-fwv")
        p.set_defaults(run=_upload if name == "upload" else _register)
    fsub.add_parser("list", help="list packages").set_defaults(run=_firmware_list)
    firmware.set_defaults(func=run)


def _devices_from_csv(path: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise _Failed(USAGE, f"cannot read {path}: {e}") from None
    if not rows:
        raise _Failed(USAGE, f"{path} is empty")
    column = 0
    header = [cell.strip().lower() for cell in rows[0]]
    if "device_id" in header:
        column, rows = header.index("device_id"), rows[1:]
    devices = [row[column].strip() for row in rows if len(row) > column and row[column].strip()]
    if not devices:
        raise _Failed(USAGE, f"{path} lists no device")
    return devices


def _create(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    body = _read_body(args, stdin)
    if args.devices_csv:
        if not isinstance(body, dict):
            raise _Failed(USAGE, "the campaign must be a JSON object")
        body["selection"] = {"devices": _devices_from_csv(args.devices_csv)}
    _print(out, client.call("POST", "/api/v1/campaigns", body))


def _list(client, args, out, stdin):
    _print(out, client.call("GET", "/api/v1/campaigns"))


def _path(args):
    return "/api/v1/campaigns/" + quote(args.campaign_id, safe="")


def _get(client, args, out, stdin):
    _print(out, client.call("GET", _path(args)))


def _act(client, args, out, stdin):
    _print(out, client.call("POST", _path(args) + "/" + args.action, {}))


def _raw(client: _Client, method: str, path: str, data: bytes | None = None, ctype: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {client.token}"}
    if ctype:
        headers["Content-Type"] = ctype
    try:
        with urlopen(Request(client.base + path, data=data, headers=headers, method=method),
                     timeout=client.timeout) as response:
            return response.read()
    except HTTPError as e:
        raise _Failed(API_ERROR, _error_message(e)) from None
    except (URLError, OSError, ValueError) as e:
        raise _Failed(USAGE, f"cannot reach {client.base}: {getattr(e, 'reason', e)}") from None


def _report(client, args, out, stdin):
    body = _raw(client, "GET", _path(args) + "/report?format=" + args.format)
    if args.output:
        with open(args.output, "wb") as f:
            f.write(body)
    else:
        out.write(body.decode("utf-8"))


def progress_line(view: dict[str, Any]) -> str:
    """One line: bar, counts by state and result code."""
    progress = view.get("progress", {})
    states = progress.get("by_state", {})
    total = max(1, sum(states.values()))
    over = sum(states.get(s, 0) for s in ("done", "failed", "expired", "skipped", "cancelled"))
    filled = int(BAR * over / total)
    bar = "#" * filled + "-" * (BAR - filled)
    counts = " ".join(f"{k}={states[k]}" for k in sorted(states))
    codes = " ".join(f"{k}:{v}" for k, v in sorted(progress.get("by_result", {}).items()))
    line = f"[{bar}] {over}/{total} {view.get('state')} wave {view.get('wave')}/{view.get('waves')} {counts}"
    if codes:
        line += f" codes {codes}"
    if view.get("state") == "paused" and view.get("reason"):
        line += f" ({view['reason']})"
    return line


def _watch(client, args, out, stdin):
    tty = hasattr(out, "isatty") and out.isatty()
    while True:
        view = client.call("GET", _path(args))
        line = progress_line(view)
        out.write(("\r\x1b[K" + line) if tty else line + "\n")
        out.flush()
        if args.once or view.get("state") in FINAL:
            if tty:
                out.write("\n")
            return
        time.sleep(max(0.1, args.interval))


def _upload(client, args, out, stdin):
    try:
        with open(args.path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise _Failed(USAGE, f"cannot read {args.path}: {e.strerror}") from None
    query = {"name": args.name, "version": args.version, "man": args.man, "model": args.model,
             "from_fwv": args.from_fwv, "size": str(len(data)), "sha256": hashlib.sha256(data).hexdigest()}
    path = "/api/v1/firmware?" + urlencode({k: v for k, v in query.items() if v is not None})
    _print(out, json.loads(_raw(client, "POST", path, data, "application/octet-stream")))


def _register(client, args, out, stdin):
    body = {"name": args.name, "version": args.version, "url": args.package_url, "man": args.man,
            "model": args.model, "from_fwv": args.from_fwv}
    _print(out, client.call("POST", "/api/v1/firmware", {k: v for k, v in body.items() if v is not None}))


def _firmware_list(client, args, out, stdin):
    _print(out, client.call("GET", "/api/v1/firmware"))


def run(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
        stdin: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        client = _Client(args.url, _token(args), args.timeout)
        args.run(client, args, out, stdin or sys.stdin)
    except _Failed as e:
        err.write(f"dmgw {args.command}: {e.message}\n")
        return e.status
    except KeyboardInterrupt:
        return 130
    return OK
