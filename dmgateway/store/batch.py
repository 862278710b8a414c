"""
A store's calls recorded for one transaction: L{Batch} (see
L{Database.batch <dmgateway.store.database.Database.batch>}).

The store is typed C{Any} here: L{dmgateway.store.database} imports this
module, and the package has no import cycle (tests/test_architecture.py).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Optional

from twisted.internet import defer
from twisted.internet.defer import Deferred

__all__ = ["Batch"]


class _Recording:
    """
    Stands in for the store while a L{Batch} records its method calls.

    One per store (L{_recording_of}): each recorder points it at its
    batch's list of work before the call (recording is synchronous, so
    batches recorded in turns do not mix).  What the store's methods ask
    of it is the store's own, asked at each use (a method replaced on the
    store is seen at once): through a property per attribute of the
    store's class (L{_recording_type}), else through C{__getattr__}.
    """

    __slots__ = ("_store", "_work")

    def __init__(self, store: Any):
        self._store = store
        self._work: list = []

    def __getattr__(self, name: str) -> Any:
        # (the store's instance attributes: its engine, clock...)
        return getattr(self._store, name)

    def run_interaction(self, desc: str, func, *args: Any, short: bool = False) -> None:
        self._work.append((desc, func, args))


def _recording_type(store_type: type) -> type:
    """
    The L{_Recording} subclass for stores of C{store_type}: each attribute
    of the class is a property reading the store's (a lookup through
    C{__getattr__} first fails, raising and catching an C{AttributeError}:
    a tenth of a batch's recording).
    """
    kind = _RECORDING_TYPES.get(store_type)
    if kind is None:
        own = set(dir(_Recording))
        namespace: dict[str, Any] = {"__slots__": ()}
        for name in dir(store_type):
            if name not in own:
                namespace[name] = property(attrgetter("_store." + name))
        kind = type(f"{store_type.__name__}Recording", (_Recording,), namespace)
        _RECORDING_TYPES[store_type] = kind
    return kind


_RECORDING_TYPES: dict[type, type] = {}


def _recording_of(store: Any) -> _Recording:
    """The store's L{_Recording}, made at its first batch."""
    recording = store.__dict__.get("_batch_recording")
    if recording is None:
        recording = store.__dict__["_batch_recording"] = _recording_type(type(store))(store)
    return recording


def _recorder(method: Any) -> Any:
    """A L{Batch} method recording C{method}'s transaction instead of running it."""

    def record(self: "Batch", *args: Any, **kwargs: Any) -> "Batch":
        recording = self._recording
        recording._work = self._work
        method(recording, *args, **kwargs)
        return self

    record.__name__ = method.__name__
    return record


class Batch:
    """
    Calls recorded for one transaction (see L{Store.batch}).  Each store
    method called on it returns the batch, so calls can be chained.

    A method's recorder is made when it is first called on a batch of
    that kind of store, then kept on the class L{for_store} made for it.
    """

    __slots__ = ("_store", "_work", "_recording")

    #: the store class this batch class records calls of (see L{for_store})
    _store_type: Optional[type] = None

    def __init__(self, store: Any):
        self._store = store
        self._work: list = []
        self._recording = _recording_of(store)

    @staticmethod
    def for_store(store_type: type) -> type:
        """The L{Batch} subclass that keeps the recorders of C{store_type}'s methods."""
        kind = _BATCH_TYPES.get(store_type)
        if kind is None:
            kind = type(f"{store_type.__name__}Batch", (Batch,), {"__slots__": (), "_store_type": store_type})
            _BATCH_TYPES[store_type] = kind
        return kind

    def __getattr__(self, name: str) -> Any:
        method = getattr(type(self._store), name, None)
        if name.startswith("_") or not callable(method) or name in ("batch", "close", "migrate"):
            raise AttributeError(f"{name!r} cannot be batched")
        record = _recorder(method)
        if type(self)._store_type is type(self._store):
            setattr(type(self), name, record)
        return record.__get__(self)

    def __len__(self) -> int:
        return len(self._work)

    def commit(self, *, short: bool = False) -> Deferred:
        """
        Run the recorded calls in one transaction; fire with their results.

        @param short: see L{Database.run_interaction
            <dmgateway.store.database.Database.run_interaction>}: a DM session's batch.
        """
        work = self._work
        self._work = []
        if not work:
            return defer.succeed([])
        desc = "batch of " + ", ".join([d for d, _f, _a in work])
        return self._store.run_interaction(desc, self._store._batch_txn, work, short, short=short)


_BATCH_TYPES: dict[type, type] = {}
