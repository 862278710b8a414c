"""The pool of kernel CSPRNG bytes (dmgateway.auth.randompool): the source's
bytes, each handed out once, one read per block, none shared with a forked child."""

import itertools
import os
import threading

import pytest

from dmgateway.auth.randompool import BLOCK, RandomPool, random_bytes


class CountingSource:
    """Blocks of consecutive 4-byte counters: no two words alike."""

    def __init__(self):
        self.calls = []
        self._words = itertools.count()

    def __call__(self, n):
        self.calls.append(n)
        assert n % 4 == 0
        return b"".join(next(self._words).to_bytes(4, "big") for _ in range(n // 4))


def test_the_source_bytes_in_order_one_read_per_block():
    source = CountingSource()
    pool = RandomPool(block=64, source=source)
    drawn = [pool.take(16) for _ in range(8)]
    assert source.calls == [64, 64]
    assert b"".join(drawn) == b"".join(i.to_bytes(4, "big") for i in range(32))


def test_what_is_left_of_a_block_is_dropped_not_reused():
    source = CountingSource()
    pool = RandomPool(block=64, source=source)
    first = pool.take(48)
    second = pool.take(32)  # 16 bytes left: a new block, those 16 never handed out
    assert source.calls == [64, 64]
    assert first == b"".join(i.to_bytes(4, "big") for i in range(12))
    assert second == b"".join(i.to_bytes(4, "big") for i in range(16, 24))


def test_a_draw_larger_than_a_block():
    source = CountingSource()
    pool = RandomPool(block=64, source=source)
    assert len(pool.take(200)) == 200
    assert source.calls == [200]
    assert len(pool.take(4)) == 4
    assert source.calls == [200, 64]


def test_counts_as_os_urandom_takes_them():
    pool = RandomPool()
    assert pool.take(0) == b""
    with pytest.raises(ValueError):
        pool.take(-1)
    with pytest.raises((TypeError, ValueError)):
        pool.take(None)
    with pytest.raises(TypeError):
        pool.take(1.5)
    assert len(pool.take(16)) == 16  # what a refused count consumed is not handed out either


def test_the_default_pool_gives_fresh_bytes():
    draws = [random_bytes(16) for _ in range(3 * BLOCK // 16)]  # across blocks
    assert all(len(d) == 16 for d in draws)
    assert len(set(draws)) == len(draws)
    assert len(random_bytes(BLOCK + 1)) == BLOCK + 1


def test_threads_drawing_at_once_never_get_the_same_bytes():
    pool = RandomPool(block=256, source=CountingSource())
    seen = [[] for _ in range(8)]

    def draw(out):
        for _ in range(5000):
            out.append(pool.take(4))

    threads = [threading.Thread(target=draw, args=(out,)) for out in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    words = [w for out in seen for w in out]
    assert len(words) == 8 * 5000
    assert len(set(words)) == len(words)


def test_a_forked_child_does_not_hand_out_the_parents_bytes():
    pool = RandomPool()
    pool.take(16)  # a block is read: the child inherits what is left of it
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.write(write_end, pool.take(16))
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        childs = os.read(read_end, 16)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    assert len(childs) == 16
    assert pool.take(16) != childs  # (the same 16 bytes, without the fork hook)
