"""The report's figures (seaborn on matplotlib's Agg backend), written as PNG and/or PDF.

- The figure family of seed 004 for 1-D tasks (curve, periodic), per regularizer l2 and
  dropout: training-loss traces (log y, darker = stronger), predictions against the data,
  and the kernel density of the parameters before and after training.
- For every (task, architecture): the generalization gap vs strength, one panel per
  regularizer, mean with a 95% t-CI band, `none` as a grey reference band.
- The learning curve of `more_data` (none = the full training split).
- Double descent (test error vs width) when the `double-descent` matrix cells are stored.
- Kernel throughput vs native PyTorch and vs the copy roofline when benchmark rows exist.

Every function returns `Figure` records (files plus a short data-driven note) for the index.
Output files carry no timestamps, so the same store gives the same images.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from regbench.report_stats import slug, t_ci  # noqa: E402

DPI = 110
SEED004_REGS = {"l2": ("Reds", "λ"), "dropout": ("Blues", "p")}


@dataclass
class Figure:
    """A written figure: its name, title, one data-driven sentence and the files."""

    name: str
    title: str
    note: str
    files: list[Path] = field(default_factory=list)


@contextmanager
def _style() -> Iterator[None]:
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.1), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def save(fig: plt.Figure, out_dir: Path, name: str, formats: list[str]) -> list[Path]:
    """Write `fig` as out_dir/name.<fmt> for each format (no timestamps inside) and close it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        meta = {"CreationDate": None} if fmt == "pdf" else {"Software": None} if fmt == "png" \
            else None
        fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata=meta)
        if fmt == "png":
            _palette_png(path)
        paths.append(path)
    plt.close(fig)
    return paths


def _palette_png(path: Path) -> None:
    """Re-save a PNG with a 256-colour palette (a third of the size; plots have few colours)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def _shades(cmap: str, n: int) -> list[tuple[float, float, float]]:
    """n colours of a sequential palette, light to dark, skipping the near-white end."""
    return list(sns.color_palette(cmap, n + 2))[2:] if n else []


# -- seed 004 -----------------------------------------------------------------------------
def seed004(cells: pd.DataFrame, curves: pd.DataFrame, predictions: dict, before: dict,
            after: dict, out_dir: Path, formats: list[str]) -> list[Figure]:
    """Loss traces, predictions and parameter densities per strength of l2 and dropout."""
    figs = []
    ok = cells[cells.status == "ok"]
    one_dim = ok[ok.cell_id.isin(set(predictions))]
    for (task, arch), g in one_dim.groupby(["task_label", "arch_label"], sort=True):
        none = g[g.regularizer == "none"]
        for reg, (cmap, sym) in SEED004_REGS.items():
            r = g[g.regularizer == reg]
            if r.empty:
                continue
            sub = pd.concat([none, r])
            strengths = sorted(sub.strength.unique())
            seed = int(sub.seed.min())
            colors = dict(zip(strengths, [(0.2, 0.2, 0.2)] * (0 in strengths)
                              + _shades(cmap, len(strengths) - (0 in strengths))))
            with _style():
                fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
                final = _loss_traces(axes[0], sub, curves, strengths, colors, sym)
                _predictions(axes[1], sub, predictions, strengths, colors, sym, seed)
                spread = _densities(axes[2], sub, before, after, strengths, colors, sym, seed)
                fig.suptitle(f"{task} / {arch}: {reg} (seed-004 figures; darker = stronger)")
                fig.tight_layout()
                name = f"seed004_{slug(task)}_{slug(arch)}_{reg}"
                files = save(fig, out_dir, name, formats)
            lo, hi = strengths[0], strengths[-1]
            note = (f"Final training loss goes from {final.get(lo, math.nan):.3g} at {sym}={lo:g} "
                    f"to {final.get(hi, math.nan):.3g} at {sym}={hi:g}; the spread (std) of the "
                    f"parameters after training from {spread.get(lo, math.nan):.3g} to "
                    f"{spread.get(hi, math.nan):.3g} (seed {seed}).")
            figs.append(Figure(name, f"{task} / {arch}: {reg} — loss, predictions, parameters",
                               note, files))
    return figs


def _loss_traces(ax: plt.Axes, sub: pd.DataFrame, curves: pd.DataFrame, strengths: list[float],
                 colors: dict, sym: str) -> dict[float, float]:
    final = {}
    for s in strengths:
        ids = set(sub[sub.strength == s].cell_id)
        c = curves[curves.cell_id.isin(ids)].groupby("epoch")["train_loss"].mean()
        if c.empty:
            continue
        ax.plot(c.index, c.to_numpy(), color=colors[s], label=f"{sym}={s:g}",
                linestyle="--" if s == 0 else "-")
        final[s] = float(c.iloc[-1])
    ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="training loss (MSE, mean over seeds)",
           title="training loss")
    ax.legend(fontsize=8)
    return final


def _predictions(ax: plt.Axes, sub: pd.DataFrame, predictions: dict, strengths: list[float],
                 colors: dict, sym: str, seed: int) -> None:
    shown = False
    for s in strengths:
        rows = sub[(sub.strength == s) & (sub.seed == seed)]
        if rows.empty or rows.cell_id.iloc[0] not in predictions:
            continue
        p = predictions[rows.cell_id.iloc[0]]
        if not shown:
            ax.scatter(p["x"], p["y"], s=5, color="0.85", label="test data", zorder=1)
            ax.scatter(p["x_train"], p["y_train"], s=7, color="0.45", alpha=0.8,
                       label="train data", zorder=2)
            shown = True
        order = np.argsort(p["x"], kind="stable")
        ax.plot(np.asarray(p["x"])[order], np.asarray(p["pred"])[order], color=colors[s],
                label=f"{sym}={s:g}", zorder=3, linewidth=1.8, linestyle="--" if s == 0 else "-")
    ax.set(xlabel="x", ylabel="y (standardized)", title=f"predictions (seed {seed})")
    ax.legend(fontsize=8)


def _densities(ax: plt.Axes, sub: pd.DataFrame, before: dict, after: dict,
               strengths: list[float], colors: dict, sym: str, seed: int) -> dict[float, float]:
    spread = {}
    drawn_init = False
    for s in strengths:
        rows = sub[(sub.strength == s) & (sub.seed == seed)]
        if rows.empty:
            continue
        cid = rows.cell_id.iloc[0]
        if not drawn_init and cid in before:
            sns.kdeplot(x=np.asarray(before[cid]), ax=ax, color="0.3", linestyle="--",
                        label="before training", warn_singular=False)
            drawn_init = True
        if cid in after:
            vals = np.asarray(after[cid])
            spread[s] = float(vals.std())
            sns.kdeplot(x=vals, ax=ax, color=colors[s], label=f"after, {sym}={s:g}",
                        warn_singular=False)
    ax.set(xlabel="parameter value", ylabel="density", title="parameters (KDE)")
    ax.legend(fontsize=8)
    return spread


# -- gap vs strength ----------------------------------------------------------------------
def _sweep_points(summary: pd.DataFrame, min_points: int = 3) -> set[tuple[str, str]]:
    """(task, arch) settings that are points of an architecture sweep (at least `min_points`
    settings of one task and arch family, e.g. the double-descent widths) with a single
    strength per regularizer: a gap-vs-strength figure of each would hold one point a panel.
    Their numbers are in the task tables (and the double-descent figure)."""
    family = summary.arch.astype(str).str.split("[").str[0]
    reg = summary[summary.regularizer != "none"]
    per_reg = reg.groupby(["task", "arch", "regularizer"]).strength.nunique()
    single = {k for k, v in per_reg.groupby(level=[0, 1]).max().items() if v <= 1}
    points = summary.assign(family=family).groupby(["task", "family"]).arch.nunique()
    return {(t, a) for t, a in single
            if points.get((t, a.split("[")[0]), 0) >= min_points}


def gap_vs_strength(summary: pd.DataFrame, out_dir: Path, formats: list[str]) -> list[Figure]:
    """One figure per (task, arch): gap vs strength per regularizer, none as reference
    (not for the points of an architecture sweep: see `_sweep_points`)."""
    figs = []
    skip = _sweep_points(summary)
    for (task, arch), g in summary.groupby(["task", "arch"], sort=False):
        regs = [r for r in dict.fromkeys(g.regularizer) if r != "none"]
        if not regs or (task, arch) in skip:
            continue
        metric = g.metric_name.iloc[0]
        base = g[g.regularizer == "none"]
        ncols = min(4, len(regs))
        nrows = math.ceil(len(regs) / ncols)
        with _style():
            fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.8 * nrows),
                                     sharey=True, squeeze=False)
            colors = sns.color_palette("tab10", len(regs))
            for ax, reg, color in zip(axes.flat, regs, colors):
                r = g[(g.regularizer == reg) & (g.n_seeds > 0)].sort_values("strength")
                x = r.strength.to_numpy(dtype=float)
                if not base.empty and base.n_seeds.iloc[0] > 0:
                    b = base.iloc[0]
                    ax.axhline(b.gap_metric_mean, color="0.4", linestyle="--", linewidth=1,
                               label="none")
                    if math.isfinite(b.gap_metric_ci_low):
                        ax.axhspan(b.gap_metric_ci_low, b.gap_metric_ci_high, color="0.85",
                                   zorder=0)
                if len(r):
                    y = r.gap_metric_mean.to_numpy(dtype=float)
                    lo = r.gap_metric_ci_low.to_numpy(dtype=float)
                    hi = r.gap_metric_ci_high.to_numpy(dtype=float)
                    ax.plot(x, y, marker="o", color=color, label=reg)
                    if len(r) > 1:
                        ax.fill_between(x, lo, hi, color=color, alpha=0.25, linewidth=0)
                    else:
                        ax.errorbar(x, y, yerr=[y - lo, hi - y], color=color, capsize=3)
                    if len(x) > 1 and x.min() > 0 and x.max() / x.min() >= 10:
                        ax.set_xscale("log")
                        ax.minorticks_off()
                    ax.set_xticks(x, [f"{v:g}" for v in x])
                    if len(x) == 1:
                        ax.set_xlim(x[0] * 0.5, x[0] * 1.5) if x[0] else ax.set_xlim(-1, 1)
                bad = int(g[g.regularizer == reg][["n_diverged", "n_failed"]].to_numpy().sum())
                ax.set_title(reg + (f" ({bad} diverged/failed)" if bad else ""), fontsize=10)
                ax.set_xlabel(_strength_name(reg))
            for ax in axes.flat[len(regs):]:
                ax.set_visible(False)
            for ax in axes[:, 0]:
                ax.set_ylabel(f"gap ({metric})")
            fig.suptitle(f"{task} / {arch}: generalization gap vs strength "
                         "(mean, 95% t-CI over seeds; grey = none)")
            fig.tight_layout()
            name = f"gap_{slug(task)}_{slug(arch)}"
            files = save(fig, out_dir, name, formats)
        figs.append(Figure(name, f"{task} / {arch}: gap vs strength", _gap_note(g), files))
    return figs


def _strength_name(reg: str) -> str:
    from regbench.registry import REGULARIZERS

    try:
        return f"strength ({REGULARIZERS.get(reg.split('[')[0]).strength_name})"
    except Exception:  # noqa: BLE001 - a label from an older suite: plain axis name
        return "strength"


def _gap_note(g: pd.DataFrame) -> str:
    d = g[g.delta_gap_vs_none.notna()]
    if d.empty:
        return "No paired comparison with none (no none cells with ok status)."
    best = d.loc[d.delta_gap_vs_none.idxmin()]
    worst = d.loc[d.delta_gap_vs_none.idxmax()]
    sig = int((d.p_value_holm < 0.05).sum())
    return (f"Largest gap reduction vs none: {best.regularizer}={best.strength:g} "
            f"(Δ gap {best.delta_gap_vs_none:+.3g}); largest increase: "
            f"{worst.regularizer}={worst.strength:g} (Δ gap {worst.delta_gap_vs_none:+.3g}); "
            f"{sig} of {len(d)} differences significant at 0.05 after Holm.")


# -- learning curve -----------------------------------------------------------------------
def learning_curve(summary: pd.DataFrame, out_dir: Path, formats: list[str]) -> list[Figure]:
    """Train and test metric vs training fraction (more_data; none = 1.0), per setting."""
    settings = [k for k, g in summary.groupby(["task", "arch"], sort=False)
                if ((g.regularizer == "more_data") & (g.n_seeds > 0)).any()]
    if not settings:
        return []
    ncols = min(3, len(settings))
    nrows = math.ceil(len(settings) / ncols)
    notes = []
    with _style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
        for ax, (task, arch) in zip(axes.flat, settings):
            g = summary[(summary.task == task) & (summary.arch == arch)
                        & summary.regularizer.isin(["more_data", "none"]) & (summary.n_seeds > 0)]
            g = g.assign(fraction=np.where(g.regularizer == "none", 1.0, g.strength))
            g = g.sort_values("fraction")
            metric = g.metric_name.iloc[0]
            for col, color in (("train_metric", "tab:blue"), ("test_metric", "tab:orange")):
                x = g.fraction.to_numpy(dtype=float)
                ax.plot(x, g[f"{col}_mean"], marker="o", color=color, label=col.split("_")[0])
                ax.fill_between(x, g[f"{col}_ci_low"], g[f"{col}_ci_high"], color=color,
                                alpha=0.25, linewidth=0)
            ax.set(xlabel="fraction of the training split", ylabel=metric,
                   title=f"{task} / {arch}")
            ax.legend(fontsize=8)
            first, last = g.iloc[0], g.iloc[-1]
            notes.append(f"{task}: test {metric} {first.test_metric_mean:.3g} at "
                         f"{first.fraction:g} → {last.test_metric_mean:.3g} at {last.fraction:g}")
        for ax in axes.flat[len(settings):]:
            ax.set_visible(False)
        fig.suptitle("Learning curve (more_data; mean and 95% t-CI over seeds)")
        fig.tight_layout()
        files = save(fig, out_dir, "learning_curve", formats)
    return [Figure("learning_curve", "Learning curve (more_data)", "; ".join(notes) + ".", files)]


# -- double descent -----------------------------------------------------------------------
def double_descent(cells: pd.DataFrame, out_dir: Path, formats: list[str]) -> list[Figure]:
    """Test (and train) error vs hidden width, per regularizer, mean and t-CI over seeds."""
    ok = cells[cells.status == "ok"].copy()
    if ok.empty:
        return []
    ok["width"] = [json.loads(p or "{}").get("width", math.nan) for p in ok.arch_params]
    higher = bool(ok.higher_is_better.iloc[0])
    err = (lambda v: 1 - v) if higher else (lambda v: v)  # noqa: E731
    rows = []
    for (reg, width), g in ok.groupby(["reg_label", "width"], sort=True):
        for col in ("train_metric", "test_metric"):
            mean, lo, hi, n = t_ci(err(g[col].to_numpy(dtype=float)))
            rows.append({"reg": reg, "width": width, "split": col.split("_")[0], "mean": mean,
                         "lo": lo, "hi": hi})
    d = pd.DataFrame(rows)
    ylabel = "error (1 - accuracy)" if higher else ok.metric_name.iloc[0]
    with _style():
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        colors = sns.color_palette("tab10", d.reg.nunique())
        for (reg, color) in zip(dict.fromkeys(d.reg), colors):
            for split, ls in (("test", "-"), ("train", ":")):
                s = d[(d.reg == reg) & (d.split == split)].sort_values("width")
                ax.plot(s.width, s["mean"], ls, marker="o", ms=3, color=color,
                        label=f"{reg} ({split})")
                if split == "test":
                    ax.fill_between(s.width, s.lo, s.hi, color=color, alpha=0.2, linewidth=0)
        ax.set_xscale("log", base=2)
        ax.set(xlabel="hidden width", ylabel=ylabel,
               title="Double descent: error vs width (mean, 95% t-CI)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        files = save(fig, out_dir, "double_descent", formats)
    notes = []
    for reg in dict.fromkeys(d.reg):
        t = d[(d.reg == reg) & (d.split == "test") & d["mean"].notna()].sort_values("width")
        tr = d[(d.reg == reg) & (d.split == "train") & d["mean"].notna()].sort_values("width")
        if t.empty:
            continue
        low = t.loc[t["mean"].idxmin()]
        text = f"{reg}: test error falls to {low['mean']:.3g} at width {low.width:g}"
        later = t[t.width > low.width]
        if not later.empty:
            peak = later.loc[later["mean"].idxmax()]
            text += (f", rises to {peak['mean']:.3g} at width {peak.width:g} and ends at "
                     f"{later['mean'].iloc[-1]:.3g} at width {later.width.iloc[-1]:g}")
        fit = tr[tr["mean"] <= 0.01]
        if not fit.empty:
            text += f"; train error reaches ~0 (interpolation) at width {fit.width.iloc[0]:g}"
        notes.append(text)
    return [Figure("double_descent", "Double descent", "; ".join(notes) + ".", files)]


# -- kernel benchmarks --------------------------------------------------------------------
def latest_bench(bench: pd.DataFrame) -> pd.DataFrame:
    """The most recent row per (op, impl, baseline, backend, dtype, numel, threads, device)."""
    if bench.empty:
        return bench
    keys = ["op", "impl", "baseline", "backend", "dtype", "numel", "threads", "device"]
    b = bench.sort_values("id", kind="stable")
    b = b.groupby(keys, dropna=False, sort=False).tail(1)
    return b.sort_values(["op", "device", "dtype", "threads", "impl", "numel"],
                         kind="stable").reset_index(drop=True)


def kernel_throughput(bench: pd.DataFrame, out_dir: Path, formats: list[str]) -> list[Figure]:
    """One figure per dtype: per op, bandwidth (or time) vs size per implementation with the
    `copy_` roofline, and the time ratios ours/native and ours/copy (< 1 = ours faster)."""
    b = latest_bench(bench)
    if b.empty:
        return []
    # CPU rows by thread count and GPU rows side by side: one line style per device/threads
    device = b.device.fillna("cpu").astype(str)
    b = b.assign(where=device.where(device != "cpu", "cpu " + b.threads.astype(str) + " thr"))
    dtypes = list(dict.fromkeys(b.dtype.astype(str)))
    return [_throughput_figure(b[b.dtype.astype(str) == dt], dt, len(dtypes) > 1, out_dir,
                               formats) for dt in dtypes]


def _throughput_figure(b: pd.DataFrame, dtype: str, suffix: bool, out_dir: Path,
                       formats: list[str]) -> Figure:
    copy = b[b.op == "copy"]
    ops = [o for o in dict.fromkeys(b.op) if o != "copy"] or ["copy"]
    name = f"kernel_throughput_{slug(dtype)}" if suffix else "kernel_throughput"
    with _style():
        fig, axes = plt.subplots(len(ops), 2, figsize=(12, 3.3 * len(ops)), squeeze=False)
        for i, op in enumerate(ops):
            o = b[b.op == op]
            left, right = axes[i]
            y, ylabel = (("gbps", "GB/s") if o.gbps.notna().any()
                         else ("median_us", "median time (us)"))
            o = o.assign(median_us=o.median_s * 1e6)
            sns.lineplot(data=o, x="numel", y=y, hue="impl", style="where", marker="o",
                         ax=left, errorbar=None)
            if y == "gbps" and not copy.empty and op != "copy":
                for w, c in copy.groupby("where", sort=True):
                    left.plot(c.numel, c.gbps, ":", color="black", linewidth=1.2,
                              label=f"copy_ roofline ({w})")
            left.set(xscale="log", yscale="log", title=f"{op} ({dtype})", ylabel=ylabel,
                     xlabel="numel")
            left.legend(fontsize=6, ncol=2)
            ours = o[o.baseline.notna()] if o.baseline.notna().any() else o
            for col, ls in (("ratio_vs_native", "-"), ("ratio_vs_copy", "--")):
                rr = ours[ours[col].notna()]
                keys = ["impl", "baseline", "where"] if col == "ratio_vs_native" \
                    else ["impl", "where"]
                for key, r in rr.groupby(keys, sort=True, dropna=False):
                    r = r.drop_duplicates("numel")
                    what = f"vs {key[1]}" if col == "ratio_vs_native" else "vs copy_"
                    right.plot(r.numel, r[col], ls, marker="o", ms=3,
                               label=f"{key[0]} {what} ({key[-1]})")
            right.axhline(1.0, color="0.4", linewidth=1)
            right.set(xscale="log", yscale="log", xlabel="numel",
                      ylabel="time ratio (ours / ref)",
                      title=f"{op}: < 1 = ours faster; solid vs native, dashed vs copy_")
            if right.get_legend_handles_labels()[0]:
                right.legend(fontsize=6)
        fig.tight_layout()
        fig.suptitle(f"Kernel throughput, {dtype} (latest run) — " + _machine_line(b), y=1.005)
        files = save(fig, out_dir, name, formats)
    notes = []
    for op in ops:
        o = b[(b.op == op) & b.ratio_vs_native.notna() & b.baseline.notna()]
        if not o.empty:
            notes.append(f"{op}: ours/native time {o.ratio_vs_native.min():.3g}–"
                         f"{o.ratio_vs_native.max():.3g}"
                         + (f", ours/copy_ {o.ratio_vs_copy.min():.3g}–"
                            f"{o.ratio_vs_copy.max():.3g}" if o.ratio_vs_copy.notna().any()
                            else ""))
    note = ("Time ratios (< 1 = ours faster) — " + "; ".join(notes) + "."
            if notes else "No ratios recorded.")
    return Figure(name, f"Kernel throughput vs native and copy ({dtype})", note, files)


def _machine_line(b: pd.DataFrame) -> str:
    parts = []
    for m in dict.fromkeys(b.machine.dropna()):
        try:
            d = json.loads(m)
        except (TypeError, ValueError):
            continue
        parts.append(", ".join(str(d[k]) for k in ("cpu_model", "gpu", "threads") if d.get(k)))
    return "; ".join(dict.fromkeys(parts)) or "machine not recorded"
