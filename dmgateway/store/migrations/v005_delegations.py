"""
DM-6 delegations, and the devices' TLS-PSK identities and keys (DM 1.3).

C{delegations}: one row per delegation this gateway takes part in, as the
delegating server or as the target.  The flow's state lives in C{document}
(JSON: devices, subtrees, type, per-device steps, step history); the
columns are what is looked up.
"""

STATEMENTS = [
    """
    CREATE TABLE delegations (
        delegation_id {key} PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('delegating', 'target')),
        peer TEXT NOT NULL,
        transaction_id TEXT NOT NULL,
        state TEXT NOT NULL,
        until {float},
        pending_notice TEXT,
        document {json} NOT NULL,
        created {float} NOT NULL,
        updated {float} NOT NULL,
        UNIQUE (role, peer, transaction_id)
    )
    """,
    "CREATE INDEX delegations_state ON delegations (state)",
    # The key is kept as hex text: the HTTPS listener needs it itself (not a hash).
    """
    CREATE TABLE device_psk (
        device_id {key} PRIMARY KEY,
        identity TEXT NOT NULL UNIQUE,
        psk_key TEXT NOT NULL,
        updated {float} NOT NULL
    )
    """,
]
