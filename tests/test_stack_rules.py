"""How a `Stack` combines each hook is what the hook declares (`HOOK_SPECS`), tested on
small regularizers written here; the older `augment(x, data)` still works; the memory
estimate configures the model through the whole stack."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from regbench import matrix
from regbench.errors import RegbenchError
from regbench.executors.memory import _shapes, estimate
from regbench.interface import (
    COMBINE,
    HOOK_SPECS,
    HOOKS,
    Batch,
    Knobs,
    Regularizer,
    Stack,
    hookspec,
)
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec


def _make(cls: type[Regularizer], name: str, strength: float = 1.0) -> Regularizer:
    spec = RegSpec(name, strength)
    return cls(spec, Cell(TaskSpec("curve"), ArchSpec("mlp"), spec, 0))


class A(Regularizer):
    def patience(self):
        return 7

    def train_fraction(self):
        return 0.5

    def loss_kwargs(self):
        return {"k": "a", "only_a": 1}

    def penalty(self, model):
        return torch.tensor(2.0)

    def batch(self, batch, ctx):
        return Batch(batch.x * 10, batch.y)

    def configure_model(self, knobs):
        knobs.extra.setdefault("order", []).append("a")


class B(Regularizer):
    def patience(self):
        return 3

    def train_fraction(self):
        return 0.25

    def loss_kwargs(self):
        return {"k": "b"}

    def penalty(self, model):
        return None

    def batch(self, batch, ctx):
        return Batch(batch.x + 1, batch.y)

    def configure_model(self, knobs):
        knobs.extra.setdefault("order", []).append("b")


class C(Regularizer):
    def penalty(self, model):
        return torch.tensor(0.5)


def test_every_hook_declares_a_known_combination():
    assert HOOKS == tuple(HOOK_SPECS) and len(HOOKS) == 16
    for hook, spec in HOOK_SPECS.items():
        assert spec.combine in COMBINE, hook
    assert {h for h, s in HOOK_SPECS.items() if s.combine == "owner"} == {"train_step",
                                                                            "eval_model"}
    with pytest.raises(ValueError, match="unknown combination 'first'"):
        hookspec("the step", "first")


def test_the_stack_combines_each_hook_as_declared():
    stack = Stack([_make(A, "a"), _make(B, "b"), _make(C, "c")])
    assert stack.patience() == 3  # minimum
    assert stack.train_fraction() == 0.125  # product
    assert stack.loss_kwargs() == {"k": "b", "only_a": 1}  # merge: the later key wins
    assert float(stack.penalty(None)) == 2.5  # sum, None adds nothing
    out = stack.batch(Batch(torch.ones(2, 1), torch.zeros(2)), None)  # chain, stack order
    assert out.x.tolist() == [[11.0], [11.0]]
    knobs = Knobs()
    stack.configure_model(knobs)  # each, in stack order, on one shared object
    assert knobs.extra["order"] == ["a", "b"]
    empty = Stack([_make(C, "c")])
    assert empty.patience() is None and empty.train_fraction() == 1.0
    assert empty.eval_model(None) is None  # no owner: the base class's default


def test_two_owners_or_a_missing_provider_are_refused_by_the_stack_itself():
    class Step1(Regularizer):
        def train_step(self, batch, ctx):
            pass

    class Step2(Regularizer):
        def train_step(self, batch, ctx):
            pass

    with pytest.raises(RegbenchError, match="'s1' and 's2' cannot be stacked: both own the "
                                            r"training step \(train_step\)"):
        Stack([_make(Step1, "s1"), _make(Step2, "s2")])

    class Needs(Regularizer):
        requires = frozenset({"dropout"})

    with pytest.raises(RegbenchError, match="'needs' needs dropout in the model"):
        Stack([_make(Needs, "needs")])


def test_an_older_augment_taking_the_split_still_works():
    seen = {}

    class Old(Regularizer):
        def augment(self, x, data):
            seen["data"] = data
            return x + 1

    class New(Regularizer):
        def augment(self, x, ctx):
            seen["ctx"] = ctx
            return x * 2

    ctx = SimpleNamespace(data="the split")
    batch = Batch(torch.zeros(2, 1), torch.zeros(2))
    out = Stack([_make(Old, "old"), _make(New, "new")]).batch(batch, ctx)
    assert out.x.tolist() == [[2.0], [2.0]]
    assert seen == {"data": "the split", "ctx": ctx}


def test_the_memory_estimate_sees_the_whole_stack():
    cell = next(c for c in matrix.get("smoke").expand(seeds=1, tasks=["digits"],
                                                        regularizers=["none"]).cells
                if c.arch.name == "mlp")
    shapes = _shapes(cell, None)
    with_bn = Cell(cell.task, cell.arch, cell.reg, 0, cell.protocol,
                   addons=(RegSpec("batchnorm", 1.0),))
    assert estimate(with_bn, shapes).params > estimate(cell, shapes).params
