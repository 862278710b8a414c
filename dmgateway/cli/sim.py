"""``dmgw sim``: the device simulator from the shell.

    dmgw sim session --url URL --device IMEI:... [--scheme md5|basic|hmac] [--wbxml]
    dmgw sim session --device IMEI:... --bootstrap FILE [--pin PIN] [--imsi IMSI] [--card]
    dmgw sim fleet --count N --rate R --concurrency C --url URL [--provision ...] [--json]
    dmgw sim fleet --wake sms --smsc-listen tcp:2775 --smsc-system-id gw --smsc-password pw ...
    dmgw sim fleet --wake sip --sip-listen 127.0.0.1:5060 --sip-domain 127.0.0.1 ...

``session`` runs one session and prints every message as readable XML under
a direction header, then a summary; exit 0 when the session completed, 1
when it did not.  With ``--bootstrap`` the device first takes its account
from a bootstrap: a WSP push (as ``deliver: return`` or an SMSC gives it)
whose SEC/MAC must verify with ``--pin`` / ``--imsi`` (else exit 1, nothing
applied), or with ``--card`` a smart-card file (the bare WBXML document,
0xFF padding ignored, no MAC); the session then goes to the account's
server address.  ``fleet`` runs many devices (generated, or from ``--csv``)
and prints the summary (JSON with ``--json``); exit 0 when every session
completed, 1 otherwise.  Usage errors exit 2.

With ``--wake sms`` the simulator is the operator's SMSC: the gateway's
``smpp.ini`` endpoint points at ``--smsc-listen``, and every WAP push it
submits wakes the device it is addressed to.  With ``--wake sip`` it is
the SIP proxy of ``sip.ini`` and every MESSAGE wakes its device.  The
listener starts (and, for SMS, waits for the gateway to bind) before
``--provision`` creates devices and jobs.
"""

import argparse
import json
import os
import sys

from dmgateway.cli.decode import Failed, decode_to_xml

__all__ = ["add_arguments", "format_transcript", "format_summary"]

# the same defaults as ``dmgw api``
DEFAULT_API = "http://127.0.0.1:8081/api/v1"
DEFAULT_TOKEN_FILE = "var/api.token"

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE = 0, 1, 2


class _Usage(Exception):
    """A one-line usage problem: exit status 2."""


def add_arguments(subparsers):
    """Register ``sim`` and its commands on a ``dmgw`` sub-parser set."""
    sim = subparsers.add_parser("sim", help="simulated devices: one session or a fleet",
                                description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = sim.add_subparsers(dest="sim_command", metavar="COMMAND", required=True)

    p = commands.add_parser("session", help="run one DM session and print its transcript")
    p.add_argument("--url", help="the gateway's DM URL, e.g. http://host:8080/dm "
                   "(required unless --bootstrap gives it)")
    p.add_argument("--bootstrap", metavar="FILE", help="take the account from this bootstrap "
                   "push (or, with --card, smart-card file) first")
    p.add_argument("--pin", help="the bootstrap's PIN (USERPINMAC: PIN and MAC digits)")
    p.add_argument("--imsi", help="the card's IMSI, for NETWPIN / USERNETWPIN")
    p.add_argument("--card", action="store_true",
                   help="--bootstrap is a smart-card file: a bare document, no SEC/MAC")
    p.add_argument("--device", required=True, help="the DevId, e.g. IMEI:350000000000001")
    p.add_argument("--client-name", help="CLCRED AAuthName (default: the device id)")
    p.add_argument("--client-secret", default="", help="CLCRED AAuthSecret")
    p.add_argument("--server-name", default="dmgateway",
                   help="SRVCRED AAuthName, the server id (default dmgateway)")
    p.add_argument("--server-secret", default="", help="SRVCRED AAuthSecret")
    p.add_argument("--client-nonce", default="", help="current client nonce, base64")
    p.add_argument("--server-nonce", default="", help="current server nonce, base64")
    p.add_argument("--scheme", choices=("md5", "basic", "hmac"), default="md5")
    _session_options(p)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP exchange")
    p.add_argument("--quiet", action="store_true", help="only the summary, no messages")
    p.set_defaults(func=_run_session)

    p = commands.add_parser("fleet", help="run many simulated devices and report figures")
    p.add_argument("--url", required=True, help="the gateway's DM URL")
    p.add_argument("--count", type=int, default=100, help="devices generated (default 100)")
    p.add_argument("--rate", type=float, default=0.0, help="sessions started per second "
                   "(default 0: as fast as the concurrency allows)")
    p.add_argument("--concurrency", type=int, default=8, help="sessions in flight at most")
    p.add_argument("--sessions", type=int, help="stop after this many sessions "
                   "(default: one per device unless --duration)")
    p.add_argument("--duration", type=float, help="stop starting sessions after S seconds")
    p.add_argument("--csv", help="devices from this CSV (device_id,client_name,client_secret,"
                   "server_name,server_secret,msisdn,sip_uri) instead of generated ones")
    p.add_argument("--scheme", choices=("md5", "basic", "hmac"), default="md5")
    p.add_argument("--server-name", default="dmgateway", help="server id / SRVCRED name")
    p.add_argument("--seed", default="dmgw-sim", help="secret seed of generated devices")
    p.add_argument("--first", type=int, help="number of the first generated device: the "
                   "ids IMEI:35<13 digits> are then the same in every run (default 0; with "
                   "--provision and no --first, a fresh random block of ids for this run)")
    p.add_argument("--reuse-ids", action="store_true",
                   help="with --provision: let generated ids replace existing accounts")
    p.add_argument("--sip-domain", help="give generated devices sip:<imei>@DOMAIN")
    p.add_argument("--api", default=DEFAULT_API,
                   help="REST API base, as for dmgw api (default %s)" % (DEFAULT_API,))
    p.add_argument("--token-file", default=DEFAULT_TOKEN_FILE,
                   help="file holding the API bearer token (default %s)" % (DEFAULT_TOKEN_FILE,))
    p.add_argument("--provision", action="store_true",
                   help="create the devices through the API first (never over existing "
                   "accounts unless --reuse-ids or --first)")
    p.add_argument("--job-get", action="append", metavar="URI",
                   help="with --provision, give each device a job with a Get of URI "
                   "(with --wake: a Get of ./DevDetail/SwV unless given)")
    p.add_argument("--wake", choices=("sms", "sip"),
                   help="devices wait for a wake-up of this kind before each session")
    p.add_argument("--smsc-listen", metavar="ENDPOINT",
                   help="with --wake sms: the SMSC's endpoint, e.g. tcp:2775:interface=127.0.0.1")
    p.add_argument("--smsc-system-id", default="", help="system_id the gateway binds with")
    p.add_argument("--smsc-password", default="", help="password the gateway binds with")
    p.add_argument("--smsc-bind-wait", type=float, default=15.0, metavar="S",
                   help="seconds to wait for the gateway to bind before going on (default 15)")
    p.add_argument("--smsc-no-receipts", action="store_true",
                   help="send no delivery receipts to transceivers")
    p.add_argument("--sip-listen", metavar="HOST:PORT",
                   help="with --wake sip: where the SIP endpoint (the gateway's proxy) listens")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP exchange")
    p.add_argument("--progress", action="store_true",
                   help="progress line on stderr even when it is not a terminal")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--functions", action="store_true",
                   help="devices play FUMO, SCOMO and LAWMO (Exec 202, downloads, completion alerts)")
    p.add_argument("--fwv", default="1.0", help="with --functions: the devices' firmware version (default 1.0)")
    p.add_argument("--fail", action="append", metavar="FUNCTION:FRACTION:CODE", default=[],
                   help="with --functions: this fraction of devices fails FUNCTION with CODE, e.g. fumo:0.05:402")
    p.add_argument("--report-delay", type=float, default=0.0, metavar="S",
                   help="with --functions: seconds between an operation's end and its report session")
    p.add_argument("--mixed-encodings", action="store_true",
                   help="every other device talks WBXML, the rest XML")
    _session_options(p)
    p.set_defaults(func=_run_fleet)
    return sim


def _function_models(devices, args):
    from dmgateway.client.functions import DeviceFunctions, FunctionPolicy

    failures = {}
    for spec in args.fail:
        function, fraction, code = spec.split(":")  # ValueError when malformed
        if function not in ("fumo", "scomo", "lawmo") or not 0 <= float(fraction) <= 1:
            raise ValueError("expected FUNCTION:FRACTION:CODE, e.g. fumo:0.05:402, not %r" % (spec,))
        failures[function] = (float(fraction), int(code))
    policy = FunctionPolicy(failures)
    return {d.device_id: DeviceFunctions(d.device_id, fwv=args.fwv, policy=policy) for d in devices}


def _function_summary(models, runner):
    versions = {}
    for model in models.values():
        versions[model.fwv] = versions.get(model.fwv, 0) + 1
    return {"accepted": sum(m.accepted for m in models.values()), "fwv": versions,
            "downloads": dict(runner.downloads)}


def _session_options(p):
    p.add_argument("--wbxml", action="store_true", help="talk WBXML (default XML)")
    p.add_argument("--max-msg-size", type=int, help="MaxMsgSize announced in package 1")


# -- one session -------------------------------------------------------------------


def _b64(text, what):
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=True) if text else b""
    except (binascii.Error, ValueError):
        raise _Usage("%s is not base64" % (what,)) from None


def _readable(body):
    """Pretty XML of a SyncML message (XML or WBXML), or a note when undecodable."""
    from dmgateway.codec.errors import CodecError

    try:
        return decode_to_xml(body).decode("utf-8")
    except (CodecError, Failed, ValueError) as error:
        return "(%d bytes, not decodable: %s)\n" % (len(body), error)


def format_transcript(exchanges):
    """Text of ``[(direction, url, body)]``: a header line and pretty XML per message."""
    from dmgateway.codec import sniff_encoding

    lines = []
    for number, (direction, url, body) in enumerate(exchanges, start=1):
        arrow = "device -> gateway" if direction == "out" else "gateway -> device"
        lines.append("=== #%d %s  %s  (%s, %d bytes)" % (
            number, arrow, url, sniff_encoding(body) if body else "empty", len(body)))
        lines.append(_readable(body).rstrip("\n"))
    return "\n".join(lines) + ("\n" if lines else "")


def format_summary(session, error=None):
    """A readable end-of-session summary."""
    lines = ["--- summary",
             "outcome:      %s" % (session.outcome or "unfinished",),
             "session id:   %s" % (session.session_id,),
             "messages:     %d sent (%d bytes), %d received (%d bytes)" % (
                 session.counters["messages_sent"], session.counters["bytes_sent"],
                 session.counters["messages_received"], session.counters["bytes_received"]),
             "client auth:  %s" % ("accepted (212)" if session.client_authenticated
                                   else "not confirmed",),
             "server auth:  %s" % ("verified" if session.server_authenticated else "not verified",)]
    if session.executed:
        lines.append("executed:")
        lines.extend("  %-8s %-40s %s" % (cmd, target, status)
                     for cmd, target, status in session.executed)
    if error is not None:
        lines.append("transport:    %s" % (error,))
    elif session.error:
        lines.append("error:        %s" % (session.error,))
    if session.log:
        lines.append("log:")
        lines.extend("  " + entry for entry in session.log)
    return "\n".join(lines) + "\n"


def _device_from_args(args):
    from dmgateway.client.sim import SimDevice

    return SimDevice(args.device, args.client_name or args.device, args.client_secret,
                     args.server_name, args.server_secret, scheme=args.scheme,
                     client_nonce=_b64(args.client_nonce, "--client-nonce"),
                     server_nonce=_b64(args.server_nonce, "--server-nonce"))


def _encoding(args):
    return "wbxml" if args.wbxml else "xml"


def _session_kwargs(args):
    options = {"encoding": _encoding(args)}
    if args.max_msg_size:
        options["max_msg_size"] = args.max_msg_size
    return options


def _react(main):
    from dmgateway.client.fleet import react

    return react(main)


def _bootstrapped_session(args):
    """The session of the account a bootstrap file gives (None: refused, reported)."""
    from dmgateway.tree.standard import standard_tree
    from dmgateway.client.bootstrap import BootstrapError, accept_bootstrap, apply_bootstrap

    try:
        with open(args.bootstrap, "rb") as f:
            data = f.read()
    except OSError as error:
        raise _Usage("cannot read %s: %s" % (args.bootstrap, error.strerror or error)) from None
    tree = standard_tree({"DevId": args.device})
    try:
        if args.card:
            if data[:1] and data[0] <= 0x03:
                data = data.rstrip(b"\xff")
            account = apply_bootstrap(tree, data)
        else:
            account = accept_bootstrap(tree, data, pin=args.pin, imsi=args.imsi)
    except BootstrapError as error:
        sys.stdout.write("bootstrap refused: %s\n" % (error,))
        return None
    if not args.quiet:
        sys.stdout.write("bootstrapped: %s at %s (%s)\n" % (account.server_id, account.server_url,
                                                            account.name))
    if args.url:
        account.server_url = args.url
    from dmgateway.client.session import ClientSession

    return ClientSession(account, tree=tree, random_bytes=os.urandom, **_session_kwargs(args))


def _run_session(args):
    try:
        if args.bootstrap:
            session = _bootstrapped_session(args)
            if session is None:
                return EXIT_INCOMPLETE
        else:
            if not args.url:
                raise _Usage("--url is required (or --bootstrap)")
            device = _device_from_args(args)
            session = device.session(args.url, random_bytes=os.urandom, **_session_kwargs(args))
    except ValueError as error:
        return _usage(args, error)
    except _Usage as error:
        return _usage(args, error)
    exchanges = []

    def record(request):
        if request is not None:
            exchanges.append(("out", request.url, request.body))
        return request

    receive = session.receive

    def recorded_receive(body, headers=None):
        exchanges.append(("in", session.url, body))
        return record(receive(body, headers))

    session.receive = recorded_receive

    def main(reactor):
        from dmgateway.client.http import run_session

        request = record(session.start())
        return run_session(session, reactor, request=request, timeout=args.timeout)

    failure = None
    try:
        _react(main)
    except Exception as error:  # noqa: BLE001 - reported in the summary
        failure = error
    if not args.quiet:
        sys.stdout.write(format_transcript(exchanges))
    sys.stdout.write(format_summary(session, failure))
    sys.stdout.flush()
    return EXIT_OK if session.outcome == "completed" else EXIT_INCOMPLETE


def _usage(args, error):
    print("dmgw sim %s: %s" % (args.sim_command, error), file=sys.stderr)
    return EXIT_USAGE


# -- a fleet ---------------------------------------------------------------------------


def _load_devices(args):
    from dmgateway.client import sim

    if args.csv:
        try:
            with open(args.csv, newline="", encoding="utf-8") as f:
                return sim.load_csv(f, scheme=args.scheme, server_name=args.server_name)
        except OSError as error:
            raise _Usage("cannot read %s: %s" % (args.csv, error.strerror or error)) from None
        except sim.CsvError as error:
            raise _Usage("%s: %s" % (args.csv, error)) from None
    if args.count < 1:
        raise _Usage("--count must be at least 1")
    prefix, first = "35", args.first or 0
    if args.provision and args.first is None and not args.reuse_ids:
        # a block of ids of this run's own: IMEI:35<5 random digits><8 digits>
        import random

        prefix = "35%05d" % (random.SystemRandom().randrange(100000),)
    try:
        return list(sim.pattern_devices(args.count, start=first, imei_prefix=prefix, scheme=args.scheme,
                                        seed=args.seed, server_name=args.server_name,
                                        sip_domain=args.sip_domain))
    except ValueError as error:
        raise _Usage(str(error)) from None


def _api_base(url):
    """``.../api/v1`` whether or not the option named it (``dmgw api`` takes the bare base)."""
    url = url.rstrip("/")
    return url if url.endswith("/api/v1") else url + "/api/v1"


def _token(args):
    if not args.token_file:
        raise _Usage("--provision needs --api and --token-file")
    try:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as error:
        raise _Usage("cannot read %s: %s" % (args.token_file, error.strerror or error)) from None
    if not token:
        raise _Usage("token file %s is empty" % (args.token_file,))
    return token


def format_summary_text(summary):
    """The fleet summary as a few readable lines."""
    latency = summary["latency_ms"]
    histogram = summary.get("latency_histogram") or []
    lines = [
        "sessions:    %d (%d completed) in %.2f s" % (
            summary["sessions"], summary["completed"], summary["elapsed_s"]),
        "rate:        %s sessions/s" % (summary["sessions_per_s"],),
        "latency ms:  p50 %s  p90 %s  p99 %s  mean %s  max %s" % (
            latency["p50"], latency["p90"], latency["p99"], latency["mean"], latency["max"]),
        "outcomes:    %s" % (", ".join("%s %d" % item for item in sorted(
            summary["outcomes"].items())) or "-",),
        "errors:      %s" % (", ".join("%s %d" % item for item in summary["errors"].items()),),
    ]
    if histogram:
        lines.append("latency histogram (ms):")
        widest = max(bucket["count"] for bucket in histogram) or 1
        for bucket in histogram:
            label = "<= %g" % bucket["le_ms"] if bucket["le_ms"] is not None else "> %g" % histogram[-2]["le_ms"]
            bar = "#" * round(40 * bucket["count"] / widest)
            lines.append(("  %-10s %7d  %s" % (label, bucket["count"], bar)).rstrip())
    if summary.get("provisioned") is not None:
        lines.insert(0, "provisioned: %d devices" % (summary["provisioned"],))
    if summary["wakeups"]:
        lines.append("wake-ups:    %s" % (", ".join("%s %d" % item for item in sorted(
            summary["wakeups"].items())),))
    if summary.get("wake_source"):
        lines.append("wake source: %s" % (", ".join("%s %d" % item for item in sorted(
            summary["wake_source"].items())),))
    for kind, samples in sorted(summary["error_samples"].items()):
        for sample in samples:
            lines.append("  %s: %s" % (kind, sample))
    return "\n".join(lines) + "\n"


async def _start_wake_source(reactor, wake, args):
    """Listen, and for SMS give the gateway ``--smsc-bind-wait`` seconds to bind."""
    from dmgateway.client.wakesources import start_source

    warning = await start_source(reactor, wake, bind_wait=args.smsc_bind_wait)
    if warning:
        print("dmgw sim fleet: %s; going on" % (warning,), file=sys.stderr)


def _run_fleet(args):
    try:
        devices = _load_devices(args)
        token = _token(args) if args.provision else None
        if args.provision and not args.api:
            raise _Usage("--provision needs --api and --token-file")
        if args.concurrency < 1:
            raise _Usage("--concurrency must be at least 1")
        wake_factory = None
        if args.wake:
            from dmgateway.client.wakesources import WAKE_SOURCES

            wake_factory = WAKE_SOURCES.get(args.wake)
            if wake_factory is None:
                raise _Usage("no %s wake source is available in this installation "
                              "(none registered in dmgateway.client.wakesources.WAKE_SOURCES)"
                              % (args.wake,))
            if args.duration is None and args.sessions is None:
                raise _Usage("--wake needs --duration or --sessions")
            needed = {"sms": ("smsc_listen", "--smsc-listen ENDPOINT"),
                      "sip": ("sip_listen", "--sip-listen HOST:PORT")}[args.wake]
            if not getattr(args, needed[0]):
                raise _Usage("no %s wake source configured: --wake %s needs %s"
                             % (args.wake, args.wake, needed[1]))
            if args.wake == "sip":
                from dmgateway.client.wakesources import parse_host_port

                try:
                    parse_host_port(args.sip_listen)
                except ValueError as error:
                    raise _Usage("--sip-listen: %s" % (error,)) from None
    except _Usage as error:
        return _usage(args, error)

    function_models = None
    if args.functions:
        try:
            function_models = _function_models(devices, args)
        except ValueError as error:
            return _usage(args, _Usage("--fail: %s" % (error,)))

    def main(reactor):
        from dmgateway.client import fleet, sim

        async def go():
            wake = wake_factory(reactor, devices, args) if wake_factory else None
            try:
                if wake is not None:
                    await _start_wake_source(reactor, wake, args)
                provisioned = None
                if args.provision:
                    gets = args.job_get or (["./DevDetail/SwV"] if args.wake else None)
                    job = sim.api_job(gets, notify=args.wake or "none") if gets else None
                    provisioned = await fleet.provision(
                        reactor, _api_base(args.api), token, devices, server_id=args.server_name, job=job,
                        concurrency=min(args.concurrency, 16),
                        replace=args.reuse_ids or args.first is not None)
                extra = {}
                if args.functions:
                    extra = dict(functions=function_models, report_delay=args.report_delay)
                if args.mixed_encodings:
                    extra["encoding_for"] = lambda d: ("wbxml", "xml")[sum(d.device_id.encode()) % 2]
                runner = fleet.FleetRunner(
                    reactor, devices, args.url, rate=args.rate, concurrency=args.concurrency,
                    sessions=args.sessions, duration=args.duration, wake_source=wake,
                    progress=fleet.progress_stream(args.progress), timeout=args.timeout,
                    **_session_kwargs(args), **extra)
                summary = await runner.run()
                if args.functions:
                    summary["functions"] = _function_summary(function_models, runner)
            finally:
                if wake is not None:
                    await wake.stop()
            summary["provisioned"] = provisioned
            summary["devices"] = len(devices)
            if wake is not None:
                summary["wake_source"] = dict(sorted(wake.counters.items()))
            return summary

        return go()

    try:
        summary = _react(main)
    except Exception as error:  # noqa: BLE001 - one line, not a traceback
        print("dmgw sim fleet: %s" % (error,), file=sys.stderr)
        return EXIT_INCOMPLETE
    if args.json:
        json.dump(summary, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_summary_text(summary))
    sys.stdout.flush()
    ok = summary["sessions"] > 0 and summary["completed"] == summary["sessions"]
    return EXIT_OK if ok else EXIT_INCOMPLETE
