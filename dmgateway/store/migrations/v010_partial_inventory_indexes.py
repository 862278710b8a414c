"""
The inventory indexes of migration 006 hold only the devices that have a
value: C{devices_man_mod} those that reported a DevInfo C{Man},
C{devices_last_session} those that had a session.

A device registered but never seen (every device of a fleet provisioned
before it connects) then has no entry in them, and its first session
only adds one: before, it also took the device's entry out of the long
run of NULL keys, one more page at a random place written (and
checkpointed) per index, which is what made a session cost more at 1M
registered devices than at 1k (C{bench/store_scale.py}).

Every filter of C{GET /api/v1/devices} on these columns but one compares
them (C{=}, C{>=}, C{<}, C{IS NOT NULL}), which implies a value, so both
engines can still use the indexes; C{never_seen=true} (C{IS NULL}) reads
the devices in C{device_id} order as the other filters on SQLite already do.
"""

STATEMENTS = [
    "DROP INDEX devices_man_mod",
    "CREATE INDEX devices_man_mod ON devices (devinfo_man, devinfo_mod) WHERE devinfo_man IS NOT NULL",
    "DROP INDEX devices_last_session",
    "CREATE INDEX devices_last_session ON devices (last_session_at) WHERE last_session_at IS NOT NULL",
]
