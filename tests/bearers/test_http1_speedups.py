"""The C reader of request heads against the pure one: the same request, the
same framing, the same refusal with the same reason, for what a peer may send
before it authenticates (dmgateway.bearers._http1_speedups)."""

import tracemalloc
import unittest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from dmgateway.bearers import http1
from tests.bearers.test_dmhttp import _HEADER_LINES, _REQUEST_LINES


def read(parse, head):
    """What ``parse`` makes of ``head``: the request's parts and framing, or the refusal's reason."""
    try:
        request, length = parse(head)
    except http1.BadRequest as e:
        return ("refused", str(e))
    return (request.method, request.target, request.http10, request.headers, request.keep_alive, length)


HEAD = b"POST /dm?s=n~0a HTTP/1.1\r\n"

# heads a hostile or broken peer sends, each against one rule
HOSTILE = [
    b"", b"\r\n", b"\r", b"\n", b"\x00", HEAD, HEAD + b"\r\n", HEAD[:-2] + b"\r", HEAD + b"X: a\r",
    HEAD + b"X: a\r\r\n", HEAD + b"X: a\n\r\n", HEAD + b"X: a\x00b", b"\r\n" + HEAD + b"X: a",
    HEAD + b"X: a\r\n\r\nY: b", HEAD + b" X: a", HEAD + b"X : a", HEAD + b"X:a", HEAD + b":a", HEAD + b"X",
    HEAD + b"X\t: a", HEAD + b"X: \t a \t ", HEAD + b"X: \xff\x80\x01\x7f", HEAD + b"\xc3\xa9: a",
    HEAD + b"X-A: 1\r\nx-a: 2\r\nX-a: 3",
    b"GET / HTTP/1.1", b"POST /dm HTTP/1.0", b"POST /dm HTTP/1.2", b"POST /dm http/1.1", b"POST /dm HTTP/1.1 ",
    b"POST  /dm HTTP/1.1", b" POST /dm HTTP/1.1", b"POST /dm\tHTTP/1.1", b"POST /d\x7fm HTTP/1.1",
    b"POST /d\xe9m HTTP/1.1", b"PO(ST /dm HTTP/1.1", b"P\xc3\xa9 /dm HTTP/1.1", b"POST /dm", b"POST",
    b"POST /dm HTTP/1.1" + b"\r\nX-A: b" * http1.MAX_HEADERS,
    b"POST /dm HTTP/1.1" + b"\r\nX-A: b" * (http1.MAX_HEADERS + 1),
    b"POST /dm HTTP/1.1" + b"\r\nX-A: b" * (http1.MAX_HEADERS - 1) + b"\r\n",
    b"POST /dm HTTP/1.1\r\nX-Big: " + b"b" * http1.MAX_HEAD, b"POST /" + b"d" * http1.MAX_HEAD + b" HTTP/1.1",
    b"POST /dm HTTP/1.1\r\n" + b"X" * 8000 + b": a",
]
for value in (b"0", b"00", b"000", b"12", b"0012", b"9" * 18, b"1" + b"0" * 18, b"0" * 30 + b"7", b"9" * 5000,
              b"", b" ", b"+1", b"-1", b"1 2", b"1,1", b"0x1", b"1.0", b"\xd9\xa1", b"\xb2", b" \t12 \t", b"12\x0b"):
    HOSTILE.append(HEAD + b"Content-Length: " + value)
    HOSTILE.append(b"POST /dm HTTP/1.0\r\ncontent-LENGTH:" + value)
for value in (b"chunked", b"CHUNKED", b"Chunked ", b"identity", b"IDENTITY", b"gzip, chunked", b"chunked, gzip",
              b"", b"chunke", b"chunkedx", b"identityx"):
    HOSTILE.append(HEAD + b"Transfer-Encoding: " + value)
    HOSTILE.append(b"POST /dm HTTP/1.0\r\nTransfer-Encoding: " + value)
    HOSTILE.append(HEAD + b"Transfer-Encoding: " + value + b"\r\nContent-Length: 5")
    HOSTILE.append(HEAD + b"Content-Length: 5\r\nTransfer-Encoding: " + value)
    HOSTILE.append(HEAD + b"Transfer-Encoding: " + value + b"\r\nTransfer-Encoding: " + value)
HOSTILE += [HEAD + b"Content-Length: 5\r\nContent-Length: 5", HEAD + b"Connection: close",
            HEAD + b"Connection: Keep-Alive, CLOSE", b"POST /dm HTTP/1.0\r\nConnection: keep-alive"]


@unittest.skipIf(http1._c_parse_head is None, "dmgateway.bearers._http1_speedups is not built")
class SameAsPureTests(SynchronousTestCase):

    def assertSame(self, head):
        self.assertEqual(read(http1.parse_head_c, head), read(http1.parse_head_pure, head), head[:200])

    def test_the_dm_listener_reads_with_the_accelerator(self):
        self.assertIs(http1.parse_head, http1.parse_head_c)

    def test_hostile_heads(self):
        for head in HOSTILE:
            self.assertSame(head)
        # and each is refused or read as the peer meant: nothing else escapes
        refused = [head for head in HOSTILE if read(http1.parse_head_c, head)[0] == "refused"]
        self.assertGreater(len(refused), len(HOSTILE) // 2)

    def test_each_byte_in_each_place(self):
        base = [b"POST", b" ", b"/dm?s=1", b" ", b"HTTP/1.1", b"\r\n", b"Host", b":", b" gw", b"\r\n",
                b"Content-Length", b": ", b"5", b"\r\n", b"Transfer-Encoding", b":", b"chunked"]
        for where in range(len(base) + 1):
            for byte in range(256):
                self.assertSame(b"".join(base[:where]) + bytes([byte]) + b"".join(base[where:]))

    @settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_REQUEST_LINES, st.lists(_HEADER_LINES, max_size=6))
    def test_lines_of_pieces(self, request_line, header_lines):
        self.assertSame(b"\r\n".join([request_line] + header_lines))

    @settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=200))
    def test_any_bytes(self, head):
        self.assertSame(head)

    def test_not_bytes(self):
        for head in (bytearray(HEAD), memoryview(HEAD), HEAD.decode(), None):
            with self.assertRaises(TypeError):
                http1._c_parse_head(head, http1.MAX_HEADERS, http1.BadRequest)

    def test_nothing_is_kept(self):
        """Read and refused heads leave no memory behind (every reference is released)."""
        heads = HOSTILE * 20
        for head in heads:  # (warm: caches, interned objects)
            read(http1.parse_head_c, head)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for head in heads:
                read(http1.parse_head_c, head)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        self.assertLess(grown, 20000)  # a leak of one object a head would be > 100 kB here
