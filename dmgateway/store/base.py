"""
The store: devices, jobs, sessions, events, the notification outbox and
webhook deliveries, behind one interface with an SQLite and a PostgreSQL
engine (L{dmgateway.store.sqlite}, L{dmgateway.store.postgres}).

    store = yield open_store("sqlite:/var/lib/dmgateway/store.db")
    created = yield store.put_device("IMEI:350000000000001", server_id=...,
                                     client_auth=ClientAuth(...),
                                     server_auth=ServerAuth(...))

L{Store} is composed of one class per area, as Synapse's C{DataStore}
is; each area's module holds its public methods, their C{_..._txn}
transactions (SQL written once for both engines) and its row converters:

    devices.py     device accounts, nonces, DevInfo, lockouts
    jobs.py        jobs and their states
    sessions.py    live sessions, and recovery after a dead process
    events.py      the event log, consumer cursors, pruning
    outbox.py      the notification outbox
    webhooks.py    webhook deliveries
    inventory.py   device filters, removal, cancelling, monitoring counts
    functions.py   device-function operations
    firmware.py    firmware packages and download tokens
    campaigns.py   campaigns

The transaction runner, batches and migrations are in
L{dmgateway.store.database}.  Every public method returns a L{Deferred}
and runs as one transaction in the engine's thread pool (a DM session's
short batches may run at once in the calling thread instead, see
L{dmgateway.store.sqlite.ReactorConnection}).  Arguments of the
wrong type or value fail with C{TypeError}/C{ValueError}; the database's
own failures come out as L{StoreError} (L{Conflict} for constraint
violations), never as an engine's exception.  Bookkeeping times
(C{created}, C{updated}) come from the clock given to L{open_store}; times
with a meaning for the caller (session start, event time, "due by") are
arguments.
"""

from __future__ import annotations

from .batch import Batch
from .campaigns import CampaignQueries
from .database import Database, Txn
from .devices import DeviceStore
from .events import EventStore
from .firmware import FirmwareQueries
from .functions import FunctionQueries
from .inventory import InventoryQueries
from .jobs import JobStore
from .outbox import OutboxStore
from .sessions import SessionStore
from .webhooks import WebhookStore

__all__ = ["Store", "Txn", "Batch"]


class Store(
    DeviceStore,
    JobStore,
    SessionStore,
    EventStore,
    OutboxStore,
    WebhookStore,
    InventoryQueries,
    FunctionQueries,
    FirmwareQueries,
    CampaignQueries,
    Database,
):
    """
    The persistent store; build one with L{open_store}.

    @ivar engine: C{"sqlite"} or C{"postgresql"}.
    @ivar database_engine: the engine object (see L{Database}).
    @ivar description: where the data lives, without any password.
    """
