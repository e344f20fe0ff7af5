"""Modules built on the fused kernels.

`FusedDropout` is a drop-in for `nn.Dropout` (same `p` and `inplace` arguments, same
training/eval behaviour and output layout) whose masks come from (seed, offset) instead of
the global RNG: reproducible, nothing of size numel saved for backward, and the (seed, offset)
state travels in `state_dict`. `replace_dropout` swaps every `nn.Dropout` of a model for one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from regbench import seeding
from regbench.kernels import dropout as _dropout
from regbench.kernels.reference import counters_used

__all__ = ["FusedDropout", "replace_dropout"]


def _check_int64(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"FusedDropout {name} must be an int, got {v!r}")
    if not 0 <= v < 2**63:
        raise ValueError(f"FusedDropout {name} must be a non-negative int64, got {v}")
    return v


def _as_int(t: Tensor, name: str) -> int:
    if t.dtype != torch.int64 or t.numel() != 1:
        raise TypeError(f"FusedDropout {name} must be a one-element int64 tensor, got {t!r}")
    return int(t)


class FusedDropout(nn.Module):
    """Dropout with a counter-based mask (Philox4x32-10 keyed by `seed` at counter `offset`).

    `FusedDropout(p=0.5, inplace=False)` takes `nn.Dropout`'s arguments; with `seed=None` the
    seed is drawn from torch's default generator when the module is built (so
    `torch.manual_seed` controls it). Eval mode and `p == 0` return the input itself. Each
    training call uses counters `offset .. offset + ceil(numel / 4) - 1` and then advances
    `offset` by `ceil(numel / 4)`. `seed` and `offset` are int64 buffers, so they are saved in
    `state_dict`. The output keeps the input's memory format (the mask follows the logical
    index, so a channels_last input gets the contiguous input's values, permuted).
    """

    seed: Tensor
    offset: Tensor

    def __init__(self, p: float = 0.5, inplace: bool = False, seed: int | None = None,
                 offset: int = 0) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise TypeError(f"dropout probability p must be a float, got {p!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1], got {p!r}")
        if not isinstance(inplace, bool):
            raise TypeError(f"FusedDropout inplace must be a bool, got {inplace!r}")
        seed = seeding.from_torch_default() if seed is None else _check_int64("seed", seed)
        self.p = float(p)
        self.inplace = inplace
        self.register_buffer("seed", torch.tensor(seed, dtype=torch.int64))
        self.register_buffer("offset", torch.tensor(_check_int64("offset", offset),
                                                    dtype=torch.int64))

    def forward(self, x: Tensor) -> Tensor:
        """Apply dropout (training) or return `x` unchanged (eval, or p == 0)."""
        if not self.training or self.p == 0.0:
            return x
        bufs = self._buffers  # not self.seed: Module.__getattr__ costs a microsecond a name
        seed, offset = bufs["seed"], bufs["offset"]
        if torch.compiler.is_compiling():
            y = _dropout(x, self.p, seed, offset, inplace=self.inplace)
            # Rebind instead of add_: the op may keep the old offset tensor for backward (the
            # partitioner can save the graph input itself), so never mutate it.
            self.offset = offset + counters_used(x.numel())
            return y
        if x.is_cpu and seed.is_cpu and offset.is_cpu:  # eager CPU: the int fast path
            y = _dropout(x, self.p, _as_int(seed, "seed"), _as_int(offset, "offset"),
                         inplace=self.inplace)
        else:  # CUDA: the kernel reads the buffers on the device (no host sync)
            y = _dropout(x, self.p, seed, offset, inplace=self.inplace)
        # the same rebinding, without Module.__setattr__'s cost (~10 us a call)
        bufs["offset"] = offset + counters_used(x.numel())
        return y

    def extra_repr(self) -> str:
        return (f"p={self.p}, inplace={self.inplace}, seed={int(self.seed)}, "
                f"offset={int(self.offset)}")


def replace_dropout(model: nn.Module, seed: int | None = None) -> nn.Module:
    """Swap every `nn.Dropout` in `model` (nested ones too) for a `FusedDropout` with the same
    `p`, `inplace` and training mode; returns the model (modified in place; a bare
    `nn.Dropout` is returned replaced).

    Each dropout gets its own seed stream, derived from `seed` and its qualified name
    (`seeding.derive("dropout", seed, "replace_dropout", name)`), so the same model and seed
    always give the same masks; `seed=None` draws the base seed from torch's default
    generator. A module instance used in several places stays one shared `FusedDropout`.
    """
    base = seeding.from_torch_default() if seed is None else _check_int64("seed", seed)
    made: dict[int, FusedDropout] = {}

    def fused(name: str, old: nn.Dropout) -> FusedDropout:
        if id(old) not in made:
            new = FusedDropout(old.p, inplace=old.inplace,
                               seed=seeding.derive("dropout", base, "replace_dropout", name))
            made[id(old)] = new.train(old.training)
        return made[id(old)]

    if isinstance(model, nn.Dropout):
        return fused("", model)
    for name, parent in list(model.named_modules()):
        # _modules, not named_children: that one skips a second slot holding the same module
        for child_name, child in list(parent._modules.items()):
            if isinstance(child, nn.Dropout):
                setattr(parent, child_name, fused(f"{name}.{child_name}".lstrip("."), child))
    return model
