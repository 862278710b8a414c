"""The REST API's handlers: the service layer between the API and the gateway.

The resources of :mod:`dmgateway.api` parse and authorise a request, then
call one object that implements :class:`dmgateway.api.service.ApiHandlers`:
:class:`Handlers`, composed here of one class per area:

* :mod:`.devices` -- device accounts, the inventory list, lockouts;
* :mod:`.jobs` -- creating, reading, listing and cancelling jobs;
* :mod:`.events` -- a device's events and the long-poll of all events;
* :mod:`.bootstrap` -- building and pushing a device's bootstrap.

They work on the store, the :class:`~dmgateway.eventlog.EventLog` and the
DM-2 dispatcher's public methods (live sessions, wake-ups, lockouts); the
dispatcher knows nothing of them.  The services started beside the API
(device functions, campaigns, delegation) use the same object.
"""

from typing import Any

from dmgateway.dispatch import Dispatcher
from dmgateway.handlers.bootstrap import BootstrapHandlers
from dmgateway.handlers.devices import DeviceHandlers
from dmgateway.handlers.events import EventHandlers
from dmgateway.handlers.jobs import JobHandlers


class Handlers(DeviceHandlers, JobHandlers, EventHandlers, BootstrapHandlers):
    """Everything the REST API calls, over one :class:`~dmgateway.dispatch.Dispatcher`."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.store = dispatcher.store
        self.config = dispatcher.config
        self.clock = dispatcher.clock
        self.events = dispatcher.events
        self.device_psk = None  # the devices' TLS-PSK keys (dmgateway.store.devicepsk), when kept
        self.delegation = None  # the DM-6 delegation flow (dmgateway.delegation.flow), when enabled

    @property
    def functions(self) -> Any:
        """The device-function service (:mod:`dmgateway.devfunctions`), when started:
        the dispatcher calls its session hooks, the handlers annotate views with it."""
        return self.dispatcher.functions

    @functions.setter
    def functions(self, service: Any) -> None:
        self.dispatcher.functions = service

    def store_failed(self, error: Exception) -> float:
        """The API met a store outage: note it; how long clients should wait (Retry-After)."""
        return self.dispatcher.store_failed(error)
