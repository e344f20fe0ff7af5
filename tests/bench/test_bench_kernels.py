"""pytest-benchmark cases: the fused kernels vs native PyTorch eager and torch.compile.

    python -m pytest tests/bench --benchmark-only [--benchmark-json=bench.json]

Skipped by the default `pytest` run (`--benchmark-skip` in pyproject; `--benchmark-only`
overrides it). One group per (op, size) holds ours, native eager and `torch.compile` of the
native code (plus the `copy_` roofline in the dropout_fwd groups). Every case checks its own
output once before timing: ours bitwise against `regbench.kernels.reference`, the native
ones against the same math (kept values scaled by 1 / (1 - p), the drop rate near p, the
L2 gradient and value). Timings use `benchmark.pedantic` with warm-up rounds, so the
first (compiling) call of `torch.compile` is never timed. `extra_info` names op, impl and
role for `python -m regbench.bench.pytest_json`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from regbench import kernels as K
from regbench.bench.cpu import MLP_BATCHES, MLP_IMPLS, _wide_mlp
from regbench.kernels import reference as R
from regbench.kernels.dropout import dropout_op

SIZES = [2**16, 2**20, 2**22]
P = 0.5
SEED = 7
LAM = 1e-4
ROUNDS = 10
CHECK = 2**20  # elements (a prefix: the mask depends on the global index) compared bitwise


def _label(n: int) -> str:
    if n < 2**10:
        return str(n)
    return f"{n // 2**20}M" if n >= 2**20 else f"{n // 2**10}K"


def _bench(benchmark: Any, fn: Callable[[], Any], *, op: str, impl: str, role: str,
           numel: int, nbytes: int | None, check: Callable[[Any], None],
           dtype: str = "fp32", iterations: int | None = None) -> Any:
    """Check fn's first output (this call also compiles), then time it with warm-up."""
    benchmark.group = f"{op} {dtype} numel={_label(numel)}" if dtype != "fp32" else (
        f"{op} numel={_label(numel)}")
    benchmark.extra_info.update(
        op=op, impl=impl, role=role, dtype=dtype, numel=numel,
        threads=torch.get_num_threads(), device="cpu", bytes=nbytes,
        backend=K.backend() if role == "ours" else "native")
    check(fn())
    iterations = iterations or max(1, 2**20 // numel)
    return benchmark.pedantic(fn, rounds=ROUNDS, iterations=iterations, warmup_rounds=2)


def _compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    return torch.compile(fn, dynamic=False)


@pytest.fixture(scope="module", params=SIZES, ids=_label)
def x(request: pytest.FixtureRequest) -> torch.Tensor:
    return torch.randn(request.param, generator=torch.Generator().manual_seed(0))


def _check_dropout_like(y: torch.Tensor, x: torch.Tensor, p: float = P) -> None:
    """Native dropout output: zeros and x / (1 - p), about a fraction p of zeros."""
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))
    assert abs(1 - kept.double().mean().item() - p) < 0.02


# --- dropout forward --------------------------------------------------------------------------


def test_dropout_fwd_copy(benchmark: Any, x: torch.Tensor) -> None:
    out = torch.empty_like(x)
    _bench(benchmark, lambda: out.copy_(x), op="dropout_fwd", impl="copy_", role="copy",
           numel=x.numel(), nbytes=8 * x.numel(), check=lambda y: torch.equal(y, x) or _fail())


def test_dropout_fwd_fused(benchmark: Any, x: torch.Tensor) -> None:
    m = min(x.numel(), CHECK)

    def check(y: torch.Tensor) -> None:
        assert torch.equal(y[:m], R.dropout(x[:m], P, SEED, 0))

    _bench(benchmark, lambda: K.dropout(x, P, SEED, 0), op="dropout_fwd", impl="fused",
           role="ours", numel=x.numel(), nbytes=8 * x.numel(), check=check)


def test_dropout_fwd_eager(benchmark: Any, x: torch.Tensor) -> None:
    _bench(benchmark, lambda: F.dropout(x, P, True), op="dropout_fwd", impl="F.dropout",
           role="native", numel=x.numel(), nbytes=8 * x.numel(),
           check=lambda y: _check_dropout_like(y, x))


def test_dropout_fwd_compiled(benchmark: Any, x: torch.Tensor) -> None:
    cf = _compiled(lambda t: F.dropout(t, P, True))
    _bench(benchmark, lambda: cf(x), op="dropout_fwd", impl="compile(F.dropout)",
           role="native", numel=x.numel(), nbytes=8 * x.numel(),
           check=lambda y: _check_dropout_like(y, x))


# --- bf16 dropout forward: Philox-bound where copy_ moves half the bytes (target <= 1.5x copy) --


@pytest.fixture(scope="module")
def x_bf16(x: torch.Tensor) -> torch.Tensor:
    return x.bfloat16()


def test_dropout_fwd_bf16_copy(benchmark: Any, x_bf16: torch.Tensor) -> None:
    out = torch.empty_like(x_bf16)
    _bench(benchmark, lambda: out.copy_(x_bf16), op="dropout_fwd", impl="copy_", role="copy",
           numel=x_bf16.numel(), nbytes=4 * x_bf16.numel(), dtype="bf16",
           check=lambda y: torch.equal(y, x_bf16) or _fail())


def test_dropout_fwd_bf16_fused(benchmark: Any, x_bf16: torch.Tensor) -> None:
    m = min(x_bf16.numel(), CHECK)

    def check(y: torch.Tensor) -> None:
        assert torch.equal(y[:m], R.dropout(x_bf16[:m], P, SEED, 0))

    _bench(benchmark, lambda: K.dropout(x_bf16, P, SEED, 0), op="dropout_fwd", impl="fused",
           role="ours", numel=x_bf16.numel(), nbytes=4 * x_bf16.numel(), dtype="bf16",
           check=check)


def test_dropout_fwd_bf16_eager(benchmark: Any, x_bf16: torch.Tensor) -> None:
    _bench(benchmark, lambda: F.dropout(x_bf16, P, True), op="dropout_fwd", impl="F.dropout",
           role="native", numel=x_bf16.numel(), nbytes=4 * x_bf16.numel(), dtype="bf16",
           check=lambda y: _check_dropout_like(y.float(), x_bf16.float()))


# --- the fixed cost of one eager call (target <= 3 us): 16 elements, the kernel is nanoseconds --

CALL_NUMEL = 16


@pytest.mark.parametrize("impl", ["fused", "regbench::dropout op", "F.dropout"])
def test_dropout_call_fixed_cost(benchmark: Any, impl: str) -> None:
    x = torch.randn(CALL_NUMEL, generator=torch.Generator().manual_seed(2))
    fn = {"fused": lambda: K.dropout(x, P, SEED, 0),
          "regbench::dropout op": lambda: dropout_op(x, P, SEED, 0),
          "F.dropout": lambda: F.dropout(x, P, True)}[impl]

    def check(y: torch.Tensor) -> None:
        if impl == "F.dropout":
            assert y.shape == x.shape and bool(((y == 0) | (y == 2 * x)).all())
        else:
            assert torch.equal(y, R.dropout(x, P, SEED, 0))

    _bench(benchmark, fn, op="dropout_call", impl=impl,
           role="native" if impl == "F.dropout" else "ours", numel=CALL_NUMEL, nbytes=None,
           check=check, iterations=1000)


# --- dropout forward + backward ----------------------------------------------------------------


@pytest.fixture
def fwdbwd(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dy = torch.randn(x.numel(), generator=torch.Generator().manual_seed(1))
    return x.clone().requires_grad_(True), dy


def test_dropout_fwdbwd_fused(benchmark: Any, fwdbwd: tuple[torch.Tensor, torch.Tensor]) -> None:
    xr, dy = fwdbwd
    m = min(xr.numel(), CHECK)

    def check(gx: torch.Tensor) -> None:
        assert torch.equal(gx[:m], R.dropout(dy[:m], P, SEED, 0))

    _bench(benchmark, lambda: torch.autograd.grad(K.dropout(xr, P, SEED, 0), xr, dy)[0],
           op="dropout_fwdbwd", impl="fused", role="ours", numel=xr.numel(),
           nbytes=16 * xr.numel(), check=check)


def test_dropout_fwdbwd_eager(benchmark: Any, fwdbwd: tuple[torch.Tensor, torch.Tensor]) -> None:
    xr, dy = fwdbwd
    _bench(benchmark, lambda: torch.autograd.grad(F.dropout(xr, P, True), xr, dy)[0],
           op="dropout_fwdbwd", impl="F.dropout", role="native", numel=xr.numel(),
           nbytes=16 * xr.numel(), check=lambda gx: _check_dropout_like(gx, dy))


def test_dropout_fwdbwd_compiled(benchmark: Any,
                                 fwdbwd: tuple[torch.Tensor, torch.Tensor]) -> None:
    xr, dy = fwdbwd
    cf = _compiled(lambda t: F.dropout(t, P, True))
    _bench(benchmark, lambda: torch.autograd.grad(cf(xr), xr, dy)[0],
           op="dropout_fwdbwd", impl="compile(F.dropout)", role="native", numel=xr.numel(),
           nbytes=16 * xr.numel(), check=lambda gx: _check_dropout_like(gx, dy))


# --- bias_dropout_add ----------------------------------------------------------------------------


@pytest.fixture
def bda(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x2 = x.view(-1, 1024)
    return x2, x2[0].clone(), x2.flip(0).contiguous()


def _check_bda_like(y: torch.Tensor, x2: torch.Tensor, b: torch.Tensor, r: torch.Tensor) -> None:
    _check_dropout_like(y - r, x2 + b)


def test_bias_dropout_add_fused(benchmark: Any, bda: tuple[torch.Tensor, ...]) -> None:
    x2, b, r = bda
    rows = min(x2.shape[0], CHECK // 1024)

    def check(y: torch.Tensor) -> None:
        assert torch.equal(y[:rows], R.bias_dropout_add(x2[:rows], b, r[:rows], P, SEED, 0))

    _bench(benchmark, lambda: K.bias_dropout_add(x2, b, r, P, SEED, 0), op="bias_dropout_add",
           impl="fused", role="ours", numel=x2.numel(), nbytes=12 * x2.numel(), check=check)


def test_bias_dropout_add_eager(benchmark: Any, bda: tuple[torch.Tensor, ...]) -> None:
    x2, b, r = bda
    _bench(benchmark, lambda: r + F.dropout(x2 + b, P, True), op="bias_dropout_add",
           impl="x+b, F.dropout, +r", role="native", numel=x2.numel(), nbytes=12 * x2.numel(),
           check=lambda y: _check_bda_like(y, x2, b, r))


def test_bias_dropout_add_compiled(benchmark: Any, bda: tuple[torch.Tensor, ...]) -> None:
    x2, b, r = bda
    cf = _compiled(lambda a, bb, rr: rr + F.dropout(a + bb, P, True))
    _bench(benchmark, lambda: cf(x2, b, r), op="bias_dropout_add",
           impl="compile(x+b, F.dropout, +r)", role="native", numel=x2.numel(),
           nbytes=12 * x2.numel(), check=lambda y: _check_bda_like(y, x2, b, r))


# --- l2 ------------------------------------------------------------------------------------------


@pytest.fixture
def params(x: torch.Tensor) -> list[torch.nn.Parameter]:
    ps = [torch.nn.Parameter(t.clone()) for t in x.chunk(4)]
    for p in ps:
        p.grad = torch.zeros_like(p)
    return ps


def _l2_want(ps: list[torch.nn.Parameter]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    grads = [torch.zeros_like(p) for p in ps]
    value = R.l2_update_(grads, [p.detach() for p in ps], LAM)
    return value, grads


def _check_l2_like(value: torch.Tensor | None, ps: list[torch.nn.Parameter],
                   want: tuple[torch.Tensor, list[torch.Tensor]]) -> None:
    """After one call from zero gradients: grad == lam * theta and value == the penalty
    (native code sums in fp32, so the value agrees to fp32 accuracy, not bitwise)."""
    if value is not None:
        torch.testing.assert_close(value.double(), want[0], rtol=1e-4, atol=0)
    for p, g in zip(ps, want[1]):
        torch.testing.assert_close(p.grad, g)


def test_l2_fused(benchmark: Any, params: list[torch.nn.Parameter]) -> None:
    want = _l2_want(params)

    def check(value: torch.Tensor) -> None:
        assert torch.equal(value, want[0])
        assert all(torch.equal(p.grad, g) for p, g in zip(params, want[1]))

    _bench(benchmark, lambda: K.l2_(params, LAM), op="l2", impl="fused l2_", role="ours",
           numel=sum(p.numel() for p in params), nbytes=12 * sum(p.numel() for p in params),
           check=check)


def test_l2_penalty_in_loss(benchmark: Any, params: list[torch.nn.Parameter]) -> None:
    want = _l2_want(params)

    def step() -> torch.Tensor:
        loss = 0.5 * LAM * sum((p * p).sum() for p in params)
        loss.backward()
        return loss.detach()

    n = sum(p.numel() for p in params)
    _bench(benchmark, step, op="l2", impl="penalty in loss + autograd", role="native",
           numel=n, nbytes=12 * n, check=lambda v: _check_l2_like(v, params, want))


def _foreach_step(ps: list[torch.nn.Parameter], grads: list[torch.Tensor]) -> torch.Tensor:
    torch._foreach_add_(grads, ps, alpha=LAM)
    return 0.5 * LAM * torch.stack(torch._foreach_norm(ps)).double().square().sum()


def test_l2_foreach(benchmark: Any, params: list[torch.nn.Parameter]) -> None:
    want = _l2_want(params)
    grads = [p.grad for p in params]
    n = sum(p.numel() for p in params)
    _bench(benchmark, lambda: _foreach_step(params, grads), op="l2",
           impl="torch._foreach_* (grad + value)", role="native", numel=n, nbytes=12 * n,
           check=lambda v: _check_l2_like(v, params, want))


def test_l2_foreach_compiled(benchmark: Any, params: list[torch.nn.Parameter]) -> None:
    want = _l2_want(params)
    grads = [p.grad for p in params]
    n = sum(p.numel() for p in params)
    cf = _compiled(_foreach_step)

    @torch.no_grad()
    def step() -> torch.Tensor:
        return cf(params, grads)

    _bench(benchmark, step, op="l2", impl="compile(torch._foreach_*)", role="native",
           numel=n, nbytes=12 * n, check=lambda v: _check_l2_like(v, params, want))


# --- end to end: the seed-000 wide MLP training step --------------------------------------


@pytest.mark.parametrize("batch", MLP_BATCHES)
@pytest.mark.parametrize("impl", list(MLP_IMPLS))
def test_mlp_step(benchmark: Any, impl: str, batch: int) -> None:
    x = torch.linspace(0.0, 1.0, batch).view(batch, 1)
    y = torch.sin(6.0 * x)
    model = _wide_mlp(MLP_IMPLS[impl])
    opt = torch.optim.SGD(model.parameters(), lr=0.004, momentum=0.05)

    def step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x), y, reduction="sum")
        loss.backward()
        opt.step()
        return loss.detach()

    def check(loss: torch.Tensor) -> None:
        assert torch.isfinite(loss)
        # a fresh copy gives the same first loss: FusedDropout's masks come from its seed
        if impl != "nn.Dropout":
            fresh = _wide_mlp(MLP_IMPLS[impl])
            assert torch.equal(F.mse_loss(fresh(x), y, reduction="sum").detach(), loss)

    benchmark.group = f"mlp_step batch={batch}"
    benchmark.extra_info.update(
        op="mlp_step", impl=impl, role="ours" if impl == "FusedDropout" else "native",
        dtype="fp32", numel=batch, threads=torch.get_num_threads(), device="cpu", bytes=None,
        backend=K.backend() if impl == "FusedDropout" else "native")
    check(step())
    benchmark.pedantic(step, rounds=ROUNDS, iterations=5, warmup_rounds=2)


def _fail() -> None:
    raise AssertionError("copy_ did not copy")
