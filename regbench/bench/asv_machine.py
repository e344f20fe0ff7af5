"""Register this machine with asv under a name that records its GPU (if any).

    python -m regbench.bench.asv_machine            # asv machine --yes --machine <host>[-<gpu>]
    python -m regbench.bench.asv_machine --print    # only print the name

asv's default machine name is the hostname, which says nothing about the GPU that the CUDA
benchmarks ran on; results of two GPUs on one host would mix. With a GPU the name is
`<hostname>-<gpu slug>` (e.g. `box-nvidia-h100-80gb-hbm3`); pass it to
`asv run --machine NAME` when ~/.asv-machine.json holds more than one machine.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence


def gpu_name() -> str | None:
    """Name of CUDA device 0, or None without a usable GPU."""
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - no GPU information is not an error here
        return None


def machine_name(gpu: str | None = None) -> str:
    """`<hostname>` or `<hostname>-<gpu slug>`."""
    host = socket.gethostname().split(".")[0] or "localhost"
    if not gpu:
        return host
    return f"{host}-{re.sub(r'[^a-z0-9]+', '-', gpu.lower()).strip('-')}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m regbench.bench.asv_machine",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--print", action="store_true", help="print the name, register nothing")
    args = parser.parse_args(argv)
    gpu = gpu_name()
    name = machine_name(gpu)
    if args.print:
        print(name)
        return 0
    asv = shutil.which("asv")
    cmd = [asv] if asv else [sys.executable, "-m", "asv"]
    cmd += ["machine", "--yes", "--machine", name]
    print("+", " ".join(cmd), file=sys.stderr)
    rc = subprocess.call(cmd)
    if rc == 0:
        print(f"registered asv machine {name!r} (GPU: {gpu or 'none'}); run "
              f"`asv run --machine {name}` if ~/.asv-machine.json lists other machines",
              file=sys.stderr)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
