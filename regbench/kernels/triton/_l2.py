"""Triton fused L2 / elastic net: `grad += lam*theta (+ l1*sign(theta))` and the penalty.

Gradients are bitwise the contract's (`reference.l2_update_`): fp32 compute for fp16/bf16/fp32
with lam, l1 rounded once to fp32, fp64 for fp64, FP contraction off. The penalty
`0.5*lam*S2 + l1*S1` is accumulated in float64, but not in the CPU's fixed order. Each tensor
is cut into chunks of PART = 1024 elements (zero-padded); in a chunk, lane w (of 128) adds
elements w, w + 128, ..., w + 896 in that order, the 128 lanes are summed as the pairwise tree
(adjacent pairs, then adjacent pairs of those, ...), and the per-chunk partials are summed with
`torch.sum` on the device. The tree is written as reductions over size-2 axes, each one IEEE
add whose bits no thread layout can change, so the penalty's bits depend on the shapes only:
not on the launch config (elements per program, warps), nor on the Triton version's layouts;
no atomics. They differ from the CPU value by float64 rounding (relative ~1e-15). A `tl.sum`
over the tile would not do: its association follows the layout, which BLOCK and num_warps
change.

A list of tensors runs as one launch per dtype: a table of (param offset, grad offset, count)
per chunk, in elements relative to the group's first param / grad, is built once per set of
addresses and cached on the device.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

from regbench.kernels.triton._launch import Kernel, config, n_bucket

__all__ = [
    "CONFIGS", "DEFAULT", "LANES", "PART", "elastic_net_", "elastic_net_multi_", "l2_", "l2_flat_",
]

# What the CUDA variant tunes over: (elements per program, warps), 8 to 32 elements a thread.
CONFIGS = tuple(config(b, w) for b, w in [(1024, 4), (2048, 4), (2048, 8), (4096, 4), (4096, 8),
                                          (8192, 8), (8192, 16), (16384, 16)])
DEFAULT = CONFIGS[4]  # 4096 elements, 8 warps: the fixed choice before autotuning
# The penalty's sum order (see above): PART elements per partial (also a row of the table), read
# as PART / LANES slices of LANES lanes. Neither may depend on the launch config.
PART = 1024
LANES = 128
_PART = tl.constexpr(PART)
_LANES = tl.constexpr(LANES)
_LANES_LOG2 = tl.constexpr(LANES.bit_length() - 1)
_SLICES = tl.constexpr(PART // LANES)
# tl.sum's combine fn, named directly: the interpreter maps it to np.sum, while calling tl.sum
# (a @triton.jit function) from an interpreted kernel fails when TRITON_INTERPRET is unset.
_SUM = tl.standard._sum_combine
_TABLE_CACHE: OrderedDict[tuple, Tensor] = OrderedDict()
_TABLE_CACHE_SIZE = 64


def _l2_kernel(
    p_ptr, g_ptr, tab_ptr, part_ptr, c_ptr,  # c_ptr: float64 (lam, l1), read when FP64
    n, n_bucket, chunks, lam, l1,
    TABLE: tl.constexpr, HAS_L1: tl.constexpr, FP64: tl.constexpr, BF16: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # R chunks of PART elements per program, each read as _SLICES [R, LANES] slices.
    R: tl.constexpr = BLOCK // _PART
    c = tl.program_id(0).to(tl.int64) * R + tl.arange(0, R).to(tl.int64)
    cm = c < chunks
    k = tl.arange(0, _LANES).to(tl.int64)[None, :]
    if TABLE:
        p_base = tl.load(tab_ptr + c * 3, mask=cm, other=0)[:, None] + k
        g_base = tl.load(tab_ptr + c * 3 + 1, mask=cm, other=0)[:, None] + k
        lim = tl.load(tab_ptr + c * 3 + 2, mask=cm, other=0)[:, None]
    else:
        p_base = c[:, None] * _PART + k
        g_base = p_base
        lim = n - c[:, None] * _PART
    if FP64:
        lam_c = tl.load(c_ptr)
        l1_c = tl.load(c_ptr + 1)
    s2 = tl.full([R, _LANES], 0.0, tl.float64)
    s1 = tl.full([R, _LANES], 0.0, tl.float64)
    for q in tl.static_range(_SLICES):
        m = k + q * _LANES < lim
        x = tl.load(p_ptr + (p_base + q * _LANES), mask=m, other=0.0)
        g = tl.load(g_ptr + (g_base + q * _LANES), mask=m, other=0.0)
        if FP64:
            xf = x.to(tl.float64)
            u = lam_c * xf
            if HAS_L1:
                u = u + tl.where(xf > 0, l1_c, tl.where(xf < 0, -l1_c, 0.0))
            gn = g.to(tl.float64) + u
        else:
            xf = x.to(tl.float32)
            u = lam * xf
            if HAS_L1:
                u = u + tl.where(xf > 0, l1, tl.where(xf < 0, -l1, 0.0))
            gn = g.to(tl.float32) + u
        if BF16:  # RTNE by hand: the interpreter truncates fp32 -> bf16
            bits = gn.to(tl.uint32, bitcast=True)
            bits = (bits + (0x7FFF + ((bits >> 16) & 1))) >> 16
            bits = tl.where(gn != gn, 0x7FFF, bits)  # NaN -> 0x7FFF: torch CPU, cvt.rn
            out = bits.to(tl.uint16).to(tl.bfloat16, bitcast=True)
        else:
            out = gn.to(g_ptr.dtype.element_ty)
        tl.store(g_ptr + (g_base + q * _LANES), out, mask=m)
        x64 = x.to(tl.float64)
        s2 = s2 + x64 * x64  # lane w of a chunk: its elements w, w + 128, ... in order
        if HAS_L1:
            s1 = s1 + tl.abs(x64)
    # Then the lanes as the pairwise tree (adjacent pairs first). A reduction over a size-2
    # axis is one IEEE add (a + b == b + a): no layout or warp count can change the order.
    for i in tl.static_range(_LANES_LOG2):
        s2 = tl.reduce(tl.reshape(s2, [R, _LANES >> (i + 1), 2]), 2, _SUM)
    tl.store(part_ptr + c * 2, tl.reshape(s2, [R]), mask=cm)
    if HAS_L1:
        for i in tl.static_range(_LANES_LOG2):
            s1 = tl.reduce(tl.reshape(s1, [R, _LANES >> (i + 1), 2]), 2, _SUM)
        tl.store(part_ptr + c * 2 + 1, tl.reshape(s1, [R]), mask=cm)
    else:
        tl.store(part_ptr + c * 2 + 1, tl.full([R], 0.0, tl.float64), mask=cm)


_TUNING = threading.local()


def _keep_grads(kwargs: dict[str, Any], reset_only: bool = False) -> None:
    """Autotuner pre_hook. Timing the configs runs the kernel many times, each adding lam*theta
    to the gradients again: copy them before the first run, put them back when tuning is done
    (`reset_only`, called once before the real launch). `restore_value=["g_ptr"]` would only
    cover the first gradient; the table points the kernel at all of the group's."""
    if not reset_only:
        if _TUNING.saved is None:
            _TUNING.saved = [g.clone() for g in _TUNING.grads]
    else:
        _put_back_grads()


def _put_back_grads() -> None:
    saved, _TUNING.saved = _TUNING.saved, None
    if saved is not None:
        for g, s in zip(_TUNING.grads, saved):
            g.copy_(s)


_KERNEL = Kernel(_l2_kernel, do_not_specialize=("n", "chunks"), configs=CONFIGS, default=DEFAULT,
                 key=("TABLE", "HAS_L1"), pre_hook=_keep_grads)


def _f32(v: float) -> float:
    return float(torch.tensor(v, dtype=torch.float64).to(torch.float32))


def _table(grads: Sequence[Tensor], params: Sequence[Tensor]) -> Tensor:
    """int64 [chunks, 3] (param offset, grad offset, count) per PART elements of each tensor,
    in elements; cached by addresses."""
    p0, g0 = params[0], grads[0]
    es = p0.element_size()
    key = (p0.device, p0.dtype,
           tuple((p.data_ptr(), g.data_ptr(), p.numel()) for p, g in zip(params, grads)))
    tab = _TABLE_CACHE.get(key)
    if tab is not None:
        _TABLE_CACHE.move_to_end(key)
        return tab
    rows: list[tuple[int, int, int]] = []
    for p, g in zip(params, grads):
        po = (p.data_ptr() - p0.data_ptr()) // es
        go = (g.data_ptr() - g0.data_ptr()) // es
        n = p.numel()
        rows.extend((po + s, go + s, min(PART, n - s)) for s in range(0, n, PART))
    tab = torch.tensor(rows, dtype=torch.int64).reshape(-1, 3).to(p0.device)
    _TABLE_CACHE[key] = tab
    if len(_TABLE_CACHE) > _TABLE_CACHE_SIZE:
        _TABLE_CACHE.popitem(last=False)
    return tab


def _launch(
    grads: Sequence[Tensor], params: Sequence[Tensor], lam: float, l1: float,
    cfg: triton.Config | None, flat: bool,
) -> Tensor:
    """One launch over tensors of one dtype and device; returns float64 partials [chunks, 2]."""
    p0, g0 = params[0], grads[0]
    dev = p0.device
    fp64 = p0.dtype == torch.float64
    coef = torch.tensor([lam, l1], dtype=torch.float64, device=dev) if fp64 else p0
    n = sum(p.numel() for p in params)
    if flat:
        chunks = triton.cdiv(n, PART)
        tab = p0
    else:
        tab = _table(grads, params)
        chunks = tab.shape[0]
    part = torch.empty((chunks, 2), dtype=torch.float64, device=dev)

    def grid(meta: dict) -> tuple[int]:
        return (triton.cdiv(chunks, meta["BLOCK"] // PART),)

    if chunks:
        _TUNING.grads, _TUNING.saved = grads, None
        try:
            _KERNEL.launch(
                dev, grid, p0, g0, tab, part, coef, n, n_bucket(n), chunks, _f32(lam), _f32(l1),
                TABLE=not flat, HAS_L1=l1 != 0.0, FP64=fp64, BF16=p0.dtype == torch.bfloat16,
                cfg=cfg,
            )
        finally:
            _put_back_grads()  # only if tuning failed half way (else already done)
            _TUNING.grads = None
    return part


def _launch_config(block: int | None, num_warps: int | None) -> triton.Config | None:
    if block is None:
        return None if num_warps is None else config(DEFAULT.kwargs["BLOCK"], num_warps)
    if block < PART or block & (block - 1):
        raise ValueError(f"block must be a power of two >= {PART}, got {block}")
    return config(block, num_warps)


def _check(grads: Sequence[Tensor], params: Sequence[Tensor]) -> None:
    if len(grads) != len(params):
        raise ValueError(f"l2_: {len(grads)} grads for {len(params)} params")
    for i, (g, p) in enumerate(zip(grads, params)):
        if not p.is_floating_point():
            raise TypeError(f"l2_: parameter {i} must be floating point, got dtype {p.dtype}")
        if g.dtype != p.dtype or g.shape != p.shape or g.device != p.device:
            raise ValueError(
                f"l2_: grad {i} ({g.dtype}, {tuple(g.shape)}, {g.device}) does not match its "
                f"parameter ({p.dtype}, {tuple(p.shape)}, {p.device})"
            )
    devs = {p.device for p in params}
    if len(devs) > 1:
        raise ValueError(f"l2_: parameters on several devices: {sorted(map(str, devs))}")


def elastic_net_multi_(
    grads: Sequence[Tensor], params: Sequence[Tensor], lam: float, l1: float = 0.0,
    *, block: int | None = None, num_warps: int | None = None,
) -> Tensor:
    """grads[i] += lam*params[i] (+ l1*sign) in one launch per dtype; returns the float64
    penalty `0.5*lam*sum(theta**2) + l1*sum(|theta|)` (0-dim, on the params' device).
    `block` (elements per program: a power of two >= PART) and `num_warps` fix the launch
    config; by default it is autotuned on CUDA. No config changes any bit of the results."""
    grads, params = list(grads), list(params)
    _check(grads, params)
    cfg = _launch_config(block, num_warps)
    # Non-contiguous tensors run on contiguous copies (grads copied back after the launch).
    pairs: list[tuple[Tensor, Tensor]] = []
    back: list[tuple[Tensor, Tensor]] = []
    for g, p in zip(grads, params):
        if p.numel():
            gc = g.contiguous()
            pairs.append((gc, p.detach().contiguous()))
            if gc is not g:
                back.append((g, gc))
    dev = params[0].device if params else torch.device("cpu")
    if not pairs:
        return torch.zeros((), dtype=torch.float64, device=dev)
    by_dtype: dict[torch.dtype, list[tuple[Tensor, Tensor]]] = {}
    for g, p in pairs:
        by_dtype.setdefault(p.dtype, []).append((g, p))
    parts = [
        _launch([g for g, _ in grp], [p for _, p in grp], lam, l1, cfg, flat=False)
        for grp in by_dtype.values()
    ]
    for g, gc in back:
        g.copy_(gc)
    part = parts[0] if len(parts) == 1 else torch.cat(parts)
    s = part.sum(0)
    return (0.5 * lam) * s[0] + l1 * s[1]


def l2_flat_(
    param: Tensor, grad: Tensor, lam: float, l1: float = 0.0, *, block: int | None = None,
    num_warps: int | None = None,
) -> Tensor:
    """The same update on one flat (contiguous) parameter buffer and its gradient buffer."""
    _check([grad], [param])
    if not (param.is_contiguous() and grad.is_contiguous()):
        raise ValueError("l2_flat_: the parameter and gradient buffers must be contiguous")
    cfg = _launch_config(block, num_warps)
    part = _launch([grad], [param.detach()], lam, l1, cfg, flat=True)
    s = part.sum(0)
    return (0.5 * lam) * s[0] + l1 * s[1]


def _grads(params: list[Tensor]) -> list[Tensor]:
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    return [p.grad for p in params]  # type: ignore[misc]


def elastic_net_(params: Iterable[Tensor], lam: float, l1: float) -> Tensor:
    """For each parameter: `grad += lam*theta + l1*sign(theta)` (missing grads start at 0)."""
    params = list(params)
    with torch.no_grad():
        return elastic_net_multi_(_grads(params), params, lam, l1)


def l2_(params: Iterable[Tensor], lam: float) -> Tensor:
    """For each parameter: `grad += lam*theta`; returns the float64 penalty."""
    return elastic_net_(params, lam, 0.0)
