"""Record metrics and curves of a 52-cell sample of the built-in matrices, for
tests/test_builtin_sample_bitwise.py: four cells from each built-in matrix whose data needs
no download (the vision sets need user files and the OpenML suites a server), chosen to
cover as many distinct regularizer stacks as possible, cheapest tasks first.

Usage: python tools/record_builtin_sample.py OUT.json
"""
from __future__ import annotations

import json
import random
import sys
import time

from regbench import matrix
from regbench.train import run_cell

PER_MATRIX = 4
NEEDS_DOWNLOAD = {"vision", "openml-cc18", "cc18-small"}
CHEAP = {"curve": 0, "periodic": 0, "diabetes": 1, "breast_cancer": 1, "digits": 2, "mnist1d": 3}
KEYS = ["status", "epochs", "best_epoch", "diverged_step", "train_loss", "val_loss",
        "test_loss", "train_metric", "val_metric", "test_metric", "n_train"]


def sample() -> list:
    """PER_MATRIX cells of each local built-in matrix; 52 in all (13 matrices' worth)."""
    names = [n for n in matrix.names() if n not in NEEDS_DOWNLOAD]
    rng = random.Random(52)
    chosen: list = []
    seen_stacks: set[str] = set()
    for name in names:
        cells = list(matrix.get(name).expand().cells)
        rng.shuffle(cells)
        cells.sort(key=lambda c: (CHEAP.get(c.task.name, 9), c.arch.name != "mlp"))
        picked = []
        for cell in cells:  # distinct stacks first, then anything
            label = "+".join(s.label() for s in cell.stack())
            if label not in seen_stacks and len(picked) < PER_MATRIX:
                seen_stacks.add(label)
                picked.append(cell)
        for cell in cells:
            if len(picked) >= PER_MATRIX:
                break
            if cell not in picked:
                picked.append(cell)
        chosen += picked
    extra = 52 - len(chosen)  # the rest from the largest matrix, more stacks
    if extra > 0:
        cells = list(matrix.get("full").expand().cells)
        rng.shuffle(cells)
        cells.sort(key=lambda c: (CHEAP.get(c.task.name, 9), c.arch.name != "mlp"))
        for distinct in (True, False):
            for cell in cells:
                label = "+".join(s.label() for s in cell.stack())
                if extra and cell not in chosen and (label not in seen_stacks
                                                     or not distinct):
                    seen_stacks.add(label)
                    chosen.append(cell)
                    extra -= 1
    return chosen


def main() -> None:
    out = []
    for cell in sample():
        t = time.perf_counter()
        res = run_cell(cell)
        print(f"{time.perf_counter() - t:6.1f}s {res.status} {cell.describe()}", flush=True)
        out.append({"cell": cell.to_json(), "cell_id": cell.cell_id,
                    "metrics": {k: (res.status if k == "status" else res.metrics.get(k))
                                for k in KEYS},
                    "curves": res.curves})
    json.dump(out, open(sys.argv[1], "w"), indent=1)
    print(len(out))


if __name__ == "__main__":
    main()
