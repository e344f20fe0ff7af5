"""Fused L2 / elastic net: every backend bitwise equal to the reference; equal in value to
the penalty in the loss and to SGD weight decay."""

from __future__ import annotations

import pytest
import torch

from regbench import kernels as K
from regbench.kernels import reference as R
from regbench.kernels.l2 import l2_op

NATIVE = [b for b in ("avx512", "avx2", "scalar") if b in K.available_backends()]
DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
SIZES = [0, 1, 3, 17, 4096, 4097, 2**20 + 3]


def _tensors(dtype: torch.dtype, sizes=SIZES, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g, dtype=torch.float64).to(dtype) for n in sizes]


def _run(name: str, dtype: torch.dtype, lam: float, l1: float):
    params = _tensors(dtype)
    grads = _tensors(dtype, seed=1)
    with K.use_backend(name):
        pen = l2_op(grads, params, lam, l1)
    return pen, grads


@pytest.mark.parametrize("name", NATIVE)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("l1", [0.0, 3e-3])
def test_every_backend_matches_reference(name, dtype, l1) -> None:
    pen, grads = _run(name, dtype, 0.0137, l1)
    want_pen, want_grads = _run("reference", dtype, 0.0137, l1)
    assert pen.dtype == torch.float64 and pen.dim() == 0
    assert torch.equal(pen, want_pen)
    for g, w in zip(grads, want_grads, strict=True):
        assert torch.equal(g, w)


@pytest.mark.parametrize("name", NATIVE)
def test_threads_do_not_change_bits(name) -> None:
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = _run(name, torch.float32, 0.1, 0.01)
        torch.set_num_threads(2)
        b = _run(name, torch.float32, 0.1, 0.01)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(a[0], b[0])
    assert all(torch.equal(x, y) for x, y in zip(a[1], b[1], strict=True))


def _model() -> torch.nn.Module:
    torch.manual_seed(0)  # test-only: builds the same weights twice
    return torch.nn.Sequential(torch.nn.Linear(30, 50), torch.nn.ReLU(), torch.nn.Linear(50, 3))


def test_equals_penalty_in_loss() -> None:
    lam = 0.05
    x = torch.randn(16, 30, generator=torch.Generator().manual_seed(3))
    m1, m2 = _model(), _model()
    m1(x).square().mean().backward()
    pen = K.l2_(m1.parameters(), lam)
    loss2 = m2(x).square().mean()
    ref_pen = 0.5 * lam * sum((p.double() ** 2).sum() for p in m2.parameters())
    (loss2 + 0.5 * lam * sum((p**2).sum() for p in m2.parameters())).backward()
    torch.testing.assert_close(pen, ref_pen, rtol=1e-12, atol=0)
    for p1, p2 in zip(m1.parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-6, atol=1e-7)


def test_equals_sgd_weight_decay() -> None:
    lam, lr = 0.05, 0.1
    x = torch.randn(16, 30, generator=torch.Generator().manual_seed(4))
    m1, m2 = _model(), _model()
    m1(x).sum().backward()
    K.l2_(m1.parameters(), lam)
    torch.optim.SGD(m1.parameters(), lr=lr).step()
    m2(x).sum().backward()
    torch.optim.SGD(m2.parameters(), lr=lr, weight_decay=lam).step()
    for p1, p2 in zip(m1.parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(p1, p2, rtol=1e-6, atol=1e-7)


def test_elastic_net_value_and_missing_grad() -> None:
    p = torch.nn.Parameter(torch.tensor([-2.0, 0.0, 3.0]))
    pen = K.elastic_net_([p], 0.5, 0.25)
    assert torch.equal(p.grad, torch.tensor([-1.0 - 0.25, 0.0, 1.5 + 0.25]))
    assert float(pen) == 0.5 * 0.5 * 13.0 + 0.25 * 5.0


def test_flat_buffer() -> None:
    param, grad = _tensors(torch.float32, [10_000])[0], torch.zeros(10_000)
    want = torch.zeros(10_000)
    pen = K.l2_flat_(param, grad, 0.2, 0.1)
    want_pen = R.l2_update_([want], [param], 0.2, 0.1)
    assert torch.equal(pen, want_pen) and torch.equal(grad, want)


@pytest.mark.parametrize("lam,match", [(-1.0, "-1.0"), (float("nan"), "nan")])
def test_bad_coefficients_name_the_value(lam, match) -> None:
    p = torch.nn.Parameter(torch.randn(3))
    with pytest.raises(ValueError, match=match):
        K.l2_([p], lam)


def test_mismatched_grad_raises() -> None:
    with pytest.raises(ValueError, match="float16"):
        K.l2_flat_(torch.randn(4), torch.zeros(4, dtype=torch.float16), 0.1)


def test_opcheck_and_compile() -> None:
    params = [torch.randn(10), torch.randn(3, 3)]
    grads = [torch.randn(10), torch.randn(3, 3)]
    torch.library.opcheck(l2_op, (grads, params, 0.1, 0.01))

    def step(g: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return l2_op([g], [p], 0.1, 0.0) * 2

    p = torch.randn(100)
    g1, g2 = torch.zeros(100), torch.zeros(100)
    out = torch.compile(step, fullgraph=True)(g1, p)
    assert torch.equal(out, step(g2, p)) and torch.equal(g1, g2)
