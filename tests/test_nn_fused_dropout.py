"""FusedDropout: drop-in nn.Dropout with (seed, offset) state."""

from __future__ import annotations

import pytest
import torch

from regbench import kernels as K
from regbench.nn import FusedDropout


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
    assert "p=0.2, seed=3, offset=4" in repr(model)


@pytest.mark.parametrize(
    "args,exc,match",
    [((1.5, 1), ValueError, "1.5"), ((0.5, -2), ValueError, "-2"), ((0.5, 1.0), TypeError, "1.0")],
)
def test_bad_arguments(args, exc, match) -> None:
    with pytest.raises(exc, match=match):
        FusedDropout(*args)
