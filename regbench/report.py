"""`python -m regbench.report`: run the missing cells of a matrix, then write the report.

    python -m regbench.report [--matrix NAME_OR_TOML] [--store PATH] [--out DIR] [--no-run]
                              [--formats md,tex,csv] [--figure-formats png,pdf] [--jobs N]

The report (in `--out`, default `reports/`): `README.md` (the index: what ran, provenance,
every table, every figure), `summary.csv` and `ranking.csv`, `tables/*.md|tex` (one per
table; the .tex files are bare booktabs tabulars to `\\input`), `tables.tex` (compiles
standalone) and `figures/*.png|pdf`. Same store in, byte-identical tables out.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from regbench import figures as figs
from regbench import latex
from regbench import report_index as index
from regbench import report_stats as rs
from regbench import report_tables as rt
from regbench.claims import claims_frame
from regbench.errors import RegbenchError

FORMATS = ("md", "tex", "csv")
FIGURE_FORMATS = ("png", "pdf")
DOUBLE_DESCENT = "double-descent"
# Files the report writes under tables/ and figures/ start with one of these; a rerun
# removes stale ones (and nothing else) so the folder matches the index.
OWNED_PREFIXES = ("task_", "ranking", "bench", "seed004_", "gap_", "learning_curve",
                  "double_descent", "kernel_throughput")


@dataclass
class Report:
    """What `write_report` produced."""

    out_dir: Path
    tables: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    readme: Path | None = None


def _list(text: str, valid: tuple[str, ...], flag: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in valid]
    if bad or not items:
        raise RegbenchError(f"{flag} {text!r}: unknown format(s) {bad or '(none given)'}; "
                            f"valid choices: {', '.join(valid)}")
    return list(dict.fromkeys(items))


def build_parser() -> argparse.ArgumentParser:
    from regbench.store import DEFAULT_STORE

    p = argparse.ArgumentParser(
        prog="python -m regbench.report",
        description="Run the cells of a matrix missing from the store, then write tables "
                    "(Markdown, LaTeX, CSV) and figures to a report folder.")
    p.add_argument("--matrix", default="default", help="built-in matrix name or a .toml file")
    p.add_argument("--store", default=str(DEFAULT_STORE), help="SQLite results store")
    p.add_argument("--out", default="reports", help="report folder (default reports)")
    p.add_argument("--no-run", action="store_true",
                   help="render from what is stored; say how many cells are missing")
    p.add_argument("--formats", default="md,tex,csv", help="table formats (md,tex,csv)")
    p.add_argument("--figure-formats", default="png,pdf", help="figure formats (png,pdf)")
    p.add_argument("--jobs", type=int, default=max(1, min(os.cpu_count() or 1, 8)),
                   help="worker processes for missing cells (default: CPU count, at most 8)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per cell (default 1)")
    p.add_argument("--data-dir", type=Path, help="folder with user data files (bikes: hour.csv)")
    p.add_argument("--device", default="cpu",
                   help="cpu (default) or cuda: the device whose cells are run and reported")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except RegbenchError as exc:
        print(f"regbench.report: error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    from regbench import matrix
    from regbench.store import Store

    formats = _list(args.formats, FORMATS, "--formats")
    fig_formats = _list(args.figure_formats, FIGURE_FORMATS, "--figure-formats")
    from regbench import devices

    m = matrix.get(args.matrix)
    exp = m.expand()
    device = devices.resolve(args.device)
    cells_on = devices.on(exp.cells, device)
    store_path = Path(args.store)
    if args.no_run and not (store_path.exists() and store_path.stat().st_size > 0):
        raise RegbenchError(f"--no-run: no results store at {store_path}; run without --no-run "
                            f"to compute the {len(exp.cells)} cells of matrix {m.name!r}, or "
                            "pass --store")
    with Store(store_path) as store:
        if not args.no_run:
            from regbench.executors import make_executor, run_cells

            executor = make_executor("local", jobs=args.jobs, threads=args.threads,
                                     data_dir=str(args.data_dir) if args.data_dir else None)
            summary = run_cells(cells_on, store, executor, progress=not args.no_progress)
            print(f"matrix {m.name}: {summary.line()}")
            for line in summary.failures[:10]:
                print(f"  failed: {line}", file=sys.stderr)
        ids = {c.cell_id for c in cells_on}
        all_cells = store.cells_frame()
        cells = all_cells[all_cells.cell_id.isin(ids)].reset_index(drop=True)
        if cells.empty:
            raise RegbenchError(f"store {store_path} has none of the {len(ids)} cells of matrix "
                                f"{m.name!r}; run without --no-run to compute them")
        missing = len(ids) - len(cells)
        if missing:
            print(f"matrix {m.name}: {missing} of {len(ids)} cells are missing from the store"
                  + (" (not run: --no-run)" if args.no_run else "") + "; the report covers the "
                  f"{len(cells)} stored")
        dd_ids = {c.cell_id for c in devices.on(matrix.get(DOUBLE_DESCENT).expand().cells,
                                                device)}
        dd_cells = all_cells[all_cells.cell_id.isin(dd_ids)].reset_index(drop=True)
        artifacts = {name: store.artifacts(name, ids)
                     for name in ("predictions", "params_before", "params_after")}
        curves = store.curves(list(artifacts["predictions"]))
        bench = store.bench_frame()
        claims = claims_frame(store, data_dir=str(args.data_dir) if args.data_dir else None,
                              device=device)
    info = index.RunInfo(
        matrix=m.name, description=m.description, n_matrix=len(ids),
        command="python -m regbench.report --matrix " + str(args.matrix)
        + ("" if device == "cpu" else f" --device {args.device}"),
        skipped=[f"{s.task} x {s.arch} x {s.regularizer} ({s.reason})" for s in exp.skipped])
    report = write_report(cells, Path(args.out), info, curves=curves, artifacts=artifacts,
                          dd_cells=dd_cells, bench=bench, claims=claims, formats=formats,
                          figure_formats=fig_formats)
    print(f"report: {report.readme} ({len(report.tables)} table files, "
          f"{len(report.figures)} figure files)")
    return 0


def _clean(folder: Path) -> None:
    if folder.is_dir():
        for f in folder.iterdir():
            if f.is_file() and f.name.startswith(OWNED_PREFIXES):
                f.unlink()


def write_report(cells: pd.DataFrame, out_dir: Path, info: index.RunInfo, *,
                 curves: pd.DataFrame | None = None, artifacts: dict[str, dict] | None = None,
                 dd_cells: pd.DataFrame | None = None, bench: pd.DataFrame | None = None,
                 claims: pd.DataFrame | None = None,
                 formats: list[str] | tuple[str, ...] = FORMATS,
                 figure_formats: list[str] | tuple[str, ...] = FIGURE_FORMATS) -> Report:
    """Write tables, figures and the index for `cells` (a `Store.cells_frame()` subset)."""
    artifacts = artifacts or {}
    out_dir.mkdir(parents=True, exist_ok=True)
    tables_dir, fig_dir = out_dir / "tables", out_dir / "figures"
    _clean(tables_dir)
    _clean(fig_dir)
    report = Report(out_dir)
    prepared = rs.prepare(cells)
    summary = rs.summarize(cells)
    rank = rs.ranking(cells)

    def both(make, *a):  # noqa: ANN001, ANN202 - (md table, tex table) of one builder
        return make(*a, rt.MD), make(*a, rt.TEX)

    task_pairs = [both(rt.task_table, summary, t) for t in dict.fromkeys(summary.task)]
    rank_pair = both(rt.ranking_table, rank) if not rank.empty else None
    bench_rows = figs.latest_bench(bench) if bench is not None else pd.DataFrame()
    if not bench_rows.empty:  # the table: our implementations against their references
        bench_rows = bench_rows[bench_rows.baseline.notna()]
    bench_pair = both(rt.bench_table, bench_rows) if not bench_rows.empty else None
    claims_pair = both(rt.claims_table, claims) if claims is not None and len(claims) else None
    all_pairs = ([rank_pair] if rank_pair else []) + task_pairs + [
        p for p in (bench_pair, claims_pair) if p]
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
        cols = [c for c in summary.columns if c not in ("higher_is_better",)]
        summary[cols].to_csv(out_dir / "summary.csv", index=False, float_format="%.10g",
                             lineterminator="\n")
        rank.to_csv(out_dir / "ranking.csv", index=False, float_format="%.10g",
                    lineterminator="\n")
        report.tables += [out_dir / "summary.csv", out_dir / "ranking.csv"]

    fig_formats = list(figure_formats)
    figures = figs.seed004(prepared, curves if curves is not None else pd.DataFrame(
        columns=["cell_id", "epoch", "train_loss"]), artifacts.get("predictions", {}),
        artifacts.get("params_before", {}), artifacts.get("params_after", {}), fig_dir,
        fig_formats)
    figures += figs.gap_vs_strength(summary, fig_dir, fig_formats)
    figures += figs.learning_curve(summary, fig_dir, fig_formats)
    if dd_cells is not None and not dd_cells.empty:
        figures += figs.double_descent(rs.prepare(dd_cells), fig_dir, fig_formats)
    if bench is not None and not bench.empty:
        figures += figs.kernel_throughput(bench, fig_dir, fig_formats)
    report.figures = [p for f in figures for p in f.files]

    files = [p.relative_to(out_dir).as_posix() for p in report.tables]
    extra = [(bench_pair[0], "Rows are the latest measurement per configuration.")] \
        if bench_pair else []
    if claims_pair:
        verdicts = claims["reproduced"].value_counts()
        extra.append((claims_pair[0], ", ".join(f"{verdicts[v]} {v}" for v in
                      ("yes", "no", "skipped", "not run") if v in verdicts)
                      + f" of {len(claims)} claims; the numbers behind each verdict: "
                      "`regbench claims --store <this store>`."))
    text = index.render(
        info, prepared,
        [(md, index.task_note(summary, md.title.removeprefix("Task "))) for md, _ in task_pairs],
        (rank_pair[0], index.ranking_note(rank)) if rank_pair else None, extra, figures,
        _file_notes(files), out_dir)
    report.readme = out_dir / "README.md"
    report.readme.write_text(text)
    return report


def _file_notes(files: list[str]) -> list[str]:
    notes = []
    if "summary.csv" in files:
        notes.append("`summary.csv`: tidy, one row per (task, arch, regularizer, strength), "
                     "means with 95% t-CI bounds, paired Δ gap vs none, raw and Holm p-values, "
                     "diverged/failed counts.")
        notes.append("`ranking.csv`: the ranking across tasks.")
    if any(f.endswith(".tex") for f in files):
        notes.append("`tables/*.tex`: booktabs tabulars to `\\input` into a paper "
                     "(needs `\\usepackage{booktabs}`); `tables.tex` compiles them standalone "
                     "(`pdflatex tables.tex`).")
    if any(f.endswith(".md") for f in files):
        notes.append("`tables/*.md`: each table as Markdown.")
    return notes


if __name__ == "__main__":
    sys.exit(main())
