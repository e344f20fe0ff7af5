"""Triton counter-based dropout / bias_dropout_add (DESIGN.md contract, bitwise = reference).

One kernel serves forward, backward (the same op applied to dy: the mask is regenerated from
(seed, offset), nothing of size numel is saved) and bias_dropout_add (constexpr flags).

Program `pid` owns counters `pid*C .. pid*C + C-1` (C = BLOCK / 4), i.e. the [C, 4] tile of
elements j = 4*c + w. Philox4x32-10 runs once per counter (words r0..r3 for w = 0..3):
counter (n & 0xffffffff, n >> 32, 0, 0) with n = offset + c, key (seed lo, seed hi). The rounds
are `tl.randint4x`'s (verified bitwise against the reference in tests), inlined so the same
source also runs in the interpreter next to compiled kernels.

Entry points: `seed` and `offset` are ints or one-element int64 tensors on x's device. The
kernel reads a tensor's value itself, so a caller that keeps them on the GPU never syncs with
the host; for the same reason their values are not validated (a negative seed is used as its
two's-complement bits; `offset + ceil(numel / 4)` must fit in int64). Ints are checked as the
contract says. `block` (elements per program, a power of two) and `num_warps` fix the launch
config; by default it is autotuned on CUDA over CONFIGS (`_launch`), DEFAULT in the interpreter.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from regbench.kernels import reference as ref
from regbench.kernels.triton._launch import Kernel, config, n_bucket

__all__ = ["CONFIGS", "DEFAULT", "bias_dropout_add", "dropout", "dropout_backward"]

# What the CUDA variant tunes over: (elements per program, warps), 4 to 16 elements a thread.
# At 32 a thread, bias_dropout_add spills registers (sm_90, ptxas); so does 8192 x 16 warps
# (128 registers a thread at 512 threads), kept for plain dropout (82 registers there).
CONFIGS = tuple(config(b, w) for b, w in [(1024, 4), (1024, 8), (2048, 4), (2048, 8), (2048, 16),
                                          (4096, 8), (4096, 16), (8192, 16)])
DEFAULT = CONFIGS[5]  # 4096 elements, 8 warps: the fixed choice before autotuning

_M0 = tl.constexpr(0xD2511F53)
_M1 = tl.constexpr(0xCD9E8D57)
_W0 = tl.constexpr(0x9E3779B9)
_W1 = tl.constexpr(0xBB67AE85)


def _dropout_kernel(
    x_ptr, b_ptr, r_ptr, y_ptr,
    n, n_bucket, ncol, seed, offset, t, s,
    HAS_BIAS: tl.constexpr, HAS_RES: tl.constexpr, FP64: tl.constexpr, BF16: tl.constexpr,
    SEED_PTR: tl.constexpr, OFFSET_PTR: tl.constexpr, BLOCK: tl.constexpr,
):
    # Every value is a function of the element index j alone (no cross-element op), so the
    # output bits do not depend on BLOCK or num_warps.
    C: tl.constexpr = BLOCK // 4
    if SEED_PTR:  # a one-element int64 tensor on the device: read here, no host sync
        seed_v = tl.load(seed)
    else:
        seed_v = seed
    if OFFSET_PTR:
        offset_v = tl.load(offset)
    else:
        offset_v = offset
    pid = tl.program_id(0).to(tl.int64)
    c = pid * C + tl.arange(0, C).to(tl.int64)
    ctr = offset_v.to(tl.int64) + c
    # Philox4x32-10, counter (lo, hi, 0, 0), key (seed lo, seed hi): as tl.randint4x.
    c0 = ctr.to(tl.uint32)
    c1 = (ctr >> 32).to(tl.uint32)
    c2 = c0 * 0
    c3 = c0 * 0
    seed64 = seed_v.to(tl.uint64)
    k0 = seed64.to(tl.uint32)
    k1 = (seed64 >> 32).to(tl.uint32)
    for _ in tl.static_range(10):
        _c0, _c2 = c0, c2
        c0 = tl.umulhi(_M1, _c2) ^ c1 ^ k0
        c2 = tl.umulhi(_M0, _c0) ^ c3 ^ k1
        c1 = tl.mul(_M1, _c2, sanitize_overflow=False)
        c3 = tl.mul(_M0, _c0, sanitize_overflow=False)
        k0 = tl.add(k0, _W0, sanitize_overflow=False)
        k1 = tl.add(k1, _W1, sanitize_overflow=False)
    w = tl.arange(0, 4)[None, :]
    r = tl.where(w == 0, c0[:, None], tl.where(w == 1, c1[:, None],
                 tl.where(w == 2, c2[:, None], c3[:, None])))
    keep = (r >> 8).to(tl.int32) >= t
    j = c[:, None] * 4 + w
    m = j < n
    # s is a float32 value (the contract's scale), so fp64 compute promotes it exactly.
    if FP64:
        h = tl.load(x_ptr + j, mask=m, other=0.0).to(tl.float64)
        if HAS_BIAS:
            h = h + tl.load(b_ptr + j % ncol, mask=m, other=0.0).to(tl.float64)
        d = tl.where(keep, h * s, 0.0)
        if HAS_RES:
            d = d + tl.load(r_ptr + j, mask=m, other=0.0).to(tl.float64)
    else:
        h = tl.load(x_ptr + j, mask=m, other=0.0).to(tl.float32)
        if HAS_BIAS:
            h = h + tl.load(b_ptr + j % ncol, mask=m, other=0.0).to(tl.float32)
        d = tl.where(keep, h * s, 0.0)
        if HAS_RES:
            d = d + tl.load(r_ptr + j, mask=m, other=0.0).to(tl.float32)
    if BF16:  # RTNE by hand: the interpreter truncates fp32 -> bf16
        bits = d.to(tl.uint32, bitcast=True)
        bits = (bits + (0x7FFF + ((bits >> 16) & 1))) >> 16
        bits = tl.where(d != d, 0x7FFF, bits)  # NaN -> 0x7FFF: torch CPU, cvt.rn
        out = bits.to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        out = d.to(y_ptr.dtype.element_ty)
    tl.store(y_ptr + j, out, mask=m)


_KERNEL = Kernel(
    _dropout_kernel, do_not_specialize=("n", "ncol", "seed", "offset", "t"),
    configs=CONFIGS, default=DEFAULT, key=("HAS_BIAS", "HAS_RES", "SEED_PTR", "OFFSET_PTR"),
)


def _check_device(*ts: Tensor | None) -> torch.device:
    dev = ts[0].device  # type: ignore[union-attr]
    for t in ts:
        if t is not None and t.device != dev:
            raise ValueError(f"all tensors must be on one device, got {dev} and {t.device}")
    return dev


def _check_seed_offset(x: Tensor, p: float, seed: int | Tensor, offset: int | Tensor) -> None:
    """The contract's checks; a tensor seed / offset is only checked for dtype, size and
    device: its value stays on the device (reading it would be a host sync)."""
    if not isinstance(seed, Tensor) and not isinstance(offset, Tensor):
        ref.check_args(x, p, seed, offset)
        return
    ref.check_x_p(x, p)
    for name, v in (("seed", seed), ("offset", offset)):
        if isinstance(v, Tensor):
            if v.dtype != torch.int64 or v.numel() != 1:
                raise TypeError(
                    f"dropout {name} tensor must be a one-element int64 tensor, got {v!r}")
            if v.device != x.device:
                raise ValueError(f"dropout {name} tensor is on {v.device}, x on {x.device}")
    ref.check_seed_offset(0 if isinstance(seed, Tensor) else seed,
                          0 if isinstance(offset, Tensor) else offset,
                          0 if isinstance(offset, Tensor) else x.numel())


def _launch_config(block: int | None, num_warps: int | None) -> triton.Config | None:
    if block is None:
        return None if num_warps is None else config(DEFAULT.kwargs["BLOCK"], num_warps)
    if block < 4 or block & (block - 1):
        raise ValueError(f"block must be a power of two >= 4, got {block}")
    return config(block, num_warps)


def _fused(
    x: Tensor, bias: Tensor | None, residual: Tensor | None, p: float, seed: int | Tensor,
    offset: int | Tensor, block: int | None = None, num_warps: int | None = None,
) -> Tensor:
    _check_seed_offset(x, p, seed, offset)
    dev = _check_device(x, bias, residual)
    cfg = _launch_config(block, num_warps)
    xc = x.contiguous()
    y = torch.empty(x.shape, dtype=x.dtype, device=dev)
    n = x.numel()
    if n == 0:
        return y
    b = None if bias is None else bias.contiguous()
    if b is not None and (b.dim() != 1 or x.dim() == 0 or b.shape[0] != x.shape[-1]):
        raise ValueError(f"bias must have shape [x.shape[-1]], got {tuple(b.shape)}")
    res = None
    if residual is not None:
        res = residual if residual.shape == x.shape else residual.expand(x.shape)
        res = res.contiguous()
    ctrs = ref.counters_used(n)

    def grid(meta: dict) -> tuple[int]:
        return (triton.cdiv(ctrs, meta["BLOCK"] // 4),)

    _KERNEL.launch(
        dev, grid,
        xc, xc if b is None else b, xc if res is None else res, y,
        n, n_bucket(n), 1 if b is None else b.shape[0], seed, offset, ref.threshold(p),
        ref.scale(p),
        HAS_BIAS=b is not None, HAS_RES=res is not None, FP64=x.dtype == torch.float64,
        BF16=x.dtype == torch.bfloat16, SEED_PTR=isinstance(seed, Tensor),
        OFFSET_PTR=isinstance(offset, Tensor), cfg=cfg,
    )
    return y


def dropout(
    x: Tensor, p: float, seed: int | Tensor, offset: int | Tensor = 0, *,
    block: int | None = None, num_warps: int | None = None,
) -> Tensor:
    """y = cast(float32(x) * s) where kept, else 0 (always a new contiguous tensor).
    seed / offset: ints, or int64 tensors on x's device read by the kernel (see the module)."""
    return _fused(x, None, None, p, seed, offset, block, num_warps)


def dropout_backward(
    grad: Tensor, p: float, seed: int | Tensor, offset: int | Tensor = 0, *,
    block: int | None = None, num_warps: int | None = None,
) -> Tensor:
    """dx = cast(float32(dy) * s) where kept, else 0: the mask regenerated from (seed, offset)."""
    return _fused(grad, None, None, p, seed, offset, block, num_warps)


def bias_dropout_add(
    x: Tensor, bias: Tensor | None, residual: Tensor | None, p: float, seed: int | Tensor,
    offset: int | Tensor = 0, *, block: int | None = None, num_warps: int | None = None,
) -> Tensor:
    """residual + dropout(x + bias) in one pass (fp32 compute, fp64 for fp64, one final cast)."""
    return _fused(x, bias, residual, p, seed, offset, block, num_warps)
