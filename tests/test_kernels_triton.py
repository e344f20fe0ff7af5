"""Triton kernels (regbench.kernels.triton): bitwise equal to the reference and to the C++ kernels.

Without a GPU the entry points run the same kernel source in the Triton interpreter on CPU
tensors (no TRITON_INTERPRET needed: `_launch.Kernel` picks the interpreted variant for CPU
tensors), so these checks cover the CUDA code's bits. Sizes are small: the interpreter is slow.
The `cuda` tests at the end need a GPU and skip cleanly without one.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap

import pytest
import torch

pytest.importorskip("triton")

from regbench import kernels as K  # noqa: E402
from regbench.kernels import reference as R  # noqa: E402
from regbench.kernels import triton as KT  # noqa: E402
from regbench.kernels.dropout import (  # noqa: E402
    _dropout_st_cuda,
    _run_cuda,
    bias_dropout_add_op,
    dropout_op,
    dropout_st_op,
)
from regbench.kernels.l2 import l2_op  # noqa: E402
from regbench.kernels.triton import _dropout as KTD  # noqa: E402
from regbench.kernels.triton import _l2 as KTL  # noqa: E402
from regbench.kernels.triton import _launch as KTLA  # noqa: E402

NATIVE = next((b for b in ("avx512", "avx2", "scalar") if b in K.available_backends()), None)
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
PS = [0.0, 0.1, 0.5, 1.0]
SEED = (5 << 32) | 987654321  # key word 1 != 0
# 2**32 - 20: the counter's low word wraps inside the call; 2**40 + 3: high word set.
OFFSETS = [0, 2**32 - 20, 2**40 + 3]
SHAPES = [(1,), (3, 67), (5, 64)]  # with block=64: 1, 4 and 5 programs, ragged last block
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# Penalty tolerance: the Triton kernel sums squares as a tree per program and then the partials
# (torch.sum), the CPU in its fixed lane/block order; both in float64, so only rounding differs.
PEN_RTOL = 1e-12


@functools.cache
def _x(shape: tuple[int, ...], dtype: torch.dtype, salt: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(sum(shape) * 7 + salt)
    return torch.randn(shape, generator=g, dtype=torch.float64).mul(3).to(dtype)


def _cpp(fn, *args):  # noqa: ANN001, ANN202
    if NATIVE is None:
        pytest.skip("C++ kernels not built")
    with K.use_backend(NATIVE):
        return fn(*args)


# --- Philox ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_tl_randint4x_is_the_contract_philox() -> None:
    """`tl.randint4x(seed, int64 offsets)` == reference words, seeds and offsets >= 2**32 included
    (run under TRITON_INTERPRET=1 in a subprocess: tl.randint4x is a @triton.jit helper)."""
    code = textwrap.dedent("""
        import torch, triton, triton.language as tl
        from regbench.kernels import reference as R

        @triton.jit
        def k(out_ptr, seed, offset, n_ctr, C: tl.constexpr):
            c = tl.program_id(0).to(tl.int64) * C + tl.arange(0, C)
            r0, r1, r2, r3 = tl.randint4x(seed, offset.to(tl.int64) + c)
            m = c < n_ctr
            for w, r in ((0, r0), (1, r1), (2, r2), (3, r3)):
                tl.store(out_ptr + c * 4 + w, r.to(tl.int32, bitcast=True), mask=m)

        cases = [(0, 0), (1234, 2**32 - 5), (2**40 + 7, 2**33 + 5), (2**63 - 1, 2**62)]
        for seed, off in cases:
            out = torch.empty(40, dtype=torch.int32)
            k[(3,)](out, seed, off, 10, C=4)
            assert torch.equal(out.long() & 0xFFFFFFFF, R.random_words(40, seed, off)), (seed, off)
        print("OK")
    """)
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-2000:]


# --- dropout --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("p", PS)
def test_dropout_matches_reference_and_cpp(dtype, p) -> None:
    for shape in SHAPES:
        x = _x(shape, dtype)
        for off in OFFSETS:
            y = KT.dropout(x, p, SEED, off, block=64)
            assert y.dtype == dtype and y.shape == x.shape
            assert torch.equal(y, R._apply(x, None, None, p, SEED, off)), (shape, off)
            assert torch.equal(y, _cpp(K.dropout, x, p, SEED, off)), (shape, off)


def test_dropout_default_block_and_extremes() -> None:
    x = _x((3 * KTD.DEFAULT.kwargs["BLOCK"] + 5,), torch.float32)  # 4 programs at the default
    for seed, off in [(0, 0), (2**63 - 1, 2**62), (2**32, 2**32 - 1)]:
        y = KT.dropout(x, 0.3, seed, off)
        assert torch.equal(y, R._apply(x, None, None, 0.3, seed, off))
    y = KT.dropout(torch.empty(0), 0.5, 1, 2)
    assert y.shape == (0,)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_dropout_non_contiguous_and_special_values() -> None:
    base = _x((9, 70), torch.float32)
    x = base.t()
    assert torch.equal(KT.dropout(x, 0.4, 9, 100, block=128), R.dropout(x, 0.4, 9, 100))
    v = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 3e38, 1e-45] * 11)
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        xv = v.to(dtype)
        got = KT.dropout(xv, 0.3, 3, 4, block=16)
        want = R._apply(xv, None, None, 0.3, 3, 4)
        # bits of every non-NaN (+-0, +-inf, overflow, subnormal); NaN stays NaN, but its
        # payload is not in the contract (torch's own fp32 -> bf16 gives 0xFFFF or 0x7FC0)
        nan = want.isnan()
        assert torch.equal(got.isnan(), nan), dtype
        assert torch.equal(got[~nan].view(torch.uint8), want[~nan].view(torch.uint8)), dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_dropout_backward_regenerates_mask(dtype) -> None:
    x = _x((5, 64), torch.float32).to(dtype).requires_grad_()
    dy = _x((5, 64), dtype, salt=1)
    with K.use_backend(NATIVE or "reference"):
        (dx,) = torch.autograd.grad(K.dropout(x, 0.5, SEED, 2**32 - 3), x, dy)
    got = KT.dropout_backward(dy, 0.5, SEED, 2**32 - 3, block=64)
    assert torch.equal(got, dx)
    assert torch.equal(got, R._apply(dy, None, None, 0.5, SEED, 2**32 - 3))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_bias_dropout_add(dtype) -> None:
    x = _x((5, 67), dtype)
    b = _x((67,), dtype, salt=2)
    res = _x((5, 67), dtype, salt=3)
    for p in (0.0, 0.5, 1.0):
        for bias in (None, b):
            for r in (None, res, res[0]):  # absent, full, broadcast over rows
                y = KT.bias_dropout_add(x, bias, r, p, SEED, 2**32 - 30, block=64)
                assert torch.equal(y, R._apply(x, bias, r, p, SEED, 2**32 - 30))
                want = _cpp(K.bias_dropout_add, x, bias, r, p, SEED, 2**32 - 30)
                assert torch.equal(y, want), (p, bias is None, r is None)


def test_registered_cuda_path_runs_triton() -> None:
    """The CUDA impl of the ops (`_run_cuda`) on CPU tensors: the Triton kernel, interpreted."""
    x = _x((3, 67), torch.bfloat16)
    b = _x((67,), torch.bfloat16, salt=1)
    got = _run_cuda(x, b, x, 0.25, SEED, 2**33)
    assert torch.equal(got, R._apply(x, b, x, 0.25, SEED, 2**33))


def _cfg_id(cfg) -> str:  # noqa: ANN001
    return f"{cfg.kwargs['BLOCK']}x{cfg.num_warps}"


@pytest.mark.parametrize("cfg", KTD.CONFIGS, ids=_cfg_id)
def test_every_dropout_config_is_bitwise(cfg) -> None:
    """Every config the CUDA autotuner may pick, run here (interpreted): the same bits as the
    reference on a shape that ends mid-program (3 programs), with int and tensor seeds."""
    blk, nw = cfg.kwargs["BLOCK"], cfg.num_warps
    shape = (2 * blk // 67 + 1, 67)
    seed, off = SEED, 2**32 - 7  # the counter's low word wraps inside the call
    for dtype in (torch.float32, torch.bfloat16):
        x = _x(shape, dtype)
        b = _x((67,), dtype, salt=1)
        want = R._apply(x, b, x, 0.3, seed, off)
        got = KT.bias_dropout_add(x, b, x, 0.3, seed, off, block=blk, num_warps=nw)
        assert torch.equal(got, want), dtype
        got = KT.dropout(x, 0.3, torch.tensor(seed), torch.tensor(off), block=blk, num_warps=nw)
        assert torch.equal(got, R._apply(x, None, None, 0.3, seed, off)), dtype


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dropout_st_device_scalars_no_host_read(dtype, monkeypatch) -> None:
    """`regbench::dropout_st`'s CUDA impl with seed / offset tensors on x's device (here CPU
    tensors in the interpreter): the kernel reads them, nothing reads them on the host, and
    the bits are the int path's and the reference's (seeds >= 2**32, offsets past 2**32)."""
    x = _x((5, 67), dtype)
    cases = [(SEED, 2**32 - 20), (2**40 + 7, 2**40 + 3), (0, 0), (2**63 - 1, 2**62)]
    want = {c: _run_cuda(x, None, None, 0.5, *c) for c in cases}
    for c in cases:
        assert torch.equal(want[c], R._apply(x, None, None, 0.5, *c)), c

    def no_host_read(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a seed / offset tensor was read on the host (a sync on CUDA)")

    for name in ("item", "__int__", "__index__", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, no_host_read)
    for seed, off in cases:
        s_t = torch.tensor(seed, dtype=torch.int64)
        o_t = torch.tensor([off], dtype=torch.int64)
        assert torch.equal(_dropout_st_cuda(x, 0.5, s_t, o_t), want[(seed, off)])
        got = KT.dropout_backward(x, 0.5, seed, o_t)  # mixed: int seed, tensor offset
        assert torch.equal(got, want[(seed, off)])
    monkeypatch.undo()
    with pytest.raises(TypeError, match="one-element int64"):
        _dropout_st_cuda(x, 0.5, torch.tensor(1, dtype=torch.int32), torch.tensor(0))
    with pytest.raises(TypeError, match="one-element int64"):
        KT.dropout(x, 0.5, torch.tensor([1, 2]), 0)
    with pytest.raises(ValueError, match="non-negative"):
        KT.dropout(x, 0.5, -1, torch.tensor(0))  # an int is still checked


@pytest.mark.slow
def test_cpu_use_needs_no_triton() -> None:
    """CPU ops never load regbench.kernels.triton, and work with Triton made unimportable.
    (torch itself imports triton when installed, e.g. from torch._dynamo: not ours to check.)"""
    code = textwrap.dedent("""
        import sys
        sys.modules["triton"] = None  # import triton -> ImportError
        import torch
        import regbench.kernels as K, regbench.nn
        x = torch.randn(100, requires_grad=True)
        K.dropout(x, 0.5, 1, 0).sum().backward()
        K.bias_dropout_add(x, None, x, 0.5, 1, 0)
        p = torch.nn.Parameter(torch.randn(10)); K.l2_([p], 0.1)
        assert "regbench.kernels.triton" not in sys.modules, "triton kernels imported"
        print("OK")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-2000:]


# --- L2 / elastic net -----------------------------------------------------------------------


def _l2_case(dtype: torch.dtype, sizes=(1, 3, 17, 200, 0, 1025, 2100)) -> list[torch.Tensor]:
    ts = [_x((n,), dtype, salt=i).clone() for i, n in enumerate(sizes)]
    ts[0].copy_(torch.tensor([-0.0]))  # sign(-0) = 0 and -0 * lam: the +-0 edge of the contract
    return ts


def _tree_penalty(params: list[torch.Tensor], lam: float, l1: float) -> torch.Tensor:
    """The Triton penalty's documented sum order, in torch: per 1024-element chunk of each
    tensor (zero-padded), lane w of 128 adds elements w, w + 128, ... in order, lanes summed as
    the pairwise tree; then torch.sum over the chunks (on the CPU, as the interpreter runs)."""
    parts = []
    for p in params:
        if not p.numel():
            continue
        x = p.detach().reshape(-1).double()
        pad = torch.zeros((-x.numel()) % KTL.PART, dtype=torch.float64)
        ch = torch.cat([x, pad]).view(-1, KTL.PART // KTL.LANES, KTL.LANES)
        s2 = torch.zeros(ch.shape[0], KTL.LANES, dtype=torch.float64)
        s1 = torch.zeros_like(s2)
        for q in range(ch.shape[1]):
            s2 = s2 + ch[:, q] * ch[:, q]
            s1 = s1 + ch[:, q].abs()
        while s2.shape[1] > 1:  # a sum over a size-2 dim is one add
            s2 = s2.view(s2.shape[0], -1, 2).sum(2)
            s1 = s1.view(s1.shape[0], -1, 2).sum(2)
        parts.append(torch.cat([s2, s1 if l1 else torch.zeros_like(s1)], 1))
    s = torch.cat(parts).sum(0)
    return (0.5 * lam) * s[0] + l1 * s[1]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("l1", [0.0, 3e-3])
def test_l2_multi_grads_bitwise_penalty_close(dtype, l1) -> None:
    params = _l2_case(dtype)
    grads = [_x(tuple(p.shape), dtype, salt=9).clone() for p in params]
    grads[0].copy_(torch.tensor([-0.0]))
    want_g = [g.clone() for g in grads]
    cpp_g = [g.clone() for g in grads]
    pen = KT.elastic_net_multi_(grads, params, 0.0137, l1, block=2048)
    want = R.l2_update_(want_g, params, 0.0137, l1)
    _cpp(l2_op, cpp_g, params, 0.0137, l1)
    for g, w, c in zip(grads, want_g, cpp_g, strict=True):
        assert torch.equal(g, w) and torch.equal(g, c)
    assert pen.dtype == torch.float64 and pen.dim() == 0
    assert torch.allclose(pen, want, rtol=PEN_RTOL, atol=0)
    assert torch.equal(pen, _tree_penalty(params, 0.0137, l1))
    # deterministic: a second identical call gives the same bits (cached table)
    again = KT.elastic_net_multi_([g.clone() for g in want_g], params, 0.0137, l1)
    assert torch.equal(again, pen)


def test_l2_mixed_dtypes_noncontiguous_and_flat() -> None:
    params = [_x((40,), torch.float32), _x((33,), torch.bfloat16), _x((8, 9), torch.float64).t()]
    grads = [torch.zeros_like(p) for p in params]
    want_g = [g.clone() for g in grads]
    pen = KT.elastic_net_multi_(grads, params, 0.5, 0.01, block=1024)
    want = R.l2_update_(want_g, params, 0.5, 0.01)
    assert all(torch.equal(g, w) for g, w in zip(grads, want_g, strict=True))
    assert torch.allclose(pen, want, rtol=PEN_RTOL, atol=0)

    flat = _x((4096 + 77,), torch.float32)
    g = _x((4096 + 77,), torch.float32, salt=1).clone()
    g_ref = g.clone()
    pen = KT.l2_flat_(flat, g, 1e-4, 2e-5)  # default block: 2 programs, ragged
    want = R.l2_update_([g_ref], [flat], 1e-4, 2e-5)
    assert torch.equal(g, g_ref) and torch.allclose(pen, want, rtol=PEN_RTOL, atol=0)
    assert torch.equal(pen, _tree_penalty([flat], 1e-4, 2e-5))


def test_l2_module_api_and_empty() -> None:
    ps = [torch.nn.Parameter(_x((30,), torch.float32)), torch.nn.Parameter(_x((7,), torch.float32))]
    pen = KT.l2_(ps, 0.1)
    assert torch.equal(ps[0].grad, 0.1 * ps[0].detach().float())
    assert torch.allclose(pen, 0.05 * sum((p.detach().double() ** 2).sum() for p in ps),
                          rtol=PEN_RTOL)
    assert KT.elastic_net_multi_([], [], 0.1, 0.0).item() == 0.0


@pytest.mark.parametrize("cfg", KTL.CONFIGS, ids=_cfg_id)
def test_every_l2_config_is_bitwise(cfg) -> None:
    """Every config the CUDA autotuner may pick, interpreted: grads bitwise the reference's and
    the penalty bitwise the documented tree order's (so equal across configs), over tensors
    that end mid-chunk and mid-program, as a list and as a flat buffer."""
    blk, nw = cfg.kwargs["BLOCK"], cfg.num_warps
    params = _l2_case(torch.float32, (1, 1023, 1025, 2 * blk + 3, 0, 77))
    grads = [_x(tuple(p.shape), torch.float32, salt=9).clone() for p in params]
    want_g = [g.clone() for g in grads]
    pen = KT.elastic_net_multi_(grads, params, 0.0137, 3e-3, block=blk, num_warps=nw)
    want = R.l2_update_(want_g, params, 0.0137, 3e-3)
    assert all(torch.equal(g, w) for g, w in zip(grads, want_g, strict=True))
    assert torch.equal(pen, _tree_penalty(params, 0.0137, 3e-3))
    assert torch.allclose(pen, want, rtol=PEN_RTOL, atol=0)
    flat, g = params[3], grads[3].clone()
    g_ref = g.clone()
    pen = KT.l2_flat_(flat, g, 0.5, 0.0, block=blk, num_warps=nw)
    R.l2_update_([g_ref], [flat], 0.5, 0.0)
    assert torch.equal(g, g_ref) and torch.equal(pen, _tree_penalty([flat], 0.5, 0.0))


def _stand_in_timer(winner: int, n_configs: int, runs: list[int]):  # noqa: ANN202
    """A `do_bench` for the interpreter: runs each config 3 times (so an in-place kernel that
    is not protected would add lam*theta 3 more times) and makes config `winner` fastest."""
    def bench(kernel_call, quantiles):  # noqa: ANN001, ANN202
        i = len(runs)
        runs.append(i)
        for _ in range(3):
            kernel_call()
        t = 1.0 if i % n_configs == winner else 2.0
        return [t, t, t]

    return bench


def test_autotuner_in_interpreter(monkeypatch) -> None:
    """The CUDA launch path (triton.autotune, grid from the chosen config, the grads' pre_hook)
    driven in the interpreter by a stand-in timer: gradients are updated exactly once, the
    chosen config runs, a size in the same power-of-two bucket reuses it, and sizes below
    TUNE_MIN_NUMEL are not tuned."""
    monkeypatch.setattr(KTLA, "TUNE_MIN_NUMEL", 2048)
    runs: list[int] = []
    monkeypatch.setattr(KTL._KERNEL, "interp_bench", _stand_in_timer(6, len(KTL.CONFIGS), runs))
    params = _l2_case(torch.float32, (1, 1025, 3000))  # 4026 elements: bucket 12
    grads = [_x(tuple(p.shape), torch.float32, salt=9).clone() for p in params]
    want_g = [g.clone() for g in grads]
    pen = KT.elastic_net_multi_(grads, params, 0.25, 0.0)
    R.l2_update_(want_g, params, 0.25, 0.0)
    assert len(runs) == len(KTL.CONFIGS)
    assert all(torch.equal(g, w) for g, w in zip(grads, want_g, strict=True))
    assert torch.equal(pen, _tree_penalty(params, 0.25, 0.0))
    assert KTL._KERNEL.last_config is KTL.CONFIGS[6] and KTL._KERNEL.last_tuned
    assert KT.last_configs()["l2"] == "BLOCK=8192, num_warps=16 (autotuned)"
    flat = _x((2500,), torch.float32)  # same dtypes and bucket 12 (TABLE differs: new key)
    KT.l2_flat_(flat, torch.zeros_like(flat), 0.1)
    KT.l2_flat_(_x((3900,), torch.float32), torch.zeros(3900), 0.1)  # bucket 12 again
    assert len(runs) == 2 * len(KTL.CONFIGS)
    KT.l2_flat_(flat[:100], torch.zeros(100), 0.1)  # below TUNE_MIN_NUMEL: the default
    assert len(runs) == 2 * len(KTL.CONFIGS) and KTL._KERNEL.last_config is KTL.DEFAULT

    runs.clear()
    monkeypatch.setattr(KTD._KERNEL, "interp_bench", _stand_in_timer(0, len(KTD.CONFIGS), runs))
    x = _x((3000,), torch.bfloat16)
    got = KT.dropout(x, 0.3, torch.tensor(SEED), torch.tensor(2**33 + 1))
    assert torch.equal(got, R._apply(x, None, None, 0.3, SEED, 2**33 + 1))
    assert len(runs) == len(KTD.CONFIGS) and KTD._KERNEL.last_config is KTD.CONFIGS[0]


# --- compiled for the GPU without one: ptxas runs, no FMA contraction --------------------


def _sass(kernel, sig: dict[str, str], consts: dict, arch: int,  # noqa: ANN001
          num_warps: int = 8) -> str:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.runtime.jit import JITFunction

    jf = JITFunction(kernel.fn, do_not_specialize=list(kernel.do_not_specialize))
    k = triton.compile(ASTSource(jf, sig, consts), target=GPUTarget("cuda", arch, 32),
                       options={"num_warps": num_warps, "enable_fp_fusion": False})
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    if not os.path.exists(tool):
        pytest.skip("cuobjdump not shipped with this Triton")
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"regbench_{os.getpid()}.cubin")
    with open(path, "wb") as f:
        f.write(k.asm["cubin"])
    try:
        return subprocess.run([tool, "-sass", path], capture_output=True, text=True,
                              check=True, timeout=120).stdout
    finally:
        os.unlink(path)


def _dropout_sig(dt: str, block: int, seed_ptr: bool) -> tuple[dict, dict]:
    sd = "*i64" if seed_ptr else "i64"
    sig = {"x_ptr": f"*{dt}", "b_ptr": f"*{dt}", "r_ptr": f"*{dt}", "y_ptr": f"*{dt}",
           "n": "i64", "n_bucket": "i32", "ncol": "i32", "seed": sd, "offset": sd, "t": "i32",
           "s": "fp32", "HAS_BIAS": "constexpr", "HAS_RES": "constexpr", "FP64": "constexpr",
           "BF16": "constexpr", "SEED_PTR": "constexpr", "OFFSET_PTR": "constexpr",
           "BLOCK": "constexpr"}
    consts = {"HAS_BIAS": True, "HAS_RES": True, "FP64": dt == "fp64", "BF16": dt == "bf16",
              "SEED_PTR": seed_ptr, "OFFSET_PTR": seed_ptr, "BLOCK": block}
    return sig, consts


def _l2_sig(dt: str, block: int) -> tuple[dict, dict]:
    sig = {"p_ptr": f"*{dt}", "g_ptr": f"*{dt}", "tab_ptr": "*i64", "part_ptr": "*fp64",
           "c_ptr": "*fp64", "n": "i64", "n_bucket": "i32", "chunks": "i64", "lam": "fp32",
           "l1": "fp32", "TABLE": "constexpr", "HAS_L1": "constexpr", "FP64": "constexpr",
           "BF16": "constexpr", "BLOCK": "constexpr"}
    consts = {"TABLE": True, "HAS_L1": True, "FP64": dt == "fp64", "BF16": dt == "bf16",
              "BLOCK": block}
    return sig, consts


@pytest.mark.parametrize("arch", [80, 90])
@pytest.mark.parametrize("dt", ["fp32", "bf16", "fp64"])
@pytest.mark.slow
def test_kernels_compile_for_cuda_without_fma(arch, dt) -> None:
    """The CUDA variants compile (Triton -> PTX -> ptxas cubin for sm_80 / sm_90) with the
    launch options we use, and the SASS has no fused multiply-add (FFMA/DFMA): every
    mul and add rounds separately, as in the contract and the interpreter."""
    for seed_ptr in (False, True):
        sig, consts = _dropout_sig(dt, KTD.DEFAULT.kwargs["BLOCK"], seed_ptr)
        sass = _sass(KTD._KERNEL, sig, consts, arch, KTD.DEFAULT.num_warps)
        assert "FMUL" in sass or "DMUL" in sass
        assert "FFMA" not in sass and "DFMA" not in sass
    sig, consts = _l2_sig(dt, KTL.DEFAULT.kwargs["BLOCK"])
    sass = _sass(KTL._KERNEL, sig, consts, arch, KTL.DEFAULT.num_warps)
    assert "FFMA" not in sass and "DFMA" not in sass


@pytest.mark.slow
def test_every_config_compiles_for_cuda() -> None:
    """Every config the autotuner may pick compiles for sm_90 (ptxas included), FMA-free."""
    for cfg in KTD.CONFIGS:
        sig, consts = _dropout_sig("fp32", cfg.kwargs["BLOCK"], True)
        sass = _sass(KTD._KERNEL, sig, consts, 90, cfg.num_warps)
        assert "FFMA" not in sass, _cfg_id(cfg)
    for cfg in KTL.CONFIGS:
        sig, consts = _l2_sig("fp32", cfg.kwargs["BLOCK"])
        sass = _sass(KTL._KERNEL, sig, consts, 90, cfg.num_warps)
        assert "FFMA" not in sass and "DFMA" not in sass, _cfg_id(cfg)


# --- on a GPU (skipped here) ----------------------------------------------------------------


@cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_equals_cpu_bitwise(dtype) -> None:
    for shape in [(1,), (4097,), (3, 1000, 77), (2**20 + 3,)]:
        x = _x(shape, dtype)
        b = _x((shape[-1],), dtype, salt=1)
        for p in PS:
            for off in OFFSETS:
                cpu = K.bias_dropout_add(x, b, x, p, SEED, off)
                gpu = K.bias_dropout_add(x.cuda(), b.cuda(), x.cuda(), p, SEED, off)
                assert torch.equal(gpu.cpu(), cpu), (shape, p, off)
                if p:
                    assert torch.equal(K.dropout(x.cuda(), p, SEED, off).cpu(),
                                       K.dropout(x, p, SEED, off))
    params = [_x((n,), dtype, salt=n).clone() for n in (1, 4095, 4097, 2**20 + 3)]
    grads = [torch.randn_like(p) for p in params]
    gg = [g.cuda() for g in grads]
    pen_g = l2_op(gg, [p.cuda() for p in params], 0.01, 0.001)
    pen_c = l2_op(grads, params, 0.01, 0.001)
    assert all(torch.equal(a.cpu(), b) for a, b in zip(gg, grads, strict=True))
    assert pen_g.device.type == "cuda"
    assert torch.allclose(pen_g.cpu(), pen_c, rtol=PEN_RTOL, atol=0)


@cuda
def test_cuda_opcheck_gradcheck_compile() -> None:
    x = torch.randn(3, 77, device="cuda")
    b = torch.randn(77, device="cuda")
    r = torch.randn(3, 77, device="cuda")
    torch.library.opcheck(dropout_op, (x, 0.5, 3, 7))
    torch.library.opcheck(dropout_st_op, (x, 0.5, torch.tensor(3), torch.tensor(7)))
    dev_scalars = (torch.tensor(3, device="cuda"), torch.tensor(2**33 + 7, device="cuda"))
    torch.library.opcheck(dropout_st_op, (x, 0.5, *dev_scalars))
    torch.library.opcheck(bias_dropout_add_op, (x, b, r, 0.5, 3, 2**32 + 7))
    torch.library.opcheck(bias_dropout_add_op, (x, None, None, 0.5, 3, 7))
    ps = [torch.randn(5, device="cuda"), torch.randn(3, 4, device="cuda")]
    torch.library.opcheck(l2_op, ([torch.zeros_like(p) for p in ps], ps, 0.1, 0.01))

    xd = torch.randn(4, 33, dtype=torch.float64, device="cuda", requires_grad=True)
    bd = torch.randn(33, dtype=torch.float64, device="cuda", requires_grad=True)
    rd = torch.randn(4, 33, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: K.dropout(t, 0.3, 5, 2**32 - 1), (xd,))
    assert torch.autograd.gradcheck(
        lambda t, u, v: K.bias_dropout_add(t, u, v, 0.3, 5, 11), (xd, bd, rd))

    def f(t: torch.Tensor) -> torch.Tensor:
        return K.bias_dropout_add(K.dropout(t, 0.2, 1, 2**33), b, r, 0.3, 1, 2**34)

    xg = x.clone().requires_grad_()
    out = torch.compile(f, fullgraph=True)(xg)
    assert torch.equal(out, f(x))
    out.sum().backward()
    from regbench.nn import FusedDropout

    m = FusedDropout(0.5, seed=7).cuda()
    cm = torch.compile(m, fullgraph=True)
    assert torch.equal(cm(x), FusedDropout(0.5, seed=7)(x.cpu()).cuda())

    def step(gs: list[torch.Tensor], qs: list[torch.Tensor]) -> torch.Tensor:
        return l2_op(gs, qs, 0.1, 0.0)

    g1 = [torch.zeros_like(p) for p in ps]
    g2 = [torch.zeros_like(p) for p in ps]
    torch.compile(step, fullgraph=True)(g1, ps)
    step(g2, ps)
    assert all(torch.equal(a, c) for a, c in zip(g1, g2, strict=True))


@cuda
def test_cuda_every_config_and_autotuning() -> None:
    """On the GPU: every config gives the CPU's bits (dropout, L2 grads) and one penalty; the
    autotuned launches (sizes >= TUNE_MIN_NUMEL) too, with the grads updated exactly once."""
    x = _x((3, 1000, 77), torch.bfloat16)
    want = K.bias_dropout_add(x, x[0, 0], x, 0.3, SEED, 2**32 - 5)
    xc = x.cuda()
    for cfg in KTD.CONFIGS:
        got = KT.bias_dropout_add(xc, xc[0, 0], xc, 0.3, SEED, 2**32 - 5,
                                  block=cfg.kwargs["BLOCK"], num_warps=cfg.num_warps)
        assert torch.equal(got.cpu(), want), _cfg_id(cfg)
    params = [_x((n,), torch.float32, salt=n).clone() for n in (1, 1023, 4097, 2**18 + 3)]
    grads = [torch.randn_like(p) for p in params]
    want_g = [g.clone() for g in grads]
    R.l2_update_(want_g, params, 0.01, 0.001)
    pens = []
    for cfg in [*KTL.CONFIGS, None]:  # None: autotuned (2**18 + 4101 elements)
        gg = [g.cuda() for g in grads]
        kw = {} if cfg is None else {"block": cfg.kwargs["BLOCK"], "num_warps": cfg.num_warps}
        pens.append(KT.elastic_net_multi_(gg, [p.cuda() for p in params], 0.01, 0.001, **kw))
        assert all(torch.equal(a.cpu(), b) for a, b in zip(gg, want_g, strict=True)), cfg
    assert KTL._KERNEL.last_tuned
    assert all(torch.equal(p, pens[0]) for p in pens)


@cuda
def test_cuda_fused_dropout_step_never_syncs() -> None:
    """FusedDropout keeps (seed, offset) on the GPU: after the first (autotuning) step, forward
    and backward run with CUDA sync debugging set to error, and give the CPU's bits."""
    from regbench.nn import FusedDropout

    x = _x((64, 1000), torch.float32)
    m_cpu, m_gpu = FusedDropout(0.5, seed=2**40 + 1), FusedDropout(0.5, seed=2**40 + 1).cuda()
    xg = x.cuda().requires_grad_()
    m_gpu(xg).sum().backward()  # warm-up: compiles and tunes (syncs)
    m_cpu(x)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        y = m_gpu(xg)
        y.backward(torch.ones_like(y))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.equal(y.detach().cpu(), m_cpu(x))

