"""Snapshot ensembles: cosine cycles with restarts, the last snapshots' averaged outputs."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from regbench.errors import RegbenchError
from regbench.interface import Protocol, Regularizer, TrainContext
from regbench.params import Param
from regbench.registry import register_regularizer
from regbench.specs import Cell, RegSpec
from regbench.tuning.space import Choice


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


def cycles_made(epochs: int, cycles: float) -> int:
    """How many cycles `epochs` epochs make in cycles of ceil(epochs / cycles) epochs."""
    return math.ceil(epochs / math.ceil(epochs / cycles))


def makes(epochs: int, cycles: int) -> bool:
    """Whether `epochs` epochs make exactly `cycles` cycles of ceil(epochs / cycles)
    epochs, each of at least 2 epochs, the last (which may be shorter) included."""
    length = math.ceil(epochs / cycles)
    return (cycles_made(epochs, cycles) == cycles and length >= 2
            and epochs - (cycles - 1) * length >= 2)


@register_regularizer("snapshot_ensemble")
class SnapshotEnsemble(Regularizer):
    """Snapshot ensembles: cosine lr cycles; the last snapshots' outputs averaged.

    Snapshot ensembles (Huang et al., ICLR 2017, eq. 2): the epochs are split into M
    cosine cycles, lr = lr0/2 (cos(pi t / T_M) + 1) with t the epoch within its cycle (per
    epoch, not per iteration), restarting at lr0; the weights at the end of each cycle are a
    snapshot, and the averaged outputs of the last `keep` snapshots (all if 0) are what is
    evaluated. Strength: the number of cycles M (an integer the epochs can make, see
    `check_protocol`). lr0 is the optimizer's initial lr (the protocol's, or adam_lr under
    `adamw`). The protocol's own lr schedule is replaced.
    """

    strength_name = "cycles"
    strength_range = (1.0, 1000.0)
    default_strengths = (2.0, 4.0)
    # cycle counts every default task's epochs (20-60) can make (see check_protocol)
    strength_space = Choice((2.0, 3.0, 4.0))
    full_strengths = (2.0, 3.0, 4.0, 6.0)
    params = {"keep": Param(0, int, lo=0, hi=1000, doc="snapshots averaged (0: all)")}
    owns = frozenset({"lr_schedule"})

    def __init__(self, spec: RegSpec, cell: Cell):
        super().__init__(spec, cell)
        self.snapshots: list[nn.Module] = []

    @classmethod
    def check_protocol(cls, spec: RegSpec, protocol: Protocol) -> None:
        """Refuse cycles the epochs cannot make: a non-integer count, a cycle of one epoch
        (the lr never anneals; the last, shorter cycle included: 3 epochs make no 2
        cycles), or a count that ceil-length cycles do not give (30 epochs, 7 cycles:
        cycles of 5 epochs make 6); and a `keep` larger than the snapshots taken (one per
        cycle)."""
        m, epochs = float(spec.strength), protocol.epochs
        if not m.is_integer() or not makes(epochs, int(m)):
            valid = [c for c in range(1, epochs) if makes(epochs, c)]
            shown = (", ".join(map(str, valid[:12])) + (", ..." if len(valid) > 12 else "")
                     ) or "none (fewer than 2 epochs)"
            raise RegbenchError(
                f"snapshot_ensemble cycles={m:g} cannot be made from {epochs} epochs "
                f"(cycles of ceil({epochs}/cycles) epochs, at least 2 each); valid cycles "
                f"for {epochs} epochs: {shown}")
        keep = int(spec.get("keep", 0))
        if keep > m:
            raise RegbenchError(
                f"snapshot_ensemble keep={keep} is more than the {m:g} snapshots that "
                f"cycles={m:g} take (one per cycle); keep at most {m:g}, or 0 for all")

    def cycle_length(self, ctx: TrainContext) -> int:
        return math.ceil(ctx.protocol.epochs / int(self.strength))

    def start_epoch(self, ctx: TrainContext) -> None:
        length = self.cycle_length(ctx)
        t = (ctx.epoch - 1) % length
        scale = (math.cos(math.pi * t / length) + 1) / 2
        assert ctx.optimizer is not None
        for group, lr in zip(ctx.optimizer.param_groups, self.base_lrs(ctx)):
            group["lr"] = lr * scale

    def end_epoch(self, ctx: TrainContext) -> None:
        if ctx.epoch % self.cycle_length(ctx) == 0 or ctx.epoch == ctx.protocol.epochs:
            self.snapshots.append(copy.deepcopy(ctx.model).eval())

    def eval_model(self, ctx: TrainContext) -> nn.Module | None:
        keep = int(self.param("keep")) or len(self.snapshots)
        members = self.snapshots[-keep:]
        if not members:
            return None
        return Ensemble(members, ctx.data.kind == "classification")
