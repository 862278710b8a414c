"""
Opening a store: pick the engine from the URI (L{make_store}) and bring
the schema up to date (L{open_store}).

Kept apart from L{dmgateway.store.base} (the interface) because it knows
both engines; the engines know neither.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from .base import Store
from .migrations import Migration
from .postgres import PostgresEngine
from .sqlite import SQLiteEngine

__all__ = ["open_store", "make_store"]

log = Logger()


async def _open(store: Store, migrations: Optional[Sequence[Migration]]) -> Store:
    try:
        applied = await store.migrate(migrations)
    except BaseException:
        await store.close()
        raise
    version = await store.schema_version()
    log.info(
        "store {store} at schema version {version} (applied now: {applied})",
        store=store.description,
        version=version,
        applied=applied,
    )
    return store


def open_store(
    uri: str,
    reactor: Any = None,
    *,
    clock: Any = None,
    pool_min: Optional[int] = None,
    pool_max: Optional[int] = None,
    migrations: Optional[Sequence[Migration]] = None,
) -> Deferred:
    """
    Open the store at C{uri}, bring its schema up to date, and fire with it.

    @param uri: C{sqlite:PATH} (the parent directory is created; add
        C{?inline=0} to keep short transactions off the calling thread),
        C{sqlite::memory:} (private, for tests; add C{?inline=1} to run
        every transaction at once in the calling thread), or
        C{postgresql://user:password@host:port/dbname?...} with optional
        C{pool_min}/C{pool_max} query parameters.
    @param reactor: the reactor for the thread pool (default: the global one).
    @param clock: where bookkeeping times come from (default: C{reactor}).
    @param pool_min: PostgreSQL connections kept open (overrides the URI).
    @param pool_max: PostgreSQL connections at most (overrides the URI).
    @param migrations: the migrations to apply (default: all shipped ones).
    @raise ValueError: the URI names no engine this store has.
    """
    try:
        store = make_store(uri, reactor, clock=clock, pool_min=pool_min, pool_max=pool_max)
    except Exception:
        return defer.fail()
    return Deferred.fromCoroutine(_open(store, migrations))


def make_store(
    uri: str,
    reactor: Any = None,
    *,
    clock: Any = None,
    pool_min: Optional[int] = None,
    pool_max: Optional[int] = None,
) -> Store:
    """
    The L{Store} at C{uri}, its schema not touched yet (see L{open_store}
    for the arguments).

    @raise ValueError: the URI names no engine this store has, or is bad.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    if clock is None:
        clock = reactor
    if uri.startswith("sqlite:"):
        engine: Any = SQLiteEngine.from_uri(uri)
    elif uri.startswith(("postgresql://", "postgres://")):
        engine = PostgresEngine.from_uri(uri, pool_min=pool_min, pool_max=pool_max)
    else:
        scheme = uri.split(":", 1)[0] if ":" in uri else uri[:20]
        raise ValueError(
            f"store URI must be sqlite:PATH or postgresql://..., not {scheme!r}:..."
        )
    return Store(engine, engine.connection_pool(reactor), clock)
