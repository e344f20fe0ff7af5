"""Triton (CUDA) kernels for the fused dropout and L2 contracts (DESIGN.md).

Entry points run compiled on CUDA tensors and in the Triton interpreter on CPU tensors (so the
CPU-only CI checks the CUDA code's bits); `TRITON_INTERPRET=1` forces the interpreter everywhere.
Importing this package imports `triton`: `regbench.kernels` only does so when a CUDA tensor
reaches an op (`regbench.kernels._backend.triton_kernels()`).

    dropout(x, p, seed, offset) / dropout_backward(dy, p, seed, offset)
    bias_dropout_add(x, bias, residual, p, seed, offset)
    elastic_net_multi_(grads, params, lam, l1) -> penalty   # one launch per dtype
    l2_(params, lam), elastic_net_(params, lam, l1), l2_flat_(param, grad, lam, l1=0)
"""

from regbench.kernels.triton._dropout import bias_dropout_add, dropout, dropout_backward
from regbench.kernels.triton._l2 import elastic_net_, elastic_net_multi_, l2_, l2_flat_

__all__ = [
    "bias_dropout_add",
    "dropout",
    "dropout_backward",
    "elastic_net_",
    "elastic_net_multi_",
    "l2_",
    "l2_flat_",
]
