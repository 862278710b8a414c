"""dmgateway.guard: lockouts per (device, address), session guesses per
address, one log line per store outage; time from a task.Clock."""

from types import SimpleNamespace

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from dmgateway.guard import PeerLockouts, StoreOutage, peer_host

AUTH = SimpleNamespace(max_failures=3, failure_window=60, lockout=100, max_session_guesses=2)


class PeerHostTests(SynchronousTestCase):
    def test_forms(self):
        self.assertEqual(peer_host("127.0.0.2:4000"), "127.0.0.2")
        self.assertEqual(peer_host("::1:4000"), "::1")
        self.assertEqual(peer_host("[::1]:4000"), "::1")
        self.assertEqual(peer_host("127.0.0.1"), "127.0.0.1")
        self.assertIsNone(peer_host(None))


class PeerLockoutTests(SynchronousTestCase):
    def test_lockout_is_per_device_and_address(self):
        guard = PeerLockouts(AUTH)
        self.assertEqual([guard.auth_failed("D", "10.0.0.2", t) for t in (1, 2, 3)], [False, False, True])
        self.assertFalse(guard.auth_failed("D", "10.0.0.2", 4))  # already locked: not again
        self.assertTrue(guard.locked("D", "10.0.0.2", 50))
        self.assertFalse(guard.locked("D", "10.0.0.1", 50))
        self.assertFalse(guard.locked("E", "10.0.0.2", 50))
        self.assertEqual(guard.lockouts("D", 50), [("10.0.0.2", 103)])
        self.assertFalse(guard.locked("D", "10.0.0.2", 103))  # over by itself

    def test_success_forgets_failures_and_clear_lifts_lockouts(self):
        guard = PeerLockouts(AUTH)
        guard.auth_failed("D", "a", 1)
        guard.auth_failed("D", "a", 2)
        guard.auth_succeeded("D", "a")
        self.assertFalse(guard.auth_failed("D", "a", 3))
        for t in (4, 5, 6):
            guard.auth_failed("D", "b", t)
        self.assertEqual(guard.clear("D"), 2)  # keys of D: a (failures) and b (locked)
        self.assertEqual(guard.lockouts("D", 7), [])

    def test_guesses_block_an_address(self):
        guard = PeerLockouts(AUTH)
        self.assertFalse(guard.guessed("x", 1))
        self.assertTrue(guard.guessed("x", 2))
        self.assertTrue(guard.guessing("x", 3))
        self.assertFalse(guard.guessing("y", 3))
        self.assertFalse(guard.guessing(None, 3))
        self.assertFalse(guard.guessing("x", 102))


class StoreOutageTests(SynchronousTestCase):
    def test_one_line_each_way(self):
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        clock = Clock()
        outage = StoreOutage(clock, 5)
        self.assertTrue(outage.failed(RuntimeError("disk full")))
        for _ in range(100):
            self.assertFalse(outage.failed(RuntimeError("disk full")))
        clock.advance(12)
        self.assertTrue(outage.ended())
        self.assertFalse(outage.ended())
        texts = [e["log_format"] for e in logged if e.get("log_namespace") == "dmgateway.guard"]
        self.assertEqual(len(texts), 2)
        ended = [e for e in logged if "available again" in e.get("log_format", "")][0]
        self.assertEqual((ended["duration"], ended["errors"]), (12, 101))
