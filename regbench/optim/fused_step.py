"""The fused optimizer-step ops `regbench::sgd_step_` and `regbench::adamw_step_`.

Each is one pass over (param, grad, state) per tensor group that folds the elastic-net
gradient `l2 * theta + l1 * sign(theta)` into torch.optim.SGD's / Adam(W)'s update, equal bit
for bit to `regbench.optim.reference` (CPU, fp32 and fp64). Backends, as for the kernels:
the C++ extension (`csrc/optim.cpp`, avx512 | avx2 | scalar, `regbench.kernels.backend()`),
Triton on CUDA tensors (`kernels/triton/_optim.py`, one launch per dtype group), and the
reference for everything else (fp16/bf16, non-contiguous tensors, no compiler).

The ops are `torch.library` custom ops (schema, CPU and CUDA impls, fake impl) so that a
compiled optimizer step traces them as one node each; eager calls skip the dispatcher.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from regbench.kernels import _backend
from regbench.optim import reference as ref

__all__ = ["adamw_step_", "sgd_step_", "torch_uses_fma"]

@functools.cache
def torch_uses_fma(dtype: torch.dtype) -> bool:
    """Whether torch's CPU kernels round `add(x, alpha=a)` and `addcmul` as one fused
    multiply-add (vectorized ATen with AVX2 / AVX-512 / NEON does) for `dtype`. Probed once on
    values where the two roundings differ, over a vectorized body and a scalar tail."""
    e = 2.0**-12 if dtype == torch.float32 else 2.0**-27
    x = torch.full((67,), 1 + e, dtype=dtype)
    c = torch.full((67,), -(1 + 2 * e), dtype=dtype)
    add = torch.add(c, x, alpha=1 + e)  # x * (1 + e) = 1 + 2e + e^2: e^2 survives only in an FMA
    acm = c.clone().addcmul_(x, x, value=1.0)
    fused = [bool((t != 0).all()) for t in (add, acm)]
    plain = [bool((t == 0).all()) for t in (add, acm)]
    if all(fused):
        return True
    if all(plain):
        return False
    warnings.warn(
        f"regbench: torch's CPU kernels mix fused and unfused multiply-adds for {dtype}; the "
        "fused optimizer steps follow the fused rounding and may differ from torch.optim in "
        "the last bit here", RuntimeWarning, stacklevel=2)
    return True


_fma: tuple[bool, bool] | None = None


def _fma_flags() -> tuple[bool, bool]:
    global _fma
    if _fma is None:
        _fma = (torch_uses_fma(torch.float32), torch_uses_fma(torch.float64))
    return _fma


def _pick(ts: Sequence[Tensor], idx: Sequence[int]) -> list[Tensor]:
    return [ts[i] for i in idx]


def _dispatch(tensors: tuple[list[Tensor], ...], kw: dict[str, Any], triton_name: str,
              reference: Callable[..., None],
              extension: Callable[[ModuleType, int], Sequence[int]]) -> None:
    """Run one step on `tensors` (params first; an empty list is a state the step has not)
    where the tensors and `regbench.kernels.backend()` say: Triton on CUDA tensors, else the
    C++ extension, which returns the indices of the tensors it does not run (not contiguous
    fp32/fp64) for the reference; the reference when forced or without Triton/compiler."""
    params = tensors[0]
    if not params:
        return
    if params[0].device.type == "cuda":
        tk = _backend.triton_kernels()
        if tk is not None and not _backend.reference_forced():
            getattr(tk, triton_name)(*tensors, **kw)
        else:
            reference(*tensors, **kw)
        return
    name = _backend.backend()
    if name == "reference":
        reference(*tensors, **kw)
        return
    ext = _backend.load_extension()
    assert ext is not None
    skipped = extension(ext, _backend.ISA[name])
    if skipped:
        reference(*(_pick(t, skipped) if t else t for t in tensors), **kw)


def _sgd_impl(params: list[Tensor], grads: list[Tensor], bufs: list[Tensor], lr: float,
              momentum: float, dampening: float, nesterov: bool, weight_decay: float,
              l2: float, l1: float, init_bufs: bool) -> None:
    kw = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
              weight_decay=weight_decay, l2=l2, l1=l1, init_bufs=init_bufs)
    _dispatch((params, grads, bufs), kw, "sgd_step_", ref.sgd_step_,
              lambda ext, isa: ext.sgd_multi(params, grads, bufs, lr, momentum, dampening,
                                             nesterov, weight_decay, l2, l1, init_bufs,
                                             *_fma_flags(), isa))


def _adam_impl(params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor],
               exp_avg_sqs: list[Tensor], steps: list[Tensor], lr: float, beta1: float,
               beta2: float, eps: float, weight_decay: float, decoupled: bool, l2: float,
               l1: float, torch_sqrt: bool) -> None:
    kw = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
              decoupled=decoupled, l2=l2, l1=l1, torch_sqrt=torch_sqrt)
    _dispatch((params, grads, exp_avgs, exp_avg_sqs, steps), kw, "adamw_step_",
              ref.adamw_step_,
              lambda ext, isa: ext.adamw_multi(params, grads, exp_avgs, exp_avg_sqs, steps, lr,
                                               beta1, beta2, eps, weight_decay, decoupled, l2,
                                               l1, *_fma_flags(), torch_sqrt, isa))


@torch.library.custom_op("regbench::sgd_step_", mutates_args=("params", "bufs"))
def sgd_step_op(params: list[Tensor], grads: list[Tensor], bufs: list[Tensor], lr: float,
                momentum: float, dampening: float, nesterov: bool, weight_decay: float,
                l2: float, l1: float, init_bufs: bool) -> None:
    """In place: one SGD step on params (and momentum bufs) with grad + l2*p + l1*sign(p)."""
    with torch.no_grad():
        _sgd_impl(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, l2, l1,
                  init_bufs)


@sgd_step_op.register_fake
def _sgd_fake(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, l2, l1,  # noqa: ANN001, ANN202
              init_bufs):
    return None


@torch.library.custom_op(
    "regbench::adamw_step_", mutates_args=("params", "exp_avgs", "exp_avg_sqs", "steps"))
def adamw_step_op(params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor],
                  exp_avg_sqs: list[Tensor], steps: list[Tensor], lr: float, beta1: float,
                  beta2: float, eps: float, weight_decay: float, decoupled: bool, l2: float,
                  l1: float, torch_sqrt: bool) -> None:
    """In place: one Adam/AdamW step (steps += 1) with grad + l2*p + l1*sign(p)."""
    with torch.no_grad():
        _adam_impl(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps,
                   weight_decay, decoupled, l2, l1, torch_sqrt)


@adamw_step_op.register_fake
def _adam_fake(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps,  # noqa: ANN001, ANN202
               weight_decay, decoupled, l2, l1, torch_sqrt):
    return None


def sgd_step_(params: list[Tensor], grads: list[Tensor], bufs: list[Tensor], *, lr: float,
              momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
              weight_decay: float = 0.0, l2: float = 0.0, l1: float = 0.0,
              init_bufs: bool = False) -> None:
    """The fused SGD step on tensor lists (eager: straight to the backend; compiled: the op)."""
    args = (list(params), list(grads), list(bufs), float(lr), float(momentum), float(dampening),
            bool(nesterov), float(weight_decay), float(l2), float(l1), bool(init_bufs))
    if torch.compiler.is_compiling():
        sgd_step_op(*args)
    else:
        with torch.no_grad():
            _sgd_impl(*args)


def adamw_step_(params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor],
                exp_avg_sqs: list[Tensor], steps: list[Tensor], *, lr: float, beta1: float,
                beta2: float, eps: float, weight_decay: float = 0.0, decoupled: bool = True,
                l2: float = 0.0, l1: float = 0.0, torch_sqrt: bool = True) -> None:
    """The fused Adam/AdamW step on tensor lists (eager: the backend; compiled: the op).
    torch_sqrt=False: IEEE sqrt instead of torch.sqrt's (MKL VML where torch has MKL)."""
    args = (list(params), list(grads), list(exp_avgs), list(exp_avg_sqs), list(steps),
            float(lr), float(beta1), float(beta2), float(eps), float(weight_decay),
            bool(decoupled), float(l2), float(l1), bool(torch_sqrt))
    if torch.compiler.is_compiling():
        adamw_step_op(*args)
    else:
        with torch.no_grad():
            _adam_impl(*args)
