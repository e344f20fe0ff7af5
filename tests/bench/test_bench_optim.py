"""pytest-benchmark cases: the fused optimizer steps vs torch.optim's fused=True CPU steps.

    python -m pytest tests/bench/test_bench_optim.py --benchmark-only

One group per (case, size): ours and the native baseline, fp32 parameters in 64 tensors (see
regbench.bench.optim). Before timing, every case checks one step on copies: ours bitwise
against the reference composition (penalty gradient, then torch.optim single-tensor), the
native baseline against the same reference to fp32 rounding (torch's fused=True kernels use
IEEE sqrt and their own tails, so not bitwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from regbench import kernels as K
from regbench.bench.optim import LAM1, LAM2, MOM, WD, check_once, param_list
from regbench.kernels import reference as KR
from regbench.optim.fused_adamw import FusedAdamW
from regbench.optim.fused_sgd import FusedSGD

SIZES = [2**20, 2**23]  # 1M and the 8M elements
ROUNDS = 5
LR = 1e-8

# case -> (ours, native, (l2, l1) the native case adds as a loss penalty, torch optimizer)
Make = Callable[[list], torch.optim.Optimizer]
CASES: dict[str, tuple[Make, Make, tuple[float, float]]] = {
    "sgd_l2": (lambda q: FusedSGD(q, lr=LR, momentum=MOM, l2=LAM2),
               lambda q: torch.optim.SGD(q, lr=LR, momentum=MOM, weight_decay=LAM2,
                                         fused=True), (0.0, 0.0)),
    "sgd_elastic": (lambda q: FusedSGD(q, lr=LR, momentum=MOM, l2=LAM2, l1=LAM1),
                    lambda q: torch.optim.SGD(q, lr=LR, momentum=MOM, fused=True),
                    (LAM2, LAM1)),
    "adamw": (lambda q: FusedAdamW(q, lr=LR, weight_decay=WD),
              lambda q: torch.optim.AdamW(q, lr=LR, weight_decay=WD, fused=True), (0.0, 0.0)),
}


def _label(n: int) -> str:
    return f"{n // 2**20}M"


@pytest.fixture(scope="module", params=SIZES, ids=_label)
def ps(request: pytest.FixtureRequest) -> list[torch.nn.Parameter]:
    out = param_list(request.param, torch.float32)
    check_once(out[:4])
    return out


def _step(opt: torch.optim.Optimizer, ps: list, pen: tuple[float, float]) -> Callable[[], None]:
    l2, l1 = pen
    if not (l2 or l1):
        return opt.step

    def step() -> None:
        total = 0.5 * l2 * sum((p * p).sum() for p in ps) + l1 * sum(p.abs().sum() for p in ps)
        total.backward()
        opt.step()
    return step


def _copies(ps: list) -> list[torch.nn.Parameter]:
    out = []
    for p in ps[:4]:
        q = torch.nn.Parameter(p.detach().clone())
        q.grad = p.grad.clone()
        out.append(q)
    return out


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("role", ["ours", "native"])
def test_optim_step(benchmark: Any, ps: list, case: str, role: str) -> None:
    ours, native, pen = CASES[case]
    # check one step on copies of the first tensors against the reference composition
    a, b = _copies(ps), _copies(ps)
    l2, l1 = (LAM2, LAM1) if case == "sgd_elastic" else ((LAM2, 0.0) if case == "sgd_l2"
                                                         else (0.0, 0.0))
    ref = {"sgd_l2": lambda q: torch.optim.SGD(q, lr=LR, momentum=MOM, foreach=False),
           "sgd_elastic": lambda q: torch.optim.SGD(q, lr=LR, momentum=MOM, foreach=False),
           "adamw": lambda q: torch.optim.AdamW(q, lr=LR, weight_decay=WD, foreach=False)}
    if l2 or l1:
        KR.elastic_net_(b, l2, l1)
    ref[case](b).step()
    if role == "ours":
        ours(a).step()
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    else:
        _step(native(a), a, pen)()
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)
    opt = (ours if role == "ours" else native)(ps)
    fn = opt.step if role == "ours" else _step(opt, ps, pen)
    benchmark.group = f"optim_{case} numel={_label(sum(p.numel() for p in ps))}"
    benchmark.extra_info.update(
        op=f"optim_{case}", impl=type(opt).__name__, role=role, dtype="fp32",
        numel=sum(p.numel() for p in ps), threads=torch.get_num_threads(), device="cpu",
        bytes=None, backend=K.backend() if role == "ours" else "native")
    benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=2)
