"""pytest-benchmark cases for the fused kernels vs native PyTorch (run: pytest --benchmark-only).

Skipped by default (`--benchmark-skip` in pyproject). Each case checks its output against the
reference once, then times it; cases of one op share a `group` so the report compares them.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from regbench import kernels as K
from regbench.kernels import reference as R

N = 2**22
P = 0.5
SEED = 7
LAM = 1e-4


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(N, generator=torch.Generator().manual_seed(0))


def test_copy_roofline(benchmark, x) -> None:
    benchmark.group = "dropout_fwd"
    out = torch.empty_like(x)
    benchmark(out.copy_, x)
    assert torch.equal(out, x)


def test_dropout_fused(benchmark, x) -> None:
    benchmark.group = "dropout_fwd"
    benchmark.extra_info["backend"] = K.backend()
    assert torch.equal(K.dropout(x[:4099], P, SEED, 0), R.dropout(x[:4099], P, SEED, 0))
    y = benchmark(K.dropout, x, P, SEED, 0)
    assert torch.equal(y[:4099], R.dropout(x[:4099], P, SEED, 0))


def test_dropout_eager(benchmark, x) -> None:
    benchmark.group = "dropout_fwd"
    y = benchmark(F.dropout, x, P, True)
    assert y.shape == x.shape


def test_dropout_compiled(benchmark, x) -> None:
    benchmark.group = "dropout_fwd"
    cf = torch.compile(lambda t: F.dropout(t, P, True), dynamic=False)
    y = benchmark(cf, x)
    assert y.shape == x.shape


def test_dropout_fwdbwd_fused(benchmark, x) -> None:
    benchmark.group = "dropout_fwdbwd"
    xr = x.clone().requires_grad_(True)
    dy = torch.ones_like(x)

    def step() -> torch.Tensor:
        return torch.autograd.grad(K.dropout(xr, P, SEED, 0), xr, dy)[0]

    gx = benchmark(step)
    assert torch.equal(gx[:4099], R.dropout(dy[:4099], P, SEED, 0))


def test_dropout_fwdbwd_eager(benchmark, x) -> None:
    benchmark.group = "dropout_fwdbwd"
    xr = x.clone().requires_grad_(True)
    dy = torch.ones_like(x)
    gx = benchmark(lambda: torch.autograd.grad(F.dropout(xr, P, True), xr, dy)[0])
    assert gx.shape == x.shape


def test_bias_dropout_add_fused(benchmark, x) -> None:
    benchmark.group = "bias_dropout_add"
    x2 = x.view(-1, 1024)
    b, r = x2[0].clone(), x2.flip(0)
    y = benchmark(K.bias_dropout_add, x2, b, r, P, SEED, 0)
    assert torch.equal(y[:5], R.bias_dropout_add(x2[:5], b, r[:5], P, SEED, 0))


def test_bias_dropout_add_eager(benchmark, x) -> None:
    benchmark.group = "bias_dropout_add"
    x2 = x.view(-1, 1024)
    b, r = x2[0].clone(), x2.flip(0)
    y = benchmark(lambda: r + F.dropout(x2 + b, P, True))
    assert y.shape == x2.shape


def _params(x: torch.Tensor) -> list[torch.nn.Parameter]:
    ps = [torch.nn.Parameter(t.clone()) for t in x.chunk(4)]
    for p in ps:
        p.grad = torch.zeros_like(p)
    return ps


def test_l2_fused(benchmark, x) -> None:
    benchmark.group = "l2"
    ps = _params(x)
    want = R.l2_update_([torch.zeros_like(p) for p in ps], [p.detach() for p in ps], LAM)
    assert torch.equal(K.l2_(ps, LAM), want)
    benchmark(K.l2_, ps, LAM)


def test_l2_penalty_in_loss(benchmark, x) -> None:
    benchmark.group = "l2"
    ps = _params(x)
    benchmark(lambda: (0.5 * LAM * sum((p * p).sum() for p in ps)).backward())


def test_l2_foreach(benchmark, x) -> None:
    benchmark.group = "l2"
    ps = _params(x)
    grads = [p.grad for p in ps]

    def step() -> torch.Tensor:
        torch._foreach_add_(grads, ps, alpha=LAM)
        return 0.5 * LAM * torch.stack(torch._foreach_norm(ps)).double().square().sum()

    benchmark(step)
