"""The report's index, `README.md`: what was run, provenance, every table, every figure.

Everything in it is derived from the store (the provenance dates are the cells' own start
and end times), so the same store gives the same file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from regbench.report.plotting import Figure
from regbench.report.stats import prepare
from regbench.report.tables import MD, DisplayTable, pvalue, to_markdown

SELECTION_LINE = ("Strengths are selected on validation: each regularizer's strength is the one "
                  "with the best mean validation metric over seeds (ties: the weaker one), and "
                  "the test metric is reported at that strength; no test number chose anything.")


@dataclass
class Section:
    """A `## heading` of the index: intro lines, then (table, note) pairs."""

    heading: str
    tables: list[tuple[DisplayTable, str]]
    intro: list[str] = field(default_factory=list)
    subheadings: bool = False  # each table under its own `### title`
    figures: list[Figure] = field(default_factory=list)  # shown in the section, after tables


@dataclass
class RunInfo:
    """What the index says about the run: the matrix, its cells and how many are stored."""

    matrix: str
    description: str
    command: str
    n_matrix: int
    skipped: list[str] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)  # the plugin code the report's cells name
    changed_code: list[str] = field(default_factory=list)  # cells made by other plugin code
    conflicts: list[str] = field(default_factory=list)  # cells with a second result (merge)


def _values(series: pd.Series) -> str:
    vals = [str(v) for v in dict.fromkeys(series.dropna())]
    return ", ".join(vals) if vals else "not recorded"


def counts_line(cells: pd.DataFrame) -> str:
    c = cells.status.value_counts()
    return (f"{int(c.get('ok', 0))} ok, {int(c.get('diverged', 0))} diverged, "
            f"{int(c.get('failed', 0))} failed")


def _significance(rows: pd.DataFrame, against: str) -> list[str]:
    """`k of n test differences from <against> significant at 0.05 after Holm (a +0.012)`,
    or nothing when no row has a p-value."""
    d = rows[rows.p_test_holm.notna()]
    if d.empty:
        return []
    sig = d[d.p_test_holm < 0.05]
    return [f"{len(sig)} of {len(d)} test differences from {against} significant at 0.05 "
            "after Holm" + (" (" + ", ".join(
                f"{r.regularizer} {r.delta_test_vs_none:+.3f}"
                for r in sig.itertuples(index=False)) + ")" if len(sig) else "")]


def tuned_note(view: pd.DataFrame, task: str) -> str:
    """One data-driven sentence under a tuned table."""
    s = view[view.task == task]
    metric = s.metric_name.iloc[0]
    parts = []
    for b in s[s.best_val].itertuples(index=False):
        parts.append(f"best validation {metric} on {b.arch}: {b.regularizer}={b.strength:g} "
                     f"(validation {b.val_metric_mean:.3f}, test {b.test_metric_mean:.3f})")
    parts += _significance(s, "none")
    text = "; ".join(parts)
    return (text[:1].upper() + text[1:] + ".") if text else "No validation metric stored."


def task_note(summary: pd.DataFrame, task: str) -> str:
    """One data-driven sentence under an all-strengths task table."""
    s = summary[summary.task == task]
    parts = []
    d = s[s.delta_gap_vs_none.notna()]
    if not d.empty:
        r = d.loc[d.delta_gap_vs_none.idxmin()]
        p = pvalue(r.p_value_holm, MD)
        p = "n/a" if p == MD.na else p if p.startswith("<") else "= " + p
        parts.append(f"Closed the gap most: {r.regularizer}={r.strength:g} "
                     f"(Δ gap {r.delta_gap_vs_none:+.3f} vs none, Holm p {p})")
        sig = d[d.p_value_holm < 0.05]
        parts.append(f"{len(sig)} of {len(d)} differences from none significant at 0.05 "
                     "after Holm")
    bad = int(s.n_diverged.sum() + s.n_failed.sum())
    if bad:
        parts.append(f"{int(s.n_diverged.sum())} diverged and {int(s.n_failed.sum())} failed "
                     "cells are counted in the last column and left out of the means")
    if not parts:
        return "No ok cells."
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def ranking_note(rank: pd.DataFrame) -> str:
    if rank.empty:
        return "No ok cells to rank."
    top = rank.iloc[0]
    iqm = rank.loc[rank.iqm_norm_gap.idxmin()]
    test = rank.loc[rank.mean_rank_test.idxmin()]
    return (f"Smallest gap by mean rank: {top.regularizer} ({top.mean_rank_gap:.2f} over "
            f"{top.n_settings} settings); lowest IQM normalized gap: {iqm.regularizer} "
            f"({iqm.iqm_norm_gap:.3f}); best test metric by mean rank: {test.regularizer} "
            f"({test.mean_rank_test:.2f}). A small gap can also mean underfitting: read it "
            "with the test-metric rank. Regularizers that run in fewer settings "
            "(label_smoothing: classification only; stochastic_depth: residual nets) are "
            "ranked among fewer competitors.")


def provenance_lines(cells: pd.DataFrame) -> list[str]:
    started = cells.started_at.dropna()
    finished = cells.finished_at.dropna()
    when = (f"{started.min()} to {finished.max()}" if len(started) and len(finished)
            else "not recorded")
    return [
        "| | |", "|:---|:---|",
        f"| suite version | {_values(cells.suite_version)} |",
        f"| regbench | {_values(cells.regbench_version)} |",
        f"| git commit | {_values(cells.git_commit)} |",
        f"| torch | {_values(cells.torch_version)} |",
        f"| python | {_values(cells.python_version)} |",
        f"| device | {_values(cells.device)} |",
        f"| CPU | {_values(cells.cpu_model)} |",
        f"| threads per cell | {_values(cells.threads)} |",
        f"| cells ran | {when} |",
    ]


def source_lines(cells: pd.DataFrame, sources: dict[str, dict]) -> list[str]:
    """The datasets the cells trained on, from their `data_source` artifacts (an OpenML
    task's ids, dataset name, version, md5 and licence): a table with one row per task
    label and source; [] when no cell stored one."""
    rows: dict[tuple[str, str], dict] = {}
    if not sources or not {"cell_id", "task_label"} <= set(cells.columns):
        return []
    for cell_id, task in zip(cells.cell_id, cells.task_label):
        src = sources.get(cell_id)
        if isinstance(src, dict):
            rows.setdefault((task, json.dumps(src, sort_keys=True)), src)
    if not rows:
        return []
    out = ["### Data sources", "",
           "Each cell stores where its data came from; the checksum is the one the file was "
           "verified against before any cell ran.", "",
           "| task | source | OpenML task | dataset | version | md5 | licence | rows |",
           "|:---|:---|---:|:---|---:|:---|:---|---:|"]
    for (task, _), s in sorted(rows.items()):
        kind = f" ({s['task_type']})" if s.get("task_type") else ""
        out.append(f"| {task} | {s.get('source', '')} {s.get('server') or ''} | "
                   f"{s.get('task_id', '—')}{kind} | {s.get('data_id', '')} "
                   f"{s.get('name', '')} | {s.get('version', '')} | {s.get('md5') or '—'} | "
                   f"{s.get('licence') or '—'} | {s.get('rows', '')} |")
    return [*out, ""]


def problem_lines(cells: pd.DataFrame, limit: int = 20) -> list[str]:
    bad = cells[cells.status != "ok"]
    lines = []
    for r in bad.head(limit).itertuples(index=False):
        err = (r.error or "").strip().splitlines()
        lines.append(f"- `{r.status}` {r.task_label} / {r.arch_label} / {r.reg_label}="
                     f"{r.strength:g} / seed {r.seed}: {err[0] if err else 'no message'}")
    if len(bad) > limit:
        lines.append(f"- ... and {len(bad) - limit} more (see `regbench show --all-columns`)")
    return lines


# What a cell's result is, for "changed nothing": every loss and metric it stores.
RESULT_COLUMNS = ("train_loss", "val_loss", "test_loss", "train_metric", "val_metric",
                  "test_metric")


def noop_lines(cells: pd.DataFrame) -> list[str]:
    """One line per (task, arch, regularizer, strength) whose every ok cell equals the `none`
    cell of its seed (same setting and base) in every stored loss and metric, bit for bit:
    the regularizer never acted there (a max-norm radius no weight reaches, a plugin whose
    hooks never fire). Its row reads Δ 0 in the tables; this says why."""
    df = prepare(cells)
    ok = df[df.status == "ok"]
    keys = ["task_label", "arch_label", "seed"]
    cols = [c for c in RESULT_COLUMNS if c in ok]
    none = ok[ok.regularizer == "none"][[*keys, *cols]]
    rest = ok[ok.regularizer != "none"]
    if none.empty or rest.empty or not cols:
        return []
    pair = rest.merge(none, on=keys, suffixes=("", "_none"))
    same = np.ones(len(pair), dtype=bool)
    for c in cols:
        a, b = pair[c].astype(float), pair[f"{c}_none"].astype(float)
        same &= ((a == b) | (a.isna() & b.isna())).to_numpy()
    group = ["task_label", "arch_label", "reg_label", "strength"]
    # one pass each: per group, whether every paired seed is identical and how many are
    # paired; and how many ok cells the group has (a seed without a `none` cell counts)
    paired = pd.Series(same, index=pair.index).groupby(
        [pair[g] for g in group], sort=False).agg(["all", "size"])
    n_ok = rest.groupby(group, sort=False).size().reindex(paired.index, fill_value=0)
    never = paired[paired["all"] & (paired["size"] == n_ok)]
    return [f"- {task} / {arch} / {reg}={strength:g}: identical to none on all {n} seeds"
            for (task, arch, reg, strength), n in never["size"].items()]


def matrix_words(info: RunInfo) -> str:
    """The matrix in the report's header: its description, or its name when it has none (a
    TOML matrix without `description`)."""
    return info.description.strip().rstrip(".") or f"`{info.matrix}`"


def render(info: RunInfo, cells: pd.DataFrame, sections: list[Section],
           figures: list[Figure], files: list[str], out_dir: Path,
           tune_cells: pd.DataFrame | None = None,
           sources: dict[str, dict] | None = None) -> str:
    """The Markdown text of README.md. `cells`: the grid cells (prepared); `tune_cells`: the
    tuning studies' trial and final cells (counted, and in the provenance); `sources`: the
    cells' `data_source` artifacts by cell id."""
    tc = tune_cells if tune_cells is not None else cells.iloc[0:0]
    every = pd.concat([cells, tc]) if len(tc) else cells
    seeds = sorted(int(s) for s in cells.seed.unique())
    settings = cells[["task_label", "arch_label"]].drop_duplicates()
    missing = info.n_matrix - len(every)
    lines = [
        f"# regbench report: matrix `{info.matrix}`", "",
        f"Made by `{info.command}`. Matrix: {matrix_words(info)}.", "",
        SELECTION_LINE, "",
        "## What was run", "",
        f"- Cells: {info.n_matrix} in the matrix, {len(every)} in this report "
        f"({counts_line(every)})" + (f"; **{missing} missing from the store**" if missing else "")
        + ".",
    ]
    lines += [
        f"- Seeds: {', '.join(map(str, seeds))} ({len(seeds)} per cell; cells are paired across "
        "regularizers by task, architecture and seed: same split, init and data order).",
        "- Settings (task / architecture): "
        + "; ".join(f"{t} / {a}" for t, a in settings.itertuples(index=False)) + ".",
        f"- Regularizers: {', '.join(dict.fromkeys(cells.reg_label))}.",
    ] if len(cells) else ["- Grid cells: none (every cell belongs to a tuning study)."]
    if len(tc):
        lines.append(tune_line(tc))
    if info.skipped:
        lines.append("- Skipped combinations: " + "; ".join(info.skipped) + ".")
    lines += ["", "## Provenance", "", *provenance_lines(every), ""]
    lines += source_lines(every, sources or {})
    if info.plugins:
        lines += ["Plugin code (each entry's version is part of its cells' ids):", "",
                  *(f"- {line}" for line in info.plugins), ""]
    if info.changed_code:
        lines += ["### Cells made by other plugin code than is loaded now", "",
                  *(f"- {line}" for line in info.changed_code), ""]
    if info.conflicts:
        lines += ["### Cells with a second result from another machine", "",
                  "`regbench merge` found another result of these cells in a later store; this "
                  "report uses the one named kept (`regbench check` lists them all).", "",
                  *(f"- {line}" for line in info.conflicts), ""]
    problems = problem_lines(cells)
    if problems:
        lines += ["### Cells that did not finish ok", "", *problems, ""]
    noops = noop_lines(cells)
    if noops:
        lines += ["### Regularizers that changed nothing", "",
                  "Every loss and metric of these cells equals, bit for bit, that of the "
                  "`none` cell with the same task, architecture, base and seed: the "
                  "regularizer never acted at that strength.", "", *noops, ""]
    for sec in sections:
        if not sec.tables and not sec.intro:
            continue
        lines += [f"## {sec.heading}", ""]
        lines += [x for line in sec.intro for x in (line, "")]
        for table, note in sec.tables:
            if sec.subheadings:
                lines += [f"### {table.title}", ""]
            lines += [to_markdown(table), f"*{table.caption}*", "", note, ""]
        lines += [x for fig in sec.figures for x in figure_lines(fig, out_dir)]
    if figures:
        lines += ["## Figures", ""]
        lines += [x for fig in figures for x in figure_lines(fig, out_dir)]
    if files:
        lines += ["## Files", "", *[f"- {f}" for f in files], ""]
    return "\n".join(lines).rstrip() + "\n"


def figure_lines(fig: Figure, out_dir: Path) -> list[str]:
    """A figure under its `### title`: the PNG embedded (else a link), its note, the other
    formats linked."""
    if not fig.files:
        return []
    shown = next((p for p in fig.files if p.suffix == ".png"), fig.files[0])
    rel = shown.relative_to(out_dir).as_posix()
    others = [p.relative_to(out_dir).as_posix() for p in fig.files if p != shown]
    alt = fig.title.replace("[", "(").replace("]", ")")
    return [f"### {fig.title}", "",
            f"![{alt}]({rel})" if shown.suffix == ".png" else f"[{alt}]({rel})", "",
            fig.note + (" Also: " + ", ".join(f"[{o}]({o})" for o in others) if others else ""),
            ""]


# -- the budget section ----------------------------------------------------------------------
def tune_line(tc: pd.DataFrame) -> str:
    """The "What was run" line of the tuning studies (`budget.tune_cells` frame)."""
    roles = tc.role.value_counts()
    seeds = sorted(int(s) for s in tc[tc.role == "trial"].seed.unique())
    return (f"- Tuning studies: {tc.study.nunique()} (one per entry of a tuned block and "
            "setting), "
            f"{int(roles.get('trial', 0))} trial cells on tuning seed"
            f"{'s' * (len(seeds) != 1)} {', '.join(map(str, seeds)) or 'none'} and "
            f"{int(roles.get('final', 0))} final cells on the test seeds; they are reported in "
            "the equal-budget section only, never in the grid's views.")


def budget_intro(view: pd.DataFrame, tc: pd.DataFrame, words: str) -> list[str]:
    """The budget section's opening lines: the protocol, and what did not train."""
    trials = tc[tc.role == "trial"]
    bad = trials[trials.status != "ok"]
    lines = [f"Configurations here were chosen by {words} per study: each regularizer's "
             "declared search space, the learning rate included, sampled the same number of "
             "times; each configuration trained on the tuning seeds, the one with the best mean "
             "validation metric then ran on the test seeds (the same seeds as the grid). The "
             "grid's tuned view above has strengths chosen from the grid at the protocol lr. "
             "No test number chose anything."]
    lost = int((view.budget - view.n_completed).clip(lower=0).sum())
    lines.append(f"{len(trials)} trial cells: {len(trials) - len(bad)} ok, "
                 f"{int((bad.status == 'diverged').sum())} diverged, "
                 f"{int((bad.status == 'failed').sum())} failed; {lost} of "
                 f"{int(view.budget.sum())} budgeted trials did not complete (not run yet, or "
                 "a cell not ok: such a trial counts as the study's worst score in the "
                 "expected validation performance).")
    return lines


def budget_note(view: pd.DataFrame, task: str) -> str:
    """One data-driven sentence under a task's tuned-at-budget table."""
    s = view[view.task == task]
    metric = s.metric_name.iloc[0]
    parts = []
    for b in s[s.best_val].itertuples(index=False):
        parts.append(f"best validation {metric} on {b.arch}: {b.regularizer} "
                     f"({b.config}, lr {b.lr:.3g}; validation {b.val_final_mean:.3f}, test "
                     f"{b.test_metric_mean:.3f})")
    parts += _significance(s, "none's tuned configuration")
    short = s[s.n_completed < s.budget]
    if len(short):
        parts.append("fewer trials completed than budgeted: " + ", ".join(
            f"{r.regularizer} {r.n_completed}/{r.budget}" for r in short.itertuples(index=False)))
    text = "; ".join(parts)
    return (text[:1].upper() + text[1:] + ".") if text else "No final cell stored yet."


def cocktail_note(c: pd.DataFrame) -> str:
    """One sentence under the cocktail table."""
    parts = []
    for r in c.itertuples(index=False):
        verdict = ("no best single regularizer to compare" if not r.best_single else
                   f"vs {r.best_single} Δ test {r.delta_test_vs_single:+.3f}"
                   + (f" (Holm p {pvalue(r.p_single_holm, MD)})"
                      if pd.notna(r.p_single_holm) else ""))
        parts.append(f"{r.task} / {r.arch}: {r.n_on} member{'s' * (r.n_on != 1)} on, "
                     f"{verdict}")
    return "Selected cocktails: " + "; ".join(parts) + "."


def tunability_note(t: pd.DataFrame) -> str:
    """One sentence under the tunability table: the largest test gain and how many differ."""
    top = t.loc[t.test_gain.astype(float).fillna(-np.inf).idxmax()]
    sig = t[t.p_value_holm < 0.05]
    return (f"Largest test gain from tuning: {top.task} / {top.arch} / {top.regularizer} "
            f"({top.test_gain:+.3f}, validation {top.val_gain:+.3f}); {len(sig)} of {len(t)} "
            "test gains differ from 0 at 0.05 after Holm; a gain near 0 says the default "
            "strength and lr were already as good as the budget could find.")
