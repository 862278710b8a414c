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

Each run measures the daemon's ``cache_size``/``mmap_size`` defaults and
SQLite's own (2000 KiB of cache, no mmap); printed: median gateway CPU per
session for each store, and the median of the runs' ratios large/small
for each setting (each run measures both stores back to back).

    .venv/bin/python bench/store_scale.py [--large 1000000] [--sessions 400] [--runs 9]
"""

import argparse
import os
import random
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
from dmgateway.store.sqlite import CACHE_SIZE_KIB, MMAP_SIZE  # noqa: E402

SETTINGS = {
    "daemon defaults (cache %d MiB, mmap %d MiB)" % (CACHE_SIZE_KIB // 1024, MMAP_SIZE >> 20): "",
    "SQLite's own (cache 2000 KiB, mmap 0)": "?cache_size=2000&mmap_size=0",
}


async def fill(path, count):
    """A store at C{path} with C{count} devices: one put through the store, the rest copied in SQL."""
    gateway = Gateway()
    await gateway.start([device_id(0)], 0, "sqlite:" + path)
    await gateway.store.close()
    started = time.monotonic()
    db = sqlite3.connect(path, isolation_level=None)
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
    """C{path} a fresh copy of C{pristine}: every device as registered, no job, no session yet."""
    for leftover in (path, path + "-wal", path + "-shm"):
        if os.path.exists(leftover):
            os.remove(leftover)
    shutil.copyfile(pristine, path)


async def cpu_per_session(path, options, devices):
    """Jobs for C{devices}, the store reopened cold, their sessions: gateway ms of CPU per session."""
    setup = Gateway()
    await setup.start([], 0, "sqlite:" + path + options)
    for device in devices:
        await setup.handlers.create_job(device, JOB)
    await setup.store.close()
    gateway = Gateway()
    await gateway.start([], 0, "sqlite:" + path + options)
    await gateway.session(devices[0])  # warm-up, not counted: the schema read, first statements prepared
    gateway.cpu = 0.0
    for device in devices[1:]:
        await gateway.session(device)
    await gateway.store.close()
    return gateway.cpu / (len(devices) - 1) * 1000.0


async def main(args):
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="store_scale-", dir=args.dir) as directory:
        sizes = (args.small, args.large)
        paths = {size: os.path.join(directory, "%d.sqlite" % (size,)) for size in sizes}
        print("filling:")
        for size in sizes:
            await fill(paths[size] + ".pristine", size)
        cpu = {(name, size): [] for name in SETTINGS for size in sizes}
        ratios = {name: [] for name in SETTINGS}
        for run in range(args.runs):
            for name, options in SETTINGS.items():
                for size in sizes if run % 2 == 0 else sizes[::-1]:
                    devices = [device_id(n) for n in rng.sample(range(size), args.sessions + 1)]
                    restore(paths[size] + ".pristine", paths[size])
                    cpu[name, size].append(await cpu_per_session(paths[size], options, devices))
                ratios[name].append(cpu[name, args.large][-1] / cpu[name, args.small][-1])
    print("gateway CPU per session (handle_dm only, %d runs of %d sessions on random devices; medians):"
          % (args.runs, args.sessions))
    for name in SETTINGS:
        small, large = (statistics.median(cpu[name, size]) for size in sizes)
        print("  %-44s %d: %.3f ms   %d: %.3f ms   ratio %d/%d %.3f"
              % (name, args.small, small, args.large, large, args.large, args.small,
                 statistics.median(ratios[name])))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--dir", default=None, help="where the database files go (default: the temp directory)")
    args = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(args)))
