"""Readers for the official distribution formats of the standard vision sets, in numpy.

- idx (MNIST, Fashion-MNIST): a big-endian header - two zero bytes, a type code (0x08 =
  unsigned byte), the number of dimensions - then one 4-byte big-endian size per
  dimension, then the values row-major. Gzipped (`.gz`) or not.
- CIFAR python batches: a pickle of a dict with `data` (N x 3072 uint8: 1024 red, then
  1024 green, then 1024 blue values, each 32x32 row-major) and `labels` (CIFAR-10) or
  `fine_labels` (CIFAR-100). The pickles are read by a restricted unpickler that only
  rebuilds numpy arrays, lists and strings: a data file can never run code.

Every size is checked against what the header (or the dict) promises, so a truncated or
padded file is an error that names it, never a silently short read.
"""

from __future__ import annotations

import gzip
import importlib
import io
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from regbench.errors import DataError

_NUMPY_CORE = "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"
IDX_TYPES = {0x08: np.dtype(np.uint8)}  # the only type the MNIST-family files use


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it ends in .gz; a broken gzip is a DataError."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            return gzip.decompress(raw)
        return raw
    except (EOFError, OSError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(f"{path}: cannot be read ({type(exc).__name__}: {exc}); "
                        "the file is truncated or not gzip data - download it again") from None


def read_idx(path: Path) -> np.ndarray:
    """An idx-ubyte file as a uint8 array of the shape its header gives."""
    blob = read_bytes(path)
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0:
        raise DataError(f"{path}: not an idx file (magic number {blob[:4].hex() or 'missing'}; "
                        "expected 0000 08 NN)")
    code, ndim = blob[2], blob[3]
    if code not in IDX_TYPES:
        raise DataError(f"{path}: idx type code 0x{code:02x} is not supported "
                        f"(expected 0x08, unsigned byte)")
    header = 4 + 4 * ndim
    if ndim == 0 or len(blob) < header:
        raise DataError(f"{path}: idx header is cut short ({len(blob)} bytes, {ndim} dims)")
    dims = tuple(int.from_bytes(blob[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_TYPES[code]
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(blob) != expected:
        what = "truncated" if len(blob) < expected else "longer than its header says"
        raise DataError(f"{path}: {what}: {len(blob)} bytes, the header {dims} promises "
                        f"{expected}; download the file again")
    return np.frombuffer(blob, dtype=dtype, offset=header).reshape(dims)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only numpy arrays and plain containers (what the CIFAR batches hold)."""

    NUMPY = {("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in (("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")):
            return super().find_class(module, name)
        parts = module.split(".")
        if (len(parts) == 3 and parts[0] == "numpy" and parts[1] in ("core", "_core")
                and (parts[2], name) in self.NUMPY):
            return getattr(importlib.import_module(f"{_NUMPY_CORE}.{parts[2]}"), name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """(images N x 3072 uint8, labels N int64) from one CIFAR python batch file."""
    try:
        with path.open("rb") as fh:
            d = _ArrayUnpickler(io.BufferedReader(fh), encoding="bytes").load()
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, OSError) as exc:
        raise DataError(f"{path}: not a readable CIFAR python batch ({type(exc).__name__}: "
                        f"{exc}); the file is truncated or not the python version - "
                        "download it again") from None
    if not isinstance(d, dict):
        raise DataError(f"{path}: a CIFAR batch is a pickled dict, got {type(d).__name__}")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    for key in ("data", label_key):
        if key not in d:
            raise DataError(f"{path}: no {key!r} entry; found {sorted(d)}")
    data = np.asarray(d["data"])
    labels = np.asarray(d[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' is {data.dtype} {data.shape}; expected uint8 N x 3072")
    if labels.ndim != 1 or len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {labels.shape} {label_key!r}; "
                        "the file is truncated or corrupt")
    return data, labels.astype(np.int64)
