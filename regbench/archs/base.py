"""What an architecture builder receives: the task's shapes and the regularizers' knobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from torch import nn

from regbench.inits import init_weights  # noqa: F401  (re-exported)
from regbench.interface import DropoutFactory, Knobs, native_dropout  # noqa: F401  (re-exported)
from regbench.params import Param, check_values, default
from regbench.specs import ArchSpec
from regbench.tasks.base import Task, TaskData

WIDTH_RANGE = {"lo": 1, "hi": 1_000_000}  # layer widths and channel counts
DEPTH_RANGE = {"lo": 1, "hi": 1000}


def width(default: int) -> Param:
    """A layer width or channel count parameter."""
    return Param(default, int, **WIDTH_RANGE)


def depth(default: int) -> Param:
    """A depth (number of layers or blocks) parameter."""
    return Param(default, int, **DEPTH_RANGE)


class Arch:
    """Base of every architecture: declares accepted inputs, capabilities and parameters."""

    name: ClassVar[str]
    inputs: ClassVar[frozenset[str]] = frozenset({"vector"})
    # "hidden": has hidden layers (dropout, batchnorm apply); "residual": residual blocks
    capabilities: ClassVar[frozenset[str]] = frozenset({"hidden"})
    params: ClassVar[dict[str, Any]] = {}

    def check(self, spec: ArchSpec) -> None:
        check_values("architecture", spec.name, dict(spec.params), self.params)

    def skip_reason(self, spec: ArchSpec, task: Task) -> str | None:
        """Why this architecture cannot run `task`, or None."""
        if not self.inputs & task.inputs:
            return (
                f"{spec.name} needs {'/'.join(sorted(self.inputs))} inputs; "
                f"{task.name} gives {'/'.join(sorted(task.inputs))}"
            )
        return None

    def param(self, spec: ArchSpec, key: str) -> Any:
        return spec.get(key, default(self.params[key]))

    def build(self, spec: ArchSpec, data: TaskData, knobs: Knobs) -> nn.Module:
        raise NotImplementedError


# Where BatchNorm sits around a hidden activation when the `batchnorm` regularizer is on
# (Knobs.batchnorm_position; "before" is the usual place).
BATCHNORM_POSITIONS = ("before", "after")


def batchnorm_position(knobs: Knobs) -> str | None:
    """None when batchnorm is off, else "before" or "after" the hidden activation."""
    if not knobs.batchnorm:
        return None
    return knobs.batchnorm_position


def hidden_bias(knobs: Knobs) -> bool:
    """Whether a hidden layer keeps its bias: not when BatchNorm follows it directly (its
    shift would be cancelled by the normalization)."""
    return batchnorm_position(knobs) != "before"


def normalized_activation(act: nn.Module, n: int, knobs: Knobs,
                          norm: Callable[[int], nn.Module]) -> list[nn.Module]:
    """[norm, act], [act, norm] or [act]: the activation with BatchNorm where the knobs say."""
    pos = batchnorm_position(knobs)
    if pos == "before":
        return [norm(n), act]
    if pos == "after":
        return [act, norm(n)]
    return [act]


def hidden_stack(
    n_in: int, widths: list[int], act: Callable[[], nn.Module], knobs: Knobs
) -> tuple[list[nn.Module], int]:
    """Linear -> [BatchNorm] -> activation -> [Dropout] for each width (BatchNorm after the
    activation when the knobs say so); returns (layers, n_out)."""
    layers: list[nn.Module] = []
    for i, w in enumerate(widths):
        layers.append(nn.Linear(n_in, w, bias=hidden_bias(knobs)))
        layers += normalized_activation(act(), w, knobs, nn.BatchNorm1d)
        if knobs.dropout > 0:
            layers.append(knobs.dropout_layer(knobs.dropout, i))
        n_in = w
    return layers, n_in
