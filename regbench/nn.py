"""Modules built on the fused kernels.

`FusedDropout` is a drop-in for `nn.Dropout` whose masks come from (seed, offset) instead of
the global RNG: reproducible, nothing of size numel saved for backward, and the (seed, offset)
state travels in `state_dict`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from regbench.kernels import dropout as _dropout
from regbench.kernels.reference import counters_used

__all__ = ["FusedDropout"]


class FusedDropout(nn.Module):
    """Dropout with a counter-based mask (Philox4x32-10 keyed by `seed` at counter `offset`).

    Eval mode and `p == 0` return the input itself. Each training call uses counters
    `offset .. offset + ceil(numel / 4) - 1` and then advances `offset` by `ceil(numel / 4)`.
    `seed` and `offset` are int64 buffers, so they are saved in `state_dict`.
    """

    seed: Tensor
    offset: Tensor

    def __init__(self, p: float, seed: int, offset: int = 0) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise TypeError(f"dropout probability p must be a float, got {p!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1], got {p!r}")
        for name, v in (("seed", seed), ("offset", offset)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"FusedDropout {name} must be an int, got {v!r}")
            if not 0 <= v < 2**63:
                raise ValueError(f"FusedDropout {name} must be a non-negative int64, got {v}")
        self.p = float(p)
        self.register_buffer("seed", torch.tensor(seed, dtype=torch.int64))
        self.register_buffer("offset", torch.tensor(offset, dtype=torch.int64))

    def forward(self, x: Tensor) -> Tensor:
        """Apply dropout (training) or return `x` unchanged (eval, or p == 0)."""
        if not self.training or self.p == 0.0:
            return x
        y = _dropout(x, self.p, self.seed, self.offset)
        # Rebind instead of add_: the op may keep the old offset tensor for backward (under
        # torch.compile the partitioner can save the graph input itself), so never mutate it.
        offset = self.offset + counters_used(x.numel())
        if torch.compiler.is_compiling():
            self.offset = offset
        else:  # the same rebinding, without Module.__setattr__'s cost (~10 us a call)
            self._buffers["offset"] = offset
        return y

    def extra_repr(self) -> str:
        return f"p={self.p}, seed={int(self.seed)}, offset={int(self.offset)}"
