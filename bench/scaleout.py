"""Scale-out: 1 vs N gateway processes on one PostgreSQL behind HAProxy, as ratios.

For each process count (1, 2, ... up to ``--max-processes``; default: 2, or
the core count minus one for the load generator when more cores exist) this
starts a throw-away PostgreSQL (tests/pgharness.py), that many ``twistd
dmgateway`` processes with ``[gateway] cluster = true`` and the shipped
conf/haproxy.cfg (Debian ``haproxy``) in front of them.  ``--devices``
simulated devices are provisioned, then the fleet
(:class:`dmgateway.client.fleet.FleetRunner`) keeps ``--concurrency``
sessions in flight through HAProxy for ``--duration`` seconds (devices go
round; the first round runs a job of one Get).

Reported per process count: sessions/s, and gateway CPU seconds per session
(user + system of every gateway process, from /proc, over the sessions
completed).  The ratios against 1 process are what to read: sessions/s
should grow with the processes while there are idle cores, and CPU per
session should stay flat (the cluster adds no per-session cost).

    .venv/bin/python bench/scaleout.py [--devices 500] [--duration 20] [--concurrency 16]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, reactor, task  # noqa: E402

from dmgateway.client import fleet, sim  # noqa: E402
from tests.interop.daemon import Daemon, free_port  # noqa: E402
from tests.pgharness import PostgresServer  # noqa: E402

SERVER_ID = "dmgw-e2e"  # what tests/interop/daemon.py configures
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (Linux /proc)."""
    with open("/proc/%d/stat" % (pid,)) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def haproxy_config(listen_port, daemons):
    """conf/haproxy.cfg with one use-server/server pair per process."""
    with open(os.path.join(ROOT, "conf", "haproxy.cfg")) as f:
        text = f.read()
    text = text.replace("bind 127.0.0.1:8080", "bind 127.0.0.1:%d" % (listen_port,))
    text = re.sub(r"\n    log stdout[^\n]*", "", text)
    text = re.sub(r"\n    (use-server|server) gw\d[^\n]*", "", text)
    routes = "".join("\n    use-server %s if { urlp(s) -m beg %s~ %s%%7E %s%%7e }" % (n, n, n, n)
                     for n in daemons)
    servers = "".join("\n    server %s 127.0.0.1:%d check port %d" % (n, gw.http_port, gw.api_port)
                      for n, gw in daemons.items())
    return text.replace("    balance roundrobin", "    balance roundrobin" + routes) + servers + "\n"


def start_daemons(workdir, store, count, public_url):
    daemons = {}
    for n in range(1, count + 1):
        name = "gw%d" % (n,)
        gw = Daemon(os.path.join(workdir, name), store=store)
        path = os.path.join(gw.conf, "dmgateway.ini")
        with open(path) as f:
            text = f.read()
        text = text.replace("public_url = %s\n" % (gw.url,),
                            "public_url = %s\nnode_name = %s\ncluster = true\n" % (public_url, name))
        with open(path, "w") as f:
            f.write(text)
        daemons[name] = gw
    for gw in daemons.values():
        gw.start()
    return daemons


async def measure(args, count):
    workdir = tempfile.mkdtemp(prefix="dmgw-bench-scaleout-")
    daemons, proxy = {}, None
    try:
        with PostgresServer.start() as pg:
            store = pg.create_database()
            port = free_port()
            public_url = "http://127.0.0.1:%d/dm" % (port,)
            daemons = start_daemons(workdir, store, count, public_url)
            cfg = os.path.join(workdir, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write(haproxy_config(port, daemons))
            proxy = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            await task.deferLater(reactor, 1.0, lambda: None)
            first = next(iter(daemons.values()))
            devices = list(sim.pattern_devices(args.devices, start=10000, server_name=SERVER_ID))
            await fleet.provision(reactor, first.api, first.token, devices, job=sim.api_job(),
                                  server_id=SERVER_ID)
            before = sum(cpu_seconds(gw.process.pid) for gw in daemons.values())
            started = time.monotonic()
            runner = fleet.FleetRunner(reactor, devices, public_url, concurrency=args.concurrency,
                                       duration=args.duration)
            summary = await runner.run()
            elapsed = time.monotonic() - started
            cpu = sum(cpu_seconds(gw.process.pid) for gw in daemons.values()) - before
            completed = summary["completed"]
            return {"processes": count, "sessions": summary["sessions"], "completed": completed,
                    "per_s": completed / elapsed, "cpu_per_session_ms": 1000.0 * cpu / max(completed, 1),
                    "cpu_busy": cpu / elapsed}
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(10)
        for gw in daemons.values():
            gw.stop()
        shutil.rmtree(workdir, True)


async def main(args):
    if shutil.which("haproxy") is None:
        sys.exit("haproxy is needed (apt-get install haproxy)")
    counts = list(range(1, args.max_processes + 1))
    rows = []
    for count in counts:
        row = await measure(args, count)
        rows.append(row)
        print("%d process(es): %d sessions (%d completed), %.1f sessions/s, gateway CPU %.2f ms/session, "
              "%.2f cores busy" % (count, row["sessions"], row["completed"], row["per_s"],
                                   row["cpu_per_session_ms"], row["cpu_busy"]), flush=True)
    base = rows[0]
    for row in rows[1:]:
        print("ratio %d vs 1: sessions/s x%.2f, CPU per session x%.2f"
              % (row["processes"], row["per_s"] / base["per_s"],
                 row["cpu_per_session_ms"] / base["cpu_per_session_ms"]))


def parse(argv):
    cores = os.cpu_count() or 2
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-processes", type=int, default=max(2, cores - 1))
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    done = defer.ensureDeferred(main(arguments))
    done.addErrback(lambda f: (f.printTraceback(), setattr(sys, "exitfunc_code", 1)))
    done.addBoth(lambda _: reactor.stop())
    reactor.run()
