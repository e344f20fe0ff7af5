"""Fused L2 / elastic-net op (`regbench::l2_`): one pass over each parameter that adds
`lam * theta` (+ `l1 * sign(theta)`) to its gradient in place and returns the penalty
`0.5 * lam * sum(theta**2)` (+ `l1 * sum|theta|`) accumulated in float64 in a fixed order
(bitwise the same for every backend and thread count; see `reference.py`).

It is equal to adding `(lam / 2) * ||theta||^2` to the loss, and to SGD `weight_decay=lam`.
The op updates gradients; it is not itself differentiable (call it after `backward()`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

from regbench.kernels import _backend
from regbench.kernels import reference as ref

__all__ = ["elastic_net_", "l2_", "l2_flat_"]


def _l2_cuda(grads: list[Tensor], params: list[Tensor], lam: float, l1: float) -> Tensor:
    """CUDA: the Triton kernel (one launch per dtype), else the reference on the device."""
    tk = _backend.triton_kernels()
    if tk is None or _backend.reference_forced():
        return ref.l2_update_(grads, params, lam, l1).to(params[0].device)
    return tk.elastic_net_multi_(grads, params, lam, l1)


def _l2_impl(grads: list[Tensor], params: list[Tensor], lam: float, l1: float) -> Tensor:
    if params and params[0].device.type == "cuda":
        with torch.no_grad():
            return _l2_cuda(grads, params, lam, l1)
    name = _backend.backend()
    if name == "reference" or any(p.device.type != "cpu" for p in params):
        with torch.no_grad():
            return ref.l2_update_(grads, params, lam, l1)
    ext = _backend.load_extension()
    assert ext is not None
    return ext.l2_multi(list(grads), list(params), float(lam), float(l1), _backend.ISA[name])


@torch.library.custom_op("regbench::l2_", mutates_args=("grads",))
def l2_op(grads: list[Tensor], params: list[Tensor], lam: float, l1: float) -> Tensor:
    """grads[i] += lam * params[i] (+ l1 * sign); returns the float64 penalty (0-dim)."""
    return _l2_impl(grads, params, lam, l1)


def _call(grads: list[Tensor], params: list[Tensor], lam: float, l1: float) -> Tensor:
    with torch.no_grad():
        if torch.compiler.is_compiling():
            return l2_op(grads, params, lam, l1)
        return _l2_impl(grads, params, lam, l1)  # eager: same bits, no dispatch overhead


@l2_op.register_kernel("cuda")
def _l2_op_cuda(grads: list[Tensor], params: list[Tensor], lam: float, l1: float) -> Tensor:
    with torch.no_grad():
        return _l2_cuda(grads, params, lam, l1)


@l2_op.register_fake
def _l2_fake(grads: list[Tensor], params: list[Tensor], lam: float, l1: float) -> Tensor:
    # The penalty lives on the parameters' device (CPU for an empty list): no host sync on CUDA.
    dev = params[0].device if params else torch.device("cpu")
    return torch.empty((), dtype=torch.float64, device=dev)


def _check_coef(name: str, v: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{name} must be a float, got {v!r}")
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    return float(v)


def _check_pair(g: Tensor, p: Tensor, i: int) -> None:
    if not p.is_floating_point():
        raise TypeError(f"l2_: parameter {i} must be floating point, got dtype {p.dtype}")
    if g.dtype != p.dtype or g.shape != p.shape:
        raise ValueError(
            f"l2_: grad {i} ({g.dtype}, {tuple(g.shape)}) does not match its parameter "
            f"({p.dtype}, {tuple(p.shape)})"
        )


def elastic_net_(params: Iterable[Tensor], lam: float, l1: float) -> Tensor:
    """For each parameter: `grad += lam * theta + l1 * sign(theta)` in one pass (a missing
    `.grad` starts at zero). Returns the float64 penalty
    `0.5 * lam * sum(theta**2) + l1 * sum(|theta|)` as a 0-dim tensor."""
    lam = _check_coef("lam", lam)
    l1 = _check_coef("l1", l1)
    params = [p for p in params]
    grads: list[Tensor] = []
    for i, p in enumerate(params):
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        _check_pair(p.grad, p, i)
        grads.append(p.grad)
    return _call(grads, [p.detach() for p in params], lam, l1)


def l2_(params: Iterable[Tensor], lam: float) -> Tensor:
    """For each parameter: `grad += lam * theta` in one pass (a missing `.grad` starts at
    zero). Returns the float64 penalty `0.5 * lam * sum(theta**2)` as a 0-dim tensor."""
    return elastic_net_(params, lam, 0.0)


def l2_flat_(param: Tensor, grad: Tensor, lam: float, l1: float = 0.0) -> Tensor:
    """The same update on one flat parameter buffer and its flat gradient buffer."""
    lam = _check_coef("lam", lam)
    l1 = _check_coef("l1", l1)
    _check_pair(grad, param, 0)
    return _call([grad], [param.detach()], lam, l1)
