"""Random bytes from the kernel's CSPRNG, read a block at a time.

:func:`os.urandom` makes one ``getrandom(2)`` system call per draw: two per
DM session (the RespURI token, the next nonce), each costing more in the
kernel than the draw itself.  :class:`RandomPool` reads ``block`` bytes
(4 KiB) with one call and hands them out in slices, so that ~250 draws of
16 bytes cost one system call.

Why this is as good as calling :func:`os.urandom` each time:

* the bytes *are* :func:`os.urandom`'s (the kernel CSPRNG), unchanged;
* each byte is handed out once: the block is read through a
  :class:`io.BytesIO`, whose ``read`` moves its position forward in one
  step under the GIL (a critical section on free-threaded builds), so two
  threads drawing at once get different bytes; a draw larger than what is
  left reads a new block, and the leftover is dropped, never reused;
* a child process made by ``fork`` drops the block it inherited
  (``os.register_at_fork``): parent and child never hand out the same
  bytes;
* the bytes not yet handed out stay in this process's memory until they
  are: up to one block, readable only by what could read the secrets made
  of them anyway.

Callers that need reproducible bytes (tests) inject their own source where
a ``random_bytes`` argument is taken; :data:`random_bytes` is the default.
"""

import io
import os
import weakref

__all__ = ["BLOCK", "RandomPool", "random_bytes"]

BLOCK = 4096


class RandomPool:
    """Slices of ``source(block)`` (:func:`os.urandom`), each handed out once."""

    def __init__(self, block: int = BLOCK, source=os.urandom) -> None:
        self.block = block
        self.source = source
        self._stream = io.BytesIO()
        _pools.add(self)

    def take(self, n: int) -> bytes:
        """``n`` random bytes, as ``os.urandom(n)``."""
        data = self._stream.read(n)
        if len(data) == n:
            return data
        return self._refill(n)

    def _refill(self, n):
        if not isinstance(n, int) or n < 0:
            raise ValueError("random_bytes needs a count of bytes >= 0, not %r" % (n,))
        # (what was left is dropped: fewer bytes than asked, and never handed out)
        self._stream = stream = io.BytesIO(self.source(max(self.block, n)))
        return stream.read(n)

    def _forget(self):
        self._stream = io.BytesIO()


_pools = weakref.WeakSet()


def _after_fork_in_child():
    for pool in list(_pools):
        pool._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)

#: ``random_bytes(n)``: ``n`` bytes of the process's pool (the default source of nonces and tokens)
random_bytes = RandomPool().take
