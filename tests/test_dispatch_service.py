"""The real dispatcher (over a real SQLite store, inline in memory: on a
``task.Clock`` with no real-time waits) keeps the API's service contract."""

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from dmgateway.dispatch import Dispatcher
from dmgateway.store import open_store
from tests.api.service_contract import GatewayServiceContract
from tests.support import gateway_config


class DispatcherServiceContractTests(GatewayServiceContract, TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        self.store = yield open_store("sqlite::memory:?inline=1", reactor=reactor)
        self.addCleanup(self.store.close)

    def make_service(self):
        clock = task.Clock()
        return Dispatcher(self.store, gateway_config(), clock=clock), clock

    def append_event(self, service, kind, device_id, **fields):
        return defer.ensureDeferred(service.event(kind, device_id, fields))
