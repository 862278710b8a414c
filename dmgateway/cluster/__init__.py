"""Several gateway processes on one PostgreSQL store: leases and cross-process signals."""
