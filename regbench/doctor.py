"""`regbench doctor`: one screen of what a bug report needs.

Versions (regbench, Python, torch and the optional packages), the CPU and its SIMD flags,
the kernel backend that would run and whether its C++ build is cached, Triton and its
interpreter, the CUDA device and driver, TeX and Dask. Nothing is built, downloaded or
written: a missing piece is a line that says so, and the command always exits 0.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

# CPU flags that decide which kernel path runs (see kernels/csrc/kernels.cpp)
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
              "avx512dq", "avx512_bf16")


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_family() -> str:
    """' (family F model M)' from /proc/cpuinfo, which names a CPU generation; '' elsewhere."""
    found: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("cpu family", "model") and key not in found:
                found[key] = value.strip()
            if not line.strip():
                break
    except OSError:
        return ""
    if len(found) < 2:
        return ""
    return f" (family {found['cpu family']} model {found['model']})"


def expected_backend(flags: set[str]) -> str:
    """The C++ path this CPU would take, by the same test as the extension's cpu_has_*."""
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2", "fma", "f16c"} <= flags:
        return "avx512"
    if {"avx2", "fma", "f16c"} <= flags:
        return "avx2"
    return "scalar"


def _first_line(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def _kernels() -> list[tuple[str, str]]:
    from regbench.kernels import _backend

    flags = cpu_flags()
    forced = os.environ.get(_backend.ENV_BACKEND)
    cached = _backend.extension_cached()
    compiler = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if forced:
        would = f"{forced} (forced by ${_backend.ENV_BACKEND})"
    elif cached:
        would = expected_backend(flags)
    elif compiler:
        would = f"{expected_backend(flags)} (after a one-time C++ build on first use)"
    else:
        would = "reference (no C++ compiler found: the plain-torch kernels, slow)"
    build = _backend.extension_build_dir()
    return [
        ("kernel backend", would),
        ("C++ build", f"{'cached' if cached else 'not built yet'} in {build}"),
        ("C++ compiler", compiler or "none found"),
    ]


def _cuda() -> list[tuple[str, str]]:
    import torch

    rows = [("torch CUDA", torch.version.cuda or "none (CPU build)")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            cap = ".".join(map(str, torch.cuda.get_device_capability(i)))
            rows.append((f"CUDA device {i}", f"{torch.cuda.get_device_name(i)} (sm {cap})"))
    else:
        rows.append(("CUDA device", "none available"))
    driver = _first_line(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    rows.append(("NVIDIA driver", driver or "none found"))
    return rows


def _triton() -> list[tuple[str, str]]:
    version = _version("triton")
    if version is None:
        return [("Triton", "not installed (CPU use does not need it; pip install -e '.[triton]')")]
    interp = os.environ.get("TRITON_INTERPRET")
    return [("Triton", version),
            ("Triton interpreter", "available" + (f", TRITON_INTERPRET={interp}" if interp
                                                  else " (set TRITON_INTERPRET=1 to use it)"))]


def _tex() -> list[tuple[str, str]]:
    pdflatex = shutil.which("pdflatex")
    line = _first_line(["pdflatex", "--version"]) if pdflatex else None
    pdftoppm = shutil.which("pdftoppm")
    return [("TeX (pdflatex)", line or "not found (the LaTeX test skips)"),
            ("pdftoppm", pdftoppm or "not found")]


def _packages() -> list[tuple[str, str]]:
    dask = _version("distributed")
    return [
        ("Dask distributed", dask or "not installed (pip install -e '.[dist]')"),
        ("dask-jobqueue", _version("dask-jobqueue") or "not installed"),
        ("numpy / pandas", f"{_version('numpy')} / {_version('pandas')}"),
        ("pyarrow", _version("pyarrow") or "not installed (Parquet tables need it)"),
    ]


def _openml() -> list[tuple[str, str]]:
    """The openml client: version, the server it talks to, where it caches (without
    --data-dir), as its own configuration says."""
    version = _version("openml")
    if version is None:
        return [("openml", "not installed (the openml task needs it)")]
    from regbench.openml_data import cache

    folder = cache.configure(None)
    return [("openml", f"{version}, server {cache.server()}"),
            ("OpenML cache", f"{folder} (--data-dir DIR: DIR/openml)")]


def rows() -> list[tuple[str, str]]:
    """Every line of the report as (label, value); a section that fails says why."""
    import torch

    from regbench import SUITE_VERSION, __version__
    from regbench.provenance import cpu_model, git_commit

    flags = cpu_flags()
    simd = " ".join(f for f in SIMD_FLAGS if f in flags) or "none reported"
    out: list[tuple[str, str]] = [
        ("regbench", f"{__version__} (suite version {SUITE_VERSION}), commit "
                     f"{git_commit() or 'unknown'}"),
        ("Python", f"{platform.python_version()} ({platform.platform()})"),
        ("torch", f"{torch.__version__}, intra-op threads: {torch.get_num_threads()}"),
        ("CPU", f"{cpu_model()}{cpu_family()}, {os.cpu_count()} logical cores"),
        ("SIMD flags", simd),
    ]
    sections: list[tuple[str, Callable[[], list[tuple[str, str]]]]] = [
        ("kernels", lambda: _kernels()), ("Triton", lambda: _triton()), ("CUDA", lambda: _cuda()),
        ("TeX", lambda: _tex()),
        ("packages", lambda: _packages()), ("openml", lambda: _openml())]
    for label, section in sections:
        try:
            out.extend(section())
        except Exception as exc:  # noqa: BLE001 - the report must print whatever breaks
            out.append((label, f"could not be read: {exc}"))
    env = sorted(k for k in os.environ if k.startswith("REGBENCH_"))
    out.append(("REGBENCH_* set", ", ".join(f"{k}={os.environ[k]}" for k in env) or "none"))
    return out


def report() -> str:
    """The doctor's screen as text."""
    lines = rows()
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)
