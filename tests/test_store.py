import hashlib
import sqlite3

import pytest

from regbench.errors import StoreError
from regbench.specs import ArchSpec, Cell, CellResult, RegSpec, TaskSpec
from regbench.store import PUBLIC_COLUMNS, SCHEMA_VERSION, Store


def result(seed=0, status="ok", train=0.1, test=0.3):
    cell = Cell(TaskSpec("digits"), ArchSpec("mlp"), RegSpec("l2", 1e-3), seed)
    metrics = {"epochs": 2, "best_epoch": 2, "train_loss": train, "test_loss": test,
               "gap_loss": test - train, "train_metric": 0.99, "test_metric": 0.95,
               "gap_metric": 0.04, "metric_name": "accuracy", "higher_is_better": True}
    return CellResult(cell, status, metrics=metrics,
                      provenance={"torch_version": "x", "device": "cpu", "threads": 1},
                      curves=[{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "val_metric": 0.5,
                               "test_loss": 1.2},
                              {"epoch": 2, "train_loss": 0.5, "val_loss": 0.6, "val_metric": 0.7,
                               "test_loss": 0.7}],
                      artifacts={"weight_stats": {"n": 3}})


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_round_trip(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        assert s.add(result(0)) and s.add(result(1))
        df = s.frame()
        assert list(df.columns) == PUBLIC_COLUMNS
        assert len(df) == 2 and set(df.seed) == {0, 1}
        assert len(s.curves()) == 4
        assert s.artifacts("weight_stats")[result(0).cell.cell_id] == {"n": 3}
        one = result(1).cell.cell_id
        assert list(s.artifacts("weight_stats", [one])) == [one]
        assert set(s.curves([one]).cell_id) == {one}
        assert s.curves([]).empty


def test_never_two_rows_per_cell(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        assert s.add(result(0))
        assert not s.add(result(0, train=0.2))
        assert len(s.frame()) == 1 and s.frame().train_loss[0] == 0.1
        assert s.add(result(0, train=0.2), replace=True)  # --force replaces atomically
        assert len(s.frame()) == 1 and s.frame().train_loss[0] == 0.2
        assert len(s.curves()) == 2


def test_failed_cells_can_be_retried(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        s.add(result(0))
        s.add(result(1, status="failed"))
        ids = {result(i).cell.cell_id for i in (0, 1)}
        assert s.done_ids() == ids
        assert s.done_ids(retry_failed=True) == {result(0).cell.cell_id}


def test_reopen_keeps_rows_and_wal(tmp_path):
    p = tmp_path / "s.sqlite"
    with Store(p) as s:
        s.add(result(0))
    with Store(p) as s:
        assert len(s.frame()) == 1
        assert s.con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_not_a_store_is_refused_untouched(tmp_path):
    p = tmp_path / "other.sqlite"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE people (name TEXT)")
    con.commit()
    con.close()
    before = digest(p)
    with pytest.raises(StoreError, match="not a regbench store"):
        Store(p)
    assert digest(p) == before


def test_garbage_file_is_refused_untouched(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, this is not sqlite at all" * 10)
    before = digest(p)
    with pytest.raises(StoreError, match="not a regbench store"):
        Store(p)
    assert digest(p) == before


def test_newer_schema_is_refused_untouched(tmp_path):
    p = tmp_path / "s.sqlite"
    with Store(p) as s:
        s.add(result(0))
        with s.transaction():
            s.con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                          (str(SCHEMA_VERSION + 1),))
    before = digest(p)
    with pytest.raises(StoreError, match="newer"):
        Store(p)
    assert digest(p) == before


def test_failed_transaction_leaves_nothing(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        bad = result(0)
        bad.curves.append(bad.curves[0])  # duplicate epoch -> primary key violation
        with pytest.raises(sqlite3.IntegrityError):
            s.add(bad)
        assert len(s.frame()) == 0 and len(s.curves()) == 0


def test_store_with_another_suite_version_is_refused(tmp_path):
    import dataclasses

    cells = [result(0).cell, result(1).cell]
    with Store(tmp_path / "s.sqlite") as store:
        store.check_suite_versions({"1"})  # empty store: fine
        old = dataclasses.replace(cells[0], suite_version="0")
        store.add(CellResult(old, "failed", error="x"))
        with pytest.raises(StoreError, match="holds 1 cells of suite version '0', but this "
                                             "run is suite version '1'"):
            store.check_suite_versions({"1"})
        store.check_suite_versions({"0"})


def test_bench_rows(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        s.add_bench([{"run_id": "r", "op": "dropout", "impl": "ours", "numel": 10,
                      "median_s": 1e-3, "machine": {"cpu": "x"}}])
        df = s.bench_frame()
        assert len(df) == 1 and df.op[0] == "dropout" and df.suite_version[0]
        with pytest.raises(StoreError, match="colour"):
            s.add_bench([{"run_id": "r", "op": "x", "impl": "y", "colour": 1}])
