"""Residual MLP: the host of stochastic depth."""

from __future__ import annotations

import torch
from torch import nn

from regbench.archs.base import Arch, Knobs, depth, hidden_bias, normalized_activation, width
from regbench.registry import register_arch
from regbench.specs import ArchSpec
from regbench.tasks.base import TaskData


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch per sample with probability p (scaled 1/(1-p)).

    The mask comes from this module's own seeded generator, never the global one.
    """

    def __init__(self, p: float, generator: torch.Generator | None):
        super().__init__()
        self.p, self.generator = p, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        u = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=self.generator,
                       device=x.device)
        return x * (u < keep).to(x.dtype) / keep


class _ShakeGate(torch.autograd.Function):
    """y = gate_forward * h in the forward pass, dh = gate_backward * dy in the backward pass."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, gate_forward: torch.Tensor,  # type: ignore[override]
                gate_backward: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(gate_backward)
        return h * gate_forward

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (gate_backward,) = ctx.saved_tensors
        return grad * gate_backward, None, None




class ShakeDrop(nn.Module):
    """ShakeDrop on a residual branch (Yamada et al. 2019, eq. 8 and its test-time form).

    Training, per sample: b ~ Bernoulli(1 - p) (p: this block's drop probability),
    alpha ~ U[-1, 1], beta ~ U[0, 1]; the forward pass multiplies the branch by
    b + alpha - b * alpha and the backward pass multiplies its gradient by b + beta - b * beta
    (b = 1: the plain branch; b = 0: the branch scaled by alpha, its gradient by beta).
    Evaluation multiplies the branch by E[b + alpha - b * alpha] = 1 - p. The draws (b, then
    alpha, then beta, `n` each) come from this module's own seeded generator.
    """

    def __init__(self, p: float, generator: torch.Generator | None):
        super().__init__()
        self.p, self.generator = p, generator

    def gates(self, n: int, device: torch.device, dtype: torch.dtype
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(forward gate, backward gate), each (n,), for one training minibatch."""
        kw = {"generator": self.generator, "device": device}
        b = (torch.rand(n, **kw) < 1.0 - self.p).to(dtype)
        alpha = torch.rand(n, **kw).to(dtype) * 2 - 1
        beta = torch.rand(n, **kw).to(dtype)
        return b + alpha - b * alpha, b + beta - b * beta

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0:
            return h
        if not self.training:
            return h * (1.0 - self.p)
        fwd, bwd = self.gates(h.shape[0], h.device, h.dtype)
        shape = (h.shape[0],) + (1,) * (h.dim() - 1)
        return _ShakeGate.apply(h, fwd.view(shape), bwd.view(shape))


def shake_drop(knobs: Knobs, index: int, total: int) -> nn.Module:
    """The ShakeDrop module of residual block `index` of `total` (the linear decay rule:
    p_l = p_L * (index + 1) / total), or an identity when shake_drop is off."""
    p_last, generator = knobs.shake_drop, knobs.shake_drop_generator
    if p_last == 0.0:
        return nn.Identity()
    return ShakeDrop(p_last * (index + 1) / total, generator)


class ResBlock(nn.Module):
    """x + DropPath(ShakeDrop(Linear -> [BN] -> act -> [BN] -> [Dropout] -> Linear))."""

    def __init__(self, width: int, knobs: Knobs, index: int, p_drop_path: float,
                 total: int = 1):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(width, width, bias=hidden_bias(knobs))]
        layers += normalized_activation(nn.ReLU(), width, knobs, nn.BatchNorm1d)
        if knobs.dropout > 0:
            layers.append(knobs.dropout_layer(knobs.dropout, index))
        layers.append(nn.Linear(width, width))
        self.branch = nn.Sequential(*layers)
        self.shake = shake_drop(knobs, index, total)
        self.drop_path = DropPath(p_drop_path, knobs.drop_path_generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.shake(self.branch(x)))


@register_arch("resmlp")
class ResMLP(Arch):
    """Residual MLP: input projection, `depth` residual blocks of `width`, linear head.

    Stochastic depth drops block i with probability drop_path * (i + 1) / depth
    (the linear decay rule of Huang et al. 2016); ShakeDrop uses the same rule.
    """

    capabilities = frozenset({"hidden", "residual"})
    params = {"width": width(64), "depth": depth(4)}

    def build(self, spec: ArchSpec, data: TaskData, knobs: Knobs) -> nn.Module:
        width, depth = int(self.param(spec, "width")), int(self.param(spec, "depth"))
        blocks = [
            ResBlock(width, knobs, i, knobs.drop_path * (i + 1) / depth, depth)
            for i in range(depth)
        ]
        return nn.Sequential(
            nn.Flatten(), nn.Linear(data.n_features, width), nn.ReLU(), *blocks,
            nn.Linear(width, data.n_out),
        )
