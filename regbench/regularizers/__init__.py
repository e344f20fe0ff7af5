"""Regularizers, one file per family; each hooks into model/optimizer/loss/data/stopping."""

from regbench.regularizers import (  # noqa: F401  (register)
    augment,
    batchnorm,
    dropout,
    early_stopping,
    label_smoothing,
    mixup,
    more_data,
    none,
    norm_penalty,
    sam,
    shake_drop,
    stochastic_depth,
    swa,
    weight_decay,
)
from regbench.regularizers.base import OptimConfig, Regularizer, decay_params

__all__ = ["OptimConfig", "Regularizer", "decay_params"]
