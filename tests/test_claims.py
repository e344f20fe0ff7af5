"""`regbench claims`: the fast claims end to end, verdicts on a hand-made store, errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pandas as pd
import pytest

from regbench import claims
from regbench.errors import UnknownNameError
from regbench.specs import CellResult
from regbench.store import Store

# Fast claims that train cells (a few seconds with 2 seeds) and fast direct claims.
FAST_CELL_CLAIMS = ["weight-decay-equals-l2", "early-stopping-best-epoch"]
FAST_DIRECT_CLAIMS = ["poly19-overfits", "penalty-equals-sgd-decay", "eval-mode-identity"]


def regbench(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "regbench", *args], capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_registry_lists_the_issue_claims():
    names = claims.CLAIMS.names()
    for source in ("000", "001", "002", "003", "004"):
        assert any(claims.CLAIMS.get(n).source == source for n in names)
    assert len(names) >= 18
    for name in names:
        c = claims.CLAIMS.get(name)
        assert c.text and c.criterion and c.kind in ("cells", "direct")


@pytest.mark.slow
def test_fast_claims_run_end_to_end_and_do_not_rerun(tmp_path):
    only = FAST_CELL_CLAIMS + FAST_DIRECT_CLAIMS
    with Store(tmp_path / "c.sqlite") as store:
        df = claims.run_claims(store, only, seeds=2, jobs=2, progress=False)
        n_cells = len(store.done_ids())
        assert n_cells == len(claims.claim_cells(only, seeds=2))
        assert list(df.columns) == claims.COLUMNS
        assert list(df.claim) == claims.select(only)
        assert set(df.reproduced) <= {"yes", "no"}
        assert (df.n_seeds == 2).all() and df.numbers.str.len().gt(0).all()
        # the second run finds every cell stored and gives the same table
        lines: list[str] = []
        again = claims.run_claims(store, only, seeds=2, jobs=2, progress=False, log=lines.append)
        assert len(store.done_ids()) == n_cells
        assert lines and "0 run now" in lines[0]
        pd.testing.assert_frame_equal(df, again)
        # evaluation alone (the report's entry point) runs nothing and agrees
        frame = claims.claims_frame(store, only, seeds=2)
        pd.testing.assert_frame_equal(df, frame)
    exact = df.set_index("claim")
    assert exact.loc["penalty-equals-sgd-decay", "reproduced"] == "yes"
    assert exact.loc["eval-mode-identity", "reproduced"] == "yes"
    assert exact.loc["early-stopping-best-epoch", "reproduced"] == "yes"


def test_missing_cells_are_not_run(tmp_path):
    with Store(tmp_path / "empty.sqlite") as store:
        df = claims.claims_frame(store, ["weight-decay-equals-l2", "double-descent"])
    assert list(df.reproduced) == ["not run", "not run"]
    assert df.note.str.contains("cells missing").all()


def _fake(cell, test_loss: float) -> CellResult:
    return CellResult(cell, "ok", metrics={"test_loss": test_loss, "train_loss": 0.1,
                                           "epochs": 1, "best_epoch": 1})


@pytest.mark.parametrize("l2_loss, expected", [(0.5000001, "yes"), (0.51, "no")])
def test_criterion_on_a_hand_made_store(tmp_path, l2_loss, expected):
    claim = claims.CLAIMS.get("weight-decay-equals-l2")()
    seeds = 3
    cells = claim.cells(seeds)
    with Store(tmp_path / "h.sqlite") as store:
        for c in cells:
            loss = {"l2": l2_loss, "weight_decay": 0.5, "none": 0.7}[c.reg.name]
            store.add(_fake(c, loss))
        df = claims.claims_frame(store, ["weight-decay-equals-l2"], seeds=seeds)
    row = df.iloc[0]
    assert row.reproduced == expected
    assert row.value == pytest.approx(abs(l2_loss - 0.5) / 0.5)
    assert row.n_seeds == seeds


def test_a_failed_cell_makes_the_claim_fail(tmp_path):
    claim = claims.CLAIMS.get("weight-decay-equals-l2")()
    with Store(tmp_path / "f.sqlite") as store:
        for c in claim.cells(2):
            store.add(CellResult(c, "failed", error="RuntimeError: boom")
                      if c.reg.name == "l2" else _fake(c, 0.5))
        df = claims.claims_frame(store, ["weight-decay-equals-l2"], seeds=2)
    assert df.reproduced[0] == "no" and "boom" in df.numbers[0]


@pytest.mark.slow
def test_unknown_claim_name():
    with pytest.raises(UnknownNameError, match="valid choices: .*poly19-overfits"):
        claims.select(["poly19-overfits", "nope"])
    proc = regbench("claims", "--only", "nope", "--store", "/nonexistent/x.sqlite", check=False)
    assert proc.returncode == 2
    assert "unknown claim 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_bikes_claim_is_skipped_without_data(tmp_path, monkeypatch):
    monkeypatch.delenv("REGBENCH_DATA_DIR", raising=False)
    with Store(tmp_path / "b.sqlite") as store:
        df = claims.run_claims(store, ["bikes-regularized-better"], seeds=2, progress=False)
        assert not store.done_ids()
    assert df.reproduced[0] == "skipped"
    assert "--data-dir" in df.note[0] and "hour.csv" in df.note[0]


def test_bikes_claim_runs_with_a_data_dir(tmp_path, bikes_dir):
    with Store(tmp_path / "b.sqlite") as store:
        df = claims.run_claims(store, ["bikes-regularized-better"], seeds=2,
                               data_dir=str(bikes_dir), progress=False)
        assert len(store.done_ids()) == 4
    assert df.reproduced[0] in ("yes", "no")
    assert df.n_seeds[0] == 2 and "test RMSE none" in df.numbers[0]


@pytest.mark.slow
def test_cli_formats_and_fast(tmp_path):
    store = str(tmp_path / "cli.sqlite")
    out = regbench("claims", "--only", ",".join(FAST_DIRECT_CLAIMS), "--store", store,
                   "--seeds", "2", "--format", "csv")
    df = pd.read_csv(io.StringIO(out.stdout))
    assert list(df.columns) == claims.COLUMNS and len(df) == len(FAST_DIRECT_CLAIMS)
    out = regbench("claims", "--only", "poly19-overfits,double-descent", "--fast", "--seeds",
                   "2", "--store", store, "--format", "json")
    rows = {r["claim"]: r for r in json.loads(out.stdout)}
    assert rows["double-descent"]["reproduced"] == "skipped"
    assert "--fast" in rows["double-descent"]["note"]
    table = regbench("claims", "--only", "eval-mode-identity", "--seeds", "1", "--store",
                     store).stdout
    assert "reproduced: yes" in table and "criterion:" in table and "summary:" in table


# -- the double-descent criterion on hand-made curves ---------------------------------------
DD_WIDTHS = [2, 4, 8, 16, 32, 64, 128, 256]


def _curves(test_mean, train_mean, seeds=3, jitter=0.004):
    offsets = jitter * (pd.Series(range(seeds)).values[:, None] - (seeds - 1) / 2)
    te = pd.DataFrame([[t + o for t in test_mean] for o in offsets[:, 0]]).values
    tr = pd.DataFrame([train_mean] * seeds).values
    return tr, te


TRAIN_ERR = [0.7, 0.5, 0.35, 0.2, 0.05, 0.0, 0.0, 0.0]  # interpolates at width 64


def test_double_descent_peak_near_threshold_passes():
    tr, te = _curves([0.7, 0.55, 0.45, 0.4, 0.5, 0.58, 0.5, 0.42], TRAIN_ERR)
    pt = claims.peak_test(DD_WIDTHS, tr, te)
    assert pt.ok and pt.w_interp == 64 and pt.w_peak == 64 and pt.w_best_before == 16
    assert pt.rise[0] == pytest.approx(18.0) and pt.fall[0] == pytest.approx(16.0)


def test_double_descent_monotone_fails():
    tr, te = _curves([0.7, 0.6, 0.5, 0.45, 0.4, 0.38, 0.36, 0.35], TRAIN_ERR)
    pt = claims.peak_test(DD_WIDTHS, tr, te)
    assert not pt.ok


def test_double_descent_peak_at_an_underfitting_width_fails():
    # the highest test error is at width 4, far below the interpolation width 64
    tr, te = _curves([0.6, 0.75, 0.5, 0.45, 0.42, 0.40, 0.38, 0.36], TRAIN_ERR)
    pt = claims.peak_test(DD_WIDTHS, tr, te)
    assert not pt.ok and pt.w_peak != 4


def test_double_descent_never_interpolating_fails():
    tr, te = _curves([0.7, 0.55, 0.45, 0.4, 0.5, 0.58, 0.5, 0.42], [0.3] * 8)
    pt = claims.peak_test(DD_WIDTHS, tr, te)
    assert not pt.ok and pt.w_interp is None and pt.w_peak is None


def test_double_descent_peak_without_a_fall_fails():
    tr, te = _curves([0.7, 0.55, 0.45, 0.4, 0.5, 0.58, 0.58, 0.6], TRAIN_ERR)
    assert not claims.peak_test(DD_WIDTHS, tr, te).ok
