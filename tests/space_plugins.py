"""A plugin file for the search-space tests: a regularizer that cannot be tuned (an infinite
range and no declared space), one searched over its finite range, one that declares its
space and a tunable parameter."""

SPACES_PLUGIN = '''\
from regbench import Regularizer, register_regularizer
from regbench.params import Param
from regbench.tuning.space import IntUniform, LogUniform

@register_regularizer("unbounded")
class Unbounded(Regularizer):
    """A penalty with no declared search space."""
    version = "1"
    strength_range = (0.0, float("inf"))
    default_strengths = (0.1,)

@register_regularizer("bounded")
class Bounded(Regularizer):
    """A knob on a finite range: searched uniformly over it."""
    version = "1"
    strength_range = (0.0, 2.0)
    default_strengths = (0.1,)

@register_regularizer("declared")
class Declared(Regularizer):
    """A penalty that declares its space and a tunable parameter."""
    version = "1"
    strength_name = "lam"
    strength_range = (0.0, float("inf"))
    default_strengths = (0.01,)
    strength_space = LogUniform(1e-5, 1e-1)
    params = {"k": Param(3, int, lo=1, doc="a count", space=IntUniform(2, 10))}
'''
