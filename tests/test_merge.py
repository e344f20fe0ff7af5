"""`regbench merge`: stores of several machines combined into one; a cell's second result
kept beside the first; bad inputs refused with one line before anything is written."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import regbench
from regbench.__main__ import main
from regbench.store import merge as merge_mod

# two tasks, so that two machines can each run one: 8 cells in all, a few seconds
MATRIX = """\
name = "pair"
seeds = 2
[[blocks]]
tasks = ["curve", "periodic"]
archs = [{name = "mlp", width = 16, depth = 1}]
regularizers = ["none", "l2", {name = "dropout", with = [{name = "l2", strength = 1e-3}]}]
strengths = "first"
protocol = {epochs = 3}
"""
# what differs between two runs of one cell on one machine: timing and when it ran
TIMING = ["train_s", "wall_s", "samples_per_s", "started_at", "finished_at"]


def run(store: Path, matrix: Path, *extra: str) -> None:
    assert main(["run", "--matrix", str(matrix), "--store", str(store), "--no-progress",
                 *extra]) == 0


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`full` ran the whole matrix; `a` and `b` each ran one task of it."""
    d = tmp_path_factory.mktemp("stores")
    matrix = d / "pair.toml"
    matrix.write_text(MATRIX)
    out = {"matrix": matrix}
    for name, tasks in (("a", ["--tasks", "curve"]), ("b", ["--tasks", "periodic"]),
                        ("full", [])):
        out[name] = d / f"{name}.sqlite"
        run(out[name], matrix, *tasks)
    return out


@pytest.fixture
def copies(stores: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """The stores copied into this test's folder (a test may edit them)."""
    out = {}
    for name in ("a", "b", "full"):
        out[name] = tmp_path / f"{name}.sqlite"
        shutil.copy(stores[name], out[name])
    return out


def merged(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    rc = main(["merge", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sql(path: Path, statement: str, *params: object) -> None:
    con = sqlite3.connect(path)
    with con:
        con.execute(statement, params)
    con.close()


def test_two_halves_merged_equal_the_whole(copies, tmp_path, capsys):
    c = tmp_path / "c.sqlite"
    rc, out, err = merged(capsys, str(copies["a"]), str(copies["b"]), "--into", str(c))
    assert rc == 0, err
    assert "12 cell(s) (6 from" in out and "0 with another result" in out
    got, want = regbench.load(c), regbench.load(copies["full"])
    assert len(got) == 12 and (got.status == "ok").all()
    pd.testing.assert_frame_equal(got.drop(columns=TIMING), want.drop(columns=TIMING))
    con = sqlite3.connect(c)
    for table in ("curves", "artifacts"):
        assert con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] > 0
    assert con.execute("SELECT COUNT(*) FROM conflicts").fetchone()[0] == 0
    con.close()
    assert main(["check", "--store", str(c)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sqlite", "b.sqlite", "c.sqlite",
                                                          "full.sqlite"]  # no temporary left


def test_the_same_result_twice_is_kept_once(copies, tmp_path, capsys):
    c = tmp_path / "c.sqlite"
    rc, out, _ = merged(capsys, str(copies["a"]), str(copies["full"]), "--into", str(c))
    assert rc == 0
    assert "6 also in an earlier store with the same result" in out
    assert len(regbench.load(c)) == 12


def test_a_different_result_is_kept_and_listed_by_check(copies, tmp_path, capsys):
    other = tmp_path / "other.sqlite"
    shutil.copy(copies["a"], other)
    cid = sqlite3.connect(other).execute(
        "SELECT cell_id FROM cells WHERE regularizer = 'l2' AND seed = 1").fetchone()[0]
    sql(other, "UPDATE cells SET test_metric = test_metric + 1e-12, hostname = 'far-away' "
               "WHERE cell_id = ?", cid)
    c = tmp_path / "c.sqlite"
    rc, out, _ = merged(capsys, str(copies["a"]), str(other), str(copies["b"]), "--into", str(c))
    assert rc == 0
    assert "1 with another result, kept in conflicts" in out
    assert f"conflict: cell {cid} (curve / mlp[depth=1,width=16] / l2=" in out
    assert f"the one from {other} (machine far-away" in out and "differs in test_metric" in out
    kept = regbench.load(c).set_index("cell_id")
    first = regbench.load(copies["a"]).set_index("cell_id")
    assert kept.loc[cid, "test_metric"] == first.loc[cid, "test_metric"]  # the first store's
    con = sqlite3.connect(c)
    row = con.execute("SELECT source, kept_source, hostname, differs FROM conflicts").fetchall()
    con.close()
    assert row == [(str(other), str(copies["a"]), "far-away", "test_metric")]
    rc = main(["check", "--store", str(c)])
    out = capsys.readouterr().out
    assert rc == 0 and "healthy" in out.splitlines()[-1]
    assert "  conflicts: 1 second result(s) from other machines" in out
    assert f"    cell {cid} (" in out
    # merging the merged store again carries its conflict over, once
    d = tmp_path / "d.sqlite"
    assert main(["merge", str(c), str(other), "--into", str(d)]) == 0
    con = sqlite3.connect(d)
    assert con.execute("SELECT COUNT(*) FROM conflicts").fetchone()[0] == 1
    con.close()


def test_a_failed_cell_gives_way_to_a_result(copies, tmp_path, capsys):
    broken = tmp_path / "broken.sqlite"
    shutil.copy(copies["a"], broken)
    sql(broken, "UPDATE cells SET status = 'failed', error = 'boom', test_metric = NULL "
                "WHERE regularizer = 'none'")
    c = tmp_path / "c.sqlite"
    rc, out, _ = merged(capsys, str(broken), str(copies["a"]), "--into", str(c))
    assert rc == 0 and "failed cells: 2 replaced by a later store's result" in out
    assert (regbench.load(c).status == "ok").all()
    d = tmp_path / "d.sqlite"
    rc, out, _ = merged(capsys, str(copies["a"]), str(broken), "--into", str(d))
    assert rc == 0 and "0 replaced by a later store's result, 2 left out" in out
    assert (regbench.load(d).status == "ok").all()


def listing(folder: Path) -> dict[str, str]:
    return {p.name: digest(p) for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("case", [
    "missing", "damaged", "not-a-store", "exists", "itself", "twice", "not-writable",
    "directory", "other-suite", "newer-schema"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(copies, tmp_path, capsys, case):
    a, b, c = str(copies["a"]), str(copies["b"]), str(tmp_path / "c.sqlite")
    args = [a, b, "--into", c]
    if case == "missing":
        args, needle = [a, str(tmp_path / "nope.sqlite"), "--into", c], "no store at"
    elif case == "damaged":
        data = bytearray(copies["b"].read_bytes())
        data[4096:8192] = b"\xff" * 4096
        copies["b"].write_bytes(bytes(data))
        needle = "fails SQLite's integrity check"
    elif case == "not-a-store":
        copies["b"].write_text("hello")
        needle = "is not a regbench store"
    elif case == "exists":
        Path(c).write_text("precious")
        needle = f"--into {c} exists; pass --force"
    elif case == "itself":
        args, needle = [a, b, "--into", a, "--force"], "cannot be merged into itself"
    elif case == "twice":
        args, needle = [a, str(tmp_path / "." / "a.sqlite"), "--into", c], "is given twice"
    elif case == "not-writable":
        (tmp_path / "file").write_text("x")
        args, needle = [a, b, "--into", str(tmp_path / "file" / "c.sqlite")], "not a folder"
    elif case == "directory":
        (tmp_path / "dir").mkdir()
        args, needle = [a, b, "--into", str(tmp_path / "dir")], "is a directory"
    elif case == "other-suite":
        sql(copies["b"], "UPDATE cells SET suite_version = '0'")
        needle = "of suite version '0'"
    else:
        sql(copies["b"], "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        needle = "newer than this regbench understands"
    before = listing(tmp_path)
    rc, out, err = merged(capsys, *args)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert err.startswith("regbench: error: ")
    assert listing(tmp_path) == before  # nothing written, nothing left behind


def test_a_merge_stopped_midway_leaves_the_target_as_it_was(copies, tmp_path, monkeypatch):
    c = tmp_path / "c.sqlite"
    assert main(["merge", str(copies["a"]), "--into", str(c)]) == 0
    before, seen = digest(c), []
    real_add = merge_mod._Target.add

    def add_then_stop(self, cell):
        real_add(self, cell)
        seen.append(cell)
        if len(seen) == 7:
            raise KeyboardInterrupt  # Ctrl-C halfway through the second store

    monkeypatch.setattr(merge_mod._Target, "add", add_then_stop)
    rc = main(["merge", str(copies["a"]), str(copies["b"]), "--into", str(c), "--force"])
    assert rc == 130
    assert digest(c) == before and len(regbench.load(c)) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sqlite", "b.sqlite", "c.sqlite",
                                                          "full.sqlite"]


def test_force_replaces_a_store(copies, tmp_path):
    c = tmp_path / "c.sqlite"
    assert main(["merge", str(copies["a"]), "--into", str(c)]) == 0
    assert main(["merge", str(copies["a"]), str(copies["b"]), "--into", str(c), "--force"]) == 0
    assert len(regbench.load(c)) == 12


def test_an_older_schema_store_is_merged_without_being_changed(tmp_path):
    fixture = Path(__file__).parent / "data" / "store_v1.sqlite"
    old = tmp_path / "old.sqlite"
    shutil.copy(fixture, old)
    sql(old, "UPDATE cells SET suite_version = ?", regbench.SUITE_VERSION)
    before = digest(old)
    assert main(["merge", str(old), "--into", str(tmp_path / "c.sqlite")]) == 0
    assert digest(old) == before and not list(tmp_path.glob("*.bak"))
    df = regbench.load(tmp_path / "c.sqlite")
    assert len(df) == 2 and (df["base"] == "").all() and (df["with"] == "").all()


@pytest.mark.slow
def test_two_machines_halves_of_smoke_merged_equal_all_of_it(tmp_path, capsys):
    """The real `smoke` matrix (94 cells), split by task between two stores."""
    a, b, full, c = (tmp_path / f"{n}.sqlite" for n in ("a", "b", "full", "c"))
    for store, extra in ((a, ["--tasks", "curve"]), (b, ["--tasks", "digits"]), (full, [])):
        assert main(["run", "--matrix", "smoke", "--store", str(store), "--no-progress",
                     "--jobs", "2", *extra]) == 0
    assert main(["merge", str(a), str(b), "--into", str(c)]) == 0
    got, want = regbench.load(c), regbench.load(full)
    assert len(got) == len(want) > 90
    pd.testing.assert_frame_equal(got.drop(columns=TIMING), want.drop(columns=TIMING))


def test_the_report_names_the_result_it_uses(tmp_path):
    """A merged store's second result is named in the report's index, with the kept one."""
    from regbench import report
    from regbench.report.index import RunInfo
    from regbench.specs import ArchSpec, Cell, CellResult, RegSpec, TaskSpec
    from regbench.store import Store
    from regbench.store.check import read_conflicts

    def store(path: Path, host: str, bump: float) -> None:
        with Store(path) as s:
            for reg, strength in (("none", 0.0), ("l2", 1e-3)):
                for seed in range(2):
                    cell = Cell(TaskSpec("digits"), ArchSpec("mlp"), RegSpec(reg, strength),
                                seed)
                    extra = bump if (reg, seed) == ("l2", 1) else 0.0
                    s.add(CellResult(cell, "ok", metrics={
                        "metric_name": "accuracy", "higher_is_better": True,
                        "train_loss": 0.1, "test_loss": 0.2, "gap_loss": 0.1,
                        "train_metric": 0.99, "test_metric": 0.9 - strength + extra,
                        "gap_metric": 0.09 - extra}, provenance={"hostname": host}))

    store(tmp_path / "one.sqlite", "one", 0.0)
    store(tmp_path / "two.sqlite", "two", 0.01)
    c = tmp_path / "c.sqlite"
    assert main(["merge", str(tmp_path / "one.sqlite"), str(tmp_path / "two.sqlite"),
                 "--into", str(c)]) == 0
    with Store(c, readonly=True) as s:
        cells, conflicts = s.cells_frame(), read_conflicts(s.con)
    assert len(cells) == 4 and len(conflicts) == 1
    assert conflicts[0].differs == ["test_metric", "gap_metric"]
    info = RunInfo(matrix="hand", description="", command="test", n_matrix=4,
                   conflicts=[x.line() for x in conflicts])
    readme = report.write_report(cells, tmp_path / "out", info, formats=["md"],
                                 figure_formats=["png"]).readme.read_text()
    assert "### Cells with a second result from another machine" in readme
    assert (f"the result from {tmp_path / 'one.sqlite'} (machine one) is kept; the one from "
            f"{tmp_path / 'two.sqlite'} (machine two) differs in test_metric, gap_metric"
            in readme)
