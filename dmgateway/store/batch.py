"""
A store's calls recorded for one transaction: L{Batch} (see
L{Database.batch <dmgateway.store.database.Database.batch>}).

The store is typed C{Any} here: L{dmgateway.store.database} imports this
module, and the package has no import cycle (tests/test_architecture.py).
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet import defer
from twisted.internet.defer import Deferred

__all__ = ["Batch"]


#: what a L{Batch} of any store may not record (beside private names)
_NOT_BATCHED = frozenset(("batch", "close", "migrate"))


def _recorder(method: Any) -> Any:
    """
    A L{Batch} method recording C{method}'s transaction instead of running
    it: C{method} runs on the store itself, whose C{run_interaction}
    records into the batch's work while C{_batch_work} names it
    (recording is synchronous, so batches recorded in turns do not mix).
    What the method asks of the store is the store's own, asked at each
    use (a method replaced on the store is seen at once).
    """

    def record(self: "Batch", *args: Any, **kwargs: Any) -> "Batch":
        store = self._store
        store._batch_work = self._work
        try:
            method(store, *args, **kwargs)
        finally:
            store._batch_work = None
        return self

    record.__name__ = method.__name__
    return record


class Batch:
    """
    Calls recorded for one transaction (see L{Store.batch}).  Each store
    method called on it returns the batch, so calls can be chained.

    The class L{for_store} makes for a kind of store has a recorder of
    each of that store's public methods (but C{batch}, C{close} and
    C{migrate}), made once: any other name is an C{AttributeError}, and
    an attribute is looked up as on any object (no C{__getattr__}, whose
    hook Python runs at every lookup of every attribute).
    """

    __slots__ = ("_store", "_work")

    #: the store class this batch class records calls of (see L{for_store})
    _store_type: Optional[type] = None

    def __init__(self, store: Any):
        self._store = store
        self._work: list = []

    @staticmethod
    def for_store(store_type: type) -> type:
        """The L{Batch} subclass with the recorders of C{store_type}'s methods."""
        kind = _BATCH_TYPES.get(store_type)
        if kind is None:
            namespace: dict[str, Any] = {"__slots__": (), "_store_type": store_type}
            for name in dir(store_type):
                method = getattr(store_type, name, None)
                if not name.startswith("_") and callable(method) and name not in _NOT_BATCHED:
                    namespace[name] = _recorder(method)
            kind = type(f"{store_type.__name__}Batch", (Batch,), namespace)
            _BATCH_TYPES[store_type] = kind
        return kind

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
