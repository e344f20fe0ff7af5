"""regbench: a benchmark and reproducibility suite for neural-network regularization."""

from regbench.specs import SUITE_VERSION

__version__ = "0.1.0"
__all__ = ["SUITE_VERSION", "__version__"]
