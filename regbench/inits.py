"""Initial-weight schemes (the `init` protocol field): each is a function of a seed alone."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["INIT_SCHEMES", "init_model", "init_weights"]


@torch.no_grad()
def init_weights(model: nn.Module, gen: torch.Generator) -> None:
    """PyTorch's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from `gen`.

    Module constructors draw from the global generator; redrawing every weight from a
    seeded generator makes the initial weights a function of the seed alone.
    """
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)) and weight is not None:
            fan_in = weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in)
            weight.uniform_(-bound, bound, generator=gen)
            if module.bias is not None:
                module.bias.uniform_(-bound, bound, generator=gen)


def _init_regbench(model: nn.Module, gen_seed: int) -> None:
    g = torch.Generator()
    g.manual_seed(gen_seed)
    init_weights(model, g)


def _init_torch(model: nn.Module, gen_seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(gen_seed)
        for module in model.modules():
            if hasattr(module, "reset_parameters") and any(
                    True for _ in module.parameters(recurse=False)):
                module.reset_parameters()


@torch.no_grad()
def _init_he(model: nn.Module, gen_seed: int) -> None:
    g = torch.Generator()
    g.manual_seed(gen_seed)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_uniform_(module.weight, generator=g)
            if module.bias is not None:
                module.bias.zero_()


# name -> init(model, gen_seed); the "init" protocol field takes these names
INIT_SCHEMES: dict[str, Callable[[nn.Module, int], None]] = {
    "regbench": _init_regbench, "torch": _init_torch, "he": _init_he,
}


def init_model(model: nn.Module, scheme: str, gen_seed: int) -> None:
    """Initial weights as a function of `gen_seed` alone.

    `regbench`: every Linear/Conv weight and bias from U(+-1/sqrt(fan_in)) drawn from a
    generator seeded with `gen_seed`. `torch`: each layer's own `reset_parameters`, in module
    order, with torch's generator seeded with `gen_seed` (what `torch.manual_seed(s)` before
    building the model gives, as the source documents' code does). `he`: the MNIST-1D and
    Understanding Deep Learning notebooks' `nn.init.kaiming_uniform_` on every Linear/Conv
    weight (U(+-sqrt(6 / fan_in))) from a generator seeded with `gen_seed`, biases 0.
    Other layers (batchnorm) keep their constructor's constant init under every scheme.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid choices: "
                         f"{', '.join(INIT_SCHEMES)}")
    INIT_SCHEMES[scheme](model, gen_seed)


@torch.no_grad()
def scale_init(model: nn.Module, factor: float) -> None:
    """Multiply every weight matrix and conv kernel (parameters of 2 or more dimensions) by
    `factor`; biases and norm parameters keep their init (the `init_scale` protocol field)."""
    for p in model.parameters():
        if p.dim() >= 2:
            p.mul_(factor)
