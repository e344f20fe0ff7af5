"""Optimizer registry: weight decay goes to the weight group only (see decay_params).

`FUSED` holds the fused-step counterparts (regbench.optim.fused_sgd / fused_adamw), which also
take the elastic-net coefficients `l1`, `l2` of the `fused` backend of the l1/l2 regularizers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from regbench.errors import RegbenchError, UnknownNameError
from regbench.interface import OptimConfig, decay_params

__all__ = ["FUSED", "OPTIMIZERS", "FusedAdam", "FusedAdamW", "FusedSGD", "make_optimizer"]

# `from regbench.optim import FusedSGD` as from torch.optim; the classes load on first use
_LAZY = {"FusedSGD": "regbench.optim.fused_sgd", "FusedAdam": "regbench.optim.fused_adamw",
         "FusedAdamW": "regbench.optim.fused_adamw"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'regbench.optim' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


Factory = Callable[[list[dict], OptimConfig], torch.optim.Optimizer]

OPTIMIZERS: dict[str, Factory] = {
    "sgd": lambda groups, cfg: torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum),
    "adam": lambda groups, cfg: torch.optim.Adam(groups, lr=cfg.lr),
    "adamw": lambda groups, cfg: torch.optim.AdamW(groups, lr=cfg.lr),
}


def _fused_sgd(groups: list[dict], cfg: OptimConfig) -> torch.optim.Optimizer:
    from regbench.optim.fused_sgd import FusedSGD

    return FusedSGD(groups, lr=cfg.lr, momentum=cfg.momentum)


def _fused_adam(decoupled: bool) -> Factory:
    def make(groups: list[dict], cfg: OptimConfig) -> torch.optim.Optimizer:
        from regbench.optim.fused_adamw import FusedAdam, FusedAdamW

        return (FusedAdamW if decoupled else FusedAdam)(groups, lr=cfg.lr)

    return make


FUSED: dict[str, Factory] = {"sgd": _fused_sgd, "adam": _fused_adam(False),
                             "adamw": _fused_adam(True)}


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Build `cfg.name` (its fused step when `cfg.fused`) with weight decay `cfg.weight_decay`
    and the elastic net `cfg.l1`, `cfg.l2` on weights, 0 on the rest."""
    table = FUSED if cfg.fused else OPTIMIZERS
    if cfg.name not in table:
        raise UnknownNameError("fused optimizer" if cfg.fused else "optimizer", cfg.name, table)
    if not cfg.fused and (cfg.l1 or cfg.l2):
        raise RegbenchError(f"optimizer {cfg.name!r}: l1={cfg.l1}, l2={cfg.l2} need the fused "
                            "step (OptimConfig.fused = True)")
    weights, others = decay_params(model)
    pen = {"l1": cfg.l1, "l2": cfg.l2} if cfg.fused else {}
    groups = [
        {"params": weights, "weight_decay": cfg.weight_decay, **pen},
        {"params": others, "weight_decay": 0.0, **{k: 0.0 for k in pen}},
    ]
    return table[cfg.name]([g for g in groups if g["params"]], cfg)
