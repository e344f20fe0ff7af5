"""Kernel objects that run compiled on CUDA tensors and interpreted on CPU tensors.

`triton.jit` picks the interpreter once, from `TRITON_INTERPRET` at decoration time. Here each
kernel is a plain Python function wrapped twice, lazily: a `JITFunction` (CUDA) and an
`InterpretedFunction` (CPU tensors, or everything when `TRITON_INTERPRET=1`). So one process can
check the CUDA kernels' bits on CPU tensors and run them on the GPU. The kernels therefore call
no other `@triton.jit` function (the interpreter cannot call a compiled one): Philox is inlined.

Launch configs: the CUDA variant is `triton.autotune`d over the kernel's configs (elements per
program `BLOCK` x warps), keyed by the kernel's `key` arguments, a power-of-two bucket of n
(`n_bucket`, so a new size only retunes when it crosses a power of two) and, as Triton always
adds, the dtypes of the tensor arguments. The interpreter cannot time anything: it runs the
kernel's default config unless a launch names one. No config changes a bit of the results
(see each kernel); the tests run every config in the interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import triton
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

__all__ = ["TUNE_MIN_NUMEL", "Kernel", "config", "describe", "interpret_forced", "n_bucket"]

# Below this many elements a launch costs more than the work: no tuning, the default config.
TUNE_MIN_NUMEL = 1 << 17


def config(block: int, num_warps: int | None = None) -> triton.Config:
    """A fixed launch config: `block` elements per program (num_warps by default: 8 from 2048
    elements, else 4; the interpreter ignores it)."""
    if num_warps is None:
        num_warps = 8 if block >= 2048 else 4
    return triton.Config({"BLOCK": int(block)}, num_warps=int(num_warps))


def describe(cfg: triton.Config) -> str:
    """`BLOCK=4096, num_warps=8`: a config as the benchmark notes print it."""
    return ", ".join([*(f"{k}={v}" for k, v in cfg.kwargs.items()), f"num_warps={cfg.num_warps}"])


def n_bucket(n: int) -> int:
    """The autotuning key's size bucket: n in [2**(b-1), 2**b) -> b."""
    return int(n).bit_length()


def interpret_forced() -> bool:
    """True when `TRITON_INTERPRET=1` asks for the interpreter on every device."""
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    import os

    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


class Kernel:
    """A Triton kernel source with a compiled (CUDA) and an interpreted (CPU) variant.

    The kernel takes the constexpr `BLOCK` and an (unused) `n_bucket` argument. Launches with
    `cfg=None` are autotuned over `configs` on CUDA (`key`: argument names added to the tuning
    key; `pre_hook`: `triton.autotune`'s, to protect tensors the kernel updates in place) and
    run `default` in the interpreter; `interp_bench` (tests only) is a stand-in timer that
    makes the interpreted variant go through the same autotuner.
    """

    def __init__(
        self, fn: Callable[..., None], do_not_specialize: Sequence[str] = (), *,
        configs: Sequence[triton.Config], default: triton.Config, key: Sequence[str] = (),
        pre_hook: Callable[..., Any] | None = None,
    ) -> None:
        if default not in configs:
            raise ValueError("the default config must be one of the tuned configs")
        self.fn = fn
        self.do_not_specialize = (*do_not_specialize, "n_bucket")
        self.configs = tuple(configs)
        self.default = default
        self.key = ("n_bucket", *key)
        self.pre_hook = pre_hook
        self.interp_bench: Callable[..., Any] | None = None
        self.last_config: triton.Config | None = None
        self.last_tuned = False
        self._jit: JITFunction | None = None
        self._interp: InterpretedFunction | None = None
        self._tuners: dict[Any, Any] = {}

    def variant(self, device: torch.device) -> Any:
        """The runnable (untuned) kernel for tensors on `device`."""
        if device.type == "cpu" or interpret_forced():
            if self._interp is None:
                self._interp = InterpretedFunction(self.fn)
            return self._interp
        if device.type != "cuda":
            raise RuntimeError(f"regbench Triton kernels run on CUDA or CPU tensors, not {device}")
        if self._jit is None:
            self._jit = JITFunction(self.fn, do_not_specialize=list(self.do_not_specialize))
        return self._jit

    def tuner(self, device: torch.device) -> Any:
        """The `triton.autotune`d variant for `device`, or None where launches do not tune
        (the interpreter, unless `interp_bench` is set)."""
        base = self.variant(device)
        bench = None
        if isinstance(base, InterpretedFunction):
            if self.interp_bench is None:
                return None
            bench = self.interp_bench
        tk = (id(base), bench)
        if tk not in self._tuners:
            self._tuners[tk] = triton.autotune(
                configs=list(self.configs), key=list(self.key),
                prune_configs_by={"early_config_prune": self._prune}, pre_hook=self.pre_hook,
                do_bench=bench,
            )(base)
        return self._tuners[tk]

    def _prune(self, configs: list[triton.Config], named_args: dict[str, Any], **kw: Any) -> list:
        if named_args["n_bucket"] < n_bucket(TUNE_MIN_NUMEL):
            return [self.default]
        return configs

    def tuned(self) -> dict[tuple, triton.Config]:
        """The autotuners' choices so far: tuning key -> config."""
        out: dict[tuple, triton.Config] = {}
        for t in self._tuners.values():
            out.update(t.cache)
        return out

    def launch(
        self, device: torch.device, grid: Callable[[dict[str, Any]], tuple[int, ...]],
        *args: Any, cfg: triton.Config | None = None, **kw: Any,
    ) -> None:
        """Run on `device` over `grid(meta)` with `cfg`, else the autotuned / default config.

        FP contraction is off: mul + add never fuse to an FMA, so every rounding step is the
        contract's (the interpreter ignores the option)."""
        tuner = self.tuner(device) if cfg is None else None
        if tuner is None:
            cfg = cfg or self.default
            k = self.variant(device)
            if isinstance(k, InterpretedFunction):
                k[grid](*args, **kw, **cfg.kwargs)
            else:
                with torch.cuda.device(device):
                    k[grid](*args, enable_fp_fusion=False, **kw, **cfg.all_kwargs())
            self.last_config, self.last_tuned = cfg, False
            return
        if isinstance(tuner.fn, InterpretedFunction):
            tuner[grid](*args, **kw)
        else:
            with torch.cuda.device(device):
                tuner[grid](*args, enable_fp_fusion=False, **kw)
        self.last_config, self.last_tuned = tuner.best_config, True
