"""
The initial schema: devices, jobs, sessions, events, notifications,
webhook deliveries.

Column types in braces are filled in per engine; see the package docstring.
Times are seconds since the epoch (floats); JSON columns hold text.
"""

STATEMENTS = [
    # Named counters; "events" hands out event sequence numbers.  Taking the
    # next number locks the row until commit, so numbers become visible in
    # order on every engine (a reader never skips a late commit).
    """
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value {bigint} NOT NULL
    )
    """,
    "INSERT INTO counters (name, value) VALUES ('events', 0)",
    """
    CREATE TABLE devices (
        device_id {key} PRIMARY KEY,
        server_id TEXT NOT NULL,
        msisdn TEXT,
        sip_uri TEXT,
        imsi TEXT,
        client_auth_type TEXT NOT NULL
            CHECK (client_auth_type IN ('none', 'basic', 'md5', 'hmac')),
        client_auth_name TEXT NOT NULL,
        client_user_hash TEXT NOT NULL,
        client_nonce {blob} NOT NULL,
        server_auth_type TEXT NOT NULL
            CHECK (server_auth_type IN ('none', 'basic', 'md5', 'hmac')),
        server_auth_name TEXT NOT NULL,
        server_user_hash TEXT NOT NULL,
        server_secret TEXT,
        server_nonce {blob} NOT NULL,
        devinfo {json},
        last_session {json},
        auth_failures INTEGER NOT NULL DEFAULT 0,
        locked_until {float},
        created {float} NOT NULL,
        updated {float} NOT NULL,
        CHECK (server_secret IS NULL OR server_auth_type = 'basic')
    )
    """,
    """
    CREATE TABLE jobs (
        seq {pk},
        job_id {key} NOT NULL UNIQUE,
        device_id {key} NOT NULL
            REFERENCES devices (device_id) ON DELETE CASCADE,
        state TEXT NOT NULL CHECK (state IN
            ('queued', 'notified', 'running', 'done', 'failed', 'expired')),
        commands {json} NOT NULL,
        atomic INTEGER NOT NULL,
        notify TEXT NOT NULL,
        ui_mode INTEGER NOT NULL,
        results {json} NOT NULL,
        error {json},
        created {float} NOT NULL,
        updated {float} NOT NULL
    )
    """,
    "CREATE INDEX jobs_device_seq ON jobs (device_id, seq)",
    "CREATE INDEX jobs_state_seq ON jobs (state, seq)",
    """
    CREATE TABLE sessions (
        session_id {key} PRIMARY KEY,
        device_id {key} NOT NULL
            REFERENCES devices (device_id) ON DELETE CASCADE,
        node TEXT NOT NULL,
        token TEXT,
        job_ids {json} NOT NULL,
        started {float} NOT NULL,
        last_activity {float} NOT NULL
    )
    """,
    "CREATE INDEX sessions_node ON sessions (node)",
    "CREATE INDEX sessions_device ON sessions (device_id)",
    """
    CREATE TABLE events (
        seq {bigint} PRIMARY KEY,
        type TEXT NOT NULL,
        device_id {key},
        time {float} NOT NULL,
        payload {json} NOT NULL
    )
    """,
    "CREATE INDEX events_time ON events (time)",
    """
    CREATE TABLE notifications (
        notification_id {pk},
        device_id {key} NOT NULL
            REFERENCES devices (device_id) ON DELETE CASCADE,
        job_id {key} REFERENCES jobs (job_id) ON DELETE CASCADE,
        bearer TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('queued', 'sent', 'delivered', 'failed', 'expired')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        message_id TEXT,
        session_id INTEGER
            CHECK (session_id IS NULL OR session_id BETWEEN 0 AND 65535),
        payload {blob} NOT NULL,
        next_attempt_at {float},
        created {float} NOT NULL,
        updated {float} NOT NULL
    )
    """,
    "CREATE INDEX notifications_due ON notifications (state, next_attempt_at)",
    "CREATE INDEX notifications_job ON notifications (job_id)",
    "CREATE INDEX notifications_device ON notifications (device_id)",
    "CREATE INDEX notifications_message ON notifications (message_id)",
    """
    CREATE TABLE deliveries (
        delivery_id {pk},
        url TEXT NOT NULL,
        event_seq {bigint} NOT NULL
            REFERENCES events (seq) ON DELETE CASCADE,
        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at {float},
        created {float} NOT NULL,
        updated {float} NOT NULL
    )
    """,
    "CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at)",
    "CREATE INDEX deliveries_event ON deliveries (event_seq)",
]
