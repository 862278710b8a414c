"""
Fixtures for the store tests: a real PostgreSQL for the whole run (see
tests/pgharness.py) and a fresh database per test.
"""

from contextlib import ExitStack

import pytest

from tests.pgharness import PostgresServer, PostgresUnavailable, require_postgres


@pytest.fixture(scope="session")
def postgresql_server():
    """A temporary PostgreSQL server; skipped (or failed, with DMGW_REQUIRE_PG=1) if absent."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(PostgresServer.start())
        except PostgresUnavailable as e:
            if require_postgres():
                pytest.fail(f"DMGW_REQUIRE_PG=1 but {e}", pytrace=False)
            pytest.skip(f"PostgreSQL unavailable: {e}")
        yield server


@pytest.fixture
def postgresql_uri(postgresql_server):
    """The URI of a new empty schema (an empty database to the store), dropped after the test."""
    uri = postgresql_server.create_schema()
    yield uri
    postgresql_server.drop_schema(uri)
