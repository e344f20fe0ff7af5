"""Triton fused L2 / elastic net: `grad += lam*theta (+ l1*sign(theta))` and the penalty.

Gradients are bitwise the contract's (`reference.l2_update_`): fp32 compute for fp16/bf16/fp32
with lam, l1 rounded once to fp32, fp64 for fp64, FP contraction off. The penalty
`0.5*lam*S2 + l1*S1` is accumulated in float64, but not in the CPU's fixed order: each program
reduces its BLOCK elements as a tree (`tl.sum`) and the per-program partials are summed with
`torch.sum` on the device. It is deterministic for a given list of shapes (no atomics), and
differs from the CPU value only by float64 rounding (relative ~1e-15).

A list of tensors runs as one launch per dtype: a table of (param offset, grad offset, count)
per BLOCK-sized chunk, in elements relative to the group's first param / grad, is built once
per set of addresses and cached on the device.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor

from regbench.kernels.triton._launch import Kernel

__all__ = ["BLOCK", "NUM_WARPS", "elastic_net_", "elastic_net_multi_", "l2_", "l2_flat_"]

# Not tuned (no GPU was available when this was written).
BLOCK = 4096
NUM_WARPS = 8
# tl.sum's combine fn, named directly: the interpreter maps it to np.sum, while calling tl.sum
# (a @triton.jit function) from an interpreted kernel fails when TRITON_INTERPRET is unset.
_SUM = tl.standard._sum_combine
_TABLE_CACHE: OrderedDict[tuple, Tensor] = OrderedDict()
_TABLE_CACHE_SIZE = 64


def _l2_kernel(
    p_ptr, g_ptr, tab_ptr, part_ptr, c_ptr,  # c_ptr: float64 (lam, l1), read when FP64
    n, lam, l1,
    TABLE: tl.constexpr, HAS_L1: tl.constexpr, FP64: tl.constexpr, BF16: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    k = tl.arange(0, BLOCK).to(tl.int64)
    if TABLE:
        p_off = tl.load(tab_ptr + pid * 3)
        g_off = tl.load(tab_ptr + pid * 3 + 1)
        cnt = tl.load(tab_ptr + pid * 3 + 2)
        pp = p_ptr + (p_off + k)
        gp = g_ptr + (g_off + k)
        m = k < cnt
    else:
        idx = pid * BLOCK + k
        pp = p_ptr + idx
        gp = g_ptr + idx
        m = idx < n
    x = tl.load(pp, mask=m, other=0.0)
    g = tl.load(gp, mask=m, other=0.0)
    if FP64:
        lam_c = tl.load(c_ptr)
        l1_c = tl.load(c_ptr + 1)
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
    tl.store(gp, out, mask=m)
    x64 = x.to(tl.float64)
    tl.store(part_ptr + pid * 2, tl.reduce(x64 * x64, 0, _SUM))
    if HAS_L1:
        tl.store(part_ptr + pid * 2 + 1, tl.reduce(tl.abs(x64), 0, _SUM))
    else:
        tl.store(part_ptr + pid * 2 + 1, 0.0)


_KERNEL = Kernel(_l2_kernel, do_not_specialize=("n",))


def _f32(v: float) -> float:
    return float(torch.tensor(v, dtype=torch.float64).to(torch.float32))


def _table(grads: Sequence[Tensor], params: Sequence[Tensor], block: int) -> Tensor:
    """int64 [rows, 3] (param offset, grad offset, count) in elements, cached by addresses."""
    p0, g0 = params[0], grads[0]
    es = p0.element_size()
    key = (p0.device, p0.dtype, block,
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
        rows.extend((po + s, go + s, min(block, n - s)) for s in range(0, n, block))
    tab = torch.tensor(rows, dtype=torch.int64).reshape(-1, 3).to(p0.device)
    _TABLE_CACHE[key] = tab
    if len(_TABLE_CACHE) > _TABLE_CACHE_SIZE:
        _TABLE_CACHE.popitem(last=False)
    return tab


def _launch(
    grads: Sequence[Tensor], params: Sequence[Tensor], lam: float, l1: float, block: int,
    flat: bool,
) -> Tensor:
    """One launch over tensors of one dtype and device; returns float64 partials [rows, 2]."""
    p0, g0 = params[0], grads[0]
    dev = p0.device
    fp64 = p0.dtype == torch.float64
    coef = torch.tensor([lam, l1], dtype=torch.float64, device=dev) if fp64 else p0
    if flat:
        n = p0.numel()
        rows = triton.cdiv(n, block)
        tab = p0
    else:
        n = 0
        tab = _table(grads, params, block)
        rows = tab.shape[0]
    part = torch.empty((rows, 2), dtype=torch.float64, device=dev)
    if rows:
        _KERNEL.launch(
            dev, (rows,), p0, g0, tab, part, coef, n, _f32(lam), _f32(l1),
            TABLE=not flat, HAS_L1=l1 != 0.0, FP64=fp64, BF16=p0.dtype == torch.bfloat16,
            BLOCK=block,
            num_warps=NUM_WARPS if block >= 2048 else 4,
        )
    return part


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
    *, block: int | None = None,
) -> Tensor:
    """grads[i] += lam*params[i] (+ l1*sign) in one launch per dtype; returns the float64
    penalty `0.5*lam*sum(theta**2) + l1*sum(|theta|)` (0-dim, on the params' device)."""
    grads, params = list(grads), list(params)
    _check(grads, params)
    block = BLOCK if block is None else int(block)
    if block < 16 or block & (block - 1):
        raise ValueError(f"block must be a power of two >= 16, got {block}")
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
        _launch([g for g, _ in grp], [p for _, p in grp], lam, l1, block, flat=False)
        for grp in by_dtype.values()
    ]
    for g, gc in back:
        g.copy_(gc)
    part = parts[0] if len(parts) == 1 else torch.cat(parts)
    s = part.sum(0)
    return (0.5 * lam) * s[0] + l1 * s[1]


def l2_flat_(
    param: Tensor, grad: Tensor, lam: float, l1: float = 0.0, *, block: int | None = None
) -> Tensor:
    """The same update on one flat (contiguous) parameter buffer and its gradient buffer."""
    _check([grad], [param])
    if not (param.is_contiguous() and grad.is_contiguous()):
        raise ValueError("l2_flat_: the parameter and gradient buffers must be contiguous")
    block = BLOCK if block is None else int(block)
    part = _launch([grad], [param.detach()], lam, l1, block, flat=True)
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
