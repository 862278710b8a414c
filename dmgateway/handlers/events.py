"""The events of the REST API: one device's history and the long-poll of all events."""

from typing import Any, Dict, List, Optional, Tuple

from twisted.internet import defer

from dmgateway.api.service import UnknownDevice
from dmgateway.api.views import event_view


class EventHandlers:
    """``device_events`` and ``wait_events`` (over the store and the :class:`~dmgateway.eventlog.EventLog`)."""

    def device_events(
        self, device_id: str, types: Tuple[str, ...], limit: int, before: Optional[int]
    ) -> "defer.Deferred[List[Dict[str, Any]]]":
        """Up to ``limit`` events of the device, newest first (:class:`UnknownDevice` if none)."""
        return defer.ensureDeferred(self._device_events(device_id, types, limit, before))

    async def _device_events(self, device_id, types, limit, before):
        if await self.store.get_device(device_id) is None:
            raise UnknownDevice(device_id)
        return [event_view(e) for e in await self.store.device_events(device_id, types, limit, before)]

    def wait_events(self, after: int, limit: int, wait: float) -> "defer.Deferred[List[Dict[str, Any]]]":
        """Up to ``limit`` events after ``after``, waiting up to ``wait`` seconds for one."""
        return self.events.wait(after, limit, wait).addCallback(lambda events: [event_view(e) for e in events])
