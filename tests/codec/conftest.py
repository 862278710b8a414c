"""The WBXML reader and writer in both forms: the optional C accelerator and
the pure reference.  Test modules that say ``pytestmark =
pytest.mark.usefixtures("wbxml_impl")`` run once with each; the C run
skips, saying why, where the extension was not built."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dmgateway.codec import wbxml_reader, wbxml_writer


def printed_with_switch(code, variable, values):
    """What C{python -c code} prints (stripped) in a fresh interpreter with
    the environment variable C{variable} set to each of C{values}, in order:
    the C{DMGW_PURE_*} switches are read at import time."""
    root = str(Path(__file__).resolve().parent.parent.parent)
    env = dict(os.environ, PYTHONPATH=root)
    printed = []
    for value in values:
        env[variable] = value
        printed.append(subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=True,
                                      capture_output=True, text=True, timeout=60).stdout.strip())
    return printed


def speedups():
    """The built accelerator module, or None (no compiler at install time)."""
    try:
        return importlib.import_module("dmgateway.codec._wbxml_speedups")
    except ImportError:
        return None


@pytest.fixture(params=["c", "pure"])
def wbxml_impl(request, monkeypatch):
    if request.param == "c":
        module = speedups()
        if module is None:
            pytest.skip("dmgateway.codec._wbxml_speedups is not built (no C compiler at "
                        "install time): only the pure reader and writer are in use")
        monkeypatch.setattr(wbxml_reader, "_c_decode_body", module.decode_body)
        monkeypatch.setattr(wbxml_writer, "_c_encode_body", module.encode_body)
    else:
        monkeypatch.setattr(wbxml_reader, "_c_decode_body", None)
        monkeypatch.setattr(wbxml_writer, "_c_encode_body", None)
    return request.param
