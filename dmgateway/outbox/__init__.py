"""The wake-up outbox: notifications in the store, sent through the bearers.

:mod:`~dmgateway.outbox.decisions` decides (what to send, when to retry,
when to give up, pure); :mod:`~dmgateway.outbox.service` does it
(:class:`NotificationOutbox`, the Twisted loop over the store).
"""

from dmgateway.outbox.service import CLAIM_LEASE, SEND_CONCURRENCY, NotificationOutbox, SendReport

__all__ = ["CLAIM_LEASE", "SEND_CONCURRENCY", "NotificationOutbox", "SendReport"]
