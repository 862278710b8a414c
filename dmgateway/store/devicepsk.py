"""Devices' TLS-PSK identities and keys (table ``device_psk``, migration 005).

OpenSSL asks for a key in the middle of a handshake and waits for it, so the
HTTPS listener cannot query the store then: :class:`DevicePskKeys` loads every
identity once at start and is updated by ``PUT /api/v1/devices/{id}``
(written to the store first, then to memory).  Keys never leave this module
except to OpenSSL.
"""

from twisted.internet import defer

from dmgateway.store.model import NotFound

__all__ = ["DevicePskKeys", "PskIdentityTaken"]


class PskIdentityTaken(ValueError):
    """Another device already uses this PSK identity."""


class DevicePskKeys:
    def __init__(self, store, clock):
        self.store = store
        self.clock = clock
        self._keys = {}  # identity -> key bytes
        self._identity = {}  # device id -> identity

    def load(self):
        d = self.store.run_interaction("load_device_psk", self._load_txn)
        return d.addCallback(self._loaded)

    @staticmethod
    def _load_txn(txn):
        # (a device's: a row an older version left behind its deleted device opens nothing)
        return txn.fetchall("SELECT p.device_id AS device_id, p.identity AS identity, p.psk_key AS psk_key"
                            " FROM device_psk p JOIN devices d ON d.device_id = p.device_id")

    def _loaded(self, rows):
        for row in rows:
            self._keys[row["identity"]] = bytes.fromhex(row["psk_key"])
            self._identity[row["device_id"]] = row["identity"]
        return len(rows)

    def key_for_identity(self, identity):
        """The key of ``identity`` or ``None`` (called by OpenSSL, synchronously)."""
        return self._keys.get(identity)

    def identity_of(self, device_id):
        return self._identity.get(device_id)

    @defer.inlineCallbacks
    def set(self, device_id, identity, key):
        """Keep ``identity`` and ``key`` for ``device_id``; ``NotFound`` if there is no such device."""
        yield self.store.run_interaction("set_device_psk", self._set_txn, device_id, identity,
                                         key.hex(), self.clock.seconds())
        old = self._identity.get(device_id)
        if old is not None:
            self._keys.pop(old, None)
        self._keys[identity] = key
        self._identity[device_id] = identity

    def forget(self, device_id):
        """Forget the device's identity and key: its account is deleted, and its
        row with it (the store's ``remove_device``, one transaction)."""
        identity = self._identity.pop(device_id, None)
        if identity is not None:
            self._keys.pop(identity, None)

    @staticmethod
    def _set_txn(txn, device_id, identity, key_hex, now):
        # the device's row held (a DELETE of it in flight waits, or is seen
        # here): no key is written behind a device removed meanwhile
        if not txn.execute("UPDATE devices SET updated = updated WHERE device_id = ?", (device_id,)):
            raise NotFound("no device %r" % (device_id,))
        row = txn.fetchone("SELECT p.device_id AS device_id, d.device_id AS live FROM device_psk p"
                           " LEFT JOIN devices d ON d.device_id = p.device_id WHERE p.identity = ?",
                           (identity,))
        if row is not None and row["device_id"] != device_id:
            if row["live"] is not None:
                raise PskIdentityTaken(identity)
            # left behind its deleted device by an older version: it holds nothing
            txn.execute("DELETE FROM device_psk WHERE device_id = ?", (row["device_id"],))
        changed = txn.execute("UPDATE device_psk SET identity = ?, psk_key = ?, updated = ? "
                              "WHERE device_id = ?", (identity, key_hex, now, device_id))
        if not changed:
            txn.execute("INSERT INTO device_psk (device_id, identity, psk_key, updated) "
                        "VALUES (?, ?, ?, ?)", (device_id, identity, key_hex, now))
