"""`regbench check [--repair]` on real stores (copies of tests/data/store_v1.sqlite)."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regbench.__main__ import main
from regbench.errors import StoreError
from regbench.specs import SUITE_VERSION
from regbench.store import Store
from regbench.store.check import check_store
from regbench.store.schema import SCHEMA_VERSION

FIXTURE = Path(__file__).parent / "data" / "store_v1.sqlite"


def regbench(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "regbench", *args], capture_output=True,
                          text=True, timeout=120)


def cli(capsys: pytest.CaptureFixture, *args: str) -> subprocess.CompletedProcess:
    """The CLI's `main` in this process (fast; the subprocess path is tested above)."""
    rc = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out.out, out.err)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A current-schema store with two ok cells of this suite version."""
    p = tmp_path / "results.sqlite"
    shutil.copy(FIXTURE, p)
    Store(p, log=lambda _: None).close()
    raw(p, ("UPDATE cells SET suite_version = ?", (SUITE_VERSION,)))
    return p


def raw(path: Path, *sql: tuple) -> None:
    """Write as another tool would: the sqlite3 shell has foreign keys off."""
    con = sqlite3.connect(path)
    with con:
        for statement in sql:
            con.execute(*statement)
    con.close()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid is gone
    return proc.pid


def test_healthy_store_exits_0(store):
    proc = regbench("check", "--store", str(store))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"store {store}: schema version {SCHEMA_VERSION}, 2 cell(s) (2 ok)"
    assert "  integrity: ok" in lines and "  leases: 0 live, 0 stale" in lines
    assert lines[-1] == "healthy"


def test_orphans_are_reported_and_repaired(store, capsys):
    cell = sqlite3.connect(store).execute("SELECT cell_id FROM cells LIMIT 1").fetchone()[0]
    n_curves = sqlite3.connect(store).execute(
        "SELECT COUNT(*) FROM curves WHERE cell_id = ?", (cell,)).fetchone()[0]
    raw(store, ("DELETE FROM cells WHERE cell_id = ?", (cell,)))
    proc = regbench("check", "--store", str(store))
    assert proc.returncode == 1
    assert f"  orphan curve rows: {n_curves}" in proc.stdout
    assert "  orphan artifact rows: 4" in proc.stdout
    assert proc.stdout.splitlines()[-1] == (
        f"not healthy: {n_curves} orphan curve row(s) (regbench check --repair removes them); "
        f"4 orphan artifact row(s) (regbench check --repair removes them)")
    proc = cli(capsys, "check", "--store", str(store), "--repair")
    assert proc.returncode == 0, proc.stdout
    assert f"  repaired: removed {n_curves} orphan curve row(s)" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "healthy"
    with Store(store) as s:
        assert len(s.frame()) == 1 and set(s.curves().cell_id) == set(s.frame().cell_id)


def test_other_suite_versions_and_failed_cells_are_counted_not_deleted(store):
    ids = [r[0] for r in sqlite3.connect(store).execute("SELECT cell_id FROM cells")]
    raw(store, ("UPDATE cells SET suite_version = '0' WHERE cell_id = ?", (ids[0],)),
        ("UPDATE cells SET status = 'failed', error = 'boom' WHERE cell_id = ?", (ids[1],)))
    for repair in (False, True):
        report = check_store(store, repair=repair)
        assert report.other_suites == {"0": 1} and report.statuses == {"failed": 1, "ok": 1}
        assert report.problems() == [
            f"1 cell(s) of suite version '0', not this regbench's {SUITE_VERSION!r} (kept; use "
            f"a new --store for new runs)",
            "1 failed cell(s) (rerun them: regbench run --retry-failed)"]
        assert not report.repaired
    with Store(store) as s:
        assert len(s.cells_frame()) == 2


def test_stale_leases_are_reported_and_repaired_live_ones_kept(store):
    host, now = socket.gethostname(), time.time()
    raw(store,
        ("INSERT INTO leases VALUES ('a', 'd1', ?, ?, 'x', ?)", (host, dead_pid(), now + 600)),
        ("INSERT INTO leases VALUES ('b', 'd2', 'elsewhere', 1, 'x', ?)", (now - 1,)),
        ("INSERT INTO leases VALUES ('c', 'd3', ?, ?, 'x', ?)", (host, os.getpid(), now + 600)),
        ("INSERT INTO leases VALUES ('d', 'd4', 'elsewhere', 1, 'x', ?)", (now + 600,)))
    report = check_store(store)
    assert sorted(s.cell_id for s in report.stale_leases) == ["a", "b"]
    assert report.live_leases == 2
    assert "  leases: 2 live, 2 stale" in report.lines()
    assert report.problems() == ["2 stale lease(s) of dead drivers (the next run takes them "
                                 "over; regbench check --repair removes them)"]
    report = check_store(store, repair=True)
    assert report.repaired == ["removed 2 stale lease(s)"] and not report.problems()
    left = sqlite3.connect(store).execute("SELECT cell_id FROM leases ORDER BY 1").fetchall()
    assert left == [("c",), ("d",)]


@pytest.mark.parametrize("damage", ["overwrite", "truncate"])
def test_damaged_store_exits_1_and_is_not_written(store, damage, capsys):
    data = bytearray(store.read_bytes())
    page = 4096
    if damage == "overwrite":  # a disk error in the middle of the file
        data[3 * page:6 * page] = os.urandom(3 * page)
    else:  # a copy cut short (disk full)
        data = data[: len(data) // 3]
    store.write_bytes(bytes(data))
    before = digest(store)
    for args in ([], ["--repair"]):
        proc = cli(capsys, "check", "--store", str(store), *args)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stdout.splitlines()[-1].startswith(
            "not healthy: the SQLite integrity check failed")
        assert digest(store) == before


def test_old_schema_is_checked_read_only(tmp_path):
    p = tmp_path / "results.sqlite"
    shutil.copy(FIXTURE, p)
    before = digest(p)
    report = check_store(p)
    assert report.schema_version == 1 and report.statuses == {"ok": 2}
    assert (f"  schema 1 is upgraded to {SCHEMA_VERSION} the next time regbench opens the "
            "store (after a backup copy)") in report.lines()
    assert digest(p) == before and not list(tmp_path.glob("*.bak*"))


@pytest.mark.parametrize("make, needle", [
    (lambda p: None, "no store at"),
    (lambda p: p.write_text("not a database"), "not an SQLite file"),
    (lambda p: sqlite3.connect(p).execute("CREATE TABLE people (name TEXT)"),
     "not a regbench store"),
])
def test_not_a_store_is_exit_2(tmp_path, make, needle, capsys):
    p = tmp_path / "x.sqlite"
    make(p)
    with pytest.raises(StoreError, match=needle):
        check_store(p)
    proc = cli(capsys, "check", "--store", str(p))
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def listing(folder: Path) -> dict[str, str]:
    """Every file in `folder` with its content's digest."""
    return {p.name: digest(p) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("damage", ["garbage", "overwrite", "truncate"])
def test_check_of_a_corrupt_store_creates_no_file(store, damage):
    data = bytearray(store.read_bytes())
    if damage == "garbage":  # not an SQLite file at all
        data = bytearray(os.urandom(len(data)))
    elif damage == "overwrite":  # pages of a WAL-mode store overwritten, its header intact
        data[3 * 4096:6 * 4096] = os.urandom(3 * 4096)
    else:
        data = data[: len(data) // 3]
    store.write_bytes(bytes(data))
    before = listing(store.parent)
    proc = regbench("check", "--store", str(store))
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert str(store) in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert listing(store.parent) == before  # no -wal, no -shm


def test_reading_a_closed_store_creates_no_file(store, capsys):
    before = listing(store.parent)
    assert cli(capsys, "check", "--store", str(store)).returncode == 0
    assert cli(capsys, "show", "--store", str(store)).returncode == 0
    assert listing(store.parent) == before
