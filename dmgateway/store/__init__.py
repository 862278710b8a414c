"""
Persistent store: SQLite (embedded default) or PostgreSQL (scale-out).

Open one with L{open_store} (L{dmgateway.store.opener}); the interface is L{Store} in
L{dmgateway.store.base}, composed of one class per area (devices, jobs,
sessions, events, outbox, webhooks, inventory, functions, firmware,
campaigns) over
L{dmgateway.store.database}; rows are the dataclasses of
L{dmgateway.store.model}.
"""

from . import model
from .base import Store, Txn
from .model import *  # noqa: F401,F403 -- the row dataclasses, states and errors: model.__all__
from .opener import make_store, open_store

__all__ = ["open_store", "make_store", "Store", "Txn", *model.__all__]
