"""Shared pieces of the asv suites: parameter grids, device checks, data, ratio timing.

Ratios reuse `regbench.bench.measure.measure` (torch.utils.benchmark.Timer with num_threads set,
warm-up first, median of blocked_autorange), so asv tracks the same numbers as
`regbench bench`, each ratio measured inside one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

# Inside an asv-built virtualenv keep the JIT-built C++ extension next to that env, so
# alternating between asv envs and the dev venv does not rebuild it every time.
if os.environ.get("ASV_ENV_TYPE", "existing") != "existing" and os.environ.get("ASV_ENV_DIR"):
    os.environ.setdefault("REGBENCH_EXTENSIONS_DIR",
                          os.path.join(os.environ["ASV_ENV_DIR"], "regbench_extensions"))

import torch  # noqa: E402

from regbench import kernels as K  # noqa: E402
from regbench.bench.measure import DTYPES, measure  # noqa: E402

SIZES = [2**16, 2**20]          # 64K and 1M elements: small enough for `asv run --quick`
DTYPE_NAMES = ["fp32", "bf16"]
PROBS = [0.1, 0.5]
THREADS = [1, 2]
DEVICES = ["cpu", "cuda"]
SEED = 1234
LAM = 1e-4
RATIO_MIN_TIME = 0.05           # seconds of timing per side of a ratio
CHECK_NUMEL = 4099              # elements compared bitwise with the reference (not a multiple of 4)
RATIO_UNIT = "time ratio (ours / baseline, < 1 = ours faster)"


def require_device(device: str) -> torch.device:
    """The torch device, or NotImplementedError (asv then skips the case) when absent."""
    if device == "cuda" and not torch.cuda.is_available():
        raise NotImplementedError("CUDA is not available on this machine")
    return torch.device(device)


def build_extension() -> str:
    """Build (or load from its disk cache) the C++ kernels; return the backend in use."""
    K.load_extension()
    return K.backend()


def make_data(sizes: list[int]) -> dict[int, torch.Tensor]:
    """One seeded fp32 CPU vector per size (setup_cache output; asv pickles it)."""
    g = torch.Generator().manual_seed(0)
    return {n: torch.randn(n, generator=g) for n in sizes}


def prepare(x: torch.Tensor, dtype: str, device: torch.device) -> torch.Tensor:
    """`x` in the benchmark's dtype on its device."""
    return x.to(DTYPES[dtype]).to(device)


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work so a timing covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ratio(ours: Callable[[], Any], other: Callable[[], Any], threads: int) -> float:
    """median time of `ours` / median time of `other`, both measured now in this process."""
    t_ours, _ = measure(ours, threads, RATIO_MIN_TIME)
    t_other, _ = measure(other, threads, RATIO_MIN_TIME)
    return t_ours / t_other
