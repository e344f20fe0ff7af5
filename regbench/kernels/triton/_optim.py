"""Triton fused optimizer steps: SGD (momentum, dampening, nesterov, coupled decay) and
Adam / AdamW, with the elastic-net gradient `l2*theta + l1*sign(theta)` in the same pass.

Per element the op order is regbench.optim's (csrc/optim.cpp): the penalty as the L2 contract
(multiply, then add), torch.optim's multiply-adds as `tl.fma` (one rounding, what torch's
vectorized CPU kernels do), IEEE division (`div_rn`) and sqrt (`sqrt_rn`), constants rounded
once from float64 to the tensor's dtype. FP contraction is off (`_launch.Kernel`). So in the
interpreter, on CPU tensors, the results equal `regbench.optim.reference` bit for bit
(Adam with `torch_sqrt=False`: IEEE sqrt; CUDA's torch.sqrt is IEEE too). fp32 and fp64 only;
other dtypes run the reference.

A list of tensors runs as one launch per dtype: a table with one row per CHUNK elements of
each tensor, (param, grad, state 1, state 2 offsets relative to the group's first tensors,
count, tensor index), built once per set of addresses and cached. Adam's step counts are CPU
tensors (torch's non-capturable state): bias corrections are computed on the host in float64
(as torch does in Python) and passed per tensor.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import triton.language as tl
from torch import Tensor

from regbench.kernels.triton._launch import Kernel, config, n_bucket

__all__ = ["CHUNK", "adamw_step_", "sgd_step_"]

CHUNK = 1024  # elements per table row and per program
_CFG = config(CHUNK)
_TABLES: OrderedDict[tuple, Tensor] = OrderedDict()
_TABLE_CACHE_SIZE = 64
_COLS = 6


def _sgd_kernel(p_ptr, g_ptr, b_ptr, tab_ptr, c_ptr, n_bucket,
                HAS_PEN: tl.constexpr, HAS_L1: tl.constexpr, HAS_WD: tl.constexpr,
                HAS_MOM: tl.constexpr, INIT: tl.constexpr, NESTEROV: tl.constexpr,
                BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64) * 6
    po = tl.load(tab_ptr + row)
    go = tl.load(tab_ptr + row + 1)
    bo = tl.load(tab_ptr + row + 2)
    cnt = tl.load(tab_ptr + row + 4)
    k = tl.arange(0, BLOCK).to(tl.int64)
    m = k < cnt
    ty = p_ptr.dtype.element_ty
    x = tl.load(p_ptr + po + k, mask=m, other=0.0)
    d = tl.load(g_ptr + go + k, mask=m, other=0.0)
    l2 = tl.load(c_ptr).to(ty)
    l1 = tl.load(c_ptr + 1).to(ty)
    wd = tl.load(c_ptr + 2).to(ty)
    mom = tl.load(c_ptr + 3).to(ty)
    damp1 = tl.load(c_ptr + 4).to(ty)
    nlr = tl.load(c_ptr + 5).to(ty)
    if HAS_PEN:
        u = l2 * x
        if HAS_L1:
            u = u + tl.where(x > 0, l1, tl.where(x < 0, -l1, 0.0).to(ty))
        d = d + u
    if HAS_WD:
        d = tl.fma(x, wd, d)
    if HAS_MOM:
        if INIT:
            buf = d
        else:
            buf = tl.fma(d, damp1, tl.load(b_ptr + bo + k, mask=m, other=0.0) * mom)
        tl.store(b_ptr + bo + k, buf, mask=m)
        if NESTEROV:
            d = tl.fma(buf, mom, d)
        else:
            d = buf
    tl.store(p_ptr + po + k, tl.fma(d, nlr, x), mask=m)


def _adam_kernel(p_ptr, g_ptr, m_ptr, v_ptr, tab_ptr, c_ptr, t_ptr, n_bucket,
                 HAS_PEN: tl.constexpr, HAS_L1: tl.constexpr, COUPLED: tl.constexpr,
                 DECOUPLED: tl.constexpr, SMALL: tl.constexpr, FP64: tl.constexpr,
                 BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64) * 6
    po = tl.load(tab_ptr + row)
    go = tl.load(tab_ptr + row + 1)
    mo = tl.load(tab_ptr + row + 2)
    vo = tl.load(tab_ptr + row + 3)
    cnt = tl.load(tab_ptr + row + 4)
    ti = tl.load(tab_ptr + row + 5)
    k = tl.arange(0, BLOCK).to(tl.int64)
    msk = k < cnt
    ty = p_ptr.dtype.element_ty
    x = tl.load(p_ptr + po + k, mask=msk, other=0.0)
    d = tl.load(g_ptr + go + k, mask=msk, other=0.0)
    l2 = tl.load(c_ptr).to(ty)
    l1 = tl.load(c_ptr + 1).to(ty)
    wd = tl.load(c_ptr + 2).to(ty)
    decay = tl.load(c_ptr + 3).to(ty)
    w1 = tl.load(c_ptr + 4).to(ty)
    b2 = tl.load(c_ptr + 5).to(ty)
    w2 = tl.load(c_ptr + 6).to(ty)
    eps = tl.load(c_ptr + 7).to(ty)
    bc2s = tl.load(t_ptr + ti * 2).to(ty)
    nss = tl.load(t_ptr + ti * 2 + 1).to(ty)
    if HAS_PEN:
        u = l2 * x
        if HAS_L1:
            u = u + tl.where(x > 0, l1, tl.where(x < 0, -l1, 0.0).to(ty))
        d = d + u
    if COUPLED:
        d = tl.fma(x, wd, d)
    if DECOUPLED:
        x = x * decay
    m0 = tl.load(m_ptr + mo + k, mask=msk, other=0.0)
    if SMALL:  # torch's lerp: weight < 0.5 -> m + w * (g - m), else g - (g - m) * (1 - w)
        mm = tl.fma(w1, d - m0, m0)
    else:
        mm = tl.fma(w1 - 1.0, d - m0, d)
    tl.store(m_ptr + mo + k, mm, mask=msk)
    vv = tl.fma(w2 * d, d, tl.load(v_ptr + vo + k, mask=msk, other=0.0) * b2)
    tl.store(v_ptr + vo + k, vv, mask=msk)
    if FP64:  # fp64 sqrt and division are IEEE (sqrt.rn / div.rn.f64); *_rn are fp32-only
        den = tl.sqrt(vv) / bc2s + eps
        upd = (nss * mm) / den
    else:
        den = tl.math.div_rn(tl.sqrt_rn(vv), bc2s) + eps
        upd = tl.math.div_rn(nss * mm, den)
    tl.store(p_ptr + po + k, x + upd, mask=msk)


_SGD = Kernel(_sgd_kernel, configs=(_CFG,), default=_CFG)
_ADAM = Kernel(_adam_kernel, configs=(_CFG,), default=_CFG)


def _table(lists: Sequence[Sequence[Tensor]]) -> Tensor:
    """int64 [rows, 6]: per CHUNK elements of each tensor, the offsets (in elements) of the
    param, grad and up to two state tensors from their group's first tensor, the count and
    the tensor index. Cached by addresses."""
    params = lists[0]
    es = params[0].element_size()
    key = (params[0].device, params[0].dtype,
           tuple(tuple(t.data_ptr() for t in ts) for ts in lists),
           tuple(p.numel() for p in params))
    tab = _TABLES.get(key)
    if tab is not None:
        _TABLES.move_to_end(key)
        return tab
    firsts = [ts[0].data_ptr() for ts in lists]
    rows: list[tuple[int, ...]] = []
    for i, p in enumerate(params):
        offs = [(ts[i].data_ptr() - f) // es for ts, f in zip(lists, firsts)]
        offs += [0] * (4 - len(offs))
        n = p.numel()
        rows.extend((*(o + s for o in offs), min(CHUNK, n - s), i) for s in range(0, n, CHUNK))
    tab = torch.tensor(rows, dtype=torch.int64).reshape(-1, _COLS).to(params[0].device)
    _TABLES[key] = tab
    if len(_TABLES) > _TABLE_CACHE_SIZE:
        _TABLES.popitem(last=False)
    return tab


def _groups(n: int, params: Sequence[Tensor], others: Sequence[Sequence[Tensor]]
            ) -> tuple[dict[torch.dtype, list[int]], list[int]]:
    """Indices by dtype of what the kernel runs (contiguous fp32/fp64, state alike), and the
    rest (run by the reference)."""
    by: dict[torch.dtype, list[int]] = {}
    rest: list[int] = []
    for i in range(n):
        p = params[i]
        ok = (p.dtype in (torch.float32, torch.float64) and p.is_contiguous() and p.numel() > 0
              and all(t[i].dtype == p.dtype and t[i].shape == p.shape and t[i].is_contiguous()
                      and t[i].device == p.device for t in others))
        if ok:
            by.setdefault(p.dtype, []).append(i)
        elif p.numel():
            rest.append(i)
    return by, rest


def _pick(ts: Sequence[Tensor], idx: Sequence[int]) -> list[Tensor]:
    return [ts[i] for i in idx]


def sgd_step_(params: Sequence[Tensor], grads: Sequence[Tensor], bufs: Sequence[Tensor], *,
              lr: float, momentum: float, dampening: float, nesterov: bool,
              weight_decay: float, l2: float, l1: float, init_bufs: bool) -> None:
    """One fused SGD step in place (regbench.optim.reference.sgd_step_'s bits), one launch
    per dtype."""
    from regbench.optim import reference as ref

    params, grads, bufs = list(params), list(grads), list(bufs)
    mom = momentum != 0.0
    by, rest = _groups(len(params), params, [grads, *([bufs] if mom else [])])
    for idx in by.values():
        ps, gs = _pick(params, idx), _pick(grads, idx)
        bs = _pick(bufs, idx) if mom else ps
        tab = _table([ps, gs, bs])
        dev = ps[0].device
        coef = torch.tensor([l2, l1, weight_decay, momentum, 1.0 - dampening, -lr],
                            dtype=torch.float64).to(dev)
        n = sum(p.numel() for p in ps)
        _SGD.launch(dev, lambda meta, rows=tab.shape[0]: (rows,), ps[0], gs[0], bs[0], tab,
                    coef, n_bucket(n), HAS_PEN=l2 != 0.0 or l1 != 0.0, HAS_L1=l1 != 0.0,
                    HAS_WD=weight_decay != 0.0, HAS_MOM=mom, INIT=bool(init_bufs),
                    NESTEROV=bool(nesterov))
    if rest:
        ref.sgd_step_(_pick(params, rest), _pick(grads, rest), _pick(bufs, rest) if mom else [],
                      lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                      weight_decay=weight_decay, l2=l2, l1=l1, init_bufs=init_bufs)


def adamw_step_(params: Sequence[Tensor], grads: Sequence[Tensor], exp_avgs: Sequence[Tensor],
                exp_avg_sqs: Sequence[Tensor], steps: Sequence[Tensor], *, lr: float,
                beta1: float, beta2: float, eps: float, weight_decay: float, decoupled: bool,
                l2: float, l1: float, torch_sqrt: bool = True) -> None:
    """One fused Adam/AdamW step in place (steps += 1; IEEE sqrt whatever `torch_sqrt` says:
    it is torch.sqrt's rounding on CUDA), one launch per dtype."""
    from regbench.optim import reference as ref

    params, grads = list(params), list(grads)
    exp_avgs, exp_avg_sqs, steps = list(exp_avgs), list(exp_avg_sqs), list(steps)
    by, rest = _groups(len(params), params, [grads, exp_avgs, exp_avg_sqs])
    for idx in by.values():
        ps = _pick(params, idx)
        tab = _table([ps, _pick(grads, idx), _pick(exp_avgs, idx), _pick(exp_avg_sqs, idx)])
        dev, dt = ps[0].device, ps[0].dtype
        per = []
        for i in idx:
            steps[i] += 1  # as torch: the step count is a CPU tensor, read on the host
            step = float(steps[i].item())
            per += [(1 - beta2**step) ** 0.5, -(lr / (1 - beta1**step))]
        per_t = torch.tensor(per, dtype=torch.float64).to(dev)
        coef = torch.tensor([l2, l1, weight_decay, 1 - lr * weight_decay, 1 - beta1, beta2,
                             1 - beta2, eps], dtype=torch.float64).to(dev)
        w1 = torch.tensor(1 - beta1, dtype=torch.float64).to(dt).abs().item()
        n = sum(p.numel() for p in ps)
        _ADAM.launch(dev, lambda meta, rows=tab.shape[0]: (rows,), ps[0], grads[idx[0]],
                     exp_avgs[idx[0]], exp_avg_sqs[idx[0]], tab, coef, per_t, n_bucket(n),
                     HAS_PEN=l2 != 0.0 or l1 != 0.0, HAS_L1=l1 != 0.0,
                     COUPLED=weight_decay != 0.0 and not decoupled,
                     DECOUPLED=weight_decay != 0.0 and decoupled, SMALL=w1 < 0.5,
                     FP64=dt == torch.float64)
    if rest:
        ref.adamw_step_(_pick(params, rest), _pick(grads, rest), _pick(exp_avgs, rest),
                        _pick(exp_avg_sqs, rest), _pick(steps, rest), lr=lr, beta1=beta1,
                        beta2=beta2, eps=eps, weight_decay=weight_decay, decoupled=decoupled,
                        l2=l2, l1=l1, torch_sqrt=torch_sqrt)
