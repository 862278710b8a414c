"""
Live sessions in fewer b-trees: every DM session inserts its row at its
first message and deletes it at its last, and each b-tree the row lives in
is one more page written at each of those commits.

On SQLite the table is rebuilt keyed by C{session_id} itself (C{WITHOUT
ROWID}, the C{"{keyed}"} table option; PostgreSQL rebuilds it as it was)
instead of a rowid table with a separate unique index.  The index on
C{node} goes on both: only recovery at a process's start asks for one
node's sessions, and the table holds live sessions only.  The index on
C{device_id} stays: deleting a device finds its sessions by it (the
foreign key's cascade).
"""

_COLUMNS = "session_id, device_id, node, token, job_ids, started, last_activity"

STATEMENTS = [
    """
    CREATE TABLE sessions_keyed (
        session_id {key} PRIMARY KEY,
        device_id {key} NOT NULL
            REFERENCES devices (device_id) ON DELETE CASCADE,
        node TEXT NOT NULL,
        token TEXT,
        job_ids {json} NOT NULL,
        started {float} NOT NULL,
        last_activity {float} NOT NULL
    ){keyed}
    """,
    f"INSERT INTO sessions_keyed ({_COLUMNS}) SELECT {_COLUMNS} FROM sessions",
    "DROP TABLE sessions",
    "ALTER TABLE sessions_keyed RENAME TO sessions",
    "CREATE INDEX sessions_device ON sessions (device_id)",
]
