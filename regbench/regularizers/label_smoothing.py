"""Label smoothing of the cross-entropy targets."""

from typing import Any

from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer
from regbench.tuning.space import Uniform


@register_regularizer("label_smoothing")
class LabelSmoothing(Regularizer):
    """Cross-entropy with label smoothing eps (training loss only; metrics use plain CE)."""

    strength_name = "eps"
    strength_range = (0.0, 1.0)
    default_strengths = (0.1, 0.2)
    strength_space = Uniform(0.0, 0.3)
    full_strengths = (0.05, 0.1, 0.2, 0.3)
    needs_kind = "classification"

    def loss_kwargs(self) -> dict[str, Any]:
        return {"label_smoothing": self.strength}
