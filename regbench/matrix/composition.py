"""Which regularizers can share a stack: the rule of regbench.interface.stack_conflict (a
name twice, two owners of one part of training, a required part no member provides), as a
matrix error."""

from __future__ import annotations

from regbench.errors import MatrixError
from regbench.interface import stack_conflict
from regbench.registry import REGULARIZERS
from regbench.specs import RegSpec


def check_composable(stack: tuple[RegSpec, ...]) -> None:
    """Refuse a stack with a duplicate, or two regularizers that own the same part of the
    training setup (the step, the optimizer, what is evaluated...); `none` composes with
    everything."""
    problem = stack_conflict((s.name, s.label(), REGULARIZERS.get(s.name)) for s in stack)
    if problem:
        raise MatrixError(problem)
