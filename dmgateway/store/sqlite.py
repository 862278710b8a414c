"""
The SQLite engine: the embedded default.

One pooled connection (adbapi pool of one thread), WAL journal, foreign
keys on, a busy timeout for other processes on the same file, and every
transaction on it opened with C{BEGIN IMMEDIATE} so concurrent writers
queue up instead of failing half-way.

A file store also keeps a second connection for the calling (reactor)
thread (L{ReactorConnection}, C{inline=1}, the default for files): the
short transactions of a DM session (C{run_interaction(..., short=True)})
run on it at once instead of hopping to the pool's thread and back, which
costs more CPU than their SQL.  Its busy timeout is 0, so it never waits:
when another process or the pool holds the write lock, the transaction is
rolled back and run on the pool like any other.  C{inline=0} keeps every
transaction on the pool.

C{sqlite::memory:?inline=1} runs every transaction, short or long, at once
in the calling thread (L{InlinePool}), so tests of code above the store
can run on a C{task.Clock} without waiting for a thread: for tests only
(a private in-memory database has no second connection to share it).
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import time
from typing import Any, Optional

from twisted.enterprise import adbapi
from twisted.internet import defer
from twisted.internet.defer import Deferred

from .database import BUSY, Txn
from .model import Conflict, StoreError, StoreUnavailable

# sqlite3 binds a parameter that is exactly an int, float, str or bytearray
# as it is; any other first goes through its adapter lookup: a miss in the
# registry, then __adapt__ looked up on its protocol (an AttributeError
# raised and cleared) and __conform__ on the value, some 2.4k instructions
# for each None (a column set to NULL) and bytes (a nonce), 3-4 in every DM
# session.  Registered as what they are, they are found at once, and bound
# as before.  (The registry is the sqlite3 module's, for the whole process:
# these two change nothing any user of it binds.)
def _as_is(value: Any) -> Any:
    return value


sqlite3.register_adapter(type(None), _as_is)
sqlite3.register_adapter(bytes, _as_is)

# OperationalErrors that say the database cannot be used now, not that the
# SQL is wrong: a full disk, a read-only or vanished file, I/O errors, locks.
_UNAVAILABLE = re.compile(
    r"disk|full|readonly|read-only|unable to open|i/o error|locked|busy|no such file",
    re.IGNORECASE,
)

__all__ = [
    "SQLiteEngine",
    "InlinePool",
    "ReactorConnection",
    "parse_sqlite_uri",
    "sqlite_synchronous",
    "sqlite_inline",
    "sqlite_cache_size",
    "sqlite_mmap_size",
]

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
INLINE = ("0", "1")
# A daemon's defaults (SQLite's own: 2000 KiB of cache, no mmap), so the hot
# pages of a large device table stay in memory; bench/store_scale.py compares
# a session at 1M registered devices with one at 1k under both.  The map is
# SQLite's ceiling on 64-bit Linux (it lowers a larger value to its build's
# limit), so a store of some 3M devices is read through it whole: past the
# map every page not in the cache is a pread into it, again and again in a
# daemon in service (a 638 MB store of 1M devices past a 256 MiB map: 3.3
# more reads per session; the map's pages are the page cache's own,
# shared and reclaimable, where the cache is the process's memory).
CACHE_SIZE_KIB = 64 * 1024
MMAP_SIZE = 0x7FFF0000
# The page of a NEW file (an existing one keeps its own: SQLite sets it
# when the file is created).  A DM session writes some 15 pages to the
# WAL, each copied, checksummed and checkpointed whole, and b-tree cells
# are moved within a page: at 2048 bytes a session's store calls cost
# some 3% less CPU than at SQLite's default 4096 (bench/store_session.py),
# and a device row (DevInfo, last session: well under 1 KiB) still fits in
# its leaf page (a job's results above 2 KiB take an overflow page).
PAGE_SIZE = 2048
_NUMERIC = ("cache_size", "mmap_size")
_OPTIONS_HELP = "synchronous=normal|full, inline=0|1, cache_size=KiB, mmap_size=bytes"


def _sqlite_options(uri: str) -> dict[str, str]:
    """
    The query options of an SQLite URI, checked: C{synchronous}, C{inline},
    C{cache_size} (a positive whole number), C{mmap_size} (zero or more).
    """
    query = uri.split("?", 1)[1] if "?" in uri else ""
    options = {
        "synchronous": "normal",
        "inline": None,
        "cache_size": str(CACHE_SIZE_KIB),
        "mmap_size": str(MMAP_SIZE),
    }
    for part in filter(None, query.split("&")):
        key, _, given = part.partition("=")
        if key in _NUMERIC:
            lowest = 1 if key == "cache_size" else 0
            if not (given.isascii() and given.isdigit() and int(given) >= lowest):
                raise ValueError(f"bad SQLite store option {part!r} ({key} is a whole number >= {lowest})")
            options[key] = str(int(given))
            continue
        allowed = {"synchronous": SYNCHRONOUS, "inline": INLINE}.get(key, ())
        if given.lower() not in allowed:
            raise ValueError(f"unknown SQLite store option {part!r} ({_OPTIONS_HELP})")
        options[key] = given.lower()
    file = parse_sqlite_uri(uri) != MEMORY
    if options["inline"] is None:
        # A file's short transactions run in the calling thread, unless
        # every commit waits for the disk (synchronous=full): that wait
        # belongs in the pool's thread.
        options["inline"] = "1" if file and options["synchronous"] == "normal" else "0"
    elif options["inline"] == "1" and file and options["synchronous"] == "full":
        raise ValueError("inline=1 with synchronous=full would wait for the disk in the reactor thread "
                         "at every commit: leave inline out (or inline=0)")
    return options


def sqlite_synchronous(uri: str) -> str:
    """
    The C{synchronous} setting of C{sqlite:PATH?synchronous=normal|full}.

    C{normal} (the default) is what WAL mode is designed for: a committed
    transaction survives a crash or kill of the process; only a power loss
    or OS crash may lose the last ones (never corrupting the file).
    C{full} also syncs every commit to disk, at a large cost in speed.
    """
    return _sqlite_options(uri)["synchronous"]


def sqlite_inline(uri: str) -> bool:
    """
    Whether transactions run in the calling thread: for a file
    (C{sqlite:PATH}, default C{inline=1}, but C{inline=0} with
    C{synchronous=full}, whose commits wait for the disk) the short ones,
    on a second connection that never waits (L{ReactorConnection}); for
    C{sqlite::memory:?inline=1} (default C{inline=0}) all of them
    (L{InlinePool}).  C{inline=0} keeps every transaction on the pool.
    """
    return _sqlite_options(uri)["inline"] == "1"


def sqlite_cache_size(uri: str) -> int:
    """
    KiB of page cache per connection, C{sqlite:PATH?cache_size=KiB}
    (C{PRAGMA cache_size = -KiB}); 64 MiB by default.
    """
    return int(_sqlite_options(uri)["cache_size"])


def sqlite_mmap_size(uri: str) -> int:
    """
    Bytes of the file read through memory mapping, C{sqlite:PATH?mmap_size=bytes}
    (C{PRAGMA mmap_size}; 0 reads through system calls only); by default
    2 GiB less 64 KiB, SQLite's own ceiling (it lowers a larger value to it).
    """
    return int(_sqlite_options(uri)["mmap_size"])


def _setup_connection(
    busy_timeout_ms: int,
    synchronous: str,
    cache_size_kib: int,
    mmap_size: int,
    connection: sqlite3.Connection,
) -> None:
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    connection.execute("PRAGMA foreign_keys = ON")
    # (before the switch to WAL, which writes a new file's first page)
    connection.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    _switch_to_wal(connection, busy_timeout_ms / 1000.0)
    connection.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    connection.execute(f"PRAGMA cache_size = {-int(cache_size_kib)}")
    connection.execute(f"PRAGMA mmap_size = {int(mmap_size)}")


def _switch_to_wal(connection: sqlite3.Connection, timeout: float) -> None:
    """
    C{PRAGMA journal_mode = WAL}, waiting up to C{timeout} seconds for
    another connection's write lock: SQLite answers this switch with
    "database is locked" at once, without its busy handler (two processes
    opening a new file together).  Runs in the pool's thread.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class InlinePool:
    """
    The part of C{adbapi.ConnectionPool} the store uses, on one connection
    used in the calling thread: each interaction runs (and commits or
    rolls back) before C{runInteraction} returns its fired L{Deferred}.
    """

    def __init__(self, connection: sqlite3.Connection):
        self._connection: Optional[sqlite3.Connection] = connection

    def runInteraction(self, interaction: Any, *args: Any, **kwargs: Any) -> Deferred:
        """Run C{interaction(cursor, *args, **kwargs)} in one transaction, now."""
        connection = self._connection
        if connection is None:
            return defer.fail(sqlite3.ProgrammingError("Cannot operate on a closed database."))
        cursor = connection.cursor()
        try:
            result = interaction(cursor, *args, **kwargs)
            connection.commit()
        except BaseException:
            failed = defer.fail()
            connection.rollback()
            return failed
        finally:
            cursor.close()
        return defer.succeed(result)

    def runWithConnection(self, func: Any, *args: Any, **kwargs: Any) -> Deferred:
        """Run C{func(connection, *args, **kwargs)}, now."""
        return defer.maybeDeferred(func, self._connection, *args, **kwargs)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


# SQLITE_BUSY (another connection holds the lock), SQLITE_LOCKED (a
# conflict inside this process): primary result codes, as in sqlite3.h.
_BUSY_CODES = (5, 6)


def _is_busy(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(error) or "busy" in str(error)


class ReactorConnection:
    """
    A file store's second connection, for short transactions run at once
    in the calling thread (see the module docstring).

    Its busy timeout is 0: a transaction that meets another connection's
    lock (another process, or this store's pool) is rolled back and
    L{run} answers L{BUSY}, never waiting.  It does not checkpoint the WAL
    itself (that writes and syncs the database file): every
    C{checkpoint_every} transactions that changed rows L{checkpoint_due}
    hands a passive checkpoint to the pool's thread (a read adds nothing
    to the WAL: counting it too checkpointed a third more often, each
    time with a hop to the pool's thread and back).  Nothing is written
    through this connection until that checkpoint is done: a frame written
    during the checkpoint would stay after the checkpointed ones, and the
    WAL only starts again from its beginning when all of it was
    checkpointed (it grew by every session's frames, without bound, under
    a steady load).  The store has the transactions asked for meanwhile
    wait for the checkpoint as for the pool's work (see
    L{Database.run_interaction
    <dmgateway.store.database.Database.run_interaction>}), and L{run}
    answers L{BUSY} at once until it is done.  The pool's thread ends that
    wait when the checkpoint ran, even if it failed; when the pool fails
    before it runs it (it cannot connect, it was stopped),
    L{checkpoint_failed} ends it in the calling thread, or every short
    transaction would go to the pool from then on.

    @ivar fallbacks: transactions answered L{BUSY} so far.
    """

    # A session's write transaction adds some 5-10 pages to the WAL: about
    # SQLite's own automatic checkpoint (1000 pages) apart.
    checkpoint_every = 200

    def __init__(self, path: str, setup: Any, engine: Any = None):
        """
        @param setup: C{setup(connection)} with the busy timeout 0.
        @param engine: the L{SQLiteEngine}, which the L{Txn}s of L{run} name.
        """
        self._path = path
        self._setup = setup
        self._engine = engine
        #: whether L{checkpoint_due} has a checkpoint for the pool
        self.due = False
        self._connection: Optional[sqlite3.Connection] = None
        self._since_checkpoint = 0
        # the number of the checkpoint handed to the pool and not yet ended
        # (0: none), so a late errback cannot end a later one's wait
        self._checkpointing = 0
        self._checkpoints = 0
        self.fallbacks = 0

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            self._setup(connection)
            connection.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            connection.close()
            raise
        return connection

    def run(self, func: Any, args: tuple = (), begin: bool = True) -> Any:
        """
        C{func(txn, *args)} in one transaction (begun here), with C{txn} a
        L{Txn} on this connection, committed on return and rolled back on
        an exception (raised, as the pool's would be); L{BUSY} if the
        database was locked, rolled back too.

        @param begin: C{False} for a C{func} of reads that each stand
            alone (ONE statement, or a second that needs no snapshot in
            common with the first), each run on its own (atomic, as every
            statement SQLite runs outside a transaction), without C{BEGIN}
            and C{COMMIT}.
        """
        if self._checkpointing:
            return BUSY
        connection = self._connection
        if connection is None:
            try:
                connection = self._connection = self._connect()
            except sqlite3.OperationalError as e:
                if not _is_busy(e):
                    raise
                self.fallbacks += 1
                return BUSY
        changes = connection.total_changes
        cursor = connection.cursor()
        try:
            # Deferred: a read takes no lock, a write takes it at its first
            # change (or meets BUSY, as BEGIN IMMEDIATE would).
            if begin:
                cursor.execute("BEGIN")
            result = func(Txn(cursor, self._engine), *args)
            if begin and connection.in_transaction:
                # (a statement from the cursor's cache: Connection.commit
                # prepares and finalizes its COMMIT at every call)
                cursor.execute("COMMIT")
            cursor.close()
        except sqlite3.OperationalError as e:
            self._rollback(cursor)
            if not _is_busy(e):
                # (disk full, I/O error...: start again on a fresh connection)
                self.close()
                raise
            self.fallbacks += 1
            return BUSY
        except BaseException:
            self._rollback(cursor)
            raise
        if connection.total_changes != changes:
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.checkpoint_every:
                self.due = True
        return result

    def _rollback(self, cursor: sqlite3.Cursor) -> None:
        try:
            cursor.close()
            self._connection.rollback()
        except sqlite3.Error:
            # a connection that cannot roll back is not used again
            self.close()

    def checkpoint_due(self) -> int:
        """
        Whether the pool should checkpoint the WAL now: the number to give
        L{checkpoint} (and L{checkpoint_failed}), or 0.  Until it ends,
        L{run} answers L{BUSY}.
        """
        self.due = False
        if self._since_checkpoint < self.checkpoint_every:
            return 0
        self._since_checkpoint = 0
        self._checkpoints += 1
        self._checkpointing = self._checkpoints
        return self._checkpoints

    def checkpoint(self, connection: Any, number: int) -> None:
        """
        A passive WAL checkpoint: for the pool's thread
        (C{runWithConnection}).  Its end, even by an error, lets L{run}
        write again.
        """
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            self._ended(number)

    def checkpoint_failed(self, number: int) -> None:
        """
        Checkpoint C{number} failed, perhaps before the pool ran it (for
        the calling thread, from the pool's errback): L{run} writes again.
        """
        self._ended(number)

    def _ended(self, number: int) -> None:
        # (a checkpoint that ran and failed is ended twice: by the pool's
        # thread, then by the errback, which must not end a later one)
        if self._checkpointing == number:
            self._checkpointing = 0

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


class SQLiteEngine:
    """
    What is particular to SQLite: the pool, the SQL dialect, the errors.

    @ivar path: the database file, or C{":memory:"}.
    @ivar description: where the data lives, for logs.
    """

    name = "sqlite"
    #: whether the store ends statements in C{RETURNING}: not on SQLite,
    #: which gathers such a statement's rows in a temporary b-tree before
    #: returning them (more CPU than reading the row back by its key in the
    #: same transaction, and there is no round trip to a server to save);
    #: before 3.35 (RHEL 9's Python 3.11 runs on 3.34) it has none at all
    returning = False
    column_types = {
        "pk": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "bigint": "INTEGER",
        "float": "REAL",
        "blob": "BLOB",
        "json": "TEXT",
        "key": "TEXT",
        # a table stored in the b-tree of its primary key (no rowid)
        "keyed": " WITHOUT ROWID",
    }

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "normal",
        inline: bool = False,
        cache_size: int = CACHE_SIZE_KIB,
        mmap_size: int = MMAP_SIZE,
        busy_timeout: float = 30.0,
    ):
        """
        @param cache_size: KiB of page cache per connection.
        @param mmap_size: bytes of the file mapped into memory.
        @param busy_timeout: seconds to wait for another process's lock.
        """
        self.path = path
        self.synchronous = synchronous
        self.inline = inline
        self.cache_size = cache_size
        self.mmap_size = mmap_size
        self.busy_timeout = busy_timeout
        self.description = f"sqlite:{path}"

    @classmethod
    def from_uri(cls, uri: str, *, busy_timeout: float = 30.0) -> "SQLiteEngine":
        """The engine of C{sqlite:PATH[?synchronous=...&inline=...&cache_size=...&mmap_size=...]}."""
        return cls(
            parse_sqlite_uri(uri),
            synchronous=sqlite_synchronous(uri),
            inline=sqlite_inline(uri),
            cache_size=sqlite_cache_size(uri),
            mmap_size=sqlite_mmap_size(uri),
            busy_timeout=busy_timeout,
        )

    def reactor_connection(self) -> Optional[ReactorConnection]:
        """
        The second connection for short transactions in the calling thread
        (L{None} for C{inline=0} and for in-memory databases); it connects
        when first used, after the pool has opened (and migrated) the file.
        """
        if not self.inline or self.path == MEMORY:
            return None
        setup = functools.partial(
            _setup_connection, 0, self.synchronous, self.cache_size, self.mmap_size
        )
        return ReactorConnection(self.path, setup, self)

    def connection_pool(self, reactor: Any) -> Any:
        """
        The pool of one connection (creating the file's directory); the
        schema is not touched yet.
        """
        setup = functools.partial(
            _setup_connection,
            self.busy_timeout * 1000,
            self.synchronous,
            self.cache_size,
            self.mmap_size,
        )
        if self.inline and self.path == MEMORY:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            setup(connection)
            return InlinePool(connection)
        if self.path != MEMORY:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
        return adbapi.ConnectionPool(
            "sqlite3",
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,  # we issue BEGIN ourselves
            check_same_thread=False,
            cp_min=1,
            cp_max=1,
            cp_openfun=setup,
            cp_reactor=reactor,
            cp_name="dmgateway-store-sqlite",
        )

    #: L{sql} changes nothing: a L{Txn<dmgateway.store.database.Txn>} skips it
    native_placeholders = True

    #: a transaction runs once: SQLite rolls none back for losing to another
    #: (C{BEGIN IMMEDIATE} queues the pool's writers for up to the busy
    #: timeout; a reactor connection's transaction that meets a lock is
    #: rolled back and goes to the pool, which is its second run)
    attempts = 1
    retries = 0

    def sql(self, sql: str) -> str:
        """SQLite takes C{?} placeholders as they are."""
        return sql

    def begin_txn(self, cursor: Any) -> None:
        """Take the write lock at once, so writers queue instead of failing."""
        cursor.execute("BEGIN IMMEDIATE")

    def lock_migrations_txn(self, txn: Any) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the database's write lock."""

    def insert_txn(self, txn: Any, sql: str, args: tuple, id_column: str) -> int:
        """Insert one row; return its generated id."""
        txn.execute(sql, args)
        return txn.cursor.lastrowid

    def translate_error(self, error: BaseException) -> Optional[StoreError]:
        """The L{StoreError} for an C{sqlite3} exception, or L{None}."""
        if isinstance(error, sqlite3.IntegrityError):
            return Conflict(str(error))
        if isinstance(error, sqlite3.OperationalError) and _UNAVAILABLE.search(str(error)):
            return StoreUnavailable(f"{type(error).__name__}: {error}")
        if isinstance(error, sqlite3.Error):
            return StoreError(f"{type(error).__name__}: {error}")
        return None
