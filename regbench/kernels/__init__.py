"""Fused CPU kernels: counter-based dropout and fused L2 / elastic net (DESIGN.md contracts).

Public API::

    dropout(x, p, seed, offset=0, training=True) -> Tensor
    bias_dropout_add(x, bias, residual, p, seed, offset=0, training=True) -> Tensor
    l2_(params, lam) -> Tensor                      # float64 0-dim penalty
    elastic_net_(params, lam, l1) -> Tensor
    l2_flat_(param, grad, lam, l1=0.0) -> Tensor
    counters_used(numel) -> int                     # advance offset by this per call
    backend() -> "avx512" | "avx2" | "scalar" | "reference"
    available_backends(), set_backend(name | None), use_backend(name)  # force a path
    cached_bytes(), empty_cache()   # outputs >= 256 KiB are reused across calls, like CUDA's cache

The C++ extension is JIT-built on first use (cached); without a compiler every op runs the
plain-torch reference (`regbench.kernels.reference`) after one warning.
"""

from regbench.kernels._backend import (
    BACKENDS,
    available_backends,
    backend,
    build_error,
    cached_bytes,
    empty_cache,
    load_extension,
    set_backend,
    use_backend,
)
from regbench.kernels.dropout import bias_dropout_add, dropout
from regbench.kernels.l2 import elastic_net_, l2_, l2_flat_
from regbench.kernels.reference import counters_used

__all__ = [
    "BACKENDS",
    "available_backends",
    "backend",
    "bias_dropout_add",
    "build_error",
    "cached_bytes",
    "counters_used",
    "dropout",
    "elastic_net_",
    "empty_cache",
    "l2_",
    "l2_flat_",
    "load_extension",
    "set_backend",
    "use_backend",
]
