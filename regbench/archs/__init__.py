"""Architectures: model builders that declare which inputs they accept."""

from regbench.archs import cnn, mlp, resmlp, resnet, signal  # noqa: F401  (register)
from regbench.archs.base import Arch, Knobs, init_weights

__all__ = ["Arch", "Knobs", "init_weights"]
