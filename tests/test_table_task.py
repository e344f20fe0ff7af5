"""The `table` task: a user's CSV/Parquet file, preprocessing fitted on the train split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from data_files import write_table_csv

from regbench.errors import DataError, RegbenchError
from regbench.matrix import Matrix
from regbench.registry import TASKS
from regbench.specs import TaskSpec, freeze
from regbench.tasks.table import apply_features, fit_features, infer_kind


def spec(**kw):
    return TaskSpec("table", freeze(kw))


def test_regression_and_classification_from_one_csv(tmp_path):
    path = str(write_table_csv(tmp_path / "t.csv"))
    t = TASKS.get("table")()
    reg = t.load(spec(path=path, target="y", drop="id,label"), 0)
    assert reg.kind == "regression" and reg.metric == "rmse" and reg.n_out == 1
    # x1, x2 and the three one-hot colors
    assert reg.x_train.shape == (120, 5) and len(reg.x_val) == 40 and len(reg.x_test) == 40
    cls = t.load(spec(path=path, target="label", drop="id,y"), 0)
    assert cls.kind == "classification" and cls.n_out == 2 and cls.y_train.dtype == torch.int64
    again = t.load(spec(path=path, target="label", drop="id,y"), 0)
    assert torch.equal(cls.x_train, again.x_train) and torch.equal(cls.y_test, again.y_test)


def test_preprocessing_is_fitted_on_train_only():
    train = pd.DataFrame({"a": [1.0, np.nan, 3.0, 100.0], "c": ["x", "y", None, "x"]})
    plan = fit_features(train)
    assert plan[0] == ("a", "numeric", 3.0)  # the train median
    assert plan[1] == ("c", "categorical", ("x", ["x", "y"]))  # missing -> train mode
    test = pd.DataFrame({"a": [np.nan], "c": ["z"]})  # unseen category: all zeros
    assert apply_features(test, plan).tolist() == [[3.0, 0.0, 0.0]]
    assert apply_features(train, plan).tolist() == [
        [1.0, 1.0, 0.0], [3.0, 0.0, 1.0], [3.0, 1.0, 0.0], [100.0, 1.0, 0.0]]


def test_auto_kind():
    assert infer_kind(pd.Series(["a", "b"])) == "classification"
    assert infer_kind(pd.Series([0, 1, 2, 1])) == "classification"
    assert infer_kind(pd.Series([True, False])) == "classification"
    assert infer_kind(pd.Series(np.arange(100))) == "regression"
    assert infer_kind(pd.Series([0.5, 1.0])) == "regression"


def test_kind_settles_which_regularizers_apply(tmp_path):
    path = str(write_table_csv(tmp_path / "t.csv"))
    blocks = [{"tasks": [{"name": "table", "path": path, "target": t}], "archs": ["mlp"],
               "regularizers": ["none", "label_smoothing"]} for t in ("y", "label")]
    m = Matrix.from_dict({"name": "mine", "blocks": blocks})
    exp = m.expand()
    assert {c.reg.name for c in exp.cells if c.task.get("target") == "label"} == {
        "none", "label_smoothing"}
    assert [s.regularizer for s in exp.skipped] == ["label_smoothing"]
    assert "regression" in exp.skipped[0].reason


def test_errors_name_the_file_and_columns(tmp_path):
    t = TASKS.get("table")()
    with pytest.raises(RegbenchError, match="needs path and target"):
        t.load(TaskSpec("table"), 0)
    with pytest.raises(DataError, match="no file .*nope.csv"):
        t.load(spec(path=str(tmp_path / "nope.csv"), target="y"), 0)
    path = str(write_table_csv(tmp_path / "t.csv"))
    with pytest.raises(DataError, match=r"no column\(s\) \['price'\]; columns found: id, x1"):
        t.load(spec(path=path, target="price"), 0)
    with pytest.raises(DataError, match=r"no column\(s\) \['idx'\]"):
        t.load(spec(path=path, target="y", drop="idx"), 0)
    with pytest.raises(RegbenchError, match="kind='ordinal' is not allowed"):
        t.load(spec(path=path, target="y", kind="ordinal"), 0)
    with pytest.raises(DataError, match="needs a numeric target"):
        t.load(spec(path=path, target="label", kind="regression"), 0)
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(DataError, match="neither .csv nor .parquet"):
        t.load(spec(path=str(tmp_path / "t.xlsx"), target="y"), 0)


def test_parquet_reads_like_csv(tmp_path):
    pytest.importorskip("pyarrow")
    csv = write_table_csv(tmp_path / "t.csv")
    pd.read_csv(csv).to_parquet(tmp_path / "t.parquet")
    t = TASKS.get("table")()
    a = t.load(spec(path=str(csv), target="y", drop="id,label"), 0)
    b = t.load(spec(path=str(tmp_path / "t.parquet"), target="y", drop="id,label"), 0)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)


def test_parquet_without_an_engine_says_what_to_install(tmp_path, monkeypatch):
    import regbench.tasks.table as table

    def no_engine(path):
        raise ImportError("Unable to find a usable engine")

    monkeypatch.setattr(table.pd, "read_parquet", no_engine)
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match="pip install pyarrow"):
        table.read_table(str(tmp_path / "t.parquet"))
