"""What a tuning budget bought: expected validation performance and tunability.

Expected validation performance (Dodge et al. 2019, "Show your work"): of a study's N
observed trial scores, the expected best validation score of k trials drawn *without
replacement*, for k = 1..N, computed exactly from the sorted scores. With the scores sorted
from worst to best, v_(1) <= ... <= v_(N), the best of a k-subset is v_(i) with probability

    P(i) = C(i - 1, k - 1) / C(N, k)        (i = k..N; the other k - 1 are below i)

so E[max] = sum_i P(i) v_(i) and Var[max] = sum_i P(i) v_(i)^2 - E[max]^2. Ties need no care:
tied scores have the same value whichever of them is "the" maximum. A trial that failed or
diverged (score NaN or infinite) counts as the *worst finite score of the study*: it cost a
trial of the budget and bought nothing better than the worst configuration that trained. A
study with no finite score has NaN everywhere.

Tunability (Probst, Boulesteix and Bischl 2019): how much the tuned configuration gains over
the regularizer's first default strength at the protocol's learning rate, in validation
(mean over the final seeds minus mean over the baseline seeds) and in test (paired by seed,
with a Student-t interval and a paired t-test). Gains are signed so that positive is better
for the metric (accuracy up, RMSE down).

Pure numpy/scipy: no pandas, no plotting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

CONFIDENCE = 0.95
# Up to this many trials the probabilities are exact integer ratios (correctly rounded);
# beyond it they come from log-gamma (relative error ~1e-13), which is fast for any N.
EXACT_MAX_N = 400


def _oriented(values: Sequence[float] | np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Scores sorted from worst to best with larger = better (negated when lower is better);
    NaN/inf replaced by the worst finite score. Empty when nothing is finite."""
    v = np.asarray(values, dtype=float).ravel()
    if not higher_is_better:
        v = -v
    finite = np.isfinite(v)
    if not finite.any():
        return np.array([], dtype=float)
    v = np.where(finite, v, v[finite].min())
    return np.sort(v, kind="stable")


def max_probabilities(n: int, k: int) -> np.ndarray:
    """P(the best of a k-subset of n is the i-th worst), i = 1..n (zeros below i = k)."""
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and n={n}")
    if n <= EXACT_MAX_N:
        total = math.comb(n, k)
        return np.array([math.comb(i - 1, k - 1) / total for i in range(1, n + 1)])
    i = np.arange(1, n + 1, dtype=float)
    out = np.zeros(n)
    ok = i >= k
    log_p = (special.gammaln(i[ok]) - special.gammaln(k) - special.gammaln(i[ok] - k + 1)
             - (special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)))
    out[ok] = np.exp(log_p)
    return out


def expected_max(values: Sequence[float] | np.ndarray, k: int,
                 higher_is_better: bool = True) -> tuple[float, float]:
    """(expected best score, its standard deviation) of k of the N `values` drawn without
    replacement. "Best" is the largest when `higher_is_better`, else the smallest; NaN/inf
    values count as the worst finite one. (NaN, NaN) when no value is finite; ValueError
    when k is not in 1..N."""
    v = _oriented(values, higher_is_better)
    n = len(np.asarray(values, dtype=float).ravel())
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the number of trials ({n})")
    if not len(v):
        return math.nan, math.nan
    p = max_probabilities(n, k)
    mean = float(p @ v)
    var = float(p @ (v - mean) ** 2)
    sign = 1.0 if higher_is_better else -1.0
    return sign * mean, math.sqrt(max(var, 0.0))


def expected_max_curve(values: Sequence[float] | np.ndarray, higher_is_better: bool = True
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k, expected best, sd) for k = 1..N: the expected validation performance curve."""
    n = len(np.asarray(values, dtype=float).ravel())
    ks = np.arange(1, n + 1)
    pairs = [expected_max(values, int(k), higher_is_better) for k in ks]
    means = np.array([m for m, _ in pairs], dtype=float)
    sds = np.array([s for _, s in pairs], dtype=float)
    return ks, means, sds


def budgets(n: int) -> list[int]:
    """The budgets of a rank-vs-budget plot: 1, 2, 4, ... up to n, and n itself."""
    out, k = [], 1
    while k < n:
        out.append(k)
        k *= 2
    return [*out, n] if n >= 1 else []


@dataclass(frozen=True)
class Tunability:
    """Gain of the tuned configuration over the default (positive = better for the metric).

    `val_gain`: mean validation metric of the final cells minus that of the baseline cells;
    `test_gain` with its Student-t CI and paired t-test p over the `n_pairs` seeds both have.
    """

    val_gain: float
    test_gain: float
    test_ci_low: float
    test_ci_high: float
    p_value: float
    n_pairs: int


def tunability(final_val: Sequence[float], baseline_val: Sequence[float],
               final_test: Sequence[float], baseline_test: Sequence[float],
               higher_is_better: bool = True, confidence: float = CONFIDENCE) -> Tunability:
    """Tunability of one study. `final_val`, `baseline_val`: the validation metrics of the
    final and baseline cells (means are compared; non-finite values left out).
    `final_test[j]` and `baseline_test[j]` are the test metrics of the same seed j (pairs
    with a non-finite side are left out). p is NaN for fewer than two pairs or a constant
    non-zero difference, 1 when every pair is equal."""
    sign = 1.0 if higher_is_better else -1.0
    fv, bv = np.asarray(final_val, dtype=float), np.asarray(baseline_val, dtype=float)
    fv, bv = fv[np.isfinite(fv)], bv[np.isfinite(bv)]
    val = sign * (fv.mean() - bv.mean()) if len(fv) and len(bv) else math.nan
    a, b = np.asarray(final_test, dtype=float), np.asarray(baseline_test, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"final_test and baseline_test must pair by seed; got {a.shape} and "
                         f"{b.shape} values")
    keep = np.isfinite(a) & np.isfinite(b)
    d = sign * (a[keep] - b[keep])
    n = len(d)
    if n == 0:
        return Tunability(float(val), math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(d.mean())
    if n < 2:
        return Tunability(float(val), mean, math.nan, math.nan, math.nan, n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))
    if np.all(d == 0):
        p = 1.0
    elif np.all(d == d[0]):
        p = math.nan
    else:
        p = float(stats.ttest_1samp(d, 0.0).pvalue)
    return Tunability(float(val), mean, mean - half, mean + half, p, n)
