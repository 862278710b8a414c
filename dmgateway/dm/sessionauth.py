"""Session-level authentication rules, both directions (dm-security §2).

:class:`ClientAuth` decides, message by message, whether the device is
authenticated, what goes in the Status for its SyncHdr (212/200/401/407 and
the ``Chal``) and when to rotate the client nonce.  :class:`ServerAuth` puts
our credentials in the reply headers until the device accepts them, follows
the device's challenges and signs replies when HMAC is in use.  The formulas
themselves are in :mod:`dmgateway.auth`.
"""

from dataclasses import dataclass, field
from typing import List, Optional

from ..auth.credentials import AuthError
from ..auth.nonce import DEFAULT_NONCE_SIZE, new_nonce
from ..auth.verify import challenge, parse_challenge, server_cred, server_hmac_header, verify_client
from ..codec.syncml import Chal
from . import status as st
from .effects import Authenticated, AuthFailed, DeviceChallenged, InputIgnored, NoncesChanged

_CHALLENGEABLE = ("basic", "md5", "hmac")


def _scheme(account):
    return (account.scheme or "").strip().lower()


@dataclass
class ClientCheck:
    """The verdict on one client message."""

    ok: bool
    status: int  # for the Status of the client's SyncHdr
    chal: Optional[Chal]
    effects: List = field(default_factory=list)
    exhausted: bool = False  # too many failures: end the session


class ClientAuth:
    """Is the device who it claims to be?

    * basic/md5/none: checked until the first success (212); later messages
      need nothing (their SyncHdr Status is 200).  md5 gets a fresh NextNonce
      with the 212, for the next session.
    * hmac: every message is checked (200) and gets a new NextNonce.
    * Failure: 407 (missing) or 401 (wrong) with a ``Chal`` carrying a fresh
      nonce, so a replayed digest can never pass; after ``max_attempts``
      failures the session ends.
    """

    def __init__(self, device, random_bytes, max_attempts, *, nonce_size=DEFAULT_NONCE_SIZE,
                 accept_hex_mac=False):
        self.device = device
        self.random_bytes = random_bytes
        self.max_attempts = max_attempts
        self.nonce_size = nonce_size  # bytes of each client nonce we issue
        self.accept_hex_mac = accept_hex_mac  # base64 of the hex MD5 text as an HMAC too
        self.scheme = _scheme(device.client)
        self.authenticated = False  # for the whole session (212)
        self.ever_authenticated = False
        self.failures = 0

    def check(self, hdr, body, hmac_header):
        if self.authenticated and self.scheme != "hmac":
            return ClientCheck(True, st.OK, None)
        verdict = verify_client(
            self.device.client,
            self.device.client_nonce,
            cred=hdr.cred,
            loc_name=hdr.source.loc_name if hdr.source is not None else None,
            hmac_header=hmac_header,
            body=body,
            accept_hex_mac=self.accept_hex_mac,
        )
        effects = []
        if verdict.ok:
            if not self.ever_authenticated:
                effects.append(Authenticated(self.scheme))
            self.ever_authenticated = True
            chal = None
            if self.scheme in ("md5", "hmac"):
                chal = challenge(self.scheme, self._rotate(effects))
            if self.scheme != "hmac":
                self.authenticated = True
            # 212 says "your credentials are accepted": a device of an account
            # without client authentication (TLS client certificate, HTTP
            # layer) sent none, so it gets a plain 200
            code = st.OK if self.scheme == "none" else verdict.status
            return ClientCheck(True, code, chal, effects)
        self.failures += 1
        effects.append(AuthFailed(verdict.status, verdict.reason))
        nonce = self._rotate(effects)
        chal = challenge(self.scheme, nonce) if self.scheme in _CHALLENGEABLE else None
        return ClientCheck(
            False, verdict.status, chal, effects, exhausted=self.failures >= self.max_attempts
        )

    def _rotate(self, effects):
        nonce = new_nonce(self.random_bytes, self.nonce_size)
        self.device.client_nonce = nonce
        effects.append(NoncesChanged(client_nonce=nonce))
        return nonce


class ServerAuth:
    """Are we who we claim to be, in the device's eyes?

    ``accepted`` turns true when the device answers our SyncHdr with 212;
    until then every reply carries our ``Cred`` (basic/md5).  With hmac every
    reply is signed instead.  A nonce the device hands out is used at once
    but persisted only when the device itself is authenticated.
    """

    def __init__(self, device, max_attempts):
        self.device = device
        self.max_attempts = max_attempts
        self.scheme = _scheme(device.server)
        self.accepted = self.scheme in ("none", "hmac")
        self.failures = 0
        self._unpersisted = False
        self._challenges_told = set()  # schemes of device challenges we cannot answer
        self._cred = None  # (server nonce, the Cred made with it): a digest per nonce, not per message

    @property
    def signs(self):
        return self.scheme == "hmac"

    def header_cred(self):
        """``(Cred or None, LocName or None)`` for our next SyncHdr."""
        if self.scheme == "hmac":
            return None, self.device.server.name
        if self.accepted:
            return None, None
        nonce = self.device.server_nonce
        if self._cred is None or self._cred[0] != nonce:
            self._cred = (nonce, server_cred(self.device.server, nonce))
        return self._cred[1], self.device.server.name if self.scheme == "md5" else None

    def sign(self, body):
        return server_hmac_header(self.device.server, self.device.server_nonce, body)

    def on_status(self, status, device_authenticated):
        """Take the device's Status for one of our SyncHdrs.

        Returns ``(verdict, effects)``; verdict is "ok", "rejected" (resend
        what that message carried, with new credentials) or "give_up".
        """
        effects = self.adopt_nonce(status, device_authenticated)
        code = status.data
        if code == st.AUTHENTICATED and self.scheme != "hmac":
            self.accepted = True
        if not st.is_auth_challenge(code):
            return "ok", effects
        if self.scheme in ("basic", "md5"):
            self.accepted = False  # send credentials again
        self.failures += 1
        if self.scheme == "none" or self.failures >= self.max_attempts:
            return "give_up", effects
        return "rejected", effects

    def adopt_nonce(self, status, device_authenticated):
        """Use the NextNonce of the device's Chal for our next credentials.

        It is persisted (NoncesChanged) only if the device is authenticated;
        otherwise it waits for :meth:`on_device_authenticated`.
        """
        if status.chal is None:
            return []
        try:
            scheme, nonce = parse_challenge(status.chal)
        except AuthError as error:
            return [InputIgnored("device NextNonce not usable: %s" % (error,))]
        if scheme != self.scheme:  # reported only from a device that proved who it is
            return self._unanswerable(status, scheme) if device_authenticated else []
        if nonce is None:
            return []
        self.device.server_nonce = nonce
        if device_authenticated:
            return [NoncesChanged(server_nonce=nonce)]
        self._unpersisted = True
        return []

    def _unanswerable(self, status, scheme):
        """A Chal for a scheme we hold no server credentials of: said once
        per scheme and session (its nonce is of no use to us)."""
        meta = status.chal.meta
        name = scheme or ((meta.type if meta is not None else None) or "unknown")
        name = str(name).strip()[:64]
        if name in self._challenges_told:
            return []
        self._challenges_told.add(name)
        return [
            DeviceChallenged(name, status.data),
            InputIgnored("device challenged us with %s; the account has %s server credentials" % (
                name, self.scheme or "no")),
        ]

    def on_device_authenticated(self):
        """Persist a server nonce the device handed out before it was authenticated."""
        if not self._unpersisted:
            return []
        self._unpersisted = False
        return [NoncesChanged(server_nonce=self.device.server_nonce)]
