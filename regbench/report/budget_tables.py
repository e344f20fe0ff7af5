"""The budget section's display tables (Markdown and LaTeX, through `tables.DisplayTable`):
one per task at its budget, the across-task statistics on the final cells, the cocktails
and tunability. The frames they show are computed in `budget`."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pandas as pd

from regbench.report import tables as rt
from regbench.report.budget import CHOSEN_BY_GRID, Parts, protocol_words
from regbench.report.stats import slug


def budget_table(v: pd.DataFrame, task: str, style: rt.Style) -> rt.DisplayTable:
    """The tuned-at-budget table of a task: one row per study."""
    s = v[v.task == task]
    metric = s.metric_name.iloc[0] or "metric"
    arrow = "higher is better" if bool(s.higher_is_better.iloc[0]) else "lower is better"
    cols = ["Arch", "Regularizer", "Selected configuration", "lr", "Trials ok",
            f"Val {metric} (tuning)", f"Val {metric} (test seeds)", "n", f"Test {metric}",
            f"Gap ({metric})", "Δ test vs none", "p (Holm)", "Δ gap vs none", "p gap (Holm)"]
    rows, bold = [], []
    for r in s.itertuples(index=False):
        rows.append([
            r.arch, r.regularizer, r.config or style.na,
            f"{r.lr:.3g}" if math.isfinite(r.lr) else style.na,
            f"{r.n_completed}/{r.budget}", rt._num(r.val_selected) or style.na,
            rt._num(r.val_final_mean) or style.na, str(r.n_seeds),
            rt.mean_ci(r.test_metric_mean, r.test_metric_ci_low, r.test_metric_ci_high, style),
            rt.mean_ci(r.gap_metric_mean, r.gap_metric_ci_low, r.gap_metric_ci_high, style),
            rt.mean_ci(r.delta_test_vs_none, r.delta_test_ci_low, r.delta_test_ci_high, style),
            rt.pvalue(r.p_test_holm, style),
            rt.mean_ci(r.delta_gap_vs_none, r.delta_gap_ci_low, r.delta_gap_ci_high, style),
            rt.pvalue(r.p_gap_holm, style)])
        b = bool(r.best_val)
        bold.append([False, b, False, False, False, False, b] + [False] * 7)
    caption = (f"{task}, tuned at equal budget ({protocol_words(s)}; the learning rate "
               "searched with the regularizer's knobs): each study's configuration with the "
               f"best mean validation {metric} over its tuning seeds (Val (tuning)) ran on "
               f"fresh test seeds; test {metric} ({arrow}) and gap there, mean ± 95% t-CI "
               "half-width over n seeds. Trials ok: configurations whose every cell trained "
               "ok, of the budget. Δ vs none: paired t-test against none's tuned "
               "configuration on the same seeds, p Holm-corrected across this table. Bold: "
               f"best mean validation {metric} on the test seeds per architecture. The grid's "
               f"tuned view instead has {CHOSEN_BY_GRID}.")
    return rt.DisplayTable(name=f"budget_{slug(task)}", title=f"Task {task} at "
                           f"{protocol_words(s)}", caption=caption,
                           frame=pd.DataFrame(rows, columns=cols),
                           bold=pd.DataFrame(bold, columns=cols), name_columns=cols[:3])


def across_table(frame: pd.DataFrame, n_settings: int, friedman_p: float, power: str,
                 words: str, style: rt.Style) -> rt.DisplayTable:
    """The across-task table of the final cells (the grid's layout, this protocol's words;
    `power`: `across.power_line` of its rank tests)."""
    t = rt.across_table(frame, n_settings, friedman_p, power, style)
    caption = t.caption.replace("Across tasks, tuned view.", f"Across tasks, tuned at equal "
                                f"budget ({words}), on the final cells.")
    caption = caption.replace("0 = worst tuned cell", "0 = worst final cell")
    return replace(t, name="budget_across", title=f"Across tasks at equal budget ({words})",
                   caption=caption)


def cocktail_table(c: pd.DataFrame, words: str, style: rt.Style) -> rt.DisplayTable:
    """Each cocktail's selected members against the best single regularizer and none."""
    metric = c.metric_name.iloc[0] or "metric"
    cols = ["Task", "Arch", "Selected cocktail", f"Test {metric}", "Best single (by val)",
            f"Its test {metric}", "Δ test vs best single", "p (Holm)", "Δ test vs none",
            "p none (Holm)"]
    rows, bold = [], []
    for r in c.itertuples(index=False):
        rows.append([
            r.task, r.arch, r.selected,
            rt.mean_ci(r.test_metric_mean, r.test_metric_ci_low, r.test_metric_ci_high, style),
            r.best_single_config or style.na, rt._num(r.best_single_test_mean) or style.na,
            rt.mean_ci(r.delta_test_vs_single, r.delta_single_ci_low, r.delta_single_ci_high,
                       style), rt.pvalue(r.p_single_holm, style),
            rt.mean_ci(r.delta_test_vs_none, r.delta_test_ci_low, r.delta_test_ci_high,
                       style), rt.pvalue(r.p_test_holm, style)])
        sig = math.isfinite(r.p_single_holm) and r.p_single_holm < 0.05
        bold.append([False, False, False, False, False, False, sig, sig, False, False])
    caption = (f"Cocktails at equal budget ({words}): the members (and strengths) the "
               "cocktail search selected per setting on validation, against the "
               "single-regularizer study with the best mean validation metric on the test "
               "seeds and against none's tuned configuration, all at the same budget; "
               "Δ: paired t-test on the final cells of the same seeds (mean ± 95% t-CI "
               "half-width), p Holm-corrected across this table. Bold: the cocktail differs "
               "from the best single regularizer at 0.05.")
    return rt.DisplayTable(name="budget_cocktails", title=f"Cocktails at equal budget ({words})",
                           caption=caption, frame=pd.DataFrame(rows, columns=cols),
                           bold=pd.DataFrame(bold, columns=cols), name_columns=cols[:3] + [
                               "Best single (by val)"])


def tunability_table(t: pd.DataFrame, words: str, style: rt.Style) -> rt.DisplayTable:
    """Validation and test gain of the tuned configuration over the default."""
    metric = t.metric_name.iloc[0] or "metric"
    cols = ["Task", "Arch", "Regularizer", "Default (strength, lr)", "Tuned configuration",
            "Tuned lr", f"Val {metric} gain", f"Test {metric} gain", "p (Holm)", "Pairs"]
    rows, bold = [], []
    for r in t.itertuples(index=False):
        ds = "—" if r.default_strength is None or not math.isfinite(r.default_strength) \
            else f"{r.default_strength:g}"
        rows.append([
            r.task, r.arch, r.regularizer,
            f"{ds if r.regularizer != 'none' else 'none'}, {r.default_lr:g}",
            r.config, f"{r.lr:.3g}", f"{r.val_gain:+.3f}" if math.isfinite(r.val_gain)
            else style.na,
            rt.mean_ci(r.test_gain, r.test_gain_ci_low, r.test_gain_ci_high, style),
            rt.pvalue(r.p_value_holm, style), str(r.n_pairs)])
        sig = math.isfinite(r.p_value_holm) and r.p_value_holm < 0.05
        bold.append([False] * 7 + [sig, sig, False])
    caption = (f"Tunability (Probst et al. 2019) at {words}: the tuned configuration against "
               "the regularizer's first default strength at the protocol's lr (grid cells on "
               "the same test seeds); gain = tuned - default, signed so that positive is "
               f"better for {metric}. Val gain: difference of the mean validation metrics; "
               "test gain: mean paired difference by seed ± 95% t-CI half-width, paired "
               "t-test, p Holm-corrected within each task. For none, only the lr was tuned. "
               "Cocktails have no default and are left out. Bold: p < 0.05.")
    return rt.DisplayTable(name="tunability", title=f"Tunability ({words})", caption=caption,
                           frame=pd.DataFrame(rows, columns=cols),
                           bold=pd.DataFrame(bold, columns=cols),
                           name_columns=[*cols[:3], "Tuned configuration"])


def pairs(parts: Parts, both: Any) -> list[tuple[rt.DisplayTable, rt.DisplayTable]]:
    """The section's (md, tex) display tables, in index order; `both(make, *args)` builds
    one table in both styles (write.py's `_both`)."""
    from regbench.report import across as ax

    out = [both(budget_table, parts.view, t) for t in parts.tasks]
    if not parts.across.empty:
        out.append(both(across_table, parts.across, len(parts.tests.settings),
                        parts.tests.friedman_p, ax.power_line(parts.tests), parts.words))
    if not parts.cocktails.empty:
        out.append(both(cocktail_table, parts.cocktails, parts.words))
    if not parts.tunability.empty:
        out.append(both(tunability_table, parts.tunability, parts.words))
    return out
