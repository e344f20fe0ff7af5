"""`python -m regbench.report`: run the missing cells of a matrix, then write the report.

    python -m regbench.report [--matrix NAME_OR_TOML] [--store PATH] [--out DIR] [--no-run]
                              [--formats md,tex,csv] [--figure-formats png,pdf] [--jobs N]

The report (in `--out`, default `reports/`) is described in `regbench.report.write`.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from regbench.errors import RegbenchError
from regbench.report import index
from regbench.report.write import FIGURE_FORMATS, FORMATS, write_report
from regbench.store.faults import os_line, sqlite_line

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
    p.add_argument("--jobs", type=int, default=max(1, min(os.cpu_count() or 1, 8)),
                   help="worker processes for missing cells (default: CPU count, at most 8)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per cell (default 1)")
    from regbench.__main__ import DATA_DIR_HELP, OFFLINE_HELP

    p.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)
    p.add_argument("--offline", action="store_true", help=OFFLINE_HELP)
    p.add_argument("--device", default="cpu",
                   help="cpu (default) or cuda: the device whose cells are run and reported")
    p.add_argument("--retry-failed", action="store_true",
                   help="rerun stored cells whose status is failed (replacing them)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from regbench.__main__ import add_plugin_arguments

    add_plugin_arguments(p)
    p.add_argument("--add-regularizer", action="append", default=[], metavar="NAME",
                   help="add regularizer NAME (e.g. a plugin's) at its default strengths to "
                        "every block of the matrix that has none, beside the built-ins "
                        "(repeatable)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from regbench.openml_data import cache

        with cache.use(args.data_dir, args.offline):
            rc = run(args)
        sys.stdout.flush()
        return rc
    except BrokenPipeError:
        from regbench.__main__ import quiet_broken_pipe

        return quiet_broken_pipe()
    except RegbenchError as exc:
        print(f"regbench.report: error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(f"regbench.report: error: {sqlite_line(exc, args.store)}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"regbench.report: error: {os_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("regbench.report: interrupted; finished cells are in the store, rerun to "
              "resume (no report written)", file=sys.stderr)
        return getattr(exc, "exit_code", 130)


def run(args: argparse.Namespace) -> int:
    from regbench import matrix, plugins
    from regbench.claims import claims_frame
    from regbench.store import Store

    formats = _list(args.formats, FORMATS, "--formats")
    fig_formats = _list(args.figure_formats, FIGURE_FORMATS, "--figure-formats")
    plugins.load(getattr(args, "plugin", []))  # before the matrix is built
    m = matrix.get(args.matrix)
    if getattr(args, "add_regularizer", None):
        m = matrix.add_regularizers(m, args.add_regularizer)
    if not args.no_run:  # the OpenML data first: a dataset that cannot be had stops here
        from regbench.__main__ import require_downloads

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
    status = 0
    from regbench.tuning.driver import matrix_cells, run_matrix

    with Store(store_path, readonly=args.no_run) as store:
        if not args.no_run:
            from regbench.executors import Interrupted, finish, make_executor

            executor = make_executor("local", jobs=args.jobs, threads=args.threads,
                                     data_dir=str(args.data_dir) if args.data_dir else None)
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
        curves = store.curves(ids)  # the seed-004 figures and report.html's cell view
        bench = store.bench_frame()
        claims = claims_frame(store, data_dir=str(args.data_dir) if args.data_dir else None,
                              device=device)
    changed = [c.line() for c in plugins.changed_code(cells.plugin_code)]
    for line in changed:
        print(f"warning: {line}", file=sys.stderr)
    info = index.RunInfo(
        matrix=m.name, description=m.description, n_matrix=len(ids),
        command="python -m regbench.report"
        + "".join(f" --plugin {p}" for p in getattr(args, "plugin", []))
        + " --matrix " + str(args.matrix)
        + "".join(f" --add-regularizer {r}" for r in getattr(args, "add_regularizer", []))
        + ("" if device == "cpu" else f" --device {args.device}"),
        skipped=[f"{s.task} x {s.arch} x {s.regularizer} ({s.reason})" for s in exp.skipped],
        plugins=_plugin_lines(cells.plugin_code), changed_code=changed)
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
