"""
The in-memory fake service passes the service contract.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from dmgateway.api.service import ApiHandlers
from tests.api.fakes import FakeApiHandlers
from tests.api.service_contract import ApiHandlersContract


class FakeServiceContractTests(ApiHandlersContract, TestCase):
    def make_service(self):
        clock = Clock()
        service: ApiHandlers = FakeApiHandlers(clock)
        return service, clock

    def append_event(self, service, kind, device_id, **fields):
        service.append_event(kind, device_id, **fields)
