"""Across tasks, on the tuned view: are some regularizers better than others over settings?

- Score: the test metric of each tuned cell, normalized per setting (task, architecture) to
  [0, 1] with 1 = the best and 0 = the worst tuned cell of the setting (direction by the
  metric, so higher is always better). A diverged cell scores 0 (it did not learn); a failed
  cell is left out (it says nothing about the regularizer).
- Rank tests (Demšar 2006; Regularization Cocktails): Friedman over the settings
  (`scipy.stats.friedmanchisquare`), pairwise Wilcoxon signed-rank tests with Holm's
  correction (`scikit_posthocs.posthoc_wilcoxon`, zero differences split), mean ranks and
  the critical-difference diagram (`scikit_posthocs.critical_difference_diagram`). Both
  tests need a complete block design (every regularizer in every setting), so they use the
  largest one the store holds: of the blocks "the regularizers of one setting x every setting
  that has them all", the one with the most (settings x regularizers) cells. The settings
  and regularizers left out (label_smoothing: classification only; stochastic_depth:
  residual nets) are named.
- Power: the number of settings bounds what the tests can show whatever the data: an exact
  two-sided Wilcoxon signed-rank test over n settings cannot go below p = 2/2^n (0.0625 for
  5), Holm multiplies the smallest p by the number of pairs, and Friedman's statistic is at
  most n (k - 1). `power_line` says so beside every across-task result.
- Aggregates (rliable, Agarwal et al. 2021): the IQM of the normalized scores over runs x
  settings (`rliable.metrics.aggregate_iqm`) and the probability of improvement over `none`
  (`rliable.metrics.probability_of_improvement`), each with a stratified-bootstrap 95% CI:
  runs are resampled within each setting (and, for the probability, the two regularizers'
  runs independently), as rliable's `StratifiedBootstrap` / `StratifiedIndependentBootstrap`
  do, here through `scipy.stats.bootstrap` (percentile, fixed seed). rliable's own bootstrap
  needs the `arch` package, whose releases either fail to import with pandas 3 (7.x) or
  reject rliable's `random_state` argument (8.x). Each regularizer is scored on the settings
  it runs in, with the seeds every one of them has (rliable's runs x tasks matrix); `none`
  runs everywhere, so the pair is always on common settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from regbench.report.stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    REG_ORDER,
    stratified_bootstrap_iqm,
)

ALPHA = 0.05


def normalized_scores(tcells: pd.DataFrame) -> pd.DataFrame:
    """Per tuned cell (from `tuned.tuned_cells`): setting, regularizer, seed, `score`."""
    df = tcells[tcells.status.isin(["ok", "diverged"])].copy()
    if df.empty:
        return pd.DataFrame(columns=["setting", "regularizer", "seed", "score"])
    signed = np.where(df.higher_is_better.astype(bool), 1.0, -1.0) * df.test_metric.astype(float)
    df["signed"] = np.where(df.status == "ok", signed, np.nan)
    df["setting"] = df.task_label + " / " + df.arch_label
    grp = df.groupby("setting")["signed"]
    lo, hi = grp.transform("min"), grp.transform("max")
    span = (hi - lo).where(hi > lo, 1.0)
    df["score"] = ((df.signed - lo) / span).fillna(0.0).where(df.status == "ok", 0.0)
    return (df[["setting", "reg_label", "seed", "score"]]
            .rename(columns={"reg_label": "regularizer"})
            .sort_values(["setting", "regularizer", "seed"], kind="stable")
            .reset_index(drop=True))


def _order(regs: list[str]) -> list[str]:
    def key(r: str) -> tuple[int, str]:
        base = r.split("[")[0]
        return (REG_ORDER.index(base) if base in REG_ORDER else len(REG_ORDER), r)
    return sorted(regs, key=key)


@dataclass
class RankTests:
    """Friedman + Wilcoxon-Holm on the complete block (settings x regularizers)."""

    regularizers: list[str]
    settings: list[str]
    means: pd.DataFrame                 # settings x regularizers, mean score over seeds
    mean_ranks: pd.Series               # 1 = best
    friedman_p: float
    pvalues: pd.DataFrame               # Holm-adjusted pairwise Wilcoxon p-values
    left_out: dict[str, int] = field(default_factory=dict)  # regularizer -> settings it ran
    settings_left_out: list[str] = field(default_factory=list)
    n_settings_all: int = 0

    @property
    def usable(self) -> bool:
        return len(self.regularizers) >= 2 and len(self.settings) >= 2


def rank_tests(scores: pd.DataFrame) -> RankTests:
    """Mean ranks, Friedman p and the Holm-corrected pairwise Wilcoxon matrix."""
    import scikit_posthocs as sp

    means = scores.groupby(["setting", "regularizer"])["score"].mean().unstack()
    settings, full = complete_block(means)
    counts = means.notna().sum()
    left_out = {r: int(counts[r]) for r in _order(list(means.columns)) if r not in full}
    m = means.loc[settings, full] if full else pd.DataFrame(index=settings)
    ranks = m.rank(axis=1, ascending=False, method="average").mean() if full else pd.Series()
    friedman = math.nan
    if len(full) >= 3 and len(settings) >= 2 and not np.allclose(m.to_numpy(),
                                                                 m.to_numpy()[:, :1]):
        friedman = float(stats.friedmanchisquare(*[m[r].to_numpy() for r in full]).pvalue)
    elif len(full) >= 3 and len(settings) >= 2:
        friedman = 1.0  # every regularizer scores the same in every setting
    if len(full) >= 2 and len(settings) >= 2:
        long = m.reset_index(names="setting").melt(id_vars="setting", var_name="regularizer",
                                                   value_name="score")
        pv = sp.posthoc_wilcoxon(long, val_col="score", group_col="regularizer",
                                 zero_method="zsplit", p_adjust="holm")
        pv = pv.loc[full, full]
    else:
        pv = pd.DataFrame(index=full, columns=full, dtype=float)
    return RankTests(full, settings, m, ranks.reindex(full), friedman, pv, left_out,
                     [x for x in sorted(means.index) if x not in settings], len(means.index))


def left_out_line(tests: RankTests) -> str:
    """What the rank tests leave out to get a complete block, in one sentence."""
    if not tests.left_out and not tests.settings_left_out:
        return "The rank tests use every regularizer in every setting."
    parts = []
    if tests.left_out:
        parts.append("regularizers " + ", ".join(
            f"{r} (runs in {n} of {tests.n_settings_all} settings)"
            for r, n in tests.left_out.items()))
    if tests.settings_left_out:
        parts.append("settings " + "; ".join(tests.settings_left_out))
    return (f"The rank tests need every regularizer in every setting, so they use the largest "
            f"complete block ({len(tests.regularizers)} regularizers x {len(tests.settings)} "
            "settings) and leave out " + "; and ".join(parts) + ".")


def smallest_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p an exact Wilcoxon signed-rank test reaches with `n` pairs
    (every difference of one sign): 2 / 2^n, and 1 with no pair."""
    return min(1.0, 2.0 / 2.0 ** n) if n > 0 else 1.0


def smallest_friedman_p(n: int, k: int) -> float:
    """The smallest p of Friedman's test (scipy's chi-square null, k - 1 degrees of freedom)
    over `n` settings and `k` regularizers: every setting ranks them alike, which gives the
    largest statistic, n (k - 1). NaN when the test does not apply (n < 2 or k < 3)."""
    if n < 2 or k < 3:
        return math.nan
    return float(stats.chi2.sf(n * (k - 1), k - 1))


def settings_needed(k: int, alpha: float = ALPHA) -> int:
    """How many settings the Holm-corrected pairwise Wilcoxon tests of `k` regularizers need
    before the most different pair can reach `alpha`: the least n with
    m * 2 / 2^n < alpha, m = k (k - 1) / 2 pairs (Holm multiplies the smallest p by m)."""
    pairs = max(k * (k - 1) // 2, 1)
    return int(math.floor(math.log2(2 * pairs / alpha))) + 1


@dataclass(frozen=True)
class Power:
    """What the rank tests of a complete block can show at all, whatever the data."""

    n_settings: int
    n_regularizers: int
    wilcoxon_p: float  # smallest exact two-sided Wilcoxon p of one pair
    holm_p: float  # ... after Holm over every pair
    friedman_p: float  # smallest Friedman p (NaN: no Friedman test)
    needed: int  # settings for the smallest Holm p to fall below ALPHA

    @property
    def pairs(self) -> int:
        return self.n_regularizers * (self.n_regularizers - 1) // 2

    @property
    def reachable(self) -> bool:
        """Whether any pair can be separated at ALPHA after Holm."""
        return self.holm_p < ALPHA


def power(tests: RankTests) -> Power:
    """The power of `tests` (its block's settings and regularizers)."""
    n, k = len(tests.settings), len(tests.regularizers)
    p = smallest_wilcoxon_p(n)
    pairs = max(k * (k - 1) // 2, 1)
    return Power(n, k, p, min(1.0, pairs * p), smallest_friedman_p(n, k), settings_needed(k))


def power_line(tests: RankTests) -> str:
    """The power of the rank tests in one or two sentences, for captions and the index:
    the settings, the smallest reachable p of each test, and, when no pair can be
    separated, that this is so whatever the data and how many settings it would take."""
    pw = power(tests)
    n = pw.n_settings
    fried = (f"Friedman's test (chi-square null) can reach p = {pw.friedman_p:.2g} at the "
             "least" if math.isfinite(pw.friedman_p) else "no Friedman test (it needs three "
             "regularizers)")
    text = (f"Power: {n} setting{'s' * (n != 1)}; {fried}; a pairwise exact two-sided Wilcoxon "
            f"test p = 2/2^{n} = {pw.wilcoxon_p:.3g} at the least, {pw.holm_p:.3g} after Holm "
            f"over {pw.pairs} pair{'s' * (pw.pairs != 1)}.")
    if not pw.reachable:
        text += (f" With {n} setting{'s' * (n != 1)} no pairwise test can reach p < {ALPHA:g}, "
                 f"whatever the data: {pw.needed} settings would be needed for the most "
                 "different pair to reach it.")
    return text


def complete_block(means: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(settings, regularizers) of the largest complete block of a settings x regularizers
    frame with NaN where a regularizer did not run (ties: more settings, then names)."""
    best: tuple[tuple[int, int], list[str], list[str]] = ((0, 0), [], [])
    for setting in sorted(means.index):
        regs = [r for r in means.columns if pd.notna(means.at[setting, r])]
        rows = [x for x in sorted(means.index) if means.loc[x, regs].notna().all()]
        key = (len(rows) * len(regs), len(rows))
        if key > best[0]:
            best = (key, rows, _order(regs))
    return best[1], best[2]


def _matrix(scores: pd.DataFrame, reg: str, settings: list[str]) -> np.ndarray:
    """runs x settings of one regularizer, on the seeds present in every one of them."""
    s = scores[(scores.regularizer == reg) & scores.setting.isin(settings)]
    wide = s.pivot_table(index="seed", columns="setting", values="score", aggfunc="first")
    return wide.reindex(columns=settings).dropna(axis=0).to_numpy(dtype=float)


def poi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) averaged over settings, ties counting 1/2, for runs x settings matrices, and
    vectorized over leading axes: x (..., runs_x, settings), y (..., runs_y, settings). The
    same number as `rliable.metrics.probability_of_improvement` (the Mann-Whitney U / n m)."""
    gt = (x[..., :, None, :] > y[..., None, :, :]).mean(axis=(-3, -2))
    eq = (x[..., :, None, :] == y[..., None, :, :]).mean(axis=(-3, -2))
    return (gt + 0.5 * eq).mean(axis=-1)


def stratified_bootstrap_poi(x: np.ndarray, y: np.ndarray, seed: int = BOOTSTRAP_SEED,
                             n_resamples: int = BOOTSTRAP_RESAMPLES,
                             confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(P(X > Y), CI low, CI high): each setting's runs of X and of Y resampled on their own."""
    from rliable import metrics

    point = float(metrics.probability_of_improvement(x, y))
    n_set = x.shape[1]
    if min(x.shape[0], y.shape[0]) < 2:
        return point, math.nan, math.nan
    samples = tuple(x[:, k] for k in range(n_set)) + tuple(y[:, k] for k in range(n_set))

    def statistic(*cols: np.ndarray, axis: int = -1) -> np.ndarray:
        xs = np.stack([np.moveaxis(c, axis, -1) for c in cols[:n_set]], axis=-1)
        ys = np.stack([np.moveaxis(c, axis, -1) for c in cols[n_set:]], axis=-1)
        return poi(xs, ys)

    if np.all(x == x.flat[0]) and np.all(y == y.flat[0]):
        return point, point, point
    res = stats.bootstrap(samples, statistic, n_resamples=n_resamples, vectorized=True,
                          confidence_level=confidence, method="percentile",
                          rng=np.random.default_rng(seed))
    return point, float(res.confidence_interval.low), float(res.confidence_interval.high)


def aggregates(scores: pd.DataFrame, baseline: str = "none") -> pd.DataFrame:
    """Per regularizer: IQM of the normalized score and P(improvement over `baseline`), each
    with a stratified-bootstrap CI (point estimates from rliable.metrics)."""
    from rliable import metrics

    rows = []
    for reg in _order(list(dict.fromkeys(scores.regularizer))):
        settings = sorted(scores[scores.regularizer == reg].setting.unique())
        x = _matrix(scores, reg, settings)
        row = {"regularizer": reg, "n_settings": len(settings), "n_runs": int(x.shape[0]),
               "iqm": math.nan, "iqm_ci_low": math.nan, "iqm_ci_high": math.nan,
               "poi_vs_none": math.nan, "poi_ci_low": math.nan, "poi_ci_high": math.nan}
        if x.size:
            _, low, high = stratified_bootstrap_iqm([x[:, k] for k in range(x.shape[1])])
            row.update(iqm=float(metrics.aggregate_iqm(x)), iqm_ci_low=low, iqm_ci_high=high)
        y = _matrix(scores, baseline, settings)
        if reg != baseline and x.size and y.size and y.shape[1] == x.shape[1]:
            point, low, high = stratified_bootstrap_poi(x, y)
            row.update(poi_vs_none=point, poi_ci_low=low, poi_ci_high=high)
        rows.append(row)
    return pd.DataFrame(rows)


def across_frame(tests: RankTests, agg: pd.DataFrame) -> pd.DataFrame:
    """The table of both: one row per regularizer (mean rank where it is in the CD test)."""
    out = agg.copy()
    out["mean_rank"] = [float(tests.mean_ranks.get(r, math.nan)) for r in out.regularizer]
    out["in_rank_test"] = [r in tests.regularizers for r in out.regularizer]
    cols = ["regularizer", "n_settings", "n_runs", "in_rank_test", "mean_rank", "iqm",
            "iqm_ci_low", "iqm_ci_high", "poi_vs_none", "poi_ci_low", "poi_ci_high"]
    return out[cols]
