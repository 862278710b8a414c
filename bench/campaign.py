"""Device-function campaigns: completions per minute against the rate limit, the
scheduler's own ceiling, and memory per device in a running campaign.

1. Scheduler ceiling (in process, no network): a campaign over ``--devices``
   devices on a file SQLite store; campaign steps with an unbounded rate start
   every device (each start is one transaction creating the operation, its job
   and the download token).  Reported: devices started per minute.  The gateway
   is not the bottleneck below a rate limit when this is well above it.

2. Real daemon (``twistd dmgateway``): ``--fleet`` simulated devices provisioned
   through the REST API, a LAWMO lock (then unlock ...) campaign per ``--rates``
   value (devices started per minute), the devices woken by SMS through the npm
   ``smpp`` SMSC simulator and played by the fleet runner (a session for the
   Exec, a session for the completion report).  On one shared machine the DM
   sessions of the simulated devices, not the campaign scheduler, bound what
   can complete per minute: compare with the scheduler ceiling above.
   Reported per rate: devices completed per minute (from the campaign's own
   progress) against the limit, and the daemon's RSS growth per device in the
   running campaign (RSS during the campaign minus before it, over the devices).

    .venv/bin/python bench/campaign.py [--devices 10000] [--fleet 1000] [--rates 600,3000]
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, reactor, task, threads  # noqa: E402

from bench.scratch import scratch_dir  # noqa: E402
from dmgateway.client import fleet, sim  # noqa: E402
from dmgateway.client.functions import DeviceFunctions  # noqa: E402
from dmgateway.store import open_store  # noqa: E402
from dmgateway.store.inventory import DeviceFilter  # noqa: E402
from dmgateway.store.model import ClientAuth, ServerAuth  # noqa: E402
from tests.interop.daemon import Daemon  # noqa: E402

SERVER_ID = "dmgw-e2e"


def rss_kib(pid):
    with open("/proc/%d/status" % (pid,)) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def scheduler_ceiling(count):
    workdir = scratch_dir("dmgw-bench-")
    store = await open_store("sqlite:%s/store.db" % (workdir,), reactor=reactor)
    try:
        for n in range(count):
            await store.put_device("IMEI:%015d" % (n,), server_id=SERVER_ID, client_auth=ClientAuth(),
                                   server_auth=ServerAuth())
        policy = {"waves": [100.0], "rate_per_minute": 1e6, "concurrency": 10_000_000, "pause_failure_ratio": 1.0}
        now = time.time()
        await store.create_campaign("bench", "lawmo", "fully_lock", {}, {}, DeviceFilter(), None, policy, now)
        started, began = 0, time.monotonic()
        while started < count:
            now += 60  # a minute of rate each step
            jobs = await store.campaign_step("bench", now, 3600, 1000, None)
            if not jobs:
                break
            started += len(jobs)
        elapsed = time.monotonic() - began
        return started, elapsed
    finally:
        await store.close()


async def real_daemon(count, rates):
    from tests.interop.nodesmsc import NodeSMSC
    from tests.interop.test_fleet_wake import NOTIFY_FAST, smpp_ini

    smsc = NodeSMSC()
    await smsc.start()
    workdir = scratch_dir("dmgw-bench-")
    gw = Daemon(workdir, gateway_extra=NOTIFY_FAST, extra_ini={
        "functions.ini": "[functions]\ncampaign_interval = 1\n", "smpp.ini": smpp_ini(smsc.port)})
    gw.start()
    rows = []
    try:
        await smsc.when_bound()
        devices = list(sim.pattern_devices(count, start=0, server_name=SERVER_ID))
        await fleet.provision(reactor, gw.api, gw.token, devices, server_id=SERVER_ID, concurrency=16)
        functions = {d.device_id: DeviceFunctions(d.device_id) for d in devices}
        for rate in rates:
            runner = fleet.FleetRunner(reactor, devices, gw.url, sessions=None, duration=3600, concurrency=16,
                                       functions=functions, wake_source=smsc)
            done = runner.run()
            before = rss_kib(gw.process.pid)
            status, view = await threads.deferToThread(gw.call, "POST", "/campaigns", {
                "function": "lawmo", "action": "fully_lock" if len(rows) % 2 == 0 else "unlock",
                "selection": {"server_id": SERVER_ID},
                "policy": {"rate_per_minute": rate, "concurrency": count}})
            assert status == 201, view
            began, peak, first_done = time.monotonic(), before, None
            while True:
                await task.deferLater(reactor, 1.0, lambda: None)
                peak = max(peak, rss_kib(gw.process.pid))
                status, view = await threads.deferToThread(gw.call, "GET", "/campaigns/" + view["id"])
                states = view["progress"]["by_state"]
                finished = states.get("done", 0) + states.get("failed", 0) + states.get("expired", 0)
                if first_done is None and finished:
                    first_done = time.monotonic()
                if view["state"] == "done" or time.monotonic() - began > 600:
                    break
            elapsed = time.monotonic() - began
            runner.stop()
            await done
            rows.append((rate, count, finished, elapsed, finished / elapsed * 60, (peak - before) / count))
            print("  rate %.0f/min: %d done in %.1fs" % (rate, finished, elapsed), flush=True)
        return rows
    finally:
        gw.stop()
        await smsc.terminate()


async def main(args):
    started, elapsed = await scheduler_ceiling(args.devices)
    print("scheduler: started %d devices in %.2fs = %.0f devices/min (steps of up to 1000, one transaction each)"
          % (started, elapsed, started / elapsed * 60), flush=True)
    rows = await real_daemon(args.fleet, [float(r) for r in args.rates.split(",")])
    print("%10s %8s %8s %9s %14s %16s" % ("limit/min", "devices", "done", "seconds", "done/min", "RSS KiB/device"))
    for rate, count, finished, elapsed, per_min, kib in rows:
        print("%10.0f %8d %8d %9.1f %14.0f %16.2f" % (rate, count, finished, elapsed, per_min, kib))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10000, help="devices for the scheduler ceiling")
    parser.add_argument("--fleet", type=int, default=500, help="simulated devices against the daemon")
    parser.add_argument("--rates", default="600,3000", help="rate limits to try (devices/min), comma-separated")
    args = parser.parse_args()

    def run():
        d = defer.ensureDeferred(main(args))
        d.addErrback(lambda f: f.printTraceback())
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(run)
    reactor.run()
