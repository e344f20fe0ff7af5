"""The `regbench` command line: list, run, fetch, show, check, merge, archive, claims, bench,
doctor."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regbench.cli_common import (
    DATA_DIR_HELP,
    DEVICE_HELP,
    add_matrix_extension_arguments,
    add_plugin_arguments,
    add_run_arguments,
    check_before_creating,
    csv_list,
    data_dir,
    executor_from,
    require_downloads,
    run_command,
)
from regbench.errors import RegbenchError, StoreError

AXES = ("tasks", "archs", "regularizers", "matrices")


def _origin(registry: Any, name: str) -> str:
    """'' for a built-in, else ' (plugin: ...)' for `regbench list`."""
    origin = registry.origin(name)
    return "" if origin == "built-in" else f" (plugin: {origin})"


# -- list -----------------------------------------------------------------------------------
def regularizer_space(name: str) -> str:
    """What a `tune` block samples for regularizer `name`, in words, for `regbench list
    regularizers`: `      tune: p uniform [0, 0.8]` (the strength under its own name, then
    each tunable parameter; `lr only` when nothing but the learning rate is searched), or
    why no space can be built (a plugin with neither a strength_space nor a finite range)."""
    from regbench.registry import REGULARIZERS

    reg = REGULARIZERS.get(name)
    try:
        space = reg.search_space()
    except RegbenchError as exc:
        return f"      tune: {exc}"
    except Exception as exc:  # a plugin's malformed declaration: say so, list the rest
        return f"      tune: regularizer {name!r} cannot be tuned: {type(exc).__name__}: {exc}"
    if not space:
        return "      tune: lr only"
    parts = [f"{reg.strength_name if key == 'strength' else key} {s.describe()}"
             for key, s in space.items()]
    return "      tune: " + "; ".join(parts)


def matrix_size(exp: Any) -> str:
    """`665 cells` for a grid; `(4 studies, up to 120 cells)` when tuned blocks add studies
    (how many cells their trials, final cells and baselines come to is known once they run:
    a study whose trials all fail has no final cells)."""
    if not exp.studies:
        return f"{exp.size():5d} cells"
    n = len(exp.studies)
    return f"({n} stud{'ies' if n != 1 else 'y'}, up to {exp.size()} cells)"


def cmd_list(args: argparse.Namespace) -> int:
    from regbench import matrix
    from regbench.params import default
    from regbench.registry import ARCHS, REGULARIZERS, TASKS
    from regbench.skips import Pairs, regularizer_skips

    if args.toml is not None:
        if args.axis not in (None, "matrices"):
            raise RegbenchError(f"--toml prints a built-in matrix; it goes with `regbench "
                                f"list matrices`, not {args.axis!r}")
        sys.stdout.write(matrix.text(args.toml))
        return 0
    axes = [args.axis] if args.axis else list(AXES)
    out: list[str] = []
    if "tasks" in axes:
        out.append("tasks:")
        for n in TASKS.names():
            t = TASKS.get(n)
            out.append(f"  {n:16s} {t.kind:14s} {t.metric:9s} {TASKS.describe(n)}"
                       + _origin(TASKS, n))
    if "archs" in axes:
        out.append("archs:")
        for n in ARCHS.names():
            a = ARCHS.get(n)
            params = ", ".join(f"{k}={default(v)}" for k, v in a.params.items())
            out.append(f"  {n:16s} inputs={'/'.join(sorted(a.inputs)):13s} {ARCHS.describe(n)}"
                       + (f" [{params}]" if params else "") + _origin(ARCHS, n))
    if "regularizers" in axes:
        out.append("regularizers:")
        pairs = Pairs.build() if args.axis == "regularizers" else None
        for n in REGULARIZERS.names():
            r = REGULARIZERS.get(n)
            strengths = ", ".join(f"{s:g}" for s in r.default_strengths)
            sweep = f"{r.strength_name}={strengths}"
            out.append(f"  {n:17s} {sweep:24s} {REGULARIZERS.describe(n)}"
                       + _origin(REGULARIZERS, n))
            if args.axis == "regularizers":
                out += regularizer_skips(n, pairs)
                out.append(regularizer_space(n))
    if "matrices" in axes:
        out.append("matrices:")
        for n in matrix.names():
            m = matrix.get(n)
            exp = m.expand()
            out.append(f"  {n:16s} {matrix_size(exp)}, {m.seeds} seeds: {m.description}")
            if args.axis == "matrices":
                for s in exp.skipped:
                    out.append(f"      skips {s.task} x {s.arch} x {s.regularizer}: {s.reason}")
    print("\n".join(out))
    return 0


# -- run ------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from regbench import devices, matrix
    from regbench.executors import Interrupted, finish
    from regbench.store import Store
    from regbench.tuning.driver import run_matrix

    m = matrix.get(args.matrix)
    if args.add_regularizer:
        m = matrix.add_regularizers(m, args.add_regularizer)
    require_downloads(m, args)  # before the cells are built: nothing is written on failure
    exp = m.expand(seeds=args.seeds, tasks=csv_list(args.tasks),
                   regularizers=csv_list(args.regularizers))
    if not exp.cells and not exp.studies:
        if args.tasks or args.regularizers:
            raise RegbenchError(f"matrix {m.name!r} has no cells for the given filters")
        print_skipped(m.name, exp.skipped)
        raise RegbenchError(f"matrix {m.name!r} has no cells: every combination of its "
                            f"blocks is skipped ({len(exp.skipped)}, reasons above)")
    device = devices.resolve(args.device)
    cells = devices.on(exp.cells + [c for s in exp.studies for c in s.baseline], device)
    executor = executor_from(args)
    check_before_creating(args.store, cells, data_dir(args))
    print_skipped(m.name, exp.skipped)
    try:
        with Store(args.store) as store:
            summary = run_matrix(exp, store, executor, device, force=args.force,
                                 progress=not args.no_progress,
                                 retry_failed=args.retry_failed)
    except Interrupted as exc:
        if exc.summary is None:
            raise
        summary = exc.summary
    return finish(summary, f"matrix {m.name}", f"; store {args.store}")


SKIPS_SHOWN = 10


def print_skipped(name: str, skipped: list) -> None:
    """The requested combinations the matrix skips and why: one line each, or a count
    per reason when there are many."""
    from regbench import matrix

    if len(skipped) <= SKIPS_SHOWN:
        for s in skipped:
            print(f"regbench: skips {s.task} x {s.arch} x {s.regularizer}: {s.reason}",
                  file=sys.stderr)
        return
    reasons: dict[str, int] = {}
    for s in skipped:
        reasons[s.reason] = reasons.get(s.reason, 0) + 1
    where = (" (`regbench list matrices` lists each)" if name in matrix.names() else "")
    print(f"regbench: skips {len(skipped)} combinations the matrix cannot run{where}:",
          file=sys.stderr)
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {n} x {reason}", file=sys.stderr)


# -- fetch ----------------------------------------------------------------------------------
def cmd_fetch(args: argparse.Namespace) -> int:
    from regbench import matrix
    from regbench.openml_data import cache, fetch

    m = matrix.get(args.matrix)
    specs = m.task_specs(csv_list(args.tasks))
    if not fetch.entries(specs):
        print(f"matrix {m.name}: nothing to fetch (no openml task; the other tasks generate "
              "their data or read files you provide)")
        return 0
    settings = cache.current()
    outcomes, folder = fetch.fetch(specs, settings.data_dir, settings.offline,
                                   progress=None if args.quiet else sys.stderr)
    print(f"matrix {m.name}: {fetch.summary(outcomes, folder)}")
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        if args.quiet:
            for o in failed:
                print(f"regbench: {o.line}", file=sys.stderr)
        print(f"regbench: error: {len(failed)} of {len(outcomes)} OpenML datasets could not be "
              "fetched (each named above)", file=sys.stderr)
        return 2
    return 0


# -- show -----------------------------------------------------------------------------------
def cmd_show(args: argparse.Namespace) -> int:
    from regbench.cli_format import render
    from regbench.out_file import check_writable, replacing
    from regbench.store import Store

    out = Path(args.out) if args.out else None
    if args.format == "parquet" and out is None:
        raise RegbenchError("--format parquet writes a binary file: pass --out FILE")
    if out is not None:
        check_writable(out, "--out")
    if not Path(args.store).exists():
        raise StoreError(f"no store at {args.store}; run `regbench run` first or pass --store")
    with Store(args.store, readonly=True) as store:
        if args.format == "parquet":
            from regbench.results_frame import typed

            df = typed(store.cells_frame())
        else:
            df = store.cells_frame() if args.all_columns else store.frame()
    if out is None:
        sys.stdout.write(render(df, args.format))
        return 0
    with replacing(out) as tmp:
        if args.format == "parquet":
            write_parquet(df, tmp)
        else:
            tmp.write_text(render(df, args.format), encoding="utf-8")
    print(f"{len(df)} cell(s) written to {out} ({args.format})")
    return 0


def write_parquet(df: Any, path: Path) -> None:
    """`df` as Parquet (pyarrow), dtypes kept: `pandas.read_parquet` gives it back."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise RegbenchError("--format parquet needs pyarrow: pip install pyarrow") from None
    df.to_parquet(path, index=False, engine="pyarrow")


# -- check ----------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    from regbench.store.check import check_store

    report = check_store(args.store, repair=args.repair)
    print("\n".join(report.lines()))
    return 1 if report.problems() else 0


# -- merge ----------------------------------------------------------------------------------
def cmd_merge(args: argparse.Namespace) -> int:
    from regbench.store.merge import merge

    summary = merge(args.stores, args.into, force=args.force)
    print("\n".join(summary.lines()))
    return 0


# -- archive --------------------------------------------------------------------------------
def cmd_archive(args: argparse.Namespace) -> int:
    from regbench.archive.build import build

    return build(args)


# -- claims ---------------------------------------------------------------------------------
def cmd_claims(args: argparse.Namespace) -> int:
    import time

    from regbench import claims, devices
    from regbench.cli_format import render
    from regbench.store import Store

    only = csv_list(args.only)
    claims.select(only)  # unknown names fail before the store is touched
    device = devices.resolve(args.device)
    if args.seeds is not None and args.seeds < 1:
        raise RegbenchError(f"--seeds must be >= 1, got {args.seeds}")
    t0 = time.perf_counter()
    with Store(args.store) as store:
        df = claims.run_claims(store, only, args.seeds, jobs=args.jobs,
                               data_dir=data_dir(args),
                               fast=args.fast, progress=not args.no_progress,
                               log=lambda line: print(line, file=sys.stderr), device=device,
                               retry_failed=args.retry_failed)
    if args.format == "table":
        sys.stdout.write(claims.render_table(df))
        print(f"wall time {time.perf_counter() - t0:.1f} s; store {args.store}")
    else:
        sys.stdout.write(render(df, args.format))
    summary = df.attrs.get("run_summary")
    return summary.exit_code() if summary is not None else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from regbench.doctor import report

    print(report())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from regbench import bench

    return bench.main(args)


def _version_line() -> str:
    from regbench import SUITE_VERSION, __version__

    return f"regbench {__version__} (suite version {SUITE_VERSION})"


def build_parser() -> argparse.ArgumentParser:
    from regbench.cli_format import FORMATS, SHOW_FORMATS
    from regbench.store import DEFAULT_STORE

    parser = argparse.ArgumentParser(
        prog="regbench", description="Benchmark and reproducibility suite for regularization.")
    parser.add_argument("--version", action="version", version=_version_line())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list tasks, archs, regularizers and matrices")
    p.add_argument("axis", nargs="?", choices=AXES)
    p.add_argument("--toml", metavar="NAME",
                   help="print the TOML file of built-in matrix NAME (to start a matrix of "
                        "your own from)")
    add_plugin_arguments(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run the cells of a matrix that are missing from the store")
    p.add_argument("--matrix", default="default", help="built-in matrix name or a .toml file")
    p.add_argument("--store", default=str(DEFAULT_STORE), help="SQLite results store")
    p.add_argument("--seeds", type=int, help="number of seeds (overrides the matrix's)")
    p.add_argument("--tasks", help="comma-separated task names to keep")
    p.add_argument("--regularizers", help="comma-separated regularizer names to keep")
    p.add_argument("--force", action="store_true", help="rerun and replace stored cells")
    add_run_arguments(p)
    p.add_argument("--executor", default="local", help="where cells run: local or dask")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --executor dask: a running Dask scheduler, e.g. tcp://HOST:8786")
    p.add_argument("--workers", type=int, metavar="N",
                   help="with --executor dask: start a local cluster of N worker processes")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("fetch", help="download the OpenML datasets a matrix needs into the "
                       "cache (idempotent; checksums verified), e.g. on a login node")
    p.add_argument("--matrix", required=True, help="built-in matrix name or a .toml file")
    p.add_argument("--tasks", help="comma-separated task names to keep")
    p.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)
    p.add_argument("--offline", action="store_true",
                   help="download nothing: check that everything is cached and intact")
    p.add_argument("--quiet", action="store_true", help="no line per dataset, only the summary")
    add_plugin_arguments(p)
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("show", help="print the stored cells, one row per cell")
    p.add_argument("--store", default=str(DEFAULT_STORE))
    p.add_argument("--format", choices=SHOW_FORMATS, default="table",
                   help="table, csv or json; parquet (with --out) writes every column, typed, "
                        "as regbench.load returns them")
    p.add_argument("--all-columns", action="store_true",
                   help="every stored column (parameters, provenance, errors)")
    p.add_argument("--out", metavar="FILE",
                   help="write to FILE (replaced if it exists) instead of the terminal")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("check", help="check a store: integrity, orphans, suite versions, "
                       "failed cells, stale leases (exit 1 if not healthy)")
    p.add_argument("--store", default=str(DEFAULT_STORE))
    p.add_argument("--repair", action="store_true",
                   help="remove orphan curve/artifact rows and stale leases (nothing else)")
    add_plugin_arguments(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("merge", help="combine the stores of several machines into a new store "
                       "(a cell with another result in a later store keeps both; check lists "
                       "them)")
    p.add_argument("stores", nargs="+", metavar="STORE",
                   help="stores to merge, in order: of a cell with two results, the first "
                        "store's is the one the report uses")
    p.add_argument("--into", required=True, metavar="PATH",
                   help="the merged store, a new file (built in a temporary file beside it and "
                        "renamed at the end)")
    p.add_argument("--force", action="store_true", help="replace --into if it exists")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("archive", help="one zip with the store, its report, the matrix, the "
                       "plugins' source and the environment, with sha256 checksums "
                       "(python -m regbench.report --from re-renders it)")
    p.add_argument("--out", required=True, metavar="FILE.zip", help="the archive to write")
    p.add_argument("--store", default=str(DEFAULT_STORE), help="SQLite results store")
    p.add_argument("--matrix", default="default",
                   help="built-in matrix name or a .toml file: what the report covers")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    add_matrix_extension_arguments(p)
    p.set_defaults(func=cmd_archive)

    p = sub.add_parser("claims", help="check the seed documents' claims as experiments")
    p.add_argument("--only", help="comma-separated claim names (default: all)")
    p.add_argument("--seeds", type=int, help="seeds per claim (default: each claim's own)")
    p.add_argument("--store", default=str(DEFAULT_STORE), help="SQLite results store")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--data-dir", type=Path, help="folder with hour.csv for the bikes claim")
    p.add_argument("--fast", action="store_true", help="only the fast claims (slow: skipped)")
    p.add_argument("--retry-failed", action="store_true",
                   help="rerun stored cells whose status is failed (replacing them)")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_plugin_arguments(p)
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("doctor", help="versions, CPU, kernel backend, CUDA, Triton, TeX, "
                       "Dask and openml on one screen: what a bug report needs")
    p.set_defaults(func=cmd_doctor)

    try:
        from regbench import bench
    except ImportError:
        bench = None
    if bench is not None:
        p = sub.add_parser("bench", help="kernel throughput vs native PyTorch and copy")
        bench.add_arguments(p)
        p.set_defaults(func=cmd_bench)
    return parser


def _load_plugins_then(args: argparse.Namespace) -> int:
    """Load the command's `--plugin`s (before any matrix is built or store opened), then
    run it."""
    if hasattr(args, "plugin"):
        from regbench import plugins

        plugins.load(args.plugin)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


def main(argv: list[str] | None = None) -> int:
    """`regbench ARGS`: the exit status (0 ok, 1 a cell failed or a check found problems,
    2 a usage, data or store error, 128 + N after signal N)."""
    args = build_parser().parse_args(argv)
    return run_command("regbench", _load_plugins_then, args)


if __name__ == "__main__":
    sys.exit(main())
