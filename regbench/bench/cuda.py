"""GPU benchmark of the Triton kernels: `python -m regbench.bench.cuda [--store PATH]`.

In one process, with `triton.testing.do_bench` (median and IQR of the 0.25/0.5/0.75 quantiles),
over sizes 1M..256M elements and fp32/bf16:

- dropout forward and forward+backward vs `F.dropout` (native CUDA) and `torch.compile`;
- bias_dropout_add vs eager `residual + F.dropout(x + bias)` and its `torch.compile`;
- l2_ (grad += lam*theta and the penalty, one launch) vs `torch._foreach_*`, and an SGD step
  `SGD(fused=True, weight_decay=lam)` vs `l2_` + `SGD(fused=True)`;
- a same-size `copy_` into a preallocated tensor (the bandwidth roofline) in the same run;
- peak memory of an MLP training step with FusedDropout vs nn.Dropout.

Rows go to the results store (`Store(path).add_bench`, device "cuda", impl names as the CPU
bench so the report's throughput figure shows both) and a table with the GPU name, driver,
torch, CUDA and Triton versions is printed. The launch config the Triton autotuner chose for
each of our timed ops (elements per program, warps) is printed as a note under the table and
kept in the JSON output (`notes`). Exits with status 2 and a message without a GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from regbench import kernels as K
from regbench.bench.cpu import parse_size
from regbench.kernels import reference as R
from regbench.kernels.l2 import l2_op
from regbench.nn import FusedDropout

DEFAULT_SIZES = "1M,4M,16M,64M,256M"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
OPS = ("dropout", "dropout_fwdbwd", "bias_dropout_add", "l2", "sgd_step", "mlp_peakmem")
SEED = 1234
P = 0.5
LAM = 1e-4
HIDDEN = 1024  # last dim of bias_dropout_add inputs
N_L2_TENSORS = 64  # l2_ runs on a list of this many equal tensors


def no_cuda_message() -> str | None:
    """Why this benchmark cannot run here, or None when it can."""
    if not torch.cuda.is_available():
        return ("regbench.bench.cuda: no CUDA device is available (torch.cuda.is_available() "
                f"is False; torch {torch.__version__}, built with CUDA {torch.version.cuda}). "
                "Run it on a machine with an NVIDIA GPU; CPU throughput: "
                "`python -m regbench.bench`.")
    try:
        import triton  # noqa: F401
    except ImportError:
        return ("regbench.bench.cuda: Triton is not installed; install it with "
                "`pip install -e .[triton]`.")
    return None


def gpu_info(device: torch.device) -> dict[str, Any]:
    """GPU name, driver, torch / CUDA / Triton versions (best effort for the driver)."""
    import triton

    info: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda,
                            "triton": triton.__version__}
    if device.type == "cuda":
        prop = torch.cuda.get_device_properties(device)
        info.update(gpu=prop.name, gpu_mem_gib=round(prop.total_memory / 2**30, 1),
                    sm=f"{prop.major}.{prop.minor}", sms=prop.multi_processor_count)
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader",
                 f"--id={device.index or 0}"], capture_output=True, text=True, timeout=30)
            info["driver"] = out.stdout.strip() or "?"
        except (OSError, subprocess.SubprocessError):
            info["driver"] = "?"
    else:
        info.update(gpu="none (cpu dry run)", driver="-")
    return info


def _timer(device: torch.device, quick: bool) -> Callable[..., tuple[float, float]]:
    """fn -> (median_s, iqr_s). CUDA: triton.testing.do_bench; CPU (tests only): a short loop."""
    if device.type == "cuda":
        from triton.testing import do_bench

        def cuda_time(fn: Callable[[], Any], grad_to_none: list[torch.Tensor] | None = None
                      ) -> tuple[float, float]:
            q25, q50, q75 = do_bench(fn, warmup=10 if quick else 25, rep=30 if quick else 100,
                                     grad_to_none=grad_to_none, quantiles=[0.25, 0.5, 0.75])
            return q50 / 1e3, (q75 - q25) / 1e3

        return cuda_time

    def cpu_time(fn: Callable[[], Any], grad_to_none: list[torch.Tensor] | None = None
                 ) -> tuple[float, float]:
        fn()
        ts = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        ts.sort()
        return ts[1], ts[2] - ts[0]

    return cpu_time


class _Run:
    def __init__(self, device: torch.device, info: dict[str, Any], quick: bool,
                 compile_: bool) -> None:
        self.run_id = uuid.uuid4().hex[:12]
        self.device = device
        self.info = info
        self.machine = json.dumps({**info, "device": str(device)}, sort_keys=True)
        self.time = _timer(device, quick)
        self.compile = compile_
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def row(self, op: str, impl: str, dtype: str, numel: int, t: tuple[float, float],
            nbytes: float | None, copy_s: float | None, baseline: str | None = None,
            native_s: float | None = None, backend: str = "native") -> None:
        median, iqr = t
        self.rows.append({
            "run_id": self.run_id, "op": op, "impl": impl, "baseline": baseline,
            "backend": backend, "dtype": dtype, "numel": numel, "threads": 0,
            "device": self.device.type, "median_s": median, "iqr_s": iqr,
            "gbps": (nbytes / median / 1e9) if nbytes and median == median else None,
            "ratio_vs_native": (median / native_s) if native_s else None,
            "ratio_vs_copy": (median / copy_s) if copy_s else None,
            "machine": self.machine,
        })

    def note_config(self, op: str, dtype: str, numel: int, kernel: str) -> None:
        """Note the launch config our Triton `kernel` ran `op` with (last call: the timed one)."""
        if self.device.type != "cuda":
            return  # CPU dry run: the ops ran the C++ kernels, not Triton
        from regbench.kernels import triton as KT

        cfg = KT.last_configs().get(kernel)
        if cfg is not None:
            self.notes.append(f"{op} {dtype} n={numel}: Triton {kernel} kernel {cfg}")

    def ours(self, op: str, impl: str, dtype: str, numel: int, t: tuple[float, float],
             nbytes: float, copy_s: float, natives: dict[str, float]) -> None:
        """One row per baseline (ratio_vs_native = our time / that baseline's time)."""
        for name, s in natives.items():
            self.row(op, impl, dtype, numel, t, nbytes, copy_s, baseline=name, native_s=s,
                     backend="triton")


def _compiled(run: _Run, fn: Callable[..., Any]) -> Callable[..., Any] | None:
    if not run.compile:
        return None
    return torch.compile(fn, dynamic=False)


def bench_dropout(run: _Run, dt: str, n: int, copy_s: float, fwdbwd: bool) -> None:
    dtype, dev = DTYPES[dt], run.device
    x = torch.randn(n, dtype=dtype, device=dev)
    es = x.element_size()
    op = "dropout_fwdbwd" if fwdbwd else "dropout"
    y = K.dropout(x, P, SEED, 0)
    m = min(n, 2**16)  # bits check on a prefix (the reference is slow)
    if not torch.equal(y[:m].cpu(), R.dropout(x[:m].cpu(), P, SEED, 0)):
        raise AssertionError("Triton dropout differs from the reference")
    del y
    natives: dict[str, float] = {}
    if not fwdbwd:
        natives["F.dropout"] = run.time(lambda: F.dropout(x, P, True))[0]
        cf = _compiled(run, lambda t: F.dropout(t, P, True))
        if cf is not None:
            natives["compile(F.dropout)"] = run.time(lambda: cf(x))[0]
        t = run.time(lambda: K.dropout(x, P, SEED, 0))
        nbytes = 2 * n * es
    else:
        xg = x.clone().requires_grad_()
        gy = torch.randn_like(x)

        def native() -> None:
            F.dropout(xg, P, True).backward(gy)

        def ours() -> None:
            K.dropout(xg, P, SEED, 0).backward(gy)

        natives["F.dropout"] = run.time(native, grad_to_none=[xg])[0]
        cf = _compiled(run, lambda t: F.dropout(t, P, True))
        if cf is not None:
            natives["compile(F.dropout)"] = run.time(lambda: cf(xg).backward(gy),
                                                     grad_to_none=[xg])[0]
        t = run.time(ours, grad_to_none=[xg])
        nbytes = 4 * n * es  # read x, write y; read dy, write dx (no mask)
    run.note_config(op, dt, n, "dropout")
    for name, s in natives.items():
        run.row(op, name, dt, n, (s, math.nan), None, copy_s)
    run.ours(op, "fused", dt, n, t, nbytes, copy_s, natives)


def bench_bias_dropout_add(run: _Run, dt: str, n: int, copy_s: float) -> None:
    dtype, dev = DTYPES[dt], run.device
    rows = max(1, n // HIDDEN)
    x = torch.randn(rows, HIDDEN, dtype=dtype, device=dev)
    b = torch.randn(HIDDEN, dtype=dtype, device=dev)
    r = torch.randn(rows, HIDDEN, dtype=dtype, device=dev)
    numel = x.numel()

    def eager(t: torch.Tensor) -> torch.Tensor:
        return r + F.dropout(t + b, P, True)

    natives = {"eager": run.time(lambda: eager(x))[0]}
    cf = _compiled(run, eager)
    if cf is not None:
        natives["compile(eager)"] = run.time(lambda: cf(x))[0]
    t = run.time(lambda: K.bias_dropout_add(x, b, r, P, SEED, 0))
    run.note_config("bias_dropout_add", dt, numel, "dropout")
    for name, s in natives.items():
        run.row("bias_dropout_add", name, dt, numel, (s, math.nan), None, copy_s)
    run.ours("bias_dropout_add", "fused", dt, numel, t, 3 * numel * x.element_size(), copy_s,
             natives)


def _l2_lists(run: _Run, dt: str, n: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    k = max(1, n // N_L2_TENSORS)
    params = [torch.randn(k, dtype=DTYPES[dt], device=run.device) for _ in range(N_L2_TENSORS)]
    grads = [torch.randn_like(p) for p in params]
    return params, grads


def bench_l2(run: _Run, dt: str, n: int, copy_s: float) -> None:
    params, grads = _l2_lists(run, dt, n)
    numel = sum(p.numel() for p in params)

    def foreach() -> torch.Tensor:  # the same work: grad update and penalty
        torch._foreach_add_(grads, params, alpha=LAM)
        return 0.5 * LAM * torch.stack(torch._foreach_norm(params)).double().pow(2).sum()

    def foreach_update() -> None:  # the update alone (a lower bound for a foreach l2)
        torch._foreach_add_(grads, params, alpha=LAM)

    natives = {"_foreach_add_+_foreach_norm": run.time(foreach)[0],
               "_foreach_add_": run.time(foreach_update)[0]}
    t = run.time(lambda: l2_op(grads, params, LAM, 0.0))
    run.note_config("l2", dt, numel, "l2")
    for name, s in natives.items():
        run.row("l2", name, dt, numel, (s, math.nan), None, copy_s)
    run.ours("l2", "fused", dt, numel, t, 3 * numel * params[0].element_size(), copy_s, natives)


def bench_sgd_step(run: _Run, dt: str, n: int, copy_s: float) -> None:
    """An optimizer step with weight decay: SGD(fused, weight_decay) vs l2_ + SGD(fused)."""
    if run.device.type != "cuda":
        return
    params, grads = _l2_lists(run, dt, n)
    ps = [nn.Parameter(p) for p in params]
    for p, g in zip(ps, grads):
        p.grad = g
    numel = sum(p.numel() for p in ps)
    wd = torch.optim.SGD(ps, lr=1e-6, weight_decay=LAM, fused=True)
    plain = torch.optim.SGD(ps, lr=1e-6, fused=True)
    native = run.time(wd.step)[0]

    def ours() -> None:
        l2_op(grads, [p.detach() for p in ps], LAM, 0.0)
        plain.step()

    t = run.time(ours)
    run.row("sgd_step", "SGD(fused, weight_decay)", dt, numel, (native, math.nan), None, copy_s)
    run.ours("sgd_step", "l2_+SGD(fused)", dt, numel, t, 5 * numel * ps[0].element_size(),
             copy_s, {"SGD(fused, weight_decay)": native})


def mlp_peak_memory(run: _Run, dt: str, batch: int = 8192, width: int = 4096,
                    depth: int = 4) -> dict[str, Any]:
    """Peak memory and time of one fwd+bwd of an MLP with FusedDropout vs nn.Dropout."""
    dtype, dev = DTYPES[dt], run.device
    out: dict[str, Any] = {"dtype": dt, "batch": batch, "width": width, "depth": depth}
    for name in ("nn.Dropout", "FusedDropout"):
        layers: list[nn.Module] = []
        for i in range(depth):
            drop = nn.Dropout(P) if name == "nn.Dropout" else FusedDropout(P, seed=SEED + i)
            layers += [nn.Linear(width, width), nn.ReLU(), drop]
        model = nn.Sequential(*layers).to(dev, dtype).train()
        x = torch.randn(batch, width, dtype=dtype, device=dev)

        def step(model: nn.Module = model, x: torch.Tensor = x) -> None:
            model(x).float().pow(2).mean().backward()

        step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            step()
            torch.cuda.synchronize(dev)
            out[f"{name}_peak_bytes"] = torch.cuda.max_memory_allocated(dev) - base
        t = run.time(step, grad_to_none=list(model.parameters()))
        out[f"{name}_step_s"] = t[0]
        if name == "FusedDropout":  # seed / offset buffers on the GPU: the kernel reads them
            run.note_config("mlp_step", dt, batch * width, "dropout")
        run.row("mlp_step", name, dt, batch * width, t, None, None,
                backend="triton" if name == "FusedDropout" else "native")
        del model, x
    if "FusedDropout_peak_bytes" in out:
        out["saved_bytes"] = out["nn.Dropout_peak_bytes"] - out["FusedDropout_peak_bytes"]
        out["mask_bytes_native"] = depth * batch * width  # one bool per element per layer
    return out


def run_all(args: argparse.Namespace, device: torch.device) -> tuple[_Run, list[dict[str, Any]]]:
    """Every benchmark of the selected ops, sizes and dtypes on `device`."""
    info = gpu_info(device)
    run = _Run(device, info, args.quick, not args.no_compile)
    mem: list[dict[str, Any]] = []
    for dt in args.dtypes:
        for n in args.sizes:
            x = torch.randn(n, dtype=DTYPES[dt], device=device)
            dst = torch.empty_like(x)
            copy_t = run.time(lambda x=x, dst=dst: dst.copy_(x))
            run.row("copy", "copy_", dt, n, copy_t, 2 * n * x.element_size(), None)
            del x, dst
            copy_s = copy_t[0]
            if "dropout" in args.ops:
                bench_dropout(run, dt, n, copy_s, fwdbwd=False)
            if "dropout_fwdbwd" in args.ops:
                bench_dropout(run, dt, n, copy_s, fwdbwd=True)
            if "bias_dropout_add" in args.ops:
                bench_bias_dropout_add(run, dt, n, copy_s)
            if "l2" in args.ops:
                bench_l2(run, dt, n, copy_s)
            if "sgd_step" in args.ops:
                bench_sgd_step(run, dt, n, copy_s)
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if "mlp_peakmem" in args.ops:
            mem.append(mlp_peak_memory(run, dt, **({"batch": 64, "width": 64, "depth": 2}
                                                   if args.quick else {})))
    return run, mem


def format_table(run: _Run, mem: list[dict[str, Any]]) -> str:
    """A markdown table of the run (time, GB/s, x of copy_, speed-up vs each baseline)."""
    i = run.info
    lines = [
        f"GPU: {i.get('gpu')} (sm {i.get('sm', '-')}, {i.get('gpu_mem_gib', '-')} GiB), "
        f"driver {i.get('driver')}, torch {i['torch']} (CUDA {i['cuda']}), Triton {i['triton']}",
        "",
        "| op | dtype | numel | impl | vs | median us | GB/s | time / copy_ | speed-up |",
        "|---|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in run.rows:
        if r["backend"] != "triton" and r["op"] != "copy":
            continue
        sp = f"{1 / r['ratio_vs_native']:.2f}x" if r["ratio_vs_native"] else "-"
        gb = f"{r['gbps']:.0f}" if r["gbps"] else "-"
        vc = f"{r['ratio_vs_copy']:.2f}" if r["ratio_vs_copy"] else "-"
        lines.append(f"| {r['op']} | {r['dtype']} | {r['numel']} | {r['impl']} | "
                     f"{r['baseline'] or '-'} | {r['median_s'] * 1e6:.1f} | {gb} | {vc} | {sp} |")
    for m in mem:
        if "saved_bytes" in m:
            lines.append(
                f"\nMLP step ({m['dtype']}, batch {m['batch']}, width {m['width']}, depth "
                f"{m['depth']}): peak nn.Dropout {m['nn.Dropout_peak_bytes'] / 2**20:.1f} MiB, "
                f"FusedDropout {m['FusedDropout_peak_bytes'] / 2**20:.1f} MiB, saved "
                f"{m['saved_bytes'] / 2**20:.1f} MiB (native bool masks: "
                f"{m['mask_bytes_native'] / 2**20:.1f} MiB); step "
                f"{m['nn.Dropout_step_s'] * 1e3:.2f} ms vs {m['FusedDropout_step_s'] * 1e3:.2f} ms")
    if run.notes:
        lines.append("")
        lines.extend(f"note: {n}" for n in run.notes)
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m regbench.bench.cuda", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", help="results store (SQLite) to append the rows to")
    ap.add_argument("--sizes", default=DEFAULT_SIZES,
                    type=lambda s: [parse_size(t) for t in s.split(",") if t.strip()],
                    help=f"comma-separated element counts (default {DEFAULT_SIZES})")
    ap.add_argument("--dtypes", default="fp32,bf16",
                    type=lambda s: [t.strip() for t in s.split(",") if t.strip()])
    ap.add_argument("--ops", default=",".join(OPS),
                    type=lambda s: [t.strip() for t in s.split(",") if t.strip()])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile baselines")
    ap.add_argument("--json", help="also write rows, GPU info and peak memory to this JSON file")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bad = [d for d in args.dtypes if d not in DTYPES] + [o for o in args.ops if o not in OPS]
    if bad:
        print(f"regbench.bench.cuda: unknown dtype/op {bad}; dtypes {list(DTYPES)}, ops "
              f"{list(OPS)}", file=sys.stderr)
        return 2
    why = no_cuda_message()
    if why is not None:
        print(why, file=sys.stderr)
        return 2
    run, mem = run_all(args, torch.device("cuda"))
    print(format_table(run, mem))
    if args.store:
        from regbench.store import Store

        n = Store(args.store).add_bench(run.rows)
        print(f"\n{n} rows stored in {args.store} (run_id {run.run_id})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": run.info, "rows": run.rows, "memory": mem, "notes": run.notes}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
