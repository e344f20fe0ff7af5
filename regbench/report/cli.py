"""`python -m regbench.report`: run the missing cells of a matrix, then write the report.

    python -m regbench.report [--matrix NAME_OR_TOML] [--store PATH] [--out DIR] [--no-run]
                              [--formats md,tex,csv] [--figure-formats png,pdf] [--jobs N]
    python -m regbench.report --from results.zip [--out DIR]

The report (in `--out`, default `reports/`) is described in `regbench.report.write`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from regbench.cli_common import (
    add_run_arguments,
    check_before_creating,
    data_dir,
    executor_from,
    require_downloads,
    run_command,
)
from regbench.errors import RegbenchError
from regbench.report import index
from regbench.report.write import FIGURE_FORMATS, FORMATS, write_report

DOUBLE_DESCENT = "double-descent"


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
    p.add_argument("--formats", default=",".join(FORMATS),
                   help="table formats and the interactive page (md,tex,csv,html)")
    p.add_argument("--figure-formats", default="png,pdf", help="figure formats (png,pdf)")
    p.add_argument("--from", dest="from_archive", metavar="ARCHIVE.zip",
                   help="render from an archive of `regbench archive` (its store, matrix and "
                        "plugins, checksums verified first); implies --no-run")
    add_run_arguments(
        p, jobs=max(1, min(os.cpu_count() or 1, 8)),
        jobs_help="worker processes for missing cells (default: CPU count, at most 8)",
        device_help="cpu (default) or cuda: the device whose cells are run and reported")
    return p


def main(argv: list[str] | None = None) -> int:
    """`python -m regbench.report ARGS`: the exit status (0 ok, 1 a cell failed in this
    run, 2 a usage, data or store error, 128 + N after signal N)."""
    args = build_parser().parse_args(argv)
    func = run
    if args.from_archive:
        from regbench.archive.render import run_from

        func = run_from
    return run_command("regbench.report", func, args, interrupted=" (no report written)")


def report_command(args: argparse.Namespace) -> str:
    """The command line the report says made it (an archive's re-render keeps the one
    recorded when the archive was made: `args.report_command`)."""
    recorded = getattr(args, "report_command", None)
    if recorded:
        return recorded
    return ("python -m regbench.report"
            + "".join(f" --plugin {p}" for p in getattr(args, "plugin", []))
            + " --matrix " + str(args.matrix)
            + "".join(f" --add-regularizer {r}" for r in getattr(args, "add_regularizer", []))
            + ("" if args.device == "cpu" else f" --device {args.device}"))


def run(args: argparse.Namespace) -> int:
    from regbench import matrix, plugins
    from regbench.claims import claims_frame
    from regbench.store import Store
    from regbench.store.check import read_conflicts

    formats = _list(args.formats, FORMATS, "--formats")
    fig_formats = _list(args.figure_formats, FIGURE_FORMATS, "--figure-formats")
    plugins.load(getattr(args, "plugin", []))  # before the matrix is built
    m = matrix.get(args.matrix)
    if getattr(args, "add_regularizer", None):
        m = matrix.add_regularizers(m, args.add_regularizer)
    if not args.no_run:  # the OpenML data first: a dataset that cannot be had stops here
        require_downloads(m, args)
    exp = m.expand()
    from regbench import devices

    device = devices.resolve(args.device)
    cells_on = devices.on(exp.cells, device)
    store_path = Path(args.store)
    if args.no_run and not store_path.exists():
        raise RegbenchError(f"--no-run: no results store at {store_path}; run without --no-run "
                            f"to compute the {exp.size()} cells of matrix {m.name!r}, or "
                            "pass --store")
    if not args.no_run:
        check_before_creating(store_path, devices.on(
            exp.cells + [c for s in exp.studies for c in s.baseline], device), data_dir(args))
    status = 0
    from regbench.tuning.driver import matrix_cells, run_matrix

    with Store(store_path, readonly=args.no_run) as store:
        if not args.no_run:
            from regbench.executors import Interrupted, finish

            executor = executor_from(args, "local")
            try:
                summary = run_matrix(exp, store, executor, device,
                                     progress=not args.no_progress,
                                     retry_failed=args.retry_failed)
            except Interrupted as exc:
                if exc.summary is not None:
                    finish(exc.summary, f"matrix {m.name}")
                raise
            status = finish(summary, f"matrix {m.name}")
        if exp.studies:
            cells_on = matrix_cells(exp, store, device)
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
                     for name in ("predictions", "params_before", "params_after",
                                  "data_source")}
        artifacts["model"] = store.artifacts("model", set(dd_cells.cell_id))
        # the seed-004 figures read their cells' curves; report.html's cell view every cell's
        curves = store.curves(ids if "html" in formats else list(artifacts["predictions"]))
        bench = store.bench_frame()
        claims = claims_frame(store, data_dir=data_dir(args),
                              device=device)
        conflicts = [c.line() for c in read_conflicts(store.con) if c.cell_id in ids]
    if conflicts:
        print(f"report: {len(conflicts)} cell(s) have a second result from another machine; "
              f"the report uses the first store's (regbench check --store {store_path} lists "
              f"them)")
    changed = [c.line() for c in plugins.changed_code(cells.plugin_code)]
    for line in changed:
        print(f"warning: {line}", file=sys.stderr)
    info = index.RunInfo(
        matrix=m.name, description=m.description, n_matrix=len(ids),
        command=report_command(args),
        skipped=[f"{s.task} x {s.arch} x {s.regularizer} ({s.reason})" for s in exp.skipped],
        plugins=_plugin_lines(cells.plugin_code), changed_code=changed, conflicts=conflicts)
    from regbench.report.budget import StudyInfo

    report = write_report(cells, Path(args.out), info, curves=curves, artifacts=artifacts,
                          dd_cells=dd_cells, bench=bench, claims=claims, formats=formats,
                          figure_formats=fig_formats,
                          studies=[StudyInfo.of(s, device) for s in exp.studies])
    print(f"report: {report.readme} ({len(report.tables)} table files, "
          f"{len(report.figures)} figure files)")
    return status  # 1 when a cell failed in this run (the report is written all the same)


def _plugin_lines(codes: object) -> list[str]:
    """One line per plugin entry the stored cells name: kind, name, version, where from and
    the source's sha256 (of the code that made the numbers)."""
    import json

    seen: dict[tuple[str, ...], None] = {}
    for blob in codes:  # type: ignore[attr-defined]
        for e in json.loads(blob) if isinstance(blob, str) and blob else []:
            where = e.get("plugin") or e.get("module", "")
            seen[(e["kind"], e["name"], str(e.get("version")), where,
                  str(e.get("sha256", ""))[:12])] = None
    return [f"{kind} `{name}` version {version}: {where}, source sha256 {sha}..."
            for kind, name, version, where, sha in seen]
