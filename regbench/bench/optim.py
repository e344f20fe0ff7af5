"""`regbench bench --ops optim`: the fused optimizer steps vs torch.optim's fused CPU steps.

Parameters: `n` elements in 64 tensors (`--sizes 8M` is the setting of the documented
measurements), fp32, gradients preallocated. Rows (op, ours vs baseline;
ratio_vs_native = our time / theirs):

- optim_sgd_l2:      FusedSGD(l2=lam, momentum) vs SGD(fused=True, weight_decay=lam, momentum)
- optim_sgd_elastic: FusedSGD(l1, l2, momentum) vs penalty in the loss + autograd +
                     SGD(fused=True, momentum)
- optim_adamw:       FusedAdamW(weight_decay) vs AdamW(fused=True, weight_decay), and
                     FusedAdamW(weight_decay, sqrt="ieee") (IEEE sqrt, as torch's fused=True);
                     FusedAdamW(weight_decay) also vs AdamW(foreach=False, weight_decay), the
                     step it equals bit for bit (torch.sqrt's rounding)
- optim_adamw_l2:    FusedAdamW(weight_decay, l2) vs penalty in the loss + autograd +
                     AdamW(fused=True, weight_decay)

Each (ours, baseline) pair is timed in alternating rounds (`bench.measure.measure_pair`), so a drift
of the machine does not land on one side. lr is tiny so the parameters barely move while
timed. Before timing, one step of each fused
optimizer is checked bitwise against the reference composition on copies.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from regbench.bench.measure import DTYPES, measure_pair
from regbench.kernels import reference as KR
from regbench.optim.fused_adamw import FusedAdamW
from regbench.optim.fused_sgd import FusedSGD

__all__ = ["N_TENSORS", "bench_optim", "check_once", "param_list"]

N_TENSORS = 64
LAM2 = 1e-4
LAM1 = 1e-5
WD = 1e-2
LR = 1e-8
MOM = 0.9


def param_list(n: int, dtype: torch.dtype, k: int = N_TENSORS) -> list[nn.Parameter]:
    """k parameters of ~n/k elements (2-d, as the weights a penalty touches) with gradients."""
    g = torch.Generator().manual_seed(n + k)
    sizes = [n // k] * k
    sizes[-1] += n - sum(sizes)
    ps = []
    for s in sizes:
        p = nn.Parameter((torch.randn(s, generator=g) * 0.1).to(dtype).view(1, s))
        p.grad = torch.randn(1, s, generator=g).to(dtype)
        ps.append(p)
    return ps


def _copies(ps: list[nn.Parameter]) -> list[nn.Parameter]:
    out = []
    for p in ps:
        q = nn.Parameter(p.detach().clone())
        q.grad = p.grad.clone()
        out.append(q)
    return out


def check_once(ps: list[nn.Parameter]) -> None:
    """One step of FusedSGD / FusedAdamW == the reference composition (bitwise), on copies."""
    cases: list[tuple[Callable, Callable, float, float]] = [
        (lambda q: FusedSGD(q, lr=0.1, momentum=MOM, l2=LAM2, l1=LAM1),
         lambda q: torch.optim.SGD(q, lr=0.1, momentum=MOM, foreach=False), LAM2, LAM1),
        (lambda q: FusedAdamW(q, lr=1e-3, weight_decay=WD, l2=LAM2),
         lambda q: torch.optim.AdamW(q, lr=1e-3, weight_decay=WD, foreach=False), LAM2, 0.0),
    ]
    for fused, native, l2, l1 in cases:
        a, b = _copies(ps), _copies(ps)
        fused(a).step()
        KR.elastic_net_(b, l2, l1)
        native(b).step()
        if not all(torch.equal(x, y) for x, y in zip(a, b)):
            raise AssertionError("fused optimizer step differs from the reference composition")


def _penalty(ps: list[Tensor], l2: float, l1: float) -> Tensor:
    total = 0.5 * l2 * sum((p * p).sum() for p in ps)
    if l1:
        total = total + l1 * sum(p.abs().sum() for p in ps)
    return total


def bench_optim(run, dt: str, n: int, th: int, copy_s: float) -> None:  # noqa: ANN001
    """Add the optim_* rows for n fp32 elements on th threads to `run` (a bench.cpu._Run)."""
    dtype = DTYPES[dt]
    if dtype not in (torch.float32, torch.float64):
        run.notes.append(f"optim: {dt} has no fused C++ path (reference only); skipped")
        return
    ps = param_list(n, dtype)
    if n <= 2**22:
        check_once(ps)
    es = ps[0].element_size()

    def with_penalty(opt: torch.optim.Optimizer, l2: float, l1: float) -> Callable[[], None]:
        def step() -> None:
            _penalty(ps, l2, l1).backward()  # accumulates into the existing .grad
            opt.step()
        return step

    try:
        sgd_wd = torch.optim.SGD(ps, lr=LR, momentum=MOM, weight_decay=LAM2, fused=True)
        sgd = torch.optim.SGD(ps, lr=LR, momentum=MOM, fused=True)
        adamw = torch.optim.AdamW(ps, lr=LR, weight_decay=WD, fused=True)
        adamw_single = torch.optim.AdamW(ps, lr=LR, weight_decay=WD, foreach=False)
    except (RuntimeError, ValueError) as exc:
        run.notes.append(f"optim: torch fused=True optimizers unavailable: {exc}")
        return
    cases = [
        ("optim_sgd_l2", "FusedSGD(l2, momentum)",
         FusedSGD(ps, lr=LR, momentum=MOM, l2=LAM2).step,
         "SGD(fused=True, weight_decay, momentum)", sgd_wd.step, 5 * es * n),
        ("optim_sgd_elastic", "FusedSGD(l1, l2, momentum)",
         FusedSGD(ps, lr=LR, momentum=MOM, l2=LAM2, l1=LAM1).step,
         "penalty in loss + autograd + SGD(fused=True)", with_penalty(sgd, LAM2, LAM1),
         5 * es * n),
        ("optim_adamw", "FusedAdamW(weight_decay)",
         FusedAdamW(ps, lr=LR, weight_decay=WD).step,
         "AdamW(fused=True, weight_decay)", adamw.step, 7 * es * n),
        ("optim_adamw", "FusedAdamW(weight_decay)",
         FusedAdamW(ps, lr=LR, weight_decay=WD).step,
         "AdamW(foreach=False, weight_decay)", adamw_single.step, 7 * es * n),
        ("optim_adamw", 'FusedAdamW(weight_decay, sqrt="ieee")',
         FusedAdamW(ps, lr=LR, weight_decay=WD, sqrt="ieee").step,
         "AdamW(fused=True, weight_decay)", adamw.step, 7 * es * n),
        ("optim_adamw_l2", "FusedAdamW(weight_decay, l2)",
         FusedAdamW(ps, lr=LR, weight_decay=WD, l2=LAM2).step,
         "penalty in loss + autograd + AdamW(fused=True)", with_penalty(adamw, LAM2, 0.0),
         7 * es * n),
    ]
    for op, ours_name, ours, base_name, base, nbytes in cases:
        t_base, t_ours = measure_pair(base, ours, th, run.min_time)
        run.row(op, base_name, dt, n, th, t_base, nbytes, copy_s)
        run.ours(op, ours_name, dt, n, th, t_ours, nbytes, copy_s, {base_name: t_base[0]})
