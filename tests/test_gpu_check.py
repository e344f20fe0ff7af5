"""tools/gpu_check.sh: the dry run on a machine without a GPU (what CI runs), the list of CUDA
tests it runs, and the summary it writes from a GPU run's results."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "tools" / "gpu_check.py")
G = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(G)


def test_cuda_test_list_is_every_test_that_needs_cuda() -> None:
    """A new CUDA test, or a renamed one, must be named in the check (and it must exist)."""
    found = G.cuda_test_names(ROOT / "tests")
    assert found == set(G.CUDA_TESTS)
    assert len(found) >= 7


def test_the_finder_sees_both_mark_styles(tmp_path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "import pytest, torch\n"
        "gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason='x')\n"
        "other = pytest.mark.skipif(torch.cuda.is_available(), reason='has a GPU')\n"
        "@gpu\n@pytest.mark.parametrize('a', [1])\ndef test_a(a): pass\n"
        "@pytest.mark.skipif(not CUDA, reason='x')\ndef test_b(): pass\n"
        "@other\ndef test_c(): pass\n"
        "def test_d(): pass\n")
    assert G.cuda_test_names(tmp_path / "tests") == {"tests/test_x.py::test_a",
                                                     "tests/test_x.py::test_b"}


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="a bash script")
def test_dry_run_exits_0_and_reports_the_gpu_steps_skipped(tmp_path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh"), "--dry-run"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert len(files) <= G.MAX_FILES and {"summary.md", "log.txt", "cells.json"} <= set(files)
    summary = (out / "summary.md").read_text()
    assert len(summary.encode()) < 8000
    assert summary.startswith("# regbench GPU check: DRY RUN (no CUDA)")
    assert f"torch {torch.__version__}" in summary
    rows = {ln.split(" | ")[0].lstrip("| "): ln for ln in summary.splitlines()
            if ln.startswith("| ") and " | " in ln}
    for step, why in [("build C++ kernels", "dry run"),
                      ("tests (CUDA)", f"no CUDA: {len(G.CUDA_TESTS)} CUDA tests not run"),
                      ("cells: cuda run 1", "no CUDA"), ("cells: cuda run 2", "no CUDA"),
                      ("bench fp32 (1M,16M,256M)", "refused with exit 2, as it should"),
                      ("bench bf16 (1M,16M,256M)", "no CUDA")]:
        assert "| skipped |" in rows[step] and why in rows[step], rows[step]
    assert "| ok |" in rows["versions"] and "| ok |" in rows["cells: data files"]
    assert "| ok |" in rows["cells: cpu (mnist)"], rows["cells: cpu (mnist)"]
    assert "FAILED" not in summary and "timeout" not in summary
    assert "| cpu | mnist | mlp | cpu | ok |" in summary  # the CPU cell's numbers
    assert (out / "summary.md").read_text() in proc.stdout  # also printed


def test_summary_of_a_gpu_run_has_every_number_and_failure(tmp_path) -> None:
    """The summary from the results a GPU run leaves: tests (JUnit), cells, bench JSON."""
    from regbench.bench import cuda as B

    xml = tmp_path / "tests.xml"
    xml.write_text(
        '<?xml version="1.0"?><testsuites><testsuite>'
        '<testcase classname="tests.test_kernels_triton" name="test_cuda_equals_cpu_bitwise'
        '[torch.float32]" time="1.0"/>'
        '<testcase classname="tests.test_devices" name="test_x" time="2.0">'
        '<failure message="AssertionError: 1 != 2">trace</failure></testcase>'
        '</testsuite></testsuites>')
    tests = G.parse_tests(xml, "")
    assert tests["counts"] == "1 FAILED, 1 passed"
    assert tests["cases"]["test_devices::test_x"] == ("FAILED", "AssertionError: 1 != 2")
    log = ("tests/test_devices.py::test_a[none] PASSED [ 50%]\n"
           "tests/test_devices.py::test_b FAILED [100%]\n")
    assert G.parse_tests(tmp_path / "absent.xml", log)["cases"] == {
        "test_devices::test_a[none]": ("passed", ""), "test_devices::test_b": ("FAILED", "")}

    info = {"python": "3.12.1", "torch": "2.11.0", "cuda_build": "13.0", "cuda": True,
            "gpu": "NVIDIA H200", "sm": "9.0", "gpu_mem_gib": 139.8, "gpus": 1,
            "driver": "580.1", "triton": "3.6.0", "numpy": "2.1.0"}
    run = B._Run(torch.device("cpu"), info, quick=True, compile_=False)
    n = 2**24
    run.row("copy", "copy_", "fp32", n, (20e-6, 1e-6), 8 * n, None)
    run.ours("dropout", "fused", "fp32", n, (25e-6, 1e-6), 8 * n, 20e-6,
             {"F.dropout": 50e-6, "compile(F.dropout)": 30e-6})
    mem = [{"dtype": "fp32", "batch": 8192, "width": 4096, "depth": 4,
            "nn.Dropout_peak_bytes": 900 * 2**20, "FusedDropout_peak_bytes": 700 * 2**20,
            "saved_bytes": 200 * 2**20, "nn.Dropout_step_s": 2e-3, "FusedDropout_step_s": 1.5e-3}]

    out = tmp_path / "out"
    out.mkdir()
    check = G.Check(out, tmp_path, sys.executable, 450.0, dry=False)
    check.info = info
    check.record("tests (CUDA)", "FAILED", 80.0, "exit 1", "E   AssertionError: 1 != 2")
    check.record("bench fp32 (1M,16M,256M)", "ok", 60.0)
    check.tests = tests
    cell = {"cell_id": "c1", "task": "mnist", "arch": "mlp", "device": "cuda:NVIDIA H200",
            "status": "ok", "train_loss": 2.25, "val_loss": 2.3, "test_loss": 2.31,
            "train_metric": 0.2, "val_metric": 0.1, "test_metric": 0.1, "best_epoch": 1,
            "train_s": 0.5, "wall_s": 3.0, "samples_per_s": 1000.0, "error": None,
            "curve_train_loss": [2.25]}
    check.cells = {"cuda run 1": [cell], "cuda run 2": [{**cell, "test_loss": 2.32}]}
    assert G.compare(check.cells["cuda run 1"], check.cells["cuda run 1"]) == []
    assert G.compare(*check.cells.values()) == ["mnist test_loss: 2.31 != 2.32"]
    check.bench = {"fp32": {"info": info, "rows": run.rows, "memory": mem, "notes": []}}
    assert check.finish() == 1  # a step failed
    text = (out / "summary.md").read_text()
    assert text.startswith("# regbench GPU check: 1 step(s) failed")
    assert "GPU NVIDIA H200 (sm 9.0, 139.8 GiB, 1 device(s)); driver 580.1" in text
    assert "torch 2.11.0 (CUDA 13.0); Triton 3.6.0" in text
    assert "| tests (CUDA) | FAILED | 80.0 | exit 1 |" in text
    assert "- FAILED `test_devices::test_x`: AssertionError: 1 != 2" in text
    assert "| cuda run 2 | mnist | mlp | cuda:NVIDIA H200 | ok | 2.25 | 2.32 |" in text
    assert "| copy_ | 16777216 | 20.0 | 6711 | 1 | - |" in text
    assert ("| dropout | 16777216 | 25.0 | 5369 | 1.25 | F.dropout 2.00x, "
            "compile(F.dropout) 1.20x |") in text
    assert "peak nn.Dropout 900 MiB, FusedDropout 700 MiB (saved 200 MiB)" in text
    assert "```\nE   AssertionError: 1 != 2\n```" in text
