"""The regularizer interface (`regbench.interface.Regularizer`), re-exported here.

A regularizer never names a task. It declares what it needs (a task kind, an
architecture capability) and the matrix skips combinations that lack it, saying why.
"""

from regbench.interface import Batch, OptimConfig, Regularizer, TrainContext, decay_params

__all__ = ["Batch", "OptimConfig", "Regularizer", "TrainContext", "decay_params"]
