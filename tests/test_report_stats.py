"""The report's statistics against scipy.stats, on a hand-made store."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from regbench.report import stats as rs
from regbench.specs import ArchSpec, Cell, CellResult, RegSpec, TaskSpec
from regbench.store import Store

# gap_metric per (regularizer, strength) per seed; train accuracy fixed so gap = train - test.
GAPS = {
    ("none", 0.0): [0.10, 0.12, 0.08, 0.11, 0.09],
    ("l2", 1e-3): [0.07, 0.10, 0.05, 0.08, 0.07],
    ("dropout", 0.1): [0.09, 0.13, 0.07, 0.10, 0.10],
}
TRAIN = 0.95


def _result(task: str, reg: str, strength: float, seed: int, gap: float,
            status: str = "ok") -> CellResult:
    cell = Cell(TaskSpec(task), ArchSpec("mlp"), RegSpec(reg, strength), seed)
    if status != "ok":
        return CellResult(cell, status, error=f"{status} on purpose",
                          metrics={"metric_name": "accuracy", "higher_is_better": True})
    test = TRAIN - gap
    return CellResult(cell, "ok", metrics={
        "epochs": 5, "best_epoch": 5, "train_loss": 0.2, "test_loss": 0.2 + gap,
        "gap_loss": gap, "train_metric": TRAIN, "test_metric": test, "gap_metric": gap,
        "metric_name": "accuracy", "higher_is_better": True})


@pytest.fixture(scope="module")
def cells(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("stats") / "s.sqlite"
    with Store(path) as store:
        for task, shift in (("digits", 0.0), ("breast_cancer", 0.03)):
            for (reg, strength), gaps in GAPS.items():
                for seed, gap in enumerate(gaps):
                    store.add(_result(task, reg, strength, seed, gap + shift))
        # one more dropout strength on digits: seed 4 diverged, seed 3 failed
        for seed, gap in enumerate([0.05, 0.06, 0.04]):
            store.add(_result("digits", "dropout", 0.5, seed, gap))
        store.add(_result("digits", "dropout", 0.5, 3, 0.0, status="failed"))
        store.add(_result("digits", "dropout", 0.5, 4, 0.0, status="diverged"))
        yield store.cells_frame()


def test_t_ci_matches_scipy() -> None:
    x = np.array([0.3, 0.1, 0.25, 0.2, 0.4, 0.15])
    mean, low, high, n = rs.t_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert n == 6 and mean == pytest.approx(x.mean())
    assert (low, high) == pytest.approx((lo, hi), rel=1e-12)


def test_t_ci_small_samples() -> None:
    assert math.isnan(rs.t_ci([])[0])
    mean, low, high, n = rs.t_ci([0.5])
    assert (mean, n) == (0.5, 1) and math.isnan(low) and math.isnan(high)


def test_paired_test_matches_ttest_rel() -> None:
    a, b = GAPS[("l2", 1e-3)], GAPS[("none", 0.0)]
    mean, low, high, p, n = rs.paired_test(a, b)
    d = np.subtract(a, b)
    assert n == 5 and mean == pytest.approx(d.mean())
    assert p == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
    lo, hi = stats.t.interval(0.95, 4, loc=d.mean(), scale=stats.sem(d))
    assert (low, high) == pytest.approx((lo, hi), rel=1e-12)
    assert rs.paired_test([1.0, 2.0], [1.0, 2.0])[3] == 1.0  # identical runs: no difference


def test_holm_by_hand() -> None:
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.2])
    # sorted 0.01, 0.03, 0.04, 0.2 with m = 4: 0.04, 0.09, 0.09 (monotone), 0.2
    expected = [0.04, 0.09, np.nan, 0.09, 0.2]
    np.testing.assert_allclose(rs.holm(p), expected, rtol=1e-12)
    assert np.isnan(rs.holm([np.nan])).all()


def test_summary_ci_and_paired_test(cells) -> None:
    s = rs.summarize(cells)
    row = s[(s.task == "digits") & (s.regularizer == "l2")].iloc[0]
    gaps = np.array(GAPS[("l2", 1e-3)])
    lo, hi = stats.t.interval(0.95, 4, loc=gaps.mean(), scale=stats.sem(gaps))
    assert row.n_seeds == 5 and row.gap_metric_mean == pytest.approx(gaps.mean())
    assert (row.gap_metric_ci_low, row.gap_metric_ci_high) == pytest.approx((lo, hi))
    assert row.p_value == pytest.approx(stats.ttest_rel(gaps, GAPS[("none", 0.0)]).pvalue)
    digits = s[s.task == "digits"]
    np.testing.assert_allclose(digits.p_value_holm, rs.holm(digits.p_value.to_numpy()))


def test_diverged_and_failed_are_counted_not_dropped(cells) -> None:
    s = rs.summarize(cells)
    row = s[(s.task == "digits") & (s.regularizer == "dropout") & (s.strength == 0.5)].iloc[0]
    assert (row.n_seeds, row.n_diverged, row.n_failed, row.n_pairs) == (3, 1, 1, 3)
    d = np.subtract([0.05, 0.06, 0.04], GAPS[("none", 0.0)][:3])
    assert row.delta_gap_vs_none == pytest.approx(d.mean())


def test_ranking_iqm_and_bootstrap_match_scipy(cells) -> None:
    r = rs.ranking(cells)
    n = rs.normalized_gaps(cells)
    assert n.norm_gap.min() == 0.0 and n.norm_gap.max() == 1.0
    l2 = n[n.regularizer == "l2"]
    strata = [g.norm_gap.to_numpy() for _, g in l2.groupby(["task_label", "arch_label"])]
    res = stats.bootstrap(tuple(strata),
                          lambda *xs, axis=-1: stats.trim_mean(np.concatenate(xs, axis=axis),
                                                               0.25, axis=axis),
                          n_resamples=rs.BOOTSTRAP_RESAMPLES, method="percentile",
                          vectorized=True, rng=np.random.default_rng(rs.BOOTSTRAP_SEED))
    row = r[r.regularizer == "l2"].iloc[0]
    assert row.iqm_norm_gap == pytest.approx(stats.trim_mean(l2.norm_gap, 0.25))
    assert (row.iqm_ci_low, row.iqm_ci_high) == pytest.approx(
        (res.confidence_interval.low, res.confidence_interval.high))
    assert row.iqm_ci_low <= row.iqm_norm_gap <= row.iqm_ci_high
    # l2 has the smallest gaps on both tasks: rank 1 everywhere
    assert r.iloc[0].regularizer == "l2" and r.iloc[0].mean_rank_gap == 1.0
    assert set(r.regularizer) == {"none", "l2", "dropout"}
