"""Delegation records and device PSKs (migration 005) on both engines."""

from twisted.trial.unittest import TestCase

from dmgateway.store.delegations import DelegationRecords
from dmgateway.store.devicepsk import DevicePskKeys, PskIdentityTaken
from tests.store.support import OnInlineSQLite, OnPostgres, OnSQLite, StoreCase, add_device


def record(delegation_id="d1", role="delegating", state="requested", tid="ab" * 16, **more):
    return dict({"id": delegation_id, "role": role, "peer": "dms-b", "transaction_id": tid,
                 "state": state, "until_epoch": None, "devices": ["IMEI:1"], "history": []},
                **more)


class DelegationStoreTestsMixin(StoreCase):
    async def test_records_save_find_and_select(self):
        store = await self.open()
        records = DelegationRecords(store, self.clock)
        await records.save(record())
        self.clock.advance(1)
        await records.save(record("d2", role="target", state="accepted", tid="cd" * 16))
        self.assertEqual((await records.get("d1"))["state"], "requested")
        self.assertIsNone(await records.get("nope"))
        self.assertEqual((await records.find("target", "dms-b", "cd" * 16))["id"], "d2")
        self.assertIsNone(await records.find("delegating", "dms-b", "cd" * 16))
        await records.save(record(state="active", unsent=["revoked", None, ""],
                                  history=[{"step": "x", "detail": "ünïcode"}]))
        self.assertEqual([r["id"] for r in await records.in_states(["active", "accepted"])],
                         ["d1", "d2"])
        self.assertEqual([r["id"] for r in await records.unsent()], ["d1"])
        self.assertEqual((await records.get("d1"))["history"][0]["detail"], "ünïcode")
        await records.save(record(state="revoked"))
        self.assertEqual(await records.unsent(), [])

    async def test_device_psk_survives_a_reload_and_identities_are_unique(self):
        store = await self.open()
        await add_device(store, "IMEI:1")
        await add_device(store, "IMEI:2")
        keys = DevicePskKeys(store, self.clock)
        await keys.set("IMEI:1", "id-1", b"k" * 16)
        await keys.set("IMEI:1", "id-1b", b"j" * 16)  # a new identity replaces the old one
        with self.assertRaises(PskIdentityTaken):
            await keys.set("IMEI:2", "id-1b", b"x" * 16)
        fresh = DevicePskKeys(store, self.clock)
        self.assertEqual(await fresh.load(), 1)
        self.assertEqual(fresh.key_for_identity("id-1b"), b"j" * 16)
        self.assertIsNone(fresh.key_for_identity("id-1"))
        self.assertEqual(fresh.identity_of("IMEI:1"), "id-1b")


class SQLiteDelegationStoreTests(OnSQLite, DelegationStoreTestsMixin, TestCase):
    pass


class SQLiteInlineDelegationStoreTests(OnInlineSQLite, DelegationStoreTestsMixin, TestCase):
    pass


class PostgresDelegationStoreTests(OnPostgres, DelegationStoreTestsMixin, TestCase):
    pass
