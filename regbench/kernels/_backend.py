"""Lazy JIT build of the C++ kernels and the choice of backend (avx512 | avx2 | scalar | reference).

The extension is compiled on first use with `torch.utils.cpp_extension.load` into a cache dir
(`$REGBENCH_EXTENSIONS_DIR`, else `$TORCH_EXTENSIONS_DIR/regbench`, else
`~/.cache/regbench/torch_extensions`). If it cannot be built (no compiler, no ninja), every op
falls back to the plain-torch reference and one warning says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import IO

BACKENDS = ("avx512", "avx2", "scalar", "reference")
ISA = {"scalar": 0, "avx2": 1, "avx512": 2}
ENV_BACKEND = "REGBENCH_KERNEL_BACKEND"

_CSRC = Path(__file__).resolve().parent / "csrc"
_lock = threading.Lock()
_ext: ModuleType | None = None
_tried = False
_build_error: str | None = None
_forced: str | None = None


def _cache_dir() -> Path:
    env = os.environ.get("REGBENCH_EXTENSIONS_DIR")
    if env:
        return Path(env)
    torch_env = os.environ.get("TORCH_EXTENSIONS_DIR")
    if torch_env:
        return Path(torch_env) / "regbench"
    return Path.home() / ".cache" / "regbench" / "torch_extensions"


def _sources() -> list[Path]:
    return sorted(_CSRC.glob("*.cpp"))


def extension_build_dir() -> Path:
    """The cache folder of the C++ build for these sources (named by a hash of them)."""
    hashed = [*_sources(), *sorted(_CSRC.glob("*.h"))]  # headers change the build too
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in hashed)).hexdigest()[:12]
    return _cache_dir() / f"regbench_kernels_{digest}"


def extension_cached() -> bool:
    """Whether the C++ build for these sources is in the cache (no compile on first use)."""
    d = extension_build_dir()
    return d.is_dir() and any(d.glob(f"{d.name}*.so"))


BUILD_LOCK = "regbench.lock"  # flock'ed around the build: the kernel drops it when we die
TORCH_BATON = "lock"  # torch's FileBaton: a file that outlives a killed build


@contextlib.contextmanager
def build_lock(build_dir: Path) -> Iterator[None]:
    """Hold an exclusive flock on `build_dir` while building or loading the extension.

    torch.utils.cpp_extension guards a build with a bare lock file; when a build is killed
    that file stays and every later load waits on it forever. Under our flock no other
    regbench process is building in `build_dir`, so a torch baton found there is stale and
    is removed. Without fcntl (Windows) this is torch's behaviour alone.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fh: IO[bytes] = open(build_dir / BUILD_LOCK, "ab")  # noqa: SIM115 - held across the yield
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        baton = build_dir / TORCH_BATON
        if baton.exists():
            warnings.warn(f"regbench: removing the stale build lock {baton} (left by a killed "
                          "build)", RuntimeWarning, stacklevel=4)
            baton.unlink(missing_ok=True)
        yield
    finally:
        fh.close()  # closing the file releases the flock


def load_extension() -> ModuleType | None:
    """Build (once, cached on disk) and import the C++ extension; None if that fails."""
    global _ext, _tried, _build_error
    if _tried:
        return _ext
    with _lock:
        if _tried:
            return _ext
        try:
            import torch.utils.cpp_extension as cpp

            srcs = _sources()
            build_dir = extension_build_dir()
            name = build_dir.name
            build_dir.mkdir(parents=True, exist_ok=True)
            with build_lock(build_dir):
                _ext = cpp.load(
                    name=name,
                    sources=[str(p) for p in srcs],
                    extra_cflags=["-O3", "-fopenmp", "-ffp-contract=off", "-fno-math-errno"],
                    extra_ldflags=["-fopenmp"],
                    build_directory=str(build_dir),
                    verbose=False,
                )
        except Exception as exc:  # noqa: BLE001 - any build failure means "use the reference"
            _ext = None
            _build_error = f"{type(exc).__name__}: {exc}".strip()[:2000]
            warnings.warn(
                "regbench: the C++ kernels could not be built; using the plain-torch reference "
                f"(slow). Cause: {_build_error.splitlines()[0] if _build_error else '?'}",
                RuntimeWarning,
                stacklevel=3,
            )
        _tried = True
        return _ext


def build_in_background() -> threading.Thread | None:
    """Start building (or loading) the extension in a daemon thread, so that a driver whose
    cells need it compiles it while other cells run; None when it is loaded already. The
    compiler runs in a subprocess, so the thread does not hold the GIL while it waits."""
    if _tried:
        return None
    t = threading.Thread(target=load_extension, name="regbench-kernel-build", daemon=True)
    t.start()
    return t


def build_error() -> str | None:
    """The error of the failed build, if the C++ kernels could not be built."""
    load_extension()
    return _build_error


def empty_cache() -> None:
    """Free the CPU output blocks the kernels keep for reuse (see `cached_bytes`)."""
    ext = load_extension()
    if ext is not None:
        ext.empty_cache()


def cached_bytes() -> int:
    """Bytes of freed CPU outputs (>= 256 KiB each) kept for reuse by later calls; the cap is
    $REGBENCH_CPU_CACHE_MB (default 1024, 0 disables), read when the extension loads."""
    ext = load_extension()
    return 0 if ext is None else int(ext.cached_bytes())


_available: list[str] | None = None


def available_backends() -> list[str]:
    """Backends this machine can run, fastest first ("reference" is always there)."""
    global _available
    if _available is None:
        ext = load_extension()
        out: list[str] = []
        if ext is not None:
            if ext.cpu_has_avx512():
                out.append("avx512")
            if ext.cpu_has_avx2():
                out.append("avx2")
            out.append("scalar")
        out.append("reference")
        _available = out
    return list(_available)


def _check_name(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown kernel backend {name!r}; valid choices: {', '.join(BACKENDS)}")
    if name not in available_backends():
        raise ValueError(
            f"kernel backend {name!r} is not available here; available: "
            f"{', '.join(available_backends())}"
        )
    return name


# $REGBENCH_KERNEL_BACKEND as read on first use, and again by every set_backend call.
# Not read per call: os.environ.get of an unset variable raises and catches a KeyError inside
# (about a microsecond, a third of the target fixed cost of a small dropout call).
_env_read = False
_env_value: str | None = None


def _env_backend() -> str | None:
    global _env_read, _env_value
    if not _env_read:
        _env_value = os.environ.get(ENV_BACKEND) or None
        _env_read = True
    return _env_value


def backend() -> str:
    """The backend the ops run now: forced, else $REGBENCH_KERNEL_BACKEND (read on first use
    and by `set_backend`), else the fastest."""
    if _forced is not None:
        return _forced
    env = _env_backend()
    if env:
        return _check_name(env)
    return available_backends()[0]


def cpu_isa() -> int | None:
    """The ISA code (`ISA`) of the C++ path CPU ops run now, None for the reference (the ops'
    hot path: no environment read, no list copy)."""
    name = _forced
    if name is None:
        env = _env_backend()
        name = _check_name(env) if env else (_available or available_backends())[0]
    return ISA.get(name)


def reference_forced() -> bool:
    """True when the reference backend is forced (set_backend / $REGBENCH_KERNEL_BACKEND)."""
    if _forced is not None:
        return _forced == "reference"
    return _env_backend() == "reference"


def set_backend(name: str | None) -> None:
    """Force a backend for every later call (None: automatic choice again, after reading
    $REGBENCH_KERNEL_BACKEND anew)."""
    global _forced, _env_read
    _forced = None if name is None else _check_name(name)
    _env_read = False


@contextlib.contextmanager
def use_backend(name: str | None) -> Iterator[None]:
    """Context manager that forces a backend inside the block."""
    global _forced
    old = _forced
    set_backend(name)
    try:
        yield
    finally:
        _forced = old


_triton_mod: ModuleType | None = None
_triton_tried = False


def triton_kernels() -> ModuleType | None:
    """`regbench.kernels.triton` (imports Triton), or None with one warning when Triton is not
    installed. Only called when a CUDA tensor reaches an op: CPU-only use never imports Triton."""
    global _triton_mod, _triton_tried
    if _triton_tried:
        return _triton_mod
    with _lock:
        if not _triton_tried:
            try:
                import triton  # noqa: F401
            except ImportError:
                warnings.warn(
                    "regbench: Triton is not installed; CUDA tensors use the plain-torch "
                    "reference kernels (slow). Install with `pip install regbench[triton]`.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            else:
                import regbench.kernels.triton as mod

                _triton_mod = mod
            _triton_tried = True
    return _triton_mod
