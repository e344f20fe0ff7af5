"""shake_drop: ShakeDrop (Yamada et al. 2019) on residual blocks, against a hand-written
per-sample reference; eval scaling; the linear decay rule; skips; bitwise rerun."""

from __future__ import annotations

import pytest
import torch

from regbench.archs.base import Knobs
from regbench.archs.resmlp import ResBlock, ShakeDrop
from regbench.errors import RegbenchError
from regbench.registry import ARCHS, REGULARIZERS, TASKS
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell


def reference_block(block: ResBlock, x: torch.Tensor, p: float, seed: int):
    """x + gate_i * F(x_i) per sample with the paper's gates, and d(sum(w * out))/d(params)
    computed by hand-scaling the branch's gradient by the backward gate, sample by sample."""
    gen = torch.Generator().manual_seed(seed)
    n = len(x)
    b = (torch.rand(n, generator=gen) < 1 - p).float()
    alpha = torch.rand(n, generator=gen) * 2 - 1
    beta = torch.rand(n, generator=gen)
    outs, grads = [], None
    for i in range(n):
        # the paper's eq. 8 by cases: b = 1 keeps the branch; b = 0 scales it by alpha
        # forward and its gradient by beta backward
        fwd, bwd = (1.0, 1.0) if b[i] == 1 else (alpha[i], beta[i])
        h = block.branch(x[i:i + 1])
        outs.append((x[i:i + 1] + fwd * h).detach())
        # the branch's contribution to the loss sum(out_i): its gradient scaled by bwd
        g = torch.autograd.grad(h.sum() * bwd, list(block.branch.parameters()))
        grads = list(g) if grads is None else [a + c for a, c in zip(grads, g)]
    return torch.cat(outs), grads


def test_block_forward_and_backward_match_the_per_sample_reference():
    torch.manual_seed(0)
    p = 0.5
    knobs = Knobs(shake_drop=p, shake_drop_generator=torch.Generator().manual_seed(11))
    block = ResBlock(6, knobs, index=0, p_drop_path=0.0, total=1).train()
    assert isinstance(block.shake, ShakeDrop) and block.shake.p == p
    x = torch.randn(16, 6)
    out = block(x)
    out.sum().backward()
    ours = [q.grad.clone() for q in block.branch.parameters()]
    ref_out, ref_grads = reference_block(block, x, p, 11)
    torch.testing.assert_close(out, ref_out, rtol=1e-6, atol=1e-6)
    for a, c in zip(ours, ref_grads):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-6)
    assert 0 < int((b_drawn := (torch.rand(16, generator=torch.Generator().manual_seed(11))
                                < 1 - p)).sum()) < 16  # both cases occur in this draw
    assert b_drawn.any()


def test_eval_multiplies_the_branch_by_the_expected_gate():
    knobs = Knobs(shake_drop=0.4, shake_drop_generator=torch.Generator().manual_seed(1))
    block = ResBlock(5, knobs, index=1, p_drop_path=0.0, total=2).eval()
    x = torch.randn(7, 5)
    with torch.no_grad():
        expected = x + (1 - 0.4) * block.branch(x)  # p_l = 0.4 * 2/2; E[b+a-ba] = 1 - p_l
        assert torch.equal(block(x), expected)


def test_the_training_gate_averages_to_one_minus_p():
    mod = ShakeDrop(0.3, torch.Generator().manual_seed(5))
    fwd, bwd = mod.gates(200_000, torch.device("cpu"), torch.float32)
    assert abs(fwd.mean().item() - 0.7) < 0.005  # sd of the mean ~0.0013
    assert abs(bwd.mean().item() - (0.7 + 0.3 * 0.5)) < 0.005
    assert fwd.min() >= -1 and fwd.max() <= 1 and bwd.min() >= 0 and bwd.max() <= 1


@pytest.mark.parametrize("arch,params,total", [("resmlp", {"width": 8, "depth": 4}, 4),
                                               ("resnet", {"depth": 14}, 6)])
def test_linear_decay_over_the_blocks(arch, params, total):
    from regbench.tasks.base import TaskData

    shape = (1, 8, 8)
    x = torch.zeros(4, 64)
    data = TaskData(x, torch.zeros(4, dtype=torch.long), x, x, x, x, "classification", 3,
                    "accuracy", image_shape=shape, channel_shape=shape)
    knobs = Knobs(shake_drop=0.5, shake_drop_generator=torch.Generator())
    model = ARCHS.get(arch)().build(ArchSpec(arch, freeze(params)), data, knobs)
    ps = [m.p for m in model.modules() if isinstance(m, ShakeDrop)]
    assert ps == pytest.approx([0.5 * (i + 1) / total for i in range(total)])
    off = ARCHS.get(arch)().build(ArchSpec(arch, freeze(params)), data, Knobs())
    assert not any(isinstance(m, ShakeDrop) for m in off.modules())


def test_skips_and_validation():
    cls = REGULARIZERS.get("shake_drop")
    reason = cls.skip_reason(TASKS.get("digits")(), ARCHS.get("mlp")())
    assert reason == "shake_drop needs residual blocks; mlp has none"
    assert cls.skip_reason(TASKS.get("digits")(), ARCHS.get("resmlp")()) is None
    with pytest.raises(RegbenchError, match="shake_drop p=1.5 is outside"):
        cls.check(RegSpec("shake_drop", 1.5))


def test_a_cell_is_bitwise_reproducible_and_differs_from_none():
    c = Cell(TaskSpec("digits", freeze({"n_train": 120})),
             ArchSpec("resmlp", freeze({"width": 16, "depth": 2})),
             RegSpec("shake_drop", 0.5), 0, freeze({"epochs": 3}))
    a, b = run_cell(c), run_cell(c)
    assert a.status == "ok", a.error
    assert a.metrics["train_loss"] == b.metrics["train_loss"] and a.curves == b.curves
    none = run_cell(Cell(c.task, c.arch, RegSpec("none"), 0, c.protocol))
    assert none.curves != a.curves
