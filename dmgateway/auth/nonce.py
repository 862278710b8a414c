"""Nonces: made from an injected random source, carried as base64 text.

The formulas use the *raw* nonce bytes; ``Chal/Meta/NextNonce`` carries them
base64-encoded (dm-security §2.4).  Decode before use, store the bytes.
"""

import base64
from typing import Callable

from .credentials import AuthError, b64decode_tolerant

__all__ = [
    "DEFAULT_NONCE_SIZE",
    "RESYNC_NONCES",
    "RESYNC_NONCE_TEXT",
    "RESYNC_NONCE_ZEROS",
    "decode_nonce",
    "encode_nonce",
    "new_nonce",
]

DEFAULT_NONCE_SIZE = 16  # 128 bits, the spec's SHOULD

# The "special nonce 0x00000000" of notification resynchronisation.  Whether
# the spec means four zero bytes or the ASCII text (libdmclient) is
# unconfirmed: callers pick one by configuration, clients try both.
RESYNC_NONCE_TEXT = b"0x00000000"
RESYNC_NONCE_ZEROS = b"\x00\x00\x00\x00"
RESYNC_NONCES = (RESYNC_NONCE_TEXT, RESYNC_NONCE_ZEROS)


def new_nonce(random_bytes: Callable[[int], bytes], size: int = DEFAULT_NONCE_SIZE) -> bytes:
    """A fresh nonce of ``size`` bytes from ``random_bytes(size)``.

    ``random_bytes`` is e.g. :func:`os.urandom` in production and a seeded
    generator in tests.  Raises ``ValueError`` if the source misbehaves.
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError("nonce size must be a positive integer")
    nonce = random_bytes(size)
    if not isinstance(nonce, (bytes, bytearray)) or len(nonce) != size:
        raise ValueError("random source did not return %d bytes" % (size,))
    return bytes(nonce)


def encode_nonce(nonce: bytes) -> str:
    """The NextNonce text for raw ``nonce`` bytes (standard base64, padded)."""
    return base64.b64encode(bytes(nonce)).decode("ascii")


def decode_nonce(text: str | bytes) -> bytes:
    """Raw nonce bytes from NextNonce text.

    Whitespace and missing padding are tolerated; anything else that is not
    base64 raises :class:`~.credentials.AuthError`.
    """
    if text is None:
        raise AuthError("no nonce")
    return b64decode_tolerant(text)
