"""
Inventory columns: what ``GET /api/v1/devices`` filters on, kept as plain
indexed columns next to the JSON they come from (the same SQL on both
engines, no JSON functions).

* ``devinfo_man``, ``devinfo_mod``, ``devinfo_fwv``: DevInfo ``Man``,
  ``Mod`` and ``FwV`` from the last session (``FwV`` is DevDetail's in DM,
  kept when a device reports it with DevInfo);
* ``last_session_at``: when the device's last session ended (seconds).

``migrate`` fills them for the devices already stored.
"""

import datetime
import json

STATEMENTS = [
    "ALTER TABLE devices ADD COLUMN devinfo_man TEXT",
    "ALTER TABLE devices ADD COLUMN devinfo_mod TEXT",
    "ALTER TABLE devices ADD COLUMN devinfo_fwv TEXT",
    "ALTER TABLE devices ADD COLUMN last_session_at {float}",
    "CREATE INDEX devices_server ON devices (server_id, device_id)",
    "CREATE INDEX devices_man_mod ON devices (devinfo_man, devinfo_mod)",
    "CREATE INDEX devices_last_session ON devices (last_session_at)",
]


def inventory_columns(devinfo, last_session):
    """The inventory column values of one device's DevInfo and last session."""
    devinfo = devinfo if isinstance(devinfo, dict) else {}
    values = {
        "devinfo_man": _text(devinfo.get("Man")),
        "devinfo_mod": _text(devinfo.get("Mod")),
        "devinfo_fwv": _text(devinfo.get("FwV")),
    }
    if last_session is not None:
        values["last_session_at"] = _seconds(last_session.get("ended") if isinstance(last_session, dict) else None)
    return values


def _text(value):
    return value if isinstance(value, str) else None


def _seconds(iso):
    if not isinstance(iso, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def migrate(txn):
    rows = txn.fetchall("SELECT device_id, devinfo, last_session FROM devices")
    for row in rows:
        devinfo = json.loads(row["devinfo"]) if row["devinfo"] else None
        session = json.loads(row["last_session"]) if row["last_session"] else None
        values = inventory_columns(devinfo, session)
        values.setdefault("last_session_at", None)
        sets = ", ".join(f"{column} = ?" for column in values)
        txn.execute(f"UPDATE devices SET {sets} WHERE device_id = ?", (*values.values(), row["device_id"]))
