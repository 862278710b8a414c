"""
Persistent store: SQLite (embedded default) or PostgreSQL (scale-out).

Open one with L{open_store} (L{dmgateway.store.opener}); the interface is L{Store} in
L{dmgateway.store.base}, composed of one class per area (devices, jobs,
sessions, events, outbox, webhooks, inventory, functions, firmware,
campaigns) over
L{dmgateway.store.database}; rows are the dataclasses of
L{dmgateway.store.model}.
"""

from .base import Store, Txn
from .opener import make_store, open_store
from .model import (
    AUTH_TYPES,
    DELIVERY_STATES,
    INTERRUPTED,
    JOB_STATES,
    NOTIFICATION_STATES,
    NOTIFY_MODES,
    PENDING_JOB_STATES,
    ClientAuth,
    Conflict,
    Delivery,
    Device,
    Job,
    Notification,
    NotFound,
    Recovery,
    SchemaTooNew,
    ServerAuth,
    Session,
    StoreClosed,
    StoreUnavailable,
    StoreError,
)

__all__ = [
    "open_store",
    "make_store",
    "Store",
    "Txn",
    "AUTH_TYPES",
    "DELIVERY_STATES",
    "INTERRUPTED",
    "JOB_STATES",
    "NOTIFICATION_STATES",
    "NOTIFY_MODES",
    "PENDING_JOB_STATES",
    "ClientAuth",
    "ServerAuth",
    "Device",
    "Job",
    "Session",
    "Notification",
    "Delivery",
    "Recovery",
    "StoreError",
    "StoreClosed",
    "StoreUnavailable",
    "NotFound",
    "Conflict",
    "SchemaTooNew",
]
