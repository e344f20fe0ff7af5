"""Triton fused optimizer steps (kernels/triton/_optim.py) in the interpreter on CPU tensors:
bitwise equal to regbench.optim.reference (Adam: with IEEE sqrt, CUDA's torch.sqrt rounding).
Sizes are small: the interpreter is slow. The cuda test needs a GPU and skips without one."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

from regbench.kernels.triton import _optim as KTO  # noqa: E402
from regbench.optim import reference as R  # noqa: E402

SIZES = (1, 5, 1024, 1500)  # one and several table rows, ragged last row
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _lists(dtype: torch.dtype, k: int, seed: int = 3) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = [[torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for s in SIZES]
           for _ in range(k)]
    out[0][-1][0] = 0.0  # sign(0) = 0
    return out


def _clone(ls: list[list[torch.Tensor]]) -> list[list[torch.Tensor]]:
    return [[t.clone() for t in ts] for ts in ls]


def _eq(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", [
    dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=1e-2, l2=0.0, l1=0.0),
    dict(momentum=0.9, dampening=0.1, nesterov=False, weight_decay=1e-3, l2=1e-2, l1=1e-3),
    dict(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.0, l2=1e-2, l1=1e-3),
])
def test_sgd_bitwise_reference(dtype, case) -> None:
    ps, gs, bs = _lists(dtype, 3)
    for init in (True, False):
        a, b = _clone([ps, bs]), _clone([ps, bs])
        KTO.sgd_step_(a[0], gs, a[1], lr=0.05, init_bufs=init, **case)
        R.sgd_step_(b[0], gs, b[1], lr=0.05, init_bufs=init, **case)
        assert _eq(a[0], b[0])
        if case["momentum"]:
            assert _eq(a[1], b[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("decoupled", [True, False])
@pytest.mark.parametrize("betas,wd,l2,l1", [((0.9, 0.999), 1e-2, 0.0, 0.0),
                                            ((0.3, 0.99), 0.1, 1e-2, 1e-3)])
def test_adam_bitwise_reference_ieee_sqrt(dtype, decoupled, betas, wd, l2, l1) -> None:
    ps, gs, ms, vs = _lists(dtype, 4)
    vs = [v.abs() for v in vs]
    a, b = _clone([ps, ms, vs]), _clone([ps, ms, vs])
    sa = [torch.tensor(2.0) for _ in ps]
    sb = [torch.tensor(2.0) for _ in ps]
    kw = dict(lr=1e-2, beta1=betas[0], beta2=betas[1], eps=1e-8, weight_decay=wd,
              decoupled=decoupled, l2=l2, l1=l1)
    for _ in range(2):
        KTO.adamw_step_(a[0], gs, a[1], a[2], sa, **kw)
        R.adamw_step_(b[0], gs, b[1], b[2], sb, torch_sqrt=False, **kw)
    for x, y in zip(a, b):
        assert _eq(x, y)
    assert _eq(sa, sb) and float(sa[0]) == 4.0


def test_mixed_dtypes_one_launch_each_and_fallback() -> None:
    ps = [torch.randn(40), torch.randn(30, dtype=torch.float64), torch.randn(20).half()]
    gs = [torch.randn_like(p) for p in ps]
    bs = [torch.zeros_like(p) for p in ps]
    a = [p.clone() for p in ps]
    b = [p.clone() for p in ps]
    ba, bb = [x.clone() for x in bs], [x.clone() for x in bs]
    kw = dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0, l2=1e-2,
              l1=0.0, init_bufs=True)
    KTO.sgd_step_(a, gs, ba, **kw)
    R.sgd_step_(b, gs, bb, **kw)
    assert _eq(a, b) and _eq(ba, bb)


@cuda
def test_cuda_optimizers_run_triton_and_match_reference() -> None:
    from regbench.optim.fused_adamw import FusedAdamW
    from regbench.optim.fused_sgd import FusedSGD

    for make in (lambda q: FusedSGD(q, lr=0.1, momentum=0.9, l2=1e-2, l1=1e-3),
                 lambda q: FusedAdamW(q, lr=1e-2, l2=1e-2, l1=1e-3)):
        ps = [torch.randn(3000, device="cuda", requires_grad=True)]
        q = [p.detach().cpu().clone().requires_grad_() for p in ps]
        opt, ref = make(ps), make(q)
        for p, c in zip(ps, q):
            p.grad = torch.ones_like(p)
            c.grad = torch.ones_like(c)
        opt.step()
        ref.step()
        torch.testing.assert_close(ps[0].detach().cpu(), q[0].detach(), rtol=1e-5, atol=1e-6)
