"""asv: the generalization gap of a small fixed set of cells, and one matrix cell end to end.

The gaps are deterministic (seeded, bitwise reproducible), so any change in a tracked gap
means the training protocol or a regularizer changed: bump SUITE_VERSION or fix the bug.
"""

from __future__ import annotations

from typing import Any

from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell

from .common import build_extension

SMALL = ArchSpec("mlp", freeze({"width": 32, "depth": 2}))
DIGITS = TaskSpec("digits", freeze({"n_train": 300}))
EPOCHS = freeze({"epochs": 20})

# name -> cell; the smoke matrix's shapes (mlp 32x2, 20 epochs, seed 0): about 1 s in all.
CELLS: dict[str, Cell] = {
    "curve/none": Cell(TaskSpec("curve"), SMALL, RegSpec("none"), 0, EPOCHS),
    "curve/l2=1e-2": Cell(TaskSpec("curve"), SMALL, RegSpec("l2", 1e-2), 0, EPOCHS),
    "digits/none": Cell(DIGITS, SMALL, RegSpec("none"), 0, EPOCHS),
    "digits/dropout=0.3[native]": Cell(DIGITS, SMALL, RegSpec(
        "dropout", 0.3, freeze({"backend": "native"})), 0, EPOCHS),
    "digits/dropout=0.3[fused]": Cell(DIGITS, SMALL, RegSpec(
        "dropout", 0.3, freeze({"backend": "fused"})), 0, EPOCHS),
}

METRIC_GAP_UNIT = "task-metric gap (accuracy: train - test; rmse: test - train)"

# One cell of the `default` matrix as it runs there (the task's own protocol).
MATRIX_CELL = Cell(TaskSpec("digits"), ArchSpec("mlp"),
                   RegSpec("dropout", 0.5, freeze({"backend": "fused"})), 0)


def _metrics(cell: Cell) -> dict[str, Any]:
    result = run_cell(cell)
    if result.status != "ok":
        raise RuntimeError(f"{cell.describe()} ended {result.status}: {result.error}")
    return result.metrics


class Gap:
    """Generalization gap of each fixed cell (a positive gap = worse on unseen data)."""

    param_names = ["cell"]
    params = [list(CELLS)]
    timeout = 600.0

    def setup_cache(self) -> dict[str, dict[str, Any]]:
        build_extension()
        return {name: _metrics(cell) for name, cell in CELLS.items()}

    def track_gap_loss(self, results: dict[str, dict[str, Any]], cell: str) -> float:
        return float(results[cell]["gap_loss"])

    track_gap_loss.unit = "test loss - train loss"  # type: ignore[attr-defined]

    def track_gap_metric(self, results: dict[str, dict[str, Any]], cell: str) -> float:
        return float(results[cell]["gap_metric"])

    track_gap_metric.unit = METRIC_GAP_UNIT  # type: ignore[attr-defined]


class MatrixCell:
    """Wall time of one `default`-matrix cell through `run_cell` (data load, train, eval)."""

    timeout = 600.0
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0

    def setup(self) -> None:
        build_extension()

    def time_run_cell(self) -> None:
        _metrics(MATRIX_CELL)
