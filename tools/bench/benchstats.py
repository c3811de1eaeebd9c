"""Statistics shared by the whole-program benchmarks."""

import math
import statistics


def median_ci(xs, level=0.95):
    """The median of `xs` and a distribution-free interval for it.

    The interval is [x_(k), x_(n+1-k)] (1-based order statistics) with the
    largest k such that P(Binom(n, 1/2) < k) <= (1 - level) / 2, as for the
    sign test: it covers the median with probability >= level and needs only
    independent samples. With too few samples for that level both ends are
    NaN.
    """
    xs = sorted(xs)
    n = len(xs)
    med = statistics.median(xs)
    alpha = (1 - level) / 2
    k, cum = 0, 0.0
    while k < n:
        p = math.comb(n, k) / 2 ** n
        if cum + p > alpha:
            break
        cum += p
        k += 1
    if k == 0:
        return med, float("nan"), float("nan")
    return med, xs[k - 1], xs[n - k]
