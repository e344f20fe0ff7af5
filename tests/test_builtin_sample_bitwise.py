"""A 52-cell sample of the built-in matrices gives bit for bit the results recorded by
tools/record_builtin_sample.py at commit 74f7fc6 (tests/data/builtin_sample_74f7fc6.json):
four cells of each matrix whose data needs no download, as many distinct stacks as
possible, compared on metrics and per-epoch curves as exact floats. The ids must match too:
no built-in cell changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regbench.specs import Cell
from regbench.train import run_cell

RECORDED = json.loads(
    (Path(__file__).parent / "data" / "builtin_sample_74f7fc6.json").read_text())
QUICK = {"curve", "periodic"}
N_QUICK = 8  # the first eight quick cells run in the default suite, the rest in the slow one


def _quick(rec: dict) -> bool:
    cell = Cell.from_json(rec["cell"])
    return cell.task.name in QUICK and cell.arch.name == "mlp"


QUICK_IDS = {r["cell_id"] for r in RECORDED if _quick(r)}
QUICK_IDS = {i for i in sorted(QUICK_IDS)[:N_QUICK]}


def _case(rec: dict) -> pytest.param:
    cell = Cell.from_json(rec["cell"])
    quick = rec["cell_id"] in QUICK_IDS
    return pytest.param(rec, id=f"{cell.cell_id}-{cell.reg.name}",
                        marks=[] if quick else [pytest.mark.slow])


def test_the_sample_is_52_cells_of_distinct_ids():
    assert len(RECORDED) == 52
    assert len({r["cell_id"] for r in RECORDED}) == 52


@pytest.mark.parametrize("rec", [_case(r) for r in RECORDED])
def test_builtin_sample_cell_is_bitwise_what_it_was(rec):
    cell = Cell.from_json(rec["cell"])
    assert cell.cell_id == rec["cell_id"]
    res = run_cell(cell)
    assert res.status == rec["metrics"]["status"], res.error
    got = {k: (res.status if k == "status" else res.metrics.get(k)) for k in rec["metrics"]}
    assert got == rec["metrics"]
    assert res.curves == rec["curves"]
