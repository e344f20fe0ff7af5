"""ShakeDrop for residual architectures (Yamada et al. 2019)."""

from __future__ import annotations

from regbench import devices
from regbench.interface import Knobs, Regularizer
from regbench.registry import register_regularizer
from regbench.tuning.space import Uniform


@register_regularizer("shake_drop")
class ShakeDrop(Regularizer):
    """ShakeDrop (Yamada et al. 2019, "ShakeDrop regularization for deep residual learning").

    Every residual block's branch F(x) is multiplied, per sample, by b + alpha - b * alpha in
    the forward pass and its gradient by b + beta - b * beta in the backward pass (the
    paper's eq. 8: b ~ Bernoulli(1 - p_l), alpha ~ U[-1, 1], beta ~ U[0, 1], the ranges the
    paper finds best, drawn per sample, its "image-level" variant); evaluation multiplies the
    branch by E[b + alpha - b * alpha] = 1 - p_l (the paper's test-time form). The strength is
    p_L, the last block's drop probability: block l of L uses p_l = p_L * l / L (the linear
    decay rule the paper takes from stochastic depth; the paper's p_L is 0.5). The draws come
    from the cell's `shake_drop` stream (`Regularizer.generator`). The architectures hold
    the modules (regbench.archs.resmlp.ShakeDrop): `resmlp` and `resnet`.
    """

    strength_name = "p"
    strength_range = (0.0, 1.0)
    default_strengths = (0.25, 0.5)
    strength_space = Uniform(0.0, 0.75)
    full_strengths = (0.1, 0.25, 0.5, 0.75)
    needs_capability = "residual"

    def configure_model(self, knobs: Knobs) -> None:
        knobs.shake_drop = self.strength
        knobs.shake_drop_generator = self.generator(
            "shake_drop", devices.generator_device(self.cell.device))
