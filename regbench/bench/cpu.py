"""`regbench bench`: throughput of the fused kernels vs native PyTorch and vs the copy roofline.

Everything is measured in one process with `torch.utils.benchmark.Timer` (num_threads set,
warm-up first, outputs preallocated where the op allows it), reported as median and IQR, and
as ratios against (a) the native implementation and (b) a same-size `copy_` into a
preallocated tensor measured in the same run (the memory-bandwidth roofline). Each fused
result is checked once against `regbench.kernels.reference`.

    python -m regbench.bench --sizes 16M --threads 1,all --dtypes fp32
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from regbench import kernels as K
from regbench.bench.measure import CLOCKS, DTYPES, measure, use_clock
from regbench.bench.optim import bench_optim
from regbench.errors import RegbenchError
from regbench.kernels import reference as R
from regbench.kernels.dropout import dropout_op
from regbench.nn import FusedDropout

OPS = ("dropout", "dropout_fwdbwd", "dropout_call", "bias_dropout_add", "l2", "optim", "mlp")
DEFAULT_SIZES = "64K,1M,16M,64M"
QUICK_SIZES = "64K,1M"
TARGETS = {
    "dropout fwd vs copy_ (fp32, 16M)": "<= 1.15x copy time",
    "dropout fwd vs F.dropout eager": ">= 20x faster",
    "dropout fwd vs compile(F.dropout)": ">= 5x faster",
    "l2_ vs penalty in loss + autograd": ">= 3x faster",
    "l2_ vs torch._foreach_*": "not slower",
    "wide MLP step FusedDropout vs nn.Dropout": ">= 1.3x faster (the no-dropout row is the "
    "ceiling)",
    "FusedSGD(l2) vs SGD(fused=True, weight_decay) (8M fp32 in 64 tensors)": "not slower",
    "FusedSGD(l1, l2) vs penalty in loss + autograd + SGD(fused=True)": ">= 3x faster",
    "FusedAdamW vs AdamW(fused=True)": "not slower",
    "bf16 dropout fwd vs copy_ (1 thread)": "<= 1.5x copy time",
    "dropout fwd in cache (1M) vs copy_": "<= 1.5x copy time",
    "fixed cost of an eager call (K.dropout on 16 elements)": "<= 3 us",
}
# (op, impl, baseline) -> the speed-up over the baseline that regbench/bench/optim.py rows need
OPTIM_TARGETS = {
    ("optim_sgd_l2", "FusedSGD(l2, momentum)", "SGD(fused=True, weight_decay, momentum)"): 1.0,
    ("optim_sgd_elastic", "FusedSGD(l1, l2, momentum)",
     "penalty in loss + autograd + SGD(fused=True)"): 3.0,
    ("optim_adamw", "FusedAdamW(weight_decay)", "AdamW(fused=True, weight_decay)"): 1.0,
    ("optim_adamw", 'FusedAdamW(weight_decay, sqrt="ieee")',
     "AdamW(fused=True, weight_decay)"): 1.0,
    ("optim_adamw", "FusedAdamW(weight_decay)", "AdamW(foreach=False, weight_decay)"): 1.0,
}
CALL_NUMEL = 16  # elements of the fixed-cost call: the kernel itself takes nanoseconds
SEED = 1234
P = 0.5
LAM = 1e-4


class BenchArgumentError(RegbenchError, argparse.ArgumentTypeError):
    """A bad `regbench bench` argument: one line and exit 2 from the CLI (and argparse's
    usage line where a parser's `type=` raises it)."""


MAX_SIZE = 2**32  # elements: "4G", far beyond the 64M of the default sizes
BYTES_PER_ELEMENT = 8 * 4  # at most about eight fp32 tensors of a size live at once


def _available_bytes() -> int | None:
    """Memory available to a new allocation (Linux MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def parse_size(text: str) -> int:
    """'64K' -> 65536, '16M' -> 16777216, '1000' -> 1000; positive and at most MAX_SIZE."""
    t = text.strip().upper()
    mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(t[-1:], 1)
    digits = t[:-1] if mult > 1 else t
    try:
        value = int(float(digits) * mult)
    except (ValueError, OverflowError):
        raise BenchArgumentError(f"--sizes: bad size {text!r}; use element counts such as "
                                 f"64K, 1M, 16M") from None
    if value <= 0:
        raise BenchArgumentError(f"--sizes: a size must be at least 1 element, got {text!r}")
    if value > MAX_SIZE:
        raise BenchArgumentError(f"--sizes: {text!r} is {value:,} elements; at most 4G "
                                 f"({MAX_SIZE:,}) are allowed")
    return value


def check_memory(sizes: Sequence[int], text: str) -> None:
    """Refuse sizes whose tensors cannot fit in the memory available now."""
    have = _available_bytes()
    need = max(sizes) * BYTES_PER_ELEMENT
    if have is not None and need > have:
        raise BenchArgumentError(
            f"--sizes {text}: {max(sizes):,} elements need about {need / 2**30:.1f} GiB "
            f"(some eight fp32 tensors), but {have / 2**30:.1f} GiB of memory are "
            f"available; choose smaller sizes")


def _threads(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == "all":
            out.append(torch.get_num_threads())
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise BenchArgumentError(f"--threads: bad thread count {part!r}; use positive "
                                     f"counts or all, e.g. 1,2,all")
    return list(dict.fromkeys(out))


def _choices(text: str, flag: str, valid: Sequence[str]) -> list[str]:
    items = [t.strip() for t in text.split(",")]
    for item in items:
        if item not in valid:
            raise BenchArgumentError(f"{flag}: unknown {flag[2:-1]} {item!r}; valid choices: "
                                     f"{', '.join(valid)}")
    return list(dict.fromkeys(items))


def parse_arguments(args: argparse.Namespace) -> tuple[list[int], list[int], list[str], list[str]]:
    """(sizes, threads, dtypes, ops) of `args`, each checked; any bad value raises
    BenchArgumentError before anything is measured or written."""
    text = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    sizes = [parse_size(s) for s in text.split(",")]
    threads = _threads(args.threads)
    dtypes = _choices(args.dtypes, "--dtypes", list(DTYPES))
    ops = _choices(args.ops, "--ops", OPS)
    if args.min_time is not None and not (math.isfinite(args.min_time) and args.min_time > 0):
        raise BenchArgumentError(f"--min-time must be a positive number of seconds, got "
                                 f"{args.min_time}")
    if getattr(args, "clock", "wall") == "cpu" and threads != [1]:
        raise BenchArgumentError(f"--clock cpu measures one thread only; got --threads "
                                 f"{args.threads}")
    check_memory(sizes, text)
    if args.store:  # refuse a damaged or foreign store now, not after minutes of timing
        from pathlib import Path

        from regbench.store.db import inspect

        store = Path(args.store)
        if store.is_dir():
            raise BenchArgumentError(f"--store {store} is a directory; give a file path")
        if store.is_file() and store.stat().st_size:
            inspect(store)
    return sizes, threads, dtypes, ops


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `regbench bench`."""
    parser.add_argument("--sizes", default=None,
                        help=f"element counts, comma separated (default {DEFAULT_SIZES}; "
                             f"--quick: {QUICK_SIZES})")
    parser.add_argument("--threads", default="1,all", help="thread counts, e.g. 1,all")
    parser.add_argument("--dtypes", default="fp32,bf16", help=f"of {', '.join(DTYPES)}")
    parser.add_argument("--ops", default=",".join(OPS), help=f"subset of {', '.join(OPS)}")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds of timing per measurement (default 0.5, --quick 0.1)")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the torch.compile baselines (saves compile time)")
    parser.add_argument("--quick", action="store_true", help="small sizes, short timings")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall (default) or cpu: process CPU time, for a shared machine "
                             "(one thread only)")
    parser.add_argument("--store", default=None, metavar="PATH",
                        help="also save the rows in this results store")


class _Run:
    """Collects rows of one `regbench bench` run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.run_id = uuid.uuid4().hex[:12]
        self.rows: list[dict[str, Any]] = []
        self.min_time = args.min_time if args.min_time is not None else (
            0.1 if args.quick else 0.5)
        self.compile = not args.no_compile
        self.backend = K.backend()
        self.notes: list[str] = []

    def row(self, op: str, impl: str, dtype: str, numel: int, threads: int,
            t: tuple[float, float] | None, nbytes: float | None, copy_s: float | None,
            baseline: str | None = None, native_s: float | None = None,
            backend: str | None = None) -> None:
        median, iqr = t if t is not None else (math.nan, math.nan)
        self.rows.append({
            "run_id": self.run_id, "op": op, "impl": impl, "baseline": baseline,
            "backend": backend or "native", "dtype": dtype, "numel": numel,
            "threads": threads, "device": "cpu", "median_s": median, "iqr_s": iqr,
            "gbps": (nbytes / median / 1e9) if nbytes and median == median else None,
            "ratio_vs_native": (median / native_s) if native_s else None,
            "ratio_vs_copy": (median / copy_s) if copy_s else None,
            "machine": _machine(threads),
        })

    def ours(self, op: str, impl: str, dtype: str, numel: int, threads: int,
             t: tuple[float, float], nbytes: float | None, copy_s: float | None,
             natives: dict[str, float]) -> None:
        """One row per baseline for our impl (ratio_vs_native = ours / that baseline)."""
        if not natives:
            self.row(op, impl, dtype, numel, threads, t, nbytes, copy_s, backend=self.backend)
        for name, s in natives.items():
            self.row(op, impl, dtype, numel, threads, t, nbytes, copy_s, baseline=name,
                     native_s=s, backend=self.backend)


def _machine(threads: int) -> dict[str, Any]:
    try:
        from regbench.provenance import machine

        return machine(threads)
    except Exception:  # noqa: BLE001 - provenance is best effort here
        import os
        import platform

        return {"cpu_model": platform.processor(), "cpu_count": os.cpu_count(),
                "threads": threads}


def _compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    return torch.compile(fn, dynamic=False)


# --- the ops ----------------------------------------------------------------------------------


def _check_dropout(y: torch.Tensor, x: torch.Tensor, offset: int) -> None:
    m = min(x.numel(), 2**20)
    want = R.dropout(x.reshape(-1)[:m], P, SEED, offset)
    if not torch.equal(y.reshape(-1)[:m], want):
        raise AssertionError("fused dropout differs from the reference")


def bench_dropout(run: _Run, dt: str, n: int, th: int, copy_s: float, fwdbwd: bool) -> None:
    dtype = DTYPES[dt]
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, generator=g).to(dtype)
    es = x.element_size()
    out = torch.empty_like(x)
    ext = K.load_extension()
    isa = K._backend.ISA.get(run.backend)
    t_, s_ = R.threshold(P), R.scale(P)
    op = "dropout_fwdbwd" if fwdbwd else "dropout_fwd"
    natives: dict[str, float] = {}
    if not fwdbwd:
        _check_dropout(K.dropout(x, P, SEED, 0), x, 0)
        t_eager = measure(lambda: F.dropout(x, P, True), th, run.min_time)
        natives["F.dropout"] = t_eager[0]
        run.row(op, "F.dropout", dt, n, th, t_eager, 2 * es * n, copy_s)
        if run.compile:
            cf = _compiled(lambda t: F.dropout(t, P, True))
            t_c = measure(lambda: cf(x), th, run.min_time)
            natives["compile(F.dropout)"] = t_c[0]
            run.row(op, "compile(F.dropout)", dt, n, th, t_c, 2 * es * n, copy_s)
        t_api = measure(lambda: K.dropout(x, P, SEED, 0), th, run.min_time)
        run.ours(op, "fused", dt, n, th, t_api, 2 * es * n, copy_s, natives)
        if ext is not None and isa is not None:
            ext.dropout_fwd(x, None, None, t_, s_, SEED, 0, isa, out)
            _check_dropout(out, x, 0)
            t_out = measure(lambda: ext.dropout_fwd(x, None, None, t_, s_, SEED, 0, isa, out),
                             th, run.min_time)
            run.ours(op, "fused(out=)", dt, n, th, t_out, 2 * es * n, copy_s, natives)
        return
    xr = x.clone().requires_grad_(True)
    dy = torch.randn(n, generator=g).to(dtype)

    def eager() -> Any:
        return torch.autograd.grad(F.dropout(xr, P, True), xr, dy)

    def fused() -> Any:
        return torch.autograd.grad(K.dropout(xr, P, SEED, 0), xr, dy)

    (gx,) = fused()
    _check_dropout(gx, dy, 0)
    t_eager = measure(eager, th, run.min_time)
    natives["F.dropout"] = t_eager[0]
    run.row(op, "F.dropout", dt, n, th, t_eager, 4 * es * n, copy_s)
    if run.compile:
        cf = _compiled(lambda t: F.dropout(t, P, True))
        t_c = measure(lambda: torch.autograd.grad(cf(xr), xr, dy), th, run.min_time)
        natives["compile(F.dropout)"] = t_c[0]
        run.row(op, "compile(F.dropout)", dt, n, th, t_c, 4 * es * n, copy_s)
    run.ours(op, "fused", dt, n, th, measure(fused, th, run.min_time), 4 * es * n, copy_s,
             natives)


def bench_call(run: _Run, th: int) -> None:
    """The fixed cost of one eager call (argument checks, allocation, dispatch): the public
    function, the registered op (the dispatcher) and F.dropout on a tensor so small that the
    kernel itself takes nanoseconds."""
    x = torch.randn(CALL_NUMEL)
    _check_dropout(K.dropout(x, P, SEED, 0), x, 0)
    t_native = measure(lambda: F.dropout(x, P, True), th, run.min_time)
    run.row("dropout_call", "F.dropout", "fp32", CALL_NUMEL, th, t_native, None, None)
    natives = {"F.dropout": t_native[0]}
    for impl, fn in (("fused", lambda: K.dropout(x, P, SEED, 0)),
                     ("regbench::dropout op", lambda: dropout_op(x, P, SEED, 0))):
        run.ours("dropout_call", impl, "fp32", CALL_NUMEL, th, measure(fn, th, run.min_time),
                 None, None, natives)


def target_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The performance targets as measured in this run: ratios of one run, met or missed."""
    out = []

    def pick(op: str, dtype: str, numel: int | None, threads: int) -> dict[str, Any] | None:
        for r in rows:
            if (r["op"] == op and r["impl"] == "fused" and r["dtype"] == dtype
                    and (numel is None or r["numel"] == numel) and r["threads"] == threads):
                return r
        return None

    for th in sorted({r["threads"] for r in rows}):
        for label, op, dt, n, key, limit in (
            ("bf16 dropout fwd / copy_, 16M", "dropout_fwd", "bf16", 2**24, "ratio_vs_copy", 1.5),
            ("fp32 dropout fwd / copy_, 1M (in cache)", "dropout_fwd", "fp32", 2**20,
             "ratio_vs_copy", 1.5),
            ("bf16 dropout fwd / copy_, 1M (in cache)", "dropout_fwd", "bf16", 2**20,
             "ratio_vs_copy", 1.5),
            ("fixed cost of K.dropout, us", "dropout_call", "fp32", CALL_NUMEL, "median_s", 3e-6),
        ):
            r = pick(op, dt, n, th)
            if r is None or r[key] is None:
                continue
            v = r[key]
            shown = f"{v * 1e6:.2f} us" if key == "median_s" else f"{v:.2f}x"
            lim = f"{limit * 1e6:.0f} us" if key == "median_s" else f"{limit}x"
            verdict = "met" if v <= limit else f"MISSED by {v / limit:.2f}x"
            out.append(f"{label}, {th} thread(s): {shown} (target <= {lim}): {verdict}")
        for r in rows:
            if r["threads"] != th or r["impl"] is None or not r["ratio_vs_native"]:
                continue
            need = OPTIM_TARGETS.get((r["op"], r["impl"], r["baseline"]))
            if need is None:
                continue
            speed = 1.0 / r["ratio_vs_native"]
            verdict = "met" if speed >= need else f"MISSED by {need / speed:.2f}x"
            out.append(f"{r['impl']} vs {r['baseline']}, {r['dtype']} {_fmt_n(r['numel'])}, "
                       f"{th} thread(s): {speed:.2f}x faster (target >= {need}x): {verdict}")
    return out


def saved_bytes() -> dict[str, int]:
    """Bytes autograd saves for backward for a 1M-element fp32 dropout, per implementation."""
    out: dict[str, int] = {}
    x = torch.randn(2**20, requires_grad=True)
    impls: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "F.dropout": lambda t: F.dropout(t, P, True),
        "fused": lambda t: K.dropout(t, P, SEED, 0),
        "FusedDropout": FusedDropout(P, seed=SEED),
    }
    for name, fn in impls.items():
        total = [0]

        def pack(t: torch.Tensor, total: list[int] = total) -> torch.Tensor:
            total[0] += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(x)
        out[name] = total[0]
    return out


def bench_bda(run: _Run, dt: str, n: int, th: int, copy_s: float) -> None:
    dtype = DTYPES[dt]
    h = 1024 if n >= 1024 else n
    rows = n // h
    g = torch.Generator().manual_seed(n + 1)
    x = torch.randn(rows, h, generator=g).to(dtype)
    b = torch.randn(h, generator=g).to(dtype)
    r = torch.randn(rows, h, generator=g).to(dtype)
    nn_ = rows * h
    es = x.element_size()
    y = K.bias_dropout_add(x, b, r, P, SEED, 0)
    m = min(rows, max(1, 2**20 // h))
    if not torch.equal(y[:m], R.bias_dropout_add(x[:m], b, r[:m], P, SEED, 0)):
        raise AssertionError("fused bias_dropout_add differs from the reference")

    def eager() -> torch.Tensor:
        return r + F.dropout(x + b, P, True)

    natives: dict[str, float] = {}
    t_e = measure(eager, th, run.min_time)
    natives["x+b, F.dropout, +r"] = t_e[0]
    run.row("bias_dropout_add", "x+b, F.dropout, +r", dt, nn_, th, t_e, 3 * es * nn_, copy_s)
    if run.compile:
        cf = _compiled(lambda a, bb, rr: rr + F.dropout(a + bb, P, True))
        t_c = measure(lambda: cf(x, b, r), th, run.min_time)
        natives["compile(x+b, F.dropout, +r)"] = t_c[0]
        run.row("bias_dropout_add", "compile(x+b, F.dropout, +r)", dt, nn_, th, t_c,
                3 * es * nn_, copy_s)
    t_f = measure(lambda: K.bias_dropout_add(x, b, r, P, SEED, 0), th, run.min_time)
    run.ours("bias_dropout_add", "fused", dt, nn_, th, t_f, 3 * es * nn_, copy_s, natives)


def _param_list(n: int, dtype: torch.dtype) -> list[torch.Tensor]:
    """Parameters of total size ~n shaped like an MLP: a few matrices and their biases."""
    g = torch.Generator().manual_seed(n + 2)
    sizes = [n // 4] * 4
    sizes[-1] += n - sum(sizes)
    ps = []
    for s in sizes:
        ps.append(nn.Parameter(torch.randn(s, generator=g).to(dtype) * 0.1))
        ps[-1].grad = torch.randn(s, generator=g).to(dtype)
    return ps


def bench_l2(run: _Run, dt: str, n: int, th: int, copy_s: float) -> None:
    dtype = DTYPES[dt]
    ps = _param_list(n, dtype)
    grads = [p.grad for p in ps]
    es = ps[0].element_size()
    # one check against the reference (bitwise) on copies
    if n <= 2**22:
        g1 = [g.clone() for g in grads]
        g2 = [g.clone() for g in grads]
        a = K.l2_flat_(ps[0].detach(), g1[0], LAM)
        b = R.l2_update_([g2[0]], [ps[0].detach()], LAM)
        if not (torch.equal(a, b) and torch.equal(g1[0], g2[0])):
            raise AssertionError("fused l2_ differs from the reference")

    def penalty_in_loss() -> None:
        loss = 0.5 * LAM * sum((p * p).sum() for p in ps)
        loss.backward()

    def foreach() -> torch.Tensor:
        torch._foreach_add_(grads, ps, alpha=LAM)
        norms = torch._foreach_norm(ps)
        return 0.5 * LAM * torch.stack(norms).double().square().sum()

    def foreach_grad_only() -> None:
        torch._foreach_add_(grads, ps, alpha=LAM)

    natives: dict[str, float] = {}
    for name, fn in (("penalty in loss + autograd", penalty_in_loss),
                     ("torch._foreach_* (grad + value)", foreach),
                     ("torch._foreach_add_ (grad only)", foreach_grad_only)):
        t = measure(fn, th, run.min_time)
        natives[name] = t[0]
        run.row("l2", name, dt, n, th, t, 3 * es * n, copy_s)
    # weight decay inside the fused SGD step vs l2_ + the same step without weight decay
    try:
        opt_wd = torch.optim.SGD(ps, lr=1e-6, weight_decay=LAM, fused=True)
        opt_0 = torch.optim.SGD(ps, lr=1e-6, fused=True)
        t_wd = measure(opt_wd.step, th, run.min_time)
        run.row("l2_sgd_step", "SGD(fused=True, weight_decay)", dt, n, th, t_wd, None, copy_s)
        t_ours = measure(lambda: (K.l2_(ps, LAM), opt_0.step()), th, run.min_time)
        run.ours("l2_sgd_step", "l2_ + SGD(fused=True)", dt, n, th, t_ours, None, copy_s,
                 {"SGD(fused=True, weight_decay)": t_wd[0]})
    except (RuntimeError, ValueError) as exc:
        run.notes.append(f"SGD(fused=True) unavailable: {exc}")
    t_f = measure(lambda: K.l2_(ps, LAM), th, run.min_time)
    run.ours("l2", "fused l2_", dt, n, th, t_f, 3 * es * n, copy_s, natives)


def _wide_mlp(drop: Callable[[int], nn.Module]) -> nn.Module:
    """The seed-000 talk's 1-1000-1000-1 ReLU net, with `drop(i)` after each hidden layer."""
    g = torch.Generator().manual_seed(0)
    m = nn.Sequential(nn.Linear(1, 1000), nn.ReLU(), drop(0), nn.Linear(1000, 1000), nn.ReLU(),
                      drop(1), nn.Linear(1000, 1))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.03)
    return m


# The talk's step: all 21 points in one batch, SGD(lr=0.004, momentum=0.05), MSELoss(sum); and
# the same step on a 256-point batch, where the dropout layers weigh more against the matmuls.
MLP_BATCHES = (21, 256)
MLP_IMPLS: dict[str, Callable[[int], nn.Module]] = {
    "nn.Dropout": lambda i: nn.Dropout(P),
    "FusedDropout": lambda i: FusedDropout(P, seed=SEED + i),
    # No dropout at all: the fastest any dropout can make this step (its Amdahl ceiling).
    "no dropout (ceiling)": lambda i: nn.Identity(),
}


def bench_mlp(run: _Run, th: int) -> None:
    for batch in MLP_BATCHES:
        x = torch.linspace(0.0, 1.0, batch).view(batch, 1)
        y = torch.sin(6.0 * x)
        times = {}
        for name, drop in MLP_IMPLS.items():
            model = _wide_mlp(drop)
            opt = torch.optim.SGD(model.parameters(), lr=0.004, momentum=0.05)

            def step(model: nn.Module = model, opt: torch.optim.Optimizer = opt,
                     x: Tensor = x, y: Tensor = y) -> None:
                opt.zero_grad(set_to_none=True)
                F.mse_loss(model(x), y, reduction="sum").backward()
                opt.step()

            times[name] = measure(step, th, run.min_time)
        native = {"nn.Dropout": times["nn.Dropout"][0]}
        run.row("mlp_step", "nn.Dropout", "fp32", batch, th, times["nn.Dropout"], None, None)
        run.ours("mlp_step", "FusedDropout", "fp32", batch, th, times["FusedDropout"], None,
                 None, native)
        # No baseline (it is not one of ours), but its speed-up over nn.Dropout is printed.
        run.row("mlp_step", "no dropout (ceiling)", "fp32", batch, th,
                times["no dropout (ceiling)"], None, None, native_s=native["nn.Dropout"])


# --- driver -----------------------------------------------------------------------------------


def _fmt_n(n: int) -> str:
    for unit, v in (("M", 2**20), ("K", 2**10)):
        if n >= v and n % v == 0:
            return f"{n // v}{unit}"
    return str(n)


def print_table(rows: Sequence[dict[str, Any]], file: Any = None) -> None:
    """Human-readable table; 'x faster' = baseline time / our time."""
    file = file or sys.stdout
    head = (f"{'op':<17}{'impl':<32}{'vs baseline':<32}{'dtype':<6}{'numel':>6}{'thr':>4}"
            f"{'median ms':>11}{'IQR ms':>9}{'GB/s':>7}{'/copy':>7}{'x faster':>9}")
    print(head, file=file)
    print("-" * len(head), file=file)
    for r in rows:
        med = r["median_s"]
        speed = (1.0 / r["ratio_vs_native"]) if r["ratio_vs_native"] else None
        gbps = f"{r['gbps']:.1f}" if r["gbps"] else "-"
        vs_copy = f"{r['ratio_vs_copy']:.2f}" if r["ratio_vs_copy"] else "-"
        faster = f"{speed:.2f}" if speed else "-"
        print(
            f"{r['op']:<17}{r['impl']:<32}{(r['baseline'] or ''):<32}{r['dtype']:<6}"
            f"{_fmt_n(r['numel']):>6}{r['threads']:>4}{med * 1e3:>11.3f}"
            f"{r['iqr_s'] * 1e3:>9.3f}"
            f"{gbps:>7}{vs_copy:>7}{faster:>9}",
            file=file,
        )


def main(args: argparse.Namespace) -> int:
    """Run the benchmarks chosen by `args`; print the table; optionally store the rows."""
    sizes, threads, dtypes, ops = parse_arguments(args)
    clock = getattr(args, "clock", "wall")
    use_clock(clock)
    import torch._dynamo

    for knob in ("cache_size_limit", "recompile_limit"):
        if hasattr(torch._dynamo.config, knob):
            setattr(torch._dynamo.config, knob, 256)
    run = _Run(args)
    mach = _machine(max(threads))
    print(f"regbench bench: backend={run.backend} cpu={mach.get('cpu_model')} "
          f"cores={mach.get('cpu_count')} threads={threads} clock={clock} "
          f"torch={torch.__version__} "
          f"run_id={run.run_id}")
    if run.backend == "reference":
        print(f"WARNING: C++ kernels unavailable ({K.build_error()}); timing the reference")
    for th in threads:
        for dt in dtypes:
            for n in sizes:
                x = torch.randn(n).to(DTYPES[dt])
                dst = torch.empty_like(x)
                t_copy = measure(lambda x=x, dst=dst: dst.copy_(x), th, run.min_time)
                run.row("copy", "copy_", dt, n, th, t_copy, 2 * x.element_size() * n, t_copy[0])
                del x, dst
                c = t_copy[0]
                if "dropout" in ops:
                    bench_dropout(run, dt, n, th, c, fwdbwd=False)
                if "dropout_fwdbwd" in ops:
                    bench_dropout(run, dt, n, th, c, fwdbwd=True)
                if "bias_dropout_add" in ops:
                    bench_bda(run, dt, n, th, c)
                if "l2" in ops:
                    bench_l2(run, dt, n, th, c)
                if "optim" in ops:
                    bench_optim(run, dt, n, th, c)
        if "dropout_call" in ops:
            bench_call(run, th)
        if "mlp" in ops:
            bench_mlp(run, th)
    print_table(run.rows)
    if "dropout_fwdbwd" in ops or "dropout" in ops:
        sb = saved_bytes()
        print("bytes saved for backward (1M fp32 elements): "
              + ", ".join(f"{k}={v}" for k, v in sb.items()))
    print("targets: " + "; ".join(f"{k}: {v}" for k, v in TARGETS.items()))
    for line in target_lines(run.rows):
        print("target:", line)
    for note in run.notes:
        print("note:", note)
    if args.store:
        from regbench.store import Store

        with Store(args.store) as store:
            n = store.add_bench(run.rows)
        print(f"stored {n} rows in {args.store} (run_id {run.run_id})")
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    """`python -m regbench.bench [flags]`: the same flags as `regbench bench`."""
    parser = argparse.ArgumentParser(prog="python -m regbench.bench", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return main(args)
    except RegbenchError as exc:
        print(f"regbench.bench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(cli())
