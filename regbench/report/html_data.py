"""What `report.html` embeds: the frames the Markdown report is built from, as JSON.

Nothing here computes a statistic: every number comes from the frames `write_report`
already made (`stats.summarize`, `tuned.tuned`, `stats.ranking`, `across`, `budget`,
`kernels`), and every formatted cell with a CI or p-value is formatted by the same
functions as the Markdown tables (`tables.mean_ci`, `tables.pvalue`). The page's tables
carry, per numeric cell, the text shown and the number it sorts by.

- `tables`: the tuned view, every strength, the ranking, across tasks, implementation
  variants, the equal-budget view and the kernel pivot, each `{id, title, caption, columns,
  rows}`; a row ends with its filter key `[task, arch, regularizer family, statuses]`
  (null: the table has no such column, and every choice keeps the row);
- `cells`: every grid cell, column by column, strings as indices into `labels` (the page
  builds the cells table, the gap and test charts and the cell view from it);
- `lines`: the per-strength means with 95% t-CIs of the charts (from `summary`);
- `curves_text`: one line of JSON per cell (same order as `cells`), its per-epoch curves,
  parsed only when the cell is shown;
- `cd`, `aggregates`, `budget`, `bench`: the critical-difference diagram (SVG and PNG
  data URIs of the report's figure), the rliable aggregates, the budget curves and the
  kernel throughput rows.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regbench.report import tables as rt
from regbench.report.stats import label

DIGITS = 6  # significant digits of the numbers the charts draw
CURVE_DIGITS = 4  # ... of the learning curves
CURVE_POINTS = 150  # at most this many epochs per curve (evenly strided, the last kept)
STATUSES = ("ok", "diverged", "failed")


@dataclass
class Frames:
    """The report's frames, as `write_report` computed them (grid cells only)."""

    prepared: pd.DataFrame  # stats.prepare(cells)
    summary: pd.DataFrame  # stats.summarize + tuned.mark_selected
    view: pd.DataFrame  # tuned.tuned
    rank: pd.DataFrame  # stats.ranking
    across: pd.DataFrame  # across.across_frame (empty without aggregates)
    aggregates: pd.DataFrame  # across.aggregates
    tests: Any  # across.RankTests
    checks: pd.DataFrame  # tuned.variant_checks
    curves: pd.DataFrame | None = None  # Store.curves of the cells
    budget: Any = None  # budget.Parts or None
    bench: pd.DataFrame | None = None  # kernels.latest_bench rows
    pivot: pd.DataFrame | None = None  # kernels.pivot of them


def num(x: Any, digits: int = DIGITS) -> float | None:
    """A finite float rounded to `digits` significant digits, else None (JSON null)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return float(f"{v:.{digits}g}") if math.isfinite(v) else None


def _ci(mean: Any, low: Any, high: Any, digits: int = 3) -> list:
    return [rt.mean_ci(_f(mean), _f(low), _f(high), rt.MD, digits), num(mean)]


def _p(p: Any) -> list:
    return [rt.pvalue(_f(p), rt.MD), num(p)]


def _n(x: Any, digits: int = 3) -> list:
    return [rt._num(_f(x), digits) or rt.MD.na, num(x)]


def _int(x: Any) -> list:
    v = num(x)
    return [str(int(v)) if v is not None else rt.MD.na, v]


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _status(n_ok: int, n_diverged: int, n_failed: int) -> tuple[str, list[str]]:
    """('ok' or '3 ok, 1 diverged', the statuses present) of a row over its cells."""
    counts = dict(zip(STATUSES, (int(n_ok), int(n_diverged), int(n_failed))))
    present = [s for s in STATUSES if counts[s]]
    if present == ["ok"]:
        return "ok", present
    return ", ".join(f"{counts[s]} {s}" for s in present) or "none", present


def _table(tid: str, title: str, caption: str, columns: list[tuple[str, str]],
           rows: list[list]) -> dict:
    return {"id": tid, "title": title, "caption": caption,
            "columns": [{"title": t, "type": k} for t, k in columns], "rows": rows}


# -- tables ---------------------------------------------------------------------------------
def tuned_table(view: pd.DataFrame, summary: pd.DataFrame) -> dict:
    """The tuned view, every task in one table (`tuned.csv`'s rows)."""
    sel = summary[summary.selected] if "selected" in summary else summary.iloc[0:0]
    counts = {(r.task, r.arch, r.reg_family, float(r.strength)): (r.n_seeds, r.n_diverged,
                                                                 r.n_failed)
              for r in sel.itertuples(index=False)}
    rows = []
    for r in view.itertuples(index=False):
        text, present = _status(*counts.get((r.task, r.arch, r.regularizer, float(r.strength)),
                                            (r.n_seeds, 0, 0)))
        rows.append([
            r.task, r.arch, r.regularizer, [rt.strength(r.strength), num(r.strength)],
            _int(r.n_strengths), _int(r.n_seeds), r.metric_name or "",
            _n(r.val_metric_mean),
            _ci(r.test_metric_mean, r.test_metric_ci_low, r.test_metric_ci_high),
            _ci(r.gap_metric_mean, r.gap_metric_ci_low, r.gap_metric_ci_high),
            _ci(r.delta_test_vs_none, r.delta_test_ci_low, r.delta_test_ci_high),
            _p(r.p_test_holm),
            _ci(r.delta_gap_vs_none, r.delta_gap_ci_low, r.delta_gap_ci_high),
            _p(r.p_gap_holm), "yes" if bool(r.best_val) else "", text,
            [r.task, r.arch, r.regularizer, present]])
    cols = [("Task", "text"), ("Arch", "text"), ("Regularizer", "text"), ("Strength", "num"),
            ("Tried", "num"), ("n", "num"), ("Metric", "text"), ("Val", "num"),
            ("Test (95% CI)", "num"), ("Gap (95% CI)", "num"), ("Δ test vs none", "num"),
            ("p (Holm)", "num"), ("Δ gap vs none", "num"), ("p gap (Holm)", "num"),
            ("Best val", "text"), ("Status", "text")]
    caption = ("Each regularizer at the strength with the best mean validation metric over "
               "seeds (ties: the weaker one; Tried = strengths stored); test metric and gap "
               "there, mean ± 95% t-CI half-width; Δ vs none: paired t-test on the same "
               "seeds, p Holm-corrected across the rows of a task. Best val: best validation "
               "metric of its task and architecture. As tuned.csv and tables/tuned_*.")
    return _table("tuned", "Tuned view: each regularizer at its validation-selected strength",
                  caption, cols, rows)


def strengths_table(summary: pd.DataFrame) -> dict:
    """Every strength (`summary.csv`'s rows)."""
    rows = []
    for r in summary.itertuples(index=False):
        text, present = _status(r.n_seeds, r.n_diverged, r.n_failed)
        rows.append([
            r.task, r.arch, r.regularizer, [rt.strength(r.strength), num(r.strength)],
            "yes" if bool(getattr(r, "selected", False)) else "", _int(r.n_seeds),
            r.metric_name or "",
            _ci(r.train_metric_mean, r.train_metric_ci_low, r.train_metric_ci_high),
            _ci(r.val_metric_mean, r.val_metric_ci_low, r.val_metric_ci_high),
            _ci(r.test_metric_mean, r.test_metric_ci_low, r.test_metric_ci_high),
            _ci(r.gap_metric_mean, r.gap_metric_ci_low, r.gap_metric_ci_high),
            _ci(r.gap_loss_mean, r.gap_loss_ci_low, r.gap_loss_ci_high),
            _ci(r.delta_gap_vs_none, r.delta_gap_ci_low, r.delta_gap_ci_high),
            _p(r.p_value_holm), text, [r.task, r.arch, r.reg_family, present]])
    cols = [("Task", "text"), ("Arch", "text"), ("Regularizer", "text"), ("Strength", "num"),
            ("Selected", "text"), ("n", "num"), ("Metric", "text"), ("Train", "num"),
            ("Val", "num"), ("Test", "num"), ("Gap (metric)", "num"), ("Gap (loss)", "num"),
            ("Δ gap vs none", "num"), ("p (Holm)", "num"), ("Status", "text")]
    caption = ("Every strength: mean ± 95% CI half-width over seeds (Student t); gap = train "
               "- test accuracy or test - train RMSE, and test - train loss; Δ gap vs none "
               "from a paired t-test on the same seeds, p Holm-corrected within each task. "
               "Selected: the strength the validation metric selects (the tuned view). As "
               "summary.csv and tables/task_*.")
    return _table("strengths", "Every strength", caption, cols, rows)


def ranking_table(rank: pd.DataFrame) -> dict:
    """The ranking across tasks, strengths pooled (`ranking.csv`)."""
    rows = [[r.regularizer, _int(r.n_settings), _int(r.n_cells),
             [f"{r.mean_rank_gap:.2f}", num(r.mean_rank_gap)],
             [f"{r.mean_rank_test:.2f}", num(r.mean_rank_test)],
             [f"{rt._num(r.iqm_norm_gap)} [{rt._num(r.iqm_ci_low)}, {rt._num(r.iqm_ci_high)}]"
              if math.isfinite(r.iqm_ci_low) else rt._num(r.iqm_norm_gap),
              num(r.iqm_norm_gap)], [None, None, r.regularizer, None]]
            for r in rank.itertuples(index=False)]
    cols = [("Regularizer", "text"), ("Settings", "num"), ("Cells", "num"),
            ("Mean rank (gap)", "num"), ("Mean rank (test)", "num"),
            ("IQM normalized gap (95% CI)", "num")]
    caption = ("Every strength pooled: rank 1 = smallest mean gap (gap) or best mean test "
               "metric (test) within a setting, averaged over the settings the regularizer "
               "runs in; IQM of the normalized gap (0 = smallest, 1 = largest in the "
               "setting) with a stratified-bootstrap 95% CI. As ranking.csv.")
    return _table("ranking", "Ranking across tasks (all strengths pooled)", caption, cols,
                  rows)


def _bracket(p: Any, lo: Any, hi: Any) -> list:
    if num(p) is None:
        return [rt.MD.na, None]
    return [f"{rt._num(_f(p))} [{rt._num(_f(lo))}, {rt._num(_f(hi))}]", num(p)]


def across_table(across: pd.DataFrame, caption: str, tid: str = "across",
                 title: str = "Across tasks (tuned view)") -> dict:
    """Mean rank, IQM and probability of improvement per regularizer (`across.csv`)."""
    rows = [[r.regularizer, _int(r.n_settings), _int(r.n_runs),
             "yes" if bool(r.in_rank_test) else "no",
             [f"{r.mean_rank:.2f}" if math.isfinite(r.mean_rank) else rt.MD.na,
              num(r.mean_rank)],
             _bracket(r.iqm, r.iqm_ci_low, r.iqm_ci_high),
             _bracket(r.poi_vs_none, r.poi_ci_low, r.poi_ci_high),
             [None, None, r.regularizer, None]] for r in across.itertuples(index=False)]
    cols = [("Regularizer", "text"), ("Settings", "num"), ("Runs", "num"),
            ("In rank test", "text"), ("Mean rank", "num"), ("IQM (95% CI)", "num"),
            ("P(> none) (95% CI)", "num")]
    return _table(tid, title, caption, cols, rows)


def variants_table(checks: pd.DataFrame) -> dict:
    """Implementation variants against the plain implementation (`variants.csv`)."""
    rows = [[r.task, r.arch, r.regularizer, r.variant, [rt.strength(r.strength),
             num(r.strength)], _int(r.n_pairs), _int(r.n_identical),
             _ci(r.delta_test_mean, r.delta_test_ci_low, r.delta_test_ci_high, 4),
             _ci(r.delta_gap_mean, r.delta_gap_ci_low, r.delta_gap_ci_high, 4),
             "yes" if r.agree else "no", [r.task, r.arch, r.regularizer, None]]
            for r in checks.itertuples(index=False)]
    cols = [("Task", "text"), ("Arch", "text"), ("Regularizer", "text"), ("Variant", "text"),
            ("Strength", "num"), ("Pairs", "num"), ("Identical", "num"),
            ("Δ test (variant - plain)", "num"), ("Δ gap", "num"), ("Agree", "text")]
    caption = ("Each implementation variant against the plain implementation on the same "
               "task, architecture, strength and seed: mean paired difference ± 95% t-CI "
               "half-width. As variants.csv.")
    return _table("variants", "Implementation variants", caption, cols, rows)


def budget_table(v: pd.DataFrame, words: str) -> dict:
    """One row per tuning study at its budget (`budget.csv`)."""
    rows = []
    for r in v.itertuples(index=False):
        rows.append([
            r.task, r.arch, r.regularizer, r.config or rt.MD.na,
            [f"{r.lr:.3g}" if math.isfinite(r.lr) else rt.MD.na, num(r.lr)],
            [f"{r.n_completed}/{r.budget}", num(r.n_completed)], _n(r.val_selected),
            _int(r.n_seeds), r.metric_name or "",
            _ci(r.test_metric_mean, r.test_metric_ci_low, r.test_metric_ci_high),
            _ci(r.gap_metric_mean, r.gap_metric_ci_low, r.gap_metric_ci_high),
            _ci(r.delta_test_vs_none, r.delta_test_ci_low, r.delta_test_ci_high),
            _p(r.p_test_holm), [r.task, r.arch, r.regularizer, None]])
    cols = [("Task", "text"), ("Arch", "text"), ("Regularizer", "text"),
            ("Selected configuration", "text"), ("lr", "num"), ("Trials ok", "num"),
            ("Val (tuning)", "num"), ("n", "num"), ("Metric", "text"), ("Test (95% CI)", "num"),
            ("Gap (95% CI)", "num"), ("Δ test vs none", "num"), ("p (Holm)", "num")]
    caption = (f"Tuned at equal budget ({words}): each study's configuration with the best "
               "mean validation metric over its tuning seeds, on fresh test seeds; Δ vs none: "
               "paired t-test against none's tuned configuration, p Holm-corrected per task. "
               "As budget.csv and tables/budget_*.")
    return _table("budget", f"Tuned at equal budget ({words})", caption, cols, rows)


def bench_table(pivot: pd.DataFrame) -> dict:
    """The kernel pivot (`tables/bench.*`)."""
    from regbench.report.kernels import size_label

    rows = [[str(r.device), _int(r.threads), str(r.dtype), str(r.op),
             [size_label(int(r.numel)), int(r.numel)], str(r.ours), _n(r.ours_us, 1),
             str(r.native), _n(r.native_us, 1),
             [f"{r.speedup:.2f}x" if math.isfinite(r.speedup) else rt.MD.na, num(r.speedup)],
             _n(r.fraction_of_copy, 2), [None, None, None, None]]
            for r in pivot.itertuples(index=False)]
    cols = [("Device", "text"), ("Threads", "num"), ("Dtype", "text"), ("Op", "text"),
            ("Size", "num"), ("Ours", "text"), ("Ours (us)", "num"), ("Fastest native", "text"),
            ("Native (us)", "num"), ("Speed-up", "num"), ("Fraction of copy", "num")]
    caption = ("Our primary implementation against the fastest native baseline at each size, "
               "latest measurement per configuration (speed-up = native time / ours), and our "
               "GB/s as a fraction of a same-size copy_. Every row: bench.csv.")
    return _table("bench", "Kernel benchmarks", caption, cols, rows)


# -- cells, curves and chart data -------------------------------------------------------------
class _Codes:
    """Strings as small integers, in order of first use."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, text: Any) -> int:
        key = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
        return self.index.setdefault(key, len(self.index))

    @property
    def labels(self) -> list[str]:
        return list(self.index)


def _params(row: Any) -> str:
    parts = [(k, label("", p).strip("[]")) for k, p in (
        ("task", row.task_params), ("arch", row.arch_params), ("reg", row.reg_params),
        ("protocol", row.protocol))]
    text = "; ".join(f"{k} {v}" for k, v in parts if v)
    stack = " + ".join(x for x in (row.addons, row.base and f"base {row.base}") if x)
    return "; ".join(x for x in (text, stack) if x) or "defaults"


NUMERIC = ("strength", "train_metric", "val_metric", "test_metric", "gap_metric", "gap_loss",
           "train_loss", "val_loss", "test_loss", "wall_s")


def cells_block(prepared: pd.DataFrame) -> dict:
    """Every grid cell, column by column (see the module docstring)."""
    codes = {k: _Codes() for k in ("task", "arch", "reg", "family", "status", "metric",
                                   "params")}
    out: dict[str, Any] = {"id": prepared.cell_id.tolist()}
    for key, col in (("task", "task_label"), ("arch", "arch_label"), ("reg", "reg_label"),
                     ("family", "reg_family"), ("status", "status"), ("metric", "metric_name")):
        out[key] = [codes[key](v) for v in prepared[col]]
    out["params"] = [codes["params"](_params(r)) for r in prepared.itertuples(index=False)]
    out["seed"] = [int(s) for s in prepared.seed]
    for col in NUMERIC:
        out[col] = [num(v) for v in prepared[col]] if col in prepared else [None] * len(prepared)
    for col in ("epochs", "best_epoch"):
        out[col] = [None if pd.isna(v) else int(v) for v in prepared[col]]
    out["labels"] = {k: c.labels for k, c in codes.items()}
    return out


def lines_block(summary: pd.DataFrame, cells: dict) -> list[list]:
    """Per summary row: [task, arch, regularizer (indices into the cells' labels), strength,
    gap mean, low, high, test mean, low, high, not-ok cells]."""
    idx = {k: {v: i for i, v in enumerate(cells["labels"][k])} for k in ("task", "arch", "reg")}
    out = []
    for r in summary.itertuples(index=False):
        if r.task not in idx["task"] or r.arch not in idx["arch"] or \
                r.regularizer not in idx["reg"]:
            continue
        out.append([idx["task"][r.task], idx["arch"][r.arch], idx["reg"][r.regularizer],
                     num(r.strength), num(r.gap_metric_mean), num(r.gap_metric_ci_low),
                     num(r.gap_metric_ci_high), num(r.test_metric_mean),
                     num(r.test_metric_ci_low), num(r.test_metric_ci_high),
                     int(r.n_diverged) + int(r.n_failed)])
    return out


def _curve_values(values: np.ndarray) -> str:
    return ",".join(f"{v:.{CURVE_DIGITS}g}" if math.isfinite(v) else "null" for v in values)


def curves_text(ids: list[str], curves: pd.DataFrame | None) -> str:
    """One line per cell of `ids`: `[[epochs], [train_loss], [val_loss], [val_metric]]`
    (`[]` for a cell without curves), at most CURVE_POINTS epochs each."""
    by_cell: dict[str, pd.DataFrame] = {}
    if curves is not None and not curves.empty:
        c = curves[curves.cell_id.isin(set(ids))].sort_values(["cell_id", "epoch"],
                                                              kind="stable")
        by_cell = dict(tuple(c.groupby("cell_id", sort=False)))
    lines = []
    for cid in ids:
        g = by_cell.get(cid)
        if g is None or g.empty:
            lines.append("[]")
            continue
        n = len(g)
        step = max(1, math.ceil(n / CURVE_POINTS))
        keep = list(range(0, n, step))
        if keep[-1] != n - 1:
            keep.append(n - 1)
        g = g.iloc[keep]
        cols = [g[c].to_numpy(dtype=float) for c in ("train_loss", "val_loss", "val_metric")]
        lines.append("[[" + ",".join(str(int(e)) for e in g.epoch) + "],"
                     + ",".join("[" + _curve_values(v) + "]" for v in cols) + "]")
    return "\n".join(lines)


def aggregates_block(agg: pd.DataFrame) -> list[list]:
    """[regularizer, settings, IQM, low, high, P(> none), low, high] per regularizer."""
    if agg is None or agg.empty:
        return []
    return [[r.regularizer, int(r.n_settings), num(r.iqm), num(r.iqm_ci_low),
             num(r.iqm_ci_high), num(r.poi_vs_none), num(r.poi_ci_low), num(r.poi_ci_high)]
            for r in agg.itertuples(index=False)]


def cd_block(tests: Any) -> dict | None:
    """The critical-difference diagram as SVG and PNG data URIs, with its note; None when
    the rank tests have too little to rank."""
    if tests is None or not tests.usable:
        return None
    import matplotlib.pyplot as plt

    from regbench.report.fig_across import cd_figure, cd_note
    from regbench.report.plotting import DPI, style

    out = {"note": cd_note(tests)}
    with style(), plt.rc_context({"svg.hashsalt": "regbench", "svg.fonttype": "path"}):
        fig = cd_figure(tests)
        for fmt, mime, meta in (("svg", "image/svg+xml", {"Date": None}),
                                ("png", "image/png", {"Software": None})):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=DPI, bbox_inches="tight", metadata=meta)
            out[fmt] = f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode()
        plt.close(fig)
    return out


def budget_block(parts: Any) -> dict | None:
    """Expected validation performance and rank against the budget, per study."""
    if parts is None:
        return None
    c = parts.curves
    evp = [[f"{r.task} / {r.arch}", r.regularizer, int(r.k), num(r.expected_best), num(r.sd),
            num(r.worst), num(r.best)] for r in c.itertuples(index=False)]
    ranks = [[r.regularizer, int(r.budget), num(r.mean_rank)]
             for r in parts.ranks.itertuples(index=False)]
    metric = str(c.metric_name.iloc[0]) if len(c) else "metric"
    return {"evp": evp, "ranks": ranks, "metric": metric, "words": parts.words,
            "n_settings": int(parts.ranks.n_settings.max()) if len(parts.ranks) else 0}


def bench_block(latest: pd.DataFrame | None, pivot: pd.DataFrame | None) -> dict | None:
    """GB/s of every implementation against size, and our speed-up over native."""
    from regbench.report import kernels as kb

    if latest is None or latest.empty:
        return None
    rows = latest[latest.gbps.notna()]
    gbps = [[f"{kb.where(r.device, r.threads)}, {r.dtype}", str(r.op), str(r.impl),
             int(r.numel), num(r.gbps), bool(pd.notna(r.baseline)) or r.op == "copy"]
            for r in rows.itertuples(index=False)]
    speed = [] if pivot is None else [
        [f"{kb.where(r.device, r.threads)}, {r.dtype}", str(r.op), int(r.numel),
         num(r.speedup), f"{r.ours} vs {r.native}"] for r in pivot.itertuples(index=False)]
    return {"gbps": gbps, "speedup": speed}


def build(f: Frames, info: Any) -> tuple[dict, str]:
    """(the page's data, its curves text) from the report's frames and `index.RunInfo`."""
    cells = cells_block(f.prepared)
    tables = []
    if not f.view.empty:
        tables.append(tuned_table(f.view, f.summary))
    if not f.summary.empty:
        tables.append(strengths_table(f.summary))
    if not f.rank.empty:
        tables.append(ranking_table(f.rank))
    if f.across is not None and not f.across.empty:
        from regbench.report.across import left_out_line, power_line

        tables.append(across_table(f.across, (
            "Score: test metric normalized per setting (1 = best, 0 = worst tuned cell; "
            "diverged = 0). Mean rank over the largest complete block (1 = best); IQM and "
            "probability of improvement over none (rliable), stratified-bootstrap 95% CIs. "
            + power_line(f.tests) + " " + left_out_line(f.tests) + " As across.csv.")))
    if not f.checks.empty:
        tables.append(variants_table(f.checks))
    if f.budget is not None and not f.budget.view.empty:
        tables.append(budget_table(f.budget.view, f.budget.words))
        if not f.budget.across.empty:
            from regbench.report.across import power_line

            tables.append(across_table(
                f.budget.across, "The across-task statistics of the tuned view on the "
                "budget's final cells. " + power_line(f.budget.tests) + " As "
                "budget_across.csv.", "budget_across",
                f"Across tasks at equal budget ({f.budget.words})"))
    if f.pivot is not None and not f.pivot.empty:
        tables.append(bench_table(f.pivot))
    ok = f.prepared.status.value_counts() if not f.prepared.empty else pd.Series(dtype=int)
    data = {
        "title": f"regbench report: matrix {info.matrix}",
        "info": {"matrix": info.matrix, "description": info.description,
                 "command": info.command, "n_matrix": int(info.n_matrix),
                 "counts": {s: int(ok.get(s, 0)) for s in STATUSES}},
        "tables": tables,
        "cells": cells,
        "lines": lines_block(f.summary, cells) if not f.summary.empty else [],
        "cd": cd_block(f.tests),
        "aggregates": aggregates_block(f.aggregates),
        "budget": budget_block(f.budget),
        "bench": bench_block(f.bench, f.pivot),
    }
    return data, curves_text(cells["id"], f.curves)


def to_json(data: Any) -> str:
    """Compact JSON that is safe inside a `<script>` element (no `</`)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).replace("</", "<\\/")
