"""
Devices: the accounts (credentials both ways, nonces), what a device
reported (DevInfo, other nodes, a challenge we could not answer), its last
session and its authentication failures.

One area of L{dmgateway.store.base.Store} (on L{Database}); each public
method runs its C{_..._txn} (just below it) in one transaction.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

from twisted.internet.defer import Deferred

from .database import Database
from .migrations.v006_inventory import inventory_columns
from .model import AUTH_TYPES, ClientAuth, Device, NotFound, ServerAuth
from .rows import dump_json, json_column, nested, row_converter
from .values import check_instance, check_int, check_nonce, check_text, check_time, marks

__all__ = ["DeviceStore", "device_from_row", "DEVICE_COLUMNS", "DEVICE_DECODERS"]


def _check_auth(auth: Any, kind: type, side: str) -> None:
    check_instance(auth, kind, f"{side}_auth")
    if auth.type not in AUTH_TYPES:
        raise ValueError(f"{side}_auth: unknown type {auth.type!r}")
    check_text(auth.name, f"{side}_auth.name")
    check_text(auth.user_hash, f"{side}_auth.user_hash")
    check_nonce(auth.nonce, f"{side}_auth.nonce")
    if kind is ServerAuth:
        check_text(auth.secret, "server_auth.secret", optional=True)
    if auth.type == "none":
        return
    if not auth.name:
        raise ValueError(f"{side}_auth: type {auth.type} needs a name")
    if kind is ServerAuth and auth.type == "basic":
        if not auth.secret:
            raise ValueError("server_auth: type basic needs the secret")
        check_text(auth.secret, "server_auth.secret")
    elif not auth.user_hash:
        raise ValueError(f"{side}_auth: type {auth.type} needs user_hash")


#: how L{device_from_row} makes a L{Device}'s fields of its columns (for
#: another converter of its rows, e.g. by position)
DEVICE_DECODERS = {
    "client_auth": nested(
        ClientAuth, type="client_auth_type", name="client_auth_name",
        user_hash="client_user_hash", nonce=("client_nonce", bytes),
    ),
    "server_auth": nested(
        ServerAuth, type="server_auth_type", name="server_auth_name",
        user_hash="server_user_hash", secret="server_secret", nonce=("server_nonce", bytes),
    ),
    "devinfo": json_column("devinfo"),
    "last_session": json_column("last_session"),
    "reported": json_column("reported"),
    "device_challenge": json_column("device_challenge"),
}
device_from_row = row_converter(Device, **DEVICE_DECODERS)


#: the columns L{device_from_row} reads (not the inventory's, see
#: L{dmgateway.store.migrations.v006_inventory}): what a query that only
#: makes a L{Device} selects (each column is one more value made and named
#: in every row it fetches)
DEVICE_COLUMNS = (
    "device_id", "server_id", "msisdn", "sip_uri", "imsi",
    "client_auth_type", "client_auth_name", "client_user_hash", "client_nonce",
    "server_auth_type", "server_auth_name", "server_user_hash", "server_secret", "server_nonce",
    "devinfo", "last_session", "auth_failures", "locked_until", "created", "updated",
    "reported", "device_challenge",
)


# update_device's fields: each writes its columns into C{values} (a dict by
# column name), C{build(values, value, encode)} (C{encode}: the
# transaction's L{Txn.dump_json<dmgateway.store.database.Txn.dump_json>})


def _client_nonce_columns(values: dict, nonce: Any, _encode: Any = None) -> dict:
    check_nonce(nonce, "client_nonce")
    values["client_nonce"] = bytes(nonce)
    return values


def _server_nonce_columns(values: dict, nonce: Any, _encode: Any = None) -> dict:
    check_nonce(nonce, "server_nonce")
    values["server_nonce"] = bytes(nonce)
    return values


def _devinfo_columns(values: dict, devinfo: Optional[dict], encode: Any = dump_json) -> dict:
    check_instance(devinfo, dict, "devinfo", optional=True)
    values["devinfo"] = None if devinfo is None else encode(devinfo, "devinfo")
    values.update(inventory_columns(devinfo, None))
    return values


def _reported_columns(values: dict, reported: Optional[dict], encode: Any = dump_json) -> dict:
    check_instance(reported, dict, "reported", optional=True)
    values["reported"] = None if reported is None else encode(reported, "reported")
    return values


def _challenge_columns(values: dict, challenge: Optional[dict], encode: Any = dump_json) -> dict:
    check_instance(challenge, dict, "device challenge", optional=True)
    values["device_challenge"] = None if challenge is None else encode(challenge, "device challenge")
    return values


def _last_session_columns(values: dict, session: Optional[dict], encode: Any = dump_json) -> dict:
    check_instance(session, dict, "last session", optional=True)
    if session is None:
        values["last_session"] = values["last_session_at"] = None
    else:
        values["last_session"] = encode(session, "last session")
        values["last_session_at"] = inventory_columns(None, session)["last_session_at"]
    return values


def _reset_failure_columns(values: dict, _reset: bool = True, _encode: Any = None) -> dict:
    values["auth_failures"] = 0
    values["locked_until"] = None
    return values


_FIELD_COLUMNS = {
    "client_nonce": _client_nonce_columns,
    "server_nonce": _server_nonce_columns,
    "devinfo": _devinfo_columns,
    "reported": _reported_columns,
    "device_challenge": _challenge_columns,
    "last_session": _last_session_columns,
    "reset_auth_failures": _reset_failure_columns,
}
# (the fields whose None leaves the column as it is)
_KEPT_IF_NONE = frozenset(("client_nonce", "server_nonce"))


class DeviceStore(Database):
    """The device accounts (see the module docstring)."""

    def put_device(
        self,
        device_id: str,
        *,
        server_id: str,
        client_auth,
        server_auth,
        msisdn: Optional[str] = None,
        sip_uri: Optional[str] = None,
        imsi: Optional[str] = None,
    ) -> Deferred:
        """
        Create or replace a device account.

        Every given field replaces the stored one (C{None} clears the
        optional ones); DevInfo, last session and the failure counter stay.
        A nonce of C{None} in either auth keeps the stored nonce (empty for
        a new device).  The server secret is stored only for C{basic}.

        @param device_id: the DevId, e.g. C{"IMEI:350000000000001"}.
        @param client_auth: a L{ClientAuth}.
        @param server_auth: a L{ServerAuth}.
        @return: fires with C{True} if the device was created, C{False} if
            it existed.
        """
        return self.run_interaction(
            "put_device", self._put_device_txn, self._now(), device_id, server_id,
            client_auth, server_auth, msisdn, sip_uri, imsi,
        )

    def _put_device_txn(
        self, txn, now, device_id, server_id, client_auth, server_auth, msisdn, sip_uri, imsi
    ) -> bool:
        check_text(device_id, "device_id", empty=False)
        check_text(server_id, "server_id", empty=False)
        for value, what in ((msisdn, "msisdn"), (sip_uri, "sip_uri"), (imsi, "imsi")):
            check_text(value, what, optional=True)
        _check_auth(client_auth, ClientAuth, "client")
        _check_auth(server_auth, ServerAuth, "server")
        secret = server_auth.secret if server_auth.type == "basic" else None
        common = {
            "server_id": server_id,
            "msisdn": msisdn,
            "sip_uri": sip_uri,
            "imsi": imsi,
            "client_auth_type": client_auth.type,
            "client_auth_name": client_auth.name,
            "client_user_hash": client_auth.user_hash,
            "server_auth_type": server_auth.type,
            "server_auth_name": server_auth.name,
            "server_user_hash": server_auth.user_hash,
            "server_secret": secret,
            "updated": now,
        }
        row = dict(
            common,
            device_id=device_id,
            client_nonce=bytes(client_auth.nonce or b""),
            server_nonce=bytes(server_auth.nonce or b""),
            created=now,
        )
        inserted = txn.execute(
            f"INSERT INTO devices ({', '.join(row)}) VALUES {marks(len(row))}"
            " ON CONFLICT (device_id) DO NOTHING",
            tuple(row.values()),
        )
        if inserted:
            # a TLS-PSK key an older version left behind a deleted device of
            # this id is not this new account's (DevicePskKeys would load it)
            txn.execute("DELETE FROM device_psk WHERE device_id = ?", (device_id,))
            return True
        if client_auth.nonce is not None:
            common["client_nonce"] = bytes(client_auth.nonce)
        if server_auth.nonce is not None:
            common["server_nonce"] = bytes(server_auth.nonce)
        sets = ", ".join(f"{column} = ?" for column in common)
        txn.execute(
            f"UPDATE devices SET {sets} WHERE device_id = ?",
            (*common.values(), device_id),
        )
        return False

    def get_device(self, device_id: str) -> Deferred:
        """Fire with the L{Device}, or L{None} if there is none."""
        return self.run_interaction("get_device", self._get_device_txn, device_id)

    def _get_device_txn(self, txn, device_id) -> Optional[Device]:
        row = txn.fetchone("SELECT * FROM devices WHERE device_id = ?", (device_id,))
        return None if row is None else device_from_row(row)

    def delete_device(self, device_id: str) -> Deferred:
        """
        Delete a device with its jobs, sessions and notifications (events
        stay).  Fire with whether it existed.
        """
        return self.run_interaction("delete_device", self._delete_device_txn, device_id)

    def _delete_device_txn(self, txn, device_id) -> bool:
        return txn.execute("DELETE FROM devices WHERE device_id = ?", (device_id,)) == 1

    def list_devices(self, limit: int = 100, after: Optional[str] = None) -> Deferred:
        """
        Fire with up to C{limit} L{Device}s ordered by C{device_id}
        (bytewise), starting after device id C{after}.
        """
        return self.run_interaction("list_devices", self._list_devices_txn, limit, after)

    def _list_devices_txn(self, txn, limit, after) -> list[Device]:
        check_int(limit, "limit", 1)
        check_text(after, "after", optional=True)
        if after is None:
            rows = txn.fetchall("SELECT * FROM devices ORDER BY device_id LIMIT ?", (limit,))
        else:
            rows = txn.fetchall(
                "SELECT * FROM devices WHERE device_id > ? ORDER BY device_id LIMIT ?",
                (after, limit),
            )
        return [device_from_row(row) for row in rows]

    def set_nonces(
        self,
        device_id: str,
        client_nonce: Optional[bytes] = None,
        server_nonce: Optional[bytes] = None,
    ) -> Deferred:
        """
        Store the next nonces (raw bytes); C{None} leaves one unchanged.
        Fire with whether the device exists.
        """
        return self.run_interaction(
            "set_nonces", self._set_nonces_txn, self._now(), device_id,
            client_nonce, server_nonce,
        )

    def _set_nonces_txn(self, txn, now, device_id, client_nonce, server_nonce) -> bool:
        values = {}
        if client_nonce is not None:
            _client_nonce_columns(values, client_nonce)
        if server_nonce is not None:
            _server_nonce_columns(values, server_nonce)
        return self._update_device_txn(txn, now, device_id, values)

    def set_devinfo(self, device_id: str, devinfo: Optional[dict]) -> Deferred:
        """Store the device's last DevInfo (a JSON object); fire with whether it exists."""
        return self.run_interaction(
            "set_devinfo", self._set_devinfo_txn, self._now(), device_id, devinfo
        )

    def _set_devinfo_txn(self, txn, now, device_id, devinfo) -> bool:
        return self._update_device_txn(txn, now, device_id, _devinfo_columns({}, devinfo))

    def set_reported(self, device_id: str, reported: Optional[dict]) -> Deferred:
        """Store the other nodes the device reported with its DevInfo (a JSON
        object by URI); fire with whether the device exists."""
        return self.run_interaction(
            "set_reported", self._set_reported_txn, self._now(), device_id, reported
        )

    def _set_reported_txn(self, txn, now, device_id, reported) -> bool:
        return self._update_device_txn(txn, now, device_id, _reported_columns({}, reported))

    def set_device_challenge(self, device_id: str, challenge: Optional[dict]) -> Deferred:
        """Store the last challenge of the device that we could not answer
        (C{"scheme", "status", "time"}); fire with whether the device exists."""
        return self.run_interaction(
            "set_device_challenge", self._set_device_challenge_txn, self._now(), device_id,
            challenge,
        )

    def _set_device_challenge_txn(self, txn, now, device_id, challenge) -> bool:
        return self._update_device_txn(txn, now, device_id, _challenge_columns({}, challenge))

    def set_last_session(self, device_id: str, session: Optional[dict]) -> Deferred:
        """
        Store the summary of the device's last session (C{"id", "started",
        "ended", "outcome"}; L{end_session} writes it itself).  Fire with
        whether the device exists.
        """
        return self.run_interaction(
            "set_last_session", self._set_last_session_txn, self._now(), device_id, session
        )

    def _set_last_session_txn(self, txn, now, device_id, session) -> bool:
        return self._update_device_txn(txn, now, device_id, _last_session_columns({}, session))

    def update_device(self, device_id: str, **changes: Any) -> Deferred:
        """
        Several of the device's fields in one C{UPDATE}, each as its own
        setter writes it: C{client_nonce}, C{server_nonce} (L{set_nonces};
        C{None} leaves it), C{devinfo} (L{set_devinfo}), C{reported}
        (L{set_reported}), C{device_challenge} (L{set_device_challenge}),
        C{last_session} (L{set_last_session}), C{reset_auth_failures=True}
        (L{reset_auth_failures}).  Fire with whether the device exists.
        """
        return self.run_interaction(
            "update_device", self._update_device_fields_txn, self._now(), device_id, changes
        )

    def _update_device_fields_txn(self, txn, now, device_id, changes: dict) -> bool:
        values: dict = {}
        encode = txn.dump_json
        for field, value in changes.items():
            build = _FIELD_COLUMNS.get(field)
            if build is None:
                raise TypeError(f"update_device() got an unknown field {field!r}")
            if field == "reset_auth_failures":
                check_instance(value, bool, "reset_auth_failures")
                if value:
                    build(values)
            elif value is not None or field not in _KEPT_IF_NONE:
                build(values, value, encode)
        return self._update_device_txn(txn, now, device_id, values)

    def record_auth_failure(
        self, device_id: str, now: float, *, max_failures: int, lockout: float
    ) -> Deferred:
        """
        Count one failed authentication; from the C{max_failures}th on,
        lock the device out until C{now + lockout}.

        @return: fires with the updated L{Device} (see L{Device.locked}),
            or L{None} if there is no such device.
        """
        return self.run_interaction(
            "record_auth_failure", self._record_auth_failure_txn, now, device_id,
            max_failures, lockout,
        )

    def _record_auth_failure_txn(
        self, txn, now, device_id, max_failures, lockout
    ) -> Optional[Device]:
        check_int(max_failures, "max_failures", 1)
        check_time(lockout, "lockout")
        changed = txn.execute(
            "UPDATE devices SET auth_failures = auth_failures + 1, updated = ?"
            " WHERE device_id = ?",
            (now, device_id),
        )
        if not changed:
            return None
        txn.execute(
            "UPDATE devices SET locked_until = ? WHERE device_id = ? AND auth_failures >= ?",
            (now + lockout, device_id, max_failures),
        )
        return self._get_device_txn(txn, device_id)

    def reset_auth_failures(self, device_id: str) -> Deferred:
        """Clear the failure counter and lockout; fire with whether the device exists."""
        return self.run_interaction(
            "reset_auth_failures", self._reset_auth_failures_txn, self._now(), device_id
        )

    def _reset_auth_failures_txn(self, txn, now, device_id) -> bool:
        return self._update_device_txn(txn, now, device_id, _reset_failure_columns({}))

    def _device_exists_txn(self, txn, device_id: str) -> None:
        if txn.fetchone("SELECT 1 AS one FROM devices WHERE device_id = ?", (device_id,)) is None:
            raise NotFound(f"no device {device_id!r}")

    def _update_device_txn(self, txn, now, device_id, values: dict) -> bool:
        # (C{values} is the caller's own dict, made for this update)
        values["updated"] = now
        return txn.execute(_update_sql(tuple(values)), (*values.values(), device_id)) == 1


@functools.lru_cache(maxsize=256)
def _update_sql(columns: tuple) -> str:
    # (the columns are update_device's own names, never a caller's)
    sets = ", ".join(f"{column} = ?" for column in columns)
    return f"UPDATE devices SET {sets} WHERE device_id = ?"
