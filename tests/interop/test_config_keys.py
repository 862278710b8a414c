"""Configuration that does what it says (issue 11), through the real commands.

``--check-config`` on the shipped conf/ in a fresh directory (no var/, no
token file yet) passes; the daemon then creates the token file at its first
start (mode 0600) and the API takes that token; a key that was removed
(``[auth] resync_nonce``) is refused with a clear line.
"""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tests.interop.daemon import ROOT, Daemon

SHIPPED = Path(ROOT) / "conf"


def twistd(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
               "--nodaemon", "--pidfile=", "dmgateway", *args]
    return subprocess.run(command, cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=60)


def test_check_config_of_the_shipped_conf_before_the_token_exists(tmp_path):
    shutil.copytree(SHIPPED, tmp_path / "conf")
    done = twistd("--check-config", "--config-dir", "conf", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "var").exists()  # checking creates nothing


def test_check_config_refuses_a_token_file_that_cannot_be_created(tmp_path):
    shutil.copytree(SHIPPED, tmp_path / "conf")
    (tmp_path / "var").write_text("a file where the directory should be")
    done = twistd("--check-config", "--config-dir", "conf", cwd=tmp_path)
    assert done.returncode == 2
    assert "dmgateway.ini [api] token_file: file 'var/api.token' not found and" in done.stderr


def test_removed_key_is_refused_with_a_clear_line(tmp_path):
    shutil.copytree(SHIPPED, tmp_path / "conf")
    with open(tmp_path / "conf" / "dmgateway.ini", "a") as f:
        f.write("\n[auth]\nresync_nonce = both\n")
    done = twistd("--check-config", "--config-dir", "conf", cwd=tmp_path)
    assert done.returncode == 2
    assert "dmgateway.ini [auth] resync_nonce: unknown key" in done.stderr


def test_first_start_creates_the_token_file_0600(tmp_path):
    daemon = Daemon(tmp_path)
    token_path = Path(daemon.workdir) / "var" / "api.token"
    token_path.unlink()
    shutil.rmtree(token_path.parent)
    daemon.start()
    try:
        mode = stat.S_IMODE(token_path.stat().st_mode)
        assert mode == 0o600, oct(mode)
        daemon.token = token_path.read_text().strip()
        assert len(daemon.token) >= 40
        status, _ = daemon.call("GET", "/events?after=0&wait=0")
        assert status == 200
        daemon.token = "not-the-token"
        status, _ = daemon.call("GET", "/events?after=0&wait=0")
        assert status == 401
        assert "created the REST API token file" in daemon.log()
        assert token_path.read_text().strip() not in daemon.log()
    finally:
        daemon.stop()
    first = token_path.read_text()
    daemon.token = first.strip()
    daemon.start()  # a second start keeps the token it made
    try:
        assert token_path.read_text() == first
        assert daemon.call("GET", "/events?after=0&wait=0")[0] == 200
    finally:
        daemon.stop()
