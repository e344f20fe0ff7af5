"""Measure what the cell harness costs over a bare training loop on the same cell.

The bare loop trains the same model (same init, data, batches, optimizer) with a
hand-written loop: no regularizer hooks, no NaN checks, no curves, no artifacts; once
with no evaluation at all, and once with the per-epoch validation pass the protocol
needs (best epoch, early stopping). All run in this process with 1 thread,
alternating, and the script prints the median time of each and the overhead in percent.

    python tools/harness_overhead.py [--repeats 7] [--task digits] [--arch mlp]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from regbench import seeding
from regbench.archs.base import Knobs, init_weights
from regbench.data_cache import load_data
from regbench.optim import make_optimizer
from regbench.registry import ARCHS, TASKS
from regbench.regularizers.base import OptimConfig
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec
from regbench.train import _batches, run_cell


def bare_loop(cell: Cell, validate: bool = False) -> float:
    task = TASKS.get(cell.task.name)()
    proto = task.protocol
    data = load_data(cell.task, cell.seed, None)
    model = ARCHS.get(cell.arch.name)().build(cell.arch, data, Knobs())
    init_weights(model, seeding.generator("init", cell.seed, cell.task.label(), cell.arch.label()))
    opt = make_optimizer(model, OptimConfig(proto.optimizer, proto.lr, proto.momentum))
    crit = nn.CrossEntropyLoss() if data.kind == "classification" else nn.MSELoss()
    order = seeding.generator("order", cell.seed, cell.task.label())
    n = len(data.x_train)
    t0 = time.perf_counter()
    for _ in range(proto.epochs):
        model.train()
        for idx in _batches(torch.randperm(n, generator=order), proto.batch_size or n):
            loss = crit(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if validate:
            model.eval()
            with torch.no_grad():
                crit(model(data.x_val), data.y_val).item()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--task", default="digits")
    ap.add_argument("--arch", default="mlp")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cell = Cell(TaskSpec(args.task), ArchSpec(args.arch), RegSpec("none"), 0)
    load_data(cell.task, cell.seed, None)
    bare, bare_val, harness, train_only = [], [], [], []
    for _ in range(args.repeats):
        bare.append(bare_loop(cell))
        bare_val.append(bare_loop(cell, validate=True))
        t0 = time.perf_counter()
        r = run_cell(cell)
        harness.append(time.perf_counter() - t0)
        train_only.append(r.metrics["train_s"])
    b, bv, h, t = (statistics.median(v) for v in (bare, bare_val, harness, train_only))
    print(f"cell {cell.describe()}, {args.repeats} repeats, 1 thread")
    print(f"bare loop, no evaluation         {b * 1e3:8.1f} ms")
    print(f"bare loop, per-epoch validation  {bv * 1e3:8.1f} ms")
    print(f"harness train loop               {t * 1e3:8.1f} ms  ({100 * (t / b - 1):+.1f}% vs "
          f"no evaluation, {100 * (t / bv - 1):+.1f}% vs per-epoch validation)")
    print(f"harness whole cell               {h * 1e3:8.1f} ms  ({100 * (h / bv - 1):+.1f}% vs "
          "per-epoch validation; adds building, final eval, artifacts)")


if __name__ == "__main__":
    main()
