"""More data as a regularizer: the learning curve over training-set fractions."""

from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer
from regbench.tuning.space import Uniform


@register_regularizer("more_data")
class MoreData(Regularizer):
    """Train on the first `fraction` of the (seeded) training split; `none` uses all of it.

    Subsets are nested across fractions, so the learning curve is paired by seed.
    """

    strength_name = "fraction"
    larger_is_weaker = True
    strength_range = (1e-6, 1.0)
    default_strengths = (0.25, 0.5)
    strength_space = Uniform(0.1, 1.0)
    full_strengths = (0.1, 0.25, 0.5, 0.75)

    def train_fraction(self) -> float:
        return self.strength
