"""
CHECK constraints without IN-lists, on SQLite: C{state IN ('queued',
'notified', ...)} becomes C{state = 'queued' OR state = 'notified' OR ...},
the same constraint (a row passes, fails or is NULL under both alike:
same column affinity, same collation).

SQLite codes an IN-list of more than two constants as a lookup in an
ephemeral index, built again each time a statement runs: every INSERT of
a row and every UPDATE of a constrained column (a job's state, twice per
DM session) paid for opening, filling and searching a temporary b-tree.
The equalities are a few comparisons in the statement's own code.

SQLite has no ALTER TABLE for a CHECK constraint, and rebuilding seven
tables (the devices among them) to change none of their rows would be a
long copy at a gateway's start.  The rewrite follows instead the procedure
of the SQLite documentation for changes that leave the stored rows as they
are (lang_altertable.html, "otheralter"): in a savepoint of the migration's
transaction, each table's text in C{sqlite_master} is edited under
C{PRAGMA writable_schema}, C{PRAGMA schema_version} goes up by one (every
connection, this one and other processes', reads the schema again), then
C{PRAGMA writable_schema = RESET} and C{PRAGMA quick_check} of each table
(which parses its new text and checks every row against its constraints).

It leaves the constraints as they are, logs why and carries on (the
database is as correct, only slower) when a constraint's stored text is
not exactly what migrations 001 and 007 wrote, when the library refuses
writable_schema or schema_version (SQLITE_DBCONFIG_DEFENSIVE), when the
schema stays writable after RESET, when a table's new text does not parse
or when quick_check finds anything.

PostgreSQL: nothing to do.  It keeps an IN-list as C{state = ANY
(ARRAY[...])} over a constant array, compared in place, with no temporary
structure, and its catalogue is not to be edited by hand.

An older gateway refuses the migrated file (its newest migration is 12)
although the constraints mean the same: that is wanted, the schema's
version says which code wrote it.
"""

from __future__ import annotations

import sqlite3
from typing import Optional

from twisted.logger import Logger

__all__ = ["STATEMENTS", "CONSTRAINTS", "migrate", "listed", "equalities"]

log = Logger()

STATEMENTS: list = []

_INDENT = "\n            "

#: every IN-list CHECK of more than two values (SQLite codes two or fewer
#: as comparisons already): table, column, values, and what stood between
#: C{IN} and its list in the migration that wrote it (001 or 007)
CONSTRAINTS = (
    ("devices", "client_auth_type", ("none", "basic", "md5", "hmac"), " "),
    ("devices", "server_auth_type", ("none", "basic", "md5", "hmac"), " "),
    ("jobs", "state", ("queued", "notified", "running", "done", "failed", "expired"), _INDENT),
    ("notifications", "state", ("queued", "sent", "delivered", "failed", "expired"), _INDENT),
    ("deliveries", "state", ("pending", "delivered", "failed"), " "),
    (
        "operations", "state",
        ("pending", "awaiting_device", "verifying", "done", "failed", "expired"), _INDENT,
    ),
    ("campaigns", "state", ("running", "paused", "cancelled", "done"), " "),
    (
        "campaign_devices", "state",
        ("waiting", "started", "done", "failed", "expired", "skipped", "cancelled"), _INDENT,
    ),
)

_SAVEPOINT = "check_equalities"


def listed(column: str, values: tuple, between: str = " ") -> str:
    """A constraint's text before this migration: C{CHECK (column IN (...))}."""
    return f"CHECK ({column} IN{between}({', '.join(_quoted(v) for v in values)}))"


def equalities(column: str, values: tuple) -> str:
    """A constraint's text after it: C{CHECK (column = ... OR column = ...)}."""
    return "CHECK (" + " OR ".join(f"{column} = {_quoted(v)}" for v in values) + ")"


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def migrate(txn) -> None:
    """Rewrite the IN-lists on SQLite (see the module docstring); nothing elsewhere."""
    if txn.engine != "sqlite":
        return
    reason = _rewrite_txn(txn)
    if reason is not None:
        log.warn(
            "migration 13: CHECK constraints keep their IN-lists ({reason});"
            " the store works as before, with more CPU per write",
            reason=reason,
        )


def _rewrite_txn(txn) -> Optional[str]:
    """Rewrite every table of L{CONSTRAINTS}, or none; why not, or L{None}."""
    stored = {
        row["name"]: row["sql"]
        for row in txn.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
    }
    texts: dict[str, str] = {}
    for table, column, values, between in CONSTRAINTS:
        sql = texts.get(table, stored.get(table))
        old = listed(column, values, between)
        if sql is None or sql.count(old) != 1:
            return f"the stored text of {table}.{column}'s constraint is not the one expected"
        texts[table] = sql.replace(old, equalities(column, values))
    # (a text SQLite cannot parse makes the file unreadable once written:
    # each is parsed first in a private database)
    scratch = sqlite3.connect(":memory:")
    try:
        for table, sql in texts.items():
            try:
                scratch.execute(sql)
            except sqlite3.Error as e:
                return f"the new text of {table} does not parse: {e}"
    finally:
        scratch.close()

    txn.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        reason = _edit_txn(txn, stored, texts)
    except sqlite3.DatabaseError as e:
        reason = f"{type(e).__name__}: {e}"
    except BaseException:
        _undo_txn(txn)
        raise
    if reason is None:
        txn.execute(f"RELEASE {_SAVEPOINT}")
        return None
    _undo_txn(txn)
    return reason


def _undo_txn(txn) -> None:
    """Back to the savepoint, with the schema read again and writable_schema off."""
    txn.execute(f"ROLLBACK TO {_SAVEPOINT}")
    txn.execute(f"RELEASE {_SAVEPOINT}")
    # (writable_schema is a setting of the connection, which no rollback undoes)
    txn.execute("PRAGMA writable_schema = RESET")
    if _pragma(txn, "writable_schema"):
        raise sqlite3.OperationalError("PRAGMA writable_schema stays on: the migration stops")


def _edit_txn(txn, stored: dict[str, str], texts: dict[str, str]) -> Optional[str]:
    """The documented procedure, inside the savepoint; why it stopped, or L{None}."""
    version = _pragma(txn, "schema_version")
    txn.execute("PRAGMA writable_schema = ON")
    if not _pragma(txn, "writable_schema"):
        return "the SQLite library refuses PRAGMA writable_schema (defensive mode)"
    for table, sql in texts.items():
        changed = txn.execute(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ? AND sql = ?",
            (sql, table, stored[table]),
        )
        if changed != 1:
            return f"table {table} was not rewritten"
    txn.execute(f"PRAGMA schema_version = {version + 1}")
    if _pragma(txn, "schema_version") != version + 1:
        return "the SQLite library refuses PRAGMA schema_version (defensive mode)"
    txn.execute("PRAGMA writable_schema = RESET")
    if _pragma(txn, "writable_schema"):
        return "PRAGMA writable_schema = RESET left the schema writable"
    for table in texts:
        found = [next(iter(row.values())) for row in txn.fetchall(f"PRAGMA quick_check({table})")]
        if found != ["ok"]:
            return f"quick_check({table}): {'; '.join(map(str, found[:3]))}"
    return None


def _pragma(txn, name: str) -> int:
    row = txn.fetchone(f"PRAGMA {name}")
    return next(iter(row.values()))
