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


CHUNK = 1 << 22  # bytes read at a time: a file is never held twice, and a bad one stops early


def _open(path: Path) -> Any:
    """A binary stream of the file's bytes, decompressed on the fly when it ends in .gz."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _idx_header(path: Path, fh: Any) -> tuple[tuple[int, ...], np.dtype, int]:
    """(dims, dtype, header length) from the first bytes of an idx stream: the magic number
    is checked before anything else is read."""
    head = fh.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"{path}: not an idx file (magic number {head.hex() or 'missing'}; "
                        "expected 0000 08 NN)")
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        raise DataError(f"{path}: idx type code 0x{code:02x} is not supported "
                        f"(expected 0x08, unsigned byte)")
    raw_dims = fh.read(4 * ndim)
    if ndim == 0 or len(raw_dims) < 4 * ndim:
        raise DataError(f"{path}: idx header is cut short ({4 + len(raw_dims)} bytes, "
                        f"{ndim} dims)")
    dims = tuple(int.from_bytes(raw_dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
    return dims, IDX_TYPES[code], 4 + 4 * ndim


def _idx_payload(path: Path, keep: bool = True,
                 each: Any = None) -> tuple[tuple[int, ...], bytes | None]:
    """The dims of an idx file and (with `keep`) its payload, read in chunks after the header;
    `each(offset, chunk)` sees every chunk. A file (a stream, for .gz) shorter or longer than
    its header promises is a DataError that says so; an uncompressed file's length is checked
    against its size on disk before its payload is read."""
    got = 0
    header, dims = 0, ()
    try:
        with _open(path) as fh:
            dims, dtype, header = _idx_header(path, fh)
            expected = int(np.prod(dims)) * dtype.itemsize
            if path.suffix != ".gz":
                size = path.stat().st_size
                if size != header + expected:
                    _idx_size_error(path, size, dims, header + expected)
                if not keep and each is None:
                    return dims, None  # the size on disk says it all: nothing to read
            parts = []
            while got < expected:
                chunk = fh.read(min(CHUNK, expected - got))
                if not chunk:
                    break
                if each is not None:
                    each(got, chunk)
                if keep:
                    parts.append(chunk)
                got += len(chunk)
            extra = len(fh.read(1))  # one byte past the promise is enough to refuse it
    except (EOFError, OSError, zlib.error) as exc:  # BadGzipFile is an OSError
        at = f" after {header + got} decompressed bytes" if header else ""
        raise DataError(f"{path}: cannot be read{at} ({type(exc).__name__}: {exc}); the file "
                        "is truncated or not gzip data - download it again") from None
    if extra:
        raise DataError(f"{path}: longer than its header says: the header {dims} promises "
                        f"{header + expected} bytes; download the file again")
    if got != expected:
        _idx_size_error(path, header + got, dims, header + expected)
    return dims, b"".join(parts) if keep else None


def _idx_size_error(path: Path, size: int, dims: tuple[int, ...], expected: int) -> None:
    what = "truncated" if size < expected else "longer than its header says"
    raise DataError(f"{path}: {what}: {size} bytes, the header {dims} promises "
                    f"{expected}; download the file again")


def read_idx(path: Path) -> np.ndarray:
    """An idx-ubyte file as a uint8 array of the shape its header gives."""
    dims, blob = _idx_payload(path)
    return np.frombuffer(blob, dtype=IDX_TYPES[0x08]).reshape(dims)


def check_idx(path: Path, n_classes: int | None = None) -> tuple[tuple[int, ...] | None,
                                                                 list[str]]:
    """(dims, problems) of an idx file without keeping its payload: the header, the length
    against the header and, with `n_classes` (a label file), every label in 0..n_classes-1.
    A problem is one line naming the file and what was found; dims is None when the header
    cannot be read."""
    bad: list[tuple[int, int]] = []  # (first record, its label) per chunk with a bad label
    count = [0]

    def labels(offset: int, chunk: bytes) -> None:
        values = np.frombuffer(chunk, dtype=np.uint8)
        wrong = np.flatnonzero(values >= n_classes)
        if len(wrong):
            bad.append((offset + int(wrong[0]), int(values[wrong[0]])))
            count[0] += len(wrong)

    try:
        dims, _ = _idx_payload(path, keep=False, each=labels if n_classes else None)
    except DataError as exc:
        dims = None
        problems = [str(exc)]
    else:
        problems = []
    if bad:
        first, value = bad[0]
        more = f" ({count[0]} such records)" if count[0] > 1 else ""
        problems.append(f"{path}: record {first}: label {value}; expected 0..{n_classes - 1}"
                        f"{more}")
    return dims, problems


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


def check_cifar_batch(path: Path, label_key: str, n_classes: int) -> tuple[int | None, list[str]]:
    """(images, problems) of one CIFAR python batch: its structure (read_cifar_batch's
    checks) and every label in 0..n_classes-1. A problem is one line naming the file, the
    record and what was found; images is None when the batch cannot be read."""
    try:
        data, labels = read_cifar_batch(path, label_key)
    except DataError as exc:
        return None, [str(exc)]
    wrong = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if not len(wrong):
        return len(data), []
    more = f" ({len(wrong)} such records)" if len(wrong) > 1 else ""
    return len(data), [f"{path}: record {wrong[0]}: {label_key} {labels[wrong[0]]}; "
                       f"expected 0..{n_classes - 1}{more}"]
