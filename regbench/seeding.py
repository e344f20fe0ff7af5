"""The one place every seed comes from.

A seed is a pure function of (stream, seed index, scope). The scope of each stream is
chosen so that cells which differ only in the regularizer share their data split,
initial weights and data order: comparisons against `none` are then paired, seed by
seed. Streams that only a regularizer uses (dropout masks, augmentation noise) are
scoped by the whole cell.

| stream       | scope                    | used for                                   |
|--------------|--------------------------|--------------------------------------------|
| data         | task                     | synthetic data, split, label noise         |
| init         | task, arch               | initial weights                            |
| order        | task                     | minibatch order                            |
| torch        | cell                     | torch's global generator inside a cell     |
| globals      | cell                     | numpy's and Python's global generators     |
| dropout      | cell                     | fused dropout (seed, offset) per layer     |
| augment      | cell                     | augmentation noise and shifts              |
| drop_path    | cell                     | stochastic-depth masks                     |
| regularizer  | cell, regularizer, name  | `Regularizer.generator(name)`: any other   |
| tune         | study                    | the sampler of an equal-budget study       |
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator

import numpy as np
import torch

STREAMS = ("data", "init", "order", "torch", "dropout", "augment", "drop_path", "regularizer",
           "tune", "globals")


def derive(stream: str, seed: int, *scope: object) -> int:
    """A 63-bit non-negative seed for `stream`, from the seed index and a scope."""
    if stream not in STREAMS:
        raise ValueError(f"unknown seed stream {stream!r}; valid choices: {', '.join(STREAMS)}")
    if seed < 0:
        raise ValueError(f"seed index must be >= 0, got {seed}")
    text = "|".join([stream, str(int(seed)), *map(str, scope)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def generator(stream: str, seed: int, *scope: object,
              device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh torch.Generator (on `device`, CPU by default) seeded from `derive`."""
    g = torch.Generator(device=device)
    g.manual_seed(derive(stream, seed, *scope))
    return g


def numpy_rng(stream: str, seed: int, *scope: object) -> np.random.Generator:
    """A fresh numpy Generator seeded from `derive`."""
    return np.random.default_rng(derive(stream, seed, *scope))


@contextlib.contextmanager
def kept_global_generators() -> Iterator[None]:
    """numpy's and Python's global generators restored, whatever the block draws or seeds:
    around a cell (which seeds them from `derive("globals", ...)`) and around a package
    that draws from them (mnist1d's dataset maker)."""
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def from_torch_default() -> int:
    """A 63-bit seed drawn from torch's default generator, for a module built without one
    (`regbench.nn.FusedDropout(p)`): `torch.manual_seed` then controls it, as it controls
    `nn.Dropout`'s masks. The one place the package reads torch's global generator."""
    return int(torch.randint(0, 2**63 - 1, (), dtype=torch.int64).item())
