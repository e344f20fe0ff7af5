"""The tuned view selects on validation only; variants are a check, not competitors; the
across-task numbers are the libraries' (scikit-posthocs, rliable.metrics) on a hand-made store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from regbench.report import across as ax
from regbench.report import stats as rs
from regbench.report import tuned as tv
from regbench.specs import ArchSpec, Cell, CellResult, RegSpec, TaskSpec
from regbench.store import Store

SEEDS = range(4)


def _add(store: Store, task: str, reg: str, strength: float, seed: int, val: float,
         test: float, params: tuple = (), status: str = "ok") -> None:
    cell = Cell(TaskSpec(task), ArchSpec("mlp"), RegSpec(reg, strength, params), seed)
    meta = {"metric_name": "accuracy", "higher_is_better": True}
    if status != "ok":
        store.add(CellResult(cell, status, error=f"{status} on purpose", metrics=meta))
        return
    train = 0.99
    store.add(CellResult(cell, "ok", metrics={
        **meta, "train_metric": train, "val_metric": val, "test_metric": test,
        "gap_metric": train - test, "train_loss": 0.1, "test_loss": 0.2, "gap_loss": 0.1}))


@pytest.fixture(scope="module")
def cells(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """digits: l2 at 1e-3 has the best validation, at 1e-1 the best test (a trap for test
    selection); dropout's two strengths tie on validation (the weaker, 0.1, must win); a fused
    dropout variant repeats dropout bit for bit. breast_cancer: a second setting."""
    path = tmp_path_factory.mktemp("tuned") / "s.sqlite"
    with Store(path) as store:
        for task, shift in (("digits", 0.0), ("breast_cancer", 0.02)):
            for s in SEEDS:
                e = 0.004 * s
                _add(store, task, "none", 0.0, s, 0.80 + e, 0.79 + e - shift)
                _add(store, task, "l2", 1e-3, s, 0.90 + e, 0.82 + e - shift)
                _add(store, task, "l2", 1e-1, s, 0.70 + e, 0.95 + e - shift)
                for p in (0.1, 0.5):
                    _add(store, task, "dropout", p, s, 0.85 + e, 0.84 + e + p / 10 - shift)
                    _add(store, task, "dropout", p, s, 0.85 + e, 0.84 + e + p / 10 - shift,
                         params=(("backend", "fused"),))
                _add(store, task, "early_stopping", 3.0, s, 0.86 + e, 0.85 + e - shift)
                _add(store, task, "early_stopping", 10.0, s, 0.86 + e, 0.80 + e - shift)
        yield store.cells_frame()


def test_selection_uses_validation_not_test(cells: pd.DataFrame) -> None:
    summary = rs.summarize(cells)
    view = tv.tuned(cells, summary)
    l2 = view[(view.task == "digits") & (view.regularizer == "l2")].iloc[0]
    assert l2.strength == 1e-3  # best validation; 1e-1 has the best test metric
    assert l2.test_metric_mean == pytest.approx(np.mean([0.82 + 0.004 * s for s in SEEDS]))
    detail = summary[(summary.task == "digits") & (summary.regularizer == "l2")]
    assert detail.test_metric_mean.idxmax() != detail.val_metric_mean.idxmax()


def test_selection_never_reads_test_columns(cells: pd.DataFrame) -> None:
    """Scrambling every test number leaves the selected strengths unchanged."""
    summary = rs.summarize(cells)
    scrambled = summary.copy()
    rng = np.random.default_rng(0)
    for col in [c for c in summary.columns if c.startswith(("test_", "gap_", "train_"))]:
        scrambled[col] = rng.permutation(scrambled[col].to_numpy())
    cols = ["task", "arch", "reg_family", "strength"]
    pd.testing.assert_frame_equal(tv.select(summary)[cols].reset_index(drop=True),
                                  tv.select(scrambled)[cols].reset_index(drop=True))


def test_ties_pick_the_weaker_regularization(cells: pd.DataFrame) -> None:
    view = tv.tuned(cells, rs.summarize(cells))
    d = view[view.task == "digits"].set_index("regularizer")
    assert d.loc["dropout", "strength"] == 0.1  # p: smaller = weaker
    assert d.loc["early_stopping", "strength"] == 10.0  # patience: larger = weaker


def test_tuned_columns_cis_and_holm(cells: pd.DataFrame) -> None:
    view = tv.tuned(cells, rs.summarize(cells))
    assert list(view.columns[:12]) == [
        "task", "arch", "regularizer", "strength", "n_seeds", "val_metric_mean",
        "test_metric_mean", "test_metric_ci_low", "test_metric_ci_high", "gap_metric_mean",
        "gap_metric_ci_low", "gap_metric_ci_high"]
    assert len(view) == 2 * 4  # two tasks x {none, l2, dropout, early_stopping}
    row = view[(view.task == "digits") & (view.regularizer == "l2")].iloc[0]
    test = np.array([0.82 + 0.004 * s for s in SEEDS])
    lo, hi = stats.t.interval(0.95, len(test) - 1, loc=test.mean(), scale=stats.sem(test))
    assert (row.test_metric_ci_low, row.test_metric_ci_high) == pytest.approx((lo, hi))
    assert row.delta_test_vs_none == pytest.approx(0.03)
    digits = view[view.task == "digits"]
    raw = [rs.paired_test(*[cells_at(cells, "digits", r, s) for r, s in ((reg, st), ("none", 0))])
           [3] for reg, st in zip(digits.regularizer, digits.strength)]
    raw = [np.nan if reg == "none" else p for reg, p in zip(digits.regularizer, raw)]
    np.testing.assert_allclose(digits.p_test_holm.to_numpy(dtype=float), rs.holm(raw))


def cells_at(cells: pd.DataFrame, task: str, reg: str, strength: float) -> np.ndarray:
    c = cells[(cells.task == task) & (cells.regularizer == reg) & (cells.strength == strength)
              & (cells.reg_params == "{}")]
    return c.sort_values("seed").test_metric.to_numpy(dtype=float)


def test_variants_are_one_regularizer_and_a_check(cells: pd.DataFrame) -> None:
    summary = rs.summarize(cells)
    view = tv.tuned(cells, summary)
    assert "dropout[backend=fused]" not in set(view.regularizer)
    assert "dropout[backend=fused]" in set(summary.regularizer)  # the detail keeps it
    assert "dropout[backend=fused]" not in set(rs.ranking(cells).regularizer)
    checks = tv.variant_checks(cells)
    assert len(checks) == 4 and checks.agree.all() and (checks.n_identical == 4).all()
    assert (checks.delta_test_mean == 0).all()
    (line,) = tv.variant_lines(cells)
    assert line.startswith("backend=fused and plain dropout agree: test accuracy difference +0")
    assert "identical in every pair" in line and "over 16 paired cells" in line


def test_a_variant_that_differs_is_said(tmp_path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        for s in SEEDS:
            _add(store, "digits", "none", 0.0, s, 0.8, 0.8)
            _add(store, "digits", "dropout", 0.1, s, 0.8, 0.80 + 0.001 * s)
            _add(store, "digits", "dropout", 0.1, s, 0.8, 0.85 + 0.002 * s,
                 params=(("backend", "fused"),))
        c = store.cells_frame()
    checks = tv.variant_checks(c)
    assert not checks.agree.iloc[0]
    assert checks.delta_test_mean.iloc[0] == pytest.approx(0.05 + 0.0015)
    assert "differ" in tv.variant_lines(c)[0]


def _scores() -> pd.DataFrame:
    """Five settings, four regularizers, 3 runs; label_smoothing runs in 3 settings only."""
    rng = np.random.default_rng(7)
    rows = []
    for k in range(5):
        for reg, mu in (("none", 0.5), ("l2", 0.6), ("dropout", 0.7), ("label_smoothing", 0.8)):
            if reg == "label_smoothing" and k >= 3:
                continue
            for seed in range(3):
                rows.append({"setting": f"t{k} / mlp", "regularizer": reg, "seed": seed,
                             "score": float(np.clip(mu + 0.1 * rng.standard_normal(), 0, 1))})
    return pd.DataFrame(rows)


def test_rank_tests_equal_scikit_posthocs_and_scipy() -> None:
    import scikit_posthocs as sp

    scores = _scores()
    tests = ax.rank_tests(scores)
    assert tests.regularizers == ["none", "l2", "dropout"]
    assert tests.left_out == {"label_smoothing": 3} and len(tests.settings) == 5
    means = scores[scores.regularizer != "label_smoothing"].groupby(
        ["setting", "regularizer"]).score.mean().unstack()[tests.regularizers]
    ranks = means.rank(axis=1, ascending=False).mean()
    pd.testing.assert_series_equal(tests.mean_ranks, ranks, check_names=False)
    assert tests.friedman_p == pytest.approx(
        stats.friedmanchisquare(*[means[r] for r in tests.regularizers]).pvalue)
    long = means.reset_index().melt(id_vars="setting", var_name="regularizer",
                                    value_name="score")
    pv = sp.posthoc_wilcoxon(long, val_col="score", group_col="regularizer",
                             zero_method="zsplit", p_adjust="holm")
    pd.testing.assert_frame_equal(tests.pvalues, pv.loc[tests.regularizers, tests.regularizers])


def test_complete_block_prefers_the_largest() -> None:
    m = pd.DataFrame({"none": [1, 1, 1, 1], "l2": [1, 1, 1, np.nan],
                      "sd": [np.nan, np.nan, np.nan, 1]}, index=["a", "b", "c", "r"])
    assert ax.complete_block(m) == (["a", "b", "c"], ["none", "l2"])


def test_aggregates_equal_rliable() -> None:
    from rliable import metrics

    scores = _scores()
    agg = ax.aggregates(scores).set_index("regularizer")
    for reg in ("none", "l2", "dropout", "label_smoothing"):
        settings = sorted(scores[scores.regularizer == reg].setting.unique())
        x = (scores[scores.regularizer == reg].pivot(index="seed", columns="setting",
                                                     values="score")[settings].to_numpy())
        assert agg.loc[reg, "iqm"] == pytest.approx(metrics.aggregate_iqm(x), rel=1e-12)
        assert agg.loc[reg, "iqm_ci_low"] <= agg.loc[reg, "iqm"] <= agg.loc[reg, "iqm_ci_high"]
        if reg == "none":
            assert np.isnan(agg.loc[reg, "poi_vs_none"])
            continue
        y = (scores[scores.regularizer == "none"].pivot(index="seed", columns="setting",
                                                        values="score")[settings].to_numpy())
        assert agg.loc[reg, "poi_vs_none"] == pytest.approx(
            metrics.probability_of_improvement(x, y), rel=1e-12)
        assert agg.loc[reg, "n_settings"] == len(settings)


def test_vectorized_poi_equals_rliable_on_random_matrices() -> None:
    from rliable import metrics

    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.integers(0, 4, size=(3, 4)).astype(float)  # ties on purpose
        y = rng.integers(0, 4, size=(5, 4)).astype(float)
        assert ax.poi(x, y) == pytest.approx(metrics.probability_of_improvement(x, y))


def test_poi_bootstrap_is_stratified_and_seeded() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.random((4, 3)), rng.random((4, 3))
    cols = tuple(x[:, k] for k in range(3)) + tuple(y[:, k] for k in range(3))

    def stat(*c: np.ndarray) -> float:
        return float(ax.poi(np.column_stack(c[:3]), np.column_stack(c[3:])))

    res = stats.bootstrap(cols, stat, n_resamples=rs.BOOTSTRAP_RESAMPLES, vectorized=False,
                          method="percentile", rng=np.random.default_rng(rs.BOOTSTRAP_SEED))
    point, low, high = ax.stratified_bootstrap_poi(x, y)
    assert (low, high) == pytest.approx((res.confidence_interval.low,
                                         res.confidence_interval.high))
    assert ax.stratified_bootstrap_poi(x, y) == (point, low, high)


def test_diverged_scores_zero_and_failed_is_left_out(tmp_path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        for s in range(3):
            _add(store, "digits", "none", 0.0, s, 0.8, 0.80 + 0.01 * s)
            _add(store, "digits", "l2", 1e-3, s, 0.8, 0.90, status="diverged" if s == 0 else "ok")
            _add(store, "digits", "dropout", 0.1, s, 0.8, 0.85, status="failed" if s == 0
                 else "ok")
        c = store.cells_frame()
    view = tv.tuned(c, rs.summarize(c))
    scores = ax.normalized_scores(tv.tuned_cells(c, view))
    l2 = scores[scores.regularizer == "l2"].set_index("seed").score
    assert l2[0] == 0.0 and l2[1] == 1.0
    assert 0 not in set(scores[scores.regularizer == "dropout"].seed)


def test_across_numbers_from_the_store_equal_the_libraries(cells: pd.DataFrame) -> None:
    """End to end on the hand-made store: tuned cells -> normalized scores -> the tests."""
    import scikit_posthocs as sp
    from rliable import metrics

    view = tv.tuned(cells, rs.summarize(cells))
    scores = ax.normalized_scores(tv.tuned_cells(cells, view))
    assert set(scores.regularizer) == {"none", "l2", "dropout", "early_stopping"}
    assert scores.score.min() == 0.0 and scores.score.max() == 1.0
    tests = ax.rank_tests(scores)
    means = scores.groupby(["setting", "regularizer"]).score.mean().unstack()[tests.regularizers]
    long = means.reset_index().melt(id_vars="setting", var_name="regularizer",
                                    value_name="score")
    pv = sp.posthoc_wilcoxon(long, val_col="score", group_col="regularizer",
                             zero_method="zsplit", p_adjust="holm")
    pd.testing.assert_frame_equal(tests.pvalues, pv.loc[tests.regularizers, tests.regularizers])
    agg = ax.aggregates(scores).set_index("regularizer")
    wide = {r: g.pivot(index="seed", columns="setting", values="score").to_numpy()
            for r, g in scores.groupby("regularizer")}
    for reg, x in wide.items():
        assert agg.loc[reg, "iqm"] == pytest.approx(metrics.aggregate_iqm(x))
        if reg != "none":
            assert agg.loc[reg, "poi_vs_none"] == pytest.approx(
                metrics.probability_of_improvement(x, wide["none"]))
