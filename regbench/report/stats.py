"""The statistics of the report: confidence intervals, paired tests, Holm, aggregate ranking.

- Means carry a 95% Student-t interval over seeds: mean +- t(0.975, n-1) * s / sqrt(n).
- A regularizer is compared with `none` on the same seeds (same split, init and order)
  with a two-sided **paired t-test** on the per-seed gaps (`scipy.stats.ttest_rel`). With
  the 2-5 seeds of the built-in matrices a Wilcoxon signed-rank test cannot reach p < 0.05
  (its smallest two-sided p with 5 pairs is 0.0625), so the t-test is the useful choice.
- p-values are Holm-corrected across the comparisons of one task table.
- The ranking across tasks uses a normalized gap: within a setting (task, architecture),
  0 is the smallest gap any stored cell reached and 1 the largest. Per regularizer (all its
  strengths pooled) it reports the mean rank over settings and the interquartile mean
  (IQM) of the normalized gap with a stratified-bootstrap 95% CI (settings are the strata,
  `scipy.stats.bootstrap`, percentile method, fixed seed so reruns are identical).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
STAT_COLUMNS = ("train_metric", "val_metric", "test_metric", "gap_metric", "gap_loss",
                "train_loss", "test_loss")
# Regularizer parameters that choose an implementation, not a method: `dropout[backend=fused]`
# is dropout. Cells that differ only in these are one regularizer (`reg_family`) in the
# tuned view and the rankings, and their agreement is a check (`regbench.report.tuned`).
VARIANT_PARAMS = ("backend",)

# Display order of regularizers: the baseline first, then the order of the matrices.
REG_ORDER = ("none", "l1", "l2", "weight_decay", "adamw", "dropout", "batchnorm",
             "early_stopping", "augment", "more_data", "stochastic_depth", "label_smoothing")


def label(name: str, params_json: str | None) -> str:
    """`name[k=v,...]` exactly like the spec labels (`digits[n_train=300]`)."""
    params = json.loads(params_json) if params_json else {}
    if not params:
        return name
    return name + "[" + ",".join(f"{k}={_value(v)}" for k, v in sorted(params.items())) + "]"


def split_variant(params_json: str | None) -> tuple[str, str]:
    """(params without VARIANT_PARAMS, variant params) as JSON texts; "" for no variant."""
    params = json.loads(params_json) if params_json else {}
    variant = {k: v for k, v in params.items() if k in VARIANT_PARAMS}
    rest = {k: v for k, v in params.items() if k not in VARIANT_PARAMS}
    return json.dumps(rest, sort_keys=True), (json.dumps(variant, sort_keys=True)
                                              if variant else "")


def _value(v: object) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def slug(text: str) -> str:
    """A file-name-safe form of a label."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def t_ci(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE
         ) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of a Student-t interval; NaN bounds when n < 2."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


def paired_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float, int]:
    """Paired t-test of a - b: (mean diff, CI low, CI high, two-sided p, n pairs).

    Identical pairs give p = 1; a constant non-zero difference or n < 2 gives p = NaN.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    d = a - b
    mean, low, high, n = t_ci(d)
    if n < 2:
        return mean, low, high, math.nan, n
    if np.all(d == 0):
        return 0.0, 0.0, 0.0, 1.0, n
    if np.all(d == d[0]):
        return mean, mean, mean, math.nan, n
    p = float(stats.ttest_rel(a, b).pvalue)
    return mean, low, high, p, n


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values; NaNs stay NaN and are not counted in the family."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (25% trimmed from each end)."""
    return stats.trim_mean(x, 0.25, axis=axis)


def stratified_bootstrap_iqm(strata: Sequence[Sequence[float]], seed: int = BOOTSTRAP_SEED,
                             n_resamples: int = BOOTSTRAP_RESAMPLES,
                             confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(IQM, CI low, CI high) with each stratum resampled on its own (`scipy.stats.bootstrap`
    resamples every sample independently, which is the stratified bootstrap).

    Strata with fewer than 2 values cannot be resampled by scipy; then all values are pooled
    into one sample. Fewer than 2 values in all gives NaN bounds.
    """
    arrays = [np.asarray(s, dtype=float) for s in strata if len(s)]
    if not arrays:
        return math.nan, math.nan, math.nan
    pooled = np.concatenate(arrays)
    point = float(iqm(pooled))
    if len(pooled) < 2:
        return point, math.nan, math.nan
    if any(len(a) < 2 for a in arrays):
        arrays = [pooled]
    if np.all(pooled == pooled[0]):
        return point, point, point

    def statistic(*xs: np.ndarray, axis: int = -1) -> np.ndarray:
        return iqm(np.concatenate(xs, axis=axis), axis=axis)

    res = stats.bootstrap(tuple(arrays), statistic, n_resamples=n_resamples, vectorized=True,
                          confidence_level=confidence, method="percentile",
                          rng=np.random.default_rng(seed))
    return point, float(res.confidence_interval.low), float(res.confidence_interval.high)


def prepare(cells: pd.DataFrame) -> pd.DataFrame:
    """Add display labels and the pairing key (`setting`) to a `Store.cells_frame()`."""
    df = cells.copy()
    df["task_label"] = [label(t, p) for t, p in zip(df.task, df.task_params)]
    df["arch_label"] = [label(a, p) for a, p in zip(df.arch, df.arch_params)]
    df["reg_label"] = [label(r, p) for r, p in zip(df.regularizer, df.reg_params)]
    split = [split_variant(p) for p in df.reg_params]
    df["reg_family"] = [label(r, rest) for r, (rest, _) in zip(df.regularizer, split)]
    # A stack: the entry's `with` list is part of the regularizer (so `none + augment` is not
    # the baseline); a block's base recipe is part of the setting, so every stack is compared
    # with `none + base` on the same seeds, and its rows are named `... + base`.
    for col in ("base", "addons"):
        df[col] = df[col].fillna("") if col in df else ""
    with_ = [f" + {w}" if w else "" for w in df.addons]
    on_base = [" + base" if b else "" for b in df.base]
    df["regularizer"] = [r + w for r, w in zip(df.regularizer, with_)]
    df["reg_label"] = [r + w + b for r, w, b in zip(df.reg_label, with_, on_base)]
    df["reg_family"] = [r + w + b for r, w, b in zip(df.reg_family, with_, on_base)]
    df["variant"] = [label("", v).strip("[]") if v else "" for _, v in split]
    df["protocol"] = df["protocol"].fillna("{}")
    # The same task and architecture under two protocols are two settings: say which.
    n_proto = df.groupby(["task_label", "arch_label"])["protocol"].transform("nunique")
    proto = [label("", p).strip("[]") for p in df.protocol]
    df["arch_label"] = [a if k < 2 else f"{a} ({pr or 'default'})"
                        for a, k, pr in zip(df.arch_label, n_proto, proto)]
    df["arch_label"] = [f"{a} on base {b}" if b else a for a, b in zip(df.arch_label, df.base)]
    df["reg_rank"] = [REG_ORDER.index(r.split(" + ")[0]) if r.split(" + ")[0] in REG_ORDER
                      else len(REG_ORDER) for r in df.regularizer]
    return df.sort_values(["task_label", "arch_label", "reg_rank", "reg_label", "strength", "seed",
                           "cell_id"], kind="stable").reset_index(drop=True)


def summarize(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, arch, regularizer, strength): means, t-CIs, the paired test vs none
    (Holm-corrected within each task) and the counts of diverged and failed cells."""
    df = prepare(cells)
    rows = []
    keys = ["task_label", "arch_label", "reg_rank", "reg_label", "strength"]
    for (task, arch, _, reg, strength), g in df.groupby(keys, sort=True):
        ok = g[g.status == "ok"]
        row: dict[str, object] = {
            "task": task, "arch": arch, "regularizer": reg, "strength": float(strength),
            "reg_family": g.reg_family.iloc[0], "variant": g.variant.iloc[0],
            "reg_name": g.regularizer.iloc[0],
            "n_seeds": len(ok), "n_diverged": int((g.status == "diverged").sum()),
            "n_failed": int((g.status == "failed").sum()),
            "metric_name": g.metric_name.dropna().iloc[0] if g.metric_name.notna().any() else "",
            "higher_is_better": bool(g.higher_is_better.dropna().iloc[0])
            if g.higher_is_better.notna().any() else True,
        }
        for col in STAT_COLUMNS:
            values = ok[col].to_numpy(dtype=float) if col in ok else np.array([])
            mean, low, high, _ = t_ci(values)
            row.update({f"{col}_mean": mean, f"{col}_ci_low": low, f"{col}_ci_high": high})
        base = df[(df.task_label == task) & (df.arch_label == arch) & (df.regularizer == "none")
                  & (df.status == "ok")]
        if reg == "none" or base.empty:
            row.update({"delta_gap_vs_none": math.nan, "delta_gap_ci_low": math.nan,
                        "delta_gap_ci_high": math.nan, "delta_test_metric_vs_none": math.nan,
                        "n_pairs": 0, "p_value": math.nan})
        else:
            pair = ok.merge(base, on="seed", suffixes=("", "_none"))
            mean, low, high, p, n = paired_test(pair.gap_metric.to_numpy(dtype=float),
                                                pair.gap_metric_none.to_numpy(dtype=float))
            dtest = (pair.test_metric - pair.test_metric_none).to_numpy(dtype=float)
            row.update({"delta_gap_vs_none": mean, "delta_gap_ci_low": low,
                        "delta_gap_ci_high": high,
                        "delta_test_metric_vs_none": float(dtest.mean()) if n else math.nan,
                        "n_pairs": n, "p_value": p})
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["p_value_holm"] = np.nan
    for _, g in out.groupby("task", sort=False):
        out.loc[g.index, "p_value_holm"] = holm(g.p_value.to_numpy(dtype=float))
    return out


def canonical(df: pd.DataFrame, setting: tuple[str, str] = ("task_label", "arch_label")
              ) -> pd.DataFrame:
    """The rows of one implementation per regularizer family and setting: the plain one
    (no VARIANT_PARAMS) where stored, else the first variant by name. Variants then do not
    compete with their own regularizer."""
    keys = [*setting, "reg_family"]
    first = df.groupby(keys, sort=False)["variant"].transform("min")
    return df[df.variant == first]


def normalized_gaps(cells: pd.DataFrame) -> pd.DataFrame:
    """The ok cells with `norm_gap`: per setting, (gap - min) / (max - min) over its cells."""
    df = canonical(prepare(cells))
    df = df[df.status == "ok"].copy()
    grp = df.groupby(["task_label", "arch_label"])["gap_metric"]
    lo, hi = grp.transform("min"), grp.transform("max")
    span = (hi - lo).where(hi > lo, 1.0)
    df["norm_gap"] = (df.gap_metric - lo) / span
    return df


def ranking(cells: pd.DataFrame) -> pd.DataFrame:
    """Aggregate ranking of regularizers across settings (strengths pooled), best first."""
    df = normalized_gaps(cells)
    if df.empty:
        return pd.DataFrame()
    df = df.assign(reg_label=df.reg_family)  # variants are one regularizer
    per = (df.groupby(["task_label", "arch_label", "reg_label"], sort=True)
             .agg(norm_gap=("norm_gap", "mean"), test=("test_metric", "mean"),
                  higher=("higher_is_better", "first")).reset_index())
    per["rank_gap"] = per.groupby(["task_label", "arch_label"])["norm_gap"].rank(method="average")
    signed = np.where(per.higher.astype(bool), -per.test, per.test)
    per["signed_test"] = signed
    per["rank_test"] = per.groupby(["task_label", "arch_label"])["signed_test"].rank(
        method="average")
    per["n_regs"] = per.groupby(["task_label", "arch_label"])["reg_label"].transform("count")
    rows = []
    for reg, g in df.groupby("reg_label", sort=True):
        strata = [s.norm_gap.to_numpy() for _, s in g.groupby(["task_label", "arch_label"])]
        point, low, high = stratified_bootstrap_iqm(strata)
        p = per[per.reg_label == reg]
        rows.append({"regularizer": reg, "n_settings": len(p), "n_cells": len(g),
                     "mean_rank_gap": float(p.rank_gap.mean()),
                     "mean_rank_test": float(p.rank_test.mean()),
                     "iqm_norm_gap": point, "iqm_ci_low": low, "iqm_ci_high": high})
    out = pd.DataFrame(rows)
    return out.sort_values(["mean_rank_gap", "iqm_norm_gap", "regularizer"],
                           kind="stable").reset_index(drop=True)
