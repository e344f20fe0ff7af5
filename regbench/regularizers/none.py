"""The unregularized baseline."""

from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer


@register_regularizer("none")
class NoRegularizer(Regularizer):
    """No regularization: the baseline every other cell is compared with (strength 0)."""

    strength_range = (0.0, 0.0)
    default_strengths = (0.0,)
    full_strengths = (0.0,)
