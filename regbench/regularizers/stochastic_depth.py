"""Stochastic depth for residual architectures."""

from regbench import devices
from regbench.archs.base import Knobs
from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer
from regbench.tuning.space import Uniform


@register_regularizer("stochastic_depth")
class StochasticDepth(Regularizer):
    """Drop residual blocks per sample; the last block's rate is p, decaying linearly to 0."""

    strength_name = "p"
    strength_range = (0.0, 0.99)
    default_strengths = (0.1, 0.3)
    strength_space = Uniform(0.0, 0.5)
    full_strengths = (0.1, 0.2, 0.3, 0.5)
    needs_capability = "residual"
    seed_streams = {"drop_path": "drop_path"}  # the masks' seeds as they always were

    def configure_model(self, knobs: Knobs) -> None:
        knobs.drop_path = self.strength
        knobs.drop_path_generator = self.generator(
            "drop_path", devices.generator_device(self.cell.device))
