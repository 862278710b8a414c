"""Instructions per DM session through the real daemon, against a bare echo (valgrind callgrind).

The same sessions as bench/session.py (2 HTTP exchanges, MD5 both ways,
one Get; devices provisioned through the REST API), with the daemon
(``twistd dmgateway``, SQLite store, the shipped systemd unit's JSON
logger) and the bare twisted.web echo each running under ``valgrind
--tool=callgrind --instr-atstart=no``.  For every cell (encoding x
concurrency) it runs ``--warmup`` sessions uncounted, then switches the
daemon's instrumentation on (``callgrind_control -i on PID``), runs
``--sessions`` sessions, switches it off and dumps the counters
(``callgrind_control -d PID``: a dump file whose ``totals:`` line is read);
then the same for the echo, fed the request bodies those sessions sent, in
the same order and concurrency.  It prints, per cell, the gateway's
instructions per session, the echo's per session's worth of requests and
the **instruction ratio** (echo / gateway): the instruction-count reading
of bench/session.py's CPU ratio.  The work the processes do per second
rather than per session (the gateway's periodic scans: outbox, campaigns,
metrics; ~250k instructions/s here, the echo ~40k/s) is counted first,
``--idle`` seconds with no traffic, and taken out of each cell at that
rate: under valgrind a session lasts ~50x longer than natively, so that
work would weigh ~50x more than it does (1.5% of the gateway's count
instead of a few hundredths of a percent).  Both processes run with
PYTHONHASHSEED=0, so that their dicts' collisions repeat between runs.

The echo is twisted.web's ``server.Site``, whose Request parses each
POST's Content-Type through the email package (two classes built per
request by its header registry: about a quarter of the echo's
instructions); the gateway's own HTTP/1.1 reader does not.  That is part
of the baseline bench/session.py defines.

Why: on a small shared machine, CPU time per session varies by up to 2x
between runs; these counts repeat to ~0.3% at concurrency 1 and ~1.5% at
16 (where how requests batch in the reactor's reads depends on timing),
so a change of a few percent in the gateway's cost shows here when it is
lost in bench/session.py's noise.

Limits: callgrind counts the instructions each process executes in user
space (all its threads: the reactor's and the store's pool), nothing else.
Not the kernel's work for their system calls (loopback TCP, SQLite's
writes, epoll: bench/session.py prints the gateway's user/system split),
and not cache misses or branch mispredictions: an instruction of a hot
loop and one that waits on memory count the same.  So the instruction
ratio need not equal the CPU ratio (it reads higher here), and a saving
in instructions is a saving in user-space CPU only roughly: it complements
bench/session.py's CPU ratio, it does not replace it.

``--cache-sim`` also has callgrind simulate the caches (L1 32 KiB each,
the last level as one core's private L2: this machine's size, read from
sysfs, unless given) and prints L1 and L2 misses per session for both
processes: where the time goes that the instructions do not show.  An L2
miss waits for the shared L3 or memory, tens to hundreds of cycles: the
gateway touches more distinct code and data per session than the echo
(its Python functions' bytecode and objects, SQLite's pages, the codec),
and does so once per message, so it misses far more often per
instruction.  About 3x slower than counting instructions alone.

Time: 6 to 11 minutes with the defaults on 2 shared cores, by their load
(start-up under valgrind and provisioning the 880 devices 2-3 minutes,
the idle count 30 s, then 1-2 minutes a cell).

    .venv/bin/python bench/instructions.py [--sessions 200] [--warmup 20] [--idle 30] [--concurrency 1,16]
        [--encodings xml,wbxml] [--logger twistd] [--keep DIR]  # DIR keeps the dumps, for callgrind_annotate
        [--cache-sim [L2_BYTES]]  # also L1/L2 misses per session (simulated)
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, reactor, task  # noqa: E402
from twisted.web.client import Agent, HTTPConnectionPool  # noqa: E402

from bench.session import Recorder, provision, run_echo, run_gateway, start_echo  # noqa: E402
from tests.interop.daemon import Daemon  # noqa: E402

START_TIMEOUT = 600.0  # seconds: Python and Twisted start ~50x slower under valgrind on a busy machine
# str hashes salted alike in every run, so that dict collisions, and the instructions of their lookups, repeat
SAME_HASHES = {"PYTHONHASHSEED": "0"}


def core_l2_bytes(sysfs="/sys/devices/system/cpu/cpu0/cache"):
    """This machine's per-core L2 size in bytes (sysfs), or 512 KiB if it says none."""
    for index in sorted(glob.glob(os.path.join(sysfs, "index*"))):
        try:
            with open(os.path.join(index, "level")) as level, open(os.path.join(index, "size")) as size:
                if level.read().strip() == "2":
                    text = size.read().strip()
                    return int(text[:-1]) * {"K": 1024, "M": 1024 * 1024}[text[-1]]
        except (OSError, ValueError, KeyError):
            continue
    return 512 * 1024


#: the L2 simulated with --cache-sim unless given
CORE_L2_BYTES = core_l2_bytes()


def callgrind_prefix(out_file, l2_bytes=None):
    """The command line that runs a process under callgrind, counting nothing until told to.

    ``l2_bytes``: also simulate the caches, the last level as a core's
    private L2 of that size (8-way, 64-byte lines), L1 as 32 KiB each.
    """
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", "--quiet",
        "--callgrind-out-file=" + out_file,
    ]
    if l2_bytes:
        command += ["--cache-sim=yes", "--I1=32768,8,64", "--D1=32768,8,64", "--LL=%d,8,64" % (l2_bytes,)]
    return command


def callgrind_events(text):
    """{event: count} of a callgrind dump: its ``totals:`` line, else its ``summary:``; ``Ir`` always there."""
    events, counts = None, {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if not colon:
            continue
        if key == "events":
            events = value.split()
        elif key in ("totals", "summary"):
            counts[key] = value.split()
    if events is None or "Ir" not in events or not counts:
        raise ValueError("not a callgrind dump with Ir totals")
    figures = counts.get("totals", counts.get("summary"))
    return {event: int(figure) for event, figure in zip(events, figures)}


def callgrind_totals(text):
    """Instructions (``Ir``) a callgrind dump counted."""
    return callgrind_events(text)["Ir"]


#: the cache simulation's misses, summed: (name, events)
MISSES = (("L1 misses", ("I1mr", "D1mr", "D1mw")), ("L2 misses", ("ILmr", "DLmr", "DLmw")))


class Counted:
    """One process running under callgrind: its instrumentation switched on and off, its dumps read."""

    def __init__(self, name, out_file):
        self.name = name
        self.out_file = out_file
        self.pid = None
        self._since = None  # time.monotonic() when counting started

    def control(self, *options):
        command = ["callgrind_control", *options, str(self.pid)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError("%s failed: %s%s" % (" ".join(command), done.stdout, done.stderr))

    def start_counting(self):
        self.control("--zero")
        self.control("--instr=on")
        self._since = time.monotonic()

    def stop_counting(self):
        """({event: count}, seconds) since start_counting; the dump zeroes the counters."""
        seconds = time.monotonic() - self._since
        self.control("--instr=off")
        before = set(glob.glob(self.out_file + ".*"))
        self.control("--dump=" + self.name)
        dumps = set(glob.glob(self.out_file + ".*")) - before
        if len(dumps) != 1:
            raise RuntimeError("expected one new callgrind dump of %s, found %s" % (self.name, sorted(dumps)))
        with open(dumps.pop()) as f:
            return callgrind_events(f.read()), seconds


async def idle_rates(counters, seconds):
    """Instructions per second each process runs idle (the gateway's periodic scans, its timers).

    That work goes by the second of wall time, not by the session, and under
    valgrind a session takes ~50x longer than natively: left in a cell's
    count, it would weigh ~50x more than in a native run, so it is taken out
    at this rate.
    """
    for counter in counters:
        counter.start_counting()
    await task.deferLater(reactor, seconds, lambda: None)
    return [
        {event: count / elapsed for event, count in counts.items()}
        for counts, elapsed in (counter.stop_counting() for counter in counters)
    ]


def busy(counts, seconds, idle):
    """{event: count} of a cell, the idle processes' rate for its ``seconds`` taken out."""
    return {event: count - idle.get(event, 0.0) * seconds for event, count in counts.items()}


async def measure_cell(daemon, gateway, echo, echo_counter, echo_port, encoding, concurrency, warm, counted, agent):
    """((instructions, seconds) of the gateway, of the echo, requests) for the ``counted`` devices' sessions."""
    recorder = Recorder()
    await run_gateway(daemon, encoding, warm, concurrency, recorder, agent)
    await run_echo(echo, echo_port, recorder.requests, concurrency, agent)
    recorder = Recorder()
    gateway.start_counting()
    await run_gateway(daemon, encoding, counted, concurrency, recorder, agent)  # raises unless all completed
    gateway_count = gateway.stop_counting()
    if len(recorder.requests) != len(counted):
        raise SystemExit("%d sessions recorded of %d" % (len(recorder.requests), len(counted)))
    echo_counter.start_counting()
    await run_echo(echo, echo_port, recorder.requests, concurrency, agent)
    echo_count = echo_counter.stop_counting()
    return gateway_count, echo_count, sum(len(requests) for requests in recorder.requests)


async def main(args):
    started = time.monotonic()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    cells = [(encoding, c) for encoding in args.encodings.split(",") for c in concurrencies]
    workdir = args.keep or tempfile.mkdtemp(prefix="dmgw-instr-")
    os.makedirs(workdir, exist_ok=True)
    daemon = Daemon(os.path.join(workdir, "daemon"))
    if args.logger != "twistd":
        daemon.twistd_options = ["--logger=" + args.logger]
    gateway = Counted("gateway", os.path.join(workdir, "gateway.callgrind"))
    daemon.command_prefix = callgrind_prefix(gateway.out_file, args.cache_sim)
    daemon.start_timeout = START_TIMEOUT
    daemon.env.update(SAME_HASHES)
    echo = None
    echo_counter = Counted("echo", os.path.join(workdir, "echo.callgrind"))
    pool = HTTPConnectionPool(reactor)
    pool.maxPersistentPerHost = max(concurrencies)
    agent = Agent(reactor, pool=pool)
    try:
        print("starting the daemon and the echo under callgrind ...", flush=True)
        daemon.start()
        gateway.pid = daemon.process.pid
        echo, echo_port = start_echo(callgrind_prefix(echo_counter.out_file, args.cache_sim),
                                     dict(os.environ, **SAME_HASHES))
        echo_counter.pid = echo.pid
        per_cell = args.warmup + args.sessions
        print("provisioning %d devices with %d job(s) each ..." % (per_cell * len(cells), args.jobs), flush=True)
        provision(daemon, per_cell * len(cells), args.jobs)
        print("measuring the idle processes for %g s (%.0f s so far) ..." % (args.idle, time.monotonic() - started),
              flush=True)
        idle = await idle_rates([gateway, echo_counter], args.idle)
        print("measuring the sessions ...", flush=True)
        results = {}
        for number, (encoding, concurrency) in enumerate(cells):
            first = number * per_cell
            warm = range(first, first + args.warmup)
            counted = range(first + args.warmup, first + per_cell)
            results[encoding, concurrency] = await measure_cell(
                daemon, gateway, echo, echo_counter, echo_port, encoding, concurrency, warm, counted, agent)
        print(
            "instructions (callgrind Ir, user space, all threads) per session: %d counted sessions per cell, "
            "all completed, after %d uncounted (2 HTTP exchanges, MD5 both ways, %s); idle work taken out: "
            "gateway %.0fk/s, echo %.0fk/s" % (args.sessions, args.warmup,
                                               "one Get" if args.jobs == 1 else "%d jobs of one Get" % args.jobs,
                                               idle[0]["Ir"] / 1e3, idle[1]["Ir"] / 1e3)
        )
        for (encoding, concurrency), counts in results.items():
            (gateway_counts, gateway_s), (echo_counts, echo_s), requests = counts
            gateway_busy = busy(gateway_counts, gateway_s, idle[0])
            echo_busy = busy(echo_counts, echo_s, idle[1])
            print(
                "%-5s c=%-3d gateway %6.3fM/session (idle %.1f%% out)  bare echo %6.3fM/session's %d requests  "
                "instruction ratio %.3f"
                % (encoding, concurrency, gateway_busy["Ir"] / args.sessions / 1e6,
                   100 * (1 - gateway_busy["Ir"] / gateway_counts["Ir"]),
                   echo_busy["Ir"] / args.sessions / 1e6, requests // args.sessions,
                   echo_busy["Ir"] / gateway_busy["Ir"])
            )
            if args.cache_sim:
                for name, events in MISSES:
                    gateway_misses = sum(gateway_busy[event] for event in events) / args.sessions
                    echo_misses = sum(echo_busy[event] for event in events) / args.sessions
                    print("%-5s c=%-3d   %s (simulated) gateway %6.1fk/session  bare echo %6.1fk  ratio %.3f"
                          % (encoding, concurrency, name, gateway_misses / 1e3, echo_misses / 1e3,
                             echo_misses / gateway_misses))
        print("took %.0f s" % (time.monotonic() - started,))
    finally:
        await pool.closeCachedConnections()
        daemon.stop()
        if echo is not None:
            echo.terminate()
            echo.wait(60)
        if args.keep:
            print("callgrind dumps kept in %s (callgrind_annotate FILE)" % (args.keep,))
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=200, help="counted sessions per cell")
    parser.add_argument("--warmup", type=int, default=20, help="uncounted sessions per cell before them")
    parser.add_argument("--idle", type=float, default=30.0,
                        help="seconds the idle processes are counted for, to take their timers' work out")
    parser.add_argument("--jobs", type=int, default=1,
                        help="jobs (one Get each) per device: run with 1 and with N, the gateway's difference"
                             " over N - 1 is its cost per extra job in a session")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated concurrencies")
    parser.add_argument("--encodings", default="xml,wbxml", help="comma-separated: xml, wbxml")
    parser.add_argument(
        "--logger", default="dmgateway.logs.json_observer",
        help="twistd --logger the daemon runs with: by default the shipped systemd unit's; "
             "'twistd' for twistd's own text observer")
    parser.add_argument(
        "--cache-sim", nargs="?", type=int, const=CORE_L2_BYTES, default=None, metavar="L2_BYTES",
        help="also simulate the caches and print L1 and L2 misses per session (L2: a core's private "
             "cache, %d bytes unless given; about 3x slower)" % (CORE_L2_BYTES,))
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it: the callgrind dumps, the daemon's log")
    options = parser.parse_args()
    task.react(lambda _reactor: defer.ensureDeferred(main(options)))
