"""Triton (CUDA) kernels for the fused dropout and L2 contracts (DESIGN.md).

Entry points run compiled on CUDA tensors and in the Triton interpreter on CPU tensors (so the
CPU-only CI checks the CUDA code's bits); `TRITON_INTERPRET=1` forces the interpreter everywhere.
Importing this package imports `triton`: `regbench.kernels` only does so when a CUDA tensor
reaches an op (`regbench.kernels._backend.triton_kernels()`).

    dropout(x, p, seed, offset) / dropout_backward(dy, p, seed, offset)
    bias_dropout_add(x, bias, residual, p, seed, offset)
    elastic_net_multi_(grads, params, lam, l1) -> penalty   # one launch per dtype
    sgd_step_(...), adamw_step_(...)   # fused optimizer steps (regbench.optim), per dtype
    l2_(params, lam), elastic_net_(params, lam, l1), l2_flat_(param, grad, lam, l1=0)
    last_configs() -> {"dropout": "BLOCK=..., num_warps=... (autotuned)", "l2": ...}

On CUDA the launch config is autotuned (over `_dropout.CONFIGS` / `_l2.CONFIGS`, keyed by the
dtypes and a power-of-two bucket of the size); it never changes a bit of the results.
"""

from regbench.kernels.triton import _dropout, _l2
from regbench.kernels.triton._dropout import bias_dropout_add, dropout, dropout_backward
from regbench.kernels.triton._l2 import elastic_net_, elastic_net_multi_, l2_, l2_flat_
from regbench.kernels.triton._launch import describe
from regbench.kernels.triton._optim import adamw_step_, sgd_step_

__all__ = [
    "bias_dropout_add",
    "dropout",
    "dropout_backward",
    "elastic_net_",
    "elastic_net_multi_",
    "l2_",
    "l2_flat_",
    "last_configs",
    "adamw_step_",
    "sgd_step_",
]


def last_configs() -> dict[str, str]:
    """The launch config each kernel last ran with, for benchmark notes (kernels that have
    not run yet are absent)."""
    out = {}
    for name, k in (("dropout", _dropout._KERNEL), ("l2", _l2._KERNEL)):
        if k.last_config is not None:
            how = "autotuned" if k.last_tuned else "fixed"
            out[name] = f"{describe(k.last_config)} ({how})"
    return out
