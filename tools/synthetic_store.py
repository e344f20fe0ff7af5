"""Fill a results store with synthetic cells of a matrix, through the real Store API.

Nothing is trained: each cell of the matrix (its grid cells, and for tuned blocks the trials
its studies ask for and their final cells, planned by `regbench.tuning` as a real run
would) gets plausible made-up metrics and per-epoch curves, seeded from the cell id, so the
same command gives the same store. A small share of cells is `diverged` or `failed`; ok
cells carry a `weight_stats` artifact (what the claims read).
With `--bench`, kernel benchmark rows are added too. With `--report DIR` the report of the
store is then written to DIR (`python -m regbench.report --no-run` in this process, without
the claims table: the claims read artifacts, such as predictions, that made-up cells lack).
It is for measuring what reads a store at a matrix's size (the report, `report.html`)
without the hours of training:

    python tools/synthetic_store.py --matrix full --store /tmp/full.sqlite --bench \
        --report /tmp/full-report
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from pathlib import Path

import numpy as np

from regbench import matrix
from regbench.registry import TASKS
from regbench.specs import Cell, CellResult
from regbench.store import Store
from regbench.tasks.base import METRICS

DIVERGED = 0.01  # share of cells that diverge
FAILED = 0.005  # share of cells that fail
PROVENANCE = {"torch_version": "synthetic", "device": "cpu", "threads": 1,
              "cpu_model": "synthetic", "git_commit": None, "python_version": "synthetic",
              "hostname": "synthetic", "regbench_version": "synthetic",
              "started_at": "2026-01-01T00:00:00+00:00",
              "finished_at": "2026-01-01T00:00:01+00:00"}


def _rng(cell: Cell, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{cell.cell_id}/{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _effect(cell: Cell) -> float:
    """How much the cell's regularizer shrinks the gap: a bump in log strength, the same for
    every seed of a (task, regularizer, strength)."""
    if cell.reg.name == "none" or not cell.reg.strength:
        return 0.0
    digest = hashlib.sha256(f"{cell.task.name}/{cell.reg.name}".encode()).digest()
    best = (digest[0] / 255.0) * 4.0 - 3.0  # the best log10 strength, in [-3, 1]
    dist = math.log10(abs(cell.reg.strength)) - best
    return 0.6 * math.exp(-dist * dist / 2.0) - 0.1 * max(dist, 0.0)


def result(cell: Cell, seed: int = 0, diverged: float = DIVERGED,
           failed: float = FAILED) -> CellResult:
    """A made-up, deterministic result of `cell`: metrics, curves and status (`diverged`
    and `failed`: the chance of each)."""
    rng = _rng(cell, seed)
    task = TASKS.get(cell.task.name)
    metric = getattr(task, "metric", None) or "accuracy"
    higher = METRICS[metric]
    epochs = int(dict(cell.protocol).get("epochs", task.protocol.epochs))
    if cell.reg.name == "early_stopping":
        epochs = max(3, int(epochs * rng.uniform(0.3, 0.9)))
    t = np.arange(1, epochs + 1, dtype=float)
    effect = _effect(cell)
    floor = 0.05 + 0.05 * rng.random()
    train = floor + 2.0 * np.exp(-t / (0.2 * epochs)) * (1.0 + 0.05 * rng.standard_normal())
    overfit = max(0.02, 0.3 * (1.0 - effect)) * (t / epochs) ** 2
    val = train + 0.1 + overfit + 0.01 * rng.standard_normal(epochs)
    acc = 1.0 - np.clip(val / 2.5, 0.0, 0.95)
    val_metric = acc if higher else np.sqrt(val)
    draw = rng.random()
    base = {"metric_name": metric, "higher_is_better": higher, "n_train": 1000}
    if draw < failed:
        return CellResult(cell, "failed", metrics=base, provenance=PROVENANCE,
                          error="RuntimeError: synthetic failure")
    curves = [{"epoch": int(e), "train_loss": float(a), "val_loss": float(b),
               "val_metric": float(c)} for e, a, b, c in zip(t, train, val, val_metric)]
    if draw < failed + diverged:
        stop = int(rng.integers(1, epochs + 1))
        return CellResult(cell, "diverged", curves=curves[:stop], provenance=PROVENANCE,
                          error=f"loss is nan at step {stop * 10}", metrics={
                              **base, "epochs": stop, "best_epoch": None,
                              "diverged_step": stop * 10, "wall_s": 0.01 * stop})
    best = int(np.argmin(val))
    train_loss, val_loss = float(train[-1]), float(val[best])
    test_loss = val_loss + 0.02 * rng.standard_normal()
    def score(loss: float) -> float:
        return float(1.0 - min(max(loss / 2.5, 0.0), 0.95)) if higher else math.sqrt(loss)
    train_m, val_m, test_m = score(train_loss), score(val_loss), score(max(test_loss, 1e-3))
    metrics = {**base, "epochs": epochs, "best_epoch": best + 1, "diverged_step": None,
               "train_loss": train_loss, "val_loss": val_loss, "test_loss": test_loss,
               "gap_loss": test_loss - train_loss, "train_metric": train_m,
               "val_metric": val_m, "test_metric": test_m,
               "gap_metric": (train_m - test_m) if higher else (test_m - train_m),
               "train_s": 0.01 * epochs, "wall_s": 0.012 * epochs,
               "samples_per_s": 1000 * epochs / (0.01 * epochs)}
    sparse = effect if cell.reg.name in ("l1", "elastic_net") else 0.0
    stats = {"n": 10_000, "l1": 800.0 * (1.0 - 0.5 * max(effect, 0.0)),
             "l2": 12.0 * (1.0 - 0.4 * max(effect, 0.0)),
             "frac_abs_lt_1e-3": 0.002 + 0.3 * max(sparse, 0.0),
             "frac_abs_lt_1e-2": 0.02 + 0.4 * max(sparse, 0.0)}
    return CellResult(cell, "ok", metrics=metrics, curves=curves, provenance=PROVENANCE,
                      artifacts={"weight_stats": stats})


BENCH_OPS = ("dropout", "bias_dropout_add", "l2")
BENCH_SIZES = (2**12, 2**16, 2**20, 2**24)


def bench_rows(seed: int = 0) -> list[dict]:
    """Kernel benchmark rows of one made-up run: per op and size our kernel, a native
    baseline and a same-size copy_, on the CPU with 1 and 2 threads."""
    rng = np.random.default_rng(seed)
    rows = []
    for threads in (1, 2):
        for numel in BENCH_SIZES:
            copy_s = numel * 8 / (20e9 * threads ** 0.8)
            rows.append({"run_id": "synthetic", "op": "copy", "impl": "copy_", "dtype":
                         "float32", "numel": numel, "threads": threads, "device": "cpu",
                         "median_s": copy_s, "gbps": numel * 8 / copy_s / 1e9,
                         "machine": "synthetic"})
            for op in BENCH_OPS:
                ours_s = copy_s * rng.uniform(1.1, 1.6)
                native_s = ours_s * rng.uniform(1.2, 3.0)
                for impl, secs, baseline in (("fused", ours_s, "native"),
                                             ("native", native_s, None)):
                    rows.append({
                        "run_id": "synthetic", "op": op, "impl": impl, "baseline": baseline,
                        "backend": "cpp" if impl == "fused" else None, "dtype": "float32",
                        "numel": numel, "threads": threads, "device": "cpu",
                        "median_s": secs, "iqr_s": secs * 0.05,
                        "gbps": numel * 8 / secs / 1e9,
                        "ratio_vs_native": ours_s / native_s if baseline else None,
                        "ratio_vs_copy": secs / copy_s, "machine": "synthetic"})
    return rows


def build(name: str, store_path: Path, seed: int = 0, bench: bool = False,
          diverged: float = DIVERGED, failed: float = FAILED) -> int:
    """Add every missing cell of matrix `name` (tuned blocks' trials and finals included)
    to the store at `store_path`; the number of cells added."""
    from regbench.tuning.driver import plans

    exp = matrix.get(name).expand()
    added = 0
    with Store(store_path) as store:
        done = store.done_ids()
        while True:  # the grid, then round after round of the studies' planned cells
            todo = [c for c in [*exp.cells, *(c for p in plans(exp.studies, store)
                                              for c in p.known())]
                    if c.cell_id not in done]
            if not todo:
                break
            for cell in todo:
                if cell.cell_id not in done:
                    store.add(result(cell, seed, diverged, failed))
                    done.add(cell.cell_id)
                    added += 1
        if bench:
            store.add_bench(bench_rows(seed))
    return added


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--matrix", default="full", help="built-in matrix name or a .toml file")
    p.add_argument("--store", type=Path, required=True, help="store to create or fill")
    p.add_argument("--seed", type=int, default=0, help="seed of the made-up numbers")
    p.add_argument("--bench", action="store_true", help="add kernel benchmark rows too")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="then write the store's report (no claims table) to DIR")
    p.add_argument("--figure-formats", default="png", help="the report's (default png)")
    args = p.parse_args(argv)
    n = build(args.matrix, args.store, args.seed, args.bench)
    print(f"{args.store}: {n} synthetic cells added (matrix {args.matrix})")
    if args.report is None:
        return 0
    import pandas as pd

    from regbench import claims, report

    claims.claims_frame = lambda *a, **k: pd.DataFrame()  # made-up cells prove nothing
    return report.main(["--matrix", args.matrix, "--store", str(args.store), "--out",
                        str(args.report), "--no-run", "--figure-formats",
                        args.figure_formats])


if __name__ == "__main__":
    sys.exit(main())
