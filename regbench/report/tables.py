"""Display tables of the report: formatted cells from the frames of `stats`, `tuned`,
`across` and `kernels`, and Markdown rendering.

A display table holds plain strings (names unescaped) plus a mask of bold cells; the
Markdown renderer here and the LaTeX renderer in `latex.py` format it. Nothing in a table
depends on time or machine, so the same store gives byte-identical tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from regbench.report.kernels import size_label
from regbench.report.stats import slug


@dataclass
class DisplayTable:
    """A titled table of strings; `name_columns` hold names (escaped in LaTeX)."""

    name: str
    title: str
    caption: str
    frame: pd.DataFrame
    bold: pd.DataFrame
    name_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Style:
    pm: str
    na: str
    less: str


MD = Style(pm=" ± ", na="—", less="<")
TEX = Style(pm=r" $\pm$ ", na="--", less="$<$")


def _num(x: float, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return ""
    text = f"{x:.{digits}f}"
    return "0." + "0" * digits if text == "-0." + "0" * digits else text


def _claim_num(x: float) -> str:
    """4 decimals, or 3 significant digits where those would print a nonzero value as 0
    (a claim's statistic can be a rounding error, e.g. 3.7e-16)."""
    text = _num(x, 4)
    return f"{x:.3g}" if x and text.lstrip("-") == "0.0000" else text


def mean_ci(mean: float, low: float, high: float, style: Style, digits: int = 3) -> str:
    """`mean ± half-width` of a symmetric t interval; the mean alone when n < 2."""
    if mean is None or not math.isfinite(mean):
        return style.na
    if not (math.isfinite(low) and math.isfinite(high)):
        return _num(mean, digits)
    return _num(mean, digits) + style.pm + _num((high - low) / 2, digits)


def pvalue(p: float, style: Style) -> str:
    if p is None or not math.isfinite(p):
        return style.na
    return f"{style.less}0.001" if p < 0.001 else f"{p:.3f}"


def strength(x: float) -> str:
    return f"{x:g}"


def task_table(summary: pd.DataFrame, task: str, style: Style) -> DisplayTable:
    """The per-task table: one row per (architecture, regularizer, strength)."""
    s = summary[summary.task == task]
    metric = s.metric_name.iloc[0] or "metric"
    arrow = "higher is better" if bool(s.higher_is_better.iloc[0]) else "lower is better"
    cols = ["Arch", "Regularizer", "Strength", "n", f"Train {metric}", f"Test {metric}",
            f"Gap ({metric})", "Gap (loss)", "Δ gap vs none", "p (Holm)", "Diverged/failed"]
    rows, bold = [], []
    for r in s.itertuples(index=False):
        rows.append([
            r.arch, r.regularizer, strength(r.strength), str(r.n_seeds),
            mean_ci(r.train_metric_mean, r.train_metric_ci_low, r.train_metric_ci_high, style),
            mean_ci(r.test_metric_mean, r.test_metric_ci_low, r.test_metric_ci_high, style),
            mean_ci(r.gap_metric_mean, r.gap_metric_ci_low, r.gap_metric_ci_high, style),
            mean_ci(r.gap_loss_mean, r.gap_loss_ci_low, r.gap_loss_ci_high, style),
            mean_ci(r.delta_gap_vs_none, r.delta_gap_ci_low, r.delta_gap_ci_high, style),
            pvalue(r.p_value_holm, style), f"{r.n_diverged}/{r.n_failed}",
        ])
        sel = bool(r.selected)
        bold.append([False, sel, sel, False, False, sel, False, False, False, False, False])
    caption = (f"{task}, every strength: mean ± 95% CI half-width over seeds (Student t, n "
               f"seeds shown); test {metric} {arrow}; gap = train - test accuracy or test - "
               "train RMSE, and test - train loss; Δ gap vs none from a paired t-test on the "
               "same seeds, p Holm-corrected across this table. Bold: the strength each "
               f"regularizer's validation {metric} selects (the tuned view).")
    return DisplayTable(name=f"task_{slug(task)}", title=f"Task {task}: all strengths",
                        caption=caption,
                        frame=pd.DataFrame(rows, columns=cols),
                        bold=pd.DataFrame(bold, columns=cols), name_columns=cols[:2])


def tuned_table(view: pd.DataFrame, task: str, style: Style) -> DisplayTable:
    """The headline table of a task: each regularizer at its validation-selected strength."""
    s = view[view.task == task]
    metric = s.metric_name.iloc[0] or "metric"
    arrow = "higher is better" if bool(s.higher_is_better.iloc[0]) else "lower is better"
    cols = ["Arch", "Regularizer", "Strength", "Tried", "n", f"Val {metric}", f"Test {metric}",
            f"Gap ({metric})", "Δ test vs none", "p (Holm)", "Δ gap vs none", "p gap (Holm)"]
    rows, bold = [], []
    for r in s.itertuples(index=False):
        rows.append([
            r.arch, r.regularizer, strength(r.strength), str(r.n_strengths), str(r.n_seeds),
            _num(r.val_metric_mean) or style.na,
            mean_ci(r.test_metric_mean, r.test_metric_ci_low, r.test_metric_ci_high, style),
            mean_ci(r.gap_metric_mean, r.gap_metric_ci_low, r.gap_metric_ci_high, style),
            mean_ci(r.delta_test_vs_none, r.delta_test_ci_low, r.delta_test_ci_high, style),
            pvalue(r.p_test_holm, style),
            mean_ci(r.delta_gap_vs_none, r.delta_gap_ci_low, r.delta_gap_ci_high, style),
            pvalue(r.p_gap_holm, style),
        ])
        b = bool(r.best_val)
        bold.append([False, b, False, False, False, b, False, False, False, False, False, False])
    caption = (f"{task}, tuned: each regularizer at the strength with the best mean "
               f"validation {metric} over seeds (ties: the weaker one; Tried = strengths "
               f"stored); test {metric} ({arrow}) and gap there, mean ± 95% t-CI half-width; "
               "Δ vs none: paired t-test on the same seeds, p Holm-corrected across this "
               f"table. Bold: best validation {metric} per architecture (the test set chose "
               "nothing)." + detectable_line(s, metric))
    return DisplayTable(name=f"tuned_{slug(task)}", title=f"Task {task}", caption=caption,
                        frame=pd.DataFrame(rows, columns=cols),
                        bold=pd.DataFrame(bold, columns=cols), name_columns=cols[:2])


def detectable_line(view: pd.DataFrame, metric: str) -> str:
    """The smallest paired difference in test metric the seeds could detect, per tuned
    table: the half-width of the paired 95% CI of Δ test vs none at the observed spread
    (a difference smaller than it cannot be told from 0), median over the rows and its
    range; '' when no row has a CI."""
    half = ((view.delta_test_ci_high.astype(float) - view.delta_test_ci_low.astype(float))
            / 2).to_numpy()
    spread = np.array([math.isfinite(h) and h > 0 for h in half], dtype=bool)
    if not spread.any():  # no row's paired differences vary: nothing to estimate it from
        return ""
    pairs = view.n_pairs[spread].astype(int)
    half = half[spread]
    n = f"{pairs.min()}" if pairs.min() == pairs.max() else f"{pairs.min()}-{pairs.max()}"
    low, mid, high = float(half.min()), float(pd.Series(half).median()), float(half.max())
    span = f", range {_num(low)} to {_num(high)}" if len(half) > 1 else ""
    return (f" Detectable with {n} paired seeds: a difference in test {metric} of about "
            f"±{_num(mid)} (the median half-width of the paired 95% CIs of Δ test vs none"
            f"{span}, over the rows whose differences vary); smaller differences cannot be "
            "told from 0.")


def across_table(frame: pd.DataFrame, n_settings: int, friedman_p: float, power: str,
                 style: Style) -> DisplayTable:
    """Across tasks on the tuned view: mean rank (CD test), IQM and P(improvement); `power`
    (`across.power_line`) ends the caption."""
    cols = ["Regularizer", "Settings", "Runs", "Mean rank", "IQM (95% CI)",
            "P(> none) (95% CI)"]
    rows, bold = [], []
    top_rank = frame.mean_rank.min()
    top_iqm = frame.iqm.max()

    def ci(p: float, lo: float, hi: float) -> str:
        if not math.isfinite(p):
            return style.na
        return f"{_num(p)} [{_num(lo)}, {_num(hi)}]"

    for r in frame.itertuples(index=False):
        rows.append([r.regularizer, str(r.n_settings), str(r.n_runs),
                     f"{r.mean_rank:.2f}" if math.isfinite(r.mean_rank) else style.na,
                     ci(r.iqm, r.iqm_ci_low, r.iqm_ci_high),
                     ci(r.poi_vs_none, r.poi_ci_low, r.poi_ci_high)])
        bold.append([False, False, False, bool(r.mean_rank == top_rank), bool(r.iqm == top_iqm),
                     False])
    fried = f"Friedman p = {pvalue(friedman_p, style)}" if math.isfinite(friedman_p) else \
        "no Friedman test (fewer than three regularizers in every setting)"
    caption = ("Across tasks, tuned view. Score: test metric normalized per setting (1 = best, "
               "0 = worst tuned cell; diverged = 0). Mean rank over the "
               f"{n_settings} settings of the largest complete block (1 = best; {fried}; "
               "pairwise Wilcoxon-Holm in the critical-difference diagram); "
               f"{style.na}: not in that block. IQM and probability of improvement over none "
               "(rliable) over the settings each runs in, stratified-bootstrap 95% CIs."
               + (f" {power}" if power else ""))
    return DisplayTable(name="across_tasks", title="Across tasks (tuned view)", caption=caption,
                        frame=pd.DataFrame(rows, columns=cols),
                        bold=pd.DataFrame(bold, columns=cols), name_columns=cols[:1])


def variants_table(checks: pd.DataFrame, style: Style) -> DisplayTable:
    """Implementation variants against the plain implementation on the same cells."""
    cols = ["Task", "Arch", "Regularizer", "Variant", "Strength", "Pairs", "Identical",
            "Δ test (variant - plain)", "Δ gap", "Agree"]
    rows = []
    for r in checks.itertuples(index=False):
        rows.append([r.task, r.arch, r.regularizer, r.variant, strength(r.strength),
                     str(r.n_pairs), str(r.n_identical),
                     mean_ci(r.delta_test_mean, r.delta_test_ci_low, r.delta_test_ci_high,
                             style, 4),
                     mean_ci(r.delta_gap_mean, r.delta_gap_ci_low, r.delta_gap_ci_high,
                             style, 4), "yes" if r.agree else "no"])
    frame = pd.DataFrame(rows, columns=cols)
    caption = ("Implementation variants (a parameter that is not meant to change results, "
               "e.g. the kernel backend) against the plain implementation on the same task, "
               "architecture, strength and seed: mean paired difference ± 95% t-CI "
               "half-width. Agree: every pair identical, or the CI of the test difference "
               "holds 0. Variants are not ranked against their own regularizer.")
    bold = pd.DataFrame(False, index=frame.index, columns=cols)
    bold["Agree"] = frame["Agree"] == "no"
    return DisplayTable(name="variants", title="Implementation variants", caption=caption,
                        frame=frame, bold=bold, name_columns=cols[:4])


def ranking_table(rank: pd.DataFrame, style: Style) -> DisplayTable:
    """Aggregate ranking of regularizers across tasks."""
    cols = ["Regularizer", "Settings", "Cells", "Mean rank (gap)", "Mean rank (test)",
            "IQM normalized gap (95% CI)"]
    rows, bold = [], []
    best_rank = rank.mean_rank_gap.min() if not rank.empty else math.nan
    for r in rank.itertuples(index=False):
        ci = (f"{_num(r.iqm_norm_gap)} [{_num(r.iqm_ci_low)}, {_num(r.iqm_ci_high)}]"
              if math.isfinite(r.iqm_ci_low) else _num(r.iqm_norm_gap))
        rows.append([r.regularizer, str(r.n_settings), str(r.n_cells), f"{r.mean_rank_gap:.2f}",
                     f"{r.mean_rank_test:.2f}", ci])
        top = bool(r.mean_rank_gap == best_rank)
        bold.append([top, False, False, top, False, False])
    caption = ("Regularizers across tasks, every strength pooled (the tuned view is the "
               "headline; implementation variants count as their regularizer). Rank 1 = "
               "smallest mean gap (gap) or best mean test metric (test) within a setting "
               "(task, architecture), "
               "averaged over the settings the regularizer runs in. Normalized gap: 0 = "
               "smallest, 1 = largest gap of any cell in the setting; IQM with a "
               "stratified-bootstrap 95% CI (strata = settings).")
    return DisplayTable(name="ranking", title="Ranking across tasks (all strengths pooled)",
                        caption=caption,
                        frame=pd.DataFrame(rows, columns=cols),
                        bold=pd.DataFrame(bold, columns=cols), name_columns=cols[:1])


def bench_table(pivot: pd.DataFrame, style: Style) -> DisplayTable:
    """Kernel benchmark pivot: op x size rows per configuration (see `kernels.pivot`)."""
    cols = ["Device", "Threads", "Dtype", "Op", "Size", "Ours", "Ours (us)", "Fastest native",
            "Native (us)", "Speed-up", "Fraction of copy"]
    rows = []
    for r in pivot.itertuples(index=False):
        rows.append([str(r.device), f"{int(r.threads):d}" if pd.notna(r.threads) else "",
                     str(r.dtype), str(r.op), size_label(int(r.numel)), str(r.ours),
                     _fmt(r.ours_us, 1, 1), str(r.native), _fmt(r.native_us, 1, 1),
                     (_fmt(r.speedup, 1, 2) + "x") if math.isfinite(r.speedup) else style.na,
                     _fmt(r.fraction_of_copy, 1, 2) or style.na])
    frame = pd.DataFrame(rows, columns=cols)
    caption = ("Kernels against native PyTorch, latest measurement per configuration: our "
               "primary implementation against the fastest native baseline at each size, "
               "timed in the same run (speed-up = native time / ours, > 1 = ours faster), and "
               "our achieved GB/s as a fraction of a same-size copy_ (1.0 = the bandwidth "
               "roofline). Every row and baseline: bench.csv.")
    bold = pd.DataFrame(False, index=frame.index, columns=cols)
    bold["Speed-up"] = pivot.speedup.to_numpy() > 1
    return DisplayTable(name="bench", title="Kernel benchmarks", caption=caption, frame=frame,
                        bold=bold, name_columns=cols[:4] + ["Ours", "Fastest native"])


def claims_table(claims: pd.DataFrame, style: Style) -> DisplayTable:
    """The seed documents' claims: statistic with CI over seeds, criterion, verdict."""
    cols = ["Claim", "Source", "Statistic", "Value (95% CI)", "n", "Criterion", "Reproduced"]
    rows = []
    for r in claims.itertuples(index=False):
        value = _claim_num(r.value) if pd.notna(r.value) else style.na
        if pd.notna(r.ci_low) and pd.notna(r.ci_high):
            value += f" [{_claim_num(r.ci_low)}, {_claim_num(r.ci_high)}]"
        rows.append([str(r.claim), str(r.source), str(r.statistic or ""), value,
                     f"{int(r.n_seeds)}" if pd.notna(r.n_seeds) else "", str(r.criterion),
                     str(r.reproduced)])
    frame = pd.DataFrame(rows, columns=cols)
    caption = ("Each claim of the source documents (shared/seeds/000-004) as a seeded "
               "experiment; criteria were fixed in regbench/claims/ before any run. "
               "`not run`: its cells are not in this store (run `regbench claims`).")
    bold = pd.DataFrame(False, index=frame.index, columns=cols)
    bold["Reproduced"] = frame["Reproduced"] == "yes"
    return DisplayTable(name="claims", title="Claims", caption=caption, frame=frame, bold=bold,
                        name_columns=["Claim", "Statistic", "Criterion", "Reproduced"])


def _fmt(x: object, scale: float, digits: int) -> str:
    try:
        v = float(x) * scale
    except (TypeError, ValueError):
        return ""
    return f"{v:.{digits}f}" if math.isfinite(v) else ""


def to_markdown(table: DisplayTable) -> str:
    """A GitHub pipe table; bold cells wrapped in `**`."""
    def cell(text: str, bold: bool) -> str:
        text = text.replace("|", r"\|")
        return f"**{text}**" if bold and text else text

    cols = list(table.frame.columns)
    right = [c not in table.name_columns for c in cols]
    lines = ["| " + " | ".join(cols) + " |",
             "|" + "|".join("---:" if r else ":---" for r in right) + "|"]
    for i in range(len(table.frame)):
        vals = [cell(str(table.frame.iat[i, j]), bool(table.bold.iat[i, j]))
                for j in range(len(cols))]
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"
