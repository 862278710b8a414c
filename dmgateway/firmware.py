"""
Firmware packages: registration (an uploaded file or an external URL), the
per-device download tokens, and the package server devices download from.

The package server answers ``GET|HEAD /fw/<firmware id>?t=<token>`` with
the file and honours ``Range`` (resumable downloads); a request without a
valid token for that package gets 403, an unknown package 404.  Tokens are
random, one per (package, device), stored with their expiry, so every
gateway process on a shared PostgreSQL store accepts them.
"""

import hashlib
import os
import re
import secrets
import tempfile
import uuid

from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.web import resource, server, static

from dmgateway.bearers.httplimits import PeerCappedSite
from dmgateway.store.firmware import Firmware

log = Logger()

_TEXT = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[0-9a-f]{32}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_CHUNK = 65536


class FirmwareError(ValueError):
    """A registration the gateway refuses; ``code`` is the API error code."""

    def __init__(self, message, code="invalid_firmware", status=400):
        super().__init__(message)
        self.code = code
        self.status = status


def _text(meta, key, required=False):
    value = meta.get(key)
    if value is None or value == "":
        if required:
            raise FirmwareError("%r is required" % (key,))
        return None
    if not isinstance(value, str) or not _TEXT.fullmatch(value):
        raise FirmwareError("%r must be 1 to 128 printable ASCII characters" % (key,))
    return value


def check_metadata(meta, upload):
    """The checked registration fields of ``meta`` (a dict of strings/numbers)."""
    if not isinstance(meta, dict):
        raise FirmwareError("the registration must be an object")
    unknown = set(meta) - {"name", "version", "man", "model", "from_fwv", "url", "size", "sha256"}
    if unknown:
        raise FirmwareError("unknown fields: %s" % (", ".join(sorted(unknown)),))
    fields = {key: _text(meta, key, key in ("name", "version")) for key in ("name", "version", "man", "model",
                                                                           "from_fwv")}
    url = meta.get("url")
    if upload and url is not None:
        raise FirmwareError("an uploaded package has no 'url'")
    if not upload:
        if not isinstance(url, str) or not re.fullmatch(r"https?://[\x21-\x7e]{1,2040}", url):
            raise FirmwareError("'url' must be an http(s) URL without spaces (or upload the file)")
    fields["url"] = url
    size = meta.get("size")
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0 or size >= 2**63):
        raise FirmwareError("'size' must be a byte count")
    fields["size"] = size
    digest = meta.get("sha256")
    if digest is not None and (not isinstance(digest, str) or not _SHA256.fullmatch(digest.lower())):
        raise FirmwareError("'sha256' must be 64 hexadecimal digits")
    fields["sha256"] = digest.lower() if digest else None
    return fields


def firmware_view(fw):
    return {
        "id": fw.firmware_id,
        "name": fw.name,
        "version": fw.version,
        "man": fw.man,
        "model": fw.model,
        "from_fwv": fw.from_fwv,
        "url": fw.url,
        "uploaded": fw.path is not None,
        "size": fw.size,
        "sha256": fw.sha256,
    }


class FirmwareService:
    """Registering packages and handing out download URLs."""

    def __init__(self, store, config, clock):
        self.store = store
        self.config = config
        self.clock = clock

    async def register(self, meta, upload=None):
        """
        Register a package: ``upload`` is a file object holding it (read
        here, in a thread), else ``meta["url"]`` names it.  Returns the view.
        """
        fields = check_metadata(meta, upload is not None)
        firmware_id = uuid.uuid4().hex
        path = None
        if upload is not None:
            path, size, digest = await threads.deferToThread(self._save, firmware_id, upload)
            try:
                if fields["size"] is not None and fields["size"] != size:
                    raise FirmwareError("the upload has %d bytes, not the %d announced" % (size, fields["size"]),
                                        "checksum_mismatch")
                if fields["sha256"] is not None and fields["sha256"] != digest:
                    raise FirmwareError("the upload's SHA-256 is %s, not the one announced" % (digest,),
                                        "checksum_mismatch")
            except FirmwareError:
                os.unlink(path)
                raise
            fields["size"], fields["sha256"] = size, digest
        firmware = Firmware(firmware_id=firmware_id, path=path, created=self.clock.seconds(), **fields)
        await self.store.add_firmware(firmware)
        log.info("firmware {firmware_id} registered: {name} {version} ({size} bytes)", firmware_id=firmware_id,
                 name=firmware.name, version=firmware.version, size=firmware.size)
        return firmware_view(firmware)

    def _save(self, firmware_id, upload):
        directory = self.config.package_dir
        os.makedirs(directory, exist_ok=True)
        limit = self.config.max_package_size
        digest, size = hashlib.sha256(), 0
        fd, temp = tempfile.mkstemp(dir=directory, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                upload.seek(0)
                while True:
                    chunk = upload.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limit:
                        raise FirmwareError("the package is larger than %d bytes" % (limit,), "payload_too_large",
                                            413)
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise FirmwareError("the package is empty")
            path = os.path.join(directory, firmware_id + ".bin")
            os.replace(temp, path)
            return path, size, digest.hexdigest()
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise

    async def get(self, firmware_id):
        fw = await self.store.get_firmware(firmware_id) if _ID.fullmatch(firmware_id or "") else None
        return None if fw is None else firmware_view(fw)

    async def list(self):
        return [firmware_view(fw) for fw in await self.store.list_firmware()]

    async def package_url(self, firmware_id, device_id):
        """The PkgURL for one device: the external URL, or the package server's with a fresh token."""
        fw = await self.store.get_firmware(firmware_id)
        if fw is None:
            raise FirmwareError("no firmware %r" % (firmware_id,), "unknown_firmware", 404)
        if fw.path is None:
            return fw, fw.url
        if not self.config.download_enabled:
            raise FirmwareError("the package server is off ([functions] download_enabled)", "no_package_server", 409)
        token = secrets.token_urlsafe(18)
        await self.store.add_download_token(token, firmware_id, device_id,
                                            self.clock.seconds() + self.config.token_lifetime)
        url = "%s/%s?t=%s&sha256=%s" % (self.config.download_url.rstrip("/"), firmware_id, token, fw.sha256)
        return fw, url


class _PackageFile(static.File):
    """
    One package file.  A ``Range`` naming more than one range is ignored
    (the whole file, 200, as HTTP allows): a resuming device asks for one,
    and a list of overlapping ranges would otherwise make the gateway send
    the package as many times as the header repeats it.
    """

    def render(self, request):
        ranges = request.getHeader(b"range")
        if ranges is not None and len([r for r in ranges.split(b",") if r.strip()]) > 1:
            request.requestHeaders.removeHeader(b"range")
        return super().render(request)


class _Refusal(resource.Resource):
    isLeaf = True

    def __init__(self, code, text):
        super().__init__()
        self.code, self.text = code, text

    def render(self, request):
        request.setResponseCode(self.code)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return self.text.encode("utf-8") + b"\n"


class PackageResource(resource.Resource):
    """``/fw/<firmware id>?t=<token>``: one package for one device, with ranges."""

    isLeaf = True

    def __init__(self, store, clock):
        super().__init__()
        self.store = store
        self.clock = clock
        self.served = 0

    def render(self, request):
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"Allow", b"GET, HEAD")
            return _Refusal(405, "only GET and HEAD").render(request)
        parts = request.postpath
        token = (request.args.get(b"t") or [b""])[0].decode("ascii", "replace")
        if len(parts) != 1 or not _ID.fullmatch(parts[0].decode("ascii", "replace")):
            return _Refusal(404, "no such package").render(request)
        if not _TOKEN.fullmatch(token):
            return _Refusal(403, "a valid download token is required").render(request)
        d = defer.ensureDeferred(self._find(parts[0].decode("ascii"), token))
        d.addCallback(self._serve, request)
        d.addErrback(self._failed, request)
        return server.NOT_DONE_YET

    async def _find(self, firmware_id, token):
        device_id = await self.store.check_download_token(token, firmware_id, self.clock.seconds())
        if device_id is None:
            return _Refusal(403, "the download token is unknown, expired or for another package")
        fw = await self.store.get_firmware(firmware_id)
        if fw is None or fw.path is None or not os.path.isfile(fw.path):
            return _Refusal(404, "no such package")
        self.served += 1
        log.info("package {firmware_id} to {device_id}", firmware_id=firmware_id, device_id=device_id)
        return _PackageFile(fw.path, defaultType="application/octet-stream")

    def _serve(self, found, request):
        if request._disconnected:
            return
        body = found.render(request)
        if body is not server.NOT_DONE_YET:
            request.write(body)
            request.finish()

    def _failed(self, failure, request):
        log.failure("package request failed", failure)
        if not request._disconnected and not request.finished:
            request.setResponseCode(503)
            request.write(b"package server unavailable\n")
            request.finish()


class _Root(resource.Resource):
    def getChild(self, path, request):
        return _Refusal(404, "no such package")


def package_site(store, clock, read_timeout=30, max_connections_per_peer=64):
    """
    The package server's site (``/fw/...``).  Reachable without API
    credentials, so like a DM-2 listener: a request must arrive whole
    within ``read_timeout`` seconds (no slow-header hold) and one address
    holds at most ``max_connections_per_peer`` connections.
    """
    root = _Root()
    root.putChild(b"fw", PackageResource(store, clock))
    site = PeerCappedSite(root)
    site.read_timeout = read_timeout
    site.max_connections_per_peer = max_connections_per_peer
    site.displayTracebacks = False
    site.noisy = False
    return site
