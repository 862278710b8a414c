"""A DM session's cost at 1k and at 1M registered devices, on SQLite files.

In one process, no network: two SQLite file stores, one with ``--small``
registered devices and one with ``--large``.  One device is registered
through the store (``put_device``); the others are copies of its row
inserted with SQL in one transaction, so the schema and the values are the
store's own.  Then the same sessions run against each: the real dispatcher
and session engine on the store (adbapi thread, the reactor run normally),
the devices played by the client library, random devices among the
registered ones (one Get job each, created beforehand and the store
reopened, so its page cache holds none of them).  Each measurement starts
from a copy of the filled store, so every session is its device's first
in both (reusing the small store's devices, its growing history of jobs
and sessions made its sessions dearer than the large one's).  Only the gateway's side
is timed: the CPU of the ``Dispatcher.handle_dm`` calls (``time.process_time``,
which counts the store's thread too).

Two fleets (``--fleet``).  ``new``: every device as registered, never
connected, so each session is the first one its row ever had: the row
grows by its DevInfo and its last session, and in a large store, whose
table pages were filled full at registration, that splits a page at
nearly every session (one page more, with its parent and sibling, in the
WAL), where a small store's pages split once for several sessions.
``used``: every device as after one session (the copied row is one that
had one), so the rows keep their size and the partial indexes on the
DevInfo and the last session's time hold every device, as in a fleet in
service.

``--warm`` reads every page of each opened store once, through each of
its connections, before its sessions (``PRAGMA quick_check``): a daemon
that has served its whole fleet for a while, whose sessions no longer meet
a page of the file for the first time.  Without it (the default) the 1M
store's sessions nearly all do, where the 1k store's pages are all met in
its first few blocks: the cold start of a large fleet, not its steady state.

Each run measures the daemon's ``cache_size``/``mmap_size`` defaults and
SQLite's own (2000 KiB of cache, no mmap).  Within a run both stores are
open side by side and their sessions alternate in blocks of ``--block``
(small, large, large, small, ...), so the machine's drifting speed falls
on both alike; each block ends once the store's thread has done what it
still had to (a WAL checkpoint), which is counted.  Printed, for each
setting: the median gateway CPU per session of each store's blocks, with
the process's minor page faults per session (pages of the file read for
the first time through the memory map) and its system CPU per session
(the kernel's share of the whole process's: faults, the WAL's writes, the
checkpoints'), with its read and write system calls per session (pages
read past the memory map into the page cache, the WAL's frames, the
checkpoints' reads of the WAL and writes of the file, and the reactor's
waker pipe: /proc/self/io), and
the ratio large/small: the
median of the pairs' ratios (each pair: the two blocks side by side) with
a 95% interval of that median (order statistics, distribution-free), and
the ratio of the totals.

``--instructions`` counts instead of timing, deterministically: the script
runs itself under valgrind's callgrind (``--dump-before=getppid``, which
it calls only before and after each store's sessions), one store after
the other, ``--sessions`` sessions each (100 take some 8 minutes), and
prints the instructions per session of each store: the whole process (the
gateway, the client library's identical work, the store's thread) and
SQLite's work in it (the SQLite library's, C library calls included),
with their differences large - small.  Compare SQLite's: it repeats to 1-2k
per session between runs of 20 sessions, where the whole process's
difference carries the order (the first store measured warms up Python's
caches for the second: -150k per session with 20 sessions).

``--setting NAME=QUERY`` (repeatable) measures these store URI options
instead of the two settings above (QUERY as after the URI's ``?``; empty
for the daemon's defaults), e.g. ``--setting "map 256 MiB=mmap_size=268435456"
--setting "defaults="``; ``checkpoint_every=N`` in QUERY sets the number of
writing transactions between the WAL checkpoints instead (not a store
option; the sessions alternate in blocks, so a checkpoint every more than
a block falls in some blocks only: compare the means, which count it).

``--keep DIR`` keeps the filled stores in DIR and reuses them (filling a
million devices takes some seconds; with ``--fleet used`` a minute): a file
is named by its fleet, its device count and the schema version it was
filled at, so one filled before a new migration is not reused.

    .venv/bin/python bench/store_scale.py [--large 1000000] [--sessions 400] [--runs 9]
        [--block 20] [--fleet new|used] [--keep DIR] [--warm] [--setting NAME=QUERY ...]
    .venv/bin/python bench/store_scale.py --instructions --sessions 100 [--fleet new|used] [--keep DIR]
"""

import argparse
import gc
import json
import math
import os
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, task  # noqa: E402

from bench.session_growth import JOB, Gateway, account_spec, device_id  # noqa: E402
from dmgateway.store.migrations import load_migrations  # noqa: E402
from dmgateway.store.sqlite import CACHE_SIZE_KIB, MMAP_SIZE, ReactorConnection  # noqa: E402

SETTINGS = {
    "daemon defaults (cache %d MiB, mmap %d MiB)" % (CACHE_SIZE_KIB // 1024, MMAP_SIZE >> 20): "",
    "SQLite's own (cache 2000 KiB, mmap 0)": "?cache_size=2000&mmap_size=0",
}


async def fill(path, count, fleet="new"):
    """
    A store at C{path} with C{count} devices: one put through the store
    (for the C{used} fleet, with one session of one job, whose job and
    events are then deleted), the rest copied in SQL.
    """
    gateway = Gateway()
    used = fleet == "used"
    await gateway.start([device_id(0)], 1 if used else 0, "sqlite:" + path)
    if used:
        await gateway.session(device_id(0))
    await gateway.store.close()
    started = time.monotonic()
    db = sqlite3.connect(path, isolation_level=None)
    if used:
        db.execute("DELETE FROM events")
        db.execute("DELETE FROM jobs")
    columns = [row[1] for row in db.execute("PRAGMA table_info(devices)") if row[1] != "device_id"]
    db.execute("BEGIN")
    db.execute(
        f"INSERT INTO devices (device_id, {', '.join(columns)})"
        " WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?)"
        f" SELECT printf('IMEI:35%013d', n), {', '.join('t.' + c for c in columns)}"
        " FROM seq, devices AS t WHERE t.device_id = ?",
        (count - 1, device_id(0)),
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (registered,) = db.execute("SELECT count(*) FROM devices").fetchone()
    db.close()
    assert registered == count, registered
    print("  %s: %d devices in %.1f s, %.0f MB" % (
        os.path.basename(path), count, time.monotonic() - started, os.path.getsize(path) / 1e6))


def restore(pristine, path):
    """C{path} a fresh copy of C{pristine}: every device as filled, no job, no session yet."""
    for leftover in (path, path + "-wal", path + "-shm"):
        if os.path.exists(leftover):
            os.remove(leftover)
    shutil.copyfile(pristine, path)


async def filled(directory, size, fleet):
    """The path of a filled store of C{size} devices in C{directory}, filled now unless there."""
    version = load_migrations()[-1].version
    path = os.path.join(directory, "store_scale-%s-%d-v%03d.sqlite" % (fleet, size, version))
    if os.path.exists(path) and not os.path.exists(path + "-wal"):
        print("  %s: reused" % (os.path.basename(path),))
        return path
    for leftover in (path, path + "-wal", path + "-shm"):
        if os.path.exists(leftover):
            os.remove(leftover)
    await fill(path, size, fleet)
    return path


def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def system_time():
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


_io = {"fd": None, "samples": 0}  # /proc/self/io, kept open, and how often io_calls has read it


def io_calls():
    """
    (read, write) system calls this process has made so far (Linux's
    /proc/self/io: pread64 and pwrite64 count there, and so do the
    reactor's waker pipe, a write and a read per transaction the pool's
    thread hands back), less this function's own reads of the file (one
    each, counted from the next), or (0, 0).
    """
    try:
        if _io["fd"] is None:
            _io["fd"] = os.open("/proc/self/io", os.O_RDONLY)
        text = os.pread(_io["fd"], 4096, 0).decode()  # (one read: the file is ~100 bytes)
    except OSError:
        return 0, 0
    counts = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        counts[key] = int(value)
    own = _io["samples"]
    _io["samples"] += 1
    return counts.get("syscr", 0) - own, counts.get("syscw", 0)


async def opened_cold(path, options, devices):
    """
    Jobs for C{devices}, the store reopened cold: its gateway, after one
    warm-up session (not counted: the schema read, the first statements
    prepared) of C{devices[0]}.
    """
    setup = Gateway()
    await setup.start([], 0, "sqlite:" + path + options)
    for device in devices:
        await setup.handlers.create_job(device, JOB)
    await setup.store.close()
    gateway = Gateway()
    await gateway.start([], 0, "sqlite:" + path + options)
    gateway.nonces = stored_nonces(path, devices[-1])
    await gateway.session(devices[0])
    await settled(gateway)
    return gateway


def stored_nonces(path, device):
    """
    (client, server) nonces the filled store holds for C{device}, which
    every copied device shares: a C{used} fleet's devices know them from
    their last session (without them, each session began with a failed
    authentication and a challenge, a message more).
    """
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT client_nonce, server_nonce FROM devices WHERE device_id = ?", (device,)).fetchone()
    finally:
        db.close()
    return tuple(bytes(nonce or b"") for nonce in row)


def _read_every_page(txn):
    rows = txn.fetchall("PRAGMA quick_check")
    if not rows or list(rows[0].values()) != ["ok"]:
        raise RuntimeError("the store failed its check: %r" % (rows[:3],))


async def warmed(gateway):
    """
    Every page of C{gateway}'s store read once through each of its
    connections (the reactor thread's, then the pool's): the state of a
    daemon that has served its whole fleet for a while, where a session
    no longer meets a page of the file for the first time (a page fault
    through the memory map, or a read into the page cache).
    """
    await gateway.store.run_interaction("warm", _read_every_page, short=True)
    await gateway.store.run_interaction("warm", _read_every_page)


async def settled(gateway):
    """
    Once the store's thread has nothing left to do (a WAL checkpoint it
    was handed): a transaction of nothing, which queues behind it.
    """
    await gateway.store.run_interaction("settle", lambda txn: None)


async def block(gateway, devices):
    """
    The sessions of C{devices}: seconds of gateway CPU (the C{handle_dm}
    calls, then what the store's thread still had to do after the last,
    a checkpoint), the process's minor page faults, its seconds of
    system CPU (the kernel's: page faults, the WAL's writes, the
    checkpoints' reads and writes; the client's work is user CPU) and
    its read and write system calls (pages read past the memory map, the
    WAL's frames, a checkpoint's reads of the WAL and writes of the file,
    the reactor's waker pipe).
    """
    cpu, faults, system, (reads, writes) = gateway.cpu, minor_faults(), system_time(), io_calls()
    for device in devices:
        await gateway.session(device)
    started = time.process_time()
    await settled(gateway)
    reads_after, writes_after = io_calls()
    return (gateway.cpu - cpu + time.process_time() - started, minor_faults() - faults,
            system_time() - system, reads_after - reads, writes_after - writes)


def median_interval(values, confidence=0.95):
    """
    The median of C{values} and a distribution-free interval around it
    that holds the population's median with C{confidence}: order
    statistics chosen by the binomial distribution (n >= 6 for 95%).
    """
    ordered = sorted(values)
    n = len(ordered)
    tail, low = 0.0, 0
    while True:
        tail += math.comb(n, low) / 2 ** n
        if tail > (1 - confidence) / 2:
            break
        low += 1
    if low == 0:
        return statistics.median(ordered), ordered[0], ordered[-1]
    return statistics.median(ordered), ordered[low - 1], ordered[n - low]


#: the store's own interval between WAL checkpoints, in writing transactions
CHECKPOINT_EVERY = ReactorConnection.checkpoint_every


def checkpoint_option(options):
    """
    C{options} without a C{checkpoint_every=N} (the bench's own option,
    not the store's), which sets L{ReactorConnection.checkpoint_every} for
    the stores opened next (the store's own interval when not given).
    """
    every, kept = CHECKPOINT_EVERY, []
    for part in filter(None, options.lstrip("?").split("&")):
        key, _, value = part.partition("=")
        if key == "checkpoint_every":
            every = int(value)
        else:
            kept.append(part)
    ReactorConnection.checkpoint_every = every
    return "?" + "&".join(kept) if kept else ""


async def interleaved(args, pristine, paths, rng):
    """
    The timed measurement: per run and cache setting, both stores open
    side by side, their sessions in alternating blocks (small, large,
    large, small, ...), so the machine's drifting speed falls on both.
    """
    sizes = (args.small, args.large)
    pairs = max(1, args.sessions // args.block)
    per_block = {(name, size): [] for name in SETTINGS for size in sizes}
    faults = {(name, size): [] for name in SETTINGS for size in sizes}
    system = {(name, size): 0.0 for name in SETTINGS for size in sizes}
    calls = {(name, size): [0, 0] for name in SETTINGS for size in sizes}
    ratios = {name: [] for name in SETTINGS}
    totals = {(name, size): 0.0 for name in SETTINGS for size in sizes}
    for _run in range(args.runs):
        for name, options in SETTINGS.items():
            options = checkpoint_option(options)
            gateways, queues = {}, {}
            for size in sizes:
                devices = [device_id(n) for n in rng.sample(range(size), pairs * args.block + 1)]
                restore(pristine[size], paths[size])
                gateways[size] = await opened_cold(paths[size], options, devices)
                if args.warm:
                    await warmed(gateways[size])
                queues[size] = devices[1:]
            for pair in range(pairs):
                spent = {}
                for size in sizes if pair % 2 == 0 else sizes[::-1]:
                    chosen = queues[size][pair * args.block:(pair + 1) * args.block]
                    cpu, faulted, kernel, reads, writes = await block(gateways[size], chosen)
                    system[name, size] += kernel
                    calls[name, size][0] += reads
                    calls[name, size][1] += writes
                    spent[size] = cpu
                    totals[name, size] += cpu
                    per_block[name, size].append(cpu / args.block * 1000.0)
                    faults[name, size].append(faulted / args.block)
                ratios[name].append(spent[args.large] / spent[args.small])
            for gateway in gateways.values():
                await gateway.store.close()
    print("gateway CPU per session (handle_dm and the store thread's leftovers; %d runs of %d pairs of blocks"
          " of %d sessions, ABBA, on random devices of the %s fleet, %s; medians over blocks; minor page faults,"
          " the process's system CPU and its read/write system calls per session):"
          % (args.runs, pairs, args.block, args.fleet, STATES[args.warm]))
    for name in SETTINGS:
        small, large = (statistics.median(per_block[name, size]) for size in sizes)
        small_faults, large_faults = (statistics.median(faults[name, size]) for size in sizes)
        ratio, low, high = median_interval(ratios[name])
        sessions = args.runs * pairs * args.block
        small_system, large_system = (system[name, size] / sessions * 1000.0 for size in sizes)
        small_io, large_io = ("%.1f/%.1f" % tuple(n / sessions for n in calls[name, size]) for size in sizes)
        print("  %-44s %d: %.3f ms (%.1f faults, %.3f ms system, %s io)   %d: %.3f ms (%.1f faults, %.3f ms system,"
              " %s io)" % (name, args.small, small, small_faults, small_system, small_io, args.large, large,
                           large_faults, large_system, large_io))
        print("  %-44s ratio %d/%d: median of %d pairs %.3f, 95%% interval %.3f-%.3f; of the totals %.3f"
              " (means per session, checkpoints in: %.3f ms, %.3f ms)"
              % ("", args.large, args.small, len(ratios[name]), ratio, low, high,
                 totals[name, args.large] / totals[name, args.small],
                 *(totals[name, size] / sessions * 1000.0 for size in sizes)))


#: --warm or not, as printed
STATES = {False: "the store just opened", True: "every page of the store read once first (--warm)"}


# The instruction count: this script again under callgrind, dumping its
# counters at each os.getppid() (called nowhere else), so each store's
# sessions are one dump of their own.
UNDER_CALLGRIND = "DMGW_STORE_SCALE_CALLGRIND"
MARK = "getppid"


def callgrind_costs(path):
    """
    From a callgrind dump (C{--compress-strings=no}): its total
    instructions, and those of SQLite's work: the calls of Python's
    C{_sqlite3} module into the SQLite library, inclusive (its b-trees,
    page cache and WAL, with the C library's memcmp, memcpy and malloc
    that it calls).
    """
    total = sqlite = 0
    caller = callee = None
    call = False
    with open(path) as dump:
        for line in dump:
            if line.startswith("summary:"):
                total = int(line.split()[1])
            elif line.startswith("ob="):
                caller = line[3:].strip()
            elif line.startswith("cob="):
                callee = line[4:].strip()
            elif line.startswith("calls="):
                call = True  # the next line is the call's inclusive cost
            elif call:
                call = False
                if "/_sqlite3." in (caller or "") and "/libsqlite3." in (callee or ""):
                    sqlite += int(line.split()[1])
                callee = None
    return total, sqlite


async def counted(args, pristine, paths, rng):
    """
    Under callgrind: per cache setting and store, the sessions of
    C{--sessions} devices between two marks (the dumps the parent reads).
    """
    sizes = (args.small, args.large)
    labels = []
    for name, options in SETTINGS.items():
        options = checkpoint_option(options)
        for size in sizes:
            devices = [device_id(n) for n in rng.sample(range(size), args.sessions + 1)]
            restore(pristine[size], paths[size])
            gateway = await opened_cold(paths[size], options, devices)
            if args.warm:
                await warmed(gateway)
            gc.collect()  # (the same start for both: no full collection of the other's garbage)
            os.getppid()
            await block(gateway, devices[1:])
            os.getppid()
            labels.append((name, size))
            await gateway.store.close()
    with open(os.path.join(os.environ[UNDER_CALLGRIND], "labels.json"), "w") as f:
        json.dump(labels, f)


def instructions(args, keep):
    """
    Run this script under callgrind with the same arguments, and print
    the instructions per session of each store (the whole process: the
    gateway, the client library's identical work, the store's thread)
    and how many of them SQLite's own.
    """
    with tempfile.TemporaryDirectory(prefix="store_scale-cg-", dir=args.dir) as directory:
        command = ["valgrind", "--tool=callgrind", "--dump-before=" + MARK, "--compress-strings=no",
                   "--callgrind-out-file=" + os.path.join(directory, "cg.out"),
                   sys.executable, os.path.abspath(__file__)] + sys.argv[1:] + ["--keep", keep]
        print(" ".join(command[:4]) + " ...", flush=True)
        subprocess.run(command, check=True, env=dict(os.environ, **{UNDER_CALLGRIND: directory}),
                       stderr=subprocess.DEVNULL)
        with open(os.path.join(directory, "labels.json")) as f:
            labels = [tuple(label) for label in json.load(f)]
        dumps = sorted((name for name in os.listdir(directory) if re.fullmatch(r"cg\.out\.\d+", name)),
                       key=lambda name: int(name.rsplit(".", 1)[1]))
        # dump 1: start-up to the first mark; then: sessions, between, sessions...
        measured = dumps[1::2]
        assert len(measured) >= len(labels), (dumps, labels)
        costs = {label: callgrind_costs(os.path.join(directory, dump)) for label, dump in zip(labels, measured)}
    print("instructions per session (callgrind; %d sessions on random devices of the %s fleet, %s;"
          " the whole process, and SQLite's work in it):" % (args.sessions, args.fleet, STATES[args.warm]))
    for name in SETTINGS:
        (small, small_own), (large, large_own) = (costs[name, size] for size in (args.small, args.large))
        n = args.sessions
        print("  %-44s %d: %.0f (%.0f)   %d: %.0f (%.0f)   %d - %d: %+.0f (%+.0f), ratio %.4f"
              % (name, args.small, small / n, small_own / n, args.large, large / n, large_own / n,
                 args.large, args.small, (large - small) / n, (large_own - small_own) / n, large / small))


async def main(args):
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="store_scale-", dir=args.dir) as directory:
        sizes = (args.small, args.large)
        paths = {size: os.path.join(directory, "%d.sqlite" % (size,)) for size in sizes}
        print("filling (%s fleet):" % (args.fleet,))
        keep = args.keep or directory
        os.makedirs(keep, exist_ok=True)
        pristine = {size: await filled(keep, size, args.fleet) for size in sizes}
        if os.environ.get(UNDER_CALLGRIND):
            await counted(args, pristine, paths, rng)
        elif args.instructions:
            instructions(args, keep)
        else:
            await interleaved(args, pristine, paths, rng)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--block", type=int, default=20,
                        help="sessions in a block: the stores' blocks alternate, small large large small...")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions under callgrind instead (--sessions of each store, once)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--dir", default=None, help="where the database files go (default: the temp directory)")
    parser.add_argument("--warm", action="store_true",
                        help="read every page of each store through its connections before its sessions: "
                             "a daemon that has served its whole fleet for a while (default: just opened)")
    parser.add_argument("--fleet", choices=("new", "used"), default="new",
                        help="devices never connected (each session its device's first) or each after one session")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=QUERY",
                        help="measure these store URI options instead of the two default settings (repeatable;"
                             " QUERY as after the URI's ?, empty for the daemon's defaults)")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="keep the filled stores in DIR and reuse them (named by fleet, size and schema version)")
    args = parser.parse_args()
    if args.setting:
        SETTINGS.clear()
        for given in args.setting:
            name, _, query = given.partition("=")
            SETTINGS[name] = "?" + query if query else ""
    task.react(lambda reactor: defer.ensureDeferred(main(args)))
