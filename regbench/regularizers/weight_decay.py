"""Weight decay inside the optimizer: coupled (SGD/Adam) and decoupled (AdamW); `backend`
native (torch.optim) or fused (regbench.optim's Fused* step, bitwise the same update)."""

from __future__ import annotations

from regbench.registry import register_regularizer
from regbench.regularizers.base import OptimConfig
from regbench.regularizers.norm_penalty import LAMBDAS, OptimBackend
from regbench.tuning.space import LogUniform


@register_regularizer("weight_decay")
class WeightDecay(OptimBackend):
    """Coupled weight decay `weight_decay=lambda` in the task's SGD/Adam, weights only."""

    default_strengths = (1e-4, 1e-2)
    strength_space = LogUniform(1e-6, 1e-1)
    full_strengths = LAMBDAS
    owns = frozenset({"weight_decay"})

    def configure_optimizer(self, cfg: OptimConfig, adam_lr: float) -> None:
        cfg.weight_decay = self.strength
        cfg.fused = cfg.fused or self.fused  # a fused l1/l2 earlier in a stack keeps its step


@register_regularizer("adamw")
class AdamW(OptimBackend):
    """Decoupled weight decay: AdamW(lr=protocol adam_lr, weight_decay=lambda), weights only.

    Note that this swaps the optimizer for SGD-trained tasks; strength 0 is plain Adam.
    """

    default_strengths = (1e-2, 1e-1)
    strength_space = LogUniform(1e-4, 1.0)
    full_strengths = LAMBDAS
    owns = frozenset({"optimizer", "weight_decay"})

    def configure_optimizer(self, cfg: OptimConfig, adam_lr: float) -> None:
        if cfg.name != "adam":
            cfg.lr = adam_lr
        cfg.name, cfg.weight_decay, cfg.momentum = "adamw", self.strength, 0.0
        cfg.fused = cfg.fused or self.fused
