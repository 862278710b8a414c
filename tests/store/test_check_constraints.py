"""
The CHECK constraints on a state or an auth type, on every engine, before
and after migration 013 (IN-lists rewritten as OR-ed equalities on SQLite,
L{dmgateway.store.migrations.v013_check_equalities}), and its ways of
leaving them as they are.
"""

from twisted.logger import Logger
from twisted.trial.unittest import TestCase

from dmgateway.store import Conflict, open_store
from dmgateway.store.migrations import load_migrations
from dmgateway.store.migrations import v013_check_equalities as v013
from tests.store.support import START, OnInlineSQLite, OnPostgres, OnSQLite, StoreCase

BEFORE = [m for m in load_migrations() if m.version < 13]
#: what migrating a database of L{BEFORE} applies
AFTER = [m.version for m in load_migrations() if m.version >= 13]
TABLES = sorted({table for table, _c, _v, _b in v013.CONSTRAINTS})

#: where each constrained table's test row is found
KEYS = {
    "devices": "device_id = 'IMEI:1'",
    "jobs": "job_id = 'j1'",
    "notifications": "device_id = 'IMEI:1'",
    "deliveries": "url = 'https://hook.example/'",
    "operations": "op_id = 'j1'",
    "campaigns": "campaign_id = 'c1'",
    "campaign_devices": "campaign_id = 'c1'",
}

#: values no constraint allows: unknown, another case, a space more, a number, empty
BAD = ("unknown", "DONE", "done ", "0", "", 0)


def rows(key="1"):
    """One row per constrained table (and the event a delivery needs), in the order of their foreign keys."""
    device, job, campaign = f"IMEI:{key}", f"j{key}", f"c{key}"
    times = {"created": START, "updated": START}
    return [
        ("devices", dict(
            device_id=device, server_id="dmgw.example",
            client_auth_type="md5", client_auth_name="dev", client_user_hash="aGFzaA==", client_nonce=b"n1",
            server_auth_type="hmac", server_auth_name="dmgw", server_user_hash="aGFzaA==", server_nonce=b"n2",
            **times,
        )),
        ("jobs", dict(
            job_id=job, device_id=device, state="queued", commands="[]", atomic=0, notify="none",
            ui_mode=0, results="[]", **times,
        )),
        ("notifications", dict(device_id=device, job_id=job, bearer="sms", state="queued", payload=b"p", **times)),
        ("events", dict(seq=int(key), type="job", device_id=device, time=START, payload="{}")),
        ("deliveries", dict(url=f"https://hook{'' if key == '1' else key}.example/", event_seq=int(key),
                            state="pending", **times)),
        ("operations", dict(
            op_id=job, device_id=device, function="fumo", action="update", correlator=f"corr{key}",
            alert_type="org.openmobilealliance.dm.firmwareupdate.devicerequest", exec_target="./FUMO/x/Update",
            readback="[]", state="pending", outcome="{}", timeout=60.0, **times,
        )),
        ("campaigns", dict(
            campaign_id=campaign, function="fumo", action="update", params="{}", selection="{}", policy="{}",
            state="running", wave=0, total=1, next_start=START, **times,
        )),
        ("campaign_devices", dict(campaign_id=campaign, device_id=device, position=0, wave=0, state="waiting")),
    ]


async def fill(store, key="1"):
    def insert_txn(txn):
        for table, row in rows(key):
            txn.insert_row(table, row)

    await store.run_interaction("fill", insert_txn)


async def table_contents(store):
    """Every row of the constrained tables, in order."""

    def read_txn(txn):
        return {table: txn.fetchall(f"SELECT * FROM {table} ORDER BY {KEYS[table].split()[0]}") for table in TABLES}

    return await store.run_interaction("contents", read_txn)


class ConstraintChecks(StoreCase):
    """L{assert_constraints_hold}, for the suites of this module and others."""

    async def assert_constraints_hold(self, store):
        """
        Each constrained column takes each of its values and refuses every
        L{BAD} one, in an UPDATE of a stored row and in an INSERT of a new
        one; nothing refused is written.
        """
        await fill(store, "1")
        before = await table_contents(store)
        for table, column, values, _between in v013.CONSTRAINTS:
            where = KEYS[table]
            for value in values:
                changed = await store.run_interaction(
                    "good", lambda txn: txn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (value,))
                )
                self.assertEqual(changed, 1, (table, column, value))
            for value in BAD:
                with self.assertRaises(Conflict, msg=(table, column, value)) as caught:
                    await store.run_interaction(
                        "bad", lambda txn: txn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (value,))
                    )
                self.assertIn("check", str(caught.exception).lower())
            # (back to the first value: the next table's rows, and the comparison below)
            await store.run_interaction(
                "reset",
                lambda txn: txn.execute(
                    f"UPDATE {table} SET {column} = ? WHERE {where}",
                    (dict(rows("1"))[table][column],),
                ),
            )
        for table, column, _values, _between in v013.CONSTRAINTS:
            for value in BAD:

                def insert_txn(txn):
                    for name, row in rows("2"):
                        txn.insert_row(name, dict(row, **{column: value}) if name == table else row)

                with self.assertRaises(Conflict, msg=(table, column, value)):
                    await store.run_interaction("bad insert", insert_txn)
        self.assertEqual(await table_contents(store), before)
        await fill(store, "2")  # (and the same rows with good values go in)


class ConstraintTestsMixin(ConstraintChecks):
    """What every engine's constraints allow and refuse, before migration 013 and after it."""

    async def test_constraints_hold_after_the_migration(self):
        store = await self.open()
        self.assertEqual(await store.schema_version(), load_migrations()[-1].version)
        await self.assert_constraints_hold(store)

    async def test_constraints_held_before_the_migration(self):
        # (the same test on the schema 013 starts from: it checks what the rewrite must keep)
        store = await self.open(migrations=BEFORE)
        await self.assert_constraints_hold(store)

    async def test_a_database_with_rows_migrates_and_keeps_them(self):
        store = await self.open(migrations=BEFORE)
        await fill(store, "1")
        await fill(store, "3")
        before = await table_contents(store)
        self.assertEqual(await store.migrate(), AFTER)
        self.assertEqual(await table_contents(store), before)
        await store.run_interaction("clear", lambda txn: txn.execute("DELETE FROM devices"))
        await store.run_interaction("clear", lambda txn: txn.execute("DELETE FROM campaigns"))
        await store.run_interaction("clear", lambda txn: txn.execute("DELETE FROM events"))
        await self.assert_constraints_hold(store)


class SQLiteConstraintTests(OnSQLite, ConstraintTestsMixin, TestCase):
    async def stored_texts(self, store):
        rows = await store.run_interaction(
            "texts", lambda txn: txn.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        )
        return {row["name"]: row["sql"] for row in rows}

    async def pragma(self, store, name):
        row = await store.run_interaction("pragma", lambda txn: txn.fetchone(f"PRAGMA {name}"))
        return next(iter(row.values()))

    async def test_no_in_list_is_left(self):
        store = await self.open(migrations=BEFORE)
        old = await self.stored_texts(store)
        await store.migrate()
        new = await self.stored_texts(store)
        for table, column, values, between in v013.CONSTRAINTS:
            self.assertIn(v013.listed(column, values, between), old[table])
            self.assertNotIn(v013.listed(column, values, between), new[table])
            self.assertIn(v013.equalities(column, values), new[table])
        for table in TABLES:
            self.assertNotRegex(new[table], r"\bIN\s*\(")
            # (only the constraints changed, byte for byte)
            text = old[table]
            for name, column, values, between in v013.CONSTRAINTS:
                if name == table:
                    text = text.replace(v013.listed(column, values, between), v013.equalities(column, values))
            self.assertEqual(new[table], text)
        # (the other tables, delegations' two-value IN-list among them, are as they were)
        self.assertEqual({t: s for t, s in new.items() if t not in TABLES},
                         {t: s for t, s in old.items() if t not in TABLES})
        self.assertEqual(await self.pragma(store, "writable_schema"), 0)
        self.assertEqual(await self.pragma(store, "integrity_check"), "ok")

    async def test_another_connection_sees_the_new_schema(self):
        # (the schema_version bump: a process that had read the old schema reads it again)
        other = await self.open(migrations=BEFORE)
        await fill(other, "1")
        store = await open_store(self.uri, clock=self.clock)
        await store.close()
        self.assertNotRegex((await self.stored_texts(other))["jobs"], r"\bIN\s*\(")
        with self.assertRaises(Conflict):
            await other.run_interaction("bad", lambda txn: txn.execute("UPDATE jobs SET state = 'nope'"))
        await other.run_interaction("good", lambda txn: txn.execute("UPDATE jobs SET state = 'done'"))
        self.assertEqual(await other.schema_version(), AFTER[-1])
        # (and runs the equalities: the old IN-list refuses the same values,
        # but builds its ephemeral index at every UPDATE)
        plan = await other.run_interaction("plan", lambda txn: txn.fetchall("EXPLAIN UPDATE jobs SET state = 'done'"))
        self.assertNotIn("OpenEphemeral", [step["opcode"] for step in plan])

    async def assert_left_as_it_was(self, store, old, reason):
        """Migration 013 recorded, every text as it was, a line logged with C{reason}, constraints holding."""
        self.assertEqual(await self.stored_texts(store), old)
        self.assertEqual(await store.schema_version(), AFTER[-1])
        self.assertEqual(await self.pragma(store, "writable_schema"), 0)
        self.assertEqual(await self.pragma(store, "quick_check"), "ok")
        self.assertEqual(len(self.logged), 1, self.logged)
        self.assertIn(reason, self.logged[0]["reason"])
        await self.assert_constraints_hold(store)

    def watch_log(self):
        self.logged = []
        self.patch(v013, "log", Logger(observer=self.logged.append))

    async def test_an_unexpected_text_is_left_as_it_was(self):
        store = await self.open(migrations=BEFORE)
        listed = v013.listed("state", ("pending", "delivered", "failed"))

        def respace_txn(txn):
            # (an operator's hand, say: the same constraint, spaced otherwise)
            version = next(iter(txn.fetchone("PRAGMA schema_version").values()))
            txn.execute("PRAGMA writable_schema = ON")
            txn.execute("UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE name = 'deliveries'",
                        (listed, listed.replace("IN (", "IN(")))
            txn.execute(f"PRAGMA schema_version = {version + 1}")
            txn.execute("PRAGMA writable_schema = RESET")

        await store.run_interaction("respace", respace_txn)
        old = await self.stored_texts(store)
        self.assertNotIn(listed, old["deliveries"])
        self.watch_log()
        self.assertEqual(await store.migrate(), AFTER)
        # (all or nothing: the jobs' constraint, as expected, keeps its IN-list too)
        await self.assert_left_as_it_was(store, old, "deliveries.state")

    async def test_a_text_that_would_not_parse_is_never_written(self):
        store = await self.open(migrations=BEFORE)
        old = await self.stored_texts(store)
        self.watch_log()
        self.patch(v013, "equalities", lambda column, values: f"CHECK ({column} = OR)")
        self.assertEqual(await store.migrate(), AFTER)
        await self.assert_left_as_it_was(store, old, "does not parse")

    async def refused(self, refuse, reason):
        """
        Migration 013 on a connection whose library refuses one of its
        pragmas as C{refuse(sql)} says (the statement does nothing, as
        SQLite's pragmas do when they refuse).
        """
        store = await self.open(migrations=BEFORE)
        old = await self.stored_texts(store)
        self.watch_log()
        migrate = v013.migrate
        self.patch(v013, "migrate", lambda txn: migrate(_Refusing(txn, refuse)))
        self.assertEqual(await store.migrate(), AFTER)
        await self.assert_left_as_it_was(store, old, reason)

    async def test_defensive_mode_refusing_writable_schema(self):
        # (SQLITE_DBCONFIG_DEFENSIVE: PRAGMA writable_schema = ON does nothing)
        await self.refused(lambda sql: sql == "PRAGMA writable_schema = ON", "writable_schema (defensive")

    async def test_defensive_mode_refusing_schema_version(self):
        # (SQLITE_DBCONFIG_DEFENSIVE: PRAGMA schema_version = N does nothing;
        # the texts were written by then and are rolled back)
        await self.refused(lambda sql: sql.startswith("PRAGMA schema_version ="), "schema_version (defensive")

    async def test_reset_not_honoured(self):
        resets = []

        def refuse(sql):
            # (the first RESET, the migration's own, leaves the schema writable)
            if sql == "PRAGMA writable_schema = RESET":
                resets.append(sql)
                return len(resets) == 1
            return False

        await self.refused(refuse, "left the schema writable")
        self.assertEqual(len(resets), 2)


class _Refusing:
    """A L{Txn<dmgateway.store.database.Txn>} on which the statements C{refuse} picks do nothing."""

    def __init__(self, txn, refuse):
        self._txn = txn
        self._refuse = refuse
        self.engine = txn.engine

    def execute(self, sql, args=()):
        return 0 if self._refuse(sql) else self._txn.execute(sql, args)

    def fetchall(self, sql, args=()):
        return self._txn.fetchall(sql, args)

    def fetchone(self, sql, args=()):
        return self._txn.fetchone(sql, args)


class SQLiteInlineConstraintTests(OnInlineSQLite, ConstraintTestsMixin, TestCase):
    pass


class PostgresConstraintTests(OnPostgres, ConstraintTestsMixin, TestCase):
    async def test_the_migration_changes_nothing(self):
        # (PostgreSQL keeps its IN-lists: see the migration's docstring)
        store = await self.open(migrations=BEFORE)

        def definitions_txn(txn):
            return txn.fetchall(
                "SELECT conrelid::regclass::text AS t, pg_get_constraintdef(oid) AS d FROM pg_constraint"
                " WHERE contype = 'c' AND connamespace = current_schema()::regnamespace ORDER BY 1, 2"
            )

        old = await store.run_interaction("definitions", definitions_txn)
        self.assertEqual(await store.migrate(), AFTER)
        self.assertEqual(await store.run_interaction("definitions", definitions_txn), old)
        self.assertTrue(any("ANY" in row["d"] for row in old), old)
