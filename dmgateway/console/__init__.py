"""
The web console: static pages served at C{/console/} on the API listener.

The pages are plain ES modules, HTML and CSS shipped in C{static/} (no
build step, nothing fetched from elsewhere).  They hold no data: the
operator types the API token, the tab keeps it in its session storage and
sends it as C{Authorization: Bearer} to C{/api/v1} like any other client.

Only the files present in C{static/} when the daemon starts are served,
by exact name (no directories, no listing, no path from the request ever
reaches the file system), with a Content-Security-Policy that lets a page
load scripts, styles and data from this origin only.
"""

from __future__ import annotations

import os

from twisted.web import server
from twisted.web.resource import Resource

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
}

# Everything from this origin only; no inline script, no framing, no forms
# posting elsewhere.  Inline style attributes are not used either.
POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

HEADERS = {
    b"Content-Security-Policy": POLICY,
    b"X-Content-Type-Options": b"nosniff",
    b"X-Frame-Options": b"DENY",
    b"Referrer-Policy": b"no-referrer",
    b"Cache-Control": b"no-cache",
}


def load_files(directory: str = STATIC) -> dict[bytes, tuple[bytes, bytes]]:
    """The servable files of C{directory}: C{{name: (content type, bytes)}}."""
    files = {}
    for name in sorted(os.listdir(directory)):
        kind = CONTENT_TYPES.get(os.path.splitext(name)[1])
        path = os.path.join(directory, name)
        if kind is None or name.startswith(".") or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            files[name.encode("ascii")] = (kind, f.read())
    return files


class ConsoleResource(Resource):
    """
    C{/console} (redirected to C{/console/}), C{/console/} (the page) and
    C{/console/NAME} for each shipped file; anything else is a 404.
    """

    isLeaf = True

    def __init__(self, files: dict[bytes, tuple[bytes, bytes]] | None = None) -> None:
        super().__init__()
        self._files = load_files() if files is None else files

    def render(self, request: server.Request) -> bytes:
        for name, value in HEADERS.items():
            request.setHeader(name, value)
        if request.method not in (b"GET", b"HEAD"):
            request.setResponseCode(405)
            request.setHeader(b"Allow", b"GET, HEAD")
            return self._text(request, b"method not allowed\n")
        path = request.postpath
        if not path:
            # /console: relative links in the page need the trailing slash
            request.setResponseCode(301)
            request.setHeader(b"Location", b"/console/")
            return self._text(request, b"see /console/\n")
        name = b"index.html" if path == [b""] else path[0]
        found = self._files.get(name) if len(path) == 1 else None
        if found is None:
            request.setResponseCode(404)
            return self._text(request, b"no such file\n")
        kind, body = found
        request.setHeader(b"Content-Type", kind)
        return self._body(request, body)

    @classmethod
    def _text(cls, request: server.Request, body: bytes) -> bytes:
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return cls._body(request, body)

    @staticmethod
    def _body(request: server.Request, body: bytes) -> bytes:
        if request.method == b"HEAD":
            # the length of what GET answers, and no body
            request.setHeader(b"Content-Length", b"%d" % (len(body),))
            return b""
        return body
