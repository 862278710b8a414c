"""``/healthz`` and ``/readyz`` on the API listener, without a token.

* ``/healthz``: is this process able to serve?  200 ``{"status": "ok"}``
  when the store answers a query in time and every configured listener is
  bound; otherwise 503 ``{"status": "failing", "failing": [...], "reasons":
  {...}}`` naming each failing part.
* ``/readyz``: should a load balancer send it work?  As ``/healthz``, and
  also 503 while starting or draining (``"failing": ["draining"]``).

They answer only what an anonymous prober may know: part names and short
reasons, never addresses, ids or secrets.
"""

import json

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

log = Logger()

STORE_TIMEOUT = 5.0
_JSON = b"application/json; charset=utf-8"


class HealthCheck:
    """Asks the gateway for the state of its parts.

    ``gateway`` offers ``store`` (with ``schema_version()``), ``state``
    (``"starting"``, ``"ready"``, ``"draining"``) and ``listener_problems()``
    (a list of listener names not bound).
    """

    def __init__(self, gateway, clock, store_timeout=STORE_TIMEOUT):
        self.gateway = gateway
        self.clock = clock
        self.store_timeout = store_timeout

    async def check(self, ready):
        failing = {}
        gateway = self.gateway
        if ready and gateway.state != "ready":
            failing[gateway.state] = "the gateway is %s" % (gateway.state,)
        for name in gateway.listener_problems():
            failing["listener:" + name] = "not listening"
        store = gateway.store
        if store is None:
            failing["store"] = "not open"
        else:
            d = store.schema_version()
            d.addTimeout(self.store_timeout, self.clock)
            try:
                await d
            except defer.TimeoutError:
                failing["store"] = "no answer in %gs" % (self.store_timeout,)
            except Exception as e:  # the store's own error: its class says enough
                failing["store"] = type(e).__name__
        return failing


class HealthResource(resource.Resource):
    isLeaf = True

    def __init__(self, check, ready):
        super().__init__()
        self._check = check
        self._ready = ready

    def render_GET(self, request):
        d = defer.ensureDeferred(self._check.check(self._ready))
        d.addCallback(self._answer, request)
        d.addErrback(self._broken, request)
        return server.NOT_DONE_YET

    def render_HEAD(self, request):
        return self.render_GET(request)

    def _answer(self, failing, request):
        if failing:
            status, body = 503, {"status": "failing", "failing": sorted(failing), "reasons": failing}
        else:
            status, body = 200, {"status": "ok"}
        self._write(request, status, body)

    def _broken(self, failure, request):
        log.failure("health check failed", failure)
        self._write(request, 503, {"status": "failing", "failing": ["check"], "reasons": {"check": "error"}})

    @staticmethod
    def _write(request, status, body):
        if request._disconnected:
            return
        data = json.dumps(body).encode("utf-8") + b"\n"
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", _JSON)
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"Content-Length", b"%d" % len(data))
        if request.method != b"HEAD":
            request.write(data)
        request.finish()
