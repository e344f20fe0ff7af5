"""regbench: a benchmark and reproducibility suite for neural-network regularization."""

from regbench.specs import SUITE_VERSION

__version__ = "0.1.0"
__all__ = ["SUITE_VERSION", "__version__"]

# What a plugin file imports (`from regbench import Regularizer, register_regularizer`),
# resolved on first use so `import regbench` stays light.
_LAZY = {"Regularizer": "regbench.interface", "Arch": "regbench.archs.base",
         "Task": "regbench.tasks.base", "register_regularizer": "regbench.registry",
         "register_arch": "regbench.registry", "register_task": "regbench.registry"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
