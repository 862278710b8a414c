"""CPU per DM session inside one process, without HTTP: the dispatcher's share.

The gateway is built as ``twistd dmgateway`` builds it (same config files,
a file SQLite store, the text log written to a file), devices are provisioned
through a real daemon's REST API first, then each session's messages go
straight to ``Dispatcher.answer_dm`` (what the DM-2 site calls).  What this
measures is everything a session costs except the HTTP bearer: decode, auth,
engine, store, encode, logging.  Run it on a quiet machine::

    .venv/bin/python bench/inproc.py [--sessions 1000] [--encoding xml,wbxml]
        [--trace]        # also count SQL statements per session
        [--profile F]    # cProfile the measured sessions into F
        [--log twistd|json|text]  # the log observer: twistd's own text one
                                  # (default), or dmgateway.logs' (systemd unit)
        [--max-msg-size N]  # the client announces MaxMsgSize N in its SyncHdr
                            # Meta, as real devices do (the server then
                            # measures every reply it fills)
        [--jobs N]       # jobs (one Get each) per device (default 1)
        [--callgrind]    # count instructions instead of timing (below)

It prints CPU (all threads, /proc) per session in ms, the reactor thread's
share, and with ``--trace`` the statements per session.

``--callgrind`` runs this script again under valgrind's callgrind
(``PYTHONHASHSEED=0``), collecting only inside the measured sessions'
``answer_dm`` calls (each called through ``operator.call``, the function
callgrind's ``--toggle-collect`` switches on; nothing on the DM path calls
it), and prints the gateway's instructions per session: deterministic, to
~0.1% between runs, where the CPU figures vary by tens of percent on a
shared machine.  Work the store hands to its pool's thread (a WAL
checkpoint every 200 write transactions) is outside those calls and not
counted.  Run it with and without ``--jobs N`` for the cost of an extra
job; ``--sessions 100`` takes a few minutes.
"""

import argparse
import cProfile
import operator
import os
import subprocess
import sys
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, task  # noqa: E402
from twisted.logger import globalLogBeginner, textFileLogObserver  # noqa: E402

from bench.scratch import scratch_dir  # noqa: E402
from bench.session import account, cpu_seconds, provision  # noqa: E402
from dmgateway.client import ClientSession  # noqa: E402
from dmgateway.config import load_config  # noqa: E402
from dmgateway.tap import GatewayService  # noqa: E402
from tests.interop.daemon import Daemon  # noqa: E402


def _content_type(headers):
    for name, value in (headers or {}).items():
        if name.lower() == "content-type":
            return value
    return None


def _header(headers, wanted):
    for name, value in (headers or {}).items():
        if name.lower() == wanted:
            return value
    return None


def _direct(function, *args, **kwargs):
    return function(*args, **kwargs)


CLIENT_CPU = [0.0]  # thread CPU seconds spent in the client's own code, subtracted


async def one_session(dispatcher, acc, encoding, max_msg_size=None, counted=False):
    clock = time.thread_time
    started = clock()
    session = ClientSession(acc, random_bytes=os.urandom, encoding=encoding, max_msg_size=max_msg_size)
    request = session.start()
    CLIENT_CPU[0] += clock() - started
    while request is not None:
        query = urllib.parse.urlsplit(request.url).query
        token = urllib.parse.parse_qs(query).get("s", [None])[0]
        ctype = _content_type(request.headers)
        call = operator.call if counted else _direct
        reply = call(
            dispatcher.answer_dm,
            request.body,
            encoding=ctype.split(";")[0].strip().lower(),
            hmac_header=_header(request.headers, "x-syncml-hmac"),
            token=token,
            peer="127.0.0.1:40000",
        )
        if isinstance(reply, defer.Deferred):
            reply = await reply
        started = clock()
        headers = dict(reply.headers)
        headers["Content-Type"] = reply.content_type
        request = session.receive(reply.body, headers)
        CLIENT_CPU[0] += clock() - started
    if session.outcome != "completed":
        raise SystemExit("session did not complete: %s %s" % (session.outcome, session.error))


def count_statements(store):
    """Wrap the store's connections so that every execute is counted."""
    counter = [0]
    from dmgateway.store import database

    execute = database.Txn.execute

    def counted(self, *a, **kw):
        counter[0] += 1
        return execute(self, *a, **kw)

    database.Txn.execute = counted
    return counter


async def main(reactor, args):
    workdir = scratch_dir("dmgw-inproc-")
    encodings = args.encoding.split(",")
    total = args.sessions * len(encodings)
    daemon = Daemon(workdir)
    daemon.start()
    try:
        print("provisioning %d devices with %d job(s) each ..." % (total, args.jobs), flush=True)
        provision(daemon, total, args.jobs)
    finally:
        daemon.stop()
    os.chdir(workdir)  # the store path in the config is relative to it, as for the daemon
    config = load_config(daemon.conf)
    if args.log == "twistd":  # what twistd writes without --logger
        observer = textFileLogObserver(open(os.path.join(workdir, "inproc.log"), "a"))
    else:  # --logger=dmgateway.logs.json_observer (the systemd unit), or text_observer
        from dmgateway.logs import LogFile

        observer = LogFile(os.path.join(workdir, "inproc.log"), args.log).observer
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    service = GatewayService(config, reactor=reactor, config_dir=daemon.conf)
    service.startService()
    await service.ready
    dispatcher = service.dispatcher
    counter = count_statements(service.store) if args.trace else None
    from dmgateway.daemon import tune_gc

    tune_gc()
    pid = os.getpid()
    n = 0
    try:
        for encoding in encodings:
            accounts = [account(daemon, k) for k in range(n, n + args.sessions)]
            n += args.sessions
            for acc in accounts[:20]:  # warm up caches and code paths
                await one_session(dispatcher, acc, encoding, args.max_msg_size)
            accounts = accounts[20:]
            profiler = cProfile.Profile() if args.profile else None
            statements = counter[0] if counter else 0
            cpu, main_cpu = cpu_seconds(pid, threads=True)
            client = CLIENT_CPU[0]
            if profiler:
                profiler.enable()
            for acc in accounts:
                await one_session(dispatcher, acc, encoding, args.max_msg_size, counted=args.callgrind_child)
            if profiler:
                profiler.disable()
                profiler.dump_stats("%s.%s" % (args.profile, encoding))
            cpu2, main2 = cpu_seconds(pid, threads=True)
            client = CLIENT_CPU[0] - client
            line = "%-5s gateway %.3f ms CPU/session (reactor thread %.3f; the client's %.3f taken out)" % (
                encoding, (cpu2 - cpu - client) / len(accounts) * 1000,
                (main2 - main_cpu - client) / len(accounts) * 1000, client / len(accounts) * 1000)
            if counter:
                line += ", %.1f SQL statements/session" % ((counter[0] - statements) / len(accounts),)
            print(line, flush=True)
    finally:
        await service.stopService()


def run_callgrind(args):
    """Run this script under callgrind, one encoding at a time; print instructions per session."""
    workdir = scratch_dir("dmgw-inproc-cg-")
    measured = args.sessions - 20
    if measured <= 0:
        raise SystemExit("--callgrind needs --sessions over 20 (the first 20 warm up, uncounted)")
    for encoding in args.encoding.split(","):
        out = os.path.join(workdir, "callgrind.%s" % (encoding,))
        command = [
            "valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=_operator_call",
            "--callgrind-out-file=" + out, sys.executable, os.path.abspath(__file__),
            "--callgrind-child", "--sessions", str(args.sessions), "--encoding", encoding,
            "--jobs", str(args.jobs), "--log", args.log,
        ]
        if args.max_msg_size:
            command += ["--max-msg-size", str(args.max_msg_size)]
        environ = dict(os.environ, PYTHONHASHSEED="0")
        result = subprocess.run(command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stderr[-4000:])
            return result.returncode
        with open(out) as f:
            totals = [line for line in f if line.startswith("totals:") or line.startswith("summary:")]
        instructions = int(totals[-1].split()[1])
        print("%-5s gateway %.1fk instructions/session in answer_dm (%d sessions, %d job(s) each; %s)"
              % (encoding, instructions / measured / 1000, measured, args.jobs, out), flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--encoding", default="xml,wbxml")
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--profile")
    parser.add_argument("--log", choices=("twistd", "json", "text"), default="twistd")
    parser.add_argument("--max-msg-size", type=int, help="the MaxMsgSize the client announces (default: none)")
    parser.add_argument("--jobs", type=int, default=1, help="jobs (one Get each) per device")
    parser.add_argument("--callgrind", action="store_true", help="count instructions under callgrind instead")
    parser.add_argument("--callgrind-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.callgrind and not args.callgrind_child:
        raise SystemExit(run_callgrind(args))
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, args)))
