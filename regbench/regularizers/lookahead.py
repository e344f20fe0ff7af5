"""Lookahead: slow weights that follow the task's optimizer every k steps."""

from __future__ import annotations

from typing import Any

import torch

from regbench.interface import Regularizer, TrainContext
from regbench.params import Param
from regbench.registry import register_regularizer
from regbench.tuning.space import IntUniform, Uniform


class Lookahead:
    """Wraps an optimizer: every k inner steps, slow += alpha (fast - slow), fast = slow.
    `param_groups` are the inner optimizer's, so learning-rate schedules act on it."""

    def __init__(self, inner: torch.optim.Optimizer, k: int, alpha: float):
        self.inner, self.k, self.alpha, self.steps = inner, k, alpha, 0
        self.slow = [[p.detach().clone() for p in g["params"]] for g in inner.param_groups]

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.inner.param_groups

    @property
    def state(self) -> Any:
        return self.inner.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = self.inner.step(closure)
        self.steps += 1
        if self.steps % self.k == 0:
            for group, slow in zip(self.inner.param_groups, self.slow):
                for p, s in zip(group["params"], slow):
                    s.add_(p - s, alpha=self.alpha)
                    p.copy_(s)
        return loss


@register_regularizer("lookahead")
class LookaheadReg(Regularizer):
    """Lookahead around the task's optimizer: k fast steps, then a slow update.

    Lookahead (Zhang et al., NeurIPS 2019, Algorithm 1) around the task's optimizer: k fast
    steps, then the slow weights move alpha of the way to the fast ones and the fast weights
    restart from them. alpha = 1 is the inner optimizer alone (weaker as alpha grows)."""

    strength_name = "alpha"
    strength_range = (0.01, 1.0)
    default_strengths = (0.5, 0.8)
    strength_space = Uniform(0.2, 0.9)
    full_strengths = (0.2, 0.5, 0.8)
    larger_is_weaker = True
    params = {"k": Param(5, int, lo=1, hi=10_000, doc="fast steps per slow update",
                        space=IntUniform(2, 10))}
    owns = frozenset({"optimizer_wrapper"})

    def wrap_optimizer(self, optimizer: torch.optim.Optimizer, ctx: TrainContext
                       ) -> torch.optim.Optimizer:
        return Lookahead(optimizer, int(self.param("k")), self.strength)  # type: ignore[return-value]
