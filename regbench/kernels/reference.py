"""Plain-torch reference of the fused-kernel contract (DESIGN.md). Slow, exact, the oracle.

Dropout: Philox4x32-10 in int64 arithmetic (no overflow: 32x32-bit products are split into
16-bit halves). key = (seed & 0xffffffff, seed >> 32); element j of the logical row-major
tensor uses counter n = offset + j // 4, i.e. (n & 0xffffffff, n >> 32, 0, 0), and word j % 4.
keep iff (r >> 8) >= ceil(p * 2**24) (float64 on the host); scale float32(1 / (1 - p)).
y = cast(float32(x) * s) if kept else +0. fp16 / bf16 / fp32 compute in fp32, fp64 in fp64.
The output has `torch.empty_like(x)`'s layout (a channels_last input gives a channels_last
output); the mask follows the logical index whatever the layout.

bias_dropout_add (one rounding per step, in fp32): h = float32(x) + float32(bias);
d = h * s if kept else +0; y = cast(d + float32(residual)).

L2 / elastic net (fp16 / bf16 / fp32 in fp32 with lam_f = float32(lam), l1_f = float32(l1)):
u = lam_f * theta [+ (l1_f if theta > 0 else -l1_f if theta < 0 else 0)]; grad = cast(grad + u).
fp64 uses lam, l1 as float64. Penalty = (0.5 * lam) * S2 + l1 * S1 in float64, where
S2 = sum(theta**2) and S1 = sum(|theta|) are added in a fixed order: blocks of 4096 elements,
element j of a block into lane j % 16 in index order, lanes reduced as the tree
16 -> 8 -> 4 -> 2 -> 1 (lane i + lane i + half), then blocks in order, tensor by tensor, from 0.0.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK32 = 0xFFFFFFFF
L2_BLOCK = 4096
L2_LANES = 16


def _mulhilo(m: int, a: Tensor) -> tuple[Tensor, Tensor]:
    """(hi, lo) 32-bit halves of m * a for a constant m < 2**32 and int64 a in [0, 2**32)."""
    p_lo = a & 0xFFFF
    p_hi = a >> 16
    p_lo = p_lo * m  # < 2**48
    p_hi = p_hi * m  # < 2**48
    hi = (p_hi + (p_lo >> 16)) >> 16
    lo = (((p_hi & 0xFFFF) << 16) + p_lo) & MASK32
    return hi, lo


def philox4x32(
    c0: Tensor, c1: Tensor, c2: Tensor, c3: Tensor, k0: int, k1: int, rounds: int = 10
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Philox4x32-R on int64 tensors holding uint32 values; returns the four output words."""
    k0 &= MASK32
    k1 &= MASK32
    for _ in range(rounds):
        hi0, lo0 = _mulhilo(M0, c0)
        hi1, lo1 = _mulhilo(M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + W0) & MASK32
        k1 = (k1 + W1) & MASK32
    return c0, c1, c2, c3


def check_args(x: Tensor, p: float, seed: int, offset: int) -> None:
    """Validate dropout arguments; raise TypeError/ValueError naming the bad value."""
    check_x_p(x, p)
    check_seed_offset(seed, offset, x.numel())


def check_x_p(x: Tensor, p: float) -> None:
    """Validate the input tensor and the probability of a dropout call."""
    if not isinstance(x, Tensor):
        raise TypeError(f"dropout expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"dropout expects a floating-point tensor, got dtype {x.dtype}")
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"dropout probability p must be a float, got {p!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1], got {p!r}")


def check_seed_offset(seed: int, offset: int, numel: int) -> None:
    """Validate seed (int64 >= 0) and offset (>= 0, offset + ceil(numel/4) fits int64)."""
    for name, v in (("seed", seed), ("offset", offset)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"dropout {name} must be an int, got {v!r}")
        if v < 0:
            raise ValueError(f"dropout {name} must be a non-negative int64, got {v}")
        if v >= 2**63:
            raise ValueError(f"dropout {name} must fit in int64, got {v}")
    if offset + counters_used(numel) >= 2**63:
        raise ValueError(
            f"dropout offset {offset} + {counters_used(numel)} counters overflows int64"
        )


def counters_used(numel: int) -> int:
    """Philox counters one call consumes: ceil(numel / 4). Advance offset by this."""
    return (int(numel) + 3) // 4


def threshold(p: float) -> int:
    """t = ceil(p * 2**24) in float64; element kept iff (r >> 8) >= t."""
    return math.ceil(float(p) * 16777216.0)


@functools.lru_cache(maxsize=256)
def scale(p: float) -> float:
    """float32(1 / (1 - p)) (float64 division rounded once to float32); 0.0 when p == 1."""
    if p >= 1.0:
        return 0.0
    return float(torch.tensor(1.0 / (1.0 - float(p)), dtype=torch.float64).to(torch.float32))


@functools.lru_cache(maxsize=256)
def threshold_scale(p: float) -> tuple[int, float]:
    """(threshold(p), scale(p)), cached: the kernels' per-call host constants."""
    return threshold(p), scale(p)


def random_words(numel: int, seed: int, offset: int) -> Tensor:
    """The Philox word r of elements 0 .. numel-1 (int64 tensor holding uint32 values)."""
    nc = counters_used(numel)
    n = torch.arange(nc, dtype=torch.int64) + int(offset)
    c0 = n & MASK32
    c1 = (n >> 32) & MASK32
    z = torch.zeros_like(n)
    words = philox4x32(c0, c1, z, z, int(seed) & MASK32, int(seed) >> 32)
    return torch.stack(words, dim=1).reshape(-1)[:numel]


def keep_mask(numel: int, p: float, seed: int, offset: int) -> Tensor:
    """Boolean keep mask of the flat logical tensor."""
    return (random_words(numel, seed, offset) >> 8) >= threshold(p)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _apply(
    x: Tensor, bias: Tensor | None, residual: Tensor | None, p: float, seed: int, offset: int
) -> Tensor:
    cd = _compute_dtype(x.dtype)
    keep = keep_mask(x.numel(), p, seed, offset).reshape(x.shape)
    s = torch.tensor(scale(p), dtype=torch.float32).to(cd)
    h = x.to(cd)
    if bias is not None:
        h = h + bias.to(cd)
    d = torch.where(keep, h * s, torch.zeros((), dtype=cd))
    if residual is not None:
        d = d + residual.to(cd)
    # the layout of torch.empty_like(x) (what every backend returns); the values are d's
    return torch.empty_like(x).copy_(d.to(x.dtype))


def dropout(x: Tensor, p: float, seed: int, offset: int, training: bool = True) -> Tensor:
    """Reference dropout under the contract (returns x itself if not training or p == 0)."""
    check_args(x, p, seed, offset)
    if not training or p == 0:
        return x
    return _apply(x, None, None, p, seed, offset)


def bias_dropout_add(
    x: Tensor,
    bias: Tensor | None,
    residual: Tensor | None,
    p: float,
    seed: int,
    offset: int,
    training: bool = True,
) -> Tensor:
    """Reference residual + dropout(x + bias), computed in fp32 with one final cast."""
    check_args(x, p, seed, offset)
    return _apply(x, bias, residual, p if training else 0.0, seed, offset)


def _block_sums(v: Tensor) -> list[float]:
    """Per-block float64 sums of v (float64, flat) in the contract's fixed order."""
    n = v.numel()
    nb = -(-n // L2_BLOCK)
    if nb == 0:
        return []
    padded = torch.zeros(nb * L2_BLOCK, dtype=torch.float64)
    padded[:n] = v
    rows = padded.view(nb, L2_BLOCK // L2_LANES, L2_LANES)
    acc = torch.zeros(nb, L2_LANES, dtype=torch.float64)
    for r in range(L2_BLOCK // L2_LANES):
        acc = acc + rows[:, r, :]
    width = L2_LANES
    while width > 1:
        width //= 2
        acc = acc[:, :width] + acc[:, width:]
    return acc[:, 0].tolist()


def l2_update_(
    grads: Sequence[Tensor], params: Sequence[Tensor], lam: float, l1: float = 0.0
) -> Tensor:
    """Reference fused L2 / elastic net: grads += lam*theta (+ l1*sign); returns the penalty."""
    s2 = 0.0
    s1 = 0.0
    for g, p in zip(grads, params, strict=True):
        cd = _compute_dtype(p.dtype)
        x = p.detach().to(cd)
        lam_t = torch.tensor(lam, dtype=torch.float64).to(cd)
        u = lam_t * x
        if l1 != 0.0:
            l1_t = torch.tensor(l1, dtype=torch.float64).to(cd)
            sl = torch.where(
                x > 0, l1_t, torch.where(x < 0, -l1_t, torch.zeros((), dtype=cd))
            )
            u = u + sl
        g.copy_((g.to(cd) + u).to(g.dtype))
        xd = x.to(torch.float64).reshape(-1)
        sq = xd * xd  # exact for fp32/fp16/bf16 inputs; rounded once for fp64
        for b in _block_sums(sq):
            s2 = s2 + b
        for b in _block_sums(xd.abs()):
            s1 = s1 + b
    return torch.tensor((0.5 * lam) * s2 + l1 * s1, dtype=torch.float64)


def l2_(params: Sequence[Tensor], lam: float) -> Tensor:
    """Reference `regbench.kernels.l2_` on parameters with `.grad` (None grads start at 0)."""
    return elastic_net_(params, lam, 0.0)


def elastic_net_(params: Sequence[Tensor], lam: float, l1: float) -> Tensor:
    """Reference `regbench.kernels.elastic_net_`."""
    params = list(params)
    grads = []
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    with torch.no_grad():
        return l2_update_(grads, [p.detach() for p in params], lam, l1)
