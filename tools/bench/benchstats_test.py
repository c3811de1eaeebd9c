#!/usr/bin/python3
"""Tests of benchstats.median_ci, the interval every paired benchmark reports."""

import math
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchstats import median_ci  # noqa: E402


class MedianCiTest(unittest.TestCase):
    def test_ranks_match_the_binomial_table(self):
        # Sign-test tables: for n = 30 the 95% interval of the median is
        # [x_(10), x_(21)]; for n = 25, [x_(8), x_(18)]; for n = 10, [x_(2), x_(9)].
        for n, lo, hi in ((30, 10, 21), (25, 8, 18), (10, 2, 9)):
            xs = list(range(1, n + 1))
            random.Random(n).shuffle(xs)
            med, a, b = median_ci(xs)
            self.assertEqual((a, b), (lo, hi), n)
            self.assertEqual(med, (n + 1) / 2)

    def test_too_few_samples_give_no_interval(self):
        # Five samples: even [min, max] covers the median with only 93.75%.
        med, a, b = median_ci([5, 1, 4, 2, 3])
        self.assertEqual(med, 3)
        self.assertTrue(math.isnan(a) and math.isnan(b))

    def test_coverage_is_at_least_the_level(self):
        # Samples of a distribution whose median is 0: the interval misses
        # it in at most about 5% of 2000 trials.
        rng = random.Random(7)
        misses = 0
        for _ in range(2000):
            med, a, b = median_ci([rng.gauss(0, 1) for _ in range(20)])
            misses += not (a <= 0 <= b)
        self.assertLessEqual(misses, 2000 * 0.05 + 30)
        self.assertGreater(misses, 0)


if __name__ == "__main__":
    unittest.main()
