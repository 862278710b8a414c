"""bench/store_scale.py's system-call counts and warm-up (the timed runs themselves are not run here)."""

import os
import sqlite3

import pytest

from bench.store_scale import _read_every_page, io_calls


def test_io_calls_count_this_process_s_reads_and_writes(tmp_path):
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        reads, writes = io_calls()
        for offset in range(0, 4096 * 3, 4096):
            os.pwrite(fd, b"x" * 2048, offset)
        os.pread(fd, 2048, 0)
        reads_after, writes_after = io_calls()
    finally:
        os.close(fd)
    assert (reads_after - reads, writes_after - writes) == (1, 3)


def test_io_calls_do_not_count_their_own_reads():
    # (reading /proc/self/io is itself a read system call, counted from the next sample on)
    first = io_calls()
    io_calls()
    assert io_calls() == first


class _Txn:
    def __init__(self, connection):
        self.connection = connection

    def fetchall(self, sql):
        cursor = self.connection.execute(sql)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def test_the_warm_up_reads_the_whole_file_and_refuses_a_damaged_one(tmp_path):
    connection = sqlite3.connect(tmp_path / "s.sqlite")
    connection.execute("CREATE TABLE t (x)")
    connection.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(100)])
    connection.commit()
    _read_every_page(_Txn(connection))  # "ok": no exception

    class Damaged(_Txn):
        def fetchall(self, sql):
            return [{"quick_check": "*** in database main *** Page 3 is never used"}]

    with pytest.raises(RuntimeError, match="Page 3"):
        _read_every_page(Damaged(connection))
    connection.close()


def test_checkpoint_every_is_the_bench_s_own_option_and_the_store_s_interval_comes_back():
    from bench.store_scale import CHECKPOINT_EVERY, checkpoint_option
    from dmgateway.store.sqlite import ReactorConnection

    try:
        assert checkpoint_option("?mmap_size=0&checkpoint_every=800&cache_size=2000") == "?mmap_size=0&cache_size=2000"
        assert ReactorConnection.checkpoint_every == 800
        assert checkpoint_option("?checkpoint_every=50") == ""
        assert ReactorConnection.checkpoint_every == 50
        # a setting without it measures the store's own interval again
        assert checkpoint_option("") == ""
        assert ReactorConnection.checkpoint_every == CHECKPOINT_EVERY
    finally:
        ReactorConnection.checkpoint_every = CHECKPOINT_EVERY
