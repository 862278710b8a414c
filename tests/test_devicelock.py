"""The device's lock: first come, first served, and its hand-over flat."""

import sys

from twisted.internet import defer

from dmgateway.devicelock import DeviceLock


def test_waiters_take_it_in_order_and_a_new_one_queues_behind():
    lock, order = DeviceLock(), []
    lock.acquire()
    for name in "abc":
        lock.acquire().addCallback(lambda _, name=name: order.append(name))
    lock.release()  # a holds it: b and c wait
    lock.acquire().addCallback(lambda _: order.append("d"))
    assert order == ["a"] and lock.locked and len(lock.waiting) == 3
    for _ in range(3):
        lock.release()
    assert order == ["a", "b", "c", "d"] and lock.locked and not lock.waiting
    lock.release()
    assert not lock.locked


def test_waiters_that_release_at_once_do_not_nest():
    lock, depths = DeviceLock(), []

    def held(_):
        depths.append(len(_stack()))
        lock.release()  # (its work done at once: an inline store)

    lock.acquire()
    count = sys.getrecursionlimit() * 2
    for _ in range(count):
        lock.acquire().addCallback(held)
    lock.release()
    assert len(depths) == count and max(depths) == min(depths)
    assert not lock.locked and not lock.waiting


def test_a_cancelled_waiter_is_skipped():
    lock, order = DeviceLock(), []
    lock.acquire()
    gone = lock.acquire()
    gone.addErrback(lambda f: f.trap(defer.CancelledError))
    lock.acquire().addCallback(lambda _: order.append("kept"))
    gone.cancel()
    lock.release()
    assert order == ["kept"] and lock.locked and not lock.waiting


def _stack():
    frames, frame = [], sys._getframe()
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return frames
