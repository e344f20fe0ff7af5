"""Estimate the cells and wall time of the OpenML-CC18 matrices without any download.

For each task of the suite list (regbench.openml_data.suites) a table of its shape is
generated: rows x (features - 1) standard-normal numeric columns and a class label of
`classes` values from a random linear rule. The table goes through the same preprocessing
and training as an `openml` cell (the `table` task's code, the openml protocol: 30 epochs,
batch 128, Adam 1e-3, an mlp). Per task this script times, in this process with 1 torch
thread, the `none` cell at 2 and at 6 epochs after a warm-up cell that builds the split:
their difference gives the time of an epoch, the rest the per-cell overhead; the first
build of the split is timed too. On two reference shapes it times every (regularizer,
strength) of the matrix at the full protocol, against `none`: the mean ratio scales the
`none` estimate to the matrix's regularizer mix (early stopping and more_data train less,
batchnorm and augment more).

A real `regbench run --jobs 2` of the reference shapes' cells, timed against the model,
gives the driver's cost per cell beyond training (worker processes, the store, leases),
added to every cell. Estimate per task = cells x ((overhead + 30 x epoch) x ratio +
driver) + seeds x split build; the matrix's wall time on two cores = the sum / 2 (two
worker processes kept busy) plus a start-up of seconds. Real datasets differ: one-hot
categoricals widen some inputs (splice, kr-vs-kp, connect-4...). Prints a Markdown table
per task and the totals.

    python tools/cc18_estimate.py [--tasks 11,15] [--repeats 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import pandas as pd
import torch

from regbench import matrix
from regbench.data_cache import load_data
from regbench.openml_data import suites
from regbench.params import Param
from regbench.registry import TASKS, register_task
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.tasks.base import Task
from regbench.tasks.frame import frame_arrays
from regbench.tasks.openml_task import OpenML
from regbench.train import run_cell

REFERENCE_TASKS = (31, 3917)  # credit-g (1000 x 21) and kc1 (2109 x 22): cc18-small shapes
EPOCHS = OpenML.protocol.epochs


if "cc18_shape" not in TASKS:
    @register_task("cc18_shape")
    class Shape(Task):
        """A generated table of a CC18 task's shape (rows, features, classes)."""

        version = "1"

        kind = "classification"
        metric = "accuracy"
        params = {"rows": Param(100, int, lo=5), "features": Param(2, int, lo=2),
                  "classes": Param(2, int, lo=2)}
        protocol = OpenML.protocol

        def arrays(self, spec: TaskSpec, seed: int, data_dir: object):
            rows, feats, k = (int(self.param(spec, p)) for p in ("rows", "features", "classes"))
            rng = np.random.default_rng(rows * 7919 + feats)
            x = rng.standard_normal((rows, feats - 1))
            logits = x @ rng.standard_normal((feats - 1, k)) + rng.gumbel(size=(rows, k))
            df = pd.DataFrame(x, columns=[f"f{i}" for i in range(feats - 1)])
            df["class"] = logits.argmax(1)
            return frame_arrays(df, "generated", "class", (), "classification", seed,
                                "cc18_shape", None)


def shape_spec(t: suites.SuiteTask) -> TaskSpec:
    return TaskSpec("cc18_shape", freeze({"rows": t.rows, "features": t.features,
                                          "classes": t.classes}))


def timed(cell: Cell) -> float:
    t0 = time.perf_counter()
    result = run_cell(cell, threads=1)
    if result.status != "ok":
        raise SystemExit(f"{cell.describe()}: {result.status}: {result.error}")
    return time.perf_counter() - t0


def reg_mix(name: str) -> list[RegSpec]:
    """The (regularizer, strength) pairs of one task of the matrix `name`."""
    m = matrix.get(name)
    first = m.task_specs()[0]
    return list(dict.fromkeys(c.reg for c in m.expand().cells
                              if c.task == first and c.seed == 0))


def per_task(t: suites.SuiteTask, repeats: int) -> dict[str, float]:
    """Split build, per-cell overhead and epoch time of the `none` cell on t's shape."""
    spec = shape_spec(t)
    t0 = time.perf_counter()
    load_data(spec, 0, None)
    build = time.perf_counter() - t0
    none = RegSpec("none", 0.0)
    timed(Cell(spec, ArchSpec("mlp"), none, 0, freeze({"epochs": 1})))  # warm-up
    two = statistics.median(timed(Cell(spec, ArchSpec("mlp"), none, 0, freeze({"epochs": 2})))
                            for _ in range(repeats))
    six = statistics.median(timed(Cell(spec, ArchSpec("mlp"), none, 0,
                                       freeze({"epochs": 6}))) for _ in range(repeats))
    epoch = max((six - two) / 4, 1e-6)
    return {"build": build, "epoch": epoch, "overhead": max(two - 2 * epoch, 0.0)}


def ratio(regs: list[RegSpec]) -> float:
    """Mean time of the matrix's cells over the `none` cell's, on the reference shapes."""
    by_id = suites.by_id()
    ratios = []
    for task_id in REFERENCE_TASKS:
        spec = shape_spec(by_id[task_id])
        load_data(spec, 0, None)
        timed(Cell(spec, ArchSpec("mlp"), RegSpec("none", 0.0), 0))  # warm-up
        base = timed(Cell(spec, ArchSpec("mlp"), RegSpec("none", 0.0), 0))
        times = [timed(Cell(spec, ArchSpec("mlp"), r, 0)) for r in regs]
        ratios.append(statistics.mean(times) / base)
        print(f"reference {by_id[task_id].name}: none {base:.2f} s, mean of the "
              f"{len(regs)} cells {statistics.mean(times):.2f} s", file=sys.stderr)
    return statistics.mean(ratios)


CALIBRATION = """name = "cc18-calibration"
seeds = {seeds}
[[blocks]]
tasks = [{tasks}]
archs = ["mlp"]
regularizers = {regs}
"""


def driver_overhead(regs: list[RegSpec], seeds: int, model: dict[int, float]) -> float:
    """Seconds per cell that `regbench run --jobs 2` spends beyond the timed training (worker
    start-up, the store, leases, progress): a real run of the reference shapes' cells,
    whose core-seconds (2 x wall) less the modelled training, per cell."""
    import subprocess
    import tempfile
    from pathlib import Path

    by_id = suites.by_id()
    tasks = ", ".join("{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in (
        ("name", "cc18_shape"), ("rows", by_id[t].rows), ("features", by_id[t].features),
        ("classes", by_id[t].classes))) + "}" for t in REFERENCE_TASKS)
    names = sorted({r.name for r in regs})
    with tempfile.TemporaryDirectory() as tmp:
        toml = Path(tmp) / "calibration.toml"
        toml.write_text(CALIBRATION.format(seeds=seeds, tasks=tasks, regs=json.dumps(names)))
        command = [sys.executable, "-m", "regbench", "run", "--plugin", __file__, "--matrix",
                   str(toml), "--store", str(Path(tmp) / "s.sqlite"), "--jobs", "2",
                   "--no-progress"]
        walls = []
        for _ in range(2):  # the second run finds every cell stored: the fixed start-up cost
            t0 = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise SystemExit(f"calibration run failed: {proc.stderr[-2000:]}")
    wall, startup = walls
    n = len(regs) * seeds * len(REFERENCE_TASKS)
    modelled = sum(model.values())
    print(f"calibration: {n} cells of the reference shapes, `regbench run --jobs 2`: "
          f"{wall:.1f} s wall, of which {startup:.1f} s start-up (a rerun with every cell "
          f"stored); modelled training {modelled:.1f} core-s", file=sys.stderr)
    return max((2 * (wall - startup) - modelled) / n, 0.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", help="comma-separated CC18 task ids (default: all 72)")
    p.add_argument("--repeats", type=int, default=1, help="timings per point (median)")
    p.add_argument("--json", help="write the per-task numbers to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    wanted = {int(x) for x in args.tasks.split(",")} if args.tasks else None
    tasks = [t for t in suites.CC18 if wanted is None or t.task_id in wanted]
    regs = reg_mix("openml-cc18")
    seeds = matrix.get("openml-cc18").seeds
    cells = len(regs) * seeds
    mix = ratio(regs)
    small = set(suites.CC18_SMALL)
    rows, totals = [], {"openml-cc18": 0.0, "cc18-small": 0.0}
    print("| task | name | rows x features, classes | split (s) | cell overhead (s) | "
          "epoch (s) | est. per cell (s) | est. task (core-min) |")
    print("|---:|:---|:---|---:|---:|---:|---:|---:|")
    by_id = suites.by_id()
    reference = {}
    for task_id in REFERENCE_TASKS:
        m = per_task(by_id[task_id], args.repeats)
        reference[task_id] = cells * (m["overhead"] + EPOCHS * m["epoch"]) * mix \
            + seeds * m["build"]
    per_cell = driver_overhead(regs, seeds, reference)
    for t in tasks:
        m = per_task(t, args.repeats)
        cell = (m["overhead"] + EPOCHS * m["epoch"]) * mix + per_cell
        task_s = cells * cell + seeds * m["build"]
        totals["openml-cc18"] += task_s
        if t.task_id in small:
            totals["cc18-small"] += task_s
        rows.append({"task_id": t.task_id, **m, "cell_s": cell, "task_s": task_s})
        print(f"| {t.task_id} | {t.name} | {t.rows} x {t.features}, {t.classes} | "
              f"{m['build']:.2f} | {m['overhead']:.3f} | {m['epoch']:.3f} | {cell:.2f} | "
              f"{task_s / 60:.1f} |", flush=True)
    print(f"\nregularizer mix: {len(regs)} (regularizer, strength) per task x {seeds} seeds = "
          f"{cells} cells per task; mean cell time / none = {mix:.2f}; driver overhead "
          f"{per_cell:.3f} s per cell (in the per-cell column)")
    for name, total in totals.items():
        n = len(matrix.get(name).expand().cells)
        print(f"{name}: {n} cells, {total / 3600:.2f} core-hours, about "
              f"{total / 2 / 3600:.2f} h wall on two cores (--jobs 2)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"ratio": mix, "driver_s": per_cell, "tasks": rows,
                       "totals_s": totals}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
