"""Per-step loss accounting of a cell's training: the epoch's running loss and the first
non-finite step (the cell then ends as `diverged`), on the host or on the device."""

from __future__ import annotations

import math

import torch


class Diverged(Exception):
    def __init__(self, step: int, epoch: int, value: float):
        super().__init__(f"non-finite loss {value} at step {step} (epoch {epoch})")
        self.step, self.epoch = step, epoch


class HostLog:
    """Per-step loss accounting on the host (CPU cells): reads each loss, stops at the first
    non-finite one."""

    def __init__(self, reduction: str):
        self.reduction, self.running = reduction, 0.0

    def start_epoch(self) -> None:
        self.running = 0.0

    def add(self, step: int, epoch: int, loss: torch.Tensor, penalty: torch.Tensor | None,
            size: int) -> None:
        value = loss.item()
        self.running += value if self.reduction == "sum" else value * size
        if penalty is not None:
            value += penalty.item()
        if not math.isfinite(value):
            raise Diverged(step, epoch, value)

    def end_epoch(self, epoch: int) -> float:
        return self.running


class DeviceLog:
    """Per-step loss accounting on the device (CUDA cells): no host sync per step. The sum
    and the first non-finite step are kept on the device and read once per epoch."""

    def __init__(self, reduction: str, device: torch.device):
        self.reduction, self.device = reduction, device

    def start_epoch(self) -> None:
        self.running = torch.zeros((), dtype=torch.float64, device=self.device)
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=self.device)
        self.bad_value = torch.zeros((), dtype=torch.float64, device=self.device)

    def add(self, step: int, epoch: int, loss: torch.Tensor, penalty: torch.Tensor | None,
            size: int) -> None:
        value = loss.detach().double()
        self.running += value if self.reduction == "sum" else value * size
        if penalty is not None:
            value = value + penalty.detach().double()
        new_bad = ~torch.isfinite(value) & (self.first_bad < 0)
        self.first_bad = torch.where(new_bad, torch.full_like(self.first_bad, step),
                                     self.first_bad)
        self.bad_value = torch.where(new_bad, value, self.bad_value)

    def end_epoch(self, epoch: int) -> float:
        first, value, running = torch.stack(
            [self.first_bad.double(), self.bad_value, self.running]).tolist()
        if first >= 0:
            raise Diverged(int(first), epoch, value)
        return running
