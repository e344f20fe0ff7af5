"""The regularizers written on the loss hook (`loss_terms`): each against a reference
written here from its paper's formula, each bitwise on a rerun, each stacked with an owned
step (SAM, FGSM), and the stack rule that r_drop needs dropout."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from regbench.errors import MatrixError
from regbench.interface import Batch, Stack, TrainContext
from regbench.matrix import check_composable
from regbench.registry import REGULARIZERS, TASKS
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell

NEW = ["confidence_penalty", "logit_penalty", "input_gradient", "r_drop"]
DIGITS = TaskSpec("digits", freeze({"n_train": 200}))
EPOCHS = freeze({"epochs": 3})


def _ctx(name: str, strength: float, reduction: str = "mean", dropout: float = 0.0
         ) -> tuple[TrainContext, Batch, nn.Module]:
    """A context for `name` on a small classifier (with dropout if asked), one batch."""
    cell = Cell(DIGITS, ArchSpec("mlp"), RegSpec(name, strength), 0)
    task = TASKS.get("digits")()
    data = task.load(DIGITS, 0)
    proto = task.protocol.override(freeze({"loss_reduction": reduction}))
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(data.n_features, 16), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    model = nn.Sequential(*layers, nn.Linear(16, data.n_out))
    regs = [REGULARIZERS.get(s.name)(s, cell) for s in
            (cell.reg, *((RegSpec("dropout", dropout),) if dropout else ()))]
    ctx = TrainContext(cell, proto, data, torch.device("cpu"), Stack(regs))
    ctx.model = model
    ctx.criterion = nn.CrossEntropyLoss(reduction=reduction)
    return ctx, Batch(data.x_train[:32], data.y_train[:32]), model


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_confidence_penalty_is_minus_beta_times_the_entropy(reduction):
    ctx, batch, model = _ctx("confidence_penalty", 0.7, reduction)
    loss, term = ctx.loss(batch)
    out = model(batch.x)
    entropy = torch.distributions.Categorical(logits=out).entropy()
    want = -0.7 * (entropy.sum() if reduction == "sum" else entropy.mean())
    torch.testing.assert_close(term, want)
    torch.testing.assert_close(loss, F.cross_entropy(out, batch.y, reduction=reduction))


def test_logit_penalty_is_half_lambda_times_the_mean_squared_logit_norm():
    ctx, batch, model = _ctx("logit_penalty", 0.05)
    _, term = ctx.loss(batch)
    out = model(batch.x).detach()
    want = sum(0.5 * 0.05 * float(row @ row) for row in out) / len(out)
    assert math.isclose(float(term.detach()), want, rel_tol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_input_gradient_is_lambda_times_each_examples_squared_input_gradient(reduction):
    ctx, batch, model = _ctx("input_gradient", 0.3, reduction)
    _, term = ctx.loss(batch)
    norms = []
    for x, y in zip(batch.x, batch.y):  # one example at a time: its own loss's gradient
        xi = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xi[None]), y[None]), xi)
        norms.append(float(g.pow(2).sum()))
    want = 0.3 * (sum(norms) if reduction == "sum" else sum(norms) / len(norms))
    assert math.isclose(float(term.detach()), want, rel_tol=1e-4)
    # differentiable: the weights get a gradient from the term itself (double backprop)
    grads = torch.autograd.grad(term, list(model.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_r_drop_is_the_mean_of_two_passes_plus_alpha_times_the_symmetric_kl():
    ctx, batch, model = _ctx("r_drop", 0.4, dropout=0.3)
    model.train()
    torch.manual_seed(5)
    loss, term = ctx.loss(batch)  # pass 1, then the term's pass 2
    torch.manual_seed(5)
    out1, out2 = model(batch.x), model(batch.x)  # the same two masks, by hand
    assert not torch.equal(out1, out2)
    p, q = F.log_softmax(out1, 1), F.log_softmax(out2, 1)
    kl_pq = F.kl_div(q, p, log_target=True, reduction="batchmean")  # KL(P1 || P2)
    kl_qp = F.kl_div(p, q, log_target=True, reduction="batchmean")
    ce1, ce2 = F.cross_entropy(out1, batch.y), F.cross_entropy(out2, batch.y)
    torch.testing.assert_close(loss, ce1)
    torch.testing.assert_close(loss + term, 0.5 * (ce1 + ce2) + 0.4 * 0.5 * (kl_pq + kl_qp))


def test_r_drop_without_dropout_is_refused_when_the_stack_is_built():
    with pytest.raises(MatrixError, match="'r_drop' needs dropout in the model.*: dropout"):
        check_composable((RegSpec("r_drop", 0.1),))
    check_composable((RegSpec("r_drop", 0.1), RegSpec("dropout", 0.1)))


def test_r_drop_on_a_model_without_dropout_layers_fails_and_says_so():
    # dropout at p = 0 builds no dropout layer: the cell fails with the reason
    cell = Cell(DIGITS, ArchSpec("mlp"), RegSpec("r_drop", 0.1), 0, EPOCHS,
                addons=(RegSpec("dropout", 0.0),))
    res = run_cell(cell)
    assert res.status == "failed" and "r_drop needs dropout in the model" in res.error


def _cell(name: str, strength: float, *addons: RegSpec, task: TaskSpec = DIGITS) -> Cell:
    extra = (RegSpec("dropout", 0.1),) if name == "r_drop" else ()
    return Cell(task, ArchSpec("mlp"), RegSpec(name, strength), 0, EPOCHS,
                addons=(*extra, *addons))


@pytest.mark.parametrize("name", NEW)
def test_each_trains_bitwise_on_a_rerun_and_changes_the_result(name):
    strength = REGULARIZERS.get(name).default_strengths[-1]
    a, b = run_cell(_cell(name, strength)), run_cell(_cell(name, strength))
    assert a.status == "ok", a.error
    assert a.metrics["test_loss"] == b.metrics["test_loss"] and a.curves == b.curves
    base = run_cell(_cell(name, 0.0))
    assert base.status == "ok" and base.curves != a.curves


@pytest.mark.parametrize("owner", ["sam", "adversarial"])
@pytest.mark.parametrize("name", NEW)
def test_each_stacks_with_an_owned_step(owner, name):
    cell = Cell(DIGITS, ArchSpec("mlp"), RegSpec(owner, 0.05), 0, EPOCHS,
                addons=(RegSpec(name, REGULARIZERS.get(name).default_strengths[0]),
                        *((RegSpec("dropout", 0.1),) if name == "r_drop" else ())))
    check_composable(cell.stack())
    res = run_cell(cell)
    assert res.status == "ok", res.error
    assert all(math.isfinite(c["train_loss"]) for c in res.curves)
    alone = run_cell(Cell(DIGITS, ArchSpec("mlp"), RegSpec(owner, 0.05), 0, EPOCHS,
                          addons=tuple(s for s in cell.addons if s.name == "dropout")))
    assert alone.curves != res.curves  # the term reaches the owner's passes


def test_input_gradient_runs_on_a_regression_task():
    res = run_cell(_cell("input_gradient", 0.1, task=TaskSpec("diabetes")))
    assert res.status == "ok", res.error
