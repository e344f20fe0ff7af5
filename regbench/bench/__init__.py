"""Kernel throughput against native PyTorch and against the measured copy bandwidth.

`cpu` is `regbench bench` (also `python -m regbench.bench`), `cuda` the Triton kernels on a
GPU (`python -m regbench.bench.cuda`), `pytest_json` imports pytest-benchmark JSON into the
store, `asv_machine` names the asv machine (GPU included); `optim` times the fused optimizer
steps and `measure` is the timing both CPU benchmarks share.
"""

from regbench.bench.cpu import MLP_BATCHES, MLP_IMPLS, add_arguments, main, parse_size
from regbench.bench.measure import DTYPES

__all__ = ["DTYPES", "MLP_BATCHES", "MLP_IMPLS", "add_arguments", "main", "parse_size"]
