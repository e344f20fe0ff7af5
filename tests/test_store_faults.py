"""Faults around the store, on real files: paths of any spelling, damaged, empty and
read-only stores, a full disk, the WAL, and one line (no traceback) for each at the CLI."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from regbench.__main__ import main
from regbench.errors import StoreError
from regbench.report.cli import main as report_main
from regbench.specs import SUITE_VERSION
from regbench.store import Store
from regbench.store.check import check_store
from regbench.store.faults import sqlite_line
from regbench.store.schema import SCHEMA_VERSION

FIXTURE = Path(__file__).parent / "data" / "store_v1.sqlite"
PAGE = 4096
SPELLINGS = ["bad#1.sqlite", "q?mode=rwc.sqlite", "pct%41.sqlite", "with space.sqlite",
             "ünï€ode ✓.sqlite"]
TINY_MATRIX = """
seeds = 1
[[blocks]]
tasks = ["curve"]
archs = ["mlp"]
regularizers = ["none"]
protocol = {epochs = 2}
"""


def regbench(*args: str, prefix: tuple[str, ...] = (), **kw) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, as a user runs it."""
    return subprocess.run([*prefix, sys.executable, "-m", "regbench", *args],
                          capture_output=True, text=True, timeout=180, **kw)


def cli(capsys: pytest.CaptureFixture, *args: str, entry=main) -> subprocess.CompletedProcess:
    """The CLI's `main` in this process (fast; the subprocess path is tested too)."""
    rc = entry(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out.out, out.err)


def one_line(proc: subprocess.CompletedProcess) -> str:
    """The one error line (`run` first names the combinations its matrix skips, one
    `regbench: skips ...` notice each, before anything runs)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines()
             if not ln.startswith("regbench: skips ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_store(path: Path) -> Path:
    """A current-schema store with two ok cells of this suite version, closed."""
    shutil.copy(FIXTURE, path)
    Store(path, log=lambda _: None).close()
    path.with_name(path.name + ".v1.bak").unlink()  # the upgrade's backup
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE cells SET suite_version = ?", (SUITE_VERSION,))
    con.close()
    return path


def rootpage(path: Path, table: str) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                           (table,)).fetchone()[0]
    finally:
        con.close()


def damage(path: Path, table: str = "artifacts") -> None:
    """Overwrite the root page of `table` (a disk error): the cells table stays readable
    unless it is the one damaged."""
    page = rootpage(path, table)
    data = bytearray(path.read_bytes())
    data[(page - 1) * PAGE:page * PAGE] = b"\xa5" * PAGE
    path.write_bytes(bytes(data))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return make_store(tmp_path / "results.sqlite")


@pytest.fixture
def corrupt(store: Path) -> Path:
    damage(store)
    return store


# -- paths of any spelling ---------------------------------------------------------------------
@pytest.mark.parametrize("name", SPELLINGS)
def test_any_spelling_is_created_reopened_and_checked(tmp_path, name, capsys):
    p = make_store(tmp_path / name)
    with Store(p) as s:  # reopened: the same file, not "not a regbench store"
        assert len(s.frame()) == 2
    assert check_store(p).problems() == []
    damage(p)
    before = digest(p)
    proc = cli(capsys, "check", "--store", str(p))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("not healthy: the SQLite integrity check")
    assert digest(p) == before
    # no stray file: only the store and SQLite's own -wal/-shm beside it
    assert {f.name for f in tmp_path.iterdir()} <= {name, f"{name}-wal", f"{name}-shm"}


def test_check_of_a_corrupt_store_named_with_a_hash_is_not_healthy(tmp_path):
    """The reproducer: `cp corrupt.sqlite 'bad#1.sqlite'; regbench check --store ...`."""
    p = make_store(tmp_path / "bad#1.sqlite")
    damage(p)
    proc = regbench("check", "--store", str(p))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not healthy: the SQLite integrity check failed" in proc.stdout
    assert {f.name for f in tmp_path.iterdir()} <= {p.name, p.name + "-wal", p.name + "-shm"}


@pytest.mark.parametrize("name", ["gone#1.sqlite", "gone?mode=rwc.sqlite", "gone.sqlite"])
def test_check_never_creates_a_file(tmp_path, name, capsys):
    proc = cli(capsys, "check", "--store", str(tmp_path / name))
    assert proc.returncode == 2 and "no store at" in one_line(proc)
    assert list(tmp_path.iterdir()) == []


# -- damaged stores: refused by every writer, described by check --------------------------------
def test_run_refuses_a_damaged_store(corrupt, tmp_path):
    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY_MATRIX)
    before = digest(corrupt)
    proc = regbench("run", "--matrix", str(toml), "--store", str(corrupt), "--no-progress")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_line(proc)
    assert "fails SQLite's integrity check" in line and "nothing was written" in line
    assert f"regbench check --store {corrupt}" in line
    assert digest(corrupt) == before and not list(tmp_path.glob("*.bak*"))


def test_report_refuses_a_damaged_store(corrupt, tmp_path):
    out = tmp_path / "report"
    before = digest(corrupt)
    proc = subprocess.run([sys.executable, "-m", "regbench.report", "--matrix", "smoke",
                           "--store", str(corrupt), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "fails SQLite's integrity check" in one_line(proc)
    assert "regbench check --store" in proc.stderr
    assert digest(corrupt) == before and not out.exists()


@pytest.mark.parametrize("args", [
    ["claims", "--only", "eval-mode-identity"],
    ["show"],
    ["bench", "--sizes", "1K", "--ops", "l2", "--dtypes", "fp32", "--threads", "1"],
])
def test_other_commands_refuse_a_damaged_store(corrupt, args, capsys):
    before = digest(corrupt)
    proc = cli(capsys, *args, "--store", str(corrupt))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "fails SQLite's integrity check" in one_line(proc)
    assert digest(corrupt) == before


def test_report_no_run_on_a_damaged_store_is_one_line(corrupt, tmp_path, capsys):
    proc = cli(capsys, "--no-run", "--matrix", "smoke", "--store", str(corrupt), "--out",
               str(tmp_path / "rep"), entry=report_main)
    assert proc.returncode == 2 and "fails SQLite's integrity check" in one_line(proc)


def test_check_counts_the_cells_of_a_damaged_store(corrupt):
    lines = check_store(corrupt).lines()
    assert lines[0] == f"store {corrupt}: schema version {SCHEMA_VERSION}, 2 cell(s) (2 ok)"
    assert lines[-1].startswith("not healthy: the SQLite integrity check failed")


def test_check_says_when_cells_cannot_be_counted(store):
    damage(store, "cells")
    lines = check_store(store).lines()
    assert lines[0] == (f"store {store}: schema version {SCHEMA_VERSION}, cells not countable "
                        "(the file is damaged)")


# -- empty files ---------------------------------------------------------------------------------
def test_an_empty_file_is_refused_by_readers_and_made_a_store_by_run(tmp_path, capsys):
    p = tmp_path / "empty.sqlite"
    p.touch()
    for args, entry in ((["check"], main), (["show"], main),
                        (["--no-run", "--matrix", "smoke", "--out", str(tmp_path / "r")],
                         report_main)):
        proc = cli(capsys, *args, "--store", str(p), entry=entry)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert f"{p} is an empty file (0 bytes), not a regbench store yet" in one_line(proc)
        assert p.stat().st_size == 0
    with pytest.raises(StoreError, match="empty file"):
        Store(p, create=False)
    Store(p).close()  # what `regbench run` does: an empty file becomes a store
    assert check_store(p).schema_version == SCHEMA_VERSION


# -- read-only folders (a real permission check: as root, without CAP_DAC_OVERRIDE) -------------
def _readonly_prefix() -> tuple[str, ...]:
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    drop = (setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner") if setpriv \
        else None
    if drop is None or subprocess.run([*drop, "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root without setpriv: a read-only folder cannot be made")
    return drop


@pytest.fixture
def readonly_dir(tmp_path: Path):
    d = tmp_path / "ro"
    d.mkdir()
    make_store(d / "results.sqlite")
    for f in d.glob("results.sqlite-*"):
        f.unlink()  # a store closed cleanly: one file
    prefix = _readonly_prefix()
    d.chmod(0o555)
    yield d, prefix
    d.chmod(0o755)


def test_read_only_folder_check_and_show_work(readonly_dir):
    d, prefix = readonly_dir
    store = d / "results.sqlite"
    proc = regbench("check", "--store", str(store), prefix=prefix)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "  integrity: ok" in proc.stdout and proc.stdout.splitlines()[-1] == "healthy"
    proc = regbench("show", "--store", str(store), "--format", "csv", prefix=prefix)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 3
    assert sorted(f.name for f in d.iterdir()) == ["results.sqlite"]


@pytest.mark.slow  # three subprocesses
def test_read_only_folder_run_is_one_line(readonly_dir, tmp_path):
    d, prefix = readonly_dir
    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY_MATRIX)
    for name, needle in (("new.sqlite", "cannot write store"),
                         ("results.sqlite", "cannot write store"),
                         ("sub/new.sqlite", "cannot create the folder")):
        proc = regbench("run", "--matrix", str(toml), "--store", str(d / name), "--no-progress",
                        prefix=prefix)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        line = one_line(proc)
        assert needle in line and str(d) in line and "writable folder" in line, line
    assert sorted(f.name for f in d.iterdir()) == ["results.sqlite"]


# -- a full disk, a removed WAL: real SQLite errors, one line at the CLI --------------------------
def test_full_disk_during_run_is_one_line(tmp_path, capsys, monkeypatch):
    """SQLite's own SQLITE_FULL ("database or disk is full"), from a store that may not grow
    (`PRAGMA max_page_count`: a full disk without needing a small file system)."""
    import regbench.store.db as db

    opened = db.Store.__init__

    def full(self, *a, **kw):
        opened(self, *a, **kw)
        pages = self.con.execute("PRAGMA page_count").fetchone()[0]
        self.con.execute(f"PRAGMA max_page_count = {pages}")

    monkeypatch.setattr(db.Store, "__init__", full)
    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY_MATRIX)
    store = tmp_path / "full.sqlite"
    proc = cli(capsys, "run", "--matrix", str(toml), "--store", str(store), "--no-progress")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_line(proc)
    assert line.startswith(f"regbench: error: store {store}: the disk is full (database or "
                           "disk is full); free space")


@pytest.mark.parametrize("message, needle", [
    ("disk I/O error", "-wal or full.sqlite-shm file was removed"),
    ("database or disk is full", "the disk is full"),
    ("attempt to write a readonly database", "make that folder writable"),
    ("database disk image is malformed", "is damaged"),
])
def test_sqlite_errors_reaching_the_cli_are_one_line(tmp_path, capsys, monkeypatch, message,
                                                     needle):
    """Injected where `run` writes (a WAL file removed mid-run gives "disk I/O error" at a
    moment no test can pick)."""
    import regbench.tuning.driver as driver

    def fail(*a, **kw):
        raise sqlite3.OperationalError(message)

    monkeypatch.setattr(driver, "run_cells", fail)  # what `run` calls, round by round
    store = tmp_path / "full.sqlite"
    proc = cli(capsys, "run", "--matrix", "smoke", "--store", str(store), "--no-progress")
    assert proc.returncode == 2
    line = one_line(proc)
    assert str(store) in line and needle in line and message in line
    assert needle in sqlite_line(sqlite3.OperationalError(message), store)


def test_os_errors_reaching_the_cli_are_one_line(tmp_path, capsys, monkeypatch):
    import errno

    import regbench.tuning.driver as driver

    def fail(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))

    monkeypatch.setattr(driver, "run_cells", fail)
    proc = cli(capsys, "run", "--matrix", "smoke", "--store", str(tmp_path / "s.sqlite"))
    assert proc.returncode == 2
    assert one_line(proc) == (f"regbench: error: {tmp_path / 'x'}: No space left on device; "
                              "free space on that disk and rerun")


# -- the WAL: checkpointed on close, reported by check ------------------------------------------
def test_closed_store_is_one_self_contained_file(store, tmp_path):
    reader = sqlite3.connect(store)  # another process's idle connection keeps the WAL alive
    reader.execute("SELECT COUNT(*) FROM cells").fetchone()
    with Store(store) as s:
        s.con.execute("DELETE FROM cells WHERE rowid = (SELECT MIN(rowid) FROM cells)")
    wal = store.with_name(store.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    alone = tmp_path / "copy" / "alone.sqlite"  # the store file without its -wal
    alone.parent.mkdir()
    shutil.copy(store, alone)
    con = sqlite3.connect(alone)
    assert con.execute("SELECT COUNT(*) FROM cells").fetchone() == (1,)
    con.close()
    reader.close()


def test_check_says_when_data_sits_in_the_wal(store, capsys):
    s = Store(store)  # a driver still running: its commits are in the WAL
    s.con.execute("DELETE FROM curves WHERE cell_id NOT IN (SELECT cell_id FROM cells)")
    s.con.execute("UPDATE cells SET wall_s = wall_s + 1")
    try:
        proc = cli(capsys, "check", "--store", str(store))
        assert proc.returncode == 0, proc.stdout
        wal = [ln for ln in proc.stdout.splitlines() if ln.startswith("  wal: ")]
        assert len(wal) == 1 and f"{store.name}-wal holds" in wal[0]
        assert "copy results.sqlite-wal and results.sqlite-shm along with the store" in wal[0]
        assert proc.stdout.splitlines()[-1] == "healthy"
    finally:
        s.close()
    proc = cli(capsys, "check", "--store", str(store))
    assert "  wal: empty (everything is in the store file)" in proc.stdout.splitlines()


# -- input files and arguments ------------------------------------------------------------------
def test_non_utf8_matrix_file_is_exit_2(tmp_path):
    toml = tmp_path / "latin1.toml"
    toml.write_bytes(TINY_MATRIX.replace('"none"', '"none" # caf\xe9').encode("latin-1"))
    store = tmp_path / "s.sqlite"
    proc = regbench("run", "--matrix", str(toml), "--store", str(store))
    assert proc.returncode == 2
    assert f"matrix file {toml} is not UTF-8 text (byte 0xe9" in one_line(proc)
    assert not store.exists()


@pytest.mark.parametrize("args, needle", [
    (["--sizes", "0"], "--sizes: a size must be at least 1 element, got '0'"),
    (["--sizes", "abc"], "--sizes: bad size 'abc'"),
    (["--sizes", "10G"], "--sizes: '10G' is 10,737,418,240 elements; at most 4G"),
    (["--sizes", "inf"], "--sizes: bad size 'inf'"),
    (["--threads", "0"], "--threads: bad thread count '0'"),
    (["--threads", "1,x"], "--threads: bad thread count 'x'"),
    (["--dtypes", "int8"], "--dtypes: unknown dtype 'int8'; valid choices: fp32, bf16, fp16"),
    (["--ops", "l2,nope"], "--ops: unknown op 'nope'; valid choices: dropout"),
    (["--min-time", "0"], "--min-time must be a positive number of seconds"),
    (["--clock", "cpu", "--threads", "1,2"], "--clock cpu measures one thread only"),
])
def test_bench_arguments_are_checked_exit_2(args, needle, tmp_path, capsys):
    store = tmp_path / "b.sqlite"
    proc = cli(capsys, "bench", *args, "--store", str(store))
    assert proc.returncode == 2 and proc.stdout == ""
    assert needle in one_line(proc)
    assert not store.exists()


def test_bench_bad_dtype_is_exit_2_in_a_subprocess():
    proc = regbench("bench", "--dtypes", "int8")
    assert proc.returncode == 2
    assert one_line(proc) == ("regbench: error: --dtypes: unknown dtype 'int8'; valid choices: "
                              "fp32, bf16, fp16")


def test_closed_stdout_ends_quietly(store):
    """`regbench check | head`: the reader is gone before regbench writes."""
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run([sys.executable, "-m", "regbench", "check", "--store", str(store)],
                              stdout=w, stderr=subprocess.PIPE, text=True, timeout=180)
    finally:
        os.close(w)
    assert proc.returncode == 141 and proc.stderr == ""
