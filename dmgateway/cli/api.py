"""
C{dmgw api}: call the gateway's REST API v1 from a shell.

    dmgw api [--url URL] [--token-file F | --token T] COMMAND
      devices [FILTERS] [--limit N] [--cursor C | --all] [--json]
                                                 the inventory (filters: --server-id,
                                                 --man, --mod, --fwv, --has-msisdn,
                                                 --locked-out, --never-seen yes|no,
                                                 --last-session-after/--before TIME)
      device put ID (--json JSON | --file F)     create/update an account
      device get ID
      device delete ID [--purge]                 delete it (pending jobs cancelled)
      job create ID (--json JSON | --file F)     queue a job for a device
      job get JOB
      job cancel JOB
      jobs ID [--limit N] [--after JOB] [--json] one page of a device's jobs
      events [--after N] [--wait S] [--limit N] [--json] [--follow [--count N]]
      delegation create (--json JSON | --file F)  delegate devices to a peer (DM-6)
      delegation get ID                          state and step history
      delegation revoke ID                       revoke (delegating side)

Lists (devices, jobs, events) print as tables, or the API's JSON with
C{--json}; single objects print as indented JSON (C{--follow}: one event
per line).
Exit status: 0 on 2xx, 1 when the API answers an error (its code and
message go to stderr), 2 on usage, input or connection errors.

Synchronous (urllib), so it needs no reactor.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

DEFAULT_URL = "http://127.0.0.1:8081"
DEFAULT_TOKEN_FILE = "var/api.token"
FOLLOW_WAIT = 30.0

OK, API_ERROR, USAGE = 0, 1, 2


class _Failed(Exception):
    """
    Stop with C{status}, telling the user C{message}.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _body_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--json", metavar="JSON", help=f"the {what} as JSON text")
    source.add_argument("--file", metavar="FILE", help=f"read the {what} JSON from FILE ('-': stdin)")


def _connection_arguments(
    parser: argparse.ArgumentParser, defaults: dict[str, Any] | None
) -> None:
    """
    The options saying where the API is; without C{defaults} they leave the
    namespace alone unless given.
    """

    def default(name: str) -> Any:
        return argparse.SUPPRESS if defaults is None else defaults[name]

    parser.add_argument(
        "--url", default=default("url"), help=f"API base URL (default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--token-file", default=default("token_file"),
        help=f"file holding the bearer token (default {DEFAULT_TOKEN_FILE})",
    )
    parser.add_argument(
        "--token", default=default("token"),
        help="the bearer token itself (overrides --token-file)",
    )
    parser.add_argument(
        "--timeout", type=float, default=default("timeout"),
        help="seconds to wait for an answer, on top of any --wait (default 30)",
    )


class _Commands:
    """
    A sub-parser set whose commands also accept the connection options.
    """

    def __init__(self, subparsers: Any, common: argparse.ArgumentParser) -> None:
        self._subparsers = subparsers
        self._common = common

    def add_parser(self, name: str, **kw: Any) -> argparse.ArgumentParser:
        return self._subparsers.add_parser(name, parents=[self._common], **kw)


def add_arguments(subparsers: Any) -> argparse.ArgumentParser:
    """
    Register C{api} and its commands on a C{dmgw} sub-parser set.  The
    parsed namespace's C{func(args)} runs the command and returns the exit
    status.
    """
    api = subparsers.add_parser(
        "api",
        help="call the gateway's REST API v1",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _connection_arguments(api, {
        "url": DEFAULT_URL, "token_file": DEFAULT_TOKEN_FILE, "token": None, "timeout": 30.0,
    })
    # The same options after the command too (dmgw api device get ID --url ...).
    anywhere = argparse.ArgumentParser(add_help=False)
    _connection_arguments(anywhere, None)
    commands = _Commands(api.add_subparsers(dest="api_command", metavar="COMMAND", required=True), anywhere)

    device = commands.add_parser("device", help="device accounts")
    device_commands = _Commands(
        device.add_subparsers(dest="action", metavar="ACTION", required=True), anywhere
    )
    put = device_commands.add_parser("put", help="create or update a device account")
    put.add_argument("device_id", metavar="ID", help="the DevId, e.g. IMEI:350000000000001")
    _body_arguments(put, "account")
    put.set_defaults(run=_device_put)
    get = device_commands.add_parser("get", help="show a device account")
    get.add_argument("device_id", metavar="ID")
    get.set_defaults(run=_device_get)
    unlock = device_commands.add_parser(
        "unlock", help="lift a device's authentication lockouts (all peer addresses)"
    )
    unlock.add_argument("device_id", metavar="ID")
    unlock.set_defaults(run=_device_unlock)

    delete = device_commands.add_parser("delete", help="delete a device account (its pending jobs are cancelled)")
    delete.add_argument("device_id", metavar="ID")
    delete.add_argument("--purge", action="store_true", help="delete its events too (default: keep the history)")
    delete.set_defaults(run=_device_delete)

    devices = commands.add_parser("devices", help="list devices (the inventory), with filters")
    for option, help_text in (
        ("--server-id", "only this server id"), ("--man", "DevInfo Man"), ("--mod", "DevInfo Mod"),
        ("--fwv", "FwV reported with DevInfo"),
        ("--last-session-after", "last session ended at or after this ISO 8601 time"),
        ("--last-session-before", "last session ended before this ISO 8601 time"),
    ):
        devices.add_argument(option, help=help_text)
    for option, help_text in (
        ("--has-msisdn", "with (yes) or without (no) an MSISDN"),
        ("--locked-out", "locked out now (yes) or not (no)"),
        ("--never-seen", "no session yet (yes) or at least one (no)"),
    ):
        devices.add_argument(option, choices=("yes", "no"), help=help_text)
    devices.add_argument("--limit", type=int, help="devices per page (default 100)")
    paging = devices.add_mutually_exclusive_group()
    paging.add_argument("--cursor", help="continue from this cursor (the 'next' of a page)")
    paging.add_argument("--all", action="store_true", help="follow every page to the end")
    devices.add_argument("--json", dest="as_json", action="store_true", help="print the API's JSON")
    devices.set_defaults(run=_devices)

    job = commands.add_parser("job", help="jobs")
    job_commands = _Commands(
        job.add_subparsers(dest="action", metavar="ACTION", required=True), anywhere
    )
    create = job_commands.add_parser("create", help="queue a job for a device")
    create.add_argument("device_id", metavar="ID")
    _body_arguments(create, "job")
    create.set_defaults(run=_job_create)
    show = job_commands.add_parser("get", help="show a job with its results")
    show.add_argument("job_id", metavar="JOB")
    show.set_defaults(run=_job_get)
    cancel = job_commands.add_parser("cancel", help="cancel a queued or notified job")
    cancel.add_argument("job_id", metavar="JOB")
    cancel.set_defaults(run=_job_cancel)

    delegation = commands.add_parser("delegation", help="DM-6 delegations to/from peers")
    delegation_commands = _Commands(
        delegation.add_subparsers(dest="action", metavar="ACTION", required=True), anywhere
    )
    create_delegation = delegation_commands.add_parser(
        "create", help="delegate devices to a peer server")
    _body_arguments(create_delegation, "delegation")
    create_delegation.set_defaults(run=_delegation_create)
    for action, runner, text in (("get", _delegation_get, "show a delegation and its steps"),
                                 ("revoke", _delegation_revoke, "revoke a delegation")):
        sub = delegation_commands.add_parser(action, help=text)
        sub.add_argument("delegation_id", metavar="ID")
        sub.set_defaults(run=runner)

    jobs = commands.add_parser("jobs", help="list a device's jobs (one page)")
    jobs.add_argument("device_id", metavar="ID")
    jobs.add_argument("--limit", type=int, help="jobs per page")
    jobs.add_argument("--after", metavar="JOB", help="start after this job id (the 'next' of a page)")
    jobs.add_argument("--json", dest="as_json", action="store_true", help="print the API's JSON")
    jobs.set_defaults(run=_jobs)

    events = commands.add_parser("events", help="read the event log")
    events.add_argument("--after", type=int, default=0, help="show events after this seq (default 0)")
    events.add_argument(
        "--wait", type=float,
        help=f"long-poll up to this many seconds (default 0; {FOLLOW_WAIT:g} with --follow)",
    )
    events.add_argument("--limit", type=int, help="events per answer")
    events.add_argument(
        "--follow", action="store_true", help="keep polling, one JSON event per line"
    )
    events.add_argument("--count", type=int, help="with --follow: stop after this many events")
    events.add_argument("--json", dest="as_json", action="store_true", help="print the API's JSON")
    events.set_defaults(run=_events)

    api.set_defaults(func=run)
    return api


class _Client:
    """
    Blocking calls to the API.
    """

    def __init__(self, url: str, token: str, timeout: float) -> None:
        self.base = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(
        self, method: str, path: str, body: Any = None,
        query: dict[str, Any] | None = None, wait: float = 0.0,
    ) -> Any:
        url = self.base + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = Request(url, data=data, headers=headers, method=method)
        try:
            with urlopen(request, timeout=self.timeout + wait) as response:
                raw = response.read()
        except HTTPError as e:
            raise _Failed(API_ERROR, _error_message(e)) from None
        except (URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise _Failed(USAGE, f"cannot reach {self.base}: {reason}") from None
        try:
            return json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            raise _Failed(USAGE, f"{self.base} answered something that is not JSON") from None


def _error_message(error: HTTPError) -> str:
    try:
        body = json.loads(error.read().decode("utf-8"))
        detail = body["error"]
        return f"{detail['code']}: {detail['message']} (HTTP {error.code})"
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {error.code} {error.reason}"


def _read_body(args: argparse.Namespace, stdin: TextIO) -> Any:
    try:
        if args.json is not None:
            text, where = args.json, "--json"
        elif args.file == "-":
            text, where = stdin.read(), "stdin"
        else:
            with open(args.file, encoding="utf-8") as f:
                text, where = f.read(), args.file
    except (OSError, UnicodeDecodeError) as e:
        raise _Failed(USAGE, f"cannot read {args.file}: {e}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise _Failed(USAGE, f"{where} is not valid JSON: {e}") from None


def _device_path(device_id: str) -> str:
    return "/api/v1/devices/" + quote(device_id, safe="")


def _device_put(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    _print(out, client.call("PUT", _device_path(args.device_id), _read_body(args, stdin)))


def _device_get(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    _print(out, client.call("GET", _device_path(args.device_id)))


def _device_unlock(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    _print(out, client.call("DELETE", _device_path(args.device_id) + "/lockouts"))


def _device_delete(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    query = {"history": "purge"} if args.purge else None
    _print(out, client.call("DELETE", _device_path(args.device_id), query=query))


def _devices(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    from dmgateway.api import tables

    query = {
        "server_id": args.server_id, "man": args.man, "mod": args.mod, "fwv": args.fwv,
        "last_session_after": args.last_session_after, "last_session_before": args.last_session_before,
        "has_msisdn": _yes_no(args.has_msisdn), "locked_out": _yes_no(args.locked_out),
        "never_seen": _yes_no(args.never_seen), "limit": args.limit, "cursor": args.cursor,
    }
    answer = client.call("GET", "/api/v1/devices", query=query)
    while args.all and answer.get("next"):
        more = client.call("GET", "/api/v1/devices", query=dict(query, cursor=answer["next"]))
        answer = {"devices": answer["devices"] + more["devices"], "next": more["next"]}
    if args.as_json:
        _print(out, answer)
    else:
        tables.devices(out, answer)


def _yes_no(value: str | None) -> str | None:
    return None if value is None else ("true" if value == "yes" else "false")


def _job_cancel(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    _print(out, client.call("POST", "/api/v1/jobs/" + quote(args.job_id, safe="") + "/cancel", {}))


def _job_create(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    path = _device_path(args.device_id) + "/jobs"
    _print(out, client.call("POST", path, _read_body(args, stdin)))


def _job_get(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    _print(out, client.call("GET", "/api/v1/jobs/" + quote(args.job_id, safe="")))


def _delegation_create(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    _print(out, client.call("POST", "/api/v1/delegations", _read_body(args, stdin)))


def _delegation_get(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    _print(out, client.call("GET", "/api/v1/delegations/" + quote(args.delegation_id, safe="")))


def _delegation_revoke(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    _print(out, client.call("DELETE", "/api/v1/delegations/" + quote(args.delegation_id, safe="")))


def _jobs(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    from dmgateway.api import tables

    path = _device_path(args.device_id) + "/jobs"
    answer = client.call("GET", path, query={"limit": args.limit, "after": args.after})
    if args.as_json:
        _print(out, answer)
    else:
        tables.jobs(out, answer)


def _events(client: _Client, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    wait = args.wait if args.wait is not None else (FOLLOW_WAIT if args.follow else 0.0)
    query = {"after": args.after, "wait": f"{wait:.3f}", "limit": args.limit}
    if not args.follow:
        from dmgateway.api import tables

        answer = client.call("GET", "/api/v1/events", query=query, wait=wait)
        if args.as_json:
            _print(out, answer)
        else:
            tables.events(out, answer)
        return
    shown = 0
    while args.count is None or shown < args.count:
        answer = client.call("GET", "/api/v1/events", query=query, wait=wait)
        for event in answer["events"]:
            out.write(json.dumps(event, ensure_ascii=False) + "\n")
            out.flush()
            query["after"] = event["seq"]
            shown += 1
            if args.count is not None and shown >= args.count:
                return


def _print(out: TextIO, value: Any) -> None:
    out.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _token(args: argparse.Namespace) -> str:
    if args.token:
        return args.token.strip()
    try:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as e:
        raise _Failed(USAGE, f"cannot read token file {args.token_file}: {e.strerror}") from None
    if not token:
        raise _Failed(USAGE, f"token file {args.token_file} is empty")
    return token


def run(
    args: argparse.Namespace,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """
    Run a parsed C{dmgw api} command; returns the exit status.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        client = _Client(args.url, _token(args), args.timeout)
        args.run(client, args, out, stdin or sys.stdin)
    except _Failed as e:
        err.write(f"dmgw api: {e.message}\n")
        return e.status
    except KeyboardInterrupt:
        return 130
    return OK


def main(
    argv: list[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """
    C{dmgw api} on its own: C{argv} is what follows C{api}, e.g.
    C{main(["device", "get", "IMEI:350000000000001"])}.
    """
    parser = argparse.ArgumentParser(prog="dmgw")
    add_arguments(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    try:
        args = parser.parse_args(["api", *(sys.argv[1:] if argv is None else argv)])
    except SystemExit as e:
        return USAGE if e.code not in (0, None) else OK
    return args.func(args, stdout, stderr, stdin)


if __name__ == "__main__":
    sys.exit(main())
