"""Fused dropout / bias_dropout_add: every backend bitwise equal to the reference."""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys

import pytest
import torch

from regbench import kernels as K
from regbench.kernels import reference as R
from regbench.kernels.dropout import bias_dropout_add_op, dropout_op, dropout_st_op

NATIVE = [b for b in ("avx512", "avx2", "scalar") if b in K.available_backends()]
DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
SHAPES = [(0,), (1,), (3,), (4,), (5,), (1023,), (2**20 + 3,)]
PS = [1e-7, 0.1, 0.5, 0.9, 1.0]
SEED = (3 << 32) | 12345


@functools.cache
def _x(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(sum(shape) + 1)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


@functools.cache
def _ref(shape, dtype, p, seed, offset) -> torch.Tensor:
    return R.dropout(_x(shape, dtype), p, seed, offset)


def _run(name: str, *args, **kw) -> torch.Tensor:
    with K.use_backend(name):
        return K.dropout(*args, **kw)


@pytest.mark.parametrize("name", NATIVE)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("p", PS)
def test_fp32_every_shape_and_p(name, shape, p) -> None:
    x = _x(shape, torch.float32)
    assert torch.equal(_run(name, x, p, SEED, 2**32 - 1), _ref(shape, torch.float32, p, SEED,
                                                            2**32 - 1))


@pytest.mark.parametrize("name", NATIVE)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(5,), (1023,), (3, 77)], ids=str)
@pytest.mark.parametrize("offset", [0, 2**31 + 7, 2**32 - 1, 2**40 + 3])
def test_dtypes_and_offsets(name, dtype, shape, offset) -> None:
    x = _x(shape, dtype)
    y = _run(name, x, 0.3, SEED, offset)
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.equal(y, _ref(shape, dtype, 0.3, SEED, offset))


@pytest.mark.parametrize("name", NATIVE)
def test_non_contiguous_and_broadcast(name) -> None:
    base = _x((33, 64), torch.float32)
    for x in (base.t(), base[:, ::3], torch.randn(1, 37).expand(5, 37)):
        assert not x.is_contiguous()
        y = _run(name, x, 0.4, 9, 100)
        assert torch.equal(y, R.dropout(x, 0.4, 9, 100))
        assert torch.equal(y, _run(name, x.contiguous(), 0.4, 9, 100))


@pytest.mark.parametrize("name", NATIVE)
def test_threads_do_not_change_bits(name) -> None:
    x = _x((2**20 + 3,), torch.float32)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1 = _run(name, x, 0.5, SEED, 2**31 + 1)
        torch.set_num_threads(2)
        y2 = _run(name, x, 0.5, SEED, 2**31 + 1)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(y1, y2)


@pytest.mark.parametrize("name", NATIVE)
def test_large_outputs_stream_and_reuse_cached_blocks(name) -> None:
    # >= 16 MiB: non-temporal stores and the block cache; the second call gets the first
    # call's freed block (stale contents) and must still match the reference bit for bit.
    x = _x((2**22 + 37,), torch.float32)
    K.empty_cache()
    assert K.cached_bytes() == 0
    for p, seed in ((0.1, SEED), (1.0, 5), (0.5, 6)):
        y = _run(name, x, p, seed, 2**32 - 3)
        assert torch.equal(y, R.dropout(x, p, seed, 2**32 - 3))
        ptr = y.data_ptr()
        del y
        assert K.cached_bytes() >= x.numel() * 4
        assert _run(name, x, p, seed + 1, 0).data_ptr() == ptr
    y = _run(name, x, 0.5, 1, 0)
    y.resize_(2 * x.numel())  # an ordinary CPU tensor: its storage can grow
    assert y.numel() == 2 * x.numel()
    del y
    K.empty_cache()
    assert K.cached_bytes() == 0


@pytest.mark.slow
def test_block_cache_can_be_turned_off() -> None:
    code = (
        "import torch; from regbench import kernels as K\n"
        "y = K.dropout(torch.ones(2**22), 0.5, 1, 0); del y\n"
        "print(K.cached_bytes())\n"
    )
    env = dict(os.environ, REGBENCH_CPU_CACHE_MB="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "0"


def _special_values(dtype: torch.dtype) -> torch.Tensor:
    """Every class the fp32 -> bf16/fp16 conversion treats apart: signed zeros, denormals of
    the dtype (and fp32 denormals that round into it), the largest finite values (x2 gives
    inf), inf, NaNs with payloads and signs, and values exactly halfway between two bf16 /
    fp16 neighbours (round to even)."""
    fi = torch.finfo(dtype)
    bits = [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00400000, 0x00008000,
            0x00018000, 0x3F808000, 0x3F818000, 0x3F80FFFF, 0xBF808000, 0x7F7FFFFF, 0xFF7FFFFF,
            0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FBFFFFF,
            0x7FFFFFFF, 0xFFFFFFFF, 0x7F7F8000, 0x477FF000, 0x33800000, 0x33000001]
    f32 = torch.tensor(bits, dtype=torch.int64).to(torch.int32).view(torch.float32)
    typed = torch.tensor([fi.max, -fi.max, fi.tiny, fi.smallest_normal / 4, -fi.tiny / 8,
                          fi.eps, 1.0, -2.5], dtype=dtype)
    vals = torch.cat([f32.to(dtype), typed, f32.to(dtype).neg()])
    return vals.repeat(40)  # long enough for full SIMD batches and a tail


def _assert_same_bits_except_nan_payloads(got: torch.Tensor, want: torch.Tensor) -> None:
    """Bitwise equal wherever the reference is not NaN, NaN exactly where it is NaN.

    NaN bits are not pinned by the reference: torch's own fp32 -> bf16 cast gives 0xffff from
    its vectorized loop and 0x7fc0 (c10::BFloat16) from its scalar one, so `R.dropout` of a NaN
    depends on where the element sits. Which NaN each of our paths writes is checked apart."""
    gn, wn = got.isnan(), want.isnan()
    assert torch.equal(gn, wn)
    assert torch.equal(got[~gn].view(torch.int16), want[~wn].view(torch.int16))


@pytest.mark.parametrize("name", NATIVE)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("p", [0.1, 0.5, 1 / 3])
def test_half_dtypes_special_values_bitwise(name, dtype, p) -> None:
    """Denormals, NaN payloads, inf and overflow to inf: the bits are the contract's (fp32
    multiply, then one round-to-nearest-even cast)."""
    x = _special_values(dtype)
    for offset in (0, 2**32 - 1):
        got = _run(name, x, p, SEED, offset)
        _assert_same_bits_except_nan_payloads(got, R.dropout(x, p, SEED, offset))
        if dtype == torch.bfloat16:  # every CPU path writes the canonical quiet NaN
            assert set(got[got.isnan()].view(torch.int16).tolist()) <= {0x7FC0}
    b = _special_values(dtype)[:7]
    xb = x[: 7 * (x.numel() // 7)].view(-1, 7)
    with K.use_backend(name):
        got = K.bias_dropout_add(xb, b, xb.flip(0), p, SEED, 3)
    _assert_same_bits_except_nan_payloads(got, R.bias_dropout_add(xb, b, xb.flip(0), p, SEED, 3))


def test_mask_independent_of_dtype_and_continues_with_offset() -> None:
    x = torch.ones(64)
    keep32 = K.dropout(x, 0.5, 1, 10) != 0
    keep16 = K.dropout(x.half(), 0.5, 1, 10) != 0
    assert torch.equal(keep32, keep16)
    # elements 8.. of a call at offset 10 are elements 0.. of a call at offset 12
    assert torch.equal(keep32[8:], K.dropout(x[8:], 0.5, 1, 12) != 0)
    assert not torch.equal(keep32, K.dropout(x, 0.5, 2, 10) != 0)


def test_identity_when_not_training_or_p_zero() -> None:
    x = torch.randn(10)
    assert K.dropout(x, 0.5, 1, 0, training=False) is x
    assert K.dropout(x, 0.0, 1, 0) is x


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_fraction_and_mean(p) -> None:
    n = 2**20
    y = K.dropout(torch.ones(n), p, 77, 0)
    kept = int((y != 0).sum())
    sd = math.sqrt(n * p * (1 - p))
    assert abs(kept - n * (1 - p)) < 6 * sd
    assert abs(float(y.double().mean()) - 1.0) < 6 * math.sqrt(p / ((1 - p) * n))


def test_p_one_gives_zeros() -> None:
    x = torch.tensor([1.0, float("inf"), float("nan"), -2.0])
    assert torch.equal(K.dropout(x, 1.0, 1, 0), torch.zeros(4))


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(p=-0.1), ValueError, "-0.1"),
        (dict(p=1.5), ValueError, "1.5"),
        (dict(p=float("nan")), ValueError, "nan"),
        (dict(seed=-3), ValueError, "-3"),
        (dict(offset=-8), ValueError, "-8"),
        (dict(x=torch.arange(4)), TypeError, "torch.int64"),
    ],
)
def test_bad_inputs_name_the_value(kwargs, exc, match) -> None:
    args = dict(x=torch.randn(4), p=0.5, seed=1, offset=0) | kwargs
    with pytest.raises(exc, match=match):
        K.dropout(**args)


def test_backward_regenerates_mask_and_saves_nothing_large() -> None:
    x = torch.randn(1000, requires_grad=True)
    saved: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = K.dropout(x, 0.3, 5, 6)
        y2 = K.dropout(x, 0.3, torch.tensor(5), torch.tensor(6))
    assert sum(saved) <= 2  # only the two int64 scalars of the tensor-(seed, offset) variant
    dy = torch.randn(1000)
    (gx,) = torch.autograd.grad(y, x, dy)
    assert torch.equal(gx, R.dropout(dy, 0.3, 5, 6))
    assert torch.equal(y, y2)


def test_gradcheck_fp64() -> None:
    x = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    b = torch.randn(7, dtype=torch.float64, requires_grad=True)
    r = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: K.dropout(t, 0.3, 11, 5), (x,))
    assert torch.autograd.gradcheck(lambda t, u, v: K.bias_dropout_add(t, u, v, 0.3, 11, 5),
                                    (x, b, r))
    assert torch.autograd.gradgradcheck(lambda t: K.dropout(t, 0.3, 11, 5), (x,))
    assert torch.autograd.gradgradcheck(
        lambda t, u, v: K.bias_dropout_add(t, u, v, 0.3, 11, 5), (x, b, r))


def test_eager_autograd_path_matches_the_registered_ops() -> None:
    # the public functions take a lighter autograd.Function in eager mode; same bits as the ops
    x = torch.randn(9, 13, requires_grad=True)
    b = torch.randn(13, requires_grad=True)
    r = torch.randn(9, 13, requires_grad=True)
    dy = torch.randn(9, 13)
    for fast, op in (
        (lambda: K.dropout(x, 0.4, 3, 2**33), lambda: dropout_op(x, 0.4, 3, 2**33)),
        (lambda: K.dropout(x, 0.4, torch.tensor(3), torch.tensor(2**33)),
         lambda: dropout_st_op(x, 0.4, torch.tensor(3), torch.tensor(2**33))),
        (lambda: K.bias_dropout_add(x, b, r, 0.4, 3, 7),
         lambda: bias_dropout_add_op(x, b, r, 0.4, 3, 7)),
    ):
        y1, y2 = fast(), op()
        assert type(y1.grad_fn).__name__ != type(y2.grad_fn).__name__
        assert torch.equal(y1, y2)
        g1 = torch.autograd.grad(y1, (x, b, r), dy, allow_unused=True)
        g2 = torch.autograd.grad(y2, (x, b, r), dy, allow_unused=True)
        for u, v in zip(g1, g2):
            assert (u is None and v is None) or torch.equal(u, v)


def test_opcheck() -> None:
    x = torch.randn(5, 7, requires_grad=True)
    b = torch.randn(7, requires_grad=True)
    r = torch.randn(5, 7, requires_grad=True)
    torch.library.opcheck(dropout_op, (x, 0.5, 3, 7))
    torch.library.opcheck(dropout_st_op, (x, 0.5, torch.tensor(3), torch.tensor(7)))
    torch.library.opcheck(bias_dropout_add_op, (x, b, r, 0.5, 3, 7))
    torch.library.opcheck(bias_dropout_add_op, (x, None, None, 0.5, 3, 7))
    # permuted layouts: the fake impl's strides (torch.empty_like) are the real ones
    xc = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last).requires_grad_()
    torch.library.opcheck(dropout_op, (xc, 0.5, 3, 7))
    torch.library.opcheck(dropout_st_op, (xc, 0.5, torch.tensor(3), torch.tensor(7)))
    torch.library.opcheck(dropout_op, (torch.randn(6, 5).t().requires_grad_(), 0.5, 3, 7))


def test_gradcheck_channels_last_and_in_place() -> None:
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64).to(memory_format=torch.channels_last)
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: K.dropout(t, 0.3, 11, 5), (x,))
    assert torch.autograd.gradcheck(lambda t: K.dropout(t * 1, 0.3, 11, 5, inplace=True), (x,))
    assert torch.autograd.gradgradcheck(lambda t: K.dropout(t * 1, 0.3, 11, 5, inplace=True),
                                        (x,))


@pytest.mark.parametrize("name", NATIVE + ["reference"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_layout_follows_empty_like_and_bits_follow_the_logical_index(name, dtype) -> None:
    """channels_last, transposed and sliced inputs: the output has torch.empty_like(x)'s
    strides and the values of the contiguous input (bitwise, every dtype and backend), for
    dropout, its in-place form and bias_dropout_add."""
    base = _x((3, 4, 5, 6), dtype)
    cases = [base.to(memory_format=torch.channels_last), base.permute(3, 1, 0, 2),
             base[:, :, 1:, ::2], base.transpose(0, 3)[1:]]
    with K.use_backend(name):
        for x in cases:
            want = R.dropout(x.contiguous(), 0.3, SEED, 2**32 - 2)
            y = K.dropout(x, 0.3, SEED, 2**32 - 2)
            assert y.stride() == torch.empty_like(x).stride() and torch.equal(y, want)
            xi = x.clone()
            assert K.dropout(xi, 0.3, SEED, 2**32 - 2, inplace=True) is xi
            assert torch.equal(xi, want)
            b = _x((x.shape[-1],), dtype)
            z = K.bias_dropout_add(x, b, x, 0.3, SEED, 9)
            assert z.stride() == torch.empty_like(x).stride()
            assert torch.equal(z, R.bias_dropout_add(x.contiguous(), b, x.contiguous(), 0.3,
                                                     SEED, 9))


@pytest.mark.parametrize("name", NATIVE)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("hdim", [1, 37, 1000])
def test_bias_dropout_add_matches_reference(name, dtype, hdim) -> None:
    x = _x((5, hdim), dtype)
    b = _x((hdim,), dtype)
    r = _x((5, hdim), dtype).flip(0)
    for bias, res in ((b, r), (b, None), (None, r), (None, None)):
        want = R.bias_dropout_add(x, bias, res, 0.2, SEED, 2**32 - 3)
        with K.use_backend(name):
            got = K.bias_dropout_add(x, bias, res, 0.2, SEED, 2**32 - 3)
        assert torch.equal(got, want)


def test_bias_dropout_add_backward_and_broadcast_residual() -> None:
    x = torch.randn(4, 9, requires_grad=True)
    b = torch.randn(9, requires_grad=True)
    r = torch.randn(1, 9, requires_grad=True)
    y = K.bias_dropout_add(x, b, r, 0.5, 2, 3)
    assert torch.equal(y, R.bias_dropout_add(x, b, r, 0.5, 2, 3))
    dy = torch.randn(4, 9)
    gx, gb, gr = torch.autograd.grad(y, (x, b, r), dy)
    dh = R.dropout(dy, 0.5, 2, 3)
    assert torch.equal(gx, dh)
    assert torch.equal(gb, dh.sum(0))
    assert torch.equal(gr, dy.sum(0, keepdim=True))
    with pytest.raises(ValueError, match=r"\(8,\)"):
        K.bias_dropout_add(x, torch.randn(8), None, 0.5, 2, 3)


@pytest.mark.slow
def test_torch_compile_fullgraph() -> None:
    def f(x, b, r):
        return K.dropout(x, 0.5, 3, 10), K.bias_dropout_add(x, b, r, 0.3, 5, 1)

    x = torch.randn(8, 7, requires_grad=True)
    b = torch.randn(7, requires_grad=True)
    r = torch.randn(8, 7)
    cf = torch.compile(f, fullgraph=True)
    y1, z1 = cf(x, b, r)
    (g1,) = torch.autograd.grad((y1.sum() + z1.sum()), (x,))
    y2, z2 = f(x, b, r)
    (g2,) = torch.autograd.grad((y2.sum() + z2.sum()), (x,))
    assert torch.equal(y1, y2) and torch.equal(z1, z2) and torch.equal(g1, g2)
