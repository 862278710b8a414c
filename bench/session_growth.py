"""How a DM session's cost grows: per extra job, and memory per live session.

In one process, no network: the real dispatcher and session engine on an
in-memory SQLite store run in the reactor thread (``sqlite::memory:?inline=1``,
so a message's store work is counted with it), the devices played by the
client library; the garbage collector tuned as the serving daemon tunes it
(``dmgateway.daemon.tune_gc``).

1. **Extra job.**  One gateway serves devices with 1 job and devices with
   ``--jobs`` jobs (one Get each), provisioned in the same store, their
   sessions interleaved (one of each, then the other way round: ABBA), after
   ``--warmup`` uncounted sessions of each kind; only the gateway's side is
   timed (CPU of the ``Dispatcher.handle_dm`` calls, ``time.process_time``),
   the client's work is not.  Each block of ``--block`` pairs gives a cost
   per extra job, (many - one) / (jobs - 1); reported: gateway CPU per
   session of each kind and the median of the blocks' costs, with their
   quartiles.  Interleaved, both kinds meet the same machine: run one after
   the other (as this bench first did), the 1-job figure alone moved by up
   to 50% between runs and the difference of the two by as much as itself.

2. **Memory per live session.**  ``--hold`` devices open a session and stop
   after package 2, so the dispatcher holds them; ``tracemalloc`` counts what
   is allocated and still live between before and after, over the count.
   (RSS growth in bench/fleet.py undercounts: the daemon reuses the memory
   its earlier sessions freed.)

    .venv/bin/python bench/session_growth.py [--sessions 300] [--jobs 6] [--runs 3]
        [--warmup 20] [--block 20] [--hold 1000]
"""

import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, task  # noqa: E402

from dmgateway.client import ClientSession  # noqa: E402
from dmgateway.client.account import Account, Credentials  # noqa: E402
from dmgateway.daemon import tune_gc  # noqa: E402
from dmgateway.dispatch import Dispatcher  # noqa: E402
from dmgateway.handlers import Handlers  # noqa: E402
from dmgateway.store import open_store  # noqa: E402
from tests.support import gateway_config  # noqa: E402

SERVER_ID = "dmgw-test"
JOB = {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}], "notify": "none"}


def device_id(n):
    return "IMEI:35%013d" % (n,)


def account_spec():
    return {
        "server_id": SERVER_ID,
        "client_auth": {"type": "md5", "name": "dev", "secret": "dev-secret"},
        "server_auth": {"type": "md5", "name": SERVER_ID, "secret": "srv-secret"},
    }


def client_account(device, nonces=(b"", b"")):
    """The device's account: ``nonces`` (client, server) as a device that had a session keeps them."""
    client_nonce, server_nonce = nonces
    return Account(device_id=device, server_id=SERVER_ID, server_url="http://127.0.0.1:8080/dm",
                   client=Credentials("md5", "dev", "dev-secret", client_nonce),
                   server=Credentials("md5", SERVER_ID, "srv-secret", server_nonce))


class Gateway:
    #: (client, server) nonces its devices know, as after a session (none: never connected)
    nonces = (b"", b"")

    async def start(self, devices, jobs, uri="sqlite::memory:?inline=1", more=()):
        """Serve ``devices`` with ``jobs`` jobs each, and each (devices, jobs) of ``more``."""
        from twisted.internet import reactor

        self.store = await open_store(uri, reactor=reactor)
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.dispatcher = Dispatcher(self.store, gateway_config(session_timeout=3600), clock=self.clock)
        self.handlers = Handlers(self.dispatcher)
        await self.dispatcher.start()
        for group, count in ((devices, jobs), *more):
            for device in group:
                await self.handlers.put_device(device, account_spec())
                for _ in range(count):
                    await self.handlers.create_job(device, JOB)
        # the collector as the serving daemon sets it once started (as
        # bench/inproc.py): with CPython's defaults, collections that walk
        # the whole process fell inside the timed calls, more often the more
        # a message allocates, and made an extra job look dearer than it is
        tune_gc()
        self.cpu = 0.0

    async def post(self, request):
        token = request.url.split("?s=", 1)[1] if "?s=" in request.url else None
        started = time.process_time()
        reply = await self.dispatcher.handle_dm(request.body, encoding="xml", token=token)
        self.cpu += time.process_time() - started
        if reply.code != 200:
            raise RuntimeError("HTTP %d: %r" % (reply.code, reply.body[:200]))
        return reply

    async def session(self, device, stop_after=None):
        session = ClientSession(client_account(device, self.nonces), random_bytes=os.urandom)
        request = session.start()
        messages = 0
        while request is not None:
            reply = await self.post(request)
            messages += 1
            request = session.receive(reply.body, {"content-type": reply.content_type, **reply.headers})
            if stop_after is not None and messages >= stop_after:
                return session
        if session.outcome != "completed":
            raise RuntimeError(session.log)
        return session


async def extra_job_cost(count, jobs, warmup, block):
    """
    One gateway's CPU per session of its 1-job and ``jobs``-job devices,
    interleaved (see the module docstring): (one, many, the cost per extra
    job of each block of ``block`` pairs), in ms.
    """
    ones = [device_id(n) for n in range(warmup + count)]
    manys = [device_id(100_000 + n) for n in range(warmup + count)]
    gateway = Gateway()
    await gateway.start(ones, 1, more=[(manys, jobs)])
    for one, many in zip(ones[:warmup], manys[:warmup]):
        await gateway.session(one)
        await gateway.session(many)
    spent = {1: 0.0, jobs: 0.0}
    blocks = []

    async def timed(device, kind):
        before = gateway.cpu
        await gateway.session(device)
        spent[kind] += gateway.cpu - before
        return gateway.cpu - before

    extra = 0.0
    for n, (one, many) in enumerate(zip(ones[warmup:], manys[warmup:])):
        order = ((one, 1), (many, jobs)) if n % 2 == 0 else ((many, jobs), (one, 1))
        for device, kind in order:
            cost = await timed(device, kind)
            extra += cost if kind == jobs else -cost
        if (n + 1) % block == 0:
            blocks.append(extra / block / (jobs - 1) * 1000.0)
            extra = 0.0
    await gateway.store.close()
    return spent[1] / count * 1000.0, spent[jobs] / count * 1000.0, blocks


async def memory_per_session(count):
    """Bytes still allocated per session the dispatcher holds (the client's side is dropped)."""
    devices = [device_id(900_000 + n) for n in range(count)]
    gateway = Gateway()
    await gateway.start(devices + [device_id(900_000 + count)], 1)
    await gateway.session(device_id(900_000 + count))  # warm-up: caches, interned names
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for device in devices:
        await gateway.session(device, stop_after=1)  # package 2 received: the session is live
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    live = gateway.dispatcher.live_count()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    await gateway.store.close()
    return live, grown


def spread(costs):
    """The median of ``costs`` and their lower and upper quartiles, within
    them (statistics.quantiles' default method reaches past the data when
    there are few points: 0.75 and 2.25 for 1 and 2)."""
    if len(costs) == 1:
        return costs[0], costs[0], costs[0]
    low, _, high = statistics.quantiles(costs, n=4, method="inclusive")
    return statistics.median(costs), low, high


async def main(args):
    ones, manys, blocks = [], [], []
    for _ in range(args.runs):
        one, many, costs = await extra_job_cost(args.sessions, args.jobs, args.warmup, args.block)
        ones.append(one)
        manys.append(many)
        blocks.extend(costs)
    median, low, high = spread(blocks)
    print("gateway CPU per session (handle_dm only; %d runs of %d sessions of each kind, interleaved):"
          % (args.runs, args.sessions))
    print("  1 job  %.3f ms   %d jobs %.3f ms   per extra job %.3f ms (median of %d blocks of %d pairs;"
          " quartiles %.3f-%.3f)" % (statistics.median(ones), args.jobs, statistics.median(manys),
                                     median, len(blocks), args.block, low, high))
    live, grown = await memory_per_session(args.hold)
    print("memory per live session (tracemalloc, %d sessions held after package 2, %d live): %.1f KiB"
          % (args.hold, live, grown / args.hold / 1024.0))


def arguments(argv=None):
    """The command line's arguments, refused (before any session) when they cannot give a figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=300, help="sessions of each kind per run")
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--hold", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20, help="uncounted sessions of each kind first")
    parser.add_argument("--block", type=int, default=20,
                        help="pairs of sessions per cost per extra job: even (as many one-many pairs as"
                             " many-one), at most --sessions; the pairs after the last whole block count"
                             " in the sessions' figures only")
    args = parser.parse_args(argv)
    if args.jobs < 2:
        parser.error("--jobs must be at least 2 (the cost of an extra job)")
    if min(args.sessions, args.runs, args.hold) < 1 or args.warmup < 0:
        parser.error("--sessions, --runs and --hold must be at least 1, --warmup at least 0")
    if args.block < 2 or args.block % 2 or args.block > args.sessions:
        parser.error("--block must be even, from 2 to --sessions (%d)" % (args.sessions,))
    return args


if __name__ == "__main__":
    options = arguments()
    task.react(lambda reactor: defer.ensureDeferred(main(options)))
