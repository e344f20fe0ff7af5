"""Data is checked before any cell runs: bad values in tables, broken vision files.

Each problem is one line naming the file, the column or record and what was found; the CLI
exits 2 and stores nothing. Files are written in their real formats in tmp_path.
"""

from __future__ import annotations

import gzip
import os
import pickle
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from data_files import (
    idx_bytes,
    write_cifar10,
    write_cifar100,
    write_hour_csv,
    write_mnist,
    write_table_csv,
)

from regbench.errors import DataError
from regbench.executors import preflight
from regbench.registry import TASKS
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.tasks import formats, vision
from regbench.tasks.formats import check_idx, read_idx

TABLE_MATRIX = """
[[blocks]]
tasks = [{{name = "table", path = "{path}", target = "{target}", drop = "id,label"}}]
archs = ["mlp"]
regularizers = ["none"]
strengths = "first"
protocol = {{epochs = 1}}
"""

MNIST_MATRIX = """
[[blocks]]
tasks = [{name = "mnist", n_train = 40}]
archs = ["mlp"]
regularizers = ["none"]
strengths = "first"
protocol = {epochs = 1}
"""


def regbench(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "REGBENCH_DATA_DIR"}
    return subprocess.run([sys.executable, "-m", "regbench", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def stored(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(store) as con:
        return con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]


def run_table(tmp_path: Path, path: Path, target: str = "y") -> tuple[subprocess.CompletedProcess,
                                                                      Path]:
    toml = tmp_path / "m.toml"
    toml.write_text(TABLE_MATRIX.format(path=path, target=target))
    store = tmp_path / "s.sqlite"
    return regbench("run", "--matrix", str(toml), "--store", str(store), "--no-progress"), store


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr.strip().splitlines()


def table_cells(path: Path, target: str = "y", **protocol) -> list[Cell]:
    spec = TaskSpec("table", freeze({"path": str(path), "target": target, "drop": "id,label"}))
    return [Cell(spec, ArchSpec("mlp"), RegSpec("none"), 0, freeze(protocol))]


# -- tables: CSV and Parquet --------------------------------------------------------------------
@pytest.mark.slow  # two CLI runs
def test_an_inf_feature_in_a_csv_stops_the_run_and_the_fixed_file_runs(tmp_path):
    path = write_table_csv(tmp_path / "t.csv")
    good = path.read_text()
    df = pd.read_csv(path)
    df.loc[6, "x1"] = np.inf
    df.to_csv(path, index=False)
    proc, store = run_table(tmp_path, path)
    (line,) = error_lines(proc)
    assert line == (f"regbench: error: {path}: column 'x1': inf at row 7; values must be "
                    "finite (leave a missing value empty); nothing was run")
    assert stored(store) == 0  # not a `diverged` cell per seed
    path.write_text(good)
    proc, store = run_table(tmp_path, path)
    assert proc.returncode == 0, proc.stderr
    assert "1 run now (1 ok" in proc.stdout


@pytest.mark.parametrize("command", [["-m", "regbench", "run"], ["-m", "regbench.report"]])
def test_a_run_refused_for_bad_data_writes_nothing(tmp_path, command):
    data = tmp_path / "data"
    path = write_table_csv(data / "t.csv")
    df = pd.read_csv(path)
    df.loc[6, "x1"] = np.inf
    df.to_csv(path, index=False)
    toml = data / "m.toml"
    toml.write_text(TABLE_MATRIX.format(path=path, target="y"))
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "REGBENCH_DATA_DIR"}
    proc = subprocess.run([sys.executable, *command, "--matrix", str(toml), "--store",
                           "s.sqlite", "--no-progress"], cwd=work, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{path}: column 'x1': inf at row 7" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in work.iterdir()) == []  # no store, -wal, -shm or report
    assert sorted(p.name for p in data.iterdir()) == ["m.toml", "t.csv"]


def test_a_target_near_1e200_stops_the_run_instead_of_an_inf_rmse(tmp_path):
    path = write_table_csv(tmp_path / "t.csv")
    df = pd.read_csv(path)
    df["y"] = df["y"] * 1e200
    df.to_csv(path, index=False)
    proc, store = run_table(tmp_path, path)
    (line,) = error_lines(proc)
    assert f"{path}: column 'y':" in line and "too large to standardize" in line
    assert stored(store) == 0


def test_parquet_values_are_checked_like_csv(tmp_path):
    pytest.importorskip("pyarrow")
    df = pd.read_csv(write_table_csv(tmp_path / "t.csv"))
    df.loc[3, "x2"] = -np.inf
    df.loc[[10, 20], "y"] = np.inf
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    with pytest.raises(DataError) as err:
        preflight(table_cells(path), None)
    lines = str(err.value).splitlines()
    assert lines[0] == "2 problems in the data; nothing was run:"
    assert lines[1] == (f"  {path}: column 'x2': -inf at row 4; values must be finite "
                        "(leave a missing value empty)")
    assert lines[2].startswith(f"  {path}: column 'y': inf at row 11 and 1 more row(s);")


def test_missing_values_stay_allowed_and_float32_overflow_counts_only_when_fed_raw(tmp_path):
    path = write_table_csv(tmp_path / "t.csv")  # has missing x2 values: imputed, not a problem
    preflight(table_cells(path), None)
    df = pd.read_csv(path)
    df["x1"] = df["x1"] * 1e100  # standardizes fine; beyond float32 unstandardized
    df.to_csv(path, index=False)
    preflight(table_cells(path), None)
    with pytest.raises(DataError, match=r"column 'x1': .* does not fit float32 .*'none'"):
        preflight(table_cells(path, standardize="none"), None)


# -- bikes (hour.csv) ------------------------------------------------------------------------
def test_bikes_values_are_checked(tmp_path):
    path = write_hour_csv(tmp_path / "hour.csv")
    df = pd.read_csv(path)
    df.loc[4, "temp"] = np.nan  # bikes imputes nothing: a missing value is a problem
    df["hum"] = df["hum"].astype(object)
    df.loc[9, "hum"] = "humid"
    df["cnt"] = df["cnt"].astype(np.float64)
    df.loc[2, "cnt"] = np.inf
    df.to_csv(path, index=False)
    cells = [Cell(TaskSpec("bikes"), ArchSpec("mlp"), RegSpec("none"), 0)]
    with pytest.raises(DataError) as err:
        preflight(cells, str(tmp_path))
    text = str(err.value)
    assert text.startswith("3 problems in the data; nothing was run:")
    assert f"{path}: column 'temp': nan at row 5; values must be finite" in text
    assert f"{path}: column 'hum': 'humid' at row 10 is not a number" in text
    assert f"{path}: column 'cnt': inf at row 3; values must be finite" in text


# -- vision files -------------------------------------------------------------------------
def _break_mnist(folder: Path, fault: str) -> Path:
    """One file of a gzipped MNIST folder broken as `fault` says; returns it."""
    if fault == "truncated gzip":
        path = folder / "train-images-idx3-ubyte.gz"
        path.write_bytes(path.read_bytes()[:-200])
    elif fault.startswith("header claims"):
        path = folder / "t10k-images-idx3-ubyte.gz"
        blob = bytearray(gzip.decompress(path.read_bytes()))
        more = 5 if fault == "header claims more" else -1
        blob[4:8] = (int.from_bytes(blob[4:8], "big") + more).to_bytes(4, "big")
        path.write_bytes(gzip.compress(bytes(blob), mtime=0))
    else:  # label 200
        path = folder / "train-labels-idx1-ubyte.gz"
        blob = bytearray(gzip.decompress(path.read_bytes()))
        blob[8 + 17] = 200
        path.write_bytes(gzip.compress(bytes(blob), mtime=0))
    return path


@pytest.mark.parametrize("fault, found", [
    ("truncated gzip", r"cannot be read after \d+ decompressed bytes .*truncated"),
    ("header claims more", r"truncated: \d+ bytes, the header \(15, 28, 28\) promises \d+"),
    ("header claims fewer", r"longer than its header says: the header \(9, 28, 28\) "
                            r"promises 7072 bytes"),
    ("label 200", r"record 17: label 200; expected 0\.\.9"),
])
def test_a_broken_mnist_file_is_one_line_naming_it(tmp_path, fault, found):
    write_mnist(tmp_path, n_train=60, n_test=10, gz=True)
    path = _break_mnist(tmp_path, fault)
    vision._CHECKED.clear()
    problems = TASKS.get("mnist")().check_data(TaskSpec("mnist"), tmp_path)
    assert len(problems) == 1 and problems[0].startswith(f"{path}: ")
    assert re.search(found, problems[0]), problems


@pytest.mark.slow  # two CLI runs
def test_a_broken_mnist_file_exits_2_and_runs_after_the_fix(tmp_path):
    data = tmp_path / "data"
    write_mnist(data, n_train=60, n_test=10, gz=True)
    good = (data / "train-labels-idx1-ubyte.gz").read_bytes()
    _break_mnist(data, "label 200")
    _break_mnist(data, "truncated gzip")
    toml = tmp_path / "m.toml"
    toml.write_text(MNIST_MATRIX)
    store = tmp_path / "s.sqlite"
    args = ("run", "--matrix", str(toml), "--store", str(store), "--data-dir", str(data),
            "--no-progress")
    lines = error_lines(regbench(*args))
    assert lines[0] == "regbench: error: 2 problems in the data; nothing was run:"
    assert lines[1].startswith(f"  {data / 'train-images-idx3-ubyte.gz'}: cannot be read")
    assert lines[2] == (f"  {data / 'train-labels-idx1-ubyte.gz'}: record 17: label 200; "
                        "expected 0..9")
    assert stored(store) == 0  # no `failed` cells stand in for the data error
    write_mnist(data, n_train=60, n_test=10, gz=True)  # the files downloaded again
    assert (data / "train-labels-idx1-ubyte.gz").read_bytes() == good
    proc = regbench(*args)
    assert proc.returncode == 0, proc.stderr
    assert "1 run now (1 ok" in proc.stdout


def test_idx_structure_problems(tmp_path):
    (tmp_path / "labels").write_bytes(idx_bytes(np.zeros((4, 2), np.uint8)))
    assert check_idx(tmp_path / "labels", 10) == ((4, 2), [])
    write_mnist(tmp_path / "m", n_train=60, n_test=10)
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").write_bytes(
        idx_bytes(np.zeros(9, np.uint8)))
    (tmp_path / "m" / "train-images-idx3-ubyte").write_bytes(
        idx_bytes(np.zeros((60, 27, 28), np.uint8)))
    problems = TASKS.get("mnist")().check_data(TaskSpec("mnist"), tmp_path / "m")
    assert problems == [
        f"{tmp_path / 'm' / 'train-images-idx3-ubyte'}: images are (60, 27, 28); "
        "expected N x 28 x 28",
        f"{tmp_path / 'm' / 't10k-labels-idx1-ubyte'}: 9 labels for 10 images in "
        "t10k-images-idx3-ubyte"]


class _Counting:
    """A stream wrapper that counts the bytes read through it."""

    total = 0

    def __init__(self, fh):
        self.fh = fh

    def read(self, n=-1):
        out = self.fh.read(n)
        _Counting.total += len(out)
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


@pytest.mark.parametrize("first", [b"\xff\xd8\xff\xe0", b"\x00\x00\x08\x01"])
def test_a_4gb_file_is_refused_from_its_first_bytes(tmp_path, monkeypatch, first):
    """A bad magic number, or a header whose size disagrees with the file's, is found
    without reading the file (a sparse 4 GiB file: no disk space, no memory)."""
    path = tmp_path / "train-labels-idx1-ubyte"
    with path.open("wb") as fh:
        fh.write(first + (10).to_bytes(4, "big"))
        fh.truncate(4 << 30)
    opened = formats._open
    monkeypatch.setattr(formats, "_open", lambda p: _Counting(opened(p)))
    _Counting.total = 0
    t0 = time.perf_counter()
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert time.perf_counter() - t0 < 2 and _Counting.total <= 8
    assert ("not an idx file (magic number ffd8ffe0" in str(err.value)
            or f"longer than its header says: {4 << 30} bytes" in str(err.value))
    _, problems = check_idx(path, 10)
    assert len(problems) == 1 and _Counting.total <= 16


def test_an_uncompressed_image_file_is_checked_from_its_header_and_size(tmp_path, monkeypatch):
    path = tmp_path / "train-images-idx3-ubyte"
    with path.open("wb") as fh:  # a sparse 4 GiB file whose header matches its size
        fh.write(bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (4096, 1024, 1024)))
        fh.truncate(16 + (4 << 30))
    opened = formats._open
    monkeypatch.setattr(formats, "_open", lambda p: _Counting(opened(p)))
    _Counting.total = 0
    assert check_idx(path) == ((4096, 1024, 1024), []) and _Counting.total == 16


def test_cifar_batches_are_checked_record_by_record(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, per_batch=20)
    with (folder / "data_batch_2").open("rb") as fh:
        d = pickle.load(fh, encoding="bytes")
    d[b"labels"][5] = 200
    d[b"labels"][7] = 10
    with (folder / "data_batch_2").open("wb") as fh:
        pickle.dump(d, fh, protocol=2)
    with (folder / "data_batch_4").open("wb") as fh:  # a batch without its labels
        pickle.dump({b"data": d[b"data"]}, fh, protocol=2)
    with (folder / "test_batch").open("wb") as fh:  # a list where the batch dict should be
        pickle.dump([1, 2], fh, protocol=2)
    path = folder / "data_batch_5"
    path.write_bytes(path.read_bytes()[:-4000])
    problems = TASKS.get("cifar10")().check_data(TaskSpec("cifar10"), tmp_path)
    assert problems[0] == (f"{folder / 'data_batch_2'}: record 5: labels 200; expected 0..9 "
                           "(2 such records)")
    assert problems[1].startswith(f"{folder / 'data_batch_4'}: no 'labels' entry")
    assert problems[2].startswith(f"{folder / 'data_batch_5'}: not a readable CIFAR python "
                                  "batch")
    assert problems[3] == f"{folder / 'test_batch'}: a CIFAR batch is a pickled dict, got list"
    assert len(problems) == 4


def test_cifar100_labels_are_checked(tmp_path):
    folder = tmp_path / "cifar-100-python"
    write_cifar100(folder, n_train=100, n_test=50)
    with (folder / "test").open("rb") as fh:
        d = pickle.load(fh, encoding="bytes")
    d[b"fine_labels"][3] = 100
    with (folder / "test").open("wb") as fh:
        pickle.dump(d, fh, protocol=2)
    assert TASKS.get("cifar100")().check_data(TaskSpec("cifar100"), tmp_path) == [
        f"{folder / 'test'}: record 3: fine_labels 100; expected 0..99"]


def test_a_100_cell_matrix_checks_each_file_once_and_a_changed_file_again(tmp_path,
                                                                          monkeypatch):
    write_mnist(tmp_path, n_train=60, n_test=10, gz=True)
    vision._CHECKED.clear()
    calls = []
    real = vision.check_idx
    monkeypatch.setattr(vision, "check_idx", lambda p, *a: calls.append(p) or real(p, *a))
    cells = [Cell(TaskSpec("mnist", freeze({"n_train": 10 + i % 20})), ArchSpec("mlp"),
                  RegSpec("none"), i // 20) for i in range(100)]
    preflight(cells, str(tmp_path))
    preflight(cells, str(tmp_path))
    assert len(calls) == 4 and len(set(calls)) == 4
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    preflight(cells, str(tmp_path))
    assert calls[4:] == [path]
