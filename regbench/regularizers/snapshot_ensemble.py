"""Snapshot ensembles: cosine cycles with restarts, the last snapshots' averaged outputs."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from regbench.interface import Regularizer, TrainContext
from regbench.params import Param
from regbench.registry import register_regularizer
from regbench.specs import Cell, RegSpec


class Ensemble(nn.Module):
    """The averaged outputs of `members`: for classification the log of the mean softmax
    (so cross-entropy and argmax score the averaged probabilities), else the mean."""

    def __init__(self, members: list[nn.Module], classification: bool):
        super().__init__()
        self.members, self.classification = nn.ModuleList(members), classification

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = torch.stack([m(x) for m in self.members])
        if self.classification:
            return torch.log(torch.softmax(outs, dim=-1).mean(0))
        return outs.mean(0)


@register_regularizer("snapshot_ensemble")
class SnapshotEnsemble(Regularizer):
    """Snapshot ensembles (Huang et al., ICLR 2017, eq. 2): the epochs are split into M
    cosine cycles, lr = lr0/2 (cos(pi t / T_M) + 1) with t the epoch within its cycle (per
    epoch, not per iteration), restarting at lr0; the weights at the end of each cycle are a
    snapshot, and the averaged outputs of the last `keep` snapshots (all if 0) are what is
    evaluated. Strength: the number of cycles M. The protocol's own lr schedule is replaced.
    """

    strength_name = "cycles"
    strength_range = (1.0, 1000.0)
    default_strengths = (2.0, 4.0)
    full_strengths = (2.0, 3.0, 4.0, 6.0)
    params = {"keep": Param(0, int, lo=0, hi=1000, doc="snapshots averaged (0: all)")}
    owns = frozenset({"lr_schedule"})

    def __init__(self, spec: RegSpec, cell: Cell):
        super().__init__(spec, cell)
        self.snapshots: list[nn.Module] = []

    def cycle_length(self, ctx: TrainContext) -> int:
        return max(1, math.ceil(ctx.protocol.epochs / int(self.strength)))

    def start_epoch(self, ctx: TrainContext) -> None:
        length = self.cycle_length(ctx)
        t = (ctx.epoch - 1) % length
        lr = ctx.protocol.lr / 2 * (math.cos(math.pi * t / length) + 1)
        assert ctx.optimizer is not None
        for group in ctx.optimizer.param_groups:
            group["lr"] = lr

    def end_epoch(self, ctx: TrainContext) -> None:
        if ctx.epoch % self.cycle_length(ctx) == 0 or ctx.epoch == ctx.protocol.epochs:
            self.snapshots.append(copy.deepcopy(ctx.model).eval())

    def eval_model(self, ctx: TrainContext) -> nn.Module | None:
        keep = int(self.param("keep")) or len(self.snapshots)
        members = self.snapshots[-keep:]
        if not members:
            return None
        return Ensemble(members, ctx.data.kind == "classification")
