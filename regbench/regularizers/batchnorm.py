"""Batch normalization after every hidden linear/conv layer."""

from regbench.archs.base import Knobs
from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer


@register_regularizer("batchnorm")
class BatchNorm(Regularizer):
    """BatchNorm before each hidden activation (the preceding layer loses its bias); strength 1=on.

    Evaluation uses the running statistics (eval mode).
    """

    strength_name = "on"
    strength_range = (0.0, 1.0)
    default_strengths = (1.0,)
    full_strengths = (1.0,)
    needs_capability = "hidden"

    def configure_model(self, knobs: Knobs) -> None:
        knobs.batchnorm = self.strength > 0
