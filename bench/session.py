"""Complete DM sessions per second through the real daemon, as a ratio.

The gateway (``twistd dmgateway``, SQLite store) runs in its own process.
Devices are created through the REST API, each with a job of one Get; then
every device runs a full session (package 1 with MD5 credentials, the Get,
package 3 with the Results, package 4) over loopback HTTP, ``--concurrency``
at a time, in XML and in WBXML.

Baseline, measured in the same run: a bare twisted.web resource in its own
process echoing each request body, fed exactly the same request bodies in
the same order and concurrency.  The ratio gateway/baseline is what to read;
absolute figures on a shared machine mean little.  The client's own work
(building messages, MD5) is counted in the gateway's time and not in the
baseline's, so the ratio is a conservative one.

    .venv/bin/python bench/session.py [--devices 300] [--concurrency 16]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, reactor, task  # noqa: E402
from twisted.web.client import Agent, HTTPConnectionPool  # noqa: E402

from dmgateway.client import ClientSession  # noqa: E402
from dmgateway.client.account import Account, Credentials  # noqa: E402
from dmgateway.client.http import post_message, run_session  # noqa: E402
from dmgateway.client.session import Request  # noqa: E402
from tests.interop.daemon import Daemon, free_port  # noqa: E402

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


def provision(daemon, count):
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
        daemon.create_job(acc.device_id, {"commands": [{"op": "Get", "target": "./DevDetail/SwV"}], "notify": "none"})


def cpu_seconds(pid):
    """User + system CPU seconds a process has used (Linux /proc)."""
    with open("/proc/%d/stat" % (pid,)) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Recorder:
    """Wraps sessions to keep the request bodies they sent (for the baseline)."""

    def __init__(self):
        self.requests = []
        self.cpu = (0.0, 0.0)

    def wrap(self, session):
        start, receive = session.start, session.receive
        requests = []
        self.requests.append(requests)

        def recorded_start(*a, **kw):
            req = start(*a, **kw)
            requests.append(req)
            return req

        def recorded_receive(*a, **kw):
            req = receive(*a, **kw)
            if req is not None:
                requests.append(req)
            return req

        session.start, session.receive = recorded_start, recorded_receive
        return session


async def run_gateway(daemon, encoding, devices, concurrency, recorder, agent):
    sessions = [
        recorder.wrap(ClientSession(account(daemon, n), random_bytes=os.urandom, encoding=encoding))
        for n in devices
    ]
    done = []

    async def worker(queue):
        while queue:
            session = queue.pop()
            await run_session(session, reactor, agent)
            done.append(session.outcome)

    queue = list(sessions)
    started, daemon_cpu, own_cpu = time.perf_counter(), cpu_seconds(daemon.process.pid), time.process_time()
    await defer.gatherResults([defer.ensureDeferred(worker(queue)) for _ in range(concurrency)])
    elapsed = time.perf_counter() - started
    recorder.cpu = (
        (cpu_seconds(daemon.process.pid) - daemon_cpu) / len(sessions) * 1000,
        (time.process_time() - own_cpu) / len(sessions) * 1000,
    )
    failed = [o for o in done if o != "completed"]
    if failed:
        raise SystemExit("%d sessions did not complete: %s" % (len(failed), failed[:3]))
    return len(sessions) / elapsed


async def run_echo(port, recorded, concurrency, agent):
    url = "http://127.0.0.1:%d/dm" % (port,)

    async def worker(queue):
        while queue:
            for req in queue.pop():
                await post_message(agent, Request(url, req.body, req.headers), reactor)

    queue = list(recorded)
    started = time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(worker(queue)) for _ in range(concurrency)])
    return len(recorded) / (time.perf_counter() - started)


async def main(args):
    workdir = tempfile.mkdtemp(prefix="dmgw-bench-")
    daemon = Daemon(workdir)
    daemon.start()
    port = free_port()
    echo = subprocess.Popen([sys.executable, "-c", ECHO, str(port)], stdout=subprocess.PIPE)
    echo.stdout.readline()
    pool = HTTPConnectionPool(reactor)
    pool.maxPersistentPerHost = args.concurrency
    agent = Agent(reactor, pool=pool)
    try:
        half = args.devices // 2
        print("provisioning %d devices with one job each ..." % (args.devices,))
        provision(daemon, args.devices)
        for encoding, devices in (("xml", range(half)), ("wbxml", range(half, args.devices))):
            recorder = Recorder()
            gateway = await run_gateway(daemon, encoding, devices, args.concurrency, recorder, agent)
            baseline = await run_echo(port, recorder.requests, args.concurrency, agent)
            messages = sum(len(r) for r in recorder.requests) / len(recorder.requests)
            print(
                "%-5s  gateway %7.1f sessions/s  bare echo %7.1f sessions/s  ratio %.2f  "
                "(%d sessions, %.1f HTTP exchanges each, MD5 both ways, one Get)"
                % (encoding, gateway, baseline, gateway / baseline, len(devices), messages)
            )
            print(
                "       CPU per session: gateway process %.2f ms, client (this process) %.2f ms"
                % recorder.cpu
            )
    finally:
        yield_ = pool.closeCachedConnections()
        await yield_
        daemon.stop()
        echo.terminate()
        echo.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    options = parser.parse_args()
    task.react(lambda _reactor: defer.ensureDeferred(main(options)))
