"""The serving daemon's garbage-collector settings (dmgateway.daemon.tune_gc)."""

import gc

from twisted.trial.unittest import SynchronousTestCase

from dmgateway.daemon import GC_THRESHOLDS, tune_gc


class TuneGCTests(SynchronousTestCase):
    def setUp(self):
        before = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *before)
        self.addCleanup(gc.unfreeze)

    def test_thresholds_set(self):
        tune_gc()
        self.assertEqual(gc.get_threshold(), GC_THRESHOLDS)
        self.assertTrue(gc.isenabled())

    def test_startup_objects_frozen(self):
        tune_gc((1000, 20, 20))
        self.assertGreater(gc.get_freeze_count(), 0)
        self.assertEqual(gc.get_threshold(), (1000, 20, 20))

    def test_cycles_still_collected(self):
        """Less often is not never: a reference cycle made after tuning goes."""
        tune_gc()

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a
        import weakref

        ref = weakref.ref(a)
        del a, b
        gc.collect()
        self.assertIsNone(ref())
