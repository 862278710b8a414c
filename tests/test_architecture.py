"""The pure core (codec dm auth tree notify bootstrap) never imports Twisted."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_contracts_kept():
    linter = shutil.which("lint-imports", path=os.path.dirname(sys.executable))
    if linter is None:
        pytest.fail("lint-imports (import-linter) is not installed in this environment")
    done = subprocess.run([linter], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
