"""pytest-benchmark setup of tests/bench: threads, and the machine (CPU, GPU, threads) in
machine_info.

`REGBENCH_BENCH_THREADS=N` sets torch's thread count for the benchmarks (default: torch's
own, one per core). On a machine shared with other jobs use 1: OpenMP threads that wait for
a busy core turn microseconds into milliseconds.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch._dynamo

from regbench import kernels as K
from regbench.provenance import machine


def pytest_configure(config: Any) -> None:
    threads = os.environ.get("REGBENCH_BENCH_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    for knob in ("cache_size_limit", "recompile_limit"):  # one compiled fn per size and case
        if hasattr(torch._dynamo.config, knob):
            setattr(torch._dynamo.config, knob, 256)


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    """Add regbench's machine record (CPU model, cores, threads, GPU), torch and the backend."""
    info = machine(torch.get_num_threads())
    info.update(torch_version=torch.__version__, kernel_backend=K.backend(),
                cuda=torch.version.cuda, interop_threads=torch.get_num_interop_threads())
    machine_info["regbench"] = info
