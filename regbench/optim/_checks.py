"""Hyperparameter checks and step plumbing shared by the fused optimizers."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from regbench.errors import RegbenchError

__all__ = ["OptimizerArgError", "check_coef", "closure_loss", "params_with_grads"]


class OptimizerArgError(RegbenchError, ValueError):
    """A fused optimizer's hyperparameter that is out of range (names the value)."""


def check_coef(owner: str, name: str, v: object, hi: float = math.inf, open_hi: bool = False
               ) -> float:
    """`v` as a float in [0, hi] ([0, hi) when `open_hi`), else an OptimizerArgError."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise OptimizerArgError(f"{owner}: {name} must be a float, got {v!r}")
    f = float(v)
    if not math.isfinite(f) or f < 0 or f > hi or (open_hi and f >= hi):
        rng = f"[0, {hi})" if open_hi else f"[0, {hi}]"
        raise OptimizerArgError(f"{owner}: {name} must be a finite number in {rng}, got {v!r}")
    return f


def closure_loss(closure: Callable[[], Any] | None) -> Any:
    """`closure()` under grad mode (as torch.optim's step runs it), or None without one."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def params_with_grads(group: dict[str, Any], owner: str) -> Iterator[tuple[Tensor, Tensor]]:
    """(param, grad) of the group's parameters that have a gradient; sparse ones refused."""
    for p in group["params"]:
        g = p.grad
        if g is None:
            continue
        if g.is_sparse:
            raise RuntimeError(f"{owner} does not support sparse gradients")
        yield p, g
