"""
One device's events, newest first (``GET /api/v1/devices/{id}/events``,
the web console's device page): an index on ``events (device_id, seq)``
so that reading them does not scan the whole event log.
"""

STATEMENTS = [
    "CREATE INDEX events_device ON events (device_id, seq)",
]
