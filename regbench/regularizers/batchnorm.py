"""Batch normalization after every hidden linear/conv layer."""

from regbench.archs.base import Arch, Knobs
from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer
from regbench.specs import RegSpec
from regbench.tasks.base import Task


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

    @classmethod
    def skip_reason(cls, task: Task, arch: Arch, spec: RegSpec | None = None) -> str | None:
        if "intrinsic_batchnorm" in arch.capabilities:
            return (f"batchnorm is part of {arch.name} (every conv is followed by BatchNorm, "
                    "in its none cell too)")
        return super().skip_reason(task, arch, spec)

    def configure_model(self, knobs: Knobs) -> None:
        knobs.batchnorm = self.strength > 0
