"""
A throw-away PostgreSQL server for tests.

    with PostgresServer.start() as server:
        uri = server.create_database()      # postgresql://dmgw@127.0.0.1:PORT/dmgw_1
        ...
        server.drop_database(uri)
        uri = server.create_schema()        # quicker: a schema of a shared database
        ...
        server.drop_schema(uri)

The server runs from a fresh temporary data directory on 127.0.0.1 with a
free port and its socket directory inside the temporary directory, with
durability switched off (tests do not need it).  initdb refuses to run as
root, so when the test run is root the server runs as an unprivileged user
(C{postgres} from the Debian package, or C{DMGW_PG_USER}) through C{setpriv}.
Everything is stopped and removed on exit, also on failure.

The server is the test run's child (not a daemon): when the run is killed
(a timeout, kill -9) and runs no cleanup, the server gets SIGINT and stops
(see L{dies_with_its_starter}); the next start removes the directory left.

Binaries are found in C{DMGW_PG_BIN} (a directory), then on C{PATH}, then in
C{/usr/lib/postgresql/*/bin} (newest first).  When none are found,
L{start} raises L{PostgresUnavailable}; callers turn that into a skip, or
into a failure when C{DMGW_REQUIRE_PG=1} (see L{require_postgres}).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, unquote, urlsplit

from tests.lifetime import dies_with_its_starter, running

__all__ = [
    "PostgresUnavailable",
    "PostgresServer",
    "find_binaries",
    "require_postgres",
]

SUPERUSER = "dmgw"
DEFAULT_RUN_AS = "postgres"
TIMEOUT = 60.0  # to start or to stop (pg_ctl's default)
# how each mode of pg_ctl stop asks the server to stop
SHUTDOWN = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


class PostgresUnavailable(Exception):
    """PostgreSQL binaries (or a way to run them) are not on this machine."""


def require_postgres() -> bool:
    """True when C{DMGW_REQUIRE_PG=1}: a missing PostgreSQL is then an error."""
    return os.environ.get("DMGW_REQUIRE_PG", "").strip() in ("1", "true", "yes")


def _version_key(path: str) -> tuple:
    version = Path(path).parent.name
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def find_binaries() -> tuple[str, str]:
    """
    Return the paths of C{initdb} and C{postgres}, from the same directory.

    @raise PostgresUnavailable: no directory holds both.
    """
    candidates = []
    env = os.environ.get("DMGW_PG_BIN")
    if env:
        candidates.append(env)
    else:
        found = shutil.which("postgres")
        if found:
            candidates.append(os.path.dirname(os.path.realpath(found)))
        pattern = "/usr/lib/postgresql/*/bin/postgres"
        for path in sorted(glob.glob(pattern), key=_version_key, reverse=True):
            candidates.append(os.path.dirname(path))
    for directory in candidates:
        initdb = os.path.join(directory, "initdb")
        postgres = os.path.join(directory, "postgres")
        if os.access(initdb, os.X_OK) and os.access(postgres, os.X_OK):
            return initdb, postgres
    where = f"DMGW_PG_BIN={env}" if env else "PATH or /usr/lib/postgresql/*/bin"
    raise PostgresUnavailable(
        f"PostgreSQL binaries (initdb, postgres) not found in {where}; "
        "install Debian's 'postgresql' package or set DMGW_PG_BIN"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _privilege_drop(user: str) -> list[str]:
    """
    The command prefix that runs a program as C{user} (we are root), in
    the same process: the server stays our child (C{runuser} would fork).
    """
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, f"--reuid={user}", f"--regid={user}", "--init-groups"]
    raise PostgresUnavailable(
        "running as root but setpriv (util-linux) is not available "
        "to start PostgreSQL as an unprivileged user"
    )


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _remove_dirs_of_dead_runs() -> None:
    """
    Remove the directories left by runs that were killed (and could not):
    those whose C{owner} file names a process of our PID namespace that
    has ended, and whose server has ended too.  A directory without an
    C{owner} file (being made, or by an older harness) is left alone.
    """
    namespace = _pid_namespace()
    if namespace is None:  # no /proc: nothing tells a dead run
        return
    for base in glob.glob(os.path.join(tempfile.gettempdir(), "dmgw-pg-*")):
        try:
            owner, owner_namespace = Path(base, "owner").read_text().split()
            try:
                postmaster = Path(base, "data", "postmaster.pid").read_text().split()[0]
            except FileNotFoundError:  # it stopped cleanly
                postmaster = owner
            pids = (int(owner), int(postmaster))
        except (OSError, ValueError, IndexError):
            continue
        if owner_namespace == namespace and not any(running(pid) for pid in pids):
            shutil.rmtree(base, ignore_errors=True)


class PostgresServer:
    """
    A running temporary server; use L{start} to get one.

    @ivar host: always C{127.0.0.1}.
    @ivar port: the TCP port it listens on.
    @ivar base_dir: the temporary directory holding data, socket and log.
    @ivar process: the running (or last) server process, our child.
    """

    host = "127.0.0.1"

    def __init__(self, base_dir: Path, postgres: str, prefix: list[str], port: int):
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "sock"
        self.log_file = base_dir / "postgres.log"
        self.port = port
        self.process: subprocess.Popen | None = None
        self._postgres = postgres
        self._prefix = prefix
        self._names = itertools.count(1)
        self._shared: str | None = None

    @classmethod
    @contextmanager
    def start(cls) -> Iterator["PostgresServer"]:
        """
        Initialise, start, yield, then stop and remove a server.

        @raise PostgresUnavailable: no binaries, or no way to drop root.
        @raise RuntimeError: initdb or the server failed (the log is in the
            message).
        """
        initdb, postgres = find_binaries()
        prefix: list[str] = []
        owner = None
        if os.geteuid() == 0:
            user = os.environ.get("DMGW_PG_USER", DEFAULT_RUN_AS)
            try:
                owner = pwd.getpwnam(user)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root and there is no user {user!r} to run "
                    "PostgreSQL as (set DMGW_PG_USER)"
                ) from None
            prefix = _privilege_drop(user)
        _remove_dirs_of_dead_runs()
        base = Path(tempfile.mkdtemp(prefix="dmgw-pg-"))
        server = None
        try:
            (base / "owner").write_text(f"{os.getpid()} {_pid_namespace()}\n")
            (base / "sock").mkdir()
            if owner is not None:
                for path in (base, base / "sock"):
                    os.chown(path, owner.pw_uid, owner.pw_gid)
            server = cls(base, postgres, prefix, 0)
            server._initdb(initdb)
            server._start_server()
            yield server
        finally:
            try:
                if server is not None:
                    server.stop_server("immediate")
            finally:
                shutil.rmtree(base, ignore_errors=True)

    def _run(self, args: list[str], what: str) -> None:
        result = subprocess.run(
            self._prefix + args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.base_dir,
            timeout=120,
        )
        if result.returncode != 0:
            output = result.stdout.decode("utf-8", "replace")
            raise RuntimeError(f"{what} failed ({result.returncode}):\n{output}{self._log()}")

    def _log(self, tail: int = 8000) -> str:
        """The end of the server's log, to explain a failure."""
        if not self.log_file.exists():
            return ""
        return "\n--- server log ---\n" + self.log_file.read_text("utf-8", "replace")[-tail:]

    def _initdb(self, initdb: str) -> None:
        self._run(
            [
                initdb,
                "-D", str(self.data_dir),
                "-U", SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            "initdb",
        )

    def _start_server(self) -> None:
        last_error = None
        for _attempt in range(3):
            self.port = _free_port()
            try:
                self._pg_start()
                return
            except RuntimeError as e:
                # Most likely somebody took the port between probe and bind.
                last_error = e
        assert last_error is not None
        raise last_error

    def stop_server(self, mode: str = "fast") -> None:
        """
        Stop the server as an operator restart would (C{fast}: sessions are
        cut, committed work kept) or as a crash would (C{immediate}: with
        this harness's durability switched off, recent commits may be lost).
        The modes are pg_ctl's; a server that does not stop in time is killed.
        """
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(SHUTDOWN[mode])
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(
                f"postgres did not stop in {TIMEOUT:.0f} s ({mode}), killed:{self._log()}"
            ) from None

    def start_again(self) -> None:
        """Start the stopped server again on the same port, with its data."""
        self._pg_start()

    def _pg_start(self) -> None:
        settings = [
            "listen_addresses=127.0.0.1",
            f"port={self.port}",
            f"unix_socket_directories={self.socket_dir}",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=50",
        ]
        # the privilege drop goes first: a change of user clears the death
        # signal.  INT: a fast shutdown, which does not wait for clients.
        command = [*self._prefix, *dies_with_its_starter("INT"), self._postgres]
        command += ["-D", str(self.data_dir)]
        for setting in settings:
            command += ["-c", setting]
        with open(self.log_file, "ab") as log:
            # its own session, as under pg_ctl: a Ctrl-C is for the test run
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.base_dir, start_new_session=True,
            )
        deadline = time.monotonic() + TIMEOUT
        while not self._ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres failed ({self.process.returncode}):{self._log()}")
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise RuntimeError(f"postgres not ready in {TIMEOUT:.0f} s, killed:{self._log()}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        """Whether our server says it accepts connections, as pg_ctl -w reads it."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        # line 1: the postmaster's pid (setpriv execs it: ours); line 8: its status
        return (
            len(lines) >= 8 and lines[0] == str(self.process.pid) and lines[7].strip() == "ready"
        )

    def uri(self, database: str = "postgres") -> str:
        """The C{postgresql://} URI of C{database} on this server."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{quote(database)}"

    def _execute(self, uri: str, sql: str, fast: str = "") -> None:
        import psycopg

        with psycopg.connect(uri, autocommit=True, connect_timeout=10) as conn:
            if fast and conn.info.server_version >= 150000:
                sql += fast
            conn.execute(sql)

    def _admin(self, sql: str, fast: str = "") -> None:
        self._execute(self.uri(), sql, fast)

    def create_database(self) -> str:
        """Create a new empty database and return its URI."""
        name = f"dmgw_{next(self._names)}"
        # FILE_COPY (PostgreSQL 15+) is the quicker way for a tiny template.
        self._admin(f'CREATE DATABASE "{name}"', " STRATEGY FILE_COPY")
        return self.uri(name)

    def drop_database(self, uri: str) -> None:
        """Drop the database of C{uri} (made by L{create_database})."""
        name = unquote(urlsplit(uri).path.lstrip("/"))
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create_schema(self) -> str:
        """
        Create a new empty schema in a database shared by all schemas of
        this server, and return a URI whose connections see only it (by
        C{search_path}).  Much quicker than L{create_database}.
        """
        if self._shared is None:
            self._shared = self.create_database()
        name = f"dmgw_s{next(self._names)}"
        self._execute(self._shared, f'CREATE SCHEMA "{name}"')
        return f"{self._shared}?options=-csearch_path%3D{name}"

    def drop_schema(self, uri: str) -> None:
        """Drop the schema of C{uri} (made by L{create_schema}) and all in it."""
        name = uri.rsplit("%3D", 1)[1]
        self._execute(self._shared, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
