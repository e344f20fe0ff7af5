"""The regularizer interface: hooks into the model, optimizer, loss, data and stopping.

A regularizer never names a task. It declares what it needs (a task kind, an
architecture capability) and the matrix skips combinations that lack it, saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from regbench.archs.base import Arch, Knobs
from regbench.errors import RegbenchError
from regbench.params import check_values, default, finite
from regbench.specs import Cell, RegSpec
from regbench.tasks.base import Task, TaskData


@dataclass
class OptimConfig:
    """The optimizer a cell trains with; regularizers may change it."""

    name: str
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0  # applied to the weight group only (see decay_params)
    # Elastic net folded into the optimizer step (weight group only); needs fused = True.
    l1: float = 0.0
    l2: float = 0.0
    fused: bool = False  # regbench.optim's Fused* optimizers instead of torch.optim's


def decay_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weights, others): weight matrices and conv kernels vs biases and norm parameters.

    Penalties and weight decay in regbench touch the weights only, the usual practice
    (seed 002 penalizes w, not b); biases and batchnorm's gamma/beta are left alone.
    """
    weights, others = [], []
    for p in model.parameters():
        (weights if p.dim() >= 2 else others).append(p)
    return weights, others


class Regularizer:
    """Base class: every hook is a no-op, so a subclass overrides only what it changes."""

    name: ClassVar[str]
    strength_name: ClassVar[str] = "lambda"
    strength_range: ClassVar[tuple[float, float]] = (0.0, float("inf"))
    default_strengths: ClassVar[tuple[float, ...]] = ()
    full_strengths: ClassVar[tuple[float, ...]] = ()
    needs_kind: ClassVar[str | None] = None  # e.g. "classification"
    needs_capability: ClassVar[str | None] = None  # e.g. "hidden", "residual"
    params: ClassVar[dict[str, Any]] = {}

    def __init__(self, spec: RegSpec, cell: Cell):
        self.check(spec)
        self.spec, self.cell, self.strength = spec, cell, float(spec.strength)

    @classmethod
    def check(cls, spec: RegSpec) -> None:
        """Raise a RegbenchError naming a bad strength or parameter."""
        lo, hi = cls.strength_range
        if not finite(spec.strength) or not lo <= float(spec.strength) <= hi:
            raise RegbenchError(
                f"{spec.name} {cls.strength_name}={spec.strength} is outside [{lo}, {hi}]"
            )
        check_values("regularizer", spec.name, dict(spec.params), cls.params)

    @classmethod
    def skip_reason(cls, task: Task, arch: Arch, spec: RegSpec | None = None) -> str | None:
        """Why this regularizer (with `spec`'s parameters) cannot apply to (task, arch)."""
        if cls.needs_kind and task.kind != cls.needs_kind:
            return f"{cls.name} needs a {cls.needs_kind} task; {task.name} is {task.kind}"
        if cls.needs_capability and cls.needs_capability not in arch.capabilities:
            what = {"hidden": "hidden layers", "residual": "residual blocks"}[
                cls.needs_capability
            ]
            return f"{cls.name} needs {what}; {arch.name} has none"
        return None

    def param(self, key: str) -> Any:
        return self.spec.get(key, default(self.params[key]))

    # -- hooks ------------------------------------------------------------------------
    def configure_model(self, knobs: Knobs) -> None:
        """Turn on model-side knobs (dropout, batchnorm, stochastic depth)."""

    def configure_optimizer(self, cfg: OptimConfig, adam_lr: float) -> None:
        """Change the optimizer (weight decay, AdamW)."""

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        """A term added to the training loss, or None."""
        return None

    def loss_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for the training criterion (label smoothing)."""
        return {}

    def augment(self, x: torch.Tensor, data: TaskData) -> torch.Tensor:
        """Transform a training minibatch (input noise, shifts)."""
        return x

    def train_fraction(self) -> float:
        """Fraction of the training split to use (learning curves)."""
        return 1.0

    def patience(self) -> int | None:
        """Early-stopping patience in epochs, or None for a fixed budget."""
        return None
