"""The field's regularizers written on the public hooks: DropConnect, max-norm, cutout,
CutMix, lookahead, FGSM adversarial training, snapshot ensembles. Each against a reference
written here, and each cell bitwise deterministic."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from regbench import seeding
from regbench.interface import Batch, Regularizer, TaskData, TrainContext
from regbench.interface import Protocol as TrainProtocol
from regbench.registry import REGULARIZERS
from regbench.regularizers.dropconnect import DropConnectLayer
from regbench.regularizers.layers import hidden_layers
from regbench.regularizers.lookahead import Lookahead
from regbench.regularizers.snapshot_ensemble import Ensemble
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell


def _reg(name: str, strength: float, **params) -> Regularizer:
    spec = RegSpec(name, strength, freeze(params))
    return REGULARIZERS.get(name)(spec, Cell(TaskSpec("digits"), ArchSpec("mlp"), spec, 0))


def _images(n: int = 6, c: int = 2, h: int = 5, w: int = 4, kind: str = "classification"
            ) -> TaskData:
    g = torch.Generator().manual_seed(1)
    raw = torch.rand(n, c * h * w, generator=g) * 255
    center = np.repeat(np.array([100.0, 120.0][:c]), h * w)
    scale = np.repeat(np.array([50.0, 60.0][:c]), h * w)
    x = ((raw.double() - torch.from_numpy(center)) / torch.from_numpy(scale)).float()
    y = torch.arange(n) % 3
    return TaskData(x, y, x[:0], y[:0], x, y, kind=kind, n_out=3, metric="accuracy",
                    image_shape=(c, h, w), channel_shape=(c, h, w), x_center=center,
                    x_scale=scale)


def _ctx(reg: Regularizer, data: TaskData, model: nn.Module | None = None, opt=None,
         epochs: int = 4, lr: float = 0.1) -> TrainContext:
    proto = TrainProtocol(epochs=epochs, batch_size=0, optimizer="sgd", lr=lr)
    ctx = TrainContext(reg.cell, proto, data, torch.device("cpu"), [reg])
    ctx.model, ctx.optimizer = model or nn.Identity(), opt
    ctx.criterion = nn.CrossEntropyLoss() if data.kind == "classification" else nn.MSELoss()
    return ctx


# -- DropConnect --------------------------------------------------------------------------
def test_dropconnect_masks_every_hidden_layer_and_evaluates_the_mean_network():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 3))
    reg = _reg("dropconnect", 0.3)
    plain = copy.deepcopy(model)
    model = reg.transform_model(model, _ctx(reg, _images()))
    wrapped = [m for m in model.modules() if isinstance(m, DropConnectLayer)]
    assert len(wrapped) == 2 and isinstance(model[4], nn.Linear)  # not the output layer
    x = torch.randn(5, 4)
    model.eval()
    assert torch.equal(model(x), plain(x))  # eval: the plain weights

    # training: the reference draws the same masks from a copy of the generator
    layer = wrapped[0]
    gen = torch.Generator().set_state(reg.gen.get_state())
    layer.train()
    got = layer(x)
    keep = torch.rand(layer.layer.weight.shape, generator=gen) >= 0.3
    want = x @ (layer.layer.weight * keep.float() / 0.7).T + layer.layer.bias
    torch.testing.assert_close(got, want)


def test_dropconnect_mask_keeps_about_one_minus_p_and_is_unbiased():
    lin = nn.Linear(50, 40)
    layer = DropConnectLayer(lin, 0.4, torch.Generator().manual_seed(0))
    x = torch.eye(50)
    outs = torch.stack([layer(x) - lin.bias for _ in range(200)])
    kept = (outs != 0).double().mean().item()
    assert abs(kept - 0.6) < 0.01
    torch.testing.assert_close(outs.mean(0), lin.weight.T.detach(), atol=0.05, rtol=0.2)


# -- max-norm -----------------------------------------------------------------------------
def test_max_norm_projects_each_units_incoming_weights_onto_the_ball():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Conv1d(1, 3, 3), nn.Linear(6, 2))
    with torch.no_grad():
        model[0].weight[:3] *= 10  # three rows above c, three below
    before = copy.deepcopy(model)
    reg = _reg("max_norm", 1.5)
    reg.after_step(_ctx(reg, _images(), model))
    for layer, old in ((model[0], before[0]), (model[2], before[2])):
        for row, old_row in zip(layer.weight.flatten(1), old.weight.flatten(1)):
            norm = old_row.norm().item()
            want = old_row if norm <= 1.5 else old_row * (1.5 / norm)
            torch.testing.assert_close(row, want)
    assert torch.equal(model[3].weight, before[3].weight)  # the output layer is untouched
    assert hidden_layers(model) == [model[0], model[2]]


# -- cutout and CutMix ----------------------------------------------------------------------
def test_cutout_zeroes_a_clipped_square_in_raw_pixels():
    data = _images()
    reg = _reg("cutout", 0.5)
    gen = torch.Generator().set_state(reg.gen.get_state())
    out = reg.batch(Batch(data.x_train, data.y_train), _ctx(reg, data)).x
    c, h, w = data.image_shape
    n = len(data.x_train)
    cy = torch.randint(0, h, (n, 1, 1), generator=gen)
    cx = torch.randint(0, w, (n, 1, 1), generator=gen)
    side_h, side_w = round(0.5 * h), round(0.5 * w)
    center, scale = torch.from_numpy(data.x_center), torch.from_numpy(data.x_scale)
    for i in range(n):
        raw = (data.x_train[i].double() * scale + center).view(c, h, w)
        y0, x0 = int(cy[i]) - side_h // 2, int(cx[i]) - side_w // 2
        for yy in range(max(y0, 0), min(y0 + side_h, h)):
            for xx in range(max(x0, 0), min(x0 + side_w, w)):
                raw[:, yy, xx] = 0.0
        want = ((raw.flatten() - center) / scale).float()
        torch.testing.assert_close(out[i], want, atol=1e-5, rtol=1e-5)


def test_cutmix_pastes_one_box_and_weights_the_losses_by_the_kept_area():
    data = _images(n=8, h=6, w=6)
    reg = _reg("cutmix", 1.0)
    gen = torch.Generator().set_state(reg.gen.get_state())
    cell = reg.cell
    lam = float(seeding.numpy_rng("regularizer", cell.seed, cell.cell_id, "cutmix", "lam")
                .beta(1.0, 1.0))
    batch = reg.batch(Batch(data.x_train, data.y_train), _ctx(reg, data))
    perm = torch.randperm(8, generator=gen)
    cut = math.sqrt(1 - lam)
    ch, cw = int(6 * cut), int(6 * cut)
    cy, cx = int(torch.randint(0, 6, (1,), generator=gen)), int(torch.randint(0, 6, (1,),
                                                                              generator=gen))
    x = data.x_train.view(8, 2, 6, 6).clone()
    y0, x0 = cy - ch // 2, cx - cw // 2
    area = 0
    for yy in range(max(y0, 0), min(y0 + ch, 6)):
        for xx in range(max(x0, 0), min(x0 + cw, 6)):
            x[:, :, yy, xx] = data.x_train.view(8, 2, 6, 6)[perm][:, :, yy, xx]
            area += 1
    assert torch.equal(batch.x, x.reshape(8, -1))
    (w1, y1), (w2, y2) = batch.targets
    assert w1 == pytest.approx(1 - area / 36) and w2 == pytest.approx(area / 36)
    assert torch.equal(y1, data.y_train) and torch.equal(y2, data.y_train[perm])


def test_image_regularizers_skip_tasks_without_images():
    from regbench.registry import ARCHS, TASKS

    for name in ("cutout", "cutmix"):
        why = REGULARIZERS.get(name).skip_reason(TASKS.get("diabetes")(), ARCHS.get("mlp")())
        assert why and "image inputs" in why


# -- lookahead ----------------------------------------------------------------------------
def test_lookahead_matches_algorithm_1_on_a_quadratic():
    torch.manual_seed(0)
    target = torch.randn(5)
    w = nn.Parameter(torch.zeros(5))
    opt = Lookahead(torch.optim.SGD([w], lr=0.1), k=3, alpha=0.5)
    fast, slow = torch.zeros(5), torch.zeros(5)
    for t in range(1, 10):
        opt.zero_grad()
        ((w - target) ** 2).sum().backward()
        opt.step()
        fast = fast - 0.1 * 2 * (fast - target)
        if t % 3 == 0:
            slow = slow + 0.5 * (fast - slow)
            fast = slow.clone()
        torch.testing.assert_close(w.detach(), fast)


# -- adversarial --------------------------------------------------------------------------
def test_fgsm_step_matches_a_hand_written_one():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 7), nn.Tanh(), nn.Linear(7, 3))
    ref = copy.deepcopy(model)
    data = _images()
    reg = _reg("adversarial", 0.05)
    ctx = _ctx(reg, data, model, torch.optim.SGD(model.parameters(), lr=0.1))
    reg.train_step(Batch(data.x_train, data.y_train), ctx)
    x = data.x_train.clone().requires_grad_(True)
    clean = F.cross_entropy(ref(x), data.y_train)
    (gx,) = torch.autograd.grad(clean, x)
    adv = F.cross_entropy(ref(data.x_train + 0.05 * gx.sign()), data.y_train)
    clean = F.cross_entropy(ref(data.x_train), data.y_train)
    grads = torch.autograd.grad(0.5 * clean + 0.5 * adv, list(ref.parameters()))
    for p, r, g in zip(model.parameters(), ref.parameters(), grads):
        torch.testing.assert_close(p.detach(), r.detach() - 0.1 * g)


# -- snapshot ensembles ---------------------------------------------------------------------
def test_snapshot_ensemble_cycles_and_averages_softmax_outputs():
    data = _images()
    reg = _reg("snapshot_ensemble", 3.0)
    model = nn.Linear(40, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    ctx = _ctx(reg, data, model, opt, epochs=9, lr=0.2)
    lrs = []
    for epoch in range(1, 10):
        ctx.epoch = epoch
        reg.start_epoch(ctx)
        lrs.append(opt.param_groups[0]["lr"])
        with torch.no_grad():
            model.weight.add_(0.1)
        reg.end_epoch(ctx)
    assert lrs == [pytest.approx(0.1 * (math.cos(math.pi * (e % 3) / 3) + 1))
                   for e in range(9)]
    assert len(reg.snapshots) == 3
    ens = reg.eval_model(ctx)
    assert isinstance(ens, Ensemble)
    x = data.x_test
    probs = torch.stack([torch.softmax(m(x), -1) for m in reg.snapshots]).mean(0)
    torch.testing.assert_close(ens(x), torch.log(probs))


@pytest.mark.parametrize("name,strength,params", [("snapshot_ensemble", 3.0, {}),
                                                   ("swa", 0.0, {"lr_factor": 0.5})])
def test_lr_setting_regularizers_scale_the_optimizers_own_lr(name, strength, params):
    """Under `adamw` the optimizer runs at adam_lr, not the protocol's SGD lr: snapshot
    cycles and SWA's constant lr scale the lr the optimizer was built with."""
    data = _images()
    reg = _reg(name, strength, **params)
    model = nn.Linear(40, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ctx = _ctx(reg, data, model, opt, epochs=6, lr=0.2)  # protocol lr 0.2: the SGD lr
    lrs = []
    for epoch in range(1, 7):
        ctx.epoch = epoch
        reg.start_epoch(ctx)
        lrs.append(opt.param_groups[0]["lr"])
        reg.end_epoch(ctx)
    want = ([1e-3 / 2 * (math.cos(math.pi * (e % 2) / 2) + 1) for e in range(6)]
            if name == "snapshot_ensemble" else [5e-4] * 6)
    assert lrs == [pytest.approx(w) for w in want]


def test_snapshot_ensemble_refuses_cycles_the_epochs_cannot_make(tmp_path):
    from regbench import matrix
    from regbench.errors import RegbenchError

    cls = REGULARIZERS.get("snapshot_ensemble")
    proto = TrainProtocol(epochs=30, batch_size=0, optimizer="sgd", lr=0.1)
    for ok in (1.0, 2.0, 4.0, 8.0, 15.0):  # 4: cycles of 8, 8, 8, 6 epochs
        cls.check_protocol(RegSpec("snapshot_ensemble", ok), proto)
    for bad in (2.5, 7.0, 30.0, 40.0):  # 7: cycles of 5 epochs make 6; 30: 1-epoch cycles
        with pytest.raises(RegbenchError, match=r"valid cycles for 30 epochs: 1, 2, 3, 4, 5, "
                                                r"6, 8, 10, 15$"):
            cls.check_protocol(RegSpec("snapshot_ensemble", bad), proto)
    path = tmp_path / "m.toml"
    path.write_text('[[blocks]]\ntasks = ["digits"]\narchs = ["mlp"]\nprotocol = {epochs = 20}'
                    '\nregularizers = [{name = "snapshot_ensemble", strengths = [6]}]\n')
    with pytest.raises(RegbenchError, match="cycles=6 cannot be made from 20 epochs"):
        matrix.get(str(path)).expand()
    proto3 = TrainProtocol(epochs=3, batch_size=0, optimizer="sgd", lr=0.1)
    with pytest.raises(RegbenchError, match="cycles=2 cannot be made from 3 epochs"):
        cls.check_protocol(RegSpec("snapshot_ensemble", 2.0), proto3)  # cycles of 2 and 1
    cls.check_protocol(RegSpec("snapshot_ensemble", 2.0), proto3.override({"epochs": 4}))
    with pytest.raises(RegbenchError, match="keep=5 is more than the 4 snapshots"):
        cls.check_protocol(RegSpec("snapshot_ensemble", 4.0, freeze({"keep": 5})), proto)
    cls.check_protocol(RegSpec("snapshot_ensemble", 4.0, freeze({"keep": 4})), proto)


# -- every one of them: a real cell, deterministic, not a no-op -----------------------------
DIGITS = TaskSpec("digits", freeze({"n_train": 200}))
CASES = [("dropconnect", 0.3, "mlp"), ("max_norm", 0.5, "mlp"), ("cutout", 0.5, "cnn"),
         ("cutmix", 1.0, "cnn"), ("lookahead", 0.5, "mlp"), ("adversarial", 0.1, "mlp"),
         ("snapshot_ensemble", 2.0, "mlp")]


@pytest.mark.parametrize("name,strength,arch", CASES)
def test_cells_are_bitwise_deterministic_and_change_the_result(name, strength, arch):
    proto = freeze({"epochs": 4})
    a_spec = ArchSpec(arch, freeze({"width": 32, "depth": 2} if arch == "mlp" else {}))
    cell = Cell(DIGITS, a_spec, RegSpec(name, strength), 0, proto)
    a, b = run_cell(cell), run_cell(cell)
    assert a.status == b.status == "ok", a.error
    keys = ["train_loss", "val_loss", "test_loss", "train_metric", "test_metric"]
    assert [a.metrics[k] for k in keys] == [b.metrics[k] for k in keys]
    assert a.curves == b.curves
    none = run_cell(Cell(DIGITS, a_spec, RegSpec("none"), 0, proto))
    assert [none.metrics[k] for k in keys] != [a.metrics[k] for k in keys]
