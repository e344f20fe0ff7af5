"""Expected validation performance (Dodge et al. 2019) against brute-force enumeration of
every k-subset, and the tunability helper against a hand computation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from regbench.tuning import evp


def _brute(values: list[float], k: int, higher: bool) -> tuple[float, float]:
    """Mean and sd of the best of every k-subset (each subset equally likely)."""
    finite = [v for v in values if math.isfinite(v)]
    worst = min(finite) if higher else max(finite)
    v = [x if math.isfinite(x) else worst for x in values]
    pick = max if higher else min
    best = np.array([pick(c) for c in itertools.combinations(v, k)], dtype=float)
    return float(best.mean()), float(best.std(ddof=0))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("higher", [True, False])
def test_matches_every_subset(seed: int, higher: bool) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 10))
    values = rng.normal(size=n).round(2).tolist()  # rounding makes ties
    for k in range(1, n + 1):
        mean, sd = evp.expected_max(values, k, higher)
        want_mean, want_sd = _brute(values, k, higher)
        assert mean == pytest.approx(want_mean, abs=1e-12, rel=0)
        assert sd == pytest.approx(want_sd, abs=1e-12, rel=0)


def test_failed_trials_count_as_the_worst_finite_score() -> None:
    values = [0.9, math.nan, 0.7, math.inf, 0.8]
    for higher in (True, False):
        for k in range(1, 6):
            got = evp.expected_max(values, k, higher)
            assert got == pytest.approx(_brute(values, k, higher), abs=1e-12)
    # a NaN is the worst finite score, not a score of its own: same as listing 0.7 twice
    assert evp.expected_max([0.9, math.nan, 0.7], 2) == pytest.approx(
        evp.expected_max([0.9, 0.7, 0.7], 2), abs=1e-15)


def test_ends_of_the_curve() -> None:
    values = [0.3, 0.9, 0.5, 0.1]
    ks, means, sds = evp.expected_max_curve(values)
    assert ks.tolist() == [1, 2, 3, 4]
    assert means[0] == pytest.approx(np.mean(values), abs=1e-15)  # one trial: the mean
    assert sds[0] == pytest.approx(np.std(values), abs=1e-15)
    assert means[-1] == 0.9 and sds[-1] == 0.0  # every trial: the best, surely
    assert np.all(np.diff(means) >= 0) and np.all(np.diff(sds) <= 1e-15)
    _, low_means, _ = evp.expected_max_curve(values, higher_is_better=False)
    assert low_means[-1] == 0.1 and np.all(np.diff(low_means) <= 0)


def test_degenerate_inputs() -> None:
    assert evp.expected_max([0.5], 1) == (0.5, 0.0)
    assert evp.expected_max([0.4, 0.4, 0.4], 2) == pytest.approx((0.4, 0.0), abs=1e-15)
    mean, sd = evp.expected_max([math.nan, math.nan], 1)
    assert math.isnan(mean) and math.isnan(sd)
    for k in (0, 4):
        with pytest.raises(ValueError, match="k="):
            evp.expected_max([0.1, 0.2, 0.3], k)
    with pytest.raises(ValueError, match="k="):
        evp.expected_max([], 1)


def test_probabilities_sum_to_one_and_the_log_route_agrees() -> None:
    for n, k in ((1, 1), (7, 3), (50, 50), (400, 17)):
        p = evp.max_probabilities(n, k)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.all(p[: k - 1] == 0)
    n, k = evp.EXACT_MAX_N + 20, 9
    p = evp.max_probabilities(n, k)
    exact = np.array([math.comb(i - 1, k - 1) / math.comb(n, k) for i in range(1, n + 1)])
    np.testing.assert_allclose(p, exact, rtol=1e-9, atol=1e-300)


def test_budgets() -> None:
    assert evp.budgets(1) == [1]
    assert evp.budgets(6) == [1, 2, 4, 6]
    assert evp.budgets(8) == [1, 2, 4, 8]
    assert evp.budgets(0) == []


def test_tunability_gain_is_signed_by_the_metric_and_paired_by_seed() -> None:
    fv, bv = [0.9, 0.92, 0.94], [0.85, 0.86, 0.9]
    ft, bt = [0.8, 0.83, 0.85], [0.78, 0.8, 0.8]
    t = evp.tunability(fv, bv, ft, bt, higher_is_better=True)
    d = np.subtract(ft, bt)
    assert t.val_gain == pytest.approx(np.mean(fv) - np.mean(bv), abs=1e-15)
    assert t.test_gain == pytest.approx(d.mean(), abs=1e-15)
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert (t.test_ci_low, t.test_ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert t.p_value == pytest.approx(stats.ttest_rel(ft, bt).pvalue)
    assert t.n_pairs == 3
    low = evp.tunability(fv, bv, ft, bt, higher_is_better=False)  # RMSE-like: up is worse
    assert low.val_gain == pytest.approx(-t.val_gain) and low.test_gain == pytest.approx(
        -t.test_gain)
    assert low.p_value == pytest.approx(t.p_value)


def test_tunability_edge_cases() -> None:
    same = evp.tunability([0.5], [0.5], [0.7, 0.7], [0.7, 0.7])
    assert same.test_gain == 0.0 and same.p_value == 1.0 and same.val_gain == 0.0
    one = evp.tunability([0.5], [0.4], [0.7, math.nan], [0.6, 0.6])
    assert one.n_pairs == 1 and math.isnan(one.test_ci_low) and math.isnan(one.p_value)
    none = evp.tunability([], [0.4], [], [])
    assert math.isnan(none.val_gain) and none.n_pairs == 0
    constant = evp.tunability([0.5], [0.4], [0.75, 0.5], [0.625, 0.375])  # exact binary
    assert constant.test_gain == 0.125 and math.isnan(constant.p_value)
    with pytest.raises(ValueError, match="pair by seed"):
        evp.tunability([0.5], [0.4], [0.7, 0.8], [0.6])
