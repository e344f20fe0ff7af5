"""The power of the across-task tests, stated where the statistics are: the smallest p each
test can reach with the settings it has (checked against scipy's exact tests and brute
force), the settings needed, the critical-difference caption that says when no pair can
be separated, and the smallest paired difference a tuned table's seeds can detect."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from regbench.report import across as ax
from regbench.report import fig_across
from regbench.report.tables import MD, across_table, detectable_line, tuned_table

REGS = ["none", "l1", "l2", "weight_decay", "adamw", "dropout", "batchnorm", "early_stopping",
        "augment", "more_data", "label_smoothing", "mixup"]


@pytest.mark.parametrize("n", range(1, 11))
def test_smallest_wilcoxon_p_is_scipys_exact_test_at_its_most_extreme(n: int) -> None:
    """Over every sign pattern of n distinct differences, scipy's exact two-sided test never
    goes below 2/2^n, and reaches it when all differences share a sign."""
    d = np.arange(1, n + 1, dtype=float)
    ps = [stats.wilcoxon(d * np.array(signs), method="exact").pvalue
          for signs in itertools.product((1, -1), repeat=n)] if n <= 8 else \
        [stats.wilcoxon(d, method="exact").pvalue]
    assert min(ps) == pytest.approx(ax.smallest_wilcoxon_p(n), rel=1e-12)
    assert ax.smallest_wilcoxon_p(5) == 0.0625


@pytest.mark.parametrize("n, k", [(2, 3), (5, 4), (5, 12), (12, 12)])
def test_smallest_friedman_p_is_scipys_at_full_agreement(n: int, k: int) -> None:
    """Every setting ranking the regularizers alike gives Friedman's largest statistic, and
    any other data a p no smaller."""
    agree = [np.arange(n) * 0 + j for j in range(k)]  # regularizer j scores j everywhere
    assert stats.friedmanchisquare(*agree).pvalue == pytest.approx(ax.smallest_friedman_p(n, k))
    rng = np.random.default_rng(0)
    for _ in range(20):
        other = rng.random((k, n))
        assert stats.friedmanchisquare(*other).pvalue >= ax.smallest_friedman_p(n, k) - 1e-15
    assert math.isnan(ax.smallest_friedman_p(5, 2)) and math.isnan(ax.smallest_friedman_p(1, 5))


@pytest.mark.parametrize("k", [2, 3, 5, 12, 23])
def test_settings_needed_is_the_first_n_where_holm_can_reach_alpha(k: int) -> None:
    pairs = k * (k - 1) // 2
    first = next(n for n in range(1, 100) if pairs * 2 / 2 ** n < ax.ALPHA)
    assert ax.settings_needed(k) == first


def _tests(n_settings: int, regs: list[str]) -> ax.RankTests:
    rng = np.random.default_rng(n_settings)
    scores = pd.DataFrame([{"setting": f"t{s} / mlp", "regularizer": r, "seed": seed,
                            "score": float(rng.random())}
                           for s in range(n_settings) for r in regs for seed in range(2)])
    return ax.rank_tests(scores)


def test_five_settings_say_that_no_pair_can_be_separated(tmp_path: Path) -> None:
    tests = _tests(5, REGS)
    pw = ax.power(tests)
    assert (pw.n_settings, pw.n_regularizers, pw.pairs) == (5, 12, 66)
    assert not pw.reachable and pw.needed == 12
    line = ax.power_line(tests)
    assert "Power: 5 settings;" in line and "p = 2/2^5 = 0.0625 at the least, 1 after Holm " \
                                             "over 66 pairs" in line
    assert "With 5 settings no pairwise test can reach p < 0.05, whatever the data: 12 " \
           "settings would be needed" in line
    (cd,) = fig_across.critical_difference(tests, tmp_path, ["png"])
    assert line in cd.note and "One bar joining every regularizer says no more than that" \
        in cd.note
    agg = ax.aggregates(pd.DataFrame([{"setting": s, "regularizer": r, "seed": 0, "score": 0.5}
                                      for s in tests.settings for r in REGS]))
    table = across_table(ax.across_frame(tests, agg), 5, tests.friedman_p, line, MD)
    assert table.caption.endswith(line)


def test_enough_settings_say_what_the_tests_can_reach(tmp_path: Path) -> None:
    tests = _tests(14, REGS[:3])
    pw = ax.power(tests)
    assert pw.reachable and pw.holm_p == 3 * 2 / 2 ** 14
    line = ax.power_line(tests)
    assert "Power: 14 settings; Friedman's test (chi-square null) can reach p = " in line
    assert "cannot" not in line and "no pairwise test" not in line
    (cd,) = fig_across.critical_difference(tests, tmp_path, ["png"])
    assert "says no more than that" not in cd.note


def test_the_tuned_table_states_the_smallest_detectable_difference() -> None:
    view = pd.DataFrame([
        {"task": "t", "arch": "mlp", "regularizer": r, "strength": 0.1, "n_strengths": 2,
         "n_seeds": 5, "val_metric_mean": 0.8, "test_metric_mean": 0.8,
         "test_metric_ci_low": 0.7, "test_metric_ci_high": 0.9, "gap_metric_mean": 0.1,
         "gap_metric_ci_low": 0.0, "gap_metric_ci_high": 0.2, "metric_name": "accuracy",
         "higher_is_better": True, "delta_test_vs_none": d, "delta_test_ci_low": d - h,
         "delta_test_ci_high": d + h, "p_test_holm": 0.5, "delta_gap_vs_none": 0.0,
         "delta_gap_ci_low": 0.0, "delta_gap_ci_high": 0.0, "p_gap_holm": 1.0,
         "n_pairs": 5 if r != "none" else 0, "best_val": False}
        for r, d, h in (("none", math.nan, math.nan), ("l2", 0.01, 0.02), ("dropout", 0.0, 0.0),
                        ("augment", -0.02, 0.04), ("mixup", 0.03, 0.03))])
    line = detectable_line(view, "accuracy")
    # the rows whose differences vary: half-widths 0.02, 0.04, 0.03 (dropout's are all 0)
    assert line == (" Detectable with 5 paired seeds: a difference in test accuracy of about "
                    "±0.030 (the median half-width of the paired 95% CIs of Δ test vs none, "
                    "range 0.020 to 0.040, over the rows whose differences vary); smaller "
                    "differences cannot be told from 0.")
    assert tuned_table(view, "t", MD).caption.endswith(line)
    assert detectable_line(view[view.regularizer.isin(["none", "dropout"])], "accuracy") == ""
