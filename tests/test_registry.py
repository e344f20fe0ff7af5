import pytest

from regbench.errors import UnknownNameError
from regbench.registry import ARCHS, REGULARIZERS, TASKS

EXPECTED_TASKS = {"curve", "periodic", "digits", "breast_cancer", "diabetes", "bikes",
                  "mnist", "fashion_mnist", "cifar10", "cifar100", "table", "mnist1d",
                  "openml"}
EXPECTED_ARCHS = {"linear", "mlp", "wide", "cnn", "resmlp", "resnet", "mlp_residual", "cnn1d"}
EXPECTED_REGS = {"none", "l1", "l2", "weight_decay", "adamw", "dropout", "batchnorm",
                 "early_stopping", "augment", "more_data", "stochastic_depth", "label_smoothing",
                 "sam", "mixup", "swa", "dropconnect", "max_norm", "cutout", "cutmix",
                 "lookahead", "adversarial", "snapshot_ensemble", "shake_drop",
                 "confidence_penalty", "logit_penalty", "input_gradient", "r_drop"}


def test_registries_hold_the_documented_entries():
    assert set(TASKS.builtin_names()) == EXPECTED_TASKS
    assert set(ARCHS.builtin_names()) == EXPECTED_ARCHS
    assert set(REGULARIZERS.builtin_names()) == EXPECTED_REGS


@pytest.mark.parametrize("registry", [TASKS, ARCHS, REGULARIZERS], ids=lambda r: r.kind)
def test_every_entry_has_a_description(registry):
    for name in registry.names():
        assert registry.describe(name), f"{registry.kind} {name} has no docstring"


def test_unknown_name_lists_choices():
    with pytest.raises(UnknownNameError) as info:
        REGULARIZERS.get("l3")
    msg = str(info.value)
    assert "'l3'" in msg and "l2" in msg and "dropout" in msg


@pytest.mark.parametrize("name", sorted(EXPECTED_REGS))
def test_regularizer_strength_sets_are_valid(name):
    from regbench.specs import RegSpec

    cls = REGULARIZERS.get(name)
    assert cls.default_strengths and cls.full_strengths
    for s in cls.default_strengths + cls.full_strengths:
        cls.check(RegSpec(name, s))


def test_seed_004_sweeps():
    assert REGULARIZERS.get("l2").full_strengths == (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    p_sweep = tuple(round(0.1 * i, 1) for i in range(1, 11))
    assert REGULARIZERS.get("dropout").full_strengths == p_sweep
