"""The throw-away PostgreSQL harness (tests/pgharness.py)."""

import ctypes
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.pgharness import (
    PostgresServer,
    PostgresUnavailable,
    _remove_dirs_of_dead_runs,
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
    _executable(tmp_path / "postgres")
    monkeypatch.setenv("DMGW_PG_BIN", str(tmp_path))
    assert find_binaries() == (str(tmp_path / "initdb"), str(tmp_path / "postgres"))


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


@pytest.mark.parametrize("initdb_exit", [3, 0])
def test_failed_start_cleans_up(shared_dir, monkeypatch, initdb_exit):
    # Binaries that fail (initdb, or the server after it): the error carries
    # their output (the server's: its log) and nothing stays.
    for name, code in (("initdb", initdb_exit), ("postgres", 3)):
        (shared_dir / name).write_text(f"#!/bin/sh\necho broken-on-purpose\nexit {code}\n")
        (shared_dir / name).chmod(0o755)
    monkeypatch.setenv("DMGW_PG_BIN", str(shared_dir))
    temp = tempfile.gettempdir()
    before = set(os.listdir(temp))
    with pytest.raises(RuntimeError, match="broken-on-purpose"):
        with PostgresServer.start():
            pass
    after = set(os.listdir(temp))
    assert not {n for n in after - before if n.startswith("dmgw-pg-")}


ROOT = str(Path(__file__).resolve().parents[2])
PR_SET_CHILD_SUBREAPER = 36


@contextmanager
def adopting_orphans():
    """This process adopts the orphans of its descendants in the block, to
    collect (waitpid) a killed run's server: the kernel would hand it to
    PID 1, which some containers' PID 1 never collects (a zombie stays)."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    if prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("prctl(PR_SET_CHILD_SUBREAPER): %s" % (os.strerror(ctypes.get_errno()),))
    try:
        yield
    finally:
        prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def ended(pid, timeout):
    """Whether our child ``pid`` ends within ``timeout`` seconds (collected if so)."""
    deadline = time.monotonic() + timeout
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="util-linux setpriv is not installed")
def test_a_killed_run_leaves_no_server(postgresql_server):
    # A run killed with SIGKILL runs no cleanup: its server must stop by
    # itself, and the next start removes the directory it left.
    starter = textwrap.dedent(
        """
        import sys, time
        sys.path.insert(0, %r)
        from tests.pgharness import PostgresServer
        with PostgresServer.start() as server:
            postmaster = (server.data_dir / "postmaster.pid").read_text().split()[0]
            print(postmaster, server.port, server.base_dir, flush=True)
            time.sleep(120)
        """
        % (ROOT,)
    )
    with adopting_orphans():
        run = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
        pid = base = None
        try:
            started = run.stdout.readline().split()
            assert started, "the run did not start a server"
            pid, port, base = int(started[0]), int(started[1]), started[2]
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            run.kill()
            run.wait(10)
            assert ended(pid, 15), "the server outlived the run that started it"
            pid = None
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            with open(os.path.join(base, "postgres.log")) as log:  # left: for the next start
                assert "received fast shutdown request" in log.read()
            with PostgresServer.start():
                assert not os.path.exists(base), "the next start left the dead run's directory"
                assert postgresql_server.base_dir.is_dir()  # a live run's: kept, serving
                postgresql_server.drop_schema(postgresql_server.create_schema())
        finally:
            run.kill()
            run.wait(10)
            if pid is not None:  # (what the test found: not left behind)
                os.kill(pid, signal.SIGQUIT)
                if not ended(pid, 10):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
            if base is not None:
                shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(not os.path.exists("/proc/self/ns/pid"), reason="no /proc")
def test_only_the_directories_of_dead_runs_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    namespace = os.readlink("/proc/self/ns/pid")
    ended = subprocess.Popen(["true"])
    ended.wait()
    dead, alive = ended.pid, os.getpid()

    def left(name, owner=None, postmaster=None, owner_namespace=namespace):
        base = tmp_path / ("dmgw-pg-" + name)
        (base / "data").mkdir(parents=True)
        if owner is not None:
            (base / "owner").write_text(f"{owner} {owner_namespace}\n")
        if postmaster is not None:
            (base / "data" / "postmaster.pid").write_text(f"{postmaster}\n{base}/data\n")
        return base

    removed = [left("stopped", dead), left("killed", dead, postmaster=dead)]
    kept = [
        left("live", alive),
        left("serving", dead, postmaster=alive),  # a server started off the main thread
        left("unowned"),  # being made, or by an older harness
        left("elsewhere", dead, owner_namespace="pid:[1]"),  # its pids are not ours to read
    ]
    _remove_dirs_of_dead_runs()
    assert [base.exists() for base in removed] == [False, False]
    assert [base.exists() for base in kept] == [True, True, True, True]
