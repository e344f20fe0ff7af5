"""The weight-scaling, dropout-needs-overfitting and batchnorm-init-sensitivity claims'
pieces: exactness with its control, the rank test on hand-made data, the init_scale field."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from regbench import claims
from regbench.errors import RegbenchError
from regbench.inits import scale_init
from regbench.interface import Protocol


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_weight_scaling_is_the_geometric_mean_of_a_linear_model(p):
    geo, arith = claims.linear_geometric_gap(0, p)
    assert geo < 1e-12 and arith > 1e-3  # exact, while the arithmetic mean is not


def test_rank_relation_on_hand_made_settings():
    x = np.arange(8.0)
    rho, lo, hi, p = claims.rank_relation(x, 2 * x + 1, 0, n_perm=5000, n_boot=200)
    assert rho == pytest.approx(1.0) and p < 0.001 and hi == pytest.approx(1.0)
    rho, _, _, p = claims.rank_relation(x, -x, 0, n_perm=5000, n_boot=200)
    assert rho == pytest.approx(-1.0) and p > 0.99


def test_init_scale_cells_and_field():
    cells = claims.BatchnormInitSensitivity().cells(2)
    assert len(cells) == 2 * 5 * 2
    plain = [c for c in cells if not c.protocol]
    assert len(plain) == 4  # scale 1: the ordinary cells (ids shared with other claims)
    assert claims.cell("digits", "mlp", "none", 0.0, 0).cell_id in {c.cell_id for c in plain}
    with pytest.raises(RegbenchError, match="init_scale"):
        Protocol(1, 0, "sgd", 0.1).override((("init_scale", 0.0),))
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    before = [p.detach().clone() for p in net.parameters()]
    scale_init(net, 3.0)
    for b, a in zip(before, net.parameters()):
        assert torch.equal(a, b * 3.0 if b.dim() >= 2 else b)


def test_dropout_needs_overfitting_uses_the_default_settings():
    cells = claims.DropoutNeedsOverfitting().cells(1)
    assert {c.reg.name for c in cells} == {"none", "dropout"}
    assert not any(c.reg.params for c in cells)
    assert len({(c.task.label(), c.arch.label()) for c in cells}) >= 6
