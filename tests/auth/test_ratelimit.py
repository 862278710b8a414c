"""Tests for dmgateway.auth.ratelimit.FailureLimiter (times are injected)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmgateway.auth.ratelimit import FailureLimiter

KEY = "IMEI:490154203237518"


def test_locks_out_after_max_failures_in_window():
    limiter = FailureLimiter(max_failures=3, window=60.0, lockout=600.0)
    assert limiter.failure(KEY, 0.0) is False
    assert limiter.failure(KEY, 10.0) is False
    assert not limiter.blocked(KEY, 10.0)
    assert limiter.failure(KEY, 20.0) is True
    assert limiter.blocked(KEY, 20.0)
    assert limiter.blocked(KEY, 619.9)
    assert not limiter.blocked(KEY, 620.0)


def test_defaults():
    limiter = FailureLimiter()
    assert (limiter.max_failures, limiter.window, limiter.lockout) == (5, 300.0, 900.0)
    results = [limiter.failure(KEY, t) for t in (0.0, 1.0, 2.0, 3.0, 4.0)]
    assert results == [False, False, False, False, True]
    assert limiter.blocked(KEY, 903.9)
    assert not limiter.blocked(KEY, 904.0)


def test_failures_outside_the_window_do_not_count():
    limiter = FailureLimiter(max_failures=3, window=60.0, lockout=600.0)
    assert not limiter.failure(KEY, 0.0)
    assert not limiter.failure(KEY, 30.0)
    assert not limiter.failure(KEY, 61.0)  # the one at 0 has left the window
    assert limiter.failures(KEY, 61.0) == 2
    assert limiter.failure(KEY, 62.0)


def test_failures_while_locked_do_not_extend_the_lockout():
    limiter = FailureLimiter(max_failures=2, window=60.0, lockout=100.0)
    limiter.failure(KEY, 0.0)
    assert limiter.failure(KEY, 1.0)
    assert limiter.failure(KEY, 50.0) is True
    assert limiter.failure(KEY, 100.0) is True
    assert not limiter.blocked(KEY, 101.0)


def test_after_lockout_counting_starts_over():
    limiter = FailureLimiter(max_failures=2, window=60.0, lockout=100.0)
    limiter.failure(KEY, 0.0)
    limiter.failure(KEY, 1.0)
    assert limiter.failure(KEY, 101.0) is False
    assert limiter.failure(KEY, 102.0) is True


def test_success_forgets_the_key():
    limiter = FailureLimiter(max_failures=3, window=60.0, lockout=600.0)
    limiter.failure(KEY, 0.0)
    limiter.failure(KEY, 1.0)
    limiter.success(KEY)
    assert KEY not in limiter
    assert limiter.failure(KEY, 2.0) is False
    limiter.success("never seen")  # no error


def test_keys_are_independent():
    limiter = FailureLimiter(max_failures=2, window=60.0, lockout=600.0)
    limiter.failure("a", 0.0)
    assert limiter.failure("a", 1.0)
    assert not limiter.blocked("b", 1.0)
    assert not limiter.failure("b", 1.0)


def test_expired_keys_are_forgotten():
    limiter = FailureLimiter(max_failures=3, window=60.0, lockout=600.0)
    for i in range(100):
        limiter.failure("key%d" % i, float(i))
    # at t=99 the failures at t<=39 have left the 60 s window
    assert len(limiter) == 60
    assert "key39" not in limiter and "key40" in limiter
    limiter.blocked("other", 1000.0)
    assert len(limiter) == 0


def test_locked_keys_are_kept_until_the_lockout_ends():
    limiter = FailureLimiter(max_failures=1, window=10.0, lockout=100.0)
    assert limiter.failure(KEY, 0.0)
    limiter.failure("other", 50.0)
    assert KEY in limiter
    assert limiter.blocked(KEY, 99.0)
    limiter.failure("third", 200.0)
    assert KEY not in limiter


def test_number_of_keys_is_capped_dropping_the_oldest():
    limiter = FailureLimiter(max_failures=5, window=1000.0, lockout=10.0, max_keys=3)
    for i, key in enumerate("abcd"):
        limiter.failure(key, float(i))
    assert len(limiter) == 3
    assert "a" not in limiter
    assert all(key in limiter for key in "bcd")
    limiter.failure("b", 5.0)  # b becomes the most recent
    limiter.failure("e", 6.0)
    assert "c" not in limiter and "b" in limiter


def test_zero_lockout_never_blocks():
    limiter = FailureLimiter(max_failures=1, window=10.0, lockout=0.0)
    assert limiter.failure(KEY, 0.0) is False
    assert not limiter.blocked(KEY, 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_failures": 0}, {"window": 0}, {"lockout": -1}, {"max_keys": 0}],
)
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        FailureLimiter(**kwargs)


@settings(database=None, max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["failure", "blocked", "success"]),
            st.integers(min_value=0, max_value=20),
            st.floats(min_value=0, max_value=50, allow_nan=False),
        ),
        max_size=200,
    )
)
def test_memory_stays_bounded_and_state_is_consistent(ops):
    limiter = FailureLimiter(max_failures=3, window=30.0, lockout=60.0, max_keys=8)
    now = 0.0
    for op, key, step in ops:
        now += step
        if op == "failure":
            locked = limiter.failure(key, now)
            assert locked == limiter.blocked(key, now)
        elif op == "blocked":
            limiter.blocked(key, now)
        else:
            limiter.success(key)
            assert not limiter.blocked(key, now)
        assert len(limiter) <= 8
