"""Across-task figures of the tuned view: the critical-difference diagram (scikit-posthocs;
mean rank per regularizer, bars join those no Holm-corrected Wilcoxon test separates; its
title and note give the settings and the smallest p the tests can reach) and
the rliable aggregates (IQM of the normalized test score, probability of improvement over
`none`, stratified-bootstrap 95% CIs), one point-and-interval series per panel."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from regbench.report.across import ALPHA, RankTests, left_out_line, power, power_line
from regbench.report.plotting import Figure, save, style


def critical_difference(tests: RankTests, out_dir: Path, formats: list[str],
                        name: str = "critical_difference", view: str = "tuned view",
                        score: str = "tuned test score") -> list[Figure]:
    """`<name>.png|pdf` when at least two regularizers run in two settings; `view` names
    whose configurations are ranked (the grid's tuned view, or a budget's final cells)."""
    if not tests.usable:
        return []
    with style():
        files = save(cd_figure(tests, score), out_dir, name, formats, check_series=False)
    return [Figure(name, f"Critical-difference diagram ({view})", cd_note(tests), files)]


def cd_figure(tests: RankTests, score: str = "tuned test score") -> plt.Figure:
    """The critical-difference diagram of usable `tests` (scikit-posthocs), not yet saved;
    draw it inside `plotting.style()`."""
    import scikit_posthocs as sp

    fig, ax = plt.subplots(figsize=(8.5, 0.9 + 0.28 * len(tests.regularizers)))
    drawn = sp.critical_difference_diagram(tests.mean_ranks, tests.pvalues.astype(float),
                                           alpha=ALPHA, ax=ax, label_props={"fontsize": 9})
    for bar in drawn.get("crossbars", []):  # a bar's points come from a set: string-hash order
        for line in bar:
            line.set_xdata(sorted(line.get_xdata()))
    pw = power(tests)
    reach = (f"smallest reachable Wilcoxon p {pw.wilcoxon_p:.3g} (Holm: {pw.holm_p:.3g})"
             + ("" if pw.reachable else f": no pair can differ at {ALPHA:g}"))
    ax.set_title(f"Mean rank over {len(tests.settings)} settings (1 = best {score}); "
                 f"bars: no Holm-corrected Wilcoxon difference at {ALPHA:g}\n"
                 f"{reach}", fontsize=9, pad=16)
    return fig


def cd_note(tests: RankTests) -> str:
    """The diagram's data-driven line: best mean rank, Friedman, significant pairs, power
    and what the complete block leaves out."""
    best = tests.mean_ranks.idxmin()
    p = tests.pvalues.to_numpy(dtype=float)
    sig = int(np.sum(np.triu(p < ALPHA, 1)))
    pairs = len(tests.regularizers) * (len(tests.regularizers) - 1) // 2
    fried = (f"Friedman p = {tests.friedman_p:.3g}" if math.isfinite(tests.friedman_p)
             else "Friedman test needs three regularizers")
    return (f"Best mean rank: {best} ({tests.mean_ranks[best]:.2f}); {fried}; {sig} of {pairs} "
            f"pairs differ at {ALPHA:g} after Holm. " + power_line(tests)
            + (" One bar joining every regularizer says no more than that."
               if not power(tests).reachable else "") + " " + left_out_line(tests))


def aggregates(agg: pd.DataFrame, out_dir: Path, formats: list[str]) -> list[Figure]:
    """`aggregates.png|pdf`: IQM and P(improvement over none) per regularizer with CIs."""
    a = agg[agg.iqm.notna()]
    if a.empty:
        return []
    y = np.arange(len(a))[::-1]
    with style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.9 + 0.32 * len(a)), sharey=True)
        _interval(left, a.iqm, a.iqm_ci_low, a.iqm_ci_high, y, "tab:blue", "IQM")
        left.set(xlabel="IQM of normalized test score (1 = best in setting)",
                 title="Interquartile mean (95% CI)")
        left.set_yticks(y, [f"{r} ({n})" for r, n in zip(a.regularizer, a.n_settings)])
        p = a.poi_vs_none
        _interval(right, p, a.poi_ci_low, a.poi_ci_high, y, "tab:green", "P(X > none)")
        right.axvline(0.5, color="0.3", linestyle="--", linewidth=1)
        right.set(xlabel="P(regularizer > none) on a random run of a setting",
                  title="Probability of improvement over none (95% CI)", xlim=(0, 1))
        fig.suptitle("Across tasks, tuned view (rliable; stratified bootstrap over runs in "
                     "each setting; (n) = settings)", fontsize=10)
        fig.tight_layout()
        files = save(fig, out_dir, "aggregates", formats)
    best = a.loc[a.iqm.idxmax()]
    poi = a[a.poi_vs_none.notna()]
    above = poi[poi.poi_ci_low > 0.5].regularizer.tolist()
    n_max = int(a.n_settings.max())
    note = (f"Over at most {n_max} setting{'s' * (n_max != 1)} ((n) beside each name). "
            f"Highest IQM: {best.regularizer} ({best.iqm:.3f} [{best.iqm_ci_low:.3f}, "
            f"{best.iqm_ci_high:.3f}]); probability of improvement over none with a CI above "
            f"0.5: {', '.join(above) if above else 'none of the ' + str(len(poi))}.")
    return [Figure("aggregates", "IQM and probability of improvement (tuned view)", note, files)]


def _interval(ax: plt.Axes, point: pd.Series, lo: pd.Series, hi: pd.Series, y: np.ndarray,
              color: str, label: str) -> None:
    pt = point.to_numpy(dtype=float)
    err = np.vstack([pt - lo.to_numpy(dtype=float), hi.to_numpy(dtype=float) - pt])
    ax.errorbar(pt, y, xerr=np.nan_to_num(err), fmt="o", color=color, capsize=3, label=label)
