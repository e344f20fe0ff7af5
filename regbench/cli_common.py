"""What the two command lines, `regbench` (`__main__.py`) and `python -m regbench.report`
(`report/cli.py`), share: the options of a command that runs cells (workers, data, device,
plugins), the executor they describe, the OpenML download check before anything runs, and
how an error, a closed pipe or a signal ends the process.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regbench.errors import RegbenchError

DATA_DIR_HELP = ("folder with data: user files (bikes: hour.csv, the vision sets) and the "
                 "OpenML cache in DIR/openml (default $REGBENCH_DATA_DIR, else the openml "
                 "package's own cache)")
OFFLINE_HELP = ("download nothing (also $REGBENCH_OFFLINE=1): OpenML data must be in the "
                "cache; what is missing stops the run before any cell")
PLUGIN_HELP = ("a plugin to load: PATH.py or a module name (repeatable); installed packages' "
               "entry points load unless $REGBENCH_DISABLE_PLUGIN_AUTOLOAD=1")
DEVICE_HELP = ("cpu (default) or cuda: where cells train; a CUDA cell's id holds the GPU "
               "name, so CPU and CUDA results sit side by side in one store")
ADD_REGULARIZER_HELP = ("add regularizer NAME (e.g. a plugin's) at its default strengths to "
                        "every block of the matrix that has none, beside the built-ins "
                        "(repeatable)")


def csv_list(text: str | None) -> list[str] | None:
    """'a, b,,c' -> ['a', 'b', 'c']; None or '' -> None (no filter)."""
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def add_plugin_arguments(p: argparse.ArgumentParser) -> None:
    """`--plugin PATH.py|MODULE` (repeatable) for a command that builds or reads a matrix."""
    p.add_argument("--plugin", action="append", default=[], metavar="PATH.py|MODULE",
                   help=PLUGIN_HELP)


def add_matrix_extension_arguments(p: argparse.ArgumentParser) -> None:
    """`--plugin` and `--add-regularizer NAME` (both repeatable): what a command that builds
    the matrix of a report or a run adds to it."""
    add_plugin_arguments(p)
    p.add_argument("--add-regularizer", action="append", default=[], metavar="NAME",
                   help=ADD_REGULARIZER_HELP)


def add_run_arguments(p: argparse.ArgumentParser, jobs: int = 1,
                      jobs_help: str = "worker processes (default 1)",
                      device_help: str = DEVICE_HELP) -> None:
    """The options of a command that runs the missing cells of a matrix: workers and
    threads, the data folder and offline mode, the device, retrying failed cells, progress,
    plugins and extra regularizers. `jobs`, `jobs_help`, `device_help`: the command's own
    default and wording."""
    p.add_argument("--jobs", type=int, default=jobs, help=jobs_help)
    p.add_argument("--threads", type=int, default=1, help="torch threads per cell (default 1)")
    p.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)
    p.add_argument("--offline", action="store_true", help=OFFLINE_HELP)
    p.add_argument("--device", default="cpu", help=device_help)
    p.add_argument("--retry-failed", action="store_true",
                   help="rerun stored cells whose status is failed (replacing them)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_matrix_extension_arguments(p)


def data_dir(args: argparse.Namespace) -> str | None:
    """`--data-dir` as the executors take it (a string), None when not given."""
    value = getattr(args, "data_dir", None)
    return str(value) if value else None


def executor_from(args: argparse.Namespace, name: str = "local") -> Any:
    """The executor the parsed options describe (`--executor` when the command has it)."""
    from regbench.executors import make_executor

    return make_executor(getattr(args, "executor", name), jobs=args.jobs, threads=args.threads,
                         data_dir=data_dir(args), scheduler=getattr(args, "scheduler", None),
                         workers=getattr(args, "workers", None))


def check_before_creating(store: str | Path, cells: list[Any], data_dir: str | None) -> None:
    """Before a store file is made: every check that can refuse the run (the tasks' data,
    the memory the cells need; `executors.preflight`), so a refused run leaves no file
    behind. A store that exists already is left to `run_cells`, which checks the cells it
    still has to run."""
    path = Path(store)
    if path.exists() and (not path.is_file() or path.stat().st_size > 0):
        return
    from regbench.executors import preflight

    preflight(cells, data_dir)


def fetch_command(args: argparse.Namespace) -> str:
    """The `regbench fetch` line that downloads what this command's matrix needs."""
    parts = ["regbench fetch", f"--matrix {args.matrix}"]
    parts += [f"--plugin {p}" for p in getattr(args, "plugin", [])]
    if getattr(args, "tasks", None):
        parts.append(f"--tasks {args.tasks}")
    if getattr(args, "data_dir", None):
        parts.append(f"--data-dir {args.data_dir}")
    return " ".join(parts)


def require_downloads(m: Any, args: argparse.Namespace) -> None:
    """Download what the matrix's OpenML entries need unless offline, else stop with one
    line naming the missing ids and the fetch command (before any cell or store)."""
    from regbench.openml_data import cache, fetch

    settings = cache.current()
    fetch.require(m.task_specs(csv_list(getattr(args, "tasks", None))), settings.data_dir,
                  settings.offline, fetch_command(args))


def quiet_broken_pipe() -> int:
    """The reader of stdout went away (`regbench check | head`): stop quietly, as a Unix tool
    killed by SIGPIPE does (exit 141); devnull on stdout keeps Python's exit flush quiet."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # not a real file (captured output)
        return 141
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    return 141


RUNS_CELLS = ("run", "claims")  # the regbench subcommands that run and store cells


def run_command(prog: str, func: Callable[[argparse.Namespace], int],
                args: argparse.Namespace, interrupted: str = "") -> int:
    """`func(args)` with `--data-dir` / `--offline` in effect, its exit status; an error
    becomes one line `PROG: error: ...` and exit 2 (a store's SQLite or OS error names the
    store or the file), a closed stdout exit 141, SIGINT/SIGTERM 128 + the signal after a
    line saying finished cells are kept (`interrupted` is appended to it)."""
    try:
        from regbench.openml_data import cache

        with cache.use(getattr(args, "data_dir", None), getattr(args, "offline", False)):
            rc = func(args)
        sys.stdout.flush()  # a closed pipe (`regbench check | head`) is caught here
        return rc
    except BrokenPipeError:
        return quiet_broken_pipe()
    except RegbenchError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        from regbench.store.faults import sqlite_line

        print(f"{prog}: error: {sqlite_line(exc, getattr(args, 'store', None))}",
              file=sys.stderr)
        return 2
    except OSError as exc:
        from regbench.store.faults import os_line

        print(f"{prog}: error: {os_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        # only a command that runs cells has finished cells to keep
        runs_cells = getattr(args, "command", None) in RUNS_CELLS or prog != "regbench"
        print(f"{prog}: interrupted" + ("; finished cells are in the store, rerun to resume"
                                        f"{interrupted}" if runs_cells else ""),
              file=sys.stderr)
        return getattr(exc, "exit_code", 130)
