"""The built-in regularizers give bit for bit the results of the code before the
training-step hooks and stacks existed (tests/data/builtin_cells_cba0802.json, written by
tools/record_builtin_cells.py at commit cba0802): metrics and per-epoch curves, compared as
exact floats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regbench.specs import Cell
from regbench.train import run_cell

RECORDED = json.loads((Path(__file__).parent / "data" / "builtin_cells_cba0802.json").read_text())
FAST = {"none", "l1", "l2", "weight_decay", "batchnorm", "early_stopping", "label_smoothing",
        "more_data"}


def _case(rec: dict) -> pytest.param:
    cell = Cell.from_json(rec["cell"])
    slow = (cell.reg.name not in FAST or cell.arch.name != "mlp" or cell.task.name == "mnist1d"
            or dict(cell.reg.params).get("backend") == "fused")
    return pytest.param(rec, id=f"{cell.task.name}-{cell.arch.name}-{cell.reg.label()}",
                        marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("rec", [_case(r) for r in RECORDED])
def test_builtin_cell_is_bitwise_what_it_was(rec):
    cell = Cell.from_json(rec["cell"])
    assert cell.cell_id == rec["cell_id"]  # ids of single-regularizer cells never changed
    assert cell.to_json() == rec["cell"]
    res = run_cell(cell)
    assert res.status == rec["metrics"]["status"], res.error
    got = {k: (res.status if k == "status" else res.metrics.get(k)) for k in rec["metrics"]}
    assert got == rec["metrics"]
    assert res.curves == rec["curves"]


def test_the_recording_covers_every_builtin_regularizer():
    from regbench.matrix import ALL_REGULARIZERS

    names = {Cell.from_json(r["cell"]).reg.name for r in RECORDED}
    assert set(ALL_REGULARIZERS) <= names
