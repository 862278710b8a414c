"""Server CPU per DM-2 request of the HTTP bearer alone, as a ratio to a bare twisted.web echo.

Two server processes, measured in alternation: a bare ``twisted.web`` leaf
resource echoing each body (the baseline, as in ``bench/session.py``), and
the gateway's own DM site (``dm_site``: its own HTTP/1.1 server
``bearers/dmhttp.py`` with body limit, read deadline, per-peer cap,
pre-authentication limits, request metrics as ``twistd dmgateway`` hooks
them) in front of a dispatcher that answers at once with the body.
So what is measured is the bearer's share of a DM session's reactor time,
without codec, session engine or store.

The client keeps ``--connections`` keep-alive connections and sends one
request on each before reading the answers (raw sockets: the client's own
CPU is not counted).  CPU per request is read from /proc (the servers'
threads' run time); the medians of ``--runs`` runs are printed.

    .venv/bin/python bench/http_bearer.py [--requests 4000] [--connections 16] [--runs 3]
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SERVER = r"""
import sys
sys.path.insert(0, sys.argv[3])
from twisted.internet import defer, reactor
from twisted.web import resource, server

kind, port = sys.argv[1], int(sys.argv[2])
if kind == "echo":
    class Echo(resource.Resource):
        isLeaf = True
        def render_POST(self, request):
            request.setHeader(b"Content-Type", request.getHeader(b"content-type") or b"application/octet-stream")
            return request.content.read()
    site = server.Site(Echo())
    site.log = lambda request: None
else:
    from dmgateway.bearers.http import dm_site
    from dmgateway.live import DMReply
    from dmgateway.monitor.metrics import GatewayMetrics
    from dmgateway.tap import instrument
    from tests.support import gateway_config

    class Answering:
        def handle_dm(self, body, **_kwargs):
            return defer.succeed(DMReply(200, "application/vnd.syncml.dm+xml; charset=utf-8", body, {}))

    site = dm_site(Answering(), "/dm", 65536, listener=gateway_config().http)
    instrument(site, "http", GatewayMetrics(None, reactor, process=False).http_request)
reactor.listenTCP(port, site, interface="127.0.0.1")
print("ready", flush=True)
reactor.run()
"""

BODY = b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr>' + b"x" * 800 + b"</SyncHdr></SyncML>"


def cpu_seconds(pid):
    total = 0
    for task_id in os.listdir("/proc/%d/task" % (pid,)):
        with open("/proc/%d/task/%s/schedstat" % (pid, task_id)) as f:
            total += int(f.read().split()[0])
    return total / 1e9


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_answer(conn):
    data = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            raise SystemExit("the server closed the connection: %r" % (data[:200],))
        data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            if len(rest) >= length:
                if not head.startswith(b"HTTP/1.1 200 "):
                    raise SystemExit("unexpected answer: %r" % (head,))
                return


def run(kind, requests, connections):
    """Server CPU microseconds per request."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, kind, str(port), ROOT], stdout=subprocess.PIPE)
    try:
        server.stdout.readline()
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
        request = (b"POST /dm?s=node~0123 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   b"Content-Type: application/vnd.syncml.dm+xml\r\nContent-Length: %d\r\n\r\n" % (len(BODY),)) + BODY
        for conn in conns:  # warm up
            conn.sendall(request)
            read_answer(conn)
        rounds = max(1, requests // connections)
        before = cpu_seconds(server.pid)
        for _ in range(rounds):
            for conn in conns:
                conn.sendall(request)
            for conn in conns:
                read_answer(conn)
        used = cpu_seconds(server.pid) - before
        for conn in conns:
            conn.close()
        return used / (rounds * connections) * 1e6
    finally:
        server.terminate()
        server.wait(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = {"echo": [], "dm": []}
    for _ in range(args.runs):
        for kind in ("echo", "dm"):
            results[kind].append(run(kind, args.requests, args.connections))
    echo, dm = statistics.median(results["echo"]), statistics.median(results["dm"])
    print("%d requests on %d keep-alive connections, median of %d runs" % (args.requests, args.connections, args.runs))
    print("bare echo  %.1f us server CPU per request" % (echo,))
    print("DM site    %.1f us server CPU per request  (ratio echo/DM %.2f)" % (dm, echo / dm))


if __name__ == "__main__":
    main()
