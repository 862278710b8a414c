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

Each run measures the daemon's ``cache_size``/``mmap_size`` defaults and
SQLite's own (2000 KiB of cache, no mmap); printed: median gateway CPU per
session for each store, with the process's minor page faults per session
(pages of the file read for the first time through the memory map), and
the median of the runs' ratios large/small for each setting (each run
measures both stores back to back).  Gateway CPU differs by a few percent
between runs on a busy machine: for a change's effect, count instructions
too (valgrind --tool=callgrind, the difference between runs of 100 and
200 sessions).

``--keep DIR`` keeps the filled stores in DIR and reuses them (filling a
million devices takes some seconds; with ``--fleet used`` a minute): a file
is named by its fleet, its device count and the schema version it was
filled at, so one filled before a new migration is not reused.

    .venv/bin/python bench/store_scale.py [--large 1000000] [--sessions 400] [--runs 9]
        [--fleet new|used] [--keep DIR]
"""

import argparse
import os
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, task  # noqa: E402

from bench.session_growth import JOB, Gateway, account_spec, device_id  # noqa: E402
from dmgateway.store.migrations import load_migrations  # noqa: E402
from dmgateway.store.sqlite import CACHE_SIZE_KIB, MMAP_SIZE  # noqa: E402

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


def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


async def cpu_per_session(path, options, devices):
    """
    Jobs for C{devices}, the store reopened cold, their sessions: gateway
    ms of CPU per session, and the process's minor page faults per session.
    """
    setup = Gateway()
    await setup.start([], 0, "sqlite:" + path + options)
    for device in devices:
        await setup.handlers.create_job(device, JOB)
    await setup.store.close()
    gateway = Gateway()
    await gateway.start([], 0, "sqlite:" + path + options)
    await gateway.session(devices[0])  # warm-up, not counted: the schema read, first statements prepared
    gateway.cpu = 0.0
    faults = minor_faults()
    for device in devices[1:]:
        await gateway.session(device)
    faults = minor_faults() - faults
    await gateway.store.close()
    return gateway.cpu / (len(devices) - 1) * 1000.0, faults / (len(devices) - 1)


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


async def main(args):
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="store_scale-", dir=args.dir) as directory:
        sizes = (args.small, args.large)
        paths = {size: os.path.join(directory, "%d.sqlite" % (size,)) for size in sizes}
        print("filling (%s fleet):" % (args.fleet,))
        keep = args.keep or directory
        os.makedirs(keep, exist_ok=True)
        pristine = {size: await filled(keep, size, args.fleet) for size in sizes}
        cpu = {(name, size): [] for name in SETTINGS for size in sizes}
        faults = {(name, size): [] for name in SETTINGS for size in sizes}
        ratios = {name: [] for name in SETTINGS}
        for run in range(args.runs):
            for name, options in SETTINGS.items():
                for size in sizes if run % 2 == 0 else sizes[::-1]:
                    devices = [device_id(n) for n in rng.sample(range(size), args.sessions + 1)]
                    restore(pristine[size], paths[size])
                    ms, faulted = await cpu_per_session(paths[size], options, devices)
                    cpu[name, size].append(ms)
                    faults[name, size].append(faulted)
                ratios[name].append(cpu[name, args.large][-1] / cpu[name, args.small][-1])
    print("gateway CPU per session (handle_dm only, %d runs of %d sessions on random devices of the %s fleet;"
          " medians; minor page faults per session):" % (args.runs, args.sessions, args.fleet))
    for name in SETTINGS:
        small, large = (statistics.median(cpu[name, size]) for size in sizes)
        small_faults, large_faults = (statistics.median(faults[name, size]) for size in sizes)
        print("  %-44s %d: %.3f ms (%.1f faults)   %d: %.3f ms (%.1f faults)   ratio %d/%d %.3f"
              % (name, args.small, small, small_faults, args.large, large, large_faults,
                 args.large, args.small, statistics.median(ratios[name])))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--dir", default=None, help="where the database files go (default: the temp directory)")
    parser.add_argument("--fleet", choices=("new", "used"), default="new",
                        help="devices never connected (each session its device's first) or each after one session")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="keep the filled stores in DIR and reuse them (named by fleet, size and schema version)")
    args = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(args)))
