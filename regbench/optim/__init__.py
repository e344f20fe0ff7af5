"""Optimizer registry: weight decay goes to the weight group only (see decay_params)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from regbench.errors import UnknownNameError
from regbench.regularizers.base import OptimConfig, decay_params

OPTIMIZERS: dict[str, Callable[[list[dict], OptimConfig], torch.optim.Optimizer]] = {
    "sgd": lambda groups, cfg: torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum),
    "adam": lambda groups, cfg: torch.optim.Adam(groups, lr=cfg.lr),
    "adamw": lambda groups, cfg: torch.optim.AdamW(groups, lr=cfg.lr),
}


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Build `cfg.name` with weight decay `cfg.weight_decay` on weights, 0 on the rest."""
    if cfg.name not in OPTIMIZERS:
        raise UnknownNameError("optimizer", cfg.name, OPTIMIZERS)
    weights, others = decay_params(model)
    groups = [
        {"params": weights, "weight_decay": cfg.weight_decay},
        {"params": others, "weight_decay": 0.0},
    ]
    return OPTIMIZERS[cfg.name]([g for g in groups if g["params"]], cfg)
