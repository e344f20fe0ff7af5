"""FusedDropout: drop-in nn.Dropout with (seed, offset) state; replace_dropout.

The drop-in checks follow PyTorch's own (test/nn/test_dropout.py: _test_dropout,
_test_dropout_discontiguous, _test_dropout_stride_mean_preserve, test_invalid_dropout_p),
plus bitwise comparisons with the reference: a layout never changes a bit.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from regbench import kernels as K
from regbench.kernels import reference as R
from regbench.nn import FusedDropout, replace_dropout


def test_eval_and_p_zero_are_identity() -> None:
    x = torch.randn(10)
    m = FusedDropout(0.5, seed=1)
    m.eval()
    assert m(x) is x
    assert FusedDropout(0.0, seed=1)(x) is x
    assert int(m.offset) == 0


def test_offset_advances_and_masks_match_functional() -> None:
    m = FusedDropout(0.3, seed=9, offset=5)
    x = torch.randn(3, 7)  # 21 elements -> 6 counters per call
    y1, y2 = m(x), m(x)
    assert int(m.offset) == 5 + 2 * 6
    assert torch.equal(y1, K.dropout(x, 0.3, 9, 5))
    assert torch.equal(y2, K.dropout(x, 0.3, 9, 11))
    assert not torch.equal(y1, y2)


def test_state_dict_round_trip() -> None:
    m = FusedDropout(0.5, seed=123)
    m(torch.randn(100))
    sd = m.state_dict()
    assert set(sd) == {"seed", "offset"} and sd["seed"].dtype == torch.int64
    m2 = FusedDropout(0.5, seed=0)
    m2.load_state_dict(sd)
    x = torch.randn(50)
    assert torch.equal(m(x), m2(x))
    assert int(m.offset) == int(m2.offset) == 25 + 13


def test_backward_uses_the_mask_of_its_forward() -> None:
    m = FusedDropout(0.5, seed=4)
    x = torch.randn(64, requires_grad=True)
    y = m(x)
    m(x)  # advances the offset again before backward
    (gx,) = torch.autograd.grad(y, x, torch.ones(64))
    assert torch.equal(gx, K.dropout(torch.ones(64), 0.5, 4, 0))


def test_compile_fullgraph_matches_eager() -> None:
    m_c, m_e = FusedDropout(0.5, seed=42), FusedDropout(0.5, seed=42)
    cm = torch.compile(m_c, fullgraph=True)
    x = torch.randn(4, 16, requires_grad=True)
    for _ in range(2):
        yc, ye = cm(x), m_e(x)
        (gc,) = torch.autograd.grad(yc.sum(), x)
        (ge,) = torch.autograd.grad(ye.sum(), x)
        assert torch.equal(yc, ye) and torch.equal(gc, ge)
    assert int(m_c.offset) == int(m_e.offset) == 32


def test_in_a_model_and_repr() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), FusedDropout(0.2, seed=3))
    assert model(torch.randn(2, 4)).shape == (2, 8)
    assert "p=0.2, inplace=False, seed=3, offset=4" in repr(model)


@pytest.mark.parametrize(
    "args,kwargs,exc,match",
    [((1.5,), {}, ValueError, "1.5"), ((-0.1,), {}, ValueError, "-0.1"),
     ((0.5,), {"seed": -2}, ValueError, "-2"), ((0.5,), {"seed": 1.0}, TypeError, "1.0"),
     ((0.5, 1), {}, TypeError, "inplace"), (("0.5",), {}, TypeError, "0.5")],
)
def test_bad_arguments(args, kwargs, exc, match) -> None:
    with pytest.raises(exc, match=match):
        FusedDropout(*args, **kwargs)


# --- drop-in for nn.Dropout ---------------------------------------------------------------------


def test_constructs_like_nn_dropout_and_torch_seed_controls_it() -> None:
    torch.manual_seed(3)
    a, b = FusedDropout(), FusedDropout(0.5)  # two draws: different seeds
    torch.manual_seed(3)
    a2, b2 = FusedDropout(p=0.5, inplace=False), FusedDropout(0.5)
    assert int(a.seed) == int(a2.seed) and int(b.seed) == int(b2.seed)
    assert int(a.seed) != int(b.seed)
    assert a.p == 0.5 and a.inplace is False and FusedDropout(0.2, True).inplace is True
    x = torch.randn(1000)
    assert torch.equal(a(x), a2(x))
    assert torch.equal(FusedDropout(0.5, seed=11)(x), K.dropout(x, 0.5, 11, 0))
    assert repr(FusedDropout(0.2, True, seed=3)) == (
        "FusedDropout(p=0.2, inplace=True, seed=3, offset=0)")


def _pytorch_dropout_checks(inp: torch.Tensor, fmt: torch.memory_format) -> None:
    """PyTorch's _test_dropout: mean preserved forward and backward, in-place form, memory
    format kept, eval identity."""
    p = 0.2
    inp = inp.fill_(1 - p)
    module = FusedDropout(p)
    x = inp.clone(memory_format=fmt).requires_grad_()
    out = module(x)
    assert out.is_contiguous(memory_format=fmt)
    assert abs(out.detach().float().mean().item() - (1 - p)) < 0.05
    out.backward(inp)
    assert x.grad.is_contiguous(memory_format=fmt)
    assert abs(x.grad.float().mean().item() - (1 - p)) < 0.05

    module = FusedDropout(p, True)
    x = inp.clone(memory_format=fmt).requires_grad_()
    h = x + 0
    out = module(h)
    assert out is h  # in place: the input tensor itself, modified
    assert out.is_contiguous(memory_format=fmt)
    assert abs(out.detach().float().mean().item() - (1 - p)) < 0.05
    out.backward(inp)
    assert x.grad.is_contiguous(memory_format=fmt)
    assert abs(x.grad.float().mean().item() - (1 - p)) < 0.05

    for inplace in (True, False):
        m = FusedDropout(p, inplace).eval()
        assert torch.equal(m(inp), inp) and m(inp) is inp
    str(module)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_pytorch_dropout_checks_1d(dtype) -> None:
    _pytorch_dropout_checks(torch.empty(1000, dtype=dtype), torch.contiguous_format)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last], ids=str)
def test_pytorch_dropout_checks_4d(fmt) -> None:
    _pytorch_dropout_checks(torch.empty(1000, 2, 3, 4), fmt)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last], ids=str)
@pytest.mark.parametrize("inplace", [False, True])
def test_layout_kept_and_bits_are_the_contiguous_ones_permuted(fmt, inplace) -> None:
    """The mask follows the logical index: same values as the contiguous input, in x's layout;
    the gradient is the same mask applied to a gradient of any layout."""
    base = torch.randn(4, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    want = R.dropout(base, 0.4, 21, 3)
    x = base.clone(memory_format=fmt).requires_grad_()
    h = x * 1
    y = K.dropout(h, 0.4, 21, 3, inplace=inplace)
    assert y.is_contiguous(memory_format=fmt) and torch.equal(y, want)
    dy = torch.randn(4, 3, 5, 7).to(memory_format=torch.channels_last)
    y.backward(dy)
    assert torch.equal(x.grad, R.dropout(dy.contiguous(), 0.4, 21, 3))


def test_discontiguous_inputs_keep_their_stride_order() -> None:
    """PyTorch's _test_dropout_discontiguous and _test_dropout_stride_mean_preserve: sliced
    and permuted inputs give an output dense in the input's stride order, mean preserved."""
    for fmt in (torch.contiguous_format, torch.channels_last):
        for p in (0.0, 1e-10):
            inp = torch.ones(2, 3, 3, 3)
            disc = torch.empty(2, 3, 3, 6, memory_format=fmt)[..., ::2]
            disc.copy_(inp)
            out = FusedDropout(p)(disc)
            if p != 0:
                assert out.is_contiguous(memory_format=fmt)
            assert torch.equal(disc, out)
    inp = torch.ones(2, 3, 4, 5)
    for perm in itertools.permutations(range(4)):
        inv = tuple(perm.index(i) for i in range(4))
        for shift in ((0, 0), (1, 0), (0, 1), (1, 1)):
            for p in (1e-10, 0.3, 0.5, 0.7):
                x = inp.permute(perm).contiguous().permute(inv)[shift[0]:, shift[1]:]
                out = FusedDropout(p, seed=5)(x)
                assert out.permute(perm).is_contiguous()
                assert abs(out.mean().item() - 1.0) < 0.5
                assert torch.equal(out, R.dropout(x.contiguous(), p, 5, 0))
                assert torch.equal(out, x) == (p == 1e-10)


def test_p_zero_and_one_match_native() -> None:
    """PyTorch's test_native_dropout_corner_case: p = 0 and 1, train and eval, forward and
    backward agree with native dropout."""
    for train, p in itertools.product((True, False), (0.0, 1.0)):
        x = torch.randn(5, requires_grad=True)
        x_ref = x.detach().clone().requires_grad_()
        m = FusedDropout(p, seed=1).train(train)
        o, o_ref = m(x), torch.dropout(x_ref, p, train)
        o.sum().backward()
        o_ref.sum().backward()
        assert torch.equal(o, o_ref) and torch.equal(x.grad, x_ref.grad)


def test_inplace_rules_follow_nn_dropout() -> None:
    leaf = torch.randn(8, requires_grad=True)
    for mod in (nn.Dropout(0.5, inplace=True), FusedDropout(0.5, inplace=True)):
        with pytest.raises(RuntimeError, match="leaf Variable"):
            mod(leaf)
    # an in-place write to a tensor saved for another op's backward is caught at backward
    w = torch.randn(8, requires_grad=True)
    for mod in (nn.Dropout(0.5, inplace=True), FusedDropout(0.5, inplace=True)):
        h = w.sigmoid()  # sigmoid saves its output
        mod(h)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            h.sum().backward()
    # no grad: x is overwritten in place with the out-of-place result, version bumped
    x = torch.randn(1003)
    want = K.dropout(x, 0.5, 9, 2)
    v = x._version
    assert K.dropout(x, 0.5, 9, 2, inplace=True) is x and torch.equal(x, want)
    assert x._version > v
    xt = torch.randn(20, 30).t()  # non-contiguous, in place
    want = K.dropout(xt, 0.5, 9, 2)
    assert K.dropout(xt, 0.5, 9, 2, inplace=True) is xt and torch.equal(xt, want)
    with torch.inference_mode():
        xi = torch.randn(100)
        want = K.dropout(xi, 0.5, 9, 2)
        assert torch.equal(K.dropout(xi, 0.5, 9, 2, inplace=True), want)


def test_inplace_module_advances_offset_and_compiles() -> None:
    m_e, m_c = FusedDropout(0.5, True, seed=8), FusedDropout(0.5, True, seed=8)
    cm = torch.compile(m_c, fullgraph=True)
    x = torch.randn(4, 16, requires_grad=True)
    for _ in range(2):
        he, hc = x * 1, x * 1
        ye, yc = m_e(he), cm(hc)
        assert ye is he and torch.equal(yc, ye) and torch.equal(hc, he)
        (ge,) = torch.autograd.grad(ye.sum(), x)
        (gc,) = torch.autograd.grad(yc.sum(), x)
        assert torch.equal(gc, ge)
    assert int(m_e.offset) == int(m_c.offset) == 32


# --- replace_dropout ----------------------------------------------------------------------------


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.drop = nn.Dropout(0.3, inplace=True)
        self.inner = nn.Sequential(nn.ReLU(), nn.Dropout(0.1), nn.ModuleList([nn.Dropout(0.7)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inner[1](self.inner[0](self.drop(self.fc(x))))
        return self.inner[2][0](x)


def _nested() -> nn.Module:
    torch.manual_seed(0)
    shared = nn.Dropout(0.25)
    return nn.Sequential(_Block(), shared, nn.Linear(6, 6), shared, _Block(), nn.Dropout(0.5))


def test_replace_dropout_on_a_nested_model() -> None:
    model = _nested()
    before = {n: (m.p, m.inplace) for n, m in model.named_modules() if isinstance(m, nn.Dropout)}
    assert replace_dropout(model, seed=7) is model
    after = {n: m for n, m in model.named_modules() if isinstance(m, FusedDropout)}
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    assert set(after) == set(before) and len(after) == 8  # the shared one counted once
    assert all((after[n].p, after[n].inplace) == before[n] for n in before)
    assert model[1] is model[3]  # a shared module stays shared
    seeds = [int(m.seed) for m in after.values()]
    assert len(set(seeds)) == len(seeds)  # its own seed stream each
    again = replace_dropout(_nested(), seed=7)
    assert [int(m.seed) for m in again.modules() if isinstance(m, FusedDropout)] == seeds
    other = replace_dropout(_nested(), seed=8)
    assert [int(m.seed) for m in other.modules() if isinstance(m, FusedDropout)] != seeds
    x = torch.randn(10, 6)
    assert torch.equal(model(x), again(x))  # same seed, same masks


def test_replace_dropout_keeps_mode_and_uses_torch_seed_when_none() -> None:
    model, model2 = _nested().eval(), _nested().eval()
    torch.manual_seed(1)
    a = replace_dropout(model)
    torch.manual_seed(1)
    b = replace_dropout(model2)
    assert all(not m.training for m in a.modules())
    seeds = lambda m: [int(d.seed) for d in m.modules() if isinstance(d, FusedDropout)]  # noqa: E731
    assert seeds(a) == seeds(b)
    bare = replace_dropout(nn.Dropout(0.4), seed=0)
    assert isinstance(bare, FusedDropout) and bare.p == 0.4
    with pytest.raises(ValueError, match="-1"):
        replace_dropout(nn.Dropout(), seed=-1)
