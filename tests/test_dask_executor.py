"""The Dask executor on a LocalCluster on loopback (2 worker processes, 1 thread each)."""

from __future__ import annotations

import collections
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from regbench import matrix, specs  # noqa: E402
from regbench.errors import RegbenchError  # noqa: E402
from regbench.executors import LocalExecutor, make_executor, run_cells  # noqa: E402
from regbench.executors.dask import DaskExecutor  # noqa: E402
from regbench.specs import freeze  # noqa: E402
from regbench.store import Store  # noqa: E402

# Provenance that legitimately differs between two runs of the same cell.
TIMING = ["wall_s", "train_s", "samples_per_s", "started_at", "finished_at"]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cl:
        with distributed.Client(cl, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
            yield cl, client


def _slow_cells(n: int, epochs: int = 200):
    cells = matrix.get("smoke").expand(seeds=1, tasks=["digits"]).cells[:n]
    return [dataclasses.replace(c, protocol=freeze({"epochs": epochs})) for c in cells]


@pytest.mark.slow
def test_smoke_rows_bitwise_equal_to_local(cluster, tmp_path):
    cl, _ = cluster
    cells = matrix.get("smoke").expand().cells
    with Store(tmp_path / "local.sqlite") as a, Store(tmp_path / "dask.sqlite") as b:
        run_cells(cells, a, LocalExecutor(jobs=1), progress=False)
        summary = run_cells(cells, b, DaskExecutor(scheduler=cl.scheduler_address),
                            progress=False)
        assert summary.counts["ok"] == len(cells)
        fa, fb = a.cells_frame().drop(columns=TIMING), b.cells_frame().drop(columns=TIMING)
        assert len(fb) == len(cells)
        pd.testing.assert_frame_equal(fa, fb, check_exact=True)  # losses, metrics, best_epoch
        pd.testing.assert_frame_equal(a.curves(), b.curves(), check_exact=True)
        for name in ("predictions", "params_after", "weight_stats"):
            assert a.artifacts(name) == b.artifacts(name)
        assert (fb.threads == 1).all()


@pytest.mark.parametrize("allowed_failures", [3, 0], ids=["dask-reschedules", "driver-resubmits"])
@pytest.mark.slow
def test_worker_killed_mid_cell_gives_one_row_per_cell(cluster, tmp_path, allowed_failures):
    """allowed_failures=3 (Dask's default): the scheduler moves the task; 0: the task ends
    as KilledWorker and the driver resubmits it."""
    cl, client = cluster
    client.wait_for_workers(2, timeout=60)
    old, cl.scheduler.allowed_failures = cl.scheduler.allowed_failures, allowed_failures
    cells = _slow_cells(8)
    seen: collections.Counter[str] = collections.Counter()
    victim = None
    try:
        pids = client.run(os.getpid)
        ex = DaskExecutor(scheduler=cl.scheduler_address)
        with Store(tmp_path / "k.sqlite") as store:
            for result in ex.map(cells):
                seen[result.cell.cell_id] += 1
                assert store.add(result)
                if victim is None:  # first result landed: kill a worker that is mid-cell
                    busy = sorted(w for w, keys in client.processing().items() if keys)
                    assert busy, "no worker busy after the first result"
                    victim = busy[0]
                    os.kill(pids[victim], signal.SIGKILL)
            rows = store.frame()
    finally:
        cl.scheduler.allowed_failures = old
    assert victim is not None
    assert bool(ex.resubmitted) == (allowed_failures == 0)
    assert sorted(seen) == sorted(c.cell_id for c in cells) and set(seen.values()) == {1}
    assert len(rows) == len(cells) and rows.cell_id.is_unique and (rows.status == "ok").all()
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
    assert pids[victim] not in client.run(os.getpid).values()


@pytest.mark.slow  # over 10 s on 2 cores
def test_a_cell_that_keeps_killing_workers_is_failed_and_the_run_goes_on(cluster, tmp_path):
    """No reschedule, no resubmit: the killed worker's cell gets a failed result naming
    the death, and every other cell is still run and yielded."""
    cl, client = cluster
    client.wait_for_workers(2, timeout=60)
    old, cl.scheduler.allowed_failures = cl.scheduler.allowed_failures, 0
    cells = _slow_cells(6)
    victim = None
    results = []
    try:
        pids = client.run(os.getpid)
        ex = DaskExecutor(scheduler=cl.scheduler_address, resubmits=0)
        with Store(tmp_path / "f.sqlite") as store:
            for result in ex.map(cells):
                results.append(result)
                assert store.add(result)
                if victim is None:
                    busy = sorted(w for w, keys in client.processing().items() if keys)
                    assert busy, "no worker busy after the first result"
                    victim = busy[0]
                    os.kill(pids[victim], signal.SIGKILL)
            frame = store.frame()
    finally:
        cl.scheduler.allowed_failures = old
    assert sorted(r.cell.cell_id for r in results) == sorted(c.cell_id for c in cells)
    failed = [r for r in results if r.status == "failed"]
    assert len(failed) >= 1 and all(r.error.startswith("worker process died (Dask KilledWorker")
                                    for r in failed)
    assert len(frame) == len(cells) and (frame.status == "ok").sum() == len(cells) - len(failed)
    client.wait_for_workers(2, timeout=60)


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_a_clear_error_within_the_timeout():
    address = f"tcp://127.0.0.1:{_free_loopback_port()}"
    ex = DaskExecutor(scheduler=address, connect_timeout=2)
    t0 = time.perf_counter()
    with pytest.raises(RegbenchError, match=f"cannot reach the Dask scheduler at {address} "
                                            r"within 2 s"):
        next(ex.map(_slow_cells(1)))
    assert time.perf_counter() - t0 < 10


def _set_versions(torch_version=None, suite_version=None):
    """Run on a worker: pretend it has other versions (None restores the real ones)."""
    import torch

    from regbench import specs

    if not hasattr(torch, "_real_version"):
        torch._real_version, specs._real_suite = torch.__version__, specs.SUITE_VERSION
    torch.__version__ = torch_version or torch._real_version
    specs.SUITE_VERSION = suite_version or specs._real_suite


def test_version_mismatch_is_refused_at_start_and_for_late_changes(cluster):
    cl, client = cluster
    client.wait_for_workers(2, timeout=60)
    bad = sorted(client.scheduler_info()["workers"])[0]
    try:
        client.run(_set_versions, "0.0.0+fake", "99", workers=[bad])
        with pytest.raises(RegbenchError) as err:
            DaskExecutor(scheduler=cl.scheduler_address).connect()
        msg = str(err.value)
        assert f"worker {bad}" in msg and "torch '0.0.0+fake'" in msg
        assert f"suite_version '99' (driver {specs.SUITE_VERSION!r})" in msg
        client.run(_set_versions, workers=[bad])

        # A worker that changes (or joins) after the start check is refused by the task.
        ex = DaskExecutor(scheduler=cl.scheduler_address)
        ex.connect()
        client.run(_set_versions, "0.0.0+fake", workers=[bad])
        with pytest.raises(RegbenchError, match=f"refusing to run on this cluster: worker {bad}"):
            list(ex.map(_slow_cells(6, epochs=5)))
    finally:
        client.run(_set_versions, workers=[bad])


def test_factory_errors(monkeypatch):
    with pytest.raises(RegbenchError, match="--scheduler tcp://HOST:8786 .* or --workers N"):
        make_executor("dask", jobs=1, threads=1, data_dir=None, scheduler=None, workers=None)
    with pytest.raises(RegbenchError, match="not both"):
        make_executor("dask", scheduler="tcp://127.0.0.1:8786", workers=2)
    with pytest.raises(RegbenchError, match="only apply to --executor dask"):
        make_executor("local", workers=2)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(RegbenchError, match=r"pip install -e '\.\[dist\]'"):
        make_executor("dask", workers=2)


@pytest.mark.slow
def test_cli_local_cluster_end_to_end(tmp_path):
    store = tmp_path / "c.sqlite"
    args = [sys.executable, "-m", "regbench", "run", "--matrix", "smoke", "--tasks", "curve",
            "--regularizers", "none,l2,dropout", "--seeds", "1", "--store", str(store),
            "--executor", "dask"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--scheduler" in proc.stderr and "--workers" in proc.stderr
    assert not store.exists()
    proc = subprocess.run([*args, "--workers", "2"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "0 already stored, 3 run now (3 ok" in proc.stdout
    with Store(store) as s:
        assert len(s.frame()) == 3
