"""`write_report`: tables (Markdown, LaTeX, CSV), figures and the index of one report folder.

Files (in `out_dir`): `README.md`; `tuned.csv` (the headline view), `summary.csv` (every
strength), `across.csv`, `variants.csv`, `ranking.csv`, `bench.csv` (raw kernel rows);
`tables/*.md|tex` (the .tex files are bare booktabs tabulars to `\\input`); `tables.tex`
(compiles standalone); `figures/*.png|pdf`; `report.html` (format `html`: the same
frames as one interactive page, `regbench.report.html`). Same store in, byte-identical
tables out.

The grid views see only grid cells (empty `tune`). A tuning study's trial and final cells
go to the equal-budget section alone (`budget`, `fig_budget`: `budget*.csv`,
`tunability.csv`, `evp.csv`, `rank_budget.csv`, `tables/budget_*`, `tables/tunability.*`,
`figures/budget_critical_difference.*`, `figures/evp.*`, `figures/rank_budget.*`), written
only when the store holds such cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from regbench.report import across as ax
from regbench.report import budget as bd
from regbench.report import budget_tables as bt
from regbench.report import (
    fig_across,
    fig_budget,
    fig_double_descent,
    fig_kernels,
    fig_training,
    index,
    latex,
)
from regbench.report import html as rh
from regbench.report import html_data as hd
from regbench.report import kernels as kb
from regbench.report import stats as rs
from regbench.report import tables as rt
from regbench.report import tuned as tv

FORMATS = ("md", "tex", "csv", "html")
FIGURE_FORMATS = ("png", "pdf")
# Files the report writes under tables/ and figures/ start with one of these; a rerun
# removes stale ones (and nothing else) so the folder matches the index.
OWNED_PREFIXES = ("task_", "tuned_", "ranking", "bench", "claims", "across", "variants",
                  "seed004_", "gap_", "learning_curve", "double_descent", "kernel_",
                  "critical_difference", "aggregates", "budget_", "evp", "rank_budget",
                  "tunability")
CSV = {"float_format": "%.10g", "lineterminator": "\n", "index": False}


@dataclass
class Report:
    """What `write_report` produced."""

    out_dir: Path
    tables: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    readme: Path | None = None
    html: Path | None = None


def _clean(folder: Path) -> None:
    if folder.is_dir():
        for f in folder.iterdir():
            if f.is_file() and f.name.startswith(OWNED_PREFIXES):
                f.unlink()


def _both(make, *a):  # noqa: ANN001, ANN202 - (md table, tex table) of one builder
    return make(*a, rt.MD), make(*a, rt.TEX)


def write_report(cells: pd.DataFrame, out_dir: Path, info: index.RunInfo, *,
                 curves: pd.DataFrame | None = None, artifacts: dict[str, dict] | None = None,
                 dd_cells: pd.DataFrame | None = None, bench: pd.DataFrame | None = None,
                 claims: pd.DataFrame | None = None,
                 formats: list[str] | tuple[str, ...] = FORMATS,
                 figure_formats: list[str] | tuple[str, ...] = FIGURE_FORMATS,
                 studies: list[bd.StudyInfo] | None = None) -> Report:
    """Write tables, figures and the index for `cells` (a `Store.cells_frame()` subset).

    `artifacts` maps an artifact kind (predictions, params_before, params_after, model) to
    {cell_id: value}; `dd_cells` are the double-descent matrix's cells. `studies`: the
    matrix's tuning studies (budget, protocol lr, baseline cells for the tunability table);
    without them the budget section reads the budget off the stored trials and has no
    tunability table.
    """
    artifacts = artifacts or {}
    budget = bd.build(cells, {s.name: s for s in studies or []})
    cells = bd.grid_only(cells)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables_dir, fig_dir = out_dir / "tables", out_dir / "figures"
    _clean(tables_dir)
    _clean(fig_dir)
    report = Report(out_dir)
    prepared = rs.prepare(cells)
    summary = rs.summarize(cells)
    picked = tv.select(summary)
    summary = tv.mark_selected(summary, picked) if not summary.empty else summary
    view = tv.tuned(cells, summary)
    checks = tv.variant_checks(cells)
    rank = rs.ranking(cells)
    scores = ax.normalized_scores(tv.tuned_cells(cells, view) if not cells.empty
                                  else cells.assign(reg_label=[], task_label=[], arch_label=[]))
    tests = ax.rank_tests(scores)
    agg = ax.aggregates(scores) if not scores.empty else pd.DataFrame()
    across = ax.across_frame(tests, agg) if not agg.empty else pd.DataFrame()
    latest = kb.latest_bench(bench) if bench is not None else pd.DataFrame()
    pivot = kb.pivot(latest) if not latest.empty else pd.DataFrame()

    tasks = list(dict.fromkeys(summary.task)) if not summary.empty else []
    tuned_pairs = [_both(rt.tuned_table, view, t) for t in tasks if (view.task == t).any()]
    task_pairs = [_both(rt.task_table, summary, t) for t in tasks]
    across_pair = _both(rt.across_table, across, len(tests.settings), tests.friedman_p,
                        ax.power_line(tests)) if not across.empty else None
    variants_pair = _both(rt.variants_table, checks) if not checks.empty else None
    rank_pair = _both(rt.ranking_table, rank) if not rank.empty else None
    bench_pair = _both(rt.bench_table, pivot) if not pivot.empty else None
    claims_pair = _both(rt.claims_table, claims) if claims is not None and len(claims) else None
    budget_pairs = bt.pairs(budget, _both) if budget else []
    singles = [p for p in (across_pair, variants_pair, rank_pair) if p]
    all_pairs = (tuned_pairs + singles + budget_pairs + task_pairs
                 + [p for p in (bench_pair, claims_pair) if p])
    if "md" in formats or "tex" in formats:
        tables_dir.mkdir(exist_ok=True)
    for md, tex in all_pairs:
        if "md" in formats:
            path = tables_dir / f"{md.name}.md"
            path.write_text(f"**{md.title}**\n\n" + rt.to_markdown(md) + f"\n*{md.caption}*\n")
            report.tables.append(path)
        if "tex" in formats:
            path = tables_dir / f"{tex.name}.tex"
            path.write_text(latex.to_latex(tex))
            report.tables.append(path)
    if "tex" in formats:
        path = out_dir / "tables.tex"
        path.write_text(latex.wrapper([(tex, f"tables/{tex.name}.tex") for _, tex in all_pairs],
                                      f"regbench report: matrix {info.matrix}"))
        report.tables.append(path)
    if "csv" in formats:
        frames = {"tuned.csv": view.drop(columns=["higher_is_better", "best_val"]),
                  "summary.csv": summary.drop(columns=["higher_is_better", "reg_name"],
                                              errors="ignore"),
                  "across.csv": across, "variants.csv": checks, "ranking.csv": rank,
                  "bench.csv": latest}
        frames.update(budget.csv_frames() if budget else {})
        for name, frame in frames.items():
            if name in ("across.csv", "variants.csv", "bench.csv") and frame.empty:
                continue
            frame.to_csv(out_dir / name, **CSV)
            report.tables.append(out_dir / name)
    for name in bd.CSV_NAMES:  # a budget CSV of an earlier render that this one lacks
        if out_dir / name not in report.tables and (out_dir / name).is_file():
            (out_dir / name).unlink()

    fig_formats = list(figure_formats)
    figures, budget_figures = [], []
    if fig_formats:  # none (an API caller's choice): no figure is drawn
        figures = fig_training.seed004(
            prepared, curves if curves is not None else pd.DataFrame(
                columns=["cell_id", "epoch", "train_loss"]), artifacts.get("predictions", {}),
            artifacts.get("params_before", {}), artifacts.get("params_after", {}), fig_dir,
            fig_formats)
        figures += fig_across.critical_difference(tests, fig_dir, fig_formats)
        if not agg.empty:
            figures += fig_across.aggregates(agg, fig_dir, fig_formats)
        if not summary.empty:  # empty: a store of tuning studies only
            figures += fig_training.gap_vs_strength(summary, fig_dir, fig_formats)
            figures += fig_training.learning_curve(summary, fig_dir, fig_formats)
        if dd_cells is not None and not dd_cells.empty:
            figures += fig_double_descent.double_descent(rs.prepare(dd_cells), fig_dir, fig_formats,
                                                         artifacts.get("model", {}))
        if not latest.empty:
            figures += fig_kernels.kernel_figures(latest, fig_dir, fig_formats)
        budget_figures = (fig_across.critical_difference(
            budget.tests, fig_dir, fig_formats, name="budget_critical_difference",
            view=budget.words, score="test score at the budget")
            + fig_budget.evp(budget.curves, fig_dir, fig_formats)
            + fig_budget.rank_budget(budget.ranks, fig_dir, fig_formats)
            if budget else [])
    report.figures = [p for f in figures + budget_figures for p in f.files]

    page = out_dir / rh.PAGE
    if "html" in formats:
        report.html = rh.write_page(page, hd.Frames(
            prepared=prepared, summary=summary, view=view, rank=rank, across=across,
            aggregates=agg, tests=tests, checks=checks, curves=curves, budget=budget,
            bench=latest, pivot=pivot), info)
    elif page.is_file():  # a page of an earlier render would not match these tables
        page.unlink()
    files = [p.relative_to(out_dir).as_posix() for p in report.tables]
    files += [rh.PAGE] if report.html else []
    sections = _sections(summary, view, rank, tests, checks, cells, tuned_pairs, task_pairs,
                         across_pair, variants_pair, rank_pair, bench_pair, claims_pair, claims)
    if budget:
        at = 2 if across_pair else 1  # after the grid's tuned view and its across-task section
        sections.insert(at, _budget_section(budget, budget_pairs, budget_figures))
        sections[0].intro = ["No grid cell: every cell belongs to a tuning study."] \
            if cells.empty else [*sections[0].intro, (
                f"Configurations here: {bd.CHOSEN_BY_GRID} (the equal-budget section below "
                "tunes the lr with each regularizer's knobs).")]
    text = index.render(info, prepared, sections, figures, _file_notes(files), out_dir,
                        tune_cells=budget.cells if budget else None,
                        sources=artifacts.get("data_source"))
    report.readme = out_dir / "README.md"
    report.readme.write_text(text)
    return report


def _sections(summary, view, rank, tests, checks, cells, tuned_pairs, task_pairs,  # noqa: ANN001
              across_pair, variants_pair, rank_pair, bench_pair, claims_pair, claims
              ) -> list[index.Section]:
    """The index's sections, headline first."""
    S = index.Section
    secs = [S("Tuned view: each regularizer at its validation-selected strength",
              [(md, index.tuned_note(view, md.title.removeprefix("Task ")))
               for md, _ in tuned_pairs], subheadings=True,
              intro=[] if tuned_pairs else ["No ok cell has a validation metric, so no "
                                             "strength can be selected: no tuned view."])]
    if across_pair:
        secs.append(S("Across tasks (tuned view)", [(across_pair[0], ax.left_out_line(tests))]))
    lines = tv.variant_lines(cells)
    if variants_pair:
        secs.append(S("Implementation variants", [(variants_pair[0], " ".join(lines))]))
    if rank_pair:
        secs.append(S(rank_pair[0].title, [(rank_pair[0], index.ranking_note(rank))]))
    secs.append(S("Per-task results, all strengths",
                  [(md, index.task_note(summary, md.title.removeprefix("Task ")
                                        .removesuffix(": all strengths")))
                   for md, _ in task_pairs], subheadings=True))
    if bench_pair:
        secs.append(S(bench_pair[0].title, [(bench_pair[0], "Rows are the latest measurement "
                                             "per configuration; the raw rows: bench.csv.")]))
    if claims_pair:
        verdicts = claims["reproduced"].value_counts()
        secs.append(S(claims_pair[0].title, [(claims_pair[0], ", ".join(
            f"{verdicts[v]} {v}" for v in ("yes", "no", "skipped", "not run") if v in verdicts)
            + f" of {len(claims)} claims; the numbers behind each verdict: "
            "`regbench claims --store <this store>`.")]))
    return secs


def _budget_section(parts: bd.Parts, pairs: list, figures: list) -> index.Section:  # noqa: ANN001
    """The equal-budget section: per-task tables, across tasks, cocktails, tunability and
    both figures, each with its note."""
    names = {"budget_across": ax.left_out_line(parts.tests) if len(pairs) else "",
             "budget_cocktails": index.cocktail_note(parts.cocktails)
             if not parts.cocktails.empty else "",
             "tunability": index.tunability_note(parts.tunability)
             if not parts.tunability.empty else ""}
    tables = [(md, names[md.name] if md.name in names else index.budget_note(
        parts.view, md.title.removeprefix("Task ").split(" at budget ")[0]))
        for md, _ in pairs]
    return index.Section(f"Tuned at equal budget ({parts.words})", tables,
                         intro=index.budget_intro(parts.view, parts.cells, parts.words),
                         subheadings=True, figures=figures)


def _file_notes(files: list[str]) -> list[str]:
    notes = []
    described = {
        "tuned.csv": "the headline view: one row per (task, arch, regularizer) at the "
                     "validation-selected strength, test metric and gap with 95% t-CIs, "
                     "paired Δ vs none with Holm p-values.",
        "summary.csv": "every strength: one row per (task, arch, regularizer, strength), "
                       "means with 95% t-CI bounds, paired Δ gap vs none, raw and Holm "
                       "p-values, diverged/failed counts, `selected` = the tuned strength.",
        "across.csv": "across tasks on the tuned view: mean rank, IQM and probability of "
                      "improvement over none with bootstrap CIs.",
        "variants.csv": "implementation variants against the plain implementation.",
        "ranking.csv": "the ranking across tasks, all strengths pooled.",
        "bench.csv": "every kernel benchmark row (latest per configuration).",
        "budget.csv": "the equal-budget view: one row per tuning study, its selected "
                      "configuration (config, strength, params: reg_params JSON or a cocktail's "
                      "members, lr), the validation score that chose it (val_selected), test "
                      "metric and gap on the final cells with 95% t-CIs, paired Δ vs none's "
                      "tuned configuration with Holm p-values, trials completed of the budget.",
        "budget_across.csv": "across tasks on the final cells: mean rank, IQM and "
                             "probability of improvement over none with bootstrap CIs.",
        "budget_cocktails.csv": "each cocktail's selected members against the best single "
                                "regularizer (by validation) and none, paired by seed.",
        "tunability.csv": "gain of the tuned configuration over the first default strength "
                          "at the protocol lr (validation, and test paired by seed).",
        "evp.csv": "expected best validation metric of k trials and its sd, per study, "
                   "k = 1..N.",
        "rank_budget.csv": "mean rank across settings at budgets 1, 2, 4, ..., N, from the "
                           "expected validation performance.",
    }
    notes += [f"`{f}`: {d}" for f, d in described.items() if f in files]
    if rh.PAGE in files:
        notes.append(f"`{rh.PAGE}`: the tables and charts of this report in one interactive "
                     "page that opens offline: filter and sort the tables, hover a point of a "
                     "gap or test chart for its cell, click it for the cell's learning curves, "
                     "download any chart (SVG, PNG) or table (CSV).")
    if any(f.endswith(".tex") for f in files):
        notes.append("`tables/*.tex`: booktabs tabulars to `\\input` into a paper "
                     "(needs `\\usepackage{booktabs}`); `tables.tex` compiles them standalone "
                     "(`pdflatex tables.tex`).")
    if any(f.endswith(".md") for f in files):
        notes.append("`tables/*.md`: each table as Markdown.")
    return notes
