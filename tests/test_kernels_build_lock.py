"""The extension build lock: a killed build's torch baton never blocks a later load, and two
processes never build in one directory at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from regbench.executors.preflight import needs_cpu_kernels
from regbench.kernels import _backend
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze


def test_stale_torch_baton_is_removed_with_a_warning(tmp_path):
    baton = tmp_path / _backend.TORCH_BATON
    baton.write_bytes(b"")  # what a SIGKILLed ninja build leaves behind
    with pytest.warns(RuntimeWarning, match="stale build lock"):
        with _backend.build_lock(tmp_path):
            assert not baton.exists()
    assert not baton.exists()


def test_no_warning_without_a_baton(tmp_path, recwarn):
    with _backend.build_lock(tmp_path):
        pass
    assert not [w for w in recwarn if "stale" in str(w.message)]


@pytest.mark.slow
def test_lock_excludes_another_process_and_dies_with_it(tmp_path):
    """A second process waits while the first holds the lock; SIGKILLing the holder frees it
    (the kernel drops a flock with its process), so nothing is ever stale."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time, pathlib
            from regbench.kernels import _backend
            with _backend.build_lock(pathlib.Path({str(tmp_path)!r})):
                print("held", flush=True)
                time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        waiter = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(f"""
                import pathlib
                from regbench.kernels import _backend
                with _backend.build_lock(pathlib.Path({str(tmp_path)!r})):
                    print("got it", flush=True)
            """)], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        assert waiter.poll() is None, "the waiter got the lock while another process held it"
        holder.kill()
        out, _ = waiter.communicate(timeout=30)
        assert out.strip() == "got it"
    finally:
        holder.kill()
        holder.wait()


def _cell(reg: RegSpec, device: str = "cpu") -> Cell:
    return Cell(TaskSpec("curve"), ArchSpec("mlp"), reg, 0, device=device)


def test_needs_cpu_kernels_only_for_fused_cpu_cells():
    fused = RegSpec("dropout", 0.1, freeze({"backend": "fused"}))
    assert needs_cpu_kernels(_cell(fused))
    assert not needs_cpu_kernels(_cell(fused, device="cuda:NVIDIA H200"))
    assert not needs_cpu_kernels(_cell(RegSpec("dropout", 0.1, freeze({"backend": "native"}))))
    assert not needs_cpu_kernels(_cell(RegSpec("none", 0.0)))
    # a fused member of the stack (a base recipe, a `with`) needs them too
    with_fused = Cell(TaskSpec("curve"), ArchSpec("mlp"), RegSpec("sam", 0.05), 0,
                      addons=(fused,))
    assert needs_cpu_kernels(with_fused)
    on_fused = Cell(TaskSpec("curve"), ArchSpec("mlp"), RegSpec("none", 0.0), 0, base=(fused,))
    assert needs_cpu_kernels(on_fused)


class _Recorder:
    """An executor stand-in: runs cells in this process, remembers nothing else."""

    def __init__(self, builds_here: bool):
        self.builds_here = builds_here
        self.data_dir = None

    def map(self, cells):
        from regbench.train import run_cell

        for c in cells:
            yield run_cell(c)


@pytest.mark.parametrize("builds_here,fused,expect", [
    (True, True, 1), (False, True, 0), (True, False, 0)])
def test_run_cells_starts_the_build_only_when_fused_cpu_cells_run_here(
        tmp_path, monkeypatch, builds_here, fused, expect):
    from regbench.executors import run_cells
    from regbench.store import Store

    calls = []
    monkeypatch.setattr(_backend, "build_in_background", lambda: calls.append(1))
    params = freeze({"backend": "fused"}) if fused else freeze({"backend": "native"})
    cell = Cell(TaskSpec("curve"), ArchSpec("mlp", freeze({"width": 8, "depth": 1})),
                RegSpec("dropout", 0.1, params), 0, freeze({"epochs": 1}))
    with Store(tmp_path / "s.sqlite") as store:
        summary = run_cells([cell], store, _Recorder(builds_here), progress=False)
    assert summary.counts["ok"] == 1
    assert len(calls) == expect
