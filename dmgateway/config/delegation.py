"""The ``delegation.ini`` sections: ``[delegation]`` and its ``[peer:NAME]`` peers.

Each class has ``read(reader, ...)`` which asks a
:class:`~dmgateway.config.reader.SectionReader` for each key with its type,
range and default (the defaults are the values of the shipped ``conf/``
files).  Secrets are left out of ``repr()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dmgateway.config import checks
from dmgateway.config.reader import SectionReader
from dmgateway.config.values import check_psk_support, secret_file, url_path


@dataclass(frozen=True)
class DelegationPeer:
    """A DM server this gateway delegates devices to or accepts them from.

    ``server_id`` names it (``peers`` and ``[peer:SERVERID]``); ``url`` is
    its delegation resource.  ``psk_identity`` is the identity the peer
    presents to our listener and ``psk_file`` the key shared with it (both
    directions; empty: ``[delegation] psk_file``).  ``certificate`` is the
    peer's pinned certificate (PEM; empty: ``[delegation] peer_ca``).
    """

    server_id: str
    url: str
    psk_identity: str = ""
    psk_file: str = ""
    certificate: str = ""


@dataclass(frozen=True)
class DelegationConfig:
    """``delegation.ini [delegation]``: DM-6 server-to-server delegation over TLS."""

    enabled: bool = False
    endpoint: str = ("ssl:8444:interface=127.0.0.1:privateKey=/etc/dmgateway/key.pem"
                     ":certKey=/etc/dmgateway/cert.pem")
    path: str = "/dm-delegation"
    psk_identity: str = ""
    psk_file: str = ""
    peers: tuple[DelegationPeer, ...] = ()
    peer_ca: str = ""
    timeout: float = 30.0
    check_interval: float = 60.0

    @classmethod
    def read(cls, r: SectionReader, peer_sections=()) -> DelegationConfig:
        r.active = r.boolean("enabled", False)
        psk_identity = r.text("psk_identity", validate=_psk_identity)
        urls = {}
        for word in r.words("peers", validate=_peer):
            server_id, url = word.split("=", 1)
            if server_id in urls:
                r.problem("peers", "peer %r listed twice" % (server_id,))
            else:
                urls[server_id] = url
        peers = {server_id: DelegationPeer(server_id, url) for server_id, url in urls.items()}
        for name, reader in peer_sections:
            reader.active = r.active
            url = reader.text("url", urls.get(name, ""), validate=_https_url)
            if not url and r.active:
                reader.problem("url", "no URL for peer %r (here or in [delegation] peers)"
                               % (name,))
            peer_identity = reader.text("psk_identity", validate=_psk_identity)
            peers[name] = DelegationPeer(
                server_id=name,
                url=url,
                psk_identity=peer_identity,
                psk_file=_psk_file(reader, "psk_file"),
                certificate=reader.readable_file("certificate"),
            )
            reader.finish()
        psk_file = _psk_file(r, "psk_file", required=bool(psk_identity))
        config = cls(
            enabled=r.active,
            endpoint=r.endpoint("endpoint", cls.endpoint, kinds=("ssl", "tls")),
            path=r.text("path", cls.path, empty_ok=False, validate=url_path),
            psk_identity=psk_identity,
            psk_file=psk_file,
            peers=tuple(peers.values()),
            peer_ca=r.readable_file("peer_ca"),
            timeout=r.number("timeout", 30.0, 0.1, 600),
            check_interval=r.number("check_interval", 60.0, 0.1, 3600),
        )
        if r.active and psk_identity:
            check_psk_support(r, "psk_identity")
            identities = [p.psk_identity for p in config.peers if p.psk_identity]
            if len(set(identities)) != len(identities):
                r.problem("psk_identity", "two peers use the same psk_identity")
        if r.active and not psk_identity:
            for peer in config.peers:
                if not (peer.certificate or config.peer_ca):
                    r.problem("peer_ca", "peer %r has no pinned certificate and peer_ca is "
                              "empty: with certificates, every peer must be pinned"
                              % (peer.server_id,))
        return config

    @property
    def uses_psk(self) -> bool:
        return bool(self.psk_identity)

    def peer(self, server_id: str) -> DelegationPeer | None:
        for peer in self.peers:
            if peer.server_id == server_id:
                return peer
        return None


def _psk_identity(value: str) -> str | None:
    if len(value.encode("utf-8")) > 128 or not value.isprintable():
        return "bad PSK identity %r (printable, at most 128 bytes)" % (value,)
    return None


def _https_url(value: str) -> list[str] | str | None:
    return checks.check_http_url(value, https_only=True)


def _psk_file(reader: SectionReader, key: str, *, required: bool = False) -> str:
    """A file holding a PSK in hex (as ``openssl -psk`` takes it)."""
    path = secret_file(reader, key, required=required)
    if path and reader.active and checks.check_readable_file(path) is None:
        try:
            with open(path, "rb") as f:
                text = f.read(4096).decode("ascii").strip()
            if text[:2].lower() == "0x":
                text = text[2:]
            key_bytes = bytes.fromhex(text)
            if not 16 <= len(key_bytes) <= 256:
                reader.problem(key, "the key in %r must be 16 to 256 bytes" % (path,))
        except (OSError, UnicodeDecodeError, ValueError):
            reader.problem(key, "%r must hold the key as hex digits" % (path,))
    return path


def _peer(word: str) -> list[str] | str | None:
    server_id, sep, url = word.partition("=")
    if not sep or not server_id:
        return "bad peer %r (expected SERVERID=https://host/path)" % (word,)
    return checks.check_http_url(url, https_only=True)
