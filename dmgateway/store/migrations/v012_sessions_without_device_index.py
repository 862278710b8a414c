"""
Live sessions in one b-tree: the index on C{sessions.device_id} goes.

Every DM session inserts its row at its first message and deletes it at
its last, and the index was one more page written (and checkpointed) at
each of those commits, two per session, for one reader only: deleting a
device finds its sessions by it (the foreign key's cascade), which is
rare, and the table holds live sessions only (a few per concurrent DM
session of the cluster), so that delete reads the whole table instead
(as recovery and the cluster's listing already do).
"""

STATEMENTS = [
    "DROP INDEX sessions_device",
]
