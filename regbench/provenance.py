"""Where a number came from: versions, commit, machine, threads, time."""

from __future__ import annotations

import datetime as dt
import functools
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import torch


@functools.cache
def git_commit() -> str | None:
    """HEAD of the checkout regbench runs from (with '+dirty' if it has changes), or None."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


@functools.cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def machine(threads: int | None = None) -> dict[str, Any]:
    """The machine facts recorded with every result and benchmark figure."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "gpu": gpu,
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
    }


def provenance(threads: int, device: str = "cpu") -> dict[str, Any]:
    """Provenance columns of a cell row (start/end times are added by the runner)."""
    return {
        "torch_version": torch.__version__,
        "device": device,
        "threads": threads,
        "cpu_model": cpu_model(),
        "git_commit": git_commit(),
        "python_version": platform.python_version(),
        "hostname": socket.gethostname(),
        "regbench_version": _version(),
    }


def _version() -> str:
    from regbench import __version__

    return __version__
