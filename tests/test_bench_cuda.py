"""`python -m regbench.bench_cuda`: a clear non-zero exit without a GPU; its row building and
store round trip in a CPU dry run (numbers meaningless, code paths exercised)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from regbench import bench_cuda as B


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_exits_with_message_without_cuda() -> None:
    out = subprocess.run([sys.executable, "-m", "regbench.bench_cuda", "--quick"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "no CUDA device is available" in out.stderr


def test_bad_op_is_refused() -> None:
    assert B.main(["--ops", "nope"]) == 2


def test_cpu_dry_run_rows_and_store(tmp_path) -> None:
    pytest.importorskip("triton")
    from regbench.store import BENCH_COLUMNS, Store

    args = B.build_parser().parse_args(
        ["--sizes", "4K", "--dtypes", "fp32", "--quick", "--no-compile",
         "--ops", "dropout,dropout_fwdbwd,bias_dropout_add,l2,mlp_peakmem"])
    run, mem = B.run_all(args, torch.device("cpu"))
    ops = {r["op"] for r in run.rows}
    assert {"copy", "dropout", "dropout_fwdbwd", "bias_dropout_add", "l2", "mlp_step"} <= ops
    assert all(set(r) <= set(BENCH_COLUMNS) for r in run.rows)
    ours = [r for r in run.rows if r["backend"] == "triton" and r["op"] != "mlp_step"]
    assert ours and all(r["ratio_vs_copy"] and r["ratio_vs_native"] and r["gbps"] for r in ours)
    table = B.format_table(run, mem)
    assert "Triton" in table and "| dropout | fp32 | 4096 | fused | F.dropout |" in table
    assert Store(tmp_path / "r.db").add_bench(run.rows) == len(run.rows)
