"""The WBXML reader and writer in both forms: the optional C accelerator and
the pure reference.  Test modules that say ``pytestmark =
pytest.mark.usefixtures("wbxml_impl")`` run once with each; the C run
skips, saying why, where the extension was not built."""

import importlib

import pytest

from dmgateway.codec import wbxml_reader, wbxml_writer


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
