"""
Firmware packages in the store (FUMO): the registered packages, the match
of a package to a device by Man/Mod/FwV, and the one-use download tokens a
device fetches a package with.

Mixed into L{dmgateway.store.base.Store}; the tables come from migration
007.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .model import Conflict
from .values import check_int as _int, check_text as _text

__all__ = ["Firmware", "FirmwareQueries"]


@dataclass(frozen=True)
class Firmware:
    """A registered firmware package (C{path} for an uploaded one, C{url} for an external one)."""

    firmware_id: str
    name: str
    version: str
    man: Optional[str]
    model: Optional[str]
    from_fwv: Optional[str]
    url: Optional[str]
    path: Optional[str]
    size: Optional[int]
    sha256: Optional[str]
    created: float


class FirmwareQueries:
    """Firmware packages and download tokens."""

    def add_firmware(self, firmware: Firmware):
        """Record a package; L{Conflict} when the id is taken."""
        return self.run_interaction("add_firmware", self._add_firmware_txn, firmware)

    def get_firmware(self, firmware_id: str):
        return self.run_interaction("get_firmware", self._get_firmware_txn, firmware_id)

    def list_firmware(self, limit: int = 1000):
        return self.run_interaction("list_firmware", self._list_firmware_txn, limit)

    def add_download_token(self, token: str, firmware_id: str, device_id: str, expires: float):
        return self.run_interaction("add_download_token", self._add_download_token_txn, token, firmware_id,
                                    device_id, expires)

    def check_download_token(self, token: str, firmware_id: str, now: float):
        """Fire with the device id the token was given to, or L{None} (unknown, other package, expired)."""
        return self.run_interaction("check_download_token", self._check_download_token_txn, token, firmware_id,
                                    now)

    def match_firmware(self, man: Optional[str], model: Optional[str], fwv: Optional[str]):
        """
        The newest package for a device of this Man/Mod at FwV C{fwv}: its
        C{man}/C{model}/C{from_fwv} unset or equal, and another version than
        C{fwv}; or L{None}.
        """
        return self.run_interaction("match_firmware", self._match_firmware_txn, man, model, fwv)

    def _match_firmware_txn(self, txn, man, model, fwv):
        rows = txn.fetchall(
            "SELECT * FROM firmware WHERE (man IS NULL OR man = ?) AND (model IS NULL OR model = ?)"
            " AND (from_fwv IS NULL OR from_fwv = ?) ORDER BY created DESC, firmware_id LIMIT 50",
            (man or "", model or "", fwv or ""))
        for row in rows:
            if row["version"] != fwv:
                return Firmware(**row)
        return None

    def _add_firmware_txn(self, txn, firmware):
        for name in ("firmware_id", "name", "version"):
            _text(getattr(firmware, name), name, empty=False)
        if txn.fetchone("SELECT 1 AS one FROM firmware WHERE firmware_id = ?", (firmware.firmware_id,)):
            raise Conflict(f"firmware {firmware.firmware_id!r} already exists")
        row = {name: getattr(firmware, name) for name in Firmware.__dataclass_fields__}
        txn.execute(
            f"INSERT INTO firmware ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
        )
        return firmware

    def _get_firmware_txn(self, txn, firmware_id):
        row = txn.fetchone("SELECT * FROM firmware WHERE firmware_id = ?", (firmware_id,))
        return None if row is None else Firmware(**row)

    def _list_firmware_txn(self, txn, limit):
        _int(limit, "limit", 1)
        rows = txn.fetchall("SELECT * FROM firmware ORDER BY created, firmware_id LIMIT ?", (limit,))
        return [Firmware(**row) for row in rows]

    def _add_download_token_txn(self, txn, token, firmware_id, device_id, expires):
        txn.execute("DELETE FROM download_tokens WHERE firmware_id = ? AND device_id = ?", (firmware_id, device_id))
        txn.execute(
            "INSERT INTO download_tokens (token, firmware_id, device_id, expires) VALUES (?, ?, ?, ?)",
            (token, firmware_id, device_id, expires),
        )
        return token

    def _check_download_token_txn(self, txn, token, firmware_id, now):
        row = txn.fetchone(
            "SELECT device_id FROM download_tokens WHERE token = ? AND firmware_id = ? AND expires > ?",
            (token, firmware_id, now),
        )
        return None if row is None else row["device_id"]
