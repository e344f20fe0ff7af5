"""Regularizers, one file per family; each hooks into model/optimizer/loss/data/stopping."""

from regbench.regularizers import (  # noqa: F401  (register)
    adversarial,
    augment,
    batchnorm,
    confidence_penalty,
    cut,
    dropconnect,
    dropout,
    early_stopping,
    input_gradient,
    label_smoothing,
    logit_penalty,
    lookahead,
    max_norm,
    mixup,
    more_data,
    none,
    norm_penalty,
    r_drop,
    sam,
    shake_drop,
    snapshot_ensemble,
    stochastic_depth,
    swa,
    weight_decay,
)
from regbench.regularizers.base import OptimConfig, Regularizer, decay_params

__all__ = ["OptimConfig", "Regularizer", "decay_params"]
