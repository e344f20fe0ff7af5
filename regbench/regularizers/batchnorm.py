"""Batch normalization after every hidden linear/conv layer."""

from regbench.archs.base import BATCHNORM_POSITIONS, Arch, Knobs
from regbench.params import Param
from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer
from regbench.specs import RegSpec
from regbench.tasks.base import Task
from regbench.tuning.space import Choice


@register_regularizer("batchnorm")
class BatchNorm(Regularizer):
    """BatchNorm at each hidden activation, before it by default (`position`); strength 1=on.

    `position = "before"` (Ioffe & Szegedy 2015, the usual place): layer -> BN -> activation,
    and the layer loses its bias (BN's shift replaces it). `position = "after"`: layer ->
    activation -> BN, the layer keeps its bias (seed 001: "typically applied before the
    activation function, though some research suggests applying it after the activation can
    be beneficial"). Dropout, where on, follows both. Evaluation uses the running statistics
    (eval mode).
    """

    strength_name = "on"
    strength_range = (0.0, 1.0)
    default_strengths = (1.0,)
    strength_space = Choice((1.0,))  # on; what is tuned is where it sits
    full_strengths = (1.0,)
    needs_capability = "hidden"
    params = {"position": Param("before", choices=BATCHNORM_POSITIONS,
                                doc="BatchNorm before or after the hidden activation",
                                space=Choice(BATCHNORM_POSITIONS))}

    @classmethod
    def skip_reason(cls, task: Task, arch: Arch, spec: RegSpec | None = None) -> str | None:
        if "intrinsic_batchnorm" in arch.capabilities:
            return (f"batchnorm is part of {arch.name} (every conv is followed by BatchNorm, "
                    "in its none cell too)")
        return super().skip_reason(task, arch, spec)

    def configure_model(self, knobs: Knobs) -> None:
        knobs.batchnorm = self.strength > 0
        knobs.batchnorm_position = self.param("position")
