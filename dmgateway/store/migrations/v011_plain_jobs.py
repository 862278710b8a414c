"""
Jobs know whether they are plain: C{plain} is 1 for a job created by
C{create_job} (the API's jobs), which no device-function operation starts
or reads back through.  When such a job ends, the store does not look for
its operation (one query less per finished job of a DM session).

Every other job, the operations' own (C{create_operation}, read-backs, a
wipe's second job) and every job stored before this migration or written
by an older gateway still running beside a newer one, keeps the default 0:
its end is looked up in C{operations} as before.
"""

STATEMENTS = [
    "ALTER TABLE jobs ADD COLUMN plain INTEGER NOT NULL DEFAULT 0",
]
