"""The store tests' real PostgreSQL (tests/pgharness.py), shared by the cluster tests."""

from tests.store.conftest import postgresql_server, postgresql_uri  # noqa: F401 (fixtures)
