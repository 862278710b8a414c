"""The device handlers over a real SQLite store: inventory cursors, and a
deleted device's TLS-PSK key."""

import pytest
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from dmgateway.api.validation import ValidationError
from dmgateway.dispatch import Dispatcher
from dmgateway.handlers import Handlers
from dmgateway.handlers.devices import decode_cursor, encode_cursor
from dmgateway.store import open_store
from tests.api.service_contract import ACCOUNT, DEVICE
from tests.support import gateway_config


@pytest.mark.parametrize("device_id", ["IMEI:1", "a/b?c=d&e", "ü-device", "x" * 128])
def test_cursor_round_trip(device_id):
    cursor = encode_cursor(device_id)
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor
    assert decode_cursor(cursor) == device_id


@pytest.mark.parametrize("text", ["!!", "gA", "_w", "a" * 5000])
def test_foreign_cursors_are_refused(text):
    with pytest.raises(ValidationError):
        decode_cursor(text)


class DeletedDevicePskTests(TestCase):
    """Deleting a device also forgets its TLS-PSK identity and key."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        from dmgateway.store.devicepsk import DevicePskKeys

        self.store = yield open_store("sqlite::memory:?inline=1", reactor=reactor)
        self.addCleanup(self.store.close)
        clock = task.Clock()
        self.dispatcher = Dispatcher(self.store, gateway_config(), clock=clock)
        self.handlers = Handlers(self.dispatcher)
        self.handlers.device_psk = DevicePskKeys(self.store, clock)
        yield self.handlers.device_psk.load()
        psk = {"identity": "dev-1", "key": bytes.fromhex("00112233445566778899aabbccddeeff")}
        yield self.handlers.put_device(DEVICE, dict(ACCOUNT, psk=psk))

    @defer.inlineCallbacks
    def test_the_key_of_a_deleted_device_opens_nothing(self):
        from dmgateway.store.devicepsk import DevicePskKeys

        keys = self.handlers.device_psk
        self.assertIsNotNone(keys.key_for_identity("dev-1"))
        yield self.handlers.delete_device(DEVICE, False)
        self.assertIsNone(keys.key_for_identity("dev-1"))
        self.assertIsNone(keys.identity_of(DEVICE))
        reloaded = DevicePskKeys(self.store, task.Clock())  # as the next start reads it
        self.assertEqual((yield reloaded.load()), 0)
        # the identity is free for another device
        other = {"identity": "dev-1", "key": bytes.fromhex("ffeeddccbbaa99887766554433221100")}
        yield self.handlers.put_device("IMEI:350000000000099", dict(ACCOUNT, psk=other))
        self.assertEqual(keys.key_for_identity("dev-1"), bytes.fromhex("ffeeddccbbaa99887766554433221100"))

    @defer.inlineCallbacks
    def test_the_account_and_its_key_go_in_one_transaction(self):
        """The store fails the removal after its last statement: the account
        and its key both stay (before: the key was removed in a transaction of
        its own, after the account's, and a failure there left it opening the
        listener); asked again, both go."""
        from dmgateway.store.devicepsk import DevicePskKeys
        from dmgateway.store.model import StoreUnavailable

        keys = self.handlers.device_psk
        remove_txn = self.store._remove_device_txn

        def fails_at_the_end(txn, *args):
            remove_txn(txn, *args)
            raise StoreUnavailable("database down")

        self.store._remove_device_txn = fails_at_the_end
        with self.assertRaises(StoreUnavailable):
            yield self.handlers.delete_device(DEVICE, False)
        self.assertIsNotNone((yield self.store.get_device(DEVICE)))
        self.assertIsNotNone(keys.key_for_identity("dev-1"))
        self.assertEqual((yield DevicePskKeys(self.store, task.Clock()).load()), 1)
        self.store._remove_device_txn = remove_txn
        yield self.handlers.delete_device(DEVICE, False)
        self.assertIsNone((yield self.store.get_device(DEVICE)))
        self.assertIsNone(keys.key_for_identity("dev-1"))
        self.assertEqual((yield DevicePskKeys(self.store, task.Clock()).load()), 0)

    @defer.inlineCallbacks
    def test_a_put_whose_device_a_delete_removes_meanwhile_writes_no_key(self):
        """The DELETE commits between the PUT's account and its key: the PUT
        answers unknown_device and the deleted device's key opens nothing
        (before: the key was written behind the removal, in memory and in a
        row no DELETE would remove any more)."""
        from dmgateway.api.service import UnknownDevice

        other = "IMEI:350000000000099"
        put_device = self.store.put_device

        @defer.inlineCallbacks
        def deleted_meanwhile(device_id, **kwargs):
            created = yield put_device(device_id, **kwargs)
            yield self.handlers.delete_device(device_id, False)  # an operator's DELETE
            return created

        self.store.put_device = deleted_meanwhile
        psk = {"identity": "dev-2", "key": bytes.fromhex("ffeeddccbbaa99887766554433221100")}
        with self.assertRaises(UnknownDevice):
            yield self.handlers.put_device(other, dict(ACCOUNT, psk=psk))
        self.store.put_device = put_device
        keys = self.handlers.device_psk
        self.assertIsNone(keys.key_for_identity("dev-2"))
        self.assertIsNone(keys.identity_of(other))
        rows = yield self.store.run_interaction(
            "rows", lambda txn: txn.fetchall("SELECT device_id FROM device_psk"))
        self.assertEqual([r["device_id"] for r in rows], [DEVICE])
