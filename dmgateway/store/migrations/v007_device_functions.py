"""
Device functions (FUMO, SCOMO, LAWMO) and campaigns.

* ``operations``: one device-function operation per row, keyed by the id
  of the job that sends its Exec; its own life cycle (``pending`` until
  the Exec is answered, ``awaiting_device`` until the Generic Alert with
  its Correlator, ``verifying`` while the result is read back, then
  ``done``, ``failed`` or ``expired``);
* ``firmware`` and ``download_tokens``: registered packages and the
  per-device tokens that let a device download one;
* ``campaigns`` and ``campaign_devices``: a function over a device
  selection with a rollout policy, and each device's place and outcome.
"""

STATEMENTS = [
    """
    CREATE TABLE operations (
        op_id {key} PRIMARY KEY REFERENCES jobs (job_id) ON DELETE CASCADE,
        device_id {key} NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
        function TEXT NOT NULL,
        action TEXT NOT NULL,
        correlator TEXT NOT NULL,
        alert_type TEXT NOT NULL,
        exec_target TEXT NOT NULL,
        readback {json} NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('pending', 'awaiting_device', 'verifying', 'done', 'failed', 'expired')),
        result_code INTEGER,
        outcome {json} NOT NULL,
        error {json},
        timeout {float} NOT NULL,
        deadline {float},
        expect_fwv TEXT,
        campaign_id {key},
        readback_job_id {key},
        created {float} NOT NULL,
        updated {float} NOT NULL,
        UNIQUE (device_id, correlator)
    )
    """,
    "CREATE INDEX operations_deadline ON operations (state, deadline)",
    "CREATE INDEX operations_readback ON operations (readback_job_id)",
    "CREATE INDEX operations_campaign ON operations (campaign_id, state)",
    """
    CREATE TABLE firmware (
        firmware_id {key} PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        man TEXT,
        model TEXT,
        from_fwv TEXT,
        url TEXT,
        path TEXT,
        size {bigint},
        sha256 TEXT,
        created {float} NOT NULL
    )
    """,
    """
    CREATE TABLE download_tokens (
        token {key} PRIMARY KEY,
        firmware_id {key} NOT NULL REFERENCES firmware (firmware_id) ON DELETE CASCADE,
        device_id {key} NOT NULL,
        expires {float} NOT NULL
    )
    """,
    """
    CREATE TABLE campaigns (
        campaign_id {key} PRIMARY KEY,
        function TEXT NOT NULL,
        action TEXT NOT NULL,
        params {json} NOT NULL,
        selection {json} NOT NULL,
        policy {json} NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running', 'paused', 'cancelled', 'done')),
        reason TEXT,
        wave INTEGER NOT NULL,
        total INTEGER NOT NULL,
        next_start {float} NOT NULL,
        created {float} NOT NULL,
        updated {float} NOT NULL
    )
    """,
    """
    CREATE TABLE campaign_devices (
        campaign_id {key} NOT NULL REFERENCES campaigns (campaign_id) ON DELETE CASCADE,
        device_id {key} NOT NULL,
        position INTEGER NOT NULL,
        wave INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('waiting', 'started', 'done', 'failed', 'expired', 'skipped', 'cancelled')),
        op_id {key},
        result_code INTEGER,
        reason TEXT,
        started {float},
        finished {float},
        PRIMARY KEY (campaign_id, device_id)
    )
    """,
    "CREATE INDEX campaign_devices_state ON campaign_devices (campaign_id, state, position)",
    "CREATE INDEX campaign_devices_op ON campaign_devices (op_id)",
]
