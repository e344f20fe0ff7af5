"""Kernel objects that run compiled on CUDA tensors and interpreted on CPU tensors.

`triton.jit` picks the interpreter once, from `TRITON_INTERPRET` at decoration time. Here each
kernel is a plain Python function wrapped twice, lazily: a `JITFunction` (CUDA) and an
`InterpretedFunction` (CPU tensors, or everything when `TRITON_INTERPRET=1`). So one process can
check the CUDA kernels' bits on CPU tensors and run them on the GPU. The kernels therefore call
no other `@triton.jit` function (the interpreter cannot call a compiled one): Philox is inlined.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import triton
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

__all__ = ["Kernel", "interpret_forced"]


def interpret_forced() -> bool:
    """True when `TRITON_INTERPRET=1` asks for the interpreter on every device."""
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    import os

    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


class Kernel:
    """A Triton kernel source with a compiled (CUDA) and an interpreted (CPU) variant."""

    def __init__(self, fn: Callable[..., None], do_not_specialize: Sequence[str] = ()) -> None:
        self.fn = fn
        self.do_not_specialize = tuple(do_not_specialize)
        self._jit: JITFunction | None = None
        self._interp: InterpretedFunction | None = None

    def variant(self, device: torch.device) -> Any:
        """The runnable kernel for tensors on `device`."""
        if device.type == "cpu" or interpret_forced():
            if self._interp is None:
                self._interp = InterpretedFunction(self.fn)
            return self._interp
        if device.type != "cuda":
            raise RuntimeError(f"regbench Triton kernels run on CUDA or CPU tensors, not {device}")
        if self._jit is None:
            self._jit = JITFunction(self.fn, do_not_specialize=list(self.do_not_specialize))
        return self._jit

    def launch(self, device: torch.device, grid: tuple[int, ...], *args: Any, **kw: Any) -> None:
        """Run on `device` over `grid`. FP contraction is off: mul + add never fuse to an FMA,
        so every rounding step is the contract's (the interpreter ignores the option)."""
        k = self.variant(device)
        if isinstance(k, InterpretedFunction):
            k[grid](*args, **{n: v for n, v in kw.items() if n not in _LAUNCH_ONLY})
        else:
            with torch.cuda.device(device):
                k[grid](*args, enable_fp_fusion=False, **kw)


_LAUNCH_ONLY = ("num_warps", "num_stages")
