"""CPU of a DM session's store calls alone, on an SQLite file store.

The calls the dispatcher makes for a session of two messages with one Get
job (``session_reads``; a short batch of ``change_job(running)``,
``start_session``, ``update_device``; a short batch of ``change_job(done)``
with results, ``function_job_finished``, ``drop_session``, ``append_event``,
``update_device``), with the same arguments, straight on the store: no
codec, no engine, no HTTP.  Devices and jobs are created beforehand, one
job per device, each device used once.  Printed: CPU (``time.process_time``)
per session in microseconds, per run and the median of the runs.

    .venv/bin/python bench/store_session.py [--devices 3000] [--runs 5]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, task  # noqa: E402

from dmgateway.jobstates import change_job  # noqa: E402
from dmgateway.store import ClientAuth, ServerAuth, open_store  # noqa: E402

RESULTS = [{"op": "Get", "target": "./DevDetail/SwV", "status": 200, "data": "1.0", "format": "chr",
            "type": "text/plain"}]


def device_id(n):
    return "IMEI:35%013d" % (n,)


async def fill(store, count):
    jobs = {}
    for n in range(count):
        dev = device_id(n)
        await store.put_device(
            dev, server_id="dmgw-bench",
            client_auth=ClientAuth("md5", "dev%d" % n, "aGFzaA=="),
            server_auth=ServerAuth("md5", "dmgw-bench", "aGFzaA=="),
        )
        job = uuid.uuid4().hex
        await store.create_job(job, dev, [{"op": "Get", "target": "./DevDetail/SwV"}], notify="none")
        jobs[dev] = job
    return jobs


async def session(store, dev, job, now):
    device, pending = await store.session_reads(dev)
    assert device is not None and pending[0].job_id == job
    token = "vm~" + os.urandom(16).hex()
    batch = store.batch()
    change_job(batch, job, "running", device_id=dev, now=now)
    batch.start_session(token, dev, "vm", started=now, job_ids=[job], last_activity=now)
    batch.update_device(dev, client_nonce=os.urandom(16), devinfo={
        "DevId": dev, "Man": "dmgateway", "Mod": "dmgw-sim", "DmV": "1.2", "Lang": "en-US"})
    await batch.commit(short=True)
    summary = {"session_id": "3501", "started": "2026-12-06T05:01:42.846Z", "ended": "2026-12-06T05:01:42.847Z",
               "outcome": "completed", "reason": "nothing left to do", "messages": 2, "jobs": [job]}
    batch = store.batch()
    change_job(batch, job, "done", device_id=dev, now=now, expect="running", results=RESULTS, error=None)
    batch.function_job_finished(job, "done", RESULTS, now)
    batch.drop_session(token)
    batch.append_event("session", dev, now, summary)
    batch.update_device(dev, server_nonce=os.urandom(16), last_session=summary)
    results = await batch.commit(short=True)
    assert results[0] is True, results


async def main(reactor, args):
    workdir = tempfile.mkdtemp(prefix="dmgw-store-session-")
    store = await open_store("sqlite:" + os.path.join(workdir, "store.db"), reactor)
    try:
        count = args.devices * args.runs + 50
        print("filling %d devices with one job each ..." % count, flush=True)
        jobs = await fill(store, count)
        devices = list(jobs)
        for dev in devices[:50]:  # warm up
            await session(store, dev, jobs[dev], time.time())
            await task.deferLater(reactor, 0, lambda: None)
        figures = []
        for run in range(args.runs):
            chosen = devices[50 + run * args.devices:50 + (run + 1) * args.devices]
            spent = 0.0
            for dev in chosen:
                started = time.process_time()
                await session(store, dev, jobs[dev], time.time())
                spent += time.process_time() - started
                # (the reactor runs between sessions, as in the daemon: the
                # pool's WAL checkpoints settle, and are counted when they do)
                started = time.process_time()
                await task.deferLater(reactor, 0, lambda: None)
                spent += time.process_time() - started
            figures.append(spent / len(chosen) * 1e6)
            print("run %d: %.1f us CPU/session" % (run + 1, figures[-1]), flush=True)
        print("median %.1f us CPU/session" % statistics.median(figures))
    finally:
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, parser.parse_args())))
