"""Learning-rate schedules of the training protocol, stepped once per epoch.

`constant` keeps the protocol's lr; `cosine` anneals it to `lr_min` over the cell's epochs
(CosineAnnealingLR); `step` multiplies it by `lr_gamma` every `lr_step_size` epochs (StepLR).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR

from regbench.errors import UnknownNameError

SCHEDULES: dict[str, Callable[[torch.optim.Optimizer, Any], LRScheduler | None]] = {
    "constant": lambda opt, proto: None,
    "cosine": lambda opt, proto: CosineAnnealingLR(opt, T_max=proto.epochs, eta_min=proto.lr_min),
    "step": lambda opt, proto: StepLR(opt, step_size=proto.lr_step_size, gamma=proto.lr_gamma),
}


def make_schedule(opt: torch.optim.Optimizer, proto: Any) -> LRScheduler | None:
    """The protocol's schedule on `opt` (None for a constant lr)."""
    if proto.lr_schedule not in SCHEDULES:
        raise UnknownNameError("lr schedule", proto.lr_schedule, SCHEDULES)
    return SCHEDULES[proto.lr_schedule](opt, proto)
