"""libwbxml's command-line tools (``xml2wbxml``, ``wbxml2xml``) as a check on
our WBXML codec: shared by tests/codec/test_wbxml_corpus.py and the interop
tests (tests/interop/test_libwbxml.py)."""

import shutil
import subprocess

import pytest

TIMEOUT = 30

requires_libwbxml = pytest.mark.skipif(
    not (shutil.which("xml2wbxml") and shutil.which("wbxml2xml")),
    reason="libwbxml tools missing: apt-get install libwbxml2-utils",
)


def run(tool, *args):
    result = subprocess.run([tool, *map(str, args)], capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 0, (tool, result.stdout, result.stderr)


def wbxml2xml(data, tmp_path):
    """libwbxml's XML for WBXML ``data`` (compact: ``-m 0``, text kept as is: ``-k``)."""
    source, target = tmp_path / "in.wbxml", tmp_path / "out.xml"
    source.write_bytes(data)
    run("wbxml2xml", "-m", "0", "-k", "-o", target, source)
    return target.read_bytes()


def xml2wbxml(path, options, tmp_path):
    """libwbxml's WBXML for the XML file at ``path``."""
    target = tmp_path / "out.wbxml"
    run("xml2wbxml", *options, "-o", target, path)
    return target.read_bytes()
