"""A device fleet against the real daemon, with SQLite and with PostgreSQL, as ratios.

For each store the gateway (``twistd dmgateway``) runs in its own process;
``--devices`` simulated devices are provisioned through the REST API, each
with a job of one Get; then the fleet (:class:`dmgateway.client.fleet.FleetRunner`,
what ``dmgw sim fleet`` runs) keeps ``--concurrency`` sessions in flight for
``--duration`` seconds (devices go round; only the first round has a job).
Reported: sessions/s and p50/p99 latency; the daemon's RSS per registered
device (after provisioning minus before, over the count) and per live session
(``--hold`` sessions, default 500, held open after package 2, minus idle).

Baseline, measured in the same run with bench/session.py's code: the bare
twisted.web echo process fed the very request bodies the fleet sent, at the
same concurrency (sessions/s and per-session latency), and its RSS per open
keep-alive connection.  Ratios gateway/baseline are what to read.

    .venv/bin/python bench/fleet.py [--devices 10000] [--duration 60] [--concurrency 16]
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, reactor, task  # noqa: E402
from twisted.web.client import Agent  # noqa: E402

from bench.scratch import scratch_dir  # noqa: E402
from dmgateway.client import fleet, sim  # noqa: E402
from dmgateway.client.http import post_message  # noqa: E402
from dmgateway.client.session import Request  # noqa: E402
from dmgateway.codec import CONTENT_TYPES, encode_message  # noqa: E402
from tests.interop.daemon import Daemon, free_port  # noqa: E402


def _load_bare():
    spec = importlib.util.spec_from_file_location(
        "bench_session", os.path.join(ROOT, "bench", "session.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bare = _load_bare()
SERVER_ID = "dmgw-e2e"  # what tests/interop/daemon.py configures


def rss(pid):
    """Resident set size of a process in bytes (Linux /proc)."""
    with open("/proc/%d/status" % (pid,)) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for %d" % (pid,))


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


class Recorded:
    """Keeps the request bodies of the first ``limit`` sessions (for the echo replay)."""

    def __init__(self, encoding, limit):
        self.encoding, self.limit = encoding, limit
        self.sessions = []

    def __call__(self, device, session):
        if len(self.sessions) >= self.limit or session.outcome != "completed":
            return
        headers = {"Content-Type": CONTENT_TYPES[self.encoding]}
        self.sessions.append([Request(None, encode_message(msg, self.encoding), headers)
                              for direction, msg in session.transcript if direction == "out"])


async def echo_replay(port, recorded, concurrency, agent):
    """(sessions/s, sorted per-session latencies) of the echo fed ``recorded``."""
    url = "http://127.0.0.1:%d/dm" % (port,)
    latencies = []
    queue = list(recorded)

    async def worker():
        while queue:
            requests = queue.pop()
            began = time.perf_counter()
            for req in requests:
                await post_message(agent, Request(url, req.body, req.headers), reactor)
            latencies.append(time.perf_counter() - began)

    started = time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(concurrency)])
    return len(recorded) / (time.perf_counter() - started), sorted(latencies)


async def echo_rss_per_connection(echo, port, concurrency):
    """The echo's RSS growth per open keep-alive connection."""
    pool = fleet.new_pool(reactor, concurrency)
    agent = Agent(reactor, pool=pool)
    await sleep(0.5)
    idle = rss(echo.pid)
    url = "http://127.0.0.1:%d/dm" % (port,)
    body = Request(url, b"<SyncML/>", {"Content-Type": "application/vnd.syncml.dm+xml"})
    await defer.gatherResults([post_message(agent, body, reactor) for _ in range(concurrency)])
    await sleep(0.5)
    held = rss(echo.pid)
    await pool.closeCachedConnections()
    return max(0, held - idle) / concurrency


async def hold_sessions(daemon, devices, agent, encoding):
    """Open one session per device and stop after package 2: the daemon holds them.

    At most 32 requests at a time: the daemon answers 503 beyond
    ``[http] max_connections_per_peer`` (64) connections from one address.
    """
    async def open_one(device):
        session = device.session(daemon.url, random_bytes=os.urandom, encoding=encoding)
        body, headers = await post_message(agent, session.start(), reactor)
        session.receive(body, headers)

    limit = defer.DeferredSemaphore(32)
    await defer.gatherResults([limit.run(lambda d=d: defer.ensureDeferred(open_one(d))) for d in devices])


async def measure_store(label, daemon, args, echo, port):
    devices = list(sim.pattern_devices(args.devices, server_name=SERVER_ID))
    await sleep(0.5)
    before = rss(daemon.process.pid)
    started = time.perf_counter()
    await fleet.provision(reactor, daemon.api, daemon.token, devices, job=sim.api_job(),
                          concurrency=16)
    provisioning = time.perf_counter() - started
    await sleep(0.5)
    after = rss(daemon.process.pid)
    per_device = max(0, after - before) / len(devices)

    recorded = Recorded(args.encoding, limit=2000)
    pool = fleet.new_pool(reactor, args.concurrency)
    agent = Agent(reactor, pool=pool)
    runner = fleet.FleetRunner(reactor, devices, daemon.url, concurrency=args.concurrency,
                               duration=args.duration, agent=agent, observer=recorded,
                               encoding=args.encoding,
                               progress=fleet.progress_stream(args.progress))
    summary = await runner.run()

    # live sessions: the last devices of the list, fresh sessions held after package 2
    await sleep(0.5)
    idle = rss(daemon.process.pid)
    held_devices = devices[-args.hold:]
    await hold_sessions(daemon, held_devices, agent, args.encoding)
    await sleep(0.5)
    held = rss(daemon.process.pid)
    per_session = max(0, held - idle) / len(held_devices)
    await pool.closeCachedConnections()

    pool = fleet.new_pool(reactor, args.concurrency)
    echo_rate, echo_latencies = await echo_replay(port, recorded.sessions, args.concurrency,
                                                  Agent(reactor, pool=pool))
    await pool.closeCachedConnections()
    echo_conn = await echo_rss_per_connection(echo, port, len(held_devices))

    latency = summary["latency_ms"]
    echo_p50 = sim.percentile(echo_latencies, 0.5) * 1000
    echo_p99 = sim.percentile(echo_latencies, 0.99) * 1000

    def ratio(a, b):
        return "%.2f" % (a / b) if b else "n/a"

    print("== %s (%s, %d devices, concurrency %d, %.0f s)" % (
        label, args.encoding, args.devices, args.concurrency, args.duration))
    print("  provisioning      %.1f devices/s through the REST API (PUT + job each)" % (
        args.devices / provisioning,))
    print("  sessions          %d (%d completed, errors %s)" % (
        summary["sessions"], summary["completed"], summary["errors"]))
    print("  sessions/s        gateway %8.1f   echo %8.1f   ratio %s" % (
        summary["sessions_per_s"], echo_rate, ratio(summary["sessions_per_s"], echo_rate)))
    print("  p50 latency ms    gateway %8.2f   echo %8.2f   ratio %s" % (
        latency["p50"], echo_p50, ratio(latency["p50"], echo_p50)))
    print("  p99 latency ms    gateway %8.2f   echo %8.2f   ratio %s" % (
        latency["p99"], echo_p99, ratio(latency["p99"], echo_p99)))
    print("  RSS / live session  %8.0f B   echo / open connection %8.0f B   ratio %s" % (
        per_session, echo_conn, ratio(per_session, echo_conn)))
    print("  RSS / device        %8.0f B   (daemon %.1f MB before, %.1f MB after provisioning;"
          " no echo analogue)" % (per_device, before / 1e6, after / 1e6))
    sys.stdout.flush()


async def main(args):
    port = free_port()
    echo = subprocess.Popen([sys.executable, "-c", bare.ECHO, str(port)], stdout=subprocess.PIPE)
    echo.stdout.readline()
    try:
        if "sqlite" in args.stores:
            daemon = Daemon(scratch_dir("dmgw-fleet-"))
            daemon.start()
            try:
                await measure_store("SQLite", daemon, args, echo, port)
            finally:
                daemon.stop()
        if "postgresql" in args.stores:
            from tests.pgharness import PostgresServer, PostgresUnavailable

            try:
                with PostgresServer.start() as server:
                    daemon = Daemon(scratch_dir("dmgw-fleet-pg-"),
                                    store=server.create_database())
                    daemon.start()
                    try:
                        await measure_store("PostgreSQL", daemon, args, echo, port)
                    finally:
                        daemon.stop()
            except PostgresUnavailable as error:
                print("== PostgreSQL skipped: %s" % (error,))
    finally:
        echo.terminate()
        echo.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10000)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--hold", type=int, default=500,
                        help="sessions held open for the RSS per live session (default 500; "
                        "RSS moves in pages, so a few sessions say little)")
    parser.add_argument("--encoding", choices=("xml", "wbxml"), default="xml")
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgresql"),
                        default=["sqlite", "postgresql"])
    parser.add_argument("--progress", action="store_true", help="progress line on stderr")
    options = parser.parse_args()
    task.react(lambda _reactor: defer.ensureDeferred(main(options)))
