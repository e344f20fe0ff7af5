"""Kernel figures, two per device and dtype, one panel per op (and CPU thread count):

- speed-up over native: grouped bars by size, one bar per (our impl, native baseline), log
  y with a line at 1 (above = ours faster);
- achieved bandwidth as a fraction of the same-size `copy_` (the roofline), one line per
  implementation (ours solid, native dashed), a line at 1.0.

At most MAX_SERIES series per panel (the benchmark's pairs beyond that are in bench.csv, and
the note says so); legends sit outside the data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from regbench.report import kernels as kb
from regbench.report.plotting import MAX_SERIES, Figure, save, style
from regbench.report.stats import slug


def kernel_figures(bench: pd.DataFrame, out_dir: Path, formats: list[str]) -> list[Figure]:
    """The speed-up and fraction-of-copy figures of every (device, dtype) in the rows."""
    b = kb.latest_bench(bench)
    if b.empty:
        return []
    figs = []
    for (device, dtype), g in b.groupby(["device", "dtype"], sort=True):
        tag = f"{slug(device)}_{slug(dtype)}"
        speed = _speedup(g, device, dtype, f"kernel_speedup_{tag}", out_dir, formats)
        bw = _bandwidth(g, device, dtype, f"kernel_bandwidth_{tag}", out_dir, formats)
        figs += [f for f in (speed, bw) if f is not None]
    return figs


ROW_OPS = {"mlp_step": "batch rows"}  # ops whose size axis is not a tensor's element count
PANEL_COLS = 3  # with one device configuration the op panels wrap into this many columns


def _grid(ops: list[str], wheres: list[str]) -> tuple[plt.Figure, list[list[plt.Axes]]]:
    """axes[i][j] for op i and configuration j: rows = ops, columns = configurations, or,
    with one configuration, the op panels wrapped into PANEL_COLS columns."""
    if len(wheres) > 1:
        fig, axes = plt.subplots(len(ops), len(wheres), figsize=(5.0 * len(wheres),
                                 4.2 * len(ops)), squeeze=False)
        return fig, [list(row) for row in axes]
    ncols = min(PANEL_COLS, len(ops))
    nrows = -(-len(ops) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 4.2 * nrows), squeeze=False)
    flat = list(axes.flat)
    for extra in flat[len(ops):]:
        extra.set_visible(False)
    return fig, [[ax] for ax in flat[:len(ops)]]


def _legend_below(ax: plt.Axes) -> None:
    """The legend under the axes (outside the data, not eating the panel's width)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=7, ncol=1,
                  frameon=False)


def _times_axis(ax: plt.Axes) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))


def _wheres(g: pd.DataFrame) -> pd.Series:
    return pd.Series([kb.where(d, t) for d, t in zip(g.device, g.threads)], index=g.index)


def _panels(frame: pd.DataFrame, ops: list[str], wheres: list[str],
            draw: Callable[[plt.Axes, pd.DataFrame], int], title: str, name: str,
            out_dir: Path, formats: list[str]) -> tuple[list[str], int]:
    """One panel per (op, configuration) of `frame`: `draw` plots the panel's rows and sets
    its y axis, returning how many series it left out; every panel then gets the 1.0 line,
    its labels and the legend below. Returns the files written and the series left out."""
    dropped = 0
    with style():
        fig, axes = _grid(ops, wheres)
        for i, op in enumerate(ops):
            for j, w in enumerate(wheres):
                ax = axes[i][j]
                dropped += draw(ax, frame[(frame.op == op) & (frame.config == w)])
                ax.axhline(1.0, color="0.2", linewidth=1)
                ax.set(xlabel=ROW_OPS.get(op, "elements"), title=f"{op} — {w}")
                _legend_below(ax)
        fig.suptitle(title, y=1.01)
        fig.tight_layout()
        files = save(fig, out_dir, name, formats)
    return files, dropped


def _speedup(b: pd.DataFrame, device: str, dtype: str, name: str, out_dir: Path,
             formats: list[str]) -> Figure | None:
    comp = kb.comparisons(b)
    if comp.empty:
        return None
    comp = comp.assign(config=_wheres(comp))
    ops = list(dict.fromkeys(comp.sort_values("id").op))
    wheres = list(dict.fromkeys(comp.sort_values(["threads", "id"]).config))

    def draw(ax: plt.Axes, c: pd.DataFrame) -> int:
        c = c.sort_values("id", kind="stable")
        pairs = list(dict.fromkeys(zip(c.impl, c.baseline)))
        left_out = max(0, len(pairs) - MAX_SERIES)
        pairs = pairs[:MAX_SERIES]
        sizes = sorted(c.numel.unique())
        width = 0.8 / max(1, len(pairs))
        colors = sns.color_palette("tab10", len(pairs))
        for k, ((impl, base), color) in enumerate(zip(pairs, colors)):
            p = c[(c.impl == impl) & (c.baseline == base)].set_index("numel")
            y = [float(p.speedup.get(n, math.nan)) for n in sizes]
            x = np.arange(len(sizes)) + (k - (len(pairs) - 1) / 2) * width
            ax.bar(x, np.asarray(y) - 1.0, bottom=1.0, width=width, color=color,
                   label=f"{impl} vs {base}")  # bars grow from 1: up = ours faster
        _times_axis(ax)
        ys = c.speedup.astype(float)
        ax.set_ylim(min(0.5, ys.min() / 1.3), max(2.0, ys.max() * 1.3))
        ax.set_xticks(np.arange(len(sizes)), [kb.size_label(n) for n in sizes])
        ax.set(ylabel="speed-up over native")
        return left_out

    files, dropped = _panels(
        comp, ops, wheres, draw,
        f"Speed-up over native, {device} {dtype} (native time / our time, same run; > 1 = "
        "ours faster) — " + _machine_line(b), name, out_dir, formats)
    notes = []
    for op in ops:
        c = comp[comp.op == op]
        fastest = c.groupby(["config", "numel"]).speedup.min()  # against the fastest native
        notes.append(f"{op} {fastest.min():.2g}–{fastest.max():.2g}x")
    note = ("Speed-up of ours over the fastest native baseline, over sizes and thread counts: "
            + "; ".join(notes) + "." + (f" {dropped} further pairs are in bench.csv only."
                                        if dropped else ""))
    return Figure(name, f"Kernel speed-up over native ({device}, {dtype})", note, files)


def _bandwidth(b: pd.DataFrame, device: str, dtype: str, name: str, out_dir: Path,
               formats: list[str]) -> Figure | None:
    bw = kb.bandwidth(b)
    if bw.empty:
        return None
    bw = bw.assign(config=_wheres(bw))
    ops = list(dict.fromkeys(bw.sort_values("id", kind="stable").op))
    wheres = list(dict.fromkeys(bw.sort_values(["threads", "id"]).config))

    def draw(ax: plt.Axes, o: pd.DataFrame) -> int:
        impls = list(dict.fromkeys(o.sort_values(["ours", "id"], ascending=[False, True])
                                   .impl))
        left_out = max(0, len(impls) - MAX_SERIES)
        impls = impls[:MAX_SERIES]
        colors = sns.color_palette("tab10", len(impls))
        for impl, color in zip(impls, colors):
            r = o[o.impl == impl].sort_values("numel")
            mine = bool(r.ours.iloc[0])
            ax.plot(r.numel, r.fraction_of_copy, "-" if mine else "--", marker="o",
                    ms=4, color=color, label=impl + (" (ours)" if mine else ""))
        ax.set_xscale("log", base=2)
        sizes = sorted(o.numel.unique())
        ax.set_xticks(sizes, [kb.size_label(n) for n in sizes])
        ax.minorticks_off()
        ax.set_ylim(0, max(1.1, float(o.fraction_of_copy.max()) * 1.1))
        ax.set(ylabel="GB/s ÷ copy_ GB/s")
        return left_out

    files, dropped = _panels(
        bw, ops, wheres, draw,
        f"Achieved bandwidth as a fraction of a same-size copy_, {device} {dtype} (1.0 = the "
        "roofline) — " + _machine_line(b), name, out_dir, formats)
    ours = bw[bw.ours]
    notes = [f"{op} {g.fraction_of_copy.min():.2f}–{g.fraction_of_copy.max():.2f}"
             for op, g in ours.groupby("op", sort=False)]
    note = ("Our kernels' bandwidth as a fraction of copy_, over sizes and thread counts: "
            + "; ".join(notes) + "." + (f" {dropped} further implementations are in bench.csv "
                                        "only." if dropped else ""))
    return Figure(name, f"Kernel bandwidth vs copy_ ({device}, {dtype})", note, files)


def _machine_line(b: pd.DataFrame) -> str:
    parts = []
    for m in dict.fromkeys(b.machine.dropna()):
        try:
            d = json.loads(m)
        except (TypeError, ValueError):
            continue
        parts.append(", ".join(str(d[k]) for k in ("cpu_model", "gpu") if d.get(k)))
    return "; ".join(p for p in dict.fromkeys(parts) if p) or "machine not recorded"
