"""Early stopping on the validation loss."""

from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer
from regbench.tuning.space import IntUniform


@register_regularizer("early_stopping")
class EarlyStopping(Regularizer):
    """Stop after `patience` epochs without a lower validation loss; restore the best weights."""

    strength_name = "patience"
    larger_is_weaker = True
    needs_validation = True
    strength_range = (1.0, 10_000.0)
    default_strengths = (3.0, 10.0)
    strength_space = IntUniform(2, 30)
    full_strengths = (2.0, 5.0, 10.0, 20.0)

    def patience(self) -> int | None:
        return int(self.strength)
