"""
The in-memory fake service passes the service contract.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from dmgateway.api.service import GatewayService
from tests.api.fakes import FakeGatewayService
from tests.api.service_contract import GatewayServiceContract


class FakeServiceContractTests(GatewayServiceContract, TestCase):
    def make_service(self):
        clock = Clock()
        service: GatewayService = FakeGatewayService(clock)
        return service, clock

    def append_event(self, service, kind, device_id, **fields):
        service.append_event(kind, device_id, **fields)
