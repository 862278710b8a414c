"""
The SQLite engine: the embedded default.

One connection (adbapi pool of one thread), WAL journal, foreign keys on,
a busy timeout for other processes on the same file, and every transaction
opened with C{BEGIN IMMEDIATE} so concurrent writers queue up instead of
failing half-way.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
from typing import Any, Optional

from twisted.enterprise import adbapi

from .base import Store, Txn
from .model import Conflict, StoreError, StoreUnavailable

# OperationalErrors that say the database cannot be used now, not that the
# SQL is wrong: a full disk, a read-only or vanished file, I/O errors, locks.
_UNAVAILABLE = re.compile(
    r"disk|full|readonly|read-only|unable to open|i/o error|locked|busy|no such file",
    re.IGNORECASE,
)

__all__ = ["SQLiteStore", "parse_sqlite_uri"]

MEMORY = ":memory:"


def parse_sqlite_uri(uri: str) -> str:
    """
    The database path of C{sqlite:PATH} (C{sqlite://PATH} is accepted too),
    or C{":memory:"} for C{sqlite::memory:}.

    @raise ValueError: not an SQLite URI, or no path.
    """
    if not uri.startswith("sqlite:"):
        raise ValueError("an SQLite store URI starts with sqlite:")
    path = uri[len("sqlite:"):].split("?", 1)[0]
    if path.startswith("//"):
        path = path[2:]
    if not path:
        raise ValueError("sqlite: URI without a path (use sqlite:PATH or sqlite::memory:)")
    return path


SYNCHRONOUS = ("normal", "full")


def sqlite_synchronous(uri: str) -> str:
    """
    The C{synchronous} setting of C{sqlite:PATH?synchronous=normal|full}.

    C{normal} (the default) is what WAL mode is designed for: a committed
    transaction survives a crash or kill of the process; only a power loss
    or OS crash may lose the last ones (never corrupting the file).
    C{full} also syncs every commit to disk, at a large cost in speed.
    """
    query = uri.split("?", 1)[1] if "?" in uri else ""
    value = "normal"
    for part in filter(None, query.split("&")):
        key, _, given = part.partition("=")
        if key != "synchronous" or given.lower() not in SYNCHRONOUS:
            raise ValueError(f"unknown SQLite store option {part!r} (synchronous=normal|full)")
        value = given.lower()
    return value


def _setup_connection(busy_timeout_ms: int, synchronous: str, connection: sqlite3.Connection) -> None:
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {synchronous.upper()}")


class SQLiteStore(Store):
    """L{Store} on an SQLite file (or memory, for tests)."""

    engine = "sqlite"
    column_types = {
        "pk": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "bigint": "INTEGER",
        "float": "REAL",
        "blob": "BLOB",
        "json": "TEXT",
        "key": "TEXT",
    }

    @classmethod
    def from_uri(
        cls, uri: str, reactor: Any, clock: Any, *, busy_timeout: float = 30.0
    ) -> "SQLiteStore":
        """
        Make the pool for C{sqlite:PATH} (creating PATH's directory); the
        schema is not touched yet.

        @param busy_timeout: seconds to wait for another process's lock.
        """
        path = parse_sqlite_uri(uri)
        if path != MEMORY:
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
        pool = adbapi.ConnectionPool(
            "sqlite3",
            path,
            timeout=busy_timeout,
            isolation_level=None,  # we issue BEGIN ourselves
            check_same_thread=False,
            cp_min=1,
            cp_max=1,
            cp_openfun=functools.partial(_setup_connection, busy_timeout * 1000, sqlite_synchronous(uri)),
            cp_reactor=reactor,
            cp_name="dmgateway-store-sqlite",
        )
        return cls(pool, clock, f"sqlite:{path}")

    def _sql(self, sql: str) -> str:
        return sql

    def _begin_txn(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")

    def _lock_migrations_txn(self, txn: Txn) -> None:
        # BEGIN IMMEDIATE already holds the database's write lock.
        pass

    def _insert_txn(self, txn: Txn, sql: str, args: tuple, id_column: str) -> int:
        txn.execute(sql, args)
        return txn.cursor.lastrowid

    def _translate_error(self, error: BaseException) -> Optional[StoreError]:
        if isinstance(error, sqlite3.IntegrityError):
            return Conflict(str(error))
        if isinstance(error, sqlite3.OperationalError) and _UNAVAILABLE.search(str(error)):
            return StoreUnavailable(f"{type(error).__name__}: {error}")
        if isinstance(error, sqlite3.Error):
            return StoreError(f"{type(error).__name__}: {error}")
        return None
