"""Start the real ``twistd dmgateway`` in a temporary directory and talk to it.

Used by the end-to-end tests and the benchmarks: a config dir written for
free loopback ports, the daemon as a subprocess (stopped and cleaned up by
the caller), the REST API over urllib, and a synchronous loop that runs a
:class:`dmgateway.client.ClientSession` over real HTTP.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from tests.lifetime import dies_with_its_starter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT = 30.0
# SIGTERM lets live DM sessions finish for up to [gateway] drain_timeout (default 20 s)
# before the daemon stops cleanly: wait longer than that before SIGKILL.


# the ports free_port handed out in this process: the kernel may give a
# closed probe's port again at once, and two listeners of one daemon (or of
# two daemons started together) then clash ("port N is also used by ...")
_HANDED_OUT = set()


def free_port():
    """A loopback port free now and not handed out before in this run."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@contextlib.contextmanager
def haproxy(config_text, workdir, listen=None):
    """Debian ``haproxy`` running ``config_text`` (its log in ``workdir``), stopped on exit.

    With ``listen`` (its front port), waits until HAProxy accepts there.
    """
    config = os.path.join(str(workdir), "haproxy.cfg")
    with open(config, "w") as f:
        f.write(config_text)
    log_path = os.path.join(str(workdir), "haproxy.log")
    with open(log_path, "wb") as log:
        proxy = subprocess.Popen([*dies_with_its_starter(), "haproxy", "-db", "-f", config],
                                 stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            while listen is not None:
                try:
                    socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proxy.poll() is not None:
                        with open(log_path) as f:
                            raise RuntimeError("haproxy did not start: %s" % (f.read(),)) from None
                    time.sleep(0.05)
            yield proxy
        finally:
            proxy.terminate()
            try:
                proxy.wait(10)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait(5)


class Daemon:
    """One gateway process with its own config dir, store and log."""

    def __init__(self, workdir, store=None, extra_ini=None, session_timeout=300, gateway_extra="",
                 drain_timeout=5):
        self.workdir = str(workdir)
        self.conf = os.path.join(self.workdir, "conf")
        self.http_port = free_port()
        self.api_port = free_port()
        self.url = "http://127.0.0.1:%d/dm" % (self.http_port,)
        self.api = "http://127.0.0.1:%d/api/v1" % (self.api_port,)
        self.token = "test-token-" + os.urandom(8).hex()
        self.store = store or "sqlite:var/dmgateway.sqlite"
        self.session_timeout = session_timeout
        # SIGTERM lets live sessions run this long; stop() waits past it
        self.drain_timeout = drain_timeout
        self.extra_ini = extra_ini or {}
        self.gateway_extra = gateway_extra  # more sections for dmgateway.ini
        self.log_path = os.path.join(self.workdir, "daemon.log")
        self.process = None
        self.twistd_options = []
        self.command_prefix = []  # runs the daemon under a tool: e.g. ["valgrind", "--tool=callgrind"]
        self.start_timeout = START_TIMEOUT
        self.env = {}  # more environment variables for the process
        self._write_config()

    def _write_config(self):
        os.makedirs(self.conf, exist_ok=True)
        os.makedirs(os.path.join(self.workdir, "var"), exist_ok=True)
        with open(os.path.join(self.workdir, "var", "api.token"), "w") as f:
            f.write(self.token + "\n")
        files = {
            "dmgateway.ini": (
                "[gateway]\nserver_id = dmgw-e2e\npublic_url = %s\nstore = %s\n"
                "session_timeout = %d\ndrain_timeout = %d\n\n[api]\nendpoint = tcp:%d:interface=127.0.0.1\n"
                "token_file = var/api.token\n\n%s"
                % (self.url, self.store, self.session_timeout, self.drain_timeout, self.api_port,
                   self.gateway_extra)
            ),
            "http.ini": "[http]\nenabled = true\nendpoint = tcp:%d:interface=127.0.0.1\npath = /dm\n"
            % (self.http_port,),
        }
        files.update(self.extra_ini)
        for name, text in files.items():
            with open(os.path.join(self.conf, name), "w") as f:
                f.write(text)

    # -- process -------------------------------------------------------------

    def command(self):
        return [
            *self.command_prefix,
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "--nodaemon",
            "--pidfile=",
            *self.twistd_options,
            "dmgateway",
            "--config-dir",
            self.conf,
        ]

    def start(self):
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.update(self.env)
        self._log = open(self.log_path, "ab")
        offset = len(self.log())
        self.process = subprocess.Popen(
            [*dies_with_its_starter(), *self.command()], cwd=self.workdir, env=env, stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("daemon exited with %s:\n%s" % (self.process.returncode, self.log()))
            text = self.log()[offset:]
            if "listening: api" in text and "listening: http" in text:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("daemon did not start in %ss:\n%s" % (self.start_timeout, self.log()))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self):
        """kill -9: no clean shutdown at all."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15 + self.drain_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    # -- REST API --------------------------------------------------------------

    def call(self, method, path, body=None, timeout=30):
        """(status, decoded JSON) of one API call."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.api + path, data=data, method=method)
        request.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw, headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as e:
            status, raw, headers = e.code, e.read(), e.headers
        # every answer of the real daemon must match docs/openapi.yaml
        from tests.openapi_check import check_response

        check_response(method, "/api/v1" + path, status, headers.get("Content-Type"), raw, dict(headers.items()))
        return status, json.loads(raw or b"null")

    def put_device(self, device_id, account):
        return self.call("PUT", "/devices/" + urllib.parse.quote(device_id, safe=""), account)

    def create_job(self, device_id, job):
        status, body = self.call("POST", "/devices/%s/jobs" % (urllib.parse.quote(device_id, safe=""),), job)
        assert status == 201, body
        return body["id"]

    def job(self, job_id):
        status, body = self.call("GET", "/jobs/" + job_id)
        assert status == 200, body
        return body

    def events(self, after=0, wait=0):
        status, body = self.call("GET", "/events?after=%d&wait=%d" % (after, wait))
        assert status == 200, body
        return body["events"]


def post(url, body, headers, timeout=30):
    """POST one DM message; (HTTP status, body, lower-cased headers)."""
    request = urllib.request.Request(url, data=body, method="POST")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, e.read(), {k.lower(): v for k, v in e.headers.items()}


def run_client(session, max_messages=100, stop_after=None, **start):
    """Run a ClientSession over HTTP to its end (or after ``stop_after`` replies)."""
    request = session.start(**start)
    exchanged = 0
    while request is not None:
        status, body, headers = post(request.url, request.body, request.headers)
        if status != 200:
            raise AssertionError("HTTP %d from the gateway: %r" % (status, body[:200]))
        exchanged += 1
        if stop_after is not None and exchanged >= stop_after:
            return session
        if exchanged > max_messages:
            raise AssertionError("session did not end after %d messages" % (max_messages,))
        request = session.receive(body, headers)
    return session
