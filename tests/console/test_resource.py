"""The console's static files on the API site: what is served, with which
headers, without the token; what is refused (other methods, other paths,
traversal, directories); and [api] console turning it off."""

from __future__ import annotations

import os
import re

import pytest
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from dmgateway.api.site import api_site
from dmgateway.config import load_config
from dmgateway.api.resources import build_site
from dmgateway.console import STATIC, ConsoleResource, load_files
from tests.api.fakes import FakeApiHandlers
from tests.api.inmemory import Connection, raw_request

TOKEN = "console-test-token"
FILES = {
    b"index.html": (b"text/html; charset=utf-8", b"<!doctype html><title>x</title>"),
    b"app.js": (b"text/javascript; charset=utf-8", b"export {};"),
}


def get(site, path, method="GET", headers=None):
    connection = Connection(site)
    connection.send(raw_request(method, path, None, headers))
    response = connection.response
    assert response is not None, "no response"
    return response


@pytest.fixture
def site():
    clock = Clock()
    return build_site(FakeApiHandlers(clock), TOKEN, reactor=clock,
                      unauthenticated={b"console": ConsoleResource(FILES)})


def test_index_and_files_without_the_token(site):
    response = get(site, "/console/")
    assert response.status == 200
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert response.raw == FILES[b"index.html"][1]
    response = get(site, "/console/app.js")
    assert (response.status, response.header("content-type")) == (200, "text/javascript; charset=utf-8")
    head = DummyRequest([b"app.js"])
    head.method = b"HEAD"
    assert ConsoleResource(FILES).render(head) == b""
    assert head.responseHeaders.getRawHeaders(b"content-length") == [b"%d" % len(FILES[b"app.js"][1])]


def test_headers_keep_the_page_to_its_own_origin(site):
    for path in ("/console/", "/console/app.js", "/console/nope"):
        response = get(site, path)
        policy = response.header("content-security-policy")
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy and "unsafe" not in policy
        assert response.header("x-content-type-options") == "nosniff"
        assert response.header("x-frame-options") == "DENY"
        assert response.header("referrer-policy") == "no-referrer"


def test_redirect_to_the_slash(site):
    response = get(site, "/console")
    assert (response.status, response.header("location")) == (301, "/console/")


@pytest.mark.parametrize("path", [
    "/console/nope.js", "/console/../api/v1/devices", "/console/..%2f__init__.py",
    "/console/%2e%2e/__init__.py", "/console/app.js/x", "/console//app.js", "/console/index.html%00.js",
    "/console/__init__.py", "/console/static", "/console/.", "/console/" + "a" * 5000,
])
def test_only_the_shipped_names(site, path):
    response = get(site, path)
    assert response.status == 404, path
    assert response.header("content-type") == "text/plain; charset=utf-8"
    assert response.raw == b"no such file\n"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_only_get_and_head(site, method):
    response = get(site, "/console/app.js", method)
    assert (response.status, response.header("allow")) == (405, "GET, HEAD")


def test_the_api_still_needs_its_token(site):
    assert get(site, "/api/v1/devices").status == 401


def test_shipped_files():
    files = load_files()
    names = set(files)
    assert {b"index.html", b"app.js", b"api.js", b"style.css"} <= names
    assert all(os.path.isfile(os.path.join(STATIC, n.decode())) for n in names)
    for name, (_kind, body) in files.items():
        text = body.decode("utf-8")
        # nothing loaded from elsewhere: no CDN, no external font or script
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), name
        assert "@import" not in text and "url(http" not in text, name
        if name.endswith(b".js"):
            assert "innerHTML" not in text and "eval(" not in text, name
            # the token is never put in a URL
            assert not re.search(r"[?&]token=", text), name
    index = files[b"index.html"][1].decode()
    assert 'lang="en"' in index and 'name="viewport"' in index
    assert "<script>" not in index and "style=" not in index  # nothing inline (CSP)


def test_console_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "api.token").write_text(TOKEN + "\n")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "dmgateway.ini").write_text("[gateway]\n")
    assert load_config(str(conf)).api.console is True
    clock = Clock()
    service = FakeApiHandlers(clock)
    service.metrics = lambda: []
    on = api_site(service, load_config(str(conf)), reactor=clock)
    assert get(on, "/console/").status == 200
    (conf / "dmgateway.ini").write_text("[gateway]\n[api]\nconsole = false\n")
    cfg = load_config(str(conf))
    assert cfg.api.console is False
    off = api_site(service, cfg, reactor=clock)
    response = get(off, "/console/")
    assert (response.status, response.json["error"]["code"]) == (404, "not_found")
