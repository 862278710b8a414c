"""
Migration 013 (L{dmgateway.store.migrations.v013_check_equalities}) on an
SQLite file that other connections and processes use: files of every older
schema with their rows, a reader in an old snapshot, a connection with
statements prepared before, a running store's reactor connection, a
library in defensive mode, a row the constraints refuse already stored,
and the migrating process killed at each step.
"""

import ctypes
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

from twisted.logger import Logger
from twisted.trial.unittest import SkipTest, TestCase

import dmgateway
from dmgateway.store import Conflict, open_store
from dmgateway.store import sqlite as sqlite_engine
from dmgateway.store.migrations import v013_check_equalities as v013
from tests.store.support import OnSQLite, StoreCase
from tests.store.test_check_constraints import AFTER, BAD, BEFORE, TABLES, ConstraintChecks, rows

#: the schema versions a file can have before migration 013
OLDER = sorted({m.version for m in BEFORE})
#: SQLITE_DBCONFIG_DEFENSIVE, as in sqlite3.h
DEFENSIVE = 1010


def connect(path):
    """A plain connection to the file, as another program (or the sqlite3 shell) has one."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA busy_timeout = 10000")
    return connection


def texts(connection):
    return dict(connection.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())


_EXPLAINED = itertools.count()


def ephemeral_checks(connection):
    """
    The constrained columns whose UPDATE still builds an ephemeral index:
    the connection runs an IN-list constraint (the code migration 013 is
    there to remove), not the equalities.  (A connection reads a schema
    another changed when it next runs a statement: call it after one.)
    """
    found = []
    for table, column, _values, _between in v013.CONSTRAINTS:
        # (a statement of its own each time: an EXPLAIN the connection prepared
        # before runs nothing that checks the schema, and lists the old program)
        sql = f"EXPLAIN UPDATE {table} SET {column} = ? -- {next(_EXPLAINED)}"
        plan = connection.execute(sql, ("x",)).fetchall()
        if "OpenEphemeral" in [step[1] for step in plan]:
            found.append(f"{table}.{column}")
    return found


def fill_raw(connection, key):
    """L{rows}' rows of the tables the file has, in the columns it has."""
    tables = texts(connection)
    for table, row in rows(key):
        if table in tables:
            columns = {info[1] for info in connection.execute(f"PRAGMA table_info({table})")}
            row = {name: value for name, value in row.items() if name in columns}
            connection.execute(
                f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
            )


class SQLiteFileConstraintTests(OnSQLite, ConstraintChecks, TestCase):
    @property
    def path(self):
        return self.uri[len("sqlite:"):]

    async def open_filled(self):
        """A file at the schema before 013 with a row in each constrained table, closed again."""
        store = await open_store(self.uri, clock=self.clock, migrations=BEFORE)
        await store.run_interaction("fill", lambda txn: [txn.insert_row(t, r) for t, r in rows("1")])
        await store.close()

    async def cleared(self, store):
        """The constraints checked on C{store} once its rows are gone (L{assert_constraints_hold} adds its own)."""
        for table in ("devices", "campaigns", "events"):
            await store.run_interaction("clear", lambda txn: txn.execute(f"DELETE FROM {table}"))
        await self.assert_constraints_hold(store)

    async def test_every_older_schema_migrates_with_its_rows(self):
        for version in [0, *OLDER]:
            self.uri = f"sqlite:{self.tmp_path / f'v{version}.db'}"
            before = {}
            if version:
                store = await open_store(
                    self.uri, clock=self.clock, migrations=[m for m in BEFORE if m.version <= version]
                )
                await store.close()
                connection = connect(self.path)
                fill_raw(connection, "1")
                fill_raw(connection, "3")
                for table in set(TABLES) & set(texts(connection)):
                    columns = [info[1] for info in connection.execute(f"PRAGMA table_info({table})")]
                    before[table] = (columns, connection.execute(f"SELECT * FROM {table}").fetchall())
                connection.close()
            store = await open_store(self.uri, clock=self.clock)
            self.assertEqual(await store.schema_version(), AFTER[-1])
            await store.close()
            connection = connect(self.path)
            stored = texts(connection)
            for table, column, values, _between in v013.CONSTRAINTS:
                self.assertIn(v013.equalities(column, values), stored[table], version)
            self.assertEqual(ephemeral_checks(connection), [], version)
            self.assertEqual(connection.execute("PRAGMA integrity_check").fetchall(), [("ok",)], version)
            for table, (columns, content) in before.items():
                found = connection.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
                self.assertEqual(found, content, (version, table))
            connection.close()

    async def test_a_file_of_4096_byte_pages(self):
        # (a file created before the store's 2048-byte pages, with the longer texts spilling over)
        os.makedirs(os.path.dirname(self.path))
        connection = connect(self.path)
        connection.execute("PRAGMA page_size = 4096")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.close()
        store = await self.open(migrations=BEFORE)
        for key in range(1, 200):
            await store.run_interaction("fill", lambda txn: [txn.insert_row(t, r) for t, r in rows(str(key))])
        self.assertEqual(await store.migrate(), AFTER)
        connection = connect(self.path)
        self.assertEqual(connection.execute("PRAGMA page_size").fetchone(), (4096,))
        self.assertEqual(connection.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        self.assertEqual([connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES],
                         [199] * len(TABLES))
        self.assertEqual(ephemeral_checks(connection), [])
        connection.close()
        await self.cleared(store)

    async def test_a_reader_in_an_old_snapshot_and_statements_prepared_before(self):
        await self.open_filled()
        reader, writer = connect(self.path), connect(self.path)
        # (the writer's UPDATE is prepared and cached with the old schema; the
        # reader holds a snapshot of it open while the file is migrated)
        writer.execute("UPDATE jobs SET state = ? WHERE job_id = 'j1'", ("running",))
        reader.execute("BEGIN")
        self.assertEqual(reader.execute("SELECT state FROM jobs").fetchall(), [("running",)])
        store = await self.open()
        self.assertRegex(texts(reader)["jobs"], r"\bstate IN\s*\(")
        self.assertEqual(reader.execute("SELECT state FROM jobs").fetchall(), [("running",)])
        reader.execute("COMMIT")
        for connection in (reader, writer):
            self.assertNotRegex(texts(connection)["jobs"], r"\bIN\s*\(")
            for value in BAD:
                with self.assertRaises(sqlite3.IntegrityError):
                    connection.execute("UPDATE jobs SET state = ? WHERE job_id = 'j1'", (value,))
            connection.execute("UPDATE jobs SET state = ? WHERE job_id = 'j1'", ("done",))
            # (the schema_version bump: each read the schema again and runs the equalities)
            self.assertEqual(ephemeral_checks(connection), [])
            connection.close()
        await self.cleared(store)

    async def test_the_reactor_connection_of_a_store_running_before(self):
        await self.open_filled()
        running = await self.open(migrations=BEFORE)
        await running.run_interaction("read", lambda txn: txn.fetchall("SELECT * FROM jobs"), short=True)
        direct = running._direct._connection
        self.assertNotEqual(ephemeral_checks(direct), [])
        migrating = await open_store(self.uri, clock=self.clock)
        await migrating.close()
        for value in BAD:
            with self.assertRaises(Conflict):
                await running.run_interaction(
                    "bad", lambda txn: txn.execute("UPDATE jobs SET state = ?", (value,)), short=True
                )
        changed = await running.run_interaction(
            "good", lambda txn: txn.execute("UPDATE jobs SET state = 'done'"), short=True
        )
        self.assertEqual((changed, running._direct.fallbacks), (1, 0))
        self.assertIs(running._direct._connection, direct)
        self.assertEqual(ephemeral_checks(direct), [])

    async def test_a_row_the_constraints_refuse_keeps_the_in_lists(self):
        # (written by hand with the checks off: quick_check finds it, and the
        # constraints stay as they are, all of them)
        await self.open_filled()
        connection = connect(self.path)
        connection.execute("PRAGMA ignore_check_constraints = ON")
        connection.execute("UPDATE campaign_devices SET state = 'lost'")
        old = texts(connection)
        connection.close()
        logged = []
        self.patch(v013, "log", Logger(observer=logged.append))
        store = await self.open()
        self.assertEqual(await store.schema_version(), AFTER[-1])
        connection = connect(self.path)
        self.assertEqual(texts(connection), old)
        self.assertEqual(connection.execute("PRAGMA writable_schema").fetchone(), (0,))
        connection.close()
        self.assertEqual([event["reason"] for event in logged],
                         ["quick_check(campaign_devices): CHECK constraint failed in campaign_devices"])
        await self.cleared(store)

    async def test_a_library_in_defensive_mode(self):
        # (a build or a host program with SQLITE_DBCONFIG_DEFENSIVE on: sqlite_master may not be written)
        set_defensive = _defensive_setter()
        await self.open_filled()
        connection = connect(self.path)
        old = texts(connection)
        connection.close()
        setup = sqlite_engine._setup_connection

        def defensive_setup(*args):
            set_defensive(args[-1])
            setup(*args)

        self.patch(sqlite_engine, "_setup_connection", defensive_setup)
        logged = []
        self.patch(v013, "log", Logger(observer=logged.append))
        store = await self.open()
        self.assertEqual(await store.schema_version(), AFTER[-1])
        connection = connect(self.path)
        self.assertEqual(texts(connection), old)
        self.assertEqual(connection.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        connection.close()
        self.assertEqual(len(logged), 1, logged)
        self.assertIn("sqlite_master", logged[0]["reason"])
        await self.cleared(store)


def _defensive_setter():
    """C{set(connection)}: defensive mode on for a connection, or L{SkipTest} where it cannot be set."""
    if hasattr(sqlite3.Connection, "setconfig"):  # (Python 3.12)
        return lambda connection: connection.setconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE, True)
    if sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11):
        raise SkipTest("no way to set SQLITE_DBCONFIG_DEFENSIVE here")
    import _sqlite3

    library = ctypes.CDLL(_sqlite3.__file__)
    db_config = library.sqlite3_db_config
    db_config.restype = ctypes.c_int

    def set_defensive(connection):
        # (CPython 3.11's pysqlite_Connection: the sqlite3 handle follows the object header)
        handle = ctypes.c_void_p.from_address(id(connection) + sys.getsizeof(object())).value
        now = ctypes.c_int(-1)
        assert db_config(ctypes.c_void_p(handle), DEFENSIVE, 1, ctypes.byref(now)) == 0 and now.value == 1

    return set_defensive


#: the gateway's start, in another process, stopped (until killed) where argv[2] says:
#: after a statement of migration 013, or after every migration before the commit
KILLED = textwrap.dedent("""
    import os, sys, time
    from twisted.internet import task
    from dmgateway.store import database, open_store
    path, point = sys.argv[1:]

    def stop():
        os.write(1, b"stopped\\n")
        time.sleep(600)

    execute = database.Txn.execute

    def execute_then_stop(txn, sql, args=()):
        changed = execute(txn, sql, args)
        if sql.startswith(point):
            stop()
        return changed

    migrate = database.Database._migrate_txn

    def migrate_then_stop(self, txn, *args):
        done = migrate(self, txn, *args)
        stop()
        return done

    if point == "commit":
        database.Database._migrate_txn = migrate_then_stop
    else:
        database.Txn.execute = execute_then_stop
    task.react(lambda reactor: open_store("sqlite:" + path, reactor))
""")


class SQLiteKilledMigrationTests(OnSQLite, StoreCase, TestCase):
    """The process migrating the file killed at a step of 013: the file is as it was, and migrates later."""

    async def killed_at(self, point):
        path = self.uri[len("sqlite:"):]
        store = await self.open(migrations=BEFORE)
        await store.run_interaction("fill", lambda txn: [txn.insert_row(t, r) for t, r in rows("1")])
        await store.close()
        connection = connect(path)
        old = (texts(connection), [connection.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES])
        connection.close()
        root = os.path.dirname(os.path.dirname(os.path.abspath(dmgateway.__file__)))
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED, path, point], stdout=subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=root),
        )
        try:
            self.assertEqual(child.stdout.readline(), b"stopped\n")
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            child.stdout.close()
        connection = connect(path)
        self.assertEqual(connection.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        self.assertEqual(connection.execute("SELECT max(version) FROM schema_version").fetchone(), (OLDER[-1],))
        self.assertEqual((texts(connection), [connection.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES]),
                         old)
        connection.close()
        store = await self.open()
        self.assertEqual(await store.schema_version(), AFTER[-1])
        connection = connect(path)
        self.assertEqual(connection.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        self.assertEqual(ephemeral_checks(connection), [])
        connection.close()

    async def test_killed_with_the_texts_written(self):
        await self.killed_at("PRAGMA schema_version =")

    async def test_killed_during_quick_check(self):
        await self.killed_at("PRAGMA quick_check(campaign_devices)")

    async def test_killed_before_the_commit(self):
        await self.killed_at("commit")
