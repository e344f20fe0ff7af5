"""Cell leases: drivers sharing one store split the work; a dead driver's cells are taken over.

In-process tests use a fake executor (instant results) and short lease times; the
subprocess tests run real `python -m regbench run` drivers on one store.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from regbench import matrix
from regbench.errors import RegbenchError
from regbench.executors import Leases, run_cells
from regbench.executors.leases import pid_alive
from regbench.specs import Cell, CellResult
from regbench.store import Store

HOST = socket.gethostname()
CELLS = matrix.get("smoke").expand(seeds=1, tasks=["curve"]).cells  # 10 cells


def fake_result(cell: Cell) -> CellResult:
    return CellResult(cell, "ok", metrics={"epochs": 1, "train_loss": 0.1, "test_loss": 0.2},
                      provenance={"started_at": "2000-01-01T00:00:00.000+00:00"})


class FakeExecutor:
    """Instant results; records every cell it ran, and how far ahead it pulled."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def map(self, cells: Iterable[Cell]) -> Iterator[CellResult]:
        for cell in cells:
            self.ran.append(cell.cell_id)
            yield fake_result(cell)


def lease_rows(path: Path) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT cell_id, driver, host, pid, expires_at FROM leases "
                           "ORDER BY cell_id").fetchall()
    finally:
        con.close()


def insert_lease(path: Path, cell_id: str, host: str, pid: int, expires_at: float) -> None:
    con = sqlite3.connect(path)
    with con:
        con.execute("INSERT INTO leases VALUES (?, 'other-driver', ?, ?, 'x', ?)",
                    (cell_id, host, pid, expires_at))
    con.close()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- the lease protocol, in process ------------------------------------------------------------
def test_a_leased_cell_is_busy_for_others_until_committed(tmp_path):
    cell = CELLS[0]
    with Store(tmp_path / "s.sqlite") as a, Store(tmp_path / "s.sqlite") as b:
        with Leases(a.path, ttl=60) as la, Leases(b.path, ttl=60) as lb:
            assert la.claim(cell, a.con) == "claimed"
            assert la.claim(cell, a.con) == "claimed"  # its own lease: still its
            assert lb.claim(cell, b.con) == "busy" and lb.waiting == 1
            [(cid, driver, host, pid, _)] = lease_rows(a.path)
            assert (cid, driver, host, pid) == (cell.cell_id, la.driver, HOST, os.getpid())
            assert a.add(fake_result(cell), lease=la.driver)  # the commit drops the lease
            assert lease_rows(a.path) == []
            assert lb.claim(cell, b.con) == "done" and lb.claims.elsewhere == 1
            assert lb.waiting == 0 and lb.wait(b.con) == []


@pytest.mark.parametrize("host, pid, expires_in, state", [
    (HOST, "dead", 600, "claimed"),        # same host, process gone: stale at once
    ("elsewhere", 1, -1, "claimed"),       # another host, expired
    ("elsewhere", 1, 600, "busy"),         # another host, not expired: cannot tell, wait
    (HOST, "self", 600, "busy"),           # same host, process alive, not expired
    (HOST, "self", -1, "claimed"),         # alive but expired (hung or paused)
])
def test_stale_leases_are_taken_over(tmp_path, host, pid, expires_in, state):
    pid = {"dead": dead_pid(), "self": os.getpid()}.get(pid, pid)
    with Store(tmp_path / "s.sqlite") as s:
        insert_lease(s.path, CELLS[0].cell_id, host, pid, time.time() + expires_in)
        with Leases(s.path, ttl=60) as leases:
            assert leases.claim(CELLS[0], s.con) == state
            assert leases.claims.taken_over == (
                [f"{CELLS[0].cell_id} from {host}:{pid}"] if state == "claimed" else [])
            owner = lease_rows(s.path)[0][1]
            assert owner == (leases.driver if state == "claimed" else "other-driver")


def test_leases_are_renewed_and_dropped_on_exit(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        with Leases(s.path, ttl=0.6) as leases:
            leases.claim(CELLS[0], s.con)
            first = lease_rows(s.path)[0][4]
            time.sleep(1.5)  # past the first expiry: renewed every ttl/3
            renewed = lease_rows(s.path)[0][4]
            assert renewed > first and renewed > time.time()
        assert lease_rows(s.path) == []  # what was not committed is released at once


def test_a_zombie_is_dead():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    while Path(f"/proc/{proc.pid}/stat").exists() and \
            Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z":
        time.sleep(0.01)
    assert not pid_alive(proc.pid)  # exited, not yet reaped by its parent
    proc.wait()
    assert not pid_alive(proc.pid) and pid_alive(os.getpid())


@pytest.mark.parametrize("env, value", [("REGBENCH_LEASE_TTL_S", "soon"),
                                        ("REGBENCH_LEASE_POLL_S", "-1"),
                                        ("REGBENCH_LEASE_TTL_S", "nan")])
def test_bad_lease_times_are_refused(tmp_path, monkeypatch, env, value):
    monkeypatch.setenv(env, value)
    with pytest.raises(RegbenchError, match=env):
        Leases(tmp_path / "s.sqlite")


# -- run_cells with leases ------------------------------------------------------------------
def test_run_cells_waits_for_a_live_driver_and_counts_its_cells(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        other = CELLS[3]
        insert_lease(s.path, other.cell_id, HOST, os.getpid(), time.time() + 600)

        def other_driver_commits() -> None:
            time.sleep(0.5)
            with Store(s.path) as s2:
                assert s2.add(fake_result(other), lease="other-driver")

        t = threading.Thread(target=other_driver_commits)
        t.start()
        ex = FakeExecutor()
        summary = run_cells(CELLS, s, ex, progress=False, lease_ttl=60, lease_poll=0.1)
        t.join()
        assert other.cell_id not in ex.ran and len(ex.ran) == len(CELLS) - 1
        assert summary.elsewhere == 1 and summary.counts["ok"] == len(CELLS) - 1
        assert summary.line().endswith(f"({len(CELLS) - 1} ok, 0 diverged, 0 failed), "
                                       f"1 run by another driver")
        assert len(s.frame()) == len(CELLS) and lease_rows(s.path) == []


def test_run_cells_takes_over_an_expired_lease(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        insert_lease(s.path, CELLS[0].cell_id, "elsewhere", 1, time.time() + 0.5)
        ex = FakeExecutor()
        summary = run_cells(CELLS, s, ex, progress=False, lease_ttl=60, lease_poll=0.1)
        assert sorted(ex.ran) == sorted(c.cell_id for c in CELLS)
        assert ex.ran[-1] == CELLS[0].cell_id  # after everything else
        assert summary.taken_over == [f"{CELLS[0].cell_id} from elsewhere:1"]
        assert summary.line().endswith(", 1 taken over from a dead driver")
        assert len(s.frame()) == len(CELLS) and lease_rows(s.path) == []


def test_force_does_not_rerun_what_another_driver_ran_during_this_run(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        for c in CELLS:
            s.add(fake_result(c))  # an old run
        ex = FakeExecutor()

        class Racing(FakeExecutor):
            def map(self, cells):  # another forced driver commits cell 1 first
                with Store(s.path) as s2:
                    r = fake_result(CELLS[1])
                    r.provenance["started_at"] = "9999"  # started after this driver
                    s2.add(r, replace=True)
                yield from ex.map(cells)

        summary = run_cells(CELLS, s, Racing(), force=True, progress=False, lease_ttl=60)
        assert CELLS[1].cell_id not in ex.ran and len(ex.ran) == len(CELLS) - 1
        assert summary.elsewhere == 1


def test_an_error_releases_every_lease(tmp_path):
    class Broken(FakeExecutor):
        def map(self, cells):
            it = iter(cells)
            next(it), next(it)
            raise RegbenchError("cluster gone")
            yield  # pragma: no cover

    with Store(tmp_path / "s.sqlite") as s:
        with pytest.raises(RegbenchError, match="cluster gone"):
            run_cells(CELLS, s, Broken(), progress=False, lease_ttl=60)
        assert lease_rows(s.path) == []


@pytest.mark.slow
def test_the_local_pool_pulls_one_cell_per_free_worker(tmp_path):
    from regbench.executors.local import LocalExecutor

    pulled: list[str] = []

    def cells() -> Iterator[Cell]:
        for c in CELLS[:6]:
            pulled.append(c.cell_id)
            yield c

    results = LocalExecutor(jobs=2).map(cells())
    next(results)
    assert len(pulled) == 3  # two running, then one more for the slot that freed
    assert len(list(results)) == 5


# -- real drivers in subprocesses ---------------------------------------------------------------
MATRIX = """
name = "leases"
seeds = 2
[[blocks]]
tasks = ["curve"]
archs = ["mlp"]
regularizers = ["none", "l2", "l1", "dropout", "weight_decay", "adamw"]
strengths = "first"
protocol = {epochs = 100}
"""
N = 12
SUMMARY = re.compile(r"(\d+) cells in matrix: (\d+) already stored, (\d+) run now "
                     r"\((\d+) ok, 0 diverged, 0 failed\)(?:, (\d+) run by another driver)?"
                     r"(?:, (\d+) taken over from a dead driver)?;")


def driver(tmp_path: Path, *args: str, ttl: float = 60) -> subprocess.Popen:
    """A `regbench run` driver on the shared store; its output goes to files."""
    (tmp_path / "m.toml").write_text(MATRIX)
    env = {**os.environ, "REGBENCH_LEASE_TTL_S": str(ttl), "REGBENCH_LEASE_POLL_S": "0.3"}
    n = len(list(tmp_path.glob("driver*.out")))
    with open(tmp_path / f"driver{n}.out", "w") as out, open(tmp_path / f"driver{n}.err",
                                                              "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "regbench", "run", "--matrix",
                                 str(tmp_path / "m.toml"), "--store",
                                 str(tmp_path / "s.sqlite"), "--no-progress", *args],
                                stdout=out, stderr=err, text=True, env=env)
    proc.out, proc.err = Path(out.name), Path(err.name)  # type: ignore[attr-defined]
    return proc


def summary_of(proc: subprocess.Popen) -> dict[str, int]:
    proc.wait(timeout=600)
    out, err = proc.out.read_text(), proc.err.read_text()  # type: ignore[attr-defined]
    assert proc.returncode == 0, out + err
    m = SUMMARY.search(out)
    assert m, out
    total, already, run, ok, elsewhere, taken = (int(g or 0) for g in m.groups())
    assert total == N and run == ok and already + run + elsewhere == N, out
    assert "also committed by another driver" not in out
    return {"already": already, "run": run, "elsewhere": elsewhere, "taken": taken}


def count(tmp_path: Path) -> int:
    con = sqlite3.connect(tmp_path / "s.sqlite")
    try:
        return con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    finally:
        con.close()


def stored(tmp_path: Path) -> int:
    """Cells stored once every driver is done (no lease left behind)."""
    assert lease_rows(tmp_path / "s.sqlite") == []
    return count(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("executor", [["--executor", "local"],
                                      ["--executor", "dask", "--workers", "1"]],
                         ids=["local", "dask"])
def test_two_drivers_run_each_cell_once_between_them(tmp_path, executor):
    if executor[1] == "dask":
        pytest.importorskip("distributed")
    Store(tmp_path / "s.sqlite").close()  # both open an existing store
    a, b = driver(tmp_path, *executor), driver(tmp_path, *executor)
    sa, sb = summary_of(a), summary_of(b)
    assert sa["run"] + sb["run"] == N  # every cell trained exactly once between them
    assert sa["run"] >= 1 and sb["run"] >= 1  # and both did some
    assert stored(tmp_path) == N


@pytest.mark.slow
def test_a_sigkilled_drivers_cells_are_finished_by_the_other(tmp_path):
    Store(tmp_path / "s.sqlite").close()
    # Expiry far off: the dead pid is what frees its leases. Two jobs: A always holds a
    # lease (while one cell is committed, the other runs).
    a = driver(tmp_path, "--jobs", "2", ttl=600)
    deadline = time.time() + 300
    while not any(r[3] == a.pid for r in lease_rows(tmp_path / "s.sqlite")):
        assert a.poll() is None and time.time() < deadline, "driver A never leased a cell"
        time.sleep(0.05)
    b = driver(tmp_path, ttl=600)
    while count(tmp_path) < 2 and a.poll() is None:  # let both get going
        time.sleep(0.05)
    workers = children(a.pid)
    # Freeze A before reading its leases: a stopped process is alive, so B cannot take
    # one over between the read and the kill (and A cannot lease another).
    os.kill(a.pid, signal.SIGSTOP)
    held = [r for r in lease_rows(tmp_path / "s.sqlite") if r[3] == a.pid]
    os.kill(a.pid, signal.SIGKILL)
    a.wait()  # reap it (a shell does the same for a killed job)
    assert held, "A held no lease when it was killed"
    sb = summary_of(b)
    assert sb["taken"] == len(held)  # B took over exactly what A held when it died
    assert stored(tmp_path) == N  # and every cell of the matrix is stored
    assert len(workers) >= 2  # 2 pool workers (and spawn's resource tracker)
    deadline = time.time() + 30
    while any(pid_alive(w) for w in workers):  # A's pool workers end with it
        assert time.time() < deadline, "orphaned pool workers outlived their driver"
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out
