"""Where a cell computes: `cpu`, or `cuda:<GPU name>` (the device is part of the cell's id).

`--device cuda` resolves to the name of GPU 0 on the machine that builds the matrix; a
worker refuses a CUDA cell meant for another GPU model. CUDA cells run with deterministic
algorithms (and the cuBLAS workspace setting, made before CUDA initializes), so the same
cell twice on one GPU is bitwise identical.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import replace

import torch

from regbench.errors import RegbenchError, UnknownNameError
from regbench.specs import Cell

DEVICES = ("cpu", "cuda")
CUBLAS_WORKSPACE = ":4096:8"  # what deterministic cuBLAS needs (CUDA >= 10.2)


def cuda_env() -> None:
    """Set CUBLAS_WORKSPACE_CONFIG (unless the user did) before anything initializes CUDA."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


def resolve(name: str) -> str:
    """The cell device for `--device NAME`: "cpu" or "cuda:<GPU name>"; a RegbenchError when
    CUDA is asked for and no usable GPU is there."""
    if name not in DEVICES:
        raise UnknownNameError("device", name, DEVICES)
    if name == "cpu":
        return "cpu"
    cuda_env()
    if not torch.cuda.is_available():
        built = torch.version.cuda or "none (a CPU-only build)"
        raise RegbenchError(f"--device cuda: no usable CUDA GPU here (torch "
                            f"{torch.__version__}, CUDA {built}); run with --device cpu")
    return f"cuda:{torch.cuda.get_device_name(0)}"


def on(cells: list[Cell], device: str) -> list[Cell]:
    """`cells` on `device` (the same list for the CPU)."""
    return cells if device == "cpu" else [replace(c, device=device) for c in cells]


def is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def generator_device(device: str) -> str:
    """Where a cell's random generators live ("cpu" or "cuda"): masks and augmentation
    are drawn on the device the data is on, so no step copies random numbers over."""
    return "cuda" if is_cuda(device) else "cpu"


def torch_device(device: str) -> torch.device:
    """The torch device a cell's tensors live on; a CUDA cell checks the GPU model."""
    if not is_cuda(device):
        if device != "cpu":
            raise RegbenchError(f"unknown cell device {device!r}; valid: cpu, cuda:<GPU name>")
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RegbenchError(f"cell device {device!r}: no usable CUDA GPU on this worker")
    want, have = device.split(":", 1)[1], torch.cuda.get_device_name(0)
    if want != have:
        raise RegbenchError(f"cell device {device!r}: this worker's GPU is {have!r}")
    return torch.device("cuda", 0)


@contextlib.contextmanager
def deterministic(device: str) -> Iterator[None]:
    """Deterministic algorithms for a CUDA cell (restored afterwards); nothing on the CPU."""
    if not is_cuda(device):
        yield
        return
    cuda_env()
    old = torch.are_deterministic_algorithms_enabled()
    old_bench = torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old)
        torch.backends.cudnn.benchmark = old_bench
