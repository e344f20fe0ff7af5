"""Display tables of the report: formatted cells from the summary, and Markdown rendering.

A display table holds plain strings (names unescaped) plus a mask of bold cells; the
Markdown renderer here and the LaTeX renderer in `latex.py` format it. Nothing in a table
depends on time or machine, so the same store gives byte-identical tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from regbench.report_stats import slug


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
        best = bool(r.best)
        bold.append([False, best, best, False, False, best, False, False, False, False, False])
    caption = (f"{task}: mean ± 95% CI half-width over seeds (Student t, n seeds "
               f"shown); test {metric} {arrow}; gap = train - test accuracy or test - train "
               "RMSE, and test - train loss; Δ gap vs none from a paired t-test on the same "
               "seeds, p Holm-corrected across this table. Bold: best test "
               f"{metric}.")
    return DisplayTable(name=f"task_{slug(task)}", title=f"Task {task}", caption=caption,
                        frame=pd.DataFrame(rows, columns=cols),
                        bold=pd.DataFrame(bold, columns=cols), name_columns=cols[:2])


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
    caption = ("Regularizers across tasks (strengths pooled). Rank 1 = smallest mean gap "
               "(gap) or best mean test metric (test) within a setting (task, architecture), "
               "averaged over the settings the regularizer runs in. Normalized gap: 0 = "
               "smallest, 1 = largest gap of any cell in the setting; IQM with a "
               "stratified-bootstrap 95% CI (strata = settings).")
    return DisplayTable(name="ranking", title="Ranking across tasks", caption=caption,
                        frame=pd.DataFrame(rows, columns=cols),
                        bold=pd.DataFrame(bold, columns=cols), name_columns=cols[:1])


def bench_table(bench: pd.DataFrame, style: Style) -> DisplayTable:
    """Kernel benchmark: one row per (op, impl, dtype, numel, device, threads), latest run."""
    cols = ["Op", "Impl", "Baseline", "Device", "Dtype", "Numel", "Threads", "Median (us)",
            "GB/s", "Ratio vs native", "Ratio vs copy"]
    rows = []
    for r in bench.itertuples(index=False):
        rows.append([str(r.op), str(r.impl), str(r.baseline or ""), str(r.device or ""),
                     str(r.dtype or ""), f"{int(r.numel):d}" if pd.notna(r.numel) else "",
                     f"{int(r.threads):d}" if pd.notna(r.threads) else "",
                     _fmt(r.median_s, 1e6, 2), _fmt(r.gbps, 1, 2),
                     _fmt(r.ratio_vs_native, 1, 3), _fmt(r.ratio_vs_copy, 1, 3)])
    frame = pd.DataFrame(rows, columns=cols)
    caption = ("Kernels against their references (latest measurement per configuration): "
               "median time, bandwidth, and time ratios ours/native and ours/copy_ measured "
               "in the same run (< 1 = ours faster).")
    return DisplayTable(name="bench", title="Kernel benchmarks", caption=caption, frame=frame,
                        bold=pd.DataFrame(False, index=frame.index, columns=cols),
                        name_columns=cols[:5])


def claims_table(claims: pd.DataFrame, style: Style) -> DisplayTable:
    """The seed documents' claims: statistic with CI over seeds, criterion, verdict."""
    cols = ["Claim", "Source", "Statistic", "Value (95% CI)", "n", "Criterion", "Reproduced"]
    rows = []
    for r in claims.itertuples(index=False):
        value = _num(r.value, 4) if pd.notna(r.value) else style.na
        if pd.notna(r.ci_low) and pd.notna(r.ci_high):
            value += f" [{_num(r.ci_low, 4)}, {_num(r.ci_high, 4)}]"
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
