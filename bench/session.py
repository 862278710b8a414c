"""Complete DM sessions per second through the real daemon, as a ratio.

The gateway (``twistd dmgateway``, SQLite store) runs in its own process.
Devices are created through the REST API, each with a job of one Get; then
every device runs a full session (package 1 with MD5 credentials, the Get,
package 3 with the Results, package 4) over loopback HTTP, ``--concurrency``
at a time, in XML and in WBXML.

Baseline, measured in the same run: a bare twisted.web resource in its own
process echoing each request body, fed exactly the same request bodies in
the same order and concurrency.

What to read is the **CPU ratio**: the echo process's CPU for one
session's worth of requests divided by the gateway process's CPU per
session, both read from /proc in the same run.  The rate ratio
(sessions/s) is printed too, but on a small machine this script's own
client (building messages, MD5) is the bottleneck and hides the gateway's
cost; and on a machine shared with other work, wall-clock rates mean
little while CPU per operation stays true.  Each cell (encoding x
concurrency) runs ``--runs`` times on fresh devices; medians are printed.
The gateway's CPU split between user and system time (the kernel's share:
loopback TCP, SQLite's writes, epoll) is printed too, summed over the runs
from /proc/PID/stat's 10 ms ticks, and only where 30 ticks or more accrued.
bench/instructions.py counts the user-space part in instructions, which
repeat where these times do not.

The floor line is the CPU, in this process, of the least work a session
needs: decoding its two requests, MD5 both ways, one SQLite write
transaction (WAL, synchronous=normal, as the gateway's store) and encoding
the gateway's two replies.  The gateway's CPU over the floor is what the
daemon adds (HTTP, store round trips, the session engine, logging).

    .venv/bin/python bench/session.py [--devices 100] [--concurrency 1,16] [--runs 3] [--logger twistd]
        [--max-msg-size N]  # the clients announce MaxMsgSize N, as real devices do
"""

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, reactor, task  # noqa: E402
from twisted.web.client import Agent, HTTPConnectionPool  # noqa: E402

from bench.scratch import scratch_dir  # noqa: E402
from dmgateway.auth.credentials import constant_time_equal, md5_value, user_hash  # noqa: E402
from dmgateway.client import ClientSession  # noqa: E402
from dmgateway.client.account import Account, Credentials  # noqa: E402
from dmgateway.client.http import post_message, run_session  # noqa: E402
from dmgateway.client.session import Request  # noqa: E402
from dmgateway.codec import decode_message, encode_message  # noqa: E402
from tests.interop.daemon import Daemon, free_port  # noqa: E402

SPLIT_TICKS = 30  # the least clock ticks a user/system share is printed from (each run reads +-1 tick)

ECHO = """
import sys
from twisted.internet import reactor
from twisted.web import resource, server
class Echo(resource.Resource):
    isLeaf = True
    def render_POST(self, request):
        request.setHeader(b"Content-Type", request.getHeader(b"content-type") or b"application/octet-stream")
        return request.content.read()
site = server.Site(Echo())
site.log = lambda request: None
reactor.listenTCP(int(sys.argv[1]), site, interface="127.0.0.1")
print("ready", flush=True)
reactor.run()
"""


def account(daemon, n):
    return Account(
        device_id="IMEI:35%013d" % (n,),
        server_id="dmgw-e2e",
        server_url=daemon.url,
        client=Credentials("md5", "dev%d" % (n,), "secret-%d" % (n,)),
        server=Credentials("md5", "dmgw-e2e", "srv-%d" % (n,)),
    )


def provision(daemon, count, jobs=1):
    """Devices 0 to ``count`` - 1 (see :func:`account`), each with ``jobs`` jobs of one Get."""
    for n in range(count):
        acc = account(daemon, n)
        daemon.put_device(
            acc.device_id,
            {
                "server_id": "dmgw-e2e",
                "client_auth": {"type": "md5", "name": acc.client.name, "secret": acc.client.secret},
                "server_auth": {"type": "md5", "name": acc.server.name, "secret": acc.server.secret},
            },
        )
        for _ in range(jobs):
            daemon.create_job(acc.device_id, {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}], "notify": "none"})


def cpu_seconds(pid, threads=False):
    """CPU seconds a process has used, from /proc (Linux).

    The sum of its threads' run time in nanoseconds (schedstat) when the
    kernel offers it: the clock-tick figures of /proc/PID/stat are too
    coarse (10 ms) for a few hundred sessions of a few ms each.  With
    ``threads``, (all threads, the main thread): the reactor runs in the
    main thread, the store's pool in the others.
    """
    try:
        total = main = 0
        for task_id in os.listdir("/proc/%d/task" % (pid,)):
            with open("/proc/%d/task/%s/schedstat" % (pid, task_id)) as f:
                ns = int(f.read().split()[0])
            total += ns
            if task_id == str(pid):
                main = ns
        return (total / 1e9, main / 1e9) if threads else total / 1e9
    except (OSError, ValueError, IndexError):
        return sum(cpu_ticks(pid)) / os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """(user, system) clock ticks a process has used, all its threads, from /proc/PID/stat."""
    with open("/proc/%d/stat" % (pid,)) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


class Recorder:
    """Wraps sessions to keep the request bodies they sent (for the baseline)."""

    def __init__(self):
        self.requests = []
        self.replies = []
        self.cpu = (0.0, 0.0)
        self.ticks = (0, 0)  # the daemon's (user, system) clock ticks over the sessions

    def wrap(self, session):
        start, receive = session.start, session.receive
        requests, replies = [], []
        self.requests.append(requests)
        self.replies.append(replies)

        def recorded_start(*a, **kw):
            req = start(*a, **kw)
            requests.append(req)
            return req

        def recorded_receive(body, headers=None):
            replies.append((body, headers))
            req = receive(body, headers)
            if req is not None:
                requests.append(req)
            return req

        session.start, session.receive = recorded_start, recorded_receive
        return session


async def run_gateway(daemon, encoding, devices, concurrency, recorder, agent, max_msg_size=None):
    sessions = [
        recorder.wrap(ClientSession(account(daemon, n), random_bytes=os.urandom, encoding=encoding,
                                    max_msg_size=max_msg_size))
        for n in devices
    ]
    done = []

    async def worker(queue):
        while queue:
            session = queue.pop()
            await run_session(session, reactor, agent)
            done.append(session.outcome)

    queue = list(sessions)
    started, own_cpu = time.perf_counter(), time.process_time()
    daemon_cpu, daemon_main = cpu_seconds(daemon.process.pid, threads=True)
    user, system = cpu_ticks(daemon.process.pid)
    await defer.gatherResults([defer.ensureDeferred(worker(queue)) for _ in range(concurrency)])
    elapsed = time.perf_counter() - started
    total, main = cpu_seconds(daemon.process.pid, threads=True)
    user_after, system_after = cpu_ticks(daemon.process.pid)
    recorder.ticks = (user_after - user, system_after - system)
    recorder.cpu = (
        (total - daemon_cpu) / len(sessions) * 1000,
        (time.process_time() - own_cpu) / len(sessions) * 1000,
        (main - daemon_main) / len(sessions) * 1000,
    )
    failed = [o for o in done if o != "completed"]
    if failed:
        raise SystemExit("%d sessions did not complete: %s" % (len(failed), failed[:3]))
    return len(sessions) / elapsed


async def run_echo(echo, port, recorded, concurrency, agent):
    """(sessions/s, echo process CPU ms per session) for the recorded requests."""
    url = "http://127.0.0.1:%d/dm" % (port,)
    cpu = cpu_seconds(echo.pid)

    async def worker(queue):
        while queue:
            for req in queue.pop():
                await post_message(agent, Request(url, req.body, req.headers), reactor)

    queue = list(recorded)
    started = time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(worker(queue)) for _ in range(concurrency)])
    elapsed = time.perf_counter() - started
    return len(recorded) / elapsed, (cpu_seconds(echo.pid) - cpu) / len(recorded) * 1000


def start_echo(prefix=(), env=None):
    """(process, port) of the bare echo, serving; ``prefix`` runs it under a tool (valgrind ...)."""
    port = free_port()
    echo = subprocess.Popen([*prefix, sys.executable, "-c", ECHO, str(port)], stdout=subprocess.PIPE, env=env)
    if echo.stdout.readline() != b"ready\n":
        raise RuntimeError("the echo did not start: exit status %s" % (echo.wait(),))
    return echo, port


def floor_ms(recorder, encoding, workdir, rounds=300):
    """CPU ms, in this process, of the least work one session needs."""
    requests = [[(r.body, _content_type(r.headers)) for r in session] for session in recorder.requests]
    replies = [
        decode_message(body, _content_type(headers))[0]
        for session in recorder.replies for body, headers in session
    ][:2]
    path = os.path.join(workdir, "floor-%s.sqlite" % (encoding,))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS job (id INTEGER PRIMARY KEY, state TEXT, result TEXT, at REAL)")
    db.execute("CREATE TABLE IF NOT EXISTS device (id INTEGER PRIMARY KEY, last_session REAL)")
    db.executemany("INSERT OR REPLACE INTO device VALUES (?, 0)", [(n,) for n in range(rounds)])
    db.executemany("INSERT OR REPLACE INTO job VALUES (?, 'queued', NULL, 0)", [(n,) for n in range(rounds)])
    stored = user_hash("dev0", "secret-0")
    started = time.process_time()
    for n in range(rounds):
        for body, ctype in requests[n % len(requests)][:2]:
            decode_message(body, ctype)
        nonce = os.urandom(16)
        constant_time_equal(md5_value(stored, nonce), md5_value(stored, nonce))  # the device's Cred
        md5_value(stored, nonce)  # the server's Cred
        db.execute("BEGIN")
        db.execute("UPDATE job SET state = 'completed', result = ?, at = ? WHERE id = ?", ("1.0", n, n))
        db.execute("UPDATE device SET last_session = ? WHERE id = ?", (n, n))
        db.execute("COMMIT")
        for reply in replies:
            encode_message(reply, encoding)
    spent = (time.process_time() - started) / rounds * 1000
    db.close()
    return spent


def _content_type(headers):
    for name, value in (headers or {}).items():
        if name.lower() == "content-type":
            return value[0] if isinstance(value, (list, tuple)) else value
    return None


async def main(args):
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    cells = [(encoding, c) for encoding in ("xml", "wbxml") for c in concurrencies]
    workdir = scratch_dir("dmgw-bench-")
    daemon = Daemon(workdir)
    if args.logger != "twistd":
        daemon.twistd_options = ["--logger=" + args.logger]
    if args.profile:
        # cProfile sees the reactor thread only; store calls on the pool show as waits.
        daemon.twistd_options += ["--profile=" + os.path.abspath(args.profile), "--profiler=cprofile", "--savestats"]
    daemon.start()
    echo, port = start_echo()
    pool = HTTPConnectionPool(reactor)
    pool.maxPersistentPerHost = max(concurrencies)
    agent = Agent(reactor, pool=pool)
    try:
        total = args.devices * len(cells) * args.runs
        print("provisioning %d devices with one job each ..." % (total,))
        provision(daemon, total)
        print("measuring ...", flush=True)
        results = {cell: [] for cell in cells}
        floors = {}
        ticks = {cell: [0, 0] for cell in cells}
        next_device = 0
        for _run in range(args.runs):
            for encoding, concurrency in cells:
                devices = range(next_device, next_device + args.devices)
                next_device += args.devices
                recorder = Recorder()
                gateway = await run_gateway(daemon, encoding, devices, concurrency, recorder, agent,
                                            args.max_msg_size)
                baseline, echo_ms = await run_echo(echo, port, recorder.requests, concurrency, agent)
                gateway_ms, client_ms, reactor_ms = recorder.cpu
                results[encoding, concurrency].append((gateway_ms, echo_ms, gateway, baseline, client_ms, reactor_ms))
                ticks[encoding, concurrency] = [t + n for t, n in zip(ticks[encoding, concurrency], recorder.ticks)]
                if concurrency == concurrencies[0]:
                    floors.setdefault(encoding, []).append(floor_ms(recorder, encoding, workdir))
        print(
            "%d sessions per cell (2 HTTP exchanges, MD5 both ways, one Get), median of %d runs"
            % (args.devices, args.runs)
        )
        for (encoding, concurrency), rows in results.items():
            gateway_ms, echo_ms, gateway, baseline, client_ms, reactor_ms = (
                statistics.median(column) for column in zip(*rows)
            )
            print(
                "%-5s c=%-3d gateway CPU %.2f ms/session (reactor thread %.2f, %4.0f sessions per core-second)  "
                "bare echo %.2f ms  CPU ratio %.2f  |  rate %6.1f/s vs echo %6.1f/s, ratio %.2f  (client %.2f ms/session)"
                % (encoding, concurrency, gateway_ms, reactor_ms, 1000 / gateway_ms, echo_ms, echo_ms / gateway_ms,
                   gateway, baseline, gateway / baseline, client_ms)
            )
        tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
        for (encoding, concurrency), (user, system) in ticks.items():
            # /proc/PID/stat counts in ticks of 10 ms: a split of fewer than ~30 would be noise
            if user + system >= SPLIT_TICKS:
                sessions = args.devices * args.runs
                print(
                    "%-5s c=%-3d gateway CPU split: user %.2f + system %.2f ms/session, system %.0f%% "
                    "(%d ticks over all runs)"
                    % (encoding, concurrency, user * tick_ms / sessions, system * tick_ms / sessions,
                       100 * system / (user + system), user + system)
                )
            else:
                print("%-5s c=%-3d gateway CPU split: too few ticks (%d)" % (encoding, concurrency, user + system))
        for encoding, values in floors.items():
            print(
                "floor %-5s %.2f ms/session in-process (decode 2 requests, MD5 both ways, "
                "1 write transaction, encode 2 replies)" % (encoding, statistics.median(values))
            )
    finally:
        await pool.closeCachedConnections()
        daemon.stop()
        echo.terminate()
        echo.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100, help="sessions per cell and run")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated concurrencies")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--logger", default="dmgateway.logs.json_observer",
        help="twistd --logger the daemon runs with: by default the shipped systemd unit's "
             "(conf/dmgateway.service); 'twistd' for twistd's own text observer")
    parser.add_argument("--max-msg-size", type=int, help="the MaxMsgSize the clients announce (default: none)")
    parser.add_argument("--profile", help="write the daemon's cProfile stats to this file (CPU figures then mean little)")
    options = parser.parse_args()
    task.react(lambda _reactor: defer.ensureDeferred(main(options)))
