"""Figures of the training results: seed 004's family for 1-D tasks (loss traces, predictions,
parameter densities per strength of l2 and dropout), the generalization gap vs strength per
(task, architecture), and the `more_data` learning curve."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from regbench.report.plotting import Figure, save, shades, style
from regbench.report.stats import slug

SEED004_REGS = {"l2": ("Reds", "λ"), "dropout": ("Blues", "p")}


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
            every = sorted(sub.strength.unique())
            strengths = pick_strengths(every)
            seed = int(sub.seed.min())
            colors = dict(zip(strengths, [(0.2, 0.2, 0.2)] * (0 in strengths)
                              + shades(cmap, len(strengths) - (0 in strengths))))
            with style():
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
            if len(strengths) < len(every):
                note += (f" {len(strengths)} of {len(every)} strengths drawn (" + ", ".join(
                    f"{s:g}" for s in strengths) + "); all are in the task table.")
            figs.append(Figure(name, f"{task} / {arch}: {reg} — loss, predictions, parameters",
                               note, files))
    return figs


SEED004_SHOWN = 4  # strengths per figure (none included): the predictions panel adds 2 data series


def pick_strengths(strengths: list[float], k: int = SEED004_SHOWN) -> list[float]:
    """At most k strengths: 0 (none) if present, then evenly spaced ones from weakest to
    strongest (both ends kept)."""
    if len(strengths) <= k:
        return list(strengths)
    base = [s for s in strengths if s == 0][:1]
    rest = [s for s in strengths if s != 0]
    idx = np.unique(np.round(np.linspace(0, len(rest) - 1, k - len(base))).astype(int))
    return base + [rest[i] for i in idx]


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
        with style():
            fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.8 * nrows),
                                     sharey=True, squeeze=False, layout="constrained")
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
    with style():
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


