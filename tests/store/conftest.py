"""
Fixtures for the store tests: a real PostgreSQL for the whole run (see
tests/pgharness.py) and a fresh database per test.
"""

import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.pgharness import (  # noqa: E402
    PostgresServer,
    PostgresUnavailable,
    require_postgres,
)


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
    """The URI of a new empty database, dropped after the test."""
    uri = postgresql_server.create_database()
    yield uri
    postgresql_server.drop_database(uri)
