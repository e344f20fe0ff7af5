"""End-to-end: the data-file tasks through the CLI and the report, in subprocesses."""

from __future__ import annotations

import io
import os
import re
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from regbench import matrix

DATA_MATRIX = """
seeds = 2
[[blocks]]
tasks = [{{name = "mnist", n_train = 80}}, "cifar10",
         {{name = "table", path = "{table}", target = "label", drop = "id,y"}}]
archs = ["mlp", {{name = "resnet", depth = 8}}]
regularizers = ["none", "dropout", "augment"]
strengths = "first"
protocol = {{epochs = 2}}
"""


def regbench(*args, env=None, check=True, module="regbench"):
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          timeout=600, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.mark.slow
def test_data_tasks_are_bitwise_identical_across_jobs(tmp_path, bikes_dir):
    toml = tmp_path / "data.toml"
    toml.write_text(DATA_MATRIX.format(table=bikes_dir / "table.csv"))
    n = len(matrix.get(str(toml)).expand().cells)
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    for store, jobs in ((a, "1"), (b, "2")):
        out = regbench("run", "--matrix", str(toml), "--store", str(store), "--jobs", jobs,
                       "--data-dir", str(bikes_dir), "--no-progress")
        assert f"{n} run now ({n} ok" in out.stdout
    cols = ["cell_id", "train_loss", "test_loss", "train_metric", "test_metric", "best_epoch"]
    frames = [pd.read_csv(io.StringIO(regbench("show", "--store", str(s), "--format",
                                               "csv").stdout)).sort_values("cell_id")
              for s in (a, b)]
    assert set(frames[0].task) == {"mnist", "cifar10", "table"}
    pd.testing.assert_frame_equal(frames[0][cols].reset_index(drop=True),
                                  frames[1][cols].reset_index(drop=True), check_exact=True)


def test_missing_vision_files_exit_2_and_store_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REGBENCH_DATA_DIR"}
    store = tmp_path / "s.sqlite"
    proc = regbench("run", "--matrix", "vision", "--store", str(store), "--data-dir",
                    str(tmp_path), env=env, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no CIFAR-10" in proc.stderr or "no MNIST" in proc.stderr
    assert str(tmp_path) in proc.stderr and "come from" in proc.stderr
    assert _stored(store) == 0


def _stored(store) -> int:
    """Cells in a store (0 when the file was never created)."""
    if not store.exists():
        return 0
    with sqlite3.connect(store) as con:
        return con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]


def test_listing_the_vision_matrix_reads_no_data(monkeypatch, capsys):
    from regbench.__main__ import main
    from regbench.tasks import vision

    def refuse(*a, **k):
        raise AssertionError("listing read data")

    for name in ("files", "read", "arrays", "check_available"):
        monkeypatch.setattr(vision.VisionTask, name, refuse)
    monkeypatch.delenv("REGBENCH_DATA_DIR", raising=False)
    assert main(["list", "matrices"]) == 0
    n = len(matrix.get("vision").expand().cells)
    assert re.search(rf"\n  vision +{n} cells, 5 seeds", capsys.readouterr().out)
    assert n > 300


@pytest.mark.slow  # the report's figures and claims take minutes on a loaded 2-core machine
def test_a_csv_and_a_short_toml_give_a_report(tmp_path, bikes_dir):
    toml = tmp_path / "mine.toml"
    toml.write_text(f'[[blocks]]\ntasks = [{{name = "table", path = "{bikes_dir / "table.csv"}",'
                    ' target = "y", drop = "id,label"}]\narchs = ["mlp"]\n'
                    'regularizers = ["none", "l2"]\n')
    out = tmp_path / "report"
    regbench("--matrix", str(toml), "--store", str(tmp_path / "s.sqlite"), "--out", str(out),
             "--jobs", "1", "--no-progress", "--figure-formats", "png", module="regbench.report")
    text = (out / "README.md").read_text()
    assert "table" in text
