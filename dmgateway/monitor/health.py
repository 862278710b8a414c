"""``/healthz`` and ``/readyz`` on the API listener, without a token.

* ``/healthz``: is this process able to serve?  200 ``{"status": "ok"}``
  when the store answers a query in time and every configured listener is
  bound; otherwise 503 ``{"status": "failing", "failing": [...], "reasons":
  {...}}`` naming each failing part.
* ``/readyz``: should a load balancer send it work?  As ``/healthz``, and
  also 503 while starting or draining (``"failing": ["draining"]``).

They answer only what an anonymous prober may know: part names and short
reasons, never addresses, ids or secrets.  Whoever can reach the API port
can call them, so the store is asked at most once per ``min_interval``
(concurrent probes share one query; later ones reuse its answer).
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

    def __init__(self, gateway, clock, store_timeout=STORE_TIMEOUT, min_interval=1.0):
        self.gateway = gateway
        self.clock = clock
        self.store_timeout = store_timeout
        self.min_interval = min_interval
        self._store_answer = None  # (when, problem or None)
        self._store_query = None  # the Deferred of the query in flight

    async def check(self, ready):
        failing = {}
        gateway = self.gateway
        if ready and gateway.state != "ready":
            failing[gateway.state] = "the gateway is %s" % (gateway.state,)
        for name in gateway.listener_problems():
            failing["listener:" + name] = "not listening"
        problem = await self._store_problem()
        if problem is not None:
            failing["store"] = problem
        return failing

    async def _store_problem(self):
        store = self.gateway.store
        if store is None:
            return "not open"
        now = self.clock.seconds()
        if self._store_answer is not None and now - self._store_answer[0] < self.min_interval:
            return self._store_answer[1]
        query = self._store_query
        if query is None:
            query = defer.ensureDeferred(self._ask(store))
            if not query.called:  # an answer at once needs no sharing
                self._store_query = query
        shared = defer.Deferred()
        query.addBoth(lambda result: (shared.callback(result), result)[1])
        return await shared

    async def _ask(self, store):
        d = store.schema_version()
        d.addTimeout(self.store_timeout, self.clock)
        try:
            await d
        except defer.TimeoutError:
            problem = "no answer in %gs" % (self.store_timeout,)
        except Exception as e:  # the store's own error: its class says enough
            problem = type(e).__name__
        else:
            problem = None
        self._store_answer = (self.clock.seconds(), problem)
        self._store_query = None
        return problem


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
