"""The test harness's daemons do not outlive a test run that is killed."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.interop.daemon import ROOT
from tests.lifetime import running


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="util-linux setpriv is not installed")
def test_a_daemon_dies_with_the_run_that_started_it(tmp_path):
    # a run killed with SIGKILL runs no cleanup: its daemon must stop by itself
    starter = textwrap.dedent(
        """
        import sys, time
        sys.path.insert(0, %r)
        from tests.interop.daemon import Daemon
        gw = Daemon(%r).start()
        print(gw.process.pid, flush=True)
        time.sleep(120)
        """
        % (ROOT, str(tmp_path))
    )
    run = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    pid = None
    try:
        pid = int(run.stdout.readline())
        assert running(pid), "the daemon did not start"
        run.kill()
        run.wait(10)
        deadline = time.monotonic() + 20
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(pid), "the daemon outlived the run that started it"
        with open(os.path.join(str(tmp_path), "daemon.log")) as f:
            assert "Received SIGTERM" in f.read()
    finally:
        run.kill()
        run.wait(10)
        if pid is not None and running(pid):
            os.kill(pid, signal.SIGKILL)  # (what the test found: not left behind)
