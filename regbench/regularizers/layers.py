"""Which layers the weight-level regularizers (DropConnect, max-norm) touch."""

from __future__ import annotations

from torch import nn

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def hidden_layers(model: nn.Module) -> list[nn.Module]:
    """Every Linear/Conv layer except the output layer (the last Linear in module order):
    the layers whose outputs are hidden units."""
    layers = [m for m in model.modules() if isinstance(m, WEIGHT_LAYERS)]
    linears = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
    if linears:
        del layers[linears[-1]]
    return layers
