"""The live sessions' deadlines on one timer (dmgateway.deadlines), against a
``callLater`` per session as the dispatcher had it: the same sessions expire
at the same moments."""

import random

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from dmgateway.deadlines import SLACK, SessionDeadlines


class Owner:
    def __init__(self, name):
        self.name = name
        self.timer = None

    def __repr__(self):
        return "Owner(%r)" % (self.name,)


class PerOwnerTimers:
    """The old way: a DelayedCall per owner, reset when armed again."""

    def __init__(self, clock, expire):
        self.clock, self.expire = clock, expire

    def arm(self, owner, timeout):
        if owner.timer is not None and owner.timer.active():
            owner.timer.reset(timeout)
        else:
            owner.timer = self.clock.callLater(timeout, self.expire, owner)

    def cancel(self, owner):
        if owner.timer is not None and owner.timer.active():
            owner.timer.cancel()


def expiries(make, script):
    """(time, owner name) of each expiry when ``script`` runs on ``make(clock, expire)``."""
    clock = task.Clock()
    seen = []
    timers = make(clock, lambda owner: seen.append((clock.seconds(), owner.name)))
    owners = {}
    for step, name, timeout in script:
        clock.advance(step)
        owner = owners.setdefault(name, Owner(name))
        if timeout is None:
            timers.cancel(owner)
        else:
            timers.arm(owner, timeout)
    clock.advance(10 ** 6)
    return seen


class SessionDeadlinesTests(SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.expired = []
        self.deadlines = SessionDeadlines(self.clock, self.expire)

    def expire(self, owner):
        self.expired.append((self.clock.seconds(), owner.name))

    def test_expires_exactly_at_the_timeout(self):
        a = Owner("a")
        self.deadlines.arm(a, 60)
        self.assertTrue(a.timer.active())
        self.clock.advance(59.999)
        self.assertEqual(self.expired, [])
        self.clock.advance(0.001)
        self.assertEqual(self.expired, [(60.0, "a")])
        self.assertIsNone(a.timer)
        self.assertEqual(len(self.deadlines), 0)

    def test_arming_again_moves_the_deadline(self):
        a = Owner("a")
        self.deadlines.arm(a, 60)
        self.clock.advance(50)
        first = a.timer
        self.deadlines.arm(a, 60)
        self.assertFalse(first.active())
        self.clock.advance(59)
        self.assertEqual(self.expired, [])
        self.clock.advance(1)
        self.assertEqual(self.expired, [(110.0, "a")])
        self.clock.advance(1000)
        self.assertEqual(self.expired, [(110.0, "a")])  # once: the stale entry did nothing

    def test_cancelled_before_its_deadline_never_expires(self):
        a, b = Owner("a"), Owner("b")
        self.deadlines.arm(a, 60)
        self.deadlines.arm(b, 60)
        self.deadlines.cancel(a)
        self.deadlines.cancel(a)  # twice: nothing more
        self.assertEqual(len(self.deadlines), 1)
        self.clock.advance(60)
        self.clock.advance(100)
        self.assertEqual(self.expired, [(60.0, "b")])

    def test_one_timer_for_many_sessions(self):
        owners = [Owner(i) for i in range(1000)]
        for owner in owners:
            self.deadlines.arm(owner, 300)
            self.clock.advance(0.01)
            self.deadlines.arm(owner, 300)  # its next message
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(300 - self.clock.seconds())
        for i, owner in enumerate(owners):  # each 300 s after its last message, in turn
            due = owner.timer.when
            self.clock.advance(due - self.clock.seconds())
            self.assertEqual(self.expired[i:], [(due, i)])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_same_moments_as_a_timer_per_session(self):
        rng = random.Random(16)
        for _ in range(50):
            script = []
            for _ in range(rng.randrange(1, 200)):
                step = rng.choice((0, 0, 0.5, 1, 7.25, 30, 59, 60, 61, rng.random() * 90))
                timeout = None if rng.random() < 0.2 else 60
                script.append((step, rng.randrange(12), timeout))
            self.assertEqual(sorted(expiries(SessionDeadlines, script)),
                             sorted(expiries(PerOwnerTimers, script)), script)

    def test_a_shorter_timeout_keeps_exact_deadlines(self):
        # [gateway] session_timeout changes only with a restart; were it to
        # change while running, a deadline earlier than the last one set
        # still comes first
        rng = random.Random(7)
        for _ in range(50):
            script = [(rng.choice((0, 1, 5, 33.5)), rng.randrange(8), rng.choice((None, 10, 60, 300)))
                      for _ in range(rng.randrange(1, 80))]
            self.assertEqual(sorted(expiries(SessionDeadlines, script)),
                             sorted(expiries(PerOwnerTimers, script)), script)

    def test_a_shorter_deadline_fires_before_the_pending_timer(self):
        a, b = Owner("a"), Owner("b")
        self.deadlines.arm(a, 300)
        self.deadlines.arm(b, 10)
        self.clock.advance(10)
        self.assertEqual(self.expired, [(10.0, "b")])
        self.clock.advance(290)
        self.assertEqual(self.expired, [(10.0, "b"), (300.0, "a")])

    def test_the_timer_is_never_late_by_a_rounding_error(self):
        # the timer is set as a delay from now: set at ``early`` for ``late``,
        # early + (late - early) rounds (a tie, to even) one ulp past ``late``
        early, late = 3 * 2.0 ** -48, 32 + 5 * 2.0 ** -47
        self.assertGreater(early + (late - early), late)
        a, b = Owner("a"), Owner("b")
        self.deadlines.arm(b, late)
        self.deadlines.arm(a, early)  # (a shorter timeout: put first)
        self.clock.advance(early)
        self.assertEqual(self.expired, [(early, "a")])
        self.clock.rightNow = late  # b's own DelayedCall would fire now
        self.clock.advance(0)
        self.assertEqual(self.expired, [(early, "a"), (late, "b")])

    def test_a_flood_of_short_sessions_does_not_grow_the_queue(self):
        silent = Owner("silent")
        self.deadlines.arm(silent, 300)
        for i in range(100000):
            owner = Owner(i)
            self.deadlines.arm(owner, 300)  # package 1
            self.assertLessEqual(len(self.deadlines._queue), 2 * len(self.deadlines) + SLACK)
            self.clock.advance(0.001)
            self.deadlines.arm(owner, 300)  # package 3
            self.assertLessEqual(len(self.deadlines._queue), 2 * len(self.deadlines) + SLACK)
            self.deadlines.cancel(owner)  # the session ends
        self.assertEqual(len(self.deadlines), 1)
        self.assertLessEqual(len(self.deadlines._queue), SLACK + 3)
        self.clock.advance(299 - self.clock.seconds())
        self.assertEqual(self.expired, [])
        self.clock.advance(1)
        self.assertEqual(self.expired, [(300.0, "silent")])
        self.assertEqual(len(self.deadlines._queue), 0)

    def test_many_live_sessions_keep_the_queue_bounded(self):
        owners = [Owner(i) for i in range(500)]
        for round_ in range(20):  # every live session sends a message, in turn
            for owner in owners:
                self.deadlines.arm(owner, 300)
                self.assertLessEqual(len(self.deadlines._queue), 2 * 500 + SLACK)
            self.clock.advance(1)
        self.clock.advance(299)
        self.assertEqual(len(self.expired), 500)
        self.assertEqual({when for when, _ in self.expired}, {19.0 + 300})

    def test_stop_forgets_every_deadline_and_the_timer(self):
        a, b = Owner("a"), Owner("b")
        self.deadlines.arm(a, 60)
        self.deadlines.arm(b, 60)
        self.deadlines.stop()
        self.assertEqual((a.timer, b.timer, len(self.deadlines)), (None, None, 0))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertEqual(self.expired, [])

    def test_the_timer_left_after_the_last_session_fires_once_for_nothing(self):
        a = Owner("a")
        self.deadlines.arm(a, 60)
        self.deadlines.cancel(a)
        self.clock.advance(60)
        self.assertEqual((self.expired, self.clock.getDelayedCalls()), ([], []))

    def test_expiring_one_session_may_arm_or_end_others(self):
        a, b, c = Owner("a"), Owner("b"), Owner("c")

        def expire(owner):
            self.expired.append((self.clock.seconds(), owner.name))
            if owner is a:
                self.deadlines.cancel(b)  # due at the same moment: no longer
                self.deadlines.arm(c, 5)

        self.deadlines.expire = expire
        self.deadlines.arm(a, 60)
        self.deadlines.arm(b, 60)
        self.clock.advance(60)
        self.clock.advance(5)
        # b was due with a, but ended first: as if a's expiry had cancelled its DelayedCall
        self.assertEqual(self.expired, [(60.0, "a"), (65.0, "c")])
        self.assertEqual(len(self.deadlines), 0)

    def test_a_failing_expiry_does_not_stop_the_others(self):
        a, b = Owner("a"), Owner("b")

        def expire(owner):
            if owner is a:
                raise RuntimeError("boom")
            self.expired.append((self.clock.seconds(), owner.name))

        self.deadlines.expire = expire
        self.deadlines.arm(a, 60)
        self.deadlines.arm(b, 60)
        self.clock.advance(60)
        self.assertEqual(self.expired, [(60.0, "b")])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
