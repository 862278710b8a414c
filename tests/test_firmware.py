"""
Firmware packages: registration checks, uploads (size/checksum, limit), and
the package server over real HTTP on loopback, fetched with curl: whole
file, byte ranges (resume), per-device tokens that expire and name one
package, hostile paths.
"""

import hashlib
import io
import os
import shutil
import tempfile
from types import SimpleNamespace

from twisted.internet import defer, protocol, reactor, utils
from twisted.trial.unittest import TestCase

from dmgateway.firmware import FirmwareError, FirmwareService, check_metadata, package_site
from tests.support import open_test_store

BODY = b"DMGW-PKG 2.0\n" + bytes(range(256)) * 400


class FirmwareTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield open_test_store(self, "sqlite::memory:")
        self.dir = os.path.join(tempfile.mkdtemp(prefix="dmgw-fw-"), "packages")
        self.addCleanup(shutil.rmtree, os.path.dirname(self.dir), True)
        self.config = SimpleNamespace(package_dir=self.dir, max_package_size=len(BODY) + 10, download_enabled=True,
                                      download_url="http://127.0.0.1:1/fw", token_lifetime=600)
        self.service = FirmwareService(self.store, self.config, self.clock)
        self.port = reactor.listenTCP(0, package_site(self.store, self.clock), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base = "http://127.0.0.1:%d/fw" % (self.port.getHost().port,)

    async def curl(self, url, *args):
        out = await utils.getProcessOutputAndValue(
            "curl", ["-s", "-S", "--max-time", "10", "-D", "-", *args, url], env=os.environ)
        head, _, body = out[0].partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), head.decode("latin-1"), body

    async def upload(self, **meta):
        meta = dict({"name": "fw", "version": "2.0"}, **meta)
        return await self.service.register(meta, io.BytesIO(BODY))

    async def test_download_whole_and_by_range_with_the_device_token(self):
        fw = await self.upload(man="Acme", model="X1", from_fwv="1.0", sha256=hashlib.sha256(BODY).hexdigest())
        self.assertEqual((fw["size"], fw["uploaded"]), (len(BODY), True))
        _fw, url = await self.service.package_url(fw["id"], "IMEI:1")
        url = url.replace("http://127.0.0.1:1/fw", self.base)
        self.assertIn("sha256=" + fw["sha256"], url)
        code, _head, body = await self.curl(url)
        self.assertEqual((code, body), (200, BODY))
        code, head, body = await self.curl(url, "-r", "100-199")
        self.assertEqual((code, body), (206, BODY[100:200]))
        self.assertIn("Content-Range: bytes 100-199/%d" % (len(BODY),), head)
        code, _head, body = await self.curl(url, "-C", "5000")  # resume
        self.assertEqual((code, body), (206, BODY[5000:]))

    async def test_tokens_are_per_package_and_expire(self):
        one = await self.upload()
        two = await self.upload(version="3.0")
        _fw, url = await self.service.package_url(one["id"], "IMEI:1")
        token = url.split("t=", 1)[1].split("&", 1)[0]
        code, _h, _b = await self.curl("%s/%s?t=%s" % (self.base, two["id"], token))
        self.assertEqual(code, 403)
        code, _h, _b = await self.curl("%s/%s" % (self.base, one["id"]))
        self.assertEqual(code, 403)
        code, _h, _b = await self.curl("%s/%s?t=%s" % (self.base, one["id"], "x" * 24))
        self.assertEqual(code, 403)
        self.clock.advance(601)
        code, _h, _b = await self.curl("%s/%s?t=%s" % (self.base, one["id"], token))
        self.assertEqual(code, 403)

    async def test_hostile_paths_and_methods(self):
        for path in ("/../../etc/passwd", "/%2e%2e%2fetc", "/" + "a" * 32 + "/x", "/zz"):
            code, _h, _b = await self.curl(self.base + path + "?t=" + "a" * 24)
            self.assertIn(code, (403, 404))
        code, _h, _b = await self.curl(self.base + "/" + "a" * 32 + "?t=" + "a" * 24, "-X", "POST")
        self.assertEqual(code, 405)

    async def test_a_list_of_ranges_gets_the_file_once(self):
        fw = await self.upload()
        _fw, url = await self.service.package_url(fw["id"], "IMEI:1")
        url = url.replace("http://127.0.0.1:1/fw", self.base)
        # 200 overlapping whole-file ranges: without a limit, 200 copies of the package
        code, _head, body = await self.curl(url, "-H", "Range: bytes=" + ",".join(["0-"] * 200))
        self.assertEqual((code, len(body)), (200, len(BODY)))
        self.assertEqual(body, BODY)
        for hostile in ("bytes=--5", "bytes=-0", "bytes=99999999999999999999-", "bytes=5-2", "bytes=" + "9" * 5000,
                        "bytes=0-0,", "pages=0-1"):
            code, _head, body = await self.curl(url, "-H", "Range: " + hostile)
            self.assertIn(code, (200, 206, 416), hostile)
            self.assertLessEqual(len(body), len(BODY), hostile)

    async def test_a_slow_request_is_cut_off(self):
        site = package_site(self.store, self.clock, read_timeout=0.5)
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        got, closed = [], defer.Deferred()

        class Slow(protocol.Protocol):
            def connectionMade(self):
                self.transport.write(b"GET /fw/" + b"a" * 32 + b"?t=" + b"a" * 24 + b" HTTP/1.1\r\nX-A: ")

            def dataReceived(self, data):
                got.append(data)

            def connectionLost(self, reason):
                closed.callback(None)

        started = reactor.seconds()
        await protocol.ClientCreator(reactor, Slow).connectTCP("127.0.0.1", port.getHost().port)
        await closed
        self.assertLess(reactor.seconds() - started, 10)
        self.assertTrue(b"".join(got).startswith(b"HTTP/1.1 408"))

    async def test_upload_checks(self):
        with self.assertRaises(FirmwareError) as caught:
            await self.upload(sha256="0" * 64)
        self.assertEqual(caught.exception.code, "checksum_mismatch")
        with self.assertRaises(FirmwareError):
            await self.upload(size=3)
        self.config.max_package_size = 100
        with self.assertRaises(FirmwareError) as caught:
            await self.upload()
        self.assertEqual(caught.exception.status, 413)
        self.assertEqual([n for n in os.listdir(self.dir)], [])  # nothing left behind
        with self.assertRaises(FirmwareError):
            await self.service.register({"name": "x", "version": "1"}, io.BytesIO(b""))

    async def test_external_url(self):
        fw = await self.service.register({"name": "fw", "version": "2.0", "url": "https://cdn.test/fw.bin"})
        _fw, url = await self.service.package_url(fw["id"], "IMEI:1")
        self.assertEqual(url, "https://cdn.test/fw.bin")
        with self.assertRaises(FirmwareError):
            await self.service.package_url("0" * 32, "IMEI:1")


def test_metadata_checks():
    good = check_metadata({"name": "n", "version": "1", "url": "http://x/y"}, False)
    assert good["url"] == "http://x/y"
    for meta in ({"version": "1", "url": "http://x"}, {"name": "n", "version": "1"},
                 {"name": "n\n", "version": "1", "url": "http://x"}, {"name": "n", "version": "1", "url": "ftp://x"},
                 {"name": "n", "version": "1", "url": "http://x", "evil": 1},
                 {"name": "n", "version": "1", "url": "http://x", "sha256": "zz"}, "junk"):
        try:
            check_metadata(meta, False)
        except FirmwareError:
            continue
        raise AssertionError("accepted %r" % (meta,))


def test_package_server_limits_come_from_functions_ini(tmp_path):
    from dmgateway.config.loader import load_config
    from dmgateway.tap import GatewayService

    (tmp_path / "dmgateway.ini").write_text("[gateway]\n[api]\nenabled = false\n")
    (tmp_path / "http.ini").write_text("[http]\nenabled = false\n")
    (tmp_path / "functions.ini").write_text("[functions]\ndownload_enabled = true\nread_timeout = 7\n"
                                            "max_connections_per_peer = 5\nendpoint = tcp:0:interface=127.0.0.1\n")
    service = GatewayService(load_config(str(tmp_path)))
    service.store = object()
    [(name, _endpoint, site)] = list(service._listeners())
    assert (name, site.read_timeout, site.max_connections_per_peer) == ("packages", 7, 5)
