"""The tuned view: each regularizer at the strength its *validation* score picks.

For every (task, architecture, regularizer family) the strength with the best mean
validation metric over seeds is selected (ties: the weaker regularization); the test set
is never looked at for the choice. At that strength the view reports the test metric and
gap with 95% t-CIs, and the paired difference against `none` on the same seeds (test
metric and gap, paired t-test, Holm-corrected across the rows of one task).

Implementation variants (`VARIANT_PARAMS`, e.g. `dropout[backend=fused]`) are one
regularizer: the tuned view uses the plain implementation, and `variant_checks` compares
each variant with it on the same cells (paired differences of test metric and gap).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from regbench.registry import REGULARIZERS
from regbench.report.stats import canonical, holm, paired_test, prepare, t_ci

# Mean validation metrics this close are a tie (float noise, or identical cells).
TIE_RTOL = 1e-9

TUNED_COLUMNS = [
    "task", "arch", "regularizer", "strength", "n_seeds", "val_metric_mean",
    "test_metric_mean", "test_metric_ci_low", "test_metric_ci_high", "gap_metric_mean",
    "gap_metric_ci_low", "gap_metric_ci_high", "n_strengths", "metric_name",
    "delta_test_vs_none", "delta_test_ci_low", "delta_test_ci_high", "p_test_holm",
    "delta_gap_vs_none", "delta_gap_ci_low", "delta_gap_ci_high", "p_gap_holm", "n_pairs",
    "best_val",
]


def larger_is_weaker(reg_name: str) -> bool:
    """Whether a larger strength regularizes less (`Regularizer.larger_is_weaker`: early
    stopping's patience, more_data's fraction); False for a name no loaded code knows."""
    name = reg_name.split(" + ")[0]
    return name in REGULARIZERS and bool(REGULARIZERS.get(name).larger_is_weaker)


def _weakness(reg_name: str, strength: float) -> float:
    """Sort key: smaller = weaker regularization."""
    return -strength if larger_is_weaker(reg_name) else strength


def select(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary row of the validation-selected strength per (task, arch, family).

    Reads only `val_metric_mean` (and the strength for ties), never a test column. Families
    whose cells have no validation metric at all are left out (nothing to select on).
    """
    if summary.empty:
        return summary.assign(n_strengths=pd.Series(dtype=int))
    rows = []
    plain = canonical(summary, ("task", "arch"))
    for _, g in plain.groupby(["task", "arch", "reg_family"], sort=False):
        scored = g[(g.n_seeds > 0) & np.isfinite(g.val_metric_mean.astype(float))]
        if scored.empty:
            continue
        higher = bool(scored.higher_is_better.iloc[0])
        val = scored.val_metric_mean.astype(float)
        best = val.max() if higher else val.min()
        tied = scored[np.isclose(val, best, rtol=TIE_RTOL, atol=0.0)]
        weak = tied.assign(_w=[_weakness(n, s) for n, s in zip(tied.reg_name, tied.strength)])
        pick = weak.sort_values("_w", kind="stable").drop(columns="_w").iloc[0].copy()
        pick["n_strengths"] = len(scored)
        rows.append(pick)
    return pd.DataFrame(rows).reset_index(drop=True) if rows else summary.iloc[0:0]


def tuned(cells: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, arch, regularizer family) at its validation-selected strength:
    the TUNED_COLUMNS (labels as in summary.csv; `regularizer` is the family label)."""
    picked = select(summary)
    if picked.empty:
        return pd.DataFrame(columns=[*TUNED_COLUMNS, "higher_is_better"])
    df = prepare(cells)
    keep = ["task_label", "arch_label", "reg_label", "regularizer", "strength", "seed",
            "test_metric", "gap_metric"]
    ok = df.loc[df.status == "ok", keep]  # narrow: the loop filters and merges this often
    rows = []
    for r in picked.itertuples(index=False):
        at = ok[(ok.task_label == r.task) & (ok.arch_label == r.arch)
                & (ok.reg_label == r.regularizer) & (ok.strength == r.strength)]
        base = ok[(ok.task_label == r.task) & (ok.arch_label == r.arch)
                  & (ok.regularizer == "none")]
        row = {"task": r.task, "arch": r.arch, "regularizer": r.reg_family,
               "strength": float(r.strength), "n_seeds": int(r.n_seeds),
               "val_metric_mean": r.val_metric_mean, "n_strengths": int(r.n_strengths),
               "metric_name": r.metric_name, "higher_is_better": bool(r.higher_is_better)}
        for col in ("test_metric", "gap_metric"):
            mean, low, high, _ = t_ci(at[col].to_numpy(dtype=float))
            row.update({f"{col}_mean": mean, f"{col}_ci_low": low, f"{col}_ci_high": high})
        nan3 = (math.nan, math.nan, math.nan, math.nan, 0)
        if r.reg_name == "none" or base.empty:
            dt, dg = nan3, nan3
        else:
            pair = at.merge(base, on="seed", suffixes=("", "_none"))
            dt = paired_test(pair.test_metric.to_numpy(dtype=float),
                             pair.test_metric_none.to_numpy(dtype=float))
            dg = paired_test(pair.gap_metric.to_numpy(dtype=float),
                             pair.gap_metric_none.to_numpy(dtype=float))
        row.update({"delta_test_vs_none": dt[0], "delta_test_ci_low": dt[1],
                    "delta_test_ci_high": dt[2], "p_test": dt[3],
                    "delta_gap_vs_none": dg[0], "delta_gap_ci_low": dg[1],
                    "delta_gap_ci_high": dg[2], "p_gap": dg[3], "n_pairs": dt[4]})
        rows.append(row)
    out = pd.DataFrame(rows)
    out["p_test_holm"] = np.nan
    out["p_gap_holm"] = np.nan
    out["best_val"] = False
    for _, g in out.groupby("task", sort=False):
        out.loc[g.index, "p_test_holm"] = holm(g.p_test.to_numpy(dtype=float))
        out.loc[g.index, "p_gap_holm"] = holm(g.p_gap.to_numpy(dtype=float))
    for _, g in out.groupby(["task", "arch"], sort=False):
        val = g.val_metric_mean.astype(float)
        best = val.max() if bool(g.higher_is_better.iloc[0]) else val.min()
        out.loc[g.index[np.isclose(val, best, rtol=TIE_RTOL, atol=0.0)], "best_val"] = True
    return out[TUNED_COLUMNS + ["higher_is_better"]]


def mark_selected(summary: pd.DataFrame, picked: pd.DataFrame) -> pd.DataFrame:
    """`summary` with a `selected` column: True on the validation-selected rows."""
    keys = set(zip(picked.task, picked.arch, picked.regularizer, picked.strength)) \
        if not picked.empty else set()
    return summary.assign(selected=[(t, a, r, s) in keys for t, a, r, s in zip(
        summary.task, summary.arch, summary.regularizer, summary.strength)])


def tuned_cells(cells: pd.DataFrame, tuned_view: pd.DataFrame) -> pd.DataFrame:
    """The prepared cells (every status) of each tuned row: its plain implementation at the
    selected strength; `reg_label` is the family label."""
    df = prepare(cells)
    keys = set(zip(tuned_view.task, tuned_view.arch, tuned_view.regularizer,
                   tuned_view.strength))
    plain = canonical(df)
    hit = [(t, a, f, s) in keys for t, a, f, s in zip(
        plain.task_label, plain.arch_label, plain.reg_family, plain.strength)]
    return plain[hit].assign(reg_label=lambda d: d.reg_family).reset_index(drop=True)


VARIANT_COLUMNS = ["task", "arch", "regularizer", "variant", "strength", "n_pairs",
                   "n_identical", "delta_test_mean", "delta_test_ci_low", "delta_test_ci_high",
                   "delta_gap_mean", "delta_gap_ci_low", "delta_gap_ci_high", "agree"]


def variant_checks(cells: pd.DataFrame) -> pd.DataFrame:
    """Each implementation variant against the plain implementation on the same cells
    (task, arch, strength, seed): paired differences (variant - plain) of test metric and
    gap. `agree`: every pair identical, or the 95% CI of the test difference holds 0."""
    df = prepare(cells)
    ok = df[df.status == "ok"]
    var = ok[ok.variant != ""]
    rows = []
    keys = ["task_label", "arch_label", "reg_family", "variant", "strength"]
    for (task, arch, fam, variant, strength), g in var.groupby(keys, sort=True):
        plain = ok[(ok.task_label == task) & (ok.arch_label == arch) & (ok.reg_family == fam)
                   & (ok.variant == "") & (ok.strength == strength)]
        if plain.empty:
            continue
        pair = g.merge(plain, on="seed", suffixes=("", "_plain"))
        dt = paired_test(pair.test_metric.to_numpy(dtype=float),
                         pair.test_metric_plain.to_numpy(dtype=float))
        dg = paired_test(pair.gap_metric.to_numpy(dtype=float),
                         pair.gap_metric_plain.to_numpy(dtype=float))
        same = int((pair.test_metric == pair.test_metric_plain).sum())
        agree = same == len(pair) or (math.isfinite(dt[1]) and dt[1] <= 0 <= dt[2])
        rows.append({"task": task, "arch": arch, "regularizer": fam, "variant": variant,
                     "strength": float(strength), "n_pairs": len(pair), "n_identical": same,
                     "delta_test_mean": dt[0], "delta_test_ci_low": dt[1],
                     "delta_test_ci_high": dt[2], "delta_gap_mean": dg[0],
                     "delta_gap_ci_low": dg[1], "delta_gap_ci_high": dg[2],
                     "agree": bool(agree)})
    return pd.DataFrame(rows, columns=VARIANT_COLUMNS)


def variant_lines(cells: pd.DataFrame) -> list[str]:
    """One sentence per (family, variant), all its pairs pooled: "fused and plain dropout
    agree: test difference x, 95% CI [a, b] over n paired cells"."""
    df = prepare(cells)
    ok = df[df.status == "ok"]
    lines = []
    for (fam, variant), g in ok[ok.variant != ""].groupby(["reg_family", "variant"], sort=True):
        plain = ok[(ok.reg_family == fam) & (ok.variant == "")]
        keys = ["task_label", "arch_label", "strength", "seed"]
        pair = g.merge(plain, on=keys, suffixes=("", "_plain"))
        if pair.empty:
            continue
        d = (pair.test_metric - pair.test_metric_plain).to_numpy(dtype=float)
        mean, low, high, n = t_ci(d)
        same = bool(np.all(d == 0))
        agree = same or (math.isfinite(low) and low <= 0 <= high)
        ci = "identical in every pair" if same else (
            f"95% CI [{low:.4g}, {high:.4g}]" if math.isfinite(low) else "no CI (one pair)")
        lines.append(f"{variant} and plain {fam} {'agree' if agree else 'differ'}: test "
                     f"{pair.metric_name.iloc[0]} difference {mean:+.4g}, {ci}, over {n} "
                     "paired cells (same task, architecture, strength and seed).")
    return lines
