"""`regbench.load`: a store as a typed DataFrame; `regbench show --format parquet` writes the
same frame and reads back equal, dtypes included."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import regbench
from regbench.__main__ import main
from regbench.store import Store

MATRIX = """\
name = "stacked"
seeds = 2
[[blocks]]
tasks = ["curve", {name = "digits", n_train = 100, label_noise = 0.1}]
archs = [{name = "mlp", width = 16, depth = 1}]
regularizers = ["none", {name = "dropout", with = [{name = "l2", strength = 1e-3}]}]
strengths = "first"
protocol = {epochs = 2}
[[blocks]]
tasks = ["curve"]
archs = [{name = "mlp", width = 16, depth = 1}]
base = [{name = "weight_decay", strength = 5e-4}]
regularizers = ["none"]
protocol = {epochs = 2, batch_size = 16}
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("frame")
    (d / "m.toml").write_text(MATRIX)
    path = d / "results.sqlite"
    assert main(["run", "--matrix", str(d / "m.toml"), "--store", str(path),
                 "--no-progress"]) == 0
    return path


def test_columns_are_typed_and_no_json_is_left(store):
    df = regbench.load(store)
    with Store(store, readonly=True) as s:
        raw = s.cells_frame()
    assert len(df) == len(raw) == 10
    assert list(df.cell_id) == list(raw.cell_id)  # `regbench show`'s order
    for gone in ("task_params", "arch_params", "reg_params", "protocol", "cell_json", "addons",
                 "tune"):
        assert gone not in df.columns
    dtypes = df.dtypes.astype(str).to_dict()
    assert dtypes["status"] == "category"
    assert list(df.status.cat.categories) == ["ok", "diverged", "failed"]
    assert dtypes["started_at"].startswith("datetime64[") and "UTC" in dtypes["started_at"]
    assert dtypes["finished_at"] == dtypes["started_at"]
    for metric in ("test_metric", "gap_metric", "train_loss", "wall_s", "strength"):
        assert dtypes[metric] == "float64", metric
    for count in ("epochs", "best_epoch", "threads", "protocol.epochs", "arch_param.width"):
        assert dtypes[count] == "Int64", count
    assert dtypes["higher_is_better"] == "boolean"
    assert dtypes["task_param.label_noise"] == "float64"
    assert dtypes["task"] == dtypes["base"] == dtypes["with"] == "string"
    object_columns = [c for c, t in dtypes.items() if t == "object"]
    assert object_columns == []
    digits = df[df.task == "digits"]
    assert (digits["task_param.n_train"] == 100).all()
    assert df.loc[df.task == "curve", "task_param.n_train"].isna().all()


def test_stacks_are_labels_and_member_columns(store):
    df = regbench.load(store)
    stacked = df[df["with"] != ""]
    assert set(stacked.regularizer) == {"dropout"}
    assert (stacked["with"] == "l2=0.001").all() and (stacked["with.l2"] == 1e-3).all()
    assert df.loc[df["with"] == "", "with.l2"].isna().all()
    on_base = df[df["base"] != ""]
    assert len(on_base) == 2 and (on_base["base"] == "weight_decay=0.0005").all()
    assert (on_base["base.weight_decay"] == 5e-4).all()
    assert (on_base["protocol.batch_size"] == 16).all()
    assert df.loc[df["base"] == "", "protocol.batch_size"].isna().all()


def test_a_custom_table(store):
    df = regbench.load(store)
    table = (df[df.status == "ok"]
             .groupby(["task", "regularizer", "with"], observed=True)["gap_metric"]
             .agg(["mean", "count"]))
    assert table["count"].sum() == 10 and table["mean"].notna().all()


def test_parquet_round_trips_with_dtypes(store, tmp_path, capsys):
    out = tmp_path / "cells.parquet"
    assert main(["show", "--store", str(store), "--format", "parquet", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"10 cell(s) written to {out} (parquet)\n"
    back = pd.read_parquet(out)
    pd.testing.assert_frame_equal(back, regbench.load(store), check_exact=True)
    assert list(tmp_path.iterdir()) == [out]  # no temporary left beside it


def test_show_out_writes_the_other_formats_too(store, tmp_path, capsys):
    out = tmp_path / "cells.csv"
    assert main(["show", "--store", str(store), "--format", "csv", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["show", "--store", str(store), "--format", "csv"]) == 0
    assert out.read_text() == capsys.readouterr().out


@pytest.mark.parametrize("args, needle", [
    (["--format", "parquet"], "--format parquet writes a binary file: pass --out FILE"),
    (["--format", "parquet", "--out", "{tmp}/file/cells.parquet"], "not a folder"),
    (["--format", "parquet", "--out", "{tmp}"], "is a directory"),
])
def test_show_out_errors_are_one_line(store, tmp_path, capsys, args, needle):
    (tmp_path / "file").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["show", "--store", str(store), *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_load_defaults_to_the_cli_store(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".regbench").mkdir()
    (tmp_path / ".regbench" / "results.sqlite").write_bytes(store.read_bytes())
    assert len(regbench.load()) == 10


def test_load_of_a_missing_store_is_a_store_error(tmp_path):
    from regbench.errors import StoreError

    with pytest.raises(StoreError, match="no store at"):
        regbench.load(tmp_path / "nope.sqlite")
    assert not (tmp_path / "nope.sqlite").exists()


def test_parameter_values_of_mixed_kinds_become_text():
    from regbench.results_frame import typed

    cells = pd.DataFrame({
        "cell_id": ["a", "b", "c"], "task": ["t", "t", "t"],
        "task_params": [json.dumps({"k": 1}), json.dumps({"k": "x"}), json.dumps({})],
        "arch_params": [json.dumps({"sizes": [8, 4]}), "{}", "{}"],
        "status": ["ok", "failed", "diverged"]})
    df = typed(cells)
    assert df["task_param.k"].tolist()[:2] == ["1", '"x"'] and pd.isna(df["task_param.k"][2])
    assert df["arch_param.sizes"][0] == "[8, 4]"
    assert df.status.tolist() == ["ok", "failed", "diverged"]
