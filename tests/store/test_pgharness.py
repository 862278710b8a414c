"""The throw-away PostgreSQL harness (tests/pgharness.py)."""

import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

import pytest

from tests.pgharness import (
    PostgresServer,
    PostgresUnavailable,
    find_binaries,
    require_postgres,
)


def _executable(path):
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_env_directory_without_binaries(tmp_path, monkeypatch):
    monkeypatch.setenv("DMGW_PG_BIN", str(tmp_path))
    with pytest.raises(PostgresUnavailable, match="DMGW_PG_BIN"):
        find_binaries()


def test_env_directory_wins(tmp_path, monkeypatch):
    _executable(tmp_path / "initdb")
    _executable(tmp_path / "pg_ctl")
    monkeypatch.setenv("DMGW_PG_BIN", str(tmp_path))
    assert find_binaries() == (str(tmp_path / "initdb"), str(tmp_path / "pg_ctl"))


@pytest.mark.parametrize(
    "value, required", [("1", True), ("yes", True), ("0", False), ("", False), (None, False)]
)
def test_require_postgres(monkeypatch, value, required):
    if value is None:
        monkeypatch.delenv("DMGW_REQUIRE_PG", raising=False)
    else:
        monkeypatch.setenv("DMGW_REQUIRE_PG", value)
    assert require_postgres() is required


def test_start_serves_then_removes_everything(postgresql_server):
    # postgresql_server proves binaries exist (or skips); start a second,
    # private server to watch its whole life.
    with PostgresServer.start() as server:
        base, port = server.base_dir, server.port
        uri = server.create_database()
        assert uri.startswith(f"postgresql://dmgw@127.0.0.1:{port}/")
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert any(name.startswith(".s.PGSQL") for name in os.listdir(server.socket_dir))
        if os.geteuid() == 0:
            assert os.stat(server.data_dir).st_uid != 0
    assert not base.exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.fixture
def shared_dir():
    # A directory the unprivileged PostgreSQL user can enter (pytest's
    # tmp_path is private to root).
    path = tempfile.mkdtemp(prefix="dmgw-pgbin-")
    os.chmod(path, 0o755)
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def test_failed_start_cleans_up(shared_dir, monkeypatch):
    # Binaries that fail: the error carries their output and nothing stays.
    for name in ("initdb", "pg_ctl"):
        (shared_dir / name).write_text("#!/bin/sh\necho broken-on-purpose\nexit 3\n")
        (shared_dir / name).chmod(0o755)
    monkeypatch.setenv("DMGW_PG_BIN", str(shared_dir))
    temp = tempfile.gettempdir()
    before = set(os.listdir(temp))
    with pytest.raises(RuntimeError, match="broken-on-purpose"):
        with PostgresServer.start():
            pass
    after = set(os.listdir(temp))
    assert not {n for n in after - before if n.startswith("dmgw-pg-")}
