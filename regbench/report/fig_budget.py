"""Figures of the budget section: what each tuning budget bought.

- `evp`: expected validation performance (Dodge et al. 2019): per setting, one curve per
  regularizer (its study), the expected best validation metric of k trials drawn without
  replacement from the N it ran, k = 1..N, with a ±1 sd band (`tuning.evp`);
- `rank_budget`: each regularizer's mean rank across settings at budgets 1, 2, 4, ..., N,
  the ranks taken from the expected validation performance at that budget.

Each regularizer keeps one colour in both figures; an axes never holds more than
`plotting.MAX_SERIES` curves (more regularizers are split over panels).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from regbench.report.plotting import MAX_SERIES, Figure, save, style

COLUMNS_MAX = 3  # panels per row


MARKERS = ("o", "s", "^", "D", "v")


def _colors(regs: list[str]) -> dict[str, tuple[tuple[float, float, float], str]]:
    """A (colour, marker) per regularizer, unique over all of them: colours repeat after 18,
    markers tell those apart (in a panel and in the one shared legend)."""
    palette = sns.color_palette("tab10", 10) + sns.color_palette("Dark2", 8)
    return {r: (palette[i % len(palette)], MARKERS[i // len(palette) % len(MARKERS)])
            for i, r in enumerate(regs)}


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i:i + MAX_SERIES] for i in range(0, len(items), MAX_SERIES)] or [[]]


def _grid(n: int, width: float = 4.6, height: float = 3.4) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(COLUMNS_MAX, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols + 2.2, height * rows),
                             squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend(fig: plt.Figure, colors: dict[str, tuple[tuple[float, float, float], str]],
            title: str) -> None:
    """One legend for every panel, right of the panels (off the data)."""
    handles = [Line2D([], [], color=c, marker=m, markersize=4, linewidth=1.6, label=r)
               for r, (c, m) in colors.items()]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.95), fontsize=8,
               title=title, title_fontsize=8, frameon=False)


def evp(curves: pd.DataFrame, out_dir: Path, formats: list[str]) -> list[Figure]:
    """`evp.png|pdf`: expected best validation metric against the number of trials."""
    if curves.empty:
        return []
    regs = list(dict.fromkeys(curves.regularizer))
    colors = _colors(regs)
    curves = curves.assign(setting=curves.task + " / " + curves.arch)
    panels = [(s, chunk) for s, g in curves.groupby("setting", sort=False)
              for chunk in _chunks(list(dict.fromkeys(g.regularizer)))]
    metric = curves.metric_name.iloc[0] or "metric"
    with style():
        fig, axes = _grid(len(panels))
        for ax, (setting, chunk) in zip(axes, panels):
            g = curves[curves.setting == setting]
            for reg in chunk:
                c = g[g.regularizer == reg].sort_values("k")
                k, m, sd = (c[x].to_numpy(dtype=float) for x in ("k", "expected_best", "sd"))
                lo, hi = sorted((float(c.worst.iloc[0]), float(c.best.iloc[0])))
                color, marker = colors[reg]
                ax.plot(k, m, color=color, marker=marker, markersize=3, linewidth=1.6,
                        label=reg)
                ax.fill_between(k, np.clip(m - sd, lo, hi), np.clip(m + sd, lo, hi),
                                color=color, alpha=0.15, linewidth=0)
            n = int(g.k.max())
            ax.set_xticks(_ticks(n))
            ax.set(xlabel="trials (k)", ylabel=f"expected best val {g.metric_name.iloc[0]}",
                   title=setting + (" (cont.)" if chunk[0] != g.regularizer.iloc[0] else ""))
            ax.title.set_fontsize(9)
        _legend(fig, colors, "regularizer")
        fig.suptitle(f"Expected best validation {metric} of k trials drawn without replacement "
                     "(band: ±1 sd, within the observed scores)", fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.97))  # room for the title above the top row
        files = save(fig, out_dir, "evp", formats)
    return [Figure("evp", "Expected validation performance against the budget",
                   evp_note(curves), files)]


def _ticks(n: int) -> list[int]:
    """Every k up to 12 trials, else the budgets 1, 2, 4, ..., n."""
    from regbench.tuning.evp import budgets

    return list(range(1, n + 1)) if n <= 12 else budgets(n)


def evp_note(curves: pd.DataFrame) -> str:
    """Per setting, the best regularizer at one trial and at the full budget."""
    parts = []
    for setting, g in curves.groupby("setting", sort=False):
        higher = bool(g.higher_is_better.iloc[0])
        sign = 1.0 if higher else -1.0

        def top(k: int, g: pd.DataFrame = g, sign: float = sign) -> tuple[str, float, float]:
            at = g[g.k == k]
            score = sign * at.expected_best.to_numpy(dtype=float)
            tied = np.isclose(score, np.nanmax(score), rtol=1e-9, atol=0.0)
            first = at[tied].iloc[0]
            return " = ".join(at.regularizer[tied]), float(first.expected_best), float(first.sd)

        n = int(g.k.max())
        (one, m1, s1), (full, mn, _) = top(1), top(n)
        parts.append(f"{setting}: best with one trial {one} ({m1:.3f} ± {s1:.3f}), with all "
                     f"{n} {full} ({mn:.3f})")
    return ("Expected best validation metric (Dodge et al. 2019; failed trials count as the "
            "study's worst). " + "; ".join(parts) + ".")


def rank_budget(ranks: pd.DataFrame, out_dir: Path, formats: list[str]) -> list[Figure]:
    """`rank_budget.png|pdf`: mean rank across settings against the budget."""
    if ranks.empty:
        return []
    regs = list(dict.fromkeys(ranks.regularizer))
    colors = _colors(regs)
    chunks = _chunks(regs)
    n_set = int(ranks.n_settings.max())
    budgets = sorted(ranks.budget.unique())
    top = float(ranks.n_competitors.max())
    with style():
        fig, axes = _grid(len(chunks), width=5.2, height=3.6)
        for i, (ax, chunk) in enumerate(zip(axes, chunks)):
            for reg in chunk:
                r = ranks[ranks.regularizer == reg].sort_values("budget")
                ax.plot(r.budget, r.mean_rank, color=colors[reg][0], marker=colors[reg][1],
                        markersize=4, linewidth=1.6, label=reg)
            ax.set_xscale("log", base=2)
            ax.set_xticks(budgets, [str(b) for b in budgets])
            ax.minorticks_off()
            ax.set_ylim(top + 0.3, 0.7)  # rank 1 (best) at the top
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set(xlabel="budget (trials per study)", ylabel="mean rank (1 = best)",
                   title=f"Mean rank over {n_set} setting{'s' * (n_set != 1)}"
                   + (f" ({i + 1}/{len(chunks)})" if len(chunks) > 1 else ""))
            ax.title.set_fontsize(9)
        _legend(fig, colors, "regularizer")
        fig.suptitle("Rank by expected best validation metric at each budget", fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        files = save(fig, out_dir, "rank_budget", formats)
    return [Figure("rank_budget", "Mean rank against the budget", rank_note(ranks), files)]


def rank_note(ranks: pd.DataFrame) -> str:
    """Who leads at the smallest and at the largest budget, and how many ranks change."""
    lo, hi = int(ranks.budget.min()), int(ranks.budget.max())
    first = ranks[ranks.budget == lo].set_index("regularizer").mean_rank
    last = ranks[ranks.budget == hi].set_index("regularizer").mean_rank
    common = first.index.intersection(last.index)
    order_lo = first[common].rank(method="min").sort_index()
    order_hi = last[common].rank(method="min").sort_index()
    moved = int((order_lo != order_hi).sum())
    return (f"Ranks come from each study's expected best validation metric at the budget "
            f"(not from test numbers). Best mean rank with {lo} trial{'s' * (lo != 1)}: "
            f"{first.idxmin()} ({first.min():.2f}); with {hi}: {last.idxmin()} "
            f"({last.min():.2f}); {moved} of {len(common)} regularizers change place "
            f"between the two budgets."
            + (f" Ranked over the regularizers that run in every setting; left out: "
               f"{', '.join(ranks.attrs['left_out'])}." if ranks.attrs.get("left_out")
               else ""))
