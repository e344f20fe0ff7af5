"""The training-step hooks, through the regularizers written on them: SAM (owns the step),
mixup (mixed inputs and targets), SWA (what is evaluated). Each against an independent
reference written here, and each cell bitwise deterministic."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from regbench import seeding
from regbench.interface import (
    HOOKS,
    Batch,
    Regularizer,
    TaskData,
    TrainContext,
    hook_signature_problems,
)
from regbench.interface import Protocol as TrainProtocol
from regbench.registry import REGULARIZERS
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell


def _data(kind: str, n: int = 12, d: int = 3) -> TaskData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    y = (torch.randint(0, 4, (n,), generator=g) if kind == "classification"
         else torch.randn(n, 1, generator=g))
    return TaskData(x, y, x[:0], y[:0], x, y, kind=kind,
                    n_out=4 if kind == "classification" else 1,
                    metric="accuracy" if kind == "classification" else "rmse")


def _ctx(reg: Regularizer, data: TaskData, model: nn.Module, opt=None, epochs: int = 4
         ) -> TrainContext:
    proto = TrainProtocol(epochs=epochs, batch_size=4, optimizer="sgd", lr=0.1)
    ctx = TrainContext(reg.cell, proto, data, torch.device("cpu"), [reg])
    ctx.model, ctx.optimizer = model, opt
    ctx.criterion = (nn.CrossEntropyLoss() if data.kind == "classification" else nn.MSELoss())
    return ctx


def _reg(name: str, strength: float, **params) -> Regularizer:
    spec = RegSpec(name, strength, freeze(params))
    cell = Cell(TaskSpec("digits"), ArchSpec("mlp"), spec, 0)
    return REGULARIZERS.get(name)(spec, cell)


def test_every_hook_is_documented_and_does_nothing_by_default():
    for hook in HOOKS:
        doc = getattr(Regularizer, hook).__doc__ or ""
        assert len(doc.split()) >= 5, hook
    assert Regularizer.ownership() == frozenset()
    assert REGULARIZERS.get("sam").ownership() == {"step"}
    assert REGULARIZERS.get("swa").ownership() == {"eval"}
    assert REGULARIZERS.get("adamw").ownership() == {"optimizer", "weight_decay"}


def test_hook_signatures_are_checked():
    class Bad(Regularizer):
        def penalty(self):  # the model argument is missing
            return None

        def batch(self, batch, ctx):
            return batch

    assert hook_signature_problems(Bad) == ["penalty(self) should take (self, model)"]
    for name in REGULARIZERS.builtin_names():
        assert hook_signature_problems(REGULARIZERS.get(name)) == [], name


def test_sam_step_matches_a_hand_written_sam_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
    ref = copy.deepcopy(model)
    data = _data("regression")
    rho, lr = 0.05, 0.1
    reg = _reg("sam", rho)
    ctx = _ctx(reg, data, model, torch.optim.SGD(model.parameters(), lr=lr))
    seen = []
    ctx.record = lambda loss, penalty, n: seen.append(loss.item())
    batch = Batch(data.x_train, data.y_train)
    reg.train_step(batch, ctx)

    # reference: grad at w, ascend to w + rho g/||g||, grad there, SGD step from w
    params = list(ref.parameters())
    loss = F.mse_loss(ref(data.x_train), data.y_train)
    g = torch.autograd.grad(loss, params)
    norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
    shifted = [(p.detach() + rho * gi / norm).requires_grad_() for p, gi in zip(params, g)]
    names = [n for n, _ in ref.named_parameters()]
    out = torch.func.functional_call(ref, dict(zip(names, shifted)), (data.x_train,))
    g2 = torch.autograd.grad(F.mse_loss(out, data.y_train), shifted)
    expected = [p.detach() - lr * gi for p, gi in zip(params, g2)]
    for got, want in zip(model.parameters(), expected):
        torch.testing.assert_close(got.detach(), want, rtol=1e-6, atol=1e-7)
    assert seen == [pytest.approx(loss.item())]  # the loss reported is the one at w


def test_sam_with_rho_zero_is_the_plain_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    plain = copy.deepcopy(model)
    data = _data("regression")
    reg = _reg("sam", 0.0)
    ctx = _ctx(reg, data, model, torch.optim.SGD(model.parameters(), lr=0.1))
    reg.train_step(Batch(data.x_train, data.y_train), ctx)
    opt = torch.optim.SGD(plain.parameters(), lr=0.1)
    F.mse_loss(plain(data.x_train), data.y_train).backward()
    opt.step()
    for a, b in zip(model.parameters(), plain.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_mixup_mixes_inputs_and_targets_like_the_paper(kind):
    data = _data(kind)
    reg = _reg("mixup", 0.4)
    torch.manual_seed(0)
    model = nn.Linear(3, data.n_out)
    ctx = _ctx(reg, data, model)
    batch = reg.batch(Batch(data.x_train, data.y_train), ctx)
    # the same draws, made independently from the documented streams
    cell = reg.cell
    lam = float(seeding.numpy_rng("regularizer", cell.seed, cell.cell_id, "mixup", "lam")
                .beta(0.4, 0.4))
    perm = torch.randperm(len(data.x_train), generator=seeding.generator(
        "regularizer", cell.seed, cell.cell_id, "mixup", "perm"))
    x = lam * data.x_train + (1 - lam) * data.x_train[perm]
    assert torch.equal(batch.x, x)
    loss, penalty = ctx.loss(batch)
    assert penalty is None
    out = model(x)
    if kind == "classification":
        soft = (lam * F.one_hot(data.y_train, 4).double()
                + (1 - lam) * F.one_hot(data.y_train[perm], 4).double()).float()
        torch.testing.assert_close(loss, F.cross_entropy(out, soft))
    else:
        y = lam * data.y_train + (1 - lam) * data.y_train[perm]
        torch.testing.assert_close(loss, F.mse_loss(out, y))


def test_mixup_alpha_zero_leaves_the_batch_alone():
    data = _data("classification")
    reg = _reg("mixup", 0.0)
    batch = Batch(data.x_train, data.y_train)
    assert reg.batch(batch, _ctx(reg, data, nn.Linear(3, 4))) is batch


def test_swa_average_and_batchnorm_match_torch_swa_utils():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    data = _data("classification", n=20)
    reg = _reg("swa", 0.5)
    ctx = _ctx(reg, data, model, epochs=6)
    ref = torch.optim.swa_utils.AveragedModel(model)
    for epoch in range(1, 7):
        with torch.no_grad():  # stand-in for an epoch of training
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        ctx.epoch = epoch
        reg.end_epoch(ctx)
        if epoch >= 3:  # ceil(0.5 * 6)
            ref.update_parameters(model)
    assert reg.n_averaged == 4 == int(ref.n_averaged)
    averaged = reg.eval_model(ctx)
    loader = [data.x_train[i:i + 4] for i in range(0, 20, 4)]
    torch.optim.swa_utils.update_bn(loader, ref)
    for got, want in zip(averaged.parameters(), ref.module.parameters()):
        torch.testing.assert_close(got, want)
    bn, bn_ref = averaged[1], ref.module[1]
    torch.testing.assert_close(bn.running_mean, bn_ref.running_mean)
    torch.testing.assert_close(bn.running_var, bn_ref.running_var)
    assert model is not averaged  # the trained model is kept as it is


def test_swa_before_its_start_evaluates_the_trained_model():
    reg = _reg("swa", 1.0)
    ctx = _ctx(reg, _data("classification"), nn.Linear(3, 4), epochs=4)
    ctx.epoch = 3
    reg.end_epoch(ctx)
    assert reg.eval_model(ctx) is None


DIGITS = TaskSpec("digits", freeze({"n_train": 200}))


@pytest.mark.parametrize("name,strength", [("sam", 0.05), ("mixup", 0.4), ("swa", 0.5)])
def test_step_api_cells_are_bitwise_deterministic_and_change_the_result(name, strength):
    proto = freeze({"epochs": 4})
    cell = Cell(DIGITS, ArchSpec("mlp", freeze({"width": 32, "depth": 2})),
                RegSpec(name, strength), 0, proto)
    a, b = run_cell(cell), run_cell(cell)
    assert a.status == b.status == "ok", a.error
    keys = ["train_loss", "val_loss", "test_loss", "train_metric", "test_metric"]
    assert [a.metrics[k] for k in keys] == [b.metrics[k] for k in keys]
    assert a.curves == b.curves
    none = run_cell(Cell(DIGITS, cell.arch, RegSpec("none"), 0, proto))
    assert [none.metrics[k] for k in keys] != [a.metrics[k] for k in keys]
