"""The protocol fields a source document's own setup needs: each is part of the cell id and
does what it says (loss reduction, standardization, init scheme, lr schedule)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from regbench import seeding
from regbench.losses import make_criterion
from regbench.registry import TASKS
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.tasks.base import PROTOCOL_FIELDS
from regbench.train import num_threads, run_cell


def curve_cell(seed: int = 0, arch: ArchSpec | None = None, **protocol) -> Cell:
    return Cell(TaskSpec("curve"), arch or ArchSpec("mlp", freeze({"width": 16, "depth": 2})),
                RegSpec("none"), seed, freeze({"epochs": 3, **protocol}))


NEW_FIELDS = {"loss_reduction": "sum", "standardize": "none", "init": "torch",
              "lr_schedule": "cosine", "lr_step_size": 2, "lr_gamma": 0.5, "lr_min": 1e-5}


@pytest.mark.parametrize("field,value", sorted(NEW_FIELDS.items()))
def test_each_new_field_changes_the_cell_id(field, value):
    assert field in PROTOCOL_FIELDS
    base = curve_cell()
    changed = curve_cell(**{field: value})
    assert changed.cell_id != base.cell_id
    assert dict(changed.protocol)[field] == value
    assert Cell.from_json(changed.to_json()).cell_id == changed.cell_id


def test_sum_gradient_is_n_times_the_mean_gradient():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 4))
    x, y = torch.randn(37, 3, dtype=torch.float64), torch.randint(0, 4, (37,))
    model = model.double()
    for kind, target in (("classification", y), ("regression", torch.randn(37, 4).double())):
        grads = {}
        for reduction in ("mean", "sum"):
            model.zero_grad()
            make_criterion(kind, reduction, {}).__call__(model(x), target).backward()
            grads[reduction] = [p.grad.clone() for p in model.parameters()]
        n = len(x) if kind == "classification" else x.shape[0] * 4  # MSE averages all entries
        for gm, gs in zip(grads["mean"], grads["sum"]):
            assert torch.allclose(gs, n * gm, rtol=1e-12, atol=1e-14)


def test_sum_cell_logs_the_same_per_sample_loss_and_takes_a_larger_step():
    mean = run_cell(curve_cell(optimizer="sgd", lr=0.01, batch_size=0))
    summed = run_cell(curve_cell(optimizer="sgd", lr=0.01, batch_size=0, loss_reduction="sum"))
    assert mean.status == summed.status == "ok"
    # epoch 1's loss is measured before the first step: the same per-sample value
    assert math.isclose(mean.curves[0]["train_loss"], summed.curves[0]["train_loss"],
                        rel_tol=1e-5)
    # after it, the sum cell has moved n = 21 times further
    assert mean.curves[1]["train_loss"] != summed.curves[1]["train_loss"]


def test_standardize_none_feeds_raw_values():
    task = TASKS.get("curve")()
    xtr, ytr, *_ = task.arrays(TaskSpec("curve"), 0, None)
    raw = task.load(TaskSpec("curve"), 0, standardize="none")
    assert torch.equal(raw.x_train, torch.from_numpy(xtr.astype("float32")))
    assert torch.equal(raw.y_train, torch.from_numpy(ytr.astype("float32")).view(-1, 1))
    assert raw.y_scale == 1.0
    x_only = task.load(TaskSpec("curve"), 0, standardize="x")
    assert torch.equal(x_only.y_train, raw.y_train)
    assert abs(float(x_only.x_train.mean())) < 1e-6
    both = task.load(TaskSpec("curve"), 0)
    assert abs(float(both.y_train.mean())) < 1e-6


def test_rmse_stays_in_the_data_units_whatever_is_standardized():
    from regbench.evaluation import score

    task = TASKS.get("diabetes")()
    raw_y = task.arrays(TaskSpec("diabetes"), 0, None)[5]
    pred_raw = torch.linspace(50, 300, len(raw_y), dtype=torch.float64)
    want = math.sqrt(float(((pred_raw - torch.from_numpy(raw_y)) ** 2).mean()))
    for standardize in ("xy", "x", "none"):
        data = task.load(TaskSpec("diabetes"), 0, standardize=standardize)
        # the model predicts in the units it is trained in: standardized targets for "xy"
        center = float(task.arrays(TaskSpec("diabetes"), 0, None)[1].mean())
        pred = ((pred_raw - center) / data.y_scale if standardize == "xy" else pred_raw)
        _, rmse = score(pred.float().view(-1, 1), data.y_test, data)
        assert math.isclose(rmse, want, rel_tol=1e-5), standardize


def test_init_torch_is_torch_manual_seed_then_build():
    cell = curve_cell(init="torch", arch=ArchSpec("wide", freeze({"width": 8})))
    seed = seeding.derive("init", 0, "curve", cell.arch.label())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ref = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                            nn.Linear(8, 1))
    from regbench.archs.base import Knobs
    from regbench.data_cache import load_data
    from regbench.inits import init_model
    from regbench.registry import ARCHS

    data = load_data(cell.task, 0, None, "none")
    model = ARCHS.get("wide")().build(cell.arch, data, Knobs())
    init_model(model, "torch", seed)
    ours = [p for p in model.parameters()]
    assert len(ours) == len(list(ref.parameters()))
    for a, b in zip(ours, ref.parameters()):
        assert torch.equal(a, b)


def test_init_he_is_the_mnist1d_notebooks_kaiming_uniform_with_zero_biases():
    """`init = "he"` equals the notebooks' `nn.init.kaiming_uniform_(w); b.fill_(0)`, drawn
    from a generator seeded with the cell's init seed, and is a function of that seed."""
    from regbench.inits import INIT_SCHEMES, init_model

    assert set(INIT_SCHEMES) == set(PROTOCOL_FIELDS["init"].choices)

    def build() -> nn.Module:
        return nn.Sequential(nn.Linear(40, 60), nn.ReLU(), nn.Linear(60, 60), nn.ReLU(),
                             nn.Linear(60, 10))

    model = build()
    init_model(model, "he", 123)
    ref = build()
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for layer in ref:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight, generator=g)
                layer.bias.fill_(0.0)
    for a, b in zip(model.parameters(), ref.parameters()):
        assert torch.equal(a, b)
    first = model[0].weight
    assert float(first.detach().abs().max()) <= math.sqrt(6 / 40)  # U(+-sqrt(6 / fan_in))
    assert float(first.detach().abs().max()) > math.sqrt(6 / 40) * 0.9
    again = build()
    init_model(again, "he", 123)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
    other = build()
    init_model(other, "he", 124)
    assert not torch.equal(other[0].weight, model[0].weight)


def test_a_cell_trains_with_init_he():
    from regbench.train import run_cell

    r = run_cell(curve_cell(init="he"))
    assert r.status == "ok", r.error
    assert curve_cell(init="he").cell_id != curve_cell().cell_id


def test_lr_schedules_do_what_they_say():
    from regbench.optim.schedules import make_schedule
    from regbench.tasks.base import Protocol

    base = Protocol(epochs=10, batch_size=0, optimizer="sgd", lr=1.0)
    for proto, expect in (
        (base, [1.0] * 10),
        (base.override(freeze({"lr_schedule": "step", "lr_step_size": 3, "lr_gamma": 0.5})),
         [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]),
        (base.override(freeze({"lr_schedule": "cosine", "lr_min": 0.1})),
         [0.1 + 0.45 * (1 + math.cos(math.pi * e / 10)) for e in range(10)]),
    ):
        param = nn.Parameter(torch.zeros(1))
        param.grad = torch.zeros(1)
        opt = torch.optim.SGD([param], lr=proto.lr)
        sched = make_schedule(opt, proto)
        seen = []
        for _ in range(proto.epochs):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched is not None:
                sched.step()
        assert seen == pytest.approx(expect, rel=1e-9), proto.lr_schedule


TALK = {"optimizer": "sgd", "lr": 0.004, "momentum": 0.05, "batch_size": 0,
        "loss_reduction": "sum", "standardize": "none", "init": "torch"}


def test_talk_setup_as_a_cell_equals_a_hand_written_loop_bitwise():
    """Seed 000's wide-MLP code, written plainly with the cell's seeds, gives the same bits."""
    epochs, seed = 60, 1
    cell = Cell(TaskSpec("curve"), ArchSpec("wide"), RegSpec("none"), seed,
                freeze({**TALK, "epochs": epochs}))
    r = run_cell(cell)
    assert r.status == "ok"

    xtr, ytr, _, _, xte, yte = TASKS.get("curve")().arrays(TaskSpec("curve"), seed, None)
    x = torch.from_numpy(xtr.astype("float32"))
    y = torch.from_numpy(ytr.astype("float32")).view(-1, 1)
    with num_threads(1), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeding.derive("init", seed, "curve", "wide"))
        net = nn.Sequential(nn.Linear(1, 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(),
                            nn.Linear(1000, 1))
        opt = torch.optim.SGD(net.parameters(), lr=0.004, momentum=0.05)
        loss_fn = nn.MSELoss(reduction="sum")
        order = seeding.generator("order", seed, "curve")
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=order)
            loss = loss_fn(net(x[perm]), y[perm])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            train_mse = nn.functional.mse_loss(net(x), y).item()
            test_pred = net(torch.from_numpy(xte.astype("float32")))
            test_mse = nn.functional.mse_loss(
                test_pred, torch.from_numpy(yte.astype("float32")).view(-1, 1)).item()
    assert r.metrics["train_loss"] == train_mse
    assert r.metrics["test_loss"] == test_mse
    assert r.metrics["train_metric"] == math.sqrt(train_mse)
