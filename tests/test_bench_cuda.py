"""`python -m regbench.bench.cuda`: a clear non-zero exit without a GPU; its row building and
store round trip in a CPU dry run (numbers meaningless, code paths exercised)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from regbench.bench import cuda as B


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
@pytest.mark.slow
def test_exits_with_message_without_cuda() -> None:
    out = subprocess.run([sys.executable, "-m", "regbench.bench.cuda", "--quick"],
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


def test_chosen_launch_config_is_noted() -> None:
    """On CUDA each of our timed ops notes the launch config its Triton kernel ran with; the
    note lands under the table. (Here the kernels run interpreted, with the fixed default.)"""
    pytest.importorskip("triton")
    from regbench.kernels import triton as KT

    x = torch.randn(100)
    KT.dropout(x, 0.5, 1, 0)
    KT.l2_flat_(x, torch.zeros_like(x), 0.1)
    info = {"torch": torch.__version__, "cuda": None, "triton": "?"}
    run = B._Run(torch.device("cuda"), info, quick=True, compile_=False)
    run.note_config("dropout", "fp32", 100, "dropout")
    run.note_config("l2", "fp32", 100, "l2")
    assert run.notes == [
        "dropout fp32 n=100: Triton dropout kernel BLOCK=4096, num_warps=8 (fixed)",
        "l2 fp32 n=100: Triton l2 kernel BLOCK=4096, num_warps=8 (fixed)",
    ]
    assert "note: l2 fp32 n=100: Triton l2 kernel BLOCK=4096" in B.format_table(run, [])
    cpu = B._Run(torch.device("cpu"), info, quick=True, compile_=False)
    cpu.note_config("dropout", "fp32", 100, "dropout")  # dry run: the C++ kernels ran
    assert cpu.notes == []
