"""The real REST handlers, over a real dispatcher and SQLite store (inline in
memory: on a ``task.Clock`` with no real-time waits), keep the API's contract
(the same suite as the API tests' fake)."""

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from dmgateway.dispatch import Dispatcher
from dmgateway.handlers import Handlers
from dmgateway.store import open_store
from tests.api.service_contract import ApiHandlersContract
from tests.support import gateway_config


class HandlersContractTests(ApiHandlersContract, TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        self.store = yield open_store("sqlite::memory:?inline=1", reactor=reactor)
        self.addCleanup(self.store.close)

    def make_service(self):
        clock = task.Clock()
        return Handlers(Dispatcher(self.store, gateway_config(), clock=clock)), clock

    def append_event(self, service, kind, device_id, **fields):
        return defer.ensureDeferred(service.events.append(kind, device_id, fields))
