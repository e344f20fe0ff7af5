"""The built-in matrices: TOML files shipped in the package (regbench/matrix/builtin/),
in the same format users write; `regbench list matrices --toml NAME` prints one."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from regbench.errors import MatrixError, UnknownNameError
from regbench.matrix.expand import _entry
from regbench.matrix.format import Matrix
from regbench.registry import REGULARIZERS

# Names code refers to (tests, claims); tests/test_matrix.py checks each against the files.
# The core twelve: every one on every default task, at two strengths, in `default`.
ALL_REGULARIZERS = [
    "none", "l1", "l2", "weight_decay", "adamw", "dropout", "batchnorm", "early_stopping",
    "augment", "more_data", "stochastic_depth", "label_smoothing",
]
# Regularizers written on the training-step hooks (mixed targets, an owned step, an averaged
# evaluated model).
STEP_REGULARIZERS = ["mixup", "sam", "swa"]
# The field's regularizers beyond the twelve first built-ins (Regularization Cocktails, seed
# 002, the dropout paper), written on the same hooks.
FIELD_REGULARIZERS = ["dropconnect", "max_norm", "cutout", "cutmix", "lookahead",
                      "adversarial", "snapshot_ensemble"]
# Terms of the batch and the model's outputs (the loss hook).
OUTPUT_REGULARIZERS = ["confidence_penalty", "logit_penalty", "input_gradient", "r_drop"]
DEFAULT_TASKS = ["curve", "periodic", "digits", "breast_cancer", "diabetes"]
# the learning rates of `batchnorm-lr` (one block each), which its claim reads
BATCHNORM_LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def _folder() -> Path:
    return Path(str(resources.files("regbench.matrix") / "builtin"))


def names() -> list[str]:
    """The built-in matrices, in the order `regbench list matrices` shows them."""
    order = ["smoke", "default", "full", "mnist1d-paper", "double-descent", "batchnorm-lr",
             "vision", "max-norm-lr", "cocktails", "tuned", "openml-cc18", "cc18-small",
             "seeds"]
    found = sorted(p.stem for p in _folder().glob("*.toml"))
    return [n for n in order if n in found] + [n for n in found if n not in order]


def text(name: str) -> str:
    """The TOML of built-in matrix `name`, as shipped."""
    if name not in names():
        raise UnknownNameError("built-in matrix", name, names())
    return (_folder() / f"{name}.toml").read_text(encoding="utf-8")


def is_file(name_or_path: str) -> bool:
    """Whether `--matrix name_or_path` names a matrix file (else a built-in's name)."""
    return name_or_path.endswith(".toml") or Path(name_or_path).is_file()


def get(name_or_path: str) -> Matrix:
    """A built-in matrix by name, or a matrix from a .toml file."""
    if is_file(name_or_path):
        return Matrix.from_toml(name_or_path)
    if name_or_path not in names():
        raise UnknownNameError("matrix (or a .toml file)", name_or_path, names())
    doc = tomllib.loads(text(name_or_path))
    return Matrix.from_dict({"name": name_or_path, **doc}, source=name_or_path)


def add_regularizers(m: Matrix, names: list[str]) -> Matrix:
    """`m` with the regularizers `names` (at their default strengths) added to every block
    that has `none`: a new regularizer beside the built-ins on the same tasks and seeds."""
    for name in names:
        if not REGULARIZERS.get(name).default_strengths:
            raise MatrixError(f"regularizer {name!r} declares no default_strengths to add")
    blocks = []
    for block in m.blocks:
        regs = list(block["regularizers"])
        have = {_entry(e, "regularizer")[0] for e in regs}
        if "none" in have:
            regs += [{"name": n, "strengths": list(REGULARIZERS.get(n).default_strengths)}
                     for n in names if n not in have]
        blocks.append({**block, "regularizers": regs})
    if blocks == m.blocks:
        raise MatrixError(f"matrix {m.name!r} has no block with 'none' (and without "
                          f"{', '.join(names)}) to add {', '.join(names)} to")
    return Matrix.from_dict({"name": m.name, "description": m.description
                             + f" (+ {', '.join(names)})", "seeds": m.seeds,
                             "blocks": blocks}, source=m.name)
