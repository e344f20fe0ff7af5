"""End-to-end: the CLI as a user runs it, in subprocesses."""

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from regbench import matrix
from regbench.store import PUBLIC_COLUMNS


def regbench(*args, check=True, timeout=300):
    proc = subprocess.run([sys.executable, "-m", "regbench", *args], capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.mark.slow
def test_smoke_run_show_and_rerun(tmp_path):
    store = tmp_path / "r.sqlite"
    n = len(matrix.get("smoke").expand().cells)
    t0 = time.perf_counter()
    out = regbench("run", "--matrix", "smoke", "--store", str(store), "--jobs", "2")
    assert time.perf_counter() - t0 < 60
    assert f"{n} cells in matrix: 0 already stored, {n} run now ({n} ok" in out.stdout
    assert "cells" in out.stderr  # the tqdm progress bar

    df = pd.read_csv(io.StringIO(regbench("show", "--store", str(store), "--format", "csv").stdout))
    assert list(df.columns) == PUBLIC_COLUMNS
    assert len(df) == n and df.cell_id.is_unique and (df.status == "ok").all()

    t0 = time.perf_counter()
    again = regbench("run", "--matrix", "smoke", "--store", str(store))
    assert time.perf_counter() - t0 < 20
    assert f"{n} already stored, 0 run now" in again.stdout
    rows = json.loads(regbench("show", "--store", str(store), "--format", "json").stdout)
    assert len(rows) == n

    table = regbench("show", "--store", str(store)).stdout
    assert "gap_metric" in table and "stochastic_depth" in table


@pytest.mark.slow
def test_jobs_do_not_change_results(tmp_path):
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    args = ["--matrix", "smoke", "--tasks", "digits", "--regularizers", "none,dropout,augment"]
    regbench("run", *args, "--store", str(a), "--jobs", "1")
    regbench("run", *args, "--store", str(b), "--jobs", "2")
    cols = ["cell_id", "train_loss", "test_loss", "train_metric", "test_metric", "best_epoch"]
    da = pd.read_csv(io.StringIO(regbench("show", "--store", str(a), "--format", "csv").stdout))
    db = pd.read_csv(io.StringIO(regbench("show", "--store", str(b), "--format", "csv").stdout))
    pd.testing.assert_frame_equal(da[cols], db[cols], check_exact=True)


@pytest.mark.parametrize("args, needle", [
    (["run", "--matrix", "nope"], "valid choices: " + ", ".join(sorted(matrix.names()))),
    (["run", "--matrix", "smoke", "--regularizers", "l3"], "unknown regularizer 'l3'"),
    (["run", "--matrix", "smoke", "--tasks", "digitz"], "unknown task 'digitz'"),
    (["run", "--matrix", "smoke", "--jobs", "0"], "--jobs must be >= 1"),
    (["run", "--matrix", "smoke", "--executor", "slurm"], "unknown executor 'slurm'"),
    (["show", "--store", "/nonexistent/x.sqlite"], "no store at"),
    (["show", "--format", "xml"], "invalid choice: 'xml'"),
    (["list", "colours"], "invalid choice: 'colours'"),
])
@pytest.mark.slow
def test_bad_input_is_one_line_exit_2(args, needle, tmp_path):
    proc = regbench(*args, "--store", str(tmp_path / "x.sqlite"), check=False) \
        if args[0] == "run" else regbench(*args, check=False)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.sqlite").exists()


def test_bikes_without_data_dir_is_clear(tmp_path):
    p = tmp_path / "bikes.toml"
    p.write_text("[[blocks]]\ntasks=['bikes']\narchs=['mlp']\nregularizers=['none']\n")
    env = {k: v for k, v in os.environ.items() if k != "REGBENCH_DATA_DIR"}
    proc = subprocess.run([sys.executable, "-m", "regbench", "run", "--matrix", str(p),
                           "--store", str(tmp_path / "s.sqlite")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "--data-dir" in proc.stderr


@pytest.mark.slow
def test_bikes_with_data_dir(tmp_path, bikes_dir):
    p = tmp_path / "bikes.toml"
    p.write_text("seeds = 1\n[[blocks]]\ntasks=['bikes']\narchs=['mlp']\n"
                 "regularizers=['none', 'l2']\nstrengths='first'\nprotocol={epochs=2}\n")
    out = regbench("run", "--matrix", str(p), "--store", str(tmp_path / "s.sqlite"),
                   "--data-dir", str(bikes_dir), "--no-progress")
    assert "2 run now (2 ok" in out.stdout


@pytest.mark.slow
def test_list_shows_axes_and_skips():
    out = regbench("list").stdout
    for word in ("tasks:", "archs:", "regularizers:", "matrices:", "digits", "resmlp",
                 "label_smoothing", "smoke"):
        assert word in out
    skips = regbench("list", "matrices").stdout
    assert "skips diabetes x mlp x label_smoothing: label_smoothing needs a classification" in skips


KILL_MATRIX = """
seeds = 10
[[blocks]]
tasks = ["digits"]
archs = ["mlp"]
regularizers = ["none", "l2", "dropout"]
strengths = "first"
protocol = {epochs = 30}
"""


@pytest.mark.slow
def test_sigkill_loses_nothing_and_resume_runs_only_the_rest(tmp_path):
    store = tmp_path / "k.sqlite"
    toml = tmp_path / "kill.toml"
    toml.write_text(KILL_MATRIX)  # 30 cells of ~0.3 s: a wide window to kill the run in
    n = len(matrix.get(str(toml)).expand().cells)
    proc = subprocess.Popen([sys.executable, "-m", "regbench", "run", "--matrix", str(toml),
                             "--store", str(store), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    count = 0
    while time.time() < deadline:
        time.sleep(0.05)
        if store.exists():
            try:
                with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1) as con:
                    count = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if count >= 3:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 3 <= count < n, "the run finished before it could be killed"
    con = sqlite3.connect(store)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    # every committed cell is whole: it has its curves
    orphans = con.execute("SELECT COUNT(*) FROM cells WHERE cell_id NOT IN "
                          "(SELECT cell_id FROM curves)").fetchone()[0]
    con.close()
    assert orphans == 0 and stored >= count
    out = regbench("run", "--matrix", str(toml), "--store", str(store), "--no-progress").stdout
    assert f"{stored} already stored, {n - stored} run now" in out
    con = sqlite3.connect(store)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT cell_id) FROM cells").fetchone() == (n, n)


@pytest.mark.slow
def test_bench_runs_checks_and_stores(tmp_path):
    store = tmp_path / "b.sqlite"
    out = regbench("bench", "--sizes", "64K", "--threads", "1", "--dtypes", "fp32,bf16",
                   "--ops", "dropout,l2,mlp", "--min-time", "0.02", "--no-compile",
                   "--store", str(store)).stdout
    assert "backend=" in out and "targets:" in out
    assert "bytes saved for backward (1M fp32 elements): F.dropout=4194304, fused=0" in out
    with sqlite3.connect(store) as con:
        rows = pd.read_sql("SELECT * FROM bench", con)
    assert {"copy", "dropout_fwd", "l2", "mlp_step"} <= set(rows.op)
    assert set(rows.dtype) == {"fp32", "bf16"}
    ours = rows[rows.impl == "fused"]
    assert len(ours) and ours.ratio_vs_native.gt(0).all() and ours.ratio_vs_copy.gt(0).all()
    assert set(rows[rows.op == "mlp_step"].numel) == {21, 256}
    bad = regbench("bench", "--ops", "dropout,nope", check=False)
    assert bad.returncode != 0 and "'nope'" in bad.stderr and "dropout_fwdbwd" in bad.stderr


def test_list_regularizers_says_where_each_one_skips_and_why(capsys):
    from regbench.__main__ import main

    assert main(["list", "regularizers"]) == 0
    out = capsys.readouterr().out
    rows: dict[str, list[str]] = {}
    name = ""
    for line in out.splitlines()[1:]:
        if line.startswith("      skips "):
            rows[name].append(line.strip())
        else:
            name = line.split()[0]
            rows[name] = []
    assert rows["cutout"] == ["skips bikes, curve, mnist1d, periodic, breast_cancer, diabetes "
                              "(every architecture): cutout needs image inputs"]
    assert "skips linear (every task): dropconnect needs hidden layers" in rows["dropconnect"]
    assert any(r.startswith("skips resnet (every task): batchnorm is part of resnet")
               for r in rows["batchnorm"])
    assert rows["shake_drop"] == ["skips cnn, linear, mlp, wide, mlp_residual, cnn1d (every "
                                  "task): shake_drop needs residual blocks"]
    assert rows["label_smoothing"] == ["skips bikes, curve, periodic, diabetes (every "
                                       "architecture): label_smoothing needs a classification "
                                       "task"]
    for runs_everywhere in ("mixup", "sam", "swa", "lookahead", "snapshot_ensemble"):
        assert rows[runs_everywhere] == [], runs_everywhere
