"""asv: the fused kernels (dropout, bias_dropout_add, l2_) against their native baselines.

Each suite times ours and the native implementations (`time_*`), records peak memory
(`peakmem_*`), and tracks the time ratios ours / native and ours / `copy_` (`track_*`),
measured in one process (see DESIGN.md, "Benchmarks: how a number is honest"). Every case
checks our output against `regbench.kernels.reference` once in `setup`. CUDA cases raise
NotImplementedError in `setup` when there is no GPU, so asv skips them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from regbench import kernels as K
from regbench.bench.measure import measure
from regbench.kernels import reference as R

from .common import (
    CHECK_NUMEL,
    DEVICES,
    DTYPE_NAMES,
    LAM,
    PROBS,
    RATIO_MIN_TIME,
    RATIO_UNIT,
    SEED,
    SIZES,
    THREADS,
    build_extension,
    make_data,
    prepare,
    ratio,
    require_device,
    sync,
)

Data = dict[int, torch.Tensor]


class _KernelSuite:
    """Common setup_cache: build the C++ extension once (it may take a minute) and make data."""

    timeout = 300.0
    warmup_time = 0.02  # setup already ran every timed path once

    def setup_cache(self) -> Data:
        build_extension()
        return make_data(SIZES)

    setup_cache.timeout = 900  # type: ignore[attr-defined]


class _FusedVsNative(_KernelSuite):
    """Timings of `_fused` and `_native`, and ours/native, ours/copy ratios (asv skips this
    base: its name starts with an underscore; subclasses inherit the benchmarks)."""

    def time_fused(self, *args: object) -> None:
        self._fused()
        sync(self.dev)

    def time_native(self, *args: object) -> None:
        self._native()
        sync(self.dev)

    def track_ratio_vs_native(self, *args: object) -> float:
        return ratio(self._fused, self._native, self.threads)

    track_ratio_vs_native.unit = RATIO_UNIT  # type: ignore[attr-defined]

    def track_ratio_vs_copy(self, *args: object) -> float:
        return ratio(self._fused, self._copy, self.threads)

    track_ratio_vs_copy.unit = RATIO_UNIT  # type: ignore[attr-defined]


class Dropout(_FusedVsNative):
    """Forward dropout: fused vs F.dropout, and the ratios to F.dropout and to copy_."""

    param_names = ["numel", "dtype", "p", "threads", "device"]
    params = (SIZES, DTYPE_NAMES, PROBS, THREADS, DEVICES)

    def setup(self, data: Data, numel: int, dtype: str, p: float, threads: int,
              device: str) -> None:
        self.dev = require_device(device)
        torch.set_num_threads(threads)
        self.threads, self.p = threads, p
        self.x = prepare(data[numel], dtype, self.dev)
        self.dst = torch.empty_like(self.x)
        m = min(numel, CHECK_NUMEL)
        y = K.dropout(self.x, p, SEED, 0)
        if not torch.equal(y[:m].cpu(), R.dropout(self.x[:m].cpu(), p, SEED, 0)):
            raise AssertionError(f"fused dropout differs from the reference ({dtype}, p={p})")
        F.dropout(self.x, p, True)  # warm-up of the native path
        sync(self.dev)

    def _fused(self) -> torch.Tensor:
        return K.dropout(self.x, self.p, SEED, 0)

    def _native(self) -> torch.Tensor:
        return F.dropout(self.x, self.p, True)

    def _copy(self) -> torch.Tensor:
        return self.dst.copy_(self.x)


class BiasDropoutAdd(_FusedVsNative):
    """residual + dropout(x + bias) fused vs the three native ops (p = 0.5)."""

    param_names = ["numel", "dtype", "threads", "device"]
    params = (SIZES, DTYPE_NAMES, THREADS, DEVICES)
    P = 0.5
    H = 1024

    def setup(self, data: Data, numel: int, dtype: str, threads: int, device: str) -> None:
        self.dev = require_device(device)
        torch.set_num_threads(threads)
        self.threads = threads
        x = prepare(data[numel], dtype, self.dev)
        self.x = x.view(-1, self.H)
        self.b = self.x[0].clone()
        self.r = self.x.flip(0).contiguous()
        self.dst = torch.empty_like(self.x)
        rows = max(1, CHECK_NUMEL // self.H)
        y = self._fused()
        want = R.bias_dropout_add(self.x[:rows].cpu(), self.b.cpu(), self.r[:rows].cpu(),
                                  self.P, SEED, 0)
        if not torch.equal(y[:rows].cpu(), want):
            raise AssertionError(f"fused bias_dropout_add differs from the reference ({dtype})")
        self._native()
        sync(self.dev)

    def _fused(self) -> torch.Tensor:
        return K.bias_dropout_add(self.x, self.b, self.r, self.P, SEED, 0)

    def _native(self) -> torch.Tensor:
        return self.r + F.dropout(self.x + self.b, self.P, True)

    def _copy(self) -> torch.Tensor:
        return self.dst.copy_(self.x)


class L2(_KernelSuite):
    """Fused l2_ (grad += lam * theta, float64 penalty) vs torch._foreach_* and autograd (fp32)."""

    param_names = ["numel", "threads", "device"]
    params = (SIZES, THREADS, DEVICES)

    def setup(self, data: Data, numel: int, threads: int, device: str) -> None:
        dtype = "fp32"
        self.dev = require_device(device)
        torch.set_num_threads(threads)
        self.threads = threads
        x = prepare(data[numel], dtype, self.dev)
        self.ps = [torch.nn.Parameter(t.clone()) for t in x.chunk(4)]
        for p in self.ps:
            p.grad = torch.zeros_like(p)
        self.grads = [p.grad for p in self.ps]
        self.src, self.dst = x, torch.empty_like(x)
        want = R.l2_update_([torch.zeros_like(p).cpu() for p in self.ps],
                            [p.detach().cpu() for p in self.ps], LAM)
        got = K.l2_(self.ps, LAM)
        if not torch.equal(got.cpu(), want):
            raise AssertionError(f"fused l2_ penalty differs from the reference ({dtype})")
        self._foreach()
        sync(self.dev)

    def _fused(self) -> torch.Tensor:
        return K.l2_(self.ps, LAM)

    def _foreach(self) -> torch.Tensor:
        torch._foreach_add_(self.grads, self.ps, alpha=LAM)
        norms = torch._foreach_norm(self.ps)
        return 0.5 * LAM * torch.stack(norms).double().square().sum()

    def _autograd(self) -> None:
        (0.5 * LAM * sum((p * p).sum() for p in self.ps)).backward()

    def _copy(self) -> torch.Tensor:
        return self.dst.copy_(self.src)

    def time_fused(self, *args: object) -> None:
        self._fused()
        sync(self.dev)

    def time_foreach(self, *args: object) -> None:
        self._foreach()
        sync(self.dev)

    def time_penalty_autograd(self, *args: object) -> None:
        self._autograd()
        sync(self.dev)

    def track_ratio_vs_native(self, *args: object) -> float:
        """ours / torch._foreach_* (gradient and value), the strongest native baseline."""
        return ratio(self._fused, self._foreach, self.threads)

    track_ratio_vs_native.unit = RATIO_UNIT  # type: ignore[attr-defined]

    def track_ratio_vs_autograd(self, *args: object) -> float:
        return ratio(self._fused, self._autograd, self.threads)

    track_ratio_vs_autograd.unit = RATIO_UNIT  # type: ignore[attr-defined]

    def track_ratio_vs_copy(self, *args: object) -> float:
        return ratio(self._fused, self._copy, self.threads)

    track_ratio_vs_copy.unit = RATIO_UNIT  # type: ignore[attr-defined]


class Copy(_KernelSuite):
    """The bandwidth roofline: a same-size copy_ into a preallocated tensor."""

    param_names = ["numel", "dtype", "threads", "device"]
    params = (SIZES, DTYPE_NAMES, THREADS, DEVICES)

    def setup(self, data: Data, numel: int, dtype: str, threads: int, device: str) -> None:
        self.dev = require_device(device)
        torch.set_num_threads(threads)
        self.x = prepare(data[numel], dtype, self.dev)
        self.dst = torch.empty_like(self.x)
        self.dst.copy_(self.x)
        if not torch.equal(self.dst, self.x):
            raise AssertionError("copy_ did not copy")

    def time_copy(self, *args: object) -> None:
        self.dst.copy_(self.x)
        sync(self.dev)


class DropoutBackward(_KernelSuite):
    """Forward + backward of dropout (fp32, p = 0.5): the fused op regenerates its mask."""

    param_names = ["numel", "threads", "device"]
    params = (SIZES, THREADS, DEVICES)
    P = 0.5

    def setup(self, data: Data, numel: int, threads: int, device: str) -> None:
        self.dev = require_device(device)
        torch.set_num_threads(threads)
        x = prepare(data[numel], "fp32", self.dev)
        self.xr = x.clone().requires_grad_(True)
        self.dy = torch.flip(x, (0,))
        m = min(numel, CHECK_NUMEL)
        (gx,) = torch.autograd.grad(K.dropout(self.xr, self.P, SEED, 0), self.xr, self.dy)
        if not torch.equal(gx[:m].cpu(), R.dropout(self.dy[:m].cpu(), self.P, SEED, 0)):
            raise AssertionError("fused dropout backward differs from the reference")
        torch.autograd.grad(F.dropout(self.xr, self.P, True), self.xr, self.dy)
        sync(self.dev)

    def time_fused(self, *args: object) -> None:
        torch.autograd.grad(K.dropout(self.xr, self.P, SEED, 0), self.xr, self.dy)
        sync(self.dev)

    def time_native(self, *args: object) -> None:
        torch.autograd.grad(F.dropout(self.xr, self.P, True), self.xr, self.dy)
        sync(self.dev)


class Memory(_KernelSuite):
    """Peak RSS of the process around one call (the base is torch itself, ~300 MB): native
    dropout also allocates its mask, the fused op only the output (fp32, p = 0.5, 1 thread).
    """

    param_names = ["op", "numel", "device"]
    params = (["dropout", "bias_dropout_add", "l2"], [2**20, 2**24], DEVICES)
    P = 0.5

    def setup_cache(self) -> Data:
        build_extension()
        return make_data([2**20, 2**24])

    setup_cache.timeout = 900  # type: ignore[attr-defined]

    def setup(self, data: Data, op: str, numel: int, device: str) -> None:
        self.dev = require_device(device)
        torch.set_num_threads(1)
        x = prepare(data[numel], "fp32", self.dev)
        if op == "dropout":
            self.fused = lambda: K.dropout(x, self.P, SEED, 0)
            self.native = lambda: F.dropout(x, self.P, True)
        elif op == "bias_dropout_add":
            x2 = x.view(-1, 1024)
            b, r = x2[0].clone(), x2.flip(0).contiguous()
            self.fused = lambda: K.bias_dropout_add(x2, b, r, self.P, SEED, 0)
            self.native = lambda: r + F.dropout(x2 + b, self.P, True)
        else:
            ps = [torch.nn.Parameter(t.clone()) for t in x.chunk(4)]
            for p in ps:
                p.grad = torch.zeros_like(p)
            self.fused = lambda: K.l2_(ps, LAM)
            self.native = lambda: (0.5 * LAM * sum((p * p).sum() for p in ps)).backward()

    def peakmem_fused(self, *args: object) -> None:
        self.fused()

    def peakmem_native(self, *args: object) -> None:
        self.native()


class FusedOptimStep(_KernelSuite):
    """regbench.optim's fused steps vs torch.optim's fused=True CPU steps, fp32, 64 tensors:
    FusedSGD(l2, momentum) vs SGD(weight_decay, momentum); FusedSGD(l1, l2) vs the penalty in
    the loss + autograd + SGD; FusedAdamW vs AdamW (both with weight_decay). CPU only."""

    param_names = ["numel", "threads"]
    params = (SIZES, THREADS)

    def setup(self, data: Data, numel: int, threads: int) -> None:
        from regbench.bench.optim import LAM1, LAM2, LR, MOM, WD, check_once, param_list
        from regbench.optim.fused_adamw import FusedAdamW
        from regbench.optim.fused_sgd import FusedSGD

        torch.set_num_threads(threads)
        self.threads = threads
        self.ps = param_list(numel, torch.float32)
        check_once(self.ps)  # bitwise against the reference composition
        self.lam1, self.lam2 = LAM1, LAM2
        self.ours_sgd = FusedSGD(self.ps, lr=LR, momentum=MOM, l2=LAM2).step
        self.ours_elastic = FusedSGD(self.ps, lr=LR, momentum=MOM, l2=LAM2, l1=LAM1).step
        self.ours_adamw = FusedAdamW(self.ps, lr=LR, weight_decay=WD).step
        self.sgd_wd = torch.optim.SGD(self.ps, lr=LR, momentum=MOM, weight_decay=LAM2,
                                      fused=True).step
        self.sgd = torch.optim.SGD(self.ps, lr=LR, momentum=MOM, fused=True).step
        self.adamw = torch.optim.AdamW(self.ps, lr=LR, weight_decay=WD, fused=True).step
        for f in (self.ours_sgd, self.ours_elastic, self.ours_adamw, self.sgd_wd, self.sgd,
                  self.adamw):
            f()

    def _elastic_native(self) -> None:
        pen = 0.5 * self.lam2 * sum((p * p).sum() for p in self.ps)
        (pen + self.lam1 * sum(p.abs().sum() for p in self.ps)).backward()
        self.sgd()

    def time_fused_sgd_l2(self, *args: object) -> None:
        self.ours_sgd()

    def time_torch_sgd_weight_decay(self, *args: object) -> None:
        self.sgd_wd()

    def time_fused_sgd_elastic(self, *args: object) -> None:
        self.ours_elastic()

    def time_penalty_autograd_sgd(self, *args: object) -> None:
        self._elastic_native()

    def time_fused_adamw(self, *args: object) -> None:
        self.ours_adamw()

    def time_torch_adamw(self, *args: object) -> None:
        self.adamw()

    def track_ratio_sgd_l2(self, *args: object) -> float:
        return ratio(self.ours_sgd, self.sgd_wd, self.threads)

    track_ratio_sgd_l2.unit = RATIO_UNIT  # type: ignore[attr-defined]

    def track_ratio_sgd_elastic(self, *args: object) -> float:
        return ratio(self.ours_elastic, self._elastic_native, self.threads)

    track_ratio_sgd_elastic.unit = RATIO_UNIT  # type: ignore[attr-defined]

    def track_ratio_adamw(self, *args: object) -> float:
        return ratio(self.ours_adamw, self.adamw, self.threads)

    track_ratio_adamw.unit = RATIO_UNIT  # type: ignore[attr-defined]


class DropoutCall(_KernelSuite):
    """The fixed cost of one eager call (argument checks, allocation, dispatch) on a 16-element
    CPU tensor, where the kernel itself takes nanoseconds: the public function (target <= 3 us),
    the registered op (the custom-op dispatcher) and F.dropout."""

    param_names = ["impl", "threads"]
    params = (["fused", "regbench::dropout op", "F.dropout"], THREADS)
    NUMEL = 16
    P = 0.5

    def setup_cache(self) -> Data:
        build_extension()
        return {}

    setup_cache.timeout = 900  # type: ignore[attr-defined]

    def setup(self, data: Data, impl: str, threads: int) -> None:
        from regbench.kernels.dropout import dropout_op

        torch.set_num_threads(threads)
        self.threads = threads
        x = torch.randn(self.NUMEL, generator=torch.Generator().manual_seed(0))
        self.fn = {"fused": lambda: K.dropout(x, self.P, SEED, 0),
                   "regbench::dropout op": lambda: dropout_op(x, self.P, SEED, 0),
                   "F.dropout": lambda: F.dropout(x, self.P, True)}[impl]
        y = self.fn()
        if impl != "F.dropout" and not torch.equal(y, R.dropout(x, self.P, SEED, 0)):
            raise AssertionError(f"{impl} differs from the reference")

    def time_call(self, *args: object) -> None:
        self.fn()

    def track_call_us(self, *args: object) -> float:
        """Median microseconds of one call (torch.utils.benchmark.Timer, as `regbench bench`)."""
        return measure(self.fn, self.threads, RATIO_MIN_TIME)[0] * 1e6

    track_call_us.unit = "us"  # type: ignore[attr-defined]
