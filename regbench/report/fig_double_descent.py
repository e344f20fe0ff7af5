"""The double-descent figure: train and test error against hidden width (log axis), mean and
95% t-CI bands over seeds, one line pair per regularizer (at most three per panel, so six
series), the interpolation width of each marked (the smallest width whose mean train error
is at most INTERPOLATION_ERROR), and the parameter count on a second x axis when the cells
store it (artifact `model`: {"n_params": int})."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import NullLocator

from regbench.report.plotting import MAX_SERIES, Figure, legend_outside, save, style
from regbench.report.stats import t_ci

INTERPOLATION_ERROR = 0.01  # mean train error at or below this = the model interpolates
PER_PANEL = MAX_SERIES // 2  # regularizers per panel: a train and a test line each


def error_curves(cells: pd.DataFrame) -> pd.DataFrame:
    """Per (regularizer, width, split): mean error and t-CI over the ok seeds."""
    ok = cells[cells.status == "ok"].copy()
    if ok.empty:
        return pd.DataFrame(columns=["reg", "width", "split", "mean", "lo", "hi", "n"])
    ok["width"] = [json.loads(p or "{}").get("width", math.nan) for p in ok.arch_params]
    higher = bool(ok.higher_is_better.iloc[0])
    rows = []
    for (reg, width), g in ok.groupby(["reg_label", "width"], sort=True):
        for col in ("train_metric", "test_metric"):
            v = g[col].to_numpy(dtype=float)
            mean, lo, hi, n = t_ci(1 - v if higher else v)
            rows.append({"reg": reg, "width": float(width), "split": col.split("_")[0],
                         "mean": mean, "lo": lo, "hi": hi, "n": n})
    return pd.DataFrame(rows)


def interpolation_width(d: pd.DataFrame, reg: str) -> float:
    """The smallest width where the mean train error of `reg` is <= INTERPOLATION_ERROR."""
    tr = d[(d.reg == reg) & (d.split == "train") & (d["mean"] <= INTERPOLATION_ERROR)]
    return float(tr.width.min()) if len(tr) else math.nan


def params_by_width(cells: pd.DataFrame, models: dict[str, dict]) -> dict[float, int]:
    """width -> parameter count from the cells' `model` artifacts (empty if none stored)."""
    out: dict[float, int] = {}
    for cid, params in zip(cells.cell_id, cells.arch_params):
        n = (models.get(cid) or {}).get("n_params")
        width = json.loads(params or "{}").get("width")
        if n is not None and width is not None:
            out.setdefault(float(width), int(n))
    return out


def _count(n: int) -> str:
    for unit, k in (("M", 1e6), ("k", 1e3)):
        if n >= k:
            return f"{n / k:.3g}{unit}"
    return str(n)


def double_descent(cells: pd.DataFrame, out_dir: Path, formats: list[str],
                   models: dict[str, dict] | None = None) -> list[Figure]:
    """The figure (see the module docstring) from prepared double-descent cells."""
    d = error_curves(cells)
    if d.empty:
        return []
    regs = list(dict.fromkeys(cells[cells.status == "ok"].reg_label))
    panels = [regs[i:i + PER_PANEL] for i in range(0, len(regs), PER_PANEL)]
    n_params = params_by_width(cells, models or {})
    higher = bool(cells.higher_is_better.dropna().iloc[0])
    ylabel = "error (1 - accuracy)" if higher else str(cells.metric_name.dropna().iloc[0])
    colors = dict(zip(regs, sns.color_palette("tab10", len(regs))))
    with style():
        fig, axes = plt.subplots(len(panels), 1, figsize=(8.5, 4.4 * len(panels)),
                                 squeeze=False)
        for ax, group in zip(axes[:, 0], panels):
            for reg in group:
                for split, ls in (("test", "-"), ("train", ":")):
                    s = d[(d.reg == reg) & (d.split == split)].sort_values("width")
                    ax.plot(s.width, s["mean"], ls, marker="o", ms=3, color=colors[reg],
                            label=f"{reg} ({split})")
                    ax.fill_between(s.width, s.lo, s.hi, color=colors[reg],
                                    alpha=0.2 if split == "test" else 0.1, linewidth=0)
            marks: dict[float, list[str]] = {}
            for reg in group:
                w = interpolation_width(d, reg)
                if math.isfinite(w):
                    marks.setdefault(w, []).append(reg)
            for w, who in marks.items():  # one mark per width, naming its regularizers
                color = colors[who[0]] if len(who) == 1 else "0.3"
                ax.axvline(w, color=color, linestyle="--", linewidth=1)
                ax.annotate("interpolates: " + ", ".join(who), (w, 0.98),
                            xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                            ha="right", va="top", color=color)
            ax.set_xscale("log", base=2)
            widths = sorted(d.width.unique())
            ax.set_xticks(widths, [f"{w:g}" for w in widths])
            ax.minorticks_off()
            ax.set(xlabel="hidden width", ylabel=ylabel)
            if n_params:
                top = ax.secondary_xaxis("top")
                top.set_xticks([w for w in widths if w in n_params],
                               [_count(n_params[w]) for w in widths if w in n_params])
                top.xaxis.set_minor_locator(NullLocator())
                top.tick_params(labelsize=7)
                top.set_xlabel("parameters")
            legend_outside(ax)
        fig.suptitle("Double descent: train (dotted) and test (solid) error vs width (mean, "
                     f"95% t-CI); dashed verticals: first width with train error ≤ "
                     f"{INTERPOLATION_ERROR:g}", fontsize=10)
        fig.tight_layout()
        files = save(fig, out_dir, "double_descent", formats)
    return [Figure("double_descent", "Double descent", _note(d, regs, n_params), files)]


def _note(d: pd.DataFrame, regs: list[str], n_params: dict[float, int]) -> str:
    notes = []
    for reg in regs:
        t = d[(d.reg == reg) & (d.split == "test") & d["mean"].notna()].sort_values("width")
        if t.empty:
            continue
        low = t.loc[t["mean"].idxmin()]
        text = f"{reg}: test error falls to {low['mean']:.3g} at width {low.width:g}"
        later = t[t.width > low.width]
        if not later.empty:
            peak = later.loc[later["mean"].idxmax()]
            text += (f", rises to {peak['mean']:.3g} at width {peak.width:g} and ends at "
                     f"{later['mean'].iloc[-1]:.3g} at width {later.width.iloc[-1]:g}")
        w = interpolation_width(d, reg)
        if math.isfinite(w):
            text += (f"; train error reaches ≤ {INTERPOLATION_ERROR:g} (interpolation) at width "
                     f"{w:g}" + (f" ({n_params[w]} parameters)" if w in n_params else ""))
        else:
            text += f"; train error stays above {INTERPOLATION_ERROR:g} at every width"
        notes.append(text)
    return "; ".join(notes) + "." + ("" if n_params else
                                     " No parameter counts stored: no second axis.")

