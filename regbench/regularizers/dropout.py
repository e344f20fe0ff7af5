"""Dropout between hidden layers, with a native or a fused-kernel backend."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from regbench.archs.base import DropoutFactory, Knobs, native_dropout
from regbench.params import Param
from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer
from regbench.tuning.space import Uniform

# seed 004's sweep: p in {0, 0.1, ..., 1.0}
P_SWEEP = tuple(round(0.1 * i, 1) for i in range(1, 11))


def _fused(reg: Regularizer) -> DropoutFactory:
    from regbench.nn import FusedDropout  # the kernels are only imported when asked for

    def make(p: float, index: int) -> nn.Module:
        return FusedDropout(p, seed=reg.seed("dropout", index))

    return make


BACKENDS: dict[str, Callable[[Regularizer], DropoutFactory]] = {
    "native": lambda reg: native_dropout,  # nn.Dropout, seeded through torch's generator
    "fused": _fused,  # regbench.nn.FusedDropout: Philox keyed by a seed from seeding.py
}


@register_regularizer("dropout")
class Dropout(Regularizer):
    """Dropout with probability p after every hidden activation; `backend` native|fused."""

    strength_name = "p"
    strength_range = (0.0, 1.0)
    default_strengths = (0.1, 0.5)
    strength_space = Uniform(0.0, 0.8)
    full_strengths = P_SWEEP
    needs_capability = "hidden"
    params = {"backend": Param("native", choices=tuple(BACKENDS))}
    provides = frozenset({"dropout"})
    seed_streams = {"dropout": "dropout"}  # the fused masks' seeds as they always were

    def configure_model(self, knobs: Knobs) -> None:
        knobs.dropout = self.strength
        knobs.dropout_layer = BACKENDS[self.param("backend")](self)
