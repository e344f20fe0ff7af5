"""Fused counter-based dropout ops (`regbench::dropout`, `regbench::dropout_st`,
`regbench::bias_dropout_add`): schema, CPU impl, fake impl and autograd.

The mask is a pure function of (seed, offset, element index); backward regenerates it, so
nothing of size numel is saved for backward. See `reference.py` for the exact contract.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from regbench.kernels import _backend
from regbench.kernels import reference as ref

__all__ = ["bias_dropout_add", "dropout"]

_I64 = 2**63


def _run(
    x: Tensor, bias: Tensor | None, residual: Tensor | None, p: float, seed: int, offset: int
) -> Tensor:
    ref.check_args(x, p, seed, offset)
    return _run_checked(x, bias, residual, p, seed, offset)


def _run_checked(
    x: Tensor, bias: Tensor | None, residual: Tensor | None, p: float, seed: int, offset: int,
    out: Tensor | None = None,
) -> Tensor:
    """`_run` for arguments the caller has already validated; `out` (x itself for the
    in-place form) receives the result. (`x.is_cpu`, not `x.device.type`: building a device
    object costs a microsecond, a tenth of a 64K-element call.)"""
    if x.is_cpu:
        isa = _backend.cpu_isa()
        if isa is None:
            return _into(out, ref._apply(x, bias, residual, p, seed, offset))
        t, s = ref.threshold_scale(p)
        return _backend.load_extension().dropout_fwd(  # type: ignore[union-attr]
            x, bias, residual, t, s, seed, offset, isa, out)
    if x.is_cuda:
        return _into(out, _run_cuda(x, bias, residual, p, seed, offset))
    return _into(out, ref._apply(x, bias, residual, p, seed, offset))


def _into(out: Tensor | None, y: Tensor) -> Tensor:
    """y, or `out` holding y's values (the in-place form)."""
    return y if out is None else out.copy_(y)


def _like_input(x: Tensor, y: Tensor) -> Tensor:
    """y (computed contiguous) in the layout `torch.empty_like(x)` gives, as the CPU kernel
    returns it: a channels_last (or other permuted dense) input keeps its memory format."""
    if x.is_contiguous():
        return y
    out = torch.empty_like(x)
    return y if out.is_contiguous() else out.copy_(y)


def _run_cuda(
    x: Tensor, bias: Tensor | None, residual: Tensor | None, p: float, seed: int, offset: int
) -> Tensor:
    """CUDA: the Triton kernel (imported on first use), else the reference on the device."""
    ref.check_args(x, p, seed, offset)
    tk = _backend.triton_kernels()
    if tk is None or _backend.reference_forced():
        return ref._apply(x, bias, residual, p, seed, offset)
    return _like_input(x, tk.bias_dropout_add(x, bias, residual, p, seed, offset))


def _fake_like(x: Tensor) -> Tensor:
    return torch.empty_like(x)


# --- regbench::dropout(x, p, seed: int, offset: int) ----------------------------------------


@torch.library.custom_op("regbench::dropout", mutates_args=())
def dropout_op(x: Tensor, p: float, seed: int, offset: int) -> Tensor:
    """y = cast(float32(x) * s) where kept else 0; a new tensor in `torch.empty_like(x)`'s
    layout (the mask follows the logical row-major index whatever the layout)."""
    return _run(x, None, None, p, seed, offset)


@dropout_op.register_fake
def _dropout_fake(x: Tensor, p: float, seed: int, offset: int) -> Tensor:
    return _fake_like(x)


def _dropout_setup(ctx, inputs, output) -> None:  # noqa: ANN001
    _, ctx.p, ctx.seed, ctx.offset = inputs


def _dropout_backward(ctx, grad: Tensor):  # noqa: ANN001, ANN201
    return dropout_op(grad, ctx.p, ctx.seed, ctx.offset), None, None, None


dropout_op.register_autograd(_dropout_backward, setup_context=_dropout_setup)


@dropout_op.register_kernel("cuda")
def _dropout_cuda(x: Tensor, p: float, seed: int, offset: int) -> Tensor:
    return _run_cuda(x, None, None, p, seed, offset)


# --- regbench::dropout_st(x, p, seed: Tensor, offset: Tensor) -------------------------------
# Same op with (seed, offset) as int64 scalar tensors, so a module can keep them as buffers and
# advance the offset in place without graph breaks under torch.compile.


def _scalar(t: Tensor, name: str) -> int:
    if t.dtype != torch.int64 or t.numel() != 1:
        raise TypeError(f"dropout {name} tensor must be a one-element int64 tensor, got {t!r}")
    return int(t.item())


@torch.library.custom_op("regbench::dropout_st", mutates_args=())
def dropout_st_op(x: Tensor, p: float, seed: Tensor, offset: Tensor) -> Tensor:
    """`regbench::dropout` with (seed, offset) read from int64 scalar tensors."""
    return _run(x, None, None, p, _scalar(seed, "seed"), _scalar(offset, "offset"))


@dropout_st_op.register_fake
def _dropout_st_fake(x: Tensor, p: float, seed: Tensor, offset: Tensor) -> Tensor:
    return _fake_like(x)


def _dropout_st_setup(ctx, inputs, output) -> None:  # noqa: ANN001
    _, ctx.p, seed, offset = inputs
    # Saved as is: mutating them in place before backward is an error in eager mode (and
    # silently wrong under torch.compile), so callers advance offsets by rebinding.
    ctx.save_for_backward(seed, offset)


def _dropout_st_backward(ctx, grad: Tensor):  # noqa: ANN001, ANN201
    seed, offset = ctx.saved_tensors
    return dropout_st_op(grad, ctx.p, seed, offset), None, None, None


dropout_st_op.register_autograd(_dropout_st_backward, setup_context=_dropout_st_setup)


def _device_scalar(t: Tensor, name: str, dev: torch.device) -> int | Tensor:
    """A one-element int64 tensor as the Triton kernel takes it: on `dev` as is (the kernel
    reads it there); a host tensor next to a CUDA `x` as its int (no device sync needed)."""
    if t.dtype != torch.int64 or t.numel() != 1:
        raise TypeError(f"dropout {name} tensor must be a one-element int64 tensor, got {t!r}")
    if t.device == dev:
        return t
    if t.device.type == "cpu":
        return int(t.item())
    return t.to(dev)  # another GPU: a device-to-device copy


@dropout_st_op.register_kernel("cuda")
def _dropout_st_cuda(x: Tensor, p: float, seed: Tensor, offset: Tensor) -> Tensor:
    """CUDA (forward, and backward through the same op): seed and offset tensors on x's device
    are read by the Triton kernel, so a step never waits for the host. The value checks of
    the int path (seed >= 0, offset + ceil(numel / 4) < 2**63) would need a sync, so they are
    not made for device tensors: a negative seed is used as its two's-complement bits and an
    offset that overflows wraps. Host tensors are read and checked like ints."""
    s = _device_scalar(seed, "seed", x.device)
    o = _device_scalar(offset, "offset", x.device)
    tk = _backend.triton_kernels()
    if tk is None or _backend.reference_forced():  # the reference needs ints: syncs
        return _run_cuda(x, None, None, p, int(s), int(o))
    return _like_input(x, tk.dropout(x, p, s, o))


# --- regbench::bias_dropout_add(x, bias?, residual?, p, seed, offset) -----------------------


@torch.library.custom_op("regbench::bias_dropout_add", mutates_args=())
def bias_dropout_add_op(
    x: Tensor,
    bias: Optional[Tensor],  # noqa: UP045 - torch.library schema inference
    residual: Optional[Tensor],  # noqa: UP045
    p: float,
    seed: int,
    offset: int,
) -> Tensor:
    """residual + dropout(x + bias) in one pass (fp32 compute, one final cast)."""
    return _run(x, bias, residual, p, seed, offset)


@bias_dropout_add_op.register_fake
def _bda_fake(
    x: Tensor,
    bias: Optional[Tensor],  # noqa: UP045
    residual: Optional[Tensor],  # noqa: UP045
    p: float,
    seed: int,
    offset: int,
) -> Tensor:
    return _fake_like(x)


def _bda_save(ctx, bias: Tensor | None, residual: Tensor | None, p: float, seed: int,  # noqa: ANN001
              offset: int) -> None:
    """What bias_dropout_add's backward needs: the mask's key and the inputs' shapes only."""
    ctx.p, ctx.seed, ctx.offset = p, seed, offset
    ctx.has_bias = bias is not None
    ctx.res_shape = None if residual is None else residual.shape


def _bda_grads(ctx, grad: Tensor, dh: Tensor) -> tuple:  # noqa: ANN001
    """(dx, dbias, dresidual, None x 3) from dh = dropout(grad) under the saved key."""
    dbias = dh.reshape(-1, dh.shape[-1]).sum(0) if ctx.has_bias else None
    dres = grad.sum_to_size(ctx.res_shape) if ctx.res_shape is not None else None
    return dh, dbias, dres, None, None, None


def _bda_setup(ctx, inputs, output) -> None:  # noqa: ANN001
    _bda_save(ctx, *inputs[1:])


def _bda_backward(ctx, grad: Tensor):  # noqa: ANN001, ANN201
    return _bda_grads(ctx, grad, dropout_op(grad, ctx.p, ctx.seed, ctx.offset))


bias_dropout_add_op.register_autograd(_bda_backward, setup_context=_bda_setup)


@bias_dropout_add_op.register_kernel("cuda")
def _bda_cuda(
    x: Tensor,
    bias: Optional[Tensor],  # noqa: UP045
    residual: Optional[Tensor],  # noqa: UP045
    p: float,
    seed: int,
    offset: int,
) -> Tensor:
    return _run_cuda(x, bias, residual, p, seed, offset)


# --- eager autograd path ----------------------------------------------------------------------
# Same math and bits as the ops above; an autograd.Function costs about ten microseconds a
# call where the Python custom-op dispatcher costs tens, which shows in small training steps.
# `dropout` on CPU uses the extension's C++ autograd node instead (`dropout_autograd`, about
# a microsecond); these Functions serve bias_dropout_add, and dropout when the extension is
# not there. The ops stay what torch.compile, opcheck and the dispatcher see.


class _EagerDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bias, residual, p, seed, offset):  # noqa: ANN001, ANN205, PLR0913
        _bda_save(ctx, bias, residual, p, seed, offset)
        return _run_checked(x, bias, residual, p, seed, offset)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        if torch.is_grad_enabled():  # double backward: differentiable through the op
            dh = dropout_op(grad, ctx.p, ctx.seed, ctx.offset)
        else:
            dh = _run_checked(grad, None, None, ctx.p, ctx.seed, ctx.offset)
        return _bda_grads(ctx, grad, dh)


class _EagerDropoutInplace(_EagerDropout):
    """The in-place form: writes the result into x, marks it dirty and returns it (autograd
    then refuses a leaf that requires grad, as for `F.dropout(x, inplace=True)`)."""

    @staticmethod
    def forward(ctx, x, bias, residual, p, seed, offset):  # noqa: ANN001, ANN205, PLR0913
        _bda_save(ctx, bias, residual, p, seed, offset)
        _run_checked(x, None, None, p, seed, offset, x)
        ctx.mark_dirty(x)
        return x


def _eager_autograd(*ts: Tensor | None) -> bool:
    """True when the op runs eagerly and records autograd on CPU (the fast Function path)."""
    return not torch.compiler.is_compiling() and all(t is None or t.is_cpu for t in ts)


# --- public functions -------------------------------------------------------------------------


def _eager_no_grad(*ts: Tensor | None) -> bool:
    """True when the op can skip the dispatcher: eager mode and no autograd graph to record."""
    if torch.compiler.is_compiling():
        return False
    return not (torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in ts))


def _in_place(x: Tensor, y: Tensor) -> Tensor:
    """x holding y's values, through `copy_` (what autograd and torch.compile see)."""
    return x.copy_(y)


def dropout(
    x: Tensor, p: float, seed: int | Tensor, offset: int | Tensor = 0, training: bool = True,
    inplace: bool = False,
) -> Tensor:
    """Counter-based dropout: mask from Philox4x32-10 keyed by `seed` at counter `offset`.

    Returns `x` itself when `training` is False or `p == 0`. The call consumes
    `ceil(x.numel() / 4)` counters; advance `offset` by that between calls. `seed` and `offset`
    may be ints or one-element int64 tensors (e.g. module buffers); tensors are saved for
    backward, so advance them by rebinding (`off = off + n`), not in place. The result has
    `torch.empty_like(x)`'s layout (channels_last stays channels_last); `inplace=True` writes
    it into x and returns x, with the autograd rules of `F.dropout(x, inplace=True)`.
    """
    # The common case first, with as few Python steps as it takes: this path is the fixed
    # cost of every call (target <= 3 us; README "Fused kernels (CPU)").
    if not (type(p) is float and 0.0 <= p <= 1.0 and isinstance(x, Tensor)  # noqa: E721
            and x.is_floating_point()):
        ref.check_x_p(x, p)  # raises, naming the value (or accepts an int p of 0 or 1)
        p = float(p)
    if not training or p == 0:
        return x
    if (type(seed) is int and type(offset) is int and not inplace  # noqa: E721
            and 0 <= seed < _I64 and 0 <= offset
            and offset + (x.numel() + 3) // 4 < _I64
            and x.is_cpu and not (x.requires_grad and torch.is_grad_enabled())
            and not torch.compiler.is_compiling()):
        isa = _backend.cpu_isa()
        if isa is not None:
            t, s = ref.threshold_scale(p)
            return _backend.load_extension().dropout_fwd(  # type: ignore[union-attr]
                x, None, None, t, s, seed, offset, isa, None)
    if type(seed) is not int or type(offset) is not int:  # noqa: E721 - bool is not a seed
        if isinstance(seed, Tensor) or isinstance(offset, Tensor):
            seed_t = seed if isinstance(seed, Tensor) else torch.tensor(seed, dtype=torch.int64)
            off_t = (offset if isinstance(offset, Tensor)
                     else torch.tensor(offset, dtype=torch.int64))
            if not _eager_autograd(x, seed_t, off_t):
                y = dropout_st_op(x, float(p), seed_t, off_t)
                return _in_place(x, y) if inplace else y
            seed, offset = _scalar(seed_t, "seed"), _scalar(off_t, "offset")
        ref.check_seed_offset(seed, offset, x.numel())  # raises for anything but ints
    elif not (0 <= seed < _I64 and 0 <= offset and offset + (x.numel() + 3) // 4 < _I64):
        ref.check_seed_offset(seed, offset, x.numel())  # raises, naming the value
    if not (x.requires_grad and torch.is_grad_enabled()) and not torch.compiler.is_compiling():
        # no autograd graph to record: the kernel directly, without the dispatcher
        if not inplace:
            return _run_checked(x, None, None, p, seed, offset)
        _run_checked(x, None, None, p, seed, offset, x)
        if not x.is_inference():  # a direct write: tell autograd x changed, as x.mul_ would
            torch.autograd.graph.increment_version(x)
        return x
    if _eager_autograd(x):
        isa = _backend.cpu_isa()
        if isa is not None:  # the C++ autograd node: same bits, a tenth of Function.apply
            t, s = ref.threshold_scale(p)
            return _backend.load_extension().dropout_autograd(  # type: ignore[union-attr]
                x, t, s, seed, offset, isa, inplace)
        fn = _EagerDropoutInplace if inplace else _EagerDropout
        return fn.apply(x, None, None, p, seed, offset)
    y = dropout_op(x, p, seed, offset)
    return _in_place(x, y) if inplace else y


def bias_dropout_add(
    x: Tensor,
    bias: Tensor | None,
    residual: Tensor | None,
    p: float,
    seed: int,
    offset: int = 0,
    training: bool = True,
) -> Tensor:
    """`residual + dropout(x + bias)` in one pass; bias (shape [x.shape[-1]]) and residual
    (broadcastable to x) may be None. With `training=False` it is `residual + x + bias`."""
    ref.check_x_p(x, p)
    ref.check_seed_offset(seed, offset, x.numel())
    if bias is not None:
        if x.dim() == 0 or bias.dim() != 1 or bias.shape[0] != x.shape[-1]:
            raise ValueError(
                f"bias must have shape [x.shape[-1]] = [{x.shape[-1] if x.dim() else '?'}], "
                f"got {tuple(bias.shape)}"
            )
        if bias.dtype != x.dtype:
            raise TypeError(f"bias dtype {bias.dtype} must match x dtype {x.dtype}")
    if residual is not None:
        if residual.dtype != x.dtype:
            raise TypeError(f"residual dtype {residual.dtype} must match x dtype {x.dtype}")
        if torch.broadcast_shapes(residual.shape, x.shape) != x.shape:
            raise ValueError(
                f"residual shape {tuple(residual.shape)} does not broadcast to {tuple(x.shape)}"
            )
    p = float(p) if training else 0.0
    if _eager_no_grad(x, bias, residual):
        return _run_checked(x, bias, residual, p, seed, offset)
    if _eager_autograd(x, bias, residual):
        return _EagerDropout.apply(x, bias, residual, p, seed, offset)
    return bias_dropout_add_op(x, bias, residual, p, seed, offset)
