"""Named matrices and TOML matrix files: which cells make up a benchmark run.

A matrix is a list of blocks; a block is tasks x archs x regularizers (each at its
strengths) x seeds, plus optional protocol overrides. Built-in matrices (TOML files in
regbench/matrix/builtin/) and users' files share one format:

    name = "mine"
    seeds = 3
    [[blocks]]
    tasks = ["curve", {name = "digits", label_noise = 0.2}]
    archs = ["mlp", {name = "mlp", width = [16, 64, 256]}]   # a list sweeps the value
    regularizers = ["none", {name = "l2", strengths = [1e-3, 1e-2]}, "dropout"]
    strengths = "default"        # for entries without their own: default | full | first
    protocol = {epochs = 20}     # overrides of the tasks' training protocol

Incompatible combinations (say label smoothing on a regression task) are skipped
explicitly, and `regbench list matrices` says why. The modules: `format` (the document and
its checks), `expand` (cells and skips), `composition` (which regularizers can share a
stack), `builtin` (the shipped matrices).
"""

from regbench.matrix.builtin import (
    ALL_REGULARIZERS,
    BATCHNORM_LRS,
    DEFAULT_TASKS,
    FIELD_REGULARIZERS,
    OUTPUT_REGULARIZERS,
    STEP_REGULARIZERS,
    add_regularizers,
    get,
    is_file,
    names,
    text,
)
from regbench.matrix.composition import check_composable
from regbench.matrix.expand import MAX_SEEDS, STRENGTH_SETS, Expansion, Skip
from regbench.matrix.format import BLOCK_KEYS, MATRIX_KEYS, MAX_CELLS, Matrix

__all__ = [
    "ALL_REGULARIZERS", "BATCHNORM_LRS", "BLOCK_KEYS", "DEFAULT_TASKS", "FIELD_REGULARIZERS",
    "MATRIX_KEYS", "MAX_CELLS", "MAX_SEEDS", "OUTPUT_REGULARIZERS", "STEP_REGULARIZERS",
    "STRENGTH_SETS", "Expansion", "Matrix", "Skip", "add_regularizers", "check_composable",
    "get", "is_file", "names", "text",
]
