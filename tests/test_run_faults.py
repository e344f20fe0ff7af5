"""The run loop under faults, with real processes and real signals: a worker killed
mid-cell, SIGINT/SIGTERM to the driver, failed cells and the exit status, a cell too big
for the machine's memory, progress output off a terminal, skipped combinations."""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import fault_plugin
import pytest

from regbench import matrix
from regbench.errors import RegbenchError
from regbench.executors import LocalExecutor, run_cells
from regbench.executors.memory import _shapes, check_memory, estimate
from regbench.executors.progress import Progress
from regbench.store import Store

TESTS = Path(__file__).parent
ROOT = TESTS.parent

DRIVER = f"""\
import sys
sys.path.insert(0, {str(TESTS)!r})
import fault_plugin  # registers kill_worker / fail_seed (spawned workers re-import this file)
from regbench.__main__ import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
"""


def env(**extra: str) -> dict[str, str]:
    e = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")])
    return e


def driver(tmp_path: Path) -> Path:
    path = tmp_path / "driver.py"
    path.write_text(DRIVER)
    return path


def run(tmp_path: Path, *args: str, timeout: float = 300, **extra: str):
    return subprocess.run([sys.executable, str(driver(tmp_path)), *args], capture_output=True,
                          text=True, timeout=timeout, env=env(**extra))


def toml(tmp_path: Path, text: str, name: str = "m.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rows(store: Path) -> list[tuple]:
    con = sqlite3.connect(store)
    try:
        return con.execute("SELECT seed, regularizer, status, error FROM cells "
                           "ORDER BY regularizer, seed").fetchall()
    finally:
        con.close()


def lease_count(store: Path) -> int:
    con = sqlite3.connect(store)
    try:
        return con.execute("SELECT COUNT(*) FROM leases").fetchone()[0]
    finally:
        con.close()


# -- a worker that dies ------------------------------------------------------------------------
KILL_MATRIX = """\
name = "kill"
seeds = 3
[[blocks]]
tasks = ["curve"]
archs = ["mlp"]
regularizers = ["kill_worker", "none"]
protocol = {epochs = 2}
"""


@pytest.mark.slow  # over 10 s on 2 cores
def test_a_killed_worker_fails_its_cell_and_the_run_goes_on(tmp_path):
    """Seed 1 of kill_worker SIGKILLs its worker: that cell is stored as failed, naming the
    signal; a fresh worker runs the other cells; exit 1 with the failure named."""
    store = tmp_path / "k.sqlite"
    m = toml(tmp_path, KILL_MATRIX)
    proc = run(tmp_path, "run", "--matrix", str(m), "--store", str(store), "--jobs", "2",
               "--no-progress")
    assert proc.returncode == 1, proc.stderr
    assert "6 run now (5 ok, 0 diverged, 1 failed)" in proc.stdout
    assert "Traceback" not in proc.stderr and "BrokenProcessPool" not in proc.stderr
    msg = "worker process died (signal 9 SIGKILL: likely out of memory)"
    assert f"failed: curve / mlp / kill_worker=0 / seed 1: {msg}" in proc.stderr
    assert "rerun with --retry-failed" in proc.stderr
    got = rows(store)
    assert [(s, r, st) for s, r, st, _ in got] == [
        (0, "kill_worker", "ok"), (1, "kill_worker", "failed"), (2, "kill_worker", "ok"),
        (0, "none", "ok"), (1, "none", "ok"), (2, "none", "ok")]
    assert got[1][3] == msg
    assert lease_count(store) == 0


@pytest.mark.slow
def test_the_initializer_hook_loads_a_plugin_in_each_worker(tmp_path):
    """In process: LocalExecutor(initializer=...) makes spawned workers import the plugin;
    the killed worker's cell is failed and the run continues."""
    cells = matrix.get(str(toml(tmp_path, KILL_MATRIX.replace('"none"', '')
                                .replace(", ]", "]")))).expand().cells
    assert len(cells) == 3
    ex = LocalExecutor(jobs=2, initializer=fault_plugin.setup)
    with Store(tmp_path / "i.sqlite") as store:
        summary = run_cells(cells, store, ex, progress=False)
        frame = store.cells_frame()
    assert summary.counts == {"ok": 2, "diverged": 0, "failed": 1}
    assert summary.exit_code() == 1
    failed = frame[frame.status == "failed"]
    assert list(failed.seed) == [1]
    assert "signal 9 SIGKILL" in failed.error.iloc[0]


# -- signals -----------------------------------------------------------------------------------
LONG_MATRIX = """\
name = "long"
seeds = 1
[[blocks]]
tasks = ["curve"]
archs = ["mlp"]
regularizers = ["none"]
protocol = {epochs = 2}
[[blocks]]
tasks = ["curve"]
archs = ["mlp"]
regularizers = ["l2", "dropout"]
strengths = "first"
protocol = {epochs = 1000000}
"""


def start_long_run(tmp_path: Path, jobs: int, **popen: object) -> tuple[subprocess.Popen, Path]:
    """A driver whose first cell is short and the others take hours; returns once the short
    cell is stored (so the workers are up and mid-way through long cells)."""
    store = tmp_path / "sig.sqlite"
    m = toml(tmp_path, LONG_MATRIX)
    proc = subprocess.Popen([sys.executable, "-m", "regbench", "run", "--matrix", str(m),
                             "--store", str(store), "--jobs", str(jobs), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(), **popen)
    deadline = time.time() + 180
    while time.time() < deadline:
        time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        if store.exists():
            try:
                if rows(store):
                    break
            except sqlite3.OperationalError:
                continue
    else:
        proc.kill()
        raise AssertionError("the short cell was not stored in time")
    time.sleep(1.0)  # the long cells are running now
    return proc, store


def stop_and_check(proc: subprocess.Popen, store: Path, send, code: int, name: str) -> None:
    t0 = time.time()
    send()
    out, err = proc.communicate(timeout=60)
    took = time.time() - t0
    assert proc.returncode == code, (out, err)
    assert took < 10, f"took {took:.1f} s to stop"
    assert "Traceback" not in err, err
    assert f"1 run now (1 ok, 0 diverged, 0 failed); interrupted by {name}" in out
    assert "finished cells are in the store, rerun to resume" in err
    assert lease_count(store) == 0
    assert [r[2] for r in rows(store)] == ["ok"]  # the interrupted cells are not stored
    check = subprocess.run([sys.executable, "-m", "regbench", "check", "--store", str(store)],
                           capture_output=True, text=True, env=env(), timeout=120)
    assert check.returncode == 0 and "healthy" in check.stdout, check.stdout + check.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_driver_stops_a_jobs_run_at_once(tmp_path, sig, code):
    proc, store = start_long_run(tmp_path, jobs=2)
    children = child_pids(proc.pid)
    assert len(children) >= 2
    stop_and_check(proc, store, lambda: proc.send_signal(sig), code, sig.name)
    time.sleep(0.5)
    assert not [p for p in children if alive(p)], "a worker outlived the driver"


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_prints_no_worker_traceback(tmp_path):
    proc, store = start_long_run(tmp_path, jobs=2, start_new_session=True)
    stop_and_check(proc, store, lambda: os.killpg(proc.pid, signal.SIGINT), 130, "SIGINT")


def test_sigterm_stops_an_in_process_run(tmp_path):
    proc, store = start_long_run(tmp_path, jobs=1)
    stop_and_check(proc, store, lambda: proc.send_signal(signal.SIGTERM), 143, "SIGTERM")


def child_pids(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


# -- failed cells, the exit status and the rerun ------------------------------------------------
FAIL_MATRIX = """\
name = "fail"
seeds = 2
[[blocks]]
tasks = ["curve"]
archs = ["mlp", "cnn"]
regularizers = ["fail_seed"]
protocol = {epochs = 2}
[[blocks]]
tasks = ["curve"]
archs = ["mlp"]
regularizers = ["none"]
protocol = {epochs = 2, lr = 1e30}
"""


@pytest.mark.slow
def test_failed_cells_exit_1_diverged_exit_0_and_the_rerun_names_the_flag(tmp_path):
    store, bad = tmp_path / "f.sqlite", tmp_path / "bad-data"
    bad.write_text("x")
    m = toml(tmp_path, FAIL_MATRIX)
    args = ("run", "--matrix", str(m), "--store", str(store))
    first = run(tmp_path, *args, REGBENCH_TEST_FAIL_FILE=str(bad))
    assert first.returncode == 1, first.stderr
    assert "4 run now (1 ok, 2 diverged, 1 failed)" in first.stdout
    assert f"failed: curve / mlp / fail_seed=0 / seed 1: DataError: {bad}" in first.stderr
    assert ("1 cell(s) failed; after fixing the cause, rerun with --retry-failed to run "
            "them again") in first.stderr
    # the skipped combination is named, with its reason
    assert "skips curve x cnn x fail_seed: cnn needs image inputs; curve gives vector" \
        in first.stderr
    # off a terminal: plain progress lines, no carriage-return frames
    assert "\r" not in first.stderr
    lines = [ln for ln in first.stderr.splitlines() if ln.startswith("cells: ")]
    assert lines and lines[-1].startswith("cells: 4/4 done (100%)") and "1 failed" in lines[-1]

    bad.unlink()  # the data is fixed: a plain rerun runs nothing and says which flag to use
    second = run(tmp_path, *args, REGBENCH_TEST_FAIL_FILE=str(bad))
    assert second.returncode == 0, second.stderr
    assert "4 already stored, 0 run now" in second.stdout
    assert ("1 cell(s) stored as failed were not rerun; rerun with --retry-failed to "
            "rerun them") in second.stderr
    third = run(tmp_path, *args, "--retry-failed", REGBENCH_TEST_FAIL_FILE=str(bad))
    assert third.returncode == 0, third.stderr
    assert "1 run now (1 ok, 0 diverged, 0 failed)" in third.stdout
    assert [r[2] for r in rows(store)] == ["ok", "ok", "diverged", "diverged"]


REPORT_DRIVER = DRIVER.replace("from regbench.__main__ import main",
                               "from regbench.report.cli import main")


@pytest.mark.slow
def test_the_report_exits_1_after_writing_when_a_cell_failed(tmp_path):
    bad = tmp_path / "bad-data"
    bad.write_text("x")
    m = toml(tmp_path, FAIL_MATRIX.split("[[blocks]]")[0] + "[[blocks]]"
             + FAIL_MATRIX.split("[[blocks]]")[1].replace('"mlp", "cnn"', '"mlp"'))
    script = tmp_path / "report_driver.py"
    script.write_text(REPORT_DRIVER)
    proc = subprocess.run([sys.executable, str(script), "--matrix", str(m), "--store",
                           str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "out"),
                           "--jobs", "1", "--figure-formats", "png", "--no-progress"],
                          capture_output=True, text=True, timeout=600,
                          env=env(REGBENCH_TEST_FAIL_FILE=str(bad)))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "2 run now (1 ok, 0 diverged, 1 failed)" in proc.stdout
    assert "failed: curve / mlp / fail_seed=0 / seed 1: DataError" in proc.stderr
    assert "rerun with --retry-failed" in proc.stderr
    assert (tmp_path / "out" / "README.md").exists()


def test_diverged_only_exits_0(tmp_path):
    m = toml(tmp_path, FAIL_MATRIX.split("[[blocks]]")[0] + "[[blocks]]"
             + FAIL_MATRIX.split("[[blocks]]")[2])
    proc = run(tmp_path, "run", "--matrix", str(m), "--store", str(tmp_path / "d.sqlite"),
               "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "(0 ok, 2 diverged, 0 failed)" in proc.stdout


# -- memory --------------------------------------------------------------------------------------
BIG_MATRIX = """\
name = "big"
seeds = 1
[[blocks]]
tasks = ["curve"]
archs = [{name = "mlp", width = [64, 200000], depth = 4}]
regularizers = ["none"]
protocol = {epochs = 2}
"""


@pytest.mark.slow  # over 10 s on 2 cores
def test_a_cell_too_big_for_memory_is_refused_before_anything_is_written(tmp_path):
    store = tmp_path / "new" / "big.sqlite"
    store.parent.mkdir()
    m = toml(tmp_path, BIG_MATRIX)
    proc = subprocess.run([sys.executable, "-m", "regbench", "run", "--matrix", str(m),
                           "--store", str(store)], capture_output=True, text=True,
                          env=env(), timeout=300)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in proc.stderr
    assert err[0].startswith("regbench: error: 1 cell(s) need more memory than this "
                             "machine has available")
    assert "curve / mlp[depth=4,width=200000] / none=0 / seed 0 needs ~" in err[0]
    assert "width=64" not in err[0]
    assert list(store.parent.iterdir()) == []  # no store file was created

    # an existing store: refused the same way, nothing written to it
    with Store(store):
        pass
    before = store.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "regbench", "run", "--matrix", str(m),
                           "--store", str(store)], capture_output=True, text=True,
                          env=env(), timeout=300)
    assert proc.returncode == 2 and "need more memory" in proc.stderr
    assert rows(store) == [] and lease_count(store) == 0
    assert store.read_bytes() == before


def test_the_estimate_counts_parameters_activations_and_data(monkeypatch):
    cells = [c for c in matrix.get("smoke").expand(seeds=1, tasks=["digits"],
                                                    regularizers=["none"]).cells
             if c.arch.name == "mlp"]
    assert len(cells) == 1
    cell = cells[0]
    shapes = _shapes(cell, None)
    est = estimate(cell, shapes)
    import torch

    n_params = sum(p.numel() for p in torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.Linear(32, 32), torch.nn.Linear(32, 10)).parameters())
    assert est.params == 4 * n_params  # float32: the smoke mlp is 64 -> 32 -> 32 -> 10
    assert est.total == 4 * est.params + est.activations + est.data
    assert est.activations > 0 and est.data > shapes.n_rows * 64 * 4
    check_memory(cells, available=est.total + 1)  # fits: no error
    with pytest.raises(RegbenchError, match=r"1 cell\(s\) need more memory .* digits"):
        check_memory(cells, available=est.total - 1)
    monkeypatch.setenv("REGBENCH_MEMORY_LIMIT_MB", "abc")
    with pytest.raises(RegbenchError, match=r"\$REGBENCH_MEMORY_LIMIT_MB must be a number"):
        check_memory(cells)


# -- progress and skips ------------------------------------------------------------------------
def test_progress_lines_every_interval_without_a_terminal():
    out = io.StringIO()
    p = Progress(100, stream=out, interval=0.2)
    p.update(1)  # 1%: below the 5% step, no line yet
    assert out.getvalue() == ""
    time.sleep(0.5)  # nothing done meanwhile: the interval still prints a line
    assert out.getvalue().startswith("cells: 1/100 done (1%)")
    n = len(out.getvalue().splitlines())
    p.update(4, failed=1)  # 5%: a line at once
    assert out.getvalue().splitlines()[n].startswith("cells: 5/100 done (5%)")
    assert "1 failed" in out.getvalue().splitlines()[n]
    p.close()
    assert "\r" not in out.getvalue()


def test_the_progress_bar_is_for_a_terminal(tmp_path):
    m = toml(tmp_path, FAIL_MATRIX.split("[[blocks]]")[0] + "[[blocks]]"
             + FAIL_MATRIX.split("[[blocks]]")[2])
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "regbench", "run", "--matrix", str(m),
                             "--store", str(tmp_path / "t.sqlite")], stdout=subprocess.PIPE,
                            stderr=slave, env=env())
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=120)
    os.close(master)
    assert proc.returncode == 0
    text = seen.decode(errors="replace")
    assert "\r" in text and "cells:" in text and "2/2" in text
    assert "cells: 2/2 done (100%)" not in text  # the bar, not the plain lines


def test_many_skips_are_counted_per_reason(capsys):
    from regbench.__main__ import print_skipped

    exp = matrix.get("full").expand()
    assert len(exp.skipped) > 10
    print_skipped("full", exp.skipped)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"regbench: skips {len(exp.skipped)} combinations the matrix cannot "
                      f"run (`regbench list matrices` lists each):")
    assert sum(int(line.split(" x ")[0]) for line in err[1:]) == len(exp.skipped)
