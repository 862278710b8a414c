"""/healthz and /readyz through the real resource tree (in memory): what each
answers for a healthy, starting, draining, store-less or listener-less gateway."""

import json
from types import SimpleNamespace as NS

from twisted.internet import defer
from twisted.internet.task import Clock

from dmgateway.api.resources import build_site
from dmgateway.monitor.health import HealthCheck, HealthResource
from tests.api.fakes import FakeApiHandlers
from tests.api.inmemory import Connection, raw_request
from tests.openapi_check import check_response


class Store:
    def __init__(self, answer="ok"):
        self.answer = answer

    def schema_version(self):
        if self.answer == "ok":
            return defer.succeed(6)
        if self.answer == "hang":
            return defer.Deferred()
        return defer.fail(RuntimeError("connection refused: password=hunter2"))


def site(gateway, clock):
    check = HealthCheck(gateway, clock, store_timeout=5)
    return build_site(FakeApiHandlers(clock), "tok", reactor=clock, unauthenticated={
        b"healthz": HealthResource(check, ready=False), b"readyz": HealthResource(check, ready=True)})


def get(the_site, path, clock=None, advance=0):
    connection = Connection(the_site)
    connection.send(raw_request("GET", path, None, {}))
    if clock is not None and advance:
        clock.advance(advance)
    response = connection.response
    check_response("GET", path, response.status, response.header("content-type"), response.raw)
    return response.status, json.loads(response.raw)


def gateway(state="ready", store=None, missing=()):
    return NS(state=state, store=store if store is not None else Store(), listener_problems=lambda: list(missing))


def test_healthy():
    clock = Clock()
    the_site = site(gateway(), clock)
    assert get(the_site, "/healthz") == (200, {"status": "ok"})
    assert get(the_site, "/readyz") == (200, {"status": "ok"})


def test_draining_is_alive_but_not_ready():
    clock = Clock()
    the_site = site(gateway(state="draining"), clock)
    assert get(the_site, "/healthz")[0] == 200
    status, body = get(the_site, "/readyz")
    assert (status, body["failing"]) == (503, ["draining"])


def test_store_failing_or_silent_and_a_listener_down():
    clock = Clock()
    status, body = get(site(gateway(store=Store("fail"), missing=["https"]), clock), "/healthz")
    assert status == 503
    assert body["failing"] == ["listener:https", "store"]
    assert body["reasons"]["store"] == "RuntimeError"  # the class, never the message (secrets)
    status, body = get(site(gateway(store=Store("hang")), clock), "/healthz", clock, advance=5)
    assert (status, body["reasons"]) == (503, {"store": "no answer in 5s"})


def test_probes_share_one_store_query_per_interval():
    class Counting(Store):
        calls = 0
        pending = []

        def schema_version(self):
            Counting.calls += 1
            d = defer.Deferred()
            Counting.pending.append(d)
            return d

    clock = Clock()
    store = Counting()
    check = HealthCheck(gateway(store=store), clock, store_timeout=5, min_interval=1.0)
    first = defer.ensureDeferred(check.check(False))
    second = defer.ensureDeferred(check.check(True))
    assert Counting.calls == 1
    Counting.pending[0].callback(6)
    assert first.result == {} and second.result == {}
    third = defer.ensureDeferred(check.check(False))
    assert third.result == {} and Counting.calls == 1  # the answer is reused within the second
    clock.advance(1.5)
    defer.ensureDeferred(check.check(False))
    assert Counting.calls == 2


def test_an_immediate_answer_is_asked_again_after_the_interval():
    clock = Clock()
    store = Store()
    check = HealthCheck(gateway(store=store), clock, store_timeout=5, min_interval=1.0)
    assert defer.ensureDeferred(check.check(False)).result == {}
    store.answer = "fail"
    assert defer.ensureDeferred(check.check(False)).result == {}  # within the second: reused
    clock.advance(1.1)
    assert defer.ensureDeferred(check.check(False)).result == {"store": "RuntimeError"}
